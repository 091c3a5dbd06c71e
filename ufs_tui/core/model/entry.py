"""One merged entry and one layer's version of a name: what the model says about a path.

:class:`Entry` is kept small (a walk of 100,000 entries holds them all); :class:`LayerVersion` and
:class:`Hidden` say what each layer holds and why the merged view does not show it.
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from . import status as S
from .markers import Node
from .stack import Layer

Source = tuple[Layer, str]  # (layer, real directory path in that layer)


class Entry:
    """One entry of a merged directory: the topmost copy of a name, classified.

    Only what a listing needs is kept, and shared where it can be (a full walk of 100k entries
    must stay small): the name is a slice of ``path``; ``(layer, srcdir)`` is the parent's source
    tuple, shared by siblings; ``(kind, mode, status)`` is one interned tuple for all entries
    alike; target, sources and extra (rare) share one slot. :meth:`OverlayView.versions` and
    :func:`probe` give the rest.

    The plain files and symlinks of a listing (:meth:`OverlayView.list_dir`, :meth:`OverlayView.walk`)
    are *lazy*: what decides the merged view (name, kind, status, layer, from readdir's d_type and
    the markers) is known at once, but ``mode``, ``size`` and a symlink's ``target`` are read (one
    ``lstat``, plus ``readlink`` for a symlink, of :attr:`real_path`) on first use and kept. Until
    then ``_size`` is None and so is the mode in the class tuple. A copy that vanished by then
    reads as mode 0, size 0.
    """

    __slots__ = ("path", "_size", "_src", "_cls", "_more")

    def __init__(
        self,
        path: str,
        kind: str,
        mode: int,
        size: int,
        target: str | None,
        layer: Layer,
        status: str,
        srcdir: str,
        sources: tuple[Source, ...] | None = None,
        extra: dict[str, str] | None = None,
    ) -> None:
        self.path = path  # absolute in the merged view ("/" for the root)
        self._size: int | None = size  # None until a lazy entry is loaded
        self._src: Source = (layer, srcdir)
        self._cls: tuple[str, int | None, str] = _cls(kind, mode, status)
        # None (most entries), a symlink's target, or (target, sources, extra)
        self._more: str | tuple[str | None, tuple[Source, ...] | None, dict[str, str] | None] | None = (
            target if sources is None and extra is None else (target, sources, extra)
        )

    @classmethod
    def _plain(
        cls, path: str, size: int | None, src: Source, klass: tuple[str, int | None, str], target: str | None
    ) -> Entry:
        """The fast constructor of the scans: shared ``src`` and interned ``klass`` (a lazy entry:
        ``size`` None, ``klass`` with mode None, ``target`` None)."""
        e = cls.__new__(cls)
        e.path = path
        e._size = size
        e._src = src
        e._cls = klass
        e._more = target
        return e

    def _load(self) -> None:
        """Read the mode, size and symlink target of a lazy entry (see the class doc)."""
        kind, _, status = self._cls
        real = self.real_path
        try:
            st = os.lstat(real)
        except OSError:
            st = None
        target = None
        if kind == "symlink" and st is not None:
            try:
                target = os.fsdecode(os.readlink(real))
            except OSError:
                target = None
        # In this order, for a reader in another thread: a set ``_size`` means all is there.
        self._more = target
        self._cls = _cls(kind, 0 if st is None else st.st_mode & 0o7777, status)
        self._size = 0 if st is None else st.st_size

    @property
    def size(self) -> int:
        size = self._size
        if size is None:
            self._load()
            size = self._size
            assert size is not None
        return size

    @property
    def name(self) -> str:
        path = self.path
        return path[path.rfind("/") + 1 :]

    @property
    def kind(self) -> str:
        return self._cls[0]

    @property
    def mode(self) -> int:
        """Permission bits (``stat.S_IMODE``)."""
        mode = self._cls[1]
        if mode is None:
            self._load()
            mode = self._cls[1]
            assert mode is not None
        return mode

    @property
    def status(self) -> str:
        return self._cls[2]

    @property
    def layer(self) -> Layer:
        """The layer of the topmost copy."""
        return self._src[0]

    @property
    def srcdir(self) -> str:
        """The real dir in :attr:`layer` holding this name."""
        return self._src[1]

    @property
    def target(self) -> str | None:
        """A symlink's target."""
        if self._cls[1] is None and self._cls[0] == "symlink":
            self._load()
        more = self._more
        return more if more is None or isinstance(more, str) else more[0]

    @property
    def sources(self) -> tuple[Source, ...] | None:
        """For dirs: every (layer, real dir) that merges into it, top-down."""
        more = self._more
        return None if more is None or isinstance(more, str) else more[1]

    @property
    def extra(self) -> dict[str, str] | None:
        """Rare facts: "redirect", "data" (real path of metacopy data), "data_layer", "error", "errno", "index"
        (index=on: the inode index's copy this name shows, in the work dir)."""
        more = self._more
        return None if more is None or isinstance(more, str) else more[2]

    @property
    def is_dir(self) -> bool:
        return self._cls[0] == "dir"

    @property
    def real_path(self) -> str:
        """The real path of the topmost copy (the one whose metadata the merged view shows)."""
        more = self._more
        if more.__class__ is tuple and more[2] and "index" in more[2]:
            return more[2]["index"]
        return posixpath.join(self._src[1], self.name) if self.path != "/" else self._src[1]

    @property
    def source(self) -> str:
        """The real path whose *data* backs this entry (for metacopy: the data's layer)."""
        extra = self.extra
        if extra and "data" in extra:
            return extra["data"]
        return self.real_path

    @property
    def redirect(self) -> str | None:
        extra = self.extra
        return extra.get("redirect") if extra else None

    @property
    def errno(self) -> str | None:
        """For an entry whose lookup the kernel fails (status error): the errno it fails with ("EPERM"...)."""
        extra = self.extra
        return extra.get("errno") if extra and self.status == S.ERROR else None

    @property
    def data_error(self) -> str | None:
        """Why opening the file fails although the entry itself resolves (a metacopy file whose data is in
        no data-only layer: the kernel looks for it only on open), else None."""
        extra = self.extra
        return extra.get("error") if extra and self.status != S.ERROR else None

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        return f"Entry({self.path!r}, {self.kind}, {self.status}, {self.layer.name})"


