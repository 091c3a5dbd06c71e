"""Reading the layers of a stack: names, markers and file data, from dirs on disk or an image archive's tar.

Every read the model makes of a layer goes through one :class:`LayerReader`: it knows which layers are
dirs and which are read through a :class:`LayerFS` (an archive's layer, in place), decodes OCI ``.wh.``
names when the stack says so, and records the dirs it could not read (:attr:`LayerReader.errors`).
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable

from . import dirscan
from .content import DEFAULT_CAP, Content, content_of, read_content
from .entry import Source
from .markers import WH_FUSE_OPAQUE, WH_OPAQUE, WH_PREFIX, Node, probe
from .stack import Layer, LayerFS, Stack, within


class DirListing:
    """Names in one real directory, from one readdir; OCI ``.wh.`` names split out."""

    __slots__ = ("names", "wh", "opaque")

    def __init__(self, names: dict[str, str | None], wh: set[str], opaque: bool) -> None:
        self.names = names  # name -> kind hint from d_type ("dir", "symlink", ... or None)
        self.wh = wh  # names whited out by ``.wh.NAME`` (OCI form)
        self.opaque = opaque  # ``.wh..wh..opq`` present (OCI form)


def _dtype_kind(de: os.DirEntry[str]) -> str | None:
    try:
        if de.is_symlink():
            return "symlink"
        if de.is_dir(follow_symlinks=False):
            return "dir"
        if de.is_file(follow_symlinks=False):
            return "file"
    except OSError:
        return None
    return None


class LayerReader:
    """The layers of ``stack``, read: one object per path (:meth:`probe`), dir listings, file data."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.ns = stack.xattr_ns
        self.oci = "oci-whiteouts" in stack.options
        self.errors: dict[str, str] = {}  # real dir -> problem (unreadable dirs met while listing)
        # Layers that are not dirs on disk (image archives) are read through their LayerFS.
        self.fs: dict[str, LayerFS] = {layer.path: layer.fs for layer in stack.all_layers if layer.fs is not None}
        self._last_fs: tuple[str, LayerFS | None] = ("\0", None)  # (no path starts with a NUL)
        self.probe: Callable[..., Node | None] = self._fs_probe if self.fs else probe
        self.lexists: Callable[[str], bool] = self._fs_lexists if self.fs else os.path.lexists

    # ---------------------------------------------------------------- one path
    def probe_direct(self, layer: Layer, parent: str, name: str) -> Node | None:
        """Probe one path with no readdir at hand (single lookups and redirects)."""
        node = self.probe(posixpath.join(parent, name), self.ns)
        if self.oci:
            wh = self.lexists(posixpath.join(parent, WH_PREFIX + name))
            if node is None:
                if wh:
                    node = Node(posixpath.join(parent, WH_PREFIX + name), None)
                    node.kind = "file"
                    node.whiteout = "oci"
                return node
            self.oci_adjust(node, wh)
        return node

    def oci_adjust(self, node: Node, whited_in_own_layer: bool) -> None:
        """OCI form: a dir is opaque when its own layer whites it out or holds ``.wh..wh..opq`` in it."""
        if node.is_dir and (
            whited_in_own_layer
            or self.lexists(posixpath.join(node.path, WH_OPAQUE))
            or self.lexists(posixpath.join(node.path, WH_FUSE_OPAQUE))
        ):
            node.opaque = True

    # ---------------------------------------------------------------- dirs
    def read_sources(self, sources: tuple[Source, ...], types: bool = True) -> list[dict[str, int] | None]:
        """Each source dir's names and d_types (:func:`dirscan.read_dirs`), None where it cannot be read."""
        reals = [real for _, real in sources]
        got = dirscan.read_dirs(reals, types)
        return [self._layer_listing(real, listing) for real, listing in zip(reals, got, strict=True)]

    def _layer_listing(self, real: str, got: dict[str, int] | OSError) -> dict[str, int] | None:
        """A layer dir's listing as read, or the error reading it gave: None if the dir is gone, or
        unreadable (then recorded in :attr:`errors` until it can be read again)."""
        if isinstance(got, OSError):
            if not isinstance(got, FileNotFoundError | NotADirectoryError):
                self.errors[real] = got.strerror or str(got)
            return None
        if self.errors:
            self.errors.pop(real, None)  # readable again
        return got

    def read_dir(self, real: str) -> DirListing | None:
        """One layer dir's names with kind hints (OCI whiteouts split out); None if gone or unreadable."""
        fs = self._fs_of(real) if self.fs else None
        try:
            if fs is not None:
                got = fs.listdir(real)
                if got is None:
                    return None
                items = list(got.items())
            else:
                with os.scandir(real) as it:
                    items = [(de.name, _dtype_kind(de)) for de in it]
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as e:
            self.errors[real] = e.strerror or str(e)
            return None
        if self.errors:
            self.errors.pop(real, None)  # readable again
        names: dict[str, str | None] = {}
        wh: set[str] = set()
        opaque = False
        for name, kind in items:
            if self.oci and name.startswith(WH_PREFIX):
                if name in (WH_OPAQUE, WH_FUSE_OPAQUE):
                    opaque = True
                else:
                    wh.add(name[len(WH_PREFIX) :])
                continue
            names[name] = kind
        return DirListing(names, wh, opaque)

    # ---------------------------------------------------------------- file data
    def read_content(self, real: str, cap: int = DEFAULT_CAP) -> Content:
        """What the regular file at ``real`` (a path in one of the layers) holds, up to ``cap`` bytes: read from
        disk, or through its layer's LayerFS (an archive's layer tar, in place)."""
        fs = self._fs_of(real) if self.fs else None
        if fs is None:
            return read_content(real, cap)
        node = fs.probe(real)
        if node is None:
            return Content("error", message="No such file or directory")
        if node.kind != "file":
            return Content("none", size=node.size, message=f"a {node.kind}: not opened")
        try:
            data = fs.read(real, cap + 1)
        except OSError as e:
            return Content("error", size=node.size, message=e.strerror or str(e))
        return content_of(data, node.size, cap)

    def in_layer_fs(self, real: str) -> bool:
        """Whether ``real`` is read through a LayerFS (a member of an image archive), not from a dir on disk."""
        return bool(self.fs) and self._fs_of(real) is not None

    # ---------------------------------------------------------------- archives
    def _fs_of(self, path: str) -> LayerFS | None:
        root, fs = self._last_fs  # (paths come in runs of one layer's: that one is tried first)
        if within(path, root):
            return fs
        for root, fs in self.fs.items():
            if within(path, root):
                self._last_fs = (root, fs)
                return fs
        return None

    def _fs_probe(self, path: str, ns: str = "trusted", hint_kind: str | None = None) -> Node | None:
        fs = self._fs_of(path)
        return probe(path, ns, hint_kind) if fs is None else fs.probe(path, ns, hint_kind)

    def _fs_lexists(self, path: str) -> bool:
        fs = self._fs_of(path)
        return os.path.lexists(path) if fs is None else fs.lexists(path)
