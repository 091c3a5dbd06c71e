"""Noticing a terminal that went away without a SIGHUP, and making sure the app then ends (no textual here).

A program started with ``su -c`` or ``setsid`` has no controlling terminal, so closing the window sends it
nothing; reads of stdin then just return nothing, forever. A thread polls stdin for POLLHUP / POLLNVAL /
POLLERR and then calls ``on_hangup`` (the App leaves as on SIGHUP, unmounting what it mounted; exit status
129).

It watches until the app has cleaned up (``cleaned`` is set), not only while it runs: the terminal may go
while the app is already leaving ('q', then the SSH session drops), and Textual's exit can then hang for
good (its writer thread ends on EIO from the lost terminal, and the writes queued after it block),
before its cleanup or after it. So if the app has not cleaned up ``grace`` seconds after the hangup, the
thread calls ``cleanup``; and if the process has not ended ``grace`` after that, the thread ends it.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import sys
import threading
from collections.abc import Callable

HANGUP_GRACE = 3.0  # seconds the app gets to clean up after the terminal went away


def stdin_terminal() -> int | None:
    """The fd of the terminal on stdin, or None (no terminal: nothing to watch)."""
    try:
        fd = sys.__stdin__.fileno() if sys.__stdin__ is not None else -1
        return fd if fd >= 0 and os.isatty(fd) else None
    except (OSError, ValueError):
        return None


def watch_hangup(
    fd: int,
    on_hangup: Callable[[], object],
    cleaned: threading.Event,
    cleanup: Callable[[], object],
    grace: float = HANGUP_GRACE,
) -> threading.Thread:
    """Start the watching thread (a daemon) on terminal ``fd``."""
    gone = select.POLLHUP | select.POLLNVAL | select.POLLERR

    def watch() -> None:
        poller = select.poll()
        poller.register(fd, 0)  # no events asked for: only hangup, error and a closed fd are reported
        while not cleaned.is_set():
            try:
                events = poller.poll(500)
            except OSError:
                continue
            if any(ev & gone for _, ev in events):
                break
        else:
            return  # cleaned up: the app has left
        with contextlib.suppress(RuntimeError):  # (the event loop is closed: the app is past it)
            on_hangup()
        if not cleaned.wait(grace):  # stuck: clean up here
            cleanup()
        # Nothing is left to do but leave; should the exit hang on the lost terminal, end as SIGHUP would.
        threading.Event().wait(grace)
        os._exit(128 + signal.SIGHUP)

    thread = threading.Thread(target=watch, name="ufs-hangup", daemon=True)
    thread.start()
    return thread
