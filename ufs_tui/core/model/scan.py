"""Listing one merged dir: every name its layer dirs hold, each looked up, in one pass.

:meth:`Scanner.scan` picks the fastest way that is exact for the stack: the lazy scan (readdir's d_types,
one ``listxattr`` per regular file that may carry a marker, everything else left for later), the eager
scan (one ``lstat`` per name, for a walk that reads every entry's metadata), or the general scan (every
name through :meth:`Resolver.resolve`, for hidden things, OCI whiteouts, archives and the inode index).
"""

from __future__ import annotations

import functools
import os
import posixpath
from collections.abc import Callable, Container, Sequence
from operator import attrgetter

from . import dirscan
from . import status as S
from .dirscan import DT_DIR, DT_LNK, DT_REG, DT_UNKNOWN
from .entry import _LOWER_CLASSES, Entry, Hidden, Source, _cls
from .layer_reader import DirListing, LayerReader
from .lookup import Resolver
from .markers import KIND_BY_FMT, WH_PREFIX, Node
from .stack import Layer

_PATH = attrgetter("path")


@functools.cache
def _marker_xattr_bytes(ns: str) -> tuple[bytes, ...]:
    """The xattr names that make a regular file more than plain data (whiteout, metacopy, redirect), as
    :func:`dirscan.marked_files` and :func:`dirscan.stat_files` take them."""
    return tuple(os.fsencode(f"{ns}.overlay.{key}") for key in ("metacopy", "opaque", "redirect", "whiteout"))


