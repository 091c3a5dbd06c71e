"""Helpers for tests: real overlay mounts and a kernel-side snapshot of a merged tree.

The kernel is the oracle: :func:`kernel_tree` reads a real mount point with
``lstat``/``readlink``/``read``, :func:`model_tree` computes the same shape from the
layers with ufs_tui's core, and tests compare the two.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator

from tests import nobody
from ufs_tui.core.model.markers import KIND_BY_FMT
from ufs_tui.core.model.merge import Entry, OverlayView
from ufs_tui.core.model.stack import Stack

# What is compared per path: (type, mode, size, symlink target, sha256 of content for files)
Facts = tuple[str, int, int, str | None, str | None]


def mount_overlay(lowers: list[str], upper: str | None, work: str | None, target: str, options: str = "") -> None:
    opts = "lowerdir=" + ":".join(lowers)
    if upper:
        opts += f",upperdir={upper},workdir={work}"
    if options:
        opts += "," + options
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, target], capture_output=True, text=True)
    if r.returncode != 0:
        raise OSError(f"mount failed ({opts}): {r.stderr.strip()}")


def umount(target: str) -> None:
    subprocess.run(["umount", target], check=True, capture_output=True)


@contextlib.contextmanager
def mounted(lowers: list[str], upper: str | None, work: str | None, target: str, options: str = "") -> Iterator[str]:
    mount_overlay(lowers, upper, work, target, options)
    try:
        yield target
    finally:
        umount(target)


@functools.cache
def can_mount_overlay() -> bool:
    if os.geteuid() != 0:
        return False
    d = tempfile.mkdtemp(prefix="ufs-probe-")
    try:
        for n in ("l", "u", "w", "m"):
            os.mkdir(os.path.join(d, n))
        try:
            mount_overlay([f"{d}/l"], f"{d}/u", f"{d}/w", f"{d}/m")
        except OSError:
            return False
        umount(f"{d}/m")
        return True
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


@functools.cache
def can_userns_overlay() -> bool:
    if not shutil.which("unshare"):
        return False
    d = tempfile.mkdtemp(prefix="ufs-probe-")
    try:
        for n in ("l", "u", "w", "m"):
            os.mkdir(os.path.join(d, n))
        os.chmod(d, 0o777)
        for n in ("l", "u", "w", "m"):
            os.chmod(os.path.join(d, n), 0o777)
        opts = f"lowerdir={d}/l,upperdir={d}/u,workdir={d}/w,userxattr"
        script = f"mount -t overlay overlay -o {opts} {d}/m && umount {d}/m"
        argv = ["unshare", "-rm", "sh", "-c", script]
        if os.geteuid() == 0:
            argv = [*nobody.SETPRIV, *argv]
        return subprocess.run(argv, capture_output=True).returncode == 0
    finally:
        subprocess.run(["chmod", "-R", "u+rwx", d], capture_output=True)
        shutil.rmtree(d, ignore_errors=True)


def model_digest(e: Entry) -> str | None:
    """What reading a merged file gives, by the model: its source's digest, or the error opening it gives."""
    if e.kind != "file":
        return None
    if e.data_error:
        return f"error:{errno.ENOENT}"  # the model says: no data-only layer has it, open fails (ENOENT)
    return _digest(e.source)


def _digest(path: str) -> str | None:
    try:
        with open(path, "rb") as f:
            return hashlib.sha256(f.read()).hexdigest()
    except OSError as e:
        return f"error:{e.errno}"


def kernel_tree(mnt: str) -> dict[str, Facts]:
    """What the kernel shows under a mount point: every name ``lstat`` succeeds on (readdir may list
    names ``stat`` says do not exist, e.g. whiteouts in non-merged dirs: those are left out)."""
    out: dict[str, Facts] = {}

    def walk(real: str, rel: str) -> None:
        for name in sorted(os.listdir(real)):
            p = os.path.join(real, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            kind = KIND_BY_FMT.get(stat.S_IFMT(st.st_mode), "unknown")
            target = os.fsdecode(os.readlink(p)) if kind == "symlink" else None
            digest = _digest(p) if kind == "file" else None
            path = rel + "/" + name
            size = st.st_size if kind in ("file", "symlink") else 0
            out[path] = (kind, stat.S_IMODE(st.st_mode), size, target, digest)
            if kind == "dir":
                walk(p, path)

    walk(mnt, "")
    return out


def model_tree(stack: Stack) -> dict[str, Facts]:
    """The same facts computed by ufs_tui's model from the layers alone."""
    out: dict[str, Facts] = {}
    view = OverlayView(stack)
    for path, e in view.walk():
        digest = model_digest(e)
        out[path] = (e.kind, e.mode, e.size if e.kind in ("file", "symlink") else 0, e.target, digest)
    # The one-pass walk of ``tree --format json`` (eager scans, nothing cached) must see the same tree.
    eager = {
        path: (e.kind, e.mode, e.size if e.kind in ("file", "symlink") else 0, e.target, e.status, e.source)
        for path, e in OverlayView(stack).walk(cache=False, eager=True)
    }
    lazy = {path: (*facts[:4], e.status, e.source) for (path, e), facts in zip(view.walk(), out.values(), strict=True)}
    assert eager == lazy, "the eager walk differs from the lazy one"
    return out
