"""Compare any two (issue 16): two sources or layers side by side, B against A, from the explorer.

A form asks for the two sides (:class:`CompareSetup`: ``merged``, a layer of the stack explored, any SOURCE or
SOURCE@LAYER, a plain dir; see :mod:`ufs_tui.core.reports.compare_sides`) and opens them in a worker; a side that
cannot be opened says why in the form. Then :class:`CompareScreen` lists the differences as a worker finds them
(``A``/``C``/``D PATH``, C rows with what differs), the highlighted one's content diff under them, and a summary.
Enter on a row leaves with its path; Esc leaves with None. :func:`start_compare` is the one entry.

Names are never markup: every row and line is built from Content pieces (never parsed) through
:func:`printable`.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable, Mapping
from itertools import islice

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.color import Color
from textual.containers import Vertical, VerticalScroll
from textual.content import Content
from textual.dom import DOMNode
from textual.message import Message
from textual.screen import ModalScreen
from textual.style import Style
from textual.widgets import Input, OptionList, Static
from textual.worker import Worker, get_current_worker

from ...core.model import status as S
from ...core.model.display import plural, printable
from ...core.model.errors import UfsError
from ...core.model.stack import Stack
from ...core.reports.compare import ADDED, CHANGED, DELETED, Comparison, Difference, fields_text
from ...core.reports.compare_sides import MERGED, SideOptions, open_side
from ..heap import rows_added
from ..messages import post
from ..widgets.keyed_list import KeyedOptionList
from ..widgets.labels import colours_on, drawn, status_style
from .confirm import Field, FormScreen

DIFF_CAP = 64 * 1024  # bytes of each file a content diff reads
DIFF_LINES = 400  # lines of a content diff shown (more would stall the UI)
BATCH_MOST = 1000  # differences in one batch while the UI is still busy with the last one

# Each kind coloured as the panes colour the statuses it stands for: new, changed (copied up), deleted.
KIND_STATUS = {ADDED: S.NEW, CHANGED: S.COPIED_UP, DELETED: S.WHITEOUT}
_SIDE_HINT = f"{MERGED}, upper, lower:N, data:N, SOURCE[@LAYER] or a dir"
_ITALIC = Style(italic=True)
_BOLD = Style(bold=True)

# A kind's (letter, path) styles, made once per batch in the theme shown (a row is made in the walk's worker).
RowStyles = Mapping[str, tuple[Style, Style]]


def row_styles() -> RowStyles:
    out: dict[str, tuple[Style, Style]] = {}
    for kind, status in KIND_STATUS.items():
        path = Style.from_rich_style(status_style(status))
        out[kind] = (path + _BOLD, path)
    return out


def row(d: Difference, styles: RowStyles) -> Content:
    """``KIND PATH`` in the kind's colours and, for C, what differs: ``C /etc/motd  size 12 → 30, content``."""
    letter, path = styles[d.kind]
    return Content.assemble((d.kind, letter), " ", (printable(d.path), path), f"  {fields_text(d)}" if d.fields else "")


def detail(d: Difference, diff: str, styles: RowStyles) -> Content:
    """What the lower part shows of ``d``: its row, what it is, then its content diff (its first lines)."""
    parts: list[str | Content | tuple[str, Style]] = [row(d, styles)]
    if d.kind == ADDED:
        parts.append(f"\nonly in B: a {d.type}" + (", and everything under it" if d.type == "dir" else ""))
    elif d.kind == DELETED:
        parts.append(f"\nonly in A: a {d.type}" + (", and everything it held" if d.type == "dir" else ""))
    elif d.field("content") is None:
        parts.append("\nthe content is not among what differs")
    lines = diff.rstrip("\n").split("\n") if diff else []
    if lines:
        parts.append("\n")
    colours = _diff_styles()
    for i, line in enumerate(lines[:DIFF_LINES]):
        head = i < 2 and line.startswith(("--- ", "+++ "))
        parts += ["\n", (line, _BOLD if head else colours.get(line[:1], Style()))]
    if len(lines) > DIFF_LINES:
        parts.append((f"\n… {len(lines) - DIFF_LINES} more lines (the first {DIFF_LINES} shown)", _ITALIC))
    return Content.assemble(*parts)


