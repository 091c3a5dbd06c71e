"""The three panes of the explorer screen: what each shows (its layer, the filter), their titles, and the cursor
they share (the other panes follow it once it rests, opening and closing dirs with it)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from textual.containers import Vertical

from ..core.model.stack import Layer, Stack
from ..core.panes import Item
from ..core.sources.common import is_init_layer
from .debounce import Debounce
from .widgets.pane import PaneTree

if TYPE_CHECKING:
    from .screens.explorer import ExplorerScreen

PANES = ("lower", "upper", "merged")
TITLES = {"lower": "Lower", "upper": "Upper", "merged": "Merged"}
# The other two panes follow the cursor once it rests this long (seconds), or at the latest after FOLLOW_MAX:
# a key held down repaints only the focused pane (three scrolling panes cost three times the repaint).
# Longer than the gap between two key repeats (a held key repeats every 30-40 ms).
FOLLOW_QUIET = 0.06
FOLLOW_MAX = 0.15


def first_lower(stack: Stack) -> Layer | None:
    """The layer the Lower pane opens on: the topmost lower that is not one of Docker's init layers (the
    engine's own few files: the least telling), else the topmost; a stack without lowers: its upper."""
    layers = [*stack.lowers, *stack.data_layers] or ([stack.upper] if stack.upper else [])
    return next((la for la in layers if not is_init_layer(la.label)), layers[0] if layers else None)


class PaneSet:
    """The panes of ``screen``: ``current_path`` in ``current_pane`` is where the cursor is; ``lower_layer``
    is the layer the Lower pane shows."""

    def __init__(self, screen: ExplorerScreen, lower: str | None) -> None:
        self.screen = screen
        stack = screen.stack
        self.lower_layer: Layer | None = next((la for la in stack.all_layers if la.name == lower), None)
        self.lower_layer = self.lower_layer or first_lower(stack)
        self.current_path: str | None = None
        self.current_pane = "merged"
        self._trees: list[PaneTree] = []
        self._follow = Debounce(FOLLOW_QUIET, FOLLOW_MAX, self._fire_follow)

    def tree(self, pane: str) -> PaneTree:
        return self.screen.query_one(f"#tree-{pane}", PaneTree)

    def trees(self) -> list[PaneTree]:
        if not self._trees:
            self._trees = [self.tree(p) for p in PANES]
        return self._trees

    def source_of(self, pane: str) -> Layer | None:
        if pane == "merged":
            return None
        if pane == "upper":
            return self.screen.stack.upper
        return self.lower_layer

    def has_source(self, pane: str) -> bool:
        return pane == "merged" or self.source_of(pane) is not None

    @property
    def settled(self) -> bool:
        """Nothing loads, and the other panes have followed the cursor."""
        return not self._follow.pending and all(not t.in_flight for t in self.trees())

    def cancel(self) -> None:
        self._follow.cancel()

    # ------------------------------------------------------------- sources
    def set_titles(self) -> None:
        screen = self.screen
        for pane in PANES:
            box = screen.query_one(f"#pane-{pane}", Vertical)
            src = self.source_of(pane)
            title = TITLES[pane]
            if pane != "merged":
                title += f" · {src.name}" if src is not None else " · none"
            if pane == "lower" and src is not None and src.role == "lower" and screen.flt.layer_view != "fate":
                title += f" · {screen.flt.layer_view}"
            if pane == "merged" and screen.flt.active:
                title += " · filtered"
            if pane == "merged" and screen.explorer.mount_point:
                title += " · mounted"
            box.border_title = title
            box.border_subtitle = f"{PANES.index(pane) + 1}"

    def set_sources(self, keep: bool = True) -> None:
        for pane in PANES:
            self.set_source(pane, keep)

    def set_source(self, pane: str, keep: bool = True) -> None:
        tree = self.tree(pane)
        src = self.source_of(pane)
        flt = self.screen.flt
        explorer = self.screen.explorer
        if pane != "merged" and src is None:
            words = "no upper layer: a read-only stack" if pane == "upper" else "no lower layer"
            tree.set_source(None, None, words, keep=keep)
            return

        def loader(path: str, parent_status: str) -> list[Item]:
            return explorer.items(src, path, parent_status, flt)

        def one(path: str, parent_status: str) -> Item | None:
            return explorer.item(src, path, parent_status, flt)

        def summer(path: str, cancelled: Callable[[], bool]) -> int | None:
            return explorer.totals(src, flt.layer_view).total(path, cancelled)

        tree.set_source(loader, one, keep=keep, summer=summer, by_name=flt.order == "name")

    def new_stack(self, stack: Stack, fresh: bool) -> None:
        """The Lower pane keeps its layer if the new stack has it (by path), else opens on the first lower;
        ``fresh``: another stack altogether, no cursor to keep."""
        old = self.lower_layer
        layers = [*stack.lowers, *stack.data_layers] or ([stack.upper] if stack.upper else [])
        self.lower_layer = next((la for la in layers if old is not None and la.path == old.path), first_lower(stack))
        if fresh:
            self.current_path = None

    def show_lower(self, layer: Layer) -> None:
        self.lower_layer = layer
        self.set_titles()
        self.set_source("lower")
        if self.current_path:
            self.tree("lower").reveal(self.current_path)
            self.screen.schedule_details()

    def step_lower(self, step: int) -> None:
        """The Lower pane shows the lower (or data) layer above or below; at either end it stays, and says so
        (the upper has its own pane)."""
        stack = self.screen.stack
        layers = [*stack.lowers, *stack.data_layers]
        if not layers:
            return
        i = layers.index(self.lower_layer) if self.lower_layer in layers else 0
        if not 0 <= i + step < len(layers):
            end = "the topmost lower (the upper is in its own pane)" if step < 0 else "the bottom layer"
            self.screen.notify(f"{layers[i].name} is {end}", markup=False)
            return
        self.screen.show_lower(layers[i + step])

    # -------------------------------------------------------------- cursor
    def highlighted(self, tree: PaneTree, path: str) -> None:
        """``path`` became current in ``tree``: the other panes follow (once the cursor rests a moment),
        details and presence lines update."""
        self.current_path = path
        self.current_pane = tree.pane
        self._follow.poke()
        self.screen.schedule_details()

    def _fire_follow(self) -> None:
        path = self.current_path
        if path is None or not self.screen.is_running:
            return
        # On the event loop: never wait for the explorer's lock (a scan may hold it); unmapped then.
        ex = self.screen.explorer
        merged = ex.merged_path_of(self.source_of(self.current_pane), path, wait=False)
        for t in self.trees():
            if t.pane != self.current_pane:
                t.reveal(merged if t.pane == "merged" else ex.path_in(self.source_of(t.pane), merged, wait=False))

    def follow_expansion(self, tree: PaneTree, data: Item | None, expand: bool) -> None:
        if not tree.has_focus or data is None:
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

    def jump_to(self, path: str) -> None:
        """Go to ``path`` in the Merged pane (the others follow)."""
        self.tree("merged").focus()
        self.current_path = path
        self.current_pane = "merged"
        self._follow.cancel()
        for t in self.trees():
            t.reveal(path)
        self.screen.schedule_details()
