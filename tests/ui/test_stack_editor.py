"""The stack editor, driven with keys: add, remove and move lowers, set upper and work (created only after a
confirmation), new empty layer dirs, options, read-only; checks said before the kernel; the panes follow.

Real dirs in a temp dir; what the panes must show is computed by the core from the same layers.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests.mount.helpers import make_tree, snapshot
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.ui.app import UfsApp, make_app
from ufs_tui.ui.bindings import EDITOR_KEYS, key_display
from ufs_tui.ui.screens.confirm import ConfirmScreen, MessageScreen, PromptScreen, complete_dir
from ufs_tui.ui.screens.help import HelpScreen
from ufs_tui.ui.screens.stack import StackEditor

from .helpers import names, settle, text_of, wait_until


@pytest.fixture
def d(tmp_layers: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    make_tree(
        tmp_layers,
        {"l0/a": "a0\n", "l0/sub/x": "x\n", "l1/b": "b1\n", "l1/sub/y": "y\n", "l2/c": "c2\n", "u/": None, "w/": None},
    )
    monkeypatch.setenv("UFS_TUI_RUNTIME_DIR", os.path.join(tmp_layers, "rt"))
    os.mkdir(os.path.join(tmp_layers, "rt"))
    yield tmp_layers


def app_for(d: str, lowers: tuple[str, ...] = ("l0", "l1")) -> UfsApp:
    stack = Stack.build([f"{d}/{n}" for n in lowers], f"{d}/u", f"{d}/w")
    return make_app(stack, live=False)


async def type_path(pilot: Pilot[int], app: UfsApp, path: str) -> None:
    """Edit the prompt's text into ``path`` with keys as a person would (backspace what differs, type the rest),
    then press Enter."""
    assert isinstance(app.screen, PromptScreen)
    value = app.screen.query_one("#prompt-input", Input).value
    keep = len(os.path.commonprefix([value, path]))
    await pilot.press("end", *["backspace"] * (len(value) - keep), *path[keep:], "enter")
    await wait_until(pilot, lambda: not isinstance(app.screen, PromptScreen), "the prompt to close")
    await pilot.pause()  # its answer is handled (maybe a confirmation opens)


def editor(app: UfsApp) -> StackEditor:
    assert isinstance(app.screen, StackEditor), type(app.screen)
    return app.screen


async def test_add_move_remove_apply_and_panes_follow(d: str) -> None:
    app = app_for(d)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        assert names(app.pane_tree("merged")) == ["a", "b", "sub"]
        await pilot.press("e")
        ed = editor(app)
        rows = text_of(ed.query_one("#stack-problems"))
        assert "checks pass" in rows
        # a: add l2 above the selected lower (lower:0 is selected), by typing its path
        await pilot.press("a")
        await type_path(pilot, app, f"{d}/l2")
        assert ed.draft.lowers == [f"{d}/l2", f"{d}/l0", f"{d}/l1"]
        # J moves it down, K back up, J twice: to the bottom
        await pilot.press("J")
        assert ed.draft.lowers == [f"{d}/l0", f"{d}/l2", f"{d}/l1"]
        await pilot.press("K")
        assert ed.draft.lowers == [f"{d}/l2", f"{d}/l0", f"{d}/l1"]
        await pilot.press("J", "J")
        assert ed.draft.lowers == [f"{d}/l0", f"{d}/l1", f"{d}/l2"]
        # x removes the selected lower (now l2, at the bottom); the dir itself is untouched
        before = snapshot(f"{d}/l2")
        await pilot.press("x")
        assert ed.draft.lowers == [f"{d}/l0", f"{d}/l1"]
        await pilot.press("a")
        await type_path(pilot, app, f"{d}/l2")
        assert ed.draft.lowers == [f"{d}/l0", f"{d}/l2", f"{d}/l1"]  # above the selected one (l1)
        assert snapshot(f"{d}/l2") == before
        # nothing changes in the app until Ctrl+S
        assert [la.path for la in app.stack.lowers] == [f"{d}/l0", f"{d}/l1"]
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert not isinstance(app.screen, StackEditor)
        assert [la.path for la in app.stack.lowers] == [f"{d}/l0", f"{d}/l2", f"{d}/l1"]
        view = OverlayView(app.stack)
        assert names(app.pane_tree("merged")) == [e.name for e in view.list_dir("/")] == ["a", "b", "c", "sub"]
        assert [o.id for o in app.query_one("#layers").options] == ["upper", "lower:0", "lower:1", "lower:2"]
        # the Lower pane still shows l0; ] goes to the new lower:1 (l2)
        await pilot.press("]")
        await settle(pilot)
        assert app.lower_layer is not None and app.lower_layer.path == f"{d}/l2"
        assert names(app.pane_tree("lower")) == ["c"]


async def test_escape_leaves_the_stack_as_it_was(d: str) -> None:
    app = app_for(d)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        stack = app.stack
        await pilot.press("e", "x", "1", "r")
        assert editor(app).draft.lowers == [f"{d}/l1"]
        await pilot.press("escape")
        await settle(pilot)
        assert app.stack is stack


async def test_upper_and_work_are_created_only_after_yes(d: str) -> None:
    app = app_for(d)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        ed = editor(app)
        # u: a missing upper is offered for creation; n declines (nothing is made, nothing changes)
        await pilot.press("u")
        await type_path(pilot, app, f"{d}/new-upper")
        assert isinstance(app.screen, ConfirmScreen)
        assert f"{d}/new-upper" in text_of(app.screen.query_one("#confirm-lines"))
        await pilot.press("n")
        assert not os.path.exists(f"{d}/new-upper") and ed.draft.upper == f"{d}/u"
        # again, y creates it
        await pilot.press("u")
        await type_path(pilot, app, f"{d}/new-upper")
        await pilot.press("y")
        await wait_until(pilot, lambda: ed.draft.upper == f"{d}/new-upper", "the new upper")
        assert os.path.isdir(f"{d}/new-upper") and os.listdir(f"{d}/new-upper") == []
        assert ed.draft.upper == f"{d}/new-upper"
        # the old work dir is still set: fine (same filesystem); w: a new one next to the upper
        await pilot.press("w")
        await type_path(pilot, app, f"{d}/new-work")
        await pilot.press("y")
        await wait_until(pilot, lambda: ed.draft.work == f"{d}/new-work", "the new work dir")
        assert os.path.isdir(f"{d}/new-work")
        assert "checks pass" in text_of(ed.query_one("#stack-problems"))
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.stack.upper is not None and app.stack.upper.path == f"{d}/new-upper"
        assert app.stack.work == f"{d}/new-work"
        assert names(app.pane_tree("upper")) == []


async def test_new_empty_layer_dir(d: str) -> None:
    app = app_for(d)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("e", "n")
        assert isinstance(app.screen, PromptScreen)
        suggested = app.screen.query_one("#prompt-input").value  # type: ignore[attr-defined]
        assert suggested == f"{d}/layer.1" and not os.path.exists(suggested)
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
        assert f"Will create the empty dir: {d}/layer.1" in text_of(app.screen.query_one("#confirm-lines"))
        await pilot.press("y")
        await wait_until(pilot, lambda: isinstance(app.screen, StackEditor), "the editor")
        ed = editor(app)
        await wait_until(pilot, lambda: len(ed.draft.lowers) == 3, "the new layer")
        assert os.path.isdir(f"{d}/layer.1") and os.listdir(f"{d}/layer.1") == []
        assert ed.draft.lowers == [f"{d}/layer.1", f"{d}/l0", f"{d}/l1"]


async def test_options_read_only_and_conflicts_are_said_in_the_editor(d: str) -> None:
    app = app_for(d)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        ed = editor(app)
        await pilot.press("1", "4")  # redirect_dir=on + userxattr: the kernel refuses this pair
        assert ed.stack().options == ("redirect_dir=on", "userxattr")
        problems = text_of(ed.query_one("#stack-problems"))
        assert "redirect_dir=on,userxattr" in problems and "conflicting options" in problems
        assert "redirect_dir=on" in text_of(ed.query_one("#stack-options"))
        await pilot.press("4", "1", "1", "1", "1")  # userxattr off; redirect_dir on → follow → nofollow → off → default
        assert ed.stack().options == ()
        await pilot.press("2", "3", "3", "5")
        assert ed.stack().options == ("metacopy=on", "index=off", "volatile")
        await pilot.press("2", "2", "3", "5")
        assert ed.stack().options == ()
        # r: read-only (no upper); with two lowers the check passes; r again brings them back
        await pilot.press("r")
        assert ed.draft.upper is None and ed.stack().upper is None and ed.stack().work is None
        assert "checks pass" in text_of(ed.query_one("#stack-problems"))
        await pilot.press("r")
        assert ed.draft.upper == f"{d}/u" and ed.draft.work == f"{d}/w"
        await pilot.press("r", "ctrl+s")
        await settle(pilot)
        assert app.stack.upper is None
        assert "no upper layer" in str(app.pane_tree("upper").root.children[0].label)


async def test_work_on_another_filesystem_is_said_before_the_kernel(d: str, root_mount: None) -> None:
    """The editor and `m` both say it; the kernel is never asked; the stack and the mounts stay as they were."""
    other = f"{d}/otherfs"
    os.mkdir(other)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", other], check=True)
    try:
        os.mkdir(f"{other}/work")
        app = app_for(d)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot)
            await pilot.press("e", "w")
            await type_path(pilot, app, f"{other}/work")
            problems = text_of(editor(app).query_one("#stack-problems"), width=300)
            assert "the work dir is on a different filesystem than the upper" in problems
            await pilot.press("ctrl+s")
            await settle(pilot)
            assert app.stack.work == f"{other}/work"
            await pilot.press("m")
            await wait_until(pilot, lambda: isinstance(app.screen, MessageScreen), "the MessageScreen")
            assert app.main.last_error is not None and "different filesystem" in app.main.last_error
            assert "Nothing was changed." in app.main.last_error
            await pilot.press("escape")
            assert app.handle is None and app.mounts.manager is None  # nothing was even attempted
    finally:
        subprocess.run(["umount", other], check=True)


def screen_lines(app: UfsApp) -> list[str]:
    """The characters on screen now, one string a row (what a person sees)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


