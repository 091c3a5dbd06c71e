"""The explorer screen: three panes (Lower, Upper, Merged) with a shared cursor, the layer list, details, status.

It owns what one stack looks like in the UI and hands the parts to small helpers: the panes and their
cursor (:mod:`ufs_tui.ui.panes`), the details (:mod:`ufs_tui.ui.details_follow`), live updates
(:mod:`ufs_tui.ui.live`) and the flows that write (:mod:`ufs_tui.ui.flows`). Workers post Messages back
here; the handlers below pass each to its helper.
"""

from __future__ import annotations

from dataclasses import replace

from textual import on
from textual.app import ComposeResult
from textual.containers import Horizontal, Vertical
from textual.css.query import NoMatches
from textual.screen import Screen
from textual.widgets import Footer, OptionList, Static, Tree

from ...core.details import Details
from ...core.explorer import LAYER_VIEWS, Explorer, ViewFilter
from ...core.model.display import printable
from ...core.model.stack import Layer, Stack
from ...core.panes import Item
from ..bindings import explorer_bindings
from ..details_follow import DetailsFollower, DetailsReady
from ..extract_flow import ExtractFlow
from ..flows import FlowOutcome, LayerFlows, MountFlows, MountState
from ..keymap import with_ids
from ..live import LayersChanged, LiveUpdates, PanePatched, Relisted, RootsMissing, WatchReady
from ..options import UiOptions
from ..panes import PANES, PaneSet
from ..unreadable import Unreadable, UnreadableDirs
from ..widgets.details import DetailsPanel
from ..widgets.layers import LayerList
from ..widgets.pane import PaneTree
from ..widgets.status import StatusBar, StatusFacts
from .compare import start_compare
from .filter import StatusFilterScreen, ask_min_size
from .mounts import MountsScreen
from .search import SearchScreen
from .waste import WasteScreen


