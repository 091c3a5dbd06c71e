"""The command palette provider: every action in the key table, by name."""

from __future__ import annotations

from collections.abc import Coroutine
from functools import partial
from typing import Any

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .bindings import KEYS, key_display, palette_action


class UfsCommands(Provider):
    """Main actions of the explorer (the same table the keys and the help screen come from). They run on the
    explorer screen, the bottom one, whichever screen the palette was opened over."""

    def _commands(self) -> list[tuple[str, str, str]]:
        return [(k.description, palette_action(k), k.display or key_display(k.keys)) for k in KEYS if k.palette]

    def _run(self, action: str) -> partial[Coroutine[Any, Any, bool]]:
        return partial(self.app.run_action, action, self.app.screen_stack[0])

    async def discover(self) -> Hits:
        for title, action, keys in self._commands():
            yield DiscoveryHit(title, self._run(action), help=f"key: {keys}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, keys in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), self._run(action), help=f"key: {keys}")
