"""Mounting stacks: backends, the record of what we mounted, and cleanup.

Backends:

* ``kernel``: ``mount -t overlay`` done with the kernel's mount API
  (fsopen/fsconfig/fsmount), which hands back the kernel's reason when a mount
  fails. Needs root (CAP_SYS_ADMIN).
* ``userns``: for ordinary users. A long-lived helper process
  (``unshare -rm python ...``) owns a user and mount namespace and mounts the
  overlay there with ``userxattr``. **The mount is visible only inside that
  namespace**; the app keeps it reachable at ``/proc/PID/root/TARGET`` (PID =
  the helper; its owner can read there). The helper lives as long as the app's
  pipe to it is open (it ends when the app ends, even on SIGKILL) or, for
  ``detach=True`` (the CLI), until ``ufs-tui umount``.
* ``fuse``: ``fuse-overlayfs`` when it is installed (unmounted with ``fusermount3 -u``).

:class:`MountManager` is what the UI and the CLI own: :meth:`~MountManager.mount`
gives a :class:`MountHandle`, :meth:`~MountManager.unmount` and
:meth:`~MountManager.unmount_all` undo it. Every mount is written to a record
(JSON, in the runtime dir, replaced atomically) so ``ufs-tui umount --mine``
can clean up after a crash; :func:`install_signal_cleanup` unmounts everything
on SIGTERM, SIGHUP (a dropped SSH session) and at exit.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from ..model.errors import UfsError
from ..model.libc import libc as load_libc
from ..model.stack import Stack, escape_layer_path, parse_lowerdir
from .preflight import (
    BUSY,
    IN_USE,
    NOT_EMPTY,
    MountError,
    Problem,
    check_mount,
    clean_message,
    explain,
    known_reason,
    mount_warnings,
    one_line,
    parse_option,
)

if TYPE_CHECKING:
    from ..sources.mountinfo import OverlayMount

Backend = Literal["kernel", "userns", "fuse"]
BACKENDS: tuple[str, ...] = ("kernel", "userns", "fuse")
HELPER_TIMEOUT = 30.0
RECORD_NAME = "mounts.json"

# ------------------------------------------------------------------ runtime dir


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
    import stat as _stat

    try:
        st = os.lstat(path)
    except OSError:
        return False
    return _stat.S_ISDIR(st.st_mode) and st.st_uid == uid


# ------------------------------------------------------------------ options


def mount_options(stack: Stack, backend: str, options: Sequence[str] = ()) -> tuple[str, ...]:
    """The options to mount ``stack`` with: the user's, plus ``userxattr`` where the markers need it.

    The userns backend always needs ``userxattr``; the kernel backend gets it
    when the stack's markers are ``user.overlay.*``. The same option is never
    listed twice.
    """
    out: list[str] = []
    for opt in [*options, *(o for o in stack.options if o == "userxattr")]:
        if opt not in out:
            out.append(opt)
    wants_user = backend == "userns" or (backend == "kernel" and stack.xattr_ns == "user")
    if wants_user and "userxattr" not in out:
        out.append("userxattr")
    return tuple(out)


def mount_params(stack: Stack, options: Sequence[str] = ()) -> list[tuple[str, str | None]]:
    """(key, value) pairs for the kernel, in order; values escaped like the legacy option string."""
    params: list[tuple[str, str | None]] = [("lowerdir", stack.lowerdir_option())]
    if stack.upper is not None:
        params.append(("upperdir", escape_layer_path(stack.upper.path)))
    if stack.work is not None:
        params.append(("workdir", escape_layer_path(stack.work)))
    params.extend(parse_option(o) for o in options)
    return params


def option_string(stack: Stack, options: Sequence[str] = ()) -> str:
    """The ``-o`` string ``mount -t overlay`` would take (one source: :func:`mount_params`)."""
    return ",".join(k if v is None else f"{k}={v}" for k, v in mount_params(stack, options))


# ------------------------------------------------------------------ the kernel's mount API

_SYS_MOVE_MOUNT, _SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 429, 430, 431, 432
_FSCONFIG_SET_FLAG, _FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 0, 1, 6
_FSOPEN_CLOEXEC, _FSMOUNT_CLOEXEC, _MOVE_MOUNT_F_EMPTY_PATH = 1, 1, 4
_AT_FDCWD = -100
MNT_DETACH = 2


class KernelMountError(OSError):
    """A failed mount, with what the kernel said (the mount API's log and new kernel-log lines)."""

    def __init__(self, err: int, messages: list[str]) -> None:
        super().__init__(err, os.strerror(err))
        self.messages = messages


def _syscall(nr: int, *args: Any) -> int:
    libc = load_libc()
    if libc is None:
        raise OSError(errno.ENOSYS, "no libc")
    r = int(libc.syscall(ctypes.c_long(nr), *args))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def _fs_log(fd: int) -> list[str]:
    out: list[str] = []
    for _ in range(64):
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out.append(data.decode("utf-8", "replace").strip())
    return out


class _KernelLogTail:
    """New overlay lines in /dev/kmsg since creation (empty when it cannot be read, e.g. unprivileged)."""

    def __init__(self) -> None:
        self.fd: int | None
        try:
            self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            self.fd = None

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.fd is None:
            return out
        for _ in range(1000):
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:
                    continue
                break
            if not rec:
                break
            text = rec.decode("utf-8", "replace").split(";", 1)[-1].split("\n", 1)[0]
            if "overlay" in text:
                out.append(text.strip())
        return out

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


FSCONFIG_VALUE_MAX = 255  # fsconfig copies at most 256 bytes of a string value, its NUL included (else EINVAL)


def kernel_mount(params: Sequence[tuple[str, str | None]], target: str) -> list[str]:
    """Mount an overlay at ``target`` with the new mount API; raise :class:`KernelMountError` with the reason.

    Returns what the kernel logged about a mount it made anyway (e.g. an upper already in use by another
    mount: only a warning without index=on)."""
    tail = _KernelLogTail()
    try:
        if any(v is not None and len(os.fsencode(v)) > FSCONFIG_VALUE_MAX for _, v in params):
            return _legacy_mount(params, target, tail)  # mount(2) takes a page of options
        try:
            fsfd = _syscall(_SYS_FSOPEN, ctypes.c_char_p(b"overlay"), ctypes.c_uint(_FSOPEN_CLOEXEC))
        except OSError as e:
            if e.errno == errno.ENOSYS:
                return _legacy_mount(params, target, tail)
            raise KernelMountError(e.errno or errno.EIO, tail.lines()) from None
        try:
            try:
                for key, value in params:
                    if value is None:
                        _syscall(
                            _SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_SET_FLAG),
                            ctypes.c_char_p(key.encode()), ctypes.c_void_p(None), ctypes.c_int(0),
                        )  # fmt: skip
                    else:
                        _syscall(
                            _SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_SET_STRING),
                            ctypes.c_char_p(key.encode()), ctypes.c_char_p(os.fsencode(value)), ctypes.c_int(0),
                        )  # fmt: skip
                _syscall(
                    _SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_CMD_CREATE),
                    ctypes.c_void_p(None), ctypes.c_void_p(None), ctypes.c_int(0),
                )  # fmt: skip
                mfd = _syscall(_SYS_FSMOUNT, ctypes.c_int(fsfd), ctypes.c_uint(_FSMOUNT_CLOEXEC), ctypes.c_uint(0))
            except OSError as e:
                raise KernelMountError(e.errno or errno.EIO, _fs_log(fsfd) + tail.lines()) from None
            said = _fs_log(fsfd)
            try:
                _syscall(
                    _SYS_MOVE_MOUNT, ctypes.c_int(mfd), ctypes.c_char_p(b""), ctypes.c_int(_AT_FDCWD),
                    ctypes.c_char_p(os.fsencode(target)), ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH),
                )  # fmt: skip
            except OSError as e:
                raise KernelMountError(e.errno or errno.EIO, tail.lines()) from None
            finally:
                os.close(mfd)
            return [m for m in dict.fromkeys(said + tail.lines()) if m]
        finally:
            os.close(fsfd)
    finally:
        tail.close()


