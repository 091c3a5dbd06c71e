"""The merged view of a stack, computed one directory at a time, as overlayfs does it.

:class:`OverlayView` is what the rest of ufs_tui asks: a dir's merged listing, one path's entry, every
layer's version of a name and its fate, a walk of the tree. It caches each directory's listing, so the
cost of opening a directory is that directory's entries across the layers, never the whole tree. The
work is done by three parts: :class:`LayerReader` reads the layers, :class:`Resolver` looks one name up
as the kernel does (:mod:`.lookup`), :class:`Scanner` lists a dir (:mod:`.scan`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterator

from . import status as S
from .content import DEFAULT_CAP, Content
from .entry import Entry, Hidden, LayerVersion, Source, join, normpath
from .errors import StackError
from .layer_reader import LayerReader
from .lookup import Resolver
from .markers import Node
from .readdir import ReaddirFault, readdir_fault
from .scan import Scanner
from .stack import Layer, Stack

__all__ = ["Entry", "Hidden", "LayerVersion", "OverlayView", "Source", "join", "normpath"]


class OverlayView:
    """The merged view of a :class:`Stack`, read lazily and cached per directory."""

    def __init__(self, stack: Stack, eager: bool = False) -> None:
        self.stack = stack
        self.eager = eager  # list_dir reads every entry's mode, size and target at once (see walk)
        self._reader = LayerReader(stack)
        self._resolver = Resolver(stack, self._reader)
        self._scanner = Scanner(self._reader, self._resolver)
        self.errors = self._reader.errors  # real dir -> problem (unreadable dirs met while listing)
        self._dirs: dict[str, tuple[Source, ...]] = {}
        self._listings: dict[str, list[Entry]] = {}
        self._dirs["/"] = tuple((layer, layer.path) for layer in stack.layers)

    # ----------------------------------------------------------------- public API
    def list_dir(self, path: str = "/") -> list[Entry]:
        """The merged listing of directory ``path`` (sorted by name), cached."""
        path = normpath(path)
        cached = self._listings.get(path)
        if cached is not None:
            return cached
        entries, _ = self._scanner.scan(path, self.dir_sources(path), False, self.eager)
        self._remember(entries, path)
        return entries

    def scan_dir(self, path: str, sources: tuple[Source, ...], eager: bool = False) -> list[Entry]:
        """The merged listing of dir ``path`` read now from its ``sources`` (a dir entry's :attr:`Entry.sources`),
        not cached: for a one-pass walk (see :meth:`walk`)."""
        return self._scanner.scan(path, sources, False, eager)[0]

    def readdir_fault(self, path: str) -> ReaddirFault | None:
        """How the kernel's ``readdir`` of merged dir ``path`` fails though its layer dirs read (an impure dir)."""
        return readdir_fault(self.stack, self._reader.ns, self.dir_sources(path), self.list_dir(path))

    def hidden(self, path: str = "/") -> list[Hidden]:
        """What the layers hold in dir ``path`` that the merged view hides (markers included)."""
        return self.list_all(path)[1]

    def list_all(self, path: str = "/") -> tuple[list[Entry], list[Hidden]]:
        """The merged listing of ``path`` and everything its layers hide there, from one scan."""
        path = normpath(path)
        entries, hidden = self._scanner.scan(path, self.dir_sources(path), want_hidden=True)
        self._remember(entries, path)
        return entries, hidden

    def _remember(self, entries: list[Entry], path: str | None = None) -> None:
        """Record the sources of the subdirs in ``entries``; and the listing of ``path`` if given."""
        if path is not None:
            self._listings[path] = entries
        dirs = self._dirs
        for e in entries:
            more = e._more  # what Entry.sources reads, without a property call per entry
            if more.__class__ is tuple and more[1] is not None:
                dirs[e.path] = more[1]

    def dir_sources(self, path: str) -> tuple[Source, ...]:
        """Every (layer, real dir) that merges into merged dir ``path``; raises if it is not a dir."""
        path = normpath(path)
        got = self._dirs.get(path)
        if got is not None:
            return got
        parent, name = posixpath.split(path)
        psources = self.dir_sources(parent)
        res = self._resolver.resolve(psources, name, self._reader.probe_direct, want_versions=False)
        if res.top is None:
            raise StackError(path, "no such directory in the merged view")
        if res.error is not None:
            raise StackError(path, res.error)
        if res.sources is None:
            raise StackError(path, "not a directory in the merged view")
        sources = tuple(res.sources)
        self._dirs[path] = sources
        return sources

    def lookup(self, path: str) -> Entry | None:
        """The merged entry at ``path`` or None (whited out, hidden, or absent)."""
        path = normpath(path)
        if path == "/":
            return self.root_entry()
        parent, name = posixpath.split(path)
        try:
            psources = self.dir_sources(parent)
        except StackError:
            return None
        res = self._resolver.resolve(psources, name, self._reader.probe_direct, want_versions=False)
        return self._resolver.entry(path, res)

    def root_entry(self) -> Entry:
        layer, real = self._dirs["/"][0]
        node = self._reader.probe(real, self.stack.xattr_ns) or Node(real, None)
        status = S.MERGED if self.stack.upper is not None and len(self._dirs["/"]) > 1 else S.LOWER
        return Entry("/", node.kind, node.mode, node.size, None, layer, status, real, self._dirs["/"])

    def versions(self, path: str) -> list[LayerVersion]:
        """Every layer's version of ``path`` and its fate (visible, merged, shadowed, whited out, ...)."""
        path = normpath(path)
        if path == "/":
            out: list[LayerVersion] = []
            for layer, real in self._dirs["/"]:
                node = self._reader.probe(real, self.stack.xattr_ns)
                if node is not None:
                    out.append(LayerVersion(layer, real, node, S.VISIBLE if not out else S.F_MERGED))
            return out
        parent, name = posixpath.split(path)
        try:
            psources = self.dir_sources(parent)
        except StackError:
            return self._versions_under_hidden_parent(path)
        res = self._resolver.resolve(psources, name, self._reader.probe_direct, want_versions=True)
        out = res.versions or []
        # Layers whose copy of the parent does not merge in (an opaque dir above it, a whiteout, a
        # non-dir): lookup never reaches their copy of ``path``, but the details still show it.
        taking_part = {id(layer) for layer, _ in psources}
        extra = []
        for layer in self.stack.layers:
            if id(layer) in taking_part:
                continue
            real = layer.real(path)
            node = self._reader.probe(real, self.stack.xattr_ns)
            if node is not None:
                fate, by = self._ancestor_fate(layer, parent)
                extra.append(LayerVersion(layer, real, node, fate, by))
        if extra:
            out = sorted(out + extra, key=lambda v: v.layer.index)  # top-down: upper (-1), lowers, data
        return out

    def _ancestor_fate(self, layer: Layer, parent: str) -> tuple[str, Layer | None]:
        """Why ``layer``'s copy of merged dir ``parent`` does not merge in: the first ancestor (from the top)
        whose copy in ``layer`` is hidden decides; an opaque dir gives ``opaque-hidden``, anything else
        (a whiteout, a non-dir above, a redirect elsewhere) ``parent-hidden``."""
        parts = [p for p in parent.split("/") if p]
        for k in range(1, len(parts) + 1):
            for v in self.versions("/" + "/".join(parts[:k])):
                if v.layer is layer:
                    if v.fate in (S.VISIBLE, S.F_MERGED):
                        break
                    if v.fate == S.F_OPAQUE_HIDDEN:
                        return S.F_OPAQUE_HIDDEN, v.by
                    return S.F_PARENT_HIDDEN, v.by
        return S.F_PARENT_HIDDEN, None

    def _versions_under_hidden_parent(self, path: str) -> list[LayerVersion]:
        """A path whose parent is not a merged dir: report each layer's copy as hidden by an ancestor."""
        out = []
        parent = posixpath.dirname(path)
        for layer in self.stack.layers:
            real = layer.real(path)
            node = self._reader.probe(real, self.stack.xattr_ns)
            if node is not None:
                fate, by = self._ancestor_fate(layer, parent)
                out.append(LayerVersion(layer, real, node, fate, by))
        return out

    def walk(self, path: str = "/", cache: bool = True, eager: bool = False) -> Iterator[tuple[str, Entry]]:
        """Pre-order over the merged tree below ``path``: each dir is followed by its contents.

        ``cache=False`` keeps no listing (one pass over a big tree, e.g. ``tree --format json``):
        memory stays at one dir's entries per level. ``eager`` reads every entry's mode, size and
        target while scanning (no lazy entries, see :class:`Entry`), for a caller that uses them all;
        it applies to the dirs scanned here, not to listings already cached. A dir that cannot be
        listed is recorded in :attr:`errors` and skipped.
        """
        path = normpath(path)
        top: list[Entry] = []
        try:
            cached = self._listings.get(path)
            if cache:
                top = self.list_dir(path)
            else:
                top = cached if cached is not None else self.scan_dir(path, self.dir_sources(path), eager)
        except StackError as err:
            self.errors.setdefault(path, err.problem)
        stack: list[Iterator[Entry]] = [iter(top)]
        listings = self._listings
        while stack:
            e = next(stack[-1], None)
            if e is None:
                stack.pop()
                continue
            yield e.path, e
            if e.sources is not None and e.kind == "dir":
                if cache:
                    sub = listings.get(e.path)
                    if sub is None:
                        sub, _ = self._scanner.scan(e.path, e.sources, False, eager)
                        self._remember(sub, e.path)
                else:
                    sub = listings.get(e.path) or self._scanner.scan(e.path, e.sources, False, eager)[0]
                stack.append(iter(sub))

    def walk_items(self, path: str = "/", with_hidden: bool = False) -> Iterator[tuple[str, Entry | Hidden, int]]:
        """Pre-order (path, item, depth) over the tree, names sorted; with hidden things of each dir if asked.

        A dir that cannot be listed is recorded in :attr:`errors` and skipped. A one-pass walk: the listings it
        reads are not kept (the sources of the dirs met are, as for any listing).
        """
        path = normpath(path)
        stack: list[tuple[str, int, Iterator[Entry | Hidden]]] = [(path, 0, iter(self._items(path, with_hidden)))]
        while stack:
            d, depth, it = stack[-1]
            item = next(it, None)
            if item is None:
                stack.pop()
                continue
            if isinstance(item, Entry):
                p = item.path
                yield p, item, depth
                if item.kind == "dir":
                    stack.append((p, depth + 1, iter(self._items(p, with_hidden))))
            else:
                yield join(d, item.name), item, depth

    def _items(self, path: str, with_hidden: bool) -> list[Entry | Hidden]:
        try:
            cached = None if with_hidden else self._listings.get(path)
            if cached is not None:
                return list(cached)
            entries, hidden = self._scanner.scan(path, self.dir_sources(path), with_hidden)
            self._remember(entries)
        except StackError as e:
            self.errors.setdefault(path, e.problem)
            return []
        items: list[Entry | Hidden] = [*entries, *hidden]
        items.sort(key=lambda it: (it.name, isinstance(it, Hidden)))
        return items

    def invalidate(self, path: str) -> None:
        """Forget the listing of dir ``path`` and every cached dir below it (after a change)."""
        path = normpath(path)
        self._listings.pop(path, None)
        prefix = path.rstrip("/") + "/"
        for cache in (self._listings, self._dirs):
            for key in [k for k in cache if k.startswith(prefix) and k != "/"]:  # the root's sources are fixed
                del cache[key]

    def invalidate_all(self) -> None:
        self._resolver.index = self._resolver.read_index()
        self._listings.clear()
        root = self._dirs["/"]
        self._dirs.clear()
        self._dirs["/"] = root

    def source_index(self) -> dict[str, list[str]]:
        """Real dir -> the merged dirs it feeds, for every merged dir known so far (listed, or a dir entry of
        a listed dir): where a renamed (redirected) dir's contents show."""
        out: dict[str, list[str]] = {}
        for mpath, sources in self._dirs.items():
            for _, real in sources:
                out.setdefault(real, []).append(mpath)
        return out

    def merged_dirs_for(self, real_dir: str) -> list[str]:
        """Merged paths of cached dirs that ``real_dir`` (a layer's real directory) feeds."""
        out = []
        for mpath, sources in self._dirs.items():
            if any(real == real_dir for _, real in sources):
                out.append(mpath)
        return out

    # ---------------------------------------------------------------- file data
    def read_content(self, real: str, cap: int = DEFAULT_CAP) -> Content:
        """What the regular file at ``real`` (a path in one of the layers) holds, up to ``cap`` bytes: read from
        disk, or through its layer's LayerFS (an archive's layer tar, in place)."""
        return self._reader.read_content(real, cap)

    def in_layer_fs(self, real: str) -> bool:
        """Whether ``real`` is read through a LayerFS (a member of an image archive), not from a dir on disk."""
        return self._reader.in_layer_fs(real)
