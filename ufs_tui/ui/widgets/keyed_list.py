"""An OptionList that moves with the keys the panes move with (j/k, g/G), so every list answers them."""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.widgets import OptionList


class KeyedOptionList(OptionList):
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("j", "cursor_down", "Down", show=False, id="list.down"),
        Binding("k", "cursor_up", "Up", show=False, id="list.up"),
        Binding("g", "first", "First entry", show=False, id="list.first"),
        Binding("G", "last", "Last entry", show=False, id="list.last"),
    ]
