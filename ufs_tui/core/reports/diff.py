"""The upper's changes against the lowers, as ``docker diff`` and ``podman diff`` print them.

The two engines compute them differently; both were checked against the real engines on this
machine (Docker 20.10 overlay2, Podman 4.3 overlay: tests/engines/test_diff_engines.py).

:func:`changes` is Docker's. Docker 20.10's overlay2 driver has no native change list ("Native
Overlay Diff" in ``docker info`` is about applying layers): ``docker diff`` is moby's naive
``archive.ChangesDirs(container merged, parent merged)``, the parent being the init layer over the
image. Both trees are compared name by name:

* a name only in the container is ``A``, and so is everything below it;
* a name only in the parent is ``D`` (one line, none for its children);
* a name in both is ``C`` when ``statDifferent`` (mode with file type, uid, gid, rdev; and for a
  non-dir also mtime, equal to the second when either side has no nanoseconds, or size) or its
  ``security.capability`` xattr differs. Either way it is compared further down, but children are
  compared only if the container's is a dir (a dir replaced by a file shows no ``D`` for its children);
* a dir with any change below it that is not itself ``A`` or ``C`` gets a ``C`` line (never ``/``).

So a copy-up that changed nothing (``chmod`` to the same mode, ``touch x; rm x`` in a dir,
``cp -p`` and ``mv`` back) prints nothing, and an opaque dir prints ``C``/``A``/``D`` per child
compared with what it hides. Only paths the upper holds can differ (elsewhere both trees show the
same lower object), so the walk follows the upper, comparing this stack's merged view with its
lowers' merged view; where the upper dir is opaque or redirected, its whole listing is compared.

:func:`podman_changes` is Podman's: containers-storage's native ``archive.OverlayChanges``. It walks
the raw upper in lexical order (the root excluded) and looks at the raw lower layer dirs only:

* a 0/0 char device is ``D``; an opaque dir that some lower has (before a lower with a whiteout
  for it or a parent) is ``D``, and the walk still goes on inside it;
* anything else is ``C`` if a lower layer has the path (``stat``, following symlinks; layers top
  down, stopping at one with a whiteout for the path or a parent), else ``A``; but a dir whose
  size, mode and mtime equal those of that lower's is not reported at all;
* every ancestor of an ``A`` or ``D`` path not reported yet gets a ``C`` line, just before it;
* podman leaves out its runtime paths (:data:`PODMAN_INIT_PATHS`). Lines come in walk order.

Where the engine's own command fails, :class:`EngineDiffError` says so: docker, where ``lstat``
through the mount fails (an entry the kernel refuses to look up); podman, where a lower ``stat``
fails other than with ENOENT (e.g. for a file under an opaque dir that replaced a lower file).
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import NamedTuple

from ..model import status as S
from ..model.errors import StackError
from ..model.markers import KIND_BY_FMT, WH_FUSE_OPAQUE, WH_OPAQUE, WH_PREFIX, Node, probe
from ..model.merge import Entry, OverlayView, join
from ..model.stack import Layer, Stack


@dataclass(frozen=True)
class Change:
    kind: str  # "A", "C" or "D"
    path: str  # merged path
    real: str  # real path of the object (for D: the upper's marker, or the lower object that is gone)
    node: Node | None  # that object
    status: str  # its merged-view status, or a hidden status for D lines
    layer: str  # layer name the object lives in


class EngineDiffError(StackError):
    """The engine's own diff command fails on this stack (it prints no lines at all)."""


def changes(stack: Stack, errors: dict[str, str] | None = None, strict: bool = False) -> Iterator[Change]:
    """What ``docker diff`` prints for a container with this stack (the rules above), sorted by path.

    Dirs that cannot be read are left out and recorded in ``errors`` (path -> problem) when given.
    An entry the kernel refuses to look up (status ``error``) makes ``docker diff`` itself fail: with
    ``strict`` that raises :class:`EngineDiffError`, else it is compared by its layer's own metadata.
    """
    if stack.upper is None:
        return
    d = _Naive(stack, strict)
    d.run()
    if errors is not None:
        errors.update(d.errors)
    d.out.sort(key=lambda c: os.fsencode(c.path))
    yield from d.out


# ------------------------------------------------------------------------------------------ docker


class _Stat(NamedTuple):
    mode: int  # full st_mode: file type and permission bits
    uid: int
    gid: int
    rdev: int
    mtime_ns: int
    size: int


_FMT_BY_KIND = {kind: fmt for fmt, kind in KIND_BY_FMT.items()}
_CAPABILITY = "security.capability"


