"""Incremental search across the merged tree, or every layer's own copies (ctrl+l): type a name part or a glob;
Enter jumps to the result. Every layer's copies include names deleted or hidden above, with their fate."""

from __future__ import annotations

from collections.abc import Callable

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList, Static
from textual.widgets.option_list import Option
from textual.worker import get_current_worker

from ...core.model.display import printable
from ...core.search import VersionHit
from ..messages import post

Searcher = Callable[[str, Callable[[], bool], Callable[[list[str]], None]], int]
VersionSearcher = Callable[[str, Callable[[], bool], Callable[[list[VersionHit]], None]], int]


class SearchScreen(ModalScreen[str | None]):
    """Dismissed with the chosen merged path (or None)."""

    AUTO_FOCUS = "#q"

    BINDINGS = [
        Binding("escape", "cancel", "Close", id="search.close"),
        Binding("down", "results_down", "Next result", show=False, id="search.next"),
        Binding("up", "results_up", "Previous result", show=False, id="search.previous"),
        Binding("ctrl+l", "toggle_layers", "Every layer", id="search.every_layer"),
    ]

    class Found(Message, bubble=False):
        """Matches found so far (``total`` set: the search is over and found that many)."""

        def __init__(self, query: str, paths: list[str], total: int | None = None, notes: list[str] | None = None):
            super().__init__()
            self.query = query
            self.paths = paths
            self.total = total
            self.notes = notes or [""] * len(paths)  # every layer: each copy's layer and fate

    def __init__(self, searcher: Searcher, query: str = "", versions: VersionSearcher | None = None) -> None:
        super().__init__()
        self.searcher = searcher
        self.versions = versions
        self.every_layer = False
        self.initial = query
        self.results: list[str] = []
        self.done = False

    def compose(self) -> ComposeResult:
        with Vertical(id="search"):
            yield Input(self.initial, placeholder="name part, or a glob like *.conf (with / : the whole path)", id="q")
            yield Static("", id="search-status")
            yield OptionList(id="results")

    def on_mount(self) -> None:
        self._titles()
        if self.initial:
            self.run_search(self.initial)

    def _titles(self) -> None:
        box = self.query_one("#search", Vertical)
        box.border_title = "Search every layer's copies" if self.every_layer else "Search the merged tree"
        more = " · ctrl+l: merged tree" if self.every_layer else (" · ctrl+l: every layer" if self.versions else "")
        box.border_subtitle = "Enter: go · ↑↓: choose · Esc: close" + more

    def action_toggle_layers(self) -> None:
        if self.versions is None:
            return
        self.every_layer = not self.every_layer
        self._titles()
        self.run_search(self.query_one("#q", Input).value)

    def on_input_changed(self, event: Input.Changed) -> None:
        self.run_search(event.value)

    def run_search(self, query: str) -> None:
        self.results = []
        self.done = False
        self.query_one("#results", OptionList).clear_options()
        self.query_one("#search-status", Static).update(Text("searching…" if query.strip() else "", style="dim"))
        self._search(query)

    @work(thread=True, exclusive=True, group="search")
    def _search(self, query: str) -> None:
        worker = get_current_worker()

        def found(paths: list[str]) -> None:
            if not worker.is_cancelled:
                post(self, self.Found(query, paths))

        def found_versions(hits: list[VersionHit]) -> None:
            if not worker.is_cancelled:
                post(self, self.Found(query, [h.path for h in hits], notes=[h.words() for h in hits]))

        if self.every_layer and self.versions is not None:
            total = self.versions(query, lambda: worker.is_cancelled, found_versions)
        else:
            total = self.searcher(query, lambda: worker.is_cancelled, found)
        if not worker.is_cancelled:
            post(self, self.Found(query, [], total))

    def on_search_screen_found(self, message: SearchScreen.Found) -> None:
        if self.query_one("#q", Input).value != message.query:
            return
        if message.paths:
            self._add(message.paths, message.notes)
        if message.total is not None:
            self._finish(message.query, message.total)

    def _add(self, paths: list[str], notes: list[str]) -> None:
        results = self.query_one("#results", OptionList)
        lines = [Text(printable(p)) for p in paths]
        for line, note in zip(lines, notes, strict=True):
            if note:
                line.append(f"  {note}", style="dim")
        results.add_options([Option(line, id=str(len(self.results) + i)) for i, line in enumerate(lines)])
        self.results.extend(paths)
        if results.highlighted is None and self.results:
            results.highlighted = 0

    def _finish(self, query: str, total: int) -> None:
        self.done = True
        words = f"{total} match{'es' if total != 1 else ''}" if query.strip() else ""
        self.query_one("#search-status", Static).update(Text(words, style="dim"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        results = self.query_one("#results", OptionList)
        i = results.highlighted
        if i is not None and i < len(self.results):
            self.dismiss(self.results[i])

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_index < len(self.results):
            self.dismiss(self.results[event.option_index])

    def action_results_down(self) -> None:
        self.query_one("#results", OptionList).action_cursor_down()

    def action_results_up(self) -> None:
        self.query_one("#results", OptionList).action_cursor_up()

    def action_cancel(self) -> None:
        self.dismiss(None)
