"""Keeping the garbage collector off the rows: the heap freezing the panes rely on (no textual here).

Each tree row is about a dozen tracked objects: with a 20,000-row dir open, every full (generation 2)
collection scanned some 350,000 objects and stopped the event loop for 100-170 ms, at random moments (a
key press, a repaint). Objects alive at a freeze (``gc.freeze``) are never scanned again; rows dropped
later are freed by reference counting (the trees break their parent/child cycles when they drop rows),
so nothing leaks. The app freezes what start-up made and unfreezes on exit; the trees freeze their rows
as big dirs come in.
"""

from __future__ import annotations

import gc

FREEZE_ROWS = 2000  # rows added since the last freeze of the heap before the next

_rows_since_freeze = 0


def freeze_heap() -> None:
    """Move every object alive now out of the collector's sight."""
    global _rows_since_freeze
    _rows_since_freeze = 0
    gc.freeze()


def unfreeze_heap() -> None:
    """What was frozen can be collected again (the app is gone: tests run many apps)."""
    gc.unfreeze()


def freeze_young() -> None:
    """Collect the newest objects (under a ms: few garbage cycles get frozen with the rows), then freeze."""
    gc.collect(0)
    freeze_heap()


def rows_added(n: int) -> None:
    """Freeze the heap once enough rows came in."""
    global _rows_since_freeze
    _rows_since_freeze += n
    if _rows_since_freeze >= FREEZE_ROWS:
        freeze_young()
