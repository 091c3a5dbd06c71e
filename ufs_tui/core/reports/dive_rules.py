"""dive's numbers, computed as dive (0.13) computes them: efficiency, wasted bytes, user-wasted percent and
the inefficient paths, from each layer's own tar headers.

What dive does (``dive/image/docker/image_archive.go``, ``dive/filetree/*.go``, ``dive/image/analysis.go``),
and so what this module does:

* **a tree per layer.** Every header of a layer tar is one entry: its name through Go's ``path.Clean``
  (``.`` is skipped), its size from the header (0 for dirs, symlinks, hard links, whiteouts), and "is a dir"
  from its type or mode. Adding ``a/b/c`` creates ``a`` and ``a/b`` when missing, as entries with no size that
  are *not* dirs. A name starting ``.wh..wh..`` (the opaque marker ``.wh..wh..opq``) is dropped: dive ignores
  opaque dirs. An entry given twice keeps the last header's data. The layer's size is the sum of every
  header's size.
* **the leaves count.** In each layer, in order, dive visits the tree's *leaves* (entries with nothing under
  them in that layer: files, links, whiteouts, empty dirs), children in byte order before their parent. A
  leaf's path (a whiteout ``.wh.NAME`` counts as ``NAME``) collects, across layers, how many leaves it was
  (``count``), the sum of their sizes (``size``) and the smallest of them.
* **a whiteout's size** is what it deletes: the size of everything under the dir it names in the layers below,
  stacked as dive stacks them (later layers' entries replace earlier ones, whiteouts remove, and an implicit
  parent of a later layer makes the dir a non-dir again); a deleted file, a deleted implicit dir: 0. A
  whiteout of a path the layers below do not have stops dive's walk of *that layer* there: the layer's later
  leaves are not counted, and the path counts -1 bytes in the efficiency (dive's ``minDiscoveredSize``).
* **the numbers.** efficiency = sum of the smallest sizes / sum of all sizes over every path (1 when there are
  no bytes); the inefficient paths are those counted twice or more, sorted as Go's ``sort.Sort`` leaves them
  by size, largest first; wasted bytes = the sum of their sizes, the surviving copy included (dive#684: a file
  written in two layers wastes both copies' bytes); user bytes = every layer's size but the first;
  user-wasted percent = wasted / user bytes (NaN for 0/0, +Inf when user bytes are 0).
* **the layers** are the manifest's list, in order, a layer listed twice counted twice. A layer that is a
  symlink inside a ``docker save`` archive (how it stores a layer that repeats) is read by dive as an empty
  tar: so is it here.

For a stack of layer dirs (no tar headers) each dir is read as the tar ``docker save`` would write for it:
sizes from ``lstat`` for regular files (a hard link's second name 0), 0 for the rest; ``.wh.NAME`` files and
0/0 character devices are whiteouts; opaque dirs are ignored (as dive ignores ``.wh..wh..opq``).
"""

from __future__ import annotations

import math
import os
import stat
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import IO

from ..model.errors import StackError
from ..model.stack import Layer, Stack
from ..sources import SCHEMES
from ..sources import archive as _archive
from .ci_rules import CiNumbers, InefficientPath
from .go_compat import path_clean, sort_by

RULES = "dive"
WHITEOUT = ".wh."
OPAQUE_PREFIX = ".wh..wh.."

#: One tar header as dive reads it: (name, size, is a dir).
Entry = tuple[str, int, bool]
_SPECIAL_PARTS = frozenset(("", ".", ".."))


class _Node:
    """An entry of dive's file tree: its children (None: a leaf) and its header's size and dir flag."""

    __slots__ = ("children", "size", "is_dir")

    def __init__(self, size: int = 0, is_dir: bool = False) -> None:
        self.children: dict[str, _Node] | None = None
        self.size = size
        self.is_dir = is_dir


