"""Extracting one version of a file or dir out of a stack to a path outside it: ``ufs-tui cp`` (the explorer too).

Two steps, as every operation here that writes: :func:`plan` reads only, and says what would be written (how
many entries, how many bytes, where) and why it cannot be (:attr:`Plan.refused`); :func:`write` writes it.

Which version:

* no layer: the merged view's, what a process in the container sees (what the kernel would show): a metacopy
  file's data from the layer that holds it, a merged dir's contents from every layer that merges in, whiteouts
  applied, hidden entries left out, the metadata (mode, owner, times, xattrs) of the topmost copy;
* a layer (``upper``, ``lower:N``, ``data:N``): that layer's own copy of the path, as stored, read through a
  one-layer view of it (:func:`~ufs_tui.core.panes.own_stack`): a whited-out or shadowed version too. Overlay's
  markers are not files: whiteouts (0/0 char devices, xattr whiteouts, ``.wh.`` names), opaque marks and
  ``*.overlay.*`` xattrs are left out, and said so. A metacopy file there holds no data of its own: its data is
  taken from where the stack's lookup finds it, and said so.

What is written is what ``cp -a`` writes: files (holes kept: only the data extents are copied; an archive member's
all-zero blocks become holes), dirs (recursively), symlinks as symlinks (never followed), hard links within the
copy as hard links (an inode met twice; an archive's link members), FIFOs, sockets and devices as such (a device
needs root: else one line says it was skipped); mode, times, xattrs other than overlay's (where the destination
takes them) and, as root, the owner. Nothing of the stack is written: a destination inside a layer, the work dir,
an overlay mounted from these layers or an engine's storage is refused (:mod:`.extract_places`).

Every line here (refusals, problems, notes) is raw: a path in it may hold any byte; make it printable where shown.
"""

from __future__ import annotations

import contextlib
import functools
import os
import posixpath
import stat
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from .extract_data import FULL, Members, NotCopied, copy_file, member, why
from .extract_places import Place, forbidden_places, refusal
from .model import status as S
from .model.display import human_size, plural
from .model.entry import Entry
from .model.errors import StackError, UfsError
from .model.layer_reader import LayerReader
from .model.markers import KIND_BY_FMT, probe
from .model.merge import OverlayView, normpath
from .model.stack import Layer, LayerFS, Stack, fs_holding
from .panes import own_stack, where
from .sources.archive import TarLayerFS

Link = tuple[str, int | str, int | str]  # what one inode is: ("inode", dev, ino) or ("member", layer tar, name)
Report = Callable[[str], None]

_SPECIAL = ("fifo", "chardev", "blockdev", "socket")
_FORMAT = {"fifo": stat.S_IFIFO, "chardev": stat.S_IFCHR, "blockdev": stat.S_IFBLK, "socket": stat.S_IFSOCK}


@dataclass(frozen=True, slots=True)
class Item:
    """One entry to write, in pre-order (a dir before what it holds)."""

    path: str  # its path in the stack: merged, or in the layer's own tree
    rel: str  # where it goes below the target ("" is the target itself)
    kind: str  # file, dir, symlink, fifo, chardev, blockdev, socket
    meta: str  # the real path whose metadata is copied (the topmost copy)
    data: str  # the real path whose data is copied (a metacopy file's: the layer holding its data)
    size: int = 0
    link: Link | None = None  # entries with the same value are one inode (hard links)
    merge: tuple[int, int] | None = None  # an existing dest dir written into: its (st_dev, st_ino)
    replace: bool = False  # an existing dest non-dir that --force replaces


