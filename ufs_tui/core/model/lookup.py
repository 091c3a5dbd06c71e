"""Looking one name up in a merged dir, as the kernel's ``ovl_lookup`` does, layer by layer.

A lookup walks the layers top-down (upper, then lowers in kernel order) and stops at the first
non-directory, whiteout or opaque directory; directories of the same name merge until then. Redirects
change the name (relative) or path (absolute) looked up in the layers below, and an absolute path is
walked component by component, each redirected dir on the way rewriting it; metacopy files take their
data from the next regular file found below (or from a data-only layer through an absolute redirect);
with ``index=on`` a hard-linked lower file shows the copy the inode index holds. Where the kernel fails
the lookup, so does the model, with the same errno.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable
from dataclasses import dataclass, replace

from . import status as S
from .entry import Entry, LayerVersion, Source, join
from .inode_index import InodeIndex, index_used
from .layer_reader import LayerReader
from .markers import Node, dot_component, redirect_problem
from .stack import Layer, Stack

# Lookups the kernel refuses because of mount options (OVERLAY-NOTES §2; tests/kernel/test_markers.py).
_NO_METACOPY = "metacopy file, but the mount has metacopy off: the kernel refuses this lookup (EPERM)"
_REFUSED = "redirect not followed (userxattr or redirect_dir=nofollow): the kernel refuses this lookup (EPERM)"

Probe = Callable[[Layer, str, str], Node | None]  # (layer, real parent dir, name) -> the node there


class _Refused(Exception):
    """The kernel refuses a lookup at a redirect it reads (the message says why, ``errno`` with what)."""

    def __init__(self, message: str, errno: str) -> None:
        super().__init__(message)
        self.errno = errno


@dataclass
class Resolution:
    """What one lookup found: the topmost copy, what merges or lies under it, and why it fails if it does."""

    top: Node | None = None
    top_layer: Layer | None = None
    top_dir: str | None = None  # the real dir holding ``top`` (a source's string, shared by siblings)
    sources: list[Source] | None = None
    data: tuple[Layer, Node] | None = None
    below: Node | None = None  # the first real entry under the top (for status)
    redirect: str | None = None
    error: str | None = None  # the kernel fails the lookup itself: the entry is an error
    errno: str = "EIO"  # ... with this errno
    index: str | None = None  # index=on: the real path of the inode index's copy shown (then ``top``)
    data_error: str | None = None  # the lookup works, reading the data fails
    data_errno: str = "ENOENT"  # ... with this errno
    versions: list[LayerVersion] | None = None


@dataclass
class _Walked:
    """What :meth:`Resolver.walk_abs` found in one layer."""

    node: Node | None  # the node at the path's end (None: nothing there)
    stop: bool  # a whiteout, non-dir or opaque dir on the way stops the lookup below
    real: str  # the real path walked in this layer
    next_path: str  # the path the layers below look up (rewritten by redirected dirs on the way)
    absolute: bool | None  # whether the last redirect the walk checked was absolute (None: it checked none)


class Resolver:
    """The lookup rules of one mount: the stack, its options, and the layers as read by a :class:`LayerReader`."""

    def __init__(self, stack: Stack, reader: LayerReader) -> None:
        self.stack = stack
        self.reader = reader
        # userxattr implies redirect_dir=nofollow: a redirect met where lookup goes on is then an error (EPERM).
        # Markers in user.overlay.* are honoured only by userxattr mounts: such a stack is one, however it was told.
        options = set(stack.options) | ({"userxattr"} if stack.xattr_ns == "user" else set())
        self.follow_redirects = not {"userxattr", "redirect_dir=nofollow"} & options
        # Likewise a metacopy file is EPERM with metacopy off: said, or implied by userxattr, nfs_export=on, or a
        # redirect_dir other than on (without metacopy=on the kernel turns it off); nothing said: assume on.
        off = {"userxattr", "metacopy=off", "nfs_export=on"}
        if "metacopy=on" not in options:
            off |= {"redirect_dir=follow", "redirect_dir=nofollow", "redirect_dir=off"}
        self.metacopy_on = not off & options
        self.index = self.read_index()

    def read_index(self) -> InodeIndex | None:
        """index=on: the inode index, by which lower files copied up through another name show the copy
        (None: no index=on, or nothing in the index)."""
        work, stack = self.stack.work, self.stack
        if work is None or stack.upper is None or not index_used(stack.options):
            return None
        return InodeIndex.read(work, with_dirs="nfs_export=on" in stack.options)

    def resolve(
        self,
        psources: tuple[Source, ...],
        name: str,
        get: Probe,
        want_versions: bool,
        present: list[Source] | None = None,
    ) -> Resolution:
        """Look ``name`` up under a merged dir whose per-layer dirs are ``psources``.

        ``present``, from a readdir of every source, lists the sources that hold ``name``: only
        those are probed until a redirect changes the name looked up.
        """
        res = _Lookup(self, psources, name, get, want_versions, present).run()
        if self.index is not None:
            self._through_index(res)
        return res

    def entry(self, path: str, res: Resolution) -> Entry | None:
        """The merged entry a lookup found at ``path`` (None: nothing there)."""
        top, layer = res.top, res.top_layer
        if top is None or layer is None:
            return None
        extra: dict[str, str] | None = None
        if res.redirect:
            extra = {"redirect": res.redirect}
        if res.index is not None:
            extra = extra or {}
            extra["index"] = res.index
        if res.data is not None:
            extra = extra or {}
            extra["data"] = res.data[1].path
            extra["data_layer"] = res.data[0].name
        problem = res.error or res.data_error
        if problem:
            extra = extra or {}
            extra["error"] = problem
            extra["errno"] = res.errno if res.error else res.data_errno
        status = classify(top, layer, res.below, len(res.sources or ()), res.error, res.redirect is not None)
        return Entry(
            path,
            top.kind,
            top.mode,
            top.size,
            top.target,
            layer,
            status,
            res.top_dir if res.top_dir is not None else posixpath.dirname(top.path),
            # The kernel fails the lookup of an error entry: a dir it refuses cannot be listed either.
            tuple(res.sources) if res.sources is not None and res.error is None else None,
            extra,
        )

    def redirect_read(self, layer: Layer, psources: tuple[Source, ...]) -> bool:
        """Whether the kernel reads a dir's redirect (``d.last`` in ``ovl_lookup``). Following redirects: in the
        upper and in every normal lower but the bottom one. Not following (nofollow, userxattr): only where the
        lookup goes on below, in a lower of the parent dir's stack under ``layer``; reading one there fails the
        lookup (EPERM), whatever the redirect points at."""
        if not self.follow_redirects:
            below = (src for src, _ in psources if src.role == "lower")
            return any(layer.role == "upper" or src.index > layer.index for src in below)
        return layer.role == "upper" or (layer.role == "lower" and layer.index < len(self.stack.lowers) - 1)

    def walk_abs(self, layer: Layer, abs_path: str, get: Probe, reads: bool) -> _Walked:
        """Look an absolute redirect path up in one layer, component by component (``ovl_lookup_layer``).

        ``reads``: the kernel checks the dirs on the way for opaque and redirect xattrs (not in the last
        layer it looks in, ``d->last``). A dir on the way that is itself redirected rewrites the path the
        layers below look up (its redirect replaces the path up to it; the rest of the walk in this layer
        goes on below the dir itself), as a chain of renames over generations of layers leaves them.
        """
        done: list[str] = []  # the components looked up so far, as the layers below will see them
        rest = [p for p in abs_path.split("/") if p]
        out = _Walked(None, False, layer.path, abs_path, None)
        while rest:
            part = rest.pop(0)
            if part in (".", ".."):  # reached: every component before it is a dir in this layer
                raise _Refused(dot_component(abs_path), "EACCES")
            parent, out.real = out.real, posixpath.join(out.real, part)
            if not rest:
                out.node = get(layer, parent, part)
                out.stop = out.stop or (out.node is not None and out.node.whiteout is not None)
                out.next_path = "/" + "/".join([*done, part])
                return out
            node = self.reader.probe_direct(layer, parent, part)
            if node is None or node.whiteout or not node.is_dir:
                out.stop = out.stop or node is not None
                out.next_path = "/" + "/".join([*done, part, *rest])  # (rewritten by the dirs before it)
                return out
            done.append(part)
            if not reads or node.opaque:
                out.stop = out.stop or (reads and node.opaque)
                continue
            out.absolute = False  # each check of a redirect says anew whether the last one was absolute
            if node.redirect is not None:
                problem = redirect_problem(node.redirect)
                if problem is not None:
                    raise _Refused(problem, "EINVAL")
                if node.redirect.startswith("/"):
                    done, out.stop, out.absolute = [p for p in node.redirect.split("/") if p], False, True
                else:
                    done[-1] = node.redirect
        return out

    def data_lookup(self, layer: Layer, abs_path: str) -> tuple[Node | None, str]:
        """A metacopy file's data in data-only ``layer`` at ``abs_path``, as the kernel's ``vfs_path_lookup``
        (beneath the layer root, no symlinks) finds it: the regular file, or None and the errno."""
        real = layer.path
        parts = [p for p in abs_path.split("/") if p and p != "."]
        for k, part in enumerate(parts):
            if part == "..":
                return None, "EXDEV"  # LOOKUP_BENEATH: no way up (the root's ".." included)
            parent, real = real, posixpath.join(real, part)
            node = self.reader.probe_direct(layer, parent, part)
            if node is None or node.whiteout == "oci":
                return None, "ENOENT"
            if k == len(parts) - 1:  # (not followed: a symlink here is simply not a regular file)
                return (node, "") if node.kind == "file" else (None, "ENOENT")  # only a regular file is data
            if node.kind == "symlink":
                return None, "ELOOP"  # LOOKUP_NO_SYMLINKS: a symlink on the way is not followed
            if not node.is_dir:
                return None, "ENOTDIR"
        return None, "ENOENT"

    def _through_index(self, res: Resolution) -> None:
        """``index=on``: a lower non-dir the inode index holds a copy of shows that copy, the one copied-up
        inode of all its names (:mod:`.inode_index`); the lower's copy is then shadowed (or its data). Under
        ``nfs_export=on`` a lower dir the index says was copied up, with no upper dir, fails (EIO)."""
        top, layer, index, upper = res.top, res.top_layer, self.index, self.stack.upper
        if top is None or layer is None or layer.role != "lower" or res.error or not index or not upper:
            return
        if top.is_dir and not index.dirs:
            return
        copy = index.copy_of(top.path)
        node = self.reader.probe(copy, self.stack.xattr_ns) if copy is not None else None
        if copy is None or node is None:
            return
        if node.whiteout or node.kind != top.kind or top.is_dir:
            what = "whiteout" if node.whiteout else node.kind
            res.error, res.errno = f"the inode index has a {what} for this {top.kind} ({copy}): lookup fails", "EIO"
            return
        if node.metacopy and res.data is None:
            res.data = (layer, top)  # a metadata-only copy: the data is still the lower inode's
        res.below, res.top, res.top_layer, res.top_dir, res.index = top, node, upper, index.path, copy
        if res.versions is not None:
            fate = S.F_DATA if node.metacopy else S.F_SHADOWED
            res.versions = [LayerVersion(upper, copy, node, S.VISIBLE)] + [
                replace(v, fate=fate, by=upper) if v.fate == S.VISIBLE else v for v in res.versions
            ]


class _Lookup:
    """One lookup in progress: what the kernel's walk carries from one layer to the next."""

    def __init__(
        self,
        rules: Resolver,
        psources: tuple[Source, ...],
        name: str,
        get: Probe,
        want_versions: bool,
        present: list[Source] | None,
    ) -> None:
        self.rules, self.psources, self.get, self.want = rules, psources, get, want_versions
        self.res = Resolution()
        self.versions: list[LayerVersion] = []
        self.seq: list[tuple[Layer, str | None]] = list(psources if present is None else present)
        self.i = 0
        self.name = name  # the name looked up in the next layers (a relative redirect changes it)
        self.abs_path: str | None = None  # ... or the absolute path (an absolute redirect)
        self.last_abs = False  # the last redirect followed was absolute (data-only layers are looked up then)
        self.stop_fate: str | None = None  # lookup stopped: what that makes of the copies below
        self.stopper: Layer | None = None
        self.need_data = False  # a metacopy file above looks for its data
        self.no_data = ""  # why the lookup stopped without it (for the error)
        self.below_done = True  # an upper non-dir keeps looking for what it sits on (copied-up vs new)
        # A metacopy file with metacopy off, or a redirect not followed: the kernel refuses it (EPERM) only
        # when its lookup goes on to another lower, or ends other than in the data-only layers.
        self.refusal: _Refused | None = None

    def run(self) -> Resolution:
        res = self.res
        try:
            while self.i < len(self.seq):
                layer, pdir = self.seq[self.i]
                self.i += 1
                if self.stop_fate is not None and not self.want and self.below_done:
                    break
                if self.refusal is not None and self.stop_fate is None:
                    raise self.refusal
                self._step(layer, pdir)
            if self.refusal is not None and not self._to_data_layers():
                raise self.refusal
        except _Refused as refusal:
            res.error, res.errno = str(refusal), refusal.errno
            self.need_data = False
        self._data_layers()
        if self.need_data and (res.data is None or res.data[1].metacopy):
            res.error = "metacopy file has no data below it" + self.no_data
        if self.want:
            res.versions = self.versions
        return res

    def _step(self, layer: Layer, pdir: str | None) -> None:
        """Look in one more layer."""
        if self.abs_path is not None:
            # Dirs on the way are checked but in the bottom lower (``d->last``), which a non-dir lookup with
            # data-only layers never sets.
            top = self.res.top
            reads = self.rules.redirect_read(layer, ()) or (
                top is not None and not top.is_dir and bool(self.rules.stack.data_layers)
            )
            walked = self.rules.walk_abs(layer, self.abs_path, self.get, reads)
            node, walk_stop, path, self.abs_path = walked.node, walked.stop, walked.real, walked.next_path
            if walked.absolute is not None:
                self.last_abs = walked.absolute
        else:
            assert pdir is not None
            path = pdir + "/" + self.name
            node, walk_stop = self.get(layer, pdir, self.name), False
        res = self.res
        if node is None:
            if walk_stop and self.stop_fate is None:
                self._stop(S.F_OPAQUE_HIDDEN, layer)
        elif self.stop_fate is not None:
            if not self.below_done:
                self.below_done = True
                if not node.whiteout:
                    res.below = node
            self._version(layer, path, node, self.stop_fate, self.stopper)
        elif node.whiteout:
            self._version(layer, path, node, S.F_WHITEOUT)
            self._stop(S.F_WHITED_OUT, layer)
            if self.need_data:
                self.no_data = " (whited out)"
        elif res.top is None:
            self._top(layer, pdir, path, node, walk_stop)
        else:
            if res.below is None:
                res.below = node
            if res.top.is_dir:
                self._under_dir(layer, path, node, walk_stop)
            elif self.need_data:
                self._data(layer, path, node)
            else:
                self._version(layer, path, node, self.stop_fate or S.F_SHADOWED, self.stopper or res.top_layer)

    def _top(self, layer: Layer, pdir: str | None, path: str, node: Node, walk_stop: bool) -> None:
        """The topmost copy found."""
        res = self.res
        res.top, res.top_layer = node, layer
        res.top_dir = pdir if self.abs_path is None else None
        self._version(layer, path, node, S.VISIBLE)
        if node.is_dir:
            res.sources = [(layer, path)]
            if self._dir_stops(node, layer, walk_stop, top=True):
                self._stop(S.F_OPAQUE_HIDDEN, layer)
        elif node.metacopy:
            if not self.rules.metacopy_on:
                self.refusal = self.refusal or _Refused(_NO_METACOPY, "EPERM")
            self.need_data = True
            if node.redirect is not None:
                res.redirect = node.redirect
                self._follow(node.redirect, layer)
        else:
            self._stop(S.F_SHADOWED, layer)
            self.below_done = layer.role != "upper"

    def _under_dir(self, layer: Layer, path: str, node: Node, walk_stop: bool) -> None:
        """A copy under a dir: another dir merges in; anything else is shadowed and stops the lookup."""
        res = self.res
        if node.is_dir:
            assert res.sources is not None
            res.sources.append((layer, path))
            self._version(layer, path, node, S.F_MERGED)
            if self._dir_stops(node, layer, walk_stop, top=False):
                self._stop(S.F_OPAQUE_HIDDEN, layer)
        else:
            self._version(layer, path, node, S.F_SHADOWED, res.top_layer)
            self._stop(S.F_SHADOWED, res.top_layer)

    def _data(self, layer: Layer, path: str, node: Node) -> None:
        """A copy under a metacopy file: its data if a regular file (itself maybe metacopy, looking further)."""
        res = self.res
        if node.kind == "file":
            res.data = (layer, node)
            self._version(layer, path, node, S.F_DATA)
            if node.metacopy:
                self.last_abs = False  # (the kernel checks its redirect: none is not absolute)
                if node.redirect is not None:
                    self._follow(node.redirect, layer)
                return
            self.need_data = False
        else:  # the lookup stops here with no data (data-only layers may still have it: _data_layers)
            self.no_data = f" (a {node.kind} is there)"
            self._version(layer, path, node, S.F_SHADOWED, res.top_layer)
        self._stop(S.F_SHADOWED, res.top_layer)

    def _to_data_layers(self) -> bool:
        """Whether the lookup ends in the data-only layers: a metacopy copy in a normal lower (the kernel has
        counted a lower entry) whose last redirect is absolute still wants its data."""
        res = self.res
        in_lower = res.data is not None or (res.top_layer is not None and res.top_layer.role == "lower")
        return self.need_data and in_lower and self.last_abs and bool(self.rules.stack.data_layers)

    def _data_layers(self) -> None:
        """The kernel looks data-only layers up lazily (:meth:`_to_data_layers`): the entry stands; only
        opening it fails when no data layer has the file."""
        res, data_layers = self.res, self.rules.stack.data_layers
        if not self._to_data_layers():
            return
        assert self.abs_path is not None
        errno = "ENOENT"
        for layer in data_layers:
            path = layer.real(self.abs_path)
            node, errno = self.rules.data_lookup(layer, self.abs_path)
            if node is not None:
                res.data = (layer, node)
                self._version(layer, path, node, S.F_DATA)
                break
        else:  # the kernel reports what the last data layer's lookup said
            res.data_error = f"no data-only layer has {self.abs_path}: opening the file fails ({errno})"
            res.data_errno = errno
        self.need_data = False

    def _dir_stops(self, node: Node, layer: Layer, walk_stop: bool, top: bool) -> bool:
        """A dir found: follow its redirect where the kernel reads it; whether lookup stops below it
        (opaque; or an opaque dir on an absolute path's way, unless this dir's redirect is absolute)."""
        if node.opaque:
            return True
        if node.redirect is None or not self.rules.redirect_read(layer, self.psources):
            return walk_stop
        if top:
            self.res.redirect = node.redirect
        self._follow(node.redirect, layer)
        return walk_stop and not node.redirect.startswith("/")

    def _follow(self, value: str, layer: Layer) -> None:
        """The kernel reads this redirect: later layers are looked up where it points (or it refuses)."""
        problem = redirect_problem(value)
        if problem is not None:
            raise _Refused(problem, "EINVAL")
        if not self.rules.follow_redirects:
            self.refusal = self.refusal or _Refused(_REFUSED, "EPERM")
        self.last_abs = value.startswith("/")
        if self.last_abs:
            stack = self.rules.stack
            below = stack.lowers if layer.role == "upper" else stack.lowers[layer.index + 1 :]
            # As the kernel walks it, not normalised: a ".." in it fails the lookup where it is reached.
            self.seq, self.i, self.abs_path = [(lower, None) for lower in below], 0, value
        elif "/" in value:
            pass  # the kernel rejects such a relative redirect (redirect_problem said so above)
        elif self.abs_path is not None:
            self.abs_path = join(posixpath.dirname(self.abs_path), value)
        else:
            self.seq = [src for src in self.psources if src[0].role != "upper" and _below(src[0], layer)]
            self.i, self.name = 0, value
            if value in (".", "..") and self.i < len(self.seq):
                raise _Refused(dot_component(value), "EACCES")  # the next layer is asked for "." or ".."

    def _stop(self, fate: str, by: Layer | None) -> None:
        self.stop_fate, self.stopper = fate, by

    def _version(self, layer: Layer, path: str, node: Node, fate: str, by: Layer | None = None) -> None:
        if self.want:
            self.versions.append(LayerVersion(layer, path, node, fate, by))


def _below(src: Layer, layer: Layer) -> bool:
    """Whether lower ``src`` lies below ``layer`` (every lower lies below the upper)."""
    return layer.role == "upper" or src.index > layer.index


def classify(
    top: Node, layer: Layer, below: Node | None, nsources: int, error: str | None, redirected: bool = False
) -> str:
    """The status of a merged entry from its topmost copy and what lies under it.

    ``redirected``: the kernel followed a redirect of the top copy (a dir's, or a metacopy file's; a
    plain file's stray redirect xattr, or one in the bottom lower, is never read). A metacopy file is
    ``metacopy`` even when renamed (its redirect is in ``Entry.redirect``).
    """
    if error:
        return S.ERROR
    if top.is_dir and top.opaque:
        return S.OPAQUE
    if top.metacopy:
        return S.METACOPY
    if redirected:
        return S.REDIRECT
    if layer.role != "upper":
        return S.LOWER
    if top.is_dir:
        if nsources > 1:
            return S.MERGED
        return S.REPLACED if below is not None else S.NEW
    if below is None:
        return S.NEW
    if below.is_dir:
        return S.REPLACED
    return S.COPIED_UP
