"""Worker threads hand their results back as Messages, also when the widget or the app is gone.

A pane's worker that finished while the app was quitting used to look the app up through its (removed)
widget, raise ``NoActiveAppError`` and turn a clean ``q`` into exit code 1 (seen in CI, in the tmux
test). These tests make that moment happen on purpose, with real threads and a real app.
"""

from __future__ import annotations

import asyncio
import pathlib
import threading

from textual.message import Message
from textual.widgets import Static

from ufs_tui.core.demo import Demo
from ufs_tui.core.panes import Item
from ufs_tui.ui.messages import post

from .helpers import demo_app, settle, wait_until

UI = pathlib.Path(__file__).parents[2] / "ufs_tui" / "ui"


class Ping(Message):
    def __init__(self, thread: int) -> None:
        super().__init__()
        self.thread = thread


class Catcher(Static):
    def __init__(self) -> None:
        super().__init__("")
        self.got: list[tuple[int, int]] = []  # (the posting thread, the handling thread)

    def on_ping(self, m: Ping) -> None:
        self.got.append((m.thread, threading.get_ident()))


async def test_post_reaches_the_loop_and_says_when_the_receiver_is_gone(demo: Demo) -> None:
    app = demo_app(demo)
    results: list[bool | BaseException] = []

    def in_thread(receiver: Catcher) -> None:
        try:
            results.append(post(receiver, Ping(threading.get_ident())))
        except BaseException as e:  # noqa: BLE001 - handed to the test
            results.append(e)

    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        catcher = Catcher()
        await app.main.mount(catcher)
        t = threading.Thread(target=in_thread, args=(catcher,))
        t.start()
        t.join()
        await wait_until(pilot, lambda: bool(catcher.got), "the message")
        assert results == [True]
        poster, handler = catcher.got[0]
        assert poster == t.ident and handler == threading.get_ident()  # handled here, on the event loop
        await catcher.remove()
        t = threading.Thread(target=in_thread, args=(catcher,))
        t.start()
        await asyncio.get_running_loop().run_in_executor(None, t.join)
        assert results[1] is False  # the receiver has left: not delivered, no error
    # The app has ended: nothing is delivered, and the thread learns it without an error.
    t = threading.Thread(target=in_thread, args=(app.main,))
    t.start()
    await asyncio.get_running_loop().run_in_executor(None, t.join)
    assert results[2] is False and len(catcher.got) == 1


async def test_a_load_that_ends_after_its_pane_was_removed_is_harmless(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        tree = app.pane_tree("lower")
        assert tree.loader is not None
        real = tree.loader
        gate, entered, done = threading.Event(), threading.Event(), threading.Event()

        def gated(path: str, status: str) -> list[Item]:
            entered.set()
            gate.wait(10)
            try:
                return real(path, status)
            finally:
                done.set()

        tree.loader = gated
        node = next(n for n in tree.nodes.values() if n.data is not None and n.data.expandable)
        assert node.data is not None
        tree.load(node.data.path)  # the load thread now waits at the gate
        await wait_until(pilot, entered.is_set, "the load thread")
        await tree.remove()  # the pane leaves the app, as every widget does when it quits
        gate.set()
        await wait_until(pilot, done.is_set, "the load to end")
        await app.workers.wait_for_complete()  # its Listed went to a pane that is gone: nothing happens
        await pilot.pause()
        assert app.is_running and app._exception is None


def test_no_call_from_thread_relays_in_the_ui() -> None:
    """Workers post Messages (ufs_tui.ui.messages.post); nothing under ufs_tui/ui relays through call_from_thread."""
    offenders = [str(p.relative_to(UI)) for p in UI.rglob("*.py") if "call_from_thread" in p.read_text()]
    assert offenders == []
