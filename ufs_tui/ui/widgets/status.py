"""The status line under the panes: live or not, the last change, the filters, missing roots, the mount."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static

from ...core.model.display import human_size, plural, printable


@dataclass(frozen=True)
class StatusFacts:
    watching: bool
    frozen: bool = False  # snapshots: no clock
    last_change: float | None = None
    change_events: int = 0
    changes_only: str | None = None  # "changes only" is on: whose changes ("" for the upper's)
    statuses: int | None = None  # the status filter: how many statuses are shown
    by_size: bool = False  # rows sorted largest first
    min_size: int = 0  # rows smaller than this left out
    missing: Sequence[str] = ()  # printable already
    busy: str = ""  # a mount worker runs: what it does
    mounted: str = ""  # the app's mount, in words
    notes: Sequence[str] = ()


def status_text(f: StatusFacts) -> Text:
    bits = Text()
    if f.watching:
        bits.append("● live", style="bold green")
        if f.frozen or f.last_change is None:
            bits.append("  no change yet" if f.last_change is None else "  last change —", style="dim")
        else:
            stamp = time.strftime("%H:%M:%S", time.localtime(f.last_change))
            bits.append(f"  last change {stamp} ({plural(f.change_events, 'event')})", style="dim")
    else:
        bits.append("○ not watching", style="dim")
    if f.changes_only is not None:
        bits.append(f"  changes only{f.changes_only}", style="bold yellow")
    if f.statuses is not None:
        bits.append(f"  statuses: {f.statuses} shown", style="bold yellow")
    if f.by_size:
        bits.append("  largest first", style="bold yellow")
    if f.min_size:
        bits.append(f"  ≥ {human_size(f.min_size)}", style="bold yellow")
    for path in f.missing:
        bits.append(f"  missing: {path}", style="bold red")
    if f.busy:
        bits.append(f"  {f.busy}…", style="bold yellow")
    if f.mounted:
        bits.append(f"  {printable(f.mounted)}", style="bold cyan")
        bits.append("  (u unmounts)", style="dim")
    for note in f.notes:
        bits.append(f"  {printable(note)}", style="dim")
    return bits


class StatusBar(Static):
    """One line of a fixed height: repainted only when its text changes."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__("", id=id)
        self._shown: Text | None = None

    def show(self, facts: StatusFacts) -> None:
        bits = status_text(facts)
        if bits != self._shown:  # unchanged text: no repaint
            self._shown = bits
            self.update(bits, layout=False)
