"""README's status table is generated from ufs_tui/core/model/status.py: one source of truth."""

from __future__ import annotations

import re
from pathlib import Path

from ufs_tui.core.model import status as S

README = Path(__file__).resolve().parents[2] / "README.md"


def _readme_table() -> list[str]:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^<!-- statuses\b[^\n]*-->\n(.*?)^<!-- /statuses -->$", text, re.S | re.M)
    assert m, "README.md has no <!-- statuses ... --> ... <!-- /statuses --> block"
    return m.group(1).rstrip("\n").split("\n")


def _generated_table() -> list[str]:
    rows = ["| glyph | status | meaning |", "|---|---|---|"]
    rows += [f"| `{s.glyph}` | `{s.status}` | {s.legend} |" for s in S.STYLES.values()]
    return rows


def test_readme_status_table_matches_status_py() -> None:
    assert _readme_table() == _generated_table()


def test_glyphs_are_single_distinct_characters() -> None:
    glyphs = [s.glyph for s in S.STYLES.values()]
    assert all(len(g) == 1 for g in glyphs)
    assert len(set(glyphs)) == len(glyphs)


def test_readme_count_of_visible_and_hidden_statuses() -> None:
    """The sentence after the table ('the first N ... the last M') matches the table's order."""
    order = list(S.STYLES)
    hidden = set(S.HIDDEN_STATUS.values())
    n_visible = len(order) - len(hidden)
    assert set(order[n_visible:]) == hidden, "hidden statuses must come last in STYLES"
    words = {4: "four", 9: "nine"}
    text = README.read_text(encoding="utf-8")
    assert f"The first {words.get(n_visible, n_visible)} are statuses of visible entries" in text
    assert f"the last {words.get(len(hidden), len(hidden))} appear only with `--all`" in text
