"""Every key of the app, in one table: the explorer screen's and the App's BINDINGS, the help screen and the
command palette read it.

Pane keys (moving in a tree) are the PaneTree's own BINDINGS; the help screen lists
those too, so nothing a key does is written down twice. A key of scope "app" (help, legend, quit) is
the App's too, so it works over every screen (the stack editor); the others act on the explorer screen.
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
    scope: str = "screen"  # "app": the App's action, bound on the App too (it works over every screen)


KEYS: tuple[Key, ...] = (
    Key("question_mark,f1", "help", "Help: every key", "App", show=True, display="? F1", short="Help", scope="app"),
    Key("l", "legend", "Legend: statuses, glyphs and colours", "App", show=True, short="Legend", scope="app"),
    Key("q", "quit", "Quit", "App", show=True, scope="app"),
    Key("o", "open_mounts", "Open an overlay mount on this host", "App"),
    Key("1", "focus_pane('lower')", "Focus the Lower pane", "Panes"),
    Key("2", "focus_pane('upper')", "Focus the Upper pane", "Panes"),
    Key("3", "focus_pane('merged')", "Focus the Merged pane", "Panes"),
    Key("4", "focus_pane('layers')", "Focus the layer list", "Panes"),
    Key("5", "focus_pane('details')", "Focus the details panel (scroll it)", "Panes"),
    Key("left_square_bracket", "lower_layer(-1)", "Lower pane: the layer above", "Panes", display="["),
    Key("right_square_bracket", "lower_layer(1)", "Lower pane: the layer below", "Panes", display="]"),
    Key(
        "v",
        "layer_view",
        "Lower pane: the layer as stored, its own changes, or the merged view up to it (dive's views)",
        "Panes",
        short="Layer view",
    ),
    Key("c", "toggle_changes", "Changes only (like docker diff)", "Filters", show=True, short="Changes"),
    Key("s", "status_filter", "Filter by status", "Filters", show=True, short="Status"),
    Key(
        "z",
        "size_order",
        "Sort rows by size, largest first (a dir by the total under it); again: by name",
        "Filters",
        short="Size order",
    ),
    Key(
        "greater_than_sign",
        "min_size",
        "Only rows of at least a size you give (10M, 1.5G; empty: all)",
        "Filters",
        display=">",
        short="Min size",
    ),
    Key("x", "clear_filters", "Clear all filters", "Filters"),
    Key(
        "slash",
        "search",
        "Search names (or a glob) in the merged tree; ctrl+l: every layer's copies, hidden ones too",
        "Filters",
        show=True,
        display="/",
        short="Search",
    ),
    Key("w", "waste", "Wasted space: what the layers store that the merged view never shows", "Analysis"),
    Key(
        "equals_sign",
        "compare",
        "Compare any two: layers, the merged view, other sources or dirs (A/C/D, diffs)",
        "Analysis",
        display="=",
    ),
    Key("E", "extract", "Extract this pane's version of the selected path to a dir you give (asks first)", "Analysis"),
    Key("d", "toggle_diff", "Details: show the diff or the content", "Details", show=True, short="Diff"),
    Key("r", "reload", "Reload everything from the layers", "App"),
    Key("e", "edit_stack", "Stack editor: add, remove, move layers; upper, work, options", "Stack", short="Stack"),
    Key("m", "mount", "Mount the stack (asks where; writes go to the upper)", "Stack", short="Mount"),
    Key("u", "unmount", "Unmount what the app mounted", "Stack", short="Unmount"),
    Key("C", "commit", "Commit: the upper becomes a lower, a new empty upper (asks first)", "Stack"),
    Key("S", "squash", "Squash adjacent lowers into one new layer dir (asks first)", "Stack"),
)

# The stack editor's own keys (its footer and the help screen read this table).
EDITOR_KEYS: tuple[Key, ...] = (
    Key("a", "add_lower", "Add a lower above the selected one (path, → completes)", "Stack editor", True, False,
        short="Add"),
    Key("n", "new_layer", "Create a new empty layer dir and add it (asks first)", "Stack editor", True, False,
        short="New dir"),
    Key("x,delete", "remove", "Remove the selected lower (on the upper: read-only)", "Stack editor", True, False,
        display="x Del", short="Remove"),
    Key("K,shift+up", "move(-1)", "Move the selected lower up", "Stack editor", True, False, display="K ⇧↑",
        short="Up"),
    Key("J,shift+down", "move(1)", "Move the selected lower down", "Stack editor", True, False,
        display="J ⇧↓", short="Down"),
    Key("e", "edit_row", "Change the selected path (Enter too)", "Stack editor", True, False, short="Edit"),
    Key("u", "set_upper", "Set the upper dir (offers to create it)", "Stack editor", True, False, short="Upper"),
    Key("w", "set_work", "Set the work dir (same filesystem as the upper)", "Stack editor", True, False,
        short="Work"),
    Key("r", "toggle_readonly", "Read-only stack: no upper and work (again: back)", "Stack editor", True, False,
        short="Read-only"),
    Key("1", "option('redirect_dir')", "Option redirect_dir: default, on, follow, nofollow, off", "Stack editor",
        True, False, short="redirect_dir"),
    Key("2", "option('metacopy')", "Option metacopy: default, on, off", "Stack editor", True, False,
        short="metacopy"),
    Key("3", "option('index')", "Option index: default, on, off", "Stack editor", True, False, short="index"),
    Key("4", "option('userxattr')", "Option userxattr (user.overlay.* markers; unprivileged mounts)",
        "Stack editor", True, False, short="userxattr"),
    Key("5", "option('volatile')", "Option volatile (no syncs; the work dir is marked)", "Stack editor", True,
        False, short="volatile"),
    Key("b", "backend", "Mount backend: auto, kernel, userns, fuse", "Stack editor", True, False,
        short="Backend"),
    Key("ctrl+s", "apply", "Apply: the panes show the edited stack (if mounted: remounts it, options and backend too)",
        "Stack editor", True, False, display="Ctrl+S", short="Apply"),
    Key("escape", "cancel", "Leave the editor without applying", "Stack editor", True, False, display="Esc",
        short="Cancel"),
)  # fmt: skip

# Yes/no dialogs (confirmations and messages).
DIALOG_KEYS: tuple[Key, ...] = (
    Key("y,enter", "yes", "In a confirmation: yes, do it", "Dialogs", palette=False, display="y Enter"),
    Key("n,escape", "no", "In a confirmation: no (nothing is written)", "Dialogs", palette=False, display="n Esc"),
)


def _binding(k: Key, action: str) -> Binding:
    return Binding(k.keys, action, k.short or k.description, show=k.show, key_display=k.display or None,
                   tooltip=k.description)  # fmt: skip


def app_bindings() -> list[Binding]:
    """The App's: the keys of scope "app" (they work over every screen)."""
    return [_binding(k, k.action) for k in KEYS if k.scope == "app"]


def explorer_bindings() -> list[Binding]:
    """The explorer screen's: every key of :data:`KEYS`, in order (the footer shows them in this order)."""
    return [_binding(k, f"app.{k.action}" if k.scope == "app" else k.action) for k in KEYS]


def palette_action(k: Key) -> str:
    """The action the command palette runs for ``k`` (on the explorer screen)."""
    return f"app.{k.action}" if k.scope == "app" else k.action


def screen_bindings(keys: tuple[Key, ...]) -> list[Binding | tuple[str, str] | tuple[str, str, str]]:
    """A screen's BINDINGS from its key table (the footer shows those with ``show``)."""
    return [
        Binding(k.keys, k.action, k.short or k.description, show=k.show, key_display=k.display or None,
                tooltip=k.description)
        for k in keys
    ]  # fmt: skip


def key_display(keys: str) -> str:
    names = {
        "question_mark": "?",
        "slash": "/",
        "left_square_bracket": "[",
        "right_square_bracket": "]",
        "greater_than_sign": ">",
        "equals_sign": "=",
        "space": "Space",
        "enter": "Enter",
    }
    return " ".join(names.get(k, k) for k in keys.split(","))
