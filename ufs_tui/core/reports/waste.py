"""Wasted space in a stack, each byte said in words: what every layer ships that the merged view never shows.

A layer's bytes are wasted when a later layer makes them unreachable, yet they are still stored and shipped:

* ``overwritten``: a file (or a whole dir) replaced by a later layer's copy of that name;
* ``unchanged copy``: replaced by a copy with the same content (a chmod, chown or touch copied the whole file
  up; ``metacopy=on`` would have copied its metadata only). In a container's upper this is what its upper
  wastes on unchanged files;
* ``deleted``: whited out by a later layer; ``opaque-hidden``: hidden by a later opaque dir;
* ``duplicate``: a visible file with the same content as another visible file (content hashes, computed only
  for files of equal size).

Counted exactly: for a name stored N times, the N−1 copies nobody sees (dive counts the surviving copy too,
dive#684); a hidden dir counts every file under it once. :func:`find_waste` walks the merged tree once with
what each dir hides (:meth:`OverlayView.walk_items`), so the cost is one listing of every layer dir.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import itertools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from ..model import status as S
from ..model.display import human_size
from ..model.merge import Entry, Hidden, OverlayView
from ..model.stack import Layer, Stack, fs_digest, within
from ..panes import own_stack
from ..sources.common import parse_label
from .ci_rules import CiNumbers, InefficientPath

OVERWRITTEN = "overwritten"
UNCHANGED_COPY = "unchanged copy"
DELETED = "deleted"
OPAQUE_HIDDEN = "opaque-hidden"
DUPLICATE = "duplicate"
KINDS = (OVERWRITTEN, UNCHANGED_COPY, DELETED, OPAQUE_HIDDEN, DUPLICATE)

_HOW = {OVERWRITTEN: "replaced in", DELETED: "deleted by a whiteout in", OPAQUE_HIDDEN: "hidden by an opaque dir in"}
_KIND_BY_STATUS = {S.SHADOWED: OVERWRITTEN, S.WHITED_OUT: DELETED, S.OPAQUE_HIDDEN: OPAQUE_HIDDEN}


def layer_words(layer: Layer) -> str:
    """``lower:3 (RUN apt-get install ...)``: a layer's name, and its build step (or what it is) where known."""
    return f"{layer.name} ({build_step(layer)})" if layer.label else layer.name


def build_step(layer: Layer) -> str:
    """What made ``layer`` (an image's history step), or what its label says it is; "" if nothing."""
    return _step(layer.label) if layer.label else ""


@functools.lru_cache(maxsize=1024)
def _step(label: str) -> str:  # (asked once per row of a waste report: a few labels, many rows)
    return parse_label(label).text


@dataclass(frozen=True)
class Waste:
    """``size`` bytes at merged ``path``, stored in ``layer``, made unreachable by ``by`` (None: a duplicate)."""

    path: str
    kind: str
    size: int
    layer: Layer
    by: Layer | None
    same_as: str = ""  # a duplicate: the visible path with the same content

    def words(self, with_size: bool = True) -> str:
        """What happened to these bytes, in a sentence (``with_size=False``: for a row that shows the size)."""
        size = human_size(self.size) + " " if with_size else ""
        where = layer_words(self.layer)
        by = layer_words(self.by) if self.by is not None else ""
        if self.kind == UNCHANGED_COPY:
            return (
                f"{size}in {where}, copied again unchanged in {by} (a chmod, chown or touch); "
                "metacopy would have copied its metadata only"
            )
        if self.kind == DUPLICATE:
            return f"{size}in {where}, the same content as {self.same_as}"
        fate = "the lower copy is dead weight" if self.kind == OVERWRITTEN else "its bytes still ship"
        return f"{size}added in {where}, {_HOW[self.kind]} {by}; {fate}"


@dataclass
class WasteReport:
    """Every :class:`Waste` of a stack, largest first, and what each layer holds."""

    rows: list[Waste] = field(default_factory=list)
    layer_bytes: dict[str, int] = field(default_factory=dict)  # layer name -> bytes of the files it stores
    complete: bool = True  # False: cancelled midway

    @property
    def total(self) -> int:
        """Bytes of regular files in all layers."""
        return sum(self.layer_bytes.values())

    @property
    def wasted(self) -> int:
        return sum(w.size for w in self.rows)

    @property
    def efficiency(self) -> float:
        """The share of stored bytes that the merged view shows once (1.0 for an empty stack)."""
        return 1.0 - self.wasted / self.total if self.total else 1.0

    def by_cause(self) -> dict[str, int]:
        """Wasted bytes per layer that caused them (its change made them unreachable); ``-`` for duplicates."""
        out: dict[str, int] = {}
        for w in self.rows:
            key = w.by.name if w.by is not None else "-"
            out[key] = out.get(key, 0) + w.size
        return dict(sorted(out.items(), key=lambda kv: -kv[1]))

    def by_kind(self) -> dict[str, int]:
        out = dict.fromkeys(KINDS, 0)
        for w in self.rows:
            out[w.kind] += w.size
        return out


