"""Image archives read in place: ``docker save`` tarballs and OCI layouts (dirs or ``oci-archive`` tars).

Nothing is extracted: the outer archive's members are located by offset, and each layer tar
(plain or gzip) is indexed in memory as a :class:`TarLayerFS`. Layers keep their OCI whiteouts
(``.wh.NAME``, ``.wh..wh..opq``) as names; the stack carries the ``oci-whiteouts`` option so the
merge honours them. Layer roots are named ``<archive>/<member>`` (e.g. ``img.tar/<id>/layer.tar``).
"""

from __future__ import annotations

import gzip
import io
import json
import os
import posixpath
import stat
import tarfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import IO, Any, Self, cast

from ..model.display import printable
from ..model.errors import StackError
from ..model.markers import Node
from ..model.stack import Layer, Stack
from .common import history_steps, layer_label

CHUNK = 1 << 20  # bytes a member's data is streamed in (hashing, comparing)

_KIND = {
    tarfile.REGTYPE: "file",
    tarfile.AREGTYPE: "file",
    tarfile.CONTTYPE: "file",
    tarfile.DIRTYPE: "dir",
    tarfile.SYMTYPE: "symlink",
    tarfile.CHRTYPE: "chardev",
    tarfile.BLKTYPE: "blockdev",
    tarfile.FIFOTYPE: "fifo",
}
_FMT = {
    "file": stat.S_IFREG,
    "dir": stat.S_IFDIR,
    "symlink": stat.S_IFLNK,
    "chardev": stat.S_IFCHR,
    "blockdev": stat.S_IFBLK,
    "fifo": stat.S_IFIFO,
}


@dataclass(frozen=True)
class Blob:
    """A byte range of a file: an archive member, or a whole blob file of an OCI layout dir."""

    file: str
    offset: int
    size: int


class _Window(io.RawIOBase):
    """A read-only, seekable view of ``size`` bytes at ``offset`` of an open file."""

    def __init__(self, f: IO[bytes], offset: int, size: int) -> None:
        self._f, self._off, self._size, self._pos = f, offset, size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int, whence: int = 0) -> int:
        # Clamped to the blob: a seek past its end lands on the end, so a reader can tell the data is cut short.
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = min(self._size, max(0, base + pos))
        return self._pos

    def readinto(self, b: Any) -> int:
        n = min(len(b), self._size - self._pos)
        if n <= 0:
            return 0
        self._f.seek(self._off + self._pos)
        data = self._f.read(n)
        b[: len(data)] = data
        self._pos += len(data)
        return len(data)


def _open_blob(blob: Blob) -> tuple[IO[bytes], IO[bytes]]:
    """(raw file, stream of the blob's tar bytes, decompressed if needed; a GzipFile when compressed)."""
    f = open(blob.file, "rb")  # noqa: SIM115 - returned to the caller, who closes it
    try:
        f.seek(blob.offset)
        magic = f.read(4)
        window = io.BufferedReader(_Window(f, blob.offset, blob.size), buffer_size=1 << 16)
        if magic[:2] == b"\x1f\x8b":
            return f, cast(IO[bytes], gzip.GzipFile(fileobj=window, mode="rb"))
        if magic == b"\x28\xb5\x2f\xfd":
            raise StackError(blob.file, "zstd-compressed layers are not supported")
        return f, cast(IO[bytes], window)
    except BaseException:
        f.close()
        raise


def _norm(name: str) -> str:
    """A tar member name as a merged-relative path ("" for the root)."""
    p = posixpath.normpath("/" + name).lstrip("/")
    return "" if p == "." else p


