"""Every subcommand is a module under ufs_tui/commands; none imports ufs_tui.cli, and the shared stack options
module imports no command (checked statically, AST)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import ufs_tui.commands
from tests.imports import imports, within
from ufs_tui import cli

COMMANDS_DIR = Path(ufs_tui.commands.__file__).parent
PACKAGE = "ufs_tui.commands"
SHARED = {"__init__", "options"}  # what the commands share; every other module is a command


def _imports(path: Path) -> set[str]:
    return {module for _, module in imports(path, f"{PACKAGE}.{path.stem}")}


def _modules() -> dict[str, Path]:
    files = {p.stem: p for p in COMMANDS_DIR.glob("*.py")}
    assert set(files) >= SHARED and len(files) > len(SHARED) + 5, files
    return files


def test_no_command_module_imports_the_cli() -> None:
    offenders = {}
    for name, path in _modules().items():
        bad = sorted(m for m in _imports(path) if within(m, "ufs_tui.cli"))
        if bad:
            offenders[name] = bad
    assert offenders == {}


def test_the_shared_options_import_no_command() -> None:
    commands = {f"{PACKAGE}.{name}" for name in _modules() if name not in SHARED}
    for shared in SHARED:
        assert sorted(m for m in _imports(_modules()[shared]) if any(within(m, c) for c in commands)) == [], shared


def test_every_command_is_a_module_the_cli_lists() -> None:
    listed = set(cli.COMMAND_MODULES)
    assert listed == {f"{PACKAGE}.{name}" for name in _modules() if name not in SHARED}
    parser_commands = {m.NAME for m in cli._command_modules()}
    assert parser_commands == {
        *("tree", "diff", "du", "ci", "compare", "cp", "demo", "ps", "mounts", "mount", "umount", "commit", "squash")
    }


def test_the_scan_sees_every_spelling_of_importing_the_cli() -> None:
    samples = {
        "from ..cli import main\n": True,
        "from .. import cli\n": True,
        "import ufs_tui.cli\n": True,
        "from ufs_tui.cli import stack_from_args\n": True,
        "def f():\n    from ufs_tui import cli\n": True,
        "import importlib\nimportlib.import_module('ufs_tui.cli')\n": True,
        "from . import cli\nfrom .options import stack_from_args\nfrom ..core import cli_words\n": False,
    }
    with tempfile.TemporaryDirectory() as d:
        p = Path(d) / "sample.py"
        for source, expected in samples.items():
            p.write_text(source, encoding="utf-8")
            assert any(within(m, "ufs_tui.cli") for m in _imports(p)) is expected, source
