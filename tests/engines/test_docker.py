"""Docker (overlay2) containers and images, read from the data root, checked against dockerd itself."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tempfile

import pytest

from tests.engines.conftest import CHANGES, Engine, mounts_under
from tests.overlay import kernel_tree, model_tree, mounted
from ufs_tui import cli
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.sources import list_overlay_mounts, open_source


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = cli.main(list(argv), stdout=out)
    return rc, out.getvalue()


@pytest.fixture(scope="module")
def container(docker: Engine) -> str:
    docker.run("run", "-d", "--name", "c1", "--network", "none", "multi:1", "sleep", "100000")
    docker.run("exec", "c1", "sh", "-c", CHANGES)
    return "c1"


def merged_dir(docker: Engine, name: str) -> str:
    cid = docker.run("inspect", "-f", "{{.Id}}", name).strip()
    with open(f"{docker.root}/image/overlay2/layerdb/mounts/{cid}/mount-id") as f:
        mount_id = f.read().strip()
    return f"{docker.root}/overlay2/{mount_id}/merged"


def test_diff_equals_docker_diff(docker: Engine, container: str) -> None:
    expected = sorted(docker.run("diff", container).splitlines())
    rc, out = run_cli("diff", f"docker:{container}", "--docker-root", docker.root, "--format", "docker")
    assert rc == 0
    assert sorted(out.splitlines()) == expected
    assert "D /opt/app/one" in expected and "A /newdir/sub/f" in expected  # the run really changed things


def test_tree_equals_kernel_merged_dir(docker: Engine, container: str) -> None:
    stack = open_source(f"docker:{container}", docker_root=docker.root)
    merged = merged_dir(docker, container)
    assert merged in mounts_under(merged)
    assert model_tree(stack) == kernel_tree(merged)


def test_container_layers_and_labels(docker: Engine, container: str) -> None:
    stack = open_source(f"docker:{container}", docker_root=docker.root)
    assert stack.upper is not None and container in stack.upper.label
    assert len(stack.lowers) == 4  # init layer + 3 image layers
    assert stack.lowers[0].path.endswith("-init/diff") and "init" in stack.lowers[0].label
    assert "echo three > /layer3" in stack.lowers[1].label
    assert "rm /etc/motd" in stack.lowers[2].label
    diff_ids = json.loads(docker.run("image", "inspect", "-f", "{{json .RootFS.Layers}}", "multi:1"))
    for layer, diff_id in zip(stack.lowers[1:], reversed(diff_ids), strict=True):
        assert "diff:" + diff_id.split(":")[1][:12] in layer.label
        assert "chain:" in layer.label and "cache:" in layer.label


def test_open_by_id_prefix_and_errors(docker: Engine, container: str) -> None:
    cid = docker.run("inspect", "-f", "{{.Id}}", container).strip()
    by_id = open_source(f"docker:{cid[:10]}", docker_root=docker.root)
    by_name = open_source(f"docker:{container}", docker_root=docker.root)
    assert by_id == by_name
    with pytest.raises(StackError, match="no such container"):
        open_source("docker:nope-not-here", docker_root=docker.root)
    with pytest.raises(StackError, match="not a Docker data root"):
        open_source("docker:c1", docker_root=tempfile.gettempdir())
    rc, _ = run_cli("tree", "docker:nope-not-here", "--docker-root", docker.root)
    assert rc == 2


def test_mounts_lists_container_and_opens_it(docker: Engine, container: str) -> None:
    merged = merged_dir(docker, container)
    cid = docker.run("inspect", "-f", "{{.Id}}", container).strip()
    found = [m for m in list_overlay_mounts() if m.target == merged]
    assert len(found) == 1
    m = found[0]
    assert (m.engine, m.container, m.container_id) == ("docker", container, cid)
    by_mount = open_source(merged)
    by_name = open_source(f"docker:{container}", docker_root=docker.root)
    assert by_mount == by_name  # same layers, and the labels Docker's metadata gives
    rc, out = run_cli("mounts", "--format", "json")
    assert rc == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert any(r["target"] == merged and r["container"] == container for r in rows)


def test_image_tree_equals_kernel(docker: Engine) -> None:
    stack = open_source("docker-image:multi:1", docker_root=docker.root)
    assert stack.upper is None and len(stack.lowers) == 3
    assert "echo three > /layer3" in stack.lowers[0].label and "Imported from -" in stack.lowers[2].label
    with tempfile.TemporaryDirectory() as mnt, mounted([layer.path for layer in stack.lowers], None, None, mnt, "ro"):
        assert model_tree(stack) == kernel_tree(mnt)
    with pytest.raises(StackError, match="no such image"):  # there is no multi:latest
        open_source("docker-image:multi", docker_root=docker.root)


def test_live_write_appears_after_invalidate(docker: Engine, container: str) -> None:
    view = OverlayView(open_source(f"docker:{container}", docker_root=docker.root))
    assert "live-file" not in {e.name for e in view.list_dir("/newdir")}
    docker.run("exec", container, "sh", "-c", "echo hi > /newdir/live-file")
    assert "live-file" not in {e.name for e in view.list_dir("/newdir")}  # cached until told
    view.invalidate("/newdir")
    entry = {e.name: e for e in view.list_dir("/newdir")}["live-file"]
    assert entry.status == "new" and entry.size == 3


def test_positional_source_in_cli(docker: Engine, container: str) -> None:
    rc, out = run_cli("tree", f"docker:{container}", "--docker-root", docker.root, "--format", "json")
    assert rc == 0
    rows = {json.loads(line)["path"]: json.loads(line) for line in out.splitlines()}
    assert rows["/newfile"]["status"] == "new"
    assert rows["/opt/app"]["status"] == "opaque"
    assert rows["/etc/passwd"]["status"] == "copied-up"
    assert "/etc/motd" not in rows and "/layer3" in rows
    r = subprocess.run(["ls", "-d", os.path.join(merged_dir(docker, container), "layer3")], capture_output=True)
    assert r.returncode == 0
