"""Binding ids: every key of the app has a stable id, which the ``[keymap]`` table of the user's config file
remaps (Textual's keymap: :meth:`textual.app.App.set_keymap`; the file: :mod:`ufs_tui.core.config`).

The bindings made from the key tables of :mod:`ufs_tui.ui.bindings` get theirs here: ``SCREEN.ACTION`` (the
screen's prefix, the action's name), or the clearer name in :data:`NAMES`; a key of scope "app" (help, legend,
quit: bound on the App and on the explorer) is ``app.ACTION`` on both, so one line remaps it everywhere. The
other screens and widgets name theirs in their own BINDINGS. README lists every id (tests/ui/test_config_ui.py
keeps it in step).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import replace

from textual.binding import Binding, BindingType

# An id's name where the action's own would not do (an action with arguments, a name that says less).
NAMES: Mapping[str, str] = {
    "focus_pane('lower')": "focus_lower",
    "focus_pane('upper')": "focus_upper",
    "focus_pane('merged')": "focus_merged",
    "focus_pane('layers')": "focus_layers",
    "focus_pane('details')": "focus_details",
    "lower_layer(-1)": "layer_above",
    "lower_layer(1)": "layer_below",
    "toggle_changes": "changes_only",
    "move(-1)": "move_up",
    "move(1)": "move_down",
    "edit_row": "edit",
    "toggle_readonly": "read_only",
    "option('redirect_dir')": "redirect_dir",
    "option('metacopy')": "metacopy",
    "option('index')": "index",
    "option('userxattr')": "userxattr",
    "option('volatile')": "volatile",
}


def binding_id(prefix: str, action: str) -> str:
    """The id of the key that runs ``action`` on the screen of ``prefix`` (an ``app.`` action: the App's)."""
    if action.startswith("app."):
        prefix, action = "app", action.removeprefix("app.")
    name = NAMES.get(action) or re.sub(r"[^a-z0-9]+", "_", action.lower()).strip("_")
    return f"{prefix}.{name}"


def with_ids(bindings: Sequence[BindingType], prefix: str) -> list[BindingType]:
    """``bindings`` (made from a key table), each with its id (see :func:`binding_id`)."""
    out: list[BindingType] = []
    for b in bindings:
        assert isinstance(b, Binding), b
        out.append(replace(b, id=binding_id(prefix, b.action)))
    return out
