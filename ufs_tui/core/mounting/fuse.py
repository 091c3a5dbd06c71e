"""The ``fuse`` backend: an overlay mounted by ``fuse-overlayfs`` (unmounted with ``fusermount3 -u`` by ordinary
users, by the kernel for root), and what fuse-overlayfs says when it fails, explained.
"""

from __future__ import annotations

import errno
import os
import subprocess

from ..model.stack import Stack
from .mount_table import is_mount_point
from .preflight import BUSY, MountError, Problem, one_line

FUSE_TIMEOUT = 30.0  # seconds fuse-overlayfs and fusermount3 may take


def fuse_mount(stack: Stack, target: str) -> None:
    """Mount ``stack`` at ``target`` with fuse-overlayfs; raise :class:`MountError` with the reason."""
    opts = "lowerdir=" + ":".join(layer.path for layer in stack.lowers)
    if stack.upper is not None:
        opts += f",upperdir={stack.upper.path}"
        if stack.work is not None:
            opts += f",workdir={stack.work}"
    try:
        r = subprocess.run(["fuse-overlayfs", "-o", opts, target], capture_output=True, text=True, timeout=FUSE_TIMEOUT)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise MountError(
            [Problem("fuse-overlayfs", f"could not run it: {e}", "check the installation, or use another backend")]
        ) from None
    if r.returncode != 0:
        raise fuse_error(r.stderr or r.stdout)


def fuse_unmount(target: str) -> None:
    """``fusermount3 -u`` (a user's own fuse mount); raise :class:`MountError` when it is still mounted."""
    r = subprocess.run(["fusermount3", "-u", target], capture_output=True, text=True, timeout=FUSE_TIMEOUT)
    if r.returncode != 0 and is_mount_point(target):
        busy = os.strerror(errno.EBUSY) in r.stderr  # fusermount3 says the errno only in words
        said = f"fusermount3 -u failed: {r.stderr.strip()}"
        raise MountError([Problem(target, said, "close programs using it", kind=BUSY if busy else "")])


# (words in fuse-overlayfs's message, what is wrong, how to fix it)
_FUSE_REASONS: tuple[tuple[str, str, str], ...] = (
    ("/dev/fuse", "this user cannot use /dev/fuse", "mount as root, or use --backend userns"),
    ("fusermount", "fusermount3 refused the mount (unprivileged fuse)", "mount as root, or use --backend userns"),
    (
        "permission denied",
        "a layer or the target cannot be read by this user",
        "check the dirs' owner and mode, or mount as root",
    ),
    ("no such file", "a layer or the target does not exist", "check every path"),
    ("workdir not specified", "an upper layer needs a work dir", "give --work DIR next to the upper"),
    ("not a directory", "a layer or the target is not a directory", "give directories"),
)


def fuse_error(text: str) -> MountError:
    """fuse-overlayfs's failure (its stderr: several lines, some only noise) as one problem with a fix."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.startswith("unknown argument ignored")]
    main = next((ln for ln in reversed(lines) if ln.startswith("fuse-overlayfs:")), lines[-1] if lines else "")
    said = main.removeprefix("fuse-overlayfs:").strip() or "it gave no reason"
    low = " ".join(lines).lower()
    what, fix = next(
        ((w, f) for key, w, f in _FUSE_REASONS if key in low),
        ("the mount failed", "check the layer paths, or try the kernel backend as root"),
    )
    detail = one_line("\n".join(lines))
    return MountError([Problem("fuse-overlayfs", f"{what} ({said})", fix)], detail, "fuse-overlayfs")
