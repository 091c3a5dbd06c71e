"""containerd's own records, read from its root without the daemon (containerd 1.6 to 2.x).

Under the root (default ``/var/lib/containerd``; Docker's own containerd: ``DATA_ROOT/containerd/daemon``):

* ``io.containerd.metadata.v1.bolt/meta.db`` (bbolt): ``v1/<namespace>/containers/<id>`` (``image``,
  ``snapshotter``, ``snapshotKey``, ``labels/``), ``v1/<namespace>/images/<name>`` (``target/{digest,
  mediatype,size}``, ``labels/``), ``v1/<namespace>/snapshots/<snapshotter>/<key>`` (``name``: the key in the
  snapshotter's own db, ``<namespace>/<N>/<key>``; ``parent``: the parent's key in this namespace);
* ``io.containerd.snapshotter.v1.overlayfs/metadata.db`` (bbolt): ``v1/snapshots/<name>`` (``id``: uvarint,
  ``kind``: one byte, 1 view, 2 active, 3 committed; ``parent``: the parent's name), the layer dirs being
  ``io.containerd.snapshotter.v1.overlayfs/snapshots/<id>/{fs,work}``;
* ``io.containerd.content.v1.content/blobs/sha256/<hex>``: image indexes, manifests and configs.

An active snapshot mounts as overlay ``upperdir=<id>/fs,workdir=<id>/work,lowerdir=<parents' fs, nearest
first>``; a view or a committed one as its own and its parents' ``fs``, read-only.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, TypeVar

from ..model.errors import StackError
from ..model.stack import Stack
from .bbolt import Bucket, view
from .common import parse_json, read_bytes

META_DB = "io.containerd.metadata.v1.bolt/meta.db"
SNAPSHOTTER = "overlayfs"
SNAPSHOTTER_DIR = "io.containerd.snapshotter.v1.overlayfs"
SNAPSHOTTER_DB = SNAPSHOTTER_DIR + "/metadata.db"
BLOBS = "io.containerd.content.v1.content/blobs"

KINDS = {1: "view", 2: "active", 3: "committed"}
SCHEMA_VERSIONS = (1, 2, 3, 4)  # v1/version: 3 in containerd 1.6, 4 in 2.x (each a migration of the one before)
UPGRADE = "fix: a newer ufs-tui may read it"

INDEX_TYPES = ("application/vnd.oci.image.index.v1+json", "application/vnd.docker.distribution.manifest.list.v2+json")
MANIFEST_TYPES = ("application/vnd.oci.image.manifest.v1+json", "application/vnd.docker.distribution.manifest.v2+json")


@dataclass(frozen=True)
class Container:
    namespace: str
    id: str
    image: str
    snapshotter: str
    snapshot_key: str
    labels: dict[str, str] = field(default_factory=dict, compare=False)
    created: float = 0.0  # seconds since the epoch


@dataclass(frozen=True)
class Image:
    namespace: str
    name: str
    digest: str
    media_type: str
    labels: dict[str, str] = field(default_factory=dict, compare=False)


# Records with no field left out of comparisons are NamedTuples, not frozen dataclasses: making a dataclass takes
# about 1 ms on a small VM, paid by every process that opens a container of Docker's containerd image store.
class Snapshot(NamedTuple):
    """One snapshot: its key in the namespace, and where the overlayfs snapshotter keeps it."""

    key: str
    parent: str | None  # the parent's key in the same namespace
    id: str  # the dir under snapshots/
    kind: str  # view | active | committed | unknown
    size: int | None = None


class Backend(NamedTuple):
    """A snapshot as the overlayfs snapshotter records it (its own db)."""

    id: str  # the dir under snapshots/
    kind: str  # view | active | committed | unknown
    parent: str | None  # the parent's name in the snapshotter's db
    size: int | None  # bytes the layer's files use, recorded when it was committed


SnapshotRecord = tuple[str, str | None]  # (name in the snapshotter's db, parent key)


class Namespace(NamedTuple):
    """What a namespace holds: containers, images and the overlayfs snapshotter's snapshots (read at once by
    :meth:`ContainerdRoot.namespace`, partly on demand by :meth:`ContainerdRoot.namespace_for`)."""

    name: str
    containers: Mapping[str, Container]
    images: Mapping[str, Image]
    snapshots: Mapping[str, SnapshotRecord]  # key -> (name in the snapshotter's db, parent key)


K = TypeVar("K")
V = TypeVar("V")
T = TypeVar("T")


class OnDemand(Mapping[K, V]):
    """A mapping read when it is first used (``load``, once)."""

    def __init__(self, load: Callable[[], dict[K, V]]) -> None:
        self._load: Callable[[], dict[K, V]] | None = load
        self._data: dict[K, V] = {}

    def data(self) -> dict[K, V]:
        if self._load is not None:
            self._data, self._load = self._load(), None
        return self._data

    def __getitem__(self, key: K) -> V:
        return self.data()[key]

    def __iter__(self) -> Iterator[K]:
        return iter(self.data())

    def __len__(self) -> int:
        return len(self.data())


class SnapshotRecords(OnDemand[str, SnapshotRecord]):
    """A namespace's overlayfs snapshots, read as far as they are used: a key looked up is read with its parents
    in one view of ``meta.db``; every key only when they are iterated or counted (then only those)."""

    def __init__(
        self, load: Callable[[], dict[str, SnapshotRecord]], chain: Callable[[str], dict[str, SnapshotRecord | None]]
    ) -> None:
        super().__init__(load)
        self._chain = chain
        self._known: dict[str, SnapshotRecord | None] = {}

    def known(self, records: dict[str, SnapshotRecord | None]) -> SnapshotRecords:
        """These with the records (None: no such key) read already."""
        self._known.update(records)
        return self

    def __getitem__(self, key: str) -> SnapshotRecord:
        if self._load is None:
            return self._data[key]
        if key not in self._known:
            self._known.update(self._chain(key))
        rec = self._known.get(key)
        if rec is None:
            raise KeyError(key)
        return rec


def uvarint(data: bytes) -> int | None:
    """Go's binary.Uvarint: None when ``data`` does not hold one."""
    value = shift = 0
    for i, b in enumerate(data[:10]):
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value if i < 9 or b <= 1 else None
        shift += 7
    return None


