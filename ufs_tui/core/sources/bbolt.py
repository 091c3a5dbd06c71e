"""A read-only reader for bbolt files (etcd's Go B+tree key/value store; containerd's ``meta.db`` and its
snapshotters' ``metadata.db``), in pure Python, that never takes the file lock and never writes.

The format (``go.etcd.io/bbolt``, version 2, native byte order: little-endian here): the file is an array of
pages of one page size. Pages 0 and 1 are meta pages; the valid one (magic, version, FNV-1a checksum) with the
highest transaction id is current, and names the root bucket's root page and the high-water mark (``pgid``: no
page at or past it is in use). Every page starts with a 16-byte header (id, flags, count, overflow: the
number of pages that follow it as one); a branch page holds ``count`` elements (pos, ksize, child pgid), a leaf
page ``count`` elements (flags, pos, ksize, vsize), ``pos`` counted from the element itself. A leaf element
flagged as a bucket has a value that starts with the nested bucket's header (root pgid, sequence); root 0
means an inline bucket whose (leaf) page follows the header inside the value.

Consistency without the lock: bbolt is copy-on-write, and a page reachable from the current meta is not
reused before a later meta is written. :func:`view` picks the current meta, runs ``fn`` reading pages lazily
(``os.pread`` per page, cached per view), then reads the metas again: if the current transaction id moved,
what ``fn`` saw may be torn and it is run again. A page that looks wrong while the metas moved is the same
race; while they did not, it is corruption.

Hostile files: every page id is checked against the high-water mark and the file size, every element against
the page's bytes, and every page may be referenced from one place only (so cycles, shared subtrees and
overlapping overflow runs are errors, and a walk reads each byte of the file at most once while cached);
tree depth and bucket nesting are bounded. Every failure is a :class:`BoltError`.
"""

from __future__ import annotations

import errno
import os
import stat
import struct
from bisect import bisect_left, bisect_right
from collections.abc import Callable, Iterator
from typing import NamedTuple, NoReturn, TypeVar

from ..model.errors import StackError

__all__ = ["BoltError", "Bucket", "view"]

MAGIC = 0xED0CDAED
VERSION = 2
BRANCH_PAGE = 0x01
LEAF_PAGE = 0x02
BUCKET_LEAF_FLAG = 0x01

MAX_TREE_DEPTH = 64  # a B+tree of at least 2 keys a page this deep would need 2**64 pages
MAX_NESTING = 64  # buckets in buckets; containerd nests 5 deep
CACHE_BYTES = 32 << 20  # parsed pages kept per view; beyond it the cache starts over
MIN_PAGE_SIZE = 512
MAX_PAGE_SIZE = 1 << 24  # bbolt probes meta page 1 up to 16 MiB
PROBE_SIZES = tuple(1024 << i for i in range(15))  # where meta page 1 may be when meta page 0 is invalid

_PAGE_HEADER = struct.Struct("<QHHI")  # id, flags, count, overflow
_META = struct.Struct("<IIIIQQQQQQ")  # magic, version, pageSize, flags, root, sequence, freelist, pgid, txid, sum
_BUCKET_HEADER = struct.Struct("<QQ")  # root pgid, sequence
_ELEMENT = 16  # both leaf (flags, pos, ksize, vsize) and branch (pos, ksize, pgid) elements
_LEAF_ELEMENTS = struct.Struct("<IIII")
_BRANCH_ELEMENTS = struct.Struct("<IIQ")
_HEADER = _PAGE_HEADER.size
_META_END = _HEADER + _META.size
_SUMMED = _META.size - 8  # the checksum covers the meta's fields before it

_FNV_OFFSET = 0xCBF29CE484222325
_FNV_PRIME = 0x100000001B3
_MASK64 = (1 << 64) - 1

T = TypeVar("T")


class BoltError(StackError):
    """A bbolt file cannot be read: missing, permission, not bbolt, truncated, corrupt, or changing too fast."""


class _Moved(BoltError):
    """The file changed while a snapshot was read: run ``fn`` again (never escapes :func:`view`)."""


def _fnv1a64(data: bytes) -> int:
    h = _FNV_OFFSET
    for b in data:
        h = ((h ^ b) * _FNV_PRIME) & _MASK64
    return h


class _Meta(NamedTuple):  # not a dataclass: quicker to import
    page_size: int
    root: int
    sequence: int
    hwm: int  # high-water mark: pages at or past it are not in use
    txid: int


