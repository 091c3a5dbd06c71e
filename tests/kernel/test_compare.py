"""``ufs-tui compare`` against the kernel: two stacks, changed through real mounts, compared by the model (from
their layers) and by a plain walk over the two mount points (``lstat``, ``readlink``, reading the files through
the kernel): the same lines. Random stacks too (hypothesis), some sharing their bottom lower. A mount point
read as a plain dir shows no difference from the model of its stack; dirs only the shared bottom layer makes
are not read. Unreadable dirs (as uid 65534): a warning each, exit 2 unless a difference was found."""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from tests import nobody
from tests.conftest import IN_CI
from tests.kernel.layers import build_tree
from tests.kernel.strategies import tree as layer_tree
from tests.overlay import mount_overlay, umount
from ufs_tui.cli import main
from ufs_tui.core.demo import remove_tree
from ufs_tui.core.model.kernel_defaults import in_effect
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.reports.compare import Comparison, Tree

Line = tuple[str, str, tuple[str, ...]]  # (kind, path, the fields that differ)


# ------------------------------------------------------------------------------------------------ the oracle


class KernelTrouble(Exception):
    """The kernel refused a lookup or a read (such random stacks are the model oracle's business, not this)."""


def kernel_compare(ra: str, rb: str) -> list[Line]:
    """B against A as two plain trees the kernel shows: a walk of both mount points, with nothing of ufs_tui."""
    out: list[Line] = []

    def look(p: str) -> os.stat_result | None:
        try:
            return os.lstat(p)
        except FileNotFoundError:  # (readdir lists a whiteout in a dir that merges nothing: no name)
            return None
        except OSError as e:
            raise KernelTrouble(p, e) from None

    def fields(pa: str, pb: str, sa: os.stat_result, sb: os.stat_result) -> tuple[str, ...]:
        fa, fb = stat.S_IFMT(sa.st_mode), stat.S_IFMT(sb.st_mode)
        if fa != fb:
            return ("type",)
        got = []
        if stat.S_IMODE(sa.st_mode) != stat.S_IMODE(sb.st_mode) and fa != stat.S_IFLNK:
            got.append("mode")
        if (sa.st_uid, sa.st_gid) != (sb.st_uid, sb.st_gid):
            got.append("owner")
        if fa == stat.S_IFLNK and os.readlink(pa) != os.readlink(pb):
            got.append("target")
        elif fa in (stat.S_IFCHR, stat.S_IFBLK) and sa.st_rdev != sb.st_rdev:
            got.append("device")
        elif fa == stat.S_IFREG and sa.st_size != sb.st_size:
            got += ["size", "content"]
        elif fa == stat.S_IFREG and read(pa) != read(pb):
            got.append("content")
        return tuple(got)

    def read(p: str) -> bytes:
        try:
            with open(p, "rb") as f:
                return f.read()
        except OSError as e:
            raise KernelTrouble(p, e) from None

    def names(p: str) -> set[str]:
        try:
            return set(os.listdir(p))
        except OSError as e:
            raise KernelTrouble(p, e) from None

    def walk(rel: str, a: bool, b: bool) -> None:
        listed_a, listed_b = names(ra + rel) if a else set(), names(rb + rel) if b else set()
        for name in sorted(listed_a | listed_b, key=os.fsencode):
            path = f"{rel}/{name}"
            pa, pb = ra + path, rb + path
            sa, sb = look(pa) if name in listed_a else None, look(pb) if name in listed_b else None
            visit(path, pa, pb, sa, sb)

    def visit(path: str, pa: str, pb: str, sa: os.stat_result | None, sb: os.stat_result | None) -> None:
        if sb is None:
            if sa is not None:
                out.append(("D", path or "/", ()))
            return
        if sa is None:
            out.append(("A", path or "/", ()))
        else:
            got = fields(pa, pb, sa, sb)
            if got:
                out.append(("C", path or "/", got))
        if stat.S_ISDIR(sb.st_mode):
            walk(path, sa is not None and stat.S_ISDIR(sa.st_mode), True)

    visit("", ra, rb, look(ra), look(rb))
    return out


