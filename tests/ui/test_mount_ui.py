"""Mounting from the UI with keys, on real mounts: m mounts (kernel as root, a user namespace, fuse-overlayfs),
the Merged pane reads the mount and marks where the kernel and the model disagree (nowhere), writes through the
mount show live in Upper and Merged, u unmounts; C commits and S squashes (compared with the kernel); SIGTERM and
SIGHUP to the real program leave no mount behind, also for an unprivileged user (user namespace), and so does a
terminal that goes away without a SIGHUP. Options and backend edited while mounted reach the kernel; an edited
stack that would not mount, or a busy mount, leaves the mount as it is and says so.
"""

from __future__ import annotations

import fcntl
import os
import select
import shlex
import shutil
import signal
import struct
import subprocess
import sys
import termios
import time
import uuid
from collections.abc import Callable, Iterator

import pytest
from textual.pilot import Pilot
from textual.widgets import Input

from tests import nobody
from tests.conftest import need
from tests.mount.helpers import ROOT, make_tree, public_tmpdir, rmtree, run_sh, snapshot
from tests.overlay import kernel_tree, model_tree, mounted
from ufs_tui.core.model import status as S
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.mount_table import fstype_at, mount_points
from ufs_tui.core.mounting.record import recorded
from ufs_tui.core.mounting.unmount import unmount_mine
from ufs_tui.core.mounting.userns import _wait_gone
from ufs_tui.core.panes import KERNEL_DIFFERS
from ufs_tui.core.sources.mountinfo import read_mountinfo
from ufs_tui.ui.app import UfsApp, make_app
from ufs_tui.ui.screens.confirm import ConfirmScreen, MessageScreen, PromptScreen, SquashScreen
from ufs_tui.ui.screens.stack import StackEditor

from .helpers import goto, names, row, settle, text_of, wait_until


