"""Podman / containers-storage containers and images, read from the storage root, checked against podman."""

from __future__ import annotations

import io
import json
import tempfile

import pytest

from tests.engines.conftest import CHANGES, PODMAN_RUN, Engine
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
def container(podman: Engine) -> str:
    podman.run("run", "-d", "--name", "p1", *PODMAN_RUN, "localhost/multi:1", "sleep", "100000")
    podman.run("exec", "p1", "sh", "-c", CHANGES)
    return "p1"


def merged_dir(podman: Engine, name: str) -> str:
    return podman.run("inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", name).strip()


def test_diff_equals_podman_diff(podman: Engine, container: str) -> None:
    expected = sorted(podman.run("diff", container).splitlines())
    rc, out = run_cli("diff", f"podman:{container}", "--podman-root", podman.root, "--format", "podman")
    assert rc == 0
    assert "\n".join(sorted(out.splitlines())) == "\n".join(expected)
    assert "D /opt/app" in expected and "A /opt/app/x" in expected


def test_tree_equals_kernel_merged_dir(podman: Engine, container: str) -> None:
    stack = open_source(f"podman:{container}", podman_root=podman.root)
    assert model_tree(stack) == kernel_tree(merged_dir(podman, container))


def test_layers_labels_and_mounts(podman: Engine, container: str) -> None:
    stack = open_source(f"podman:{container}", podman_root=podman.root)
    assert stack.upper is not None and container in stack.upper.label
    assert len(stack.lowers) == 3  # no init layer in containers-storage
    assert "echo three > /layer3" in stack.lowers[0].label
    assert "rm /etc/motd" in stack.lowers[1].label
    merged = merged_dir(podman, container)
    cid = podman.run("inspect", "-f", "{{.Id}}", container).strip()
    m = next(m for m in list_overlay_mounts() if m.target == merged)
    assert (m.engine, m.container, m.container_id) == ("podman", container, cid)
    assert open_source(merged) == stack
    assert open_source(f"podman:{cid[:8]}", podman_root=podman.root) == stack
    with pytest.raises(StackError, match="no such container"):
        open_source("podman:nope", podman_root=podman.root)


def test_image_tree_equals_kernel(podman: Engine) -> None:
    stack = open_source("podman-image:multi:1", podman_root=podman.root)
    assert stack.upper is None and len(stack.lowers) == 3
    with tempfile.TemporaryDirectory() as mnt, mounted([layer.path for layer in stack.lowers], None, None, mnt, "ro"):
        assert model_tree(stack) == kernel_tree(mnt)


def test_live_write_appears_after_invalidate(podman: Engine, container: str) -> None:
    view = OverlayView(open_source(f"podman:{container}", podman_root=podman.root))
    assert "live" not in {e.name for e in view.list_dir("/")}
    podman.run("exec", container, "sh", "-c", "echo hello > /live")
    view.invalidate("/")
    entry = {e.name: e for e in view.list_dir("/")}["live"]
    assert entry.status == "new" and entry.size == 6


def test_mounts_json_row(podman: Engine, container: str) -> None:
    rc, out = run_cli("mounts", "--format", "json")
    assert rc == 0
    rows = [json.loads(line) for line in out.splitlines()]
    assert any(r["engine"] == "podman" and r["container"] == container for r in rows)