class ExplorerScreen(Screen[None]):
    """One stack in the explorer. ``mounts``: what the app mounted (the App's, it cleans them up)."""

    AUTO_FOCUS = "#tree-merged"
    BINDINGS = with_ids(explorer_bindings(), "explorer")  # each with its id: a [keymap] remaps it

    def __init__(self, stack: Stack, options: UiOptions, mounts: MountState) -> None:
        super().__init__()
        self.stack = stack
        self.options = options
        self.mounts = mounts
        self.explorer = Explorer(stack, options.mount_point)
        self.flt = ViewFilter()
        self.last_error: str | None = None  # the last failure shown to the user (tests read it)
        self.panes = PaneSet(self, options.lower)
        self.details_view = DetailsFollower(self)
        self.live = LiveUpdates(self)
        self.flows = MountFlows(self, mounts)
        self.layer_flows = LayerFlows(self, mounts)
        self.extract_flow = ExtractFlow(self, mounts)
        self.unreadable = UnreadableDirs(self)
        self._watch_started = False

    def compose(self) -> ComposeResult:
        with Horizontal(id="panes"):
            for key in PANES:
                with Vertical(classes="pane", id=f"pane-{key}"):
                    yield PaneTree(key, id=f"tree-{key}")
                    yield Static("", classes="where", id=f"where-{key}")
        with Horizontal(id="bottom"):
            yield LayerList(self.stack, self.options.alias, self.options.source, id="layers")
            yield DetailsPanel(id="details")
        yield StatusBar(id="status")
        yield Footer()

    def on_mount(self) -> None:
        self.panes.set_titles()
        self.panes.set_sources()
        lower = self.panes.lower_layer
        self.query_one(LayerList).set_lower(lower.name if lower else "")
        self.call_after_refresh(self.panes.tree("merged").focus)
        self.update_status()
        self.start_counts()

    def on_unmount(self) -> None:
        self.live.close()
        self.panes.cancel()
        self.details_view.cancel()

    def on_resize(self) -> None:
        self.schedule_details()  # the details are rendered at the panel's width

    @property
    def details(self) -> Details | None:
        """What the details panel shows about the path under the cursor."""
        return self.details_view.details

    def trees(self) -> list[PaneTree]:
        return self.panes.trees()

    @property
    def watching(self) -> bool:
        """Live updates asked for, and something to watch (an image archive's layers are no dirs: not)."""
        return self.options.live and bool(self.explorer.mapper.roots)

    def settled(self) -> bool:
        """No load, patch or change is in flight, and the other panes and the details have followed the
        cursor (tests wait for this)."""
        return not self.live.busy and not self.details_view.pending and self.panes.settled

    # ----------------------------------------------------------- the stack
    def mount_point(self) -> str | None:
        """Where the Merged pane reads the kernel's view: our mount of this very stack, or the one given."""
        mine = self.mounts.ours(self.stack)
        return mine.path if mine is not None else self.options.mount_point

    def set_stack(self, stack: Stack, mount_point: str | None = None, fresh: bool = False) -> None:
        """Show ``stack`` now: a new Explorer, layer list, panes, counts and watcher (with the mount point).

        ``mount_point``: an overlay mount of ``stack`` made elsewhere (its Merged pane is then checked
        against it, like our own mounts). ``fresh``: another stack altogether (``o``), shown from its first
        row: the cursor, open dirs and details of the old one mean nothing there."""
        if mount_point is not None:
            self.options = replace(self.options, mount_point=mount_point)
        elif stack != self.stack and self.mounts.handle is None:
            self.options = replace(self.options, mount_point=None)
        if stack != self.stack:  # the notes were about the stack given at start (how the demo was made)
            self.options = replace(self.options, notes=())
        self.stack = stack
        self.explorer = Explorer(stack, self.mount_point())
        self.panes.new_stack(stack, fresh)
        self.details_view.details = None
        lower = self.panes.lower_layer
        self.query_one(LayerList).set_stack(stack, lower.name if lower else "")
        self.panes.set_titles()
        self.panes.set_sources(keep=not fresh)
        self.update_status()
        self.start_counts()
        self.live.restart(self._watch_started and self.watching)  # it follows the new roots
        if self.panes.current_path is not None:
            self.schedule_details()

    def redraw(self) -> None:
        """Everything read again from the layers, the rows drawn again (``r``, a theme change)."""
        self.explorer.invalidate_all()
        self.panes.set_sources()
        self.start_counts()

    def start_counts(self, only: frozenset[str] | None = None) -> None:
        self.query_one(LayerList).count(only)

    def schedule_details(self) -> None:
        self.details_view.schedule()

    def show_lower(self, layer: Layer) -> None:
        self.query_one(LayerList).set_lower(layer.name)
        self.panes.show_lower(layer)

    def update_status(self) -> None:
        self.query_one(StatusBar).show(facts_of(self))

    # ------------------------------------------------------------ panes
    def on_tree_node_highlighted(self, event: Tree.NodeHighlighted[Item]) -> None:
        tree = event.control
        if isinstance(tree, PaneTree) and tree.has_focus and event.node.data is not None:
            self.panes.highlighted(tree, event.node.data.path)

    def on_tree_node_expanded(self, event: Tree.NodeExpanded[Item]) -> None:
        if isinstance(event.control, PaneTree):
            self.panes.follow_expansion(event.control, event.node.data, True)

    def on_tree_node_collapsed(self, event: Tree.NodeCollapsed[Item]) -> None:
        if isinstance(event.control, PaneTree):
            self.panes.follow_expansion(event.control, event.node.data, False)

    def on_pane_tree_loaded(self, event: PaneTree.Loaded) -> None:
        if self.watching and not self._watch_started and event.tree.pane == "merged" and event.path == "/":
            # After the first frame: setting up inotify on a big tree costs about a second of CPU.
            self._watch_started = True
            self.call_after_refresh(self.live.start)
        cur = self.panes.current_path
        if cur is not None and event.path == (cur.rsplit("/", 1)[0] or "/"):
            self.schedule_details()
        self.unreadable.check(self.panes.source_of(event.tree.pane), event.path)

    def on_unreadable(self, m: Unreadable) -> None:
        self.unreadable.tell(m)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if isinstance(event.option_list, LayerList) and event.option.id:
            self.show_lower(self.stack.layer_by_name(event.option.id))

    # ------------------------------------------------- messages from workers
    def on_details_ready(self, m: DetailsReady) -> None:
        try:
            self.details_view.ready(m)
        except NoMatches:  # the app is closing
            pass

    def on_layers_changed(self, m: LayersChanged) -> None:
        self.live.changed(m)

    def on_watch_ready(self, m: WatchReady) -> None:
        self.live.watch_ready(m)

    def on_roots_missing(self, m: RootsMissing) -> None:
        self.live.roots_missing(m)

    def on_pane_patched(self, m: PanePatched) -> None:
        self.live.patched(m)

    def on_relisted(self, m: Relisted) -> None:
        self.live.relisted(m)

    @on(FlowOutcome)
    def flow_outcome(self, m: FlowOutcome) -> None:
        self.flows.outcome(m)

    # ------------------------------------------------------------ actions
    def action_focus_pane(self, pane: str) -> None:
        if pane in PANES:
            self.panes.tree(pane).focus()
        elif pane == "layers":
            self.query_one(LayerList).focus()
        elif pane == "details":
            self.query_one(DetailsPanel).focus()

    def action_lower_layer(self, step: int) -> None:
        self.panes.step_lower(step)

    def action_toggle_diff(self) -> None:
        self.details_view.toggle_diff()

    def action_open_mounts(self) -> None:
        """Choose an overlay mount on this host; it replaces the stack shown."""

        def done(chosen: tuple[Stack, str | None, str] | None) -> None:
            if chosen is not None:
                stack, target, source = chosen
                self.options = replace(self.options, source=source)
                self.query_one(LayerList).set_source(source)
                self.set_stack(stack, mount_point=target, fresh=True)  # the mount is watched and checked too

        self.app.push_screen(MountsScreen(engines=self.options.engines), done)

    def action_layer_view(self) -> None:
        """The Lower pane's layer: as stored (by its fate above), its own changes, or the merged view up to it."""
        views = list(LAYER_VIEWS)
        mode = views[(views.index(self.flt.layer_view) + 1) % len(views)]
        self.set_filter(replace(self.flt, layer_view=mode))
        self.notify(f"Lower pane: {LAYER_VIEWS[mode]}", markup=False)

    def action_waste(self) -> None:
        """The waste view: what the layers store that the merged view never shows; Enter jumps there."""
        self.app.push_screen(WasteScreen(self.stack), self._jump)

    def action_compare(self) -> None:
        """Two sources or layers side by side, B against A (this stack's layers, its merged view, any other source
        or a dir); Enter on a difference jumps the panes there."""
        lower = self.panes.lower_layer
        a = lower.name if lower is not None else "merged"
        start_compare(self, self.stack, a, "merged", self._jump, self.options.engines)

    def action_extract(self) -> None:
        """Save the version the focused pane shows at the cursor to a path the user gives (asks first)."""
        panes = self.panes
        self.extract_flow.start(panes.source_of(panes.current_pane), panes.current_path or "/")

    def action_toggle_changes(self) -> None:
        self.set_filter(replace(self.flt, changes_only=not self.flt.changes_only))

    def action_clear_filters(self) -> None:
        self.set_filter(ViewFilter(layer_view=self.flt.layer_view))  # (a view, not a filter)

    def action_status_filter(self) -> None:
        def done(chosen: frozenset[str] | None) -> None:
            self.set_filter(replace(self.flt, statuses=chosen))

        self.app.push_screen(StatusFilterScreen(self.flt.statuses), done)

    def action_size_order(self) -> None:
        self.set_filter(replace(self.flt, order="name" if self.flt.order == "size" else "size"))

    def action_min_size(self) -> None:
        ask_min_size(self.app, self.flt.min_size, lambda size: self.set_filter(replace(self.flt, min_size=size)))

    def set_filter(self, flt: ViewFilter) -> None:
        if flt == self.flt:
            return
        self.flt = flt
        self.panes.set_sources()
        self.panes.set_titles()
        self.update_status()

    def action_search(self) -> None:
        self.app.push_screen(SearchScreen(self.explorer.search, versions=self.explorer.search_versions), self._jump)

    def _jump(self, path: str | None) -> None:  # (a search, the waste view or a compare left with Enter)
        if path:
            self.panes.jump_to(path)

    def action_reload(self) -> None:
        self.redraw()
        self.notify("reloaded from the layers", markup=False)

    def action_edit_stack(self) -> None:
        self.flows.edit_stack()

    def action_mount(self) -> None:
        self.flows.mount()

    def action_unmount(self) -> None:
        self.flows.unmount()

    def action_commit(self) -> None:
        self.layer_flows.commit()

    def action_squash(self) -> None:
        self.layer_flows.squash()


def facts_of(screen: ExplorerScreen) -> StatusFacts:
    """What the status line says about ``screen`` now."""
    flt, stack, handle = screen.flt, screen.stack, screen.mounts.handle
    whose = None
    if flt.changes_only:
        whose = "" if stack.upper is not None or not stack.layers else f" ({stack.changer().name}'s)"
    return StatusFacts(
        watching=screen.watching,
        frozen=screen.options.frozen,
        last_change=screen.live.last_change,
        change_events=screen.live.change_events,
        changes_only=whose,
        statuses=len(flt.statuses) if flt.statuses is not None else None,
        by_size=flt.order == "size",
        min_size=flt.min_size,
        missing=[printable(screen.options.alias(p)) for p in screen.live.missing],
        busy=screen.mounts.busy,
        mounted=handle.note if handle is not None else "",
        notes=screen.options.notes,
    )