def model_compare(a: Stack | Tree, b: Stack | Tree) -> list[Line]:
    cmp = Comparison(a if isinstance(a, Tree) else Tree(a), b if isinstance(b, Tree) else Tree(b))
    got = [(d.kind, d.path, tuple(f.name for f in d.fields)) for d in cmp.differences()]
    assert cmp.errors == {}
    return got


# ------------------------------------------------------------------------------------------------ two stacks


class Pair:
    """Stacks A and B under one temp dir: each its own lowers, upper, work dir and mount point; ``base`` is a
    bottom lower both may share."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.base = self.mk("base")

    def mk(self, rel: str) -> str:
        p = os.path.join(self.root, rel)
        os.makedirs(p, exist_ok=True)
        return p

    def dirs(self, side: str, nlowers: int = 1) -> tuple[list[str], str, str, str]:
        lowers = [self.mk(f"{side}/l{n}") for n in range(nlowers)]
        return lowers, self.mk(f"{side}/u"), self.mk(f"{side}/w"), self.mk(f"{side}/m")

    @contextlib.contextmanager
    def mounted(self, lowers: list[str], upper: str, work: str, mnt: str, options: str = "") -> Iterator[str]:
        mount_overlay(lowers, upper, work, mnt, options)
        try:
            yield mnt
        finally:
            umount(mnt)


@pytest.fixture
def pair() -> Iterator[Pair]:
    root = tempfile.mkdtemp(prefix="ufs-compare-")
    os.chmod(root, 0o755)
    try:
        yield Pair(root)
    finally:
        for side in ("a", "b"):
            mnt = os.path.join(root, side, "m")
            if os.path.ismount(mnt):  # a test that failed while mounted
                umount(mnt)
        remove_tree(root)


def _file(path: str, data: bytes = b"x", mode: int = 0o644) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _base(base: str) -> None:
    for n in range(30):
        _file(f"{base}/usr/share/doc/f{n}", b"doc %d\n" % n)
    _file(f"{base}/etc/motd", b"hello\n")
    _file(f"{base}/etc/mode", b"m")
    _file(f"{base}/etc/owner", b"o")
    os.symlink("x", f"{base}/link")
    _file(f"{base}/swap", b"s")
    _file(f"{base}/dirfile/inner", b"i")
    _file(f"{base}/gone/sub/deep", b"d")
    _file(f"{base}/gone/other", b"o")
    _file(f"{base}/opq/k1", b"1\n")
    _file(f"{base}/opq/k2", b"2\n")
    _file(f"{base}/opt/pkg/one", b"1")
    os.mknod(f"{base}/dev", stat.S_IFCHR | 0o600, os.makedev(1, 3))


B_OPS = """
umask 022
echo world > etc/motd
chmod 600 etc/mode
chown 1000:1000 etc/owner
ln -sfn y link
rm swap; mkdir swap; echo i > swap/inner
rm -rf dirfile; echo f > dirfile
rm -rf gone
rm -rf opq; mkdir opq; echo k > opq/k1
mkdir -p new/sub; echo n > new/sub/f
rm dev; mknod -m 600 dev c 1 5
mv opt/pkg opt/pkg2
"""

EXPECTED: list[Line] = [
    ("C", "/dev", ("device",)),
    ("C", "/dirfile", ("type",)),
    ("C", "/etc/mode", ("mode",)),
    ("C", "/etc/motd", ("content",)),
    ("C", "/etc/owner", ("owner",)),
    ("D", "/gone", ()),
    ("D", "/kept", ()),
    ("C", "/link", ("target",)),
    ("A", "/new", ()),
    ("A", "/new/sub", ()),
    ("A", "/new/sub/f", ()),
    ("C", "/opq/k1", ("content",)),  # (an opaque dir: k1 new, same size; k2 hidden)
    ("D", "/opq/k2", ()),
    ("D", "/opt/pkg", ()),
    ("A", "/opt/pkg2", ()),
    ("A", "/opt/pkg2/one", ()),
    ("C", "/swap", ("type",)),
    ("A", "/swap/inner", ()),
]


def _changed(pair: Pair, options: str) -> tuple[tuple[list[str], str, str, str], tuple[list[str], str, str, str]]:
    """A: base under an empty lower and an upper that made /kept; B: base, changed in every way by B_OPS."""
    _base(pair.base)
    a, b = pair.dirs("a"), pair.dirs("b")
    a[0].append(pair.base)
    b[0].append(pair.base)
    for side, script in ((a, "echo keep > kept"), (b, B_OPS)):
        with pair.mounted(*side, options=options) as m:
            r = subprocess.run(["sh", "-ec", script], cwd=m, capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
    return a, b


def _stack(side: tuple[list[str], str, str, str], options: str) -> Stack:
    opts = in_effect([o for o in options.split(",") if o])
    return Stack.build(side[0], side[1], side[2], options=opts)


@pytest.mark.usefixtures("root_mount")
@pytest.mark.parametrize("options", ["", "metacopy=on,redirect_dir=on"])
def test_two_stacks_differing_in_each_way_as_the_kernel_shows_them(pair: Pair, options: str) -> None:
    a, b = _changed(pair, options)
    sa, sb = _stack(a, options), _stack(b, options)
    assert model_compare(sa, sb) == EXPECTED
    with pair.mounted(*a, options=options) as ma, pair.mounted(*b, options=options) as mb:
        assert kernel_compare(ma, mb) == EXPECTED
        # a mount point read as a plain dir, through the kernel: the same tree as the model of its stack
        for stack, mnt in ((sa, ma), (sb, mb)):
            assert model_compare(stack, Tree(Stack.build([mnt]))) == []
        assert model_compare(Tree(Stack.build([ma])), Tree(Stack.build([mb]))) == EXPECTED
        # the CLI on the two mount points (SOURCEs: their stacks, from the mount table)
        out = io.StringIO()
        assert main(["compare", ma, mb], stdout=out) == 1
        lines = out.getvalue().splitlines()
        assert [tuple(line.split()[:2]) for line in lines] == [(k, p) for k, p, _ in EXPECTED]
        assert "C /etc/owner  owner 0:0 → 1000:1000" in lines and "C /dev  device 1:3 → 1:5" in lines
        out = io.StringIO()
        assert main(["compare", ma, mb, "--format", "json", "--content", "/etc/motd"], stdout=out) == 1
        (obj,) = map(json.loads, out.getvalue().splitlines())
        assert obj["diff"] == "--- A:/etc/motd\n+++ B:/etc/motd\n@@ -1 +1 @@\n-hello\n+world\n"


@pytest.mark.usefixtures("root_mount")
def test_dirs_only_the_shared_bottom_layer_makes_are_not_read(pair: Pair, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = _changed(pair, "")
    ta, tb = Tree(_stack(a, "")), Tree(_stack(b, ""))
    scanned: list[str] = []
    for t in (ta, tb):
        scan = t.view.scan_dir

        def counting(p: str, *args: Any, scan: Any = scan) -> Any:
            scanned.append(p)
            return scan(p, *args)

        monkeypatch.setattr(t.view, "scan_dir", counting)
    assert model_compare(ta, tb) == EXPECTED
    assert not [p for p in scanned if p.startswith("/usr")]
    # the same stack twice: nothing is read below the root
    scanned.clear()
    assert model_compare(ta, Tree(_stack(a, ""))) == []
    assert scanned == []


@pytest.mark.usefixtures("root_mount")
def test_a_layer_against_the_merged_view_and_another_layer(pair: Pair) -> None:
    a, b = _changed(pair, "")
    sb = _stack(b, "")
    upper = sb.layer_by_name("upper")
    # the upper's own tree against the merged view: the merged view has everything the upper does not touch
    got = model_compare(Tree(sb, upper), sb)
    assert ("A", "/usr", ()) in got and ("C", "/etc/motd", ()) not in got
    assert all(kind == "A" for kind, _, _ in got)  # the upper's own files are what the merged view shows
    # the shared base against itself, as a layer of two stacks: the same
    assert model_compare(Tree(_stack(a, ""), _stack(a, "").layer_by_name("lower:1")), Tree(sb, sb.lowers[1])) == []
    out = io.StringIO()
    with pair.mounted(*b) as mb:
        assert main(["compare", f"{mb}@lower:1", f"{mb}@lower:0"], stdout=out) == 1  # base against b's empty l0
    assert out.getvalue().splitlines()[:2] == ["D /dev", "D /dirfile"]


# ------------------------------------------------------------------------------------------------ random stacks

SIDES = st.fixed_dictionaries(
    {
        "a": st.lists(layer_tree, min_size=1, max_size=2),
        "a_upper": layer_tree,
        "b": st.lists(layer_tree, min_size=1, max_size=2),
        "b_upper": layer_tree,
        "b_like_a": st.booleans(),  # B's lowers are copies of A's (so only the uppers differ)
        "shared": st.booleans(),  # B's bottom lower is A's
    }
)


@pytest.mark.usefixtures("root_mount")
@settings(
    max_examples=int(os.environ.get("UFS_ORACLE_EXAMPLES", "60")),
    deadline=None,
    derandomize=IN_CI,
    database=None if IN_CI else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(spec=SIDES)
def test_random_stacks_compare_as_the_kernel_shows_them(spec: dict[str, Any]) -> None:
    root = tempfile.mkdtemp(prefix="ufs-compare-")
    try:
        pair = Pair(root)
        sides = []
        if spec["b_like_a"]:
            spec = {**spec, "b": spec["a"]}
        for side in ("a", "b"):
            lowers, upper, work, mnt = pair.dirs(side, len(spec[side]))
            for path, tree in zip([*lowers, upper], [*spec[side], spec[f"{side}_upper"]], strict=True):
                build_tree(path, tree, "trusted")
            sides.append((lowers, upper, work, mnt))
        if spec["shared"]:
            sides[1][0][-1] = sides[0][0][-1]
        stacks = [_stack(side, "") for side in sides]
        cmp = Comparison(Tree(stacks[0]), Tree(stacks[1]))
        model = [(d.kind, d.path, tuple(f.name for f in d.fields)) for d in cmp.differences()]
        assume(not cmp.errors)
        with pair.mounted(*sides[0]) as ma, pair.mounted(*sides[1]) as mb:
            try:
                kernel = kernel_compare(ma, mb)
            except KernelTrouble:
                assume(False)
                return
        assert model == kernel
    finally:
        for side in ("a", "b"):
            mnt = os.path.join(root, side, "m")
            if os.path.ismount(mnt):
                umount(mnt)
        remove_tree(root)


# ------------------------------------------------------------------------------------------------ unreadable


def _as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CONFIG_HOME": "/nonexistent"}  # (no config file of the user running the tests)
    return nobody.run("-m", "ufs_tui", "compare", *argv, env=env, text=True, timeout=60)


def test_an_unreadable_dir_is_a_warning_and_exit_2_unless_they_differ(shared_tmp: str) -> None:
    a, b = os.path.join(shared_tmp, "a"), os.path.join(shared_tmp, "b")
    for side in (a, b):
        _file(f"{side}/locked/secret", b"s")
        _file(f"{side}/open/f", b"f")
        os.chmod(f"{side}/locked", 0o000)
    r = _as_nobody(a, b)
    warning = f"ufs-tui: warning: /locked: in A: cannot read lower:0 {a}/locked: Permission denied (not compared)"
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (2, "", [warning]), r
    os.chmod(f"{b}/locked", 0o755)  # readable in B only: its mode differs, and A's is still unread
    r = _as_nobody(a, b)
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (1, "C /locked  mode 0000 → 0755\n", [warning]), r
    os.chmod(f"{b}/locked", 0o000)
    _file(f"{b}/open/f", b"g")  # a difference found: an answer, even with a dir unread
    r = _as_nobody(a, b)
    assert (r.returncode, r.stdout, r.stderr.splitlines()) == (1, "C /open/f  content\n", [warning]), r
    for side in (a, b):  # files whose content cannot be read (the same size): unknown
        os.chmod(f"{side}/locked", 0o755)
        os.chmod(f"{side}/open/f", 0o000)
    r = _as_nobody(a, b)
    assert (r.returncode, r.stdout) == (2, ""), r
    assert r.stderr.splitlines() == [
        "ufs-tui: warning: /open/f: in A: cannot read it: Permission denied (not compared)"
    ]
    os.chmod(a, 0o000)  # a side that cannot be opened at all: an error
    r = _as_nobody(a, b)
    assert r.returncode == 2 and r.stderr.startswith("ufs-tui: error: ") and r.stderr.count("\n") == 1, r
    os.chmod(a, 0o755)
    shutil.rmtree(a)
