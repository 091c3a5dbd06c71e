"""Every failure in OVERLAY-NOTES §7 gives a plain message saying what is wrong and how to fix it.

Each case runs ``ufs-tui mount`` (a real process) and checks its message. Where ufs_tui refuses before mounting,
the test also hands the same mount to the kernel and checks the kernel refuses it too (so the check is not stricter
than the kernel) and that the kernel's own reason is explained; cases that cannot be checked up front really mount.
Every message is one line per problem, ``ufs-tui: error: WHAT (fix: HOW)``. A case the kernel mounts but that then
fails (redirects not followed: EPERM on lookup) is mounted, with a warning of the same form said first.
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import pytest

from tests.conftest import need
from tests.mount.helpers import assert_not_mounted, cli, make_tree, scratch
from tests.overlay import mount_overlay, umount
from ufs_tui.core.mounting.mount_table import mount_points
from ufs_tui.core.mounting.preflight import explain
from ufs_tui.core.mounting.record import recorded
from ufs_tui.core.mounting.syscalls import KernelMountError, kernel_mount


@dataclass
class Case:
    args: list[str]  # after 'ufs-tui mount'
    expect: str  # in ufs-tui's message
    params: list[tuple[str, str | None]] | None = None  # the same mount for the kernel (None: not refused up front)
    kernel_expect: str = ""  # in explain(what the kernel said)
    undo: list[str] = field(default_factory=list)  # mounts to remove afterwards
    fails_on: str = ""  # the kernel mounts it (a warning is said first); then looking up this path fails (EPERM)


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
    return Case(
        [*_stack_args(f"{d}/l0", f"{d}/u", f"{d}/w"), "-o", "index=on"], f"in use by another overlay mount at {d}/m0",
        _p(f"{d}/l0", f"{d}/u", f"{d}/w", "index=on"), "another overlay mount is using",
    )  # fmt: skip


def upper_in_use_without_index(d: str) -> Case:
    # The kernel mounts this with only a warning in dmesg (writes through both mounts are undefined): refused up
    # front unless --force (test_force_mounts_a_shared_upper_and_passes_the_kernels_warning_on).
    os.mkdir(f"{d}/m0")
    mount_overlay([f"{d}/l1"], f"{d}/u", f"{d}/w", f"{d}/m0")
    return Case(_stack_args(f"{d}/l0", f"{d}/u", f"{d}/w"), f"the upper is in use by another overlay mount at {d}/m0")


def redirect_not_followed(d: str) -> Case:
    # A renamed dir (redirect_dir=on) in the upper, then mounted with redirect_dir=nofollow: the kernel mounts
    # it, and looking up the renamed dir fails with EPERM ("refusing to follow redirect").
    make_tree(d, {"l1/docs/x": "x\n"})
    mount_overlay([f"{d}/l0", f"{d}/l1"], f"{d}/u", f"{d}/w", f"{d}/m", "redirect_dir=on")
    try:
        os.rename(f"{d}/m/docs", f"{d}/m/manual")
    finally:
        umount(f"{d}/m")
    return Case(
        [*_stack_args(f"{d}/l0:{d}/l1", f"{d}/u", f"{d}/w"), "-o", "redirect_dir=nofollow"],
        "redirect this mount will not follow: /manual; looking them up will fail with EPERM", fails_on="/manual",
    )  # fmt: skip


CASES = [
    diff_fs, work_in_upper, upper_without_work, one_lower_no_upper, missing_lower, lower_not_a_dir,
    lower_inside_upper, lower_twice, lower_is_work, lower_contains_upper, triple_colon, trailing_colon,
    _conflict("metacopy=on", "userxattr"), _conflict("redirect_dir=on", "userxattr"),
    _conflict("metacopy=on", "redirect_dir=nofollow"), _conflict("nfs_export=on", "index=off"),
    upper_on_overlay, after_volatile, index_over_other_lower, upper_in_use_with_index, upper_in_use_without_index,
    redirect_not_followed,
]  # fmt: skip

# ufs-tui's lines on stderr: "ufs-tui: error: WHAT (fix: HOW)" (or warning), and the plan said before mounting.
PLAIN = re.compile(r"ufs-tui: (error|warning): (?P<what>\S.*\S) \(fix: (?P<fix>\S[^()]*(\([^()]*\)[^()]*)*)\)")


def assert_plain(stderr: str, kind: str = "error") -> list[str]:
    """Each message is one line saying what is wrong and how to fix it; returns the lines of ``kind``."""
    said: list[str] = []
    for line in stderr.splitlines():
        if line.startswith("mount: "):
            continue  # the plan, said before mounting
        m = PLAIN.fullmatch(line)
        assert m, f"not one plain line with a fix: {line!r}\n{stderr}"
        if m.group(1) == kind:
            said.append(line)
    assert said, f"no {kind} line in:\n{stderr}"
    return said


@pytest.mark.parametrize("make", CASES, ids=[c.__name__ for c in CASES])
def test_mount_failure_gives_a_plain_message(root_mount: None, d: str, make: Callable[[str], Case]) -> None:
    case = make(d)
    before = {t for t in mount_points() if t.startswith(d + "/")}
    r = cli(f"{d}/rt", "mount", *case.args, f"{d}/m")
    if case.fails_on:  # mounted, with the warning said first; the kernel then refuses the lookup as warned
        assert r.returncode == 0, r.stderr
        [warning] = assert_plain(r.stderr, "warning")
        assert case.expect in warning and r.stderr.index(warning) < r.stderr.index("mount: ")
        try:
            with pytest.raises(OSError) as ei:
                os.lstat(f"{d}/m{case.fails_on}")
            assert ei.value.errno == errno.EPERM
        finally:
            assert cli(f"{d}/rt", "umount", f"{d}/m").returncode == 0
        assert_not_mounted(f"{d}/m")
        assert recorded(f"{d}/rt") == []
        return
    assert r.returncode == 2, r.stdout + r.stderr
    errors = assert_plain(r.stderr)
    assert any(case.expect in line for line in errors), r.stderr
    assert {t for t in mount_points() if t.startswith(d + "/")} == before  # nothing was mounted
    assert_not_mounted(f"{d}/m")
    if case.params is not None:
        with pytest.raises(KernelMountError) as ei:
            kernel_mount(case.params, f"{d}/m")
        said = explain(ei.value.messages, ei.value.errno)
        assert case.kernel_expect in said.what, (ei.value.messages, said)


def test_force_mounts_a_shared_upper_and_passes_the_kernels_warning_on(root_mount: None, d: str) -> None:
    """--force: the upper another mount uses is mounted anyway, and the kernel's dmesg warning reaches the user."""
    os.mkdir(f"{d}/m0")
    mount_overlay([f"{d}/l1"], f"{d}/u", f"{d}/w", f"{d}/m0")
    try:
        r = cli(f"{d}/rt", "mount", *_stack_args(f"{d}/l0", f"{d}/u", f"{d}/w"), "--force", f"{d}/m")
        assert r.returncode == 0, r.stderr
        warnings = assert_plain(r.stderr, "warning")
        assert any(f"in use by another overlay mount at {d}/m0" in w for w in warnings), r.stderr
        assert any("the kernel said: upperdir is in-use" in w and "undefined" in w for w in warnings), r.stderr
        assert f"{d}/m" in mount_points()
        assert cli(f"{d}/rt", "umount", f"{d}/m").returncode == 0
    finally:
        umount(f"{d}/m0")
    assert_not_mounted(f"{d}/m", f"{d}/m0")


