"""Every failure in OVERLAY-NOTES §7 gives a plain message saying what is wrong and how to fix it.

Each case runs ``ufs-tui mount`` (a real process) and checks its message. Where ufs_tui refuses before mounting,
the test also hands the same mount to the kernel and checks the kernel refuses it too (so the check is not stricter
than the kernel) and that the kernel's own reason is explained; cases that cannot be checked up front really mount.
"""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.mount.helpers import assert_not_mounted, cli, make_tree, scratch
from tests.overlay import mount_overlay, umount
from ufs_tui.core.mount import KernelMountError, kernel_mount, mount_points
from ufs_tui.core.mount_errors import explain


@dataclass
class Case:
    args: list[str]  # after 'ufs-tui mount'
    expect: str  # in ufs-tui's message
    params: list[tuple[str, str | None]] | None = None  # the same mount for the kernel (None: not refused up front)
    kernel_expect: str = ""  # in explain(what the kernel said)
    undo: list[str] = field(default_factory=list)  # mounts to remove afterwards


@pytest.fixture
def d() -> Iterator[str]:
    with scratch({"l0/a": "a\n", "l1/b": "b\n", "u/": None, "w/": None, "m/": None, "file": "x"}) as d:
        yield d


def _p(lower: str, upper: str | None = None, work: str | None = None, *opts: str) -> list[tuple[str, str | None]]:
    out: list[tuple[str, str | None]] = [("lowerdir", lower)]
    if upper:
        out.append(("upperdir", upper))
    if work:
        out.append(("workdir", work))
    for o in opts:
        k, _, v = o.partition("=")
        out.append((k, v or None))
    return out


def _stack_args(lower: str, upper: str | None = None, work: str | None = None) -> list[str]:
    a = ["--lower", lower]
    if upper:
        a += ["--upper", upper]
    if work:
        a += ["--work", work]
    return a


def diff_fs(d: str) -> Case:
    os.mkdir(f"{d}/t")
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", f"{d}/t"], check=True)
    os.mkdir(f"{d}/t/u")
    return Case(
        _stack_args(f"{d}/l0", f"{d}/t/u", f"{d}/w"), "different filesystem",
        _p(f"{d}/l0", f"{d}/t/u", f"{d}/w"), "different filesystems",
    )  # fmt: skip


def work_in_upper(d: str) -> Case:
    os.mkdir(f"{d}/u/w")
    return Case(
        _stack_args(f"{d}/l0", f"{d}/u", f"{d}/u/w"), "overlap",
        _p(f"{d}/l0", f"{d}/u", f"{d}/u/w"), "work dir is inside the upper",
    )  # fmt: skip


def upper_without_work(d: str) -> Case:
    return Case(_stack_args(f"{d}/l0", f"{d}/u"), "needs a work dir", _p(f"{d}/l0", f"{d}/u"), "needs a work dir")


def one_lower_no_upper(d: str) -> Case:
    return Case(_stack_args(f"{d}/l0"), "at least 2 lower layers", _p(f"{d}/l0"), "at least 2 lower layers")


def missing_lower(d: str) -> Case:
    return Case(
        _stack_args(f"{d}/nope:{d}/l0"), "does not exist", _p(f"{d}/nope:{d}/l0"), "does not exist"
    )  # fmt: skip


def lower_not_a_dir(d: str) -> Case:
    return Case(
        _stack_args(f"{d}/file:{d}/l0"), "not a directory", _p(f"{d}/file:{d}/l0"), "not a directory"
    )  # fmt: skip


def lower_inside_upper(d: str) -> Case:
    os.mkdir(f"{d}/u/sub")
    return Case(
        _stack_args(f"{d}/u/sub", f"{d}/u", f"{d}/w"), "inside",
        _p(f"{d}/u/sub", f"{d}/u", f"{d}/w"), "one is inside another",
    )  # fmt: skip


def lower_twice(d: str) -> Case:
    return Case(
        _stack_args(f"{d}/l0:{d}/l0"), "same dir", _p(f"{d}/l0:{d}/l0"), "same dir or one is inside another"
    )  # fmt: skip


def lower_is_work(d: str) -> Case:
    return Case(
        _stack_args(f"{d}/w", f"{d}/u", f"{d}/w"), "same dir",
        _p(f"{d}/w", f"{d}/u", f"{d}/w"), "same dir or one is inside another",
    )  # fmt: skip


def lower_contains_upper(d: str) -> Case:
    # The kernel mounts this, and lookups fail later with ELOOP: refusing up front is the only clear message.
    make_tree(d, {"big/u/": None, "big/w/": None})
    return Case(_stack_args(f"{d}/big", f"{d}/big/u", f"{d}/big/w"), "inside")


def triple_colon(d: str) -> Case:
    return Case(
        _stack_args(f"{d}/l0:::{d}/l1"), "only single ':' or double '::'",
        _p(f"{d}/l0:::{d}/l1"), "bad lowerdir syntax",
    )  # fmt: skip