def _legacy_mount(params: Sequence[tuple[str, str | None]], target: str, tail: _KernelLogTail) -> list[str]:
    libc = load_libc()
    assert libc is not None
    data = ",".join(k if v is None else f"{k}={v}" for k, v in params)
    r = libc.mount(b"overlay", os.fsencode(target), b"overlay", ctypes.c_ulong(0), os.fsencode(data))
    if r != 0:
        raise KernelMountError(ctypes.get_errno(), tail.lines())
    return tail.lines()


def kernel_umount(target: str, lazy: bool = False) -> None:
    libc = load_libc()
    if libc is None:
        raise OSError(errno.ENOSYS, "no libc")
    if libc.umount2(os.fsencode(target), ctypes.c_int(MNT_DETACH if lazy else 0)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), target)


def mount_points() -> set[str]:
    """Mount points of this process's mount namespace (from /proc/self/mountinfo, unescaped)."""
    from ..sources.mountinfo import unescape_octal

    out: set[str] = set()
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                fields = line.split(b" ")
                if len(fields) > 4:
                    out.add(unescape_octal(os.fsdecode(fields[4])))
    except OSError:
        pass
    return out


def is_mount_point(path: str) -> bool:
    return os.path.realpath(path) in mount_points()


def fstype_at(path: str) -> str | None:
    """The filesystem type of the topmost mount exactly at ``path`` (e.g. ``overlay``), or None."""
    from ..sources.mountinfo import unescape_octal

    real = os.path.realpath(path)
    found: str | None = None
    try:
        with open("/proc/self/mountinfo", "rb") as f:
            for line in f:
                head, sep, tail = line.partition(b" - ")
                fields = head.split(b" ")
                if sep and len(fields) > 4 and unescape_octal(os.fsdecode(fields[4])) == real:
                    found = os.fsdecode(tail.split(b" ", 1)[0])
    except OSError:
        return None
    return found


