"""The kernel is the oracle: random stacks, changed through a real mount, must look the same in the model.

Each example builds 1-4 lowers and an upper (nested dirs, files, symlinks incl. absolute ones pointing
outside and loops, FIFOs, hand-made 0/0 and xattr whiteouts, opaque dirs with odd values, decoy xattrs of
the other namespace), mounts them, compares the model with the kernel, applies random operations through
the mount, unmounts, and compares again on a fresh mount of the final layers. Names the kernel cannot look
up (EPERM/EIO...) are compared as errors with their errno, and so are files it cannot read and dirs it cannot
list (:func:`tests.kernel.layers.kernel_snapshot`, :func:`tests.kernel.layers.model_snapshot`).

The stacks real images and containers are made of (hard links and ``index=on``, generations of renamed dirs,
data-only layers, xattr whiteouts in middle lowers, every mount option) are in test_oracle_*.py.

``UFS_ORACLE_EXAMPLES`` sets the number of random examples per variant (default 200, about a minute for
all four variants here). With CI=true the run
is derandomized (the same examples every run). A failure prints the ops and a listing of every layer.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings

from tests.conftest import IN_CI
from tests.kernel.layers import (
    build_tree,
    chown_tree,
    cycle,
    describe_layers,
    facts_from_json,
    model_snapshot,
    run_in_userns,
)
from tests.kernel.strategies import STACKS
from tests.nobody import UID
from tests.overlay import Facts
from ufs_tui.core.demo import remove_tree
from ufs_tui.core.model import dirscan
from ufs_tui.core.model.kernel_defaults import in_effect
from ufs_tui.core.model.stack import Stack

# Hand-made redirects appear only in FIXED, each with the whiteout the kernel leaves at the old name: a random
# redirect can make one lower dir reachable under two names, which the kernel answers with ESTALE.
EXAMPLES = int(os.environ.get("UFS_ORACLE_EXAMPLES", "200"))

SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=IN_CI,
    database=None if IN_CI else settings.default.database,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)


def _f(data: bytes = b"x", mode: int = 0o644) -> list[Any]:
    return ["file", data.hex(), mode]


def _d(children: dict[str, Any], opaque: str | None = None, redirect: str | None = None) -> list[Any]:
    return ["dir", children, 0o755, opaque, redirect]


# Fixed stacks that always run (derandomized or not): every marker form and every kind of operation.
FIXED: list[dict[str, Any]] = [
    {  # the classic walk-through: copy-up, whiteout, opaque, merged, rename
        "lowers": [
            {"a": _f(b"a0"), "c": _f(b"c0"), "f": _f(), "dir": _d({"one": _f(), "two": _f()}), "g": ["wh"]},
            {"g": _f(b"gone"), "s": _f(b"s1"), "base": _d({"x": _f()})},
        ],
        "upper": {"a": _f(b"au"), "b": _f(b"b")},
        "ops": [
            ["append", 1, 0, 0, b"more".hex()],  # c
            ["delete", 4, 0, 0, ""],
            ["rmrf_mkdir", 1, 0, 0, ""],
            ["rename", 0, 0, 5, ""],
            ["chmod", 2, 0, 1, ""],
            ["create", 4, 2, 0, b"new".hex()],
        ],
    },
    {  # markers in lowers: opaque values, xattr whiteouts, nested opaque, loops and absolute links
        "lowers": [
            {
                "a": _d({"b": ["xwh"], "c": _f()}, opaque="x"),
                "b": _d({"x": _f()}, opaque="y"),
                "c": _d({"y": ["wh"]}, opaque="yes"),
                "d": ["symlink", "@self"],
            },
            {
                "a": _d({"b": _f(b"hidden"), "d": _f(b"seen")}),
                "b": _d({"hidden": _f()}),
                "c": _d({"y": _f(), "z": _f()}, opaque=""),
                "l": ["symlink", "/etc/passwd"],
                "p": ["fifo", 0o600],
            },
        ],
        "upper": {"d": _d({}, opaque="Y")},
        "ops": [["rename", 0, 3, 1, ""], ["rmrf", 2, 0, 0, ""], ["write", 3, 0, 0, b"w".hex()]],
    },
    {  # hand-made redirects and decoy xattrs of the other namespace
        "lowers": [
            {
                "n": _d({"one": _f(b"1")}, redirect="o"),
                "o": ["wh"],
                "abs": _d({}, redirect="/deep/er"),
                "deep": _d({"er": ["wh"]}),
            },
            {"o": _d({"two": _f(b"2")}), "deep": _d({"er": _d({"three": _f(b"3")})})},
            {"o": _d({"old": _f(b"0")}, opaque="y"), "x": ["decoy", _d({"k": _f()})]},
            {"x": _d({"hidden?": _f()})},
        ],
        "upper": {"y": ["decoy", _f(b"")]},
        "ops": [["rename", 1, 0, 2, ""], ["chmod", 3, 0, 4, ""], ["rename", 5, 0, 5, ""], ["delete", 0, 0, 0, ""]],
    },
    {  # hard links in lowers (a lower file and its second name; a linked whiteout), written through one name
        "lowers": [
            {
                "d": _d({"a": _f(b"one inode"), "b": ["link", "d/a"]}),
                "e": ["link", "d/a"],
                "w": ["wh"],
                "v": ["link", "w"],
            },
            {"w": _f(b"hidden"), "v": _f(b"hidden too"), "d": _d({"c": _f(b"merged")})},
        ],
        "upper": {},
        "ops": [["append", 0, 0, 0, b"more".hex()], ["chmod", 4, 0, 1, ""], ["delete", 3, 0, 0, ""]],
    },
    {  # xattr whiteouts in a middle lower: in an opaque=x dir, in a dir without it, at a root marked opaque=x
        "lowers": [
            {"a": _d({"c": _f(b"top")})},
            {
                "a": _d({"a": ["xwh"], "b": _f(b"mid")}, opaque="x"),
                "b": _d({"a": ["xwh"]}),
                "c": ["xwh"],
                ".": ["root", "x"],
            },
            {"a": _d({"a": _f(b"hidden")}), "b": _d({"a": _f(b"hidden?")}), "c": _f(b"hidden too")},
        ],
        "upper": {},
        "ops": [["create", 0, 1, 0, b"new".hex()], ["rmrf_mkdir", 0, 0, 0, ""]],
    },
]


# ------------------------------------------------------------------------------------------------ the check
def _compare(model: dict[str, Facts], kernel: dict[str, Facts]) -> list[str]:
    diffs = []
    for path in sorted(set(model) | set(kernel)):
        m, k = model.get(path), kernel.get(path)
        if m != k:
            diffs.append(f"  {path!r}: model={m} kernel={k}")
    return diffs


def _check(spec: dict[str, Any], options: str, ns: str) -> None:
    root = tempfile.mkdtemp(prefix="ufs-oracle-")
    try:
        os.chmod(root, 0o755)
        lowers = []
        for n, tree in enumerate(spec["lowers"]):
            p = os.path.join(root, f"l{n}")
            os.mkdir(p)
            build_tree(p, tree, ns)
            lowers.append(p)
        upper, work, mnt = (os.path.join(root, x) for x in ("u", "w", "m"))
        for p in (upper, work, mnt):
            os.mkdir(p)
        build_tree(upper, spec["upper"], ns)
        run = {"lowers": lowers, "upper": upper, "work": work, "mnt": mnt, "options": options, "ops": spec["ops"]}
        opts = in_effect([o for o in options.split(",") if o])  # what the mount does, defaults said

        def model() -> dict[str, Facts]:
            return model_snapshot(Stack.build(lowers, upper, work, xattr_ns=ns, options=opts))  # type: ignore[arg-type]

        if ns == "user":
            chown_tree(root, UID)  # (chown clears set-uid bits: build the model after it)
        before_model = model()
        out = run_in_userns(run) if ns == "user" else cycle(run)
        after_model = model()
        layers = describe_layers({f"lower:{n}": p for n, p in enumerate(lowers)} | {"upper": upper})
        for when, m, k in (("before", before_model, out["before"]), ("after", after_model, out["after"])):
            diffs = _compare(m, facts_from_json(k) if ns == "user" else k)
            assert not diffs, (
                f"model != kernel {when} the ops (options={options!r}, ns={ns})\n"
                + "\n".join(diffs)
                + "\nops: "
                + "; ".join(out["log"])
                + "\nlayers after the ops:\n"
                + layers
            )
    finally:
        remove_tree(root)


def _with_fixed(test: Any) -> Any:
    for spec in FIXED:
        test = example(spec=spec)(test)
    return test


@pytest.mark.slow
@pytest.mark.usefixtures("root_mount")
@SETTINGS
@_with_fixed
@given(spec=STACKS)
def test_default_options(spec: dict[str, Any]) -> None:
    _check(spec, "", "trusted")


@pytest.mark.slow
@pytest.mark.usefixtures("root_mount")
@SETTINGS
@_with_fixed
@given(spec=STACKS)
def test_redirect_dir(spec: dict[str, Any]) -> None:
    _check(spec, "redirect_dir=on", "trusted")


@pytest.mark.slow
@pytest.mark.usefixtures("root_mount")
@SETTINGS
@_with_fixed
@given(spec=STACKS)
def test_metacopy(spec: dict[str, Any]) -> None:
    _check(spec, "redirect_dir=on,metacopy=on", "trusted")


@pytest.mark.slow
@pytest.mark.usefixtures("root_mount", "userns_mount")
@SETTINGS
@_with_fixed
@given(spec=STACKS)
def test_userxattr(spec: dict[str, Any]) -> None:
    _check(spec, "userxattr", "user")


@pytest.mark.usefixtures("root_mount")
@pytest.mark.parametrize("options", ["", "redirect_dir=on", "redirect_dir=on,metacopy=on"])
def test_fixed_stacks_with_python_scans(options: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The fixed stacks again through dirscan's Python functions: what runs where the C extension is not built."""
    for name in ("read_dirs", "marked_files", "stat_files"):
        monkeypatch.setattr(dirscan, name, getattr(dirscan, "py_" + name))
    for spec in FIXED:
        _check(spec, options, "trusted")