# ---------------------------------------------------------------------------------------------- trees
def layer_tree(entries: Iterable[Entry]) -> tuple[_Node, int]:
    """A layer's tree as dive builds it from its headers, and the layer's size (the sum of header sizes)."""
    root = _Node()
    total = 0
    for name, size, is_dir in entries:
        parts = name.split("/")
        if not _SPECIAL_PARTS.isdisjoint(parts):
            cleaned = path_clean(name)
            if cleaned == ".":
                continue
            parts = cleaned.strip("/").split("/")
        total += size
        _add_path(root, parts, size, is_dir)
    return root, total


def _add_path(root: _Node, parts: list[str], size: int, is_dir: bool) -> None:
    """dive's ``AddPath``: create what is missing (implicit, not dirs), the last part gets the data; stop at an
    opaque marker."""
    node = root
    last = len(parts) - 1
    for i, part in enumerate(parts):
        if part == "":
            continue
        kids = node.children
        child = kids.get(part) if kids is not None else None
        if child is None:
            if part.startswith(OPAQUE_PREFIX):
                return
            child = _Node()
            if kids is None:
                node.children = kids = {}
            kids[part] = child
        node = child
        if i == last:
            node.size, node.is_dir = size, is_dir


def _copy(node: _Node) -> _Node:
    twin = _Node(node.size, node.is_dir)
    todo = [(node, twin)]
    while todo:
        src, dst = todo.pop()
        if src.children is not None:
            dst.children = {}
            for name, child in src.children.items():
                dst.children[name] = copy = _Node(child.size, child.is_dir)
                todo.append((child, copy))
    return twin


def _names(node: _Node) -> list[str]:
    """A dir's names in Go's order (bytes; a name that is not UTF-8 sorts by its raw bytes)."""
    assert node.children is not None
    names = sorted(node.children)
    if not all(n.isascii() for n in names):
        names.sort(key=lambda n: n.encode("utf-8", "surrogateescape"))
    return names


def _post_order(root: _Node) -> list[tuple[str, str, _Node]]:
    """Every entry under ``root`` as (parent path, name, node): children in byte order, before their parent
    (dive's ``VisitDepthChildFirst``). Paths are "" for the root, "/a/b" below it."""
    out: list[tuple[str, str, _Node]] = []
    if not root.children:
        return out
    frames: list[tuple[str, str, str, _Node, Iterator[str]]] = [("", "", "", root, iter(_names(root)))]
    while frames:
        parent, name, here, node, names = frames[-1]
        child_name = next(names, None)
        if child_name is None:
            frames.pop()
            if frames:  # the root itself is never visited
                out.append((parent, name, node))
            continue
        assert node.children is not None
        child = node.children[child_name]
        if child.children:
            frames.append((here, child_name, f"{here}/{child_name}", child, iter(_names(child))))
        else:
            out.append((here, child_name, child))
    return out


def _own_path(parent: str, name: str) -> str:
    """dive's ``Path()``: the node's own name loses its ``.wh.`` prefix."""
    return f"{parent}/{name.removeprefix(WHITEOUT)}"


def _get(root: _Node, path: str) -> tuple[_Node | None, _Node | None, str]:
    """dive's ``GetNode`` (no cleaning; empty parts skipped): (node, its parent, its name); node None if
    missing."""
    node, parent, last = root, None, ""
    for part in path.split("/"):
        if part == "":
            continue
        kids = node.children
        child = kids.get(part) if kids is not None else None
        if child is None:
            return None, None, ""
        node, parent, last = child, node, part
    return node, parent, last


