"""Layer labels on screen: a real Docker container (the tests' private dockerd) opened in the explorer shows each
image layer's build step in the layer list, and the whole step and every id in the details panel while the
layer list has focus. What is expected comes from Docker itself (``docker history``, ``docker inspect``)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator

import pytest

from tests.engines.conftest import Engine
from ufs_tui.core.sources import open_source
from ufs_tui.ui.app import UfsApp, make_app
from ufs_tui.ui.pilot import settle, settle_counts, wait_until
from ufs_tui.ui.widgets.details import DetailsPanel

NAME = "ufs-labels"
HOSTILE_STEP = "echo '\x1b[31mred\x1b]0;PWN\x07' > /hostile"


@pytest.fixture(scope="module")
def container(docker: Engine) -> Iterator[str]:
    docker.run("run", "-d", "--name", NAME, "--network", "none", "multi:1", "sleep", "100000")
    yield NAME
    docker.run("rm", "-f", NAME, check=False)


@pytest.fixture(scope="module")
def hostile_image(docker: Engine, engine_tmp: str) -> str:
    """An image whose build step holds terminal escapes (ESC, BEL): they reach created_by as they are."""
    ctx = f"{engine_tmp}/hostile-ctx"
    os.makedirs(ctx, exist_ok=True)
    with open(f"{ctx}/Dockerfile", "w") as f:
        f.write(f"FROM multi:1\nRUN {HOSTILE_STEP}\n")
    docker.run("build", "--network", "none", "-t", "hostile:1", ctx)
    return "hostile:1"


def screen_lines(app: UfsApp) -> list[str]:
    """The characters on screen now, one string a row (what a person sees)."""
    return [strip.text for strip in app.screen._compositor.render_strips()]


def inspect(docker: Engine, what: str) -> dict[str, object]:
    return json.loads(docker.run("inspect", what))[0]  # type: ignore[no-any-return]


def steps(docker: Engine, image: str) -> list[str]:
    """created_by of the image's layers, top first (`docker history`; entries that made no layer left out)."""
    out = docker.run("history", "--no-trunc", "--format", "{{json .}}", image)
    rows = [json.loads(line) for line in out.splitlines()]
    return [r["CreatedBy"] or r["Comment"] for r in rows if r["Size"] != "0B"]


def chain_ids(diff_ids: list[str]) -> list[str]:
    """The image spec's ChainID formula, bottom first."""
    out = [diff_ids[0]]
    for d in diff_ids[1:]:
        out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


async def test_docker_container_labels_on_screen(docker: Engine, container: str) -> None:
    made_by = steps(docker, "multi:1")  # top first
    assert made_by[0].startswith("/bin/sh -c rm -rf /layer2/keep") and made_by[-1] == "Imported from -"
    stack = open_source(f"docker:{container}", docker_root=docker.root)

    # 80x24: the layer list (24 columns) shows each layer's step under its name, cut to fit, never wrapped
    async with make_app(stack, live=False).run_test(size=(80, 24)) as pilot:
        app = pilot.app
        assert isinstance(app, UfsApp)
        await settle_counts(pilot)
        lines = screen_lines(app)
        assert all(len(line) == 80 for line in lines)
        rows = [line[1:25] for line in lines]  # the layer list's inside
        for name, step in (
            ("upper", f"container {container}"),
            ("lower:0", "init layer (.dockerenv"),
            ("lower:1", "RUN " + made_by[0].removeprefix("/bin/sh -c ")),
            ("lower:2", "RUN " + made_by[1].removeprefix("/bin/sh -c ")),
        ):
            i = next(i for i, r in enumerate(rows) if r.strip(" ◀").startswith(name))
            shown = rows[i + 1].strip()
            assert shown.endswith("…") and step.startswith(shown[:-1]) and len(shown) > 15, (name, shown)
        await pilot.press("4")  # the layer list: scroll to the bottom layer
        await pilot.press("end")
        await settle(pilot)
        assert any("Imported from -" in line for line in screen_lines(app))

    # While the layer list has focus the details panel shows the highlighted layer's whole label
    info = inspect(docker, container)
    image = inspect(docker, "multi:1")
    diff_ids = list(image["RootFS"]["Layers"])  # type: ignore[index]
    chains = chain_ids(diff_ids)
    graph = image["GraphDriver"]["Data"]  # type: ignore[index]
    caches = [p.split("/")[-2] for p in [graph["UpperDir"], *graph["LowerDir"].split(":")]]  # top first
    mount_id = info["GraphDriver"]["Data"]["UpperDir"].split("/")[-2]  # type: ignore[index]
    async with make_app(stack, live=False).run_test(size=(200, 50)) as pilot:
        app = pilot.app
        assert isinstance(app, UfsApp)
        await settle(pilot)
        panel = app.query_one(DetailsPanel)
        await pilot.press("4", "home", "down")  # the Lower pane opens on lower:1 (not the init layer): go up
        await wait_until(pilot, lambda: panel.layer_shown == "lower:0", "the init layer's labels")
        text = "\n".join(screen_lines(app))
        assert "init layer (.dockerenv" in text and f"{mount_id}-init" in text
        for k, step in enumerate(made_by):  # lower:1 .. lower:3, top first
            await pilot.press("down")
            await wait_until(pilot, lambda k=k: panel.layer_shown == f"lower:{k + 1}", f"lower:{k + 1}'s labels")
            text = "\n".join(screen_lines(app))
            bottom_first = len(made_by) - 1 - k
            assert step in text  # the whole created_by, not cut
            assert diff_ids[bottom_first].split(":")[1] in text
            assert chains[bottom_first].split(":")[1] in text
            assert caches[k] in text
        await pilot.press("home")  # the upper: the container's ids
        await wait_until(pilot, lambda: panel.layer_shown == "upper", "the upper's labels")
        text = "\n".join(screen_lines(app))
        assert f"container {container} writable layer" in text and str(info["Id"]) in text and mount_id in text
        await pilot.press("3")  # focus leaves the list: the path's details come back
        await wait_until(pilot, lambda: panel.layer_shown is None, "the path details")
        assert "Details · layer" not in "\n".join(screen_lines(app))


async def test_hostile_build_step_is_escaped(docker: Engine, hostile_image: str) -> None:
    stack = open_source(f"docker-image:{hostile_image}", docker_root=docker.root)
    assert HOSTILE_STEP in stack.lowers[0].label  # the label holds the raw text; the screen never does
    for size in ((80, 24), (200, 50)):
        async with make_app(stack, live=False).run_test(size=size) as pilot:
            app = pilot.app
            assert isinstance(app, UfsApp)
            await settle(pilot)
            panel = app.query_one(DetailsPanel)
            await pilot.press("4")
            await wait_until(pilot, lambda p=panel: p.layer_shown == "lower:0", "the top layer's labels")
            text = "\n".join(screen_lines(app))
            assert "\x1b" not in text and "\x07" not in text
            assert "RUN echo '\\x1b[31m" in text  # escaped in the list, and whole in the details
            if size == (200, 50):
                assert "echo '\\x1b[31mred\\x1b]0;PWN\\x07' > /hostile" in text