WALKING, HASHING = "walking the layers", "hashing equal-size files for duplicates"  # what a report so far lacks
SO_FAR_EVERY = 1.0  # seconds of the walk between two reports so far


def find_waste(
    stack: Stack,
    duplicates: bool = True,
    cancelled: Callable[[], bool] = lambda: False,
    so_far: Callable[[WasteReport, str], None] | None = None,
) -> WasteReport:
    """The wasted space of ``stack`` (see the module doc); ``duplicates``: also hash equal-size visible files.
    ``so_far`` is given the report so far and what is still being done: every :data:`SO_FAR_EVERY` seconds of
    the walk (:data:`WALKING`), and before any file is hashed for duplicates (:data:`HASHING`: hashing reads
    whole files, the rest only the layers' listings)."""
    walk = _Walk(stack)
    report = WasteReport(layer_bytes={layer.name: 0 for layer in stack.layers})
    due = time.monotonic() + SO_FAR_EVERY
    for n, (path, item, _) in enumerate(walk.view.walk_items("/", with_hidden=True)):
        if n % 512 == 0:
            if cancelled():
                report.complete = False
                break
            if so_far is not None and time.monotonic() >= due:
                so_far(_snapshot(report), WALKING)
                due = time.monotonic() + SO_FAR_EVERY
        if isinstance(item, Entry):
            walk.visible(path, item, report)
        else:
            walk.hidden(path, item, report)
    if report.complete:
        walk.hidden_dirs(report)
    if duplicates and report.complete:
        if so_far is not None:
            so_far(_snapshot(report), HASHING)
        report.rows += walk.duplicates(cancelled)
    report.rows.sort(key=_largest_first)
    return report


def _snapshot(report: WasteReport) -> WasteReport:
    """A copy of ``report`` as it is now, largest first (the walk goes on with the original)."""
    return replace(report, rows=sorted(report.rows, key=_largest_first), layer_bytes=dict(report.layer_bytes))


def _largest_first(w: Waste) -> tuple[int, str]:
    return -w.size, w.path


