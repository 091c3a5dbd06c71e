"""Choose which statuses the panes show (dirs always stay, so every change stays reachable)."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import SelectionList, Static
from textual.widgets.selection_list import Selection

from ...core.model import status as S
from ..widgets.labels import glyph, status_style


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
