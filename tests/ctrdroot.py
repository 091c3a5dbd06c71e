"""A containerd root written by the tests (with tests/boltwriter.py): one namespace's snapshots, a container
and images, in the layout containerd 1.6 and 2.x write, for layouts and damage the real engines do not make on
demand."""

from __future__ import annotations

import os

from tests.boltwriter import Tree, write_db
from ufs_tui.core.sources.ctrd import META_DB, SNAPSHOTTER_DB

MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def uvarint_bytes(u: int) -> bytes:
    """Go's binary.PutUvarint."""
    out = bytearray()
    while u >= 0x80:
        out.append(u & 0x7F | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def zigzag(n: int) -> bytes:
    """Go's binary.PutVarint (zig-zag)."""
    return uvarint_bytes(n * 2 if n >= 0 else -n * 2 - 1)


def make_root(
    base: str,
    version: int = 4,
    chain: list[tuple[str, str | None, int, int]] | None = None,
    namespace: str = "ns",
    images: dict[str, str] | None = None,
) -> str:
    """A containerd root with ``namespace``: snapshots (key, parent key, id, kind), a container ``c1`` on the
    first of them, their dirs, and ``images`` (name -> manifest digest; no blobs)."""
    chain = chain or [("c1", "l2", 3, 2), ("l2", "l1", 2, 3), ("l1", None, 1, 3)]
    meta_snaps: Tree = {}
    backend: Tree = {}
    for key, parent, sid, kind in chain:
        name = f"{namespace}/{sid}/{key}".encode()
        meta_snaps[key.encode()] = {b"name": name, **({b"parent": parent.encode()} if parent else {})}
        rec: Tree = {b"id": bytes([sid]), b"kind": bytes([kind]), b"size": zigzag(100 * sid)}
        if parent:
            rec[b"parent"] = next(
                (f"{namespace}/{s}/{k}" for k, _, s, _ in chain if k == parent), f"{namespace}/9/gone"
            ).encode()
        backend[name] = rec
        for sub in ("fs", "work"):
            os.makedirs(f"{base}/io.containerd.snapshotter.v1.overlayfs/snapshots/{sid}/{sub}", exist_ok=True)
    container: Tree = {b"image": b"", b"snapshotter": b"overlayfs", b"snapshotKey": b"c1", b"labels": {b"a": b"b"}}
    meta: Tree = {
        b"v1": {
            b"version": zigzag(version),
            namespace.encode(): {
                b"containers": {b"c1": container},
                b"snapshots": {b"overlayfs": meta_snaps},
                b"images": {
                    name.encode(): {b"target": {b"digest": digest.encode(), b"mediatype": MANIFEST.encode()}}
                    for name, digest in (images or {}).items()
                },
            },
        }
    }
    os.makedirs(os.path.dirname(f"{base}/{META_DB}"))
    write_db(f"{base}/{META_DB}", meta)
    write_db(f"{base}/{SNAPSHOTTER_DB}", {b"v1": {b"snapshots": backend}})
    return base


def snap_dir(root: str, sid: int) -> str:
    return f"{root}/io.containerd.snapshotter.v1.overlayfs/snapshots/{sid}/fs"
