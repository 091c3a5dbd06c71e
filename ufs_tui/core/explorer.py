"""The headless explorer: what each pane, the details and the search show, in thread-safe calls (no textual).

Every filesystem read the UI needs goes through :class:`Explorer`, under one lock (an
:class:`OverlayView` caches per directory and is not thread-safe). The UI's workers call it; the
event loop calls only what takes the lock without waiting (``wait=False``).
"""

from __future__ import annotations

import posixpath
import threading
from collections.abc import Callable
from dataclasses import dataclass, replace

from .details import MERGED, Details, PaneSource, build_details
from .kernel_check import KernelCheck, KernelFacts, disagreement, kernel_facts
from .model import status as S
from .model.content import is_dir as _is_dir
from .model.errors import StackError
from .model.merge import Entry, Hidden, OverlayView, join, normpath
from .model.stack import Layer, Stack
from .panes import KERNEL_DIFFERS, Item, layer_item, layer_items, merged_item, merged_items, own_stack, where
from .reports.sizes import DirTotals
from .search import VersionHit, search_merged, search_versions
from .watch import ChangeMapper, Changes

__all__ = [
    "KERNEL_DIFFERS", "LAYER_VIEWS", "MERGED", "ORDERS", "CachedView", "Details", "Explorer", "KernelFacts",
    "PaneSource", "ViewFilter", "disagreement", "kernel_facts",
]  # fmt: skip


# What the Lower pane shows of its layer: the layer as stored, coloured by what the layers above do to it;
# what it changes over the layers under it (dive's "current layer"); or the merged view of it and the layers
# under it (dive's "aggregated").
LAYER_VIEWS = {
    "fate": "as stored, by what the layers above do to it",
    "changes": "what it changes over the layers under it",
    "aggregated": "the merged view of it and the layers under it",
}


# The order of a dir's rows.
ORDERS = {"name": "by name", "size": "largest first (a dir by the total under it)"}


@dataclass(frozen=True)
class ViewFilter:
    changes_only: bool = False
    statuses: frozenset[str] | None = None  # None: every status
    layer_view: str = "fate"  # a LAYER_VIEWS key (a lower layer's pane)
    order: str = "name"  # an ORDERS key
    min_size: int = 0  # leave out files smaller than this, dirs whose total is, and what has no size

    def keep(self, item: Item, merged: bool) -> bool:
        if self.min_size and (item.size is None or item.size < self.min_size):
            return False
        if item.expandable:
            return True
        # "changes only" in the Merged pane was applied by merged_items (the changing layer's own rows, which
        # are an image's lower:0 rows too); in a layer pane it leaves out what that layer has unchanged
        if self.changes_only and not merged and item.status == S.LOWER:
            return False
        return self.statuses is None or item.status in self.statuses

    @property
    def active(self) -> bool:
        return self.changes_only or self.statuses is not None or self.min_size > 0

    @property
    def needs_totals(self) -> bool:
        """Whether a dir's rows wait for the totals of its subdirs (to sort or filter by them)."""
        return self.order == "size" or self.min_size > 0


