"""The bbolt reader (ufs_tui.core.sources.bbolt) against real files.

* Real containerd (Debian's 1.6 and v2.3.3 from the engine tarball), each with a private root, state, socket
  and a config without CRI, does real work with ``ctr``; after it is stopped, a full walk of both of its
  databases must match ``tools/boltdump`` (Go's bbolt) byte for byte.
* A live containerd keeps committing while ``view`` reads its meta.db (not a copy, no lock): every result
  must be a state that really existed.
* Synthetic files from the small writer below (valid metas and checksums, branch/leaf/overflow pages,
  nested and inline buckets): round trips, meta selection, page sizes, retries when the file changes under
  ``fn``; and hypothesis fuzzing of synthetic and real files (truncation, flipped bytes and words, cycles,
  huge counts and sizes, bad overflow and inline buckets, broken metas, garbage pages): ``view`` returns or
  raises BoltError with a one-line message, never anything else, never a hang.
* Errors: missing file, a dir, permission denied (as uid 65534), an empty file, a text file.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import random
import re
import shutil
import struct
import subprocess
import tarfile
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, event, given, settings
from hypothesis import strategies as st

from tests import nobody
from tests.boltwriter import (
    RawBucket,
    Tree,
    Writer,
    bucket_seq,
    fix_checksums,
    inline_value,
    meta_page,
    write_db,
)
from tests.conftest import need, time_limit
from tests.engines import modern
from tests.engines.conftest import unmount_all_under
from tests.engines.modern import ModernEngine
from ufs_tui.core.sources.bbolt import BoltError, Bucket, view
from ufs_tui.core.sources.ctrd import META_DB, SNAPSHOTTER_DB

BUSYBOX = "/bin/busybox"

Walked = list[tuple[bytes, "bytes | Walked"]]


# ====================================================================== helpers
def walk(b: Bucket) -> Walked:
    """Every key of ``b`` and its nested buckets, in order, as plain data."""
    return [(k, walk(v) if isinstance(v, Bucket) else v) for k, v in b.items()]


def as_tree(w: Walked) -> Tree:
    return {k: (as_tree(v) if isinstance(v, list) else v) for k, v in w}


def count(w: Walked) -> tuple[int, int]:
    """(keys, buckets) in a walk."""
    keys = buckets = 0
    for _, v in w:
        keys += 1
        if isinstance(v, list):
            buckets += 1
            k, b = count(v)
            keys, buckets = keys + k, buckets + b
    return keys, buckets


def probe(b: Bucket) -> Walked:
    """A full walk that also calls get/bucket/keys/buckets on everything (results unchecked: for hostile files)."""
    out: Walked = []
    for k, v in b.items():
        b.get(k)
        b.bucket(k)
        b.get(k + b"\x00")
        out.append((k, probe(v) if isinstance(v, Bucket) else v))
    list(b.keys())
    list(b.buckets())
    return out


def check_message(e: BoltError, path: str) -> str:
    msg = str(e)
    assert type(e) is BoltError, f"an internal error class escaped: {type(e).__name__}: {msg}"
    assert e.path == path and e.problem.strip(), msg
    assert msg == f"{path}: {e.problem}" and "\n" not in msg and "\r" not in msg, msg
    return e.problem


def outcome(path: str, fn: Callable[[Bucket], Any] = probe, limit: float = 10) -> tuple[str, Any]:
    """('ok', result) or ('err', problem): any other exception, or a hang, fails the test."""
    with time_limit(limit):
        try:
            return "ok", view(path, fn)
        except BoltError as e:
            return "err", check_message(e, path)


def uvarint(v: bytes) -> tuple[int, int]:
    """Go's binary.Uvarint: (value, bytes read); (0, 0) if too short, (0, -n) on overflow."""
    x = s = 0
    for i, b in enumerate(v):
        if i == 10:
            return 0, -(i + 1)
        if b < 0x80:
            if i == 9 and b > 1:
                return 0, -(i + 1)
            return x | b << s, i + 1
        x |= (b & 0x7F) << s
        s += 7
    return 0, 0


