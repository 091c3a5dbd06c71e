"""Live updates against a real overlay mount: changes show up with the right status, without restarting."""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import AsyncIterator

from textual.pilot import Pilot

from tests.overlay import mounted
from ufs_tui.core.model import status as S
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.watch import Changes
from ufs_tui.ui.app import UfsApp, make_app
from ufs_tui.ui.live import LayersChanged, Relisted
from ufs_tui.ui.pilot import MessageLog
from ufs_tui.ui.widgets.pane import PaneTree

from .helpers import goto, names, settle, wait_until


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
            assert app.main.live.last_change is not None and app.main.live.change_events > 0
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


@contextlib.asynccontextmanager
async def live_app(stack: Stack) -> AsyncIterator[tuple[UfsApp, Pilot[int], PaneTree]]:
    """The app on ``stack`` with live updates, once its watcher runs: (app, pilot, the Merged pane)."""
    app = make_app(stack, live=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.watch_ready, "the watcher to start")
        yield app, pilot, app.pane_tree("merged")


async def test_layer_root_that_vanishes_and_returns(tmp_layers: str) -> None:
    low, up = os.path.join(tmp_layers, "lower"), os.path.join(tmp_layers, "upper")
    os.makedirs(low)
    os.makedirs(up)
    with open(os.path.join(up, "u"), "w") as f:
        f.write("u\n")
    with open(os.path.join(low, "l"), "w") as f:
        f.write("l\n")
    stack = Stack.build([low], upper=up, xattr_ns="user")
    async with live_app(stack) as (app, pilot, merged):
        assert "/u" in merged.nodes
        moved = up + ".away"
        os.rename(up, moved)
        await wait_until(pilot, lambda: app.main.live.missing == [up], "the missing upper to be noticed")
        await wait_until(pilot, lambda: "/u" not in merged.nodes, "the upper's file to go")
        assert "missing" in str(app.query_one("#status").render())
        os.rename(moved, up)
        await wait_until(pilot, lambda: app.main.live.missing == [] and "/u" in merged.nodes, "the upper to come back")
        await settle(pilot)


async def test_a_name_that_is_not_utf8_does_not_stop_live_updates(tmp_layers: str) -> None:
    """watchfiles cannot decode such a path and its watcher dies: the app restarts it, re-reads, carries on."""
    low, up = os.path.join(tmp_layers, "lower"), os.path.join(tmp_layers, "upper")
    os.makedirs(low)
    os.makedirs(up)
    stack = Stack.build([low], upper=up, xattr_ns="user")
    async with live_app(stack) as (app, pilot, merged):
        with open(os.fsencode(up) + b"/bad\xff", "w") as f:
            f.write("x\n")
        bad = os.fsdecode(b"/bad\xff")
        await wait_until(pilot, lambda: bad in merged.nodes, "the undecodable name to show")
        with open(os.path.join(up, "after"), "w") as f:
            f.write("y\n")
        await wait_until(pilot, lambda: "/after" in merged.nodes, "a later file to show: still live")
        assert app.main.live.restarts >= 1  # it did die on the name, and was started again
        os.remove(os.fsencode(up) + b"/bad\xff")
        await wait_until(pilot, lambda: bad not in merged.nodes, "the undecodable name to go")
        await settle(pilot)