class TarLayerFS:
    """One layer tar, indexed in memory: ``probe``/``listdir``/``lexists``/``read`` over its members."""

    def __init__(self, root: str, blob: Blob) -> None:
        self.root = root.rstrip("/")
        self.blob = blob
        self.members: dict[str, tarfile.TarInfo] = {}
        self.children: dict[str, dict[str, str | None]] = {"": {}}
        self.size = 0
        self.compressed = False  # a gzip blob: read through a stream (else straight from the file)
        self._index()

    def _index(self) -> None:
        try:
            self._index_with(_fast_members)
        except _Unsupported:  # GNU sparse files and the like: tarfile knows them all
            self.members, self.children, self.size = {}, {"": {}}, 0
            self._index_with(_tarfile_members)

    def _index_with(self, reader: Callable[[IO[bytes]], Iterator[tarfile.TarInfo]]) -> None:
        f, stream = _open_blob(self.blob)
        try:
            for ti in reader(stream):
                rel = _norm(ti.name)
                if rel == "":
                    self.members[""] = ti
                    continue
                self._add(rel, ti)
                self.size += ti.size if ti.isreg() else 0
            self.compressed = isinstance(stream, gzip.GzipFile)
            if self.compressed:
                # The rest after tar's end marker (zero blocks, padding): reading to the end of the gzip stream
                # checks its CRC and length, so data damaged inside a member is found (it was decompressed anyway).
                while stream.read(1 << 16):
                    pass
        except _Damaged as e:
            raise DamagedLayer(self.root, str(e)) from None
        except (tarfile.TarError, OSError, EOFError, zlib.error) as e:
            raise DamagedLayer(self.root, _problem(e)) from None
        finally:
            stream.close()
            f.close()

    def _pread(self, path: str, offset: int, left: int, chunk: int) -> Iterator[bytes]:
        blob = self.blob
        pos, end = blob.offset + offset, blob.offset + blob.size
        fd = os.open(blob.file, os.O_RDONLY | os.O_CLOEXEC)
        try:
            while left > 0:
                data = os.pread(fd, min(chunk, left, end - pos), pos) if pos < end else b""
                if not data:
                    raise OSError(f"{path}: the layer tar ends inside this file")
                pos += len(data)
                left -= len(data)
                yield data
        finally:
            os.close(fd)

    def _add(self, rel: str, ti: tarfile.TarInfo) -> None:
        parent, name = posixpath.split(rel)
        self._ensure_dir(parent)
        old = self.members.get(rel)
        if old is not None and old.isdir() and not ti.isdir():
            self._drop_below(rel)
        self.members[rel] = ti
        kind = "file" if ti.islnk() else _KIND.get(ti.type, "file")
        self.children[parent][name] = kind
        if ti.isdir():
            self.children.setdefault(rel, {})

    def _ensure_dir(self, rel: str) -> None:
        if rel in self.children:
            return
        parent, name = posixpath.split(rel)
        self._ensure_dir(parent)
        implicit = tarfile.TarInfo(rel)
        implicit.type = tarfile.DIRTYPE
        implicit.mode = 0o755
        self.members.setdefault(rel, implicit)
        self.children[rel] = {}
        self.children[parent][name] = "dir"

    def _drop_below(self, rel: str) -> None:
        for key in [k for k in self.children if k == rel or k.startswith(rel + "/")]:
            del self.children[key]
        for key in [k for k in self.members if k.startswith(rel + "/")]:
            del self.members[key]

    def _rel(self, path: str) -> str | None:
        if path == self.root:
            return ""
        if path.startswith(self.root + "/"):
            return path[len(self.root) + 1 :]
        return None

    def _resolved(self, ti: tarfile.TarInfo) -> tarfile.TarInfo:
        """A hard link's target member (its data and size)."""
        seen = 0
        while ti.islnk() and seen < 40:
            target = self.members.get(_norm(ti.linkname))
            if target is None:
                return ti
            ti, seen = target, seen + 1
        return ti

    def probe(self, path: str, ns: str = "trusted", hint_kind: str | None = None) -> Node | None:
        rel = self._rel(path)
        if rel is None:
            return None
        ti = self.members.get(rel)
        if ti is None:
            if rel == "":  # a layer tar without a "./" entry still has a root dir
                ti = tarfile.TarInfo("")
                ti.type, ti.mode = tarfile.DIRTYPE, 0o755
            else:
                return None
        data = self._resolved(ti) if ti.islnk() else ti
        kind = "file" if ti.islnk() else _KIND.get(ti.type, "file")
        node = Node(path, None)
        node.kind = kind
        node.mode = ti.mode & 0o7777
        node.size = data.size if kind == "file" else (len(ti.linkname) if kind == "symlink" else 0)
        node.uid, node.gid, node.mtime = ti.uid, ti.gid, float(ti.mtime)
        if kind == "symlink":
            node.target = ti.linkname
        if kind in ("chardev", "blockdev"):
            node.rdev = os.makedev(ti.devmajor, ti.devminor)
            if kind == "chardev" and node.rdev == 0:
                node.whiteout = "chardev"
        return node

    def listdir(self, path: str) -> dict[str, str | None] | None:
        rel = self._rel(path)
        return None if rel is None else self.children.get(rel)

    def lexists(self, path: str) -> bool:
        rel = self._rel(path)
        return rel is not None and (rel == "" or rel in self.members)

    def read(self, path: str, n: int) -> bytes:
        return b"".join(self._data(path, n, n))

    def chunks(self, path: str) -> Iterator[bytes]:
        return self._data(path, None, CHUNK)

    def _data(self, path: str, limit: int | None, chunk: int) -> Iterator[bytes]:
        """The regular file at ``path`` (its first ``limit`` bytes; None: all), read ``chunk`` bytes at a time."""
        rel = self._rel(path)
        ti = self.members.get(rel) if rel is not None else None
        if ti is None:
            raise FileNotFoundError(path)
        ti = self._resolved(ti)
        if not ti.isreg():
            raise IsADirectoryError(path) if ti.isdir() else OSError(f"{path}: not a regular file")
        left = ti.size if limit is None else min(limit, ti.size)
        return self._stream_of(path, ti.offset_data, left, chunk)

    def _stream_of(self, path: str, offset: int, left: int, chunk: int) -> Iterator[bytes]:
        if not self.compressed:  # straight from the file: no stream to set up per member
            yield from self._pread(path, offset, left, chunk)
            return
        f, stream = _open_blob(self.blob)
        try:
            stream.seek(offset)
            while left > 0:
                data = stream.read(min(chunk, left))
                if not data:
                    raise OSError(f"{path}: the layer tar ends inside this file")
                left -= len(data)
                yield data
        except (EOFError, zlib.error) as e:  # the blob changed since it was indexed
            raise OSError(f"{path}: {_problem(e)}") from None
        finally:
            stream.close()
            f.close()


