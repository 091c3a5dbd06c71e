"""Compare any two, from the explorer (issue 16): the form that asks for the sides (a bad side says why in it),
the differences as a worker finds them (A/C/D rows in the diff statuses' colours, keys answered while 40,000 of
them stream in, the walk cancelled and the trees freed when the screen closes), the highlighted row's content
diff, the summary (counts, what could not be compared), hostile names shown literally, and Enter leaving with
the path. Small real stacks in tmp; nothing mounted."""

from __future__ import annotations

import contextlib
import os
import weakref
from pathlib import Path

from textual import events
from textual.color import Color
from textual.content import Content
from textual.pilot import Pilot
from textual.widgets import Input, OptionList, Static
from textual.worker import WorkerCancelled, WorkerState

from ufs_tui.core.model.stack import Stack
from ufs_tui.ui.app import UfsApp, make_app
from ufs_tui.ui.pilot import MessageLog
from ufs_tui.ui.screens.compare import CompareScreen, CompareSetup, start_compare
from ufs_tui.ui.widgets.labels import drawn

from .helpers import settle, wait_until


def write(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


# lower:0 and an upper: etc/motd changed (same size), gone and keep only below, new and two hostile names only above
SMALL = {
    "l0": {"etc/motd": b"hello\n", "gone": b"g\n", "keep": b"k\n"},
    "up": {"etc/motd": b"world\n", "new": b"n\n", "[red]x": b"r\n", "\x1b[31mesc": b"e\n"},
}


def small_stack(root: Path) -> Stack:
    for layer, files in SMALL.items():
        for name, data in files.items():
            write(root / layer / name, data)
    return Stack.build([str(root / "l0")], upper=str(root / "up"), xattr_ns="user")


def app_for(stack: Stack) -> UfsApp:
    return make_app(stack, live=False, frozen=True)


async def open_form(pilot: Pilot[int], a: str, b: str, chosen: list[str | None]) -> CompareSetup:
    app = pilot.app
    assert isinstance(app, UfsApp)
    start_compare(app.main, app.stack, a, b, chosen.append)
    await wait_until(pilot, lambda: app.focused is not None and app.focused.id == "compare-a", "the form, A focused")
    assert isinstance(app.screen, CompareSetup)
    return app.screen


async def compared(pilot: Pilot[int]) -> CompareScreen:
    """The compare screen, once its walk is over and its rows are shown."""
    app = pilot.app
    await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen), "the compare screen")
    screen = app.screen
    assert isinstance(screen, CompareScreen)
    await wait_until(pilot, lambda: screen.done, "the comparison")
    return screen


def rows_of(screen: CompareScreen) -> list[Content]:
    rows = screen.query_one("#compare-rows", OptionList)
    out = []
    for i in range(rows.option_count):
        prompt = rows.get_option_at_index(i).prompt
        assert isinstance(prompt, Content)
        out.append(prompt)
    return out


def shown(screen: CompareScreen, widget: str) -> str:
    content = screen.query_one(widget, Static).content
    assert isinstance(content, Content)
    return content.plain


async def test_two_typed_sides_list_a_c_d_and_the_diff_of_a_changed_file(tmp_path: Path) -> None:
    app = app_for(small_stack(tmp_path))
    chosen: list[str | None] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        form = await open_form(pilot, "merged", "merged", chosen)
        assert [i.value for i in form.query(Input)] == ["merged", "merged"]  # prefilled by the caller
        await pilot.press("ctrl+u", *"lower:0", "tab", "ctrl+u", *"upper", "enter")
        screen = await compared(pilot)
        rows = rows_of(screen)
        assert [r.plain for r in rows] == [
            "A /\\x1b[31mesc",
            "A /[red]x",
            "C /etc/motd  content",
            "D /gone",
            "D /keep",
            "A /new",
        ]
        assert screen.sides == ("lower:0", "upper")
        assert shown(screen, "#compare-summary") == "A 3   C 1   D 2   6 differences"
        # the kinds in the colours of the statuses they stand for: new (green), copied up (yellow), whiteout (red)
        letters = {r.plain[0]: r.spans[0].style.foreground for r in rows}
        assert letters == {k: Color.parse(drawn(c)) for k, c in (("A", "green"), ("C", "yellow"), ("D", "red"))}
        await pilot.press("down", "down")
        await wait_until(pilot, lambda: screen.shown == 2, "the diff of /etc/motd")
        assert shown(screen, "#compare-detail") == (
            "C /etc/motd  content\n\n--- A:/etc/motd\n+++ B:/etc/motd\n@@ -1 +1 @@\n-hello\n+world"
        )
        await pilot.press("down")
        await wait_until(pilot, lambda: screen.shown == 3, "what /gone is")
        assert shown(screen, "#compare-detail") == "D /gone\nonly in A: a file"
        await pilot.press("up", "enter")
        await wait_until(pilot, lambda: bool(chosen), "the path chosen")
        assert chosen == ["/etc/motd"] and app.screen is app.main


async def test_a_bad_side_says_why_in_the_form_which_stays_open(tmp_path: Path) -> None:
    app = app_for(small_stack(tmp_path))
    chosen: list[str | None] = []
    nowhere = str(tmp_path / "nowhere")
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        form = await open_form(pilot, "lower:0", nowhere, chosen)
        for b, error in (
            (nowhere, f"B: {nowhere}: no such file or directory, and not a source (docker:NAME, podman:NAME, "
             "containerd:ID, ...)"),
            ("lower:9", "B: lower:9: no such layer (this stack has upper, lower:0)"),
            (f"{tmp_path}@upper", f"B: {tmp_path}@upper: {tmp_path} is a plain dir, not a stack: it has no layer "
             "upper"),
        ):  # fmt: skip
            form.query_one("#compare-b", Input).value = b
            await pilot.press("enter")
            await wait_until(pilot, lambda error=error: form.error == error, "the side's problem")
            assert shown(form, "#compare-error") == error and app.screen is form
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(chosen), "the compare left")
        assert chosen == [None] and app.screen is app.main


