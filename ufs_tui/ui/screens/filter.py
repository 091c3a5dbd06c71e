"""Choose which statuses the panes show (dirs always stay, so every change stays reachable)."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from ...core.model import status as S
from ...core.model.display import human_size, parse_size
from ..widgets.labels import glyph, status_style
from .confirm import PromptScreen


class StatusFilterScreen(ModalScreen[frozenset[str] | None]):
    """Space toggles a status, a toggles all, Enter applies, Esc cancels."""

    AUTO_FOCUS = "#statuses"

    BINDINGS = [
        Binding("escape", "cancel", "Cancel", id="filter.cancel"),
        Binding("enter", "apply", "Apply", priority=True, id="filter.apply"),
        Binding("a", "toggle_all", "All / none", id="filter.toggle_all"),
    ]

    def __init__(self, current: frozenset[str] | None) -> None:
        super().__init__()
        self.current = current

    def compose(self) -> ComposeResult:
        with Vertical(id="filter"):
            yield Static(Text("Space: toggle · a: all/none · Enter: apply · Esc: cancel", style="dim"))
            yield SelectionList[str](
                *(
                    Selection(
                        Text.assemble(glyph(st.status), " ", (st.status, status_style(st.status))),
                        st.status,
                        self.current is None or st.status in self.current,
                    )
                    for st in S.STYLES.values()
                ),
                id="statuses",
            )

    def on_mount(self) -> None:
        self.query_one("#filter", Vertical).border_title = "Show statuses"
        sl = self.query_one("#statuses", SelectionList)
        sl.focus()
        sl.highlighted = 0

    def action_toggle_all(self) -> None:
        sl = self.query_one("#statuses", SelectionList)
        if len(sl.selected) == len(S.STYLES):
            sl.deselect_all()
        else:
            sl.select_all()

    def action_apply(self) -> None:
        chosen = frozenset(self.query_one("#statuses", SelectionList).selected)
        self.dismiss(None if chosen == frozenset(S.STYLES) else chosen)

    def action_cancel(self) -> None:
        self.dismiss(self.current)


def ask_min_size(app: App[object], current: int, done: Callable[[int], None]) -> None:
    """Ask for the minimum size of the rows shown and give it to ``done`` in bytes (0: every row); Esc: nothing.
    What is not a size is said in one line and asked again."""
    lines = ["Leave out files smaller than this, and dirs with less under them (empty: show all)."]

    def ask(text: str) -> None:
        app.push_screen(PromptScreen("Minimum size", lines, text, "e.g. 10M, 1.5G, 512k", paths=False), got)

    def got(text: str | None) -> None:
        if text is None:
            return
        try:
            size = parse_size(text) if text.strip() else 0
        except ValueError as err:
            app.notify(str(err), title="Minimum size", severity="error", markup=False)
            ask(text)
            return
        done(size)

    ask(human_size(current).replace(" ", "") if current else "")
