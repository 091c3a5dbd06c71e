"""ps's upper size: bytes of the files in a writable layer, each inode once, markers counting nothing."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import need
from ufs_tui.core.sources.catalog import upper_size


def test_upper_size_counts_each_inode_once(tmp_path: os.PathLike[str]) -> None:
    up = os.fspath(tmp_path)
    os.makedirs(f"{up}/d/e")
    with open(f"{up}/d/a", "wb") as f:
        f.write(b"x" * 1000)
    os.link(f"{up}/d/a", f"{up}/d/e/hard")  # the same inode twice: counted once
    with open(f"{up}/b", "wb") as f:
        f.write(b"y" * 24)
    os.symlink("target-of-nine", f"{up}/l")  # a symlink's size is its target's length
    os.mkfifo(f"{up}/fifo")
    if os.geteuid() == 0:
        os.mknod(f"{up}/gone", 0o600 | 0o020000, os.makedev(0, 0))  # a whiteout: nothing
    assert upper_size(up) == 1000 + 24 + len("target-of-nine")
    assert upper_size(None) is None
    assert upper_size(f"{up}/missing") == 0  # vanished before it was read: nothing left to count


def test_upper_size_of_an_unreadable_dir_is_unknown(shared_tmp: str) -> None:
    need(os.geteuid() == 0, "needs root to drop to another user")
    os.makedirs(f"{shared_tmp}/up/closed")
    with open(f"{shared_tmp}/up/f", "w") as f:
        f.write("12345")
    os.chmod(f"{shared_tmp}/up/closed", 0o700)
    code = (
        "import os, sys; sys.path.insert(0, sys.argv[2]); from ufs_tui.core.sources.catalog import upper_size; "
        "os.setgroups([]); os.setgid(65534); os.setuid(65534); print(upper_size(sys.argv[1]))"
    )
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    r = subprocess.run([sys.executable, "-c", code, f"{shared_tmp}/up", repo], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None"
