"""What the details panel says about one path of a pane: every layer's version and its fate, the metadata of
the version shown, its overlay xattrs, its content, and its diff against the version it replaces.

:func:`build_details` reads through an :class:`~ufs_tui.core.explorer.Explorer` (under its lock); the UI
renders the :class:`Details` it returns. No textual here.
"""

from __future__ import annotations

import stat as _stat
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .model import status as S
from .model.content import Content, owner, unified_diff
from .model.errors import StackError
from .model.inode_index import shared_copy_words
from .model.markers import explain_xattr, overlay_xattrs
from .model.merge import Entry, LayerVersion, OverlayView, normpath
from .model.readdir import ReaddirFault
from .model.stack import Layer
from .panes import FATE_STATUS, KERNEL_DIFFERS, where

if TYPE_CHECKING:
    from .explorer import Explorer

MERGED = "merged"
PaneSource = Layer | None  # None: the merged view
CONTENT_CAP = 256 * 1024


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


def build_details(ex: Explorer, source: PaneSource, path: str, alias: Callable[[str], str]) -> Details:
    """The details of ``path`` in ``source``'s pane (None: the Merged pane); ``alias`` shows real paths."""
    path = normpath(path)
    with ex.lock:
        status, words = where(ex.full, source, path)
        versions = ex.full.versions(path)
        entry = ex.full.lookup(path)
        fault = _readdir_fault(ex.full, path) if source is None else None
    d = Details(path, MERGED if source is None else source.name, status, words)
    kline = ex.kernel_line(path) if source is None else None
    if kline is not None and kline[1].startswith("DIFFERS"):
        d.status, d.words = KERNEL_DIFFERS, "the model and the kernel disagree here"
    for v in versions:
        st = S.HIDDEN_STATUS.get(v.fate) or _fate_status(v, entry)
        d.versions.append(VersionRow(v.layer.name, v.fate, st, v.node.kind, alias(v.path), v.by.name if v.by else ""))
    shown = _shown_version(versions, source)
    if shown is None:
        d.meta = [kline] if kline is not None else []
        return d
    node = shown.node
    if node.error:  # lstat itself failed: there is no metadata to show, only why
        d.meta = [("type", "unknown"), ("error", node.error), ("real path", alias(shown.path))]
        d.meta += [kline] if kline is not None else []
        return d
    d.meta = _meta(ex, source, path, shown, alias)
    d.meta += [kline] if kline is not None else []
    d.meta += [("listing", fault.words())] if fault is not None else []
    if source is None and entry is not None and entry.extra and "index" in entry.extra:
        lower = next((v for v in versions if v.layer.role == "lower"), None)
        d.meta.append(("hard link", shared_copy_words(lower.path) if lower else "the inode index's copy"))
    for name, value in overlay_xattrs(shown.path).items():
        d.xattrs.append((name, _xattr_value(value), explain_xattr(name) or ""))
    _content(ex, d, source, entry, shown, alias)
    _diff_below(ex, d, path, versions, shown)
    return d


def _readdir_fault(view: OverlayView, path: str) -> ReaddirFault | None:
    """Why listing merged dir ``path`` fails in the kernel though its layer dirs read; None for a non-dir."""
    try:
        return view.readdir_fault(path)
    except StackError:
        return None


def _meta(
    ex: Explorer, source: PaneSource, path: str, shown: LayerVersion, alias: Callable[[str], str]
) -> list[tuple[str, str]]:
    node = shown.node
    meta = [
        ("type", node.kind + (f" -> {node.target}" if node.target is not None else "")),
        ("mode", f"{_stat.filemode(_mode_bits(node.kind) | node.mode)} ({node.mode:04o})"),
        ("owner", owner(node.uid, node.gid)),
        ("size", f"{node.size} bytes"),
        ("mtime", time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(node.mtime))),
        ("inode", "none (a member of an image archive)" if ex.full.in_layer_fs(shown.path) else str(node.ino)),
        ("real path", alias(shown.path)),
    ]
    if node.kind in ("chardev", "blockdev"):
        meta.insert(4, ("device", f"{node.rdev >> 8 & 0xFFF}:{(node.rdev & 0xFF) | (node.rdev >> 12 & 0xFFF00)}"))
    if node.kind == "dir":
        for real, problem in ex.unreadable(source, path):
            meta.append(("unreadable", f"{alias(real)}: {problem} (its entries are missing)"))
    return meta


def _content(
    ex: Explorer, d: Details, source: PaneSource, entry: Entry | None, shown: LayerVersion, alias: Callable[[str], str]
) -> None:
    node = shown.node
    content_path = shown.path
    if source is None and entry is not None and entry.kind == "file":
        content_path = entry.source  # a metacopy file's data lives below
    if source is None and entry is not None and entry.data_error:
        d.content = Content("error", size=entry.size, message=entry.data_error)
    elif node.kind == "file" or (source is None and entry is not None and entry.kind == "file"):
        d.content = ex.full.read_content(content_path, CONTENT_CAP)
        d.content_path = alias(content_path)
    elif node.kind in ("fifo", "chardev", "blockdev", "socket"):
        d.content = Content("none", message=f"a {node.kind}: never opened")


def _diff_below(ex: Explorer, d: Details, path: str, versions: list[LayerVersion], shown: LayerVersion) -> None:
    """The file shown against the version it replaces in the layers below (a copy-up, a later layer's
    rewrite); none for a metacopy file, whose data is the one below."""
    if shown.node.kind != "file" or shown.node.metacopy:
        return
    below = versions[versions.index(shown) + 1 :]
    old = next((v for v in below if v.node.kind == "file"), None)
    if old is None:
        return
    d.diff, d.diff_note = unified_diff(
        ex.full.read_content(old.path, CONTENT_CAP),
        ex.full.read_content(shown.path, CONTENT_CAP),
        f"{old.layer.name}{path}",
        f"{shown.layer.name}{path}",
        CONTENT_CAP,
    )
    d.diff_labels = (old.layer.name, shown.layer.name)


def _fate_status(v: LayerVersion, entry: object) -> str:
    if v.fate == S.VISIBLE:
        return str(getattr(entry, "status", S.LOWER))
    return FATE_STATUS.get(v.fate, S.SHADOWED)


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