def _diff_styles() -> dict[str, Style]:
    """A unified diff's lines by their first character: hunks, additions and removals coloured (NO_COLOR: none)."""
    colour = {"@": "cyan", "+": "green", "-": "red"} if colours_on() else {}
    return {k: Style(foreground=Color.parse(drawn(c))) for k, c in colour.items()}


class CompareSetup(FormScreen):
    """The two sides, as typed (prefilled): Enter in either opens both in a worker; a side that cannot be opened
    says why here, in one line. Once both are open: dismissed with the sides, and their comparison handed to
    ``then``; Esc: dismissed with None."""

    class Opened(Message, bubble=False):
        """Both sides opened (``comparison``), or the one line that says why a side was not (``error``)."""

        def __init__(self, sides: tuple[str, str], comparison: Comparison | None, error: str = "") -> None:
            super().__init__()
            self.sides = sides
            self.comparison = comparison
            self.error = error

    def __init__(
        self, stack: Stack, a: str, b: str, opts: SideOptions, then: Callable[[Comparison, tuple[str, str]], None]
    ) -> None:
        lines = [
            "B against A: what B adds (A), changes (C) and deletes (D). A side is this stack's merged view "
            f"({MERGED}), one of its layers (upper, lower:N, data:N), a SOURCE (docker:NAME, docker-image:NAME, "
            "podman:..., an image archive, an overlay mount point), SOURCE@LAYER, or a plain dir.",
        ]
        fields = [Field("A:", a, "compare-a", _SIDE_HINT), Field("B:", b, "compare-b", _SIDE_HINT)]
        super().__init__("Compare any two", lines, fields)
        self.here = stack
        self.opts = opts
        self.then = then
        self.error = ""  # the line said about a side that cannot be opened

    def on_mount(self) -> None:
        box = self.query_one(".dialog")
        box.border_subtitle = "Enter: compare · Tab: the other side · → completes a dir name · Esc: cancel"
        box.mount(Static("", id="compare-error"))

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        event.prevent_default()  # (not the form's own: Enter in A compares too, and nothing is dismissed yet)
        sides = (self.query_one("#compare-a", Input).value.strip(), self.query_one("#compare-b", Input).value.strip())
        self.query_one("#compare-error", Static).update(Content.styled("opening A and B…", _ITALIC))
        self._open(sides)

    @work(thread=True, exclusive=True, group="compare-open", exit_on_error=False)
    def _open(self, sides: tuple[str, str]) -> None:
        worker = get_current_worker()
        trees = []
        for label, spec in zip("AB", sides, strict=True):
            try:
                trees.append(open_side(spec, label, self.opts, self.here))
            except (UfsError, OSError) as e:
                if not worker.is_cancelled:
                    post(self, self.Opened(sides, None, f"{label}: {printable(str(e))}"))
                return
        if not worker.is_cancelled:
            post(self, self.Opened(sides, Comparison(*trees)))

    def on_compare_setup_opened(self, m: CompareSetup.Opened) -> None:
        if m.comparison is None:
            self.error = m.error
            self.query_one("#compare-error", Static).update(Content(m.error))
            return
        self.dismiss(m.sides)
        self.then(m.comparison, m.sides)