def _stack(lower: _Node, upper: list[tuple[str, str, _Node]]) -> None:
    """dive's ``FileTree.Stack``: every entry of the upper layer, in its visiting order, is added (whiteouts
    remove what they name instead)."""
    for parent, name, node in upper:
        path = _own_path(parent, name)
        if name.startswith(WHITEOUT):
            found, above, last = _get(lower, path)
            if found is not None and above is not None and above.children is not None:
                del above.children[last]
            continue
        parts = path.split("/")[1:]
        if not _SPECIAL_PARTS.isdisjoint(parts):
            cleaned = path_clean(path)
            if cleaned == ".":
                continue
            parts = cleaned.strip("/").split("/")
        _add_path(lower, parts, node.size, node.is_dir)


def _tree_size(node: _Node) -> int:
    total = 0
    todo = [node]
    while todo:
        n = todo.pop()
        total += n.size
        if n.children:
            todo.extend(n.children.values())
    return total


# --------------------------------------------------------------------------------------------- counting
@dataclass
class _Tally:
    """dive's ``EfficiencyData`` for every path: [size, smallest size (-1: none yet), count]."""

    paths: dict[str, list[int]] = field(default_factory=dict)
    inefficient: list[str] = field(default_factory=list)  # in the order each reached a count of 2

    def count_layer(self, below: _Node, visit: list[tuple[str, str, _Node]]) -> None:
        """dive's efficiency visitor over one layer's leaves; a whiteout of a path missing below stops it."""
        for parent, name, node in visit:
            if node.children:
                continue
            path = _own_path(parent, name)
            data = self.paths.get(path)
            if data is None:
                data = self.paths[path] = [0, -1, 0]
            if name.startswith(WHITEOUT):
                found = _get(below, path)[0]
                if found is None:
                    return
                size = _tree_size(found) if found.is_dir else 0
            else:
                size = node.size
            data[0] += size
            if data[1] < 0 or size < data[1]:
                data[1] = size
            data[2] += 1
            if data[2] == 2:
                self.inefficient.append(path)

    def numbers(self, layer_sizes: list[int], notes: list[str]) -> CiNumbers:
        smallest = sum(d[1] for d in self.paths.values())
        total = sum(d[0] for d in self.paths.values())
        efficiency = 1.0 if total == 0 else float(smallest) / float(total)
        order = list(self.inefficient)
        sizes = self.paths
        sort_by(order, lambda a, b: sizes[a][0] < sizes[b][0])
        order.reverse()
        wasted = sum(sizes[p][0] for p in order)
        user = sum(layer_sizes[1:])
        percent = _go_divide(wasted, user)
        return CiNumbers(
            rules=RULES,
            efficiency=efficiency,
            wasted_bytes=wasted,
            user_wasted_percent=percent,
            size_bytes=sum(layer_sizes),
            user_size_bytes=user,
            inefficient=tuple(InefficientPath(p, sizes[p][2], sizes[p][0]) for p in order),
            notes=tuple(notes),
        )


def _go_divide(a: int, b: int) -> float:
    """``float64(a) / float64(b)`` as Go computes it: 0/0 is NaN, more over 0 is +Inf (no exception)."""
    if b == 0:
        return math.nan if a == 0 else math.inf
    return float(a) / float(b)


def count_layers(layers: Iterable[list[Entry]], notes: Iterable[str] = ()) -> CiNumbers:
    """dive's numbers for layers given bottom first, each as its headers in tar order."""
    tally = _Tally()
    below: _Node | None = None
    sizes: list[int] = []
    for entries in layers:
        tree, size = layer_tree(entries)
        sizes.append(size)
        if below is None:
            below = _copy(tree)  # dive stacks layer 0 onto a copy of itself
        visit = _post_order(tree)
        tally.count_layer(below, visit)
        _stack(below, visit)
    return tally.numbers(sizes, list(notes))


# ---------------------------------------------------------------------------------------- layer readers
class _Headers(_archive.TarLayerFS):
    """A layer tar's headers in order, read by the archive module's reader (fast path, tarfile for the rest,
    damage found the same way), without building its index."""

    def __init__(self, root: str, blob: _archive.Blob) -> None:
        self.entries: list[Entry] = []
        super().__init__(root, blob)

    def _index_with(self, reader: Callable[[IO[bytes]], Iterator[tarfile.TarInfo]]) -> None:
        self.entries = []  # the fast reader gave up: tarfile starts again
        super()._index_with(reader)

    def _add(self, rel: str, ti: tarfile.TarInfo) -> None:
        self.entries.append((ti.name, ti.size, _is_dir(ti)))