def _tarfile_members(stream: IO[bytes]) -> Iterator[tarfile.TarInfo]:
    # plain tars skip file data by seeking; gzip streams are read through once
    mode = "r|" if isinstance(stream, gzip.GzipFile) else "r:"
    ended: list[tuple[int, tarfile.HeaderError]] = []
    with tarfile.open(fileobj=stream, mode=mode, tarinfo=_strict_tarinfo(ended)) as tf:  # type: ignore[call-overload]
        yield from tf
    _check_end(ended)


def _strict_tarinfo(ended: list[tuple[int, tarfile.HeaderError]]) -> type[tarfile.TarInfo]:
    """A TarInfo class that notes the header error that ended the walk: tarfile stops *silently* at a bad or
    cut-off header after the first member, which would make a damaged layer look like a smaller one."""

    class Strict(tarfile.TarInfo):
        @classmethod
        def fromtarfile(cls, tf: tarfile.TarFile) -> Self:
            try:
                return super().fromtarfile(tf)
            except tarfile.HeaderError as e:
                ended.append((tf.offset, e))
                raise

    return Strict


def _check_end(ended: list[tuple[int, tarfile.HeaderError]]) -> None:
    """Raise _Damaged unless the tar ended at its end marker (a zero block) or at the end of the data."""
    if not ended:
        return
    offset, err = ended[-1]
    kind = type(err).__name__  # tarfile's HeaderError subclasses are not in its public API (nor its stubs)
    if kind == "TruncatedHeaderError":
        raise _Damaged(f"truncated: the data ends inside the tar header at offset {offset}")
    if kind not in ("EOFHeaderError", "EmptyHeaderError"):  # an end marker, the end of the data: a clean end
        raise _Damaged(f"bad tar header at offset {offset} of the layer tar ({err})")


