"""Pilot tests: press keys as a person would and check what the panes, details and screens hold.

The demo stack is made by a real overlay mount (as root; in a user namespace otherwise), so what the
panes must show is computed from the same layers by the core, never written down here by hand.
"""

from __future__ import annotations

import os

from tests.archives import docker_save_archive
from ufs_tui.core.demo import Demo
from ufs_tui.core.model import status as S
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.ui.app import make_app
from ufs_tui.ui.bindings import KEYS
from ufs_tui.ui.screens.help import HelpScreen, LegendScreen
from ufs_tui.ui.screens.search import SearchScreen

from .helpers import demo_app, goto, names, row, settle, text_of, wait_until


async def test_panes_show_merged_upper_and_lower(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        view = OverlayView(demo.stack)
        assert names(app.pane_tree("merged")) == [e.name for e in view.list_dir("/")]
        assert demo.stack.upper is not None
        upper_names = sorted(os.listdir(demo.stack.upper.path))
        assert names(app.pane_tree("upper")) == upper_names
        assert names(app.pane_tree("lower")) == sorted(os.listdir(demo.stack.lowers[0].path))
        # Every row carries its status glyph first; the merged 'f' is gone, the upper holds its whiteout.
        for e in view.list_dir("/"):
            assert row(app.pane_tree("merged"), "/" + e.name).startswith(S.STYLES[e.status].glyph + " ")
        assert "/f" not in app.pane_tree("merged").nodes
        assert row(app.pane_tree("upper"), "/f").startswith(S.STYLES[S.WHITEOUT].glyph + " f")
        assert row(app.pane_tree("lower"), "/f").startswith(S.STYLES[S.WHITED_OUT].glyph + " f")
        assert row(app.pane_tree("lower"), "/dir").startswith(S.STYLES[S.OPAQUE_HIDDEN].glyph + " dir/")


async def test_cursor_is_shared_and_absence_is_plain(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await goto(pilot, app.pane_tree("merged"), "/c")
        for pane in ("lower", "upper", "merged"):
            assert app.pane_tree(pane).cursor_path() == "/c", pane
        # 'g' is new: the lower pane says it is not there.
        await goto(pilot, app.pane_tree("merged"), "/g")
        assert app.pane_tree("upper").cursor_path() == "/g"
        where = text_of(app.query_one("#where-lower"))
        assert "absent from lower:0" in where
        # 'f' in the lower pane: the merged pane says plainly that it was whited out.
        await goto(pilot, app.pane_tree("lower"), "/f")
        assert app.main.panes.current_pane == "lower" and app.main.panes.current_path == "/f"
        assert "whiteout" in text_of(app.query_one("#where-merged"))
        assert app.pane_tree("upper").cursor_path() == "/f"


async def test_expanding_follows_across_panes(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await goto(pilot, app.pane_tree("merged"), "/etc/config")
        for pane in ("lower", "upper", "merged"):
            t = app.pane_tree(pane)
            assert t.nodes["/etc"].is_expanded, pane
            assert t.cursor_path() == "/etc/config", pane
        view = OverlayView(demo.stack)
        assert names(app.pane_tree("merged"), "/etc") == [e.name for e in view.list_dir("/etc")]
        # collapsing follows too
        await pilot.press("left", "left")
        await settle(pilot)
        assert not app.pane_tree("upper").nodes["/etc"].is_expanded


async def test_layer_switch(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("right_square_bracket")
        await settle(pilot)
        assert app.lower_layer == demo.stack.lowers[1]
        lower = app.pane_tree("lower")
        assert names(lower) == sorted(os.listdir(demo.stack.lowers[1].path))
        assert row(lower, "/gone.txt").startswith(S.STYLES[S.WHITED_OUT].glyph)  # whited out by lower:0
        assert row(lower, "/shadow.txt").startswith(S.STYLES[S.SHADOWED].glyph)
        assert "lower:1" in str(app.query_one("#pane-lower").border_title)
        # choosing in the layer list does the same
        await pilot.press("4", "home", "down", "enter")
        await settle(pilot)
        assert app.lower_layer == demo.stack.lowers[0]


async def test_list_keys_layer_ends_and_reload_say_what_they_do(demo: Demo) -> None:
    """j/k/g/G move in every list (the layer list here, as in the panes); [ and ] walk the lowers only and
    stop at the ends, saying so (the upper has its own pane); r says that it reloaded."""
    from textual.widgets import OptionList

    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        layers = app.query_one("#layers", OptionList)
        await pilot.press("4", "home", "j")
        assert layers.highlighted == 1
        await pilot.press("k")
        assert layers.highlighted == 0
        await pilot.press("G")
        assert layers.highlighted == layers.option_count - 1
        await pilot.press("g")
        assert layers.highlighted == 0
        assert app.lower_layer == demo.stack.lowers[0]
        await pilot.press("left_square_bracket")  # above lower:0 is the upper: not in the Lower pane
        await settle(pilot)
        assert app.lower_layer == demo.stack.lowers[0]
        assert "lower:0 is the topmost lower" in " ".join(str(n.message) for n in app._notifications)
        for _ in range(len(demo.stack.lowers) + 1):
            await pilot.press("right_square_bracket")
        await settle(pilot)
        assert app.lower_layer == demo.stack.lowers[-1]
        assert "is the bottom layer" in " ".join(str(n.message) for n in app._notifications)
        await pilot.press("r")
        await settle(pilot)
        assert "reloaded" in " ".join(str(n.message) for n in app._notifications)


async def test_the_demos_notes_go_when_another_stack_is_shown(demo: Demo, tmp_path: os.PathLike[str]) -> None:
    """The status bar's notes say how the demo was made: another stack (o, the editor, a commit) drops them."""
    app = make_app(demo.stack, notes=[demo.how], live=False)  # as 'ufs-tui demo' makes it
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        assert demo.how in text_of(app.query_one("#status"), width=400)
        app.set_stack(Stack.build([demo.stack.lowers[-1].path]))
        await settle(pilot)
        status = text_of(app.query_one("#status"), width=400)
        assert demo.how not in status, status


async def test_the_layer_counts_fit_at_80_columns(demo: Demo) -> None:
    """At 80x24 the layer list is narrow: each layer's counts are shown whole (the size goes first)."""
    from ufs_tui.ui.widgets.layers import LayerList

    from .helpers import settle_counts

    app = demo_app(demo)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle_counts(pilot)
        ll = app.query_one(LayerList)
        for layer in demo.stack.layers:
            first = ll.prompt(layer).plain.split("\n")[0]
            assert not first.endswith("…") and layer.name in first, first
            c = ll.counts[layer.name]
            assert (f"+{c.new}" in first) == bool(c.new) and (f"x{c.whiteouts}" in first) == bool(c.whiteouts)


async def test_changes_only_and_status_filter(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("c")
        await settle(pilot)
        merged = app.pane_tree("merged")
        rows = {n: merged.nodes["/" + n].data.status for n in names(merged)}
        assert S.LOWER not in rows.values()
        assert rows["f"] == S.WHITED_OUT  # deletions are listed, like docker diff's D
        assert rows["c"] == S.COPIED_UP and rows["g"] == S.NEW
        assert "gone.txt" not in rows  # deleted by a whiteout inside lower:0: part of the image, not a change
        await pilot.press("c")
        await settle(pilot)
        assert names(merged) == [e.name for e in OverlayView(demo.stack).list_dir("/")]
        # status filter: only 'new' (dirs stay so everything stays reachable)
        await pilot.press("s")
        await pilot.press("a")  # all -> none
        await pilot.press("down", "space", "enter")  # the second status is 'new'
        await settle(pilot)
        assert app.main.flt.statuses == frozenset({S.NEW})
        for n in names(merged):
            item = merged.nodes["/" + n].data
            assert item.kind == "dir" or item.status == S.NEW, item
        assert "b" in names(merged) and "c" not in names(merged)
        await pilot.press("x")
        await settle(pilot)
        assert app.main.flt.statuses is None and "c" in names(merged)


async def test_search_jumps_to_result(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("slash")
        assert isinstance(app.screen, SearchScreen)
        await pilot.press(*"confi")
        screen = app.screen
        await wait_until(pilot, lambda: screen.done, "search results")
        assert screen.results == ["/etc/config"]
        await pilot.press("enter")
        await settle(pilot)
        assert app.main.panes.current_path == "/etc/config"
        assert app.pane_tree("merged").cursor_path() == "/etc/config"
        assert app.pane_tree("upper").cursor_path() == "/etc/config"
        # a glob
        await pilot.press("slash", *"*.txt")
        screen = app.screen
        await wait_until(pilot, lambda: screen.done, "glob results")
        view = OverlayView(demo.stack)
        expected = sorted(p for p, e in view.walk() if e.name.endswith(".txt"))
        assert sorted(screen.results) == expected
        await pilot.press("escape")
        assert not isinstance(app.screen, SearchScreen)


async def test_details_versions_and_diff(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await goto(pilot, app.pane_tree("merged"), "/etc/config")
        d = app.main.details
        assert d is not None and d.path == "/etc/config"
        fates = {v.layer: v.fate for v in d.versions}
        assert fates == {"upper": S.VISIBLE, "lower:0": S.F_SHADOWED}
        assert "+debug = true" in d.diff and "--- lower:0/etc/config" in d.diff
        body = text_of(app.query_one("#details-body"))
        assert "Diff lower:0 → upper" in body
        await pilot.press("d")
        await settle(pilot)  # the details are rendered in their worker
        body = text_of(app.query_one("#details-body"))
        assert "Diff" not in body and "colour = auto" in body
        await pilot.press("d")
        await settle(pilot)
        assert "Diff lower:0 → upper" in text_of(app.query_one("#details-body"))
        # binary content is a hex dump
        await goto(pilot, app.pane_tree("lower"), "/bin/tool")
        assert app.main.details is not None and app.main.details.content is not None
        assert app.main.details.content.kind == "binary"
        assert "7f 45 4c 46" in text_of(app.query_one("#details-body"))


async def test_help_legend_palette_and_quit(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(pilot)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        text = text_of(app.screen.query_one("#info Static"))
        for k in KEYS:
            assert k.description in text, k
        await pilot.press("escape")
        await pilot.press("l")
        assert isinstance(app.screen, LegendScreen)
        text = text_of(app.screen.query_one("#info Static"))
        for st in S.STYLES.values():
            assert st.status in text
        await pilot.press("escape")
        # the command palette finds the main actions
        await pilot.press("ctrl+p")
        await pilot.press(*"changes only")
        await pilot.pause()

        def palette_has_hit() -> bool:
            lists = app.screen.query("CommandList")
            if not lists:
                return False
            cl = lists.first()
            prompts = [str(getattr(cl.get_option_at_index(i).prompt, "plain", "")) for i in range(cl.option_count)]
            prompts += [str(cl.get_option_at_index(i).prompt) for i in range(cl.option_count)]
            return any("Changes only" in p for p in prompts)

        await wait_until(pilot, palette_has_hit, "palette hit")
        await pilot.press("enter")
        await settle(pilot)
        assert app.main.flt.changes_only
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0


async def test_hostile_names_and_fifo(tmp_layers: str) -> None:
    low, up = os.path.join(tmp_layers, "l"), os.path.join(tmp_layers, "u")
    os.makedirs(low)
    os.makedirs(up)
    hostile = "[red]x\x1b[31m\n"
    with open(os.path.join(low, hostile), "w") as f:
        f.write("text\x1b[2J\n")
    os.mkfifo(os.path.join(up, "pipe"))
    with open(os.fsencode(os.path.join(up, "bad")) + b"\xff", "w") as f:
        f.write("x")
    stack = Stack.build([low], upper=up, xattr_ns="user")
    app = make_app(stack, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        merged = app.pane_tree("merged")
        assert row(merged, "/" + hostile) == "  [red]x\\x1b[31m\\n  9 B"  # (its size: 9 bytes)
        assert "bad\\xff" in row(merged, "/bad\udcff")
        await goto(pilot, merged, "/pipe")  # a FIFO: described, never opened (opening would block)
        assert app.main.details is not None and app.main.details.content is not None
        assert app.main.details.content.kind == "none"
        await goto(pilot, merged, "/" + hostile)
        body = text_of(app.query_one("#details-body"))
        assert "\x1b" not in body and "\\x1b[2J" in body


async def test_big_dir_loads_in_chunks(tmp_layers: str) -> None:
    low = os.path.join(tmp_layers, "l")
    os.makedirs(os.path.join(low, "big"))
    n = 3000
    for i in range(n):
        open(os.path.join(low, "big", f"f{i:05d}"), "w").close()
    stack = Stack.build([low, low + "2"] if False else [low], xattr_ns="user")
    app = make_app(stack, live=False)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        merged = app.pane_tree("merged")
        turns = 0
        await pilot.press("right")
        while "/big" not in merged.loaded:
            turns += 1
            await pilot.pause()
            assert turns < 10000
        await settle(pilot)
        assert len(merged.nodes["/big"].children) == n
        await pilot.press("down", "down", "down")
        assert merged.cursor_path() == "/big/f00002"
        await settle(pilot)  # the other panes follow once the cursor rests
        assert app.pane_tree("lower").cursor_path() == "/big/f00002"


async def test_cursor_follows_a_redirected_dir_both_ways(root_mount: None, demo: Demo) -> None:
    """docs/ was renamed to manual/ (a redirect): the merged /manual/readme.md is lower:0's /docs/readme.md,
    and the Lower pane's /docs/readme.md is the merged /manual/readme.md."""
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        merged, lower = app.pane_tree("merged"), app.pane_tree("lower")
        await goto(pilot, merged, "/manual/readme.md")
        await settle(pilot)
        assert lower.cursor_path() == "/docs/readme.md"
        assert "absent" not in text_of(app.query_one("#where-lower"))
        # the Lower pane's row says the file is visible, and where; its renamed dir says where its contents are
        readme = lower.nodes["/docs/readme.md"].data
        assert readme.status == S.LOWER and readme.note == "shown at /manual/readme.md"
        assert "its contents show at /manual" in lower.nodes["/docs"].data.note
        await goto(pilot, merged, "/etc")
        await goto(pilot, lower, "/docs/readme.md")
        await settle(pilot)
        assert merged.cursor_path() == "/manual/readme.md"
        assert "absent" not in text_of(app.query_one("#where-merged"))


async def test_layer_counts_of_an_image_archive(tmp_layers: str) -> None:
    """Layers read in place from an archive are counted too (they cannot be rebuilt from paths in a child)."""
    from ufs_tui.core.sources import open_source

    from .helpers import settle_counts

    archive = os.path.join(tmp_layers, "img.tar")
    docker_save_archive(archive)
    stack = open_source(archive)
    app = make_app(stack, live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle_counts(pilot)
        from ufs_tui.ui.widgets.layers import LayerList

        counts = app.query_one(LayerList).counts
        top, bottom = counts["lower:0"], counts["lower:1"]
        assert (top.new, top.copied, top.whiteouts, top.size) == (1, 1, 1, len(b"a2 longer\n") + len(b"c\n"))
        assert (bottom.new, bottom.copied, bottom.whiteouts) == (3, 0, 0)
        # the Lower pane shows lower:0's own entries, its whiteout included, read from the archive in place
        lower = app.pane_tree("lower")
        assert {n: lower.nodes["/" + n].data.status for n in names(lower)} == {
            "a": S.LOWER,  # visible: the merged view shows this layer's copy
            "b": S.WHITEOUT,
            "c": S.LOWER,
        }


async def test_an_image_archive_shows_contents_and_is_not_live(tmp_layers: str) -> None:
    """A file of an archive shows its content and its diff against the layer below, read from the tar in
    place; an archive does not change, so it is not watched and no layer is "missing"."""
    from ufs_tui.core.sources import open_source

    archive = os.path.join(tmp_layers, "img.tar")
    docker_save_archive(archive)
    app = make_app(open_source(archive))  # live by default, as the CLI makes it
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await goto(pilot, app.pane_tree("merged"), "/a")
        body = text_of(app.query_one("#details-body"), width=300)
        assert "Diff lower:1 → lower:0" in body and "+a2 longer" in body
        await pilot.press("d")
        await settle(pilot)
        body = text_of(app.query_one("#details-body"), width=300)
        assert "a2 longer" in body and "Not a directory" not in body
        status = text_of(app.query_one("#status"), width=300)
        assert "not watching" in status and "live" not in status and "missing" not in status, status
        # changes only: what the top layer changed (as diff prints it), not an empty pane
        await pilot.press("c")
        await settle(pilot)
        assert names(app.pane_tree("merged")) == ["a", "b", "c"]
        assert app.pane_tree("merged").nodes["/b"].data.status == S.WHITED_OUT
        assert "changes only (lower:0's)" in text_of(app.query_one("#status"), width=300)


async def test_a_pane_without_the_path_puts_its_cursor_where_the_name_would_be(demo: Demo) -> None:
    """The Lower pane on /f (whited out above): the Merged pane, which has no /f, rests on the row /f would
    follow (/etc), wherever its cursor was before: not on a row the keys happened to pass."""
    app = demo_app(demo)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        merged = app.pane_tree("merged")
        await goto(pilot, app.pane_tree("lower"), "/f")
        assert merged.cursor_path() == "/etc"
        for start in ("/a", "/shadow.txt"):  # wherever it was
            await goto(pilot, merged, start)
            merged.reveal("/f")
            await settle(pilot)
            assert merged.cursor_path() == "/etc", start
