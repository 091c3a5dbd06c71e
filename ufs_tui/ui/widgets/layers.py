"""The layer list: the whole stack top-down (upper, lowers, data layers) with counts per layer.

A layer with a label (what an engine or archive says made it) shows a short form of it under its name
instead of its path: the build step, cut to fit (the size is on the first line). While the list has
focus, the details panel shows the highlighted layer's whole label: the full step, every id, its path
and counts.
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import Callable

from rich.style import Style
from rich.text import Text
from textual import work
from textual.css.query import NoMatches
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from ...core.model import status as S
from ...core.model.display import human_size, printable
from ...core.model.stack import Layer, Stack
from ...core.reports.layerstats import LayerCounts, layer_counts, stack_to_json
from ...core.sources.common import parse_label
from .details import DetailsPanel, render_layer
from .keyed_list import KeyedOptionList
from .labels import glyph


def counts_text(c: LayerCounts | None, size: bool = True) -> Text:
    if c is None:
        return Text("counting…", style="dim")
    parts = Text()
    for status, n in ((S.NEW, c.new), (S.COPIED_UP, c.copied), (S.METACOPY, c.metacopy), (S.WHITEOUT, c.whiteouts)):
        if n:
            parts.append_text(glyph(status))
            parts.append(f"{n} ")
    if c.opaque:
        parts.append_text(glyph(S.OPAQUE))
        parts.append(f"{c.opaque} ")
    if size:
        parts.append(human_size(c.size), style="dim")
    if not c.complete:
        parts.append("…", style="dim")
    return parts


class LayerList(KeyedOptionList):
    """Choosing a layer (Enter or a click) shows it in the Lower pane."""

    def __init__(self, stack: Stack, alias: Callable[[str], str], source: str = "", *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.stack = stack
        self.alias = alias
        self.counts: dict[str, LayerCounts] = {}
        self.shown_in_lower: str | None = None
        self.set_source(source)

    def set_source(self, source: str) -> None:
        """What the layers are of (a SOURCE such as docker:web), in the list's title."""
        self.border_title = f"Layers of {printable(source)}" if source else "Layers"

    def stack_layers(self) -> list[Layer]:
        return list(self.stack.all_layers)

    def prompt(self, layer: Layer) -> Text:
        """Two lines, each cut to the list's width (an option's prompt would wrap otherwise)."""
        width = max(10, (self.scrollable_content_region.width or 34) - 1)
        mark = "◀ " if layer.name == self.shown_in_lower else "  "
        line1 = Text(mark, style=Style(bold=True))
        line1.append(f"{layer.name:<8}", style=Style(bold=layer.role == "upper"))
        counts = counts_text(self.counts.get(layer.name))
        if line1.cell_len + counts.cell_len > width:  # a narrow list: the counts before the size
            counts = counts_text(self.counts.get(layer.name), size=False)
            counts.rstrip()
        line1.append_text(counts)
        line1.truncate(width, overflow="ellipsis")
        line2 = short_label(layer.label, width) if layer.label else None
        if line2 is None:
            path = printable(self.alias(layer.path))
            if len(path) > width - 2:
                path = "…" + path[-(width - 3) :]
            line2 = Text("  " + path, style="dim")
        return Text("\n").join([line1, line2])

    def on_resize(self) -> None:
        self.rebuild()

    def rebuild(self) -> None:
        highlighted = self.highlighted
        self.clear_options()
        self.add_options([Option(self.prompt(layer), id=layer.name) for layer in self.stack_layers()])
        if highlighted is not None and highlighted < self.option_count:
            self.highlighted = highlighted

    def set_counts(self, name: str, counts: LayerCounts) -> None:
        self.counts[name] = counts
        self.rebuild()

    def set_lower(self, name: str) -> None:
        self.shown_in_lower = name
        self.rebuild()

    def set_stack(self, stack: Stack, lower: str) -> None:
        self.stack = stack
        self.counts.clear()
        self.set_lower(lower)

    @work(exclusive=True, group="counts", exit_on_error=False)
    async def count(self, only: frozenset[str] | None = None) -> None:
        """Count what each layer adds, copies up and deletes (``only``: just the layers with these roots).

        In a child process: counting a big stack would otherwise hold the GIL the UI needs.
        """
        stack = self.stack
        names = [la.name for la in stack.all_layers if only is None or la.path in only]
        if not names:
            return
        if any(la.fs is not None for la in stack.all_layers):
            # Layers read in place from an image archive: a child process could not rebuild them from paths.
            # The archive's index is in memory here, so counting in a thread is quick.
            for name in names:
                counts = await asyncio.to_thread(layer_counts, stack, stack.layer_by_name(name))
                if not self.is_attached:  # the app is closing
                    return
                self.set_counts(name, counts)
            return
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ufs_tui.core.reports.layerstats",
            *names,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(stack_to_json(stack).encode())
            await proc.stdin.drain()
            proc.stdin.close()
            async for line in proc.stdout:
                try:
                    d = json.loads(line)
                    name = d.pop("layer")
                    counts = LayerCounts(**d)
                except (ValueError, KeyError, TypeError):
                    continue
                if not self.is_attached:  # the app is closing
                    return
                self.set_counts(name, counts)
            await proc.wait()
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()

    # The highlighted layer's whole label, in the details panel while the list has focus.
    def on_focus(self) -> None:
        if self.highlighted is None:  # start at the layer the Lower pane shows (the highlight shows it)
            names = [la.name for la in self.stack_layers()]
            self.highlighted = names.index(self.shown_in_lower) if self.shown_in_lower in names else 0
        self.show_full()

    def on_blur(self) -> None:
        panel = self._details()
        if panel is not None:
            panel.end_layer()

    def on_option_list_option_highlighted(self, event: OptionList.OptionHighlighted) -> None:
        if self.has_focus:
            self.show_full()

    def show_full(self) -> None:
        panel = self._details()
        i = self.highlighted
        layers = self.stack_layers()
        if panel is None or i is None or not 0 <= i < len(layers):
            return
        layer = layers[i]
        counts = self.counts.get(layer.name)
        panel.show_layer(
            layer.name,
            render_layer(layer, self.alias, counts_text(counts) if counts else None, layer.name == self.shown_in_lower),
        )

    def _details(self) -> DetailsPanel | None:
        try:
            return self.screen.query_one(DetailsPanel)
        except NoMatches:
            return None


def short_label(label: str, width: int) -> Text | None:
    """The second line of a labelled layer: ``  RUN cmd…``, the build step cut to fit (the first line has
    the layer's size; the whole label is in the details panel while the list has focus)."""
    step = printable(parse_label(label).brief)
    if not step:
        return None
    line = Text("  " + step)
    line.truncate(width, overflow="ellipsis")
    return line
