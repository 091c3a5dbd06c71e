"""Operations that make new layers: commit, squash, create an empty layer.

Each is two steps: a *plan* (pure: what would be created, and the stack that
results, in words a user confirms) and the *doing*, which writes only into
new directories and never touches an existing layer.

* **commit**: the upper becomes the new topmost lower; a fresh empty upper and
  work dir take its place (how image layers are born).
* **squash**: a range of adjacent lowers becomes one new layer dir with the
  range's whiteouts applied. Markers that still hide something in the layers
  below the range are kept (as a 0/0 char-device whiteout, or
  ``<ns>.overlay.opaque=y`` in the stack's xattr namespace); markers that hide
  nothing are dropped. A dir whose contents merged from another path below
  (a redirect) keeps an absolute ``<ns>.overlay.redirect``. Metacopy files
  become full copies. Mounting the new stack gives the same merged view.
"""

from __future__ import annotations

import contextlib
import errno
import os
import posixpath
import shutil
import stat
import tempfile
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from ..model import status as S
from ..model.errors import UfsError
from ..model.merge import Entry, OverlayView
from ..model.stack import Stack
from ..sources.engines import engine_storage
from .in_use import mounted_with

if TYPE_CHECKING:
    from .mount import MountManager
    from .record import MountHandle


@dataclass(frozen=True)
class Plan:
    """What an operation will do: dirs it creates (nothing else is written) and the stack afterwards."""

    action: str  # "commit" | "squash"
    creates: tuple[str, ...]
    result: Stack
    lines: tuple[str, ...]
    top: int = 0  # squash: first lower index of the range
    bottom: int = 0  # squash: last lower index of the range (inclusive)

    def describe(self) -> str:
        return "\n".join(self.lines)


@dataclass
class SquashResult:
    stack: Stack
    dest: str
    notes: list[str] = field(default_factory=list)
    whiteouts: int = 0
    opaque: int = 0
    dropped_markers: int = 0


def fresh_sibling(path: str, suffix: str = "") -> str:
    """A path next to ``path`` that does not exist yet: ``PATH.1``, ``PATH.2``, ..."""
    base = path.rstrip("/") + suffix
    n = 1
    while os.path.lexists(f"{base}.{n}"):
        n += 1
    return f"{base}.{n}"


class NeedsDestination(UfsError):
    """The layer is in an engine's own storage (``owner``), where ufs-tui never writes: the new dirs that the
    default would put next to it have to be named, outside it."""

    def __init__(self, path: str, owner: str) -> None:
        self.owner = owner
        super().__init__(f"{path} is in {owner}, where ufs-tui never writes: the new dirs must be named, outside it")


def _must_be_ours(path: str, what: str) -> None:
    """Refuse a new dir inside an engine's own storage (Docker's, containerd's, containers-storage)."""
    owner = engine_storage(path)
    if owner is not None:
        raise UfsError(
            f"{path}: the new {what} would be in {owner}, and ufs-tui never writes there: pick a dir outside it"
        )


def _must_be_new(path: str, what: str) -> None:
    if os.path.lexists(path):
        raise UfsError(f"{path}: {what} already exists (commit and squash only write to new dirs): pick a new path")
    parent = os.path.dirname(os.path.abspath(path)) or "/"
    if not os.path.isdir(parent):
        raise UfsError(f"{parent}: the parent of the new {what} does not exist")


def create_layer(path: str) -> str:
    """Create a new, empty layer dir (it must not exist yet). Returns its real path."""
    _must_be_new(path, "layer dir")
    os.mkdir(path, 0o755)
    return os.path.realpath(path)


# ------------------------------------------------------------------ commit


