"""Damaged image archives from real engines (``podman save``, ``docker save``) are clear one-line errors (exit 2)
that name the archive, the layer and the problem; intact ones still open whole."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import os
import shutil
import tarfile

import pytest

from tests.engines.conftest import Engine
from ufs_tui import cli
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.sources import open_source
from ufs_tui.core.sources.archive import TarLayerFS


@pytest.fixture(scope="module")
def oci_dir(podman: Engine, engine_tmp: str) -> str:
    """``podman save --format oci-dir multi:1``: an OCI layout dir with gzip layer blobs."""
    path = f"{engine_tmp}/multi-oci-dir"
    podman.run("save", "--format", "oci-dir", "-o", path, "localhost/multi:1")
    return path


def biggest_layer(layout: str) -> tuple[str, int]:
    """(blob name, lower index) of the image's biggest layer, from the layout's own manifest."""
    with open(f"{layout}/index.json") as f:
        digest = json.load(f)["manifests"][0]["digest"].split(":")[1]
    with open(f"{layout}/blobs/sha256/{digest}") as f:
        layers = [d["digest"].split(":")[1] for d in json.load(f)["layers"]]  # bottom first
    sizes = [os.path.getsize(f"{layout}/blobs/sha256/{h}") for h in layers]
    i = sizes.index(max(sizes))
    return f"blobs/sha256/{layers[i]}", len(layers) - 1 - i


def flip(path: str, at: int, n: int = 100) -> None:
    with open(path, "r+b") as f:
        f.seek(at)
        data = f.read(n)
        f.seek(at)
        f.write(bytes(b ^ 0x5A for b in data))


def tree(*argv: str) -> tuple[int, str, str]:
    return run("tree", *argv)


def run(*argv: str) -> tuple[int, str, str]:
    """``ufs-tui ARGV``: exit code, stdout, stderr."""
    out = io.StringIO()
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.main(list(argv), stdout=out)
    return rc, out.getvalue(), err.getvalue()


def paths(spec: str) -> set[str]:
    return {p for p, _ in OverlayView(open_source(spec)).walk()}


@pytest.mark.parametrize("where", [0.2, 0.5, 0.8])
def test_corrupt_gzip_layer_in_oci_dir(oci_dir: str, tmp_path: os.PathLike[str], where: float) -> None:
    copy = os.path.join(os.fspath(tmp_path), "layout")
    shutil.copytree(oci_dir, copy)
    blob, lower = biggest_layer(copy)
    with open(f"{copy}/{blob}", "rb") as f:
        assert f.read(2) == b"\x1f\x8b"  # podman wrote it gzip-compressed
    assert paths(copy) == paths(oci_dir)
    flip(f"{copy}/{blob}", int(os.path.getsize(f"{copy}/{blob}") * where))
    rc, out, err = tree(copy, "--format", "json")
    assert rc == 2 and out == ""
    assert err.count("\n") == 1 and err.startswith(f"ufs-tui: error: {copy}: layer {blob} (lower:{lower}) is damaged: ")
    # diff and the UI open the stack the same way: the same error, before anything is shown
    assert run("diff", copy) == (2, "", err)
    assert run(copy) == (2, "", err)


def test_truncated_gzip_layer(oci_dir: str, tmp_path: os.PathLike[str]) -> None:
    copy = os.path.join(os.fspath(tmp_path), "layout")
    shutil.copytree(oci_dir, copy)
    blob, lower = biggest_layer(copy)
    full = f"{copy}/{blob}"
    os.truncate(full, os.path.getsize(full) // 2)
    with pytest.raises(StackError, match=rf"layer {blob} \(lower:{lower}\) is damaged: truncated"):
        open_source(copy)


def test_corrupt_layer_inside_oci_archive(oci_archive: str, tmp_path: os.PathLike[str]) -> None:
    """The same inside an oci-archive tar: the layer is a member, damaged in the middle."""
    copy = os.path.join(os.fspath(tmp_path), "multi-oci.tar")
    shutil.copy(oci_archive, copy)
    with tarfile.open(copy) as tf:
        blobs = [ti for ti in tf if ti.name.startswith("blobs/") and ti.size > 100_000]
    assert blobs
    member = max(blobs, key=lambda ti: ti.size)
    flip(copy, member.offset_data + member.size // 2)
    rc, out, err = tree(copy)
    assert rc == 2 and out == ""
    assert f"{copy}: layer {member.name} (lower:" in err and "is damaged: " in err and err.count("\n") == 1


def test_truncated_docker_save(docker_archive: str, tmp_path: os.PathLike[str]) -> None:
    """docker save cut short anywhere: inside a layer's data, inside a header, or cleanly between members
    (before manifest.json, which docker writes last): "damaged"/"truncated", never "not an image archive"."""
    with tarfile.open(docker_archive) as tf:
        members = {ti.name: ti for ti in tf}
    layer = max((ti for ti in members.values() if ti.name.endswith("/layer.tar")), key=lambda ti: ti.size)
    manifest = members["manifest.json"]
    cuts = {
        "in a layer's data": layer.offset_data + layer.size // 2,
        "in a header": manifest.offset + 100,
        "between members": manifest.offset,
        "in the manifest": manifest.offset_data + 10,
    }
    with open(docker_archive, "rb") as f:
        data = f.read()
    for what, at in cuts.items():
        cut = os.path.join(os.fspath(tmp_path), "cut.tar")
        with open(cut, "wb") as f:
            f.write(data[:at])
        rc, out, err = tree(cut)
        assert rc == 2 and out == "", what
        assert err.startswith(f"ufs-tui: error: {cut}: the archive is damaged: truncated"), (what, err)
        assert "not an image archive" not in err and err.count("\n") == 1, what


def test_corrupt_header_in_docker_save_layer(docker_archive: str, tmp_path: os.PathLike[str]) -> None:
    """docker save layers are plain tars (no checksum over the data): a damaged header in the middle is found."""
    copy = os.path.join(os.fspath(tmp_path), "multi.tar")
    shutil.copy(docker_archive, copy)
    with tarfile.open(copy) as tf:
        layer = max((ti for ti in tf if ti.name.endswith("/layer.tar")), key=lambda ti: ti.size)
        inner = tarfile.open(fileobj=tf.extractfile(layer))  # noqa: SIM115 - closed with tf
        headers = [ti.offset for ti in inner]
    at = headers[len(headers) // 2]
    flip(copy, layer.offset_data + at + 100, 50)  # mode, uid, gid, size, mtime, checksum fields
    with pytest.raises(StackError, match=rf"layer {layer.name} \(lower:\d\) is damaged: bad tar header at offset {at}"):
        open_source(copy)


def test_intact_gzip_layer_indexes_every_member(oci_dir: str) -> None:
    """The checks cost nothing on an intact layout: each member of the biggest layer is indexed (its gzip read
    to the end, CRC checked), as tarfile lists them."""
    blob, _ = biggest_layer(oci_dir)
    with open(f"{oci_dir}/{blob}", "rb") as f, tarfile.open(fileobj=io.BytesIO(gzip.decompress(f.read()))) as tf:
        names = {os.path.normpath(ti.name).lstrip("/") for ti in tf} - {"."}
    layer = next(la for la in open_source(oci_dir).lowers if la.path.endswith(blob))
    assert isinstance(layer.fs, TarLayerFS)
    assert set(layer.fs.members) - {""} == names
