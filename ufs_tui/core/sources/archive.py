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
from dataclasses import dataclass
from typing import IO, Any, cast

from ..errors import StackError
from ..markers import Node
from ..stack import Layer, Stack
from .common import history_steps, layer_label

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
        base = {0: 0, 1: self._pos, 2: self._size}[whence]
        self._pos = max(0, base + pos)
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
        self._index()

    def _index(self) -> None:
        f, stream = _open_blob(self.blob)
        try:
            # plain tars skip file data by seeking; gzip streams are read through once
            tf = (
                tarfile.open(fileobj=stream, mode="r|")  # noqa: SIM115
                if isinstance(stream, gzip.GzipFile)
                else tarfile.open(fileobj=stream, mode="r:")  # noqa: SIM115
            )
            with tf:
                for ti in tf:
                    rel = _norm(ti.name)
                    if rel == "":
                        self.members[""] = ti
                        continue
                    self._add(rel, ti)
                    self.size += ti.size if ti.isreg() else 0
        except (tarfile.TarError, OSError, EOFError) as e:
            raise StackError(f"{self.root}", f"cannot read layer tar: {e}") from None
        finally:
            stream.close()
            f.close()

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
        rel = self._rel(path)
        ti = self.members.get(rel) if rel is not None else None
        if ti is None:
            raise FileNotFoundError(path)
        ti = self._resolved(ti)
        if not ti.isreg():
            raise IsADirectoryError(path) if ti.isdir() else OSError(f"{path}: not a regular file")
        f, stream = _open_blob(self.blob)
        try:
            stream.seek(ti.offset_data)
            return stream.read(min(n, ti.size))
        finally:
            stream.close()
            f.close()


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
            with tarfile.open(path, mode="r:") as tf:
                for ti in tf:
                    if ti.isreg():
                        self.blobs[_norm(ti.name)] = Blob(self.path, ti.offset_data, ti.size)
        except tarfile.ReadError:
            raise StackError(path, "not an image archive (a tar from docker save, or an OCI layout)") from None
        except OSError as e:
            raise StackError(path, f"cannot be read: {e.strerror or e}") from None

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


def open_archive(path: str) -> Stack:
    """A read-only stack of the first image in a docker-archive or OCI archive/layout."""
    c = _Container(path)
    if c.has("manifest.json"):
        layers, config = _docker_layers(c)
    elif c.has("index.json"):
        layers, config = _oci_layers(c)
    else:
        raise StackError(path, "not an image archive: no manifest.json (docker save) or index.json (OCI)")
    if not layers:
        raise StackError(path, "image has no layers")
    steps = history_steps(config)
    diff_ids = [str(d) for d in (config.get("rootfs") or {}).get("diff_ids") or []]
    built = []
    for i, name in enumerate(layers):  # bottom first
        root = f"{c.path}/{name}"
        fs = TarLayerFS(root, c.blob(name))
        blob_id = posixpath.basename(posixpath.dirname(name) if name.endswith("/layer.tar") else name)
        ids = [("diff", diff_ids[i] if i < len(diff_ids) else ""), ("blob", blob_id)]
        built.append((root, fs, layer_label(steps[i] if i < len(steps) else None, fs.size, ids)))
    top_first = list(reversed(built))
    lowers = tuple(Layer(root, "lower", i, label, fs=fs) for i, (root, fs, label) in enumerate(top_first))
    return Stack(lowers, None, None, (), "trusted", ("oci-whiteouts",))


def _docker_layers(c: _Container) -> tuple[list[str], dict[str, Any]]:
    manifest = c.json("manifest.json")
    if not isinstance(manifest, list) or not manifest or not isinstance(manifest[0], dict):
        raise StackError(f"{c.path}/manifest.json", "not a docker-archive manifest")
    first = manifest[0]
    config = c.json(str(first.get("Config", "")))
    return [str(x) for x in first.get("Layers") or []], config if isinstance(config, dict) else {}


def _blob_name(digest: str) -> str:
    algo, _, hexd = digest.partition(":")
    return f"blobs/{algo}/{hexd}"


def _oci_layers(c: _Container) -> tuple[list[str], dict[str, Any]]:
    index = c.json("index.json")
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not manifests:
        raise StackError(f"{c.path}/index.json", "no manifests")
    desc = manifests[0]
    manifest = c.json(_blob_name(str(desc["digest"])))
    for _ in range(4):  # an image index points at per-platform manifests
        if isinstance(manifest, dict) and "manifests" in manifest and "layers" not in manifest:
            manifest = c.json(_blob_name(str(manifest["manifests"][0]["digest"])))
    if not isinstance(manifest, dict):
        raise StackError(c.path, "OCI manifest is not a JSON object")
    config = c.json(_blob_name(str(manifest["config"]["digest"])))
    layers = [_blob_name(str(layer["digest"])) for layer in manifest.get("layers") or []]
    return layers, config if isinstance(config, dict) else {}