async def test_the_same_tree_on_both_sides_says_so(tmp_path: Path) -> None:
    app = app_for(small_stack(tmp_path))
    chosen: list[str | None] = []
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await open_form(pilot, "merged", "merged", chosen)
        await pilot.press("enter")
        screen = await compared(pilot)
        assert rows_of(screen) == [] and shown(screen, "#compare-summary") == "A 0   C 0   D 0   no differences"
        assert shown(screen, "#compare-detail").startswith("A and B are the same")
        await pilot.press("escape")
        await wait_until(pilot, lambda: bool(chosen), "the compare left")
        assert chosen == [None] and app.screen is app.main


async def test_hostile_names_and_sides_show_literally(tmp_path: Path) -> None:
    app = app_for(small_stack(tmp_path / "stack"))
    side = tmp_path / "[b]side"
    write(side / "[red]x", b"R\n")
    write(side / "[link=x]y", b"y\n")
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await open_form(pilot, "upper", str(side), [])
        await pilot.press("enter")
        screen = await compared(pilot)
        assert [r.plain for r in rows_of(screen)] == [
            "D /\\x1b[31mesc",
            "A /[link=x]y",
            "C /[red]x  content",
            "D /etc",
            "D /new",
        ]
        svg = app.export_screenshot()
        for literal in ("/[red]x", "/[link=x]y", "\\x1b[31mesc", "[b]side"):
            assert literal in svg.replace("&#160;", " "), literal
        assert "\x1b" not in svg


async def test_keys_are_answered_while_the_rows_stream_in_and_closing_stops_the_walk(tmp_path: Path) -> None:
    """Keys are posted as a terminal sends them and the waits are for the Messages they cause: Pilot's own waits
    are for an idle app, which it is not until the walk is over."""
    many = tmp_path / "many"
    many.mkdir()
    for i in range(40_000):
        os.mknod(many / f"f{i:05d}")  # (an empty regular file, made faster than by open)
    app = app_for(small_stack(tmp_path / "stack"))
    log = MessageLog()
    async with app.run_test(size=(120, 40), message_hook=log) as pilot:
        await settle(pilot)
        await open_form(pilot, "merged", str(many), [])
        app.post_message(events.Key("enter", None))
        await log.wait_for(CompareScreen.Batch, "the first rows")
        screen = app.screen
        assert isinstance(screen, CompareScreen) and screen.walker is not None
        while len(screen.rows) < 4:  # (the first batch is the first row: the next come in as the UI shows them)
            await log.wait_for(CompareScreen.Batch, "more rows")
        rows = screen.query_one("#compare-rows", OptionList)
        for i in range(4):
            if i:
                app.post_message(events.Key("down", None))
            while rows.highlighted != i:  # (each highlight is seen where it is posted and where it bubbles)
                await log.wait_for(OptionList.OptionHighlighted, f"row {i} highlighted")
        assert not screen.done and 0 < len(screen.rows) < 40_000  # answered while the walk goes on
        walker, held = screen.walker, weakref.ref(screen.comparison)
        log.seen.clear()  # (what the log saw holds the comparison too: the form's message)
        app.post_message(events.Key("escape", None))
        with contextlib.suppress(WorkerCancelled):
            await app.workers.wait_for_complete([walker])
        assert walker.state == WorkerState.CANCELLED
        # the trees and rows are freed once the screen is gone, though the heap was frozen with them in it
        await wait_until(pilot, lambda: held() is None, "the comparison to be freed")
        assert app.screen is app.main


async def test_what_could_not_be_compared_is_said_in_the_summary(tmp_path: Path) -> None:
    """A metacopy file in a userxattr stack: the kernel refuses its lookup, so its path is not compared."""
    low, up = tmp_path / "l0", tmp_path / "up"
    write(low / "meta", b"data\n")
    write(up / "meta", b"")
    os.setxattr(up / "meta", "user.overlay.metacopy", b"")
    app = app_for(Stack.build([str(low)], upper=str(up), xattr_ns="user"))
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(pilot)
        await open_form(pilot, "lower:0", "merged", [])
        await pilot.press("enter")
        screen = await compared(pilot)
        assert rows_of(screen) == []
        assert shown(screen, "#compare-summary") == (
            "A 0   C 0   D 0   no differences\nnot compared: /meta: in B: metacopy file, but the mount has metacopy "
            "off: the kernel refuses this lookup (EPERM)"
        )
        assert shown(screen, "#compare-detail") == "no difference found in what could be read"


async def test_equals_compares_the_lower_panes_layer_with_the_merged_view_and_enter_jumps(tmp_path: Path) -> None:
    """As a person does it: ``=`` in the explorer, the sides already filled (the Lower pane's layer, the merged view),
    Enter; then Enter on a difference puts the panes' cursor on it."""
    app = app_for(small_stack(tmp_path))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("equals_sign")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareSetup), "the form")
        assert [i.value for i in app.screen.query(Input)] == ["lower:0", "merged"]
        await pilot.press("enter")
        screen = await compared(pilot)
        plain = [r.plain for r in rows_of(screen)]
        assert "C /etc/motd  content" in plain  # (same size: read and compared)
        rows = screen.query_one("#compare-rows", OptionList)
        rows.highlighted = next(i for i, p in enumerate(plain) if p.startswith("C /etc/motd"))
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is app.main and app.main.panes.current_path == "/etc/motd"
        assert app.pane_tree("merged").cursor_path() == "/etc/motd"