def _stat_different(old: _Stat, new: _Stat) -> bool:
    """moby's ``statDifferent`` (pkg/archive/changes_unix.go, Docker 20.10).

    "Not a dir" is tested as moby does, ``mode & S_IFDIR != S_IFDIR``: sockets and block devices
    share that bit, so their mtime and size are not compared either.
    """
    if old.mode != new.mode or old.uid != new.uid or old.gid != new.gid or old.rdev != new.rdev:
        return True
    if old.mode & stat.S_IFDIR != stat.S_IFDIR:
        return not _same_fs_time(old.mtime_ns, new.mtime_ns) or old.size != new.size
    return False


def _same_fs_time(a: int, b: int) -> bool:
    """Equal, or the same second with either side at 0 nanoseconds (tar has no sub-second times)."""
    if a == b:
        return True
    (asec, ansec), (bsec, bnsec) = divmod(a, 10**9), divmod(b, 10**9)
    return asec == bsec and (ansec == 0 or bnsec == 0)


def _isdir_bits(mode: int) -> bool:
    """moby's ``FileInfo.isDir`` (``mode & S_IFDIR != 0``): true for dirs, sockets and block devices."""
    return mode & stat.S_IFDIR != 0


class _Naive:
    """moby's ``ChangesDirs`` over the stack's merged view (new) and its lowers' merged view (old)."""

    def __init__(self, stack: Stack, strict: bool) -> None:
        assert stack.upper is not None
        self.stack = stack
        self.strict = strict
        self.upper: Layer = stack.upper
        self.ns = stack.xattr_ns
        self.oci = "oci-whiteouts" in stack.options
        self.merged = OverlayView(stack)
        self.below = OverlayView(stack.without_upper())
        self.out: list[Change] = []
        self._errors: dict[str, str] = {}

    @property
    def errors(self) -> dict[str, str]:
        return {**self.merged.errors, **self.below.errors, **self._errors}

    def run(self) -> None:
        try:
            self.merged.list_dir("/")
        except StackError as e:
            self._errors[e.path] = e.problem
            return
        root = _Stat(stat.S_IFDIR, 0, 0, 0, 0, 0)
        old = self.below.root_entry() if self.stack.lowers else None  # the bottom layer: over nothing
        self._add_changes("/", self.merged.root_entry(), root, old, True)

    # moby's FileInfo.addChanges, for one path that is in the new tree
    def _add_changes(self, path: str, new: Entry, new_st: _Stat, old: Entry | None, added: bool) -> None:
        start = len(self.out)
        if old is None and path != "/":  # the root is never a change (a bottom layer's is over nothing)
            self.out.append(self._change(S.DIFF_ADDED, new))
            added = True
        new_isdir = _isdir_bits(new_st.mode)
        # the walker reads a dir's children only when it really is a dir; old children count only
        # when the new one "is a dir" (moby's test above)
        old_dir = old if old is not None and old.is_dir and new_isdir else None
        if new.is_dir or old_dir is not None:
            self._children(path, new if new.is_dir else None, old_dir)
        if len(self.out) > start and new_isdir and not added and path != "/":
            self.out.append(self._change(S.DIFF_CHANGED, new))

    def _children(self, path: str, new: Entry | None, old: Entry | None) -> None:
        new_children = self._listing(self.merged, path) if new is not None else {}
        old_children = self._listing(self.below, path) if old is not None else {}
        names = self._names_that_can_differ(path, new, old)
        if names is None:
            names = sorted(set(new_children) | set(old_children), key=os.fsencode)
        for name in names:
            nc, oc = new_children.get(name), old_children.get(name)
            cpath = join(path, name)
            if nc is None:
                if oc is not None:
                    self.out.append(self._deleted(cpath, oc))
                continue
            nst = self._stat(nc)
            if nst is None:
                continue
            changed = False
            if oc is not None:
                ost = self._stat(oc)
                if ost is None:
                    continue
                if _stat_different(ost, nst) or self._cap(oc) != self._cap(nc):
                    self.out.append(self._change(S.DIFF_CHANGED, nc))
                    changed = True
            self._add_changes(cpath, nc, nst, oc, changed)

    def _names_that_can_differ(self, path: str, new: Entry | None, old: Entry | None) -> list[str] | None:
        """The names of dir ``path`` whose objects can differ between the trees; None: all of them.

        Where the new dir is the old one with the upper's dir on top (neither opaque nor redirected),
        a name the upper does not hold is the same lower object in both trees.
        """
        if new is None or old is None:
            return None
        try:
            msrc = self.merged.dir_sources(path)
            bsrc = self.below.dir_sources(path)
        except StackError:
            return None
        if msrc == bsrc:
            return []
        if not msrc or msrc[0][0].role != "upper" or msrc[1:] != bsrc:
            return None
        layer, real = msrc[0]
        try:
            raw = list(layer.fs.listdir(real) or ()) if layer.fs is not None else os.listdir(real)
        except OSError as e:
            self._errors[real] = e.strerror or str(e)
            return []
        names = set()
        for name in raw:
            if self.oci and name.startswith(WH_PREFIX):
                if name in (WH_OPAQUE, WH_FUSE_OPAQUE):
                    return None
                name = name[len(WH_PREFIX) :]
            names.add(name)
        return sorted(names, key=os.fsencode)

    def _listing(self, view: OverlayView, path: str) -> dict[str, Entry]:
        try:
            return {e.name: e for e in view.list_dir(path)}
        except StackError as e:
            self._errors[e.path] = e.problem
            return {}

    def _stat(self, e: Entry) -> _Stat | None:
        """What ``lstat`` through the mount shows for the entry: its topmost copy's metadata."""
        if e.status == S.ERROR and self.strict:  # lstat through the mount fails: so does docker diff
            problem = (e.extra or {}).get("error", "the kernel refuses this lookup")
            raise EngineDiffError(e.path, f"docker diff fails here: lstat through the mount fails ({problem})")
        real, layer = e.real_path, e.layer
        if layer.fs is not None:
            node = layer.fs.probe(real, self.ns)
            if node is None or node.kind == "unknown":
                self._errors[real] = (node.error if node else None) or "vanished while reading"
                return None
            fmt = _FMT_BY_KIND.get(node.kind, 0)
            return _Stat(fmt | node.mode, node.uid, node.gid, node.rdev, round(node.mtime * 10**9), node.size)
        try:
            st = os.lstat(real)
        except OSError as err:
            self._errors[real] = err.strerror or str(err)
            return None
        return _Stat(st.st_mode, st.st_uid, st.st_gid, st.st_rdev, st.st_mtime_ns, st.st_size)

    def _cap(self, e: Entry) -> bytes | None:
        if e.layer.fs is not None:
            return None
        try:
            return os.getxattr(e.real_path, _CAPABILITY, follow_symlinks=False)
        except OSError:
            return None

    def _node(self, layer: Layer, real: str) -> Node | None:
        return layer.fs.probe(real, self.ns) if layer.fs is not None else probe(real, self.ns)

    def _change(self, kind: str, e: Entry) -> Change:
        return Change(kind, e.path, e.real_path, self._node(e.layer, e.real_path), e.status, e.layer.name)

    def _deleted(self, path: str, old: Entry) -> Change:
        """``D``: the upper's whiteout when it has one, else the lower object an opaque or redirected dir hides."""
        real = self.upper.real(path)
        node = self._node(self.upper, real)
        if node is not None and node.whiteout:
            return Change(S.DIFF_DELETED, path, real, node, S.WHITEOUT, "upper")
        if self.oci:
            parent, name = posixpath.split(real)
            marker = posixpath.join(parent, WH_PREFIX + name)
            mnode = self._node(self.upper, marker)
            if mnode is not None:
                return Change(S.DIFF_DELETED, path, marker, mnode, S.WHITEOUT, "upper")
        status = S.SHADOWED
        anc = posixpath.dirname(path)
        while anc != "/":
            e = self.merged.lookup(anc)
            if e is not None and e.status == S.OPAQUE:
                status = S.OPAQUE_HIDDEN
                break
            anc = posixpath.dirname(anc)
        return Change(S.DIFF_DELETED, path, old.real_path, self._node(old.layer, old.real_path), status, old.layer.name)


