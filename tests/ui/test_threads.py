"""Worker threads hand their results back to the event loop, also when the widget or the app is gone.

A pane's reload thread that finished while the app was quitting used to look the app up through its
(removed) widget, raise ``NoActiveAppError`` and turn a clean ``q`` into exit code 1 (seen in CI, in
the tmux test). These tests make that moment happen on purpose, with real threads and a real app.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from ufs_tui.core.demo import Demo
from ufs_tui.core.panes import Item
from ufs_tui.ui.threads import call_back

from .helpers import demo_app, settle, wait_until


async def test_call_back_runs_on_the_loop_and_says_when_the_app_is_gone(demo: Demo) -> None:
    app = demo_app(demo)
    ran: list[int] = []

    def in_thread(result: list[bool | BaseException]) -> None:
        try:
            result.append(call_back(app, lambda: ran.append(threading.get_ident())))
        except BaseException as e:  # noqa: BLE001 - handed to the test
            result.append(e)

    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        result: list[bool | BaseException] = []
        t = threading.Thread(target=in_thread, args=(result,))
        t.start()
        await wait_until(pilot, lambda: bool(result), "the thread's hand-back")
        t.join()
        assert result == [True]
        assert ran == [threading.get_ident()]  # it ran here, on the event loop's thread

        def boom() -> None:
            raise RuntimeError("a real error in the callback")

        errors: list[BaseException] = []

        def raising() -> None:
            try:
                call_back(app, boom)
            except RuntimeError as e:
                errors.append(e)

        t = threading.Thread(target=raising)
        t.start()
        await wait_until(pilot, lambda: bool(errors), "the callback's error")
        t.join()
        assert str(errors[0]) == "a real error in the callback"  # not swallowed while the app runs
    # The app has ended: nothing runs, and the thread learns it.
    result = []
    t = threading.Thread(target=in_thread, args=(result,))
    t.start()
    await asyncio.get_running_loop().run_in_executor(None, t.join)
    assert result == [False]
    assert len(ran) == 1


async def test_a_reload_that_ends_after_its_pane_was_removed_is_harmless(demo: Demo) -> None:
    app = demo_app(demo)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(pilot)
        tree = app.pane_tree("lower")
        assert tree.loader is not None
        real = tree.loader
        gate, entered = threading.Event(), threading.Event()
        got: list[str] = []

        def gated(path: str, status: str) -> list[Item]:
            entered.set()
            gate.wait(10)
            return real(path, status)

        original = tree._relisted

        def seen(gen: int, path: str, *rest: Any) -> None:
            got.append(path)
            original(gen, path, *rest)

        tree.loader = gated
        tree._relisted = seen  # type: ignore[method-assign]
        tree.reload(["/"])  # a live change: the thread now waits at the gate
        await wait_until(pilot, entered.is_set, "the reload thread")
        await tree.remove()  # the pane leaves the app, as every widget does when it quits
        gate.set()
        await wait_until(pilot, lambda: got == ["/"], "the reload's hand-back")
        assert app.is_running and app._exception is None


def test_call_back_is_the_only_hand_back_in_widgets() -> None:
    """Widgets and screens hand back through call_back (``self.app`` in a thread is the bug above)."""
    import pathlib

    ui = pathlib.Path(__file__).parents[2] / "ufs_tui" / "ui"
    offenders = [
        str(p.relative_to(ui))
        for sub in ("widgets", "screens")
        for p in (ui / sub).glob("*.py")
        if "self.app.call_from_thread" in p.read_text()
    ]
    assert offenders == []
