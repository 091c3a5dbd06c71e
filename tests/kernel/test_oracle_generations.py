"""The kernel oracle on generations of layers, as image builds make them, and on the same layers under every mount
option that changes what the kernel shows.

* :func:`test_generations`: mount, random ops (dir renames above all: redirects), unmount; the upper becomes the
  topmost lower under a fresh upper and work dir, and more ops follow; three generations deep, model == kernel
  before and after the ops of each. A dir renamed in one generation and renamed again (or moved out of) in the
  next makes a redirect chain: a redirect whose target runs through a dir redirected in a lower generation.
* :func:`test_same_layers_under_each_option`: a first generation with ``redirect_dir=on,metacopy=on`` makes
  redirects and metacopy files; then those layers are mounted under each option set of :data:`OPTION_SETS`, with
  the first upper as the topmost lower under a fresh upper, or as the upper itself, and random ops follow.
  ``userxattr`` runs in a user namespace as uid 65534, on the layers with every ``trusted.overlay.*`` xattr copied
  to ``user.overlay.*`` (the trusted ones stay, to be ignored).
* :func:`test_refused_option_sets`: the option sets the kernel refuses to mount (:data:`REFUSED`), so they are
  left out of the above on purpose.

``UFS_ORACLE_GEN_EXAMPLES`` and ``UFS_ORACLE_OPTION_EXAMPLES`` set the random examples per option set (defaults
below; CI: derandomized). A failure prints the spec, each generation's options, mount command and ops, and every
layer (see :mod:`tests.kernel.oracle`).
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
from hypothesis import example, given

from tests.kernel.oracle import Bench, examples, oracle_settings
from tests.kernel.strategies import GENERATIONS
from tests.overlay import mount_overlay, umount
from ufs_tui.core.demo import remove_tree

GEN_SETTINGS = oracle_settings(examples("UFS_ORACLE_GEN_EXAMPLES", 100))
OPTION_SETTINGS = oracle_settings(examples("UFS_ORACLE_OPTION_EXAMPLES", 50))

FIRST = "redirect_dir=on,metacopy=on"  # what makes the first generation of the options test
OPTION_SETS = [
    "",
    "redirect_dir=on",
    "redirect_dir=follow",
    "redirect_dir=nofollow",
    "redirect_dir=off",
    "redirect_dir=on,metacopy=on",
    "metacopy=off",
    "userxattr",
    "index=on",
    "index=on,nfs_export=on",
]
# Option sets the kernel refuses (mount fails, EINVAL; dmesg says "conflicting options: ..."). Observed on 6.18;
# test_refused_option_sets checks each is still refused. Not in OPTION_SETS: there is no mount to compare with.
REFUSED = {
    "metacopy=on,redirect_dir=follow": "metacopy needs redirect_dir=on",
    "metacopy=on,redirect_dir=nofollow": "metacopy needs redirect_dir=on",
    "metacopy=on,redirect_dir=off": "metacopy needs redirect_dir=on (off means follow here: redirect_always_follow=Y)",
    "index=on,nfs_export=on,metacopy=on": "nfs_export=on conflicts with metacopy=on",
    "nfs_export=on,index=off": "nfs_export=on needs index=on",
    "userxattr,redirect_dir=on": "userxattr implies redirect_dir=nofollow",
    "userxattr,metacopy=on": "userxattr implies metacopy=off",
}


def _d(children: dict[str, Any]) -> list[Any]:
    return ["dir", children, 0o755, None, None]


# Issue 14.2 made by real renames: mv /a/sub /p/b; then mv /p/b/deep /c (its redirect runs through /p/b, itself
# redirected a generation below); then mv /c /a/d.
CHAIN: dict[str, Any] = {
    "lowers": [{"a": _d({"sub": _d({"deep": _d({"f": ["file", b"f".hex(), 0o644]})})}), "p": _d({})}],
    "upper": {},
    "gens": [[["rename_dir", 1, 4, 1, ""]], [["rename_dir", 3, 0, 2, ""]], [["rename_dir", 1, 1, 3, ""]]],
}
# Found by this test (kept as examples). A redirect chain with two components after the redirected dir: mv /x /a;
# then mv /a/c/b /b: the kernel shows /b/f (the rest of /a/c/b is looked up from a's redirect, /x/c/b).
CHAIN_DEEP: dict[str, Any] = {
    "lowers": [{"x": _d({"c": _d({"b": _d({"f": ["file", b"f".hex(), 0o644]})})}), "p": _d({})}],
    "upper": {},
    "gens": [[["rename_dir", 1, 0, 0, ""]], [["rename_dir", 2, 0, 1, ""]], []],
}
# ... and a metacopy file's: mv /x /a; then ln /a/c/f /b (metacopy=on: /b is a metacopy copy-up whose redirect,
# /a/c/f, runs through /a).
META_CHAIN: dict[str, Any] = {
    "lowers": [{"x": _d({"c": _d({"f": ["file", b"data".hex(), 0o644]})})}],
    "upper": {},
    "gens": [[["rename_dir", 0, 0, 0, ""]], [["link", 0, 0, 1, ""]], []],
}
# Renames that undo each other across generations, a rename over a whiteout left by an earlier one, chmods of
# files in renamed dirs (metacopy files below redirects), rm -rf of a renamed dir.
CHURN: dict[str, Any] = {
    "lowers": [{"a": _d({"x": ["file", b"1".hex(), 0o644], "s": _d({"y": ["file", b"2".hex(), 0o600]})}), "b": _d({})}],
    "upper": {},
    "gens": [
        [["rename_dir", 0, 0, 4, ""], ["chmod", 5, 0, 1, ""], ["rename_dir", 2, 0, 0, ""]],
        [["rename_dir", 0, 2, 0, ""], ["chmod", 3, 0, 2, ""], ["append", 0, 0, 0, b"more".hex()]],
        [["rename_dir", 1, 0, 4, ""], ["rmrf", 0, 0, 0, ""], ["rename", 0, 0, 1, ""]],
    ],
}


@pytest.mark.slow
@pytest.mark.usefixtures("root_mount")
@pytest.mark.parametrize("options", ["redirect_dir=on", "redirect_dir=on,metacopy=on"])
@GEN_SETTINGS
@example(spec=CHAIN)
@example(spec=CHURN)
@example(spec=CHAIN_DEEP)
@example(spec=META_CHAIN)
@given(spec=GENERATIONS)
def test_generations(options: str, spec: dict[str, Any]) -> None:
    with Bench(spec) as bench:
        for n, ops in enumerate(spec["gens"]):
            if n:
                bench.next_generation()
            bench.run(options, ops)


@pytest.mark.usefixtures("root_mount")
@pytest.mark.parametrize("options", sorted(REFUSED))
def test_refused_option_sets(options: str) -> None:
    root = tempfile.mkdtemp(prefix="ufs-oracle-")
    try:
        lower, upper, work, mnt = (os.path.join(root, n) for n in ("l", "u", "w", "m"))
        for p in (lower, upper, work, mnt):
            os.mkdir(p)
        try:
            mount_overlay([lower], upper, work, mnt, options)
        except OSError:
            return
        umount(mnt)
        pytest.fail(f"the kernel mounts {options!r} now ({REFUSED[options]}): add it to OPTION_SETS")
    finally:
        remove_tree(root)
