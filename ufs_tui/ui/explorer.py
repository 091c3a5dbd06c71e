"""The UI's one door to the core: thread-safe calls that workers make (no textual here).

Every filesystem read the UI needs goes through :class:`Explorer`, under one lock
(an :class:`OverlayView` caches per directory and is not thread-safe).
"""

from __future__ import annotations

import fnmatch
import os
import stat as _stat
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace

from ..core import status as S
from ..core.content import Content, owner, unified_diff
from ..core.content import is_dir as _is_dir
from ..core.errors import StackError
from ..core.layerstats import LayerCounts, layer_counts
from ..core.markers import explain_xattr, overlay_xattrs
from ..core.merge import Entry, Hidden, LayerVersion, OverlayView, join, normpath
from ..core.panes import Item, layer_item, layer_items, merged_item, merged_items, own_stack, where
from ..core.stack import Layer, Stack
from ..core.watch import ChangeMapper, Changes

MERGED = "merged"
PaneSource = Layer | None  # None: the merged view

CONTENT_CAP = 256 * 1024

# A Merged-pane row where the model and the kernel (the real mount) disagree: there should be none.
KERNEL_DIFFERS = "kernel-differs"
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
    import errno as _errno

    from ..core.markers import KIND_BY_FMT

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


@dataclass(frozen=True)
class ViewFilter:
    changes_only: bool = False
    statuses: frozenset[str] | None = None  # None: every status

    def keep(self, item: Item, merged: bool) -> bool:
        if item.expandable:
            return True
        # "changes only" in the Merged pane was applied by merged_items (the changing layer's own rows, which
        # are an image's lower:0 rows too); in a layer pane it leaves out what that layer has unchanged
        if self.changes_only and not merged and item.status == S.LOWER:
            return False
        return self.statuses is None or item.status in self.statuses

    @property
    def active(self) -> bool:
        return self.changes_only or self.statuses is not None


@dataclass
class VersionRow:
    layer: str
    fate: str
    status: str  # the status whose glyph/colour shows this fate
    kind: str
    path: str
    by: str


@dataclass
class Details:
    path: str
    pane: str  # "merged" or a layer name
    status: str | None
    words: str
    versions: list[VersionRow] = field(default_factory=list)
    meta: list[tuple[str, str]] = field(default_factory=list)
    xattrs: list[tuple[str, str, str]] = field(default_factory=list)  # name, value, meaning
    content: Content | None = None
    content_path: str = ""
    diff: str = ""
    diff_note: str = ""
    diff_labels: tuple[str, str] = ("", "")


class CachedView(OverlayView):
    """An OverlayView that also keeps :meth:`list_all` (the Upper and Lower panes ask it for every dir
    they show, the Merged pane with "changes only"): one scan per dir until a change invalidates it."""

    def __init__(self, stack: Stack) -> None:
        super().__init__(stack)
        self._all: dict[str, tuple[list[Entry], list[Hidden]]] = {}

    def list_all(self, path: str = "/") -> tuple[list[Entry], list[Hidden]]:
        path = normpath(path)
        got = self._all.get(path)
        if got is None:
            got = self._all[path] = super().list_all(path)
        return got

    def invalidate(self, path: str) -> None:
        super().invalidate(path)
        path = normpath(path)
        prefix = path.rstrip("/") + "/"
        for key in [k for k in self._all if k == path or k.startswith(prefix)]:
            del self._all[key]

    def invalidate_all(self) -> None:
        super().invalidate_all()
        self._all.clear()


