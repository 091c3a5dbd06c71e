"""A pane's dir totals: after a dir is listed, the totals of its dir rows are summed in a thread worker (the
explorer's :class:`~ufs_tui.core.reports.sizes.DirTotals`, memoised) and shown as they come, at least every
:data:`TOTALS_EVERY` seconds. Nothing here blocks a key: the event loop only relabels rows."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING

from textual.message import Message
from textual.worker import get_current_worker

from .. import textual_internals as ti
from ..messages import post
from .labels import item_label

if TYPE_CHECKING:
    from .pane import PaneTree

Summer = Callable[[str, Callable[[], bool]], "int | None"]  # (dir path, cancelled) -> its total (None: cancelled)
TOTALS_EVERY = 0.1


class TotalsKnown(Message, bubble=False):
    """A totals worker's result: dir path -> the bytes under it (for the pane itself)."""

    def __init__(self, generation: int, totals: dict[str, int]) -> None:
        super().__init__()
        self.generation = generation
        self.totals = totals


class Totals:
    """The totals of ``tree``'s dir rows, for the source it shows now (:meth:`use`)."""

    def __init__(self, tree: PaneTree) -> None:
        self.tree = tree
        self.summer: Summer | None = None

    @property
    def group(self) -> str:
        return f"totals-{self.tree.pane}"

    def use(self, summer: Summer | None) -> None:
        """Another source: what was being summed for the last one is dropped."""
        self.summer = summer
        self.tree.workers.cancel_group(self.tree, self.group)

    def sum(self, path: str) -> None:
        """Sum the totals of loaded dir ``path``'s dir rows that show none yet."""
        tree, summer = self.tree, self.summer
        node = tree.nodes.get(path)
        if summer is None or node is None:
            return
        rows = [c.data for c in ti.children(node) if c.data is not None]
        want = [it.path for it in rows if it.summed and it.size is None]
        if not want:
            return
        gen = tree.generation

        def work() -> None:
            worker = get_current_worker()
            got: dict[str, int] = {}
            due = time.monotonic() + TOTALS_EVERY
            for p in want:
                total = summer(p, lambda: worker.is_cancelled)
                if total is None:
                    return
                got[p] = total
                if time.monotonic() >= due:
                    post(tree, TotalsKnown(gen, got))
                    got, due = {}, time.monotonic() + TOTALS_EVERY
            if got:
                post(tree, TotalsKnown(gen, got))

        tree.run_worker(work, thread=True, group=self.group, name=f"totals {path}", exit_on_error=False)

    def show(self, message: TotalsKnown) -> None:
        tree = self.tree
        if message.generation != tree.generation:
            return
        for path, total in message.totals.items():
            node = tree.nodes.get(path)
            if node is not None and node.data is not None and node.data.size != total:
                node.data = replace(node.data, size=total)
                node.set_label(item_label(node.data))
