"""Driving the app headless (tests, screenshots, benchmarks): wait for real conditions, press keys like a person.

Waits are for the app's own state (workers done, nothing loading, nothing pending) or for the Messages
workers post (:class:`MessageLog`), bounded by a timeout; nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence

from textual.message import Message
from textual.pilot import Pilot
from textual.worker import Worker, WorkerCancelled, WorkerState

from .app import UfsApp
from .panes import PANES
from .widgets.pane import PaneTree

TIMEOUT = 20.0


def _busy(app: UfsApp) -> list[Worker[object]]:
    return [w for w in app.workers if w.group != "counts" and not w.is_finished]


async def _wait_for(app: UfsApp, workers: Sequence[Worker[object]]) -> None:
    """Until these workers end; one cancelled meanwhile (an exclusive worker replaced by a newer one) is fine."""
    started = [w for w in workers if w.state != WorkerState.PENDING]
    try:
        await app.workers.wait_for_complete(started)
    except WorkerCancelled:
        pass


async def settle(pilot: Pilot[int], timeout: float = TIMEOUT) -> None:
    """Until no worker but the counter runs, no dir is loading, no change is being applied, no reveal is
    pending and the details have been shown."""
    app = pilot.app
    assert isinstance(app, UfsApp)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        busy = _busy(app)
        if busy:
            await _wait_for(app, busy)
        await pilot.pause()
        main = app.main
        if not _busy(app) and main.settled() and all(t.pending_reveal is None for t in main.trees()):
            await pilot.pause()
            if main.settled() and not _busy(app):
                return
        if loop.time() > deadline:
            raise AssertionError("the app did not settle")


async def settle_counts(pilot: Pilot[int], timeout: float = TIMEOUT) -> None:
    """Also wait for the layer counts (snapshots show them)."""
    app = pilot.app
    assert isinstance(app, UfsApp)
    await settle(pilot, timeout)
    counting = [w for w in app.workers if w.group == "counts" and not w.is_finished]
    if counting:
        await _wait_for(app, counting)
    await pilot.pause()


async def wait_until(pilot: Pilot[int], cond: Callable[[], bool], what: str, timeout: float = TIMEOUT) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause()


class MessageLog:
    """The Messages the app handles, as they are dispatched: give it to ``run_test(message_hook=...)``,
    then wait for one with :meth:`wait_for` (no polling: an asyncio event per wait)."""

    def __init__(self) -> None:
        self.seen: list[Message] = []
        self._waiters: list[tuple[type[Message], asyncio.Future[Message]]] = []

    def __call__(self, message: Message) -> None:
        self.seen.append(message)
        for kind, fut in list(self._waiters):
            if isinstance(message, kind) and not fut.done():
                fut.set_result(message)
                self._waiters.remove((kind, fut))

    def of(self, kind: type[Message]) -> list[Message]:
        return [m for m in self.seen if isinstance(m, kind)]

    async def wait_for(self, kind: type[Message], what: str, timeout: float = TIMEOUT) -> Message:
        """The next ``kind`` Message dispatched from now on."""
        fut: asyncio.Future[Message] = asyncio.get_running_loop().create_future()
        self._waiters.append((kind, fut))
        try:
            return await asyncio.wait_for(fut, timeout)
        except TimeoutError:
            raise AssertionError(f"timed out waiting for {what}") from None


async def goto(pilot: Pilot[int], tree: PaneTree, path: str) -> None:
    """Move the cursor in ``tree`` to ``path`` with the keyboard only (pane key, Home, Down, Right)."""
    await pilot.press(str(PANES.index(tree.pane) + 1))
    await settle(pilot)
    await pilot.press("home")
    parts = [p for p in path.split("/") if p]
    cur = ""
    for i, part in enumerate(parts):
        cur += "/" + part
        for _ in range(len(tree.nodes) + 1):
            if tree.cursor_path() == cur:
                break
            await pilot.press("down")
        else:
            raise AssertionError(f"{cur} not reachable in the {tree.pane} pane")
        if i < len(parts) - 1:
            await pilot.press("right")
            await settle(pilot)
            await pilot.press("right")  # to the first child
    await settle(pilot)
