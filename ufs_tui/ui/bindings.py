"""Every key of the app, in one table: the App's BINDINGS, the help screen and the command palette read it.

Pane keys (moving in a tree) are the PaneTree's own BINDINGS; the help screen lists
those too, so nothing a key does is written down twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from textual.binding import Binding


@dataclass(frozen=True)
class Key:
    keys: str  # textual key names, comma-separated
    action: str
    description: str
    group: str
    show: bool = False  # in the footer
    palette: bool = True  # in the command palette
    display: str = ""  # how the help screen writes the keys (default: from ``keys``)
    short: str = ""  # the footer's word (default: the description)


KEYS: tuple[Key, ...] = (
    Key("question_mark,f1", "help", "Help: every key", "App", show=True, display="? F1", short="Help"),
    Key("l", "legend", "Legend: statuses, glyphs and colours", "App", show=True, short="Legend"),
    Key("q", "quit", "Quit", "App", show=True),
    Key("1", "focus_pane('lower')", "Focus the Lower pane", "Panes"),
    Key("2", "focus_pane('upper')", "Focus the Upper pane", "Panes"),
    Key("3", "focus_pane('merged')", "Focus the Merged pane", "Panes"),
    Key("4", "focus_pane('layers')", "Focus the layer list", "Panes"),
    Key("5", "focus_pane('details')", "Focus the details panel (scroll it)", "Panes"),
    Key("left_square_bracket", "lower_layer(-1)", "Lower pane: the layer above", "Panes", display="["),
    Key("right_square_bracket", "lower_layer(1)", "Lower pane: the layer below", "Panes", display="]"),
    Key("c", "toggle_changes", "Changes only (like docker diff)", "Filters", show=True, short="Changes"),
    Key("s", "status_filter", "Filter by status", "Filters", show=True, short="Status"),
    Key("x", "clear_filters", "Clear all filters", "Filters"),
    Key(
        "slash",
        "search",
        "Search names (or a glob) in the merged tree",
        "Filters",
        show=True,
        display="/",
        short="Search",
    ),
    Key("d", "toggle_diff", "Details: show the diff or the content", "Details", show=True, short="Diff"),
    Key("r", "reload", "Reload everything from the layers", "App"),
)


def app_bindings() -> list[Binding]:
    return [
        Binding(
            k.keys,
            k.action,
            k.short or k.description,
            show=k.show,
            key_display=k.display or None,
            tooltip=k.description,
        )
        for k in KEYS
    ]


def key_display(keys: str) -> str:
    names = {
        "question_mark": "?",
        "slash": "/",
        "left_square_bracket": "[",
        "right_square_bracket": "]",
        "space": "Space",
        "enter": "Enter",
    }
    return " ".join(names.get(k, k) for k in keys.split(","))
