"""Commit and squash, checked against the kernel: the merged view is the same before and after, originals untouched."""

from __future__ import annotations

import os
import shlex
import stat
import subprocess
from collections.abc import Iterator

import pytest

from tests.mount.helpers import cli, make_tree, rmtree, run_sh, scratch, snapshot
from tests.overlay import kernel_tree, mounted
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.layers_ops import plan_squash, squash
from ufs_tui.core.mounting.mount_table import mount_points


@pytest.fixture
def d() -> Iterator[str]:
    with scratch({}) as d:
        yield d


def _through_mount(d: str, lowers: list[str], upper: str, script: str, options: str = "") -> None:
    """Make ``upper`` by running ``script`` in a real overlay mount over ``lowers``: every marker is the kernel's."""
    os.makedirs(upper, exist_ok=True)
    work = upper + ".work"
    os.makedirs(work, exist_ok=True)
    mnt = f"{d}/mk"
    os.makedirs(mnt, exist_ok=True)
    with mounted(lowers, upper, work, mnt, options):
        run_sh(f"cd {shlex.quote(mnt)}\n{script}")
    rmtree(work)


BASE = {
    "a": "a2\n", "keep/k": "k\n", "d/x": "x\n", "d/y": "y\n", "e/z": "z\n", "f": "f\n", "g/1": "1\n",
    "only2": "2\n", "dir2/inner": "inner\n", "big": "B" * 5000,
}  # fmt: skip
L1_OPS = """
rm a
rm -rf d; mkdir d; echo new > d/new
echo more >> keep/k
mkdir nd; echo n > nd/n
rm -rf e
echo t > tmpfile
mkfifo fifo
ln -s /nowhere link
rm f
"""
L0_OPS = """
rm nd/n
echo a-again > a
rm tmpfile
mkdir f
rm -rf g
rm only2
touch keep/k2
"""
L1_OPS_ROOT = """
mv dir2 moved
chmod 600 big
"""


def _layers(d: str, fancy: bool) -> list[str]:
    l2, l1, l0 = f"{d}/L2", f"{d}/L1", f"{d}/L0"
    make_tree(l2, BASE)
    opts = "redirect_dir=on,metacopy=on" if fancy else ""
    _through_mount(d, [l2], l1, L1_OPS + (L1_OPS_ROOT if fancy else ""), opts)
    with open(os.path.join(l1, os.fsdecode(b"hostile\xff\n[red]\x1b[0m")), "w") as f:
        f.write("a name that is not UTF-8, with a newline, markup and an escape\n")
    _through_mount(d, [l1, l2], l0, L0_OPS + ("touch moved/extra\n" if fancy else ""), opts)
    return [l0, l1, l2]


def _view(d: str, lowers: list[str], options: str = "") -> dict[str, object]:
    os.makedirs(f"{d}/view", exist_ok=True)
    with mounted(lowers, None, None, f"{d}/view", options):
        return dict(kernel_tree(f"{d}/view"))


def _markers(root: str) -> list[str]:
    out = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            p = os.path.join(dirpath, name)
            st = os.lstat(p)
            rel = os.path.relpath(p, root)
            if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
                out.append(f"whiteout {rel}")
            for x in os.listxattr(p, follow_symlinks=False) if not stat.S_ISLNK(st.st_mode) else []:
                if x.startswith("trusted.overlay."):
                    out.append(f"{x[16:]}={os.getxattr(p, x).decode()} {rel}")
    return sorted(out)


@pytest.mark.parametrize("fancy", [False, True], ids=["default", "redirect+metacopy"])
def test_squash_gives_the_kernel_the_same_merged_view(root_mount: None, d: str, fancy: bool) -> None:
    layers = _layers(d, fancy)
    opts = "redirect_dir=on,metacopy=on" if fancy else ""
    before = {p: snapshot(p) for p in layers}
    view_before = _view(d, layers, opts)
    r = cli(
        f"{d}/rt", "squash", "--lower", ":".join(layers), "--from", "lower:0", "--to", "1", "--dest", f"{d}/S", "--yes"
    )
    assert r.returncode == 0, r.stderr
    assert shlex.split(r.stdout) == ["--lower", f"{d}/S:{d}/L2"]
    assert "will create: " + f"{d}/S" in r.stderr  # said before writing
    assert {p: snapshot(p) for p in layers} == before  # the original layers are untouched
    assert _view(d, [f"{d}/S", f"{d}/L2"], opts) == view_before
    markers = _markers(f"{d}/S")
    # Kept: what still hides something in L2. Dropped: nd/n and tmpfile (they hid only the range's own files),
    # and f's opaque dir (a dir over L2's file f hides it anyway).
    expected = ["opaque=y d", "whiteout e", "whiteout g", "whiteout only2"]
    if fancy:
        expected += ["redirect=/dir2 moved", "whiteout dir2"]
    assert markers == sorted(expected)
    if fancy:  # the metacopy file became a full copy (its data lived in L2)
        with open(f"{d}/S/big") as f:
            assert f.read() == "B" * 5000


def test_squash_to_the_bottom_keeps_no_markers(root_mount: None, d: str) -> None:
    layers = _layers(d, False)
    view_before = _view(d, layers)
    stack = Stack.build(layers)
    res = squash(stack, plan_squash(stack, "lower:1", "lower:2", f"{d}/S"))
    assert res.whiteouts == 0 and res.opaque == 0 and res.dropped_markers > 0
    assert [layer.path for layer in res.stack.lowers] == [f"{d}/L0", f"{d}/S"]
    assert _markers(f"{d}/S") == []
    assert _view(d, [f"{d}/L0", f"{d}/S"]) == view_before


