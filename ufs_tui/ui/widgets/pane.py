"""A pane's tree: loads one directory at a time in a thread worker, adds rows in chunks, takes live patches.

The tree is keyed by merged path (``/a/b``): the three panes share the coordinates, so the screen can
put the cursor on "the same path" in each. Nothing here reads the filesystem: the pane is given a
``loader`` (path, parent status) -> items and a ``one`` (path, parent status) -> item, both run in
thread workers. A load worker posts :class:`PaneTree.Listed` back to the pane; a live change is worked
out by :func:`work_out_patch` (in the screen's relisting worker, from a :meth:`PaneTree.state` taken on
the event loop) and applied with :meth:`PaneTree.apply_patch`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ...core.model import status as S
from ...core.model.merge import join, normpath
from ...core.panes import Item
from ...core.watch import Changes
from .. import textual_internals as ti
from ..heap import FREEZE_ROWS, freeze_young, rows_added
from ..messages import post
from .item_tree import ItemTree
from .labels import item_label
from .totals import Summer, Totals, TotalsKnown

CHUNK = 100  # rows added between two looks at the clock
CHUNK_SECONDS = 0.012  # rows are added for this long per event-loop turn, then the loop runs
HIDE_WHILE_LOADING = 2000  # a dir with more rows stays closed while they are added

Loader = Callable[[str, str], list[Item]]  # (dir path, status of that dir in this pane) -> items
OneLoader = Callable[[str, str], "Item | None"]  # (path, status of its parent) -> item or None


def labels_of(items: list[Item]) -> list[Text]:
    """The rows' labels, made in a loader thread. The new objects are frozen as they come (see ufs_tui.ui.heap):
    otherwise the collector's full passes, triggered by so many new objects, scan them all again and
    again, holding the GIL for tens of ms each."""
    if len(items) >= FREEZE_ROWS:
        freeze_young()
    labels = []
    for i, it in enumerate(items, 1):
        labels.append(item_label(it))
        if i % FREEZE_ROWS == 0:
            freeze_young()
    return labels


@dataclass
class PaneState:
    """A pane as a live relisting sees it, taken on the event loop: its loaded dirs (and their statuses),
    each one's children list (the list object itself: a relisting is applied only to the same list)."""

    tree: PaneTree
    generation: int
    loader: Loader
    one: OneLoader
    loaded: dict[str, str]
    rows: dict[str, list[TreeNode[Item]]]
    by_name: bool = True  # rows sorted by name (else a change relists the whole dir: its order may change)


@dataclass
class Relist:
    """A loaded dir looked at again, against its rows when that began (``names``: theirs): the whole dir
    listed again (``whole``: its ``items``), or only some names looked up."""

    path: str
    rows: list[TreeNode[Item]]
    names: list[str]
    whole: bool
    items: list[Item]
    updates: dict[str, Item | None]
    labels: dict[str, Text]


@dataclass
class PanePatch:
    """What a live change does to one pane, worked out in a thread."""

    tree: PaneTree
    generation: int
    relists: list[Relist] = field(default_factory=list)


def _relist(
    path: str, rows: list[TreeNode[Item]], whole: bool, items: list[Item], updates: dict[str, Item | None]
) -> Relist:
    names = [r.data.name if r.data is not None else "" for r in rows]
    labels = {name: item_label(it) for name, it in updates.items() if it is not None}
    return Relist(path, rows, names, whole, items, updates, labels)


def relist_dir(loader: Loader, path: str, status: str, rows: list[TreeNode[Item]]) -> Relist:
    """List ``path`` again and compare with ``rows``: what changed, with the new labels. In a thread: a
    relisted dir of 20,000 rows is compared here, the event loop only splices the few changes."""
    items = loader(path, status)
    if len(items) >= FREEZE_ROWS:  # a big dir listed again: out of the collector's sight (ufs_tui.ui.heap)
        freeze_young()
    old = {r.data.name: r.data for r in rows if r.data is not None}
    updates: dict[str, Item | None] = {}
    for it in items:
        if old.pop(it.name, None) != it:
            updates[it.name] = it
    updates.update(dict.fromkeys(old))
    return _relist(path, rows, True, items, updates)


