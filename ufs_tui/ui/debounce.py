"""Calling something once a burst of requests stops (cursor following, details): an event-loop timer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable


class Debounce:
    """Call ``fn`` once the requests stop for ``quiet`` seconds, and at the latest ``most`` seconds after the
    first request of a burst. An event-loop timer: cheap to restart on every key press."""

    def __init__(self, quiet: float, most: float, fn: Callable[[], object]) -> None:
        self.quiet = quiet
        self.most = most
        self.fn = fn
        self._handle: asyncio.TimerHandle | None = None
        self._first: float | None = None

    @property
    def pending(self) -> bool:
        return self._handle is not None

    def poke(self) -> None:
        loop = asyncio.get_running_loop()
        now = loop.time()
        if self._first is None:
            self._first = now
        if self._handle is not None:
            self._handle.cancel()
        self._handle = loop.call_at(min(now + self.quiet, self._first + self.most), self._fire)

    def cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
        self._handle = None
        self._first = None

    def _fire(self) -> None:
        self._handle = None
        self._first = None
        self.fn()