@pytest.fixture
def d(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    d = public_tmpdir()
    make_tree(d, {"l0/a": "a0\n", "l0/sub/x": "x\n", "l1/b": "b1\n", "l1/sub/y": "y\n", "u/": None, "w/": None})
    os.mkdir(f"{d}/rt")
    monkeypatch.setenv("UFS_TUI_RUNTIME_DIR", f"{d}/rt")
    yield d
    unmount_mine(f"{d}/rt")  # whatever a failed test left behind
    for t in sorted(mount_points(), reverse=True):
        if t.startswith(d + "/"):
            subprocess.run(["umount", "-l", t], capture_output=True)
    rmtree(d)


def stack_of(d: str) -> Stack:
    return Stack.build([f"{d}/l0", f"{d}/l1"], f"{d}/u", f"{d}/w")


async def press_mount(pilot: Pilot[int], app: UfsApp, target: str = "") -> None:
    """m, then Enter in the target prompt (empty: a fresh dir in the runtime dir); wait for the worker."""
    await pilot.press("m")
    await on_screen(pilot, app, PromptScreen)
    if target:
        await pilot.press(*target)
    await pilot.press("enter")
    await wait_until(
        pilot,
        lambda: isinstance(app.screen, (ConfirmScreen, MessageScreen)) or app.mount_busy or app.handle is not None,
        "the prompt's answer to be taken",
    )
    if isinstance(app.screen, ConfirmScreen):
        return  # the caller answers
    await wait_until(pilot, lambda: not app.mount_busy, "the mount worker")
    await settle(pilot)


async def on_screen(pilot: Pilot[int], app: UfsApp, cls: type) -> None:
    await wait_until(pilot, lambda: isinstance(app.screen, cls), f"the {cls.__name__}")


async def press_unmount(pilot: Pilot[int], app: UfsApp) -> None:
    await pilot.press("u")
    await wait_until(pilot, lambda: not app.mount_busy, "the unmount worker")
    await settle(pilot)


async def open_all(pilot: Pilot[int], app: UfsApp) -> None:
    """Open every dir of the Merged pane (so every row has been compared with the kernel)."""
    tree = app.pane_tree("merged")
    for _ in range(10):
        closed = [n for n in tree.nodes.values() if n.allow_expand and not n.is_expanded and n is not tree.root]
        if not closed:
            return
        for n in closed:
            n.expand()
        await settle(pilot)


def differing_rows(app: UfsApp) -> list[str]:
    tree = app.pane_tree("merged")
    return [p for p, n in tree.nodes.items() if n.data is not None and n.data.status == KERNEL_DIFFERS]


async def test_mount_write_through_it_and_unmount(root_mount: None, d: str) -> None:
    app = make_app(stack_of(d), live=True)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await press_mount(pilot, app)
        h = app.handle
        assert h is not None and app.main.last_error is None
        assert h.backend == "kernel" and os.path.dirname(h.target) == f"{d}/rt"
        assert h.target in mount_points()
        # The Merged pane reads the real mount: same names as the kernel, no row where they disagree.
        assert app.main.explorer.mount_point == h.target
        assert "mounted" in str(app.query_one("#pane-merged").border_title)
        assert names(app.pane_tree("merged")) == sorted(os.listdir(h.target))
        await open_all(pilot, app)
        assert differing_rows(app) == [] and app.main.explorer.mismatches == {}
        assert f"mounted at {h.target} (kernel)" in text_of(app.query_one("#status"), width=300)
        # Another process writes through the mount: Upper and Merged show it without a key press.
        await wait_until(pilot, lambda: app.watch_ready, "the watcher")
        run_sh(f"echo hello > {shlex.quote(h.target)}/written; echo more >> {shlex.quote(h.target)}/a")
        upper, merged = app.pane_tree("upper"), app.pane_tree("merged")
        await wait_until(
            pilot,
            lambda: {"/written", "/a"} <= upper.nodes.keys() and "/written" in merged.nodes,
            "the write to show in Upper and Merged",
        )
        await settle(pilot)
        assert row(merged, "/written").startswith("+ written")
        assert row(merged, "/a").startswith("~ a")  # copied up by the kernel
        assert differing_rows(app) == []
        # The details say the kernel agrees.
        await pilot.press("3", "home")
        await settle(pilot)
        assert "agrees with the model" in text_of(app.query_one("#details-body"), width=300)
        # u: unmounted, the dir we made is gone, the panes read the layers again.
        await press_unmount(pilot, app)
        assert app.handle is None and app.main.last_error is None
        assert h.target not in mount_points() and not os.path.exists(h.target)
        assert app.main.explorer.mount_point is None
        assert names(app.pane_tree("merged")) == ["a", "b", "sub", "written"]
        assert recorded(f"{d}/rt") == []


async def test_a_target_the_user_types_and_a_non_empty_one_needs_yes(root_mount: None, d: str) -> None:
    make_tree(d, {"full/keep": "k\n", "empty/": None})
    app = make_app(stack_of(d), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await press_mount(pilot, app, f"{d}/full")
        assert isinstance(app.screen, ConfirmScreen)
        assert "not empty" in text_of(app.screen.query_one("#confirm-lines"))
        await pilot.press("n")
        await pilot.pause()
        assert app.handle is None and f"{d}/full" not in mount_points()
        await press_mount(pilot, app, f"{d}/full")
        await pilot.press("y")
        await wait_until(pilot, lambda: app.handle is not None, "the mount")
        await settle(pilot)
        assert f"{d}/full" in mount_points() and "keep" not in os.listdir(f"{d}/full")
        await press_unmount(pilot, app)
        assert os.listdir(f"{d}/full") == ["keep"]  # the user's dir is back, not removed
        await press_mount(pilot, app, f"{d}/empty")
        assert app.handle is not None and app.handle.target == f"{d}/empty"
        await press_unmount(pilot, app)
        assert os.path.isdir(f"{d}/empty")


async def test_a_failed_mount_is_a_plain_message_and_changes_nothing(root_mount: None, d: str) -> None:
    """The target does not exist: said plainly; the stack, the panes and the mounts stay as they were."""
    app = make_app(stack_of(d), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        stack = app.stack
        await press_mount(pilot, app, f"{d}/nowhere")
        assert isinstance(app.screen, MessageScreen)
        assert app.main.last_error is not None and "the mount target does not exist" in app.main.last_error
        await pilot.press("enter")
        assert app.stack is stack and app.handle is None and not os.path.exists(f"{d}/nowhere")
        # A failure only the kernel sees (index=on with an upper first used over other lowers).
        os.mkdir(f"{d}/pre")
        with mounted([f"{d}/l1"], f"{d}/u", f"{d}/w", f"{d}/pre", "index=on"):
            pass  # the upper now records l1 as its origin
        indexed = Stack.build([f"{d}/l0", f"{d}/l1"], f"{d}/u", f"{d}/w", options=("index=on",))
        app.set_stack(indexed)
        await settle(pilot)
        await press_mount(pilot, app)
        assert isinstance(app.screen, MessageScreen), app.handle
        assert (
            app.main.last_error is not None and "index=on" in app.main.last_error and "kernel:" in app.main.last_error
        )
        assert app.handle is None and app.stack is indexed
        assert [t for t in mount_points() if t.startswith(d)] == []
        assert [n for n in os.listdir(f"{d}/rt") if n.startswith("mnt-")] == []  # the fresh target is removed


async def test_rows_where_the_kernel_disagrees_are_marked(d: str) -> None:
    """A mount point that is not this stack's: every difference is marked, with a line in the details."""
    make_tree(d, {"fake/a": "a0\n", "fake/ghost": "g\n", "fake/sub/x": "x\n", "fake/sub/y": "y\n"})
    os.chmod(f"{d}/fake/a", 0o600)
    app = make_app(stack_of(d), live=False, mount_point=f"{d}/fake")
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await open_all(pilot, app)
        merged = app.pane_tree("merged")
        assert sorted(differing_rows(app)) == ["/a", "/b", "/ghost"]
        assert row(merged, "/a").startswith("≠ a  3 B  kernel: mode 0600 (model 0644)")  # (the kernel's size)
        assert row(merged, "/b").startswith("≠ b  kernel: no such name")
        assert row(merged, "/ghost").startswith("≠ ghost  2 B  kernel: a file the model does not show")
        assert row(merged, "/sub/x").startswith("  x")  # the same in both
        await pilot.press("3", "home", "down")  # /b
        await settle(pilot)
        body = text_of(app.query_one("#details-body"), width=300)
        assert "the model and the kernel disagree here" in body and "DIFFERS from the model" in body


async def test_userns_backend_from_the_editor(root_mount: None, userns_mount: None, d: str) -> None:
    app = make_app(stack_of(d), live=True)
    async with app.run_test(size=(200, 45)) as pilot:
        await settle(pilot)
        await pilot.press("e", "b", "b", "ctrl+s")  # backend: auto → kernel → userns
        await settle(pilot)
        assert app.mounts.backend == "userns"
        await press_mount(pilot, app)
        h = app.handle
        assert h is not None and h.backend == "userns" and h.helper_pid is not None
        assert h.path == f"/proc/{h.helper_pid}/root{h.target}"
        assert h.target not in mount_points()  # visible only inside the namespace...
        assert sorted(os.listdir(h.path)) == ["a", "b", "sub"]  # ...read through the helper's root
        status = text_of(app.query_one("#status"), width=400)
        assert "visible only inside that namespace" in status and h.path in status
        assert app.stack.xattr_ns == "user" and "userxattr" in app.stack.options  # the model reads as it mounts
        await open_all(pilot, app)
        assert differing_rows(app) == []
        await wait_until(pilot, lambda: app.watch_ready, "the watcher")
        run_sh(f"echo hi > {shlex.quote(h.path)}/via-ns")
        await wait_until(pilot, lambda: "/via-ns" in app.pane_tree("upper").nodes, "the write in Upper")
        await wait_until(pilot, lambda: "/via-ns" in app.pane_tree("merged").nodes, "the write in Merged")
        await press_unmount(pilot, app)
        assert _wait_gone(h.helper_pid, 30) and app.handle is None


async def test_fuse_overlayfs_backend(root_mount: None, d: str) -> None:
    need(shutil.which("fuse-overlayfs") is not None, "needs fuse-overlayfs")
    app = make_app(stack_of(d), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("e", "b", "b", "b", "ctrl+s")
        await settle(pilot)
        assert app.mounts.backend == "fuse"
        await press_mount(pilot, app)
        h = app.handle
        assert h is not None and h.backend == "fuse", app.main.last_error
        assert h.target in mount_points()
        assert names(app.pane_tree("merged")) == sorted(os.listdir(h.target)) == ["a", "b", "sub"]
        await open_all(pilot, app)
        assert differing_rows(app) == []
        # An opaque dir made through the mount: fuse-overlayfs marks it with .wh..wh..opq and .wh..opq in the
        # upper (besides the xattr); the model of a fuse mount reads those markers (oci-whiteouts) as fuse does.
        run_sh(f"cd {shlex.quote(h.target)}; rm -r sub; mkdir sub; echo z > sub/z")
        assert {".wh..wh..opq", ".wh..opq", "z"} <= set(os.listdir(f"{d}/u/sub"))
        assert "oci-whiteouts" in app.stack.options
        await pilot.press("r")  # reload (this app does not watch)
        await settle(pilot)
        await open_all(pilot, app)
        merged = app.pane_tree("merged")
        assert names(merged, "/sub") == sorted(os.listdir(f"{h.target}/sub")) == ["z"]
        assert merged.nodes["/sub"].data is not None and merged.nodes["/sub"].data.status == S.OPAQUE
        assert differing_rows(app) == [] and app.main.explorer.mismatches == {}
        await press_unmount(pilot, app)
        assert h.target not in mount_points()


async def test_commit_from_the_ui_remounts_and_matches_the_kernel(root_mount: None, d: str) -> None:
    app = make_app(stack_of(d), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await press_mount(pilot, app)
        h = app.handle
        assert h is not None
        run_sh(f"cd {shlex.quote(h.target)}; echo c > c; rm b; rm -rf sub; mkdir sub; echo z > sub/z")
        before_view = kernel_tree(h.target)
        originals = {p: snapshot(p) for p in (f"{d}/l0", f"{d}/l1", f"{d}/u")}
        await pilot.press("C")
        await on_screen(pilot, app, ConfirmScreen)
        said = text_of(app.screen.query_one("#confirm-lines"), width=300)
        assert f"will create the new empty upper: {d}/u.1" in said
        assert f"will create the new empty work dir: {d}/w.1" in said
        assert f"{h.target} is unmounted, then the new stack is mounted there" in said
        await pilot.press("y")
        await wait_until(pilot, lambda: app.stack.work == f"{d}/w.1" and not app.mount_busy, "the commit")
        await settle(pilot)
        assert app.main.last_error is None
        s = app.stack
        assert [la.path for la in s.lowers] == [f"{d}/u", f"{d}/l0", f"{d}/l1"]
        assert s.upper is not None and s.upper.path == f"{d}/u.1" and s.work == f"{d}/w.1"
        assert app.handle is not None and app.handle.target == h.target and app.handle.stack == s
        assert kernel_tree(h.target) == model_tree(s) == before_view
        assert {p: snapshot(p) for p in originals} == originals  # nothing original was written
        assert names(app.pane_tree("upper")) == []
        assert names(app.pane_tree("merged")) == ["a", "c", "sub"]
        await press_unmount(pilot, app)


def super_options(target: str) -> set[str]:
    return {o for m in read_mountinfo() if m.target == target for o in m.options}


async def test_options_and_backend_edited_while_mounted_reach_the_mount(
    root_mount: None, userns_mount: None, d: str
) -> None:
    app = make_app(stack_of(d), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await press_mount(pilot, app)
        h = app.handle
        assert h is not None and not {"index=on", "redirect_dir=on"} & super_options(h.target)
        # e, 3 (index=on), 1 (redirect_dir=on), Ctrl+S: remounted with them
        await pilot.press("e")
        await on_screen(pilot, app, StackEditor)
        await pilot.press("3", "1", "ctrl+s")
        await wait_until(pilot, lambda: app.handle is not h and not app.mount_busy, "the remount")
        await settle(pilot)
        new = app.handle
        assert new is not None and app.main.last_error is None and new.target == h.target
        assert {"index=on", "redirect_dir=on"} <= super_options(h.target)
        assert set(new.options) == {"index=on", "redirect_dir=on"}
        [rec] = recorded(f"{d}/rt")
        assert rec.id == new.id and set(rec.options) == {"index=on", "redirect_dir=on"}
        assert {"index=on", "redirect_dir=on"} <= set(app.stack.options)
        # The backend: a user namespace needs userxattr, which the kernel refuses with redirect_dir=on: Ctrl+S
        # is refused in the editor (the mount stays); without the options it remounts in a user namespace.
        await pilot.press("e")
        await on_screen(pilot, app, StackEditor)
        await pilot.press("b", "b", "ctrl+s")  # auto → kernel → userns
        ed = app.screen
        assert isinstance(ed, StackEditor) and ed.backend == "userns"
        said = text_of(ed.query_one("#stack-problems"), width=300)
        assert "not applied" in said and "redirect_dir=on,userxattr" in said
        assert app.handle is new and {"index=on", "redirect_dir=on"} <= super_options(h.target)
        await pilot.press("3", "3", "1", "1", "1", "1")  # index on → off → default; redirect_dir on → ... → default
        assert ed.stack().options == ()
        await pilot.press("ctrl+s")
        await wait_until(pilot, lambda: app.handle is not new and not app.mount_busy, "the remount in a namespace")
        await settle(pilot)
        ns = app.handle
        assert ns is not None and ns.backend == "userns" and app.main.last_error is None, app.main.last_error
        assert ns.target == h.target and h.target not in mount_points()  # the kernel mount is gone
        assert sorted(os.listdir(ns.path)) == ["a", "b", "sub"] and app.main.explorer.mount_point == ns.path
        assert [r.backend for r in recorded(f"{d}/rt")] == ["userns"]
        assert app.stack.xattr_ns == "user" and "userxattr" in app.stack.options
        await open_all(pilot, app)
        assert differing_rows(app) == []
        await press_unmount(pilot, app)
        assert ns.helper_pid is not None and _wait_gone(ns.helper_pid, 30) and recorded(f"{d}/rt") == []


async def test_the_backend_edited_while_mounted_is_the_one_mounted(root_mount: None, d: str) -> None:
    need(shutil.which("fuse-overlayfs") is not None, "needs fuse-overlayfs")
    app = make_app(stack_of(d), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await press_mount(pilot, app)
        h = app.handle
        assert h is not None and fstype_at(h.target) == "overlay"
        await pilot.press("e")
        await on_screen(pilot, app, StackEditor)
        await pilot.press("b", "b", "b", "ctrl+s")  # auto → kernel → userns → fuse
        await wait_until(pilot, lambda: app.handle is not h and not app.mount_busy, "the remount with fuse")
        await settle(pilot)
        new = app.handle
        assert new is not None and new.backend == "fuse" and app.main.last_error is None, app.main.last_error
        assert new.target == h.target and fstype_at(h.target) == "fuse.fuse-overlayfs"
        assert [r.backend for r in recorded(f"{d}/rt")] == ["fuse"] and app.mounts.backend == "fuse"
        assert "oci-whiteouts" in app.stack.options  # the model reads fuse-overlayfs's own markers
        await open_all(pilot, app)
        assert differing_rows(app) == []
        await press_unmount(pilot, app)
        assert h.target not in mount_points() and recorded(f"{d}/rt") == []


async def test_an_edited_stack_that_would_not_mount_is_not_applied_while_mounted(root_mount: None, d: str) -> None:
    """The editor says ✗ (a work dir on another filesystem): Ctrl+S leaves the mount as it is and says so."""
    other = f"{d}/otherfs"
    os.mkdir(other)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", other], check=True)
    os.mkdir(f"{other}/work")
    app = make_app(stack_of(d), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await press_mount(pilot, app)
        h = app.handle
        assert h is not None
        await pilot.press("e")
        await on_screen(pilot, app, StackEditor)
        await pilot.press("w")
        await on_screen(pilot, app, PromptScreen)
        inp = app.screen.query_one("#prompt-input", Input)
        inp.value = f"{other}/work"
        await pilot.press("enter")
        await on_screen(pilot, app, StackEditor)
        ed = app.screen
        assert isinstance(ed, StackEditor)
        await wait_until(pilot, lambda: ed.draft.work == f"{other}/work", "the new work dir")
        assert "different filesystem" in text_of(ed.query_one("#stack-problems"), width=300)
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is ed  # not applied
        said = text_of(ed.query_one("#stack-problems"), width=300)
        assert "not applied: the edited stack would not mount" in said and "the mount is left as it is" in said
        assert app.handle is h and h.target in mount_points() and [r.id for r in recorded(f"{d}/rt")] == [h.id]
        await pilot.press("escape")
        await settle(pilot)
        assert app.handle is h and app.stack.work == f"{d}/w" and app.main.last_error is None
        await press_unmount(pilot, app)
    subprocess.run(["umount", other], check=True)


async def test_a_busy_mount_is_not_remounted_and_the_message_says_so(root_mount: None, d: str) -> None:
    app = make_app(stack_of(d), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await press_mount(pilot, app)
        h = app.handle
        assert h is not None
        holder = subprocess.Popen(["sleep", "600"], cwd=h.target)  # its cwd keeps the mount busy
        try:
            await pilot.press("e")
            await on_screen(pilot, app, StackEditor)
            await pilot.press("2", "ctrl+s")  # metacopy=on: a stack that would mount
            await on_screen(pilot, app, MessageScreen)
            await wait_until(pilot, lambda: not app.mount_busy, "the remount worker")
            assert isinstance(app.screen, MessageScreen)
            assert app.screen.title_text == "Cannot remount: the mount could not be unmounted"
            assert app.main.last_error is not None and "busy" in app.main.last_error
            assert f"Nothing was changed: the old stack is still mounted at {h.target}." in app.main.last_error
            assert "mounted again" not in app.main.last_error
            assert app.handle is h and h.target in mount_points() and "metacopy=on" not in super_options(h.target)
            assert [r.id for r in recorded(f"{d}/rt")] == [h.id]
            await pilot.press("enter")
        finally:
            holder.kill()
            holder.wait()
        await press_unmount(pilot, app)
        assert h.target not in mount_points()


async def test_a_redirect_not_followed_fails_in_both_the_model_and_the_kernel(root_mount: None, d: str) -> None:
    """redirect_dir=nofollow over a renamed dir: said before mounting (editor and m), and the kernel's EPERM on
    that name is what the model predicts (no ≠); a kernel that resolves a name the model says fails is marked."""
    make_tree(d, {"l1/docs/x": "x\n", "pre/": None})
    with mounted([f"{d}/l0", f"{d}/l1"], f"{d}/u", f"{d}/w", f"{d}/pre", "redirect_dir=on"):
        os.rename(f"{d}/pre/docs", f"{d}/pre/manual")
    stack = Stack.build([f"{d}/l0", f"{d}/l1"], f"{d}/u", f"{d}/w", options=("redirect_dir=nofollow",))
    app = make_app(stack, live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("e")
        await on_screen(pilot, app, StackEditor)
        said = text_of(app.screen.query_one("#stack-problems"), width=300)
        assert "⚠ redirect_dir=nofollow" in said and "/manual" in said and "fail with EPERM" in said
        assert "checks pass" in said  # a warning: the mount is not refused
        await pilot.press("escape")
        await pilot.press("m")
        await on_screen(pilot, app, PromptScreen)
        said = text_of(app.screen.query_one("#prompt-lines"), width=300)
        assert "warning: redirect_dir=nofollow" in said and "/manual" in said
        await pilot.press("enter")
        await wait_until(pilot, lambda: app.handle is not None and not app.mount_busy, "the mount")
        await settle(pilot)
        h = app.handle
        assert h is not None and "redirect_dir=nofollow" in super_options(h.target)
        with pytest.raises(PermissionError):
            os.lstat(f"{h.target}/manual")
        merged = app.pane_tree("merged")
        item = merged.nodes["/manual"].data
        assert item is not None and item.status == S.ERROR
        await open_all(pilot, app)
        assert differing_rows(app) == [] and app.main.explorer.mismatches == {}
        await goto(pilot, merged, "/manual")
        assert "agrees with the model" in text_of(app.query_one("#details-body"), width=300)
        await press_unmount(pilot, app)
    # A "mount" (a plain dir) where manual resolves: the model says the lookup fails; marked.
    make_tree(d, {"fake/a": "a0\n", "fake/b": "b1\n", "fake/sub/x": "x\n", "fake/sub/y": "y\n", "fake/manual/": None})
    app = make_app(stack, live=False, mount_point=f"{d}/fake")
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        said = row(app.pane_tree("merged"), "/manual")
        assert said.startswith("≠ manual/  kernel: a dir (the model: looking it up fails)"), said


async def test_an_upper_another_mount_uses_is_refused_before_mounting(root_mount: None, d: str) -> None:
    os.mkdir(f"{d}/other")
    with mounted([f"{d}/l1"], f"{d}/u", f"{d}/w", f"{d}/other"):  # no index: the kernel would mount it again
        app = make_app(stack_of(d), live=False)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot)
            await pilot.press("e")
            await on_screen(pilot, app, StackEditor)
            said = text_of(app.screen.query_one("#stack-problems"), width=300)
            assert f"the upper is in use by another overlay mount at {d}/other" in said
            await pilot.press("escape")
            await pilot.press("m")
            await on_screen(pilot, app, MessageScreen)
            assert (
                app.main.last_error is not None
                and f"in use by another overlay mount at {d}/other" in app.main.last_error
            )
            assert "Nothing was changed." in app.main.last_error
            assert app.handle is None and [t for t in mount_points() if t.startswith(d)] == [f"{d}/other"]


async def test_a_runtime_dir_that_cannot_be_made_is_a_dialog(d: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("UFS_TUI_RUNTIME_DIR", "/nonexistent-ufs-test/rt")
    app = make_app(stack_of(d), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("m")
        await on_screen(pilot, app, MessageScreen)
        assert app.main.last_error is not None
        assert (
            "/nonexistent-ufs-test/rt: cannot create the runtime dir: No such file or directory" in app.main.last_error
        )
        assert "fix: create its parent dir, or set UFS_TUI_RUNTIME_DIR" in app.main.last_error
        assert app.handle is None and not os.path.exists("/nonexistent-ufs-test")


def _through_mount(d: str, lowers: list[str], upper: str, script: str) -> None:
    """Make ``upper`` by running ``script`` in a real overlay mount: every marker is the kernel's."""
    os.makedirs(upper)
    os.makedirs(upper + ".work")
    os.makedirs(f"{d}/mk", exist_ok=True)
    with mounted(lowers, upper, upper + ".work", f"{d}/mk"):
        run_sh(f"cd {shlex.quote(d)}/mk\n{script}")
    rmtree(upper + ".work")


async def test_squash_from_the_ui_matches_the_kernel(root_mount: None, d: str) -> None:
    make_tree(d, {"s3/a": "a\n", "s3/keep/k": "k\n", "s3/gone/g": "g\n", "s3/f": "f\n"})
    _through_mount(d, [f"{d}/s3"], f"{d}/s2", "rm a; rm -rf gone; echo b > b; echo k2 > keep/k2")
    _through_mount(d, [f"{d}/s2", f"{d}/s3"], f"{d}/s1", "rm b; rm -rf keep; mkdir keep; echo new > keep/new")
    stack = Stack.build([f"{d}/s1", f"{d}/s2", f"{d}/s3"])
    os.mkdir(f"{d}/m-before")
    with mounted([f"{d}/s1", f"{d}/s2", f"{d}/s3"], None, None, f"{d}/m-before"):
        before = kernel_tree(f"{d}/m-before")
    originals = {p: snapshot(p) for p in (f"{d}/s1", f"{d}/s2", f"{d}/s3")}
    app = make_app(stack, live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await pilot.press("S")
        await on_screen(pilot, app, SquashScreen)
        assert app.screen.query_one("#squash-range", Input).value == "lower:0..lower:1"
        assert app.screen.query_one("#squash-dest", Input).value == f"{d}/s1.squashed.1"
        await pilot.press("enter", "enter")  # range, then the new dir
        await on_screen(pilot, app, ConfirmScreen)
        said = text_of(app.screen.query_one("#confirm-lines"), width=300)
        assert f"will create: {d}/s1.squashed.1" in said and "they are not changed" in said
        await pilot.press("y")
        await wait_until(pilot, lambda: len(app.stack.lowers) == 2 and not app.mount_busy, "the squash")
        await settle(pilot)
        assert app.main.last_error is None
        assert [la.path for la in app.stack.lowers] == [f"{d}/s1.squashed.1", f"{d}/s3"]
        assert names(app.pane_tree("merged")) == sorted(p.strip("/") for p in before if p.count("/") == 1)
        # The new stack, mounted from the UI (read-only: two lowers), shows what the old one showed.
        await press_mount(pilot, app)
        assert app.handle is not None, app.main.last_error
        assert kernel_tree(app.handle.target) == model_tree(app.stack) == before
        await open_all(pilot, app)
        assert differing_rows(app) == []
        await press_unmount(pilot, app)
    assert {p: snapshot(p) for p in originals} == originals


# ---------------------------------------------------------------- the real program, signals


UFS = os.path.join(os.path.dirname(sys.executable), "ufs-tui")


def _capture(name: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout


def _wait_screen(name: str, cond: Callable[[str], bool], timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = _capture(name)
        if cond(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"screen never matched; last:\n{screen}")
        subprocess.run(["tmux", "wait-for", "-S", "nothing"], capture_output=True)  # a round trip to tmux


def _app_pid(name: str) -> int:
    shell = subprocess.run(["tmux", "list-panes", "-t", name, "-F", "#{pane_pid}"], capture_output=True, text=True)
    out = subprocess.run(["pgrep", "-P", shell.stdout.strip()], capture_output=True, text=True).stdout.split()
    return int(out[0])  # env and setpriv exec the program: the shell's child is the app


@pytest.fixture
def tmux_session() -> Iterator[Callable[[str], str]]:
    need(shutil.which("tmux") is not None, "needs tmux")
    made: list[str] = []

    def start(cmd: str) -> str:
        name = f"ufs-{uuid.uuid4().hex[:8]}"
        full = f"{cmd}; tmux wait-for -S {name}"
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "200", "-y", "50", full], check=True)
        made.append(name)
        return name

    yield start
    for n in made:
        subprocess.run(["tmux", "kill-session", "-t", n], capture_output=True)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_during_a_mounted_session_leaves_no_mount(
    root_mount: None, d: str, tmux_session: Callable[[str], str], sig: int
) -> None:
    env = f"UFS_TUI_RUNTIME_DIR={d}/rt PYTHONPATH={ROOT}"
    name = tmux_session(f"env {env} {UFS} --lower {d}/l0:{d}/l1 --upper {d}/u --work {d}/w; echo rc=$? > {d}/rc")
    _wait_screen(name, lambda s: "Merged" in s and "live" in s)
    subprocess.run(["tmux", "send-keys", "-t", name, "m"], check=True)
    _wait_screen(name, lambda s: "Mount the stack" in s)
    subprocess.run(["tmux", "send-keys", "-t", name, "Enter"], check=True)
    _wait_screen(name, lambda s: "mounted at" in s)
    [entry] = recorded(f"{d}/rt")
    assert entry.target in mount_points()
    os.kill(_app_pid(name), sig)
    subprocess.run(["tmux", "wait-for", name], timeout=60, check=True)
    assert entry.target not in mount_points() and not os.path.exists(entry.target)
    assert [t for t in mount_points() if t.startswith(d)] == []
    assert recorded(f"{d}/rt") == []
    with open(f"{d}/rc") as f:
        assert f.read().startswith("rc=")  # it ended (the exit status: see the report; not asserted)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_unprivileged_user_mounts_in_a_namespace_and_signals_end_it(
    userns_mount: None, d: str, tmux_session: Callable[[str], str], sig: int
) -> None:
    need(os.geteuid() == 0, "needs root to start the app as another user (setpriv)")
    subprocess.run(["chown", "-R", "65534:65534", d], check=True)
    args = ["--lower", f"{d}/l0:{d}/l1", "--upper", f"{d}/u", "--work", f"{d}/w"]
    argv = nobody.argv("-m", "ufs_tui", *args, UFS_TUI_RUNTIME_DIR=f"{d}/rt", HOME=d)
    name = tmux_session(f"{shlex.join(argv)}; echo rc=$? > {d}/rc")
    _wait_screen(name, lambda s: "Merged" in s and "live" in s)
    subprocess.run(["tmux", "send-keys", "-t", name, "m"], check=True)
    _wait_screen(name, lambda s: "Mount the stack" in s and "user namespace" in s)
    subprocess.run(["tmux", "send-keys", "-t", name, "Enter"], check=True)
    _wait_screen(name, lambda s: "mounted in a user namespace" in s)
    [entry] = recorded(f"{d}/rt")
    assert entry.backend == "userns" and entry.helper_pid is not None
    assert sorted(os.listdir(entry.path)) == ["a", "b", "sub"]
    os.kill(_app_pid(name), sig)
    subprocess.run(["tmux", "wait-for", name], timeout=60, check=True)
    assert _wait_gone(entry.helper_pid, 30)
    assert not os.path.exists(entry.target)
    assert recorded(f"{d}/rt") == []
    with open(f"{d}/rc") as f:
        assert f.read().startswith("rc=")  # it ended (the exit status: see the report; not asserted)


def test_a_terminal_gone_without_sighup_ends_the_app_and_its_mount(root_mount: None, d: str) -> None:
    """The program runs in a terminal that is not its controlling terminal (what 'su -c' or setsid give: closing
    the window sends no SIGHUP). The terminal goes away (its master side closes): the app unmounts what it
    mounted and exits 129, as on SIGHUP, instead of spinning on an stdin that reads nothing."""
    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, 200, 0, 0))
    env = dict(os.environ, UFS_TUI_RUNTIME_DIR=f"{d}/rt", PYTHONPATH=ROOT, TERM="xterm-256color")
    argv = [UFS, "--lower", f"{d}/l0:{d}/l1", "--upper", f"{d}/u", "--work", f"{d}/w"]
    # A new session and the pty only as inherited fds: it is nobody's controlling terminal.
    proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, env=env, start_new_session=True)
    os.close(slave)
    seen = bytearray()

    def read_until(cond: Callable[[], bool], what: str) -> None:
        deadline = time.monotonic() + 60
        while not cond():
            if time.monotonic() > deadline or proc.poll() is not None:
                raise AssertionError(f"never saw {what}; the app wrote: {bytes(seen[-2000:])!r}")
            ready, _, _ = select.select([master], [], [], 1.0)  # returns as soon as the app writes
            if ready:
                seen.extend(os.read(master, 1 << 16))

    try:
        read_until(lambda: b"Merged" in seen, "the app start")
        os.write(master, b"m")
        read_until(lambda: b"Mount the stack" in seen, "the mount prompt")
        os.write(master, b"\r")
        read_until(lambda: len(recorded(f"{d}/rt")) == 1, "the mount")
        [entry] = recorded(f"{d}/rt")
        assert entry.target in mount_points()
        assert os.getsid(proc.pid) == proc.pid  # its own session: no terminal will send it SIGHUP
    finally:
        os.close(master)  # the terminal is gone
    try:
        assert proc.wait(timeout=60) == 129
    finally:
        if proc.poll() is None:
            proc.kill()
    assert entry.target not in mount_points() and not os.path.exists(entry.target)
    assert [t for t in mount_points() if t.startswith(d)] == []
    assert recorded(f"{d}/rt") == []