def varint(data: bytes) -> int | None:
    """Go's binary.Varint (zig-zag): None when ``data`` does not hold one."""
    u = uvarint(data)
    if u is None:
        return None
    return ~(u >> 1) if u & 1 else u >> 1


def go_time(data: bytes | None) -> float:
    """Go's time.MarshalBinary (version 1 or 2: seconds since year 1, nanoseconds, zone) as a Unix time."""
    if not data or len(data) < 15 or data[0] not in (1, 2):
        return 0.0
    seconds = int.from_bytes(data[1:9], "big", signed=True) - 62135596800
    return seconds + int.from_bytes(data[9:13], "big") / 1e9


def _text(b: bytes | None) -> str:
    return os.fsdecode(b) if b is not None else ""


def _labels(bkt: Bucket | None) -> dict[str, str]:
    if bkt is None:
        return {}
    return {_text(k): _text(v) for k, v in bkt.items() if isinstance(v, bytes)}


class ContainerdRoot:
    """One containerd root on disk. Every read is a consistent snapshot of the bbolt files (no lock taken)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.meta_db = posixpath.join(root, META_DB)
        self.snapshotter_db = posixpath.join(root, SNAPSHOTTER_DB)
        self._backend: dict[str, Backend] | None = None
        if not os.path.exists(self.meta_db):
            try:
                os.stat(root)
            except PermissionError:
                raise StackError(root, "permission denied reading the containerd root (run as root)") from None
            except OSError:
                raise StackError(root, "no such containerd root (see --containerd-root)") from None
            raise StackError(root, f"not a containerd root: no {META_DB} (see --containerd-root)")

    def snapshot_dir(self, snapshot_id: str) -> str:
        return posixpath.join(self.root, SNAPSHOTTER_DIR, "snapshots", snapshot_id)

    # ------------------------------------------------------------------ metadata
    def namespace(self, name: str) -> Namespace:
        """Everything of one namespace (containers, images, overlayfs snapshots); empty if it does not exist."""

        def read(root: Bucket) -> Namespace:
            v1 = self._v1(root)
            return _read_namespace(v1, name) if v1 is not None else Namespace(name, {}, {}, {})

        return view(self.meta_db, read)

    def namespace_for(self, name: str, keys: Iterable[str] = ()) -> Namespace:
        """Namespace ``name`` for opening one thing in it, reading no more than that needs: its images, and the
        snapshots ``keys`` with their parents, now (in one view); any other snapshot, and the containers, when
        they are asked for. Empty if the namespace does not exist."""
        wanted = list(keys)
        images, known = self._in_namespace(name, lambda ns: (_read_images(ns, name), _chain_records(ns, wanted)))
        snapshots = SnapshotRecords(
            lambda: self._in_namespace(name, _read_snapshots),
            lambda key: self._in_namespace(name, lambda ns: _chain_records(ns, [key])),
        )
        containers = OnDemand(lambda: self._in_namespace(name, lambda ns: _read_containers(ns, name)))
        return Namespace(name, containers, images, snapshots.known(known))

    def _in_namespace(self, name: str, fn: Callable[[Bucket | None], T]) -> T:
        """``fn`` of namespace ``name``'s bucket (None where it has none), in a view of its own."""

        def read(root: Bucket) -> T:
            v1 = self._v1(root)
            return fn(v1.bucket(os.fsencode(name)) if v1 is not None else None)

        return view(self.meta_db, read)

    def check(self) -> ContainerdRoot:
        """This root, once its metadata has been read as far as its schema (a BoltError or StackError if not)."""
        view(self.meta_db, self._v1)
        return self

    def all_namespaces(self) -> list[Namespace]:
        def read(root: Bucket) -> list[Namespace]:
            v1 = self._v1(root)
            return [_read_namespace(v1, _text(k)) for k, _ in v1.buckets()] if v1 is not None else []

        return view(self.meta_db, read)

    def _v1(self, root: Bucket) -> Bucket | None:
        """The schema's root bucket (None in a database containerd has not written to), if its layout is known."""
        v1 = root.bucket(b"v1")
        if v1 is None:
            if next(root.keys(), None) is not None:
                raise StackError(self.meta_db, f"no 'v1' bucket: a layout ufs-tui does not know ({UPGRADE})")
            return None
        version = varint(v1.get(b"version") or b"")
        if version is not None and version > SCHEMA_VERSIONS[-1]:
            raise StackError(
                self.meta_db,
                f"containerd metadata schema version {version}, newer than ufs-tui knows "
                f"({', '.join(map(str, SCHEMA_VERSIONS))}: containerd 1.x and 2.x) ({UPGRADE})",
            )
        return v1

    def snapshots(self) -> dict[str, Backend]:
        """The overlayfs snapshotter's own records by name (read once per ContainerdRoot)."""
        if self._backend is None:
            exists = os.path.exists(self.snapshotter_db)
            self._backend = view(self.snapshotter_db, _read_snapshotter) if exists else {}
        return self._backend

    def backends(self, names: Iterable[str]) -> dict[str, Backend]:
        """The overlayfs snapshotter's records of ``names`` (those it has): looked up in one view, or taken from
        :meth:`snapshots` when that has been read."""
        wanted = list(dict.fromkeys(names))
        if self._backend is None:
            if not os.path.exists(self.snapshotter_db):
                return {}
            return view(self.snapshotter_db, lambda root: _read_backends(root, wanted))
        return {n: self._backend[n] for n in wanted if n in self._backend}

    # ------------------------------------------------------------------ content
    def blob(self, digest: str, limit: int = 16 << 20) -> Any:
        """A JSON blob of the content store (index, manifest or config), or None if it is missing or not JSON."""
        algo, _, hexpart = digest.partition(":")
        if not hexpart or "/" in hexpart or "/" in algo:
            return None
        path = posixpath.join(self.root, BLOBS, algo, hexpart)
        try:
            return parse_json(read_bytes(path, limit))
        except (OSError, ValueError):
            return None


