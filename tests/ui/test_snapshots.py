"""SVG snapshots of the demo stack at 80x24 and 160x45, dark and light.

Deterministic: the demo's temp root is shown as $DEMO, times and inodes are hidden (the app's
``frozen`` option), so a rebuilt demo gives the same picture. The demo is made by a real kernel
mount (root), which has every state (metacopy and redirect need root). Update with
``pytest tests/ui/test_snapshots.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from ufs_tui.core.demo import Demo, build_demo

from .helpers import demo_app, goto, settle, wait_until


@pytest.fixture
def kernel_demo(root_mount: None) -> Iterator[Demo]:
    with build_demo(mode="kernel") as d:
        yield d


def _at(path: str, pane: str = "merged", then: tuple[str, ...] = ()) -> Any:
    async def run_before(pilot: Pilot[int]) -> None:
        await settle(pilot)
        app: Any = pilot.app
        await goto(pilot, app.pane_tree(pane), path)
        if then:
            await pilot.press(*then)
        await settle(pilot)

    return run_before


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
@pytest.mark.parametrize("size", [(80, 24), (160, 45)])
def test_main_view(snap_compare: Any, kernel_demo: Demo, theme: str, size: tuple[int, int]) -> None:
    app = demo_app(kernel_demo, theme=theme, live=True)
    assert snap_compare(app, terminal_size=size, run_before=_at("/etc/config"))


def test_lower_pane_whiteout(snap_compare: Any, kernel_demo: Demo) -> None:
    app = demo_app(kernel_demo, live=True)
    assert snap_compare(app, terminal_size=(160, 45), run_before=_at("/f", pane="lower"))


def test_legend(snap_compare: Any, kernel_demo: Demo) -> None:
    app = demo_app(kernel_demo, live=True)
    assert snap_compare(app, terminal_size=(80, 24), run_before=_at("/a", then=("l",)))


def test_waste_view(snap_compare: Any, kernel_demo: Demo) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        await settle(pilot)
        await pilot.press("w")
        screen: Any = pilot.app.screen
        await wait_until(pilot, lambda: screen.done, "the waste worker")
        await pilot.press("g")
        await settle(pilot)

    app = demo_app(kernel_demo, live=True)
    assert snap_compare(app, terminal_size=(120, 30), run_before=run_before)