class _Unsupported(Exception):
    """A header the fast reader leaves to tarfile."""


class _Damaged(Exception):
    """The tar is cut short or broken: no reader can do better."""


class DamagedLayer(StackError):
    """A layer blob of an archive is damaged or truncated (``detail`` says how)."""

    def __init__(self, path: str, detail: str) -> None:
        super().__init__(path, f"cannot read layer tar: {detail}")
        self.detail = detail


def _problem(e: BaseException) -> str:
    """What a decompression or read error means, in words."""
    if isinstance(e, zlib.error):
        return f"the gzip data is corrupt ({e})"
    if isinstance(e, EOFError):
        return "truncated: the gzip stream ends before its end marker"
    if isinstance(e, gzip.BadGzipFile):
        return f"the gzip data is damaged ({e})"
    if isinstance(e, tarfile.TarError):
        if "unexpected end of data" in str(e):
            return "truncated: the data ends inside a member"
        return f"not a valid tar ({e})"
    if isinstance(e, OSError) and e.strerror:
        return f"cannot be read: {e.strerror}"
    return str(e)


_DATA_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
_KNOWN_TYPES = frozenset(_KIND) | {tarfile.LNKTYPE}


def _num(field: bytes) -> int:
    """A numeric header field: octal text, or GNU base-256 (first byte 0x80 / 0xff)."""
    if field and field[0] in (0o200, 0o377):
        n = int.from_bytes(field[1:], "big")
        return n - 256 ** (len(field) - 1) if field[0] == 0o377 else n
    text = field.split(b"\0", 1)[0].strip(b" ")
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise _Unsupported("not a number") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, bytes]:
    """The records of a pax header: ``LEN KEY=VALUE\\n``."""
    out: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        space = data.find(b" ", pos)
        if space < 0:
            break
        length = int(data[pos:space])
        if length <= 0:
            raise _Unsupported("bad pax record")
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        out[key.decode("utf-8", "surrogateescape")] = value
        pos += length
    return out


