"""A pane's tree: loads one directory at a time in a thread worker, adds nodes in chunks, patches live.

The tree is keyed by merged path (``/a/b``): the three panes share the coordinates, so the
app can put the cursor on "the same path" in each. Nothing here reads the filesystem: the
pane is given a ``loader`` (path, parent status) -> items and a ``one`` (path) -> item,
both run in thread workers.
"""

from __future__ import annotations

import asyncio
import bisect
import gc
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any, overload

from rich.color import Color as RichColor
from rich.style import Style
from rich.text import Text
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ...core import status as S
from ...core.merge import join, normpath
from ...core.panes import Item
from ..threads import call_back
from .labels import item_label

try:  # Tree's row record, for the faster rebuild below
    from textual.widgets._tree import _TreeLine
except ImportError:  # pragma: no cover - a textual without it uses Tree's own rebuild
    _TreeLine = None  # type: ignore[assignment,misc]

CHUNK = 100  # rows added between two looks at the clock
CHUNK_SECONDS = 0.012  # rows are added for this long per event-loop turn, then the loop runs
HIDE_WHILE_LOADING = 2000  # a dir with more rows stays closed while they are added
FREEZE_ROWS = 2000  # rows added since the last freeze of the heap before the next (see compact_heap)

Loader = Callable[[str, str], list[Item]]  # (dir path, status of that dir in this pane) -> items
OneLoader = Callable[[str, str], "Item | None"]  # (path, status of its parent) -> item or None

ROOT = Item("/", "/", "dir", S.LOWER, None)

_rows_since_freeze = 0


def freeze_heap() -> None:
    """Move every object alive now out of the garbage collector's sight (``gc.freeze``).

    Each tree row is about a dozen tracked objects: with a 20,000-row dir open, every full (generation 2)
    collection scanned some 350,000 objects and stopped the event loop for 100-170 ms, at random
    moments (a key press, a repaint). Frozen objects are never scanned again; rows dropped later are
    freed by reference counting (:meth:`PaneTree._forget` breaks the parent/child cycles), so nothing
    leaks. The app unfreezes on exit.
    """
    global _rows_since_freeze
    _rows_since_freeze = 0
    gc.freeze()


def _labels(items: list[Item]) -> list[Text]:
    """The rows' labels, made in a loader thread. The new objects are frozen as they come (see freeze_heap):
    otherwise the collector's full passes, triggered by so many new objects, scan them all again and
    again, holding the GIL for tens of ms each."""
    if len(items) >= FREEZE_ROWS:
        _freeze_young()
    labels = []
    for i, it in enumerate(items, 1):
        labels.append(item_label(it))
        if i % FREEZE_ROWS == 0:
            _freeze_young()
    return labels


def _freeze_young() -> None:
    gc.collect(0)  # the newest objects (under a ms): few garbage cycles get frozen with the rows
    freeze_heap()


def _rows_added(n: int) -> None:
    """Freeze the heap once enough rows came in."""
    global _rows_since_freeze
    _rows_since_freeze += n
    if _rows_since_freeze >= FREEZE_ROWS:
        _freeze_young()


class _Lines(Sequence[Any]):
    """Tree's line records (``_TreeLine``: the path from the top to the row, and whether it is the last of
    its siblings), made when Tree asks for a row: it renders only the visible ones."""

    __slots__ = ("rows", "root", "show_root", "_made")

    def __init__(self, rows: list[TreeNode[Item]], root: TreeNode[Item], show_root: bool) -> None:
        self.rows = rows
        self.root = root
        self.show_root = show_root
        self._made: dict[int, Any] = {}

    def __len__(self) -> int:
        return len(self.rows)

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self.rows)))]
        if index < 0:
            index += len(self.rows)
        line = self._made.get(index)
        if line is None:
            node = self.rows[index]  # IndexError past the end, like a list
            path = [node]
            parent = node._parent
            while parent is not None and parent is not self.root:
                path.append(parent)
                parent = parent._parent
            if self.show_root and node is not self.root:
                path.append(self.root)
            path.reverse()
            up = node._parent
            line = self._made[index] = _TreeLine(path, up is None or up._children[-1] is node)
        return line


