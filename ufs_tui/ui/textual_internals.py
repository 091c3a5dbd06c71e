"""Every private part of Textual ufs_tui relies on, fenced in this one module (pyproject pins textual below 9).

Textual's public Tree API adds rows one at a time (a relayout each) and rebuilds its line index with a
record and a measure per row on every change; Widget renders scrollbars through Rich on every scroll. For
20,000-row dirs and a repaint per key the panes do both themselves (:mod:`ufs_tui.ui.widgets.item_tree`,
:mod:`ufs_tui.ui.widgets.scrollbar`), touching Textual's internals only through the functions here.

:data:`INTERNALS` names each private attribute used; ``tests/ui/test_textual_internals.py`` checks every
one (and the signatures called) against the installed Textual and fails when one moves. No fallback:
the pin and that test keep a Textual that moved them from being used.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

from textual.scrollbar import ScrollBar
from textual.widget import Widget
from textual.widgets import Tree
from textual.widgets._tree import _TreeLine
from textual.widgets.tree import TreeNode

T = TypeVar("T")

# (class, attribute, where it lives): "instance" attributes are set in __init__, "class" ones are methods or
# properties. The line record: textual.widgets._tree._TreeLine(path, last).
INTERNALS: tuple[tuple[str, str, str], ...] = (
    ("TreeNode", "_children", "instance"),
    ("TreeNode", "_parent", "instance"),
    ("TreeNode", "_expanded", "instance"),
    ("TreeNode", "_allow_expand", "instance"),
    ("TreeNode", "_label", "instance"),
    ("TreeNode", "_line", "instance"),
    ("TreeNode", "_id", "instance"),
    ("TreeNode", "_updates", "instance"),
    ("Tree", "_tree_nodes", "instance"),
    ("Tree", "_tree_lines_cached", "instance"),
    ("Tree", "_tree_lines", "class"),
    ("Tree", "_build", "class"),
    ("Tree", "_add_node", "class"),
    ("Tree", "_invalidate", "class"),
    ("Widget", "_vertical_scrollbar", "instance"),
    ("App", "_start_widget", "class"),
)
TREE_LINE_FIELDS = ("path", "last")


# ------------------------------------------------------------------ TreeNode
def children(node: TreeNode[T]) -> list[TreeNode[T]]:
    """The node's children list itself (not a copy: a live relisting checks it is still the same list)."""
    return node._children


def set_children(node: TreeNode[T], rows: list[TreeNode[T]]) -> None:
    """Replace the children list (the tree is invalidated by the caller, once)."""
    node._children = rows
    node._updates += 1


def append_children(node: TreeNode[T], rows: list[TreeNode[T]]) -> None:
    node._children.extend(rows)
    node._updates += 1


def drop_children(node: TreeNode[T]) -> None:
    """Forget the children without touching them: no parent/child cycles, the rows go by reference counting."""
    node._children = []


def set_expanded_flag(node: TreeNode[T], expanded: bool) -> None:
    """Open or close a node without the events and the rebuild ``expand()`` makes (rows are being added)."""
    node._expanded = expanded


def line_of(node: TreeNode[T]) -> int:
    return node._line


def label_width(node: TreeNode[T]) -> int:
    """A row's width without rendering it (Tree's own get_label_width renders every row on each rebuild)."""
    return node._label.cell_len + (2 if node._allow_expand else 0)


# ---------------------------------------------------------------------- Tree
def new_node(tree: Tree[T], parent: TreeNode[T], label: Any, data: T, expandable: bool) -> TreeNode[T]:
    """A node in the tree's node table, not yet in its parent's list (the caller puts it there)."""
    node = tree._add_node(parent, label, data)
    node._allow_expand = expandable
    return node


def forget_subtree(tree: Tree[T], node: TreeNode[T]) -> list[TreeNode[T]]:
    """Take ``node`` and everything under it out of the tree's node table and break their child lists; the
    nodes taken out (the caller takes ``node`` out of its parent's list)."""
    out = []
    stack = [node]
    table = tree._tree_nodes
    while stack:
        n = stack.pop()
        stack.extend(n._children)
        table.pop(n._id, None)
        n._children = []
        out.append(n)
    return out


def reset_node_table(tree: Tree[T]) -> None:
    """Only the root in the node table (Tree.clear keeps the old nodes there)."""
    tree._tree_nodes = {tree.root._id: tree.root}


def invalidate(tree: Tree[T]) -> None:
    """The line index is stale: rebuilt (by :meth:`Tree._build`) before the next paint."""
    tree._invalidate()


def ensure_lines(tree: Tree[T]) -> None:
    """Rebuild the line index now if it is stale (new nodes have no line until then)."""
    _ = tree._tree_lines


def flatten(root: TreeNode[T], show_root: bool) -> list[TreeNode[T]]:
    """The rows in display order (open nodes' children under them), each node told its line."""
    rows: list[TreeNode[T]] = []
    add = rows.append
    stack = [iter([root] if show_root else root._children)]
    while stack:
        for node in stack[-1]:
            node._line = len(rows)
            add(node)
            if node._expanded and node._children:
                stack.append(iter(node._children))
                break
        else:
            stack.pop()
    return rows


def set_lines(tree: Tree[T], lines: Sequence[Any]) -> None:
    """Install the line records Tree renders from (a :class:`LazyLines`: Tree reads it like its list)."""
    tree._tree_lines_cached = lines  # type: ignore[assignment]


class LazyLines(Sequence[Any]):
    """Tree's line records (``_TreeLine``: the path from the top to the row, and whether it is the last of
    its siblings), made when Tree asks for a row: it renders only the visible ones."""

    __slots__ = ("rows", "root", "show_root", "_made")

    def __init__(self, rows: list[TreeNode[Any]], root: TreeNode[Any], show_root: bool) -> None:
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


# -------------------------------------------------------------------- Widget
def vertical_scrollbar(widget: Widget, make: Callable[[], ScrollBar]) -> ScrollBar:
    """``Widget.vertical_scrollbar`` with a bar of our own class (``make``): Widget keeps it in a private slot
    and starts it itself."""
    if widget._vertical_scrollbar is None:
        widget._vertical_scrollbar = bar = make()
        bar.display = False
        widget.app._start_widget(widget, bar)
    return widget._vertical_scrollbar