def _fast_members(stream: IO[bytes]) -> Iterator[tarfile.TarInfo]:
    """The members of a tar stream, parsed here: ustar, GNU long names and pax headers.

    tarfile parses each header field by field in Python, about 100 us a member with pax headers
    (what ``docker import`` and many builders write); this is several times faster. Anything else
    (sparse files, a bad checksum) raises :class:`_Unsupported` and the caller uses tarfile. Data that
    ends inside a header or a member raises :class:`_Damaged` (tarfile could not do better).
    """
    pos = 0
    glob: dict[str, bytes] = {}
    pending: dict[str, bytes] = {}
    long_name: str | None = None
    long_link: str | None = None
    read, seek = stream.read, stream.seek
    while True:
        buf = read(512)
        if len(buf) < 512:
            if buf:
                raise _Damaged(f"truncated: the data ends inside the tar header at offset {pos}")
            return  # no end marker, like tarfile accepts
        if buf.count(0) == 512:
            return
        chksum = _num(buf[148:156])
        if chksum != sum(buf[:148]) + sum(buf[156:]) + 256:
            raise _Unsupported("header checksum")
        pos += 512
        kind = buf[156:157]
        size = _num(buf[124:136])
        blocks = (size + 511) // 512 * 512
        if kind in (b"x", b"g", b"L", b"K"):
            data = read(blocks)
            if len(data) < size:
                raise _Damaged(f"truncated: the data ends inside the tar header at offset {pos - 512}")
            data = data[:size]
            pos += blocks
            if kind == b"x":
                pending.update(_pax(data))
            elif kind == b"g":
                glob.update(_pax(data))
            elif kind == b"L":
                long_name = _text(data)
            else:
                long_link = _text(data)
            continue
        if kind not in _KNOWN_TYPES or any(k.startswith("GNU.sparse") for k in (*pending, *glob)):
            raise _Unsupported(f"member type {kind!r}")
        name = _text(buf[0:100])
        if buf[257:263] == b"ustar\0" and buf[345] != 0:  # POSIX: a prefix for long paths
            name = _text(buf[345:500]) + "/" + name
        ti = tarfile.TarInfo(long_name if long_name is not None else name)
        ti.type = b"5" if kind == b"\0" and ti.name.endswith("/") else (kind if kind != b"\0" else tarfile.AREGTYPE)
        if ti.type == tarfile.DIRTYPE:
            ti.name = ti.name.rstrip("/")  # as tarfile does
        ti.mode = _num(buf[100:108])
        ti.uid, ti.gid = _num(buf[108:116]), _num(buf[116:124])
        ti.size = size
        ti.mtime = _num(buf[136:148])
        ti.linkname = long_link if long_link is not None else _text(buf[157:257])
        ti.devmajor, ti.devminor = _num(buf[329:337]), _num(buf[337:345])
        pax = {**glob, **pending} if glob else pending
        if pax:
            if "path" in pax:
                ti.name = pax["path"].decode("utf-8", "surrogateescape").rstrip("/")
            if "linkpath" in pax:
                ti.linkname = pax["linkpath"].decode("utf-8", "surrogateescape")
            if "size" in pax:
                ti.size = int(pax["size"])
            if "uid" in pax:
                ti.uid = int(pax["uid"])
            if "gid" in pax:
                ti.gid = int(pax["gid"])
            if "mtime" in pax:
                ti.mtime = float(pax["mtime"])
        ti.offset = pos - 512
        ti.offset_data = pos
        pending, long_name, long_link = {}, None, None
        if ti.type in _DATA_TYPES:
            skip = (ti.size + 511) // 512 * 512
            if skip:
                # GzipFile and the blob window both stop a seek at the end of the data
                if seek(skip, 1) < pos + ti.size:
                    raise _Damaged(f"truncated: the data ends inside {printable(ti.name)!r}")
                pos += skip
        yield ti


