"""Choose an overlay mount on this host (every one in /proc/self/mountinfo) and open it in the explorer.

Each row: the mount target, the engine and container that own it (when that can be told), the number
of lower layers, the upper dir and the other options. Enter opens the chosen mount; a mount that
cannot be opened (gone since the list was read, a layer that cannot be resolved) says why in the
screen and the list stays.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ...core.display import printable
from ...core.errors import StackError
from ...core.sources import OverlayMount, list_overlay_mounts, open_mount
from ...core.sources.mountinfo import MOUNTINFO
from ...core.stack import Stack
from ..threads import call_back


def mount_prompt(m: OverlayMount) -> Text:
    """Two lines: target and owner; then the layers and options (every path shown printable, never as markup)."""
    line = Text(printable(m.target), style=Style(bold=True))
    owner = m.engine or "overlay"
    if m.container:
        owner += f" {m.container}"
    line.append(f"  [{printable(owner)}]", style=Style(color="cyan" if m.engine else None, dim=not m.engine))
    n = len(m.lowers)
    bits = [f"{n} lower{'s' if n != 1 else ''}"]
    if m.data_layers:
        bits.append(f"{len(m.data_layers)} data")
    bits.append(f"upper {printable(m.upper)}" if m.upper else "read-only (no upper)")
    if m.options:
        bits.append(printable(",".join(m.options)))
    line.append("\n  " + " · ".join(bits), style=Style(dim=True))
    for problem in m.problems:
        line.append("\n  ⚠ " + printable(problem), style=Style(color="red"))
    return line


class MountsScreen(ModalScreen[tuple[Stack, str] | None]):
    """Dismissed with the stack of the chosen mount and its target (or None on Esc)."""

    AUTO_FOCUS = "#mount-list"

    DEFAULT_CSS = """
    MountsScreen {
        align: center middle;
    }
    #mounts {
        width: 90%;
        height: 80%;
        border: round $accent;
        background: $surface;
    }
    #mounts-status {
        height: auto;
        max-height: 4;
        padding: 0 1;
    }
    #mount-list {
        height: 1fr;
        border: none;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Close"),
        Binding("r", "refresh", "Read the mount table again"),
    ]

    def __init__(
        self,
        mountinfo: str = MOUNTINFO,
        opener: Callable[[str, str], Stack] = open_mount,
    ) -> None:
        super().__init__()
        self.mountinfo = mountinfo
        self.opener = opener
        self.mounts: list[OverlayMount] = []
        self.loaded = False  # the list has been read (tests wait for this)
        self.opening: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="mounts"):
            yield Static(Text("reading the mount table…", style="dim"), id="mounts-status")
            yield OptionList(id="mount-list")

    def on_mount(self) -> None:
        box = self.query_one("#mounts", Vertical)
        box.border_title = "Overlay mounts on this host"
        box.border_subtitle = "Enter: open · r: refresh · Esc: close"
        self.action_refresh()

    def action_refresh(self) -> None:
        self.loaded = False
        self._read(self.app)

    @work(thread=True, exclusive=True, group="mounts")
    def _read(self, app: App[Any]) -> None:
        # Attributing a mount reads the engine's metadata: a thread keeps the screen responsive.
        try:
            mounts = list_overlay_mounts(self.mountinfo)
            error = None
        except StackError as e:
            mounts, error = [], str(e)
        call_back(app, self._show, mounts, error)

    def _show(self, mounts: list[OverlayMount], error: str | None) -> None:
        self.mounts = mounts
        ol = self.query_one("#mount-list", OptionList)
        ol.clear_options()
        ol.add_options([Option(mount_prompt(m), id=str(i)) for i, m in enumerate(mounts)])
        if mounts:
            ol.highlighted = 0
        if error:
            words = Text(printable(error), style="red")
        elif mounts:
            words = Text(f"{len(mounts)} overlay mount{'s' if len(mounts) != 1 else ''}", style="dim")
        else:
            words = Text("no overlay mounts on this host", style="dim")
        self.query_one("#mounts-status", Static).update(words)
        self.loaded = True

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_index < len(self.mounts) and self.opening is None:
            target = self.mounts[event.option_index].target
            self.opening = target
            self.query_one("#mounts-status", Static).update(Text(f"opening {printable(target)}…", style="dim"))
            self._open(self.app, target)

    @work(thread=True, exclusive=True, group="mounts")
    def _open(self, app: App[Any], target: str) -> None:
        try:
            stack = self.opener(target, self.mountinfo)
        except StackError as e:
            call_back(app, self._failed, str(e))
            return
        call_back(app, self.dismiss, (stack, target))

    def _failed(self, message: str) -> None:
        self.opening = None
        self.query_one("#mounts-status", Static).update(Text("cannot open: " + printable(message), style="red"))

    def action_cancel(self) -> None:
        self.dismiss(None)
