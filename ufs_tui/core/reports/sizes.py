"""Sizes in the merged view: the bytes of the visible regular files under each dir, as ``du`` would count them
through the mount (a metacopy file counts its data once; hard links within a layer are not told apart).

:func:`dir_sizes` sums a whole tree in one walk (``ufs-tui du --by path``). :class:`DirTotals` sums one dir's
subtree on demand for the explorer's rows: in a thread, memoised per dir, and forgotten along a changed path
only, so a change deep in a big tree costs the dirs above it, not the tree again.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from ..model.errors import StackError
from ..model.merge import OverlayView, Source, join, normpath
from ..model.stack import Stack, within


def dir_sizes(view: OverlayView, depth: int, cancelled: Callable[[], bool] = lambda: False) -> dict[str, int]:
    """Merged dir -> bytes of the files under it, for every dir at most ``depth`` levels below ``/`` ("/": 0)."""
    sizes: dict[str, int] = {"/": 0}
    for n, (path, e) in enumerate(view.walk("/", cache=False)):
        if n % 1024 == 0 and cancelled():
            break
        if e.kind == "dir":
            if path.count("/") <= depth:
                sizes[path] = 0
            continue
        if e.kind != "file":
            continue
        size = e.size
        sizes["/"] += size
        parts = path.split("/")[1:-1]  # the dirs above the file, top down
        for i in range(min(len(parts), depth)):
            sizes["/" + "/".join(parts[: i + 1])] += size
    return sizes


_Where = tuple[tuple[Source, ...], int] | None  # a dir's sources and the version they were read at (None: look up)


@dataclass
class _Read:
    """One dir read for :meth:`DirTotals.total`: its own files' bytes, its subdirs and their sources."""

    files: int
    subdirs: list[tuple[str, tuple[Source, ...]]]
    version: int


class DirTotals:
    """The bytes of the regular files under each dir of one stack's merged view, summed when first asked.

    Thread-safe, and independent of the explorer's views and lock: it reads through a view of its own, one
    dir at a time (a dir's listing is kept only until its subdirs are summed). A dir that cannot be read
    counts 0. :meth:`forget` drops a changed dir's total and those of the dirs above it (and of a changed
    name's subtree); a sum under way when that happens is not kept.
    """

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self._view = OverlayView(stack)
        self._totals: dict[str, int] = {}
        self._lock = threading.Lock()  # held while one dir is read or the totals change
        self._version = 0  # bumped by forget: a sum begun before it is not stored

    def known(self, path: str) -> int | None:
        """The total of dir ``path`` if summed already (no reading)."""
        return self._totals.get(normpath(path))

    def total(self, path: str, cancelled: Callable[[], bool] = lambda: False) -> int | None:
        """The total of dir ``path`` (summing what is not known yet); None if cancelled first."""
        path = normpath(path)
        # Post-order without recursion (a path can be thousands of dirs deep): a dir's own files are summed
        # when it is first read; its total is stored once all its subdirs' are.
        own: dict[str, _Read] = {}
        todo: list[tuple[str, _Where]] = [(path, None)]
        while todo:
            if cancelled():
                return None
            d, where = todo[-1]
            if d in self._totals:
                todo.pop()
                continue
            got = own.get(d)
            if got is None:
                got = own[d] = self._read(d, where)
                todo.extend((s, (src, got.version)) for s, src in got.subdirs if s not in self._totals)
                continue
            with self._lock:
                if got.version != self._version:  # something changed meanwhile: read it again
                    del own[d]
                    todo[-1] = (d, None)
                    continue
                sub = [self._totals.get(s) for s, _ in got.subdirs]
                if None not in sub:
                    self._totals[d] = got.files + sum(t for t in sub if t is not None)
                    todo.pop()
                    continue
            todo.extend((s, (src, got.version)) for (s, src), t in zip(got.subdirs, sub, strict=True) if t is None)
        return self._totals.get(path)

    def _read(self, path: str, where: _Where) -> _Read:
        """Dir ``path``'s own files and its subdirs, from its sources as its parent's listing gave them (if
        nothing was forgotten since) or looked up again."""
        with self._lock:
            version = self._version
            try:
                fresh = where is not None and where[1] == version
                sources = where[0] if where is not None and fresh else self._view.dir_sources(path)
                entries = self._view.scan_dir(path, sources, eager=True)
            except StackError:
                return _Read(0, [], version)
        files = 0
        subdirs = []
        for e in entries:
            if e.kind == "file":
                files += e.size
            elif e.kind == "dir" and e.sources is not None:
                subdirs.append((e.path, e.sources))
        return _Read(files, subdirs, version)

    def forget(self, path: str, names: Iterable[str] | None = None) -> None:
        """Dir ``path`` changed (``names`` in it; None: anything in it): its total, those above it and those of
        the changed names' subtrees are summed again when next asked."""
        path = normpath(path)
        gone = [join(path, n) for n in names] if names is not None else [path]
        with self._lock:
            self._version += 1
            self._view.invalidate(path)
            up = path
            while True:
                self._totals.pop(up, None)
                if up == "/":
                    break
                up = up.rsplit("/", 1)[0] or "/"
            for key in [k for k in self._totals if any(within(k, top) for top in gone)]:
                del self._totals[key]
