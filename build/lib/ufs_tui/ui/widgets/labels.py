"""Rich Text for statuses and names: glyph + colour from status.STYLES, names through display.printable.

Names are never markup: every label is built from Text pieces, so ``[red]`` in a name shows literally.
"""

from __future__ import annotations

from rich.style import Style
from rich.text import Text

from ...core import status as S
from ...core.display import printable
from ...core.panes import Item
from ..explorer import KERNEL_DIFFERS

# Not a status of the model: a Merged-pane row where the mounted kernel disagrees with the model.
_DIFFERS_STYLE = Style(color="bright_white", bgcolor="red", bold=True)

_STRIKE = {S.WHITED_OUT}
_ITALIC = {S.OPAQUE_HIDDEN, S.SHADOWED}


def status_style(status: str | None) -> Style:
    if status == KERNEL_DIFFERS:
        return _DIFFERS_STYLE
    if status is None or status not in S.STYLES:
        return Style()
    colour = S.STYLES[status].colour
    style = Style() if colour == "default" else Style(color=colour)
    if status in _STRIKE:
        style += Style(strike=True)
    if status in _ITALIC:
        style += Style(italic=True)
    return style


def glyph(status: str | None) -> Text:
    if status == KERNEL_DIFFERS:
        return Text("≠", _DIFFERS_STYLE)
    if status is None or status not in S.STYLES:
        return Text("·")
    st = S.STYLES[status]
    colour = st.colour
    return Text(st.glyph, Style(bold=True) + (Style() if colour == "default" else Style(color=colour)))


def item_label(item: Item, progress: str = "") -> Text:
    style = status_style(item.status)
    text = Text.assemble(glyph(item.status), " ", (printable(item.name), style))
    if item.kind == "dir":
        text.append("/", style)
    elif item.kind == "symlink" and item.target is not None:
        text.append(" -> ", Style(dim=True))
        text.append(printable(item.target), style)
    elif item.kind in ("fifo", "socket", "chardev", "blockdev") and item.status != S.WHITEOUT:
        text.append(f" ({item.kind})", Style(dim=True))
    if item.note and item.status != S.LOWER:
        text.append(f"  {printable(item.note)}", Style(dim=True))
    if progress:
        text.append(f"  {progress}", Style(italic=True, dim=True))
    return text


def status_words(status: str | None, words: str) -> Text:
    """A glyph then plain words: the presence line under each pane."""
    return Text.assemble(glyph(status), " ", (printable(words), status_style(status) if status else Style(dim=True)))