@dataclass
class Plan:
    """What :func:`write` will write, or why it will not (:attr:`refused`)."""

    stack: Stack
    path: str  # the path in the stack
    layer: Layer | None  # None: the merged view's version
    target: str  # the real path the version is written to (DEST, or DEST/NAME in an existing dir DEST)
    version: str = ""  # which version, in words
    items: list[Item] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)  # nothing is written: one line each
    problems: list[str] = field(default_factory=list)  # what cannot be copied (one line each): the rest can
    notes: list[str] = field(default_factory=list)  # what is left out by design, where data comes from
    force: bool = False  # existing files at the destination are replaced
    fs: dict[str, LayerFS] = field(default_factory=dict, repr=False)  # layer root -> LayerFS (archive layers)

    def fs_of(self, real: str) -> LayerFS | None:
        """The LayerFS a real path is read through (an archive's layer tar), None for a path on disk."""
        return fs_holding(real, self.fs.items())

    def counts(self) -> dict[str, int]:
        """Entries by kind ("file", "dir", "symlink", "special", "hard link") and "bytes" (each inode once)."""
        out = {"file": 0, "dir": 0, "symlink": 0, "special": 0, "hard link": 0, "bytes": 0}
        seen: set[Link] = set()
        for it in self.items:
            if it.link is not None:
                if it.link in seen:
                    out["hard link"] += 1
                    continue
                seen.add(it.link)
            out["special" if it.kind in _SPECIAL else it.kind] += 1
            out["bytes"] += it.size if it.kind == "file" else 0
        return out

    def summary(self) -> str:
        """``1,234 files (56.7 MB), 3 dirs, 2 symlinks``."""
        return summary(self.counts())

    def describe(self) -> list[str]:
        """What will be written, in lines a user confirms."""
        into = (
            " (into the existing dir there: what else it holds is kept)" if self.items and self.items[0].merge else ""
        )
        lines = [f"copy {self.version}", f"will write {self.summary()} to {self.target}{into}"]
        replaced = [it for it in self.items if it.replace]
        if replaced:
            lines.append(
                f"will replace {plural(len(replaced), 'existing file')} (--force): first {_dest(self, replaced[0])}"
            )
        return lines


@dataclass
class Written:
    """What :func:`write` did."""

    counts: dict[str, int] = field(default_factory=dict)  # as Plan.counts(), of what was written
    problems: int = 0  # entries not written (each reported)
    xattrs_dropped: int = 0  # overlay xattrs left out
    xattrs_refused: int = 0  # xattrs the destination did not take


def _dest(plan: Plan, item: Item) -> str:
    return posixpath.join(plan.target, item.rel) if item.rel else plan.target


# ------------------------------------------------------------------------------------------------- plan
def plan(
    stack: Stack,
    path: str,
    dest: str,
    layer: str | None = None,
    force: bool = False,
    engines: dict[str, str | None] | None = None,
) -> Plan:
    """What extracting ``path`` (of the merged view, or of ``layer``'s own tree) to ``dest`` would write.

    ``dest`` is read as ``cp -a`` reads it: an existing dir (symlinks followed) gets the version inside it, under
    its name; anything else is the new name. Raises UfsError when there is nothing to extract (no such path, no
    such layer); a destination it cannot write is a line in :attr:`Plan.refused`. ``engines``: the engine roots
    the user named (``docker_root``, ..., ``host_root``), whose storage is refused too."""
    path = normpath(path)
    full = OverlayView(stack)
    chosen = _layer(stack, layer) if layer is not None else None
    view = OverlayView(own_stack(stack, chosen)) if chosen is not None else full
    top = _top(full, view, chosen, path)
    target = _target(dest, path)
    p = Plan(stack, path, chosen, target, _version(full, chosen, path), force=force, fs=dict(LayerReader(stack).fs))
    places = forbidden_places(stack, engines or {})
    said = refusal(target, places)
    if said is None and not os.path.isdir(posixpath.dirname(target)):
        said = f"{posixpath.dirname(target)}: the dir DEST goes in does not exist"
    if said is not None:
        p.refused.append(said)
        return p
    _Planner(p, full, view, places).walk(top, os.path.lexists(target))
    if not p.items and p.problems and not p.refused:  # the version itself cannot be copied
        raise UfsError(p.problems[0])
    return p


