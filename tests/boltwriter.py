"""A minimal bbolt writer for the tests: a nested dict of bytes written as a bbolt file the way bbolt lays one
out, with knobs that force branch pages, overflow pages and inline buckets. Used to make synthetic databases
(tests/core/test_bbolt.py fuzzes the reader with them; tests/core/test_ctrd.py gives ctrd.py layouts the
engines have not written yet)."""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field
from typing import Any

Tree = dict[bytes, "bytes | Tree"]

MAGIC = 0xED0CDAED


def fnv1a64(data: bytes) -> int:
    h = 0xCBF29CE484222325
    for b in data:
        h = ((h ^ b) * 0x100000001B3) & (2**64 - 1)
    return h


def meta_page(pgid: int, ps: int, root: int, seq: int, hwm: int, txid: int, version: int = 2) -> bytes:
    fields = struct.pack("<IIIIQQQQQ", MAGIC, version, ps, 0, root, seq, 2, hwm, txid)
    return struct.pack("<QHHI", pgid, 0x04, 0, 0) + fields + struct.pack("<Q", fnv1a64(fields))


def fix_checksums(buf: bytearray, ps: int) -> None:
    """Recompute the checksum of both meta pages (so that a mutation of a meta field gets past it)."""
    for off in (0, ps):
        if off + 80 <= len(buf):
            struct.pack_into("<Q", buf, off + 72, fnv1a64(bytes(buf[off + 16 : off + 72])))


def bucket_seq(path: tuple[bytes, ...]) -> int:
    return zlib.crc32(b"/".join(path)) * 3 + len(path)


class RawBucket(bytes):
    """A value the writer stores with the bucket flag as is (to make odd nested buckets by hand)."""


def inline_value(elems: list[tuple[int, bytes, bytes]], seq: int = 0, flags: int = 2) -> bytes:
    """A bucket value holding an inline page of ``elems`` (leaf flags, key, value)."""
    raw, _ = Writer._page(2, [(fl, k, v, 0) for fl, k, v in elems])
    struct.pack_into("<H", raw, 8, flags)
    return struct.pack("<QQ", 0, seq) + bytes(raw)


@dataclass
class PageInfo:
    pgid: int
    flags: int  # 1 branch, 2 leaf
    count: int
    pages: int  # 1 + overflow
    parent: int  # the page that points to it (0: the meta or a bucket header)
    children: list[int] = field(default_factory=list)


@dataclass
class InlineInfo:
    pgid: int  # the leaf page holding the bucket entry
    index: int  # element index
    offset: int  # where the value (bucket header + page) starts, from the start of the page


