"""A running Docker container opened in the UI: what ``docker exec`` writes and deletes shows up live."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.engines.conftest import Engine
from ufs_tui.core.model import status as S
from ufs_tui.core.sources import open_source
from ufs_tui.ui.app import make_app
from ufs_tui.ui.pilot import settle, wait_until

NAME = "live1"


@pytest.fixture
def running(docker: Engine) -> Iterator[str]:
    docker.run("run", "-d", "--name", NAME, "--network", "none", "multi:1", "sleep", "100000")
    try:
        yield NAME
    finally:
        docker.run("rm", "-f", NAME, check=False)


async def test_docker_exec_write_appears_live(docker: Engine, running: str) -> None:
    stack = open_source(f"docker:{running}", docker_root=docker.root)
    assert stack.upper is not None
    app = make_app(stack, live=True)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.watch_ready, "the watcher to start")
        merged, upper = app.pane_tree("merged"), app.pane_tree("upper")
        assert "/live-file" not in merged.nodes
        assert "/etc" in merged.nodes and "/etc" not in upper.nodes
        # 1. a new file written inside the container: the runtime puts it in the container's upper dir
        await asyncio.to_thread(docker.run, "exec", running, "sh", "-c", "echo hello > /live-file")
        await wait_until(pilot, lambda: "/live-file" in merged.nodes and "/live-file" in upper.nodes, "/live-file")
        assert merged.nodes["/live-file"].data.status == S.NEW
        # 2. a lower file deleted inside the container: a whiteout in the upper, the name leaves the merged pane
        await asyncio.to_thread(docker.run, "exec", running, "rm", "/layer3")
        await wait_until(pilot, lambda: "/layer3" not in merged.nodes, "/layer3 to leave the merged pane")
        await wait_until(pilot, lambda: "/layer3" in upper.nodes, "the whiteout in the upper pane")
        assert upper.nodes["/layer3"].data.status == S.WHITEOUT
        # 3. a lower file changed inside the container: copied up
        await asyncio.to_thread(docker.run, "exec", running, "sh", "-c", "echo more >> /etc/passwd")
        await wait_until(pilot, lambda: "/etc" in upper.nodes, "the copied-up /etc to show in the upper pane")
        merged.nodes["/etc"].expand()
        await wait_until(
            pilot,
            lambda: "/etc/passwd" in merged.nodes and merged.nodes["/etc/passwd"].data.status == S.COPIED_UP,
            "/etc/passwd to show as copied up",
        )
        # The UI agrees with the engine: what docker diff lists as added is in the merged pane.
        diff = await asyncio.to_thread(docker.run, "diff", running)
        assert "A /live-file" in diff.splitlines() and "D /layer3" in diff.splitlines()
        await settle(pilot)
