"""The UI's side of the user's config file (read by :mod:`ufs_tui.core.config`): the themes a ``theme`` can
name, and every binding a ``[keymap]`` can remap, by id (the ids: :mod:`ufs_tui.ui.keymap` and the BINDINGS of
the screens and widgets below).
"""

from __future__ import annotations

from textual.binding import Binding
from textual.dom import DOMNode
from textual.theme import BUILTIN_THEMES

from ..core.config import Config
from .bindings import key_display
from .screens.compare import CompareScreen
from .screens.confirm import ConfirmScreen, FormScreen, MessageScreen, PromptScreen
from .screens.explorer import ExplorerScreen
from .screens.filter import StatusFilterScreen
from .screens.help import InfoScreen
from .screens.mounts import MountsScreen
from .screens.search import SearchScreen
from .screens.stack import StackEditor
from .screens.waste import WasteScreen
from .widgets.keyed_list import KeyedOptionList
from .widgets.pane import PaneTree

# Every class of the app with BINDINGS, in the order the keymap ids are listed (the App's own are the explorer's
# keys of scope "app", with the same ids). tests/ui/test_config_ui.py checks no class is missing.
BOUND: tuple[type[DOMNode], ...] = (
    ExplorerScreen, PaneTree, KeyedOptionList, StackEditor, ConfirmScreen, MessageScreen, PromptScreen, FormScreen,
    SearchScreen, StatusFilterScreen, MountsScreen, InfoScreen, WasteScreen, CompareScreen,
)  # fmt: skip


def theme_names() -> list[str]:
    """The themes the app has (Textual's own: the app registers none)."""
    return list(BUILTIN_THEMES)


def keymap_bindings() -> list[Binding]:
    """Every binding a ``[keymap]`` can remap: one per id (a dialog's keys are bound on two screens)."""
    seen: dict[str, Binding] = {}
    for cls in BOUND:
        for b in cls.BINDINGS:
            if isinstance(b, Binding) and b.id is not None:
                seen.setdefault(b.id, b)
    return list(seen.values())


def keymap_rows() -> list[tuple[str, str, str]]:
    """(id, default keys as the help shows them, what it does) for each binding a ``[keymap]`` can remap."""
    return [(b.id or "", b.key_display or key_display(b.key), b.tooltip or b.description) for b in keymap_bindings()]


def for_ui(config: Config) -> tuple[Config, tuple[str, ...]]:
    """``config`` with its theme and keymap ids checked against the app's (see :meth:`Config.for_ui`)."""
    return config.for_ui(theme_names(), {b.id for b in keymap_bindings() if b.id})