class FastScrollBar(ScrollBar):
    """A ScrollBar that remembers what it rendered.

    Textual renders a scrollbar through Rich on every refresh, and a scrollbar is refreshed whenever its
    widget scrolls: with three panes and the details scrolling as the cursor moves, that was some 40%
    of a key press's screen update. What the bar looks like depends on a few numbers only (the thumb
    moves one cell per hundreds of rows in a big dir), so the lines are kept per look.
    """

    MEMO = 16

    def __init__(self, vertical: bool = True, name: str | None = None, *, thickness: int = 1) -> None:
        super().__init__(vertical, name, thickness=thickness)
        self._memo: dict[tuple[object, ...], list[Strip]] = {}

    def _look(self, crop: Region) -> tuple[object, ...] | None:
        """Everything the rendered lines depend on: the bar's cells, the widget's colours, the app's filters."""
        bar = self.render()
        if not isinstance(bar, ScrollBarRender) or not isinstance(bar.style, Style):
            return None
        width, height = self.size
        cells = bar.render_bar(
            size=height if self.vertical else width,
            virtual_size=bar.virtual_size,
            window_size=bar.window_size,
            position=bar.position,
            thickness=width if self.vertical else height,
            vertical=self.vertical,
            back_color=bar.style.bgcolor or RichColor.parse("#555555"),
            bar_color=bar.style.color or RichColor.parse("bright_magenta"),
        )
        app = self.app
        filters = tuple(id(f) for f in self.get_line_filters())
        return (
            crop,
            self.size,
            tuple(cells.segments),
            self.background_colors,
            self.opacity,
            filters,
            id(app.ansi_theme),
            app.native_ansi_color,
        )

    def render_lines(self, crop: Region) -> list[Strip]:
        look = self._look(crop)
        if look is None:
            return super().render_lines(crop)
        lines = self._memo.get(look)
        if lines is None:
            lines = super().render_lines(crop)
            if len(self._memo) >= self.MEMO:
                self._memo.pop(next(iter(self._memo)))
            self._memo[look] = lines
        return lines


def fast_vertical_scrollbar(widget: Widget) -> ScrollBar:
    """Widget.vertical_scrollbar, made a :class:`FastScrollBar` (widgets override the property with this)."""
    if widget._vertical_scrollbar is None:
        widget._vertical_scrollbar = bar = FastScrollBar(
            vertical=True, name="vertical", thickness=widget.scrollbar_size_vertical
        )
        bar.display = False
        widget.app._start_widget(widget, bar)
    return widget._vertical_scrollbar