def relook_names(one: OneLoader, path: str, status: str, rows: list[TreeNode[Item]], names: set[str]) -> Relist:
    """Look up only ``names`` in dir ``path`` (a few changed): each one's row now, or None (gone)."""
    return _relist(path, rows, False, [], {n: one(join(path, n), status) for n in names})


def work_out_patch(state: PaneState, changes: Changes) -> PanePatch:
    """In a thread: what ``changes`` do to the pane (the explorer has already forgotten what they make stale)."""
    patch = PanePatch(state.tree, state.generation)
    loaded = state.loaded
    full: list[str] = []
    if changes.roots:
        full = list(loaded)
    else:
        for mdir, names in changes.dirs.items():
            if mdir not in loaded:
                continue
            if names is None or not state.by_name:
                full.append(mdir)
                continue
            patch.relists.append(relook_names(state.one, mdir, loaded[mdir], state.rows[mdir], names))
            # A changed name that is itself an open dir: its children may change fate too.
            full.extend(join(mdir, n) for n in names if join(mdir, n) in loaded)
    for path in sorted(set(full), key=lambda p: p.count("/")):
        patch.relists.append(relist_dir(state.loader, path, loaded[path], state.rows[path]))
    return patch


class PaneTree(ItemTree):
    """One pane: a lazily loaded tree of :class:`Item`."""

    BINDINGS = [
        Binding("right", "expand_or_child", "Open dir / to its first entry", show=False, id="pane.open"),
        Binding("left", "collapse_or_parent", "Close dir / to its parent", show=False, id="pane.close"),
        Binding("j", "cursor_down", "Down", show=False, id="pane.down"),
        Binding("k", "cursor_up", "Up", show=False, id="pane.up"),
        Binding("pageup", "page_up", "Page up", show=False, id="pane.page_up"),
        Binding("pagedown", "page_down", "Page down", show=False, id="pane.page_down"),
        Binding("home,g", "scroll_home", "First entry", show=False, id="pane.first"),
        Binding("end,G", "scroll_end", "Last entry", show=False, id="pane.last"),
    ]

    class Loaded(Message):
        """A directory's children are all in the tree (after the last chunk), or patched."""

        def __init__(self, tree: PaneTree, path: str) -> None:
            super().__init__()
            self.tree = tree
            self.path = path

    class Listed(Message, bubble=False):
        """A load worker's result: the dir's items and their labels (for the pane itself)."""

        def __init__(self, generation: int, path: str, items: list[Item], labels: list[Text]) -> None:
            super().__init__()
            self.generation = generation
            self.path = path
            self.items = items
            self.labels = labels

    def __init__(self, pane: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.pane = pane
        self.loader: Loader | None = None
        self.one: OneLoader | None = None
        self.totals = Totals(self)
        self.by_name = True  # the loader gives rows sorted by name
        self.loaded: set[str] = set()
        self.in_flight: set[str] = set()
        self.generation = 0
        self.pending_reveal: str | None = None
        self.placeholder: str = ""
        self._reopen: list[str] = []

    # ----------------------------------------------------------------- source
    def set_source(
        self,
        loader: Loader | None,
        one: OneLoader | None,
        placeholder: str = "",
        keep: bool = True,
        summer: Summer | None = None,
        by_name: bool = True,
    ) -> None:
        """Show another source (another layer, or a filter change): keeps expanded paths and the cursor, unless
        ``keep`` is False (another stack altogether: its first row). ``summer`` sums a dir row's total (in a
        worker, after its dir is listed); ``by_name``: the loader sorts rows by name."""
        expanded = self.expanded_paths() if keep else []
        cursor = self.cursor_path() if keep else None
        self.loader, self.one, self.by_name = loader, one, by_name
        self.placeholder = placeholder
        self.generation += 1
        self.totals.use(summer)
        self.clear_rows()
        self.loaded.clear()
        self.in_flight.clear()
        self.root.expand()
        self._reopen = expanded
        if loader is None:  # nothing to show (a stack without an upper): no cursor to put back either
            self.pending_reveal = None
            self.root.add_leaf(Text(placeholder, style="dim italic"), None)
            return
        if cursor:
            self.pending_reveal = cursor
        self.load("/")

    def expanded_paths(self) -> list[str]:
        return sorted(p for p, n in self.nodes.items() if p != "/" and n.is_expanded)

    def forgot(self, path: str) -> None:
        self.loaded.discard(path)
        self.in_flight.discard(path)

    # ---------------------------------------------------------------- loading
    def load(self, path: str) -> None:
        if self.loader is None or path in self.in_flight:
            return
        node = self.nodes.get(path)
        if node is None:
            return
        self.in_flight.add(path)
        status = node.data.status if node.data is not None else S.LOWER
        gen = self.generation
        loader = self.loader

        def work() -> None:
            items = loader(path, status)
            # The labels too: building 20,000 Rich Texts is most of the cost of adding the rows.
            post(self, self.Listed(gen, path, items, labels_of(items)))

        self.run_worker(work, thread=True, group=f"load-{self.pane}", name=f"load {path}")

    def on_pane_tree_listed(self, message: PaneTree.Listed) -> None:
        gen, path = message.generation, message.path
        if gen != self.generation:
            return
        node = self.nodes.get(path)
        if node is None or path in self.loaded:
            self.in_flight.discard(path)
            return
        self._add_chunk(gen, node, path, message.items, message.labels, 0)

    def _add_chunk(
        self, gen: int, node: TreeNode[Item], path: str, items: list[Item], labels: list[Text], start: int
    ) -> None:
        """Add rows for about CHUNK_SECONDS, then let the event loop breathe (keys, repaints) before the rest."""
        if gen != self.generation or self.nodes.get(path) is not node:
            return
        big = len(items) > HIDE_WHILE_LOADING
        if big and start == 0 and node is not self.root:
            ti.set_expanded_flag(node, False)  # rows of a closed dir cost nothing in a rebuild: open it once in
        deadline = time.perf_counter() + CHUNK_SECONDS
        end = start
        while end < len(items):
            nxt = min(end + CHUNK, len(items))
            self.add_rows(node, items[end:nxt], labels[end:nxt])
            end = nxt
            if time.perf_counter() > deadline:
                break
        rows_added(end - start)
        if end < len(items):
            if big and node.data is not None:
                node.set_label(item_label(node.data, f"loading {end:,}/{len(items):,}…"))
            else:
                ti.invalidate(self)
            # Not call_later: that runs in the same step of this widget's message loop, never letting the
            # event loop (keys, repaints) in between. call_soon queues it behind everything ready now.
            asyncio.get_running_loop().call_soon(self._add_chunk, gen, node, path, items, labels, end)
            return
        if big and node is not self.root and node.data is not None:
            node.set_label(item_label(node.data))
            ti.set_expanded_flag(node, True)
        ti.invalidate(self)
        self.in_flight.discard(path)
        self.loaded.add(path)
        self._after_load(path)
        self.totals.sum(path)

    def _after_load(self, path: str) -> None:
        for p in list(self._reopen):
            if p.rsplit("/", 1)[0] in ("", path) or normpath(p.rsplit("/", 1)[0]) == path:
                n = self.nodes.get(p)
                self._reopen.remove(p)
                if n is not None and n.allow_expand and not n.is_expanded:
                    n.expand()
        if self.pending_reveal:
            self.continue_reveal()
        elif path == "/" and self.cursor_line < 0 and self.root.children:
            self.move_to(self.root.children[0])
        self.post_message(self.Loaded(self, path))

    # -------------------------------------------------------------- live patches
    def state(self) -> PaneState | None:
        """The pane for a live relisting (None: it shows nothing to relist)."""
        if self.loader is None or self.one is None:
            return None
        loaded = {p: self.status_of(p) for p in self.loaded if p in self.nodes}
        rows = {p: ti.children(self.nodes[p]) for p in loaded}
        return PaneState(self, self.generation, self.loader, self.one, loaded, rows, self.by_name)

    def apply_patch(self, patch: PanePatch) -> None:
        """A relisting's result, spliced against the rows it was worked out on when the dir still has them;
        else a whole dir's listing is compared with the rows there are now."""
        if patch.generation != self.generation:
            return
        for r in patch.relists:
            node = self.nodes.get(r.path)
            if node is None or r.path not in self.loaded:
                self.in_flight.discard(r.path)
                continue
            same = ti.children(node) is r.rows
            if not r.whole:  # a few names: no Loaded (nothing else about the dir changed)
                self.splice(node, r.updates, r.labels, r.names if same else None)
            elif not self.by_name:  # (its order may change too)
                self.reorder(node, r.items)
                self.in_flight.discard(r.path)
                self.post_message(self.Loaded(self, r.path))
            elif same:
                self.splice(node, r.updates, r.labels, r.names)
                self.in_flight.discard(r.path)
                self.post_message(self.Loaded(self, r.path))
            else:  # rows came or went since the relisting began: compare with what is there now
                self.patch(r.path, r.items)
            self.totals.sum(r.path)

    def patch(self, path: str, items: list[Item]) -> None:
        """Replace the children of loaded dir ``path`` with ``items``, keeping nodes (and expansion) that stay."""
        node = self.nodes.get(path)
        if node is not None:
            updates: dict[str, Item | None] = {c.data.name: None for c in ti.children(node) if c.data is not None}
            updates.update((it.name, it) for it in items)
            self.splice(node, updates)
        self.in_flight.discard(path)
        self.post_message(self.Loaded(self, path))

    # ------------------------------------------------------------------ reveal
    def reveal(self, path: str) -> None:
        """Put the cursor on ``path``, opening (and loading) its parents; if the pane does not hold it,
        on its nearest ancestor that it holds."""
        self.pending_reveal = normpath(path)
        self.continue_reveal()

    def continue_reveal(self) -> None:
        path = self.pending_reveal
        if path is None:
            return
        if self.loader is None:  # nothing to show (no upper layer)
            self.pending_reveal = None
            return
        node = self.nodes.get(path)
        if node is not None:
            self.pending_reveal = None
            self.select_row(node)
            return
        parts = [p for p in path.split("/") if p]
        cur = "/"
        deepest: TreeNode[Item] | None = None
        for part in parts[:-1]:
            if cur not in self.loaded:
                if cur not in self.in_flight:
                    self.load(cur)
                return
            nxt = join(cur, part)
            n = self.nodes.get(nxt)
            if n is None or not n.allow_expand:
                break
            deepest = n
            if not n.is_expanded:
                n.expand()
            cur = nxt
        else:
            if cur not in self.loaded:
                if cur not in self.in_flight:
                    self.load(cur)
                return
        self.pending_reveal = None
        # Not here: the cursor goes to the nearest ancestor this pane holds; with none, to the top-level row
        # the name would follow (never where it happened to be: that would depend on how fast keys came).
        # The line under the pane says why.
        if deepest is not None:
            self.select_row(deepest)
        elif parts and self.root.children:
            rows = [n for n in self.root.children if n.data is not None and n.data.name < parts[0]]
            self.select_row(rows[-1] if rows else self.root.children[0])

    # ----------------------------------------------------------------- actions
    def action_expand_or_child(self) -> None:
        node = self.cursor_node
        if node is None or not node.allow_expand:
            return
        if not node.is_expanded:
            node.expand()
        elif node.children:
            self.move_to(node.children[0])

    def action_collapse_or_parent(self) -> None:
        node = self.cursor_node
        if node is None:
            return
        if node.allow_expand and node.is_expanded:
            node.collapse()
        elif node.parent is not None and node.parent is not self.root:
            self.move_to(node.parent)

    def on_totals_known(self, message: TotalsKnown) -> None:
        self.totals.show(message)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Item]) -> None:
        data = event.node.data
        if data is not None and data.path not in self.loaded:
            self.load(data.path)
