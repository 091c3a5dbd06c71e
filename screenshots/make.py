"""Make the README's screenshots (SVG) from the demo stack and a Docker 29 container and its archive:
``.venv/bin/python screenshots/make.py [NAME...]``.

Runs the real app headless with the same factory as the CLI, presses keys as a person would, waits
for the app to settle (never a fixed delay) and saves each view to ``screenshots/NAME.svg``. As root
the demo is a real kernel mount with every state (metacopy and redirect need root). The temp dir is
shown as ``$DEMO`` and times are hidden, so the pictures do not change from run to run.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Awaitable, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(HERE)
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from textual.pilot import Pilot  # noqa: E402

from ufs_tui.core.demo import Demo, build_demo  # noqa: E402
from ufs_tui.core.model.stack import Stack  # noqa: E402
from ufs_tui.core.mounting.record import runtime_dir  # noqa: E402
from ufs_tui.ui.app import UfsApp, make_app  # noqa: E402
from ufs_tui.ui.pilot import goto, settle, settle_counts, wait_until  # noqa: E402
from ufs_tui.ui.screens.compare import CompareScreen, CompareSetup  # noqa: E402
from ufs_tui.ui.screens.search import SearchScreen  # noqa: E402
from ufs_tui.ui.screens.waste import WasteScreen  # noqa: E402

Steps = Callable[[UfsApp, Pilot[int]], Awaitable[None]]


def at(path: str, pane: str = "merged", *keys: str) -> Steps:
    async def steps(app: UfsApp, pilot: Pilot[int]) -> None:
        await goto(pilot, app.pane_tree(pane), path)
        if keys:
            await pilot.press(*keys)
            await settle(pilot)

    return steps


async def search(app: UfsApp, pilot: Pilot[int]) -> None:
    await pilot.press("slash", *"conf")
    screen = app.screen
    assert isinstance(screen, SearchScreen)
    await wait_until(pilot, lambda: screen.done, "search results")


async def lower1(app: UfsApp, pilot: Pilot[int]) -> None:
    await pilot.press("right_square_bracket")
    await settle(pilot)
    await goto(pilot, app.pane_tree("lower"), "/gone.txt")


async def changes(app: UfsApp, pilot: Pilot[int]) -> None:
    await pilot.press("c")
    await settle(pilot)
    await goto(pilot, app.pane_tree("merged"), "/c")


async def waste(app: UfsApp, pilot: Pilot[int]) -> None:
    await pilot.press("w")
    screen = app.screen
    assert isinstance(screen, WasteScreen)
    await wait_until(pilot, lambda: screen.done, "the waste worker")
    await pilot.press("g")


async def layer_changes(app: UfsApp, pilot: Pilot[int]) -> None:
    await pilot.press("v")
    await settle(pilot)
    await goto(pilot, app.pane_tree("lower"), "/shadow.txt")


async def every_layer(app: UfsApp, pilot: Pilot[int]) -> None:
    await pilot.press("slash", *"gone", "ctrl+l")
    screen = app.screen
    assert isinstance(screen, SearchScreen)
    await wait_until(pilot, lambda: screen.done and screen.every_layer, "every layer's copies")


async def by_size(app: UfsApp, pilot: Pilot[int]) -> None:
    await pilot.press("z")
    await settle(pilot)
    await goto(pilot, app.pane_tree("merged"), "/bin/tool")


async def compare(app: UfsApp, pilot: Pilot[int]) -> None:
    await pilot.press("equals_sign")
    await wait_until(pilot, lambda: isinstance(app.screen, CompareSetup), "the compare form")
    await pilot.press("enter")
    await wait_until(pilot, lambda: isinstance(app.screen, CompareScreen) and app.screen.done, "the comparison")
    await pilot.press("down", "down", "down", "down", "down", "down", "down", "down", "down", "down", "down")


async def editor(app: UfsApp, pilot: Pilot[int]) -> None:
    await pilot.press("e")
    await settle(pilot)


async def mounted(app: UfsApp, pilot: Pilot[int]) -> None:
    """m, Enter: mounted in the runtime dir; the Merged pane reads the kernel's view (unmounted on exit)."""
    await pilot.press("m")
    await wait_until(pilot, lambda: app.screen is not app.screen_stack[0], "the mount prompt")
    await pilot.press("enter")
    await wait_until(pilot, lambda: app.handle is not None and not app.mount_busy, "the mount")
    await settle(pilot)
    await goto(pilot, app.pane_tree("merged"), "/manual/readme.md")


