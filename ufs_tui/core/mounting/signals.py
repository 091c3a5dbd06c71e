"""Undoing a manager's mounts however the process ends: at exit, on SIGTERM, on SIGHUP (a dropped SSH session)."""

from __future__ import annotations

import atexit
import contextlib
import os
import signal
from collections.abc import Callable, Iterator
from typing import Any

from .mount import MountManager

_CLEANUP_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def install_signal_cleanup(manager: MountManager, then: Callable[[int], None] | None = None) -> Callable[[], None]:
    """Unmount everything ``manager`` holds at exit and on SIGTERM / SIGHUP.

    After cleaning up on a signal, ``then(signum)`` is called if given (the UI
    can exit its loop there); otherwise the signal's default action runs (the
    process ends with that signal). Returns a function that undoes the
    installation. Call from the main thread.
    """
    previous: dict[int, Any] = {}

    def handler(signum: int, frame: object) -> None:
        manager.unmount_all()
        if then is not None:
            then(signum)
            return
        signal.signal(signum, signal.SIG_DFL)
        os.kill(os.getpid(), signum)

    for sig in _CLEANUP_SIGNALS:
        previous[sig] = signal.signal(sig, handler)
    atexit.register(manager.unmount_all)

    def uninstall() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)
        atexit.unregister(manager.unmount_all)

    return uninstall


@contextlib.contextmanager
def managed_mounts(runtime: str | None = None, signals: bool = True) -> Iterator[MountManager]:
    """A :class:`MountManager` whose mounts are all undone when the block ends, at exit, and on SIGTERM/SIGHUP."""
    manager = MountManager(runtime)
    uninstall = install_signal_cleanup(manager) if signals else None
    try:
        yield manager
    finally:
        manager.unmount_all()
        if uninstall:
            uninstall()
