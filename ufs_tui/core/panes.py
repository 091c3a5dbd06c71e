"""What each explorer pane shows at one directory: the merged view, or one layer's own tree, classified.

The Merged pane lists :meth:`OverlayView.list_dir`. The Upper and Lower panes
list what one layer holds itself (read through a one-layer view, so its own
markers are decoded) and colour each name by its *fate* in the full stack:
visible, merged into a dir above, whited out, hidden by an opaque dir,
shadowed, or the data of a metacopy file. Paths are merged-view paths
("/a/b"); a layer's own tree uses the same coordinates.

No textual here: the UI only turns :class:`Item` into labels.
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass, replace
from typing import Protocol

from .model import status as S
from .model.errors import StackError
from .model.markers import probe
from .model.merge import Entry, OverlayView, join, normpath
from .model.stack import Layer, Stack

# Fates of a layer's version mapped to the status whose glyph and colour show it.
FATE_STATUS = {
    S.F_MERGED: S.MERGED,
    S.F_DATA: S.METACOPY,
    S.F_WHITEOUT: S.WHITEOUT,
    S.F_WHITED_OUT: S.WHITED_OUT,
    S.F_OPAQUE_HIDDEN: S.OPAQUE_HIDDEN,
    S.F_SHADOWED: S.SHADOWED,
    S.F_PARENT_HIDDEN: S.SHADOWED,
}

# A Merged-pane row where the model and the kernel (the real mount) disagree: there should be none
# (:mod:`.kernel_check` marks them).
KERNEL_DIFFERS = "kernel-differs"


@dataclass(frozen=True)
class Item:
    """One row of a pane: a name in a directory, with the status that colours it."""

    name: str
    path: str  # merged-view path of this name
    kind: str  # file, dir, symlink, chardev, blockdev, fifo, socket, unknown
    status: str  # a key of status.STYLES
    real_path: str | None  # the real path this row stands for (None: nothing real)
    note: str = ""  # a few words: "by upper", "from /docs", "deleted by upper"
    target: str | None = None  # symlink target
    leaf: bool = False  # a dir shown without children (a hidden dir in the Merged pane)
    size: int | None = None  # a file's bytes; a dir's total under it (None: not summed yet); else None

    @property
    def expandable(self) -> bool:
        return self.kind == "dir" and not self.leaf

    @property
    def summed(self) -> bool:
        """A dir row that shows the total under it (not one the kernel shows and the model cannot read)."""
        return self.expandable and self.status != KERNEL_DIFFERS


class _Sized(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def size(self) -> int: ...


def file_size(what: _Sized | None) -> int | None:
    """A row's size of a regular file (an entry, a layer's node of it, what the kernel says of it); None for
    anything else."""
    return what.size if what is not None and what.kind == "file" else None


def own_stack(stack: Stack, layer: Layer) -> Stack:
    """A stack of ``layer`` alone, to read what that layer holds itself (markers decoded, nothing merged)."""
    alone = Layer(layer.path, "lower", 1 << 30, layer.label, layer.fs)  # no layer lies below it; read as it is
    return replace(stack, lowers=(alone,), upper=None, work=None, data_layers=())


# ------------------------------------------------------------------ Merged pane
def merged_item(entry: Entry, parent: str) -> Item:
    note = ""
    if entry.extra and "error" in entry.extra:  # why the kernel fails it comes first
        note = entry.extra["error"]
    elif entry.redirect:
        note = f"from {entry.redirect}"
    elif entry.extra and "index" in entry.extra:
        note = "hard link: the inode index's copy"
    elif entry.status == S.LOWER:
        note = entry.layer.name
    return Item(
        entry.name, join(parent, entry.name), entry.kind, entry.status, entry.real_path, note, entry.target,
        size=file_size(entry),
    )  # fmt: skip


def merged_items(
    full: OverlayView, path: str, changes_only: bool = False, below: OverlayView | None = None
) -> list[Item]:
    """The Merged pane at dir ``path``. ``changes_only``: like ``docker diff``, only what the top layer (the
    upper; an image's topmost lower) changes, plus the names it deletes (whited out, or hidden by an opaque
    dir; ``below`` is the view of the layers under it)."""
    path = normpath(path)
    if not changes_only:
        return [merged_item(e, path) for e in full.list_dir(path)]
    changer = full.stack.changer()
    entries, hidden = full.list_all(path)
    # That layer's own doing only: a whiteout or an opaque dir further down is part of the image, not a change.
    items = {e.name: merged_item(e, path) for e in entries if e.layer == changer}
    visible = {e.name for e in entries}
    for h in hidden:
        if h.name in visible or h.name in items or h.status not in (S.WHITED_OUT, S.OPAQUE_HIDDEN):
            continue
        if h.by != changer:
            continue
        items[h.name] = _hidden_item(full, h.name, path, h.path, h.status, h.by)
    top = next((e for e in [full.lookup(path)] if e is not None), None)
    if below is not None and top is not None and top.status == S.OPAQUE:
        try:
            under = below.list_dir(path)
        except StackError:
            under = []
        for e in under:
            if e.name not in visible and e.name not in items:
                items[e.name] = Item(
                    e.name, join(path, e.name), e.kind, S.OPAQUE_HIDDEN, e.real_path, "hidden by opaque dir", leaf=True,
                    size=file_size(e),
                )  # fmt: skip
    return [items[n] for n in sorted(items)]


def _hidden_item(full: OverlayView, name: str, parent: str, real: str, status: str, by: Layer | None) -> Item:
    node = probe(real, full.stack.xattr_ns)
    kind = node.kind if node is not None else "unknown"
    verb = "deleted" if status == S.WHITED_OUT else "hidden"
    note = f"{verb} by {by.name}" if by is not None else verb
    # A hidden dir is shown without children in the Merged pane: nothing below it is visible.
    return Item(name, join(parent, name), kind, status, real, note, leaf=True, size=file_size(node))


# ------------------------------------------------------------ Upper/Lower panes
def layer_items(
    full: OverlayView, own: OverlayView, layer: Layer, path: str, parent_status: str = S.LOWER
) -> list[Item]:
    """What ``layer`` itself holds in dir ``path`` (``own``: its one-layer view), coloured by fate in ``full``.

    ``parent_status`` is the status of ``path`` itself in this pane: children of a dir that the
    merged view hides (whited out, opaque-hidden, shadowed) share its fate.
    """
    path = normpath(path)
    try:
        entries, hidden = own.list_all(path)
    except StackError:
        return []
    fates = _fates(full, layer, path)  # (lists the merged dir, if there is one: its dirs' sources are then known)
    index = full.source_index()
    moved = _moved_to(index, layer, path)
    if moved is not None:
        fates = _fates(full, layer, moved)
        index = full.source_index()
    out: list[Item] = []
    for e in entries:
        status, note = _row_fate(full, layer, index, path, e.name, e.is_dir, parent_status, fates)
        out.append(Item(e.name, join(path, e.name), e.kind, status, e.real_path, note, e.target, size=file_size(e)))
    for h in hidden:
        if h.status != S.WHITEOUT:
            continue
        node = probe(h.path, full.stack.xattr_ns)
        kind = node.kind if node is not None else "unknown"
        out.append(Item(h.name, join(path, h.name), kind, S.WHITEOUT, h.path, "whiteout: deletes this name below"))
    out.sort(key=lambda it: it.name)
    return out


def _row_fate(
    full: OverlayView,
    layer: Layer,
    index: dict[str, list[str]],
    parent: str,
    name: str,
    is_dir: bool,
    parent_status: str,
    fates: dict[str, tuple[str, str]] | None = None,
) -> tuple[str, str]:
    """(status, note) of ``layer``'s own ``parent/name`` in its pane. In a renamed dir (a redirect) a name
    is judged where it shows (``fates``: of that merged dir, if already made); a renamed dir says where."""
    moved = _moved_to(index, layer, parent)
    if moved is not None:
        status, note = _fate_of(full, layer, moved, name, fates or _fates(full, layer, moved), S.LOWER)
        return status, note or f"shown at {join(moved, name)}"
    status, note = _fate_of(full, layer, parent, name, fates, parent_status)
    if is_dir and (there := _moved_to(index, layer, join(parent, name))) is not None:
        note = f"{note}; its contents show at {there}" if note else f"its contents show at {there}"
    return status, note


def _moved_to(index: dict[str, list[str]], layer: Layer, path: str) -> str | None:
    """The merged dir that ``layer``'s own dir ``path`` feeds under another name (a renamed dir), if any."""
    fed = index.get(layer.real(path))
    if not fed or path in fed:
        return None
    return fed[0]


