"""ufs-tui never writes inside an engine's own storage (issue 13.3): commit and squash of a container's layers
need destinations the user names outside it, say whose storage the layers are in and that the container is
running; mount's refusal on a running container says to stop it, in the words of the place it is said in.
Checked on real engines (Docker 20.10 on overlay2, Podman's containers-storage, containerd 1.6), with every
engine dir's listing compared before and after."""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import tempfile
from collections.abc import Iterator

import pytest

from tests.engines.conftest import Engine
from tests.overlay import kernel_tree, model_tree
from ufs_tui import cli
from ufs_tui.core.model.errors import UfsError
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.layers_ops import NeedsDestination, plan_commit, plan_squash
from ufs_tui.core.mounting.mount import MountManager
from ufs_tui.core.mounting.preflight import ENGINE_STORAGE, IN_USE
from ufs_tui.core.sources import open_source
from ufs_tui.core.sources.engines import engine_storage


def listing(root: str) -> list[bytes]:
    """Every path under ``root`` (names only: what was created or removed), as find lists them (as bytes:
    other tests leave names that are not UTF-8 there)."""
    r = subprocess.run(["find", root, "-xdev", "-print0"], capture_output=True)
    return sorted(r.stdout.split(b"\0"))


@pytest.fixture(scope="module")
def running(docker: Engine) -> Iterator[tuple[str, Stack]]:
    name = "stor1"
    docker.run("run", "-d", "--name", name, "--network", "none", "multi:1", "sleep", "100000")
    try:
        yield name, open_source(f"docker:{name}", docker_root=docker.root)
    finally:
        docker.run("rm", "-f", name, check=False)


