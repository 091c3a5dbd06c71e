"""Finding names: in the merged tree (what the Merged pane shows), or in every layer's own tree, where a name
deleted or hidden above is still stored (the classic case: a secret added in one layer and removed in a later
one is still shipped in the earlier layer).

Both walk breadth-first and report batches through a callback, so the UI shows the first results at once.
A query matches a name (or, with a '/', the whole path) case-insensitively as a substring, and also as a glob
when it has ``*?[``, so a name that holds ``[red]`` is found by typing it.
"""

from __future__ import annotations

import fnmatch
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from .model import status as S
from .model.errors import StackError
from .model.merge import OverlayView, join
from .model.stack import Layer
from .panes import own_stack

Found = Callable[[list[str]], None]
T = TypeVar("T")
Lock = AbstractContextManager[Any]  # threading.Lock or RLock: what guards the view


@dataclass(frozen=True)
class VersionHit:
    """A layer's own copy of ``path`` and its fate in the merged view (a ``status.FATES`` value)."""

    path: str
    layer: Layer
    fate: str
    by: Layer | None

    def words(self) -> str:
        """``lower:2, whited-out by lower:0``: where this copy is and what became of it."""
        fate = "shown" if self.fate == S.VISIBLE else self.fate
        return f"{self.layer.name}, {fate}" + (f" by {self.by.name}" if self.by is not None else "")


def matcher(query: str) -> Callable[[str, str], bool]:
    """Whether a name (or, for a query with '/', a path) matches ``query`` (see the module doc)."""
    glob = any(c in query for c in "*?[")
    on_path = "/" in query
    ql = query.lower()

    def match(name: str, path: str) -> bool:
        low = (path if on_path else name).lower()
        return ql in low or (glob and fnmatch.fnmatchcase(low, ql))

    return match


def _bfs(view: OverlayView, lock: Lock, cancelled: Callable[[], bool]) -> Iterator[tuple[str, str]]:
    """(name, path) of every entry of ``view``'s tree, breadth-first; stops when ``cancelled``."""
    queue = ["/"]
    while queue:
        d = queue.pop(0)
        if cancelled():
            return
        with lock:
            try:
                entries = view.list_dir(d)
            except StackError:
                continue
        for e in entries:
            p = join(d, e.name)
            yield e.name, p
            if e.is_dir:
                queue.append(p)


class _Batcher(Generic[T]):
    """Hands results to ``found`` in batches: 50 at a time, or every 0.1 s."""

    def __init__(self, found: Callable[[list[T]], None]) -> None:
        self.found = found
        self.batch: list[T] = []
        self.last = time.monotonic()
        self.total = 0

    def add(self, item: T) -> None:
        self.batch.append(item)
        self.total += 1
        if len(self.batch) >= 50 or time.monotonic() - self.last > 0.1:
            self.flush()

    def flush(self) -> None:
        if self.batch:
            self.found(self.batch)
            self.batch, self.last = [], time.monotonic()


def search_merged(
    view: OverlayView, lock: Lock, query: str, cancelled: Callable[[], bool], found: Found, limit: int = 1000
) -> int:
    """Report paths of the merged tree that match ``query``; returns how many (at most ``limit``)."""
    q = query.strip()
    if not q:
        return 0
    match, out = matcher(q), _Batcher[str](found)
    for name, path in _bfs(view, lock, cancelled):
        if match(name, path):
            out.add(path)
            if out.total >= limit:
                break
    out.flush()
    return out.total


def search_versions(
    full: OverlayView,
    lock: Lock,
    query: str,
    cancelled: Callable[[], bool],
    found: Callable[[list[VersionHit]], None],
    own: Callable[[Layer], OverlayView] | None = None,
    limit: int = 1000,
) -> int:
    """Report every layer's own copy of a matching name, with its fate in ``full`` (the merged view): shown,
    merged in, shadowed, whited out, hidden by an opaque dir or a parent's fate. Layers top-down. ``own``: a
    layer's own view (the explorer's cached ones, read under ``lock``); by default one made for this search."""
    q = query.strip()
    if not q:
        return 0
    own_view = own or (lambda layer: OverlayView(own_stack(full.stack, layer)))
    match, out = matcher(q), _Batcher[VersionHit](found)
    for layer in full.stack.all_layers:
        with lock:
            view = own_view(layer)
        for name, path in _bfs(view, lock, cancelled):
            if not match(name, path):
                continue
            with lock:
                v = next((v for v in full.versions(path) if v.layer == layer), None)
            out.add(VersionHit(path, layer, v.fate if v else S.F_PARENT_HIDDEN, v.by if v else None))
            if out.total >= limit:
                out.flush()
                return out.total
    out.flush()
    return out.total
