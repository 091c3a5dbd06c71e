"""The waste view: the stack's wasted bytes, largest first, each said in words; grouped by the layer (and build
step) that caused them with ``g``. Computed in a thread worker; Enter jumps to the path."""

from __future__ import annotations

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ...core.model.display import human_size, printable
from ...core.model.stack import Stack
from ...core.reports.waste import Waste, WasteReport, find_waste, layer_words
from ..messages import post

MAX_ROWS = 500  # the largest wastes listed (more would hold the event loop while the list is made)


class WasteScreen(ModalScreen[str | None]):
    """Dismissed with the merged path of the chosen row (or None)."""

    BINDINGS = [
        Binding("escape", "cancel", "Close", id="waste.close"),
        Binding("g", "toggle_group", "Group by cause", id="waste.group"),
    ]

    class Computed(Message, bubble=False):
        """The waste of the stack, found by the worker (``doing``: what it still does; "": the whole report)."""

        def __init__(self, report: WasteReport, doing: str = "") -> None:
            super().__init__()
            self.report = report
            self.doing = doing

    def __init__(self, stack: Stack) -> None:
        super().__init__()
        self.stack = stack
        self.report: WasteReport | None = None
        self.doing = ""  # what the worker still does (the report shown is not the whole one yet)
        self.grouped = False
        self.paths: list[str | None] = []  # per option: the path it jumps to (None: a group heading)

    @property
    def done(self) -> bool:
        """The whole report is shown (duplicates too)."""
        return self.report is not None and not self.doing

    def compose(self) -> ComposeResult:
        with Vertical(id="waste"):
            yield Static(Text("finding wasted space…", style="dim"), id="waste-summary")
            yield OptionList(id="waste-rows")

    def on_mount(self) -> None:
        box = self.query_one("#waste", Vertical)
        box.border_title = "Wasted space"
        box.border_subtitle = "Enter: go · g: group by cause · Esc: close"
        self._compute()

    @work(thread=True, exclusive=True, group="waste")
    def _compute(self) -> None:
        worker = get_current_worker()

        def so_far(report: WasteReport, doing: str) -> None:  # shown while the rest is found
            post(self, self.Computed(report, doing))

        report = find_waste(self.stack, cancelled=lambda: worker.is_cancelled, so_far=so_far)
        if not worker.is_cancelled:
            post(self, self.Computed(report))

    def on_waste_screen_computed(self, message: WasteScreen.Computed) -> None:
        self.report = message.report
        self.doing = message.doing
        self._show()

    def _show(self) -> None:
        report = self.report
        if report is None:
            return
        share = f"{100 * report.wasted / report.total:.1f}%" if report.total else "0%"
        summary = (
            f"{human_size(report.wasted)} of {human_size(report.total)} stored is wasted ({share}) "
            f"in {len(report.rows)} place{'s' if len(report.rows) != 1 else ''}"
        ) + (f"; {self.doing}…" if self.doing else "")
        self.query_one("#waste-summary", Static).update(Text(summary))
        rows = self.query_one("#waste-rows", OptionList)
        at = rows.highlighted
        was = self.paths[at] if at is not None and at < len(self.paths) else None  # (kept when rows come again)
        rows.clear_options()
        self.paths = []
        options: list[Option] = []
        shown = report.rows[:MAX_ROWS]
        if self.grouped:
            for cause, size in report.by_cause().items():
                heading = "duplicate content" if cause == "-" else f"caused by {self._layer_words(cause)}"
                options.append(Option(Text(f"{human_size(size):>9}  {heading}", style="bold"), disabled=True))
                self.paths.append(None)
                for w in shown:
                    if (w.by.name if w.by else "-") == cause:
                        options.append(self._option(w, "  "))
                        self.paths.append(w.path)
        else:
            for w in shown:
                options.append(self._option(w, ""))
                self.paths.append(w.path)
        if len(report.rows) > len(shown):
            more = f"… and {len(report.rows) - len(shown):,} smaller ones (ufs-tui du --top N lists them all)"
            options.append(Option(Text(more, style="dim"), disabled=True))
            self.paths.append(None)
        rows.add_options(options)
        first = next((i for i, p in enumerate(self.paths) if p is not None), None)
        rows.highlighted = self.paths.index(was) if was is not None and was in self.paths else first

    def _layer_words(self, name: str) -> str:
        layer = next((la for la in self.stack.layers if la.name == name), None)
        return layer_words(layer) if layer is not None else name

    @staticmethod
    def _option(w: Waste, indent: str) -> Option:
        line = Text(f"{indent}{human_size(w.size):>9}  ")
        line.append(printable(w.path), style="bold")
        line.append(f" [{w.kind}]  ", style="dim")
        line.append(printable(w.words(with_size=False)))
        return Option(line)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        path = self.paths[event.option_index] if event.option_index < len(self.paths) else None
        if path is not None:
            self.dismiss(path)

    def action_toggle_group(self) -> None:
        self.grouped = not self.grouped
        self._show()

    def action_cancel(self) -> None:
        self.dismiss(None)
