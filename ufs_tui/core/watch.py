"""File events in layers (or the merged mount point) → the merged directories they change.

Pure: no watching here, no textual. The UI feeds the paths ``watchfiles`` reports;
:class:`ChangeMapper` maps each to (merged dir, name) and :class:`Changes`
accumulates bursts: a dir with more than ``max_names`` changed names is marked
as wholly changed, so a burst of tens of thousands of files costs one relisting
per directory, and the final state is read after the burst.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from dataclasses import dataclass, field

from .model.merge import OverlayView, normpath
from .model.stack import Stack

MAX_NAMES = 128


@dataclass
class Changes:
    """Changed merged dirs: dir -> changed names, or None for "relist the whole dir"."""

    dirs: dict[str, set[str] | None] = field(default_factory=dict)
    real_dirs: set[str] = field(default_factory=set)  # the real parent dirs events came from
    roots: set[str] = field(default_factory=set)  # layer roots (or the mount point) created or removed
    touched: set[str] = field(default_factory=set)  # roots under which anything changed
    events: int = 0
    max_names: int = MAX_NAMES

    def add(self, mdir: str, name: str | None) -> None:
        if mdir in self.dirs:
            names = self.dirs[mdir]
            if names is None:
                return
            if name is None or len(names) >= self.max_names:
                self.dirs[mdir] = None
            else:
                names.add(name)
        else:
            self.dirs[mdir] = None if name is None else {name}

    def update(self, other: Changes) -> None:
        for mdir, names in other.dirs.items():
            if names is None:
                self.add(mdir, None)
            else:
                for n in names:
                    self.add(mdir, n)
        self.real_dirs |= other.real_dirs
        self.roots |= other.roots
        self.touched |= other.touched
        self.events += other.events

    def __bool__(self) -> bool:
        return bool(self.dirs or self.roots)

    def add_redirected(self, view: OverlayView, limit: int = 64) -> None:
        """Merged dirs fed by a changed real dir under another name (redirects): relist them whole."""
        if len(self.real_dirs) > limit:
            return
        for real in self.real_dirs:
            for mdir in view.merged_dirs_for(real):
                if mdir not in self.dirs:
                    self.add(mdir, None)


class ChangeMapper:
    """Maps real paths under the layer roots (and an optional mount point) to merged paths. Layers read
    through a LayerFS (an image archive's tars) are no dirs to watch and have no roots here."""

    def __init__(self, stack: Stack, mount_point: str | None = None, max_names: int = MAX_NAMES) -> None:
        roots = [layer.path for layer in stack.all_layers if layer.fs is None]
        if mount_point:
            roots.append(posixpath.normpath(mount_point))
        self.roots = roots
        self._by_len = sorted({self.key(r) for r in roots}, key=len, reverse=True)
        self.max_names = max_names

    @staticmethod
    def key(root: str) -> str:
        """How a root is written in :attr:`Changes.touched` and :attr:`Changes.roots`."""
        return root.rstrip("/") or "/"

    def merged_path(self, real: str) -> tuple[str, str] | None:
        """(root, merged path) of a real path, or None when it is under no root."""
        real = posixpath.normpath(real)
        for root in self._by_len:
            if real == root:
                return root, "/"
            if real.startswith(root + "/") or root == "/":
                return root, normpath(real[len(root) :])
        return None

    def map(self, paths: Iterable[str]) -> Changes:
        out = Changes(max_names=self.max_names)
        for real in paths:
            out.events += 1
            got = self.merged_path(real)
            if got is None:
                continue
            root, mpath = got
            out.touched.add(root)
            if mpath == "/":
                out.roots.add(root)
                out.add("/", None)
                continue
            parent, name = posixpath.split(mpath)
            out.add(parent, name)
            out.real_dirs.add(posixpath.dirname(posixpath.normpath(real)))
        return out
