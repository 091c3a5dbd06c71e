"""containerd containers (overlayfs snapshotter), opened through their live mounts."""

from __future__ import annotations

import io
import uuid

import pytest

from tests.engines.conftest import CHANGES, Engine
from tests.overlay import kernel_tree, model_tree
from ufs_tui import cli
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.sources import list_overlay_mounts, open_source
from ufs_tui.core.sources.common import parse_label


@pytest.fixture(scope="module")
def task(containerd: Engine) -> str:
    # A name of this run's own: containerd:ID looks at every containerd mount on the host, and another
    # run of these tests (another session's, say) may have a container of the same name.
    name = f"t1-{uuid.uuid4().hex[:8]}"
    containerd.run("run", "-d", "docker.io/library/multi:1", name, "sleep", "100000")
    containerd.run("tasks", "exec", "--exec-id", "e1", name, "sh", "-c", CHANGES)
    return name


def rootfs(containerd: Engine, task: str) -> str:
    m = next(m for m in list_overlay_mounts() if m.engine == "containerd" and m.container_id == task)
    return m.target


def test_tree_equals_kernel_rootfs(containerd: Engine, task: str) -> None:
    stack = open_source(f"containerd:{task}")
    assert len(stack.lowers) == 3 and stack.upper is not None
    # labelled from the image's config in the content store: each layer's build step and ids
    assert [parse_label(layer.label).brief.split(" ")[0] for layer in stack.lowers] == ["RUN", "RUN", "Imported"]
    assert all(dict(parse_label(layer.label).ids).keys() >= {"diff", "chain", "snapshot"} for layer in stack.lowers)
    target = rootfs(containerd, task)
    namespace = containerd.argv[-1]
    assert target.endswith(f"/{namespace}/{task}/rootfs")
    assert model_tree(stack) == kernel_tree(target)
    assert open_source(target) == stack
    assert open_source(f"containerd:{namespace}/{task}") == stack


def test_diff_equals_docker_diff_of_same_changes(containerd: Engine, docker: Engine, task: str) -> None:
    """No containerd CLI prints a diff; Docker running the same image and commands is the reference."""
    docker.run("run", "-d", "--name", "cmp", "--network", "none", "multi:1", "sleep", "100000")
    docker.run("exec", "cmp", "sh", "-c", CHANGES)
    expected = docker.run("diff", "cmp").splitlines()
    # runc makes its mount points in the container's upper; Docker's init layer holds them instead.
    image = OverlayView(open_source("docker-image:multi:1", docker_root=docker.root))
    expected += [f"A {p}" for p in ("/dev", "/proc", "/run", "/sys") if image.lookup(p) is None]
    expected.sort()
    out = io.StringIO()
    assert cli.main(["diff", f"containerd:{task}", "--format", "docker"], stdout=out) == 0
    got = sorted(out.getvalue().splitlines())
    assert (sorted(set(got) - set(expected)), sorted(set(expected) - set(got))) == ([], [])
    assert got == expected


def test_live_write_and_errors(containerd: Engine, task: str) -> None:
    view = OverlayView(open_source(f"containerd:{task}"))
    assert "ctd-live" not in {e.name for e in view.list_dir("/")}
    containerd.run("tasks", "exec", "--exec-id", "e2", task, "sh", "-c", "echo x > /ctd-live")
    view.invalidate("/")
    assert {e.name: e.status for e in view.list_dir("/")}["ctd-live"] == "new"
    with pytest.raises(StackError, match="no such containerd container"):
        open_source("containerd:no-such-task")