def _layer(stack: Stack, name: str) -> Layer:
    try:
        return stack.layer_by_name(name)
    except KeyError:
        names = ", ".join(la.name for la in stack.all_layers)
        raise UfsError(f"@{name}: no such layer (this stack has {names})") from None


def _top(full: OverlayView, view: OverlayView, layer: Layer | None, path: str) -> Entry:
    """The entry to extract, or a UfsError that says why there is none."""
    e = view.lookup(path)
    if e is not None:
        if layer is None and e.status == S.ERROR:
            raise UfsError(f"{path}: the kernel fails this lookup: {(e.extra or {}).get('error', 'error')}")
        if layer is None and e.data_error:
            raise UfsError(f"{path}: the kernel fails reading it: {e.data_error}")
        return e
    on_the_way = _not_a_dir_above(view, path)
    if on_the_way is not None:
        raise UfsError(f"{path}: {on_the_way} (a symlink on the way is not followed: PATH is as the stack stores it)")
    if layer is None:
        _, words = where(full, None, path)
        held = [v.layer.name for v in full.versions(path) if not v.node.whiteout]
        hint = f" (a layer's own copy: SOURCE@{held[0]}:{path}; held by {', '.join(held)})" if held else ""
        raise UfsError(f"{path}: not in the merged view: {words.removeprefix('absent: ')}{hint}")
    for v in view.versions(path):
        if v.fate == S.F_WHITEOUT:
            raise UfsError(
                f"{path}: {layer.name} holds a whiteout there (a marker that deletes the name below, not a file): "
                "the deleted version is in a layer below it"
            )
    raise UfsError(f"{path}: not in {layer.name}'s own tree (a path there is looked up without following symlinks)")


def _not_a_dir_above(view: OverlayView, path: str) -> str | None:
    """The first dir on the way to ``path`` that is not one in ``view`` (a symlink, a file), in words."""
    parts = path.strip("/").split("/")[:-1]
    for k in range(1, len(parts) + 1):
        above = "/" + "/".join(parts[:k])
        e = view.lookup(above)
        if e is None:
            return None
        if e.kind != "dir":
            return f"{above} is a {e.kind}, not a dir" + (f" (-> {e.target})" if e.target is not None else "")
    return None


def _version(full: OverlayView, layer: Layer | None, path: str) -> str:
    """Which version, in words: ``the merged view's /etc`` or ``lower:1's own copy of /etc (whited out: ...)``."""
    if layer is None:
        return f"the merged view's {path}"
    status, words = where(full, layer, path)
    hidden = status is None or status in (S.WHITED_OUT, S.OPAQUE_HIDDEN, S.SHADOWED, S.WHITEOUT)
    return f"{layer.name}'s own copy of {path}" + (f" (not what the merged view shows: {words})" if hidden else "")


def _target(dest: str, path: str) -> str:
    """The real path written: DEST's dirs resolved (symlinks, ``..``); its last name is not followed (what is there
    is replaced, with --force, not written through), but for an existing dir, which gets the version inside."""
    if not dest:
        raise UfsError("DEST: empty")
    if os.path.isdir(dest):
        name = posixpath.basename(path)
        if not name:
            raise UfsError(f"{dest}: exists; the root has no name to copy under it: give a DEST that does not exist")
        target = posixpath.join(os.path.realpath(dest), name)
    else:
        absolute = os.path.abspath(dest)
        parent, name = posixpath.split(absolute)
        if name in ("", ".", ".."):
            raise UfsError(f"{dest}: not a name to create")
        target = posixpath.join(os.path.realpath(parent), name)
    return target