# ---------------------------------------------------------------------------------------- archives
class _Container:
    """The outer archive: a tar file (members by name) or an OCI layout directory."""

    def __init__(self, path: str) -> None:
        self.path = os.path.abspath(path)
        self.blobs: dict[str, Blob] = {}
        if os.path.isdir(path):
            self.is_dir = True
            return
        self.is_dir = False
        try:
            st = os.stat(path)
        except OSError as e:
            raise StackError(path, f"cannot be read: {e.strerror or e}") from None
        if not stat.S_ISREG(st.st_mode):  # (opening a FIFO would wait for a writer)
            kind = {stat.S_IFIFO: "a FIFO", stat.S_IFSOCK: "a socket", stat.S_IFCHR: "a character device"}
            what = kind.get(stat.S_IFMT(st.st_mode), "a block device")
            raise StackError(path, f"not an image archive: {what}, not a file")
        self.unfinished = False  # the tar ends without its end marker: maybe cut short at a member boundary
        links: dict[str, str] = {}
        ended: list[tuple[int, tarfile.HeaderError]] = []
        try:
            tf = tarfile.open(path, mode="r:", tarinfo=_strict_tarinfo(ended))  # noqa: SIM115 - closed below
        except tarfile.ReadError:
            raise StackError(path, "not an image archive (a tar from docker save, or an OCI layout)") from None
        except OSError as e:
            raise StackError(path, f"cannot be read: {e.strerror or e}") from None
        try:
            with tf:
                for ti in tf:
                    if ti.isreg():
                        self.blobs[_norm(ti.name)] = Blob(self.path, ti.offset_data, ti.size)
                    elif ti.issym():  # docker save of several images: a shared layer is a symlink to the first
                        links[_norm(ti.name)] = _norm(posixpath.join(posixpath.dirname(_norm(ti.name)), ti.linkname))
                    elif ti.islnk():
                        links[_norm(ti.name)] = _norm(ti.linkname)
            _check_end(ended)
        except _Damaged as e:
            raise StackError(path, f"the archive is damaged: {e}") from None
        except tarfile.TarError as e:
            raise StackError(path, f"the archive is damaged: {_problem(e)}") from None
        except OSError as e:
            raise StackError(path, f"cannot be read: {e.strerror or e}") from None
        self.unfinished = bool(ended) and type(ended[-1][1]).__name__ == "EmptyHeaderError"
        if self.blobs:
            last = max(self.blobs.values(), key=lambda b: b.offset)
            if last.offset + last.size > os.path.getsize(path):
                raise StackError(path, "the archive is damaged: truncated: the data ends inside its last member")
        for name, target in links.items():
            for _ in range(40):
                if target not in links:
                    break
                target = links[target]
            if target in self.blobs:
                self.blobs[name] = self.blobs[target]

    def has(self, name: str) -> bool:
        if self.is_dir:
            return os.path.isfile(os.path.join(self.path, name))
        return _norm(name) in self.blobs

    def blob(self, name: str) -> Blob:
        if self.is_dir:
            full = os.path.join(self.path, name)
            try:
                return Blob(full, 0, os.path.getsize(full))
            except OSError:
                raise StackError(full, "missing from the OCI layout") from None
        got = self.blobs.get(_norm(name))
        if got is None:
            raise StackError(self.path, f"archive has no member {name!r}")
        return got

    def json(self, name: str) -> Any:
        b = self.blob(name)
        with open(b.file, "rb") as f:
            f.seek(b.offset)
            raw = f.read(b.size)
        try:
            return json.loads(raw)
        except ValueError as e:
            raise StackError(f"{self.path}/{name}", f"not valid JSON: {e}") from None


def open_archive(path: str, image: str | None = None) -> Stack:
    """A read-only stack of one image of a docker-archive or OCI archive/layout.

    An archive with several images (``docker save a b``) needs ``image``: a name as tagged
    (``a:1``; ``:latest`` may be left out), an OCI ref name, or a prefix of the image's config or
    manifest digest. Without it, the error lists the choices.
    """
    c = _Container(path)
    if c.has("manifest.json"):
        choices = _docker_images(c)
    elif c.has("index.json"):
        choices = _oci_images(c)
    elif c.unfinished and c.blobs:
        raise StackError(
            path, "the archive is damaged: truncated: it ends without tar's end marker, before its manifest.json"
        )
    else:
        raise StackError(path, "not an image archive: no manifest.json (docker save) or index.json (OCI)")
    chosen = _choose(c.path, choices, image)
    layers, config = chosen.load()
    if not layers:
        raise StackError(path, "image has no layers")
    steps = history_steps(config)
    diff_ids = [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []]
    built = []
    for i, name in enumerate(layers):  # bottom first
        root = f"{c.path}/{name}"
        try:
            fs = TarLayerFS(root, c.blob(name))
        except DamagedLayer as e:
            lower = f"lower:{len(layers) - 1 - i}"
            raise StackError(c.path, f"layer {printable(name)} ({lower}) is damaged: {e.detail}") from None
        blob_id = posixpath.basename(posixpath.dirname(name) if name.endswith("/layer.tar") else name)
        ids = [("diff", diff_ids[i] if i < len(diff_ids) else ""), ("blob", blob_id)]
        built.append((root, fs, layer_label(steps[i] if i < len(steps) else None, fs.size, ids)))
    top_first = list(reversed(built))
    lowers = tuple(Layer(root, "lower", i, label, fs=fs) for i, (root, fs, label) in enumerate(top_first))
    return Stack(lowers, None, None, (), "trusted", ("oci-whiteouts",))


