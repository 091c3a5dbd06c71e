"""NO_COLOR at 200x60 in a real terminal: every state still reads, from its glyph, and no hue reaches the screen."""

from __future__ import annotations

import re
import shutil
import subprocess
import uuid

import pytest

from tests.conftest import need
from tests.ui.test_tmux import UFS, wait_screen

SGR = re.compile(r"\x1b\[([0-9;]*)m")


def _colours(screen: str) -> set[tuple[str, ...]]:
    """Every foreground/background colour the screen sets, as SGR parameter tuples."""
    found: set[tuple[str, ...]] = set()
    for params in SGR.findall(screen):
        parts = params.split(";")
        i = 0
        while i < len(parts):
            p = parts[i]
            if p in ("38", "48") and i + 1 < len(parts):
                n = 3 if parts[i + 1] == "5" else 5
                found.add(tuple(parts[i : i + n]))
                i += n
                continue
            if p and (30 <= int(p) <= 37 or 40 <= int(p) <= 47 or 90 <= int(p) <= 97 or 100 <= int(p) <= 107):
                found.add((p,))
            i += 1
    return found


def _is_grey(c: tuple[str, ...]) -> bool:
    if c[1:2] == ("5",):
        n = int(c[2])
        return n >= 232 or n in (0, 7, 8, 15, 16, 231)
    if c[1:2] == ("2",):
        r, g, b = (int(x) for x in c[2:5])
        return max(r, g, b) - min(r, g, b) <= 8
    return c[0] in ("30", "37", "40", "47", "90", "97", "100", "107")


def test_no_color_at_200x60_keeps_every_glyph_and_no_hue() -> None:
    need(shutil.which("tmux") is not None, "needs tmux")
    name = f"ufs-nc-{uuid.uuid4().hex[:8]}"
    env = ["-e", "NO_COLOR=1"]
    # A tmux server started from pytest inherits COLUMNS/LINES (80x24), which the app would believe over the tty.
    cmd = f"env -u COLUMNS -u LINES {UFS} demo"
    subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "200", "-y", "60", *env, cmd], check=True)
    try:
        # Each state has its glyph in the panes (new, copied up, whiteout, opaque, merged, shadowed, whited
        # out): wait for every one of them, in all three panes (each loads on its own), not only the Merged one.
        rows = ("+ b", "~ a", "x f", "O dir/", "* etc/", "^ a", "- f")
        plain = wait_screen(name, lambda s: all(r in s for r in rows) and "shadow.txt" in s)
        assert max(len(line) for line in plain.splitlines()) == 200
        coloured = subprocess.run(
            ["tmux", "capture-pane", "-p", "-e", "-t", name], capture_output=True, text=True
        ).stdout
        hues = {c for c in _colours(coloured) if not _is_grey(c)}
        assert not hues, f"colours on screen with NO_COLOR: {sorted(hues)[:10]}"
    finally:
        subprocess.run(["tmux", "send-keys", "-t", name, "q"], capture_output=True)
        subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)


def test_every_status_has_its_own_attributes_and_none_is_dim(monkeypatch: pytest.MonkeyPatch) -> None:
    """With the glyph, text attributes alone tell the statuses apart (NO_COLOR drops the colours): each has its
    own set, and none dims the text (a dim grey on a dark background is below a 4.5:1 contrast)."""
    from ufs_tui.core.model import status as S
    from ufs_tui.ui.widgets.labels import ATTRIBUTES, glyph, status_style

    assert set(ATTRIBUTES) == set(S.STYLES)
    assert len({(S.STYLES[s].glyph, ATTRIBUTES[s]) for s in S.STYLES}) == len(S.STYLES)
    assert len(set(ATTRIBUTES.values())) == len(S.STYLES)
    assert not any(style.dim for style in ATTRIBUTES.values())
    monkeypatch.setenv("NO_COLOR", "1")
    for s in S.STYLES:
        assert status_style(s).color is None and glyph(s).style.color is None  # type: ignore[union-attr]
        assert status_style(s) == ATTRIBUTES[s]


async def test_the_status_filters_unchecked_box_is_empty(monkeypatch: pytest.MonkeyPatch) -> None:
    """In the s filter an unchecked box draws nothing (its X in the box's own colour), a checked one a bold X."""
    from textual.widgets import SelectionList

    from tests.ui.helpers import settle, wait_until
    from ufs_tui.core.demo import build_demo
    from ufs_tui.ui.app import make_app
    from ufs_tui.ui.screens.filter import StatusFilterScreen

    with build_demo() as demo:
        app = make_app(demo.stack, live=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            await pilot.press("s")
            await wait_until(pilot, lambda: isinstance(app.screen, StatusFilterScreen), "the filter")
            sl = app.screen.query_one(SelectionList)
            off = sl.get_component_rich_style("selection-list--button")
            on = sl.get_component_rich_style("selection-list--button-selected")
            assert off.color == off.bgcolor and on.color != on.bgcolor and on.bold


def _luminance(r: int, g: int, b: int) -> float:
    def channel(c: int) -> float:
        x = c / 255
        return x / 12.92 if x <= 0.03928 else ((x + 0.055) / 1.055) ** 2.4

    return 0.2126 * channel(r) + 0.7152 * channel(g) + 0.0722 * channel(b)


@pytest.mark.parametrize("theme", ["textual-dark", "textual-light"])
async def test_every_status_colour_reads_at_4_5_to_1(theme: str) -> None:
    """WCAG contrast of each status colour, as drawn, against the pane's background as the theme paints it."""
    from rich.color import Color as RichColor

    from tests.ui.helpers import settle
    from ufs_tui.core.demo import build_demo
    from ufs_tui.core.model import status as S
    from ufs_tui.ui.app import make_app
    from ufs_tui.ui.widgets.labels import status_style

    with build_demo() as demo:
        app = make_app(demo.stack, live=False, theme=theme)
        async with app.run_test(size=(120, 40)) as pilot:
            await settle(pilot)
            bg = app.pane_tree("merged").background_colors[1]
            low = []
            for s, st in S.STYLES.items():
                colour = status_style(s).color
                if st.colour == "default" or colour is None:
                    continue
                fg = RichColor.parse(str(colour.name)).get_truecolor(app.ansi_theme)
                a, b = sorted((_luminance(*fg), _luminance(bg.r, bg.g, bg.b)), reverse=True)
                ratio = (a + 0.05) / (b + 0.05)
                if ratio < 4.5:
                    low.append(f"{s}: {ratio:.2f}")
            assert not low, f"{theme}: below 4.5:1: {low}"
