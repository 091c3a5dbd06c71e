"""The details panel and the line under each pane follow the cursor once it rests a moment.

They are read and rendered in a thread worker, one at a time, which posts :class:`DetailsReady`; the
screen shows it (holding a key down stays smooth: the event loop only copies rendered lines).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message
from textual.widgets import Static
from textual.worker import get_current_worker

from ..core.details import Details
from .debounce import Debounce
from .messages import post
from .panes import PANES
from .widgets.details import DetailsPanel, Prerendered, render_details
from .widgets.labels import status_words

if TYPE_CHECKING:
    from .screens.explorer import ExplorerScreen

DETAILS_QUIET = 0.08  # like the panes' cursor following (ufs_tui.ui.panes), a little later
DETAILS_MAX = 0.3

Wheres = dict[str, tuple[str | None, str]]


class DetailsReady(Message, bubble=False):
    """A details worker's result (``details`` None: it was cancelled or failed; nothing to show)."""

    def __init__(self, details: Details | None, renderable: object = None, wheres: Wheres | None = None) -> None:
        super().__init__()
        self.details = details
        self.renderable = renderable
        self.wheres = wheres or {}


class DetailsFollower:
    """``mode``: "auto" (the diff when there is one), "diff" or "content"; ``details``: what is shown."""

    def __init__(self, screen: ExplorerScreen) -> None:
        self.screen = screen
        self.mode = "auto"
        self.details: Details | None = None
        self._debounce = Debounce(DETAILS_QUIET, DETAILS_MAX, self._fire)
        self._loading = False  # a worker runs, or its result is not shown yet
        self._where_shown: dict[str, tuple[str | None, str] | None] = {}

    @property
    def pending(self) -> bool:
        return self._debounce.pending or self._loading

    def schedule(self) -> None:
        self._debounce.poke()

    def cancel(self) -> None:
        self._debounce.cancel()

    def toggle_diff(self) -> None:
        d = self.details
        showing_diff = self.mode == "diff" or (self.mode == "auto" and d is not None and bool(d.diff))
        self.mode = "content" if showing_diff else "diff"
        if self.details is not None:
            self.schedule()  # rendered in the details worker: a long file would stall the loop here

    def _fire(self) -> None:
        screen = self.screen
        path = screen.panes.current_path
        if path is None or not screen.is_running:
            return
        if self._loading:
            # One details worker at a time: a cancelled thread worker runs on to its next check, and several
            # at once (a key held down) would take the GIL from the UI. Try again shortly.
            self._debounce.poke()
            return
        self._loading = True
        panes, explorer, alias = screen.panes, screen.explorer, screen.options.alias
        pane = panes.current_pane
        source = panes.source_of(pane)
        sources = {p: panes.source_of(p) for p in PANES if panes.has_source(p)}
        mode, frozen, dark = self.mode, screen.options.frozen, screen.app.current_theme.dark
        width = screen.query_one(DetailsPanel).content_width()

        # exit_on_error=False: a signal can end the app while details load; that must not turn a clean
        # SIGTERM/SIGHUP exit into return code 1.
        def work() -> None:
            ready = DetailsReady(None)
            try:
                merged = explorer.merged_path_of(source, path)  # where() takes merged paths
                wheres = {p: explorer.where(src, merged) for p, src in sources.items()}
                d = explorer.details(source, path, alias)
                if get_current_worker().is_cancelled:
                    return
                renderable = Prerendered(render_details(d, mode, frozen, dark), width)
                if not get_current_worker().is_cancelled:
                    ready = DetailsReady(d, renderable, wheres)
            finally:
                post(screen, ready)

        screen.run_worker(work, thread=True, group="details", exit_on_error=False)

    def ready(self, m: DetailsReady) -> None:
        self._loading = False
        if m.details is None:
            return
        self.details = m.details
        screen = self.screen
        screen.query_one(DetailsPanel).show(m.details, m.renderable)  # type: ignore[arg-type]
        for pane in PANES:
            where = m.wheres.get(pane)
            if self._where_shown.get(pane, ()) == where:
                continue  # unchanged: no repaint
            self._where_shown[pane] = where
            w = screen.query_one(f"#where-{pane}", Static)
            # layout=False: a fixed height (two lines), its size never changes (a relayout costs a reflow)
            w.update(status_words(*where) if where is not None else "", layout=False)
