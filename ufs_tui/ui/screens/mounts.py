"""Choose what to open: an overlay mount on this host, or a container or image of any engine.

The upper list: every overlay mount in the host's mount table, each with its target, the engine and
container that own it (when that can be told), the number of lower layers, the upper dir and the other
options. The lower list: every container and image the engines on this host record, running or not
(what ``ufs-tui ps`` prints), each with the SOURCE that opens it. Tab moves between the lists; Enter opens
the chosen row, and a row that cannot be opened (gone since the list was read, a layer that cannot be
resolved) says why in the screen and the lists stay.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from ...core.model.display import plural, printable
from ...core.model.errors import StackError
from ...core.model.stack import Stack
from ...core.sources import OverlayMount, host_mounts, list_overlay_mounts, open_mount, open_source, where_from
from ...core.sources.catalog import Entry, gather
from ..messages import post
from ..widgets.keyed_list import KeyedOptionList


def mount_prompt(m: OverlayMount) -> Text:
    """Two lines: target and owner; then the layers and options (every path shown printable, never as markup)."""
    line = Text(printable(m.target), style=Style(bold=True))
    owner = m.engine or "overlay"
    if m.container:
        owner += f" {m.container}"
    line.append(f"  [{printable(owner)}]", style=Style(color="cyan" if m.engine else None, dim=not m.engine))
    n = len(m.lowers)
    bits = [plural(n, "lower")]
    if m.data_layers:
        bits.append(f"{len(m.data_layers)} data")
    bits.append(f"upper {printable(m.upper)}" if m.upper else "read-only (no upper)")
    if m.options:
        bits.append(printable(",".join(m.options)))
    line.append("\n  " + " · ".join(bits), style=Style(dim=True))
    for problem in m.problems:
        line.append("\n  ⚠ " + printable(problem), style=Style(color="red"))
    return line


def entry_prompt(e: Entry) -> Text:
    """One line: the SOURCE that opens it, its state and image; the engine and id dimmed."""
    line = Text(printable(e.source), style=Style(bold=True))
    bits = [e.state] if e.state else []
    if e.kind == "container" and e.image:
        bits.append(f"image {printable(e.image)}")
    bits.append(f"{e.engine} {e.kind} {printable(e.id.removeprefix('sha256:')[:12])}")
    line.append("  " + " · ".join(bits), style=Style(dim=True))
    return line


class MountsScreen(ModalScreen[tuple[Stack, str | None, str] | None]):
    """Dismissed with the stack chosen and its mount point if it has one (or None on Esc)."""

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
    #mount-list, #entry-list {
        height: 1fr;
        border: none;
    }
    #entries-status {
        height: 1;
        padding: 0 1;
        background: $boost;
    }
    """

    BINDINGS = [
        Binding("escape", "cancel", "Close", id="mounts.close"),
        Binding("r", "refresh", "Read the mount table again", id="mounts.refresh"),
    ]

    class Read(Message, bubble=False):
        """A reading worker's result: the mounts (``error``: why the table could not be read) or the entries."""

        def __init__(
            self, mounts: list[OverlayMount] | None, entries: list[Entry] | None, notes: list[str], error: str | None
        ) -> None:
            super().__init__()
            self.mounts = mounts
            self.entries = entries
            self.notes = notes
            self.error = error

    class Opened(Message, bubble=False):
        """An opening worker's result: the stack chosen (dismiss with it), or why it cannot be opened."""

        def __init__(self, chosen: tuple[Stack, str | None, str] | None, error: str = "") -> None:
            super().__init__()
            self.chosen = chosen
            self.error = error

    def __init__(self, engines: dict[str, str | None] | None = None) -> None:
        super().__init__()
        self.engines = engines or {}  # --host-root, --docker-root, ...: where the engines and the mounts are
        self.where = where_from(self.engines)
        self.mounts: list[OverlayMount] = []
        self.entries: list[Entry] = []
        self.loaded = False  # the mount list has been read (tests wait for this)
        self.entries_loaded = False  # the engines' containers and images have been read
        self.opening: str | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="mounts"):
            yield Static(Text("reading the mount table…", style="dim"), id="mounts-status")
            yield KeyedOptionList(id="mount-list")
            yield Static(Text("reading the engines' containers and images…", style="dim"), id="entries-status")
            yield KeyedOptionList(id="entry-list")

    def on_mount(self) -> None:
        box = self.query_one("#mounts", Vertical)
        box.border_title = "Open: overlay mounts, and every engine's containers and images"
        box.border_subtitle = "Tab: the other list · Enter: open · r: refresh · Esc: close"
        self.action_refresh()

    def action_refresh(self) -> None:
        self.loaded = False
        self.entries_loaded = False
        self._read()
        self._read_entries()

    @work(thread=True, exclusive=True, group="entries")
    def _read_entries(self) -> None:
        try:
            cat = gather(self.where, host_mounts(self.where), sizes=False)
            entries, notes = cat.entries, cat.notes
        except StackError as e:
            entries, notes = [], [str(e)]
        post(self, self.Read(None, entries, notes, None))

    def on_mounts_screen_read(self, message: MountsScreen.Read) -> None:
        if message.entries is not None:
            self._show_entries(message.entries, message.notes)
        if message.mounts is not None:
            self._show(message.mounts, message.error)

    def on_mounts_screen_opened(self, message: MountsScreen.Opened) -> None:
        if message.chosen is not None:
            self.dismiss(message.chosen)
        else:
            self._failed(message.error)

    def _fill(self, list_id: str, prompts: list[Text]) -> None:
        ol = self.query_one(list_id, OptionList)
        ol.clear_options()
        ol.add_options([Option(p, id=str(i)) for i, p in enumerate(prompts)])
        if prompts:
            ol.highlighted = 0

    def _show_entries(self, entries: list[Entry], notes: list[str]) -> None:
        self.entries = entries
        self._fill("#entry-list", [entry_prompt(e) for e in entries])
        n = sum(e.kind == "container" for e in entries)
        words = Text(f"{plural(n, 'container')}, {plural(len(entries) - n, 'image')}")
        if notes:
            words.append(" · " + printable(notes[0]), style="red")
        self.query_one("#entries-status", Static).update(words)
        self.entries_loaded = True

    @work(thread=True, exclusive=True, group="mounts")
    def _read(self) -> None:
        # Attributing a mount reads the engine's metadata: a thread keeps the screen responsive.
        try:
            mounts = list_overlay_mounts(where=self.where)
            error = None
        except StackError as e:
            mounts, error = [], str(e)
        post(self, self.Read(mounts, None, [], error))

    def _show(self, mounts: list[OverlayMount], error: str | None) -> None:
        self.mounts = mounts
        self._fill("#mount-list", [mount_prompt(m) for m in mounts])
        if error:
            words = Text(printable(error), style="red")
        elif mounts:
            words = Text(plural(len(mounts), "overlay mount"), style="dim")
        else:
            words = Text("no overlay mounts on this host", style="dim")
        self.query_one("#mounts-status", Static).update(words)
        self.loaded = True

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        if event.option_list.id == "entry-list":
            if event.option_index < len(self.entries) and self.opening is None:
                entry = self.entries[event.option_index]
                self.opening = entry.source
                self.query_one("#mounts-status", Static).update(
                    Text(f"opening {printable(entry.source)}…", style="dim")
                )
                self._open_entry(entry)
            return
        if event.option_index < len(self.mounts) and self.opening is None:
            target = self.mounts[event.option_index].target
            self.opening = target
            self.query_one("#mounts-status", Static).update(Text(f"opening {printable(target)}…", style="dim"))
            self._open(target)

    @work(thread=True, exclusive=True, group="mounts")
    def _open(self, target: str) -> None:
        try:
            stack = open_mount(target, where=self.where)
        except StackError as e:
            post(self, self.Opened(None, str(e)))
            return
        post(self, self.Opened((stack, target, target)))

    @work(thread=True, exclusive=True, group="mounts")
    def _open_entry(self, entry: Entry) -> None:
        try:
            stack = open_source(entry.source, **self.engines)
        except StackError as e:
            post(self, self.Opened(None, str(e)))
            return
        upper = stack.upper.path if stack.upper else None
        target = next((m.target for m in host_mounts(self.where) if upper is not None and m.upper == upper), None)
        post(self, self.Opened((stack, target, entry.source)))

    def _failed(self, message: str) -> None:
        self.opening = None
        self.query_one("#mounts-status", Static).update(Text("cannot open: " + printable(message), style="red"))

    def action_cancel(self) -> None:
        self.dismiss(None)
