"""The explorer App: three panes (Lower, Upper, Merged) with a shared cursor, the layer list, details, live updates.

One factory, :func:`make_app`, is used by the CLI (:func:`run_app`), the tests and the screenshot script.
Keys live in :mod:`ufs_tui.ui.bindings`; screens in :mod:`ufs_tui.ui.screens` (more can be pushed
from the same key table, e.g. a stack editor).
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import gc
import json
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.timer import Timer
from textual.widgets import Footer, OptionList, Static, Tree
from textual.worker import Worker, get_current_worker

from ..core.content import is_dir
from ..core.display import plural, printable
from ..core.errors import UfsError
from ..core.layers_ops import (
    NeedsDestination,
    Plan,
    commit,
    commit_remount,
    fresh_sibling,
    plan_commit,
    plan_squash,
    squash,
)
from ..core.layerstats import LayerCounts, layer_counts, stack_to_json
from ..core.merge import join
from ..core.mount import MountHandle, MountManager, RemountError, mount_options, resolve_backend, target_problem
from ..core.mount_errors import ENGINE_STORAGE, NOT_EMPTY, MountError, Problem, one_line
from ..core.panes import Item
from ..core.sources.common import is_init_layer
from ..core.sources.engines import engine_storage
from ..core.stack import Layer, Stack
from ..core.watch import Changes
from .bindings import app_bindings
from .commands import UfsCommands
from .explorer import Details, Explorer, ViewFilter
from .screens.confirm import CommitScreen, ConfirmScreen, MessageScreen, PromptScreen, SquashScreen, expand_path
from .screens.filter import StatusFilterScreen
from .screens.help import HelpScreen, LegendScreen
from .screens.mounts import MountsScreen
from .screens.search import SearchScreen
from .screens.stack import EditResult, StackEditor, mount_opts, stack_problems, stack_warnings
from .threads import call_back
from .widgets.details import DetailsPanel, Prerendered, render_details
from .widgets.labels import status_words, use_theme
from .widgets.layers import LayerList
from .widgets.pane import PaneTree, freeze_heap

PANES = ("lower", "upper", "merged")
TITLES = {"lower": "Lower", "upper": "Upper", "merged": "Merged"}
DEBOUNCE_MS = 20  # watchfiles: wait this long for more events...
MAX_BATCH_MS = 100  # ...but never longer than this before reporting a burst
UNMOUNT_TRIES = 10  # a busy mount is retried for about a second before it is reported
HANGUP_GRACE = 3.0  # seconds the app gets to clean up after the terminal went away (see watch_hangup)
SWITCH_INTERVAL = 0.001  # seconds: how soon a worker thread must hand the GIL back to the UI
# The other two panes follow the cursor once it rests this long (seconds), or at the latest after FOLLOW_MAX:
# a key held down repaints only the focused pane (three scrolling panes cost three times the repaint).
# Longer than the gap between two key repeats (a held key repeats every 30-40 ms).
FOLLOW_QUIET = 0.06
FOLLOW_MAX = 0.15
DETAILS_QUIET = 0.08  # the details likewise (they are read and rendered in a worker, then shown)
DETAILS_MAX = 0.3


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


def first_lower(stack: Stack) -> Layer | None:
    """The layer the Lower pane opens on: the topmost lower that is not one of Docker's init layers (the
    engine's own few files: the least telling), else the topmost; a stack without lowers: its upper."""
    layers = [*stack.lowers, *stack.data_layers] or ([stack.upper] if stack.upper else [])
    return next((la for la in layers if not is_init_layer(la.label)), layers[0] if layers else None)


@dataclass
class UiOptions:
    notes: Sequence[str] = ()
    mount_point: str | None = None  # the merged mount point, watched too when given
    live: bool = True
    frozen: bool = False  # snapshots: hide times, inodes and the absolute temp paths
    aliases: dict[str, str] = field(default_factory=dict)  # path prefix -> shown as
    theme: str | None = None
    lower: str | None = None  # layer name first shown in the Lower pane
    engines: dict[str, str | None] = field(default_factory=dict)  # --host-root, --docker-root, ... ('o' lists them)
    source: str = ""  # the SOURCE opened (docker:web, IMAGE.tar, ...), shown over the layer list
    # Run once as the app ends, after its mounts are undone (the demo's temp dir): inside the app, where
    # SIGHUP and SIGTERM are still handled, not after it, where they would end the process first.
    on_exit: Callable[[], None] | None = None


