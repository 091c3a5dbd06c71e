"""Telling the user, once per dir, that a layer dir behind a listed dir could not be read (its entries are
missing from the panes). Checked in a thread worker: the explorer's lock may be held by a scan."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from ..core.model.display import printable
from ..core.model.stack import Layer
from .messages import post

if TYPE_CHECKING:
    from .screens.explorer import ExplorerScreen


class Unreadable(Message, bubble=False):
    """Layer dirs behind a listed dir that could not be read: (real dir, problem) each."""

    def __init__(self, found: list[tuple[str, str]]) -> None:
        super().__init__()
        self.found = found


class UnreadableDirs:
    """The unreadable dirs ``screen`` has told of."""

    def __init__(self, screen: ExplorerScreen) -> None:
        self.screen = screen
        self.told: set[str] = set()  # real dirs the user was told cannot be read

    def check(self, source: Layer | None, path: str) -> None:
        """Look at the layer dirs behind pane dir ``path`` (``source``: the pane's layer; None: the merged view)."""
        screen = self.screen

        def work() -> None:
            found = screen.explorer.unreadable(source, path)
            if found:
                post(screen, Unreadable(found))

        screen.run_worker(work, thread=True, group="unreadable", exit_on_error=False)

    def tell(self, m: Unreadable) -> None:
        screen = self.screen
        for real, problem in m.found:
            if real not in self.told:
                self.told.add(real)
                screen.notify(
                    f"cannot read {printable(screen.options.alias(real))}: {problem}; what it holds is missing from "
                    "the panes",
                    title="Unreadable dir",
                    severity="warning",
                    markup=False,
                )
