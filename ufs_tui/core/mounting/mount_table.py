"""Every mount of this process's mount namespace, of any filesystem type: where it is and what type it is.

:mod:`ufs_tui.core.sources.mountinfo` reads the overlay mounts of ``/proc/self/mountinfo``, with their layers;
unmounting needs the others too (is a path still a mount point, is what is mounted there an overlay). The file's
path and its octal escapes are that module's.
"""

from __future__ import annotations

import os


def _mounts() -> list[tuple[str, str]]:
    """(mount point, filesystem type) of each line of the mount table, in mount order; [] when it cannot be read."""
    from ..sources.mountinfo import MOUNTINFO, unescape_octal

    out: list[tuple[str, str]] = []
    try:
        with open(MOUNTINFO, "rb") as f:
            for line in f:
                head, sep, tail = line.partition(b" - ")
                fields = head.split(b" ")
                if sep and len(fields) > 4:
                    out.append((unescape_octal(os.fsdecode(fields[4])), os.fsdecode(tail.split(b" ", 1)[0])))
    except OSError:
        return []
    return out


def mount_points() -> set[str]:
    """Mount points of this process's mount namespace (from /proc/self/mountinfo, unescaped)."""
    return {point for point, _ in _mounts()}


def is_mount_point(path: str) -> bool:
    return os.path.realpath(path) in mount_points()


def fstype_at(path: str) -> str | None:
    """The filesystem type of the topmost mount exactly at ``path`` (e.g. ``overlay``), or None."""
    real = os.path.realpath(path)
    found: str | None = None
    for point, fstype in _mounts():
        if point == real:
            found = fstype  # a later line is mounted on top of an earlier one
    return found
