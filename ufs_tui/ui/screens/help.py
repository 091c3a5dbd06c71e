"""Help (every binding, generated from the binding tables) and the legend (generated from status.STYLES)."""

from __future__ import annotations

from rich.style import Style
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static, Tree

from ...core.model import status as S
from ..bindings import DIALOG_KEYS, EDITOR_KEYS, KEYS, key_display
from ..widgets.keyed_list import KeyedOptionList
from ..widgets.labels import glyph, status_style
from ..widgets.pane import PaneTree

HIDDEN = {S.WHITEOUT, S.WHITED_OUT, S.OPAQUE_HIDDEN, S.SHADOWED}


def legend_table() -> Table:
    t = Table(box=None, padding=(0, 1), show_header=True, header_style="bold")
    t.add_column("")
    t.add_column("status")
    t.add_column("meaning")
    for st in S.STYLES.values():
        t.add_row(glyph(st.status), Text(st.status, status_style(st.status)), Text(st.legend))
    return t


def legend_renderable() -> Table:
    outer = Table.grid()
    outer.add_row(Text("Legend: each row starts with a glyph, so states read without colour too.", style="bold"))
    outer.add_row(legend_table())
    outer.add_row(
        Text(
            "Upper pane: the upper's own entries; 'x' is a whiteout marker itself. Lower pane: the chosen lower "
            "layer's own entries coloured by their fate: '-' what a whiteout above deletes, '#' what an opaque dir "
            "hides, '^' what another entry shadows, '*' a dir merged into one above, 'm' the data of a metacopy file.",
            style=Style(italic=True),
        )
    )
    return outer


def help_renderable() -> Table:
    t = Table(box=None, padding=(0, 1), show_header=True, header_style="bold")
    t.add_column("key")
    t.add_column("does")
    t.add_column("where", style="dim")
    seen: set[tuple[str, str]] = set()
    for k in (*KEYS, *EDITOR_KEYS, *DIALOG_KEYS):
        t.add_row(Text(k.display or key_display(k.keys), style="bold"), Text(k.description), k.group)
    t.add_row(Text("Tab Shift+Tab", style="bold"), Text("Next / previous pane or panel"), "Panes")
    t.add_row(Text("ctrl+p", style="bold"), Text("Command palette: every action by name"), "App")
    for b in [*PaneTree.BINDINGS, *Tree.BINDINGS]:
        assert isinstance(b, Binding)
        key = (key_display(b.key), b.description)
        if key in seen:
            continue
        seen.add(key)
        t.add_row(Text(key_display(b.key), style="bold"), Text(b.description), "In a pane")
    for b in KeyedOptionList.BINDINGS:
        assert isinstance(b, Binding)
        t.add_row(Text(key_display(b.key), style="bold"), Text(b.description), "In a list")
    t.add_row(Text("Enter / click", style="bold"), Text("Open or close a dir; in the layer list: show that layer"), "")
    t.add_row(Text("Esc", style="bold"), Text("Close a dialog (help, legend, search, filter)"), "")
    return t


class InfoScreen(ModalScreen[None]):
    """A scrollable modal with one renderable; Esc, q or the key that opened it closes it."""

    AUTO_FOCUS = "#info"

    BINDINGS = [Binding("escape,q", "dismiss_screen", "Close", id="info.close")]

    def __init__(self, title: str, body: Table, close_key: str) -> None:
        super().__init__()
        self.title_text = title
        self.body = body
        self.close_key = close_key

    def compose(self) -> ComposeResult:
        scroll = VerticalScroll(Static(self.body), id="info")
        scroll.border_title = self.title_text
        scroll.border_subtitle = "Esc closes"
        yield scroll

    def on_key(self, event: object) -> None:
        key = getattr(event, "key", "")
        if key in self.close_key.split(","):
            self.dismiss(None)

    def action_dismiss_screen(self) -> None:
        self.dismiss(None)


class HelpScreen(InfoScreen):
    def __init__(self) -> None:
        super().__init__("Help: every key", help_renderable(), "question_mark,f1")


class LegendScreen(InfoScreen):
    def __init__(self) -> None:
        super().__init__("Legend", legend_renderable(), "l")
