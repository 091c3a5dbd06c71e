"""The analysis screens (issue 16): the waste view (a worker, largest first, grouped by cause with ``g``, Enter
jumps) and the search of every layer's copies (ctrl+l)."""

from __future__ import annotations

import os
from pathlib import Path

from textual.widgets import OptionList

from ufs_tui.core.demo import Demo
from ufs_tui.core.model import status as S
from ufs_tui.core.reports.waste import DELETED, OPAQUE_HIDDEN, find_waste
from ufs_tui.ui.screens.confirm import ConfirmScreen, MessageScreen, PromptScreen
from ufs_tui.ui.screens.search import SearchScreen
from ufs_tui.ui.screens.waste import WasteScreen

from .helpers import demo_app, goto, names, settle, wait_until


async def test_waste_view_lists_grouped_and_jumps(demo: Demo) -> None:
    app = demo_app(demo)
    chosen: list[str | None] = []
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        screen = WasteScreen(demo.stack)
        app.push_screen(screen, chosen.append)
        await wait_until(pilot, lambda: screen.done, "the waste worker")
        assert screen.report is not None
        expected = find_waste(demo.stack)
        assert [(w.path, w.kind, w.size) for w in screen.report.rows] == [
            (w.path, w.kind, w.size) for w in expected.rows
        ]
        kinds = {w.path: w.kind for w in expected.rows}
        assert kinds["/gone.txt"] == DELETED and kinds["/dir"] == OPAQUE_HIDDEN  # what the demo's mount did
        rows = screen.query_one("#waste-rows", OptionList)
        assert rows.option_count == len(expected.rows) and screen.paths == [w.path for w in expected.rows]
        await pilot.press("g")
        headings = [i for i, p in enumerate(screen.paths) if p is None]
        assert headings and screen.paths[0] is None and rows.highlighted == 1
        assert sorted(p for p in screen.paths if p) == sorted(w.path for w in expected.rows)
        await pilot.press("enter")
        await settle(pilot)
        assert chosen == [screen.paths[1]] and not isinstance(app.screen, WasteScreen)


async def test_search_every_layer_finds_what_the_merged_tree_hides(demo: Demo) -> None:
    """ctrl+l in the search: the demo's gone.txt, deleted by a whiteout in lower:0, is still in lower:1."""
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("slash", *"gone")
        screen = app.screen
        assert isinstance(screen, SearchScreen)
        await wait_until(pilot, lambda: screen.done, "merged results")
        assert screen.results == []
        await pilot.press("ctrl+l")
        await wait_until(pilot, lambda: screen.done, "every layer's results")
        assert screen.results == ["/gone.txt"] and screen.every_layer
        line = str(screen.query_one("#results", OptionList).get_option_at_index(0).prompt)
        assert line == "/gone.txt  lower:1, whited-out by lower:0"


async def test_layer_views_of_the_lower_pane(demo: Demo) -> None:
    """v cycles the Lower pane (lower:0) between the layer as stored (by what the upper does to it), its own
    changes over lower:1 (dive's current layer) and the merged view of lower:0 and lower:1 (aggregated)."""
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        lower = app.pane_tree("lower")

        def status(name: str) -> str:
            return str(lower.nodes["/" + name].data.status)

        assert (status("a"), status("shadow.txt"), status("gone.txt")) == (S.SHADOWED, S.LOWER, S.WHITEOUT)
        assert "base" not in names(lower)
        await pilot.press("v")
        await settle(pilot)
        assert app.main.flt.layer_view == "changes" and "· changes" in str(app.query_one("#pane-lower").border_title)
        # a is new in lower:0 (lower:1 has none); shadow.txt replaces lower:1's copy; gone.txt deletes lower:1's
        assert (status("a"), status("shadow.txt"), status("gone.txt")) == (S.NEW, S.COPIED_UP, S.WHITEOUT)
        await pilot.press("v")
        await settle(pilot)
        assert app.main.flt.layer_view == "aggregated"
        # everything up to lower:0, what lower:0 changed marked as in its changes view
        assert "gone.txt" not in names(lower) and (status("base"), status("a")) == (S.LOWER, S.NEW)
        await pilot.press("v")
        await settle(pilot)
        assert app.main.flt.layer_view == "fate" and status("a") == S.SHADOWED


async def test_extract_a_deleted_version_from_its_layer(demo: Demo, tmp_path: Path) -> None:
    """E in the Lower pane on lower:1's gone.txt (deleted by a whiteout in lower:0): asked where, shown what it
    will write, asked again, written with the layer's bytes; a destination inside the stack is refused."""
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("right_square_bracket")  # the Lower pane shows lower:1
        await settle(pilot)
        await goto(pilot, app.pane_tree("lower"), "/gone.txt")
        dest = tmp_path / "saved.txt"
        await pilot.press("E")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), "the destination prompt")
        await pilot.press(*str(dest), "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "what it will write")
        assert not dest.exists()  # nothing before the answer
        await pilot.press("y")
        await wait_until(pilot, dest.exists, "the extracted file")
        assert dest.read_bytes() == (Path(demo.stack.lowers[1].path) / "gone.txt").read_bytes()
        await settle(pilot)
        await pilot.press("E")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), "the destination prompt")
        await pilot.press(*demo.stack.lowers[0].path, "/x", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, MessageScreen), "the refusal")
        assert not os.path.lexists(os.path.join(demo.stack.lowers[0].path, "x"))


async def test_the_waste_view_lists_the_largest_and_says_how_many_more(tmp_layers: str) -> None:
    """A stack that wastes in 620 places: the view lists the largest MAX_ROWS (a list of tens of thousands would
    hold the event loop for seconds) and one line saying how many smaller ones there are, and where to see them."""
    from ufs_tui.core.model.stack import Stack
    from ufs_tui.ui.app import make_app
    from ufs_tui.ui.screens.waste import MAX_ROWS

    low, up = Path(tmp_layers, "low"), Path(tmp_layers, "up")
    low.mkdir()
    up.mkdir()
    for i in range(620):
        (low / f"f{i:03d}").write_bytes(b"x" * (i + 1))
        os.mknod(up / f"f{i:03d}", 0o600 | 0o020000, 0)  # deleted in the upper: all 620 wasted
    app = make_app(Stack.build([str(low)], upper=str(up)), live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await pilot.press("w")
        await wait_until(pilot, lambda: isinstance(app.screen, WasteScreen) and app.screen.done, "the waste view")
        screen = app.screen
        assert isinstance(screen, WasteScreen)
        assert screen.paths[:2] == ["/f619", "/f618"] and len([p for p in screen.paths if p]) == MAX_ROWS
        rows = screen.query_one("#waste-rows", OptionList)
        last = rows.get_option_at_index(rows.option_count - 1)
        assert "… and 120 smaller ones" in str(last.prompt) and last.disabled
