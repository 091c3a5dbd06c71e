"""The explorer on engines' containers: the ``o`` screen's engine list (podman's, in a private storage root
given as the CLI's --podman-root would give it), opened with the keyboard into the panes; and commit, squash
and mount of a Docker container's layers, which never write in Docker's storage."""

from __future__ import annotations

import json
import os
import uuid

from textual.widgets import Input, OptionList, Static

from tests.engines.conftest import Engine
from tests.engines.test_engine_storage import listing
from tests.overlay import kernel_tree, model_tree
from tests.ui.helpers import names, open_screen, settle, text_of, wait_until
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.sources import open_source
from ufs_tui.ui.app import make_app
from ufs_tui.ui.screens.confirm import CommitScreen, ConfirmScreen, PromptScreen, SquashScreen
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


async def test_commit_squash_and_mount_of_a_docker_container_write_nothing_in_its_storage(
    docker: Engine, tmp_path: os.PathLike[str]
) -> None:
    """C asks where the new upper goes (nothing offered inside Docker's data root), S proposes no dir there,
    and m offers the read-only mount, which the kernel shows as the model does; Docker's dirs are the same
    names before and after."""
    name = f"ui-{uuid.uuid4().hex[:8]}"
    docker.run("run", "--name", name, "--network", "none", "multi:1", "sh", "-c", "echo x > /new")
    out = os.fspath(tmp_path)
    before = listing(docker.root)
    app = make_app(open_source(f"docker:{name}", docker_root=docker.root), live=False)
    try:
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot)
            await pilot.press("C")
            await wait_until(pilot, lambda: isinstance(app.screen, CommitScreen), "the commit form")
            form = app.screen
            said = text_of(form.query_one(Static), width=300)
            assert "Docker's data root" in said and "never writes" in said
            assert [i.value for i in form.query(Input)] == ["", ""]
            form.query_one("#commit-upper", Input).value = f"{out}/u"
            form.query_one("#commit-work", Input).value = f"{out}/w"
            await pilot.press("enter", "enter")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the confirmation")
            assert "never changed" in text_of(app.screen.query_one("#confirm-lines"), width=300)
            await pilot.press("y")
            await wait_until(
                pilot, lambda: app.stack.upper is not None and app.stack.upper.path == f"{out}/u", "commit"
            )
            await settle(pilot)
            assert sorted(os.listdir(out)) == ["u", "w"]
            await pilot.press("S")
            await wait_until(pilot, lambda: isinstance(app.screen, SquashScreen), "the squash form")
            assert app.screen.query_one("#squash-dest", Input).value == ""
            await pilot.press("escape")
            # m: the upper (now lower:0) is Docker's no more, the new one is ours; read-only: back to Docker's
            app.set_stack(open_source(f"docker:{name}", docker_root=docker.root))
            await settle(pilot)
            await pilot.press("m")
            await wait_until(pilot, lambda: isinstance(app.screen, ConfirmScreen), "the read-only offer")
            assert "Mount it read-only?" in str(app.screen.query_one("#confirm").border_title)
            await pilot.press("y")
            await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), "the target prompt")
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.handle is not None and not app.mount_busy, "the mount")
            assert app.handle is not None and app.stack.upper is None
            assert kernel_tree(app.handle.path) == model_tree(app.stack)
            assert "/new" in model_tree(app.stack)
        app.cleanup()  # unmounts
        assert listing(docker.root) == before
    finally:
        app.cleanup()
        docker.run("rm", "-f", name, check=False)


async def test_a_docker_container_shows_its_name_image_and_a_telling_lower_layer(docker: Engine) -> None:
    """The layer list says what was opened (the SOURCE), the upper's label the container and its image, and
    the Lower pane opens on the image's top layer, not on Docker's init layer (.dockerenv, /etc/hosts)."""
    name = f"ui-{uuid.uuid4().hex[:8]}"
    docker.run("create", "--name", name, "--network", "none", "multi:1", "true")
    try:
        stack = open_source(f"docker:{name}", docker_root=docker.root)
        assert stack.upper is not None and f"container {name} writable layer (image multi:1)" in stack.upper.label
        assert "init layer" in stack.lowers[0].label
        app = make_app(stack, live=False, source=f"docker:{name}")
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot)
            assert str(app.query_one("#layers").border_title) == f"Layers of docker:{name}"
            assert app.lower_layer == stack.lowers[1]
            assert names(app.pane_tree("lower")) == sorted(os.listdir(stack.lowers[1].path))
    finally:
        docker.run("rm", "-f", name, check=False)