def sample_tree(n: int = 40, big: int = 0) -> Tree:
    """A containerd-like tree: namespaces, snapshots with parents and labels, containers with a big value."""
    snaps: Tree = {}
    for i in range(n):
        s: Tree = {b"name": b"ns/%d/s%d" % (i, i), b"createdat": bytes(range(15))}
        if i:
            s[b"parent"] = b"s%d" % (i - 1)
        s[b"labels"] = {b"containerd.io/gc.root": b"2026"}
        snaps[b"s%d" % i] = s
    conts: Tree = {b"c%d" % i: {b"image": b"busy:1", b"spec": b"x" * big, b"labels": {}} for i in range(n // 4)}
    return {
        b"v1": {b"ns": {b"snapshots": {b"overlayfs": snaps}, b"containers": conts}, b"version": b"\x08"},
        b"empty": {},
    }


# ====================================================================== synthetic: round trips and the API
keys_st = st.binary(min_size=1, max_size=24)
values_st = st.one_of(st.binary(max_size=40), st.binary(min_size=200, max_size=12000))
trees_st = st.recursive(
    st.dictionaries(keys_st, values_st, max_size=12),
    lambda children: st.dictionaries(keys_st, st.one_of(values_st, children), max_size=12),
    max_leaves=60,
)
FUZZ = settings(
    phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
    deadline=timedelta(seconds=3),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
)


@pytest.fixture
def tmpdir_path() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="ufs-bbolt-")
    yield d
    shutil.rmtree(d, ignore_errors=True)


def check_api(b: Bucket, tree: Tree, path: tuple[bytes, ...]) -> None:
    assert b.sequence == bucket_seq(path)
    assert list(b.keys()) == sorted(tree)
    assert [k for k, _ in b.buckets()] == sorted(k for k, v in tree.items() if isinstance(v, dict))
    for k, v in tree.items():
        if isinstance(v, dict):
            assert b.get(k) is None
            sub = b.bucket(k)
            assert sub is not None
            check_api(sub, v, (*path, k))
        else:
            assert b.get(k) == v and type(b.get(k)) is bytes
            assert b.bucket(k) is None
    for missing in (b"", b"\x00", b"\xff" * 30, b"zz-not-there"):
        if missing not in tree:
            assert b.get(missing) is None and b.bucket(missing) is None


@settings(FUZZ, max_examples=150)
@given(
    tree=st.dictionaries(keys_st, trees_st, max_size=6),
    ps=st.sampled_from([1024, 4096, 8192, 65536]),
    leaf_max=st.integers(2, 40),
    branch_max=st.integers(2, 20),
    inline=st.booleans(),
)
def test_round_trip(tmpdir_path: str, tree: Tree, ps: int, leaf_max: int, branch_max: int, inline: bool) -> None:
    path = os.path.join(tmpdir_path, "r.db")
    write_db(path, tree, ps=ps, leaf_max=leaf_max, branch_max=branch_max, inline=inline)
    assert as_tree(view(path, walk)) == tree
    view(path, lambda root: check_api(root, tree, ()))


def test_api_on_a_sample(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "s.db")
    tree = sample_tree(300, big=9000)
    w = write_db(path, tree, leaf_max=8, branch_max=4)
    assert max(i.pages for i in w.info.values()) > 1 and any(i.flags == 1 for i in w.info.values())
    assert w.inlines, "the sample has inline buckets"

    def read(root: Bucket) -> Any:
        snaps = root.bucket(b"v1", b"ns", b"snapshots", b"overlayfs")
        assert snaps is not None
        assert root.bucket(b"v1", b"ns", b"nope") is None
        assert root.bucket(b"v1", b"version") is None  # a value, not a bucket
        assert root.bucket() is root
        s7 = snaps.bucket(b"s7")
        assert s7 is not None and s7.get(b"parent") == b"s6"
        assert s7.sequence == bucket_seq((b"v1", b"ns", b"snapshots", b"overlayfs", b"s7"))
        return {k: sb.get(b"parent") for k, sb in snaps.buckets()}

    parents = view(path, read)
    assert len(parents) == 300 and parents[b"s0"] is None and parents[b"s299"] == b"s298"
    view(path, lambda root: check_api(root, tree, ()))


def test_bucket_after_view_raises(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "s.db")
    write_db(path, sample_tree(5))
    b = view(path, lambda root: root.bucket(b"v1"))
    it = view(path, lambda root: root.items())
    assert b is not None
    for use in (lambda: b.get(b"ns"), lambda: b.bucket(b"ns"), lambda: list(b.items()), lambda: list(it)):
        with pytest.raises(BoltError, match="used after view"):
            use()


def test_meta_selection_and_fallback(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "m.db")
    w = Writer()
    old, new = w.add({b"a": {b"k": b"old"}}), w.add({b"a": {b"k": b"new"}})
    ps = w.ps

    def read() -> Any:
        return view(path, lambda root: root.bucket(b"a").get(b"k"))  # type: ignore[union-attr]

    for roots, txids, want in (((old, new), (10, 11), b"new"), ((new, old), (11, 10), b"new")):
        buf = w.file(roots, txids)
        with open(path, "wb") as f:
            f.write(buf)
        assert read() == want
        newer = 0 if txids[0] > txids[1] else 1
        broken = bytearray(buf)
        broken[newer * ps + 40] ^= 1  # the newer meta fails its checksum: the older one is used
        with open(path, "wb") as f:
            f.write(broken)
        assert read() == b"old"
        broken[(1 - newer) * ps + 30] ^= 0x10  # both broken
        with open(path, "wb") as f:
            f.write(broken)
        with pytest.raises(BoltError, match=r"corrupt: no valid meta page \(meta page 0: bad checksum; meta page 1"):
            read()
    buf = w.file((new, new))
    buf[20:24] = struct.pack("<I", 3)  # version 3 in meta 0; meta 1 too
    buf[ps + 20 : ps + 24] = struct.pack("<I", 3)
    with open(path, "wb") as f:
        f.write(buf)
    with pytest.raises(BoltError, match="unsupported bbolt version 3"):
        read()


@pytest.mark.parametrize("ps", [1024, 4096, 8192, 16384, 32768, 65536])
def test_page_sizes_and_meta_1_probe(tmpdir_path: str, ps: int) -> None:
    path = os.path.join(tmpdir_path, "p.db")
    tree = sample_tree(30, big=ps * 2)
    w = Writer(ps=ps, leaf_max=5, branch_max=3)
    root = w.add(tree)
    buf = w.file((root, root), (10, 11))
    buf[: ps // 2] = b"\0" * (ps // 2)  # meta page 0 gone: its page size must be found by probing meta page 1
    with open(path, "wb") as f:
        f.write(buf)
    assert as_tree(view(path, walk)) == tree


# ====================================================================== retries when the file changes under fn
def _db_bytes(tree: Tree, txid: int, start: int = 3, junk_below: bool = False) -> bytearray:
    w = Writer(leaf_max=4, branch_max=3)
    w.next = start
    root = w.add(tree)
    buf = w.file((root, root), (txid, txid - 1))
    if junk_below:  # pages 3..start-1 (where an older version kept its tree) become junk
        buf[3 * w.ps : start * w.ps] = b"\xaa" * ((start - 3) * w.ps)
    return buf


def _overwrite(path: str, data: bytes) -> None:
    with open(path, "r+b") as f:
        f.write(data)


def test_file_changes_under_fn_then_rerun(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "live.db")
    a, b = sample_tree(20), sample_tree(25)
    with open(path, "wb") as f:
        f.write(_db_bytes(a, 10))
    newer = _db_bytes(b, 12, start=200, junk_below=True)
    calls: list[int] = []
    seen: list[BoltError] = []

    def fn(root: Bucket) -> Tree:
        calls.append(1)
        v1 = root.bucket(b"v1")
        if len(calls) == 1:
            _overwrite(path, newer)  # a writer commits: the old pages are junk now, the meta moved
        try:
            return as_tree(walk(v1)) if v1 is not None else {}
        except BoltError as e:
            seen.append(e)
            raise

    assert view(path, fn) == b[b"v1"]
    assert len(calls) == 2 and len(seen) == 1
    assert "changed while being read" in str(seen[0])  # fn saw the junk page as a change, not as corruption


def test_file_changes_without_page_errors_then_rerun(tmpdir_path: str) -> None:
    """The meta moves but every page read still parses: the final meta check must catch it."""
    path = os.path.join(tmpdir_path, "live.db")
    with open(path, "wb") as f:
        f.write(_db_bytes(sample_tree(3), 10))
    newer = _db_bytes(sample_tree(4), 11, start=100)
    calls: list[int] = []

    def fn(root: Bucket) -> int:
        calls.append(1)
        walk(root)
        if len(calls) == 1:
            _overwrite(path, newer)
        return len(calls)

    assert view(path, fn) == 2


def test_keeps_changing_gives_up(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "live.db")
    with open(path, "wb") as f:
        f.write(_db_bytes(sample_tree(3), 10))
    calls: list[int] = []

    def fn(root: Bucket) -> None:
        calls.append(1)
        walk(root)
        _overwrite(path, _db_bytes(sample_tree(3), 10 + 2 * len(calls), start=3 + 40 * (len(calls) % 2)))

    with pytest.raises(BoltError) as e:
        view(path, fn)
    assert check_message(e.value, path) == "kept changing while being read (5 attempts); try again"
    assert len(calls) == 5
    calls.clear()
    with pytest.raises(BoltError, match=r"\(2 attempts\)"):
        view(path, fn, attempts=2)
    assert len(calls) == 2


def test_fn_errors_pass_through_unless_moved(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "s.db")
    with open(path, "wb") as f:
        f.write(_db_bytes(sample_tree(3), 10))

    def boom(root: Bucket) -> None:
        raise KeyError("fn's own")

    with pytest.raises(KeyError, match="fn's own"):
        view(path, boom)
    calls: list[int] = []

    def boom_while_moving(root: Bucket) -> str:
        calls.append(1)
        if len(calls) == 1:
            _overwrite(path, _db_bytes(sample_tree(4), 11, start=60))
            raise ValueError("a torn read confused fn")
        return "ok"

    assert view(path, boom_while_moving) == "ok" and len(calls) == 2


def test_corruption_is_reported_at_once(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "c.db")
    w = write_db(path, sample_tree(50), leaf_max=4, branch_max=3)
    branch = next(i for i in w.info.values() if i.flags == 1)
    with open(path, "r+b") as f:  # a branch page's first child is the branch itself
        f.seek(branch.pgid * w.ps + 16 + 8)
        f.write(struct.pack("<Q", branch.pgid))
    calls: list[int] = []

    def fn(root: Bucket) -> Walked:
        calls.append(1)
        return walk(root)

    with pytest.raises(BoltError, match=f"corrupt: page {branch.pgid} is referenced twice") as e:
        view(path, fn)
    check_message(e.value, path)
    assert len(calls) == 1


# ====================================================================== errors
def test_errors_missing_dir_empty_text(tmpdir_path: str) -> None:
    cases: list[tuple[str, str]] = []
    missing = os.path.join(tmpdir_path, "nope.db")
    cases.append((missing, "no such file (is the path right?)"))
    cases.append((tmpdir_path, "is a directory, not a bbolt database file"))
    empty = os.path.join(tmpdir_path, "empty.db")
    open(empty, "wb").close()
    cases.append((empty, "empty file (0 bytes): not a bbolt database"))
    text = os.path.join(tmpdir_path, "text.db")
    with open(text, "w") as f:
        f.write("hello, this is a text file and not a database at all\n" * 200)
    cases.append((text, "not a bbolt database (bad magic)"))
    tiny = os.path.join(tmpdir_path, "tiny.db")
    with open(tiny, "wb") as f:
        f.write(b"\0" * 10)
    cases.append((tiny, "not a bbolt database (only 10 bytes)"))
    cut = os.path.join(tmpdir_path, "cut.db")
    with open(cut, "wb") as f:
        f.write(meta_page(0, 4096, 3, 0, 4, 1)[:60])
    cases.append((cut, "truncated: the file ends inside its first meta page (60 bytes)"))
    under_file = os.path.join(text, "x")
    cases.append((under_file, "a parent of this path is not a directory"))
    fifo = os.path.join(tmpdir_path, "fifo")
    os.mkfifo(fifo)
    cases.append((fifo, "not a regular file, so not a bbolt database"))
    for path, problem in cases:
        with time_limit(5), pytest.raises(BoltError) as e:
            view(path, walk)
        assert check_message(e.value, path) == problem


def nested_roots(buf: bytes | bytearray, w: Writer) -> list[tuple[int, int, int]]:
    """(leaf pgid, element offset in the file, root pgid) of every nested bucket that has its own pages."""
    out = []
    for p in w.info.values():
        if p.flags != 2:
            continue
        for i in range(p.count):
            at = p.pgid * w.ps + 16 + 16 * i
            fl, pos, ksize, _ = struct.unpack_from("<IIII", buf, at)
            root = struct.unpack_from("<Q", buf, at + pos + ksize)[0] if fl & 1 else 0
            if root:
                out.append((p.pgid, at, root))
    return out


def _corrupt(case: str, w: Writer, buf: bytearray) -> None:
    """Apply one named corruption to a file written by ``w`` (sample_tree: branches, overflow, inline)."""
    ps = w.ps
    leaf = next(p for p in w.info.values() if p.flags == 2 and p.count >= 2 and p.pages == 1)
    branch = next(p for p in w.info.values() if p.flags == 1 and p.count >= 2)
    big = next(p for p in w.info.values() if p.pages > 1)
    inl = next(i for i in w.inlines if struct.unpack_from("<H", buf, i.pgid * ps + i.offset + 26)[0] >= 1)
    inl_elem = inl.pgid * ps + 16 + 16 * inl.index
    inl_page = inl.pgid * ps + inl.offset + 16
    lp, bp = leaf.pgid * ps, branch.pgid * ps
    edits: dict[str, Callable[[], None]] = {
        "leaf count": lambda: put(buf, lp + 10, "<H", 0xFFFF),
        "key size": lambda: put(buf, lp + 16 + 8, "<I", 0xFFFFFFF0),
        "value size": lambda: put(buf, lp + 16 + 16 + 12, "<I", ps),
        "empty key": lambda: put(buf, lp + 16 + 8, "<I", 0),
        "branch key size": lambda: put(buf, bp + 16 + 4, "<I", 2**31),
        "empty branch": lambda: put(buf, bp + 10, "<H", 0),
        "child past hwm": lambda: put(buf, bp + 16 + 8, "<Q", w.next),
        "child is a meta page": lambda: put(buf, bp + 16 + 8, "<Q", 1),
        "page id": lambda: put(buf, lp, "<Q", leaf.pgid + 1),
        "page flags": lambda: put(buf, lp + 8, "<H", 0x10),
        "overflow past hwm": lambda: put(buf, lp + 12, "<I", w.next),
        "overflow overlaps": lambda: put(buf, big.pgid * ps + 12, "<I", big.pages),
        "self cycle": lambda: put(buf, bp + 16 + 8, "<Q", branch.pgid),
        "parent cycle": lambda: put(buf, bp + 16 + 8, "<Q", branch.parent or w.root),
        "root cycle": lambda: put(buf, bp + 16 + 8, "<Q", w.root),
        "shared child": lambda: put(buf, bp + 16 + 16 + 8, "<Q", struct.unpack_from("<Q", buf, bp + 16 + 8)[0]),
        "nested root is the root": lambda: _set_nested_root(buf, w, w.root),
        "nested root past hwm": lambda: _set_nested_root(buf, w, w.next + 5),
        "inline short header": lambda: put(buf, inl_elem + 12, "<I", 8),
        "inline without page": lambda: put(buf, inl_elem + 12, "<I", 20),
        "inline branch": lambda: put(buf, inl_page + 8, "<H", 1),
        "inline count": lambda: put(buf, inl_page + 10, "<H", 0xFFFF),
        "inline key size": lambda: put(buf, inl_page + 16 + 8, "<I", 0xFFFF),
        "meta root past hwm": lambda: _set_metas(buf, ps, 32, w.next),
        "meta page size": lambda: _set_metas(buf, ps, 24, 3000, "<I"),
        # 16 TiB of overflow pages below the high-water mark, none in the file: nothing may be allocated for them
        "meta hwm past end": lambda: _set_metas(buf, ps, 56, 2**40) or put(buf, lp + 12, "<I", 2**32 - 1),
    }
    edits[case]()


def _set_metas(buf: bytearray, ps: int, offset: int, value: int, fmt: str = "<Q") -> None:
    """Set a field of both metas (``offset`` from the page start) and fix their checksums."""
    for m in (0, ps):
        put(buf, m + offset, fmt, value)
    fix_checksums(buf, ps)


def _set_nested_root(buf: bytearray, w: Writer, root: int) -> None:
    _, at, _ = nested_roots(buf, w)[0]
    fl, pos, ksize, _ = struct.unpack_from("<IIII", buf, at)
    put(buf, at + pos + ksize, "<Q", root)


TARGETED = {
    "leaf count": r"corrupt: page \d+: 65535 elements do not fit in its 4096 bytes",
    "key size": r"corrupt: page \d+: element 0 has its key or value past the end of the page",
    "value size": r"corrupt: page \d+: element 1 has its key or value past the end of the page",
    "empty key": r"corrupt: page \d+: element 0 has an empty key",
    "branch key size": r"corrupt: page \d+: element 0 has its key or value past the end of the page",
    "empty branch": r"corrupt: page \d+: an empty branch",
    "child past hwm": r"corrupt: page \d+ element 0 points to page \d+, outside 2\.\.\d+",
    "child is a meta page": r"corrupt: page \d+ element 0 points to page 1, outside 2\.\.\d+",
    "page id": r"corrupt: page (\d+) identifies itself as page \d+",
    "page flags": r"corrupt: page \d+ has flags 0x10, not a branch or leaf page",
    "overflow past hwm": r"corrupt: page \d+ runs \d+ pages past the high-water mark \d+",
    "overflow overlaps": r"corrupt: page \d+ overlaps page \d+",
    "self cycle": r"corrupt: page \d+ is referenced twice",
    "parent cycle": r"corrupt: page \d+ is referenced twice",
    "root cycle": r"corrupt: page \d+ is referenced twice",
    "shared child": r"corrupt: page \d+ is referenced twice",
    "nested root is the root": r"corrupt: page \d+ is referenced twice",
    "nested root past hwm": r"corrupt: page \d+ element \d+ points to page \d+, outside 2\.\.\d+",
    "inline short header": r"corrupt: bucket b'.*' in page \d+ has a 8-byte header \(16 expected\)",
    "inline without page": r"corrupt: bucket b'.*' in page \d+ is inline but too short to hold a page \(20 bytes\)",
    "inline branch": r"corrupt: bucket b'.*' in page \d+ is inline with page flags 0x1, not a leaf",
    "inline count": r"corrupt: bucket b'.*' in page \d+ is inline and its page is bad: 65535 elements do not fit",
    "inline key size": r"corrupt: bucket b'.*' in page \d+ is inline and its page is bad: element 0 has its key",
    "meta root past hwm": r"corrupt: no valid meta page \(meta page 0: bad root page \d+ \(high-water mark",
    "meta page size": r"corrupt: no valid meta page \(meta page 0: bad page size 3000",
    "meta hwm past end": r"truncated: page \d+ lies past the end of the file \(needs \d+ bytes, the file has \d+\)",
}


@pytest.mark.parametrize("case", sorted(TARGETED))
def test_targeted_corruption(tmpdir_path: str, case: str) -> None:
    """Each check of the reader, hit on purpose: one BoltError naming the problem, fn run once, no retry."""
    path = os.path.join(tmpdir_path, "c.db")
    tree = sample_tree(40, big=5000)
    w = write_db(path, tree, leaf_max=4, branch_max=3)
    with open(path, "rb") as f:
        buf = bytearray(f.read())
    assert nested_roots(buf, w) and w.inlines
    _corrupt(case, w, buf)
    with open(path, "wb") as f:
        f.write(buf)
    calls: list[int] = []

    def fn(root: Bucket) -> Walked:
        calls.append(1)
        return probe(root)

    tracemalloc.start()
    try:
        with time_limit(10), pytest.raises(BoltError) as e:
            view(path, fn)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20, f"{peak} bytes allocated"  # nothing sized by a corrupt field
    problem = check_message(e.value, path)
    assert re.match(TARGETED[case], problem), problem
    assert problem.endswith(("the file is damaged", "restore it from a backup", "restore the file from a backup"))
    assert len(calls) <= 1


def test_inline_bucket_holding_a_paged_bucket(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "i.db")
    inner = struct.pack("<QQ", 3, 0)  # a nested bucket with pages, inside an inline one: bbolt never writes it
    write_db(path, {b"a": {b"x": RawBucket(inline_value([(1, b"sub", inner)]))}})
    with pytest.raises(BoltError, match=r"bucket b'sub' in an inline bucket is inside an inline bucket but has pages"):
        view(path, walk)


def test_nesting_and_depth_bounds(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "n.db")
    value = inline_value([(0, b"k", b"v")])
    for _ in range(70):  # inline buckets in inline buckets, 70 deep
        value = inline_value([(1, b"b", value)])
    write_db(path, {b"deep": RawBucket(value)})
    with pytest.raises(BoltError, match=r"is nested more than 64 buckets deep"):
        view(path, walk)
    assert view(path, lambda root: root.bucket(*[b"deep"] + [b"b"] * 60) is not None)
    w = Writer()
    top = w.chain(70)
    with open(path, "wb") as f:
        f.write(w.file((top, top)))
    with pytest.raises(BoltError, match=rf"corrupt: the tree under page {top} is more than 64 pages deep"):
        view(path, walk)
    with pytest.raises(BoltError, match=rf"corrupt: the tree under page {top} is more than 64 pages deep"):
        view(path, lambda root: root.get(b"k"))
    w = Writer()
    top = w.chain(50)
    with open(path, "wb") as f:
        f.write(w.file((top, top)))
    assert view(path, walk) == [(b"k", b"v")] and view(path, lambda root: root.get(b"k")) == b"v"


def test_truncated_page(tmpdir_path: str) -> None:
    path = os.path.join(tmpdir_path, "t.db")
    w = write_db(path, sample_tree(60), leaf_max=4)
    last = max(w.info)
    os.truncate(path, last * w.ps + 100)
    with pytest.raises(BoltError, match=rf"truncated: page {last} lies past the end of the file \(needs ") as e:
        view(path, walk)
    check_message(e.value, path)


def test_permission_denied_as_nobody(shared_tmp: str) -> None:
    """As uid 65534, a 0600 root-owned file: the message says to run as root."""
    db = os.path.join(shared_tmp, "meta.db")
    write_db(db, sample_tree(3))
    os.chmod(db, 0o600)
    code = (
        "import sys\n"
        "from ufs_tui.core.sources.bbolt import BoltError, view\n"
        "try:\n    view(sys.argv[1], lambda root: list(root.keys()))\n"
        "except BoltError as e:\n    print(type(e).__name__, e)\n"
    )
    r = nobody.run("-c", code, db, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"BoltError {db}: permission denied (run as root)"
    assert as_tree(view(db, walk)) == sample_tree(3)  # root reads it


# ====================================================================== fuzzing synthetic files
_SAMPLE_CACHE: dict[str, tuple[bytes, Writer, Tree]] = {}


def fuzz_sample(kind: str) -> tuple[bytes, Writer, Tree]:
    """A few fixed synthetic files with every page kind (branches, overflow, inline buckets)."""
    if kind not in _SAMPLE_CACHE:
        tree = sample_tree(40, big=5000)
        tree[b"v1"][b"inl"] = {b"a": b"1", b"b": {b"c": {}}}  # type: ignore[index]
        w = Writer(ps=1024 if kind == "small" else 4096, leaf_max=5, branch_max=3)
        root = w.add(tree)
        w.root = root
        _SAMPLE_CACHE[kind] = (bytes(w.file((root, root), (10, 9), slack=2)), w, tree)
    return _SAMPLE_CACHE[kind]


def put(buf: bytearray, off: int, fmt: str, value: int) -> None:
    size = struct.calcsize(fmt)
    if off >= 0 and off + size <= len(buf):
        struct.pack_into(fmt, buf, off, value & ((1 << (8 * size)) - 1))


INTERESTING = st.one_of(
    st.sampled_from([0, 1, 2, 3, 15, 16, 17, 0x7F, 0xFF, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFF, 2**63, 2**64 - 1]),
    st.integers(0, 2**64 - 1),
    st.integers(0, 300),
)


def hostile(path: str, data: bytes | bytearray) -> tuple[str, Any]:
    with open(path, "wb") as f:
        f.write(data)
    result = outcome(path)
    if result[0] == "ok":
        event("read fine")
    else:  # the kind of problem, without numbers and names
        kind = re.sub(r"bucket b(['\"]).*\1 in (page N|an inline)", "bucket K in", re.sub(r"\d+", "N", result[1]))
        event(kind.split(";")[0].split(" (")[0].split(": element")[0][:70])
    return result


@settings(FUZZ, max_examples=600)
@given(kind=st.sampled_from(["small", "std"]), cut=st.integers(0, 2**31), where=st.sampled_from(["any", "edge"]))
def test_fuzz_truncated(tmpdir_path: str, kind: str, cut: int, where: str) -> None:
    data, w, tree = fuzz_sample(kind)
    if where == "edge":  # around a page boundary or a meta's end
        cut = (cut % (len(data) // w.ps + 1)) * w.ps + [-1, 0, 1, 16, 80, -80][cut % 6]
    cut = max(0, min(cut % (len(data) + 1), len(data)))
    path = os.path.join(tmpdir_path, "t.db")
    result = hostile(path, data[:cut])
    used = max(p.pgid + p.pages for p in w.info.values()) * w.ps
    if cut >= used:
        assert result == ("ok", probe_tree(tree)), result
    else:
        assert result[0] == "err"
        assert result[1].startswith(("truncated", "empty file", "not a bbolt", "corrupt: no valid meta")), result


def probe_tree(tree: Tree) -> Walked:
    return [(k, probe_tree(v) if isinstance(v, dict) else v) for k, v in sorted(tree.items())]


@settings(FUZZ, max_examples=1000)
@given(
    kind=st.sampled_from(["small", "std"]),
    flips=st.lists(st.tuples(st.integers(0, 2**31), st.integers(1, 255)), min_size=1, max_size=8),
    words=st.lists(st.tuples(st.integers(0, 2**31), st.sampled_from(["<H", "<I", "<Q"]), INTERESTING), max_size=4),
    fix=st.booleans(),
)
def test_fuzz_flipped_bytes_and_words(
    tmpdir_path: str, kind: str, flips: list[tuple[int, int]], words: list[tuple[int, str, int]], fix: bool
) -> None:
    data, w, _ = fuzz_sample(kind)
    buf = bytearray(data)
    for off, x in flips:
        buf[off % len(buf)] ^= x
    for off, fmt, value in words:
        put(buf, off % len(buf), fmt, value)
    if fix:
        fix_checksums(buf, w.ps)
    hostile(os.path.join(tmpdir_path, "f.db"), buf)


ELEMENT_FIELDS = {
    2: ["<I", "<I", "<I", "<I"],
    1: ["<I", "<I", "<Q"],
}  # leaf: flags pos ksize vsize; branch: pos ksize pgid


@settings(FUZZ, max_examples=1500)
@given(
    kind=st.sampled_from(["small", "std"]),
    op=st.sampled_from(["cycle", "header", "element", "inline", "meta", "garbage", "both-metas"]),
    pick=st.integers(0, 2**32),
    sub=st.integers(0, 2**16),
    value=INTERESTING,
    seed=st.integers(0, 2**32),
)
def test_fuzz_structure(tmpdir_path: str, kind: str, op: str, pick: int, sub: int, value: int, seed: int) -> None:
    """Mutations aimed at the structure: each must give a result or a BoltError; cycles must be errors."""
    data, w, tree = fuzz_sample(kind)
    buf, ps = bytearray(data), w.ps
    pages = sorted(w.info.values(), key=lambda p: p.pgid)
    page = pages[pick % len(pages)]
    base = page.pgid * ps
    must_fail = False
    if op == "cycle":  # a branch page's child becomes itself, its parent, an ancestor or the root
        branches = [p for p in pages if p.flags == 1]
        page = branches[pick % len(branches)]
        chain = [page.pgid]
        while w.info[chain[-1]].parent:
            chain.append(w.info[chain[-1]].parent)
        target = chain[sub % len(chain)]
        put(buf, page.pgid * ps + 16 + 16 * (sub % page.count) + 8, "<Q", target)
        must_fail = True
    elif op == "header":  # id, flags, count, overflow
        fmt, off = [("<Q", 0), ("<H", 8), ("<H", 10), ("<I", 12)][sub % 4]
        put(buf, base + off, fmt, value)
    elif op == "element":
        fields = ELEMENT_FIELDS[page.flags]
        i = sub % max(page.count, 1)
        f = (sub >> 8) % len(fields)
        put(buf, base + 16 + 16 * i + 4 * f, fields[f], value)
    elif op == "inline":  # a bucket entry's value length, or its inline page's header
        inl = w.inlines[pick % len(w.inlines)]
        elem = inl.pgid * ps + 16 + 16 * inl.index
        choice = sub % 4
        if choice == 0:
            put(buf, elem + 12, "<I", value % 48)  # vsize: short of a header and/or a page
        elif choice == 1:
            put(buf, inl.pgid * ps + inl.offset + 16 + 10, "<H", value)  # inline page count
        elif choice == 2:
            put(buf, inl.pgid * ps + inl.offset + 16 + 8, "<H", value)  # inline page flags
        else:
            put(buf, inl.pgid * ps + inl.offset, "<Q", value)  # root: not inline any more
    elif op == "meta":  # any meta field, with a good checksum
        which = sub % 2
        put(buf, which * ps + 16 + 8 * ((sub >> 1) % 8), "<Q", value)
        fix_checksums(buf, ps)
    elif op == "garbage":  # valid metas, random pages
        rnd = random.Random(seed)
        start = 2 * ps if sub % 2 else base
        end = len(buf) if sub % 2 else base + page.pages * ps
        buf[start:end] = rnd.randbytes(end - start)
        must_fail = sub % 2 == 1
    else:  # both metas broken, in various ways
        rnd = random.Random(seed)
        for m in (0, ps):
            buf[m + 16 + rnd.randrange(64)] ^= 1 + rnd.randrange(255)
        must_fail = True
    result = hostile(os.path.join(tmpdir_path, "s.db"), buf)
    if must_fail:
        assert result[0] == "err", (op, result)
        if op == "cycle":
            assert "referenced twice" in result[1], result


# ====================================================================== real containerd
def need_tarball() -> None:
    need(modern.tarball() is not None, "the engine tarball docker-engine.tar.xz (containerd v2.3.3) is missing")


@pytest.fixture(scope="session")
def boltdump() -> str:
    need_tarball()
    return modern.boltdump()


@pytest.fixture(scope="session")
def work_dir() -> Iterator[str]:
    need(os.geteuid() == 0, "containerd needs root")
    need(os.path.exists(BUSYBOX), "busybox-static is not installed (/bin/busybox)")
    d = tempfile.mkdtemp(prefix="ufs-bbolt-ctrd-")
    yield d
    unmount_all_under(d)
    shutil.rmtree(d, ignore_errors=True)


def _tar_bytes(files: dict[str, bytes]) -> bytes:
    bio = io.BytesIO()
    with tarfile.open(fileobj=bio, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in files.items():
            ti = tarfile.TarInfo(name)
            ti.size, ti.mode, ti.mtime = len(data), 0o755, 1_700_000_000
            t.addfile(ti, io.BytesIO(data))
    return bio.getvalue()


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _layers() -> list[bytes]:
    with open(BUSYBOX, "rb") as f:
        bb = f.read()
    return [_tar_bytes({"bin/busybox": bb, "bin/sh": bb}), _tar_bytes({"etc/motd": b"hi\n", "etc/x": b"x\n"})]


def _config(layers: list[bytes]) -> bytes:
    cfg = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/bin"]},
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + _sha(x) for x in layers]},
        "history": [{"created_by": "layer one"}, {"created_by": "layer two"}],
    }
    return json.dumps(cfg).encode()


@pytest.fixture(scope="session")
def docker_archive(work_dir: str) -> str:
    """A docker-save style archive made by hand: manifest.json, the config, two layer tars."""
    layers, path = _layers(), os.path.join(work_dir, "busy-docker.tar")
    cfg = _config(layers)
    files = {f"{_sha(x)}/layer.tar": x for x in layers}
    files[f"{_sha(cfg)}.json"] = cfg
    manifest = [{"Config": f"{_sha(cfg)}.json", "RepoTags": ["busy:1"], "Layers": list(files)[:2]}]
    files["manifest.json"] = json.dumps(manifest).encode()
    with open(path, "wb") as f:
        f.write(_tar_bytes(files))
    return path


@pytest.fixture(scope="session")
def oci_archive(work_dir: str) -> str:
    """An OCI image layout in a tar, made by hand, with gzip layers."""
    import gzip

    layers = _layers()
    gz = [gzip.compress(x, mtime=0) for x in layers]
    cfg = _config(layers)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": f"sha256:{_sha(cfg)}",
            "size": len(cfg),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": f"sha256:{_sha(g)}", "size": len(g)}
            for g in gz
        ],
    }
    mbytes = json.dumps(manifest).encode()
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": manifest["mediaType"],
                "digest": f"sha256:{_sha(mbytes)}",
                "size": len(mbytes),
                "annotations": {
                    "io.containerd.image.name": "docker.io/library/busy-oci:2",
                    "org.opencontainers.image.ref.name": "2",
                },
                "platform": {"architecture": "amd64", "os": "linux"},
            }
        ],
    }
    files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": json.dumps(index).encode()}
    for blob in (cfg, mbytes, *gz):
        files[f"blobs/sha256/{_sha(blob)}"] = blob
    path = os.path.join(work_dir, "busy-oci.tar")
    with open(path, "wb") as f:
        f.write(_tar_bytes(files))
    return path


