"""The system-call loops of a layer dir scan: read dirs' names and types, then look at each topmost name.

A merged listing costs one readdir per layer dir and one ``listxattr`` per topmost regular file (an
xattr whiteout, a metacopy or a redirect may sit on any of them: the kernel reads them on every
lookup); a walk that shows modes and sizes adds an ``lstat`` per name and a ``readlink`` per symlink.
Those loops are most of a big listing's time, most of it the kernel's, so they come in two
implementations with one contract (these docstrings):

- ``_dirscan``, a small C extension built at install time when a compiler is there: it makes the
  calls without the GIL and relative to the dir (``fstatat``, ``listxattrat``), and shares a big
  batch with a second thread;
- the Python functions here, used when the extension is not built, or when
  ``UFS_TUI_PURE_PYTHON=1`` asks for them.

``tests/core/test_dirscan.py`` checks that both give the same answers on the same dirs.
"""

from __future__ import annotations

import functools
import os
import stat
from collections.abc import Callable, Sequence, Set
from typing import Protocol

# d_type values (<dirent.h>), as read_dirs reports them; 0: unknown (the name vanished meanwhile).
DT_UNKNOWN, DT_FIFO, DT_CHR, DT_DIR, DT_BLK, DT_REG, DT_LNK, DT_SOCK = 0, 1, 2, 4, 6, 8, 10, 12


class ReadDirs(Protocol):
    def __call__(self, paths: Sequence[str], types: bool = ..., /) -> list[dict[str, int] | OSError]: ...


MarkedFiles = Callable[[str, dict[str, int], Set[str] | None, tuple[bytes, ...]], set[str]]
#: A plain entry's (mode, size, symlink target or None); None: the caller looks the name up in full.
Facts = tuple[int, int, str | None] | None
StatFiles = Callable[[str, dict[str, int], Set[str] | None, tuple[bytes, ...]], dict[str, Facts]]


def py_read_dirs(paths: Sequence[str], types: bool = True) -> list[dict[str, int] | OSError]:
    """For each real dir in ``paths``, its names (without ``.`` and ``..``) and their d_type, or the
    ``OSError`` that :func:`os.scandir` raises for it.

    A file system without d_type costs an ``lstat`` per name (one that vanished meanwhile:
    ``DT_UNKNOWN``). Nothing is followed. ``types=False``: only the names are wanted, and a d_type
    that is not free may be ``DT_UNKNOWN`` (here, all of them: a plain ``listdir`` is faster).
    """
    read = _read_dir if types else _read_names
    out: list[dict[str, int] | OSError] = []
    for path in paths:
        try:
            out.append(read(path))
        except OSError as e:
            out.append(e)
    return out


def _read_names(path: str) -> dict[str, int]:
    return dict.fromkeys(os.listdir(path), DT_UNKNOWN)


def _read_dir(path: str) -> dict[str, int]:
    out: dict[str, int] = {}
    with os.scandir(path) as it:
        for de in it:
            try:
                if de.is_symlink():
                    out[de.name] = DT_LNK
                elif de.is_dir(follow_symlinks=False):
                    out[de.name] = DT_DIR
                elif de.is_file(follow_symlinks=False):
                    out[de.name] = DT_REG
                else:
                    out[de.name] = _DT_BY_FMT.get(stat.S_IFMT(de.stat(follow_symlinks=False).st_mode), DT_UNKNOWN)
            except OSError:
                out[de.name] = DT_UNKNOWN
    return out


def py_marked_files(dir: str, listing: dict[str, int], skip: Set[str] | None, markers: tuple[bytes, ...]) -> set[str]:
    """The regular files of ``listing`` (from :func:`read_dirs` of ``dir``) not in ``skip`` that carry an
    xattr named in ``markers`` (bytes), or whose xattrs cannot be listed (gone, unreadable): the
    names a caller must look up in full. Nothing is followed."""
    head = dir if dir.endswith("/") else dir + "/"
    wanted = _decoded(markers)
    listxattr = os.listxattr
    out: set[str] = set()
    for name, dtype in listing.items():
        if dtype != DT_REG or (skip is not None and name in skip):
            continue
        try:
            xs = listxattr(head + name, follow_symlinks=False)
        except OSError:
            out.add(name)
            continue
        if xs and not wanted.isdisjoint(xs):
            out.add(name)
    return out


def py_stat_files(
    dir: str, listing: dict[str, int], skip: Set[str] | None, markers: tuple[bytes, ...]
) -> dict[str, Facts]:
    """For each name of ``listing`` (from :func:`read_dirs` of ``dir``) not in ``skip``, in no set order:
    ``(mode, size, target)`` from ``lstat`` (``target``: a symlink's, None if it cannot be read, or not a
    symlink), or None where the caller must look the name up in full: a dir, a 0/0 whiteout, a regular
    file with an xattr named in ``markers`` or whose xattrs cannot be listed, a name gone since readdir.
    Nothing is followed."""
    head = dir if dir.endswith("/") else dir + "/"
    wanted = _decoded(markers)
    lstat, listxattr, readlink = os.lstat, os.listxattr, os.readlink
    out: dict[str, Facts] = {}
    for name in listing.keys() - skip if skip else listing:
        path = head + name
        try:
            st = lstat(path)
        except OSError:
            out[name] = None
            continue
        m = st.st_mode
        fmt = m & 0o170000
        if fmt == 0o100000:  # a regular file: plain unless it carries a marker
            try:
                xs = listxattr(path, follow_symlinks=False)
            except OSError:
                out[name] = None
                continue
            out[name] = None if xs and not wanted.isdisjoint(xs) else (m, st.st_size, None)
        elif fmt == 0o120000:  # a symlink
            try:
                out[name] = (m, st.st_size, readlink(path))
            except OSError:
                out[name] = (m, st.st_size, None)
        elif fmt == 0o040000 or (fmt == 0o020000 and st.st_rdev == 0):  # a dir, a whiteout
            out[name] = None
        else:
            out[name] = (m, st.st_size, None)
    return out


@functools.cache
def _decoded(markers: tuple[bytes, ...]) -> frozenset[str]:
    return frozenset(os.fsdecode(m) for m in markers)


_DT_BY_FMT = {
    stat.S_IFIFO: DT_FIFO,
    stat.S_IFCHR: DT_CHR,
    stat.S_IFDIR: DT_DIR,
    stat.S_IFBLK: DT_BLK,
    stat.S_IFREG: DT_REG,
    stat.S_IFLNK: DT_LNK,
    stat.S_IFSOCK: DT_SOCK,
}


def _pick() -> tuple[str, ReadDirs, MarkedFiles, StatFiles]:
    if os.environ.get("UFS_TUI_PURE_PYTHON") != "1":
        try:
            from . import _dirscan
        except ImportError:
            pass
        else:
            return "c", _dirscan.read_dirs, _dirscan.marked_files, _dirscan.stat_files
    return "python", py_read_dirs, py_marked_files, py_stat_files


#: Which implementation this process uses: ``"c"`` or ``"python"``.
IMPLEMENTATION, read_dirs, marked_files, stat_files = _pick()