class _Planner:
    """The walk that makes a plan's items: the source tree in pre-order, and the destination checked as it goes."""

    def __init__(self, plan: Plan, full: OverlayView, view: OverlayView, places: list[Place]) -> None:
        self.plan, self.full, self.view, self.places = plan, full, view, places
        self.own = plan.layer is not None
        self.whiteouts = 0
        self.opaque = 0
        self.xattrs = 0  # overlay xattrs of a layer's own copy (markers: not copied)
        self.overwrites: list[str] = []

    def walk(self, top: Entry, exists: bool) -> None:
        p = self.plan
        base = top.path
        stack = [top]
        while stack:
            e = stack.pop()
            rel = e.path[len(base) :].lstrip("/") if base != "/" else e.path.lstrip("/")
            item = self._item(e, rel)
            if item is None:
                continue
            if exists:
                item = self._against_dest(item)
                if item is None:
                    continue
            p.items.append(item)
            if e.kind == "dir":
                stack.extend(reversed(self._children(e)))
        for real, problem in self.view.errors.items():
            p.problems.append(f"{real}: cannot be read: {problem} (what it holds is not copied)")
        if self.overwrites:
            first = self.overwrites[0]
            p.refused.append(
                f"{first}: exists ({plural(len(self.overwrites), 'existing file')} would be overwritten): "
                "give --force to replace them, or another DEST"
            )
        left = [plural(self.whiteouts, "whiteout")] if self.whiteouts else []
        left += [f"the opaque mark of {plural(self.opaque, 'dir')}"] if self.opaque else []
        left += [plural(self.xattrs, "overlay xattr")] if self.xattrs else []
        if left:
            p.notes.append(f"left out overlay's own markers (they are not files): {', '.join(left)}")

    def _children(self, e: Entry) -> list[Entry]:
        try:
            if not self.own:
                return self.view.list_dir(e.path)
            entries, hidden = self.view.list_all(e.path)
        except StackError as err:
            self.plan.problems.append(f"{e.path}: cannot be listed: {err.problem} (what it holds is not copied)")
            return []
        self.whiteouts += sum(1 for h in hidden if h.status == S.WHITEOUT)
        return entries

    def _item(self, e: Entry, rel: str) -> Item | None:
        """The item for entry ``e``, or None (a problem said why)."""
        p = self.plan
        extra = e.extra or {}
        data = e.real_path if self.own else e.source
        if self.own and e.kind == "file" and e.status in (S.ERROR, S.METACOPY) and self._metacopy(e):
            got = self._metacopy_data(e)
            if got is None:
                return None
            data = got
        elif e.status == S.ERROR or e.data_error:
            p.problems.append(f"{e.path}: not copied: {extra.get('error', 'the kernel fails it')}")
            return None
        if e.kind not in ("file", "dir", "symlink", *_SPECIAL):
            p.problems.append(f"{e.path}: not copied: cannot tell what it is ({e.kind})")
            return None
        if self.own and e.status == S.OPAQUE:
            self.opaque += 1
        if self.own:
            self.xattrs += _overlay_xattrs(e.real_path) if p.fs_of(e.real_path) is None else 0
        if e.kind == "dir":
            return Item(e.path, rel, "dir", e.real_path, e.real_path)
        facts = self._facts(e)
        if facts is None:
            return None
        size, link = facts
        return Item(e.path, rel, e.kind, e.real_path, data, size if e.kind == "file" else 0, link)

    def _metacopy(self, e: Entry) -> bool:
        """Whether a layer's own file is a metacopy file (metadata only: the model fails it, alone)."""
        if self.plan.fs_of(e.real_path) is not None:
            return False
        node = probe(e.real_path, self.plan.stack.xattr_ns)
        return node is not None and node.metacopy

    def _metacopy_data(self, e: Entry) -> str | None:
        """A layer's own metacopy file holds only metadata: its data, from where the stack's lookup takes it."""
        layer = self.plan.layer
        assert layer is not None
        got = self.full.lookup(e.path)
        if got is not None and got.real_path == e.real_path and got.source != e.real_path and not got.data_error:
            data_layer = (got.extra or {}).get("data_layer", "a layer below")
            self.plan.notes.append(
                f"{e.path}: a metacopy file: {layer.name} holds only its metadata; its data is copied from "
                f"{data_layer}, where the kernel reads it"
            )
            return got.source
        self.plan.problems.append(
            f"{e.path}: not copied: a metacopy file: {layer.name} holds only its metadata, and the stack's lookup "
            "of this path does not reach its data (extract the merged view's version, or the layer with the data)"
        )
        return None

    def _facts(self, e: Entry) -> tuple[int, Link | None] | None:
        """(size, hard-link identity) of a non-dir entry's topmost copy."""
        fs = self.plan.fs_of(e.real_path)
        if fs is not None:
            return e.size, _member_link(fs, e.real_path)
        try:
            st = os.lstat(e.real_path)
        except OSError as err:
            self.plan.problems.append(f"{e.path}: not copied: {err.strerror} ({e.real_path})")
            return None
        link: Link | None = ("inode", st.st_dev, st.st_ino) if st.st_nlink > 1 else None
        return st.st_size, link

    def _against_dest(self, item: Item) -> Item | None:
        """The item, told what its destination holds now: a dir to write into, a file to replace (--force)."""
        dest = _dest(self.plan, item)
        try:
            st = os.lstat(dest)
        except FileNotFoundError:
            return item
        except OSError as err:
            self.plan.refused.append(f"{dest}: cannot be checked: {err.strerror}")
            return None
        is_dir = stat.S_ISDIR(st.st_mode)
        if item.kind == "dir" and is_dir:
            said = refusal(dest, self.places)
            if said is not None:
                self.plan.refused.append(said)
                return None
            return replace(item, merge=(st.st_dev, st.st_ino))
        if item.kind == "dir" or is_dir:
            what = KIND_BY_FMT.get(stat.S_IFMT(st.st_mode), "unknown")
            self.plan.refused.append(
                f"{dest}: exists and is a {what}, and {item.path} is a {item.kind}: not replaced (even with --force): "
                "give another DEST"
            )
            return None
        if not self.plan.force:
            self.overwrites.append(dest)
            return None
        return replace(item, replace=True)


