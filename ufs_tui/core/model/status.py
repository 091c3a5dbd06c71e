"""The one table of statuses: what each means, its glyph and its colour.

CLI output, JSON, the UI panes, the legend, the help screen and the README all
read this table; nothing else spells a status, glyph or colour.
"""

from __future__ import annotations

from dataclasses import dataclass

# Statuses of merged entries (``tree`` output, the Merged pane).
LOWER = "lower"  # topmost copy is in a lower layer: unchanged
NEW = "new"  # only in the upper
COPIED_UP = "copied-up"  # upper non-dir over a lower non-dir of the same name
METACOPY = "metacopy"  # metadata-only copy-up: data still read from below
REPLACED = "replaced"  # upper entry over a lower entry of the other kind (dir vs non-dir)
MERGED = "merged"  # directory in the upper whose contents merge with lower dirs
OPAQUE = "opaque"  # directory with overlay.opaque=y: hides the same dir below
REDIRECT = "redirect"  # dir (or metacopy file) with overlay.redirect: lower contents come from elsewhere
ERROR = "error"  # the kernel would fail lookup (metacopy without data)

# Statuses of hidden things (``tree --all``, the Lower/Upper panes).
WHITEOUT = "whiteout"  # the marker itself: a 0/0 char device, xattr whiteout or .wh.NAME
WHITED_OUT = "whited-out"  # a lower entry deleted by a whiteout above it
OPAQUE_HIDDEN = "opaque-hidden"  # a lower entry hidden by an opaque dir above it
SHADOWED = "shadowed"  # a lower entry hidden by another entry above it (copy-up, replace)

# Fates of one layer's version of a name (details panel, ``LayerVersion.fate``).
VISIBLE = "visible"
F_MERGED = "merged-in"  # a lower dir whose contents merge into the visible dir
F_DATA = "data"  # the lower file whose data a metacopy file shows
F_WHITEOUT = WHITEOUT
F_WHITED_OUT = WHITED_OUT
F_OPAQUE_HIDDEN = OPAQUE_HIDDEN
F_SHADOWED = SHADOWED
F_PARENT_HIDDEN = "parent-hidden"  # an ancestor dir is whited out, opaque or not a dir above

HIDDEN_FATES = {F_WHITEOUT, F_WHITED_OUT, F_OPAQUE_HIDDEN, F_SHADOWED}
HIDDEN_STATUS = {F_WHITEOUT: WHITEOUT, F_WHITED_OUT: WHITED_OUT, F_OPAQUE_HIDDEN: OPAQUE_HIDDEN, F_SHADOWED: SHADOWED}


@dataclass(frozen=True)
class StatusStyle:
    status: str
    glyph: str  # one character, so it reads without colour
    colour: str  # a Rich colour from the 16-colour palette (reads in light and dark themes)
    legend: str  # words for the legend and the README


STYLES: dict[str, StatusStyle] = {
    s.status: s
    for s in (
        StatusStyle(LOWER, " ", "default", "unchanged: the topmost copy is in a lower layer"),
        StatusStyle(NEW, "+", "green", "new in the upper layer"),
        StatusStyle(COPIED_UP, "~", "yellow", "copied up: the upper holds a full copy over a lower file"),
        StatusStyle(METACOPY, "m", "cyan", "metacopy: metadata copied up, data still read from below"),
        StatusStyle(REPLACED, "!", "bright_yellow", "replaced: a file where a dir was below, or a dir over a file"),
        StatusStyle(MERGED, "*", "blue", "merged dir: upper dir whose contents merge with lower dirs"),
        StatusStyle(OPAQUE, "O", "magenta", "opaque dir: hides everything of this name below it"),
        StatusStyle(REDIRECT, ">", "bright_cyan", "redirected: contents from another lower path (renamed dir)"),
        StatusStyle(ERROR, "?", "bright_red", "error: the kernel cannot resolve this (metacopy without data)"),
        StatusStyle(WHITEOUT, "x", "red", "whiteout: a marker that deletes this name from the layers below"),
        StatusStyle(WHITED_OUT, "-", "red", "whited out: deleted by a whiteout in a layer above"),
        StatusStyle(OPAQUE_HIDDEN, "#", "magenta", "hidden by an opaque dir above"),
        StatusStyle(SHADOWED, "^", "bright_black", "shadowed: hidden by another entry above it"),
    )
}

# What ``diff`` kinds mean, in docker's letters.
DIFF_ADDED, DIFF_CHANGED, DIFF_DELETED = "A", "C", "D"
