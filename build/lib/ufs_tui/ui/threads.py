"""Handing a worker thread's result back to the event loop, also while the app quits."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import App


def call_back(app: App[Any], fn: Callable[..., object], *args: object) -> bool:
    """Run ``fn(*args)`` on ``app``'s event loop from a worker thread, and wait for it.

    Take ``app`` on the event loop, before the worker starts, never as ``widget.app`` in the thread: there
    it is looked up through the widget's parents, and a widget that was removed meanwhile (the app
    quitting, a screen closed) has none, which raised ``NoActiveAppError`` and turned a clean quit into
    exit code 1. ``fn`` runs only while the app runs (not once it has begun to shut down: its widgets
    are going); returns whether it ran. An error raised by ``fn`` itself is raised here.
    """
    ran = False

    def on_loop() -> object:
        nonlocal ran
        if not app.is_running:
            return None
        ran = True
        return fn(*args)

    try:
        app.call_from_thread(on_loop)
    except RuntimeError:
        if ran:
            raise
        return False  # the loop is gone (or closing): nowhere to hand back to
    return ran