class CachedView(OverlayView):
    """An OverlayView that also keeps :meth:`list_all` (the Upper and Lower panes ask it for every dir
    they show, the Merged pane with "changes only"): one scan per dir until a change invalidates it. Its
    listings are eager: every row shows its entry's size."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack, eager=True)
        self._all: dict[str, tuple[list[Entry], list[Hidden]]] = {}

    def list_all(self, path: str = "/") -> tuple[list[Entry], list[Hidden]]:
        path = normpath(path)
        got = self._all.get(path)
        if got is None:
            got = self._all[path] = super().list_all(path)
        return got

    def invalidate(self, path: str) -> None:
        super().invalidate(path)
        path = normpath(path)
        prefix = path.rstrip("/") + "/"
        for key in [k for k in self._all if k == path or k.startswith(prefix)]:
            del self._all[key]

    def invalidate_all(self) -> None:
        super().invalidate_all()
        self._all.clear()


class Explorer:
    """One stack as the panes see it (``mount_point``: the stack's mount, checked against the model)."""

    def __init__(self, stack: Stack, mount_point: str | None = None) -> None:
        self.stack = stack
        self.mount_point = mount_point
        self.lock = threading.RLock()
        self.full: OverlayView = CachedView(stack)
        self.below = _below_changer(stack)
        self._own: dict[str, OverlayView] = {}
        self._focused: dict[str, OverlayView] = {}
        self._totals: dict[tuple[str, bool], DirTotals] = {}
        self._totals_lock = threading.Lock()
        self.mapper = ChangeMapper(stack, mount_point)
        self.kernel = KernelCheck(mount_point) if mount_point else None

    @property
    def mismatches(self) -> dict[str, str]:
        """Merged path -> how the kernel disagrees (while mounted; rows read so far)."""
        return self.kernel.mismatches if self.kernel is not None else {}

    # ---------------------------------------------------------------- views
    def own(self, layer: Layer) -> OverlayView:
        view = self._own.get(layer.name)
        if view is None:
            view = self._own[layer.name] = CachedView(own_stack(self.stack, layer))
        return view

    def focused(self, layer: Layer) -> tuple[OverlayView, Layer]:
        """The view of lower ``layer`` as the upper over the layers under it, and ``layer`` as that view has it."""
        view = self._focused.get(layer.name)
        if view is None:
            view = self._focused[layer.name] = CachedView(self.stack.focused(layer)[0])
        assert view.stack.upper is not None
        return view, view.stack.upper

    def _layer_rows(self, layer: Layer, path: str, parent_status: str, mode: str) -> list[Item]:
        """A layer pane's rows in dir ``path`` (``mode``: a :data:`LAYER_VIEWS` key; only a lower has the others)."""
        if mode == "fate" or layer.role != "lower":
            return layer_items(self.full, self.own(layer), layer, path, parent_status)
        view, top = self.focused(layer)
        if mode == "changes":
            return layer_items(view, self.own(layer), top, path, parent_status)
        return merged_items(view, path, False, None)

    def _layer_row(self, layer: Layer, path: str, parent_status: str, mode: str) -> Item | None:
        if mode == "fate" or layer.role != "lower":
            return layer_item(self.full, self.own(layer), layer, path, parent_status)
        view, top = self.focused(layer)
        if mode == "changes":
            return layer_item(view, self.own(layer), top, path, parent_status)
        e = view.lookup(path)
        return merged_item(e, path.rsplit("/", 1)[0] or "/") if e is not None else None

    def items(self, source: PaneSource, path: str, parent_status: str, flt: ViewFilter) -> list[Item]:
        """A pane's rows in dir ``path``: a dir's total where known (all of them, summed now, if ``flt`` sorts
        or filters by size), filtered and ordered by ``flt``."""
        with self.lock:
            try:
                if source is None:
                    got = merged_items(self.full, path, flt.changes_only, self.below)
                    if self.kernel is not None:
                        got = self.kernel.check_dir(self.full, normpath(path), got)
                else:
                    got = self._layer_rows(source, path, parent_status, flt.layer_view)
            except StackError:
                return []
        totals = self.totals(source, flt.layer_view)
        got = [_with_total(it, totals, flt.needs_totals) for it in got]
        if flt.active:
            got = [it for it in got if flt.keep(it, source is None)]
        if flt.order == "size":
            got.sort(key=lambda it: -(it.size or 0))  # (stable: equal sizes stay by name)
        return got

    def item(self, source: PaneSource, path: str, parent_status: str, flt: ViewFilter) -> Item | None:
        """One path of a pane (live updates of a few names); None when the pane does not show it."""
        path = normpath(path)
        with self.lock:
            if source is None:
                if flt.changes_only:  # deletions show as rows: recompute from the dir's listing
                    parent, name = path.rsplit("/", 1)
                    rows = merged_items(self.full, parent or "/", True, self.below)
                    got = next((it for it in rows if it.name == name), None)
                else:
                    e = self.full.lookup(path)
                    got = merged_item(e, path.rsplit("/", 1)[0] or "/") if e is not None else None
                if self.kernel is not None and path != "/":
                    got = self.kernel.check_one(self.full, path, got)
            else:
                got = self._layer_row(source, path, parent_status, flt.layer_view)
        if got is None:
            return None
        got = _with_total(got, self.totals(source, flt.layer_view), flt.needs_totals)
        return got if not flt.active or flt.keep(got, source is None) else None

    # --------------------------------------------------------------- sizes
    def totals(self, source: PaneSource, layer_view: str) -> DirTotals:
        """The dir totals of what a pane shows: the merged view, a layer's own tree, or (a lower's aggregated
        view) the merged view of it and the layers under it."""
        aggregated = source is not None and source.role == "lower" and layer_view == "aggregated"
        key = (source.name if source is not None else "", aggregated)
        with self._totals_lock:
            got = self._totals.get(key)
            if got is None:
                if source is None:
                    stack = self.stack
                else:
                    stack = self.stack.focused(source)[0] if aggregated else own_stack(self.stack, source)
                got = self._totals[key] = DirTotals(stack)
            return got

    def unreadable(self, source: PaneSource, path: str) -> list[tuple[str, str]]:
        """(real dir, problem) for each layer dir behind the pane's dir ``path`` that could not be read: its
        entries are missing from what the pane shows."""
        with self.lock:
            view = self.full if source is None else self.own(source)
            try:
                sources = view.dir_sources(normpath(path))
            except StackError:
                return []
            return [(real, view.errors[real]) for _, real in sources if real in view.errors]

    def kernel_line(self, path: str) -> tuple[str, str] | None:
        """The details line for the Merged pane while mounted: does the kernel agree with the model here?"""
        if self.kernel is None:
            return None
        entry = None
        if normpath(path) != "/":
            with self.lock:
                entry = self.full.lookup(path)
        return self.kernel.line(path, entry)

    # ---------------------------------------------------------- coordinates
    def path_in(self, source: PaneSource, path: str, wait: bool = True) -> str:
        """Where merged ``path`` is in ``source``'s own tree: the same path, unless a dir on the way is
        redirected (a renamed dir: ``/manual/x`` in the merged view is ``/docs/x`` in the lower it came from).

        ``wait=False`` (the event loop): if a scan holds the lock, answer the same path rather than wait.
        """
        path = normpath(path)
        if source is None or path == "/":
            return path
        parent, name = path.rsplit("/", 1)
        if not self.lock.acquire(blocking=wait):
            return path
        try:
            sources = self.full.dir_sources(parent or "/")
        except StackError:
            return path
        finally:
            self.lock.release()
        root = source.path.rstrip("/")
        for layer, real in sources:
            if layer == source and (real == root or real.startswith(root + "/")):
                return join(real[len(root) :] or "/", name)
        return path

    def merged_path_of(self, source: PaneSource, path: str, wait: bool = True) -> str:
        """Where ``path`` of ``source``'s own tree shows in the merged view: the same path, unless its dir
        feeds a merged dir of another name (a renamed dir: lower ``/docs/x`` is merged ``/manual/x``). Only
        merged dirs already read are known; the inverse of :meth:`path_in`. ``wait``: as there."""
        path = normpath(path)
        if source is None or path == "/":
            return path
        parent, name = path.rsplit("/", 1)
        real = source.path.rstrip("/") + (parent or "")
        if not self.lock.acquire(blocking=wait):
            return path
        try:
            dirs = self.full.merged_dirs_for(real)
        finally:
            self.lock.release()
        if not dirs or (parent or "/") in dirs:
            return path
        return join(dirs[0], name)

    def where(self, source: PaneSource, path: str) -> tuple[str | None, str]:
        with self.lock:
            return where(self.full, source, path)

    def details(self, source: PaneSource, path: str, alias: Callable[[str], str]) -> Details:
        return build_details(self, source, path, alias)

    # -------------------------------------------------------------- changes
    def apply(self, changes: Changes) -> None:
        """Forget cached listings that ``changes`` make stale: the merged view's, and those of the views that
        read a layer a change was under (a layer's own view, the view under the changing layer)."""
        with self.lock:
            changes.add_redirected(self.full)
            if changes.roots:
                self.invalidate_all()
                return
            # A change seen under the mount point is a write through the mount: it lands in the upper, and its
            # inotify event may come from the mount point only.
            mp = self.mount_point
            everything = mp is not None and ChangeMapper.key(posixpath.normpath(mp)) in changes.touched
            touched = changes.touched
            layered = (*self._own.values(), *self._focused.values())
            views = [self.full, *(v for v in layered if everything or _reads_any(v.stack, touched))]
            if self.below is not None and (everything or _reads_any(self.below.stack, touched)):
                views.append(self.below)
            for mdir, names in changes.dirs.items():
                for view in views:
                    view.invalidate(mdir)
                    for name in names or ():
                        view.invalidate(join(mdir, name))
        with self._totals_lock:
            sums = [t for t in self._totals.values() if everything or _reads_any(t.stack, touched)]
        for totals in sums:  # (outside the explorer's lock: a sum may be reading a big dir)
            for mdir, names in changes.dirs.items():
                totals.forget(mdir, names)

    def invalidate_all(self) -> None:
        with self.lock:
            self.full = CachedView(self.stack)
            self.below = _below_changer(self.stack)
            self._own.clear()
            self._focused.clear()
        with self._totals_lock:
            self._totals.clear()

    def missing_roots(self) -> list[str]:
        """Layer roots (and the mount point) that are not directories now."""
        return [r for r in self.mapper.roots if not _is_dir(r)]

    # --------------------------------------------------------------- search
    def search(self, query: str, cancelled: Callable[[], bool], found: Callable[[list[str]], None]) -> int:
        """The merged tree's paths that match ``query`` (:func:`search_merged`), in batches to ``found``."""
        return search_merged(self.full, self.lock, query, cancelled, found)

    def search_versions(
        self, query: str, cancelled: Callable[[], bool], found: Callable[[list[VersionHit]], None]
    ) -> int:
        """Every layer's own copy of a matching name, with its fate (:func:`search_versions`)."""
        return search_versions(self.full, self.lock, query, cancelled, found, own=self.own)


def _with_total(item: Item, totals: DirTotals, now: bool) -> Item:
    """``item`` with its total if it is a dir: summed ``now``, or only if known already."""
    if not item.summed:
        return item
    total = totals.total(item.path) if now else totals.known(item.path)
    return item if total is None else replace(item, size=total)


def _reads_any(stack: Stack, roots: set[str]) -> bool:
    """Whether ``stack`` has a layer under one of the changed ``roots``."""
    return any(ChangeMapper.key(la.path) in roots for la in stack.all_layers)


def _below_changer(stack: Stack) -> OverlayView | None:
    """The view under the layer whose changes "changes only" shows (the upper, else the topmost lower)."""
    return OverlayView(stack.below(stack.changer())) if stack.layers else None