async def test_a_burst_of_mixed_changes_in_a_big_dir_is_spliced_row_for_row(tmp_layers: str) -> None:
    """Inserts before, between and after existing rows, removals (the cursor's row among them), a file turned
    into a dir: the Merged pane's rows end up exactly as a fresh listing, and the cursor takes the next row."""
    low, up = os.path.join(tmp_layers, "lower"), os.path.join(tmp_layers, "upper")
    os.makedirs(os.path.join(low, "big"))
    os.makedirs(os.path.join(up, "big"))
    for i in range(0, 3000, 2):
        with open(os.path.join(low, "big", f"n{i:05d}"), "w") as f:
            f.write("l\n")
    stack = Stack.build([low], upper=up, xattr_ns="user")
    async with live_app(stack) as (app, pilot, merged):
        await goto(pilot, merged, "/big/n00010")
        await settle(pilot)
        # the burst, through the upper as a container's writes would land there (user.* markers: userxattr)
        for i in range(1, 3001, 2):  # new names between the old ones, and past them
            with open(os.path.join(up, "big", f"n{i:05d}"), "w") as f:
                f.write("u\n")
        for name in ("a-first", "zz-last"):
            with open(os.path.join(up, "big", name), "w") as f:
                f.write("u\n")
        for i in (0, 10, 2998):  # deletions: an xattr whiteout each (the cursor's row among them)
            wh = os.path.join(up, "big", f"n{i:05d}")
            with open(wh, "w"):
                pass
            os.setxattr(wh, "user.overlay.whiteout", b"")
        os.makedirs(os.path.join(up, "big", "n00500"))  # a file becomes a dir (opaque over nothing: replaced)
        want = [e.name for e in OverlayView(stack).list_dir("/big")]
        assert len(want) == 3000 - 3 + 2 and "n00010" not in want and "n00500" in want
        await wait_until(pilot, lambda: names(merged, "/big") == want, "the burst to be spliced in", timeout=60)
        assert merged.nodes["/big/n00500"].data.kind == "dir"
        assert all(merged.nodes[f"/big/{n}"].data.name == n for n in want)
        assert "/big/n00010" not in merged.nodes
        cursor = merged.cursor_node  # on the row now in the gone row's place (whichever batch brought it)
        assert cursor is not None and cursor.data is not None and cursor.data.path in ("/big/n00011", "/big/n00012")
        await settle(pilot)


async def test_a_burst_of_writes_arrives_as_one_message_and_one_relisting(tmp_layers: str) -> None:
    """Writes the watcher reports one batch at a time while the event loop is busy: their LayersChanged
    messages wait in the screen's queue and coalesce (can_replace) into one, which one relisting worker
    answers with one Relisted; the panes then show every file. Waits are on the Messages, not polling."""
    low, up = os.path.join(tmp_layers, "lower"), os.path.join(tmp_layers, "upper")
    os.makedirs(low)
    os.makedirs(up)
    stack = Stack.build([low], upper=up, xattr_ns="user")
    log = MessageLog()
    app = make_app(stack, live=True)
    async with app.run_test(size=(120, 40), message_hook=log) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.watch_ready, "the watcher to start")
        await settle(pilot)
        await wait_until(pilot, lambda: not app.main.live.recount_due, "the first recount (its timer posts too)")
        watcher = app.main.live.watcher
        assert watcher is not None
        reported = threading.Semaphore(0)
        post_changes = watcher.on_changes

        def counted(changes: Changes) -> None:
            post_changes(changes)  # the LayersChanged is posted: it waits in the queue, the loop is held below
            reported.release()

        watcher.on_changes = counted
        before, relists_before = len(log.of(LayersChanged)), len(log.of(Relisted))
        names = [f"burst-{i}" for i in range(5)]
        for name in names:  # one batch each: the next file only once the watcher has posted the last one
            with open(os.path.join(up, name), "w") as f:
                f.write("b\n")
            assert reported.acquire(timeout=20), f"the watcher did not report {name}"  # holds the event loop
        relisted = await log.wait_for(Relisted, "the relisting")
        got = log.of(LayersChanged)[before:]
        assert len(got) == 1, f"{len(got)} LayersChanged handled for one burst"
        changes = got[0].changes  # type: ignore[attr-defined]
        assert set(names) <= (changes.dirs.get("/") or set()) and changes.events >= len(names)
        assert isinstance(relisted, Relisted) and "/" in relisted.touched
        merged, upper = app.pane_tree("merged"), app.pane_tree("upper")
        for name in names:
            assert f"/{name}" in merged.nodes and f"/{name}" in upper.nodes, name
            assert merged.nodes[f"/{name}"].data.status == S.NEW
        await settle(pilot)
        assert log.of(Relisted)[relists_before:] == [relisted]  # one relisting for the burst
        assert len(log.of(LayersChanged)) == before + 1