@contextlib.contextmanager
def containerd(version: str, parent: str, namespace: str, keep: bool = False) -> Iterator[ModernEngine]:
    """Debian's containerd 1.6 or the tarball's v2.3.3 in a dir of its own under ``parent``, ``ctr`` in
    ``namespace``; stopped at the end, its dir removed unless ``keep`` (to read the dbs it closed)."""
    if version == "1.6":
        need(shutil.which("containerd") is not None and shutil.which("ctr") is not None, "containerd is not installed")
        c = modern.start_containerd16(parent, namespace)
    else:
        need_tarball()
        c = modern.start_containerd23(parent, namespace)
    try:
        yield c
    finally:
        c.stop(remove=not keep)


def meta_db(c: ModernEngine) -> str:
    return os.path.join(c.containerd_root, META_DB)


def snap_db(c: ModernEngine) -> str:
    return os.path.join(c.containerd_root, SNAPSHOTTER_DB)


BIG_LABEL = "v" * 4000  # containerd allows 4096 bytes a label
BIG_ENV = "e" * 12000  # makes the spec bigger than a page: overflow pages
ODD_LABEL = "ünïcödé ☃ \t tab \x7f del"


def do_work(c: ModernEngine, docker_tar: str, oci_tar: str, snapshots: int = 30, containers: int = 12) -> None:
    """Real work with ctr: namespaces with labels, two image imports, a tag, snapshot chains, labels, views,
    removals, containers with labels (one with a value bigger than a page), a lease."""
    ctr = c.ctr
    ctr.run("namespaces", "create", "other")
    ctr.run("namespaces", "label", "other", "team=blue", "empty=")
    ctr.run("images", "import", docker_tar)
    ctr.run("images", "import", oci_tar)
    ctr.run("images", "tag", "docker.io/library/busy:1", "docker.io/library/busy:tagged")
    ctr.run("images", "label", "docker.io/library/busy:1", "origin=hand-made")
    ctr.run("snapshots", "prepare", "s-0")
    ctr.run("snapshots", "commit", "c-0", "s-0")
    for i in range(1, snapshots):
        ctr.run("snapshots", "prepare", f"s-{i}", f"c-{i - 1}")
        ctr.run("snapshots", "commit", f"c-{i}", f"s-{i}")
    ctr.run("snapshots", "label", "c-3", "color=red", f"odd={ODD_LABEL}")
    ctr.run("snapshots", "view", "v-1", "c-2")
    ctr.run("snapshots", "label", "v-1", "containerd.io/gc.root=keep")  # else the next removal's GC takes it
    ctr.run("snapshots", "prepare", "gone", "c-1")
    ctr.run("snapshots", "rm", "gone")
    ctr.run("snapshots", "prepare", "active-top", f"c-{snapshots - 1}")
    for i in range(containers):
        labels = ["--label", f"i={i}", "--label", f"odd={ODD_LABEL}"]
        if i == 1:
            labels += ["--label", f"big={BIG_LABEL}", "--env", f"BIG={BIG_ENV}"]
        ctr.run("containers", "create", *labels, "docker.io/library/busy:1", f"ctr-{i}")
    ctr.run("containers", "rm", "ctr-3")
    ctr.run("leases", "create", "--id", "lease-1", "why=test")
    c.ctr_in("other").run("images", "import", docker_tar)