def plan_commit(stack: Stack, new_upper: str | None = None, new_work: str | None = None) -> Plan:
    """Plan a commit: the upper becomes lower:0; ``new_upper`` / ``new_work`` (default: next to the old) are created."""
    if stack.upper is None:
        raise UfsError("--upper: a read-only stack has no upper to commit")
    owner = engine_storage(stack.upper.path)
    if owner is not None and (new_upper is None or new_work is None):
        raise NeedsDestination(stack.upper.path, owner)
    new_upper = os.path.abspath(new_upper or fresh_sibling(stack.upper.path))
    new_work = os.path.abspath(new_work or fresh_sibling(stack.work or stack.upper.path, "" if stack.work else ".work"))
    for path, what in ((new_upper, "upper"), (new_work, "work dir")):
        _must_be_new(path, what)
        _must_be_ours(path, what)
    if new_upper == new_work:
        raise UfsError(f"{new_upper}: the new upper and work dir must be different dirs")
    lowers = [stack.upper.path, *(layer.path for layer in stack.lowers)]
    result = stack.relayered(lowers, new_upper, new_work)
    whose = f" (in {owner})" if owner else ""
    lines = [
        f"commit: the upper {stack.upper.path}{whose} becomes the topmost lower (lower:0); it is read where it is, "
        "never changed",
        *(
            f"the upper is in use by the overlay mounted at {target}: it keeps changing, and a lower that changes "
            "under a mounted overlay gives undefined results: stop it before mounting the new stack"
            for target in mounted_with(stack.upper.path)
        ),
        f"will create the new empty upper: {new_upper}",
        f"will create the new empty work dir: {new_work}",
        "nothing else is written",
    ]
    return Plan("commit", (new_upper, new_work), result, tuple(lines))


def commit(plan: Plan) -> Stack:
    """Do a planned commit: create the new empty upper and work dir. Returns the new stack."""
    assert plan.action == "commit"
    made: list[str] = []
    try:
        for path in plan.creates:
            _must_be_new(path, "dir")
            os.mkdir(path, 0o755)
            made.append(path)
    except BaseException:
        for path in reversed(made):
            with contextlib.suppress(OSError):
                os.rmdir(path)
        raise
    return plan.result


# ------------------------------------------------------------------ squash


def _lower_index(stack: Stack, name: str) -> int:
    try:
        layer = stack.layer_by_name(name)
    except KeyError:
        raise UfsError(f"{name}: no such layer (use lower:N, N from 0 = topmost lower)") from None
    if layer.role != "lower":
        raise UfsError(f"{name}: only normal lower layers can be squashed (commit the upper first)")
    return layer.index


def plan_squash(stack: Stack, top: str, bottom: str, dest: str) -> Plan:
    """Plan squashing lowers ``top``..``bottom`` (names like ``lower:0``, inclusive) into new dir ``dest``."""
    i, j = _lower_index(stack, top), _lower_index(stack, bottom)
    if i > j:
        i, j = j, i
    if i == j:
        raise UfsError(f"{top}..{bottom}: a squash needs at least two adjacent layers")
    dest = os.path.abspath(dest)
    _must_be_new(dest, "squashed layer dir")
    _must_be_ours(dest, "squashed layer dir")
    paths = [layer.path for layer in stack.lowers]
    lowers = paths[:i] + [dest] + paths[j + 1 :]
    result = stack.relayered(lowers, stack.upper.path if stack.upper else None, stack.work)
    markers = (
        f"whiteouts and opaque dirs kept only where they hide something in the layers below it, as "
        f"{stack.xattr_ns}.overlay.* markers"
        if j + 1 < len(paths)
        else "whiteouts and opaque dirs dropped: nothing is below the range for them to hide"
    )
    lines = (
        f"squash: lower:{i}..lower:{j} ({j - i + 1} layers) become one new layer; they are not changed:",
        *(f"  lower:{k} {paths[k]}" for k in range(i, j + 1)),
        f"will create: {dest} (the merged contents of the range; {markers})",
        *(
            (f"the upper {stack.upper.path} stays on top (with index=on the kernel may refuse it over new lowers)",)
            if stack.upper
            else ()
        ),
        "nothing else is written",
    )
    return Plan("squash", (dest,), result, lines, i, j)


