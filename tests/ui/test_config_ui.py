"""The user's config file in the real app, opened through the real command line: a [keymap] moves a key (the
new key acts, the old one no longer does), the theme comes from the file or from --theme (which wins); every
key has an id, and README lists them all (generated: ``python -m tests.ui.test_config_ui`` prints the table)."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import pytest
from textual import constants
from textual.binding import Binding
from textual.color import Color
from textual.dom import DOMNode

import ufs_tui.ui
from ufs_tui import cli
from ufs_tui.ui.app import UfsApp
from ufs_tui.ui.config import BOUND, keymap_rows, theme_names
from ufs_tui.ui.screens.explorer import ExplorerScreen
from ufs_tui.ui.screens.help import HelpScreen
from ufs_tui.ui.screens.search import SearchScreen

from .helpers import settle, wait_until

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.fixture
def config_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The user's config file, in a temp XDG_CONFIG_HOME (not written yet)."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "xdg"))
    (tmp_path / "xdg" / "ufs-tui").mkdir(parents=True)
    return tmp_path / "xdg" / "ufs-tui" / "config.toml"


@pytest.fixture
def layer(tmp_path: Path) -> str:
    lower = tmp_path / "lower"
    lower.mkdir()
    for name in ("a", "b", "c"):
        (lower / name).write_text(name)
    return str(lower)


def launched(monkeypatch: pytest.MonkeyPatch, argv: list[str]) -> UfsApp:
    """The app ``ufs-tui ARGV`` makes, through the real command line (config file, parser, factory); its
    terminal run left out, for the test's own Pilot."""
    apps: list[UfsApp] = []
    monkeypatch.setattr(UfsApp, "run", lambda self, *a, **k: apps.append(self))
    assert cli.main(argv) == 0
    [app] = apps
    return app


# ------------------------------------------------------------------ keymap
async def test_a_remapped_key_acts_and_its_old_keys_do_not(
    config_file: Path, layer: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text('[keymap]\n"app.help" = "f2"\nexplorer.search = "ctrl+f"\n\n[keymap.pane]\ndown = "n"\n')
    app = launched(monkeypatch, ["--lower", layer])
    assert capsys.readouterr().err == ""
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark", "f1", "slash")  # the old keys: nothing opens
        assert app.screen_stack == [app.main]
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help, on the new key")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ExplorerScreen), "the help to close")
        await pilot.press("ctrl+f")
        await wait_until(pilot, lambda: isinstance(app.screen, SearchScreen), "the search, on the new key")
        await pilot.press("escape")
        await wait_until(pilot, lambda: isinstance(app.screen, ExplorerScreen), "the search to close")

        tree = app.pane_tree("merged")
        before = tree.cursor_line
        await pilot.press("j")  # a pane's key, moved too
        assert tree.cursor_line == before
        await pilot.press("n")
        await wait_until(pilot, lambda: tree.cursor_line == before + 1, "the cursor to move down on the new key")
        await pilot.press("q")  # not remapped: still quits
    assert app.return_code == 0


async def test_an_unknown_id_is_one_line_and_the_rest_applies(
    config_file: Path, layer: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text('[keymap]\n"explorer.serch" = "ctrl+f"\n"app.help" = "f2"\n')
    app = launched(monkeypatch, ["--lower", layer])
    assert capsys.readouterr().err.splitlines() == [
        f"ufs-tui: warning: {config_file}: [keymap] explorer.serch: no key has this id (the ids: README, "
        "Configuration); ignored"
    ]
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("f2")
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the help, on the new key")


# ------------------------------------------------------------------ theme
async def test_the_theme_comes_from_the_config_and_theme_wins(
    config_file: Path, layer: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    config_file.write_text('theme = "nord"\n')
    for argv, theme in ((["--lower", layer], "nord"), (["--lower", layer, "--theme", "gruvbox"], "gruvbox")):
        app = launched(monkeypatch, argv)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            assert app.theme == theme and app.current_theme.name == theme
            painted = Color.parse(app.current_theme.to_color_system().generate()["background"])
            assert app.screen.styles.background == painted  # the screen is drawn in it


def test_demo_takes_theme_too(config_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config_file.write_text('theme = "nord"\n')
    assert launched(monkeypatch, ["demo"]).theme == "nord"
    assert launched(monkeypatch, ["demo", "--theme", "textual-light"]).theme == "textual-light"


def test_an_unknown_theme_in_the_config_is_one_line_and_the_default(
    config_file: Path, layer: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    config_file.write_text('theme = "neon"\n')
    assert launched(monkeypatch, ["--lower", layer]).theme == constants.DEFAULT_THEME
    [line] = capsys.readouterr().err.splitlines()
    assert line.startswith(f"ufs-tui: warning: {config_file}: theme: unknown theme 'neon' (available: textual-dark,")


@pytest.mark.parametrize("argv", [["--theme", "neon", "--lower", "/"], ["demo", "--theme", "neon"]])
def test_an_unknown_theme_on_the_command_line_is_a_usage_error(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exit:
        cli.main(argv)
    assert exit.value.code == 2
    err = capsys.readouterr().err
    assert f"error: argument --theme: unknown theme 'neon' (choose from {', '.join(theme_names())})" in err
    assert err.startswith("usage: ufs-tui")


# ------------------------------------------------------------------ every key has an id; README lists them
def _bound_classes() -> list[type[DOMNode]]:
    for module in pkgutil.walk_packages(ufs_tui.ui.__path__, "ufs_tui.ui."):
        importlib.import_module(module.name)
    found: list[type[DOMNode]] = []
    todo: list[type[DOMNode]] = [DOMNode]
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if cls.__module__.startswith("ufs_tui.") and "BINDINGS" in vars(cls):
            found.append(cls)
    return found


def test_every_binding_has_an_id_and_one_id_is_one_action() -> None:
    classes = _bound_classes()
    assert sorted(c.__name__ for c in classes if c not in BOUND) == ["UfsApp"]  # its keys: the explorer's ids
    actions: dict[str, set[str]] = {}
    for cls in classes:
        for b in cls.BINDINGS:
            assert isinstance(b, Binding) and b.id and re.fullmatch(r"[a-z]+\.[a-z_]+", b.id), (cls, b)
            actions.setdefault(b.id, set()).add(b.action.removeprefix("app."))
    assert {i: a for i, a in actions.items() if len(a) > 1} == {}


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def generated_table() -> list[str]:
    rows = ["| id | default keys | does |", "|---|---|---|"]
    return rows + [f"| `{i}` | `{_cell(keys)}` | {_cell(does)} |" for i, keys, does in keymap_rows()]


def test_readme_lists_every_id() -> None:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^<!-- keymap ids\b[^\n]*-->\n(.*?)^<!-- /keymap ids -->$", text, re.S | re.M)
    assert m, "README.md has no <!-- keymap ids ... --> ... <!-- /keymap ids --> block"
    assert m.group(1).rstrip("\n").split("\n") == generated_table(), "regenerate: python -m tests.ui.test_config_ui"


if __name__ == "__main__":  # print the table to paste into README.md
    print("\n".join(generated_table()))
