"""The ``o`` screen's engine list in the explorer: every container the engines record (here podman's, in a
private storage root given as the CLI's --podman-root would give it), opened with the keyboard into the panes."""

from __future__ import annotations

import json
import os
import uuid

from textual.widgets import OptionList

from tests.engines.conftest import Engine
from tests.ui.helpers import names, open_screen, settle, wait_until
from ufs_tui.core.merge import OverlayView
from ufs_tui.core.stack import Stack
from ufs_tui.ui.app import make_app
from ufs_tui.ui.screens.mounts import MountsScreen


async def test_o_lists_an_engines_container_and_opens_it(podman: Engine, tmp_path: os.PathLike[str]) -> None:
    name = f"ui-{uuid.uuid4().hex[:8]}"
    podman.run("create", "--network", "none", "--name", name, "multi:1", "true")  # created: not mounted
    try:
        upper = json.loads(podman.run("inspect", name))[0]["GraphDriver"]["Data"]["UpperDir"]
        with open(f"{upper}/from-ui-test", "w") as f:  # a change in its writable layer, as a run would leave
            f.write("x\n")
        start = f"{tmp_path}/start"
        os.makedirs(start)
        app = make_app(Stack.build([start]), live=False, engines={"podman_root": podman.root})
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot)
            screen = await open_screen(pilot)
            sources = [e.source for e in screen.entries]
            assert f"podman:{name}" in sources and "podman-image:localhost/multi:1" in sources, sources
            await pilot.press("tab")
            entry_list = screen.query_one("#entry-list", OptionList)
            assert screen.focused is entry_list
            await pilot.press("home")
            for _ in range(sources.index(f"podman:{name}")):
                await pilot.press("down")
            await pilot.press("enter")
            await wait_until(pilot, lambda: not isinstance(app.screen, MountsScreen), "the screen to close")
            await wait_until(pilot, lambda: app.stack.upper is not None, "the container's stack")
            await settle(pilot)
            assert app.stack.upper is not None and app.stack.upper.path == upper
            assert names(app.pane_tree("upper")) == sorted(os.listdir(upper))
            merged = [e.name for e in OverlayView(app.stack).list_dir("/")]
            assert names(app.pane_tree("merged")) == merged and "from-ui-test" in merged
            # what podman itself mounts for the container is what the merged pane shows
            target = podman.run("mount", name).strip()
            try:
                assert sorted(os.listdir(target)) == sorted(merged)
            finally:
                podman.run("unmount", name)
    finally:
        podman.run("rm", "-f", name, check=False)
