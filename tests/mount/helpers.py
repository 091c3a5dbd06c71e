"""Helpers for mount tests: run the CLI as a real process, make layer trees, snapshot layers byte for byte."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence

from tests import nobody
from ufs_tui.core.mounting.mount_table import mount_points
from ufs_tui.core.mounting.unmount import unmount_mine

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def env_for(runtime: str) -> dict[str, str]:
    return dict(os.environ, UFS_TUI_RUNTIME_DIR=runtime, PYTHONPATH=ROOT, LC_ALL="C")


def cli(
    runtime: str, *args: str, stdin: str | None = None, as_nobody: bool = False
) -> subprocess.CompletedProcess[str]:
    """``ufs-tui ARGS`` with ``runtime`` as its runtime dir: as root, or as uid 65534 (see tests/nobody.py)."""
    argv = nobody.argv("-m", "ufs_tui", *args) if as_nobody else [sys.executable, "-m", "ufs_tui", *args]
    return subprocess.run(
        argv,
        input=stdin,
        stdin=None if stdin is not None else subprocess.DEVNULL,
        capture_output=True,
        text=True,
        env=env_for(runtime),
        cwd="/",
        timeout=120,
    )


def public_tmpdir() -> str:
    """A temp dir every user can enter (pytest's tmp_path is private to root)."""
    d = tempfile.mkdtemp(prefix="ufs-mnt-test-", dir="/tmp")
    os.chmod(d, 0o755)
    return d


def make_tree(root: str, files: dict[str, str | None]) -> None:
    """``{"a/b": "text", "d/": None}``: files with text, dirs for names ending in '/'."""
    os.makedirs(root, exist_ok=True)
    for rel, text in files.items():
        path = os.path.join(root, rel)
        if rel.endswith("/"):
            os.makedirs(path, exist_ok=True)
            continue
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text or "")


def snapshot(root: str) -> dict[str, tuple[object, ...]]:
    """Everything about a layer dir that matters: type, mode, owner, size, rdev, target, content hash, xattrs."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in sorted(dirnames + filenames):
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            digest = None
            if stat.S_ISREG(st.st_mode):
                with open(p, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
            try:
                xattrs = tuple(
                    sorted(
                        (n, os.getxattr(p, n, follow_symlinks=False)) for n in os.listxattr(p, follow_symlinks=False)
                    )
                )
            except OSError:
                xattrs = ()
            target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
            out[os.path.relpath(p, root)] = (
                st.st_mode,
                st.st_uid,
                st.st_size,
                st.st_rdev,
                target,
                digest,
                xattrs,
                st.st_mtime_ns,
            )
    return out


def assert_not_mounted(*targets: str) -> None:
    points = mount_points()
    for t in targets:
        assert os.path.realpath(t) not in points, f"{t} is still mounted"


def run_sh(script: str, env: dict[str, str] | None = None, argv_prefix: Sequence[str] = ()) -> None:
    r = subprocess.run([*argv_prefix, "sh", "-ec", script], capture_output=True, text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr


def rmtree(path: str) -> None:
    subprocess.run(["chmod", "-R", "u+rwx", path], capture_output=True)
    shutil.rmtree(path, ignore_errors=True)


@contextlib.contextmanager
def scratch(files: dict[str, str | None]) -> Iterator[str]:
    """A public temp dir holding ``files`` (see :func:`make_tree`) and ``rt/``, a private runtime dir for the
    mount record; afterwards whatever a failed test left mounted below it is unmounted and the dir removed."""
    d = public_tmpdir()
    make_tree(d, {**files, "rt/": None})
    try:
        yield d
    finally:
        unmount_mine(f"{d}/rt")
        for t in sorted(mount_points(), reverse=True):
            if t.startswith(d + "/"):
                subprocess.run(["umount", "-l", t], capture_output=True)
        rmtree(d)