@dataclass(frozen=True)
class _Image:
    """One image an archive holds: the names it answers to and how to read its layers and config."""

    names: tuple[str, ...]  # tags / ref names, as shown in the choices
    digests: tuple[str, ...]  # config / manifest digests (bare hex), matched by prefix
    load: Callable[[], tuple[list[str], dict[str, Any]]]

    @property
    def shown(self) -> str:
        return self.names[0] if self.names else self.digests[0][:12] if self.digests else "(unnamed)"


def _choose(path: str, images: list[_Image], want: str | None) -> _Image:
    if not images:
        raise StackError(path, "the archive holds no image")
    listed = ", ".join(sorted(printable(im.shown) for im in images))
    if want is None:
        if len(images) == 1:
            return images[0]
        raise StackError(path, f"the archive holds {len(images)} images; choose one with --image: {listed}")
    for cand in (want, want + ":latest"):
        hits = [im for im in images if cand in im.names]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            which = ", ".join(sorted(printable(im.shown) for im in hits))
            raise StackError(path, f"{cand!r} names {len(hits)} images; choose one with --image: {which}")
    bare = want.split(":", 1)[1] if want.startswith("sha256:") else want
    if len(bare) >= 3 and all(ch in "0123456789abcdef" for ch in bare):
        hits = [im for im in images if any(d.startswith(bare) for d in im.digests)]
        if len(hits) == 1:
            return hits[0]
        if len(hits) > 1:
            raise StackError(path, f"image id prefix {want!r} is ambiguous; the archive holds: {listed}")
    hits = [im for im in images if any(n.startswith(want + "@") for n in im.names)]
    if hits:  # a ref name of a multi-platform image index
        which = ", ".join(sorted(printable(im.shown) for im in hits))
        raise StackError(path, f"{want!r} is an image index of {len(hits)} platforms; choose one with --image: {which}")
    raise StackError(path, f"no image {want!r} in the archive; it holds: {listed}")


def _list(value: object) -> list[Any]:
    """A JSON array from an archive's record, or nothing (a field of another type is read as absent)."""
    return value if isinstance(value, list) else []


def _docker_images(c: _Container) -> list[_Image]:
    manifest = c.json("manifest.json")
    if not isinstance(manifest, list) or not manifest or not all(isinstance(m, dict) for m in manifest):
        raise StackError(f"{c.path}/manifest.json", "not a docker-archive manifest")
    out = []
    for entry in manifest:
        config_name = str(entry.get("Config", ""))
        tags = tuple(str(t) for t in _list(entry.get("RepoTags")))
        digest = posixpath.basename(config_name).removesuffix(".json")

        def load(entry: dict[str, Any] = entry, config_name: str = config_name) -> tuple[list[str], dict[str, Any]]:
            config = c.json(config_name)
            return [str(x) for x in _list(entry.get("Layers"))], config if isinstance(config, dict) else {}

        out.append(_Image(tags, (digest,) if digest else (), load))
    return out


