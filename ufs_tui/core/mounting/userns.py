"""The user-namespace helper: how an ordinary user mounts an overlay (the ``userns`` backend).

A long-lived helper process (``unshare -rm python ...``) owns a user and mount namespace and mounts the overlay
there with the kernel's mount API (the options carry ``userxattr``). It answers with one JSON line, then holds
the namespace: the mount lives as long as the helper, which ends when the app closes its pipe (the app ended,
even by SIGKILL) or, detached (the CLI), on SIGTERM from ``ufs-tui umount``. A helper is known by its pid and
its start time, so a pid the system has given to another process is never signalled.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .preflight import MountError, Problem, mount_refused
from .syscalls import KernelMountError, kernel_mount

if TYPE_CHECKING:
    from .record import MountHandle

HELPER_TIMEOUT = 30.0  # seconds the helper may take to answer, and to end
# The dir holding the ufs_tui package (this is ufs_tui/core/mounting/userns.py): the helper imports it from there.
PACKAGE_PARENT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))


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


def start_helper(
    params: Sequence[tuple[str, str | None]], target: str, detach: bool
) -> tuple[subprocess.Popen[bytes], int | None, list[str]]:
    """Start a helper that mounts an overlay with ``params`` at ``target`` in its own namespace: the helper, its
    start time (to know it again) and what the kernel logged about the mount. Raise :class:`MountError` when it
    did not mount (no helper is left).

    ``detach``: the helper outlives this process (until SIGTERM); otherwise it ends when this process does."""
    req = {"params": list(params), "target": target, "detach": detach}
    env = dict(os.environ, PYTHONPATH=PACKAGE_PARENT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    code = "import sys; from ufs_tui.core.mounting.userns import _helper_main; sys.exit(_helper_main())"
    argv = ["unshare", "-rm", _python(), "-c", code, json.dumps(req)]
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL if detach else subprocess.PIPE,
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
        _stop_proc(proc)
        err_text = proc.stderr.read().decode("utf-8", "replace").strip() if proc.stderr else ""
        if reply:
            raise mount_refused([str(m) for m in reply.get("messages", [])], reply.get("errno"))
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
    return proc, _start_time(proc.pid), [str(m) for m in reply.get("messages") or ()]


def _stop_proc(proc: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(OSError):
        proc.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(timeout=HELPER_TIMEOUT)


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


def helper_alive(pid: int | None, start: int | None) -> bool:
    """Whether the helper recorded as ``pid`` started at ``start`` still runs (and holds its mount)."""
    return pid is not None and start is not None and _start_time(pid) == start


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


def stop_helper(h: MountHandle) -> None:
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
    if pid is None or not helper_alive(pid, h.helper_start):
        return  # gone already (or the pid now belongs to someone else: never signal it)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pid, HELPER_TIMEOUT):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
        _wait_gone(pid, HELPER_TIMEOUT)
