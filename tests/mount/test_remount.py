"""Remounting a mounted stack (the stack editor's Ctrl+S, commit, squash): the new stack's options and backend reach
the kernel; the new stack is checked before the old mount is touched; a busy mount is refused while still mounted;
a new stack the kernel refuses leaves the old one mounted again. Real mounts, real processes.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.mount.helpers import make_tree, scratch
from tests.overlay import mounted
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.layers_ops import commit_remount, plan_commit
from ufs_tui.core.mounting.mount import MountManager, RemountError
from ufs_tui.core.mounting.mount_table import mount_points
from ufs_tui.core.mounting.record import recorded
from ufs_tui.core.sources.mountinfo import read_mountinfo


@pytest.fixture
def d() -> Iterator[str]:
    with scratch({"l0/a": "a\n", "l1/b": "b\n", "u/": None, "w/": None, "m/": None}) as d:
        yield d


def super_options(target: str) -> tuple[str, ...]:
    [m] = [m for m in read_mountinfo() if m.target == target]
    return m.options


def stack_of(d: str, *options: str) -> Stack:
    return Stack.build([f"{d}/l0", f"{d}/l1"], f"{d}/u", f"{d}/w", options=options)


def test_remount_mounts_the_new_options(root_mount: None, d: str) -> None:
    with MountManager(f"{d}/rt") as m:
        h = m.mount(stack_of(d), f"{d}/m")
        assert "index=on" not in super_options(h.target)
        new = m.remount(h, stack_of(d, "index=on", "redirect_dir=on"), options=["index=on", "redirect_dir=on"])
        assert new.target == h.target and new.options == ("index=on", "redirect_dir=on")
        opts = super_options(h.target)
        assert "index=on" in opts and "redirect_dir=on" in opts
        [rec] = recorded(f"{d}/rt")
        assert rec.id == new.id and rec.options == ("index=on", "redirect_dir=on")
        assert m.handles == [new]
        # The options really act: a lower dir can be renamed now (redirect_dir=on; by default: EXDEV).
        make_tree(d, {"l1/docs/x": "x\n"})
        os.rename(f"{d}/m/docs", f"{d}/m/manual")
        assert os.getxattr(f"{d}/u/manual", "trusted.overlay.redirect") == b"docs"
    assert f"{d}/m" not in mount_points()


def test_remount_switches_the_backend(root_mount: None, d: str) -> None:
    with MountManager(f"{d}/rt") as m:
        h = m.mount(stack_of(d), f"{d}/m")
        new = m.remount(h, stack_of(d), backend="userns", options=[])
        assert new.backend == "userns" and new.helper_pid is not None and "userxattr" in new.options
        assert f"{d}/m" not in mount_points()  # the kernel mount is gone; the new one lives in a namespace
        assert sorted(os.listdir(new.path)) == ["a", "b"]
        [rec] = recorded(f"{d}/rt")
        assert rec.backend == "userns"
    assert recorded(f"{d}/rt") == []


def test_a_new_stack_that_would_not_mount_leaves_the_mount_untouched(root_mount: None, d: str) -> None:
    os.mkdir(f"{d}/t")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", f"{d}/t"], check=True)
    try:
        os.mkdir(f"{d}/t/w")
        with MountManager(f"{d}/rt") as m:
            h = m.mount(stack_of(d), f"{d}/m")
            with open(f"{d}/m/kept", "w") as f:
                f.write("k\n")
            bad = Stack.build([f"{d}/l0", f"{d}/l1"], f"{d}/u", f"{d}/t/w")
            with pytest.raises(RemountError) as ei:
                m.remount(h, bad)
            e = ei.value
            assert e.phase == "check" and e.now is h
            assert "different filesystem" in str(e) and "still mounted" in e.outcome
            assert m.handles == [h] and [r.id for r in recorded(f"{d}/rt")] == [h.id]
            assert f"{d}/m" in mount_points() and sorted(os.listdir(f"{d}/m")) == ["a", "b", "kept"]
            assert os.listdir(f"{d}/t/w") == []  # the kernel was never asked
    finally:
        subprocess.run(["umount", f"{d}/t"], check=True)


def test_a_busy_mount_is_refused_and_stays_mounted(root_mount: None, d: str) -> None:
    with MountManager(f"{d}/rt") as m:
        h = m.mount(stack_of(d), f"{d}/m")
        holder = subprocess.Popen(["sleep", "600"], cwd=f"{d}/m")  # its cwd keeps the mount busy
        try:
            with pytest.raises(RemountError) as ei:
                m.remount(h, stack_of(d, "index=on"), options=["index=on"], tries=3)
            e = ei.value
            assert e.phase == "unmount" and e.now is h
            assert "busy" in str(e) and e.outcome.startswith("Nothing was changed: the old stack is still mounted")
            assert f"{d}/m" in mount_points() and "index=on" not in super_options(f"{d}/m")
            assert m.handles == [h] and [r.id for r in recorded(f"{d}/rt")] == [h.id]
        finally:
            holder.kill()
            holder.wait()
    assert f"{d}/m" not in mount_points()


def test_a_new_stack_the_kernel_refuses_leaves_the_old_one_mounted_again(root_mount: None, d: str) -> None:
    os.mkdir(f"{d}/pre")
    with mounted([f"{d}/l1"], f"{d}/u", f"{d}/w", f"{d}/pre", "index=on"):
        pass  # the upper now records l1 as its origin: index=on over other lowers fails (ESTALE)
    with MountManager(f"{d}/rt") as m:
        h = m.mount(Stack.build([f"{d}/l1"], f"{d}/u", f"{d}/w"), f"{d}/m")
        with pytest.raises(RemountError) as ei:
            m.remount(h, stack_of(d, "index=on"), options=["index=on"])
        e = ei.value
        assert e.phase == "mount" and e.now is not None and e.now is not h
        assert "first used over other lower layers" in str(e) and e.source == "kernel"
        assert e.outcome == f"The old stack is mounted again at {d}/m."
        assert e.now.stack == h.stack and f"{d}/m" in mount_points() and os.listdir(f"{d}/m") == ["b"]
        assert m.handles == [e.now] and [r.id for r in recorded(f"{d}/rt")] == [e.now.id]


def test_commit_is_checked_before_anything_is_created_or_unmounted(root_mount: None, d: str) -> None:
    os.mkdir(f"{d}/t")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", f"{d}/t"], check=True)
    try:
        with MountManager(f"{d}/rt") as m:
            h = m.mount(stack_of(d), f"{d}/m")
            plan = plan_commit(h.stack, f"{d}/t/u2", f"{d}/w2")  # the new upper and work: different filesystems
            with pytest.raises(RemountError) as ei:
                commit_remount(plan, m, h)
            assert ei.value.phase == "check" and ei.value.now is h and "different filesystem" in str(ei.value)
            assert not os.path.exists(f"{d}/t/u2") and not os.path.exists(f"{d}/w2")  # nothing was created
            assert f"{d}/m" in mount_points() and m.handles == [h]
    finally:
        subprocess.run(["umount", f"{d}/t"], check=True)