class PaneTree(Tree[Item]):
    """One pane: a lazily loaded tree of :class:`Item`."""

    BINDINGS = [
        Binding("right", "expand_or_child", "Open dir / to its first entry", show=False),
        Binding("left", "collapse_or_parent", "Close dir / to its parent", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home,g", "scroll_home", "First entry", show=False),
        Binding("end,G", "scroll_end", "Last entry", show=False),
    ]

    class Loaded(Message):
        """A directory's children are all in the tree (after the last chunk)."""

        def __init__(self, tree: PaneTree, path: str) -> None:
            super().__init__()
            self.tree = tree
            self.path = path

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        return fast_vertical_scrollbar(self)

    def __init__(self, pane: str, *, id: str | None = None) -> None:
        super().__init__("/", ROOT, id=id)
        self.pane = pane
        self.show_root = False
        self.guide_depth = 2
        self.loader: Loader | None = None
        self.one: OneLoader | None = None
        self.nodes: dict[str, TreeNode[Item]] = {"/": self.root}
        self.loaded: set[str] = set()
        self.in_flight: set[str] = set()
        self.generation = 0
        self.pending_reveal: str | None = None
        self.placeholder: str = ""

    # ----------------------------------------------------------------- source
    def set_source(
        self, loader: Loader | None, one: OneLoader | None, placeholder: str = "", keep: bool = True
    ) -> None:
        """Show another source (another layer, or a filter change): keeps expanded paths and the cursor, unless
        ``keep`` is False (another stack altogether: its first row)."""
        expanded = self.expanded_paths() if keep else []
        cursor = self.cursor_path() if keep else None
        self.loader, self.one = loader, one
        self.placeholder = placeholder
        self.generation += 1
        old = list(self.nodes.values())
        self.clear()
        for n in old:
            n._children = []  # no parent/child cycles: the old rows go by reference counting (see freeze_heap)
        self._tree_nodes = {self.root._id: self.root}  # Tree.clear keeps the old nodes here
        self.root.data = ROOT
        self.nodes = {"/": self.root}
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

    def status_of(self, path: str) -> str:
        node = self.nodes.get(path)
        return node.data.status if node is not None and node.data is not None else S.LOWER

    def cursor_path(self) -> str | None:
        node = self.cursor_node
        return node.data.path if node is not None and node.data is not None else None

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
        app = self.app

        def work() -> None:
            items = loader(path, status)
            # The labels too: building 20,000 Rich Texts is most of the cost of adding the rows.
            labels = _labels(items)
            call_back(app, self._got, gen, path, items, labels)

        self.run_worker(work, thread=True, group=f"load-{self.pane}", name=f"load {path}")

    def reload(self, paths: Iterable[str]) -> None:
        """Relist loaded dirs (a live change): patch their children in place."""
        if self.loader is None:
            return
        gen = self.generation
        loader = self.loader
        todo = []
        for path in sorted(set(paths), key=lambda p: p.count("/")):
            node = self.nodes.get(path)
            if node is None or path not in self.loaded:
                continue
            todo.append((path, node.data.status if node.data is not None else S.LOWER, node._children))
        if not todo:
            return
        app = self.app

        def work() -> None:
            for path, status, rows in todo:
                items = loader(path, status)
                if len(items) >= FREEZE_ROWS:  # a big dir listed again: out of the collector's sight (freeze_heap)
                    _freeze_young()
                # What changed against the rows shown now, and the new labels, worked out here: a relisted
                # dir of 20,000 rows is compared in this thread, and the event loop only splices the few changes.
                old = {r.data.name: r.data for r in rows if r.data is not None}
                updates: dict[str, Item | None] = {}
                for it in items:
                    if old.pop(it.name, None) != it:
                        updates[it.name] = it
                updates.update(dict.fromkeys(old))
                labels = {name: item_label(it) for name, it in updates.items() if it is not None}
                names = [r.data.name if r.data is not None else "" for r in rows]
                if not call_back(app, self._relisted, gen, path, rows, items, updates, labels, names):
                    return

        self.run_worker(work, thread=True, group=f"reload-{self.pane}", name="reload")

    def _relisted(
        self,
        gen: int,
        path: str,
        rows: list[TreeNode[Item]],
        items: list[Item],
        updates: dict[str, Item | None],
        labels: dict[str, Text],
        names: list[str],
    ) -> None:
        """A reload's result: the changes against ``rows`` (whose names are ``names``) when the dir still has those
        rows, else all ``items``."""
        node = self.nodes.get(path)
        if gen != self.generation or node is None or path not in self.loaded:
            self.in_flight.discard(path)
            return
        if node._children is rows:
            self._splice(node, updates, labels, names)
            self.in_flight.discard(path)
            self.post_message(self.Loaded(self, path))
        else:  # rows came or went since the reload started: compare with what is there now
            self.patch(path, items)

    def _got(self, gen: int, path: str, items: list[Item], labels: list[Text] | None = None) -> None:
        if gen != self.generation:
            return
        node = self.nodes.get(path)
        if node is None:
            self.in_flight.discard(path)
            return
        if path in self.loaded:
            self.in_flight.discard(path)
            return
        if labels is None:
            labels = [item_label(it) for it in items]
        self._add_chunk(gen, node, path, items, labels, 0)

    def _add_chunk(
        self, gen: int, node: TreeNode[Item], path: str, items: list[Item], labels: list[Text], start: int
    ) -> None:
        """Add rows for about CHUNK_SECONDS, then let the event loop breathe (keys, repaints) before the rest."""
        if gen != self.generation or self.nodes.get(path) is not node:
            return
        big = len(items) > HIDE_WHILE_LOADING
        if big and start == 0 and node is not self.root:
            node._expanded = False  # rows of a closed dir cost nothing in a rebuild: open it once they are in
        deadline = time.perf_counter() + CHUNK_SECONDS
        end = start
        while end < len(items):
            nxt = min(end + CHUNK, len(items))
            self._add_many(node, items[end:nxt], labels[end:nxt])
            end = nxt
            if time.perf_counter() > deadline:
                break
        _rows_added(end - start)
        if end < len(items):
            if big and node.data is not None:
                node.set_label(item_label(node.data, f"loading {end:,}/{len(items):,}…"))
            else:
                self._invalidate()
            # Not call_later: that runs in the same step of this widget's message loop, never letting the
            # event loop (keys, repaints) in between. call_soon queues it behind everything ready now.
            asyncio.get_running_loop().call_soon(self._add_chunk, gen, node, path, items, labels, end)
            return
        if big and node is not self.root and node.data is not None:
            node.set_label(item_label(node.data))
            node._expanded = True
        self._invalidate()
        self.in_flight.discard(path)
        self.loaded.add(path)
        self._after_load(path)

    def _add_many(self, parent: TreeNode[Item], items: list[Item], labels: list[Text]) -> None:
        """Append rows without a relayout per row (Tree.add invalidates the whole tree each time)."""
        children = parent._children
        make = self._make_child
        for it, label in zip(items, labels, strict=True):
            children.append(make(parent, it, label))
        parent._updates += 1

    def process_label(self, label: str | Text) -> Text:
        """A one-line Text is the label as it is (Tree copies every label to cut it at its first line)."""
        if isinstance(label, Text) and "\n" not in label.plain:
            return label
        return super().process_label(label)

    def get_label_width(self, node: TreeNode[Item]) -> int:
        """The width of a row, without rendering it (the default renders every row on each rebuild)."""
        return node._label.cell_len + (2 if node._allow_expand else 0)

    def _build(self) -> None:
        """Tree._build, cheaper: the rows in order as a plain list of nodes, the line records Tree renders
        made only for the rows it asks for (:class:`_Lines`), no row measured.

        Tree's own build makes a record and a path list per row and measures every label: 70 ms for a
        20,000-row dir, on every change of the tree (a row added live, a dir opened). This one is a few
        ms. Rows wider than the pane are cropped (the pane does not scroll sideways), so the virtual
        width is the pane's width.
        """
        if _TreeLine is None:  # another textual: its own build
            super()._build()
            return
        rows: list[TreeNode[Item]] = []
        add = rows.append
        stack = [iter([self.root] if self.show_root else self.root._children)]
        while stack:
            for node in stack[-1]:
                node._line = len(rows)
                add(node)
                if node._expanded and node._children:
                    stack.append(iter(node._children))
                    break
            else:
                stack.pop()
        self._tree_lines_cached = _Lines(rows, self.root, self.show_root)  # type: ignore[assignment]
        self.virtual_size = Size(max(1, self.size.width), len(rows))
        if self.cursor_line != -1:
            if self.cursor_node is not None:
                shift = self.cursor_node._line - self.cursor_line
                self.cursor_line = self.cursor_node._line
                if shift and self.scroll_y > 0 or shift > 0:
                    # Rows came or went above the cursor (a live change): the view moves with it, so the
                    # cursor's row stays where it was on screen.
                    self.scroll_to(y=max(0, self.scroll_y + shift), animate=False, immediate=True)
            if self.cursor_line >= len(rows):
                self.cursor_line = -1

    def _after_load(self, path: str) -> None:
        reopen = getattr(self, "_reopen", [])
        for p in list(reopen):
            if p.rsplit("/", 1)[0] in ("", path) or normpath(p.rsplit("/", 1)[0]) == path:
                n = self.nodes.get(p)
                reopen.remove(p)
                if n is not None and n.allow_expand and not n.is_expanded:
                    n.expand()
        if self.pending_reveal:
            self.continue_reveal()
        elif path == "/" and self.cursor_line < 0 and self.root.children:
            self.move_to(self.root.children[0])
        self.post_message(self.Loaded(self, path))

    def _forget(self, node: TreeNode[Item]) -> None:
        """Drop a node's subtree from our path index and from Tree's node table (the caller takes it out of its
        parent's list)."""
        stack = [node]
        table = self._tree_nodes
        while stack:
            n = stack.pop()
            stack.extend(n._children)
            table.pop(n._id, None)
            if n.data is not None and self.nodes.get(n.data.path) is n:
                del self.nodes[n.data.path]
                self.loaded.discard(n.data.path)
                self.in_flight.discard(n.data.path)
            n._children = []  # no parent/child cycles: the rows go by reference counting (see freeze_heap)

    def patch(self, path: str, items: list[Item]) -> None:
        """Replace the children of loaded dir ``path`` with ``items``, keeping nodes (and expansion) that stay."""
        node = self.nodes.get(path)
        if node is not None:
            updates: dict[str, Item | None] = {c.data.name: None for c in node._children if c.data is not None}
            updates.update((it.name, it) for it in items)
            self._splice(node, updates)
        self.in_flight.discard(path)
        self.post_message(self.Loaded(self, path))

    def update_names(self, path: str, updates: dict[str, Item | None]) -> None:
        """Live change of a few names in loaded dir ``path``: insert, relabel or remove just those rows."""
        node = self.nodes.get(path)
        if node is not None and path in self.loaded:
            self._splice(node, updates)

    def _splice(
        self,
        node: TreeNode[Item],
        updates: dict[str, Item | None],
        labels: dict[str, Text] | None = None,
        names: list[str] | None = None,
    ) -> None:
        """Apply ``{name: item, or None to remove}`` to ``node``'s children (sorted by name) in one merge pass.

        A row whose item is unchanged is kept as it is, one whose item changed is relabelled, one that changes
        shape (file <-> dir) is replaced; the tree is invalidated once. Each change finds its place by bisection
        and the rows between changes are copied as slices: inserting or removing k rows in a dir of n costs
        O(k log n) steps plus one copy of the list, so a burst of changes in a 100,000-row dir stays cheap for
        the event loop. If the cursor's row goes, the cursor moves to the row now in its place. Rows inserted
        above the cursor scroll the view with it (see :meth:`_build`). ``labels``: labels already made for the
        new items; ``names``: the children's names, if already read (in a worker thread).
        """
        made = labels or {}
        todo = sorted(updates.items())
        cursor = self.cursor_node
        children = node._children
        if names is None or len(names) != len(children):
            names = [ch.data.name if ch.data is not None else "" for ch in children]
        out: list[TreeNode[Item]] = []
        gone: list[TreeNode[Item]] = []
        cursor_at: int | None = None
        at = 0  # children before this are in ``out`` or gone
        for name, it in todo:
            pos = bisect.bisect_left(names, name, at)
            out.extend(children[at:pos])
            at = pos
            if pos < len(names) and names[pos] == name:
                ch = children[pos]
                at = pos + 1
                if it is not None and ch.data is not None and ch.data.expandable == it.expandable:
                    if ch.data != it:
                        ch.data = it
                        ch.set_label(made.get(name) or item_label(it))
                    out.append(ch)
                    continue
                gone.append(ch)
                if ch is cursor:
                    cursor_at = len(out)
            if it is not None:
                out.append(self._make_child(node, it, made.get(it.name)))
        out.extend(children[at:])
        if not gone and len(out) == len(node._children):
            return  # nothing in or out: relabelled rows refresh themselves
        _rows_added(max(0, len(out) - len(children) + len(gone)))
        node._children = out
        for ch in gone:
            self._forget(ch)
        node._updates += 1
        self._invalidate()
        if cursor_at is not None:
            self.move_to(out[min(cursor_at, len(out) - 1)] if out else (node if node is not self.root else None))
        elif cursor is not None and cursor.data is not None and cursor.data.path not in self.nodes:
            self.move_to(node if node is not self.root else None)  # it was below a row that went

    def _make_child(self, parent: TreeNode[Item], item: Item, label: Text | None = None) -> TreeNode[Item]:
        """A row for ``item`` under ``parent``, in our path index (the caller puts it in the parent's list)."""
        child = self._add_node(parent, item_label(item) if label is None else label, item)
        child._allow_expand = item.expandable
        self.nodes[item.path] = child
        return child

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
            self._select(node)
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
        # Not here: the cursor goes to the nearest ancestor this pane holds (a Tree always has a cursor
        # row, so with no such ancestor it stays); the line under the pane says why.
        if deepest is not None:
            self._select(deepest)

    def _select(self, node: TreeNode[Item]) -> None:
        if self.cursor_node is node:
            return
        self.move_to(node)
        self.scroll_to_node(node, animate=False)

    def move_to(self, node: TreeNode[Item] | None) -> None:
        """move_cursor, after the line index is rebuilt (new nodes have no line until then)."""
        _ = self._tree_lines
        self.move_cursor(node)

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

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Item]) -> None:
        data = event.node.data
        if data is not None and data.path not in self.loaded:
            self.load(data.path)
