"""README's key table is generated from ufs_tui/ui/bindings.py and the panes' own bindings: one source of truth."""

from __future__ import annotations

import re
from pathlib import Path

from textual.binding import Binding

from ufs_tui.ui.bindings import DIALOG_KEYS, EDITOR_KEYS, KEYS, key_display
from ufs_tui.ui.widgets.pane import PaneTree

README = Path(__file__).resolve().parents[2] / "README.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def generated_table() -> list[str]:
    rows = ["| key | does | where |", "|---|---|---|"]
    for k in (*KEYS, *EDITOR_KEYS, *DIALOG_KEYS):
        rows.append(f"| `{_cell(k.display or key_display(k.keys))}` | {_cell(k.description)} | {k.group} |")
    for b in PaneTree.BINDINGS:
        assert isinstance(b, Binding)
        rows.append(f"| `{_cell(key_display(b.key))}` | {_cell(b.description)} | a pane |")
    return rows


def readme_table() -> list[str]:
    text = README.read_text(encoding="utf-8")
    m = re.search(r"^<!-- keys\b[^\n]*-->\n(.*?)^<!-- /keys -->$", text, re.S | re.M)
    assert m, "README.md has no <!-- keys ... --> ... <!-- /keys --> block"
    return m.group(1).rstrip("\n").split("\n")


def test_readme_key_table_matches_bindings() -> None:
    assert readme_table() == generated_table(), "regenerate: python -m tests.ui.test_readme_keys"


if __name__ == "__main__":  # print the table to paste into README.md
    print("\n".join(generated_table()))
