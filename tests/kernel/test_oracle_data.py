"""The kernel oracle on data-only lower layers (``lowerdir=L0:L1::D0::D1``): metacopy files in the normal lowers
(sparse, full size, ``overlay.metacopy``) whose absolute ``overlay.redirect`` points into a data-only layer, at
a normal lower's path, or at nothing (the data is missing: the kernel then fails ``open``, not ``lstat``);
paths of the data layers themselves are never visible. With an upper and random ops (a write copies the data
up), or read-only (no upper).

The kernel mounts data-only layers without ``metacopy=on`` (6.18: it needs neither metacopy nor redirect_dir
for them), so the option sets include the ones that refuse metacopy files and redirects elsewhere.
``UFS_ORACLE_DATA_EXAMPLES`` random examples per option set (default 60; CI: derandomized).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given

from tests.kernel.oracle import Bench, examples, oracle_settings
from tests.kernel.strategies import data_stacks

SETTINGS = oracle_settings(examples("UFS_ORACLE_DATA_EXAMPLES", 60))
OPTIONS = ["redirect_dir=on,metacopy=on", "", "metacopy=off", "redirect_dir=nofollow", "userxattr"]


def _d(children: dict[str, Any]) -> list[Any]:
    return ["dir", children, 0o755, None, None]


# composefs-like: a metacopy file for each data file, one whose data is missing, one in a dir of a lower below,
# one whose data is a normal lower's file (no redirect: the next lower), one redirected to a data-layer dir.
COMPOSEFS = {
    "lowers": [
        {
            "bin": _d({"sh": ["meta", 5, "/objects/ab/cdef", 0o755], "gone": ["meta", 3, "/objects/zz/none", 0o644]}),
            "etc": _d({"motd": ["meta", 4, None, 0o644], "dir": ["meta", 0, "/objects/ab", 0o644]}),
        },
        {"etc": _d({"motd": ["file", b"hi!\n".hex(), 0o600]}), "lib": _d({"x": ["meta", 2, "/objects/ab/x", 0o644]})},
    ],
    "data": [
        {"objects": _d({"ab": _d({"cdef": ["file", b"#!sh\n".hex(), 0o644]})})},
        {"objects": _d({"ab": _d({"x": ["file", b"xx".hex(), 0o644]})})},
    ],
    "upper": {"bin": _d({"new": ["file", b"n".hex(), 0o644]})},
    "ops": [["chmod", 0, 0, 2, ""], ["append", 1, 0, 0, b"w".hex()], ["rename", 2, 0, 1, ""]],
}  # fmt: skip


# Found by this test (kept as examples). The errno of a data-only lookup that fails: ELOOP where a component is a
# symlink, ENOTDIR where it is another non-dir, ENOENT where it is missing.
DATA_ELOOP = {
    "lowers": [{"b": ["meta", 0, "/a/b", 0o644]}],
    "data": [{"a": ["symlink", "a"]}],
    "upper": None,
    "ops": [],
}
DATA_ENOTDIR = {
    "lowers": [{"b": ["meta", 0, "/a/b", 0o644]}],
    "data": [{"a": ["fifo", 0o644]}],
    "upper": None,
    "ops": [],
}
# A dir in a normal lower below, at the redirect's path (the kernel goes on to the data-only layers) or on it (EIO).
AT_DIR = {
    "lowers": [{"a": ["meta", 0, "/a", 0o644]}, {"a": _d({})}],
    "data": [{"a": ["file", "", 0o644]}],
    "upper": None,
    "ops": [],
}
ON_DIR = {
    "lowers": [{"a": ["meta", 0, "/a/a", 0o644]}, {"a": _d({})}],
    "data": [{"a": _d({"a": ["file", "", 0o644]})}],
    "upper": None,
    "ops": [],
}
# A metacopy file in the upper over a lower one with no data (EIO), a merged dir /a: looking /a up makes the upper
# root impure, and then readdir of / fails with EIO on the fresh mount after the (no) ops.
READDIR = {
    "lowers": [{"a": _d({}), "b": ["meta", 0, "/a", 0o644]}],
    "data": [{"a": ["file", "", 0o644]}],
    "upper": {"c": ["file", "", 0o644], "b": ["meta", 0, "/a", 0o644], "a": _d({})},
    "ops": [],
}
# A merged dir /a with xattr whiteouts in its lower dir (opaque=x): readdir looks each regular file there up
# (whiteout or not?), and the metacopy files' lookups fail under nofollow (EPERM), which fails the listing.
XWHITEOUT_READDIR = {
    "lowers": [
        {"a": ["dir", {"a": ["meta", 0, "/o", 0o644], "b": ["meta", 0, "/o", 0o644]}, 0o755, "x", None]},
        {"a": ["meta", 0, "/o", 0o644]},
    ],
    "data": [{"o": ["file", "", 0o644]}],
    "upper": {},
    "ops": [["chmod", 0, 0, 0, ""]],
}


@pytest.mark.slow
@pytest.mark.usefixtures("root_mount")
@pytest.mark.parametrize("options", OPTIONS)
@SETTINGS
@example(spec=DATA_ELOOP)
@example(spec=DATA_ENOTDIR)
@example(spec=AT_DIR)
@example(spec=ON_DIR)
@example(spec=READDIR)
@example(spec=COMPOSEFS)
@example(spec=XWHITEOUT_READDIR)
@given(spec=data_stacks())
def test_data_only_layers(options: str, spec: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if options == "userxattr":
        request.getfixturevalue("userns_mount")
    with Bench(spec, ns="user" if options == "userxattr" else "trusted") as bench:
        bench.run(options, spec["ops"])
