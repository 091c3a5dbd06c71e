"""The App: the lifecycle around the explorer screen (signals, a lost terminal, undoing mounts, the theme).

One factory, :func:`make_app`, is used by the CLI (:func:`run_app`), the tests and the screenshot script.
The work is in the explorer screen (:mod:`ufs_tui.ui.screens.explorer`), the App's default screen; keys
live in :mod:`ufs_tui.ui.bindings`.
"""

from __future__ import annotations

import asyncio
import signal
import sys
import threading
from collections.abc import Mapping, Sequence

from textual.app import App

from ..core.model.stack import Layer, Stack
from ..core.mounting.record import MountHandle
from .bindings import app_bindings
from .commands import UfsCommands
from .flows import MountState
from .hangup import HANGUP_GRACE, stdin_terminal, watch_hangup
from .heap import freeze_heap, unfreeze_heap
from .keymap import with_ids
from .options import UiOptions
from .screens.explorer import ExplorerScreen
from .screens.help import HelpScreen, LegendScreen
from .widgets.labels import use_theme
from .widgets.pane import PaneTree

__all__ = ["HANGUP_GRACE", "UfsApp", "UiOptions", "make_app", "run_app"]

SWITCH_INTERVAL = 0.001  # seconds: how soon a worker thread must hand the GIL back to the UI


class UfsApp(App[int]):
    CSS_PATH = "ufs.tcss"
    TITLE = "ufs-tui"
    BINDINGS = with_ids(app_bindings(), "app")  # the same ids as the explorer's: one [keymap] line each
    COMMANDS = App.COMMANDS | {UfsCommands}

    def __init__(self, stack: Stack, options: UiOptions | None = None, keymap: Mapping[str, str] | None = None) -> None:
        """``keymap``: binding id -> keys (the user's config file: ``[keymap]``; the ids: ufs_tui.ui.keymap)."""
        super().__init__()
        self.options = options or UiOptions()
        self.mounts = MountState()  # what the app mounted: undone on every way out (cleanup)
        self._stack = stack
        self._main: ExplorerScreen | None = None
        self._on_exit = self.options.on_exit
        self._cleanup_lock = threading.Lock()
        self._cleaned = threading.Event()  # set once cleanup() has run (the hangup watcher waits for it)
        self._shown = False  # mounted: a theme change then redraws the rows
        self._switch_interval = 0.005  # Python's default; the one found is kept on mount
        if self.options.theme:
            self.theme = self.options.theme
        if keymap:
            self.set_keymap(keymap)

    def get_default_screen(self) -> ExplorerScreen:
        self._main = ExplorerScreen(self._stack, self.options, self.mounts)
        return self._main

    @property
    def main(self) -> ExplorerScreen:
        """The explorer screen (the bottom one)."""
        assert self._main is not None, "the app has not started"
        return self._main

    # What callers that hold the app (the CLI's tests, the engine tests, screenshots, benchmarks) read.
    @property
    def stack(self) -> Stack:
        return self._main.stack if self._main is not None else self._stack

    def pane_tree(self, pane: str) -> PaneTree:
        return self.main.panes.tree(pane)

    def set_stack(self, stack: Stack, mount_point: str | None = None, fresh: bool = False) -> None:
        self.main.set_stack(stack, mount_point, fresh)

    @property
    def lower_layer(self) -> Layer | None:
        return self.main.panes.lower_layer

    @property
    def watch_ready(self) -> bool:
        return self.main.live.ready

    @property
    def handle(self) -> MountHandle | None:
        return self.mounts.handle

    @property
    def mount_busy(self) -> str:
        return self.mounts.busy

    # ------------------------------------------------------------- lifecycle
    def on_mount(self) -> None:
        use_theme(self.current_theme.dark)  # (the palette is the module's: another app may have changed it)
        self._shown = True
        # Workers are pure Python: with the default 5 ms switch interval a busy worker makes every
        # repaint wait for the GIL. 1 ms keeps the UI responsive while a big dir is read.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        # What start-up made (modules, styles, widgets) lives as long as the app: the collector need not
        # scan it again (the trees freeze their rows as big dirs come in: see ufs_tui.ui.heap).
        freeze_heap()
        if self.is_headless:
            return
        fd = stdin_terminal()
        if fd is not None:
            loop = asyncio.get_running_loop()
            watch_hangup(fd, lambda: loop.call_soon_threadsafe(self._on_signal, signal.SIGHUP), self._cleaned,
                         self.cleanup)  # fmt: skip
        for sig in (signal.SIGHUP, signal.SIGTERM):
            try:
                asyncio.get_running_loop().add_signal_handler(sig, self._on_signal, sig)
            except (ValueError, RuntimeError, NotImplementedError):
                pass

    def on_resize(self) -> None:
        self.set_class(self.size.width < 120, "narrow")

    def watch_theme(self) -> None:
        """Status colours follow the theme (they are chosen per theme for contrast): redraw the rows."""
        use_theme(self.current_theme.dark)
        if self._shown and self._main is not None:
            self._main.redraw()

    def _on_signal(self, signum: int) -> None:
        """SIGHUP / SIGTERM (or a lost terminal): leave like 'q' does, so the terminal is restored and the
        mounts are undone."""
        if self._main is not None:
            self._main.live.close()
        self.exit(128 + signum, return_code=128 + signum)

    def cleanup(self) -> None:
        """Undo what the app made: its mounts, then ``on_exit`` (every exit path: quit, SIGTERM/SIGHUP, a lost
        terminal, run_app's finally; safe to call twice, and from two threads: the second waits)."""
        with self._cleanup_lock:
            try:
                self.mounts.cleanup()
                on_exit, self._on_exit = self._on_exit, None
                if on_exit is not None:
                    on_exit()
            finally:
                self._cleaned.set()

    def cleanup_mounts(self) -> None:
        """Unmount everything the app mounted (safe to call twice)."""
        self.mounts.cleanup()

    async def on_unmount(self) -> None:
        self.cleanup()
        sys.setswitchinterval(self._switch_interval)
        unfreeze_heap()  # what this app froze can be collected once it is gone (tests run many apps)

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_legend(self) -> None:
        self.push_screen(LegendScreen())


def make_app(
    stack: Stack, notes: Sequence[str] = (), keymap: Mapping[str, str] | None = None, **options: object
) -> UfsApp:
    """The one factory: the CLI, tests and screenshots all build the app here (the user's config file is the
    CLI's to read: it passes its theme and ``keymap``)."""
    return UfsApp(stack, UiOptions(notes=tuple(notes), **options), keymap)  # type: ignore[arg-type]


def run_app(stack: Stack, notes: Sequence[str] = (), keymap: Mapping[str, str] | None = None, **options: object) -> int:
    app = make_app(stack, notes, keymap, **options)
    try:
        app.run()
    finally:
        app.cleanup()  # every exit path: q, SIGTERM/SIGHUP (they exit the app), an exception
    return app.return_code or 0
