"""The host whose engines are read: this machine, or one whose ``/`` is mounted at ``--host-root DIR``.

Inside ``kubectl debug node/NAME`` (the node's ``/`` at ``/host``) or a container started with the host's
``/`` mounted, every path an engine records names a *host* path: its data root, the layer paths in the
host's mount table, the roots in its config files, the arguments of its processes. :meth:`Host.path` maps
such a path to where it is here, resolving symlinks inside DIR the way the host would (an absolute link
points into DIR again, never out of it), so ``/var/lib/docker -> /data/docker`` works as on the host.

:func:`engine_processes` reads the command lines of running engine daemons (dockerd, containerd) from the
host's ``/proc``, where it can be seen: with ``--host-root``, ``DIR/proc`` or, in a pod with ``hostPID``,
this ``/proc`` when its PID 1 is not in our mount namespace. :func:`open_files` shows what a process of this
machine holds open (its Unix sockets' paths, its files), as the kernel says.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from ..model.errors import StackError

_MAX_LINKS = 40
UNIX_TABLE_LIMIT = 64 << 20  # /proc/PID/net/unix: a line per Unix socket of its network namespace


@dataclass(frozen=True)
class Host:
    """Where the host's ``/`` is (``"/"``: ufs-tui runs on the host itself)."""

    root: str = "/"

    @property
    def local(self) -> bool:
        return self.root == "/"

    def path(self, host_path: str) -> str:
        """Where ``host_path`` (absolute on the host) is here. Symlinks under the host root are followed as the
        host follows them; a path that does not exist is joined as it is."""
        if self.local:
            return host_path
        root = self.root.rstrip("/")
        pending = [p for p in host_path.split("/") if p]
        done: list[str] = []
        links = 0
        while pending:
            name = pending.pop(0)
            if name == ".":
                continue
            if name == "..":
                if done:
                    done.pop()
                continue
            here = root + "/" + "/".join([*done, name])
            try:
                target = os.readlink(here)
            except OSError:  # not a symlink, or nothing there: taken as it is
                done.append(name)
                continue
            links += 1
            if links > _MAX_LINKS:
                raise StackError(host_path, f"too many levels of symbolic links under the host root {self.root}")
            if target.startswith("/"):
                done = []
            pending = [p for p in target.split("/") if p] + pending
        return root + "/" + "/".join(done)

    def proc(self) -> str | None:
        """The host's ``/proc`` as seen here, or None when the host's processes cannot be seen."""
        if self.local:
            return "/proc"
        for proc in (posixpath.join(self.root.rstrip("/"), "proc"), "/proc"):
            if _other_mount_ns(posixpath.join(proc, "1")):  # PID 1 there is not in ours: the host's init
                return proc
        return None

    def mountinfo(self) -> str | None:
        """The host's mount table (the one its container mounts are in), or None when it cannot be read here."""
        if self.local:
            return "/proc/self/mountinfo"
        proc = self.proc()
        return posixpath.join(proc, "1", "mountinfo") if proc else None


def _other_mount_ns(proc_pid: str) -> bool:
    """Whether the process at ``proc_pid`` is in another mount namespace than this one: by the namespace links;
    where its link may not be read (PID 1 of a host whose security module says no, as in a pod) but its mount
    table may, by the table (a mount's id is new in every namespace, so two namespaces' tables differ)."""
    try:
        return os.readlink(posixpath.join(proc_pid, "ns", "mnt")) != os.readlink("/proc/self/ns/mnt")
    except PermissionError:
        pass
    except OSError:
        return False
    try:
        with open(posixpath.join(proc_pid, "mountinfo"), "rb") as theirs, open("/proc/self/mountinfo", "rb") as mine:
            return theirs.read() != mine.read()
    except OSError:
        return False


def engine_processes(host: Host, names: tuple[str, ...]) -> list[list[str]]:
    """The argv of every running process whose program is one of ``names`` (``dockerd``, ``containerd``)."""
    return [argv for _, argv in engine_pids(host, names)]


def engine_pids(host: Host, names: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """(pid, argv) of every running process whose program is one of ``names``."""
    proc = host.proc()
    if proc is None:
        return []
    try:
        pids = [p for p in os.listdir(proc) if p.isdigit()]
    except OSError:
        return []
    out = []
    for pid in pids:
        raw = _cmdline(posixpath.join(proc, pid, "cmdline"))
        if raw is None:  # gone, or not ours to read
            continue
        argv = [os.fsdecode(a) for a in raw.split(b"\0")]
        if argv and argv[-1] == "":
            argv.pop()
        if argv and posixpath.basename(argv[0]) in names:
            out.append((pid, argv))
    return out


def _cmdline(path: str, limit: int = 65536) -> bytes | None:
    """The first ``limit`` bytes of a ``/proc/PID/cmdline`` (with os.read: a file object costs more than the read,
    and every process of the host is looked at)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    chunks: list[bytes] = []
    got = 0
    try:
        while got < limit and (chunk := os.read(fd, limit - got)):
            chunks.append(chunk)
            got += len(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    return b"".join(chunks)


def open_files(host: Host, pid: str) -> tuple[set[str], list[str]] | None:
    """What process ``pid`` of this machine holds open, as the kernel shows it: the paths of its Unix sockets (those
    it listens on among them) and of its open files. None where that cannot be seen: another user's process, or
    ``--host-root`` (the kernel names a file in the reader's view of the mounts, not in the host's)."""
    if not host.local:
        return None
    fd_dir = posixpath.join("/proc", pid, "fd")
    try:
        fds = os.listdir(fd_dir)
        with open(posixpath.join("/proc", pid, "net", "unix"), "rb") as f:
            table = f.read(UNIX_TABLE_LIMIT)
    except OSError:
        return None
    inodes: set[bytes] = set()
    files: list[str] = []
    for fd in fds:
        try:
            link = os.readlink(posixpath.join(fd_dir, fd))
        except OSError:  # closed meanwhile
            continue
        if link.startswith("socket:["):
            inodes.add(link[len("socket:[") : -1].encode())
        elif link.startswith("/"):
            files.append(link)
    sockets = set()
    for line in table.splitlines()[1:]:  # Num RefCount Protocol Flags Type St Inode Path
        cols = line.split(None, 7)
        if len(cols) == 8 and cols[6] in inodes and cols[7].startswith(b"/"):
            sockets.add(os.fsdecode(cols[7]))
    return sockets, files


def flag_value(argv: list[str], *flags: str) -> str | None:
    """The value of the last ``--flag VALUE`` or ``--flag=VALUE`` in ``argv`` (Go's flag syntax)."""
    found = None
    for i, arg in enumerate(argv):
        for flag in flags:
            if arg == flag and i + 1 < len(argv):
                found = argv[i + 1]
            elif arg.startswith(flag + "="):
                found = arg[len(flag) + 1 :]
    return found