def _is_dir(ti: tarfile.TarInfo) -> bool:
    """Go's ``FileInfo().IsDir()`` of a header: a dir type, or dir bits in the mode field."""
    return ti.type == tarfile.DIRTYPE or (ti.mode & 0xFFFFFFFF) & ~0o7777 == 0o40000


def tar_entries(root: str, blob: _archive.Blob) -> list[Entry]:
    """A layer blob's headers as dive reads them; raises ``DamagedLayer`` as the archive module does."""
    return _Headers(root, blob).entries


def dir_entries(top: str) -> list[Entry]:
    """A layer dir as the headers of the tar ``docker save`` would write for it (see the module doc): names
    in the order of Go's ``filepath.Walk`` (a dir, then what it holds, in byte order), so the first name of a
    hard-linked file is the one that carries its size."""
    out: list[Entry] = []
    seen: set[tuple[int, int]] = set()
    frames = [("", iter(_listing(top)))]
    while frames:
        rel, names = frames[-1]
        entry = next(names, None)
        if entry is None:
            frames.pop()
            continue
        name = f"{rel}/{entry.name}" if rel else entry.name
        try:
            st = entry.stat(follow_symlinks=False)
        except OSError as e:
            raise StackError(entry.path, f"cannot be read: {e.strerror or e}") from None
        out.append(_dir_entry(rel, entry.name, name, st, seen))
        if stat.S_ISDIR(st.st_mode):
            frames.append((name, iter(_listing(entry.path))))
    return out