# name: (size, theme, steps, what it shows)
VIEWS: dict[str, tuple[tuple[int, int], str, Steps, str]] = {
    "main": ((160, 45), "textual-dark", at("/etc/config"), "a copied-up file: versions, xattrs and the diff"),
    "main-light": ((160, 45), "textual-light", at("/etc/config"), "the same in a light theme"),
    "small-80x24": ((80, 24), "textual-dark", at("/etc/config"), "at 80x24"),
    "whiteout": ((160, 45), "textual-dark", at("/f", "lower"), "a lower file deleted by a whiteout in the upper"),
    "opaque": ((160, 45), "textual-dark", at("/dir/one", "lower"), "what an opaque dir hides"),
    "redirect": ((160, 45), "textual-dark", at("/manual/readme.md"), "a renamed dir (redirect) and its origin"),
    "metacopy": ((160, 45), "textual-dark", at("/bin/tool"), "a metacopy file: data still below, hex view"),
    "lower1": ((160, 45), "textual-dark", lower1, "the bottom layer in the Lower pane"),
    "changes-only": ((160, 45), "textual-dark", changes, "changes only, like docker diff"),
    "search": ((160, 45), "textual-dark", search, "incremental search"),
    "every-layer": ((160, 45), "textual-dark", every_layer, "search every layer's copies: a deleted file found"),
    "waste": ((160, 45), "textual-dark", waste, "wasted space, grouped by the layer that caused it"),
    "layer-changes": ((160, 45), "textual-dark", layer_changes, "the Lower pane: what lower:0 changes (v)"),
    "by-size": ((160, 45), "textual-dark", by_size, "every row's size, a dir's total; z: largest first"),
    "compare": ((160, 45), "textual-dark", compare, "compare any two (=): lower:0 against the merged view"),
    "legend": ((100, 36), "textual-dark", at("/a", "merged", "l"), "the legend"),
    "help": ((100, 45), "textual-dark", at("/a", "merged", "question_mark"), "every key"),
    "editor": ((160, 45), "textual-dark", editor, "the stack editor"),
    "mounted": ((160, 45), "textual-dark", mounted, "mounted with m: the Merged pane is the kernel's view"),
}


async def shoot(demo: Demo, name: str, size: tuple[int, int], theme: str, steps: Steps, out_dir: str) -> str:
    aliases = {demo.root: "$DEMO", runtime_dir(): "$RUN"}
    app = make_app(demo.stack, notes=[demo.how], aliases=aliases, frozen=True, theme=theme)
    try:
        async with app.run_test(size=size) as pilot:
            await settle_counts(pilot)
            await steps(app, pilot)
            await settle_counts(pilot)
            return app.save_screenshot(f"{name}.svg", out_dir)
    finally:
        app.cleanup_mounts()


# Engine views: a running Docker 29 container (the containerd image store) that has changed things, and the
# `docker save` archive of its image; (source, what it shows), made by engine_views().
ENGINE_VIEWS = {
    "docker": "a running Docker 29 container: its name, image and changes, the Lower pane on the image's top layer",
    "archive": "a docker save archive read in place: a file's content and the diff against the layer below",
}


async def shoot_source(name: str, stack: Stack, source: str, aliases: dict[str, str], steps: Steps, what: str) -> None:
    app = make_app(stack, aliases=aliases, frozen=True, theme="textual-dark", source=source, live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle_counts(pilot)
        await steps(app, pilot)
        await settle_counts(pilot)
        path = app.save_screenshot(f"{name}.svg", HERE)
    print(f"{os.path.relpath(path, REPO)}  160x45  {what}")


async def engine_views(only: set[str]) -> None:
    """Docker 29 from the engines tarball (tests/engines/modern.py), with private roots; skipped without it."""
    from tests.engines import modern
    from tests.engines.conftest import CHANGES, make_rootfs
    from ufs_tui.core.sources import open_source

    if not modern.available():
        print("docker, archive: skipped (no engines tarball or runc)", file=sys.stderr)
        return
    with modern.docker29() as d29:
        root = f"{d29.base}/rootfs"
        make_rootfs(root)
        subprocess.run(["tar", "-C", root, "-cf", f"{root}.tar", "."], check=True)
        modern.docker_images(d29, f"{root}.tar")
        d29.cli.run("run", "-d", "--name", "web", "--network", "none", "multi:1", "sleep", "100000")
        d29.cli.run("exec", "web", "sh", "-c", CHANGES)
        aliases = {d29.base: "$ENGINE"}
        os.environ["DOCKER_HOST"] = d29.cli.env["DOCKER_HOST"]
        if not only or "docker" in only:
            stack = open_source("docker:web")
            await shoot_source("docker", stack, "docker:web", aliases, at("/etc/passwd"), ENGINE_VIEWS["docker"])
        if not only or "archive" in only:
            archive = f"{d29.base}/multi.tar"
            d29.cli.run("save", "-o", archive, "multi:1")
            steps = at("/layer2/keep/new")
            await shoot_source("archive", open_source(archive), "multi.tar", aliases, steps, ENGINE_VIEWS["archive"])


async def main() -> int:
    only = set(sys.argv[1:])
    with build_demo() as demo:
        if demo.notes:
            print(f"note: {'; '.join(demo.notes)}", file=sys.stderr)
        for name, (size, theme, steps, what) in VIEWS.items():
            if only and name not in only:
                continue
            path = await shoot(demo, name, size, theme, steps, HERE)
            print(f"{os.path.relpath(path, REPO)}  {size[0]}x{size[1]}  {what}")
    if not only or only & set(ENGINE_VIEWS):
        await engine_views(only)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