@dataclass
class RealDbs:
    version: str
    meta: str
    snap: str


def _real_dbs(version: str, work_dir: str, docker_tar: str, oci_tar: str) -> RealDbs:
    with containerd(version, work_dir, "ufs", keep=True) as c:
        do_work(c, docker_tar, oci_tar)
    out = RealDbs(version, os.path.join(work_dir, f"meta-{version}.db"), os.path.join(work_dir, f"snap-{version}.db"))
    shutil.copy(meta_db(c), out.meta)  # as containerd left them when it stopped
    shutil.copy(snap_db(c), out.snap)
    shutil.rmtree(c.base)
    return out


@pytest.fixture(scope="session")
def dbs_16(work_dir: str, docker_archive: str, oci_archive: str) -> RealDbs:
    return _real_dbs("1.6", work_dir, docker_archive, oci_archive)


@pytest.fixture(scope="session")
def dbs_23(work_dir: str, docker_archive: str, oci_archive: str) -> RealDbs:
    return _real_dbs("2.3", work_dir, docker_archive, oci_archive)


@pytest.fixture(params=["1.6", "2.3"])
def real_dbs(request: pytest.FixtureRequest) -> RealDbs:
    return request.getfixturevalue("dbs_16" if request.param == "1.6" else "dbs_23")  # type: ignore[no-any-return]


