"""The data of one file, copied for :mod:`.extract`: from a layer dir on disk, or streamed out of an archive's
layer tar, never held whole in memory.

On disk only the data extents are copied (``SEEK_DATA``/``SEEK_HOLE``), so a sparse file stays sparse, and the
source is opened with ``O_NOATIME`` where that is allowed (reading a layer does not change it). An archive member
is streamed in chunks from the layer tar (one open stream per tar, read forward); a GNU sparse member's map is
followed, and an all-zero chunk of any member becomes a hole.

A problem with the *source* (vanished, unreadable, changed, a damaged member) raises :class:`NotCopied`, whose
message says it in words; an error writing the destination is the OSError it is.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Iterator
from typing import IO

from .model.errors import UfsError
from .model.stack import LayerFS
from .sources.archive import Blob, TarLayerFS, _open_blob

CHUNK = 1 << 20
_NO_RANGE_COPY = (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP, errno.EBADF, errno.ETXTBSY)
FULL = (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG)  # the destination takes nothing more


class NotCopied(Exception):
    """This entry is not copied: the message says why (the source vanished, cannot be read, is damaged...)."""


def why(e: OSError) -> str:
    """An OSError in words: ``Permission denied (/path)``."""
    said = e.strerror or str(e)
    return f"{said} ({e.filename})" if e.filename else said


# ------------------------------------------------------------------------------------------- on disk
def copy_file(path: str, out: int) -> int:
    """Copy the regular file at ``path`` into the open file ``out``, holes kept; the bytes of data copied."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
    try:
        try:
            fd = os.open(path, flags | os.O_NOATIME)
        except PermissionError as e:  # O_NOATIME is for the owner (or CAP_FOWNER) only
            if e.errno != errno.EPERM:
                raise
            fd = os.open(path, flags)
    except FileNotFoundError:
        raise NotCopied(f"it vanished since it was listed ({path})") from None
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise NotCopied(f"it changed since it was listed: now a symlink ({path})") from None
        raise NotCopied(f"cannot be read: {why(e)}") from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise NotCopied(f"it changed since it was listed: no longer a regular file ({path})")
        copied = 0
        for start, end in _extents(fd, st.st_size):
            _copy_range(fd, out, start, end, path)
            copied += end - start
        os.ftruncate(out, st.st_size)
        return copied
    finally:
        os.close(fd)


def _extents(fd: int, size: int) -> Iterator[tuple[int, int]]:
    """The (start, end) byte ranges of ``fd`` that hold data, up to ``size`` (all of it where the file system
    cannot tell holes)."""
    pos = 0
    while pos < size:
        try:
            start = os.lseek(fd, pos, os.SEEK_DATA)
        except OSError as e:
            if e.errno != errno.ENXIO:  # ENXIO: only a hole from here on
                yield pos, size
            return
        if start >= size:
            return
        try:
            end = min(os.lseek(fd, start, os.SEEK_HOLE), size)
        except OSError:
            end = size
        yield start, end
        pos = end


def _copy_range(src: int, dst: int, start: int, end: int, path: str) -> None:
    """Bytes ``start``..``end`` of ``src`` to the same place in ``dst`` (in the kernel where it can)."""
    pos = start
    while pos < end:
        n = min(8 * CHUNK, end - pos)
        try:
            done = os.copy_file_range(src, dst, n, pos, pos)
        except OSError as e:
            if e.errno in FULL:
                raise
            done = _pcopy(src, dst, pos, n, path)
        if done == 0:
            raise NotCopied(f"it shrank while it was copied ({path})")
        pos += done


def _pcopy(src: int, dst: int, pos: int, n: int, path: str) -> int:
    try:
        data = os.pread(src, min(n, CHUNK), pos)
    except OSError as e:
        raise NotCopied(f"cannot be read: {e.strerror} ({path})") from None
    _pwrite_all(dst, data, pos)
    return len(data)


def _pwrite_all(fd: int, data: bytes, pos: int) -> None:
    view = memoryview(data)
    while view:
        n = os.pwrite(fd, view, pos)
        view, pos = view[n:], pos + n