@pytest.mark.parametrize("size", [(80, 24), (160, 45)], ids=["80x24", "160x45"])
async def test_every_editor_key_is_on_screen_and_in_help(d: str, size: tuple[int, int]) -> None:
    """Each key of the editor is shown with its word on the screen itself (the key legend, and the options line
    for 1-5), whole, at 80x24 and 160x45; every one is bound; and the help screen lists them."""
    app = app_for(d)
    async with app.run_test(size=size) as pilot:
        await settle(pilot)
        await pilot.press("e")
        ed = editor(app)
        await pilot.pause()
        lines = screen_lines(app)
        assert len(lines) == size[1] and all(len(line) <= size[0] for line in lines)
        screen = "\n".join(lines)
        for k in EDITOR_KEYS:
            for key in k.keys.split(","):
                bindings = ed._bindings.key_to_bindings.get(key, [])
                assert any(b.action == k.action for b in bindings), (key, k.action)
            if k.action.startswith("option("):
                name = k.action.split("'")[1]
                assert f"{k.keys} {name}=" in screen, (k.keys, screen)
            else:
                shown = (k.display or key_display(k.keys)).replace(" ", "/")
                assert f"{shown} {k.short}" in screen, (shown, k.short, screen)
        assert "1-5 Options" in screen and "? Help" in screen
        # The legend is whole: no entry is cut at the right edge or split over two lines.
        legend = [line for line in lines if "Add" in line or "Cancel" in line]
        assert legend and all(not line.rstrip().endswith(("…", "▏")) for line in legend)
        await pilot.press("question_mark")  # ? works in the editor, as the legend says
        await wait_until(pilot, lambda: isinstance(app.screen, HelpScreen), "the HelpScreen")
        body = text_of(app.screen.query_one("#info Static"), width=200)
        for k in EDITOR_KEYS:
            assert k.description in body, k.description