class CompareScreen(ModalScreen[str | None]):
    """The differences of ``comparison``, B against A, as a worker finds them; dismissed with the merged path of
    the row chosen with Enter, or None (Esc). The worker ends when the screen closes."""

    AUTO_FOCUS = "#compare-rows"
    BINDINGS = [Binding("escape", "close", "Close", id="compare.close")]

    class Batch(Message, bubble=False):
        """Differences found since the last batch (and their rows), the new problems; ``done``: the walk is over
        (``failed``: it stopped on this problem)."""

        def __init__(
            self,
            found: list[Difference],
            lines: list[Content],
            problems: list[tuple[str, str]],
            done: bool,
            failed: str,
        ) -> None:
            super().__init__()
            self.found = found
            self.lines = lines
            self.problems = problems
            self.done = done
            self.failed = failed

    class Detail(Message, bubble=False):
        """What the lower part shows of row ``index``."""

        def __init__(self, index: int, text: Content) -> None:
            super().__init__()
            self.index = index
            self.text = text

    def __init__(self, comparison: Comparison, sides: tuple[str, str]) -> None:
        super().__init__()
        self.comparison: Comparison | None = comparison  # (None once closed: see on_unmount)
        self.sides = sides
        self.rows: list[Difference] = []
        self.counts: Counter[str] = Counter()
        self.problems: list[tuple[str, str]] = []  # (path, problem): not compared
        self.done = False
        self.failed = ""
        self.shown: int | None = None  # the row whose detail the lower part shows
        self.walker: Worker[None] | None = None
        self._lock = threading.Lock()  # the trees are read by one thread at a time: the walk's, or a diff's
        self._taken = threading.Event()  # the UI has shown the last batch: the walk may hand it the next
        self._taken.set()
        self._list = KeyedOptionList(id="compare-rows")  # (j/k, g/G as in the panes)

    def compose(self) -> ComposeResult:
        with Vertical(id="compare"):
            yield Static("", id="compare-summary")
            yield self._list
            with VerticalScroll(id="compare-diff"):
                yield Static("", id="compare-detail")

    def on_mount(self) -> None:
        box = self.query_one("#compare", Vertical)
        a, b = (printable(s) for s in self.sides)
        box.border_title = Content(f"Compare  B: {b}  against  A: {a}")
        box.border_subtitle = "Enter: go there · ↑↓: choose · Tab: the diff · Esc: close"
        self._summary()
        self.walker = self._walk()

    # ------------------------------------------------------------ the walk
    @work(thread=True, exclusive=True, group="compare-walk", exit_on_error=False)
    def _walk(self) -> None:
        worker, cmp = get_current_worker(), self.comparison  # (read here: a worker's arguments outlive it)
        if cmp is None:
            return
        walk = cmp.differences()
        found: list[Difference] = []
        told = 0  # problems handed to the UI so far
        failed = ""
        while not worker.is_cancelled:
            try:
                with self._lock:
                    d = next(walk, None)
            except (UfsError, OSError) as e:
                failed, d = printable(str(e)), None
            if d is None:
                break
            found.append(d)
            if self._taken.is_set() or len(found) >= BATCH_MOST:
                if not self._hand(worker, found, cmp.errors, told, False, ""):
                    return
                found, told = [], len(cmp.errors)
        self._hand(worker, found, cmp.errors, told, True, failed)

    def _hand(
        self, worker: Worker[None], found: list[Difference], errors: dict[str, str], told: int, done: bool, failed: str
    ) -> bool:
        """Post ``found`` and the ``errors`` after the first ``told`` once the UI has shown the last batch (so a
        long walk never floods it); False when the screen has closed."""
        while not self._taken.wait(0.1):
            if worker.is_cancelled:
                return False
        if worker.is_cancelled:
            return False
        self._taken.clear()
        problems = list(islice(errors.items(), told, None))
        styles = row_styles()
        lines = [row(d, styles) for d in found]  # (made here: the UI only lays them out)
        return post(self, self.Batch(found, lines, problems, done, failed))

    def on_compare_screen_batch(self, m: CompareScreen.Batch) -> None:
        self.rows += m.found
        self.counts.update(d.kind for d in m.found)
        self.problems += m.problems
        self.done, self.failed = m.done, m.failed
        rows = self._list
        rows.add_options(m.lines)
        rows_added(len(m.lines))  # (the heap frozen now and then: 100,000 rows never stall a key in a collection)
        if rows.highlighted is None and self.rows:
            rows.highlighted = 0
        if self.done and not self.rows:
            self.shown = None
            self.query_one("#compare-detail", Static).update(Content(self._none_words()))
        self._summary()
        self.call_after_refresh(self._taken.set)

    def _none_words(self) -> str:
        if self.failed or self.problems:
            return "no difference found in what could be read"
        return "A and B are the same (times, xattrs and hard links are not compared)"

    def _summary(self) -> None:
        letters = row_styles()
        parts: list[str | tuple[str, Style]] = []
        for kind in (ADDED, CHANGED, DELETED):
            parts += [(kind, letters[kind][0]), f" {self.counts[kind]}   "]
        n = len(self.rows)
        if not self.done:
            parts.append(("comparing…", _ITALIC))
        else:
            parts.append(plural(n, "difference") if n else "no differences")
        if self.failed:
            parts.append((f"\nstopped: {self.failed}", _BOLD))
        if self.problems:
            path, problem = self.problems[0]
            more = f" (and {len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
            parts.append((f"\nnot compared: {printable(path)}: {printable(problem)}{more}", _BOLD))
        self.query_one("#compare-summary", Static).update(Content.assemble(*parts))

    # ------------------------------------------------------------ the highlighted row
    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if event.option_index < len(self.rows):
            self._detail(event.option_index)

    @work(thread=True, exclusive=True, group="compare-diff", exit_on_error=False)
    def _detail(self, index: int) -> None:
        worker, cmp, rows = get_current_worker(), self.comparison, self.rows
        with self._lock:
            if worker.is_cancelled or cmp is None or index >= len(rows):
                return
            d = rows[index]
            try:
                diff = cmp.content_diff(d, DIFF_CAP)
            except (UfsError, OSError) as e:
                diff = f"(no diff: {printable(str(e))})"
        if not worker.is_cancelled:
            post(self, self.Detail(index, detail(d, diff, row_styles())))

    def on_compare_screen_detail(self, m: CompareScreen.Detail) -> None:
        if m.index == self._list.highlighted:
            self.shown = m.index
            self.query_one("#compare-detail", Static).update(m.text)

    # ------------------------------------------------------------ leaving
    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option_index < len(self.rows):
            self._leave(self.rows[event.option_index].path)

    def action_close(self) -> None:
        self._leave(None)

    def _leave(self, path: str | None) -> None:
        self.workers.cancel_node(self)  # the walk stops at its next difference
        self.dismiss(path)

    def on_unmount(self) -> None:
        """Let go of the rows and the trees: the heap may have been frozen with this screen in it, and a frozen
        screen is never collected (:mod:`ufs_tui.ui.heap`); what it lets go of is freed by reference counting."""
        self.comparison = None
        self.rows = []
        self._list.clear_options()


