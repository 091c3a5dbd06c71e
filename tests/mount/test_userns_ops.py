"""Squash and commit for an ordinary user (uid 65534): user.overlay.* markers, user-namespace mounts."""

from __future__ import annotations

import json
import os
import shlex
import stat
import subprocess
from collections.abc import Iterator

import pytest

from tests import nobody
from tests.mount.helpers import cli, env_for, make_tree, rmtree, scratch, snapshot
from tests.mount.test_layers_ops import BASE, L0_OPS, L1_OPS
from tests.overlay import kernel_tree
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.layers_ops import commit_remount, plan_commit
from ufs_tui.core.mounting.mount import MountManager
from ufs_tui.core.mounting.record import recorded


@pytest.fixture
def d() -> Iterator[str]:
    with scratch({}) as d:
        yield d


def _nobody_sh(script: str) -> None:
    r = subprocess.run(
        [*nobody.SETPRIV, "unshare", "-rm", "sh", "-ec", script], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 0, r.stderr


def _through_userns_mount(d: str, lowers: list[str], upper: str, ops: str) -> None:
    for p in (upper, upper + ".work", f"{d}/mk"):
        os.makedirs(p, exist_ok=True)
        os.chown(p, 65534, 65534)
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={upper}.work,userxattr"
    _nobody_sh(f"mount -t overlay overlay -o {opts} {d}/mk\ncd {d}/mk\n{ops}\ncd /\numount {d}/mk")
    rmtree(upper + ".work")


def _userns_view(d: str, lowers: list[str]) -> dict[str, object]:
    """The kernel's merged view of a read-only stack, mounted by uid 65534 through ufs-tui."""
    r = cli(f"{d}/rt", "mount", "--backend", "userns", "--lower", ":".join(lowers), as_nobody=True)
    assert r.returncode == 0, r.stderr
    try:
        return dict(kernel_tree(r.stdout.strip()))
    finally:
        assert cli(f"{d}/rt", "umount", "--mine", as_nobody=True).returncode == 0


def test_squash_as_an_ordinary_user_uses_user_xattr_markers(userns_mount: None, d: str) -> None:
    os.chown(d, 65534, 65534)
    os.chown(f"{d}/rt", 65534, 65534)
    make_tree(f"{d}/L2", BASE)
    subprocess.run(["chown", "-R", "65534:65534", f"{d}/L2"], check=True)
    _through_userns_mount(d, [f"{d}/L2"], f"{d}/L1", L1_OPS)
    _through_userns_mount(d, [f"{d}/L1", f"{d}/L2"], f"{d}/L0", L0_OPS)
    layers = [f"{d}/L0", f"{d}/L1", f"{d}/L2"]
    before = {p: snapshot(p) for p in layers}
    view_before = _userns_view(d, layers)
    r = cli(
        f"{d}/rt", "squash", "--lower", ":".join(layers), "--from", "0", "--to", "1", "--dest", f"{d}/S", "--yes",
        as_nobody=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert shlex.split(r.stdout) == ["--lower", f"{d}/S:{d}/L2", "--xattr-ns", "user"]
    assert {p: snapshot(p) for p in layers} == before
    assert _userns_view(d, [f"{d}/S", f"{d}/L2"]) == view_before
    assert os.getxattr(f"{d}/S/d", "user.overlay.opaque") == b"y"
    wh = os.lstat(f"{d}/S/only2")
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert not os.path.lexists(f"{d}/S/nd/n") and not os.path.lexists(f"{d}/S/tmpfile")
    assert not [x for x in os.listxattr(f"{d}/S/d") if x.startswith("trusted.")]


COMMITTER = """
import json, os, sys
from ufs_tui.core.mounting.layers_ops import commit_remount, plan_commit
from ufs_tui.core.mounting.mount import MountManager
from ufs_tui.core.model.stack import Stack
d = sys.argv[1]
with MountManager() as m:
    h = m.mount(Stack.build([d + "/L0"], d + "/U", d + "/W", xattr_ns="user"), d + "/m", backend="userns")
    open(h.path + "/made-before", "w").write("1")
    stack, h2 = commit_remount(plan_commit(h.stack), m, h)
    open(h2.path + "/made-after", "w").write("2")
    seen = sorted(os.listdir(h2.path))
    print(json.dumps({"lowers": [x.path for x in stack.lowers], "upper": stack.upper.path, "seen": seen}))
"""


def test_commit_remount_in_a_user_namespace(userns_mount: None, d: str) -> None:
    make_tree(d, {"L0/a": "a\n", "U/": None, "W/": None, "m/": None})
    subprocess.run(["chown", "-R", "65534:65534", d], check=True)
    r = nobody.run("-c", COMMITTER, d, text=True, env=env_for(f"{d}/rt"), timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["lowers"] == [f"{d}/U", f"{d}/L0"] and out["upper"] == f"{d}/U.1"
    assert out["seen"] == ["a", "made-after", "made-before"]
    assert os.listdir(f"{d}/U") == ["made-before"] and os.listdir(f"{d}/U.1") == ["made-after"]
    assert recorded(f"{d}/rt") == []  # the manager's block ended: all unmounted


def test_commit_remount_kernel(root_mount: None, d: str) -> None:
    make_tree(d, {"L0/a": "a\n", "U/": None, "W/": None})
    with MountManager(f"{d}/rt") as m:
        h = m.mount(Stack.build([f"{d}/L0"], f"{d}/U", f"{d}/W"))
        with open(f"{h.path}/b", "w") as f:
            f.write("b\n")
        view = kernel_tree(h.path)
        stack, h2 = commit_remount(plan_commit(h.stack, f"{d}/U2", f"{d}/W2"), m, h)
        assert h2.target == h.target and kernel_tree(h2.path) == view
        assert [r.id for r in recorded(f"{d}/rt")] == [h2.id]
    assert not os.path.exists(h.target)
