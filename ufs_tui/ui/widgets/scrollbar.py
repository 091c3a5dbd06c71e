"""The fast scrollbar: a vertical scrollbar that remembers what it rendered (panes and the details use it)."""

from __future__ import annotations

from rich.color import Color as RichColor
from rich.style import Style
from textual.geometry import Region
from textual.scrollbar import ScrollBar, ScrollBarRender
from textual.strip import Strip
from textual.widget import Widget

from .. import textual_internals as ti


class FastScrollBar(ScrollBar):
    """A ScrollBar that remembers what it rendered.

    Textual renders a scrollbar through Rich on every refresh, and a scrollbar is refreshed whenever its
    widget scrolls: with three panes and the details scrolling as the cursor moves, that was some 40%
    of a key press's screen update. What the bar looks like depends on a few numbers only (the thumb
    moves one cell per hundreds of rows in a big dir), so the lines are kept per look.
    """

    MEMO = 16

    def __init__(self, vertical: bool = True, name: str | None = None, *, thickness: int = 1) -> None:
        super().__init__(vertical, name, thickness=thickness)
        self._memo: dict[tuple[object, ...], list[Strip]] = {}

    def _look(self, crop: Region) -> tuple[object, ...] | None:
        """Everything the rendered lines depend on: the bar's cells, the widget's colours, the app's filters."""
        bar = self.render()
        if not isinstance(bar, ScrollBarRender) or not isinstance(bar.style, Style):
            return None
        width, height = self.size
        cells = bar.render_bar(
            size=height if self.vertical else width,
            virtual_size=bar.virtual_size,
            window_size=bar.window_size,
            position=bar.position,
            thickness=width if self.vertical else height,
            vertical=self.vertical,
            back_color=bar.style.bgcolor or RichColor.parse("#555555"),
            bar_color=bar.style.color or RichColor.parse("bright_magenta"),
        )
        app = self.app
        filters = tuple(id(f) for f in self.get_line_filters())
        return (
            crop,
            self.size,
            tuple(cells.segments),
            self.background_colors,
            self.opacity,
            filters,
            id(app.ansi_theme),
            app.native_ansi_color,
        )

    def render_lines(self, crop: Region) -> list[Strip]:
        look = self._look(crop)
        if look is None:
            return super().render_lines(crop)
        lines = self._memo.get(look)
        if lines is None:
            lines = super().render_lines(crop)
            if len(self._memo) >= self.MEMO:
                self._memo.pop(next(iter(self._memo)))
            self._memo[look] = lines
        return lines


def fast_vertical_scrollbar(widget: Widget) -> ScrollBar:
    """Widget.vertical_scrollbar, made a :class:`FastScrollBar` (widgets override the property with this)."""
    return ti.vertical_scrollbar(
        widget, lambda: FastScrollBar(vertical=True, name="vertical", thickness=widget.scrollbar_size_vertical)
    )
