"""``ufs-tui mount`` on a terminal says what it will do and asks first (``--yes`` does not ask); without a
terminal (a script) it mounts: what the README says."""

from __future__ import annotations

import os
import subprocess
import sys


def mounts_of(base: str) -> list[str]:
    """The mount table's lines that name a dir under ``base`` (this test's mounts, not another process's)."""
    with open("/proc/self/mountinfo") as f:
        return [line for line in f if base in line]


def run_on_a_terminal(argv: list[str], answer: bytes, env: dict[str, str]) -> tuple[int, bytes]:
    master, slave = os.openpty()
    try:
        p = subprocess.Popen(argv, stdin=slave, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        os.write(master, answer)
        out, err = p.communicate(timeout=120)
        return p.returncode, out + err
    finally:
        os.close(master)
        os.close(slave)


def test_mount_asks_on_a_terminal(root_mount: None, tmp_path: os.PathLike[str]) -> None:
    base = os.fspath(tmp_path)
    for d in ("l0", "l1", "rt"):
        os.makedirs(f"{base}/{d}")
    env = dict(os.environ, UFS_TUI_RUNTIME_DIR=f"{base}/rt")
    argv = [sys.executable, "-m", "ufs_tui", "mount", "--lower", f"{base}/l0:{base}/l1"]
    rc, said = run_on_a_terminal(argv, b"n\n", env)
    assert rc == 1 and b"mount? [y/N]" in said and mounts_of(base) == [], said
    rc, said = run_on_a_terminal(argv, b"y\n", env)
    try:
        assert rc == 0 and b"mounted at" in said, said
        assert len(mounts_of(base)) == 1
    finally:
        subprocess.run([sys.executable, "-m", "ufs_tui", "umount", "--mine"], env=env, capture_output=True)
    rc, said = run_on_a_terminal([*argv, "--yes"], b"", env)
    try:
        assert rc == 0 and b"mount? [y/N]" not in said, said
    finally:
        subprocess.run([sys.executable, "-m", "ufs_tui", "umount", "--mine"], env=env, capture_output=True)
    assert mounts_of(base) == []
