"""The mounts picker: every overlay mount on the host is listed; Enter opens the chosen one in the panes."""

from __future__ import annotations

import os

from textual.widgets import OptionList

from tests.overlay import mounted
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.ui.app import make_app
from ufs_tui.ui.screens.mounts import MountsScreen

from .helpers import goto, names, open_screen, settle, text_of, wait_until

HOSTILE = "m [red]x\nnl\x1b[31m"


def _layers(base: str) -> tuple[str, str, str, str]:
    low, up, work = (os.path.join(base, n) for n in ("lower", "upper", "work"))
    mnt = os.path.join(base, HOSTILE)
    for d in (low, up, work, mnt):
        os.makedirs(d)
    for name in ("from-lower", "both"):
        with open(os.path.join(low, name), "w") as f:
            f.write(name + "\n")
    with open(os.path.join(up, "from-upper"), "w") as f:
        f.write("up\n")
    with open(os.path.join(up, "both"), "w") as f:
        f.write("changed\n")
    return low, up, work, mnt


def _start_stack(base: str) -> Stack:
    d = os.path.join(base, "start")
    os.makedirs(d)
    with open(os.path.join(d, "start-file"), "w") as f:
        f.write("s\n")
    return Stack.build([d])


async def _pick(pilot: object, screen: MountsScreen, target: str) -> None:
    """Move the list's cursor to ``target`` with the keyboard and press Enter."""
    i = [m.target for m in screen.mounts].index(target)
    ol = screen.query_one("#mount-list", OptionList)
    await pilot.press("home")  # type: ignore[attr-defined]
    for _ in range(i):
        await pilot.press("down")  # type: ignore[attr-defined]
    assert ol.highlighted == i
    await pilot.press("enter")  # type: ignore[attr-defined]


async def test_pick_a_mount_and_see_its_stack(root_mount: None, tmp_layers: str) -> None:
    low, up, work, mnt = _layers(tmp_layers)
    with mounted([low], up, work, mnt):
        app = make_app(_start_stack(tmp_layers), live=False)
        async with app.run_test(size=(160, 45)) as pilot:
            await settle(pilot)
            assert names(app.pane_tree("merged")) == ["start-file"]
            await goto(pilot, app.pane_tree("merged"), "/start-file")
            screen = await open_screen(pilot)
            # Our mount is listed with its layers; the hostile target is shown escaped, never as markup.
            targets = [m.target for m in screen.mounts]
            assert mnt in targets
            ol = screen.query_one("#mount-list", OptionList)
            prompt = ol.get_option_at_index(targets.index(mnt)).prompt
            plain = prompt.plain if hasattr(prompt, "plain") else str(prompt)
            assert "m [red]x\\nnl\\x1b[31m" in plain
            assert "1 lower" in plain and f"upper {up}" in plain
            assert "\x1b" not in plain and "\n  1 lower" in plain
            status = text_of(screen.query_one("#mounts-status"))
            assert "overlay mount" in status
            await _pick(pilot, screen, mnt)
            await wait_until(pilot, lambda: not isinstance(app.screen, MountsScreen), "the screen to close")
            await wait_until(pilot, lambda: app.stack.upper is not None and app.stack.upper.path == up, "the new stack")
            await settle(pilot)
            view = OverlayView(app.stack)
            assert names(app.pane_tree("merged")) == [e.name for e in view.list_dir("/")]
            assert names(app.pane_tree("merged")) == ["both", "from-lower", "from-upper"]
            # another stack altogether: its first row, and details of it, not of the old cursor's path
            assert app.pane_tree("merged").cursor_path() == "/both"
            await wait_until(
                pilot, lambda: app.main.details is not None and app.main.details.path == "/both", "its details"
            )
            assert names(app.pane_tree("upper")) == ["both", "from-upper"]
            assert names(app.pane_tree("lower")) == ["both", "from-lower"]
            assert [la.path for la in app.stack.lowers] == [low]
            assert app.main.options.mount_point == mnt  # the mount itself is watched and checked too
            # What the kernel shows at the mount point is what the merged pane shows.
            assert sorted(os.listdir(mnt)) == names(app.pane_tree("merged"))


async def test_a_mount_gone_before_enter_says_why_and_stays(root_mount: None, tmp_layers: str) -> None:
    low, up, work, mnt = _layers(tmp_layers)
    app = make_app(_start_stack(tmp_layers), live=False)
    async with app.run_test(size=(160, 45)) as pilot:
        await settle(pilot)
        with mounted([low], up, work, mnt):
            screen = await open_screen(pilot)
            assert mnt in [m.target for m in screen.mounts]
        # unmounted now: Enter must explain, keep the list and keep the old stack
        await _pick(pilot, screen, mnt)
        await wait_until(
            pilot,
            lambda: screen.opening is None and "cannot open" in text_of(screen.query_one("#mounts-status")),
            "the error",
        )
        assert "not an overlay mount point" in text_of(screen.query_one("#mounts-status"), width=400)
        assert app.screen is screen
        await pilot.press("escape")
        await wait_until(pilot, lambda: not isinstance(app.screen, MountsScreen), "the screen to close")
        assert names(app.pane_tree("merged")) == ["start-file"]
