"""Every private part of Textual the UI relies on is still where ufs_tui/ui/textual_internals.py expects it.

These fail (never skip) on a Textual that moved one: the pin in pyproject.toml keeps users off such a
Textual, and this test says which internal to adapt before the pin is raised. Also: no module of the
package but the fence touches Textual's private modules.
"""

from __future__ import annotations

import ast
import dataclasses
import inspect
from pathlib import Path

from textual.app import App, ComposeResult
from textual.widget import Widget
from textual.widgets import Static, Tree
from textual.widgets.tree import TreeNode

import ufs_tui
from ufs_tui.ui import textual_internals as ti

PACKAGE = Path(ufs_tui.__file__).parent
CLASSES: dict[str, type] = {"TreeNode": TreeNode, "Tree": Tree, "Widget": Widget, "App": App}


class _Probe(App[None]):
    def compose(self) -> ComposeResult:
        tree: Tree[str] = Tree("root", id="t")
        tree.root.add("dir").add_leaf("leaf")
        yield tree
        yield Static("x")


async def test_every_fenced_internal_is_there() -> None:
    app = _Probe()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        tree = app.query_one("#t", Tree)
        instances: dict[str, object] = {"TreeNode": tree.root.children[0], "Tree": tree, "Widget": tree, "App": app}
        missing = []
        for cls_name, attr, where in ti.INTERNALS:
            cls = CLASSES[cls_name]
            found = hasattr(instances[cls_name], attr) if where == "instance" else hasattr(cls, attr)
            if not found:
                missing.append(f"{cls_name}.{attr}")
        assert missing == [], f"textual {__import__('textual').__version__} moved: {missing}"


def test_signatures_and_records_we_call() -> None:
    fields = tuple(f.name for f in dataclasses.fields(ti._TreeLine))
    assert fields[: len(ti.TREE_LINE_FIELDS)] == ti.TREE_LINE_FIELDS
    assert list(inspect.signature(Tree._add_node).parameters)[1:4] == ["parent", "label", "data"]
    assert list(inspect.signature(App._start_widget).parameters)[1:3] == ["parent", "widget"]
    assert list(inspect.signature(Tree._build).parameters) == ["self"]
    assert isinstance(inspect.getattr_static(Tree, "_tree_lines"), property)


async def test_the_fenced_helpers_work_on_a_real_tree() -> None:
    app = _Probe()
    async with app.run_test(size=(40, 10)) as pilot:
        await pilot.pause()
        tree = app.query_one("#t", Tree)
        tree.root.expand_all()
        await pilot.pause()
        rows = ti.flatten(tree.root, tree.show_root)
        assert [str(n.label) for n in rows] == ["root", "dir", "leaf"]
        lines = ti.LazyLines(rows, tree.root, tree.show_root)
        assert len(lines) == 3 and lines[2].path == rows and lines[2].last
        node = ti.new_node(tree, tree.root, "new", "data", expandable=False)
        ti.append_children(tree.root, [node])
        ti.invalidate(tree)
        ti.ensure_lines(tree)
        assert ti.children(tree.root)[-1] is node and ti.line_of(node) == 3
        gone = ti.forget_subtree(tree, ti.children(tree.root)[0])
        assert [str(n.label) for n in gone] == ["dir", "leaf"]


def test_only_the_fence_imports_textual_private_modules() -> None:
    offenders = []
    for path in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            if any(n.startswith("textual") and "._" in n for n in names):
                offenders.append(str(path.relative_to(PACKAGE)))
    assert sorted(set(offenders)) == ["ui/textual_internals.py"], offenders


def test_only_the_fence_touches_the_internals() -> None:
    """No other UI module reads or sets one of the fenced attributes (``node._children`` ...); the core has no
    textual at all (tests/core/test_boundary.py)."""
    private = {attr for _, attr, _ in ti.INTERNALS}
    offenders = []
    for path in sorted((PACKAGE / "ui").rglob("*.py")):
        if path.name == "textual_internals.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Attribute) and node.attr in private:
                offenders.append(f"{path.relative_to(PACKAGE)}:{node.lineno}: .{node.attr}")
    assert offenders == []
