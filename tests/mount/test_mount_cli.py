"""ufs-tui mount / umount against real mounts: kernel, user namespace, fuse-overlayfs."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from tests import nobody
from tests.conftest import need
from tests.mount.helpers import (
    assert_not_mounted,
    cli,
    make_tree,
    public_tmpdir,
    rmtree,
)
from tests.overlay import kernel_tree, model_tree
from ufs_tui.core.model import status as S
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.mount_table import mount_points
from ufs_tui.core.mounting.options import option_string
from ufs_tui.core.mounting.record import recorded
from ufs_tui.core.mounting.unmount import unmount_mine


@pytest.fixture
def box() -> Iterator[str]:
    """A public temp dir with lower0, lower1, upper, work, mnt and a private runtime dir 'rt'."""
    d = public_tmpdir()
    make_tree(f"{d}/lower0", {"a": "a0\n", "dir/x": "x0\n", "gone": "bye\n"})
    make_tree(f"{d}/lower1", {"a": "a1\n", "b": "b1\n", "dir/y": "y1\n"})
    for n in ("upper", "work", "mnt", "rt"):
        os.mkdir(f"{d}/{n}")
    yield d
    unmount_mine(f"{d}/rt")  # helpers and mounts a failed test left behind
    for t in list(mount_points()):
        if t.startswith(d + "/"):
            subprocess.run(["umount", "-l", t], capture_output=True)
    rmtree(d)


def _stack(d: str, ns: str = "trusted") -> Stack:
    return Stack.build([f"{d}/lower0", f"{d}/lower1"], upper=f"{d}/upper", work=f"{d}/work", xattr_ns=ns)  # type: ignore[arg-type]


def test_cli_mount_shows_merged_view_and_writes_go_to_upper(root_mount: None, box: str) -> None:
    d = box
    r = cli(
        f"{d}/rt",
        "mount",
        "--lower",
        f"{d}/lower0:{d}/lower1",
        "--upper",
        f"{d}/upper",
        "--work",
        f"{d}/work",
        f"{d}/mnt",
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"{d}/mnt"
    assert f"writes through the mount go to the upper {d}/upper" in r.stderr  # said before writing
    assert f"{d}/mnt" in mount_points()
    stack = _stack(d)
    assert kernel_tree(f"{d}/mnt") == model_tree(stack)
    with open(f"{d}/mnt/new.txt", "w") as f:
        f.write("through the mount\n")
    os.unlink(f"{d}/mnt/gone")
    view = OverlayView(stack)
    new = view.lookup("/new.txt")
    assert new is not None and new.status == S.NEW and new.layer.role == "upper"
    assert view.lookup("/gone") is None
    assert kernel_tree(f"{d}/mnt") == model_tree(stack)
    [rec] = recorded(f"{d}/rt")
    assert rec.target == f"{d}/mnt" and rec.backend == "kernel"
    r = cli(f"{d}/rt", "umount", f"{d}/mnt")
    assert r.returncode == 0, r.stderr
    assert_not_mounted(f"{d}/mnt")
    assert recorded(f"{d}/rt") == []
    assert os.path.isdir(f"{d}/mnt")  # the user's own target stays


def test_default_target_is_made_in_the_runtime_dir_and_removed(root_mount: None, box: str) -> None:
    d = box
    r = cli(f"{d}/rt", "mount", "--lower", f"{d}/lower0:{d}/lower1")  # read-only stack, no upper
    assert r.returncode == 0, r.stderr
    target = r.stdout.strip()
    assert os.path.dirname(target) == f"{d}/rt" and target in mount_points()
    assert "read-only stack: nothing will be written" in r.stderr
    assert sorted(os.listdir(target)) == ["a", "b", "dir", "gone"]
    with pytest.raises(OSError):
        open(f"{target}/nope", "w").close()
    r = cli(f"{d}/rt", "umount", "--mine")
    assert r.returncode == 0, r.stderr
    assert f"unmounted: {target}" in r.stdout
    assert not os.path.exists(target)


def test_options_and_escaped_paths_reach_the_kernel(root_mount: None, box: str) -> None:
    d = box
    odd = f"{d}/odd:name,with comma"
    make_tree(odd, {"f": "odd\n"})
    r = cli(
        f"{d}/rt", "mount", "--lower", odd.replace(":", "\\:") + f":{d}/lower1", "--upper", f"{d}/upper",
        "--work", f"{d}/work", "-o", "redirect_dir=on,metacopy=on", "--option", "index=on", f"{d}/mnt",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with open("/proc/self/mountinfo") as f:
        line = next(x for x in f if f" {d}/mnt " in x)
    assert "redirect_dir=on" in line and "metacopy=on" in line and "index=on" in line
    assert sorted(os.listdir(f"{d}/mnt")) == ["a", "b", "dir", "f"]
    stack = Stack.build([odd, f"{d}/lower1"], upper=f"{d}/upper", work=f"{d}/work")
    assert "odd\\:name\\,with comma" in option_string(stack)
    assert cli(f"{d}/rt", "umount", f"{d}/mnt").returncode == 0
    assert_not_mounted(f"{d}/mnt")


def test_non_empty_target_needs_force(root_mount: None, box: str) -> None:
    d = box
    make_tree(f"{d}/mnt", {"precious": "keep me\n"})
    args = ["mount", "--lower", f"{d}/lower0:{d}/lower1", f"{d}/mnt"]
    r = cli(f"{d}/rt", *args)
    assert r.returncode == 2
    assert "not empty" in r.stderr and "--force" in r.stderr
    assert f"{d}/mnt" not in mount_points()
    r = cli(f"{d}/rt", *args[:-1], "--force", f"{d}/mnt")
    assert r.returncode == 0, r.stderr
    assert "precious" not in os.listdir(f"{d}/mnt")
    assert cli(f"{d}/rt", "umount", f"{d}/mnt").returncode == 0
    with open(f"{d}/mnt/precious") as f:
        assert f.read() == "keep me\n"


def test_userns_mount_as_an_ordinary_user(userns_mount: None, box: str) -> None:
    d = box
    subprocess.run(["chown", "-R", "65534:65534", d], check=True)
    r = cli(
        f"{d}/rt", "mount", "--backend", "userns", "--lower", f"{d}/lower0:{d}/lower1", "--upper", f"{d}/upper",
        "--work", f"{d}/work", f"{d}/mnt", as_nobody=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip()
    assert path.startswith("/proc/") and path.endswith(f"/root{d}/mnt")
    assert "visible only inside that namespace" in r.stderr
    assert f"{d}/mnt" not in mount_points()  # not in our namespace
    # The owner reads and writes the merged view through /proc/PID/root.
    script = f"cat {path}/a && echo hi > {path}/from-nobody && ls {path}"
    w = subprocess.run([*nobody.SETPRIV, "sh", "-c", script], capture_output=True, text=True, timeout=30)
    assert w.returncode == 0, w.stderr
    assert w.stdout.split() == ["a0", "a", "b", "dir", "from-nobody", "gone"]
    stack = _stack(d, "user")
    entry = OverlayView(stack).lookup("/from-nobody")
    assert entry is not None and entry.status == S.NEW
    [rec] = recorded(f"{d}/rt")
    pid = rec.helper_pid
    assert pid is not None and os.path.exists(f"/proc/{pid}")
    r = cli(f"{d}/rt", "umount", f"{d}/mnt", as_nobody=True)
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(path)
    assert recorded(f"{d}/rt") == []


def test_fuse_overlayfs_backend(root_mount: None, box: str) -> None:
    need(shutil.which("fuse-overlayfs") is not None, "fuse-overlayfs is not installed")
    need(os.path.exists("/dev/fuse"), "/dev/fuse is missing")
    d = box
    r = cli(
        f"{d}/rt", "mount", "--backend", "fuse", "--lower", f"{d}/lower0:{d}/lower1", "--upper", f"{d}/upper",
        "--work", f"{d}/work", f"{d}/mnt",
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    with open("/proc/self/mountinfo") as f:
        assert any(f" {d}/mnt " in x and "fuse" in x for x in f)
    assert sorted(os.listdir(f"{d}/mnt")) == ["a", "b", "dir", "gone"]
    with open(f"{d}/mnt/a") as f:
        assert f.read() == "a0\n"
    with open(f"{d}/mnt/new", "w") as f:
        f.write("n\n")
    assert os.path.exists(f"{d}/upper/new")
    r = cli(f"{d}/rt", "mount", "--backend", "fuse", "-o", "metacopy=on", "--lower", f"{d}/lower0:{d}/lower1")
    assert r.returncode == 2 and "fuse-overlayfs does not take" in r.stderr
    assert cli(f"{d}/rt", "umount", "--mine").returncode == 0
    assert_not_mounted(f"{d}/mnt")


def test_record_is_json_and_written_atomically(root_mount: None, box: str) -> None:
    d = box
    r = cli(f"{d}/rt", "mount", "--lower", f"{d}/lower0:{d}/lower1", f"{d}/mnt")
    assert r.returncode == 0, r.stderr
    with open(f"{d}/rt/mounts.json") as f:
        data = json.load(f)
    assert [m["target"] for m in data["mounts"]] == [f"{d}/mnt"]
    assert not [n for n in os.listdir(f"{d}/rt") if n.startswith(".mounts-")]  # no temp file left behind
    assert cli(f"{d}/rt", "umount", "--mine").returncode == 0


def test_umount_refuses_what_is_not_an_overlay(root_mount: None, box: str) -> None:
    d = box
    r = cli(f"{d}/rt", "umount", f"{d}/mnt")
    assert r.returncode == 2 and "nothing is mounted here" in r.stderr
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", f"{d}/mnt"], check=True)
    r = cli(f"{d}/rt", "umount", f"{d}/mnt")
    assert r.returncode == 2 and "tmpfs mount, not an overlay" in r.stderr
    assert f"{d}/mnt" in mount_points()
    subprocess.run(["umount", f"{d}/mnt"], check=True)
