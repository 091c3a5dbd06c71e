"""The watcher: a thread that watches every layer root (and the mount point) and reports through callbacks.

It maps the paths ``watchfiles`` (inotify) reports to the merged dirs they change (a
:class:`~ufs_tui.core.watch.Changes` per batch) and calls, in its own thread:

* ``on_ready()`` once it watches (and again after each restart): what changed before was not seen,
  so the caller reads everything again;
* ``on_changes(changes)`` for each batch of events (bursts are batched: at most ``max_batch_ms`` apart);
* ``on_missing(roots)`` when the set of roots that are not directories changes (a layer removed, or back):
  the watch restarts on the roots there are.

A name that is not valid UTF-8 kills watchfiles' watcher: it is started again (``restarts`` counts that),
and ``on_ready`` says so. No textual here: the UI turns the callbacks into Messages.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from .model.content import is_dir
from .watch import ChangeMapper, Changes

DEBOUNCE_MS = 20  # watchfiles: wait this long for more events...
MAX_BATCH_MS = 100  # ...but never longer than this before reporting a burst


class Watcher:
    """Watches ``mapper.roots`` in a daemon thread from :meth:`start` until :meth:`stop`."""

    def __init__(
        self,
        mapper: ChangeMapper,
        on_changes: Callable[[Changes], object],
        on_ready: Callable[[], object] = lambda: None,
        on_missing: Callable[[list[str]], object] = lambda missing: None,
        *,
        debounce_ms: int = DEBOUNCE_MS,
        max_batch_ms: int = MAX_BATCH_MS,
    ) -> None:
        self.mapper = mapper
        self.on_changes = on_changes
        self.on_ready = on_ready
        self.on_missing = on_missing
        self.debounce_ms = debounce_ms
        self.max_batch_ms = max_batch_ms
        self.restarts = 0  # watchers that died on a name that is not UTF-8 and were started again
        self.missing: list[str] = []  # roots that are not directories, as last reported
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    @property
    def alive(self) -> bool:
        """The thread runs (after :meth:`stop`, until it has noticed)."""
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="ufs-watch", daemon=True)
        self._thread.start()

    def stop(self, timeout: float | None = None) -> None:
        """Stop watching: no callback comes after this returns, except one already under way (``timeout``:
        wait that long for the thread to end)."""
        self._stop.set()
        if timeout is not None and self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``, less if stopped meanwhile; whether it was stopped."""
        return self._stop.wait(seconds)

    def _missing_roots(self) -> list[str]:
        return [r for r in self.mapper.roots if not is_dir(r)]

    def _run(self) -> None:
        from watchfiles._rust_notify import WatchfilesRustInternalError

        while not self._stop.is_set():
            missing = self._missing_roots()
            if missing != self.missing:
                self.missing = missing
                self._call(self.on_missing, missing)
            roots = [r for r in self.mapper.roots if r not in missing]
            if not roots:
                self._stop.wait(0.5)
                continue
            try:
                self._watch(roots)
            except OSError:
                self._stop.wait(0.5)
            except WatchfilesRustInternalError:
                # An event for a path that is not valid UTF-8: watchfiles cannot hand it over and its watcher
                # dies. Start a new one; it reports ready again once it runs (what changed was not seen).
                self.restarts += 1
                self._stop.wait(0.1)

    def _watch(self, roots: list[str]) -> None:
        """One watchfiles watch, until stopped or the missing roots change (then the caller starts another)."""
        from watchfiles import watch

        ready = False
        for batch in watch(
            *roots,
            watch_filter=None,
            debounce=self.max_batch_ms,
            step=self.debounce_ms,
            rust_timeout=500,
            yield_on_timeout=True,
            stop_event=self._stop,
            ignore_permission_denied=True,
            raise_interrupt=False,
        ):
            if not ready:
                ready = True
                self._call(self.on_ready)
            if batch:
                self._call(self.on_changes, self.mapper.map(p for _, p in batch))
            if self._missing_roots() != self.missing:
                return

    def _call(self, fn: Callable[..., object], *args: object) -> None:
        if not self._stop.is_set():
            fn(*args)