# ---------------------------------------------------------------------- boltdump's text
_GO_ESCAPES = {"a": 7, "b": 8, "f": 12, "n": 10, "r": 13, "t": 9, "v": 11, "\\": 92, '"': 34, "'": 39}


def go_unquote(s: str, i: int) -> tuple[bytes, int]:
    """A Go %q string at s[i:] -> (its bytes, the index after it)."""
    assert s[i] == '"'
    i += 1
    out = bytearray()
    while s[i] != '"':
        if s[i] != "\\":
            out += s[i].encode("utf-8", "surrogateescape")
            i += 1
            continue
        e = s[i + 1]
        if e in _GO_ESCAPES:
            out.append(_GO_ESCAPES[e])
            i += 2
        elif e == "x":
            out.append(int(s[i + 2 : i + 4], 16))
            i += 4
        elif e in "uU":
            n = 4 if e == "u" else 8
            out += chr(int(s[i + 2 : i + 2 + n], 16)).encode()
            i += 2 + n
        else:
            raise ValueError(f"unknown escape \\{e} in {s!r}")
    return bytes(out), i + 1


@dataclass(frozen=True)
class Shown:
    """What boltdump's show() printed: the bytes (or their first 200/64), their length if cut, or a uvarint."""

    data: bytes = b""
    total: int | None = None
    uvarint: int | None = None

    def matches(self, v: bytes) -> bool:
        if self.uvarint is not None:
            x, n = uvarint(v)
            return n == len(v) > 0 and x == self.uvarint
        if self.total is None:
            return v == self.data
        return len(v) == self.total and v[: len(self.data)] == self.data and len(self.data) in (64, 200)


