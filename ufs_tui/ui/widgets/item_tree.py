"""A Tree of :class:`~ufs_tui.core.panes.Item` rows keyed by path, made for dirs of tens of thousands of rows.

Rows are added in batches without a relayout per row, the line index is rebuilt in a few ms (Tree's own
rebuild makes a record and measures every row), and a change of some names in a big dir is spliced in
one merge pass. Textual's internals are touched only through :mod:`ufs_tui.ui.textual_internals`.
"""

from __future__ import annotations

import bisect

from rich.text import Text
from textual.geometry import Size
from textual.scrollbar import ScrollBar
from textual.widgets import Tree
from textual.widgets.tree import TreeNode

from ...core.model import status as S
from ...core.panes import Item
from .. import textual_internals as ti
from ..heap import rows_added
from .labels import item_label
from .scrollbar import fast_vertical_scrollbar

ROOT = Item("/", "/", "dir", S.LOWER, None)


class ItemTree(Tree[Item]):
    """``nodes``: path -> row, for every row in the tree."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("/", ROOT, id=id)
        self.show_root = False
        self.guide_depth = 2
        self.nodes: dict[str, TreeNode[Item]] = {"/": self.root}

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        return fast_vertical_scrollbar(self)

    def status_of(self, path: str) -> str:
        node = self.nodes.get(path)
        return node.data.status if node is not None and node.data is not None else S.LOWER

    def cursor_path(self) -> str | None:
        node = self.cursor_node
        return node.data.path if node is not None and node.data is not None else None

    def clear_rows(self) -> None:
        """Every row gone, the root kept (the old rows go by reference counting: see ufs_tui.ui.heap)."""
        old = list(self.nodes.values())
        self.clear()
        for n in old:
            ti.drop_children(n)
        ti.reset_node_table(self)
        self.root.data = ROOT
        self.nodes = {"/": self.root}

    # ------------------------------------------------------------ rendering
    def process_label(self, label: str | Text) -> Text:
        """A one-line Text is the label as it is (Tree copies every label to cut it at its first line)."""
        if isinstance(label, Text) and "\n" not in label.plain:
            return label
        return super().process_label(label)

    def get_label_width(self, node: TreeNode[Item]) -> int:
        """The width of a row, without rendering it (the default renders every row on each rebuild)."""
        return ti.label_width(node)

    def _build(self) -> None:
        """Tree._build, cheaper: the rows in order as a plain list of nodes, the line records Tree renders
        made only for the rows it asks for (:class:`~ufs_tui.ui.textual_internals.LazyLines`), no row measured.

        Tree's own build makes a record and a path list per row and measures every label: 70 ms for a
        20,000-row dir, on every change of the tree (a row added live, a dir opened). This one is a few
        ms. Rows wider than the pane are cropped (the pane does not scroll sideways), so the virtual
        width is the pane's width.
        """
        rows = ti.flatten(self.root, self.show_root)
        ti.set_lines(self, ti.LazyLines(rows, self.root, self.show_root))
        self.virtual_size = Size(max(1, self.size.width), len(rows))
        if self.cursor_line != -1:
            if self.cursor_node is not None:
                line = ti.line_of(self.cursor_node)
                shift = line - self.cursor_line
                self.cursor_line = line
                if shift and self.scroll_y > 0 or shift > 0:
                    # Rows came or went above the cursor (a live change): the view moves with it, so the
                    # cursor's row stays where it was on screen.
                    self.scroll_to(y=max(0, self.scroll_y + shift), animate=False, immediate=True)
            if self.cursor_line >= len(rows):
                self.cursor_line = -1

    # ----------------------------------------------------------------- rows
    def add_rows(self, parent: TreeNode[Item], items: list[Item], labels: list[Text]) -> None:
        """Append rows without a relayout per row (Tree.add invalidates the whole tree each time)."""
        make = self._make_child
        ti.append_children(parent, [make(parent, it, label) for it, label in zip(items, labels, strict=True)])

    def _make_child(self, parent: TreeNode[Item], item: Item, label: Text | None = None) -> TreeNode[Item]:
        """A row for ``item`` under ``parent``, in our path index (the caller puts it in the parent's list)."""
        child = ti.new_node(self, parent, item_label(item) if label is None else label, item, item.expandable)
        self.nodes[item.path] = child
        return child

    def forgot(self, path: str) -> None:
        """Row ``path`` left the tree (subclasses drop what they keep about it)."""

    def _forget(self, node: TreeNode[Item]) -> None:
        """Drop a node's subtree from our path index and from Tree's node table (the caller takes it out of its
        parent's list)."""
        for n in ti.forget_subtree(self, node):
            if n.data is not None and self.nodes.get(n.data.path) is n:
                del self.nodes[n.data.path]
                self.forgot(n.data.path)

    def splice(
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
        cursor = self.cursor_node
        children = ti.children(node)
        if names is None or len(names) != len(children):
            names = [ch.data.name if ch.data is not None else "" for ch in children]
        out: list[TreeNode[Item]] = []
        gone: list[TreeNode[Item]] = []
        cursor_at: int | None = None
        at = 0  # children before this are in ``out`` or gone
        for name, it in sorted(updates.items()):
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
        if not gone and len(out) == len(children):
            return  # nothing in or out: relabelled rows refresh themselves
        rows_added(max(0, len(out) - len(children) + len(gone)))
        ti.set_children(node, out)
        for ch in gone:
            self._forget(ch)
        ti.invalidate(self)
        if cursor_at is not None:
            self.move_to(out[min(cursor_at, len(out) - 1)] if out else (node if node is not self.root else None))
        elif cursor is not None and cursor.data is not None and cursor.data.path not in self.nodes:
            self.move_to(node if node is not self.root else None)  # it was below a row that went

    def reorder(self, node: TreeNode[Item], items: list[Item]) -> None:
        """Make ``node``'s children ``items``, in their order (rows not sorted by name: by size), keeping the rows
        that stay (and what is open under them). If the cursor's row goes, the cursor goes to ``node``."""
        cursor = self.cursor_node
        old = {ch.data.name: ch for ch in ti.children(node) if ch.data is not None}
        out: list[TreeNode[Item]] = []
        for it in items:
            ch = old.get(it.name)
            if ch is not None and ch.data is not None and ch.data.expandable == it.expandable:
                del old[it.name]
                if ch.data != it:
                    ch.data = it
                    ch.set_label(item_label(it))
                out.append(ch)
            else:
                out.append(self._make_child(node, it))
        rows_added(len(out))
        ti.set_children(node, out)
        for ch in old.values():
            self._forget(ch)
        ti.invalidate(self)
        if cursor is not None and cursor.data is not None and self.nodes.get(cursor.data.path) is not cursor:
            self.move_to(node if node is not self.root else (out[0] if out else None))

    # --------------------------------------------------------------- cursor
    def move_to(self, node: TreeNode[Item] | None) -> None:
        """move_cursor, after the line index is rebuilt (new nodes have no line until then)."""
        ti.ensure_lines(self)
        self.move_cursor(node)

    def select_row(self, node: TreeNode[Item]) -> None:
        if self.cursor_node is node:
            return
        self.move_to(node)
        self.scroll_to_node(node, animate=False)
