"""A full disk while writing (a tmpfs with a size or inode limit: the kernel's own ENOSPC): squash, commit and a
mount's work dir lose nothing, leave no half-written layer, and say what happened in one line."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.conftest import need

UFS = [sys.executable, "-m", "ufs_tui"]


@pytest.fixture
def small(tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A 1 MB tmpfs of 64 inodes, mounted for the test."""
    need(os.geteuid() == 0, "needs root to mount a tmpfs")
    d = f"{tmp_path}/small"
    os.makedirs(d)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m,nr_inodes=64", "ufs-small", d], check=True)
    try:
        yield d
    finally:
        subprocess.run(["umount", d], check=True)


def use_up_inodes(fs: str) -> None:
    """Make dirs in ``fs`` until it has no inode left (the kernel says ENOSPC)."""
    for i in range(80):
        try:
            os.mkdir(f"{fs}/d{i}")
        except OSError:
            return
    raise AssertionError(f"{fs} still has inodes after 80 dirs")


def listing(root: str) -> list[tuple[str, int]]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for n in sorted(dirnames + filenames):
            p = os.path.join(dirpath, n)
            out.append((os.path.relpath(p, root), os.lstat(p).st_size))
    return sorted(out)


def one_error(r: subprocess.CompletedProcess[str]) -> str:
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and lines and lines[-1].startswith("ufs-tui: error: "), r.stderr
    assert "Traceback" not in r.stderr
    return lines[-1]


def test_squash_onto_a_full_disk(small: str, tmp_path: os.PathLike[str]) -> None:
    base = os.fspath(tmp_path)
    for name in ("l0", "l1"):
        os.makedirs(f"{base}/{name}")
        with open(f"{base}/{name}/big-{name}", "wb") as f:
            f.write(os.urandom(700_000))  # the two do not fit in 1 MB together
    before = {d: listing(f"{base}/{d}") for d in ("l0", "l1")}
    r = subprocess.run(
        [*UFS, "squash", "--lower", f"{base}/l0:{base}/l1", "--from", "0", "--to", "1",
         "--dest", f"{small}/sq", "--yes"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "No space left on device" in one_error(r)
    assert os.listdir(small) == [], "a half-written layer was left"
    assert {d: listing(f"{base}/{d}") for d in ("l0", "l1")} == before


def test_commit_onto_a_full_disk(small: str, tmp_path: os.PathLike[str]) -> None:
    base = os.fspath(tmp_path)
    for name in ("l", "u", "w"):
        os.makedirs(f"{base}/{name}")
    use_up_inodes(small)
    filled = sorted(os.listdir(small))
    r = subprocess.run(
        [*UFS, "commit", "--lower", f"{base}/l", "--upper", f"{base}/u", "--work", f"{base}/w",
         "--new-upper", f"{small}/u2", "--new-work", f"{small}/w2", "--yes"],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert "No space left on device" in one_error(r)
    assert sorted(os.listdir(small)) == filled, "a new dir was left behind"


def test_a_work_dir_on_a_full_disk_mounts_read_only_and_says_so(small: str, tmp_path: os.PathLike[str]) -> None:
    """The kernel cannot make work/work: it mounts read-only, and the CLI passes its words on as a warning."""
    base = os.fspath(tmp_path)
    os.makedirs(f"{base}/l")
    os.makedirs(f"{base}/rt")
    os.makedirs(f"{small}/u")
    os.makedirs(f"{small}/w")
    use_up_inodes(small)
    env = dict(os.environ, UFS_TUI_RUNTIME_DIR=f"{base}/rt")
    argv = ["--lower", f"{base}/l", "--upper", f"{small}/u", "--work", f"{small}/w"]
    r = subprocess.run([*UFS, "mount", *argv], capture_output=True, text=True, timeout=120, env=env)
    try:
        assert r.returncode == 0, r.stderr
        assert "failed to create directory" in r.stderr and "mounting read-only" in r.stderr
        target = r.stdout.strip()
        with pytest.raises(OSError) as e:
            open(f"{target}/new", "w").close()
        assert e.value.errno == 30  # EROFS: nothing is half written
    finally:
        subprocess.run([*UFS, "umount", "--mine"], capture_output=True, env=env, timeout=60)
    assert os.listdir(f"{small}/u") == []