# ------------------------------------------------------------------ the userns helper


def _helper_main() -> int:
    """Runs inside ``unshare -rm``: mount, report one JSON line on stdout, then hold the namespace."""
    req = json.loads(sys.argv[1])
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        said = kernel_mount([(k, v) for k, v in req["params"]], req["target"])
        reply: dict[str, Any] = {"ok": True, "messages": said}
    except KernelMountError as e:
        reply = {"ok": False, "errno": e.errno, "messages": e.messages}
    except OSError as e:
        reply = {"ok": False, "errno": e.errno, "messages": [str(e)]}
    sys.stdout.write(json.dumps(reply) + "\n")
    sys.stdout.flush()
    if not reply["ok"]:
        return 32
    os.close(1)
    if req["detach"]:
        while True:
            signal.pause()
    # Hold the namespace until the app closes our stdin (it quits, or is killed).
    while os.read(0, 4096):
        pass
    return 0


def _python() -> str:
    """An interpreter this user can run for the helper (it needs only the standard library and ufs_tui.core)."""
    if sys.executable and os.access(sys.executable, os.X_OK):
        return sys.executable
    return shutil.which("python3") or sys.executable


def _start_time(pid: int) -> int | None:
    """A process's start time (clock ticks since boot): tells a live helper from a reused pid."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except OSError:
        return None
    rest = data.rsplit(b")", 1)[-1].split()
    if not rest or rest[0] in (b"Z", b"X"):
        return None  # exited (a zombie not yet reaped is not a live helper)
    try:
        return int(rest[19])
    except (IndexError, ValueError):
        return None


def _wait_gone(pid: int, timeout: float) -> bool:
    """Wait (bounded) until process ``pid`` has exited; True when it has."""
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return True
    except OSError:
        return _start_time(pid) is None
    try:
        r, _, _ = select.select([pidfd], [], [], timeout)
        return bool(r)
    finally:
        os.close(pidfd)


# ------------------------------------------------------------------ handles


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


# ------------------------------------------------------------------ the record


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


# ------------------------------------------------------------------ the manager


def resolve_backend(backend: str) -> str:
    """``auto`` → ``kernel`` for root, else ``userns``; others checked against :data:`BACKENDS`."""
    if backend == "auto":
        return "kernel" if os.geteuid() == 0 else "userns"
    if backend not in BACKENDS:
        raise UfsError(f"--backend {backend}: unknown backend (use auto, kernel, userns or fuse)")
    return backend


def target_problem(target: str) -> Problem | None:
    """Why ``target`` is not a free mount point; None when it is an existing empty dir.

    A non-empty dir is reported so the caller can ask for confirmation (``force``)."""
    try:
        names = os.listdir(target)
    except FileNotFoundError:
        return Problem(target, "the mount target does not exist", "create it (mkdir) or leave it out for a fresh one")
    except NotADirectoryError:
        return Problem(target, "the mount target is not a directory", "give an empty directory")
    except OSError as e:
        return Problem(target, f"the mount target cannot be read: {e.strerror}", "give an empty directory you own")
    if names:
        return Problem(
            target,
            f"the mount target is not empty ({len(names)} entries would be hidden while mounted)",
            "give an empty dir, or confirm to mount over it",
            kind=NOT_EMPTY,
        )
    return None


def _same_dir(a: str, b: str) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return os.path.realpath(a) == os.path.realpath(b)


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
        if (replacing is not None and h.id == replacing.id) or h.stack.upper is None or not _is_live(h):
            continue
        if any(u.target == h.target for u in users):
            continue
        users.append(MountUser(h.target, (h.stack.upper.path, h.stack.work), backend=h.backend))
    return users


ENGINE_WORDS = {"docker": "Docker", "podman": "Podman", "containerd": "containerd"}


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


def preflight(
    stack: Stack,
    backend: str = "auto",
    options: Sequence[str] = (),
    runtime: str | None = None,
    replacing: MountHandle | None = None,
    allow_in_use: bool = False,
    will_create: Sequence[str] = (),
) -> list[Problem]:
    """The one mount preflight (the stack editor, the CLI and the mount itself ask it): what mounting ``stack``
    with ``backend`` and ``options`` would fail on, said before the kernel does; pure, nothing is written.

    ``runtime``: this user's record, whose mounts count as in use; ``replacing``: a mount of ours unmounted
    first (a remount), whose upper and work dir do not; ``will_create``: dirs made (empty) just before."""
    try:
        resolved = resolve_backend(backend)
    except UfsError as e:
        return [Problem("backend", str(e), "pick auto, kernel, userns or fuse")]
    out: list[Problem] = []
    if not stack.lowers:
        out.append(Problem("lowers", "a stack needs at least one lower layer", "add a lower layer"))
    opts = mount_options(stack, resolved, options)
    out.extend(check_mount(stack, opts, resolved, will_create))
    if resolved == "fuse" and not shutil.which("fuse-overlayfs"):
        out.append(
            Problem("backend fuse", "fuse-overlayfs is not installed", "install it (apt-get install fuse-overlayfs)")
        )
    if resolved == "userns" and not shutil.which("unshare"):
        out.append(Problem("backend userns", "'unshare' is not installed", "install util-linux"))
    out.extend(in_use_problems(stack, opts, runtime, replacing, allow_in_use)[0])
    return out


def unmount_busy(e: MountError) -> bool:
    """Whether an unmount failed because the mount is busy (EBUSY): worth retrying once programs let go."""
    return any(p.kind == BUSY for p in e.problems)


class RemountError(MountError):
    """A remount that did not happen. ``now`` is what is mounted at the target afterwards: the old mount
    (never unmounted, or mounted again) or None (nothing); ``outcome`` says so in words, and ``phase``
    where it stopped: ``check`` (refused before anything was touched), ``unmount`` (the old mount could
    not be unmounted: still there), ``mount`` (the new stack failed; the old one is mounted again) or
    ``lost`` (the old one could not be mounted again either)."""

    def __init__(self, cause: BaseException, phase: str, now: MountHandle | None, outcome: str) -> None:
        if isinstance(cause, MountError):
            super().__init__(cause.problems, cause.detail, cause.source)
        else:
            super().__init__([Problem("remount", str(cause), "see the message, fix it and apply again")])
        self.cause = cause
        self.phase = phase
        self.now = now
        self.outcome = outcome


class MountManager:
    """The mounts one app (or one CLI run) owns. Thread-safe; use as a context manager to unmount on exit.

    ``runtime`` is the runtime dir (default :func:`runtime_dir`), where fresh
    targets are made and the record is kept.
    """

    def __init__(self, runtime: str | None = None) -> None:
        self.runtime = runtime or runtime_dir()
        self.record = Record(self.runtime)
        self.handles: list[MountHandle] = []
        self._lock = threading.RLock()

    def __enter__(self) -> MountManager:
        return self

    def __exit__(self, *exc: object) -> None:
        self.unmount_all()

    # ---------------------------------------------------------- mount
    def check(
        self,
        stack: Stack,
        backend: str = "auto",
        options: Sequence[str] = (),
        allow_in_use: bool = False,
        replacing: MountHandle | None = None,
        will_create: Sequence[str] = (),
    ) -> list[Problem]:
        """Problems :meth:`mount` would refuse with (:func:`preflight` with this manager's runtime dir)."""
        return preflight(stack, backend, options, self.runtime, replacing, allow_in_use, will_create)

    def warnings(
        self,
        stack: Stack,
        backend: str = "auto",
        options: Sequence[str] = (),
        allow_in_use: bool = False,
        replacing: MountHandle | None = None,
    ) -> list[Problem]:
        """What will mount but not work as hoped (redirects not followed, a shared upper with --force)."""
        backend = resolve_backend(backend)
        opts = mount_options(stack, backend, options)
        out = mount_warnings(stack, opts, backend)
        if allow_in_use:
            out.extend(in_use_problems(stack, opts, self.runtime, replacing, allow=True)[1])
        return out

    def plan(self, stack: Stack, target: str | None = None, backend: str = "auto", options: Sequence[str] = ()) -> str:
        """What mounting will write, in words (say it before doing it)."""
        backend = resolve_backend(backend)
        opts = mount_options(stack, backend, options)
        where = target or f"a new dir under {self.runtime}"
        if stack.upper is None:
            writes = "read-only stack: nothing will be written to any layer"
        else:
            writes = f"writes through the mount go to the upper {stack.upper.path}; work dir: {stack.work}"
        return f"mount ({backend}) at {where} with -o {option_string(stack, opts)}; {writes}"

    def mount(
        self,
        stack: Stack,
        target: str | None = None,
        backend: str = "auto",
        options: Sequence[str] = (),
        force: bool = False,
        detach: bool = False,
        allow_in_use: bool = False,
        replacing: MountHandle | None = None,
    ) -> MountHandle:
        """Mount ``stack`` at ``target`` (default: a fresh dir in the runtime dir); raise :class:`MountError`.

        Checks first (nothing changes when a check fails). ``force`` allows a
        non-empty target; ``allow_in_use`` an upper or work dir that another
        overlay mount uses (without index=on the kernel allows it). ``detach``
        keeps a userns mount alive after this process ends (until ``ufs-tui
        umount``); otherwise its namespace ends with this process. The handle's
        ``warnings`` say what will not work as hoped and what the kernel logged.
        """
        backend = resolve_backend(backend)
        opts = mount_options(stack, backend, options)
        problems = self.check(stack, backend, options, allow_in_use, replacing)
        created = False
        if target is not None:
            tp = target_problem(target)
            if tp is not None and not (force and tp.kind == NOT_EMPTY):
                problems.append(tp)
            target = os.path.realpath(target)
        if problems:
            raise MountError(problems)
        warned = [str(w) for w in self.warnings(stack, backend, options, allow_in_use, replacing)]
        with self._lock:
            if target is None:
                try:
                    target = tempfile.mkdtemp(prefix="mnt-", dir=self.runtime)
                except OSError as e:
                    raise MountError(
                        [
                            Problem(
                                self.runtime,
                                f"cannot make a mount target in the runtime dir: {e.strerror}",
                                "give a TARGET dir, or set UFS_TUI_RUNTIME_DIR to a dir you own",
                            )
                        ]
                    ) from None
                created = True
            handle = MountHandle(
                id=uuid.uuid4().hex, backend=backend, target=target, stack=stack, options=opts,
                created_target=created, detached=detach, warnings=warned,
            )  # fmt: skip
            try:
                if backend == "kernel":
                    self._mount_kernel(handle)
                elif backend == "userns":
                    self._mount_userns(handle)
                else:
                    self._mount_fuse(handle)
            except BaseException:
                if created:
                    with contextlib.suppress(OSError):
                        os.rmdir(target)
                raise
            self.record.add(handle.to_record())
            self.handles.append(handle)
            return handle

    def _mount_kernel(self, h: MountHandle) -> None:
        try:
            said = kernel_mount(mount_params(h.stack, h.options), h.target)
        except KernelMountError as e:
            raise MountError([explain(e.messages, e.errno)], "; ".join(clean_message(m) for m in e.messages)) from None
        h.warnings.extend(_kernel_said(said))

    def _mount_userns(self, h: MountHandle) -> None:
        req = {"params": mount_params(h.stack, h.options), "target": h.target, "detach": h.detached}
        pkg_parent = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        env = dict(os.environ, PYTHONPATH=pkg_parent + os.pathsep + os.environ.get("PYTHONPATH", ""))
        code = "import sys; from ufs_tui.core.mounting.mount import _helper_main; sys.exit(_helper_main())"
        argv = ["unshare", "-rm", _python(), "-c", code, json.dumps(req)]
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL if h.detached else subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                env=env,
                cwd="/",
                start_new_session=True,  # terminal signals (Ctrl-C, SIGHUP) must not reach the helper
                close_fds=True,
            )
        except OSError as e:
            raise MountError(
                [Problem("unshare", f"cannot start the namespace helper: {e.strerror}", "install util-linux")]
            ) from None
        assert proc.stdout is not None
        ready, _, _ = select.select([proc.stdout], [], [], HELPER_TIMEOUT)
        line = proc.stdout.readline() if ready else b""
        try:
            reply = json.loads(line) if line else None
        except ValueError:
            reply = None
        if not reply or not reply.get("ok"):
            self._stop_proc(proc)
            err_text = proc.stderr.read().decode("utf-8", "replace").strip() if proc.stderr else ""
            if reply:
                messages = [str(m) for m in reply.get("messages", [])]
                raise MountError([explain(messages, reply.get("errno"))], "; ".join(clean_message(m) for m in messages))
            raise MountError(
                [
                    Problem(
                        "--backend userns",
                        f"the user-namespace helper failed: {err_text or 'no answer'}",
                        "check that unprivileged user namespaces are enabled (sysctl kernel.unprivileged_userns_clone)",
                    )
                ]
            )
        proc.stdout.close()
        if proc.stderr:
            proc.stderr.close()
        h.warnings.extend(_kernel_said(str(m) for m in reply.get("messages") or ()))
        h.helper_pid = proc.pid
        h.helper_start = _start_time(proc.pid)
        h.proc = proc

    def _mount_fuse(self, h: MountHandle) -> None:
        s = h.stack
        opts = "lowerdir=" + ":".join(layer.path for layer in s.lowers)
        if s.upper is not None:
            opts += f",upperdir={s.upper.path}"
            if s.work is not None:
                opts += f",workdir={s.work}"
        try:
            r = subprocess.run(
                ["fuse-overlayfs", "-o", opts, h.target], capture_output=True, text=True, timeout=HELPER_TIMEOUT
            )
        except (OSError, subprocess.TimeoutExpired) as e:
            raise MountError(
                [Problem("fuse-overlayfs", f"could not run it: {e}", "check the installation, or use another backend")]
            ) from None
        if r.returncode != 0:
            raise fuse_error(r.stderr or r.stdout)

    # ---------------------------------------------------------- unmount
    def unmount(self, handle: MountHandle, lazy_fallback: bool = False, keep_target: bool = False) -> None:
        """Unmount ``handle``, drop it from the record and remove the target dir if we made it.

        ``lazy_fallback``: if the target is busy, detach it anyway (cleanup on exit/signals).
        """
        with self._lock:
            _unmount(handle, lazy_fallback)
            self.record.remove(handle.id)
            if handle in self.handles:
                self.handles.remove(handle)
            if handle.created_target and not keep_target:
                with contextlib.suppress(OSError):
                    os.rmdir(handle.target)

    def unmount_all(self) -> list[str]:
        """Unmount everything this manager mounted (newest first); returns problems, never raises."""
        problems: list[str] = []
        with self._lock:
            for h in reversed(list(self.handles)):
                if h.detached:
                    continue
                try:
                    self.unmount(h, lazy_fallback=True)
                except (UfsError, OSError) as e:
                    problems.append(f"{h.target}: {e}")
        return problems

    def remount(
        self,
        handle: MountHandle,
        stack: Stack,
        backend: str | None = None,
        options: Sequence[str] | None = None,
        tries: int = 1,
        before_mount: Callable[[], object] | None = None,
        will_create: Sequence[str] = (),
    ) -> MountHandle:
        """Replace ``handle`` by ``stack`` mounted at the same target, with ``backend`` and the overlay
        ``options`` given (default: the handle's own).

        The new stack is checked first: if it would not mount, :class:`RemountError` (phase ``check``) is
        raised and the old mount is not touched. A busy old mount is retried ``tries`` times (0.1 s apart),
        then refused (phase ``unmount``: still mounted). ``before_mount`` runs between the unmount and the
        mount (a commit creates its new dirs there; ``will_create`` names them for the checks). If the new
        stack then fails, the old one is mounted again (phase ``mount``; ``lost`` when that fails too).
        """
        backend = resolve_backend(backend or handle.backend)
        opts = tuple(handle.options if options is None else options)
        with self._lock:
            problems = self.check(stack, backend, opts, replacing=handle, will_create=will_create)
            if problems:
                raise RemountError(
                    MountError(problems), "check", handle,
                    f"Nothing was changed: the old stack is still mounted at {handle.target}.",
                )  # fmt: skip
            for attempt in range(max(1, tries)):
                try:
                    self.unmount(handle, keep_target=True)
                    break
                except MountError as e:
                    if attempt + 1 < tries and unmount_busy(e):
                        threading.Event().wait(0.1)
                        continue
                    raise RemountError(
                        e, "unmount", handle,
                        f"Nothing was changed: the old stack is still mounted at {handle.target}.",
                    ) from None  # fmt: skip
            try:
                if before_mount is not None:
                    before_mount()
                new = self.mount(stack, handle.target, backend, opts, force=True, detach=handle.detached)
            except (UfsError, OSError) as e:
                try:
                    old = self.mount(
                        handle.stack, handle.target, handle.backend, handle.options, force=True,
                        detach=handle.detached,
                    )  # fmt: skip
                except (UfsError, OSError) as e2:
                    raise RemountError(
                        e, "lost", None,
                        f"Nothing is mounted at {handle.target} now: the old stack could not be mounted again "
                        f"either ({e2}).",
                    ) from None  # fmt: skip
                old.created_target = handle.created_target
                self.record.add(old.to_record())
                raise RemountError(e, "mount", old, f"The old stack is mounted again at {handle.target}.") from None
            new.created_target = handle.created_target
            self.record.add(new.to_record())
            return new

    def _stop_proc(self, proc: subprocess.Popen[bytes]) -> None:
        with contextlib.suppress(OSError):
            proc.kill()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=HELPER_TIMEOUT)