def _read_namespace(v1: Bucket, name: str) -> Namespace:
    ns = v1.bucket(os.fsencode(name))
    return Namespace(name, _read_containers(ns, name), _read_images(ns, name), _read_snapshots(ns))


def _read_containers(ns: Bucket | None, name: str) -> dict[str, Container]:
    containers: dict[str, Container] = {}
    for key, bkt in _buckets(ns.bucket(b"containers") if ns is not None else None):
        cid = _text(key)
        containers[cid] = Container(
            name,
            cid,
            _text(bkt.get(b"image")),
            _text(bkt.get(b"snapshotter")),
            _text(bkt.get(b"snapshotKey")),
            _labels(bkt.bucket(b"labels")),
            go_time(bkt.get(b"createdat")),
        )
    return containers


def _read_images(ns: Bucket | None, name: str) -> dict[str, Image]:
    images: dict[str, Image] = {}
    for key, bkt in _buckets(ns.bucket(b"images") if ns is not None else None):
        target = bkt.bucket(b"target")
        if target is None:
            continue
        iname = _text(key)
        images[iname] = Image(
            name, iname, _text(target.get(b"digest")), _text(target.get(b"mediatype")), _labels(bkt.bucket(b"labels"))
        )
    return images


def _snapshot_record(bkt: Bucket) -> SnapshotRecord:
    parent = bkt.get(b"parent")
    return _text(bkt.get(b"name")), _text(parent) if parent else None