class Explorer:
    def __init__(self, stack: Stack, mount_point: str | None = None) -> None:
        self.stack = stack
        self.mount_point = mount_point
        self.lock = threading.RLock()
        self.full: OverlayView = CachedView(stack)
        self.below = _below_changer(stack)
        self._own: dict[str, OverlayView] = {}
        self.mapper = ChangeMapper(stack, mount_point)
        self.mismatches: dict[str, str] = {}  # merged path -> how the kernel disagrees (while mounted)

    # ---------------------------------------------------------------- views
    def own(self, layer: Layer) -> OverlayView:
        view = self._own.get(layer.name)
        if view is None:
            view = self._own[layer.name] = CachedView(own_stack(self.stack, layer))
        return view

    def items(self, source: PaneSource, path: str, parent_status: str, flt: ViewFilter) -> list[Item]:
        with self.lock:
            try:
                if source is None:
                    got = merged_items(self.full, path, flt.changes_only, self.below)
                    if self.mount_point:
                        got = self._kernel_check(normpath(path), got)
                else:
                    got = layer_items(self.full, self.own(source), source, path, parent_status)
            except StackError:
                return []
        if not flt.active:
            return got
        return [it for it in got if flt.keep(it, source is None)]

    def unreadable(self, source: PaneSource, path: str) -> list[tuple[str, str]]:
        """(real dir, problem) for each layer dir behind the pane's dir ``path`` that could not be read: its
        entries are missing from what the pane shows."""
        with self.lock:
            view = self.full if source is None else self.own(source)
            try:
                sources = view.dir_sources(normpath(path))
            except StackError:
                return []
            return [(real, view.errors[real]) for _, real in sources if real in view.errors]

    def item(self, source: PaneSource, path: str, parent_status: str, flt: ViewFilter) -> Item | None:
        """One path of a pane (live updates of a few names); None when the pane does not show it."""
        path = normpath(path)
        with self.lock:
            if source is None:
                if flt.changes_only:  # deletions show as rows: recompute from the dir's listing
                    parent, name = path.rsplit("/", 1)
                    rows = merged_items(self.full, parent or "/", True, self.below)
                    got = next((it for it in rows if it.name == name), None)
                else:
                    e = self.full.lookup(path)
                    got = merged_item(e, path.rsplit("/", 1)[0] or "/") if e is not None else None
                if self.mount_point and path != "/":
                    got = self._kernel_check_one(path, got)
            else:
                got = layer_item(self.full, self.own(source), source, path, parent_status)
        if got is None or not flt.active:
            return got
        return got if flt.keep(got, source is None) else None

    # ------------------------------------------------------- model vs kernel
    def kernel_path(self, path: str) -> str:
        assert self.mount_point is not None
        return self.mount_point.rstrip("/") + normpath(path) if path != "/" else self.mount_point

    def _kernel_check(self, path: str, items: list[Item]) -> list[Item]:
        """The Merged pane at ``path`` against the real mount: rows where they disagree are marked, names only
        one side has are added (so nothing the kernel shows is missing from the pane)."""
        try:
            names = os.listdir(self.kernel_path(path))
        except OSError:
            return items  # not a dir in the mount: reported on the dir's own row
        try:
            model = {e.name: e for e in self.full.list_dir(path)}
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

    def _kernel_check_one(self, path: str, got: Item | None) -> Item | None:
        k = kernel_facts(self.kernel_path(path))
        e = self.full.lookup(path)
        if got is not None and (got.status not in _NOT_IN_KERNEL or k is not None):
            return self._mark(got, e, k)
        why = disagreement(e, k)
        if not why:
            self.mismatches.pop(path, None)
            return got
        parent, name = path.rsplit("/", 1)
        return self._only_one_side(parent or "/", name, e, k, why)

    def _mark(self, it: Item, e: Entry | None, k: KernelFacts | None) -> Item:
        why = disagreement(e, k)
        if not why:
            self.mismatches.pop(it.path, None)
            return it
        self.mismatches[it.path] = why
        return replace(it, status=KERNEL_DIFFERS, note=why, leaf=it.leaf or k is None or k.kind != "dir")

    def _only_one_side(self, parent: str, name: str, e: Entry | None, k: KernelFacts | None, why: str) -> Item:
        path = join(parent, name)
        self.mismatches[path] = why
        if e is not None:
            return replace(merged_item(e, parent), status=KERNEL_DIFFERS, note=why, leaf=True)
        assert k is not None
        return Item(name, path, k.kind, KERNEL_DIFFERS, self.kernel_path(path), why, k.target, leaf=k.kind != "dir")

    def kernel_line(self, path: str) -> tuple[str, str] | None:
        """The details line for the Merged pane while mounted: does the kernel agree with the model here?"""
        if not self.mount_point:
            return None
        if normpath(path) == "/":
            return ("kernel", f"the mount at {self.mount_point}")
        with self.lock:
            e = self.full.lookup(path)
        why = disagreement(e, kernel_facts(self.kernel_path(path)))
        if why:
            return ("kernel", f"DIFFERS from the model: {why.removeprefix('kernel: ')}")
        return ("kernel", "agrees with the model (type, mode, size, target) at " + self.kernel_path(path))

    def path_in(self, source: PaneSource, path: str, wait: bool = True) -> str:
        """Where merged ``path`` is in ``source``'s own tree: the same path, unless a dir on the way is
        redirected (a renamed dir: ``/manual/x`` in the merged view is ``/docs/x`` in the lower it came from).

        ``wait=False`` (the event loop): if a scan holds the lock, answer the same path rather than wait.
        """
        path = normpath(path)
        if source is None or path == "/":
            return path
        parent, name = path.rsplit("/", 1)
        if not self.lock.acquire(blocking=wait):
            return path
        try:
            sources = self.full.dir_sources(parent or "/")
        except StackError:
            return path
        finally:
            self.lock.release()
        root = source.path.rstrip("/")
        for layer, real in sources:
            if layer == source and (real == root or real.startswith(root + "/")):
                return join(real[len(root) :] or "/", name)
        return path

    def merged_path_of(self, source: PaneSource, path: str, wait: bool = True) -> str:
        """Where ``path`` of ``source``'s own tree shows in the merged view: the same path, unless its dir
        feeds a merged dir of another name (a renamed dir: lower ``/docs/x`` is merged ``/manual/x``). Only
        merged dirs already read are known; the inverse of :meth:`path_in`. ``wait``: as there."""
        path = normpath(path)
        if source is None or path == "/":
            return path
        parent, name = path.rsplit("/", 1)
        real = source.path.rstrip("/") + (parent or "")
        if not self.lock.acquire(blocking=wait):
            return path
        try:
            dirs = self.full.merged_dirs_for(real)
        finally:
            self.lock.release()
        if not dirs or (parent or "/") in dirs:
            return path
        return join(dirs[0], name)

    def where(self, source: PaneSource, path: str) -> tuple[str | None, str]:
        with self.lock:
            return where(self.full, source, path)

    # -------------------------------------------------------------- changes
    def apply(self, changes: Changes) -> None:
        """Forget cached listings that ``changes`` make stale (all views)."""
        with self.lock:
            changes.add_redirected(self.full)
            if changes.roots:
                self.invalidate_all()
                return
            views = [self.full, *self._own.values()] + ([self.below] if self.below else [])
            for mdir, names in changes.dirs.items():
                for view in views:
                    view.invalidate(mdir)
                    for name in names or ():
                        view.invalidate(join(mdir, name))

    def invalidate_all(self) -> None:
        with self.lock:
            self.full = CachedView(self.stack)
            self.below = _below_changer(self.stack)
            self._own.clear()

    def missing_roots(self) -> list[str]:
        """Layer roots (and the mount point) that are not directories now."""
        return [r for r in self.mapper.roots if not _is_dir(r)]

    # --------------------------------------------------------------- search
    def search(
        self,
        query: str,
        cancelled: Callable[[], bool],
        found: Callable[[list[str]], None],
        limit: int = 1000,
    ) -> int:
        """Walk the merged tree breadth-first; report paths whose name (or path, if the query has '/')
        matches, case-insensitively: as a substring, and also as a glob when the query has ``*?[`` (so a
        name that holds ``[red]`` is found by typing it)."""
        q = query.strip()
        if not q:
            return 0
        glob = any(c in q for c in "*?[")
        on_path = "/" in q
        ql = q.lower()

        def match(name: str, path: str) -> bool:
            subject = path if on_path else name
            low = subject.lower()
            return ql in low or (glob and fnmatch.fnmatchcase(low, ql))

        queue = ["/"]
        total = 0
        batch: list[str] = []
        last = time.monotonic()
        while queue and total < limit:
            d = queue.pop(0)
            if cancelled():
                return total
            with self.lock:
                try:
                    entries = self.full.list_dir(d)
                except StackError:
                    continue
            for e in entries:
                p = join(d, e.name)
                if match(e.name, p):
                    batch.append(p)
                    total += 1
                    if total >= limit:
                        break
                if e.is_dir:
                    queue.append(p)
            if batch and (len(batch) >= 50 or time.monotonic() - last > 0.1):
                found(batch)
                batch = []
                last = time.monotonic()
        if batch:
            found(batch)
        return total

    # --------------------------------------------------------------- counts
    def counts(self, layer: Layer, cancelled: Callable[[], bool]) -> LayerCounts:
        return layer_counts(self.stack, layer, cancelled)

    # -------------------------------------------------------------- details
    def details(self, source: PaneSource, path: str, alias: Callable[[str], str]) -> Details:
        path = normpath(path)
        with self.lock:
            status, words = where(self.full, source, path)
            versions = self.full.versions(path)
            entry = self.full.lookup(path)
        pane = MERGED if source is None else source.name
        d = Details(path, pane, status, words)
        kline = self.kernel_line(path) if source is None else None
        if kline is not None and kline[1].startswith("DIFFERS"):
            d.status, d.words = KERNEL_DIFFERS, "the model and the kernel disagree here"
        for v in versions:
            st = S.HIDDEN_STATUS.get(v.fate) or _fate_status(v, entry)
            d.versions.append(
                VersionRow(v.layer.name, v.fate, st, v.node.kind, alias(v.path), v.by.name if v.by else "")
            )
        shown = _shown_version(versions, source)
        if shown is None:
            if kline is not None:
                d.meta = [kline]
            return d
        node = shown.node
        if node.error:  # lstat itself failed: there is no metadata to show, only why
            d.meta = [("type", "unknown"), ("error", node.error), ("real path", alias(shown.path))]
            if kline is not None:
                d.meta.append(kline)
            return d
        d.meta = [
            ("type", node.kind + (f" -> {node.target}" if node.target is not None else "")),
            ("mode", f"{_stat.filemode(_mode_bits(node.kind) | node.mode)} ({node.mode:04o})"),
            ("owner", owner(node.uid, node.gid)),
            ("size", f"{node.size} bytes"),
            ("mtime", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(node.mtime))),
            ("inode", "none (a member of an image archive)" if self.full.in_layer_fs(shown.path) else str(node.ino)),
            ("real path", alias(shown.path)),
        ]
        if node.kind in ("chardev", "blockdev"):
            d.meta.insert(4, ("device", f"{node.rdev >> 8 & 0xFFF}:{(node.rdev & 0xFF) | (node.rdev >> 12 & 0xFFF00)}"))
        if node.kind == "dir":
            for real, problem in self.unreadable(source, path):
                d.meta.append(("unreadable", f"{alias(real)}: {problem} (its entries are missing)"))
        if kline is not None:
            d.meta.append(kline)
        for name, value in overlay_xattrs(shown.path).items():
            d.xattrs.append((name, _xattr_value(value), explain_xattr(name) or ""))
        content_path = shown.path
        if source is None and entry is not None and entry.kind == "file":
            content_path = entry.source  # a metacopy file's data lives below
        if source is None and entry is not None and entry.data_error:
            d.content = Content("error", size=entry.size, message=entry.data_error)
        elif node.kind == "file" or (source is None and entry is not None and entry.kind == "file"):
            d.content = self.full.read_content(content_path, CONTENT_CAP)
            d.content_path = alias(content_path)
        elif node.kind in ("fifo", "chardev", "blockdev", "socket"):
            d.content = Content("none", message=f"a {node.kind}: never opened")
        self._diff_below(d, path, versions, shown)
        return d

    def _diff_below(self, d: Details, path: str, versions: list[LayerVersion], shown: LayerVersion) -> None:
        """The file shown against the version it replaces in the layers below (a copy-up, a later layer's
        rewrite); none for a metacopy file, whose data is the one below."""
        if shown.node.kind != "file" or shown.node.metacopy:
            return
        below = versions[versions.index(shown) + 1 :]
        old = next((v for v in below if v.node.kind == "file"), None)
        if old is None:
            return
        d.diff, d.diff_note = unified_diff(
            self.full.read_content(old.path, CONTENT_CAP),
            self.full.read_content(shown.path, CONTENT_CAP),
            f"{old.layer.name}{path}",
            f"{shown.layer.name}{path}",
            CONTENT_CAP,
        )
        d.diff_labels = (old.layer.name, shown.layer.name)