def _kernel_said(messages: Iterable[str]) -> list[str]:
    """Lines the kernel logged about a mount it made, as warnings for the user (with a fix when it is known)."""
    out: list[str] = []
    for m in messages:
        text = clean_message(m)
        known = known_reason([text])
        if text:
            out.append(f"the kernel said: {text}" + (f" (fix: {known.fix})" if known is not None else ""))
    return out


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


def _unmount(h: MountHandle, lazy_fallback: bool) -> None:
    if h.backend == "userns":
        _stop_helper(h)
        return
    if h.backend == "fuse" and os.geteuid() != 0:
        r = subprocess.run(["fusermount3", "-u", h.target], capture_output=True, text=True, timeout=HELPER_TIMEOUT)
        if r.returncode != 0 and is_mount_point(h.target):
            busy = os.strerror(errno.EBUSY) in r.stderr  # fusermount3 says the errno only in words
            said = f"fusermount3 -u failed: {r.stderr.strip()}"
            raise MountError([Problem(h.target, said, "close programs using it", kind=BUSY if busy else "")])
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


def _stop_helper(h: MountHandle) -> None:
    """End the namespace helper (the mount ends with its namespace)."""
    if h.proc is not None:
        if h.proc.stdin is not None:
            with contextlib.suppress(OSError):
                h.proc.stdin.close()
        if h.detached:
            with contextlib.suppress(OSError):
                h.proc.terminate()
        try:
            h.proc.wait(timeout=HELPER_TIMEOUT)
        except subprocess.TimeoutExpired:
            h.proc.kill()
            h.proc.wait(timeout=HELPER_TIMEOUT)
        return
    pid = h.helper_pid
    if pid is None or h.helper_start is None or _start_time(pid) != h.helper_start:
        return  # gone already (or the pid now belongs to someone else: never signal it)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, HELPER_TIMEOUT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, HELPER_TIMEOUT)


