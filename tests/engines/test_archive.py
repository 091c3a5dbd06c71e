"""Image archives (docker save, podman save --format oci-archive) read in place, against the kernel's view.

The reference is a real read-only overlay mount of the same image's layers from the engine's own
storage: the archive's model must show the same tree, modes, sizes, link targets and file contents.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import subprocess
import tarfile
import tempfile

import pytest

from tests.engines.conftest import Engine
from tests.overlay import Facts, kernel_tree, mounted
from ufs_tui import cli
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.sources import open_source


def archive_tree(stack: Stack) -> dict[str, Facts]:
    """model_tree for layers that are not dirs: contents read through each layer's LayerFS."""
    out: dict[str, Facts] = {}
    for path, e in OverlayView(stack).walk():
        digest = None
        if e.kind == "file":
            assert e.layer.fs is not None
            digest = hashlib.sha256(e.layer.fs.read(e.source, 1 << 30)).hexdigest()
        out[path] = (e.kind, e.mode, e.size if e.kind in ("file", "symlink") else 0, e.target, digest)
    return out


def engine_image_kernel_tree(image: Stack) -> dict[str, Facts]:
    with tempfile.TemporaryDirectory() as mnt, mounted([layer.path for layer in image.lowers], None, None, mnt, "ro"):
        return kernel_tree(mnt)


def test_docker_save_archive_equals_kernel(docker: Engine, docker_archive: str) -> None:
    stack = open_source(docker_archive)
    image = open_source("docker-image:multi:1", docker_root=docker.root)
    assert len(stack.lowers) == 3 and "oci-whiteouts" in stack.options
    assert "echo three > /layer3" in stack.lowers[0].label
    tree = archive_tree(stack)
    assert "/etc/motd" not in tree and "/layer2/keep/new" in tree and "/layer2/keep/k" not in tree
    assert tree == engine_image_kernel_tree(image)


def test_oci_archive_equals_kernel(podman: Engine, oci_archive: str) -> None:
    stack = open_source(oci_archive)
    image = open_source("podman-image:multi:1", podman_root=podman.root)
    assert len(stack.lowers) == 3
    assert "rm /etc/motd" in stack.lowers[1].label
    assert archive_tree(stack) == engine_image_kernel_tree(image)


def test_oci_layout_dir(podman: Engine, oci_archive: str, tmp_path: os.PathLike[str]) -> None:
    """An unpacked OCI layout directory is read in place too (blob files instead of archive members)."""
    layout = os.path.join(os.fspath(tmp_path), "layout")
    os.mkdir(layout)
    with tarfile.open(oci_archive) as tf:
        tf.extractall(layout, filter="data")
    assert archive_tree(open_source(layout)) == archive_tree(open_source(oci_archive))


def test_cli_tree_json_and_hidden_whiteouts(docker_archive: str) -> None:
    out = io.StringIO()
    assert cli.main(["tree", docker_archive, "--format", "json"], stdout=out) == 0
    rows = {json.loads(line)["path"]: json.loads(line) for line in out.getvalue().splitlines()}
    assert rows["/layer3"]["layer"] == "lower:0" and rows["/layer2/keep"]["status"] == "opaque"
    out = io.StringIO()
    assert cli.main(["tree", docker_archive, "--format", "json", "--all"], stdout=out) == 0
    hidden = [json.loads(line) for line in out.getvalue().splitlines()]
    assert any(r["path"] == "/etc/motd" and r["status"] == "whited-out" for r in hidden)
    assert any(r["path"] == "/layer2/keep" and r["status"] == "opaque-hidden" for r in hidden)  # the lower dir


def test_not_an_archive(tmp_path: os.PathLike[str]) -> None:
    junk = os.path.join(os.fspath(tmp_path), "junk.tar")
    with open(junk, "wb") as f:
        f.write(b"this is not a tar\n" * 100)
    with pytest.raises(StackError, match="not an image archive"):
        open_source(junk)
    plain = os.path.join(os.fspath(tmp_path), "plain.tar")
    subprocess.run(["tar", "-cf", plain, "-C", os.fspath(tmp_path), "junk.tar"], check=True)
    with pytest.raises(StackError, match="not an image archive"):
        open_source(plain)