_CUT = re.compile(r"\.\.\.\((\d+) bytes\)")


def parse_shown(s: str, i: int) -> tuple[Shown, int]:
    if s[i] == '"':
        data, i = go_unquote(s, i)
    elif s.startswith("uvarint ", i):
        m = re.compile(r"uvarint (\d+)").match(s, i)
        assert m
        return Shown(uvarint=int(m.group(1))), m.end()
    else:
        m = re.compile(r"[0-9a-f]+").match(s, i)
        assert m, s[i:]
        data, i = bytes.fromhex(m.group()), m.end()
    m = _CUT.match(s, i)
    if m:
        return Shown(data, int(m.group(1))), m.end()
    return Shown(data), i


DumpTree = list[tuple[Shown, "Shown | DumpTree | int"]]  # an int: a special key's uvarint, as boltdump prints it
_SPECIAL = re.compile(r"(id|kind|size|inodes) = (\d+)$")


def parse_boltdump(text: str) -> DumpTree:
    top: DumpTree = []
    stack: list[DumpTree] = [top]
    for line in text.splitlines():
        body = line.lstrip(" ")
        depth = (len(line) - len(body)) // 2
        del stack[depth + 1 :]
        here = stack[depth]
        if depth == 0:
            assert body.startswith("[") and body.endswith("]"), line
            children: DumpTree = []
            here.append((Shown(body[1:-1].encode("utf-8", "surrogateescape")), children))
            stack.append(children)
        elif body.startswith("["):
            key, end = parse_shown(body, 1)
            assert body[end:] == "]", line
            children = []
            here.append((key, children))
            stack.append(children)
        elif m := _SPECIAL.match(body):
            here.append((Shown(m.group(1).encode()), int(m.group(2))))
        else:
            key, end = parse_shown(body, 0)
            assert body.startswith(" = ", end), line
            value, end = parse_shown(body, end + 3)
            assert end == len(body), line
            here.append((key, value))
    return top


def compare(dump: DumpTree, ours: Walked, path: str = "") -> int:
    """Assert the dump and our walk hold the same buckets, keys and values, in the same order; count entries."""
    assert len(dump) == len(ours), f"{path}: {len(dump)} entries in boltdump, {len(ours)} read"
    n = 0
    for (dkey, dval), (key, val) in zip(dump, ours, strict=True):
        here = f"{path}/{key!r}"
        assert dkey.matches(key), f"{here}: boltdump shows key {dkey}"
        if isinstance(dval, list):
            assert isinstance(val, list), f"{here}: a bucket in boltdump, a value here"
            n += compare(dval, val, here)
        elif isinstance(dval, int):
            assert isinstance(val, bytes) and len(val) > 0 and uvarint(val)[0] == dval, f"{here}: {val!r} != {dval}"
        else:
            assert isinstance(val, bytes), f"{here}: a value in boltdump, a bucket here"
            assert dval.matches(val), f"{here}: boltdump shows {dval}, read {val!r}"
        n += 1
    return n


