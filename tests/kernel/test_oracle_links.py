"""The kernel oracle on hard links: lowers (and the upper) hold hard-linked files, ops write, chmod, delete and link
through any of their names, on mounts with and without ``index=on`` (the kernel then finds a copied-up inode of a
hard-linked lower file through ``work/index`` from every name), with metacopy on and off.

``UFS_ORACLE_LINK_EXAMPLES`` random examples per option set (default 80; CI: derandomized). A failure prints the
spec, the ops, every layer and the index (see :mod:`tests.kernel.oracle`).
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given

from tests.kernel.oracle import Bench, examples, oracle_settings
from tests.kernel.strategies import LINK_STACKS

SETTINGS = oracle_settings(examples("UFS_ORACLE_LINK_EXAMPLES", 80))

# nfs_export=on needs index=on and is refused with metacopy=on (test_oracle_generations.REFUSED).
OPTIONS = ["", "index=on", "index=on,nfs_export=on", "redirect_dir=on,metacopy=on", "index=on,metacopy=on"]


def _f(data: bytes = b"x", mode: int = 0o644) -> list[Any]:
    return ["file", data.hex(), mode]


# Issue 14.1: three names of one lower file; a write through one name, a chmod through another.
ISSUE_14_1 = {
    "lowers": [{"d": ["dir", {"a": _f(b"original\n"), "b": ["link", "d/a"]}, 0o755, None, None],
                "d2": ["dir", {"c": ["link", "d/a"]}, 0o755, None, None]}],
    "upper": {},
    "ops": [["append", 0, 0, 0, b"modified\n".hex()], ["chmod", 4, 0, 1, ""]],
}  # fmt: skip
# Hard links across layers' markers: a linked whiteout (as the kernel makes them), a linked file under an opaque dir,
# links in the upper, a link made through the mount, a delete of one name.
LINKED_MARKERS = {
    "lowers": [
        {"w1": ["wh"], "w2": ["link", "w1"], "o": ["dir", {"x": _f(b"top")}, 0o755, "y", None], "y": ["link", "o/x"]},
        {"w1": _f(b"hidden"), "w2": _f(b"hidden too"), "o": ["dir", {"z": _f()}, 0o755, None, None]},
    ],
    "upper": {"u": _f(b"up"), "v": ["link", "u"]},
    "ops": [["link", 2, 0, 3, ""], ["write", 1, 0, 0, b"w".hex()], ["delete", 0, 0, 0, ""], ["chmod", 1, 0, 2, ""]],
}


@pytest.mark.slow
@pytest.mark.usefixtures("root_mount")
@pytest.mark.parametrize("options", OPTIONS)
@SETTINGS
@example(spec=ISSUE_14_1)
@example(spec=LINKED_MARKERS)
@given(spec=LINK_STACKS)
def test_hard_links(options: str, spec: dict[str, Any]) -> None:
    with Bench(spec) as bench:
        bench.run(options, spec["ops"])
