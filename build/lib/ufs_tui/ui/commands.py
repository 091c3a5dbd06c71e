"""The command palette provider: every action in the key table, by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

from .bindings import KEYS, key_display


class UfsCommands(Provider):
    """Main actions of the explorer (the same table the keys and the help screen come from)."""

    def _commands(self) -> list[tuple[str, str, str]]:
        return [(k.description, k.action, k.display or key_display(k.keys)) for k in KEYS if k.palette]

    async def discover(self) -> Hits:
        for title, action, keys in self._commands():
            yield DiscoveryHit(title, partial(self.app.run_action, action), help=f"key: {keys}")

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for title, action, keys in self._commands():
            score = matcher.match(title)
            if score > 0:
                yield Hit(score, matcher.highlight(title), partial(self.app.run_action, action), help=f"key: {keys}")