def start_compare(
    owner: DOMNode,
    stack: Stack,
    default_a: str,
    default_b: str,
    jump: Callable[[str | None], None],
    engines: Mapping[str, str | None] | None = None,
) -> None:
    """Compare any two, from the explorer: push the form that asks for sides A and B (prefilled with
    ``default_a`` and ``default_b``), then the differences of B against A.

    ``owner``: the App or a screen of it (the screens are pushed on its app). ``stack``: the stack explored, whose
    merged view (``merged``) and layers (``upper``, ``lower:N``, ``data:N``) a side may name; any SOURCE,
    SOURCE@LAYER or plain dir works too, opened with the engine roots ``engines`` (UiOptions.engines:
    docker_root, containerd_root, podman_root, host_root). Returns at once: the sides are opened and compared in
    thread workers, and a side that cannot be opened is said in the form, which stays open.

    ``jump`` is called once, on the event loop, when the user leaves: with the merged path of the row chosen
    with Enter (a path of the compared trees: it may not exist in ``stack``), or None (Esc in the form or in the
    list)."""

    def compare(comparison: Comparison, sides: tuple[str, str]) -> None:
        # (pushed by the owner: a screen's result goes back through the one that pushed it, and the form is gone)
        owner.call_later(owner.app.push_screen, CompareScreen(comparison, sides), jump)

    def left(sides: tuple[str, ...] | None) -> None:
        if sides is None:
            jump(None)

    opts = SideOptions(engines=dict(engines or {}))
    owner.app.push_screen(CompareSetup(stack, default_a, default_b, opts, compare), left)