def squash(stack: Stack, plan: Plan) -> SquashResult:
    """Do a planned squash. Builds into a hidden temp dir next to the destination, then renames it into place."""
    assert plan.action == "squash"
    dest = plan.creates[0]
    _must_be_new(dest, "squashed layer dir")
    i, j = plan.top, plan.bottom
    rng = [layer.path for layer in stack.lowers[i : j + 1]]
    below = [layer.path for layer in stack.lowers[j + 1 :]]
    r_view = OverlayView(stack.relayered(rng))
    b_view = OverlayView(stack.relayered(below)) if below else None
    f_view = OverlayView(stack.without_upper())
    parent = os.path.dirname(dest)
    tmp = tempfile.mkdtemp(prefix="." + os.path.basename(dest) + ".partial-", dir=parent)
    res = SquashResult(plan.result, dest)
    job = _Squasher(r_view, b_view, f_view, set(below), stack.xattr_ns, res)
    try:
        root_src = rng[0]
        job.copy_dir("/", tmp, "/" if b_view else None)
        _copy_meta(root_src, tmp, is_dir=True, res=res)
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return res


class _Squasher:
    def __init__(
        self,
        r_view: OverlayView,
        b_view: OverlayView | None,
        f_view: OverlayView,
        below_paths: set[str],
        ns: str,
        res: SquashResult,
    ) -> None:
        self.r = r_view
        self.b = b_view
        self.f = f_view
        self.below = below_paths
        self.ns = ns
        self.res = res

    def _below(self, bpath: str | None, name: str) -> Entry | None:
        if bpath is None or self.b is None:
            return None
        return self.b.lookup(posixpath.join(bpath, name))

    def copy_dir(self, path: str, out: str, bpath: str | None) -> None:
        """Copy merged dir ``path`` of the range into real dir ``out``.

        ``bpath`` is the path in the layers below the range whose contents merge
        into this dir in the full stack (None: nothing below merges in).
        """
        try:
            entries, hidden = self.r.list_all(path)
        except UfsError as err:
            raise UfsError(f"{path}: cannot read this dir of the range: {err}") from None
        for real, problem in self.r.errors.items():
            raise UfsError(f"{real}: cannot read this dir of the range: {problem}")
        visible = {e.name for e in entries}
        for e in entries:
            p = posixpath.join(path, e.name)
            dst = os.path.join(out, e.name)
            data: str | None = None
            if e.kind == "file" and e.status in (S.METACOPY, S.ERROR):
                fe = self.f.lookup(p)  # the data may live below the range
                if fe is None or fe.status == S.ERROR:
                    self.res.notes.append(f"{p}: skipped: metacopy file whose data the kernel cannot find either")
                    continue
                data = fe.source
            if e.is_dir:
                os.mkdir(dst, 0o700)
                child_b = self._child_below(p, bpath, e.name)
                if child_b is None and bpath is not None:
                    b = self._below(bpath, e.name)
                    if b is not None and b.is_dir:
                        self._set_marker(dst, "opaque", b"y")
                        self.res.opaque += 1
                elif child_b is not None and child_b != posixpath.join(bpath or "/", e.name):
                    self._set_marker(dst, "redirect", os.fsencode(child_b))
                self.copy_dir(p, dst, child_b)
                _copy_meta(e.real_path, dst, is_dir=True, res=self.res)
            else:
                self._copy_node(e, dst, data)
        written: set[str] = set()
        for h in hidden:
            if h.status != S.WHITEOUT or h.name in visible or h.name in written:
                continue
            if self._below(bpath, h.name) is not None:
                self._whiteout(os.path.join(out, h.name))
                written.add(h.name)
                self.res.whiteouts += 1
            else:
                self.res.dropped_markers += 1

    def _child_below(self, p: str, bpath: str | None, name: str) -> str | None:
        """The path below the range that merges into dir ``p`` in the full stack, or None."""
        if bpath is None:
            return None
        fe = self.f.lookup(p)
        if fe is None or not fe.sources:
            return None
        for layer, real in fe.sources:
            if layer.path in self.below:
                rel = real[len(layer.path.rstrip("/")) :] or "/"
                return rel
        return None

    def _copy_node(self, e: Entry, dst: str, data: str | None) -> None:
        src = e.real_path
        kind = e.kind
        if kind == "file":
            shutil.copyfile(data or e.source, dst, follow_symlinks=False)
            _copy_meta(src, dst, is_dir=False, res=self.res)
        elif kind == "symlink":
            os.symlink(os.readlink(src), dst)
            _copy_meta(src, dst, is_dir=False, res=self.res, link=True)
        elif kind == "fifo":
            os.mkfifo(dst, 0o600)
            _copy_meta(src, dst, is_dir=False, res=self.res)
        elif kind in ("chardev", "blockdev", "socket"):
            st = os.lstat(src)
            try:
                os.mknod(dst, stat.S_IFMT(st.st_mode) | 0o600, st.st_rdev)
            except OSError as err:
                raise UfsError(f"{src}: cannot copy this {kind}: {err.strerror} (devices need root)") from None
            _copy_meta(src, dst, is_dir=False, res=self.res)
        else:
            self.res.notes.append(f"{src}: skipped: unknown file type")

    def _whiteout(self, dst: str) -> None:
        try:
            os.mknod(dst, stat.S_IFCHR, 0)
            return
        except OSError as err:
            if err.errno not in (errno.EPERM, errno.EACCES):
                raise
        # The xattr form (zero-size file + whiteout xattr; the parent says it holds xattr whiteouts).
        open(dst, "wb").close()
        self._set_marker(dst, "whiteout", b"y")
        parent = os.path.dirname(dst)
        try:
            cur = os.getxattr(parent, f"{self.ns}.overlay.opaque")
        except OSError:
            cur = b""
        if cur != b"y":
            self._set_marker(parent, "opaque", b"x")

    def _set_marker(self, path: str, key: str, value: bytes) -> None:
        name = f"{self.ns}.overlay.{key}"
        try:
            os.setxattr(path, name, value, follow_symlinks=False)
        except OSError as err:
            raise UfsError(
                f"{path}: cannot write the marker {name}: {err.strerror}"
                + (" (trusted.* xattrs need root)" if self.ns == "trusted" else "")
            ) from None