def run_cli(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = cli.main(list(argv), stdout=out)
    return rc, out.getvalue(), err.getvalue()


def test_engine_storage_is_told_for_each_engine(docker: Engine, podman: Engine, running: tuple[str, Stack]) -> None:
    _, stack = running
    assert stack.upper is not None
    root = os.path.realpath(docker.root)
    assert engine_storage(stack.upper.path) == f"Docker's data root {root}"
    assert engine_storage(f"{stack.upper.path}/not/yet/made") == f"Docker's data root {root}"
    assert engine_storage(f"{docker.root}/overlay2/new.1") == f"Docker's data root {root}"
    proot = os.path.realpath(podman.root)
    assert engine_storage(f"{podman.root}/overlay/x/diff") == f"containers-storage {proot} (Podman, CRI-O)"
    with tempfile.TemporaryDirectory() as elsewhere:
        assert engine_storage(elsewhere) is None and engine_storage(f"{elsewhere}/new") is None


def test_engine_storage_of_containerd() -> None:
    from tests.engines import modern

    with modern.containerd16() as c:  # in /tmp: a socket path under pytest's tmp_path is too long
        root = os.path.realpath(c.containerd_root)
        snaps = f"{c.containerd_root}/io.containerd.snapshotter.v1.overlayfs/snapshots/1/fs"
        assert engine_storage(snaps) == f"containerd's root {root}"


def test_commit_needs_destinations_outside_and_writes_nothing_inside(
    docker: Engine, running: tuple[str, Stack], tmp_path: os.PathLike[str]
) -> None:
    name, stack = running
    assert stack.upper is not None
    before = listing(docker.root)
    with pytest.raises(NeedsDestination) as e:
        plan_commit(stack)
    assert e.value.owner == f"Docker's data root {os.path.realpath(docker.root)}"
    with pytest.raises(UfsError, match="in Docker's data root .*ufs-tui never writes there"):
        plan_commit(stack, f"{docker.root}/overlay2/mine", f"{tmp_path}/w")
    plan = plan_commit(stack, f"{tmp_path}/u", f"{tmp_path}/w")
    text = plan.describe()
    assert f"Docker's data root {os.path.realpath(docker.root)}" in text and "never changed" in text
    assert "in use by the overlay mounted at" in text and "stop it" in text  # the container runs
    rc, out, err = run_cli("commit", f"docker:{name}", "--docker-root", docker.root, "--yes")
    assert (rc, out) == (2, "") and "--new-upper DIR --new-work DIR" in err and len(err.splitlines()) == 1, err
    rc, out, err = run_cli(
        "commit", f"docker:{name}", "--docker-root", docker.root, "--yes",
        "--new-upper", f"{tmp_path}/u2", "--new-work", f"{tmp_path}/w2",
    )  # fmt: skip
    assert rc == 0, err
    assert sorted(os.listdir(tmp_path)) == ["u2", "w2"]
    assert listing(docker.root) == before


def test_squash_refuses_a_destination_inside(docker: Engine, running: tuple[str, Stack], tmp_path: str) -> None:
    _, stack = running
    before = listing(docker.root)
    with pytest.raises(UfsError, match="in Docker's data root .*ufs-tui never writes there"):
        plan_squash(stack, "lower:1", "lower:2", f"{stack.lowers[1].path}.squashed.1")
    plan = plan_squash(stack, "lower:1", "lower:2", f"{tmp_path}/sq")
    assert "kept only where they hide something in the layers below it" in plan.describe()
    bottom = plan_squash(stack, "lower:2", "lower:3", f"{tmp_path}/sq2").describe()
    assert "dropped: nothing is below the range for them to hide" in bottom and "in nothing" not in bottom
    assert listing(docker.root) == before


def test_mount_of_a_running_container_says_stop_it(docker: Engine, running: tuple[str, Stack]) -> None:
    name, stack = running
    problems = MountManager().check(stack, "kernel", [])
    assert stack.upper is not None
    [p] = [p for p in problems if p.subject == stack.upper.path and p.kind == IN_USE]
    assert {p.kind for p in problems} == {IN_USE, ENGINE_STORAGE}, problems
    assert f"Docker container {name}" in p.what and f"stop the container ({name})" in p.fix, p
    assert "--force" not in p.fix and "merged" not in p.fix, p
    assert stack.work is not None
    lower = ":".join(layer.path for layer in stack.lowers)
    rc, out, err = run_cli("mount", "--lower", lower, "--upper", stack.upper.path, "--work", stack.work)
    assert rc == 2 and "--force mounts anyway" in err and "(--read-only)" in err, err


def test_a_stopped_containers_layers_mount_read_only(docker: Engine, tmp_path: os.PathLike[str]) -> None:
    """Mounting a container's own upper and work dir would write to them: refused (ENGINE_STORAGE), and the
    read-only stack (the upper as the topmost lower) mounts, shows the kernel the model's view, and writes
    nothing in Docker's data root."""
    name = "stor2"
    docker.run("run", "--name", name, "--network", "none", "multi:1", "sh", "-c", "echo x > /new; rm /etc/passwd")
    try:
        stack = open_source(f"docker:{name}", docker_root=docker.root)
        os.makedirs(f"{tmp_path}/rt")
        manager = MountManager(runtime=f"{tmp_path}/rt")
        kinds = {p.kind for p in manager.check(stack, "kernel", [])}
        assert kinds == {ENGINE_STORAGE}, manager.check(stack, "kernel", [])
        ro = stack.read_only()
        assert [la.path for la in ro.lowers] == [la.path for la in stack.layers] and ro.work is None
        assert [la.label for la in ro.lowers] == [la.label for la in stack.layers]
        assert manager.check(ro, "kernel", []) == []
        before = listing(docker.root)
        handle = manager.mount(ro, None, "kernel", [])
        try:
            assert kernel_tree(handle.path) == model_tree(stack) == model_tree(ro)
            assert "/new" in model_tree(ro) and "/etc/passwd" not in model_tree(ro)
        finally:
            manager.unmount(handle)
        assert listing(docker.root) == before
    finally:
        docker.run("rm", "-f", name, check=False)