def _parse_meta(raw: bytes, page_size: int | None) -> _Meta | str:
    """The meta at the start of ``raw`` (a meta page's first bytes), or why it is not valid."""
    if len(raw) >= _HEADER + 4 and int.from_bytes(raw[_HEADER : _HEADER + 4], "little") != MAGIC:
        return "magic"
    if len(raw) < _META_END:
        return "short"
    _magic, version, psize, _flags, root, seq, _freelist, hwm, txid, checksum = _META.unpack_from(raw, _HEADER)
    if version != VERSION:
        return f"version {version}"
    if _fnv1a64(raw[_HEADER : _HEADER + _SUMMED]) != checksum:
        return "checksum"
    if psize < MIN_PAGE_SIZE or psize > MAX_PAGE_SIZE or psize & (psize - 1):
        return f"page size {psize}"
    if page_size is not None and psize != page_size:
        return f"page size {psize} (meta page 0 says {page_size})"
    if not 2 <= root < hwm:
        return f"root page {root} (high-water mark {hwm})"
    return _Meta(psize, root, seq, hwm, txid)


def _pread(path: str, fd: int, size: int, offset: int) -> bytes:
    try:
        return os.pread(fd, size, offset)
    except OSError as e:
        raise BoltError(path, f"read error at byte {offset}: {e.strerror or e}") from None


def _no_meta(path: str, size: int, why: list[str]) -> BoltError:
    """The error for a file without a valid meta page; ``why`` holds each meta page's problem, page 0 first."""
    if size == 0:
        return BoltError(path, "empty file (0 bytes): not a bbolt database")
    first = why[0] if why else "short"
    if first == "magic":
        return BoltError(path, "not a bbolt database (bad magic)")
    if size < _HEADER + 4:
        return BoltError(path, f"not a bbolt database (only {size} bytes)")
    if first == "short":
        return BoltError(path, f"truncated: the file ends inside its first meta page ({size} bytes)")
    if first.startswith("version"):
        return BoltError(path, f"unsupported bbolt {first} (this reader knows version {VERSION})")
    detail = "; ".join(f"meta page {i}: bad {w}" for i, w in enumerate(why))
    return BoltError(path, f"corrupt: no valid meta page ({detail}); restore the file from a backup")


def _current_meta(path: str, fd: int) -> _Meta:
    """The valid meta with the highest txid, as bbolt picks it."""
    size = _file_size(path, fd)
    raw0 = _pread(path, fd, _META_END, 0)
    meta0 = _parse_meta(raw0, None)
    why = [meta0] if isinstance(meta0, str) else []
    if isinstance(meta0, _Meta):
        meta1 = _parse_meta(_pread(path, fd, _META_END, meta0.page_size), meta0.page_size)
        if isinstance(meta1, _Meta) and meta1.txid > meta0.txid:
            return meta1
        return meta0
    for pos in PROBE_SIZES:  # meta page 0 is invalid: find meta page 1 at each possible page size
        if pos + _META_END > size:
            break
        meta1 = _parse_meta(_pread(path, fd, _META_END, pos), pos)
        if isinstance(meta1, _Meta):
            return meta1
        if len(why) == 1 and meta1 != "magic":
            why.append(meta1)
    raise _no_meta(path, size, why)


def _file_size(path: str, fd: int) -> int:
    try:
        return os.fstat(fd).st_size
    except OSError as e:
        raise BoltError(path, f"cannot stat: {e.strerror or e}") from None


def _open_problem(e: OSError) -> str:
    if e.errno in (errno.EACCES, errno.EPERM):
        return "permission denied (run as root)"
    if e.errno == errno.ENOENT:
        return "no such file (is the path right?)"
    if e.errno == errno.ENOTDIR:
        return "a parent of this path is not a directory"
    if e.errno == errno.ELOOP:
        return "too many levels of symbolic links"
    if e.errno == errno.EISDIR:
        return "is a directory, not a bbolt database file"
    return f"cannot open: {e.strerror or e}"