def _fate_status(v: LayerVersion, entry: object) -> str:
    from ..core.panes import FATE_STATUS

    if v.fate == S.VISIBLE:
        st = getattr(entry, "status", S.LOWER)
        return str(st)
    return FATE_STATUS.get(v.fate, S.SHADOWED)


def _below_changer(stack: Stack) -> OverlayView | None:
    """The view under the layer whose changes "changes only" shows (the upper, else the topmost lower)."""
    return OverlayView(stack.below(stack.changer())) if stack.layers else None


def _shown_version(versions: Iterable[LayerVersion], source: PaneSource) -> LayerVersion | None:
    for v in versions:
        if source is None and v.fate == S.VISIBLE:
            return v
        if source is not None and v.layer == source:
            return v
    return None


def _mode_bits(kind: str) -> int:
    return {
        "file": _stat.S_IFREG,
        "dir": _stat.S_IFDIR,
        "symlink": _stat.S_IFLNK,
        "chardev": _stat.S_IFCHR,
        "blockdev": _stat.S_IFBLK,
        "fifo": _stat.S_IFIFO,
        "socket": _stat.S_IFSOCK,
    }.get(kind, 0)


def _xattr_value(value: bytes) -> str:
    if not value:
        return "(empty)"
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        text = ""
    if text and text.isprintable():
        return repr(text)
    return "0x" + value.hex() if len(value) <= 64 else f"0x{value[:64].hex()}… ({len(value)} bytes)"