def test_a_mount_of_ours_counts_as_using_the_upper(root_mount: None, d: str) -> None:
    """The record is looked at too (a userns or fuse mount does not show its upper in this mountinfo)."""
    r = cli(f"{d}/rt", "mount", *_stack_args(f"{d}/l0", f"{d}/u", f"{d}/w"), "--backend", "userns")
    assert r.returncode == 0, r.stderr
    try:
        [mine] = recorded(f"{d}/rt")
        r = cli(f"{d}/rt", "mount", *_stack_args(f"{d}/l1", f"{d}/u", f"{d}/w"), f"{d}/m")
        assert r.returncode == 2
        upper, work = assert_plain(r.stderr)
        assert f"{d}/u: the upper is in use by another overlay mount at {mine.target} (userns, ufs-tui)" in upper
        assert f"{d}/w: the work dir is in use by another overlay mount at {mine.target} (userns, ufs-tui)" in work
        assert_not_mounted(f"{d}/m")
    finally:
        assert cli(f"{d}/rt", "umount", "--mine").returncode == 0


def test_fuse_failure_is_one_line_from_fuse_overlayfs(root_mount: None) -> None:
    """fuse-overlayfs fails (here: /dev/fuse is root-only and the user is not): one line, labelled as what
    fuse-overlayfs said (not the kernel), with a fix; its noise lines are left out."""
    need(shutil.which("fuse-overlayfs") is not None, "needs fuse-overlayfs")
    need(not os.access("/dev/fuse", os.R_OK | os.W_OK) or os.stat("/dev/fuse").st_mode & 0o006 == 0,
         "/dev/fuse is usable by every user here")  # fmt: skip
    with scratch({"l0/a": "a\n", "l1/b": "b\n", "m/": None}) as d:
        subprocess.run(["chown", "-R", "65534:65534", d], check=True)
        r = cli(f"{d}/rt", "mount", "--backend", "fuse", "--lower", f"{d}/l0:{d}/l1", f"{d}/m", as_nobody=True)
        assert r.returncode == 2, r.stderr
        [line] = assert_plain(r.stderr)
        assert line.startswith("ufs-tui: error: fuse-overlayfs: this user cannot use /dev/fuse")
        assert "(fuse-overlayfs said: fuse: failed to open /dev/fuse" in line and "kernel" not in line
        assert "unknown argument ignored" not in r.stderr
        assert "(fix: mount as root, or use --backend userns)" in line
        assert_not_mounted(f"{d}/m")


@pytest.mark.parametrize("command", [["mount", "--lower", "L0:L1"], ["umount", "--mine"]])
def test_a_runtime_dir_that_cannot_be_made_is_one_line(d: str, command: list[str]) -> None:
    argv = [a.replace("L0", f"{d}/l0").replace("L1", f"{d}/l1") for a in command]
    r = cli("/nonexistent-ufs-test/rt", *argv)
    assert r.returncode == 2 and r.stdout == ""
    [line] = assert_plain(r.stderr)
    assert line.startswith("ufs-tui: error: /nonexistent-ufs-test/rt: cannot create the runtime dir")
    assert not os.path.exists("/nonexistent-ufs-test")


@pytest.mark.parametrize(
    ("lower", "said"),
    [
        ("{d}/l0:{d}/nope", "{d}/nope: layer does not exist (fix: create it, or correct the path)"),
        ("{d}/l0:{d}/file", "{d}/file: layer is not a directory (fix: give a directory, not a file)"),
        ("{d}/l0:::{d}/l1", "separators are allowed (fix: separate layers with ':'"),
        ("{d}/l0:", "bad lowerdir: trailing ':' (fix: remove it"),
    ],
)
def test_layer_errors_say_how_to_fix_them(d: str, lower: str, said: str) -> None:
    r = cli(f"{d}/rt", "mount", "--lower", lower.format(d=d), f"{d}/m")
    assert r.returncode == 2
    [line] = assert_plain(r.stderr)
    assert said.format(d=d) in line


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