def _open_file(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
    except OSError as e:
        raise BoltError(path, _open_problem(e)) from None
    try:
        mode = os.fstat(fd).st_mode
    except OSError as e:
        os.close(fd)
        raise BoltError(path, f"cannot stat: {e.strerror or e}") from None
    if not stat.S_ISREG(mode):
        os.close(fd)
        if stat.S_ISDIR(mode):
            raise BoltError(path, "is a directory, not a bbolt database file")
        raise BoltError(path, "not a regular file, so not a bbolt database")
    return fd


class _Node:
    """One parsed branch or leaf page: keys and values are bytes copies."""

    __slots__ = ("pgid", "leaf", "keys", "values", "flags", "children", "size")

    def __init__(self, pgid: int, leaf: bool, size: int) -> None:
        self.pgid = pgid  # 0 for an inline bucket's page
        self.leaf = leaf
        self.size = size
        self.keys: list[bytes] = []
        self.values: list[bytes] = []  # leaf only
        self.flags: list[int] = []  # leaf only: 1 where the value is a nested bucket
        self.children: list[int] = []  # branch only


def _parse_page(buf: bytes, base: int, pgid: int, flags: int, count: int) -> _Node | str:
    """The elements of the page at ``buf[base:]`` (the page may run to the end of ``buf``), or what is wrong."""
    first = base + _HEADER
    end = len(buf)
    if first + count * _ELEMENT > end:
        return f"{count} elements do not fit in its {end - base} bytes"
    node = _Node(pgid, flags == LEAF_PAGE, end - base)
    keys = node.keys
    at = first  # each element's pos counts from the element itself
    if node.leaf:
        values, vflags = node.values, node.flags
        for fl, pos, ksize, vsize in _LEAF_ELEMENTS.iter_unpack(buf[first : first + count * _ELEMENT]):
            k = at + pos
            v = k + ksize
            stop = v + vsize
            if stop > end or not ksize:
                return _bad_element(at, first, ksize)
            keys.append(buf[k:v])
            values.append(buf[v:stop])
            vflags.append(fl & BUCKET_LEAF_FLAG)
            at += _ELEMENT
        return node
    if not count:
        return "an empty branch"
    children = node.children
    for pos, ksize, child in _BRANCH_ELEMENTS.iter_unpack(buf[first : first + count * _ELEMENT]):
        k = at + pos
        stop = k + ksize
        if stop > end or not ksize:
            return _bad_element(at, first, ksize)
        keys.append(buf[k:stop])
        children.append(child)
        at += _ELEMENT
    return node


def _bad_element(at: int, first: int, ksize: int) -> str:
    what = "an empty key" if not ksize else "its key or value past the end of the page"
    return f"element {(at - first) // _ELEMENT} has {what}"


class _Snapshot:
    """The pages of one meta (one transaction) of an open file, read lazily, each claimed by one referrer."""

    def __init__(self, path: str, fd: int, meta: _Meta) -> None:
        self.path = path
        self.fd = fd
        self.meta = meta
        self.size = _file_size(path, fd)
        self.cache: dict[int, _Node] = {}
        self.cached = 0
        self.owner: dict[int, tuple[int, int]] = {meta.root: (0, 0)}  # page -> (referring page, element)
        self.span: dict[int, int] = {}  # page -> the page whose run of overflow pages it is in
        self.open = True

    def moved(self) -> bool:
        """Whether the current meta is no longer the one this snapshot reads (or cannot be read at all)."""
        try:
            return _current_meta(self.path, self.fd).txid != self.meta.txid
        except BoltError:
            return True

    def fail(self, problem: str) -> NoReturn:
        self.check_open()
        if self.moved():
            raise _Moved(self.path, "changed while being read (a newer transaction was committed); reading again")
        raise BoltError(self.path, problem)

    def check_open(self) -> None:
        if not self.open:
            raise BoltError(self.path, "bucket used after view() returned (copy what you need inside fn)")

    def claim(self, pgid: int, referrer: int, index: int) -> None:
        """Record that element ``index`` of page ``referrer`` points at ``pgid``: no page has two referrers."""
        if not 2 <= pgid < self.meta.hwm:
            where = f"page {referrer} element {index}" if referrer else "the meta page"
            self.fail(f"corrupt: {where} points to page {pgid}, outside 2..{self.meta.hwm - 1}; the file is damaged")
        prev = self.owner.setdefault(pgid, (referrer, index))
        if prev != (referrer, index):
            self.fail(
                f"corrupt: page {pgid} is referenced twice (from page {prev[0]} and page {referrer}): "
                "a cycle or shared subtree; the file is damaged"
            )

    def node(self, pgid: int) -> _Node:
        """The parsed page ``pgid`` (claimed before by its referrer)."""
        self.check_open()
        hit = self.cache.get(pgid)
        if hit is not None:
            return hit
        node = self._load(pgid)
        if self.cached + node.size > CACHE_BYTES:
            self.cache.clear()
            self.cached = 0
        self.cache[pgid] = node
        self.cached += node.size
        return node

    def _within(self, pgid: int, end: int) -> None:
        if end > self.size:
            self.size = _file_size(self.path, self.fd)  # it may have grown since
            if end > self.size:
                self.fail(
                    f"truncated: page {pgid} lies past the end of the file (needs {end} bytes, the file has "
                    f"{self.size}); the file was cut short, restore it from a backup"
                )

    def _read(self, pgid: int, size: int, offset: int) -> bytes:
        """``size`` bytes at ``offset`` for page ``pgid``, all of them or an error."""
        self._within(pgid, offset + size)
        buf = _pread(self.path, self.fd, size, offset)
        if len(buf) < size:  # it shrank under us
            self.size = _file_size(self.path, self.fd)
            self.fail(
                f"truncated: page {pgid} lies past the end of the file (needs {offset + size} bytes, the file "
                f"has {self.size}); the file was cut short, restore it from a backup"
            )
        return buf

    def _load(self, pgid: int) -> _Node:
        psize, hwm = self.meta.page_size, self.meta.hwm
        offset = pgid * psize
        buf = self._read(pgid, psize, offset)
        pid, flags, count, overflow = _PAGE_HEADER.unpack_from(buf)
        if pid != pgid:
            self.fail(f"corrupt: page {pgid} identifies itself as page {pid}; the file is damaged")
        if flags not in (BRANCH_PAGE, LEAF_PAGE):
            self.fail(f"corrupt: page {pgid} has flags {flags:#x}, not a branch or leaf page; the file is damaged")
        if overflow:
            if pgid + overflow >= hwm:
                self.fail(
                    f"corrupt: page {pgid} runs {overflow} pages past the high-water mark {hwm}; the file is damaged"
                )
            buf += self._read(pgid, overflow * psize, offset + psize)
        if self.span.get(pgid) != pgid:
            for q in range(pgid, pgid + overflow + 1):
                start = self.span.setdefault(q, pgid)
                if start != pgid:
                    self.fail(f"corrupt: page {pgid} overlaps page {start}; the file is damaged")
        node = _parse_page(buf, 0, pgid, flags, count)
        if isinstance(node, str):
            self.fail(f"corrupt: page {pgid}: {node}; the file is damaged")
        return node


class Bucket:
    """A bucket of one consistent snapshot: only valid inside the ``fn`` given to :func:`view`."""

    __slots__ = ("_snap", "_root", "_inline", "_depth", "sequence")

    def __init__(self, snap: _Snapshot, root: int, sequence: int, inline: _Node | None, depth: int) -> None:
        self._snap = snap
        self._root = root  # 0 when inline
        self._inline = inline
        self._depth = depth
        self.sequence = sequence

    def __repr__(self) -> str:
        where = "inline" if self._inline is not None else f"root page {self._root}"
        return f"<Bucket {where} seq={self.sequence}>"

    # ------------------------------------------------------------------ lookups
    def _leaf(self, key: bytes) -> _Node:
        """The leaf page where ``key`` is or would be."""
        snap = self._snap
        snap.check_open()
        if self._inline is not None:
            return self._inline
        node = snap.node(self._root)
        for _ in range(MAX_TREE_DEPTH):
            if node.leaf:
                return node
            i = max(bisect_right(node.keys, key) - 1, 0)
            child = node.children[i]
            snap.claim(child, node.pgid, i)
            node = snap.node(child)
        snap.fail(f"corrupt: the tree under page {self._root} is more than {MAX_TREE_DEPTH} pages deep")

    def _find(self, key: bytes) -> tuple[_Node, int] | None:
        node = self._leaf(key)
        i = bisect_left(node.keys, key)
        if i < len(node.keys) and node.keys[i] == key:
            return node, i
        return None

    def get(self, key: bytes) -> bytes | None:
        """A plain value; None if ``key`` is absent or names a nested bucket."""
        hit = self._find(key)
        if hit is None or hit[0].flags[hit[1]]:
            return None
        return hit[0].values[hit[1]]

    def bucket(self, *keys: bytes) -> Bucket | None:
        """The nested bucket at a path of keys; None if any is absent or not a bucket."""
        cur: Bucket = self
        for key in keys:
            hit = cur._find(key)
            if hit is None or not hit[0].flags[hit[1]]:
                return None
            cur = cur._open(hit[0], hit[1])
        return cur

    # ------------------------------------------------------------------ iteration
    def _leaves(self) -> Iterator[_Node]:
        """Every leaf page in key order (depth-first, no recursion)."""
        snap = self._snap
        snap.check_open()
        if self._inline is not None:
            yield self._inline
            return
        stack: list[tuple[_Node, int]] = [(snap.node(self._root), 0)]
        while stack:
            node, i = stack[-1]
            if node.leaf:
                stack.pop()
                yield node
                snap.check_open()
                continue
            if i >= len(node.children):
                stack.pop()
                continue
            stack[-1] = (node, i + 1)
            if len(stack) >= MAX_TREE_DEPTH:
                snap.fail(f"corrupt: the tree under page {self._root} is more than {MAX_TREE_DEPTH} pages deep")
            child = node.children[i]
            snap.claim(child, node.pgid, i)
            stack.append((snap.node(child), 0))

    def items(self) -> Iterator[tuple[bytes, bytes | Bucket]]:
        """Every key in key order, with its value bytes or, for a nested bucket, a :class:`Bucket`."""
        for node in self._leaves():
            values, flags = node.values, node.flags
            for i, key in enumerate(node.keys):
                yield key, (self._open(node, i) if flags[i] else values[i])

    def keys(self) -> Iterator[bytes]:
        for node in self._leaves():
            yield from node.keys

    def buckets(self) -> Iterator[tuple[bytes, Bucket]]:
        """Only the nested buckets, in key order."""
        for node in self._leaves():
            flags = node.flags
            for i, key in enumerate(node.keys):
                if flags[i]:
                    yield key, self._open(node, i)

    def _open(self, node: _Node, i: int) -> Bucket:
        """The nested bucket whose header is the value of element ``i`` of leaf ``node``."""
        value = node.values[i]
        if self._depth >= MAX_NESTING:
            self._bad(node, i, f"is nested more than {MAX_NESTING} buckets deep")
        if len(value) < _BUCKET_HEADER.size:
            self._bad(node, i, f"has a {len(value)}-byte header (16 expected)")
        root, seq = _BUCKET_HEADER.unpack_from(value)
        if root:
            if not node.pgid:  # bbolt never inlines a bucket that holds buckets
                self._bad(node, i, "is inside an inline bucket but has pages of its own")
            self._snap.claim(root, node.pgid, i)
            return Bucket(self._snap, root, seq, None, self._depth + 1)
        base = _BUCKET_HEADER.size
        if len(value) < base + _HEADER:
            self._bad(node, i, f"is inline but too short to hold a page ({len(value)} bytes)")
        _pid, flags, count, _overflow = _PAGE_HEADER.unpack_from(value, base)
        if flags != LEAF_PAGE:
            self._bad(node, i, f"is inline with page flags {flags:#x}, not a leaf")
        page = _parse_page(value, base, 0, flags, count)
        if isinstance(page, str):
            self._bad(node, i, f"is inline and its page is bad: {page}")
        return Bucket(self._snap, 0, seq, page, self._depth + 1)

    def _bad(self, node: _Node, i: int, problem: str) -> NoReturn:
        where = f"page {node.pgid}" if node.pgid else "an inline bucket"
        key = node.keys[i]
        shown = repr(key[:40]) + ("..." if len(key) > 40 else "")
        self._snap.fail(f"corrupt: bucket {shown} in {where} {problem}; the file is damaged")


def view(path: str, fn: Callable[[Bucket], T], *, attempts: int = 5) -> T:
    """Run ``fn`` on the root bucket of a consistent snapshot of the bbolt file at ``path`` and return its result.

    Never takes the file lock, never writes, never opens for writing. ``fn`` must only read (copy what it
    needs). If the file changes under us (a live containerd commits a transaction) or a page looks
    inconsistent while the meta txid moved, ``fn`` is run again on the newer snapshot, up to ``attempts``
    times; then :class:`BoltError`. An exception of ``fn``'s own is raised as is unless the file moved under
    it (then ``fn`` is run again too).
    """
    fd = _open_file(path)
    try:
        for _ in range(max(attempts, 1)):
            snap = _Snapshot(path, fd, _current_meta(path, fd))
            try:
                result = fn(Bucket(snap, snap.meta.root, snap.meta.sequence, None, 0))
            except _Moved:
                continue
            except Exception:
                if snap.moved():
                    continue
                raise
            finally:
                snap.open = False
                snap.cache.clear()
            if not snap.moved():
                return result
        raise BoltError(path, f"kept changing while being read ({max(attempts, 1)} attempts); try again")
    finally:
        os.close(fd)