class _Walk:
    """The state of one :func:`find_waste`: the merged view, each layer's own view, the visible files by size."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.view = OverlayView(stack)
        self._own: dict[str, OverlayView] = {}
        self.by_size: dict[int, list[Entry]] = {}
        self._sizes: dict[tuple[str, str], tuple[int, bool]] = {}
        self._dirs: list[tuple[str, str, Hidden]] = []  # hidden dirs: (merged path, kind, what the walk found)

    def visible(self, path: str, e: Entry, report: WasteReport) -> None:
        if e.kind != "file":
            return
        # (a metacopy file stores no data: its bytes are in the layer its data comes from)
        holder = (e.extra or {}).get("data_layer", e.layer.name) if e.status == S.METACOPY else e.layer.name
        report.layer_bytes[holder] = report.layer_bytes.get(holder, 0) + e.size
        if e.size > 0:
            self.by_size.setdefault(e.size, []).append(e)

    def hidden(self, path: str, h: Hidden, report: WasteReport) -> None:
        kind = _KIND_BY_STATUS.get(h.status)
        if kind is None:  # a whiteout marker: no bytes
            return
        size, is_file = self._bytes(h.layer, h.path)
        if not is_file:  # a dir: after the walk, when the merged dirs that a redirect feeds from it are known
            self._dirs.append((path, kind, h))
            return
        report.layer_bytes[h.layer.name] = report.layer_bytes.get(h.layer.name, 0) + size
        if size == 0:
            return
        if kind == OVERWRITTEN and self._unchanged(path, h, size):
            kind = UNCHANGED_COPY
        report.rows.append(Waste(path, kind, size, h.layer, h.by))

    def hidden_dirs(self, report: WasteReport) -> None:
        """The hidden dirs met in the walk, less what of them still shows: a renamed dir's contents, whose
        name is whited out where it was but shows where its new name's ``overlay.redirect`` points."""
        # real dirs that feed a merged dir (all of them, after the walk), sorted: those under a dir are a run
        fed_dirs = sorted(self.view.source_index())
        for path, kind, h in self._dirs:
            fed = []
            for real in itertools.islice(fed_dirs, bisect.bisect_left(fed_dirs, h.path), None):
                if not real.startswith(h.path):
                    break
                if within(real, h.path):
                    fed.append(real)
            tops = [real for real in fed if not any(real.startswith(t + "/") for t in fed if t != real)]
            # (what a redirect feeds is counted where it shows, by the walk)
            size = self._bytes(h.layer, h.path)[0] - sum(self._bytes(h.layer, real)[0] for real in tops)
            report.layer_bytes[h.layer.name] = report.layer_bytes.get(h.layer.name, 0) + size
            if size > 0:
                report.rows.append(Waste(path, kind, size, h.layer, h.by))

    def _bytes(self, layer: Layer, real: str) -> tuple[int, bool]:
        """Bytes of the regular file at ``real`` in ``layer``, or of every file under the dir there; is it a file."""
        key = (layer.name, real)
        got = self._sizes.get(key)
        if got is None:
            got = self._sizes[key] = self._measure(layer, real)
        return got

    def _measure(self, layer: Layer, real: str) -> tuple[int, bool]:
        own = self._own_view(layer)
        rel = "/" + real[len(layer.path) :].lstrip("/")
        entry = own.lookup(rel)
        if entry is None:
            return 0, False
        if entry.kind == "file":
            return (0 if entry.status == S.METACOPY else entry.size), True
        if entry.kind != "dir":
            return 0, False
        total = 0
        for _, e in own.walk(rel, cache=False):
            if e.kind == "file" and e.status != S.METACOPY:
                total += e.size
        return total, False

    def _own_view(self, layer: Layer) -> OverlayView:
        view = self._own.get(layer.name)
        if view is None:
            view = self._own[layer.name] = OverlayView(own_stack(self.stack, layer))
        return view

    def _unchanged(self, path: str, h: Hidden, size: int) -> bool:
        """Whether the visible copy over hidden file ``h`` has the same content (only a metadata change)."""
        top = self.view.lookup(path)
        if top is None or top.kind != "file" or top.size != size:
            return False
        return _digest(top.layer, top.real_path) == _digest(h.layer, h.path)

    def duplicates(self, cancelled: Callable[[], bool]) -> list[Waste]:
        """Visible files with the same content as another visible file, beyond the first (by path)."""
        out: list[Waste] = []
        for size, entries in self.by_size.items():
            if len(entries) < 2 or cancelled():
                continue
            first: dict[bytes, str] = {}
            for e in sorted(entries, key=lambda e: e.path):
                digest = _digest(e.layer, e.real_path)
                if digest is None:
                    continue
                if digest in first:
                    out.append(Waste(e.path, DUPLICATE, size, e.layer, None, same_as=first[digest]))
                else:
                    first[digest] = e.path
        return out


def _digest(layer: Layer, real: str) -> bytes | None:
    """The SHA-256 of a layer's regular file (read through its LayerFS for an archive), None if unreadable."""
    try:
        if layer.fs is not None:
            return fs_digest(layer.fs, real)
        with open(real, "rb", buffering=0) as f:
            os.posix_fadvise(f.fileno(), 0, 0, os.POSIX_FADV_SEQUENTIAL)
            return hashlib.file_digest(f, "sha256").digest()
    except OSError:
        return None


def exact_numbers(stack: Stack) -> CiNumbers:
    """dive's three numbers computed exactly (``ufs-tui ci --rules exact``): wasted bytes are the N−1 unreachable
    copies of a name and every kind of :func:`find_waste`; efficiency is the share of stored bytes the merged
    view shows once; user bytes are what the layers above the bottom (base) layer store."""
    report = find_waste(stack)
    base = stack.lowers[-1].name if stack.lowers else None
    user = sum(size for name, size in report.layer_bytes.items() if name != base)
    by_path: dict[str, list[Waste]] = {}
    for w in report.rows:
        by_path.setdefault(w.path, []).append(w)
    paths = [
        InefficientPath(path, len(ws) + 1, sum(w.size for w in ws), "; ".join(w.words() for w in ws))
        for path, ws in by_path.items()
    ]
    paths.sort(key=lambda p: (-p.size, p.path))
    share = report.wasted / user if user else (float("nan") if report.wasted == 0 else float("inf"))
    return CiNumbers(
        "exact", report.efficiency, report.wasted, share, report.total, user, tuple(paths),
        ("each name stored N times counts N-1 times; deleted, opaque-hidden, unchanged copies and duplicate "
         "content count too",),
    )  # fmt: skip
