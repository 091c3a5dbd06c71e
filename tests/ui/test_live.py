"""Live updates against a real overlay mount: changes show up with the right status, without restarting."""

from __future__ import annotations

import os

from tests.overlay import mounted
from ufs_tui.core import status as S
from ufs_tui.core.stack import Stack
from ufs_tui.ui.app import make_app

from .helpers import goto, settle, wait_until


async def test_live_write_in_upper_and_delete_through_mount(root_mount: None, tmp_layers: str) -> None:
    low, up, work, mnt = (os.path.join(tmp_layers, n) for n in ("lower", "upper", "work", "merged"))
    for d in (low, up, work, mnt):
        os.makedirs(d)
    for name in ("a", "b", "keep"):
        with open(os.path.join(low, name), "w") as f:
            f.write(name + "\n")
    stack = Stack.build([low], upper=up, work=work)
    with mounted([low], up, work, mnt):
        app = make_app(stack, live=True, mount_point=mnt)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot)
            await wait_until(pilot, lambda: app.watch_ready, "the watcher to start")
            merged, upper, lower = app.pane_tree("merged"), app.pane_tree("upper"), app.pane_tree("lower")
            await goto(pilot, merged, "/keep")
            # 1. a file written straight into the upper layer
            with open(os.path.join(up, "fresh"), "w") as f:
                f.write("new\n")
            await wait_until(pilot, lambda: "/fresh" in merged.nodes and "/fresh" in upper.nodes, "/fresh to appear")
            assert merged.nodes["/fresh"].data.status == S.NEW
            assert merged.nodes["/fresh"].label.plain.startswith(S.STYLES[S.NEW].glyph + " fresh")
            # 2. a lower file deleted through the mount: the kernel leaves a whiteout in the upper
            os.remove(os.path.join(mnt, "a"))
            await wait_until(pilot, lambda: "/a" not in merged.nodes, "/a to leave the merged pane")
            await wait_until(pilot, lambda: "/a" in upper.nodes, "the whiteout to show in the upper pane")
            assert upper.nodes["/a"].data.status == S.WHITEOUT
            await wait_until(
                pilot, lambda: lower.nodes["/a"].data.status == S.WHITED_OUT, "the lower's /a to show as whited out"
            )
            assert lower.nodes["/a"].label.plain.startswith(S.STYLES[S.WHITED_OUT].glyph + " a")
            # 3. the cursor stayed where it was, and the status line says a change came
            assert merged.cursor_path() == "/keep"
            assert app.last_change is not None and app.change_events > 0
            assert "last change" in str(app.query_one("#status").render())
            # 4. a write through the mount copies up: the merged row turns copied-up
            with open(os.path.join(mnt, "b"), "a") as f:
                f.write("more\n")
            await wait_until(
                pilot,
                lambda: "/b" in merged.nodes and merged.nodes["/b"].data.status == S.COPIED_UP,
                "/b to show as copied up",
            )
            await settle(pilot)


async def test_layer_root_that_vanishes_and_returns(tmp_layers: str) -> None:
    low, up = os.path.join(tmp_layers, "lower"), os.path.join(tmp_layers, "upper")
    os.makedirs(low)
    os.makedirs(up)
    with open(os.path.join(up, "u"), "w") as f:
        f.write("u\n")
    with open(os.path.join(low, "l"), "w") as f:
        f.write("l\n")
    stack = Stack.build([low], upper=up, xattr_ns="user")
    app = make_app(stack, live=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.watch_ready, "the watcher to start")
        merged = app.pane_tree("merged")
        assert "/u" in merged.nodes
        moved = up + ".away"
        os.rename(up, moved)
        await wait_until(pilot, lambda: app.missing == [up], "the missing upper to be noticed")
        await wait_until(pilot, lambda: "/u" not in merged.nodes, "the upper's file to go")
        assert "missing" in str(app.query_one("#status").render())
        os.rename(moved, up)
        await wait_until(pilot, lambda: app.missing == [] and "/u" in merged.nodes, "the upper to come back")
        await settle(pilot)


async def test_a_name_that_is_not_utf8_does_not_stop_live_updates(tmp_layers: str) -> None:
    """watchfiles cannot decode such a path and its watcher dies: the app restarts it, re-reads, carries on."""
    low, up = os.path.join(tmp_layers, "lower"), os.path.join(tmp_layers, "upper")
    os.makedirs(low)
    os.makedirs(up)
    stack = Stack.build([low], upper=up, xattr_ns="user")
    app = make_app(stack, live=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.watch_ready, "the watcher to start")
        merged = app.pane_tree("merged")
        with open(os.fsencode(up) + b"/bad\xff", "w") as f:
            f.write("x\n")
        bad = os.fsdecode(b"/bad\xff")
        await wait_until(pilot, lambda: bad in merged.nodes, "the undecodable name to show")
        with open(os.path.join(up, "after"), "w") as f:
            f.write("y\n")
        await wait_until(pilot, lambda: "/after" in merged.nodes, "a later file to show: still live")
        assert app.watch_restarts >= 1  # it did die on the name, and was started again
        os.remove(os.fsencode(up) + b"/bad\xff")
        await wait_until(pilot, lambda: bad not in merged.nodes, "the undecodable name to go")
        await settle(pilot)