def trailing_colon(d: str) -> Case:
    return Case(_stack_args(f"{d}/l0:"), "trailing ':'", _p(f"{d}/l0:"), "bad lowerdir syntax")


def _conflict(*opts: str) -> Callable[[str], Case]:
    def make(d: str) -> Case:
        return Case(
            [*_stack_args(f"{d}/l0", f"{d}/u", f"{d}/w"), "-o", ",".join(opts)], "conflicting options",
            _p(f"{d}/l0", f"{d}/u", f"{d}/w", *opts), "cannot be used together",
        )  # fmt: skip

    make.__name__ = "conflict_" + "_".join(o.replace("=", "_") for o in opts)
    return make


def upper_on_overlay(d: str) -> Case:
    make_tree(d, {"ol/": None, "ou/": None, "ow/": None, "om/": None})
    mount_overlay([f"{d}/ol"], f"{d}/ou", f"{d}/ow", f"{d}/om")
    make_tree(f"{d}/om", {"u/": None, "w/": None})
    return Case(
        _stack_args(f"{d}/l0", f"{d}/om/u", f"{d}/om/w"), "itself on an overlay",
        _p(f"{d}/l0", f"{d}/om/u", f"{d}/om/w"), "filesystem overlay cannot write to",
    )  # fmt: skip


def after_volatile(d: str) -> Case:
    mount_overlay([f"{d}/l0"], f"{d}/u", f"{d}/w", f"{d}/m", "volatile")
    umount(f"{d}/m")
    return Case(
        _stack_args(f"{d}/l0", f"{d}/u", f"{d}/w"), "'volatile' mount",
        _p(f"{d}/l0", f"{d}/u", f"{d}/w"), "used by a 'volatile' mount",
    )  # fmt: skip


def index_over_other_lower(d: str) -> Case:
    mount_overlay([f"{d}/l0"], f"{d}/u", f"{d}/w", f"{d}/m", "index=on")
    umount(f"{d}/m")
    return Case([*_stack_args(f"{d}/l1", f"{d}/u", f"{d}/w"), "-o", "index=on"], "first used over other lower")


def upper_in_use_with_index(d: str) -> Case:
    os.mkdir(f"{d}/m0")
    mount_overlay([f"{d}/l0"], f"{d}/u", f"{d}/w", f"{d}/m0", "index=on")
    return Case([*_stack_args(f"{d}/l0", f"{d}/u", f"{d}/w"), "-o", "index=on"], "another overlay mount is using")


CASES = [
    diff_fs, work_in_upper, upper_without_work, one_lower_no_upper, missing_lower, lower_not_a_dir,
    lower_inside_upper, lower_twice, lower_is_work, lower_contains_upper, triple_colon, trailing_colon,
    _conflict("metacopy=on", "userxattr"), _conflict("redirect_dir=on", "userxattr"),
    _conflict("metacopy=on", "redirect_dir=nofollow"), _conflict("nfs_export=on", "index=off"),
    upper_on_overlay, after_volatile, index_over_other_lower, upper_in_use_with_index,
]  # fmt: skip


@pytest.mark.parametrize("make", CASES, ids=[c.__name__ for c in CASES])
def test_mount_failure_gives_a_plain_message(root_mount: None, d: str, make: Callable[[str], Case]) -> None:
    case = make(d)
    before = {t for t in mount_points() if t.startswith(d + "/")}
    r = cli(f"{d}/rt", "mount", *case.args, f"{d}/m")
    assert r.returncode == 2, r.stdout + r.stderr
    assert case.expect in r.stderr, r.stderr
    assert "ufs-tui: error:" in r.stderr and "Traceback" not in r.stderr
    if case.params is not None or "--lower" in case.args:
        assert "fix:" in r.stderr or "error: " in r.stderr
    assert {t for t in mount_points() if t.startswith(d + "/")} == before  # nothing was mounted
    assert_not_mounted(f"{d}/m")
    if case.params is not None:
        with pytest.raises(KernelMountError) as ei:
            kernel_mount(case.params, f"{d}/m")
        said = explain(ei.value.messages, ei.value.errno)
        assert case.kernel_expect in said.what, (ei.value.messages, said)


def test_lower_containing_upper_really_loops_in_the_kernel(root_mount: None, d: str) -> None:
    """Why the up-front refusal: the kernel mounts it and a lookup of the upper's name then fails with ELOOP."""
    make_tree(d, {"big/u/": None, "big/w/": None})
    kernel_mount([("lowerdir", f"{d}/big"), ("upperdir", f"{d}/big/u"), ("workdir", f"{d}/big/w")], f"{d}/m")
    try:
        with pytest.raises(OSError) as ei:
            os.listdir(f"{d}/m/u")
        assert ei.value.errno == errno.ELOOP
    finally:
        umount(f"{d}/m")


def test_kernel_messages_without_a_match_still_name_the_errno() -> None:
    p = explain(["overlayfs: something new"], errno.EPERM)
    assert "not allowed to mount" in p.what and "something new" in p.what
    p = explain([], None)
    assert p.what.startswith("the mount failed")
