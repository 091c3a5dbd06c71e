"""The details panel: every layer's version of the selected path and its fate, metadata, xattrs, content, diff.

:func:`render_details` turns an :class:`~ufs_tui.core.details.Details` into Rich renderables (it runs in
the details worker); the widget only shows them.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterator

from rich.console import Console, ConsoleOptions, Group, RenderableType
from rich.measure import Measurement
from rich.segment import Segment
from rich.style import Style
from rich.syntax import Syntax
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.scrollbar import ScrollBar
from textual.widgets import Static

from ...core.details import Details
from ...core.model.content import hexdump
from ...core.model.display import human_size, printable
from ...core.model.stack import Layer
from ...core.sources.common import parse_label
from .labels import glyph, status_style
from .scrollbar import fast_vertical_scrollbar

MAX_LINES = 400  # lines of content or diff shown (highlighting more would stall the UI)
HEX_BYTES = 4096
VOLATILE = ("mtime", "inode")


def _heading(title: str) -> Text:
    return Text(title, style=Style(bold=True, underline=True))


def _lexer(path: str, code: str) -> str:
    try:
        return Syntax.guess_lexer(path, code[:4096])
    except Exception:  # noqa: BLE001 - pygments can raise anything on odd input
        return "text"


def _cap_lines(text: str) -> tuple[str, int]:
    lines = text.split("\n")
    if len(lines) <= MAX_LINES:
        return text, 0
    return "\n".join(lines[:MAX_LINES]), len(lines) - MAX_LINES


def render_details(d: Details, mode: str, frozen: bool, theme_dark: bool = True) -> RenderableType:
    """``mode``: "diff" or "content" ("auto": the diff when there is one)."""
    out: list[RenderableType] = []
    head = Text.assemble(glyph(d.status), " ", (printable(d.path), Style(bold=True)), "  ")
    head.append(printable(d.words), status_style(d.status))
    head.append(f"   [{d.pane} pane]", style="dim")
    out.append(head)
    if d.versions:
        out.append(_heading("Layers (top first)"))
        t = Table.grid(padding=(0, 1))
        for v in d.versions:
            row = Text.assemble(glyph(v.status), " ", (v.layer, Style(bold=True)))
            fate = Text(v.fate + (f" by {v.by}" if v.by and v.by != v.layer else ""), status_style(v.status))
            t.add_row(row, fate, Text(v.kind, style="dim"), Text(printable(v.path), style="dim"))
        out.append(t)
    else:
        out.append(Text("no layer holds this path", style="dim"))
    if d.meta:
        out.append(_heading(f"Metadata ({d.pane})"))
        t = Table.grid(padding=(0, 1))
        for key, value in d.meta:
            if frozen and key in VOLATILE:
                value = "—"
            if key == "size" and value.endswith(" bytes"):
                n = int(value.split()[0])
                value = f"{value} ({human_size(n)})" if n >= 1000 else value
            t.add_row(Text(key, style="bold"), Text(printable(value)))
        out.append(t)
    if d.xattrs:
        out.append(_heading("Extended attributes"))
        t = Table.grid(padding=(0, 1))
        for name, value, meaning in d.xattrs:
            if frozen and name.endswith(".overlay.origin") or frozen and name.endswith(".overlay.uuid"):
                value = "…"
            t.add_row(Text(printable(name), style="bold"), Text(printable(value)), Text(meaning, style="italic"))
        out.append(t)
    want_diff = mode == "diff" or (mode == "auto" and bool(d.diff))
    if want_diff and (d.diff or d.diff_note):
        out.append(_heading(f"Diff {d.diff_labels[0]} → {d.diff_labels[1]}"))
        if d.diff:
            text, more = _cap_lines(d.diff.rstrip("\n"))
            out.append(Syntax(text, "diff", theme="ansi_dark" if theme_dark else "ansi_light", word_wrap=False))
            if more:
                out.append(Text(f"… {more} more lines", style="dim"))
        if d.diff_note:
            out.append(Text(d.diff_note, style="dim"))
        return Group(*out)
    if mode == "diff":
        out.append(Text("no diff: only a copied-up file has one (a lower version under an upper one)", style="dim"))
    c = d.content
    if c is not None:
        title = "Content" + (f" ({printable(d.content_path)})" if d.content_path and not frozen else "")
        out.append(_heading(title))
        if c.kind in ("none", "error"):
            out.append(Text(c.message, style="italic"))
        elif c.kind == "binary":
            out.append(Text(hexdump(c.data[:HEX_BYTES])))
            if c.size > HEX_BYTES:
                out.append(Text(f"… binary, {human_size(c.size)} in all", style="dim"))
        else:
            text, more = _cap_lines(c.text.rstrip("\n"))
            if text:
                out.append(
                    Syntax(
                        text,
                        _lexer(d.content_path or d.path, text),
                        theme="ansi_dark" if theme_dark else "ansi_light",
                        line_numbers=True,
                        word_wrap=False,
                    )
                )
            else:
                out.append(Text("(empty)", style="dim"))
            if more or c.truncated:
                out.append(Text(f"… shown: the first {MAX_LINES} lines / {human_size(len(c.data))}", style="dim"))
    return Group(*out)


def render_layer(layer: Layer, alias: Callable[[str], str], counts: Text | None, in_lower: bool) -> RenderableType:
    """What the details panel shows while the layer list has focus: the highlighted layer's whole label
    (the full build step and every id), its path and counts."""
    head = Text.assemble(("Layer ", Style(bold=True)), (layer.name, Style(bold=True)))
    head.append("   shown in the Lower pane" if in_lower else "   Enter: show it in the Lower pane", style="dim")
    t = Table.grid(padding=(0, 1))
    t.add_column(style="bold", no_wrap=True)
    t.add_column(overflow="fold")
    parts = parse_label(layer.label) if layer.label else None
    if parts is not None:
        made = parts.size is not None or any(k == "diff" for k, _ in parts.ids)
        t.add_row("created by" if made else "label", Text(printable(parts.text)))
        if parts.size is not None:
            t.add_row("size", Text(parts.size))
    if counts is not None:
        t.add_row("holds", counts)
    for key, value in parts.ids if parts is not None else ():
        t.add_row(f"{key} id", Text(printable(value)))
    t.add_row("path", Text(printable(alias(layer.path))))
    return Group(head, t)


class Prerendered:
    """Lines Rich already rendered at a fixed width, in the details worker: the UI thread only copies them.

    Rendering the details (tables, highlighted content) takes tens of milliseconds; done in the event
    loop it would stall key presses while the cursor moves.
    """

    def __init__(self, renderable: RenderableType, width: int) -> None:
        self.width = max(1, width)
        console = Console(
            width=self.width, color_system="truecolor", force_terminal=True, file=io.StringIO(), legacy_windows=False
        )
        self.lines = console.render_lines(renderable, console.options.update(width=self.width, height=None), pad=False)

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        newline = Segment.line()
        for line in self.lines:
            yield from line
            yield newline

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement(self.width, self.width)


class DetailsPanel(VerticalScroll):
    """Scrollable; the app fills it from the details worker."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._path_view: RenderableType = Text("Select a path", style="dim")
        self.body = Static(self._path_view, id="details-body")
        self.border_title = "Details"
        self.shown: Details | None = None
        self.layer_shown: str | None = None  # the layer whose labels are shown (while the layer list has focus)

    @property
    def vertical_scrollbar(self) -> ScrollBar:
        return fast_vertical_scrollbar(self)

    def compose(self):  # type: ignore[no-untyped-def]
        yield self.body

    def content_width(self) -> int:
        """The width the body is rendered at (the scrollbar's gutter is always kept: see ufs.tcss)."""
        return self.scrollable_content_region.width

    def show(self, d: Details | None, renderable: RenderableType) -> None:
        self.shown = d
        self._path_view = renderable
        if self.layer_shown is None:  # else shown once the layer list lets go
            self.body.update(renderable)
            self.scroll_home(animate=False)

    def show_layer(self, name: str, renderable: RenderableType) -> None:
        """A layer's labels instead of the path's details, until :meth:`end_layer`."""
        self.layer_shown = name
        self.border_title = f"Details · layer {name}"
        self.body.update(renderable)
        self.scroll_home(animate=False)

    def end_layer(self) -> None:
        if self.layer_shown is None:
            return
        self.layer_shown = None
        self.border_title = "Details"
        self.body.update(self._path_view)
        self.scroll_home(animate=False)
