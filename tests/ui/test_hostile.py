"""Hostile layers in the UI: symlink loops, symlinks out of the layer, sockets, devices, and entries that vanish.

Each must get a row and details that describe it, never a crash, a hang, a read outside the layer
or raw control characters on screen.
"""

from __future__ import annotations

import os
import socket
import stat

from ufs_tui.core.model.stack import Stack
from ufs_tui.ui.app import make_app

from .helpers import goto, row, settle, text_of, wait_until


def _details_text(app: object) -> str:
    return text_of(app.query_one("#details-body"))  # type: ignore[attr-defined]


async def test_links_sockets_and_devices_are_described_not_followed(tmp_layers: str) -> None:
    low, up = os.path.join(tmp_layers, "l"), os.path.join(tmp_layers, "u")
    os.makedirs(low)
    os.makedirs(up)
    os.symlink("self", os.path.join(low, "self"))  # a loop of one
    os.symlink("b", os.path.join(low, "a"))  # a loop of two
    os.symlink("a", os.path.join(low, "b"))
    secret = os.path.join(tmp_layers, "outside-secret")
    with open(secret, "w") as f:
        f.write("OUTSIDE-THE-LAYER\n")
    os.symlink(secret, os.path.join(up, "escape"))  # absolute, out of the layer
    os.symlink("\x1b[31m[red]evil", os.path.join(up, "evil-target"))
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(os.path.join(up, "sock"))
    sock.close()
    if os.geteuid() == 0:
        os.mknod(os.path.join(low, "null1"), 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    stack = Stack.build([low], upper=up, xattr_ns="user")
    app = make_app(stack, live=False)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        merged = app.pane_tree("merged")
        assert "self" in row(merged, "/self")
        for path in ("/self", "/a", "/escape", "/sock", "/evil-target"):
            await goto(pilot, merged, path)
            d = app.main.details
            assert d is not None and d.path == path
            body = _details_text(app)
            assert "OUTSIDE-THE-LAYER" not in body  # the symlink is described, its target never read
            assert "\x1b" not in body
            assert d.content is None or d.content.kind in ("none", "error")
        await goto(pilot, merged, "/escape")
        assert secret in _details_text(app)  # its target is shown as text
        await goto(pilot, merged, "/evil-target")
        assert "\\x1b[31m[red]evil" in _details_text(app)  # escaped, and the markup is not applied
        assert "\\x1b[31m[red]evil" in row(merged, "/evil-target")
        if os.geteuid() == 0:
            await goto(pilot, merged, "/null1")
            assert app.main.details is not None and app.main.details.content is not None
            assert app.main.details.content.kind == "none"  # a device: never opened


async def test_entry_that_vanishes_after_listing(tmp_layers: str) -> None:
    low = os.path.join(tmp_layers, "l")
    os.makedirs(os.path.join(low, "d"))
    for n in ("keep", "gone"):
        with open(os.path.join(low, "d", n), "w") as f:
            f.write(n)
    stack = Stack.build([low], xattr_ns="user")
    app = make_app(stack, live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        merged = app.pane_tree("merged")
        await goto(pilot, merged, "/d/gone")
        os.unlink(os.path.join(low, "d", "gone"))  # gone between the listing and a look at it
        await pilot.press("up")
        await settle(pilot)
        await pilot.press("down")
        await settle(pilot)
        assert app.main.details is not None and app.main.details.path == "/d/gone"
        assert "OUTSIDE" not in _details_text(app)
        await pilot.press("r")  # reload: the row goes, the app lives on
        await settle(pilot)
        assert "/d/gone" not in merged.nodes and "/d/keep" in merged.nodes


async def test_escape_sequences_in_names_never_reach_the_screen(tmp_layers: str) -> None:
    """A copied-up file whose name holds an OSC title sequence and a newline: the diff header shows escapes;
    a lower root whose name holds one and goes missing: the status line shows escapes."""
    name = "t\x1b]0;PWNED\x07\nx"
    low, up = os.path.join(tmp_layers, "l\x1b]0;PWN2\x07"), os.path.join(tmp_layers, "u")
    os.makedirs(low)
    os.makedirs(up)
    for layer, data in ((low, "x\n"), (up, "y\n")):
        with open(os.path.join(layer, name), "w") as f:
            f.write(data)
    stack = Stack.build([low], upper=up, xattr_ns="user")
    app = make_app(stack, live=True)
    async with app.run_test(size=(140, 45)) as pilot:
        await settle(pilot)
        merged = app.pane_tree("merged")
        await goto(pilot, merged, "/" + name)
        d = app.main.details
        assert d is not None and d.diff
        assert "\x1b" not in d.diff and "\x07" not in d.diff
        assert "t\\x1b]0;PWNED\\x07\\nx" in d.diff  # the header names the file, escaped, on one line
        assert "\x1b" not in _details_text(app)
        os.rename(low, low + "-away")
        await wait_until(pilot, lambda: app.main.live.missing == [low], "the missing lower to be noticed")
        status = str(app.query_one("#status").render())
        assert "missing" in status and "\x1b" not in status and "\\x1b" in status
        os.rename(low + "-away", low)
        await wait_until(pilot, lambda: app.main.live.missing == [], "the lower to come back")
        await settle(pilot)