# ------------------------------------------------------------------------------------------- archives
def member(fs: LayerFS, real: str) -> tuple[str, tarfile.TarInfo] | None:
    """(name, header) of the member of a layer tar that holds the data of ``real``, link members followed; None
    where ``fs`` is not a layer tar or has no such member."""
    if not isinstance(fs, TarLayerFS) or not real.startswith(fs.root + "/"):
        return None
    name = real[len(fs.root) + 1 :]
    ti = fs.members.get(name)
    for _ in range(40):
        if ti is None or not ti.islnk():
            break
        target = posixpath.normpath("/" + ti.linkname).lstrip("/")
        nxt = fs.members.get(target)
        if nxt is None:
            break
        name, ti = target, nxt
    return None if ti is None else (name, ti)


class Members:
    """Archive members' data, streamed: one open stream per layer tar, kept for the next member (read forward,
    as a layer tar is mostly walked in its own order; a gzip stream seeking back starts again)."""

    def __init__(self) -> None:
        self._open: dict[Blob, tuple[IO[bytes], IO[bytes]]] = {}

    def copy(self, fs: LayerFS, real: str, out: int) -> int:
        """Copy the member behind ``real`` into the open file ``out``; the bytes of data copied."""
        if not isinstance(fs, TarLayerFS):  # another kind of layer: its own read, whole
            node = fs.probe(real)
            data = fs.read(real, node.size if node is not None else 0)
            _pwrite_all(out, data, 0)
            return len(data)
        got = member(fs, real)
        if got is None or not got[1].isreg():
            raise NotCopied("the archive's layer tar has no regular file there")
        ti = got[1]
        try:
            stream = self._stream(fs.blob)
            stream.seek(ti.offset_data)
            sparse: list[tuple[int, int]] | None = getattr(ti, "sparse", None)
            copied = 0
            for offset, size in sparse if sparse is not None else [(0, ti.size)]:
                copied += _stream_to(stream, out, offset, size)
        except (EOFError, zlib.error, tarfile.TarError, UfsError, _Damaged) as e:
            self._drop(fs.blob)
            raise NotCopied(f"the archive member is damaged: {_damage(e)}") from None
        except OSError as e:
            if e.errno in FULL or isinstance(e, _Written):
                raise
            self._drop(fs.blob)
            raise NotCopied(f"the archive cannot be read: {_damage(e)}") from None
        os.ftruncate(out, ti.size)
        return copied

    def _stream(self, blob: Blob) -> IO[bytes]:
        got = self._open.get(blob)
        if got is None:
            got = self._open[blob] = _open_blob(blob)
        return got[1]

    def _drop(self, blob: Blob) -> None:
        got = self._open.pop(blob, None)
        if got is not None:
            for f in reversed(got):
                try:
                    f.close()
                except (OSError, EOFError, zlib.error):
                    pass

    def close(self) -> None:
        for blob in list(self._open):
            self._drop(blob)


class _Damaged(Exception):
    """The member's data ends before its size."""


class _Written(OSError):
    """Writing the destination failed (not the archive)."""


def _stream_to(stream: IO[bytes], out: int, offset: int, size: int) -> int:
    """``size`` bytes of ``stream`` to ``out`` at ``offset``; all-zero chunks left as holes. The bytes written."""
    written = 0
    pos, left = offset, size
    while left > 0:
        chunk = stream.read(min(CHUNK, left))
        if not chunk:
            raise _Damaged(f"its data ends {left:,} bytes early (the archive changed, or is cut short)")
        if chunk.count(0) != len(chunk):
            try:
                _pwrite_all(out, chunk, pos)
            except OSError as e:
                raise _Written(e.errno, e.strerror, e.filename) from None
            written += len(chunk)
        pos += len(chunk)
        left -= len(chunk)
    return written


def _damage(e: BaseException) -> str:
    if isinstance(e, zlib.error):
        return f"the gzip data is corrupt ({e})"
    if isinstance(e, EOFError):
        return "the gzip stream ends early"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e)