# ------------------------------------------------------------------ record-based cleanup (CLI umount)


def recorded(runtime: str | None = None) -> list[MountHandle]:
    """Every mount in this user's record (made by any ufs_tui process)."""
    return [MountHandle.from_record(m) for m in Record(runtime or runtime_dir()).entries()]


def _is_live(h: MountHandle) -> bool:
    if h.backend == "userns":
        return h.helper_pid is not None and h.helper_start is not None and _start_time(h.helper_pid) == h.helper_start
    return is_mount_point(h.target)


def unmount_recorded(h: MountHandle, runtime: str | None = None) -> str:
    """Unmount one recorded mount (if still there), drop it from the record; returns what was done."""
    rec = Record(runtime or runtime_dir())
    live = _is_live(h)
    if live:
        _unmount(h, lazy_fallback=False)
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
    _unmount(h, lazy_fallback=False)
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


# ------------------------------------------------------------------ signals and exit

_CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def install_signal_cleanup(manager: MountManager, then: Callable[[int], None] | None = None) -> Callable[[], None]:
    """Unmount everything ``manager`` holds at exit and on SIGTERM / SIGHUP.

    After cleaning up on a signal, ``then(signum)`` is called if given (the UI
    can exit its loop there); otherwise the signal's default action runs (the
    process ends with that signal). Returns a function that undoes the
    installation. Call from the main thread.
    """
    import atexit

    previous: dict[int, Any] = {}

    def handler(signum: int, frame: object) -> None:
        manager.unmount_all()
        if then is not None:
            then(signum)
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for sig in _CLEANUP_SIGNALS:
        previous[sig] = signal.signal(sig, handler)
    atexit.register(manager.unmount_all)

    def uninstall() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
        atexit.unregister(manager.unmount_all)

    return uninstall


@contextlib.contextmanager
def managed_mounts(runtime: str | None = None, signals: bool = True) -> Iterator[MountManager]:
    """A :class:`MountManager` whose mounts are all undone when the block ends, at exit, and on SIGTERM/SIGHUP."""
    manager = MountManager(runtime)
    uninstall = install_signal_cleanup(manager) if signals else None
    try:
        yield manager
    finally:
        manager.unmount_all()
        if uninstall:
            uninstall()
