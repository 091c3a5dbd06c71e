"""Rich Text for statuses and names: glyph + colour from status.STYLES, names through display.printable.

Names are never markup: every label is built from Text pieces, so ``[red]`` in a name shows literally.
"""

from __future__ import annotations

import os

from rich.style import Style
from rich.text import Text

from ...core.model import status as S
from ...core.model.display import printable, row_size
from ...core.panes import KERNEL_DIFFERS, Item

_SIZE_STYLE = Style(dim=True)

# Not a status of the model: a Merged-pane row where the mounted kernel disagrees with the model.
_DIFFERS_STYLE = Style(color="bright_white", bgcolor="red", bold=True)

# Each status's text attributes: with the glyph, they tell every status apart without colour (NO_COLOR, a
# monochrome terminal), and none of them dims the text (dim greys fall below a 4.5:1 contrast).
ATTRIBUTES: dict[str, Style] = {
    S.LOWER: Style(),
    S.NEW: Style(bold=True),
    S.COPIED_UP: Style(bold=True, italic=True),
    S.METACOPY: Style(italic=True),
    S.REPLACED: Style(bold=True, underline=True),
    S.MERGED: Style(underline=True),
    S.OPAQUE: Style(reverse=True),
    S.REDIRECT: Style(italic=True, underline=True),
    S.ERROR: Style(reverse=True, bold=True),
    S.WHITEOUT: Style(strike=True, bold=True),
    S.WHITED_OUT: Style(strike=True),
    S.OPAQUE_HIDDEN: Style(strike=True, italic=True),
    S.SHADOWED: Style(strike=True, underline=True),
}


# The 16-colour names of status.STYLES as they are drawn, chosen per theme so each reads at 4.5:1 or more on
# the panes' background (Textual's own mapping of these names falls to 1.3:1 in the light theme).
PALETTE: dict[bool, dict[str, str]] = {
    True: {  # dark
        "green": "#4ec94e", "yellow": "#e5c04a", "cyan": "#3fc5d0", "bright_yellow": "#f5e05c", "blue": "#6f9bff",
        "magenta": "#e27ae2", "bright_cyan": "#7fe3ec", "bright_red": "#ff6b6b", "red": "#ff6b6b",
        "bright_black": "#a0a0a0",
    },
    False: {  # light
        "green": "#1d6b1d", "yellow": "#7a5600", "cyan": "#006873", "bright_yellow": "#6e5a00", "blue": "#1f4fc0",
        "magenta": "#8e2d8e", "bright_cyan": "#005a66", "bright_red": "#a1001a", "red": "#a3121e",
        "bright_black": "#555555",
    },
}  # fmt: skip
_dark = [True]  # the theme the app shows (use_theme)


def use_theme(dark: bool) -> None:
    """Draw statuses in the colours of a dark or a light theme (the app calls it when its theme changes)."""
    _dark[0] = dark


def drawn(colour: str) -> str:
    """The colour a status colour name is drawn in, in the theme shown."""
    return PALETTE[_dark[0]].get(colour, colour)


def colours_on() -> bool:
    """False when the user asked for no colour (https://no-color.org: NO_COLOR set and not empty)."""
    return not os.environ.get("NO_COLOR")


def status_style(status: str | None) -> Style:
    if status == KERNEL_DIFFERS:
        return _DIFFERS_STYLE
    if status is None or status not in S.STYLES:
        return Style()
    colour = S.STYLES[status].colour
    style = ATTRIBUTES[status]
    return style if colour == "default" or not colours_on() else Style(color=drawn(colour)) + style


def glyph(status: str | None) -> Text:
    if status == KERNEL_DIFFERS:
        return Text("≠", _DIFFERS_STYLE)
    if status is None or status not in S.STYLES:
        return Text("·")
    st = S.STYLES[status]
    colour = st.colour
    plain = colour == "default" or not colours_on()
    return Text(st.glyph, Style(bold=True) + (Style() if plain else Style(color=drawn(colour))))


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
    if item.size is not None:
        text.append(f"  {row_size(item.size)}", _SIZE_STYLE)
    elif item.summed:
        text.append("  …", _SIZE_STYLE)  # its total is being summed
    if item.note and item.status != S.LOWER:
        text.append(f"  {printable(item.note)}", Style(dim=True))
    if progress:
        text.append(f"  {progress}", Style(italic=True, dim=True))
    return text


def status_words(status: str | None, words: str) -> Text:
    """A glyph then plain words: the presence line under each pane."""
    return Text.assemble(glyph(status), " ", (printable(words), status_style(status) if status else Style(dim=True)))
