"""The inode index of an ``index=on`` mount (``WORK/index``): how the kernel keeps hard links one inode.

Copying up a hard-linked lower file through one of its names, a mount with ``index=on`` puts the copy in
``WORK/index/<HEX>`` and links the upper name to it. ``HEX`` is the lower inode's overlay file handle in
hex: version, magic ``0xfb``, length, flags, the handle type, 16 bytes of filesystem uuid, then the
filesystem's own handle of the inode (``name_to_handle_at(2)``). Looking up any other name of that lower
inode later (one the upper does not hold), the kernel finds the index entry and shows *it*: the copied-up
inode, under every name (``ovl_lookup_index``). An index entry that is a whiteout (left when every name
was deleted under ``nfs_export=on``) or of another type fails the lookup (EIO).

Without ``index=on`` the kernel never reads the index: each other name shows the lower's own copy.
Nothing here writes anything.
"""

from __future__ import annotations

import ctypes
import os
from dataclasses import dataclass

from .kernel_defaults import module_default
from .libc import libc

_MAX_HANDLE = 128  # MAX_HANDLE_SZ
_FH_MAGIC = 0xFB
_FID_AT = 21  # version, magic, len, flags, type, uuid[16]
INDEX_DIR = "index"  # under the work dir the mount was given


class _FileHandle(ctypes.Structure):
    _fields_ = [
        ("handle_bytes", ctypes.c_uint),
        ("handle_type", ctypes.c_int),
        ("f_handle", ctypes.c_ubyte * _MAX_HANDLE),
    ]


def file_handle(path: str) -> tuple[int, bytes] | None:
    """The filesystem's handle of ``path`` itself (a symlink is not followed): (type, bytes), or None
    where the filesystem gives none or the path is gone."""
    lib = libc()
    if lib is None:
        return None
    fh = _FileHandle(handle_bytes=_MAX_HANDLE)
    mount_id = ctypes.c_int()
    at_fdcwd = -100
    if lib.name_to_handle_at(at_fdcwd, os.fsencode(path), ctypes.byref(fh), ctypes.byref(mount_id), 0) != 0:
        return None
    return fh.handle_type, bytes(fh.f_handle[: fh.handle_bytes])


def index_key(name: str) -> tuple[int, bytes] | None:
    """(handle type, filesystem handle) of an index entry's name, or None if it is no overlay file handle."""
    try:
        raw = bytes.fromhex(name)
    except ValueError:
        return None
    if len(raw) <= _FID_AT or raw[1] != _FH_MAGIC or raw[2] != len(raw):
        return None
    return raw[4], raw[_FID_AT:]


@dataclass(frozen=True)
class InodeIndex:
    """The entries of ``WORK/index``, by the lower inode each one is the copy of."""

    path: str  # WORK/index
    entries: dict[tuple[int, bytes], str]  # (handle type, handle) -> entry name
    dirs: bool  # whether the kernel looks lower dirs up in it too (nfs_export=on)

    @classmethod
    def read(cls, work: str, with_dirs: bool = False) -> InodeIndex | None:
        """The index under work dir ``work``; None when it holds nothing the kernel would look up: no non-dir
        entry, nor a dir entry when ``with_dirs`` (``nfs_export=on``: the kernel looks dirs up too)."""
        path = os.path.join(work, INDEX_DIR)
        entries: dict[tuple[int, bytes], str] = {}
        try:
            with os.scandir(path) as it:
                for de in it:
                    key = index_key(de.name)
                    if key is not None and (with_dirs or not de.is_dir(follow_symlinks=False)):
                        entries[key] = de.name
        except OSError:
            return None
        return cls(path, entries, with_dirs) if entries else None

    def copy_of(self, lower_real: str) -> str | None:
        """The real path of the index entry for lower inode ``lower_real`` (a copy of a file; for a dir, the
        entry that says it was copied up), if there is one."""
        key = file_handle(lower_real)
        name = self.entries.get(key) if key is not None else None
        return os.path.join(self.path, name) if name is not None else None


def index_note(work: str | None, options: tuple[str, ...]) -> str | None:
    """What the model assumes about the inode index when the options do not say, if it matters: the work
    dir holds one (the layers were mounted with ``index=on``) and this kernel's default is off."""
    if work is None or said_index(options) is not None or default_index() or InodeIndex.read(work) is None:
        return None
    return (
        f"{os.path.join(work, INDEX_DIR)} holds copied-up hard links (the layers were mounted with index=on); "
        "shown as a mount with this kernel's default index=off shows them (each name not copied up shows the "
        "lower's file): add -o index=on to see what such a mount shows"
    )


def index_used(options: tuple[str, ...]) -> bool:
    """Whether a mount with ``options`` uses the inode index: as they say, else this kernel's default."""
    said = said_index(options)
    return default_index() if said is None else said


def said_index(options: tuple[str, ...]) -> bool | None:
    """What ``options`` say about the inode index (``nfs_export=on`` turns it on too), or None."""
    said: bool | None = None
    for opt in options:
        if opt in ("index=on", "nfs_export=on"):
            said = True
        elif opt == "index=off":
            said = False
    return said


def default_index() -> bool:
    """The overlay module's default for ``index`` (off if unknown)."""
    return bool(module_default("index"))


def shared_copy_words(lower_real: str) -> str:
    """The details' words for a name that shows the inode index's copy of lower file ``lower_real``."""
    try:
        names = f"all {os.lstat(lower_real).st_nlink} names"
    except OSError:
        names = "every name"
    return (
        f"one copied-up inode: {names} of this lower file show the copy in the inode index (index=on), "
        "made when one of them was copied up"
    )