def _overlay_xattrs(real: str) -> int:
    """How many overlay xattrs (``trusted.overlay.*``, ``user.overlay.*``: markers) the entry at ``real`` has."""
    try:
        names = os.listxattr(real, follow_symlinks=False)
    except OSError:
        return 0
    return sum(1 for n in names if n.startswith(("trusted.overlay.", "user.overlay.")))


def _member_link(fs: LayerFS, real: str) -> Link | None:
    """An archive member's identity: the member whose data it is (a link member's target)."""
    got = member(fs, real)
    return None if got is None or not isinstance(fs, TarLayerFS) else ("member", fs.root, got[0])


def summary(c: dict[str, int]) -> str:
    """Counts as :meth:`Plan.counts` makes them, in words: ``1,234 files (56.7 MB), 3 dirs, 2 symlinks``."""
    parts = [f"{_n(c.get('file', 0), 'file', 'files')} ({human_size(c.get('bytes', 0))})"]
    for key, one, many in (
        ("dir", "dir", "dirs"),
        ("symlink", "symlink", "symlinks"),
        ("hard link", "hard link", "hard links"),
        ("special", "FIFO, socket or device", "FIFOs, sockets or devices"),
    ):
        if c.get(key):
            parts.append(_n(c[key], one, many))
    return ", ".join(parts)