def _read_snapshots(ns: Bucket | None) -> dict[str, SnapshotRecord]:
    snaps = ns.bucket(b"snapshots", SNAPSHOTTER.encode()) if ns is not None else None
    return {_text(key): _snapshot_record(bkt) for key, bkt in _buckets(snaps)}


def _chain_records(ns: Bucket | None, keys: list[str]) -> dict[str, SnapshotRecord | None]:
    """The records of snapshots ``keys`` and of their parents, each key read once (None: not in the namespace)."""
    snaps = ns.bucket(b"snapshots", SNAPSHOTTER.encode()) if ns is not None else None
    out: dict[str, SnapshotRecord | None] = {}
    todo = list(reversed(keys))
    while todo:
        key = todo.pop()
        if key in out:
            continue
        bkt = snaps.bucket(os.fsencode(key)) if snaps is not None else None
        rec = _snapshot_record(bkt) if bkt is not None else None
        out[key] = rec
        if rec is not None and rec[1] is not None:
            todo.append(rec[1])
    return out


def _buckets(bkt: Bucket | None) -> Iterator[tuple[bytes, Bucket]]:
    return bkt.buckets() if bkt is not None else iter(())


def _backend(bkt: Bucket) -> Backend:
    sid = uvarint(bkt.get(b"id") or b"")
    kind = bkt.get(b"kind") or b""
    parent = bkt.get(b"parent")
    size = varint(bkt.get(b"size") or b"")
    return Backend(
        str(sid) if sid is not None else "",
        KINDS.get(kind[0], "unknown") if len(kind) == 1 else "unknown",
        _text(parent) if parent else None,
        size if size is not None and size >= 0 else None,
    )


def _read_snapshotter(root: Bucket) -> dict[str, Backend]:
    return {_text(key): _backend(bkt) for key, bkt in _buckets(root.bucket(b"v1", b"snapshots"))}


def _read_backends(root: Bucket, names: list[str]) -> dict[str, Backend]:
    snaps = root.bucket(b"v1", b"snapshots")
    found = ((n, snaps.bucket(os.fsencode(n)) if snaps is not None else None) for n in names)
    return {n: _backend(bkt) for n, bkt in found if bkt is not None}


# ---------------------------------------------------------------------- stacks of snapshots
def snapshot_chain(ctrd: ContainerdRoot, ns: Namespace, key: str) -> list[Snapshot]:
    """Snapshot ``key`` of namespace ``ns`` and its parents, nearest first, each with its dir id and kind (the
    snapshotter's records of the chain only are read)."""
    links: list[tuple[str, str, str | None]] = []  # (key, name in the snapshotter's db, parent key)
    seen: set[str] = set()
    broken: StackError | None = None
    cur: str | None = key
    while cur is not None:
        if cur in seen:
            broken = StackError(ctrd.meta_db, f"snapshot parents of {key} loop (the metadata is damaged)")
            break
        rec = ns.snapshots.get(cur)
        if rec is None:
            what = "snapshot" if not links else f"parent snapshot of {links[-1][0]}"
            broken = StackError(
                ctrd.meta_db, f"{what} {cur} is not in namespace {ns.name} (removed since, or never unpacked)"
            )
            break
        links.append((cur, *rec))
        seen.add(cur)
        cur = rec[1]
    backend = ctrd.backends(name for _, name, _ in links)
    out: list[Snapshot] = []
    for skey, name, parent in links:  # the first problem on the way down is the one told
        rec_b = backend.get(name)
        if rec_b is None or not rec_b.id:
            raise StackError(ctrd.snapshotter_db, f"snapshot {skey} ({name}) is not in the overlayfs snapshotter's db")
        out.append(Snapshot(skey, parent, rec_b.id, rec_b.kind, rec_b.size))
    if broken is not None:
        raise broken
    return out


