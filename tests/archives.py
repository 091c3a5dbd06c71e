"""Image archives written by hand for the tests (the engines' own archives are tested in tests/engines)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


def docker_save_archive(path: str) -> None:
    """A two-layer ``docker save`` archive, written by hand: layer 1 has a, b and dir/x; layer 2 replaces a,
    adds c and deletes b with a ``.wh.`` whiteout."""

    def layer(files: dict[str, bytes]) -> bytes:
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
            for name, data in files.items():
                info = tarfile.TarInfo(name)
                info.size = len(data)
                t.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    layers = [
        layer({"a": b"a1\n", "b": b"b1\n", "dir/x": b"x\n"}),
        layer({"a": b"a2 longer\n", "c": b"c\n", ".wh.b": b""}),
    ]
    config = {
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(data).hexdigest() for data in layers]},
        "history": [{"created_by": "ADD base /"}, {"created_by": "/bin/sh -c change things"}],
    }
    with tarfile.open(path, "w") as t:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        add("config.json", json.dumps(config).encode())
        for n, data in enumerate(layers):
            add(f"l{n}/layer.tar", data)
        manifest = [{"Config": "config.json", "RepoTags": ["hand:1"], "Layers": ["l0/layer.tar", "l1/layer.tar"]}]
        add("manifest.json", json.dumps(manifest).encode())


# ------------------------------------------------------------------------------------ layered archives
# A layer is a dict of tar members in order: name -> bytes (a file), or one of the markers below. Whiteouts
# and opaque markers are plain names: ".wh.NAME" (b"") and "DIR/.wh..wh..opq" (b"").


@dataclass(frozen=True)
class Dir:
    mode: int = 0o755


@dataclass(frozen=True)
class Symlink:
    target: str


@dataclass(frozen=True)
class Hardlink:
    target: str


@dataclass(frozen=True)
class Fifo:
    pass


Member = bytes | Dir | Symlink | Hardlink | Fifo


def layer_tar(members: Mapping[str, Member]) -> bytes:
    """One layer tar holding ``members`` in order, as given (no parent dirs added)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, what in members.items():
            info = tarfile.TarInfo(name)
            info.mtime = 1700000000
            data = None
            if isinstance(what, bytes):
                info.size, info.mode, data = len(what), 0o644, io.BytesIO(what)
            elif isinstance(what, Dir):
                info.type, info.mode = tarfile.DIRTYPE, what.mode
            elif isinstance(what, Symlink):
                info.type, info.linkname = tarfile.SYMTYPE, what.target
            elif isinstance(what, Hardlink):
                info.type, info.linkname = tarfile.LNKTYPE, what.target
            else:
                info.type = tarfile.FIFOTYPE
            t.addfile(info, data)
    return buf.getvalue()


def _digest(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def layered_archive(
    path: str,
    layers: Sequence[Mapping[str, Member]],
    *,
    oci: bool = False,
    gzip_layers: bool = False,
    manifest_json: bool = True,
    order: Sequence[int] | None = None,
    history: Sequence[dict[str, object]] | None = None,
    link_repeats: bool = False,
    tag: str = "layered:1",
) -> None:
    """An image archive of ``layers`` (bottom first), written by hand.

    ``oci``: Docker 25+'s layout (``oci-layout``, ``index.json``, ``blobs/sha256/``, plus ``manifest.json``
    unless ``manifest_json`` is False); else the legacy ``docker save`` layout (``ID/layer.tar``). ``order``:
    the manifest's layer list as indexes into ``layers`` (a layer may repeat); ``link_repeats``: a repeated
    legacy layer is a symlink to the first, as ``docker save`` writes it. ``history``: the config's entries
    (default: one per layer in ``order``); entries with ``empty_layer`` add no layer.
    """
    blobs = [layer_tar(members) for members in layers]
    diff_ids = ["sha256:" + _digest(b) for b in blobs]
    if gzip_layers:
        blobs = [gzip.compress(b, mtime=0) for b in blobs]
    order = list(range(len(layers))) if order is None else list(order)
    entries = list(history) if history is not None else [{"created_by": f"/bin/sh -c step {i}"} for i in order]
    config = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [diff_ids[i] for i in order]},
        "history": entries,
    }
    config_bytes = json.dumps(config).encode()
    with tarfile.open(path, "w") as t:
        if oci:
            _write_oci(t, blobs, order, config_bytes, gzip_layers, manifest_json, tag)
        else:
            _write_legacy(t, blobs, order, config_bytes, link_repeats, tag)


def _add_member(t: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime = len(data), 1700000000
    t.addfile(info, io.BytesIO(data))


def _write_legacy(
    t: tarfile.TarFile, blobs: list[bytes], order: list[int], config: bytes, link_repeats: bool, tag: str
) -> None:
    config_name = _digest(config) + ".json"
    _add_member(t, config_name, config)
    names: list[str] = []
    written: dict[int, str] = {}
    for position, i in enumerate(order):
        layer_id = _digest(f"{position}:{i}".encode())
        name = f"{layer_id}/layer.tar"
        if i in written and link_repeats:
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, f"../{written[i]}"
            t.addfile(info)
        else:
            _add_member(t, name, blobs[i])
            written.setdefault(i, name)
        names.append(name)
    manifest = [{"Config": config_name, "RepoTags": [tag], "Layers": names}]
    _add_member(t, "manifest.json", json.dumps(manifest).encode())


def _write_oci(
    t: tarfile.TarFile, blobs: list[bytes], order: list[int], config: bytes, gz: bool, manifest_json: bool, tag: str
) -> None:
    media = "application/vnd.oci.image.layer.v1.tar" + ("+gzip" if gz else "")
    layer_descs = [{"mediaType": media, "digest": "sha256:" + _digest(blobs[i]), "size": len(blobs[i])} for i in order]
    config_desc = {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": "sha256:" + _digest(config),
                   "size": len(config)}  # fmt: skip
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": config_desc,
            "layers": layer_descs,
        }  # fmt: skip
    ).encode()
    _add_member(t, "oci-layout", b'{"imageLayoutVersion": "1.0.0"}')
    done: set[str] = set()
    for data in [config, *(blobs[i] for i in order), manifest]:
        name = "blobs/sha256/" + _digest(data)
        if name not in done:
            _add_member(t, name, data)
            done.add(name)
    index = {
        "schemaVersion": 2,
        "manifests": [
            {
                "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "digest": "sha256:" + _digest(manifest),
                "size": len(manifest),
                "annotations": {"io.containerd.image.name": tag, "org.opencontainers.image.ref.name": "1"},
            }
        ],
    }
    _add_member(t, "index.json", json.dumps(index).encode())
    if manifest_json:
        docker = [{"Config": "blobs/sha256/" + _digest(config), "RepoTags": [tag],
                   "Layers": ["blobs/sha256/" + _digest(blobs[i]) for i in order]}]  # fmt: skip
        _add_member(t, "manifest.json", json.dumps(docker).encode())