# ------------------------------------------------------------------------------------------ podman

# Paths `podman diff` never reports: the runtime's own mounts and files (podman libpod/diff.go).
PODMAN_INIT_PATHS = frozenset(
    {
        "/dev",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/proc",
        "/run",
        "/run/notify",
        "/run/.containerenv",
        "/run/secrets",
        "/sys",
        "/etc/mtab",
    }
)


def podman_changes(stack: Stack, errors: dict[str, str] | None = None) -> Iterator[Change]:
    """What ``podman diff`` prints for a container with this stack (the rules above), in its order.

    Raises :class:`EngineDiffError` where podman's own diff fails. Dirs of the upper that cannot be
    read are left out and recorded in ``errors`` when given.
    """
    if stack.upper is None:
        return
    p = _Native(stack)
    p.walk("/", stack.upper.path)
    if errors is not None:
        errors.update(p.errors)
    yield from (c for c in p.out if c.path not in PODMAN_INIT_PATHS)


# Permission problems are ours (podman runs as root), not podman's: a warning, not its failure.
_OURS = (errno.EACCES, errno.EPERM)


def _is_whiteout(st: os.stat_result) -> bool:
    return stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


class _Native:
    """containers-storage's ``changes(layers, rw, overlayDeletedFile, nil, overlayLowerContainsWhiteout)``."""

    def __init__(self, stack: Stack) -> None:
        assert stack.upper is not None
        self.upper = stack.upper
        self.layers = [layer.path for layer in stack.lowers]  # the raw lower dirs, topmost first
        self.opaque_xattr = f"{stack.xattr_ns}.overlay.opaque"
        self.ns = stack.xattr_ns
        self.out: list[Change] = []
        self.changed_dirs: set[str] = set()
        self.errors: dict[str, str] = {}

    def walk(self, path: str, real: str) -> None:
        """filepath.Walk: pre-order, names in byte order."""
        try:
            names = sorted(os.listdir(real), key=os.fsencode)
        except OSError as e:
            self.errors[real] = e.strerror or str(e)
            return
        for name in names:
            cpath, creal = join(path, name), posixpath.join(real, name)
            try:
                st = os.lstat(creal)
            except FileNotFoundError:
                continue  # gone since the listing
            except OSError as e:
                self.errors[creal] = e.strerror or str(e)
                continue
            self._visit(cpath, creal, st)
            if stat.S_ISDIR(st.st_mode):
                self.walk(cpath, creal)

    def _visit(self, path: str, real: str, f: os.stat_result) -> None:
        is_dir = stat.S_ISDIR(f.st_mode)
        if self._deleted(path, real, f):
            kind = S.DIFF_DELETED
        else:
            kind = S.DIFF_ADDED
            for layer in self.layers:
                if self._whited_out(layer, path):
                    break
                st = self._stat(layer + path)
                if st is None:
                    continue
                if stat.S_ISDIR(st.st_mode) and is_dir:
                    same = st.st_size == f.st_size and st.st_mode == f.st_mode
                    if same and _same_fs_time(f.st_mtime_ns, st.st_mtime_ns):
                        return  # the same dir: not recorded (nor counted as a changed dir)
                kind = S.DIFF_CHANGED
                break
        if is_dir:
            self.changed_dirs.add(path)
        if kind in (S.DIFF_ADDED, S.DIFF_DELETED):
            tail: list[str] = []
            parent = posixpath.dirname(path)
            while parent != "/":
                if parent not in self.changed_dirs:
                    tail.append(parent)
                    self.changed_dirs.add(parent)
                parent = posixpath.dirname(parent)
            for d in reversed(tail):
                self.out.append(self._change(S.DIFF_CHANGED, d, self.upper.real(d)))
        self.out.append(self._change(kind, path, real))

    def _deleted(self, path: str, real: str, f: os.stat_result) -> bool:
        """``overlayDeletedFile``: a whiteout, or an opaque dir that a lower layer has."""
        if _is_whiteout(f):
            return True
        if not stat.S_ISDIR(f.st_mode):
            return False
        try:
            opaque = os.getxattr(real, self.opaque_xattr, follow_symlinks=False)
        except OSError as e:
            if e.errno in (errno.ENODATA, errno.ENOTSUP):
                return False
            if e.errno in _OURS:
                self.errors[real] = e.strerror or str(e)
                return False
            problem = f"podman diff fails here: cannot read {self.opaque_xattr} ({e.strerror})"
            raise EngineDiffError(real, problem) from None
        if opaque != b"y":
            return False
        for layer in self.layers:
            st = self._stat(layer + path, enotdir_is_absent=True)
            if st is not None:
                return not _is_whiteout(st)
            if self._whited_out(layer, posixpath.dirname(path)):
                return False
        return False

    def _whited_out(self, layer: str, path: str) -> bool:
        """``overlayLowerContainsWhiteout`` for the path and each of its parents."""
        p = path
        while p not in ("", "/"):
            st = self._stat(layer + p, enotdir_is_absent=True)
            if st is not None and _is_whiteout(st):
                return True
            p = posixpath.dirname(p)
        return False

    def _stat(self, real: str, enotdir_is_absent: bool = False) -> os.stat_result | None:
        """Go's ``os.Stat`` (follows symlinks); None for ENOENT (and ENOTDIR where podman checks for it).

        Any other error makes podman's diff fail: so does this (but a permission problem, ours, is a warning).
        """
        try:
            return os.stat(real)
        except OSError as e:
            if e.errno == errno.ENOENT or (enotdir_is_absent and e.errno == errno.ENOTDIR):
                return None
            if e.errno in _OURS:
                self.errors[real] = e.strerror or str(e)
                return None
            raise EngineDiffError(real, f"podman diff fails here: stat: {e.strerror}") from None

    def _change(self, kind: str, path: str, real: str) -> Change:
        node = probe(real, self.ns)
        if kind == S.DIFF_DELETED:
            status = S.WHITEOUT if node is not None and node.whiteout else S.OPAQUE
        else:
            status = S.NEW if kind == S.DIFF_ADDED else S.COPIED_UP if node is None or not node.is_dir else S.MERGED
        return Change(kind, path, real, node, status, "upper")