def _blob_name(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"blobs/{algo}/{hexd}"


_REF_KEYS = ("io.containerd.image.name", "org.opencontainers.image.ref.name")
_INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")


@dataclass(frozen=True)
class _Leaf:
    """An image manifest an OCI layout reaches, through image indexes (one per platform)."""

    refs: tuple[str, ...]  # the ref names of the index.json entry it comes from
    platform: str  # "linux/arm64/v8", "" when not given
    digest: str  # the manifest's digest


def _oci_images(c: _Container) -> list[_Image]:
    """One choice per image manifest: an image index with several platforms gives one per platform,
    named ``REF@OS/ARCH[/VARIANT]`` (``--image`` also takes ``OS/ARCH[/VARIANT]`` alone)."""
    index = c.json("index.json")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not manifests or not isinstance(manifests, list):
        raise StackError(f"{c.path}/index.json", "no manifests")
    leaves: list[_Leaf] = []
    for desc in manifests:
        if not isinstance(desc, dict) or "digest" not in desc:
            continue
        notes = desc.get("annotations") or {}
        refs = tuple(dict.fromkeys(str(notes[k]) for k in _REF_KEYS if isinstance(notes, dict) and notes.get(k)))
        leaves += _oci_leaves(c, desc, refs, _platform(desc), 0)
    per_ref: dict[str, int] = {}
    for leaf in leaves:
        for ref in leaf.refs:
            per_ref[ref] = per_ref.get(ref, 0) + 1
    out = []
    for leaf in leaves:
        hexd = leaf.digest.split(":", 1)[-1]
        names = [r if per_ref[r] == 1 else f"{r}@{leaf.platform or hexd[:12]}" for r in leaf.refs]
        if leaf.platform:
            names.append(leaf.platform)
            if leaf.platform.count("/") == 2:  # linux/arm64/v8 answers to linux/arm64 too
                names.append(leaf.platform.rsplit("/", 1)[0])
        if not leaf.refs and len(leaves) > 1 and leaf.platform:
            names.insert(0, leaf.platform)

        def load(digest: str = leaf.digest) -> tuple[list[str], dict[str, Any]]:
            return _oci_layers(c, digest)

        out.append(_Image(tuple(dict.fromkeys(names)), (hexd,), load))
    return out


def _platform(desc: dict[str, Any]) -> str:
    p = desc.get("platform")
    if not isinstance(p, dict):
        return ""
    return "/".join(str(p[k]) for k in ("os", "architecture", "variant") if p.get(k))


def _oci_leaves(c: _Container, desc: dict[str, Any], refs: tuple[str, ...], platform: str, depth: int) -> list[_Leaf]:
    digest = str(desc["digest"])
    media = desc.get("mediaType")
    blob: Any = None
    if media is None or media in _INDEX_TYPES:
        blob = c.json(_blob_name(digest))
    is_index = isinstance(blob, dict) and isinstance(blob.get("manifests"), list) and "layers" not in blob
    if not is_index or depth >= 4:
        return [_Leaf(refs, platform, digest)]
    out: list[_Leaf] = []
    for child in blob["manifests"]:
        if not isinstance(child, dict) or "digest" not in child or _is_attestation(child):
            continue
        out += _oci_leaves(c, child, refs, _platform(child) or platform, depth + 1)
    if not out:
        raise StackError(f"{c.path}/{_blob_name(digest)}", "the image index lists no image manifest")
    return out


def _is_attestation(desc: dict[str, Any]) -> bool:
    """BuildKit's provenance / SBOM entries of an image index: not images (platform unknown/unknown)."""
    notes = desc.get("annotations")
    if isinstance(notes, dict) and notes.get("vnd.docker.reference.type") == "attestation-manifest":
        return True
    p = desc.get("platform")
    return isinstance(p, dict) and p.get("os") == "unknown"


def _oci_layers(c: _Container, digest: str) -> tuple[list[str], dict[str, Any]]:
    manifest = c.json(_blob_name(digest))
    for _ in range(4):  # an image index points at per-platform manifests
        if isinstance(manifest, dict) and "manifests" in manifest and "layers" not in manifest:
            manifest = c.json(_blob_name(str(manifest["manifests"][0]["digest"])))
    if not isinstance(manifest, dict):
        raise StackError(c.path, "OCI manifest is not a JSON object")
    config = c.json(_blob_name(str(manifest["config"]["digest"])))
    layers = [_blob_name(str(layer["digest"])) for layer in manifest.get("layers") or []]
    return layers, config if isinstance(config, dict) else {}