def dump_with_boltdump(boltdump: str, db: str, tmp: str) -> DumpTree:
    copy = os.path.join(tmp, "copy-" + os.path.basename(db))
    shutil.copy(db, copy)  # boltdump takes the file lock
    r = subprocess.run([boltdump, copy], capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return parse_boltdump(r.stdout.decode("utf-8", "surrogateescape"))


def reachable(path: str) -> tuple[int, int, int]:
    """(pages, branch pages, overflow pages) reachable in a db, from the reader's own bookkeeping."""

    def fn(root: Bucket) -> tuple[int, int, int]:
        walk(root)
        snap = root._snap  # noqa: SLF001 (test introspection)
        branches = sum(1 for n in snap.cache.values() if not n.leaf)
        return len(snap.owner), branches, len(snap.span) - len(snap.owner)

    return view(path, fn)


@pytest.mark.parametrize("which", ["meta", "snap"])
def test_real_db_matches_boltdump(real_dbs: RealDbs, which: str, boltdump: str, tmpdir_path: str) -> None:
    db = real_dbs.meta if which == "meta" else real_dbs.snap
    dump = dump_with_boltdump(boltdump, db, tmpdir_path)
    t = time.perf_counter()
    ours = view(db, walk)
    took = time.perf_counter() - t
    ours_top = [(k, v) for k, v in ours if isinstance(v, list)]  # boltdump shows the root's buckets only
    assert len(ours_top) == len(ours)
    n = compare(dump, ours)
    keys, buckets = count(ours)
    assert n == keys and keys > (400 if which == "meta" else 100)
    pages, branches, overflow = reachable(db)
    print(
        f"\n{real_dbs.version} {which}: {keys} keys, {buckets} buckets, {pages} pages ({branches} branch, "
        f"{overflow} overflow), {os.path.getsize(db)} bytes, walk {took * 1000:.1f} ms"
    )
    if which == "meta":
        assert branches > 0 and overflow > 0, "the workload should make branch and overflow pages"
    assert took < 0.1


def test_real_db_contents(real_dbs: RealDbs) -> None:
    """What the workload did is there, read through the API."""

    def meta(root: Bucket) -> dict[str, Any]:
        ns = root.bucket(b"v1", b"ufs")
        assert ns is not None
        snaps = ns.bucket(b"snapshots", b"overlayfs")
        assert snaps is not None
        c1 = ns.bucket(b"containers", b"ctr-1")
        assert c1 is not None
        labels = c1.bucket(b"labels")
        assert labels is not None
        other = root.bucket(b"v1", b"other", b"labels")
        assert other is not None
        return {
            "snaps": {k: (s.get(b"parent"), s.get(b"name")) for k, s in snaps.buckets()},
            "containers": [k for k, _ in ns.bucket(b"containers").buckets()],  # type: ignore[union-attr]
            "labels": dict(labels.items()),
            "ns_labels": dict(other.items()),
            "images": list(ns.bucket(b"images").keys()),  # type: ignore[union-attr]
            "version": root.bucket(b"v1").get(b"version"),  # type: ignore[union-attr]
            "leases": list(ns.bucket(b"leases").keys()),  # type: ignore[union-attr]
        }

    m = view(real_dbs.meta, meta)
    assert m["snaps"][b"c-5"][0] == b"c-4" and m["snaps"][b"c-0"][0] is None and b"gone" not in m["snaps"]
    assert m["snaps"][b"active-top"][0] == b"c-29"
    assert sorted(m["containers"]) == sorted(b"ctr-%d" % i for i in range(12) if i != 3)
    assert m["labels"][b"big"] == BIG_LABEL.encode() and m["labels"][b"odd"] == ODD_LABEL.encode()
    assert m["ns_labels"] == {b"team": b"blue"}  # an empty value removes a label
    assert {b"docker.io/library/busy:1", b"docker.io/library/busy:tagged", b"docker.io/library/busy-oci:2"} <= set(
        m["images"]
    )
    assert m["leases"] == [b"lease-1"]
    assert uvarint(m["version"])[0] >= 3

    def snapshotter(root: Bucket) -> dict[bytes, tuple[int, bytes | None, int]]:
        out = {}
        for k, s in root.bucket(b"v1", b"snapshots").buckets():  # type: ignore[union-attr]
            out[k] = (uvarint(s.get(b"id") or b"")[0], s.get(b"parent"), (s.get(b"kind") or b"\0")[0])
        return out

    backend = view(real_dbs.snap, snapshotter)
    for key, (parent, name) in m["snaps"].items():
        assert name in backend, key
        if parent is not None:
            assert backend[name][1] == m["snaps"][parent][1]  # the same chain in both dbs
    assert len({sid for sid, _, _ in backend.values()}) == len(backend)
    kinds = {backend[m["snaps"][k][1]][2] for k in (b"v-1", b"active-top", b"c-0")}
    assert kinds == {1, 2, 3}  # view, active, committed


# ---------------------------------------------------------------------- fuzzing real files
_DB_BYTES: dict[str, bytes] = {}


@settings(FUZZ, max_examples=500)
@given(
    which=st.sampled_from(["meta", "snap"]),
    page=st.integers(0, 2**31),
    field_=st.integers(0, 2**16),
    value=INTERESTING,
    flips=st.lists(st.tuples(st.integers(0, 2**31), st.integers(1, 255)), max_size=6),
    cut=st.one_of(st.none(), st.integers(0, 2**31)),
    fix=st.booleans(),
)
def test_fuzz_real_dbs(
    real_dbs: RealDbs,
    tmpdir_path: str,
    which: str,
    page: int,
    field_: int,
    value: int,
    flips: list[tuple[int, int]],
    cut: int | None,
    fix: bool,
) -> None:
    """The real dbs, with a page header or element field set to an odd value, bytes flipped, maybe cut."""
    path = real_dbs.meta if which == "meta" else real_dbs.snap
    if path not in _DB_BYTES:
        with open(path, "rb") as f:
            _DB_BYTES[path] = f.read()
    buf = bytearray(_DB_BYTES[path])
    ps = 4096
    pages = len(buf) // ps
    base = (page % pages) * ps
    if field_ % 3 == 0:  # a page header field
        fmt, off = [("<Q", 0), ("<H", 8), ("<H", 10), ("<I", 12)][field_ // 3 % 4]
    else:  # an element field
        off, fmt = 16 + 16 * (field_ // 12 % 64) + 4 * (field_ // 3 % 4), "<I"
        if field_ % 3 == 2:
            off, fmt = off - off % 16 + 8, "<Q"
    put(buf, base + off, fmt, value)
    for o, x in flips:
        buf[o % len(buf)] ^= x
    if fix:
        fix_checksums(buf, ps)
    if cut is not None:
        del buf[cut % (len(buf) + 1) :]
    hostile(os.path.join(tmpdir_path, "real.db"), buf)


# ---------------------------------------------------------------------- a live containerd
def _live_state(root: Bucket) -> dict[str, Any]:
    ns = root.bucket(b"v1", b"live")
    if ns is None:
        return {"snaps": {}, "containers": {}}
    snaps = {}
    sb = ns.bucket(b"snapshots", b"overlayfs")
    for k, s in sb.buckets() if sb is not None else ():
        ch = s.bucket(b"children")
        snaps[k] = (s.get(b"parent"), s.get(b"name"), set(ch.keys()) if ch is not None else set())
    containers = {}
    cb = ns.bucket(b"containers")
    for k, c in cb.buckets() if cb is not None else ():
        labels = c.bucket(b"labels")
        containers[k] = (c.get(b"snapshotKey"), labels.get(b"seq") if labels is not None else None)
    return {"snaps": snaps, "containers": containers}


def _check_live_state(state: dict[str, Any], writers: int) -> None:
    snaps: dict[bytes, tuple[bytes | None, bytes | None, set[bytes]]] = state["snaps"]
    for key, (parent, name, children) in snaps.items():
        assert name, key
        if parent is not None:
            assert parent in snaps, f"{key!r}: parent {parent!r} is missing"
            assert key in snaps[parent][2], f"{key!r} is not among the children of {parent!r}"
        for ch in children:
            assert ch in snaps and snaps[ch][0] == key, f"{key!r} lists child {ch!r} that is not its child"
    for w in range(writers):
        committed = sorted(int(k.split(b"-")[2]) for k in snaps if k.startswith(b"w%d-c-" % w))
        active = sorted(int(k.split(b"-")[2]) for k in snaps if k.startswith(b"w%d-a-" % w))
        if committed:
            assert committed == list(range(committed[0], committed[0] + len(committed))), committed
        assert len(committed) <= 3 and len(active) <= 1, (committed, active)
        if active:
            assert active[0] == (committed[-1] + 1 if committed else 0), (committed, active)
    conts: dict[bytes, tuple[bytes | None, bytes | None]] = state["containers"]
    idx = sorted(int(k.split(b"-")[1]) for k in conts)
    assert len(idx) <= 3, idx
    if idx:
        assert idx == list(range(idx[0], idx[0] + len(idx))), idx
    for k, (skey, seq) in conts.items():
        assert skey == k and seq == k.split(b"-")[1], (k, skey, seq)
    # ctr makes a container's snapshot before the container and, deleting it, removes the snapshot first:
    # only the newest snapshot may lack its container and only the oldest container its snapshot
    boxes = sorted(int(k.split(b"-")[1]) for k in snaps if k.startswith(b"k-"))
    no_snap = [i for i in idx if i not in boxes]
    no_box = [i for i in boxes if i not in idx]
    assert no_snap in ([], idx[:1]), (idx, boxes)
    assert no_box in ([], boxes[-1:]), (idx, boxes)


@pytest.mark.parametrize("version", ["1.6", "2.3"])
def test_live_containerd(version: str, work_dir: str, docker_archive: str) -> None:
    """view() on the meta.db and metadata.db of a containerd that keeps committing: consistent states only."""
    writers, seconds = 2, 3.0
    with containerd(version, work_dir, "live") as c:
        ctr, meta, snap = c.ctr, meta_db(c), snap_db(c)
        ctr.run("images", "import", docker_archive)
        ctr.run("snapshots", "prepare", "base-a")
        ctr.run("snapshots", "commit", "base", "base-a")
        stop = threading.Event()
        failures: list[BaseException] = []

        def chain(w: int) -> None:
            i = 0
            while not stop.is_set():
                ctr.run("snapshots", "prepare", f"w{w}-a-{i}", "base")
                ctr.run("snapshots", "commit", f"w{w}-c-{i}", f"w{w}-a-{i}")
                if i >= 2:
                    ctr.run("snapshots", "rm", f"w{w}-c-{i - 2}")
                i += 1

        def boxes() -> None:
            i = 0
            while not stop.is_set():
                ctr.run("containers", "create", "--label", f"seq={i}", "docker.io/library/busy:1", f"k-{i}")
                if i >= 2:
                    ctr.run("containers", "rm", f"k-{i - 2}")
                i += 1

        def guarded(target: Callable[[], None]) -> Callable[[], None]:
            def run() -> None:
                try:
                    target()
                except BaseException as e:  # noqa: BLE001 (reported by the test)
                    failures.append(e)

            return run

        threads = [threading.Thread(target=guarded(lambda w=w: chain(w))) for w in range(writers)]
        threads.append(threading.Thread(target=guarded(boxes)))
        for t in threads:
            t.start()
        ok = changing = calls = 0
        states: set[frozenset[bytes]] = set()
        snap_ok = 0
        try:
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:

                def fn(root: Bucket) -> dict[str, Any]:
                    nonlocal calls
                    calls += 1
                    walk(root)  # the whole db, to widen the window for a commit to land mid-read
                    return _live_state(root)

                try:
                    with time_limit(10):
                        state = view(meta, fn)
                except BoltError as e:
                    assert check_message(e, meta).startswith("kept changing while being read"), e
                    changing += 1
                    continue
                _check_live_state(state, writers)
                states.add(frozenset(state["snaps"]))
                ok += 1
                try:
                    backend = view(
                        snap,
                        lambda root: {
                            k: s.get(b"parent")
                            for k, s in root.bucket(b"v1", b"snapshots").buckets()  # type: ignore[union-attr]
                        },
                    )
                except BoltError as e:
                    assert check_message(e, snap).startswith("kept changing while being read"), e
                    continue
                assert all(p is None or p in backend for p in backend.values())
                snap_ok += 1
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)
        assert not failures, failures
    total = ok + changing
    print(
        f"\nlive {version}: {total} views, {ok} ok, {changing} gave up, {calls - total} reruns, "
        f"{len(states)} distinct states, {snap_ok} snapshotter views"
    )
    assert total >= 20 and ok >= 0.8 * total and len(states) >= 5 and snap_ok >= 0.8 * ok


# ---------------------------------------------------------------------- speed
def test_walk_speed_containerd_shaped(tmpdir_path: str) -> None:
    """2,000 snapshots and 500 containers in containerd's layout (written by the synthetic writer)."""
    snaps: Tree = {}
    for i in range(2000):
        s: Tree = {b"name": b"default/%d/sha256:%064x" % (i, i), b"createdat": bytes(15), b"updatedat": bytes(15)}
        if i % 10:
            s[b"parent"] = b"sha256:%064x" % (i - 1)
            s[b"labels"] = {b"containerd.io/snapshot.ref": b"sha256:%064x" % i}
        if i % 10 != 9:
            s[b"children"] = {b"sha256:%064x" % (i + 1): b""}
        snaps[b"sha256:%064x" % i] = s
    conts: Tree = {}
    for i in range(500):
        conts[b"%064x" % i] = {
            b"image": b"docker.io/library/busy:1",
            b"labels": {b"io.containerd.image.config.stop-signal": b"SIGTERM", b"i": b"%d" % i},
            b"runtime": {b"name": b"io.containerd.runc.v2", b"options": b"\n\x1acontainerd.runc.v1.Options"},
            b"snapshotKey": b"%064x" % i,
            b"snapshotter": b"overlayfs",
            b"spec": b"{" * 2900,
        }
    tree: Tree = {b"v1": {b"default": {b"containers": conts, b"snapshots": {b"overlayfs": snaps}}, b"version": b"\x08"}}
    path = os.path.join(tmpdir_path, "big.db")
    w = Writer(leaf_max=60, branch_max=100)
    w.root = w.add(tree)
    with open(path, "wb") as f:
        f.write(w.file((w.root, w.root)))
    best = min(_timed(lambda: view(path, walk)) for _ in range(5))
    keys, buckets = count(view(path, walk))
    print(
        f"\nsynthetic containerd-shaped db: {keys} keys, {buckets} buckets, {os.path.getsize(path)} bytes, "
        f"full walk {best * 1000:.1f} ms"
    )
    assert best < 0.1


def _timed(fn: Callable[[], object]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


@pytest.mark.slow
def test_big_real_db(work_dir: str, docker_archive: str, boltdump: str, tmpdir_path: str) -> None:
    """A real containerd v2.3.3 with 2,000 snapshots and 500 containers: matches boltdump, walked fast."""
    db = os.path.join(tmpdir_path, "big-meta.db")
    with containerd("2.3", work_dir, "big", keep=True) as c:
        ctr = c.ctr
        ctr.run("images", "import", docker_archive)

        def work(job: tuple[str, int]) -> None:
            kind, i = job
            if kind == "s":
                ctr.run("snapshots", "prepare", f"snap-{i}")
            else:
                ctr.run("containers", "create", "--label", f"i={i}", "docker.io/library/busy:1", f"box-{i}")

        from concurrent.futures import ThreadPoolExecutor

        jobs = [("s", i) for i in range(1500)] + [("c", i) for i in range(500)]
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(work, jobs))
        live = min(_timed(lambda: view(meta_db(c), walk)) for _ in range(3))
    shutil.copy(meta_db(c), db)  # as containerd left it when it stopped
    shutil.rmtree(c.base)
    ours = view(db, walk)
    keys, buckets = count(ours)
    assert compare(dump_with_boltdump(boltdump, db, tmpdir_path), ours) == keys
    best = min(_timed(lambda: view(db, walk)) for _ in range(5))
    snaps = view(db, lambda root: len(list(root.bucket(b"v1", b"big", b"snapshots", b"overlayfs").buckets())))  # type: ignore[union-attr]
    print(
        f"\nbig real meta.db: {snaps} snapshots, {keys} keys, {buckets} buckets, {os.path.getsize(db)} bytes, "
        f"full walk {best * 1000:.1f} ms (live {live * 1000:.1f} ms)"
    )
    assert snaps >= 2000 and best < 0.1
