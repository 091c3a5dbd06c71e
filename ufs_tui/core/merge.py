"""The merged view of a stack, computed one directory at a time, as overlayfs does it.

Lookup of a name walks the layers top-down (upper, then lowers in kernel order)
and stops at the first non-directory, whiteout or opaque directory; directories
of the same name merge until then. Redirects change the name (relative) or path
(absolute) looked up in the layers below; metacopy files take their data from
the next regular file found below (or from a data-only layer through an
absolute redirect).

:class:`OverlayView` caches each directory's listing, so the cost of opening a
directory is that directory's entries across the layers, never the whole tree.
"""

from __future__ import annotations

import functools
import os
import posixpath
from collections.abc import Callable, Container, Iterator, Sequence
from dataclasses import dataclass
from operator import attrgetter

from . import dirscan
from . import status as S
from .content import DEFAULT_CAP, Content, content_of, read_content
from .dirscan import DT_DIR, DT_LNK, DT_REG, DT_UNKNOWN
from .errors import StackError
from .markers import KIND_BY_FMT, WH_FUSE_OPAQUE, WH_OPAQUE, WH_PREFIX, Node, dot_component, probe, redirect_problem
from .stack import Layer, LayerFS, Stack

Source = tuple[Layer, str]  # (layer, real directory path in that layer)
# Lookups the kernel refuses because of mount options (OVERLAY-NOTES §2; tests/kernel/test_markers.py).
_NO_METACOPY = "metacopy file, but the mount has metacopy off: the kernel refuses this lookup (EPERM)"
_REFUSED = "redirect not followed (userxattr or redirect_dir=nofollow): the kernel refuses this lookup (EPERM)"


class _Refused(Exception):
    """The kernel refuses a lookup at a redirect it reads (the message says why)."""


