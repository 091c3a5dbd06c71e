"""The kernel oracle on xattr whiteouts and ``opaque=x`` dirs in *middle* lowers (and layer roots marked
``opaque=x``): few names, so every layer overlaps the ones above and below it, with something below each marker
to hide and something above it to merge with.

``UFS_ORACLE_XWH_EXAMPLES`` random examples per option set (default 80; CI: derandomized).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given

from tests.kernel.oracle import Bench, examples, oracle_settings
from tests.kernel.strategies import XWH_STACKS

SETTINGS = oracle_settings(examples("UFS_ORACLE_XWH_EXAMPLES", 80))
OPTIONS = ["", "redirect_dir=on,metacopy=on", "userxattr"]


def _d(children: dict[str, Any], opaque: str | None = None) -> list[Any]:
    return ["dir", children, 0o755, opaque, None]


def _f(data: bytes = b"x") -> list[Any]:
    return ["file", data.hex(), 0o644]


# The markers in lower:1 of three: an xattr whiteout in an opaque=x dir, one in a dir without the mark, one at a
# root marked opaque=x; what they hide in lower:2 and what lower:0 adds above them.
MIDDLE = {
    "lowers": [
        {"a": _d({"c": _f(b"top")}), "b": _d({"b": _f()})},
        {"a": _d({"a": ["xwh"], "b": _f(b"mid")}, "x"), "b": _d({"a": ["xwh"]}), "c": ["xwh"], ".": ["root", "x"]},
        {"a": _d({"a": _f(b"hidden")}), "b": _d({"a": _f(b"hidden?")}), "c": _f(b"hidden too")},
    ],
    "upper": {},
    "ops": [["create", 0, 1, 0, b"new".hex()], ["rmrf_mkdir", 0, 0, 0, ""]],
}


@pytest.mark.slow
@pytest.mark.usefixtures("root_mount")
@pytest.mark.parametrize("options", OPTIONS)
@SETTINGS
@example(spec=MIDDLE)
@given(spec=XWH_STACKS)
def test_xattr_whiteouts_in_middle_lowers(options: str, spec: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if options == "userxattr":
        request.getfixturevalue("userns_mount")
    with Bench(spec, ns="user" if options == "userxattr" else "trusted") as bench:
        bench.run(options, spec["ops"])
