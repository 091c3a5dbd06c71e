"""The UI's import boundaries, checked statically (AST):

* widgets (``ufs_tui/ui/widgets/*``) import neither the app nor a screen nor the screen's helpers: only the
  core, other widgets and the small shared UI modules (the Textual fence, the heap, posting Messages);
* (the headless explorer is :mod:`ufs_tui.core.explorer`; the core importing no textual is
  tests/core/test_boundary.py);
* screens and helpers never import the app (it is the top: it imports them).
"""

from __future__ import annotations

from pathlib import Path

import ufs_tui
from tests.imports import imports, within

PACKAGE = Path(ufs_tui.__file__).parent
UI = PACKAGE / "ui"
WIDGETS_MAY_IMPORT = (
    "ufs_tui.core",
    "ufs_tui.ui.widgets",
    "ufs_tui.ui.textual_internals",
    "ufs_tui.ui.heap",
    "ufs_tui.ui.messages",
)


def package_imports(path: Path, me: str | None = None) -> list[tuple[int, str]]:
    """(line, module) for each import of a ``ufs_tui`` module in ``path`` (see :func:`tests.imports.imports`)."""
    return [(line, m) for line, m in imports(path, me) if within(m, "ufs_tui")]


def test_widgets_import_only_the_core_widgets_and_shared_modules() -> None:
    files = sorted((UI / "widgets").glob("*.py"))
    assert len(files) >= 6, files
    offenders = []
    for f in files:
        for line, module in package_imports(f):
            if within(module, "ufs_tui.ui.app") or within(module, "ufs_tui.ui.screens"):
                offenders.append(f"{f.name}:{line}: {module} (the app or a screen)")
            elif not any(within(module, ok) for ok in WIDGETS_MAY_IMPORT):
                offenders.append(f"{f.name}:{line}: {module}")
    assert offenders == []


def test_nothing_under_the_app_imports_it() -> None:
    offenders = [
        f"{f.relative_to(UI)}:{line}"
        for f in sorted(UI.rglob("*.py"))
        if f.name not in ("app.py", "pilot.py")  # pilot drives the app from outside (tests, benchmarks)
        for line, module in package_imports(f)
        if within(module, "ufs_tui.ui.app")
    ]
    assert offenders == []


def test_the_scanner_sees_relative_imports(tmp_path: Path) -> None:
    """The resolver itself can fail: a widget's ``from ..app import X`` and ``from .. import app`` are seen."""
    probe = UI / "widgets" / "pane.py"
    imports = [m for _, m in package_imports(probe)]
    assert "ufs_tui.ui.textual_internals" in imports and "ufs_tui.core.panes.Item" in imports
    fake = tmp_path / "x.py"
    fake.write_text("from ..app import UfsApp\nfrom .. import screens\nfrom ..screens.explorer import E\n")
    got = [m for _, m in package_imports(fake, "ufs_tui.ui.widgets.x")]
    assert got == ["ufs_tui.ui.app.UfsApp", "ufs_tui.ui.screens", "ufs_tui.ui.screens.explorer.E"]
