"""An SVG snapshot of compare any two on the demo stack: lower:0 against the merged view, /etc/config's diff shown.

Deterministic as tests/ui/test_snapshots.py is (the demo's temp root shown as $DEMO, times and inodes hidden; the
sides are layer names, no temp path). The demo is made by a real kernel mount (root). Update with
``pytest tests/ui/test_compare_snapshot.py --snapshot-update``.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from textual.pilot import Pilot

from ufs_tui.core.demo import Demo, build_demo
from ufs_tui.ui.screens.compare import CompareScreen, CompareSetup, start_compare

from .helpers import demo_app, settle, wait_until


@pytest.fixture
def kernel_demo(root_mount: None) -> Iterator[Demo]:
    with build_demo(mode="kernel") as d:
        yield d


def test_compare_view(snap_compare: Any, kernel_demo: Demo) -> None:
    async def run_before(pilot: Pilot[int]) -> None:
        app: Any = pilot.app
        await settle(pilot)
        start_compare(app.main, app.stack, "lower:0", "merged", lambda path: None)
        await wait_until(pilot, lambda: isinstance(app.screen, CompareSetup), "the compare form")
        await pilot.press("enter")
        await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.done, "the comparison")
        screen: CompareScreen = app.screen
        config = [d.path for d in screen.rows].index("/etc/config")
        await pilot.press(*["down"] * config)
        await wait_until(pilot, lambda: screen.shown == config, "the diff of /etc/config")
        await settle(pilot)

    app = demo_app(kernel_demo, live=True)
    assert snap_compare(app, terminal_size=(120, 36), run_before=run_before)