def layer_item(
    full: OverlayView, own: OverlayView, layer: Layer, path: str, parent_status: str = S.LOWER
) -> Item | None:
    """One name of :func:`layer_items` (for live updates of a single path)."""
    path = normpath(path)
    parent, name = posixpath.split(path)
    try:
        own.dir_sources(parent)
    except StackError:
        return None
    for v in own.versions(path):
        if v.fate == S.VISIBLE:
            e = own.lookup(path)
            if e is None:
                return None
            status, note = _row_fate(full, layer, full.source_index(), parent, name, e.is_dir, parent_status)
            return Item(name, path, e.kind, status, e.real_path, note, e.target, size=file_size(e))
        if v.fate == S.F_WHITEOUT:
            return Item(name, path, v.node.kind, S.WHITEOUT, v.path, "whiteout: deletes this name below")
    return None


def _fates(full: OverlayView, layer: Layer, path: str) -> dict[str, tuple[str, str]] | None:
    """name -> (status, note) for ``layer``'s names in merged dir ``path``; None if ``path`` is not a merged dir."""
    try:
        entries, hidden = full.list_all(path)
    except StackError:
        return None
    out: dict[str, tuple[str, str]] = {}
    for h in hidden:
        if h.layer == layer and h.name not in out:
            out[h.name] = (h.status, f"by {h.by.name}" if h.by is not None and h.by != layer else "")
    for e in entries:
        if e.name in out:
            continue
        if e.layer == layer:  # this layer's own copy is the one shown: its redirect is a marker here
            out[e.name] = (e.status, f"redirect to {e.redirect}" if e.redirect else "")
        elif e.sources is not None and any(src_layer == layer for src_layer, _ in e.sources):
            out[e.name] = (S.MERGED, f"merged into {e.layer.name}")
        elif e.extra and e.extra.get("data_layer") == layer.name:
            out[e.name] = (S.METACOPY, f"data of {e.layer.name}'s metacopy file")
    return out