def _listing(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as it:
            return sorted(it, key=lambda e: os.fsencode(e.name))
    except OSError as e:
        raise StackError(path, f"cannot read the layer dir: {e.strerror or e}") from None


def _dir_entry(rel: str, base: str, name: str, st: os.stat_result, seen: set[tuple[int, int]]) -> Entry:
    mode = st.st_mode
    if stat.S_ISDIR(mode):
        return name, 0, True
    if stat.S_ISCHR(mode) and st.st_rdev == 0:  # an overlay whiteout: a .wh. entry in a tar
        return (f"{rel}/{WHITEOUT}{base}" if rel else f"{WHITEOUT}{base}"), 0, False
    if stat.S_ISREG(mode):
        if st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            if key in seen:
                return name, 0, False  # a hard link to a name already written
            seen.add(key)
        return name, st.st_size, False
    return name, 0, False


# ------------------------------------------------------------------------------------------------ sources
@dataclass(frozen=True)
class _ArchiveLayer:
    name: str  # the member (or blob) the manifest names
    blob: _archive.Blob
    empty: bool  # a symlink inside the archive: dive reads it as an empty tar


def archive_source(source: str | None) -> str | None:
    """The image archive (file or OCI layout dir) a SOURCE names, as ``open_source`` tells them apart; None
    for every other kind of source."""
    if not source:
        return None
    scheme, sep, rest = source.partition(":")
    if sep and scheme in SCHEMES:
        return rest if scheme == "archive" and rest else None
    if os.path.isdir(source):
        marks = ("oci-layout", "manifest.json")
        return source if any(os.path.exists(os.path.join(source, m)) for m in marks) else None
    return source if os.path.lexists(source) else None


def archive_numbers(path: str, image: str | None = None) -> CiNumbers:
    """dive's numbers for an image archive (``docker save`` tar, OCI archive or layout), read in one pass
    over each layer's headers."""
    container = _archive._Container(path)
    layers, notes = _archive_layers(container, image)
    cache: dict[_archive.Blob, list[Entry]] = {}
    repeats = {la.blob for la in layers if sum(1 for other in layers if other.blob == la.blob) > 1}

    def read(index: int, layer: _ArchiveLayer) -> list[Entry]:
        if layer.empty:
            return []
        if layer.blob in cache:
            return cache[layer.blob]
        try:
            entries = tar_entries(f"{container.path}/{layer.name}", layer.blob)
        except _archive.DamagedLayer as e:
            lower = f"lower:{len(layers) - 1 - index}"
            raise StackError(container.path, f"layer {layer.name} ({lower}) is damaged: {e.detail}") from None
        if layer.blob in repeats:
            cache[layer.blob] = entries
        return entries

    return count_layers((read(i, la) for i, la in enumerate(layers)), notes)


def _archive_layers(c: _archive._Container, image: str | None) -> tuple[list[_ArchiveLayer], list[str]]:
    """The chosen image's layers, bottom first (as ``open_archive`` chooses them), and what dive reads
    differently in this archive."""
    notes: list[str] = []
    if c.has("manifest.json"):
        choices = _archive._docker_images(c)
    elif c.has("index.json"):
        choices = _archive._oci_images(c)
        if not c.is_dir:
            notes.append(
                "the archive has no manifest.json: dive reads such an OCI archive's layers in a random order "
                "(and every layer blob it holds); these numbers follow the manifest's order"
            )
    else:
        raise StackError(c.path, "not an image archive: no manifest.json (docker save) or index.json (OCI)")
    names, _config = _archive._choose(c.path, choices, image).load()
    if not names:
        raise StackError(c.path, "image has no layers")
    links = _linked_members(c)
    out = []
    for name in names:
        kind = links.get(os.path.normpath("/" + name).lstrip("/"))
        out.append(_ArchiveLayer(name, c.blob(name), kind == "symlink"))
        if kind == "symlink":
            notes.append(f"layer {name} is a symlink inside the archive: dive reads it as an empty layer")
        elif kind == "hard link":
            notes.append(f"layer {name} is a hard link inside the archive: dive cannot read it (it reads files "
                         "and symlinks only); it is read here as the layer it links to")  # fmt: skip
    if c.is_dir:
        notes.append("dive reads archives only (docker-archive); these numbers are what it reads in a tar of it")
    return out, notes


def _linked_members(c: _archive._Container) -> dict[str, str]:
    """The archive's members that are links (to another member): name -> "symlink" or "hard link"."""
    if c.is_dir:
        return {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(c.path, mode="r:") as tf:
            for ti in tf:
                if ti.issym() or ti.islnk():
                    links[os.path.normpath("/" + ti.name).lstrip("/")] = "symlink" if ti.issym() else "hard link"
    except (tarfile.TarError, OSError) as e:
        raise StackError(c.path, f"the archive is damaged: {e}") from None
    return links


def stack_numbers(stack: Stack) -> CiNumbers:
    """dive's numbers for a stack's layers (lowers bottom first, then the upper; data-only layers take no
    part). A layer of an image archive is read from its tar; a layer dir as the tar of it."""
    layers = [*reversed(stack.lowers), *([stack.upper] if stack.upper else [])]
    notes = []
    if any(layer.fs is None for layer in layers):
        notes.append(
            "the layers are directories, not tars: dive's numbers computed from them as from the tars docker "
            "would write (sizes from lstat, .wh. files and 0/0 char devices as whiteouts, opaque dirs ignored)"
        )
    return count_layers((_layer_entries(layer) for layer in layers), notes)


def _layer_entries(layer: Layer) -> list[Entry]:
    if layer.fs is None:
        return dir_entries(layer.path)
    if isinstance(layer.fs, _archive.TarLayerFS):
        return tar_entries(layer.path, layer.fs.blob)
    raise StackError(layer.path, "this kind of layer has no tar headers or dir to read dive's numbers from")