class Scanner:
    """Merged listings of dirs, made from the layers' dirs by :class:`LayerReader` and :class:`Resolver`."""

    def __init__(self, reader: LayerReader, resolver: Resolver) -> None:
        self.reader = reader
        self.resolver = resolver
        self.ns = reader.ns

    def scan(
        self, path: str, sources: tuple[Source, ...], want_hidden: bool, eager: bool = False
    ) -> tuple[list[Entry], list[Hidden]]:
        """The merged listing of dir ``path`` (whose per-layer dirs are ``sources``), and what it hides if asked.

        Plain entries are lazy (see :class:`Entry`) unless ``eager``; the general scan makes none.
        """
        if want_hidden or self.reader.oci or self.reader.fs or self.resolver.index:  # (index: per lower file)
            return self._scan_general(path, sources, want_hidden)
        if eager:
            return self._scan_eager(path, sources), []
        return self._scan_lazy(path, sources), []

    def _scan_eager(self, path: str, sources: tuple[Source, ...]) -> list[Entry]:
        """:meth:`_scan_lazy` for a caller that reads every entry's mode, size and target (no lazy entries).

        Each name costs one ``lstat`` in its topmost layer, plus ``listxattr`` for a regular file
        (overlay markers) and ``readlink`` for a symlink (:func:`dirscan.stat_files`). Plain files,
        symlinks and special files (the bulk of any tree) become entries right here; dirs, markers and
        anything odd (an entry that vanished, an error) go through the general lookup :meth:`Resolver.resolve`.
        """
        names = self.reader.read_sources(sources, types=False)  # (stat_files reads each name's type)
        prefix = "/" if path == "/" else path + "/"
        heads = [real + "/" for _, real in sources]
        marker_bytes = _marker_xattr_bytes(self.ns)
        ns = self.ns
        stat_files = dirscan.stat_files
        lower_cls = _LOWER_CLASSES
        plain = Entry._plain
        out: list[Entry] = []
        append = out.append
        get = self._lister(sources, names)
        seen: set[str] = set()  # names of the sources above: each name's topmost copy is the one listed
        last = len(names) - 1
        for i, d in enumerate(names):  # top-down, each source's names that no source above holds
            if not d:
                continue
            src = sources[i]
            upper = src[0].role == "upper"
            for name, facts in stat_files(heads[i], d, seen or None, marker_bytes).items():
                if facts is not None:
                    m, size, target = facts
                    if not upper:
                        klass = lower_cls.get(m)
                        if klass is None:
                            klass = lower_cls[m] = _cls(KIND_BY_FMT.get(m & 0o170000, "unknown"), m & 0o7777, S.LOWER)
                        append(plain(prefix + name, size, src, klass, target))
                        continue
                    status = self._over_what(name, i, names, heads, ns)
                    if status is not None:  # (None: what it sits on vanished: the general lookup sorts it out)
                        klass = _cls(KIND_BY_FMT.get(m & 0o170000, "unknown"), m & 0o7777, status)
                        append(plain(prefix + name, size, src, klass, target))
                        continue
                entry = self._looked_up(sources, names, get, i, prefix, name)
                if entry is not None:
                    append(entry)
            if i < last:
                seen.update(d)
        out.sort(key=_PATH)  # by name, as readdir's order is no order
        return out

    def _scan_lazy(self, path: str, sources: tuple[Source, ...]) -> list[Entry]:
        """:meth:`_scan_general` without hidden things, for layers on disk without OCI whiteouts.

        What decides the listing comes from readdir's d_type of each name's topmost copy, with a
        system call only where a marker could hide: a regular file gets one ``listxattr`` (it may be
        an xattr whiteout, a metacopy or a redirect: the kernel's lookup honours those in any layer),
        a device, FIFO or socket an ``lstat`` (a char device may be a 0/0 whiteout); a symlink
        needs none. Such plain entries are lazy (:class:`Entry`): their mode, size and target are
        read when first asked for. Dirs, markers and anything odd (an entry that vanished, an
        error) go through the general lookup :meth:`Resolver.resolve`.
        """
        names = self.reader.read_sources(sources)
        prefix = "/" if path == "/" else path + "/"
        heads = [real + "/" for _, real in sources]
        marker_bytes = _marker_xattr_bytes(self.ns)
        ns = self.ns
        lstat, marked_files = os.lstat, dirscan.marked_files
        lower_cls = _LOWER_CLASSES
        lazy_file, lazy_link = _cls("file", None, S.LOWER), _cls("symlink", None, S.LOWER)
        new = object.__new__
        out: list[Entry] = []
        append = out.append
        get = self._lister(sources, names)
        seen: set[str] = set()  # names of the sources above: each name's topmost copy is the one listed
        last = len(names) - 1
        for i, d in enumerate(names):  # top-down, each source's names that no source above holds
            if not d:
                continue
            src, head = sources[i], heads[i]
            upper = src[0].role == "upper"
            # The regular files that may be more than plain data (gone or unreadable ones too: the general
            # lookup says what they are; one replaced by a symlink since readdir was read without following it).
            marked = marked_files(head, d, seen or None, marker_bytes)
            for name, dtype in d.items():
                if name in seen:
                    continue
                klass: tuple[str, int | None, str] | None = None  # None: the general lookup decides
                size: int | None = None  # None: lazy
                if dtype == DT_REG:
                    if name not in marked:
                        klass = lazy_file
                elif dtype == DT_LNK:
                    klass = lazy_link
                elif dtype != DT_DIR and dtype != DT_UNKNOWN:  # a device, FIFO or socket: read it all now
                    try:
                        st = lstat(head + name)
                    except OSError:
                        pass
                    else:
                        m = st.st_mode
                        fmt = m & 0o170000
                        if fmt != 0o040000 and not (fmt == 0o020000 and st.st_rdev == 0):  # not a dir, not a whiteout
                            klass = lower_cls.get(m)
                            if klass is None:
                                klass = lower_cls[m] = _cls(KIND_BY_FMT.get(fmt, "unknown"), m & 0o7777, S.LOWER)
                            size = st.st_size
                if klass is not None:
                    if not upper:
                        e = new(Entry)  # Entry._plain, inlined: the bulk of any listing is here
                        e.path = prefix + name
                        e._size = size
                        e._src = src
                        e._cls = klass
                        e._more = None
                        append(e)
                        continue
                    status = self._over_what(name, i, names, heads, ns)
                    if status is not None:  # (None: what it sits on vanished: the general lookup sorts it out)
                        append(Entry._plain(prefix + name, size, src, _cls(klass[0], klass[1], status), None))
                        continue
                entry = self._looked_up(sources, names, get, i, prefix, name)
                if entry is not None:
                    append(entry)
            if i < last:
                seen.update(d)
        out.sort(key=_PATH)  # by name, as readdir's order is no order
        return out

    def _looked_up(
        self,
        sources: tuple[Source, ...],
        names: Sequence[Container[str] | None],
        get: Callable[[Layer, str, str], Node | None],
        i: int,
        prefix: str,
        name: str,
    ) -> Entry | None:
        """The fast scans' way out for a dir, a marker or anything odd: the general lookup, probing only the
        sources (from ``i``, its topmost holder, down) whose listing holds ``name``."""
        present = [sources[j] for j in range(i, len(sources)) if (d := names[j]) is not None and name in d]
        res = self.resolver.resolve(sources, name, get, want_versions=False, present=present)
        return self.resolver.entry(prefix + name, res)

    def _over_what(
        self, name: str, i: int, names: Sequence[Container[str] | None], heads: list[str], ns: str
    ) -> str | None:
        """The status of an upper plain entry ``name`` (in source ``i``) by the first copy below it: new (none,
        or a whiteout), copied-up (a non-dir), replaced (a dir); None if that copy vanished meanwhile."""
        for j in range(i + 1, len(heads)):
            d = names[j]
            if d is not None and name in d:
                below = self.reader.probe(heads[j] + name, ns)
                if below is None:
                    return None
                if below.whiteout:
                    return S.NEW
                return S.REPLACED if below.is_dir else S.COPIED_UP
        return S.NEW

    def _lister(
        self, sources: tuple[Source, ...], names: Sequence[Container[str] | None]
    ) -> Callable[[Layer, str, str], Node | None]:
        """A probe for :meth:`Resolver.resolve` that knows which names each source dir holds."""
        listed = {real: d for (_, real), d in zip(sources, names, strict=True) if d is not None}
        ns = self.ns

        def get(layer: Layer, parent: str, name: str) -> Node | None:
            d = listed.get(parent)
            if d is None:
                return self.reader.probe_direct(layer, parent, name)
            return self.reader.probe(parent + "/" + name, ns) if name in d else None

        return get

    def _scan_general(
        self, path: str, sources: tuple[Source, ...], want_hidden: bool
    ) -> tuple[list[Entry], list[Hidden]]:
        listings: dict[str, DirListing] = {}
        present: dict[str, list[Source]] = {}  # name -> the sources whose dir holds it, top-down
        for source in sources:
            lst = self.reader.read_dir(source[1])
            if lst is None:
                continue
            listings[source[1]] = lst
            for name in lst.names:
                present.setdefault(name, []).append(source)
            for name in lst.wh:
                if name not in lst.names:
                    present.setdefault(name, []).append(source)
        ns = self.ns
        oci = self.reader.oci

        def get(layer: Layer, parent: str, name: str) -> Node | None:
            lst = listings.get(parent)
            if lst is None:
                return self.reader.probe_direct(layer, parent, name)
            kind = lst.names.get(name, "")
            if kind == "":
                if oci and name in lst.wh:
                    node = Node(posixpath.join(parent, WH_PREFIX + name), None)
                    node.kind = "file"
                    node.whiteout = "oci"
                    return node
                return None
            found = self.reader.probe(parent + "/" + name, ns, kind)
            if found is not None and oci:
                self.reader.oci_adjust(found, name in lst.wh)
            return found

        entries: list[Entry] = []
        hidden: list[Hidden] = []
        prefix = "" if path == "/" else path
        for name in sorted(present):
            res = self.resolver.resolve(sources, name, get, want_versions=want_hidden, present=present[name])
            entry = self.resolver.entry(prefix + "/" + name, res)
            if entry is not None:
                entries.append(entry)
            if want_hidden and res.versions:
                for v in res.versions:
                    if v.fate in S.HIDDEN_FATES:
                        hidden.append(Hidden(name, v.layer, v.node.path, S.HIDDEN_STATUS[v.fate], v.by))
        return entries, hidden