def test_squash_asks_and_refuses_without_an_answer(root_mount: None, d: str) -> None:
    layers = _layers(d, False)
    args = ["squash", "--lower", ":".join(layers), "--from", "0", "--to", "1", "--dest", f"{d}/S"]
    r = cli(f"{d}/rt", *args)  # stdin is /dev/null
    assert r.returncode == 1 and "refusing" in r.stderr
    assert not os.path.exists(f"{d}/S") and not [n for n in os.listdir(d) if n.startswith(".S.")]
    r = cli(f"{d}/rt", *args, stdin="n\n")
    assert r.returncode == 1 and not os.path.exists(f"{d}/S")
    r = cli(f"{d}/rt", *args, stdin="y\n")
    assert r.returncode == 0, r.stderr
    assert os.path.isdir(f"{d}/S")
    r = cli(f"{d}/rt", *args, "--yes")  # the destination exists now: never written into
    assert r.returncode == 2 and "already exists" in r.stderr


def test_commit_remounts_and_keeps_the_view(root_mount: None, d: str) -> None:
    make_tree(d, {"L0/a": "a\n", "L0/gone": "g\n", "L0/dir/x": "x\n", "U/": None, "W/": None, "m/": None})
    r = cli(f"{d}/rt", "mount", "--lower", f"{d}/L0", "--upper", f"{d}/U", "--work", f"{d}/W", f"{d}/m")
    assert r.returncode == 0, r.stderr
    run_sh(f"cd {d}/m && echo changed >> a && rm gone && echo n > dir/new && rm -rf dir/x")
    view_before = kernel_tree(f"{d}/m")
    upper_before = snapshot(f"{d}/U")
    r = cli(f"{d}/rt", "commit", "--lower", f"{d}/L0", "--upper", f"{d}/U", "--work", f"{d}/W")
    assert r.returncode == 1 and "refusing" in r.stderr  # no --yes, no stdin
    assert not os.path.exists(f"{d}/U.1")
    r = cli(f"{d}/rt", "commit", "--lower", f"{d}/L0", "--upper", f"{d}/U", "--work", f"{d}/W", "--yes")
    assert r.returncode == 0, r.stderr
    assert "will create the new empty upper: " + f"{d}/U.1" in r.stderr
    assert shlex.split(r.stdout) == ["--lower", f"{d}/U:{d}/L0", "--upper", f"{d}/U.1", "--work", f"{d}/W.1"]
    with open("/proc/self/mountinfo") as f:
        line = next(x for x in f if f" {d}/m " in x)
    assert f"lowerdir={d}/U:{d}/L0" in line and f"upperdir={d}/U.1" in line
    assert kernel_tree(f"{d}/m") == view_before
    run_sh(f"cd {d}/m && echo later > later && rm a")
    assert sorted(os.listdir(f"{d}/U.1")) == ["a", "later"]
    assert snapshot(f"{d}/U") == upper_before  # the old upper is a lower now: never written
    assert cli(f"{d}/rt", "umount", "--mine").returncode == 0
    assert f"{d}/m" not in mount_points()


def test_commit_with_an_answer_on_stdin(root_mount: None, d: str) -> None:
    make_tree(d, {"L0/a": "a\n", "U/b": "b\n", "W/": None})
    args = ["commit", "--lower", f"{d}/L0", "--upper", f"{d}/U", "--work", f"{d}/W", "--new-upper", f"{d}/N"]
    r = cli(f"{d}/rt", *args, stdin="yes\n")
    assert r.returncode == 0, r.stderr
    assert os.listdir(f"{d}/N") == [] and os.path.isdir(f"{d}/W.1")
    r = cli(f"{d}/rt", "commit", "--lower", f"{d}/L0", "--work", f"{d}/W", "--yes")
    assert r.returncode == 2 and "no upper to commit" in r.stderr


def test_commit_of_a_mounted_stack_is_checked_before_anything_changes(root_mount: None, d: str) -> None:
    """The new upper would be on another filesystem than the new work dir: refused before anything is created or
    unmounted (the mount stays, with the old stack), in one plain line with a fix."""
    make_tree(d, {"L0/a": "a\n", "U/": None, "W/": None, "m/": None, "t/": None})
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", f"{d}/t"], check=True)
    try:
        r = cli(f"{d}/rt", "mount", "--lower", f"{d}/L0", "--upper", f"{d}/U", "--work", f"{d}/W", f"{d}/m")
        assert r.returncode == 0, r.stderr
        stack = ["--lower", f"{d}/L0", "--upper", f"{d}/U", "--work", f"{d}/W"]
        r = cli(f"{d}/rt", "commit", *stack, "--new-upper", f"{d}/t/U2", "--new-work", f"{d}/W2", "--yes")
        assert r.returncode == 2
        assert f"commit: not done: the new stack would not mount at {d}/m; nothing was created or unmounted" in r.stderr
        [error] = [line for line in r.stderr.splitlines() if line.startswith("ufs-tui: error: ")]
        assert "the work dir is on a different filesystem than the upper" in error and "(fix: " in error
        assert not os.path.exists(f"{d}/t/U2") and not os.path.exists(f"{d}/W2")
        with open("/proc/self/mountinfo") as f:
            line = next(x for x in f if f" {d}/m " in x)
        assert f"upperdir={d}/U," in line  # still the old stack
        assert cli(f"{d}/rt", "umount", "--mine").returncode == 0
    finally:
        subprocess.run(["umount", f"{d}/t"], capture_output=True)
