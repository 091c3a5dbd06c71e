"""The model against the kernel: while a stack is mounted, each Merged-pane row is compared with the mount.

:func:`kernel_facts` asks the mount (``lstat``, ``readlink``) about one name, :func:`disagreement` says
in words where the model's entry and the kernel's differ, and :class:`KernelCheck` marks the rows of a
listing (status :data:`KERNEL_DIFFERS`) and adds names only one side has, so nothing the kernel shows is
missing from the pane. The caller holds the explorer's lock around calls that take a view.
"""

from __future__ import annotations

import errno as _errno
import os
import stat as _stat
from dataclasses import dataclass, replace

from .model import status as S
from .model.errors import StackError
from .model.markers import KIND_BY_FMT
from .model.merge import Entry, OverlayView, join, normpath
from .panes import KERNEL_DIFFERS, Item, file_size, merged_item

_NOT_IN_KERNEL = {S.WHITED_OUT, S.OPAQUE_HIDDEN, S.WHITEOUT, S.SHADOWED}  # rows of names the mount never shows


@dataclass(frozen=True)
class KernelFacts:
    """What ``lstat``/``readlink`` say about a name under the mount point."""

    kind: str
    mode: int
    size: int
    target: str | None


def kernel_facts(path: str) -> KernelFacts | None:
    """None when the kernel has no such name (readdir may list a name lstat denies: left out, like the oracle).

    A lookup the kernel refuses (EPERM: a redirect not followed, metacopy off; EINVAL/EACCES: a bad
    redirect; EIO) is kind ``"error"``, with the errno's name as ``target``: the model predicts those too."""
    try:
        st = os.lstat(path)
    except OSError as e:
        if e.errno in (_errno.EPERM, _errno.EIO, _errno.EINVAL, _errno.EACCES):
            return KernelFacts("error", 0, 0, _errno.errorcode[e.errno])
        return None
    kind = KIND_BY_FMT.get(_stat.S_IFMT(st.st_mode), "unknown")
    target: str | None = None
    if kind == "symlink":
        try:
            target = os.readlink(path)
        except OSError:
            target = None
    return KernelFacts(kind, _stat.S_IMODE(st.st_mode), st.st_size, target)


def disagreement(entry: Entry | None, k: KernelFacts | None) -> str:
    """ "" when the model's entry and the kernel's agree (type, permissions, size, symlink target); else words."""
    if entry is None and k is None:
        return ""
    if entry is None:
        assert k is not None
        if k.kind == "error":
            return f"kernel: lists this name but looking it up fails ({k.target}); the model does not show it"
        return f"kernel: a {k.kind} the model does not show"
    if k is None:
        if entry.status == S.ERROR:
            # The model says looking it up fails; the kernel does not list it: where a dir's entries are
            # looked up for readdir (an impure dir: copied-up or redirected children), those it cannot look
            # up are left out. Neither gives this name to anyone.
            return ""
        return "kernel: no such name (the model shows it)"
    if entry.status == S.ERROR or k.kind == "error":
        if entry.status == S.ERROR and k.kind == "error":
            if entry.errno and entry.errno != k.target:
                return f"kernel: looking it up fails with {k.target}, the model predicts {entry.errno}"
            return ""  # both refuse the lookup
        if k.kind == "error":
            return f"kernel: looking it up fails ({k.target}), the model: a {entry.kind}"
        return f"kernel: a {k.kind} (the model: looking it up fails)"
    if entry.kind != k.kind:
        return f"kernel: a {k.kind}, the model: a {entry.kind}"
    bits: list[str] = []
    if entry.mode != k.mode:
        bits.append(f"mode {k.mode:04o} (model {entry.mode:04o})")
    if entry.kind in ("file", "symlink") and entry.size != k.size:
        bits.append(f"size {k.size} (model {entry.size})")
    if entry.kind == "symlink" and entry.target != k.target:
        bits.append(f"target {k.target!r} (model {entry.target!r})")
    return "kernel: " + ", ".join(bits) if bits else ""


class KernelCheck:
    """Merged-pane rows against the mount at ``mount_point``; ``mismatches``: merged path -> how they differ."""

    def __init__(self, mount_point: str) -> None:
        self.mount_point = mount_point
        self.mismatches: dict[str, str] = {}

    def kernel_path(self, path: str) -> str:
        return self.mount_point.rstrip("/") + normpath(path) if path != "/" else self.mount_point

    def check_dir(self, view: OverlayView, path: str, items: list[Item]) -> list[Item]:
        """The Merged pane at ``path`` against the real mount: rows where they disagree are marked, names only
        one side has are added (so nothing the kernel shows is missing from the pane)."""
        try:
            names = os.listdir(self.kernel_path(path))
        except OSError:
            return items  # not a dir in the mount: reported on the dir's own row
        try:
            model = {e.name: e for e in view.list_dir(path)}
        except StackError:
            model = {}
        kernel = {n: f for n in names if (f := kernel_facts(self.kernel_path(join(path, n)))) is not None}
        out: list[Item] = []
        shown: set[str] = set()
        for it in items:
            shown.add(it.name)
            if it.status in _NOT_IN_KERNEL and it.name not in kernel:
                out.append(it)
                continue
            out.append(self._mark(it, model.get(it.name), kernel.get(it.name)))
        for name in sorted((kernel.keys() | model.keys()) - shown):
            why = disagreement(model.get(name), kernel.get(name))
            if why:
                out.append(self._only_one_side(path, name, model.get(name), kernel.get(name), why))
        for it in out:
            if it.status != KERNEL_DIFFERS:
                self.mismatches.pop(it.path, None)
        out.sort(key=lambda it: it.name)
        return out

    def check_one(self, view: OverlayView, path: str, got: Item | None) -> Item | None:
        k = kernel_facts(self.kernel_path(path))
        e = view.lookup(path)
        if got is not None and (got.status not in _NOT_IN_KERNEL or k is not None):
            return self._mark(got, e, k)
        why = disagreement(e, k)
        if not why:
            self.mismatches.pop(path, None)
            return got
        parent, name = path.rsplit("/", 1)
        return self._only_one_side(parent or "/", name, e, k, why)

    def line(self, path: str, entry: Entry | None) -> tuple[str, str]:
        """The details line for the Merged pane: does the kernel agree with the model (``entry``) here?"""
        if normpath(path) == "/":
            return ("kernel", f"the mount at {self.mount_point}")
        why = disagreement(entry, kernel_facts(self.kernel_path(path)))
        if why:
            return ("kernel", f"DIFFERS from the model: {why.removeprefix('kernel: ')}")
        return ("kernel", "agrees with the model (type, mode, size, target) at " + self.kernel_path(path))

    def _mark(self, it: Item, e: Entry | None, k: KernelFacts | None) -> Item:
        why = disagreement(e, k)
        if not why:
            self.mismatches.pop(it.path, None)
            return it
        self.mismatches[it.path] = why
        leaf = it.leaf or k is None or k.kind != "dir"
        return replace(it, status=KERNEL_DIFFERS, note=why, leaf=leaf, size=file_size(k))

    def _only_one_side(self, parent: str, name: str, e: Entry | None, k: KernelFacts | None, why: str) -> Item:
        path = join(parent, name)
        self.mismatches[path] = why
        if e is not None:
            return replace(merged_item(e, parent), status=KERNEL_DIFFERS, note=why, leaf=True, size=file_size(k))
        assert k is not None
        real = self.kernel_path(path)
        return Item(name, path, k.kind, KERNEL_DIFFERS, real, why, k.target, leaf=k.kind != "dir", size=file_size(k))