class Writer:
    """Writes a Tree as a bbolt file the way bbolt lays it out (children before parents), with knobs that force
    branch pages (leaf_max, branch_max), overflow pages (big values) and inline buckets (bbolt's rule)."""

    def __init__(self, ps: int = 4096, leaf_max: int = 64, branch_max: int = 64, inline: bool = True) -> None:
        self.ps, self.leaf_max, self.branch_max, self.inline = ps, leaf_max, branch_max, inline
        self.next = 3  # 0, 1: metas; 2: the freelist
        self.out: dict[int, bytes] = {}
        self.info: dict[int, PageInfo] = {}
        self.inlines: list[InlineInfo] = []
        self.root = 0

    @staticmethod
    def _page(flags: int, elems: list[tuple[int, bytes, bytes, int]]) -> tuple[bytearray, list[int]]:
        """Header + elements + data; elems: (leaf flags, key, value, child pgid). Returns the bytes and where each
        element's data starts."""
        n = len(elems)
        raw = bytearray(16 + 16 * n)
        data = bytearray()
        starts = []
        for i, (fl, key, value, child) in enumerate(elems):
            at = 16 + 16 * n + len(data)
            pos = at - (16 + 16 * i)
            if flags == 2:
                struct.pack_into("<IIII", raw, 16 + 16 * i, fl, pos, len(key), len(value))
            else:
                struct.pack_into("<IIQ", raw, 16 + 16 * i, pos, len(key), child)
            starts.append(at)
            data += key + value
        struct.pack_into("<QHHI", raw, 0, 0, flags, n, 0)
        return raw + data, starts

    def _put(self, raw: bytearray, flags: int, count: int, children: list[int]) -> int:
        pages = max(1, -(-len(raw) // self.ps))
        pgid = self.next
        self.next += pages
        struct.pack_into("<QHHI", raw, 0, pgid, flags, count, pages - 1)
        self.out[pgid] = bytes(raw) + bytes(pages * self.ps - len(raw))
        self.info[pgid] = PageInfo(pgid, flags, count, pages, 0, children)
        for c in children:
            self.info[c].parent = pgid
        return pgid

    def _tree(self, elems: list[tuple[int, bytes, bytes, int]], inline_at: list[int]) -> int:
        """The root pgid of a B+tree of leaf elems (sorted)."""
        level: list[tuple[bytes, int]] = []
        for start in range(0, max(len(elems), 1), self.leaf_max):
            chunk = elems[start : start + self.leaf_max]
            raw, starts = self._page(2, chunk)
            pgid = self._put(raw, 2, len(chunk), [])
            for i in inline_at:
                if start <= i < start + len(chunk):
                    self.inlines.append(InlineInfo(pgid, i - start, starts[i - start] + len(chunk[i - start][1])))
            level.append((chunk[0][1] if chunk else b"", pgid))
        while len(level) > 1:
            up: list[tuple[bytes, int]] = []
            for start in range(0, len(level), self.branch_max):
                chunk = level[start : start + self.branch_max]
                raw, _ = self._page(1, [(0, k, b"", p) for k, p in chunk])
                up.append((chunk[0][0], self._put(raw, 1, len(chunk), [p for _, p in chunk])))
            level = up
        return level[0][1]

    def _bucket(self, tree: Tree, path: tuple[bytes, ...]) -> tuple[list[tuple[int, bytes, bytes, int]], list[int]]:
        elems: list[tuple[int, bytes, bytes, int]] = []
        inline_at = []
        for key in sorted(tree):
            v = tree[key]
            if isinstance(v, RawBucket):
                elems.append((1, key, bytes(v), 0))
            elif isinstance(v, dict):
                value, inlined = self._value(v, (*path, key))
                if inlined:
                    inline_at.append(len(elems))
                elems.append((1, key, value, 0))
            else:
                elems.append((0, key, v, 0))
        return elems, inline_at

    def _value(self, tree: Tree, path: tuple[bytes, ...]) -> tuple[bytes, bool]:
        """A nested bucket's value: its header, with its page inline when bbolt would inline it."""
        elems, inline_at = self._bucket(tree, path)
        seq = bucket_seq(path)
        raw, _ = self._page(2, elems)
        if self.inline and all(fl == 0 for fl, *_ in elems) and 16 + len(raw) <= self.ps // 4:
            return struct.pack("<QQ", 0, seq) + bytes(raw), True
        return struct.pack("<QQ", self._tree(elems, inline_at), seq), False

    def chain(self, depth: int) -> int:
        """A leaf under ``depth`` branch pages of one child each (a corrupt, too deep tree); its top pgid."""
        raw, _ = self._page(2, [(0, b"k", b"v", 0)])
        top = self._put(raw, 2, 1, [])
        for _ in range(depth):
            raw, _ = self._page(1, [(0, b"k", b"", top)])
            top = self._put(raw, 1, 1, [top])
        return top

    def add(self, tree: Tree) -> int:
        """Write ``tree`` as a root bucket's pages; returns its root pgid."""
        elems, inline_at = self._bucket(tree, ())
        return self._tree(elems, inline_at)

    def file(self, roots: tuple[int, int], txids: tuple[int, int] = (10, 9), slack: int = 0) -> bytearray:
        """The whole file: meta 0 -> roots[0] at txids[0], meta 1 -> roots[1] at txids[1]."""
        ps, hwm = self.ps, self.next
        buf = bytearray((hwm + slack) * ps)
        for i in (0, 1):
            buf[i * ps : i * ps + 80] = meta_page(i, ps, roots[i], bucket_seq(()), hwm, txids[i])
        struct.pack_into("<QHHI", buf, 2 * ps, 2, 0x10, 0, 0)
        for pgid, raw in self.out.items():
            buf[pgid * ps : pgid * ps + len(raw)] = raw
        return buf


def write_db(path: str, tree: Tree, **kw: Any) -> Writer:
    w = Writer(**kw)
    root = w.add(tree)
    w.root = root
    with open(path, "wb") as f:
        f.write(w.file((root, root)))
    return w