def _fate_of(
    full: OverlayView,
    layer: Layer,
    parent: str,
    name: str,
    fates: dict[str, tuple[str, str]] | None,
    parent_status: str,
) -> tuple[str, str]:
    if fates is not None and name in fates:
        return fates[name]
    if parent_status in (S.WHITED_OUT, S.OPAQUE_HIDDEN, S.SHADOWED):
        # This layer's dir is hidden (the merged dir of that name, if any, does not include it).
        return parent_status, "a parent dir is hidden"
    for v in full.versions(join(parent, name)):
        if v.layer == layer:
            if v.fate == S.VISIBLE:
                e = full.lookup(join(parent, name))
                return (e.status if e is not None else S.LOWER), ""
            by = f"by {v.by.name}" if v.by is not None and v.by != layer else ""
            return FATE_STATUS.get(v.fate, S.SHADOWED), by
    return S.SHADOWED, "not reached by lookup"


# ------------------------------------------------------------- where a path is
def where(full: OverlayView, layer: Layer | None, path: str) -> tuple[str | None, str]:
    """(status or None, words): how ``path`` appears in the Merged pane (``layer`` None) or in ``layer``'s pane."""
    path = normpath(path)
    if layer is None:
        e = full.lookup(path)
        if e is not None:
            return e.status, S.STYLES[e.status].legend
        for v in full.versions(path):
            by = v.by.name if v.by is not None else "a layer above"
            if v.fate == S.F_WHITEOUT:
                return S.WHITEOUT, f"absent: deleted by a whiteout in {v.layer.name}"
            if v.fate == S.F_WHITED_OUT:
                return S.WHITED_OUT, f"absent: whited out by {by}"
            if v.fate == S.F_OPAQUE_HIDDEN:
                return S.OPAQUE_HIDDEN, f"absent: hidden by an opaque dir in {by}"
            if v.fate == S.F_PARENT_HIDDEN:
                return S.SHADOWED, "absent: a parent dir is hidden in the merged view"
        return None, "absent from every layer"
    for v in full.versions(path):
        if v.layer != layer:
            continue
        if v.fate == S.VISIBLE:
            e = full.lookup(path)
            st = e.status if e is not None else S.LOWER
            return st, S.STYLES[st].legend
        st = FATE_STATUS.get(v.fate, S.SHADOWED)
        by = f" (by {v.by.name})" if v.by is not None and v.by != layer else ""
        if v.fate == S.F_MERGED:
            return st, f"a dir merged into the merged view{by}"
        if v.fate == S.F_DATA:
            return st, "holds the data of a metacopy file above"
        return st, S.STYLES[st].legend + by
    e = full.lookup(path)
    if e is not None:
        return None, f"absent from {layer.name}: the merged view shows {e.layer.name}'s copy"
    return None, f"absent from {layer.name}"
