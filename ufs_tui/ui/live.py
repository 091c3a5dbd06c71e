"""Live updates: the core's watcher reports through callbacks, the explorer screen receives Messages.

The flow (no thread ever calls into the event loop: threads only post)::

    Watcher thread (core)  --on_changes(Changes)-->  LayersChanged   (posted; a burst queued behind one
                           --on_ready()--------->   WatchReady        coalesces into it: can_replace)
                           --on_missing(roots)-->   RootsMissing
    event loop: the changes wait in ``pending`` while a relisting runs; otherwise one relisting starts:
    relisting worker (thread): explorer.apply(changes); for each pane (the Merged one first):
                               work_out_patch --> PanePatched (applied at once); at the end --> Relisted
    event loop: the next relisting starts, or the details follow; the layer counts are redone a second later.

Tests can wait for these Messages (``run_test(message_hook=...)``) instead of polling.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from textual.message import Message
from textual.timer import Timer

from ..core.watch import Changes
from ..core.watcher import Watcher
from .messages import post
from .widgets.pane import PanePatch, PaneState, work_out_patch

if TYPE_CHECKING:
    from .screens.explorer import ExplorerScreen

RECOUNT_AFTER = 1.0  # seconds after the last change before the layer counts are redone


class LayersChanged(Message, bubble=False):
    """The watcher saw files change: ``changes`` (merged dirs and names). Queued behind another one, it is
    merged into the later one, so a burst the screen has not caught up with arrives once."""

    def __init__(self, watcher: Watcher, changes: Changes) -> None:
        super().__init__()
        self.watcher = watcher
        self.changes = changes

    def can_replace(self, message: Message) -> bool:
        if isinstance(message, LayersChanged) and message.watcher is self.watcher:
            message.changes.update(self.changes)  # the later message carries both
            return True
        return False


class WatchReady(Message, bubble=False):
    """The watcher watches (from now on every change is seen; what came before is read again)."""

    def __init__(self, watcher: Watcher) -> None:
        super().__init__()
        self.watcher = watcher


class RootsMissing(Message, bubble=False):
    """The layer roots (or mount point) that are not directories changed: now ``missing``."""

    def __init__(self, watcher: Watcher, missing: list[str]) -> None:
        super().__init__()
        self.watcher = watcher
        self.missing = missing


class PanePatched(Message, bubble=False):
    """One pane's part of a relisting, posted as soon as it is worked out (the Merged pane's first)."""

    def __init__(self, patch: PanePatch) -> None:
        super().__init__()
        self.patch = patch


class Relisted(Message, bubble=False):
    """A relisting is over (its panes' patches came before): the merged dirs it touched, the roots changes
    were under."""

    def __init__(self, touched: set[str], roots: set[str]) -> None:
        super().__init__()
        self.touched = touched
        self.roots = roots


class LiveUpdates:
    """The explorer screen's live updates: its watcher, the changes waiting, the one relisting at a time."""

    def __init__(self, screen: ExplorerScreen) -> None:
        self.screen = screen
        self.watcher: Watcher | None = None
        self.ready = False  # the watcher has reported once: events from now on are seen
        self.missing: list[str] = []
        self.last_change: float | None = None
        self.change_events = 0
        self._restarts = 0  # of watchers replaced (another stack): theirs counted here
        self._pending = Changes()
        self._roots_dirty = False
        self.relisting = False
        self._recount: set[str] = set()
        self._counts_timer: Timer | None = None
        self._quit = threading.Event()

    @property
    def restarts(self) -> int:
        """Watchers that died on a name that is not UTF-8 and were started again."""
        return self._restarts + (self.watcher.restarts if self.watcher is not None else 0)

    @property
    def recount_due(self) -> bool:
        """The layer counts are to be redone shortly (a timer runs)."""
        return self._counts_timer is not None

    @property
    def busy(self) -> bool:
        """Changes wait or are being applied (tests wait for this to end)."""
        return self.relisting or bool(self._pending) or self._roots_dirty

    def wait(self, seconds: float) -> None:
        """Sleep in a worker thread, less if the screen is leaving."""
        self._quit.wait(seconds)

    # ------------------------------------------------------------ the watcher
    def start(self) -> None:
        """Watch the explorer's roots (layers and mount point) from now on: a fresh watcher."""
        self.stop()
        self.ready = False
        self.missing = []
        self._pending, self._roots_dirty = Changes(), False  # the old stack's
        screen = self.screen
        w: Watcher

        def changed(changes: Changes) -> None:
            post(screen, LayersChanged(w, changes))

        w = Watcher(
            screen.explorer.mapper,
            changed,
            on_ready=lambda: post(screen, WatchReady(w)),
            on_missing=lambda missing: post(screen, RootsMissing(w, missing)),
        )
        self.watcher = w
        w.start()

    def restart(self, watch: bool) -> None:
        """Another stack: stop watching the old roots; ``watch``: watch the new ones."""
        self.stop()
        self.ready = False
        self.missing = []
        if watch:
            self.start()

    def stop(self) -> None:
        if self.watcher is not None:
            self._restarts += self.watcher.restarts
            self.watcher.stop()
            self.watcher = None

    def close(self) -> None:
        """The screen is leaving: stop watching, and wake workers that wait."""
        self._quit.set()
        self.stop()
        if self._counts_timer is not None:
            self._counts_timer.stop()
            self._counts_timer = None

    # ------------------------------------------------------------ messages
    def changed(self, m: LayersChanged) -> None:
        if m.watcher is not self.watcher:
            return  # a watcher stopped since (another stack)
        self.last_change = time.time()
        self.change_events += m.changes.events
        self.screen.update_status()
        self._pending.update(m.changes)
        self.kick()

    def watch_ready(self, m: WatchReady) -> None:
        if m.watcher is self.watcher:
            self.ready = True
            self.roots_changed()  # what changed between the first listing and now was not seen: read it again

    def roots_missing(self, m: RootsMissing) -> None:
        if m.watcher is self.watcher:
            self.missing = m.missing
            self.roots_changed()

    def roots_changed(self) -> None:
        self._roots_dirty = True
        self.screen.update_status()
        self.kick()

    # ------------------------------------------------------------ relisting
    def kick(self) -> None:
        """Start the relisting of what waits, unless one runs (its result starts the next)."""
        if self.relisting or not (self._pending or self._roots_dirty):
            return
        changes, self._pending = self._pending, Changes()
        if self._roots_dirty:
            changes.roots.add("*")
            self._roots_dirty = False
        # The Merged pane first: it lists the merged dirs the layer panes then take their rows' fates from.
        trees = sorted(self.screen.trees(), key=lambda t: t.pane != "merged")
        states = [s for s in (t.state() for t in trees) if s is not None]
        self.relisting = True
        self._relist(changes, states)

    def _relist(self, changes: Changes, states: list[PaneState]) -> None:
        screen, explorer = self.screen, self.screen.explorer

        def work() -> None:
            try:
                explorer.apply(changes)
                for state in states:
                    post(screen, PanePatched(work_out_patch(state, changes)))
            finally:  # always: the screen waits for it before the next relisting
                post(screen, Relisted(set(changes.dirs), changes.touched | ({"*"} if changes.roots else set())))

        screen.run_worker(work, thread=True, group="live", name="relist", exit_on_error=False)

    def patched(self, m: PanePatched) -> None:
        m.patch.tree.apply_patch(m.patch)

    def relisted(self, m: Relisted) -> None:
        self.relisting = False
        self._recount |= m.roots
        if self._pending or self._roots_dirty:
            self.kick()
            return
        cur = self.screen.panes.current_path
        if cur is not None and (
            any(cur == d or cur.startswith(d.rstrip("/") + "/") for d in m.touched)
            or (cur.rsplit("/", 1)[0] or "/") in m.touched
        ):
            self.screen.schedule_details()
        if self._counts_timer is not None:
            self._counts_timer.stop()
        self._counts_timer = self.screen.set_timer(RECOUNT_AFTER, self._start_recount)

    def _start_recount(self) -> None:
        self._counts_timer = None
        roots, self._recount = self._recount, set()
        self.screen.start_counts(None if "*" in roots else frozenset(roots))
