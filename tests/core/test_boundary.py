"""ufs_tui.core never imports textual: checked statically (AST) and at run time (a fresh interpreter)."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import ufs_tui.core
from tests.imports import imports, within

CORE_DIR = Path(ufs_tui.core.__file__).parent
REPO = CORE_DIR.parent.parent


def _core_modules() -> list[str]:
    names = [m.name for m in pkgutil.walk_packages([str(CORE_DIR)], prefix="ufs_tui.core.")]
    assert names, "no modules found under ufs_tui/core"
    return sorted(names)


def _textual_imports(path: Path) -> list[str]:
    return [f"{path.name}:{line}: {module}" for line, module in imports(path) if within(module, "textual")]


def test_ast_scan_finds_no_textual_import() -> None:
    files = sorted(CORE_DIR.rglob("*.py"))
    assert len(files) >= 5, files
    offenders = [hit for f in files for hit in _textual_imports(f)]
    assert offenders == []


def test_ast_scan_detects_textual_imports() -> None:
    """The scanner itself can fail: it sees every spelling it is meant to catch."""
    samples = {
        "import textual\n": 1,
        "import os, textual.widgets as w\n": 1,
        "from textual.app import App\n": 1,
        "from textual import events\n": 1,
        "def f():\n    import textual\n": 1,
        "import importlib\nimportlib.import_module('textual.app')\n": 1,
        "import textualize\nfrom .textual import x\nimport rich\n": 0,
    }
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        for source, expected in samples.items():
            p = Path(d) / "sample.py"
            p.write_text(source, encoding="utf-8")
            assert len({hit.split(":")[1] for hit in _textual_imports(p)}) == expected, source  # lines


def test_importing_core_and_cli_loads_no_textual() -> None:
    modules = ["ufs_tui.core", *_core_modules(), "ufs_tui.cli"]
    code = (
        f"import {', '.join(modules)}\n"
        "import sys\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "assert not bad, bad\n"
        "print('ok', len(sys.modules))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("ok ")


def test_cli_tree_runs_without_textual(tmp_path: Path) -> None:
    """Running a non-UI command end to end does not load textual either."""
    (tmp_path / "l").mkdir()
    (tmp_path / "l" / "f").write_text("x")
    code = (
        "import sys, io\n"
        "from ufs_tui.cli import main\n"
        f"rc = main(['tree', '--lower', {str(tmp_path / 'l')!r}], stdout=io.StringIO())\n"
        "bad = sorted(m for m in sys.modules if m == 'textual' or m.startswith('textual.'))\n"
        "assert rc == 0 and not bad, (rc, bad)\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
