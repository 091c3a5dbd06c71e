"""Unmounting: one mount of any backend, and from the record, whichever ufs-tui process made it (``ufs-tui umount``).

A userns mount ends with its helper; a user's fuse mount is unmounted with ``fusermount3 -u``; the others with
umount2, detached (lazily) only when asked to, as cleanup on exit does.
"""

from __future__ import annotations

import contextlib
import errno
import os

from ..model.errors import UfsError
from ..model.stack import Stack
from .fuse import fuse_unmount
from .mount_table import fstype_at, is_mount_point
from .preflight import BUSY, MountError, Problem
from .record import MountHandle, Record, is_live, recorded, runtime_dir
from .syscalls import kernel_umount
from .userns import stop_helper


def unmount_handle(h: MountHandle, lazy_fallback: bool) -> None:
    """Unmount the mount ``h`` (nothing when it is gone already); raise :class:`MountError` with the reason.

    ``lazy_fallback``: if it is busy, detach it anyway."""
    if h.backend == "userns":
        stop_helper(h)
        return
    if h.backend == "fuse" and os.geteuid() != 0:
        fuse_unmount(h.target)
        return
    if not is_mount_point(h.target):
        return  # already gone
    try:
        kernel_umount(h.target)
    except OSError as e:
        if e.errno == errno.EBUSY and lazy_fallback:
            kernel_umount(h.target, lazy=True)
        elif e.errno == errno.EINVAL:
            return  # not a mount point any more
        else:
            if e.errno == errno.EBUSY:
                what = "the mount is busy (a program has a file open or its cwd inside)"
                raise MountError([Problem(h.target, what, "close those programs and retry", kind=BUSY)]) from None
            what, fix = f"cannot unmount: {e.strerror}", "unmount as the user who mounted it (root for kernel mounts)"
            raise MountError([Problem(h.target, what, fix)]) from None


def unmount_recorded(h: MountHandle, runtime: str | None = None) -> str:
    """Unmount one recorded mount (if still there), drop it from the record; returns what was done."""
    rec = Record(runtime or runtime_dir())
    live = is_live(h)
    if live:
        unmount_handle(h, lazy_fallback=False)
    rec.remove(h.id)
    if h.created_target:
        with contextlib.suppress(OSError):
            os.rmdir(h.target)
    return f"{'unmounted' if live else 'was already gone'}: {h.target} ({h.backend})"


def unmount_target(target: str, runtime: str | None = None) -> str:
    """Unmount ``target``: our recorded mount there (any backend) or, failing that, the overlay mounted on it."""
    real = os.path.realpath(target)
    for h in recorded(runtime):
        if real in (h.target, os.path.realpath(h.path)) or target in (h.target, h.path):
            return unmount_recorded(h, runtime)
    fstype = fstype_at(real)
    if fstype is None:
        raise MountError(
            [
                Problem(
                    target,
                    "nothing is mounted here",
                    "check the path ('ufs-tui mounts' lists the overlay mounts, marking ufs-tui's own)",
                )
            ]
        )
    if fstype not in ("overlay", "fuse.fuse-overlayfs"):
        raise MountError([Problem(target, f"this is a {fstype} mount, not an overlay", "use umount(8) for it")])
    h = MountHandle(id="", backend="kernel", target=real, stack=Stack(()), options=())
    unmount_handle(h, lazy_fallback=False)
    return f"unmounted: {real}"


def unmount_mine(runtime: str | None = None) -> tuple[list[str], list[str]]:
    """Unmount everything in this user's record; returns (done, problems)."""
    done: list[str] = []
    problems: list[str] = []
    for h in recorded(runtime):
        try:
            done.append(unmount_recorded(h, runtime))
        except MountError as e:
            problems.extend(e.lines())
        except (UfsError, OSError) as e:
            problems.append(
                f"{h.target}: cannot unmount it: {getattr(e, 'strerror', None) or e} (fix: close programs using it, "
                f"then run ufs-tui umount {h.target})"
            )
    return done, problems