def chain_stack(ctrd: ContainerdRoot, chain: list[Snapshot]) -> Stack:
    """The stack containerd mounts for the top of ``chain``: an active snapshot on top is the upper."""
    for snap in chain:
        fs = posixpath.join(ctrd.snapshot_dir(snap.id), "fs")
        if not os.path.isdir(fs):
            try:
                os.stat(posixpath.dirname(fs))
            except PermissionError:
                raise StackError(fs, "permission denied reading the containerd root (run as root)") from None
            except OSError:
                pass
            raise StackError(
                fs,
                f"the dir of snapshot {snap.key} is gone (garbage-collected or removed while the metadata still "
                "names it); list what exists with 'ufs-tui ps'",
            )
    top = chain[0]
    if top.kind == "active":
        lowers = [posixpath.join(ctrd.snapshot_dir(s.id), "fs") for s in chain[1:]]
        work = posixpath.join(ctrd.snapshot_dir(top.id), "work")
        return Stack.build(
            lowers, upper=posixpath.join(ctrd.snapshot_dir(top.id), "fs"), work=work if os.path.isdir(work) else None
        )
    return Stack.build([posixpath.join(ctrd.snapshot_dir(s.id), "fs") for s in chain])


# ---------------------------------------------------------------------- images
class ImageConfig(NamedTuple):
    """An image's config as the content store holds it: its layers bottom first, and the steps that made them."""

    manifest: str  # digest of the platform manifest
    config: str  # digest of the config (the image id in Docker's graph-driver terms)
    diff_ids: tuple[str, ...]
    chain_ids: tuple[str, ...]
    steps: tuple[str | None, ...]


def image_config(ctrd: ContainerdRoot, ns: Namespace, image: Image) -> ImageConfig:
    """The config of ``image`` for this host: of an index, the manifest whose layers are unpacked in ``ns``
    (else the first for this platform)."""
    from .common import history_steps
    from .docker import chain_ids

    manifest_digest = _platform_manifest(ctrd, ns, image.digest, image.media_type)
    manifest = ctrd.blob(manifest_digest)
    cfg_digest = manifest.get("config", {}).get("digest") if isinstance(manifest, dict) else None
    cfg = ctrd.blob(str(cfg_digest)) if isinstance(cfg_digest, str) else None
    if not isinstance(cfg, dict):
        raise StackError(
            posixpath.join(ctrd.root, BLOBS),
            f"the config of image {image.name} is missing from the content store (was it pulled completely?)",
        )
    rootfs = cfg.get("rootfs") if isinstance(cfg.get("rootfs"), dict) else {}
    assert isinstance(rootfs, dict)
    diff_ids = tuple(str(d) for d in rootfs.get("diff_ids") or [] if isinstance(d, str))
    return ImageConfig(
        manifest_digest, str(cfg_digest), diff_ids, tuple(chain_ids(list(diff_ids))), tuple(history_steps(cfg))
    )


def _platform_manifest(ctrd: ContainerdRoot, ns: Namespace, digest: str, media_type: str) -> str:
    if media_type not in INDEX_TYPES:
        return digest
    index = ctrd.blob(digest)
    entries = [m for m in (index.get("manifests") or []) if isinstance(m, dict)] if isinstance(index, dict) else []
    candidates = [m for m in entries if m.get("mediaType") in MANIFEST_TYPES and isinstance(m.get("digest"), str)]
    if not candidates:
        raise StackError(digest, "image index without a manifest this host can use (missing from the content store?)")
    for m in candidates:  # the one that was unpacked here
        try:
            cfg = image_config(ctrd, ns, Image(ns.name, digest, m["digest"], m["mediaType"]))
        except StackError:
            continue
        if cfg.chain_ids and cfg.chain_ids[-1] in ns.snapshots:
            return str(m["digest"])
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(os.uname().machine, os.uname().machine)
    for m in candidates:
        plat = m.get("platform") if isinstance(m.get("platform"), dict) else {}
        if isinstance(plat, dict) and plat.get("os") == "linux" and plat.get("architecture") == arch:
            return str(m["digest"])
    return str(candidates[0]["digest"])