_CLASSES: dict[tuple[str, int | None, str], tuple[str, int | None, str]] = {}
_LOWER_CLASSES: dict[int, tuple[str, int | None, str]] = {}  # st_mode -> (kind, mode, "lower")


def _cls(kind: str, mode: int | None, status: str) -> tuple[str, int | None, str]:
    """The one ``(kind, mode, status)`` tuple for entries alike."""
    key = (kind, mode, status)
    return _CLASSES.setdefault(key, key)


@dataclass(frozen=True)
class LayerVersion:
    """One layer's version of a name and its fate in the merged view."""

    layer: Layer
    path: str  # real path in the layer
    node: Node
    fate: str  # a status.FATES value
    by: Layer | None = None  # the layer whose marker or entry decided the fate


@dataclass(frozen=True)
class Hidden:
    """Something in a layer that the merged view does not show (``tree --all``)."""

    name: str
    layer: Layer
    path: str  # real path
    status: str  # whiteout | whited-out | opaque-hidden | shadowed
    by: Layer | None


def normpath(path: str) -> str:
    """Merged paths are absolute, ``/``-separated, without a trailing slash ("/" for the root)."""
    if not path or path == "/":
        return "/"
    p = posixpath.normpath("/" + path.lstrip("/"))
    return "/" if p == "//" else p


def join(parent: str, name: str) -> str:
    return "/" + name if parent == "/" else parent + "/" + name