class Entry:
    """One entry of a merged directory: the topmost copy of a name, classified.

    Only what a listing needs is kept, and shared where it can be (a full walk of 100k entries
    must stay small): the name is a slice of ``path``; ``(layer, srcdir)`` is the parent's source
    tuple, shared by siblings; ``(kind, mode, status)`` is one interned tuple for all entries
    alike; target, sources and extra (rare) share one slot. :meth:`OverlayView.versions` and
    :func:`probe` give the rest.

    The plain files and symlinks of a listing (:meth:`OverlayView.list_dir`, :meth:`OverlayView.walk`)
    are *lazy*: what decides the merged view (name, kind, status, layer, from readdir's d_type and
    the markers) is known at once, but ``mode``, ``size`` and a symlink's ``target`` are read (one
    ``lstat``, plus ``readlink`` for a symlink, of :attr:`real_path`) on first use and kept. Until
    then ``_size`` is None and so is the mode in the class tuple. A copy that vanished by then
    reads as mode 0, size 0.
    """

    __slots__ = ("path", "_size", "_src", "_cls", "_more")

    def __init__(
        self,
        path: str,
        kind: str,
        mode: int,
        size: int,
        target: str | None,
        layer: Layer,
        status: str,
        srcdir: str,
        sources: tuple[Source, ...] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.path = path  # absolute in the merged view ("/" for the root)
        self._size: int | None = size  # None until a lazy entry is loaded
        self._src: Source = (layer, srcdir)
        self._cls: tuple[str, int | None, str] = _cls(kind, mode, status)
        # None (most entries), a symlink's target, or (target, sources, extra)
        self._more: str | tuple[str | None, tuple[Source, ...] | None, dict[str, str] | None] | None = (
            target if sources is None and extra is None else (target, sources, extra)
        )

    @classmethod
    def _plain(
        cls, path: str, size: int | None, src: Source, klass: tuple[str, int | None, str], target: str | None
    ) -> Entry:
        """The fast constructor of the scans: shared ``src`` and interned ``klass`` (a lazy entry:
        ``size`` None, ``klass`` with mode None, ``target`` None)."""
        e = cls.__new__(cls)
        e.path = path
        e._size = size
        e._src = src
        e._cls = klass
        e._more = target
        return e

    def _load(self) -> None:
        """Read the mode, size and symlink target of a lazy entry (see the class doc)."""
        kind, _, status = self._cls
        real = self.real_path
        try:
            st = os.lstat(real)
        except OSError:
            st = None
        target = None
        if kind == "symlink" and st is not None:
            try:
                target = os.fsdecode(os.readlink(real))
            except OSError:
                target = None
        # In this order, for a reader in another thread: a set ``_size`` means all is there.
        self._more = target
        self._cls = _cls(kind, 0 if st is None else st.st_mode & 0o7777, status)
        self._size = 0 if st is None else st.st_size

    @property
    def size(self) -> int:
        size = self._size
        if size is None:
            self._load()
            size = self._size
            assert size is not None
        return size

    @property
    def name(self) -> str:
        path = self.path
        return path[path.rfind("/") + 1 :]

    @property
    def kind(self) -> str:
        return self._cls[0]

    @property
    def mode(self) -> int:
        """Permission bits (``stat.S_IMODE``)."""
        mode = self._cls[1]
        if mode is None:
            self._load()
            mode = self._cls[1]
            assert mode is not None
        return mode

    @property
    def status(self) -> str:
        return self._cls[2]

    @property
    def layer(self) -> Layer:
        """The layer of the topmost copy."""
        return self._src[0]

    @property
    def srcdir(self) -> str:
        """The real dir in :attr:`layer` holding this name."""
        return self._src[1]

    @property
    def target(self) -> str | None:
        """A symlink's target."""
        if self._cls[1] is None and self._cls[0] == "symlink":
            self._load()
        more = self._more
        return more if more is None or isinstance(more, str) else more[0]

    @property
    def sources(self) -> tuple[Source, ...] | None:
        """For dirs: every (layer, real dir) that merges into it, top-down."""
        more = self._more
        return None if more is None or isinstance(more, str) else more[1]

    @property
    def extra(self) -> dict[str, str] | None:
        """Rare facts: "redirect", "data" (real path of metacopy data), "data_layer", "error"."""
        more = self._more
        return None if more is None or isinstance(more, str) else more[2]

    @property
    def is_dir(self) -> bool:
        return self._cls[0] == "dir"

    @property
    def real_path(self) -> str:
        """The real path of the topmost copy (the one whose metadata the merged view shows)."""
        return posixpath.join(self._src[1], self.name) if self.path != "/" else self._src[1]

    @property
    def source(self) -> str:
        """The real path whose *data* backs this entry (for metacopy: the data's layer)."""
        extra = self.extra
        if extra and "data" in extra:
            return extra["data"]
        return self.real_path

    @property
    def redirect(self) -> str | None:
        extra = self.extra
        return extra.get("redirect") if extra else None

    @property
    def data_error(self) -> str | None:
        """Why opening the file fails although the entry itself resolves (a metacopy file whose data is in
        no data-only layer: the kernel looks for it only on open), else None."""
        extra = self.extra
        return extra.get("error") if extra and self.status != S.ERROR else None

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Entry({self.path!r}, {self.kind}, {self.status}, {self.layer.name})"


_CLASSES: dict[tuple[str, int | None, str], tuple[str, int | None, str]] = {}
_LOWER_CLASSES: dict[int, tuple[str, int | None, str]] = {}  # st_mode -> (kind, mode, "lower")


def _cls(kind: str, mode: int | None, status: str) -> tuple[str, int | None, str]:
    """The one ``(kind, mode, status)`` tuple for entries alike."""
    key = (kind, mode, status)
    return _CLASSES.setdefault(key, key)


@dataclass(frozen=True)
class LayerVersion:
    """One layer's version of a name and its fate in the merged view."""

    layer: Layer
    path: str  # real path in the layer
    node: Node
    fate: str  # a status.FATES value
    by: Layer | None = None  # the layer whose marker or entry decided the fate


@dataclass(frozen=True)
class Hidden:
    """Something in a layer that the merged view does not show (``tree --all``)."""

    name: str
    layer: Layer
    path: str  # real path
    status: str  # whiteout | whited-out | opaque-hidden | shadowed
    by: Layer | None


@dataclass
class _Resolution:
    top: Node | None = None
    top_layer: Layer | None = None
    top_dir: str | None = None  # the real dir holding ``top`` (a source's string, shared by siblings)
    sources: list[Source] | None = None
    data: tuple[Layer, Node] | None = None
    below: Node | None = None  # the first real entry under the top (for status)
    redirect: str | None = None
    error: str | None = None  # the kernel fails the lookup itself: the entry is an error
    data_error: str | None = None  # the lookup works, reading the data fails
    versions: list[LayerVersion] | None = None
    hidden: list[tuple[Layer, str, str, Layer | None]] | None = None  # (layer, path, fate, by)


class _DirListing:
    """Names in one real directory, from one readdir; OCI ``.wh.`` names split out."""

    __slots__ = ("names", "wh", "opaque")

    def __init__(self, names: dict[str, str | None], wh: set[str], opaque: bool) -> None:
        self.names = names  # name -> kind hint from d_type ("dir", "symlink", ... or None)
        self.wh = wh  # names whited out by ``.wh.NAME`` (OCI form)
        self.opaque = opaque  # ``.wh..wh..opq`` present (OCI form)


def _dtype_kind(de: os.DirEntry[str]) -> str | None:
    try:
        if de.is_symlink():
            return "symlink"
        if de.is_dir(follow_symlinks=False):
            return "dir"
        if de.is_file(follow_symlinks=False):
            return "file"
    except OSError:
        return None
    return None


class OverlayView:
    """The merged view of a :class:`Stack`, read lazily and cached per directory."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.oci = "oci-whiteouts" in stack.options
        # userxattr implies redirect_dir=nofollow: a redirect met where lookup goes on is then an error (EPERM).
        # Markers in user.overlay.* are honoured only by userxattr mounts: such a stack is one, however it was told.
        options = set(stack.options) | ({"userxattr"} if stack.xattr_ns == "user" else set())
        self.follow_redirects = not {"userxattr", "redirect_dir=nofollow"} & options
        # Likewise a metacopy file is EPERM with metacopy=off (userxattr implies it); unknown options: assume on.
        self.metacopy_on = not {"userxattr", "metacopy=off"} & options
        self._dirs: dict[str, tuple[Source, ...]] = {}
        self._listings: dict[str, list[Entry]] = {}
        self.errors: dict[str, str] = {}  # real dir -> problem (unreadable dirs met while listing)
        self._dirs["/"] = tuple((layer, layer.path) for layer in stack.layers)
        # Layers that are not dirs on disk (image archives) are read through their LayerFS.
        self._fs: dict[str, LayerFS] = {layer.path: layer.fs for layer in stack.all_layers if layer.fs is not None}
        self._probe: Callable[..., Node | None] = self._fs_probe if self._fs else probe
        self._lexists: Callable[[str], bool] = self._fs_lexists if self._fs else os.path.lexists

    # ----------------------------------------------------------------- public API
    def list_dir(self, path: str = "/") -> list[Entry]:
        """The merged listing of directory ``path`` (sorted by name), cached."""
        path = normpath(path)
        cached = self._listings.get(path)
        if cached is not None:
            return cached
        entries, _ = self._scan(path, self.dir_sources(path), want_hidden=False)
        self._remember(entries, path)
        return entries

    def scan_dir(self, path: str, sources: tuple[Source, ...], eager: bool = False) -> list[Entry]:
        """The merged listing of dir ``path`` read now from its ``sources`` (a dir entry's :attr:`Entry.sources`),
        not cached: for a one-pass walk (see :meth:`walk`)."""
        return self._scan(path, sources, False, eager)[0]

    def hidden(self, path: str = "/") -> list[Hidden]:
        """What the layers hold in dir ``path`` that the merged view hides (markers included)."""
        return self.list_all(path)[1]

    def list_all(self, path: str = "/") -> tuple[list[Entry], list[Hidden]]:
        """The merged listing of ``path`` and everything its layers hide there, from one scan."""
        path = normpath(path)
        entries, hidden = self._scan(path, self.dir_sources(path), want_hidden=True)
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
        res = self._resolve(psources, name, self._probe_direct, want_versions=False)
        if res.top is None:
            raise StackError(path, "no such directory in the merged view")
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
        res = self._resolve(psources, name, self._probe_direct, want_versions=False)
        return self._entry(path, res)

    def root_entry(self) -> Entry:
        layer, real = self._dirs["/"][0]
        node = self._probe(real, self.stack.xattr_ns) or Node(real, None)
        status = S.MERGED if self.stack.upper is not None and len(self._dirs["/"]) > 1 else S.LOWER
        return Entry("/", node.kind, node.mode, node.size, None, layer, status, real, self._dirs["/"])

    def versions(self, path: str) -> list[LayerVersion]:
        """Every layer's version of ``path`` and its fate (visible, merged, shadowed, whited out, ...)."""
        path = normpath(path)
        if path == "/":
            out: list[LayerVersion] = []
            for layer, real in self._dirs["/"]:
                node = self._probe(real, self.stack.xattr_ns)
                if node is not None:
                    out.append(LayerVersion(layer, real, node, S.VISIBLE if not out else S.F_MERGED))
            return out
        parent, name = posixpath.split(path)
        try:
            psources = self.dir_sources(parent)
        except StackError:
            return self._versions_under_hidden_parent(path)
        res = self._resolve(psources, name, self._probe_direct, want_versions=True)
        out = res.versions or []
        # Layers whose copy of the parent does not merge in (an opaque dir above it, a whiteout, a
        # non-dir): lookup never reaches their copy of ``path``, but the details still show it.
        taking_part = {id(layer) for layer, _ in psources}
        extra = []
        for layer in self.stack.layers:
            if id(layer) in taking_part:
                continue
            real = layer.real(path)
            node = self._probe(real, self.stack.xattr_ns)
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
            node = self._probe(real, self.stack.xattr_ns)
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
                top = cached if cached is not None else self._scan(path, self.dir_sources(path), False, eager)[0]
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
                        sub, _ = self._scan(e.path, e.sources, False, eager)
                        self._remember(sub, e.path)
                else:
                    sub = listings.get(e.path) or self._scan(e.path, e.sources, False, eager)[0]
                stack.append(iter(sub))

    def walk_items(self, path: str = "/", with_hidden: bool = False) -> Iterator[tuple[str, Entry | Hidden, int]]:
        """Pre-order (path, item, depth) over the tree, names sorted; with hidden things of each dir if asked.

        A dir that cannot be listed is recorded in :attr:`errors` and skipped.
        """
        stack: list[tuple[str, int, Iterator[Entry | Hidden]]] = [
            (normpath(path), 0, iter(self._items(path, with_hidden)))
        ]
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
            if not with_hidden:
                return list(self.list_dir(path))
            entries, hidden = self.list_all(path)
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
        fs = self._fs_of(real) if self._fs else None
        if fs is None:
            return read_content(real, cap)
        node = fs.probe(real)
        if node is None:
            return Content("error", message="No such file or directory")
        if node.kind != "file":
            return Content("none", size=node.size, message=f"a {node.kind}: not opened")
        try:
            data = fs.read(real, cap + 1)
        except OSError as e:
            return Content("error", size=node.size, message=e.strerror or str(e))
        return content_of(data, node.size, cap)

    def in_layer_fs(self, real: str) -> bool:
        """Whether ``real`` is read through a LayerFS (a member of an image archive), not from a dir on disk."""
        return bool(self._fs) and self._fs_of(real) is not None

    # ---------------------------------------------------------------- internals
    def _fs_of(self, path: str) -> LayerFS | None:
        for root, fs in self._fs.items():
            if path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/"):
                return fs
        return None

    def _fs_probe(self, path: str, ns: str = "trusted", hint_kind: str | None = None) -> Node | None:
        fs = self._fs_of(path)
        return probe(path, ns, hint_kind) if fs is None else fs.probe(path, ns, hint_kind)

    def _fs_lexists(self, path: str) -> bool:
        fs = self._fs_of(path)
        return os.path.lexists(path) if fs is None else fs.lexists(path)

    def _read_dir(self, real: str) -> _DirListing | None:
        names: dict[str, str | None] = {}
        wh: set[str] = set()
        opaque = False
        fs = self._fs_of(real) if self._fs else None
        if fs is not None:
            try:
                got = fs.listdir(real)
            except OSError as e:
                self.errors[real] = e.strerror or str(e)
                return None
            if got is None:
                return None
            for name, kind in got.items():
                if self.oci and name.startswith(WH_PREFIX):
                    if name in (WH_OPAQUE, WH_FUSE_OPAQUE):
                        opaque = True
                    else:
                        wh.add(name[len(WH_PREFIX) :])
                    continue
                names[name] = kind
            return _DirListing(names, wh, opaque)
        try:
            with os.scandir(real) as it:
                for de in it:
                    name = de.name
                    if self.oci and name.startswith(WH_PREFIX):
                        if name in (WH_OPAQUE, WH_FUSE_OPAQUE):
                            opaque = True
                        else:
                            wh.add(name[len(WH_PREFIX) :])
                        continue
                    names[name] = _dtype_kind(de)
        except FileNotFoundError:
            return None
        except NotADirectoryError:
            return None
        except OSError as e:
            self.errors[real] = e.strerror or str(e)
            return None
        if self.errors:
            self.errors.pop(real, None)  # readable again
        return _DirListing(names, wh, opaque)

    def _probe_direct(self, layer: Layer, parent: str, name: str) -> Node | None:
        """Probe one path with no readdir at hand (single lookups and redirects)."""
        node = self._probe(posixpath.join(parent, name), self.stack.xattr_ns)
        if self.oci:
            wh = self._lexists(posixpath.join(parent, WH_PREFIX + name))
            if node is None:
                if wh:
                    node = Node(posixpath.join(parent, WH_PREFIX + name), None)
                    node.kind = "file"
                    node.whiteout = "oci"
                return node
            self._oci_adjust(node, wh)
        return node

    def _oci_adjust(self, node: Node, whited_in_own_layer: bool) -> None:
        if node.is_dir and (
            whited_in_own_layer
            or self._lexists(posixpath.join(node.path, WH_OPAQUE))
            or self._lexists(posixpath.join(node.path, WH_FUSE_OPAQUE))
        ):
            node.opaque = True

    def _scan(
        self, path: str, sources: tuple[Source, ...], want_hidden: bool, eager: bool = False
    ) -> tuple[list[Entry], list[Hidden]]:
        """The merged listing of dir ``path`` (whose per-layer dirs are ``sources``), and what it hides if asked.

        Plain entries are lazy (see :class:`Entry`) unless ``eager``; the general scan makes none.
        """
        if want_hidden or self.oci or self._fs:
            return self._scan_general(path, sources, want_hidden)
        if eager:
            return self._scan_eager(path, sources), []
        return self._scan_lazy(path, sources), []

    def _read_sources(self, sources: tuple[Source, ...], types: bool = True) -> list[dict[str, int] | None]:
        """Each source dir's names and d_types (:func:`dirscan.read_dirs`), None where it cannot be read."""
        reals = [real for _, real in sources]
        got = dirscan.read_dirs(reals, types)
        return [self._layer_listing(real, listing) for real, listing in zip(reals, got, strict=True)]

    def _layer_listing(self, real: str, got: dict[str, int] | OSError) -> dict[str, int] | None:
        """A layer dir's listing as read, or the error reading it gave: None if the dir is gone, or
        unreadable (then recorded in :attr:`errors` until it can be read again)."""
        if isinstance(got, OSError):
            if not isinstance(got, FileNotFoundError | NotADirectoryError):
                self.errors[real] = got.strerror or str(got)
            return None
        if self.errors:
            self.errors.pop(real, None)  # readable again
        return got

    def _scan_eager(self, path: str, sources: tuple[Source, ...]) -> list[Entry]:
        """:meth:`_scan_lazy` for a caller that reads every entry's mode, size and target (no lazy entries).

        Each name costs one ``lstat`` in its topmost layer, plus ``listxattr`` for a regular file
        (overlay markers) and ``readlink`` for a symlink (:func:`dirscan.stat_files`). Plain files,
        symlinks and special files (the bulk of any tree) become entries right here; dirs, markers and
        anything odd (an entry that vanished, an error) go through the general lookup :meth:`_resolve`.
        """
        names = self._read_sources(sources, types=False)  # (stat_files reads each name's type)
        prefix = "/" if path == "/" else path + "/"
        heads = [real + "/" for _, real in sources]
        marker_bytes = _marker_xattr_bytes(self.stack.xattr_ns)
        ns = self.stack.xattr_ns
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
        error) go through the general lookup :meth:`_resolve`.
        """
        names = self._read_sources(sources)
        prefix = "/" if path == "/" else path + "/"
        heads = [real + "/" for _, real in sources]
        marker_bytes = _marker_xattr_bytes(self.stack.xattr_ns)
        ns = self.stack.xattr_ns
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
        return self._entry(prefix + name, self._resolve(sources, name, get, want_versions=False, present=present))

    def _over_what(
        self, name: str, i: int, names: Sequence[Container[str] | None], heads: list[str], ns: str
    ) -> str | None:
        """The status of an upper plain entry ``name`` (in source ``i``) by the first copy below it: new (none,
        or a whiteout), copied-up (a non-dir), replaced (a dir); None if that copy vanished meanwhile."""
        for j in range(i + 1, len(heads)):
            d = names[j]
            if d is not None and name in d:
                below = self._probe(heads[j] + name, ns)
                if below is None:
                    return None
                if below.whiteout:
                    return S.NEW
                return S.REPLACED if below.is_dir else S.COPIED_UP
        return S.NEW

    def _lister(
        self, sources: tuple[Source, ...], names: Sequence[Container[str] | None]
    ) -> Callable[[Layer, str, str], Node | None]:
        """A probe for :meth:`_resolve` that knows which names each source dir holds."""
        listed = {real: d for (_, real), d in zip(sources, names, strict=True) if d is not None}
        ns = self.stack.xattr_ns

        def get(layer: Layer, parent: str, name: str) -> Node | None:
            d = listed.get(parent)
            if d is None:
                return self._probe_direct(layer, parent, name)
            return self._probe(parent + "/" + name, ns) if name in d else None

        return get

    def _scan_general(
        self, path: str, sources: tuple[Source, ...], want_hidden: bool
    ) -> tuple[list[Entry], list[Hidden]]:
        listings: dict[str, _DirListing] = {}
        present: dict[str, list[Source]] = {}  # name -> the sources whose dir holds it, top-down
        for source in sources:
            lst = self._read_dir(source[1])
            if lst is None:
                continue
            listings[source[1]] = lst
            for name in lst.names:
                present.setdefault(name, []).append(source)
            for name in lst.wh:
                if name not in lst.names:
                    present.setdefault(name, []).append(source)
        ns = self.stack.xattr_ns
        oci = self.oci

        def get(layer: Layer, parent: str, name: str) -> Node | None:
            lst = listings.get(parent)
            if lst is None:
                return self._probe_direct(layer, parent, name)
            kind = lst.names.get(name, "")
            if kind == "":
                if oci and name in lst.wh:
                    node = Node(posixpath.join(parent, WH_PREFIX + name), None)
                    node.kind = "file"
                    node.whiteout = "oci"
                    return node
                return None
            found = self._probe(parent + "/" + name, ns, kind)
            if found is not None and oci:
                self._oci_adjust(found, name in lst.wh)
            return found

        entries: list[Entry] = []
        hidden: list[Hidden] = []
        prefix = "" if path == "/" else path
        for name in sorted(present):
            res = self._resolve(sources, name, get, want_versions=want_hidden, present=present[name])
            entry = self._entry(prefix + "/" + name, res)
            if entry is not None:
                entries.append(entry)
            if want_hidden and res.versions:
                for v in res.versions:
                    if v.fate in S.HIDDEN_FATES:
                        hidden.append(Hidden(name, v.layer, v.node.path, S.HIDDEN_STATUS[v.fate], v.by))
        return entries, hidden

    def _entry(self, path: str, res: _Resolution) -> Entry | None:
        top, layer = res.top, res.top_layer
        if top is None or layer is None:
            return None
        extra: dict[str, str] | None = None
        if res.redirect:
            extra = {"redirect": res.redirect}
        if res.data is not None:
            extra = extra or {}
            extra["data"] = res.data[1].path
            extra["data_layer"] = res.data[0].name
        problem = res.error or res.data_error
        if problem:
            extra = extra or {}
            extra["error"] = problem
        status = classify(top, layer, res.below, len(res.sources or ()), res.error, res.redirect is not None)
        return Entry(
            path,
            top.kind,
            top.mode,
            top.size,
            top.target,
            layer,
            status,
            res.top_dir if res.top_dir is not None else posixpath.dirname(top.path),
            tuple(res.sources) if res.sources is not None else None,
            extra,
        )

    def _resolve(
        self,
        psources: tuple[Source, ...],
        name: str,
        get: Callable[[Layer, str, str], Node | None],
        want_versions: bool,
        present: list[Source] | None = None,
    ) -> _Resolution:
        """Look ``name`` up under a merged dir whose per-layer dirs are ``psources``.

        ``present``, from a readdir of every source, lists the sources that hold ``name``: only
        those are probed until a redirect changes the name looked up.
        """
        res = _Resolution()
        versions: list[LayerVersion] = []
        seq: list[tuple[Layer, str | None]] = list(psources if present is None else present)
        lookup_name = name
        abs_path: str | None = None
        last_abs = False  # the last redirect followed was absolute (data-only layers are looked up then)
        stop_fate: str | None = None
        stopper: Layer | None = None
        need_data = False
        below_done = True  # an upper non-dir keeps looking for what it sits on (copied-up vs new)
        i = 0

        def follow(value: str, layer: Layer) -> None:
            """The kernel reads this redirect: later layers are looked up where it points (or it refuses)."""
            nonlocal seq, i, lookup_name, abs_path, last_abs
            problem = redirect_problem(value)
            if problem is not None:
                raise _Refused(problem)
            if not self.follow_redirects:
                raise _Refused(_REFUSED)
            seq, i, lookup_name, abs_path = self._redirect(value, layer, seq, i, lookup_name, abs_path, psources)
            last_abs = value.startswith("/")
            if lookup_name in (".", "..") and abs_path is None and i < len(seq):
                raise _Refused(dot_component(value))  # the next layer is asked for "." or ".."

        try:
            while i < len(seq):
                layer, pdir = seq[i]
                i += 1
                if stop_fate is not None and not want_versions and below_done:
                    break
                if abs_path is not None:
                    node, walk_stop = self._walk_abs(layer, abs_path, get)
                    path = layer.real(abs_path)
                else:
                    assert pdir is not None
                    path = pdir + "/" + lookup_name
                    node, walk_stop = get(layer, pdir, lookup_name), False
                if node is None:
                    if walk_stop and stop_fate is None:
                        stop_fate, stopper = S.F_OPAQUE_HIDDEN, layer
                    continue
                if stop_fate is not None:
                    if not below_done:
                        below_done = True
                        if not node.whiteout:
                            res.below = node
                    if want_versions:
                        versions.append(LayerVersion(layer, path, node, stop_fate, stopper))
                    continue
                if node.whiteout:
                    if want_versions:
                        versions.append(LayerVersion(layer, path, node, S.F_WHITEOUT))
                    stop_fate, stopper = S.F_WHITED_OUT, layer
                    if need_data:
                        res.error = "metacopy file has no data below it (whited out)"
                        need_data = False
                    continue
                if res.top is None:
                    res.top, res.top_layer = node, layer
                    res.top_dir = pdir if abs_path is None else None
                    if want_versions:
                        versions.append(LayerVersion(layer, path, node, S.VISIBLE))
                    if node.is_dir:
                        res.sources = [(layer, path)]
                        if node.opaque:
                            stop_fate, stopper = S.F_OPAQUE_HIDDEN, layer
                        elif node.redirect is not None and self._redirect_read(layer):
                            res.redirect = node.redirect
                            follow(node.redirect, layer)
                        elif walk_stop:
                            stop_fate, stopper = S.F_OPAQUE_HIDDEN, layer
                    elif node.metacopy:
                        if not self.metacopy_on:
                            res.error = _NO_METACOPY
                            break
                        need_data = True
                        if node.redirect is not None:
                            res.redirect = node.redirect
                            follow(node.redirect, layer)
                    else:
                        stop_fate, stopper = S.F_SHADOWED, layer
                        below_done = layer.role != "upper"
                    continue
                if res.below is None:
                    res.below = node
                if res.top.is_dir:
                    if node.is_dir:
                        assert res.sources is not None
                        res.sources.append((layer, path))
                        if want_versions:
                            versions.append(LayerVersion(layer, path, node, S.F_MERGED))
                        if node.opaque or walk_stop:
                            stop_fate, stopper = S.F_OPAQUE_HIDDEN, layer
                        elif node.redirect is not None and self._redirect_read(layer):
                            follow(node.redirect, layer)
                    else:
                        if want_versions:
                            versions.append(LayerVersion(layer, path, node, S.F_SHADOWED, res.top_layer))
                        stop_fate, stopper = S.F_SHADOWED, res.top_layer
                    continue
                if need_data:
                    if node.kind == "file":
                        res.data = (layer, node)
                        if want_versions:
                            versions.append(LayerVersion(layer, path, node, S.F_DATA))
                        if node.metacopy:
                            if node.redirect is not None:
                                follow(node.redirect, layer)
                            continue
                        need_data = False
                        stop_fate, stopper = S.F_SHADOWED, res.top_layer
                    else:
                        res.error = f"metacopy file has no data below it (a {node.kind} is there)"
                        need_data = False
                        if want_versions:
                            versions.append(LayerVersion(layer, path, node, S.F_SHADOWED, res.top_layer))
                        stop_fate, stopper = S.F_SHADOWED, res.top_layer
                    continue
                if want_versions:
                    fate, by = stop_fate or S.F_SHADOWED, stopper or res.top_layer
                    versions.append(LayerVersion(layer, path, node, fate, by))
        except _Refused as refusal:
            res.error = str(refusal)
            need_data = False
        # The last metacopy copy found: in a normal lower (the kernel has counted a lower entry), or the upper's own.
        in_lower = res.data is not None or (res.top_layer is not None and res.top_layer.role == "lower")
        if need_data and in_lower and last_abs and self.stack.data_layers:
            # The kernel looks data-only layers up lazily, from a metacopy copy in a normal lower whose (last)
            # redirect is absolute: the entry stands; only opening it fails when no data layer has the file.
            assert abs_path is not None
            for layer in self.stack.data_layers:
                path = layer.real(abs_path)
                node = self._probe_direct(layer, *posixpath.split(path))
                if node is not None and node.kind == "file":
                    res.data = (layer, node)
                    if want_versions:
                        versions.append(LayerVersion(layer, path, node, S.F_DATA))
                    break
            else:
                res.data_error = f"no data-only layer has {abs_path}: opening the file fails (ENOENT)"
            need_data = False
        if need_data and (res.data is None or res.data[1].metacopy):
            res.error = "metacopy file has no data below it"
        if want_versions:
            res.versions = versions
        return res

    def _redirect_read(self, layer: Layer) -> bool:
        """Whether the kernel acts on a dir's redirect: in the upper and in every normal lower but the last."""
        return layer.role == "upper" or (layer.role == "lower" and layer.index < len(self.stack.lowers) - 1)

    def _redirect(
        self,
        value: str,
        layer: Layer,
        seq: list[tuple[Layer, str | None]],
        i: int,
        lookup_name: str,
        abs_path: str | None,
        psources: tuple[Source, ...],
    ) -> tuple[list[tuple[Layer, str | None]], int, str, str | None]:
        """Follow a redirect: later layers are looked up at another name or absolute path."""
        if value.startswith("/"):
            below = self.stack.lowers if layer.role == "upper" else self.stack.lowers[layer.index + 1 :]
            # As the kernel walks it, not normalised: a ".." in it fails the lookup where it is reached.
            return [(lower, None) for lower in below], 0, lookup_name, value
        if "/" in value:
            return seq, i, lookup_name, abs_path  # the kernel rejects such a relative redirect
        if abs_path is not None:
            return seq, i, lookup_name, join(posixpath.dirname(abs_path), value)
        below_here = [
            src for src in psources if src[0].role != "upper" and (layer.role == "upper" or src[0].index > layer.index)
        ]
        return list(below_here), 0, value, None

    def _walk_abs(
        self, layer: Layer, abs_path: str, get: Callable[[Layer, str, str], Node | None]
    ) -> tuple[Node | None, bool]:
        """Look an absolute redirect path up in one layer, component by component.

        Returns the node (or None) and whether an opaque directory on the way
        stops lookup in the layers below.
        """
        parts = [p for p in abs_path.split("/") if p]
        real = layer.path
        stop = False
        for k, part in enumerate(parts):
            if part in (".", ".."):  # reached: every component before it is a dir in this layer
                raise _Refused(dot_component(abs_path))
            parent, real = real, posixpath.join(real, part)
            last = k == len(parts) - 1
            node = get(layer, parent, part) if last else self._probe_direct(layer, parent, part)
            if node is None or node.whiteout:
                return (node if last else None), (stop or (node is not None and node.whiteout is not None))
            if last:
                return node, stop
            if not node.is_dir:
                return None, True
            if node.opaque:
                stop = True
        return None, stop


_PATH = attrgetter("path")


@functools.cache
def _marker_xattr_bytes(ns: str) -> tuple[bytes, ...]:
    """The xattr names that make a regular file more than plain data (whiteout, metacopy, redirect), as
    :func:`dirscan.marked_files` and :func:`dirscan.stat_files` take them."""
    return tuple(os.fsencode(f"{ns}.overlay.{key}") for key in ("metacopy", "opaque", "redirect", "whiteout"))


def classify(
    top: Node, layer: Layer, below: Node | None, nsources: int, error: str | None, redirected: bool = False
) -> str:
    """The status of a merged entry from its topmost copy and what lies under it.

    ``redirected``: the kernel followed a redirect of the top copy (a dir's, or a metacopy file's; a
    plain file's stray redirect xattr, or one in the bottom lower, is never read). A metacopy file is
    ``metacopy`` even when renamed (its redirect is in ``Entry.redirect``).
    """
    if error:
        return S.ERROR
    if top.is_dir and top.opaque:
        return S.OPAQUE
    if top.metacopy:
        return S.METACOPY
    if redirected:
        return S.REDIRECT
    if layer.role != "upper":
        return S.LOWER
    if top.is_dir:
        if nsources > 1:
            return S.MERGED
        return S.REPLACED if below is not None else S.NEW
    if below is None:
        return S.NEW
    if below.is_dir:
        return S.REPLACED
    return S.COPIED_UP


def normpath(path: str) -> str:
    """Merged paths are absolute, ``/``-separated, without a trailing slash ("/" for the root)."""
    if not path or path == "/":
        return "/"
    p = posixpath.normpath("/" + path.lstrip("/"))
    return "/" if p == "//" else p


def join(parent: str, name: str) -> str:
    return "/" + name if parent == "/" else parent + "/" + name