class UfsApp(App[int]):
    CSS_PATH = "ufs.tcss"
    TITLE = "ufs-tui"
    BINDINGS = app_bindings()  # type: ignore[assignment]  # a list of Binding is what App wants
    COMMANDS = App.COMMANDS | {UfsCommands}
    AUTO_FOCUS = "#tree-merged"

    def __init__(self, stack: Stack, options: UiOptions | None = None) -> None:
        super().__init__()
        self.stack = stack
        self.options = options or UiOptions()
        self._on_exit = self.options.on_exit
        self._cleanup_lock = threading.Lock()
        self._cleaned = threading.Event()  # set once cleanup() has run (watch_hangup waits for it)
        self.explorer = Explorer(stack, self.options.mount_point)
        self.flt = ViewFilter()
        self.current_path: str | None = None
        self.current_pane = "merged"
        self.detail_mode = "auto"
        self.details: Details | None = None
        chosen = self.options.lower
        self.lower_layer: Layer | None = next(
            (la for la in stack.all_layers if la.name == chosen), None
        ) or first_lower(stack)
        self.last_change: float | None = None
        self.change_events = 0
        self.missing: list[str] = []
        self._pending: list[str] = []
        self._pending_lock = threading.Lock()
        self._applying = False
        self._recount: set[str] = set()
        self._trees: list[PaneTree] = []
        self._roots_dirty = False
        self._details = Debounce(DETAILS_QUIET, DETAILS_MAX, self._fire_details)
        self._follow = Debounce(FOLLOW_QUIET, FOLLOW_MAX, self._fire_follow)
        self._details_worker: Worker[None] | None = None
        self._where_shown: dict[str, tuple[str | None, str] | None] = {}
        self._status_shown: Text | None = None
        self._counts_timer: Timer | None = None
        self._stop_watch = threading.Event()
        self.watch_ready = False  # the watcher has reported once: events from now on are seen
        self.watch_restarts = 0  # watchers that died on a name that is not UTF-8 and were started again
        self._told_unreadable: set[str] = set()  # real dirs the user was told cannot be read
        self._watch_started = False
        self.backend = "auto"  # how `m` mounts: auto (kernel for root, userns otherwise), kernel, userns, fuse
        self.manager: MountManager | None = None  # made on the first mount; unmounts everything on exit
        self.handle: MountHandle | None = None  # the stack's mount, while mounted
        self.mount_busy = ""  # "mounting", "unmounting", ... while a mount worker runs
        self.last_error: str | None = None  # the last failure shown to the user (tests read it)
        self._shown = False  # mounted: a theme change then redraws the rows
        if self.options.theme:
            self.theme = self.options.theme

    # ------------------------------------------------------------------ layout
    def compose(self) -> ComposeResult:
        with Horizontal(id="panes"):
            for key in PANES:
                with Vertical(classes="pane", id=f"pane-{key}"):
                    yield PaneTree(key, id=f"tree-{key}")
                    yield Static("", classes="where", id=f"where-{key}")
        with Horizontal(id="bottom"):
            yield LayerList(self.stack, self.alias, self.options.source, id="layers")
            yield DetailsPanel(id="details")
        yield Static("", id="status")
        yield Footer()

    def pane_tree(self, pane: str) -> PaneTree:
        return self.query_one(f"#tree-{pane}", PaneTree)

    def trees(self) -> list[PaneTree]:
        if not self._trees:
            self._trees = [self.pane_tree(p) for p in PANES]
        return self._trees

    def source_of(self, pane: str) -> Layer | None:
        if pane == "merged":
            return None
        if pane == "upper":
            return self.stack.upper
        return self.lower_layer

    def watch_theme(self) -> None:
        """Status colours follow the theme (they are chosen per theme for contrast): redraw the rows."""
        use_theme(self.current_theme.dark)
        if self._shown:
            self._reload()

    def on_mount(self) -> None:
        use_theme(self.current_theme.dark)  # (the palette is the module's: another app may have changed it)
        self._shown = True
        # Workers are pure Python: with the default 5 ms switch interval a busy worker makes every
        # repaint wait for the GIL. 1 ms keeps the UI responsive while a big dir is read.
        self._switch_interval = sys.getswitchinterval()
        sys.setswitchinterval(SWITCH_INTERVAL)
        # What start-up made (modules, styles, widgets) lives as long as the app: the collector need not
        # scan it again (the trees freeze their rows as big dirs come in: see freeze_heap).
        freeze_heap()
        self._set_titles()
        for pane in PANES:
            self._set_pane_source(pane)
        layers = self.query_one(LayerList)
        layers.set_lower(self.lower_layer.name if self.lower_layer else "")
        self.call_after_refresh(self.pane_tree("merged").focus)
        self.update_status()
        self.start_counts()
        self.watch_hangup()
        if not self.is_headless:
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGHUP, signal.SIGTERM):
                try:
                    loop.add_signal_handler(sig, self._on_signal, sig)
                except (ValueError, RuntimeError, NotImplementedError):
                    pass

    def on_resize(self) -> None:
        self.set_class(self.size.width < 120, "narrow")
        self._schedule_details()  # the details are rendered at the panel's width

    def _on_signal(self, signum: int) -> None:
        """SIGHUP / SIGTERM: leave like 'q' does, so the terminal is restored and the caller cleans up."""
        self._stop_watch.set()
        self.exit(128 + signum, return_code=128 + signum)

    def watch_hangup(self) -> None:
        """Notice a terminal that went away without a SIGHUP (a program started with ``su -c`` or ``setsid``
        has no controlling terminal, so closing the window sends it nothing; reads of stdin then just
        return nothing, forever): a thread polls stdin for POLLHUP / POLLNVAL / POLLERR and then does what
        SIGHUP does (:meth:`_on_signal`: leave, unmounting what the app mounted; exit status 129).

        It watches until the app has cleaned up (:meth:`cleanup`), not only while it runs: the terminal
        may go while the app is already leaving ('q', then the SSH session drops), and Textual's exit can
        then hang for good (its writer thread ends on EIO from the lost terminal, and the writes queued
        after it block), before its cleanup or after it. So if the app has not cleaned up HANGUP_GRACE
        after the hangup, the thread cleans up; and if the process has not ended HANGUP_GRACE after
        that, the thread ends it."""
        if self.is_headless:
            return
        try:
            fd = sys.__stdin__.fileno() if sys.__stdin__ is not None else -1
            if fd < 0 or not os.isatty(fd):
                return
        except (OSError, ValueError):
            return
        loop = asyncio.get_running_loop()
        gone = select.POLLHUP | select.POLLNVAL | select.POLLERR

        def watch() -> None:
            poller = select.poll()
            poller.register(fd, 0)  # no events asked for: only hangup, error and a closed fd are reported
            while not self._cleaned.is_set():
                try:
                    events = poller.poll(500)
                except OSError:
                    continue
                if any(ev & gone for _, ev in events):
                    break
            else:
                return  # cleaned up: the app has left
            with contextlib.suppress(RuntimeError):  # (the loop is closed: the app is past it)
                loop.call_soon_threadsafe(self._on_signal, signal.SIGHUP)
            if not self._cleaned.wait(HANGUP_GRACE):  # stuck: clean up here
                self.cleanup()
            # Nothing is left to do but leave; should the exit hang on the lost terminal, end as SIGHUP would.
            threading.Event().wait(HANGUP_GRACE)
            os._exit(128 + signal.SIGHUP)

        threading.Thread(target=watch, name="ufs-hangup", daemon=True).start()

    def alias(self, path: str) -> str:
        for prefix, shown in self.options.aliases.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return shown + path[len(prefix.rstrip("/")) :]
        return path

    def _set_titles(self) -> None:
        for pane in PANES:
            box = self.query_one(f"#pane-{pane}", Vertical)
            src = self.source_of(pane)
            title = TITLES[pane]
            if pane != "merged":
                title += f" · {src.name}" if src is not None else " · none"
            if pane == "merged" and self.flt.active:
                title += " · filtered"
            if pane == "merged" and self.explorer.mount_point:
                title += " · mounted"
            box.border_title = title
            key = PANES.index(pane) + 1
            box.border_subtitle = f"{key}"

    def _set_pane_source(self, pane: str, keep: bool = True) -> None:
        tree = self.pane_tree(pane)
        src = self.source_of(pane)
        flt = self.flt
        explorer = self.explorer
        if pane != "merged" and src is None:
            words = "no upper layer: a read-only stack" if pane == "upper" else "no lower layer"
            tree.set_source(None, None, words, keep=keep)
            return

        def loader(path: str, parent_status: str) -> list[Item]:
            return explorer.items(src, path, parent_status, flt)

        def one(path: str, parent_status: str) -> Item | None:
            return explorer.item(src, path, parent_status, flt)

        tree.set_source(loader, one, keep=keep)

    # ----------------------------------------------------------- cursor sync
    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Item]) -> None:
        tree = event.control
        if not isinstance(tree, PaneTree) or not tree.has_focus or event.node.data is None:
            return
        self.select_path(event.node.data.path, tree.pane)

    def select_path(self, path: str, pane: str) -> None:
        """``path`` became current in ``pane``: the other panes follow (once the cursor rests a moment),
        details and presence lines update."""
        self.current_path = path
        self.current_pane = pane
        self._follow.poke()
        self._schedule_details()

    def _fire_follow(self) -> None:
        path = self.current_path
        if path is None or not self.is_running:
            return
        # On the event loop: never wait for the explorer's lock (a scan may hold it); unmapped then.
        ex = self.explorer
        merged = ex.merged_path_of(self.source_of(self.current_pane), path, wait=False)
        for t in self.trees():
            if t.pane != self.current_pane:
                t.reveal(merged if t.pane == "merged" else ex.path_in(self.source_of(t.pane), merged, wait=False))

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Item]) -> None:
        self._follow_expansion(event.control, event.node.data, True)

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed[Item]) -> None:
        self._follow_expansion(event.control, event.node.data, False)

    def _follow_expansion(self, tree: object, data: Item | None, expand: bool) -> None:
        if not isinstance(tree, PaneTree) or not tree.has_focus or data is None:
            return
        for t in self.trees():
            if t is tree:
                continue
            node = t.nodes.get(data.path)
            if node is None or not node.allow_expand:
                continue
            if expand and not node.is_expanded:
                node.expand()
            elif not expand and node.is_expanded:
                node.collapse()

    def on_pane_tree_loaded(self, event: PaneTree.Loaded) -> None:
        if self.watching and not self._watch_started and event.tree.pane == "merged" and event.path == "/":
            # After the first frame: setting up inotify on a big tree costs about a second of CPU.
            self._watch_started = True
            self.call_after_refresh(self.watch_layers)
        if self.current_path is not None and event.path in (self.current_path.rsplit("/", 1)[0] or "/",):
            self._schedule_details()
        self._check_readable(self.source_of(event.tree.pane), event.path)

    @work(thread=True, group="unreadable", exit_on_error=False)
    def _check_readable(self, source: Layer | None, path: str) -> None:
        """Tell, once per dir, that a layer dir behind a listed dir could not be read (in a thread: the
        explorer's lock may be held by a scan)."""
        for real, problem in self.explorer.unreadable(source, path):
            call_back(self, self._tell_unreadable, real, problem)

    def _tell_unreadable(self, real: str, problem: str) -> None:
        if real not in self._told_unreadable:
            self._told_unreadable.add(real)
            self.notify(
                f"cannot read {printable(self.alias(real))}: {problem}; what it holds is missing from the panes",
                title="Unreadable dir",
                severity="warning",
                markup=False,
            )

    # ----------------------------------------------------------------- details
    def _schedule_details(self) -> None:
        """Details follow the cursor once it rests a moment (holding a key down stays smooth)."""
        self._details.poke()

    def _fire_details(self) -> None:
        if self.current_path is None or not self.is_running:
            return
        last = self._details_worker
        if last is not None and not last.is_finished:
            # One details worker at a time: a cancelled thread worker runs on to its next check, and
            # several at once (a key held down) would take the GIL from the UI. Try again shortly.
            self._details.poke()
            return
        self._details_worker = self.load_details(self.current_path, self.current_pane)

    # exit_on_error=False: a signal can end the app while details load (query_one / call_from_thread then
    # raise); that must not turn a clean SIGTERM/SIGHUP exit into return code 1.
    @work(thread=True, exclusive=True, group="details", exit_on_error=False)
    def load_details(self, path: str, pane: str) -> None:
        worker = get_current_worker()
        merged = self.explorer.merged_path_of(self.source_of(pane), path)  # where() takes merged paths
        wheres = {p: self.explorer.where(self.source_of(p), merged) for p in PANES if self._pane_has_source(p)}
        d = self.explorer.details(self.source_of(pane), path, self.alias)
        if worker.is_cancelled:
            return
        renderable = render_details(d, self.detail_mode, self.options.frozen, self.current_theme.dark)
        renderable = Prerendered(renderable, self.query_one(DetailsPanel).content_width())
        if worker.is_cancelled:
            return
        self.call_from_thread(self._show_details, d, renderable, wheres)

    def _pane_has_source(self, pane: str) -> bool:
        return pane == "merged" or self.source_of(pane) is not None

    def _show_details(self, d: Details, renderable: object, wheres: dict[str, tuple[str | None, str]]) -> None:
        try:
            self._show_details_now(d, renderable, wheres)
        except NoMatches:  # the app is closing
            pass

    def _show_details_now(self, d: Details, renderable: object, wheres: dict[str, tuple[str | None, str]]) -> None:
        self.details = d
        self.query_one(DetailsPanel).show(d, renderable)  # type: ignore[arg-type]
        for pane in PANES:
            where = wheres.get(pane)
            if self._where_shown.get(pane, ()) == where:
                continue  # unchanged: no repaint
            self._where_shown[pane] = where
            w = self.query_one(f"#where-{pane}", Static)
            # layout=False: a fixed height (two lines), its size never changes (a relayout costs a reflow)
            w.update(status_words(*where) if where is not None else "", layout=False)

    def action_toggle_diff(self) -> None:
        showing_diff = self.detail_mode == "diff" or (
            self.detail_mode == "auto" and self.details is not None and bool(self.details.diff)
        )
        self.detail_mode = "content" if showing_diff else "diff"
        if self.details is not None:
            self._schedule_details()  # rendered in the details worker: a long file would stall the loop here

    # ------------------------------------------------------------------ layers
    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if isinstance(event.option_list, LayerList) and event.option.id:
            self.show_lower(self.stack.layer_by_name(event.option.id))

    def show_lower(self, layer: Layer) -> None:
        self.lower_layer = layer
        self.query_one(LayerList).set_lower(layer.name)
        self._set_titles()
        self._set_pane_source("lower")
        if self.current_path:
            self.pane_tree("lower").reveal(self.current_path)
            self._schedule_details()

    def action_lower_layer(self, step: int) -> None:
        """The Lower pane shows the lower (or data) layer above or below; at either end it stays, and says so
        (the upper has its own pane)."""
        layers = [*self.stack.lowers, *self.stack.data_layers]
        if not layers:
            return
        i = layers.index(self.lower_layer) if self.lower_layer in layers else 0
        if not 0 <= i + step < len(layers):
            end = "the topmost lower (the upper is in its own pane)" if step < 0 else "the bottom layer"
            self.notify(f"{layers[i].name} is {end}", markup=False)
            return
        self.show_lower(layers[i + step])

    @work(exclusive=True, group="counts", exit_on_error=False)
    async def start_counts(self, only: frozenset[str] | None = None) -> None:
        """Count what each layer adds, copies up and deletes (``only``: just the layers with these roots).

        In a child process: counting a big stack would otherwise hold the GIL the UI needs.
        """
        names = [la.name for la in self.stack.all_layers if only is None or la.path in only]
        if not names:
            return
        if any(la.fs is not None for la in self.stack.all_layers):
            # Layers read in place from an image archive: a child process could not rebuild them from paths.
            # The archive's index is in memory here, so counting in a thread is quick.
            for name in names:
                layer = self.stack.layer_by_name(name)
                counts = await asyncio.to_thread(layer_counts, self.stack, layer)
                try:
                    self.query_one(LayerList).set_counts(name, counts)
                except NoMatches:  # the app is closing
                    return
            return
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ufs_tui.core.layerstats",
            *names,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(stack_to_json(self.stack).encode())
            await proc.stdin.drain()
            proc.stdin.close()
            async for line in proc.stdout:
                try:
                    d = json.loads(line)
                    name = d.pop("layer")
                    counts = LayerCounts(**d)
                except (ValueError, KeyError, TypeError):
                    continue
                try:
                    self.query_one(LayerList).set_counts(name, counts)
                except NoMatches:  # the app is closing
                    return
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    # ------------------------------------------------------------------ actions
    def action_focus_pane(self, pane: str) -> None:
        if pane in PANES:
            self.pane_tree(pane).focus()
        elif pane == "layers":
            self.query_one(LayerList).focus()
        elif pane == "details":
            self.query_one(DetailsPanel).focus()

    def action_help(self) -> None:
        self.push_screen(HelpScreen())

    def action_legend(self) -> None:
        self.push_screen(LegendScreen())

    def action_open_mounts(self) -> None:
        """Choose an overlay mount on this host; it replaces the stack shown."""

        def done(chosen: tuple[Stack, str | None, str] | None) -> None:
            if chosen is not None:
                stack, target, source = chosen
                self.options = replace(self.options, source=source)
                self.query_one(LayerList).set_source(source)
                self.set_stack(stack, mount_point=target, fresh=True)  # the mount is watched and checked too

        self.push_screen(MountsScreen(engines=self.options.engines), done)

    def action_toggle_changes(self) -> None:
        self.set_filter(replace(self.flt, changes_only=not self.flt.changes_only))

    def action_clear_filters(self) -> None:
        self.set_filter(ViewFilter())

    def action_status_filter(self) -> None:
        def done(chosen: frozenset[str] | None) -> None:
            self.set_filter(replace(self.flt, statuses=chosen))

        self.push_screen(StatusFilterScreen(self.flt.statuses), done)

    def set_filter(self, flt: ViewFilter) -> None:
        if flt == self.flt:
            return
        self.flt = flt
        for pane in PANES:
            self._set_pane_source(pane)
        self._set_titles()
        self.update_status()

    def action_search(self) -> None:
        def done(path: str | None) -> None:
            if path:
                self.jump_to(path)

        self.push_screen(SearchScreen(self.explorer.search), done)

    def jump_to(self, path: str) -> None:
        """Go to ``path`` in the Merged pane (the others follow)."""
        merged = self.pane_tree("merged")
        merged.focus()
        self.current_path = path
        self.current_pane = "merged"
        self._follow.cancel()
        for t in self.trees():
            t.reveal(path)
        self._schedule_details()

    def action_reload(self) -> None:
        self._reload()
        self.notify("reloaded from the layers", markup=False)

    def _reload(self) -> None:
        self.explorer.invalidate_all()
        for pane in PANES:
            self._set_pane_source(pane)
        self.start_counts()

    # ------------------------------------------------------------------ the stack
    def mount_point(self) -> str | None:
        """Where the Merged pane reads the kernel's view: our mount of this very stack, or the one given."""
        if self.handle is not None and self.handle.stack == self.stack:
            return self.handle.path
        return self.options.mount_point

    def set_stack(self, stack: Stack, mount_point: str | None = None, fresh: bool = False) -> None:
        """Show ``stack`` now: a new Explorer, layer list, panes, counts and watcher (with the mount point).

        ``mount_point``: an overlay mount of ``stack`` made elsewhere (its Merged pane is then checked
        against it, like our own mounts). ``fresh``: another stack altogether (``o``), shown from its first
        row: the cursor, open dirs and details of the old one mean nothing there."""
        if mount_point is not None:
            self.options = replace(self.options, mount_point=mount_point)
        elif stack != self.stack and self.handle is None:
            self.options = replace(self.options, mount_point=None)
        if stack != self.stack:  # the notes were about the stack given at start (how the demo was made)
            self.options = replace(self.options, notes=())
        old_lower = self.lower_layer
        self.stack = stack
        self.explorer = Explorer(stack, self.mount_point())
        layers = [*stack.lowers, *stack.data_layers] or ([stack.upper] if stack.upper else [])
        self.lower_layer = next(
            (la for la in layers if old_lower is not None and la.path == old_lower.path), first_lower(stack)
        )
        self.details = None
        if fresh:
            self.current_path = None
        ll = self.query_one(LayerList)
        ll.stack = stack
        ll.counts.clear()
        ll.set_lower(self.lower_layer.name if self.lower_layer else "")
        self._set_titles()
        for pane in PANES:
            self._set_pane_source(pane, keep=not fresh)
        self.update_status()
        self.start_counts()
        self._restart_watch()
        if self.current_path is not None:
            self._schedule_details()

    @property
    def watching(self) -> bool:
        """Live updates asked for, and something to watch (an image archive's layers are no dirs: not)."""
        return self.options.live and bool(self.explorer.mapper.roots)

    def _restart_watch(self) -> None:
        """The watcher follows the new roots (layers and mount point): stop it, start a fresh one (none for a
        stack with nothing to watch)."""
        self._stop_watch.set()
        self._stop_watch = threading.Event()
        self.watch_ready = False
        self.missing = []
        if self._watch_started and self.watching:
            self.watch_layers()

    def action_edit_stack(self) -> None:
        """The stack editor. Applied while mounted: the edited stack, with its options and backend, replaces
        the mount (checked first: a stack that would not mount leaves the mount as it is)."""

        def done(result: EditResult | None) -> None:
            if result is None:
                return
            handle = self.handle if self.handle is not None and self.handle.stack == self.stack else None
            if handle is None:
                self.backend = result.backend
                if result.stack != self.stack:
                    self.set_stack(result.stack)
                return
            try:
                backend = resolve_backend(result.backend)
            except UfsError as e:
                self.show_error("Cannot remount", text=str(e))
                return
            if result.stack == self.stack and backend == handle.backend:
                self.backend = result.backend
                return
            problems = stack_problems(result.stack, result.backend, replacing=handle)
            if problems:  # refused before the mount is touched
                self._failed(
                    "Cannot remount: the edited stack would not mount",
                    MountError(problems),
                    f"Nothing was changed: the old stack is still mounted at {handle.target}.",
                )
                return
            self.backend = result.backend
            self.remount_worker(handle, self.mounted_stack(result.stack), "remounting the edited stack")

        mine = self.handle if self.handle is not None and self.handle.stack == self.stack else None
        self.push_screen(StackEditor(self.stack, self.backend, mine.target if mine else None, mine, self.alias), done)

    # ------------------------------------------------------------------ messages
    def show_error(self, title: str, problems: Sequence[Problem] | None = None, text: str = "") -> None:
        """A plain message: what is wrong and how to fix it (nothing changed)."""
        lines: list[str] = []
        for p in problems or ():
            lines += [f"{p.subject}: {p.what}", f"  fix: {p.fix}"]
        if text:
            lines.append(text)
        lines.append("Nothing was changed.")
        self.last_error = "\n".join(lines)
        self.push_screen(MessageScreen(title, lines))

    def _failed(self, title: str, err: BaseException, outcome: str = "") -> None:
        """A failure as a dialog: what is wrong, how to fix it, and (``outcome``) what is mounted now; without
        an outcome the dialog says nothing was changed."""
        self.mount_busy = ""
        problems = err.problems if isinstance(err, MountError) else []
        said = ""
        if isinstance(err, MountError) and err.detail:
            said = f"{err.source}: {one_line(err.detail)}"
        elif not isinstance(err, MountError):
            said = str(err)
        if not outcome:
            self.show_error(title, problems, said)
        else:
            lines: list[str] = []
            for p in problems:
                lines += [f"{p.subject}: {p.what}", f"  fix: {p.fix}"]
            lines += [said] if said else []
            lines.append(outcome)
            self.last_error = "\n".join(lines)
            self.push_screen(MessageScreen(title, lines))
        self.update_status()

    def _manager(self) -> MountManager:
        if self.manager is None:
            self.manager = MountManager()
            atexit.register(self.cleanup_mounts)
        return self.manager

    def cleanup(self) -> None:
        """Undo what the app made: its mounts, then ``on_exit`` (every exit path: quit, SIGTERM/SIGHUP, a lost
        terminal, run_app's finally; safe to call twice, and from two threads: the second waits)."""
        with self._cleanup_lock:
            try:
                self.cleanup_mounts()
                on_exit, self._on_exit = self._on_exit, None
                if on_exit is not None:
                    on_exit()
            finally:
                self._cleaned.set()

    def cleanup_mounts(self) -> None:
        """Unmount everything the app mounted (safe to call twice)."""
        manager = self.manager
        if manager is None:
            return
        problems = manager.unmount_all()
        self.handle = None
        for p in problems:
            with contextlib.suppress(OSError, ValueError):  # stderr may be a terminal that is gone
                print(f"ufs-tui: warning: could not unmount {p}", file=sys.stderr)

    def _start_busy(self, what: str) -> bool:
        if self.mount_busy:
            self.notify(f"wait: {self.mount_busy}", severity="warning")
            return False
        self.mount_busy = what
        self.update_status()
        return True

    # ------------------------------------------------------------------ mount / unmount
    def action_mount(self) -> None:
        if self.handle is not None:
            self.notify(f"already {self.handle.note}; u unmounts", markup=False)
            return
        problems = stack_problems(self.stack, self.backend)
        if problems and all(p.kind == ENGINE_STORAGE for p in problems):
            self._offer_read_only(problems)
            return
        if problems:
            self.show_error("This stack cannot be mounted", problems)
            return
        try:
            manager = self._manager()
            backend = resolve_backend(self.backend)
        except (UfsError, OSError) as e:  # e.g. the runtime dir cannot be made
            self.show_error("Cannot mount", text=str(e))
            return
        plan = manager.plan(self.stack, None, backend, mount_opts(self.stack))
        lines = [plan]
        for w in stack_warnings(self.stack, self.backend):
            lines.append(f"warning: {w.subject}: {w.what} (fix: {w.fix})")
        if backend == "userns":
            lines.append(
                "userns: the mount is visible only inside a user namespace the app holds; the app reads it at "
                "/proc/PID/root/TARGET, and it ends when the app ends."
            )
        lines.append(f"Mount target: Enter for a new empty dir under {manager.runtime}, or type an empty dir.")

        def got(text: str | None) -> None:
            if text is None:
                return
            target = expand_path(text) if text.strip() else None
            if target is None:
                self.mount_worker(None, False)
                return
            tp = target_problem(target)
            if tp is None:
                self.mount_worker(target, False)
            elif tp.kind == NOT_EMPTY:

                def over(yes: bool | None) -> None:
                    if yes:
                        self.mount_worker(target, True)

                self.push_screen(
                    ConfirmScreen(
                        "Mount over a non-empty dir?",
                        [f"{target}: {tp.what}.", "They come back when it is unmounted. Nothing is deleted."],
                        "y: mount over it",
                        warn=True,
                    ),
                    over,
                )
            else:
                self.show_error("Cannot mount there", [tp])

        self.push_screen(PromptScreen("Mount the stack", lines, "", "empty: a new dir in the runtime dir"), got)

    def _offer_read_only(self, problems: list[Problem]) -> None:
        """The upper (or work dir) is an engine's: mount the same view read-only, the upper as the topmost lower."""
        lines = [f"{p.subject}: {p.what}" for p in problems]
        lines.append("Read-only, the upper becomes the topmost lower: the same merged view, and nothing is written.")

        def done(yes: bool | None) -> None:
            if yes:
                self.set_stack(self.stack.read_only())
                self.action_mount()

        self.push_screen(ConfirmScreen("Mount it read-only?", lines, "y: mount read-only"), done)

    def mount_worker(self, target: str | None, force: bool) -> None:
        if self._start_busy("mounting"):
            self._mount(self.mounted_stack(self.stack), target, force)

    def mounted_stack(self, stack: Stack) -> Stack:
        """``stack`` as the mount will see it: with the options the backend adds (userxattr for userns), so the
        model reads the same markers (user.overlay.*) and follows the same rules as the mount. fuse-overlayfs
        also honours (and writes) the image-tarball markers (``.wh.NAME``, ``.wh..wh..opq`` and ``.wh..opq``
        in an opaque dir): oci-whiteouts for it; the kernel ignores them: none for the others."""
        try:
            backend = resolve_backend(self.backend)
            opts = mount_options(stack, backend, mount_opts(stack))
        except UfsError:
            return stack
        merged = [o for o in dict.fromkeys([*stack.options, *opts]) if o != "oci-whiteouts"]
        if backend == "fuse":
            merged.append("oci-whiteouts")
        return replace(stack, options=tuple(merged), xattr_ns="user" if "userxattr" in merged else stack.xattr_ns)

    @work(thread=True, group="mount", exit_on_error=False)
    def _mount(self, stack: Stack, target: str | None, force: bool) -> None:
        manager = self._manager()
        try:
            handle = manager.mount(stack, target, self.backend, mount_opts(stack), force=force)
        except (UfsError, OSError) as e:
            self._from_thread(self._failed, "The mount failed", e)
            return
        self._from_thread(self._mounted, handle)

    def _from_thread(self, fn: Callable[..., object], *args: object) -> None:
        call_back(self, fn, *args)  # nothing when the app has closed: cleanup_mounts undoes what we did

    def _mounted(self, handle: MountHandle) -> None:
        self.mount_busy = ""
        self.handle = handle
        self.set_stack(handle.stack)
        self.notify(handle.note, title="Mounted", markup=False)
        for w in handle.warnings:  # what will not work as hoped, and what the kernel logged
            self.notify(w, title="Mounted, but", severity="warning", markup=False, timeout=15)

    def action_unmount(self) -> None:
        if self.handle is None:
            self.notify("nothing is mounted by this app (m mounts the stack)")
            return
        if self._start_busy("unmounting"):
            handle = self.handle
            # Stop reading and watching the mount first: the panes go back to the layers.
            self.handle = None
            self.set_stack(self.stack)
            self._unmount(handle)

    @work(thread=True, group="mount", exit_on_error=False)
    def _unmount(self, handle: MountHandle) -> None:
        assert self.manager is not None
        for attempt in range(UNMOUNT_TRIES):
            try:
                self.manager.unmount(handle)
                break
            except MountError as e:
                # Busy: maybe our own panes are still reading the mount; they are done in a moment.
                if attempt + 1 < UNMOUNT_TRIES and any("busy" in p.what for p in e.problems):
                    self._stop_watch.wait(0.1)
                    continue
                self._from_thread(self._unmount_failed, handle, e)
                return
            except (UfsError, OSError) as e:
                self._from_thread(self._unmount_failed, handle, e)
                return
        self._from_thread(self._unmounted, handle)

    def _unmount_failed(self, handle: MountHandle, err: BaseException) -> None:
        self.handle = handle
        self.set_stack(self.stack)
        self._failed("Cannot unmount", err)

    def _unmounted(self, handle: MountHandle) -> None:
        self.mount_busy = ""
        self.update_status()
        self.notify(f"unmounted {handle.target}", markup=False)

    def remount_worker(self, handle: MountHandle, stack: Stack, what: str) -> None:
        """Mount ``stack`` (its options, the app's backend) in place of ``handle``."""
        if self._start_busy(what):
            self._remount(handle, stack, self.backend, mount_opts(stack))

    @work(thread=True, group="mount", exit_on_error=False)
    def _remount(self, handle: MountHandle, stack: Stack, backend: str, options: list[str]) -> None:
        assert self.manager is not None
        try:
            new = self.manager.remount(handle, stack, backend, options, tries=UNMOUNT_TRIES)
        except (UfsError, OSError) as e:
            self._from_thread(self._remount_failed, handle, e)
            return
        self._from_thread(self._mounted, new)

    def _remount_failed(self, handle: MountHandle, err: BaseException) -> None:
        """Say what happened and what is mounted now (see :class:`RemountError`)."""
        assert self.manager is not None
        if isinstance(err, RemountError):
            self.handle = err.now
            if err.now is not None and resolve_backend(self.backend) != err.now.backend:
                self.backend = err.now.backend  # what is mounted is what `m` and the editor go on from
            title = {
                "check": "Cannot remount: the new stack would not mount",
                "unmount": "Cannot remount: the mount could not be unmounted",
                "mount": "The new stack could not be mounted; the old one is mounted again",
                "lost": "The new stack could not be mounted, nor the old one again",
            }.get(err.phase, "The remount failed")
            outcome = err.outcome
        else:  # not from MountManager.remount: look at what is mounted there
            self.handle = next((h for h in self.manager.handles if h.target == handle.target), None)
            title = "The remount failed"
            outcome = (
                f"The old stack is mounted at {handle.target}."
                if self.handle is not None
                else f"Nothing is mounted at {handle.target} now."
            )
        self.set_stack(self.stack)
        self._failed(title, err, outcome)

    # ------------------------------------------------------------------ commit / squash
    def action_commit(self, new_upper: str | None = None, new_work: str | None = None) -> None:
        try:
            plan = plan_commit(self.stack, new_upper, new_work)
        except NeedsDestination as e:
            lines = [f"{e}.", "The new empty upper and work dir are made where you say; the upper is not changed."]

            def got(answer: tuple[str, ...] | None) -> None:
                if answer is not None:
                    self.action_commit(*(expand_path(a) if a else "" for a in answer))

            self.push_screen(CommitScreen(lines, new_upper or "", new_work or ""), got)
            return
        except UfsError as e:
            self.show_error("Cannot commit", text=str(e))
            return
        lines = list(plan.lines)
        handle = self.handle if self.handle is not None and self.handle.stack == self.stack else None
        if handle is not None:
            lines.append(f"mounted: {handle.target} is unmounted, then the new stack is mounted there")
        lines.append("The original layers are not changed.")

        def done(yes: bool | None) -> None:
            if yes and self._start_busy("committing"):
                self._commit(plan, handle)

        self.push_screen(ConfirmScreen("Commit the upper?", lines, "y: commit"), done)

    @work(thread=True, group="mount", exit_on_error=False)
    def _commit(self, plan: Plan, handle: MountHandle | None) -> None:
        try:
            if handle is not None:
                assert self.manager is not None
                stack, new = commit_remount(plan, self.manager, handle, tries=UNMOUNT_TRIES)
                self._from_thread(self._mounted, new)
            else:
                stack = commit(plan)
                self._from_thread(self._changed, stack, f"committed: the new upper is {plan.creates[0]}")
        except (UfsError, OSError) as e:
            if handle is not None:
                self._from_thread(self._remount_failed, handle, e)
            else:
                self._from_thread(self._failed, "The commit failed", e)

    def _changed(self, stack: Stack, message: str) -> None:
        self.mount_busy = ""
        self.set_stack(stack)
        self.notify(message, markup=False)

    def action_squash(self) -> None:
        lowers = self.stack.lowers
        if len(lowers) < 2:
            self.show_error("Cannot squash", text="a squash needs at least two lower layers")
            return
        top = self.lower_layer.index if self.lower_layer is not None and self.lower_layer.role == "lower" else 0
        top = min(top, len(lowers) - 2)
        owner = engine_storage(lowers[top].path)
        dest = "" if owner else fresh_sibling(lowers[top].path, ".squashed")
        note = f" (the layers are in {owner}, where ufs-tui never writes: name a dir outside it)" if owner else ""
        lines = [f"lower:{la.index}  {la.path}" for la in lowers]

        def got(answer: tuple[str, ...] | None) -> None:
            if answer is None:
                return
            rng, path = answer
            a, _, b = rng.partition("..")
            a, b = a.strip(), (b or a).strip()
            try:
                plan = plan_squash(self.stack, a, b, expand_path(path))
            except UfsError as e:
                self.show_error("Cannot squash", text=str(e))
                return
            handle = self.handle if self.handle is not None and self.handle.stack == self.stack else None
            more = [f"mounted: {handle.target} is remounted with the new stack"] if handle is not None else []

            def done(yes: bool | None) -> None:
                if yes and self._start_busy("squashing"):
                    self._squash(plan, handle)

            self.push_screen(ConfirmScreen("Squash these layers?", [*plan.lines, *more], "y: squash"), done)

        self.push_screen(SquashScreen(lines, f"lower:{top}..lower:{top + 1}", dest, note), got)

    @work(thread=True, group="mount", exit_on_error=False)
    def _squash(self, plan: Plan, handle: MountHandle | None) -> None:
        try:
            res = squash(self.stack, plan)
        except (UfsError, OSError) as e:
            self._from_thread(self._failed, "The squash failed", e)
            return
        note = f"squashed into {res.dest}" + (f" ({len(res.notes)} notes: {res.notes[0]} …)" if res.notes else "")
        if handle is None:
            self._from_thread(self._changed, res.stack, note)
            return
        assert self.manager is not None
        try:
            new = self.manager.remount(handle, res.stack, tries=UNMOUNT_TRIES)
        except (UfsError, OSError) as e:
            self._from_thread(self._remount_failed, handle, e)
            return
        self._from_thread(self._mounted, new)
        self._from_thread(self.notify, note)

    # -------------------------------------------------------------------- live
    def update_status(self) -> None:
        bits = Text()
        if self.watching:
            bits.append("● live", style="bold green")
            if self.options.frozen or self.last_change is None:
                bits.append("  no change yet" if self.last_change is None else "  last change —", style="dim")
            else:
                stamp = time.strftime("%H:%M:%S", time.localtime(self.last_change))
                bits.append(f"  last change {stamp} ({plural(self.change_events, 'event')})", style="dim")
        else:
            bits.append("○ not watching", style="dim")
        if self.flt.changes_only:
            whose = "" if self.stack.upper is not None or not self.stack.layers else f" ({self.stack.changer().name}'s)"
            bits.append(f"  changes only{whose}", style="bold yellow")
        if self.flt.statuses is not None:
            bits.append(f"  statuses: {len(self.flt.statuses)} shown", style="bold yellow")
        for path in self.missing:
            bits.append(f"  missing: {printable(self.alias(path))}", style="bold red")
        if self.mount_busy:
            bits.append(f"  {self.mount_busy}…", style="bold yellow")
        if self.handle is not None:
            bits.append(f"  {printable(self.handle.note)}", style="bold cyan")
            bits.append("  (u unmounts)", style="dim")
        for note in self.options.notes:
            bits.append(f"  {printable(note)}", style="dim")
        if bits != self._status_shown:  # unchanged text: no repaint
            self._status_shown = bits
            self.query_one("#status", Static).update(bits, layout=False)  # one line of a fixed height

    @work(thread=True, exclusive=True, group="watch", exit_on_error=False)
    def watch_layers(self) -> None:
        """Watch every layer root (and the mount point) with watchfiles, in a thread (setting up inotify on
        a big tree takes a second); restart when a root goes or comes back."""
        from watchfiles import watch
        from watchfiles._rust_notify import WatchfilesRustInternalError

        stop = self._stop_watch
        try:
            while not stop.is_set():
                roots = [r for r in self.explorer.mapper.roots if is_dir(r)]
                missing = self.explorer.missing_roots()
                if missing != self.missing:
                    self.call_from_thread(self._set_missing, missing)
                if not roots:
                    stop.wait(0.5)
                    continue
                try:
                    for changes in watch(
                        *roots,
                        watch_filter=None,
                        debounce=MAX_BATCH_MS,
                        step=DEBOUNCE_MS,
                        rust_timeout=500,
                        yield_on_timeout=True,
                        stop_event=stop,
                        ignore_permission_denied=True,
                        raise_interrupt=False,
                    ):
                        if not self.watch_ready and stop is self._stop_watch:
                            # What changed between the first listing and now was not seen: read it again.
                            self.watch_ready = True
                            self.call_from_thread(self.roots_changed)
                        if changes:
                            self.call_from_thread(self.fs_changed, [p for _, p in changes])
                        if self.explorer.missing_roots() != self.missing:
                            break
                except OSError:
                    stop.wait(0.5)
                except WatchfilesRustInternalError:
                    # An event for a path that is not valid UTF-8: watchfiles cannot hand it over and its watcher
                    # dies. Start a new one, and read everything again once it runs (what changed was not seen).
                    self.watch_ready = False
                    self.watch_restarts += 1
                    stop.wait(0.1)
        except RuntimeError:  # the app is closing: call_from_thread has nowhere to go
            if self.is_running and not stop.is_set():
                raise

    def _set_missing(self, missing: list[str]) -> None:
        self.missing = missing
        self.roots_changed()

    def fs_changed(self, paths: Iterable[str]) -> None:
        """Raw paths from the watcher: queue them; one apply worker at a time drains the queue (bursts coalesce)."""
        paths = list(paths)
        with self._pending_lock:
            self._pending.extend(paths)
        self.last_change = time.time()
        self.change_events += len(paths)
        self.update_status()
        self._kick_apply()

    def roots_changed(self) -> None:
        self._roots_dirty = True
        self.update_status()
        self._kick_apply()

    def _kick_apply(self) -> None:
        if self._applying:
            return
        self._applying = True
        self.apply_changes()

    @work(thread=True, group="live", exit_on_error=False)
    def apply_changes(self) -> None:
        try:
            self._apply_changes()
        except RuntimeError:  # the app closed while changes were being applied
            if self.is_running:
                raise

    def _apply_changes(self) -> None:
        touched: set[str] = set()
        roots_touched: set[str] = set()
        while True:
            with self._pending_lock:
                paths, self._pending = self._pending, []
            roots = self._roots_dirty
            self._roots_dirty = False
            if not paths and not roots:
                break
            changes = self.explorer.mapper.map(paths)
            if roots:
                changes.roots.add("*")
            self.explorer.apply(changes)
            touched |= set(changes.dirs)
            roots_touched |= changes.touched | ({"*"} if changes.roots else set())
            self._apply_to_panes(changes)
        self.call_from_thread(self._applied, touched, roots_touched)

    def _apply_to_panes(self, changes: Changes) -> None:
        snapshot: dict[PaneTree, tuple[Callable[[str, str], Item | None] | None, dict[str, str], int]] = {}

        def take() -> None:
            for t in self.trees():
                loaded = {p: t.status_of(p) for p in t.loaded if p in t.nodes}
                snapshot[t] = (t.one, loaded, t.generation)

        self.call_from_thread(take)
        for tree, (one, loaded, gen) in snapshot.items():
            if one is None:
                continue
            if changes.roots:
                self.call_from_thread(tree.reload, list(loaded))
                continue
            full: list[str] = []
            for mdir, names in changes.dirs.items():
                if mdir not in loaded:
                    continue
                if names is None:
                    full.append(mdir)
                    continue
                updates = {n: one(join(mdir, n), loaded[mdir]) for n in names}
                # A changed name that is itself an open dir: its children may change fate too.
                full.extend(join(mdir, n) for n in names if join(mdir, n) in loaded)
                self.call_from_thread(self._update_names, tree, gen, mdir, updates)
            if full:
                self.call_from_thread(tree.reload, full)

    def _update_names(self, tree: PaneTree, gen: int, mdir: str, updates: dict[str, Item | None]) -> None:
        if tree.generation == gen:
            tree.update_names(mdir, updates)

    def _applied(self, touched: set[str], roots: set[str]) -> None:
        self._applying = False
        self._recount |= roots
        if self._pending or self._roots_dirty:
            self._kick_apply()
            return
        cur = self.current_path
        if (
            cur is not None
            and any(cur == d or cur.startswith(d.rstrip("/") + "/") for d in touched)
            or cur is not None
            and (cur.rsplit("/", 1)[0] or "/") in touched
        ):
            self._schedule_details()
        if self._counts_timer is not None:
            self._counts_timer.stop()
        self._counts_timer = self.set_timer(1.0, self._start_recount)

    def _start_recount(self) -> None:
        roots, self._recount = self._recount, set()
        self.start_counts(None if "*" in roots else frozenset(roots))

    def settled(self) -> bool:
        """No load, patch or change is in flight, and the other panes and the details have followed the
        cursor (tests wait for this)."""
        if self._applying or self._pending or self._follow.pending or self._details.pending:
            return False
        return all(not t.in_flight for t in self.trees())

    async def on_unmount(self) -> None:
        self._stop_watch.set()
        self._follow.cancel()
        self._details.cancel()
        self.cleanup()
        sys.setswitchinterval(getattr(self, "_switch_interval", 0.005))
        gc.unfreeze()  # what this app froze can be collected once it is gone (tests run many apps)


def make_app(stack: Stack, notes: Sequence[str] = (), **options: object) -> UfsApp:
    """The one factory: the CLI, tests and screenshots all build the app here."""
    return UfsApp(stack, UiOptions(notes=tuple(notes), **options))  # type: ignore[arg-type]


def run_app(stack: Stack, notes: Sequence[str] = (), **options: object) -> int:
    app = make_app(stack, notes, **options)
    try:
        app.run()
    finally:
        app.cleanup()  # every exit path: q, SIGTERM/SIGHUP (they exit the app), an exception
    return app.return_code or 0
