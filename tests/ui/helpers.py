"""Waiting helpers for Pilot tests: wait for workers and for conditions, with a bounded timeout."""

from __future__ import annotations

import os

from textual.pilot import Pilot

from ufs_tui.core.demo import Demo
from ufs_tui.ui.app import UfsApp, make_app
from ufs_tui.ui.pilot import goto, settle, settle_counts, wait_until
from ufs_tui.ui.screens.mounts import MountsScreen
from ufs_tui.ui.widgets.pane import PaneTree

__all__ = [
    "demo_app", "goto", "names", "open_screen", "row", "settle", "settle_counts", "text_of", "wait_until",
]  # fmt: skip


async def open_screen(pilot: Pilot[int]) -> MountsScreen:
    """Press ``o`` and wait for the open screen to have read the mount table and the engines' records."""
    app = pilot.app
    await pilot.press("o")
    await wait_until(pilot, lambda: isinstance(app.screen, MountsScreen), "the open screen")
    screen = app.screen
    assert isinstance(screen, MountsScreen)
    await wait_until(pilot, lambda: screen.loaded and screen.entries_loaded, "the mounts and engines to be read")
    return screen


def demo_app(demo: Demo, **options: object) -> UfsApp:
    opts: dict[str, object] = {"aliases": {demo.root: "$DEMO"}, "frozen": True, "live": False}
    opts.update(options)
    return make_app(demo.stack, notes=[], **opts)


def names(tree: PaneTree, path: str = "/") -> list[str]:
    node = tree.nodes[path]
    return [c.data.name for c in node.children if c.data is not None]


def row(tree: PaneTree, path: str) -> str:
    """The plain text of a row's label."""
    return tree.nodes[path].label.plain


def text_of(widget: object, width: int = 150) -> str:
    """The plain text a Static shows (its content rendered by Rich at ``width``)."""
    from rich.console import Console

    content = widget.content
    with open(os.devnull, "w") as sink:
        console = Console(width=width, record=True, color_system=None, file=sink)
        console.print(content)
    return console.export_text()