async def test_a_renamed_dir_with_redirects_not_followed_is_a_warning(d: str) -> None:
    """userxattr (4) implies redirect_dir=nofollow: a dir with a redirect then fails with EPERM: said as ⚠, the
    stack still applies (the kernel mounts it)."""
    make_tree(d, {"l1/docs/x": "x\n", "l0/manual/": None})
    os.setxattr(f"{d}/l0/manual", "user.overlay.redirect", b"/docs")
    app = app_for(d)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        ed = editor(app)
        assert "⚠" not in text_of(ed.query_one("#stack-problems"), width=300)  # trusted.* markers: no redirect
        await pilot.press("4")  # userxattr: the user.overlay.* markers count, and redirects are not followed
        said = text_of(ed.query_one("#stack-problems"), width=300)
        assert "⚠ userxattr: 1 renamed dir(s) hold a redirect this mount will not follow: /manual" in said
        assert "fail with EPERM" in said and "checks pass" in said
        await pilot.press("4")
        assert "⚠" not in text_of(ed.query_one("#stack-problems"), width=300)


async def test_hostile_layer_names_show_literally(d: str) -> None:
    nasty = f"{d}/[red]x\x1b[2J\nl"
    os.mkdir(nasty)
    app = app_for(d)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        ed = editor(app)
        ed.draft.lowers.insert(0, nasty)
        ed.refresh_view(0)
        await pilot.pause()
        row = ed.query_one("#stack-rows").get_option_at_index(0).prompt
        plain = row.plain  # type: ignore[union-attr]
        assert "[red]x" in plain and "\x1b" not in plain and "\n" not in plain


def test_path_completion(tmp_path: os.PathLike[str]) -> None:
    base = os.fspath(tmp_path)
    for n in ("alpha", "alps", "beta", ".hidden"):
        os.mkdir(os.path.join(base, n))
    open(os.path.join(base, "alfile"), "w").close()
    assert complete_dir(f"{base}/al") == f"{base}/alpha/"  # dirs only, first in order
    assert complete_dir(f"{base}/alps") is None  # already complete
    assert complete_dir(f"{base}/be") == f"{base}/beta/"
    assert complete_dir(f"{base}/") == f"{base}/alpha/"  # hidden dirs only when asked for
    assert complete_dir(f"{base}/.h") == f"{base}/.hidden/"
    assert complete_dir(f"{base}/zz") is None


async def test_completion_in_the_prompt(d: str) -> None:
    app = app_for(d)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("e", "a")
        assert app.screen.query_one("#prompt-input", Input).value == f"{d}/"  # starts next to the top lower
        await pilot.press("end", "r")
        inp = app.screen.query_one("#prompt-input")
        await wait_until(pilot, lambda: inp._suggestion == f"{d}/rt/", "a suggestion")  # type: ignore[attr-defined]
        await pilot.press("right")  # accepts the suggestion
        assert inp.value == f"{d}/rt/"  # type: ignore[attr-defined]
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, StackEditor), "the editor")
        await wait_until(pilot, lambda: editor(app).draft.lowers[0] == f"{d}/rt", "the added lower")
