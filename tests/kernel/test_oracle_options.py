"""The kernel oracle on the same layers under every mount option that changes what the kernel shows: a first
generation with ``redirect_dir=on,metacopy=on`` makes redirects and metacopy files; then those layers are mounted
under each option set of :data:`~tests.kernel.test_oracle_generations.OPTION_SETS`, with the first upper as the
topmost lower under a fresh upper, or as the upper itself, and random ops follow. ``userxattr`` runs in a user
namespace as uid 65534, on the layers with every ``trusted.overlay.*`` xattr copied to ``user.overlay.*``.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import example, given

from tests.kernel.oracle import Bench
from tests.kernel.strategies import OPTION_STACKS
from tests.kernel.test_oracle_generations import CHAIN, FIRST, OPTION_SETS, OPTION_SETTINGS

# Found by this test: with the first upper still the upper, /b is a metacopy file over a lower /b and the root is impure
# (a copied up): where the kernel refuses /b (metacopy off), readdir of / fails with the same errno.
READDIR: dict[str, Any] = {
    "lowers": [{"a": ["file", b"a".hex(), 0o644], "b": ["file", b"b".hex(), 0o644]}],
    "upper": {},
    "gen": [["chmod_file", 1, 0, 1, ""], ["write", 0, 0, 0, b"x".hex()]],
    "ops": [],
    "as_upper": True,
}


@pytest.mark.slow
@pytest.mark.usefixtures("root_mount")
@pytest.mark.parametrize("options", OPTION_SETS)
@OPTION_SETTINGS
@example(spec={**CHAIN, "gen": CHAIN["gens"][0] + [["chmod", 4, 0, 1, ""]], "ops": CHAIN["gens"][1], "as_upper": False})
@example(spec={**CHAIN, "gen": CHAIN["gens"][0] + [["chmod", 4, 0, 1, ""]], "ops": CHAIN["gens"][1], "as_upper": True})
@example(spec=READDIR)
@given(spec=OPTION_STACKS)
def test_same_layers_under_each_option(options: str, spec: dict[str, Any], request: pytest.FixtureRequest) -> None:
    if options == "userxattr":
        request.getfixturevalue("userns_mount")
    with Bench(spec) as bench:
        bench.run(FIRST, spec["gen"], " (makes redirects and metacopy files)")
        if spec["as_upper"]:
            bench.fresh_work()
        else:
            bench.next_generation()
        if options == "userxattr":
            bench.to_user_xattrs()
        how = "its upper still the upper" if spec["as_upper"] else "its upper now a lower"
        bench.run(options, spec["ops"], f" (the first generation's layers, {how})")
