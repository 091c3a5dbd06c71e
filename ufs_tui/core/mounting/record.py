"""What ufs-tui mounted, so it can undo it: a :class:`MountHandle` per mount, kept in a record.

The record is a JSON list in the app's runtime dir (:func:`runtime_dir`), written under a lock and replaced
atomically on every change, so ``ufs-tui umount --mine`` finds every mount this user's ufs-tui processes made,
even after a crash; :func:`is_live` tells whether a recorded mount is still there.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import stat
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..model.errors import UfsError
from ..model.stack import Stack, parse_lowerdir
from .mount_table import is_mount_point
from .userns import helper_alive

RECORD_NAME = "mounts.json"


def runtime_dir(create: bool = True) -> str:
    """The app's private dir for mount points and the record.

    ``$UFS_TUI_RUNTIME_DIR`` when set; else ``/run/ufs-tui`` for root,
    ``$XDG_RUNTIME_DIR/ufs-tui`` when that exists and is ours, else
    ``/tmp/ufs-tui-$UID``. It must be a real dir owned by us (not a symlink).
    """
    uid = os.geteuid()
    base = os.environ.get("UFS_TUI_RUNTIME_DIR")
    if not base:
        xdg = os.environ.get("XDG_RUNTIME_DIR")
        if uid == 0:
            base = "/run/ufs-tui"
        elif xdg and _owned_dir(xdg, uid):
            base = os.path.join(xdg, "ufs-tui")
        else:
            base = f"/tmp/ufs-tui-{uid}"
    if create:
        try:
            os.mkdir(base, 0o700)
        except FileExistsError:
            pass
        except OSError as e:
            raise UfsError(
                f"{base}: cannot create the runtime dir: {e.strerror} (fix: create its parent dir, or set "
                "UFS_TUI_RUNTIME_DIR to a dir you own)"
            ) from None
    if os.path.lexists(base) and not _owned_dir(base, uid):
        raise UfsError(
            f"{base}: the runtime dir is not a directory owned by uid {uid} (fix: remove it, or set "
            "UFS_TUI_RUNTIME_DIR to a dir you own)"
        )
    return base


def _owned_dir(path: str, uid: int) -> bool:
    try:
        st = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(st.st_mode) and st.st_uid == uid


@dataclass
class MountHandle:
    """One mount the app made. ``path`` is where the merged view can be read from this process."""

    id: str
    backend: str
    target: str
    stack: Stack
    options: tuple[str, ...]
    created_target: bool = False
    helper_pid: int | None = None
    helper_start: int | None = None
    owner_pid: int = field(default_factory=os.getpid)
    detached: bool = False
    proc: subprocess.Popen[bytes] | None = field(default=None, repr=False, compare=False)
    # Said when it was mounted (not kept in the record): ufs_tui's own warnings and what the kernel logged.
    warnings: list[str] = field(default_factory=list, repr=False, compare=False)

    @property
    def path(self) -> str:
        if self.backend == "userns" and self.helper_pid is not None:
            return f"/proc/{self.helper_pid}/root{self.target}"
        return self.target

    @property
    def note(self) -> str:
        """One line for the user about where the mount is and who can see it."""
        if self.backend == "userns":
            return (
                f"mounted in a user namespace at {self.target}: visible only inside that namespace (held by "
                f"process {self.helper_pid}); read it from outside at {self.path}"
            )
        return f"mounted at {self.target} ({self.backend})"

    def to_record(self) -> dict[str, Any]:
        s = self.stack
        return {
            "id": self.id,
            "backend": self.backend,
            "target": self.target,
            "lowerdir": s.lowerdir_option(),
            "upper": s.upper.path if s.upper else None,
            "work": s.work,
            "xattr_ns": s.xattr_ns,
            "stack_options": list(s.options),
            "options": list(self.options),
            "created_target": self.created_target,
            "helper_pid": self.helper_pid,
            "helper_start": self.helper_start,
            "owner_pid": self.owner_pid,
            "detached": self.detached,
            "mounted_at": time.time(),
        }

    @classmethod
    def from_record(cls, rec: dict[str, Any]) -> MountHandle:
        parsed = parse_lowerdir(rec["lowerdir"])
        normal = [p for p, d in parsed if not d]
        data = [p for p, d in parsed if d]
        bare = Stack((), xattr_ns=rec.get("xattr_ns", "trusted"), options=tuple(rec.get("stack_options", ())))
        stack = bare.relayered(normal, rec.get("upper"), rec.get("work"), data)
        return cls(
            id=rec["id"],
            backend=rec["backend"],
            target=rec["target"],
            stack=stack,
            options=tuple(rec.get("options", ())),
            created_target=bool(rec.get("created_target")),
            helper_pid=rec.get("helper_pid"),
            helper_start=rec.get("helper_start"),
            owner_pid=int(rec.get("owner_pid", 0)),
            detached=bool(rec.get("detached")),
        )


class Record:
    """The JSON list of our mounts in the runtime dir; every change is locked and replaces the file atomically."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, RECORD_NAME)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        lock = os.path.join(self.directory, "mounts.lock")
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        except OSError as e:
            raise UfsError(
                f"{lock}: cannot open the mount record's lock: {e.strerror} (fix: check the runtime dir "
                f"{self.directory}, or set UFS_TUI_RUNTIME_DIR to a dir you own)"
            ) from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)

    def _read(self) -> list[dict[str, Any]]:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return []
        except (OSError, ValueError):
            return []
        mounts = data.get("mounts", []) if isinstance(data, dict) else []
        return [m for m in mounts if isinstance(m, dict) and "id" in m and "target" in m]

    def _write(self, mounts: list[dict[str, Any]]) -> None:
        fd, tmp = tempfile.mkstemp(prefix=".mounts-", dir=self.directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump({"version": 1, "mounts": mounts}, f, indent=1)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self.path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise

    def entries(self) -> list[dict[str, Any]]:
        with self._locked():
            return self._read()

    def add(self, entry: dict[str, Any]) -> None:
        with self._locked():
            self._write([m for m in self._read() if m["id"] != entry["id"]] + [entry])

    def remove(self, mount_id: str) -> None:
        with self._locked():
            mounts = self._read()
            kept = [m for m in mounts if m["id"] != mount_id]
            if len(kept) != len(mounts):
                self._write(kept)


def recorded(runtime: str | None = None) -> list[MountHandle]:
    """Every mount in this user's record (made by any ufs_tui process)."""
    return [MountHandle.from_record(m) for m in Record(runtime or runtime_dir()).entries()]


def is_live(h: MountHandle) -> bool:
    """Whether a recorded mount is still there: its helper runs (userns), or its target is a mount point."""
    if h.backend == "userns":
        return helper_alive(h.helper_pid, h.helper_start)
    return is_mount_point(h.target)
