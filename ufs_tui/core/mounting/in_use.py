"""Whether another overlay mount already uses a stack's upper or work dir, and whose it is.

Two mounts writing through one upper are undefined (with index=on the kernel refuses the second: EBUSY). The
mounts are found in ``/proc/self/mountinfo`` and, for this user's userns and fuse mounts (whose dirs that table
does not show), in the record; a container's root file system is named after its container.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..model.errors import UfsError
from ..model.stack import Stack
from .preflight import IN_USE, Problem
from .record import MountHandle, Record, is_live

if TYPE_CHECKING:
    from ..sources.mountinfo import OverlayMount

ENGINE_WORDS = {"docker": "Docker", "podman": "Podman", "containerd": "containerd"}


@dataclass(frozen=True)
class MountUser:
    """Another overlay mount that uses some dirs: its target, its upper and work dir, and where it is known from."""

    target: str
    dirs: tuple[str | None, ...]  # its upper and work dir
    backend: str | None = None  # a mount of ours, from the record (userns and fuse ones are not in this table)
    mount: OverlayMount | None = None  # a line of the mount table

    @property
    def where(self) -> str:
        return f"{self.target} ({self.backend}, ufs-tui)" if self.backend else self.target

    def container(self) -> tuple[str, str] | None:
        """(engine, name) of the engine's container whose root file system this mount is, when that can be told:
        the engine's records are read, so only for the mount a problem is about."""
        from ..sources import attribute

        m = attribute(self.mount) if self.mount is not None else None
        if m is None or not m.container:
            return None
        return ENGINE_WORDS.get(m.engine or "", m.engine or "an engine's"), m.container


def _mount_users(runtime: str | None, replacing: MountHandle | None) -> list[MountUser]:
    """Every overlay mount with an upper: /proc/self/mountinfo, and this user's record (userns and fuse mounts do
    not show their dirs in this namespace's mountinfo)."""
    from ..sources.mountinfo import read_mountinfo

    users: list[MountUser] = []
    skip = {replacing.target} if replacing is not None and replacing.backend != "userns" else set()
    try:
        users += [MountUser(m.target, (m.upper, m.work), mount=m) for m in read_mountinfo() if m.upper]
    except (OSError, UfsError):
        pass
    users = [u for u in users if u.target not in skip]
    if runtime is None:
        return users
    try:
        entries = Record(runtime).entries()
    except (OSError, UfsError):
        entries = []
    for rec in entries:
        try:
            h = MountHandle.from_record(rec)
        except (KeyError, TypeError, ValueError, UfsError):
            continue
        if (replacing is not None and h.id == replacing.id) or h.stack.upper is None or not is_live(h):
            continue
        if any(u.target == h.target for u in users):
            continue
        users.append(MountUser(h.target, (h.stack.upper.path, h.stack.work), backend=h.backend))
    return users


def _same_dir(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


def _uses(user: MountUser, path: str) -> bool:
    return any(d and _same_dir(path, d) for d in user.dirs)


def mounted_with(path: str, runtime: str | None = None) -> list[str]:
    """Where the overlay mounts that use ``path`` as their upper or work dir are, in words."""
    out = []
    for u in _mount_users(runtime, None):
        if _uses(u, path):
            c = u.container()
            out.append(f"{c[0]} container {c[1]}" if c else u.where)
    return out


def in_use_problems(
    stack: Stack,
    options: Sequence[str] = (),
    runtime: str | None = None,
    replacing: MountHandle | None = None,
    allow: bool = False,
) -> tuple[list[Problem], list[Problem]]:
    """(errors, warnings): the stack's upper or work dir already used by another overlay mount.

    ``replacing``: the mount that is about to be unmounted for this one (not counted). With index=on the kernel
    refuses (EBUSY); without, it only logs a warning and writes through both mounts are undefined: an error
    (kind IN_USE, which ``allow`` turns into a warning: the CLI's --force) unless ``allow``."""
    if stack.upper is None:
        return [], []
    mine = [("upper", stack.upper.path)] + ([("work dir", stack.work)] if stack.work else [])
    users = _mount_users(runtime, replacing)
    indexed = "index=on" in options
    errors: list[Problem] = []
    warnings: list[Problem] = []
    for what, path in mine:
        user = next((u for u in users if _uses(u, path)), None)
        if user is None:
            continue
        c = user.container()
        if c is not None:
            engine, name = c
            said = f"the {what} is in use by {engine} container {name} (its root file system, mounted at {user.target})"
            fix = f"stop the container ({name}) first, or commit its upper into new dirs and mount those"
        else:
            said = f"the {what} is in use by another overlay mount at {user.where}"
            fix = f"unmount {user.target} first, or use another upper and work dir"
        if indexed:
            kernel = f"with index=on the kernel refuses it (EBUSY: {what.split()[0]}dir is in-use)"
            errors.append(Problem(path, f"{said}; {kernel}", fix))
        elif allow:
            warnings.append(
                Problem(path, f"{said}: writes through both mounts are undefined", "unmount one of them soon")
            )
        else:
            undefined = "the kernel allows it, but writes through both mounts are undefined"
            errors.append(Problem(path, f"{said} ({undefined})", fix, kind=IN_USE))
    return errors, warnings