def _n(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


# ------------------------------------------------------------------------------------------------ write
def write(plan: Plan, report: Report) -> Written:
    """Write what ``plan`` says. Each entry that cannot be written is one line to ``report`` (``PATH: not copied:
    WHY``), and the rest goes on; a destination that takes nothing more (full, read-only) stops it: UfsError.
    A refused plan writes nothing (UfsError)."""
    if plan.refused:
        raise UfsError(plan.refused[0])
    return _Writer(plan, report).run()


@dataclass(frozen=True, slots=True)
class _Meta:
    """What is kept of an entry besides its data."""

    mode: int
    uid: int
    gid: int
    atime_ns: int
    mtime_ns: int
    rdev: int = 0
    target: str | None = None  # a symlink's


class _Writer:
    """One :func:`write`: the items in order, each dir's mode and times set after what it holds is written."""

    def __init__(self, plan: Plan, report: Report) -> None:
        self.plan, self.report = plan, report
        self.done = Written(counts={k: 0 for k in ("file", "dir", "symlink", "special", "hard link", "bytes")})
        self.as_root = os.geteuid() == 0
        self.linked: dict[Link, str] = {}  # an inode met: where its first name was written
        self.dirs: list[tuple[Item, str, _Meta]] = []
        self.gone: str | None = None  # the rel of the last dir not written: what it holds is not either
        self.members = Members()
        self.prefix = plan.stack.xattr_ns + ".overlay."

    def run(self) -> Written:
        try:
            for item in self.plan.items:
                if self.gone is not None and (self.gone == "" or item.rel.startswith(self.gone + "/")):
                    continue
                self.gone = None
                self._one(item)
            for item, dest, meta in reversed(self.dirs):  # children before their parents
                self._guarded(item, dest, functools.partial(self._settle, item, dest, meta), "mode and times not kept")
        finally:
            self.members.close()
        return self.done

    def _one(self, item: Item) -> None:
        dest = _dest(self.plan, item)

        def do() -> None:
            meta = self._meta(item)
            if item.kind == "dir":
                self._dir(item, dest)
                self.dirs.append((item, dest, meta))
            elif item.link is not None and item.link in self.linked:
                self._clear(item, dest)
                os.link(self.linked[item.link], dest, follow_symlinks=False)
                self.done.counts["hard link"] += 1
                return
            elif item.kind == "file":
                self._file(item, dest, meta)
            else:
                self._node(item, dest, meta)
            if item.link is not None:
                self.linked[item.link] = dest
            self.done.counts["special" if item.kind in _SPECIAL else item.kind] += 1

        self._guarded(item, dest, do)

    def _guarded(self, item: Item, dest: str, do: Callable[[], None], failed: str = "not copied") -> None:
        """Run ``do``; a problem with this entry is one line (``PATH: FAILED: WHY``) and the walk goes on (not when
        the destination is full or read-only: that stops it)."""
        try:
            do()
            return
        except NotCopied as e:
            said = str(e)
        except OSError as e:
            if e.errno in FULL:
                raise UfsError(
                    f"{e.filename or dest}: {e.strerror}: stopped; what was written so far is kept"
                ) from None
            said = why(e)
        self.done.problems += 1
        self.report(f"{item.path}: {failed}: {said}")
        if item.kind == "dir":
            self.gone = item.rel

    def _meta(self, item: Item) -> _Meta:
        fs = self.plan.fs_of(item.meta)
        if fs is not None:
            got = member(fs, item.meta) if item.kind == "file" else None
            if got is not None:  # a link member's inode is its target's (as tar x makes it): its metadata too
                ti = got[1]
                ns = round(ti.mtime * 1e9)
                return _Meta(ti.mode & 0o7777, ti.uid, ti.gid, ns, ns)
            node = fs.probe(item.meta)
            if node is None:
                raise NotCopied("the archive's layer tar has nothing there")
            ns = round(node.mtime * 1e9)
            return _Meta(node.mode, node.uid, node.gid, ns, ns, node.rdev, node.target)
        try:
            st = os.lstat(item.meta)
        except FileNotFoundError:
            raise NotCopied(f"it vanished since it was listed ({item.meta})") from None
        kind = KIND_BY_FMT.get(stat.S_IFMT(st.st_mode), "unknown")
        if kind != item.kind:
            raise NotCopied(f"it changed since it was listed: now a {kind} ({item.meta})")
        target = os.readlink(item.meta) if kind == "symlink" else None
        mode = stat.S_IMODE(st.st_mode)
        return _Meta(mode, st.st_uid, st.st_gid, st.st_atime_ns, st.st_mtime_ns, st.st_rdev, target)

    def _dir(self, item: Item, dest: str) -> None:
        if item.merge is None:
            os.mkdir(dest, 0o700)  # its own mode once what it holds is written (a read-only dir too)
            return
        st = os.lstat(dest)
        if not stat.S_ISDIR(st.st_mode) or (st.st_dev, st.st_ino) != item.merge:
            raise NotCopied(f"{dest} changed since it was checked: not written into")

    def _clear(self, item: Item, dest: str) -> None:
        """--force: the existing non-dir at ``dest`` goes (the plan checked it is one)."""
        if item.replace:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(dest)

    def _file(self, item: Item, dest: str, meta: _Meta) -> None:
        self._clear(item, dest)
        fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600)
        try:
            try:
                fs = self.plan.fs_of(item.data)
                copy_file(item.data, fd) if fs is None else self.members.copy(fs, item.data, fd)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(dest)  # no half-written file is left behind
                raise
            if self.as_root:
                os.fchown(fd, meta.uid, meta.gid)
            self._xattrs(item, fd)
            os.fchmod(fd, meta.mode)
            os.utime(fd, ns=(meta.atime_ns, meta.mtime_ns))
        finally:
            os.close(fd)
        self.done.counts["bytes"] += item.size

    def _node(self, item: Item, dest: str, meta: _Meta) -> None:
        """A symlink (never followed), a FIFO, a socket or a device."""
        self._clear(item, dest)
        if item.kind == "symlink":
            if meta.target is None:
                raise NotCopied("its target cannot be read")
            os.symlink(meta.target, dest)
        else:
            rdev = meta.rdev if item.kind in ("chardev", "blockdev") else 0
            try:
                os.mknod(dest, _FORMAT[item.kind] | 0o600, rdev)
            except PermissionError:
                if item.kind not in ("chardev", "blockdev"):
                    raise
                device = f"{os.major(rdev)}:{os.minor(rdev)}"
                raise NotCopied(
                    f"skipped: a device ({item.kind} {device}); making one needs root (CAP_MKNOD)"
                ) from None
        self._settle(item, dest, meta)

    def _settle(self, item: Item, dest: str, meta: _Meta) -> None:
        """Owner (as root), xattrs, mode and times of what is at ``dest`` (a symlink's own: never followed)."""
        if self.as_root:
            os.chown(dest, meta.uid, meta.gid, follow_symlinks=False)
        self._xattrs(item, dest)
        if item.kind != "symlink":
            os.chmod(dest, meta.mode)  # (not a symlink: nothing to follow)
        os.utime(dest, ns=(meta.atime_ns, meta.mtime_ns), follow_symlinks=False)

    def _xattrs(self, item: Item, dest: int | str) -> None:
        """The xattrs of the entry's topmost copy, but overlay's (an archive member's are not read)."""
        if self.plan.fs_of(item.meta) is not None:
            return
        try:
            names = os.listxattr(item.meta, follow_symlinks=False)
        except OSError:
            return
        for name in names:
            shown = self._xattr_name(name)
            if shown is None:
                self.done.xattrs_dropped += 1
                continue
            try:
                value = os.getxattr(item.meta, name, follow_symlinks=False)
                if isinstance(dest, int):
                    os.setxattr(dest, shown, value)
                else:
                    os.setxattr(dest, shown, value, follow_symlinks=False)
            except OSError as e:
                if e.errno in FULL:
                    raise
                self.done.xattrs_refused += 1

    def _xattr_name(self, name: str) -> str | None:
        """The name an xattr is copied under, None for overlay's own. The merged view lists what the kernel
        lists: the stack's ``<ns>.overlay.*`` hidden, an escaped ``<ns>.overlay.overlay.X`` shown as
        ``<ns>.overlay.X``; a layer's own copy leaves out every ``*.overlay.*`` (its markers)."""
        if self.plan.layer is None:
            if name.startswith(self.prefix + "overlay."):
                return self.prefix + name[len(self.prefix + "overlay.") :]
            return None if name.startswith(self.prefix) else name
        return None if name.startswith(("trusted.overlay.", "user.overlay.")) else name
