"""The one mount preflight (core.mount.preflight) and the problem codes callers act on instead of words.

The kernel defines what is refused: metacopy=on with redirect_dir=follow is mounted for real here and refused
("conflicting options"); the preflight refuses it first, with the code OPTION_CONFLICT, whichever way it is
asked (the editor's way: the stack's own options; the CLI's: --option; MountManager.mount). An unmount the kernel
refuses with EBUSY carries the code BUSY; mountinfo's escapes are undone the same way everywhere.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.mount.helpers import scratch
from tests.overlay import mounted
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.mount import MountManager, preflight, unmount_busy
from ufs_tui.core.mounting.mount_table import fstype_at, is_mount_point, mount_points
from ufs_tui.core.mounting.preflight import BUSY, OPTION_CONFLICT, MountError

REFUSED = ["metacopy=on", "redirect_dir=follow"]


@pytest.fixture
def d() -> Iterator[str]:
    with scratch({"l0/a": "a\n", "l1/b": "b\n", "u/": None, "w/": None, "m/": None}) as d:
        yield d


def stack_of(d: str, *options: str) -> Stack:
    return Stack.build([f"{d}/l0", f"{d}/l1"], f"{d}/u", f"{d}/w", options=options)


def kernel_mounts(d: str, options: list[str]) -> subprocess.CompletedProcess[str]:
    o = ",".join([f"lowerdir={d}/l0:{d}/l1", f"upperdir={d}/u", f"workdir={d}/w", *options])
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", o, f"{d}/m"], capture_output=True, text=True)
    if r.returncode == 0:
        subprocess.run(["umount", f"{d}/m"], check=True)
    return r


def test_the_preflight_refuses_metacopy_on_with_redirect_dir_follow(d: str) -> None:
    [p] = preflight(stack_of(d), "kernel", REFUSED)
    assert p.kind == OPTION_CONFLICT and p.subject == "metacopy=on,redirect_dir=follow"
    assert "metacopy=on needs redirect_dir=on" in p.what
    # the editor's way: the options are the stack's own; the CLI's: MountManager.check with --option
    editor = preflight(dataclasses.replace(stack_of(d), options=tuple(REFUSED)), "kernel", REFUSED, runtime=None)
    cli = MountManager(f"{d}/rt").check(stack_of(d), "kernel", REFUSED)
    assert editor == cli == [p]
    assert preflight(stack_of(d), "kernel", ["metacopy=on", "redirect_dir=on"]) == []


@pytest.mark.parametrize(
    "options",
    [["metacopy=on", "userxattr"], ["redirect_dir=on", "userxattr"], ["nfs_export=on", "index=off"], REFUSED],
)
def test_every_option_conflict_has_the_code(d: str, options: list[str]) -> None:
    kinds = [p.kind for p in preflight(stack_of(d), "kernel", options) if "conflicting options" in p.what]
    assert kinds == [OPTION_CONFLICT]


def test_the_kernel_refuses_it_and_the_mount_never_asks_it(root_mount: None, d: str) -> None:
    with MountManager(f"{d}/rt") as m, pytest.raises(MountError) as ei:
        m.mount(stack_of(d), f"{d}/m", "kernel", REFUSED)
    assert [p.kind for p in ei.value.problems] == [OPTION_CONFLICT]
    assert os.listdir(f"{d}/w") == [] and not is_mount_point(f"{d}/m")  # the kernel was never asked
    assert kernel_mounts(d, REFUSED).returncode != 0  # mount(8): "wrong fs type, bad option, ..."
    assert kernel_mounts(d, ["metacopy=on", "redirect_dir=on"]).returncode == 0


def test_a_busy_unmount_has_the_code_busy(root_mount: None, d: str) -> None:
    with MountManager(f"{d}/rt") as m:
        h = m.mount(stack_of(d), f"{d}/m")
        holder = subprocess.Popen(["sleep", "600"], cwd=f"{d}/m")  # its cwd keeps the mount busy
        try:
            with pytest.raises(MountError) as ei:
                m.unmount(h)
            assert [p.kind for p in ei.value.problems] == [BUSY] and unmount_busy(ei.value)
            assert is_mount_point(f"{d}/m")
        finally:
            holder.kill()
            holder.wait()
        m.unmount(h)
    assert not is_mount_point(f"{d}/m")


def test_mount_points_undo_mountinfo_escapes(root_mount: None, d: str) -> None:
    target = f"{d}/a b\\c\td,e"  # mountinfo writes these as \040, \134, \011 (the comma as it is)
    os.mkdir(target)
    with mounted([f"{d}/l0", f"{d}/l1"], None, None, target):
        assert target in mount_points() and is_mount_point(target) and fstype_at(target) == "overlay"
    assert target not in mount_points() and fstype_at(target) != "overlay"