def _is_overlay_xattr(name: str) -> bool:
    for prefix in ("trusted.overlay.", "user.overlay."):
        if name.startswith(prefix):
            return not name[len(prefix) :].startswith("overlay.")  # escaped names belong to nested overlays
    return False


def _copy_meta(src: str, dst: str, is_dir: bool, res: SquashResult, link: bool = False) -> None:
    """Owner, xattrs (not the overlay's own), mode and times of ``src`` onto ``dst`` (symlinks not followed)."""
    st = os.lstat(src)
    try:
        os.lchown(dst, st.st_uid, st.st_gid)
    except OSError:
        if os.geteuid() == 0:
            raise
    if not link:
        try:
            names = os.listxattr(src, follow_symlinks=False)
        except OSError:
            names = []
        for name in names:
            if _is_overlay_xattr(name):
                continue
            try:
                os.setxattr(dst, name, os.getxattr(src, name, follow_symlinks=False), follow_symlinks=False)
            except OSError as err:
                res.notes.append(f"{src}: xattr {name} not copied: {err.strerror}")
        os.chmod(dst, stat.S_IMODE(st.st_mode))
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def commit_remount(plan: Plan, manager: MountManager, handle: MountHandle, tries: int = 1) -> tuple[Stack, MountHandle]:
    """Commit a stack that ``manager`` has mounted: the new stack is checked first (nothing is created or
    unmounted when it would not mount), then the old one is unmounted, the new dirs created and the new
    stack mounted at the same target with the same backend and options. Failures raise
    :class:`~ufs_tui.core.mounting.mount.RemountError`, which says what is mounted afterwards (the old stack again
    when the new one fails; the new dirs stay if they were made: they are empty). ``tries``: how often a
    busy mount is tried (see :meth:`MountManager.remount`)."""
    assert plan.action == "commit"
    made: list[Stack] = []
    new = manager.remount(
        handle, plan.result, tries=tries, before_mount=lambda: made.append(commit(plan)), will_create=plan.creates
    )
    return made[0], new
