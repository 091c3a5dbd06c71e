"""Engine sources say what is really wrong: a data root this user cannot read (Docker makes its own 0710, Podman
0700) is "permission denied", not "not a data root"; a name given without a tag that has no ``:latest`` names
the tags it does have."""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from collections.abc import Iterator

import pytest

from tests import nobody
from tests.engines.conftest import Engine
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.sources import open_source
from ufs_tui.core.sources.docker import DockerRoot
from ufs_tui.core.sources.podman import StorageRoot


def not_files(d: str, names: list[str]) -> list[str]:
    """What copytree leaves out: FIFOs and sockets of running containers (only metadata is wanted)."""
    kept = (stat.S_ISREG, stat.S_ISDIR, stat.S_ISLNK)
    return [n for n in names if not any(ok(os.lstat(f"{d}/{n}").st_mode) for ok in kept)]


def copy_root(src: str, dest: str, parts: tuple[str, ...], empty: tuple[str, ...]) -> None:
    """The engine's metadata dirs copied with their modes (copytree keeps them), its layer dir made empty with
    the engine's mode, and the root given the engine's mode."""
    os.mkdir(dest)
    for p in parts:
        shutil.copytree(f"{src}/{p}", f"{dest}/{p}", symlinks=True, ignore=not_files)
    for p in empty:
        os.mkdir(f"{dest}/{p}")
        os.chmod(f"{dest}/{p}", stat.S_IMODE(os.stat(f"{src}/{p}").st_mode))
    os.chmod(dest, stat.S_IMODE(os.stat(src).st_mode))


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    return nobody.run("-m", "ufs_tui", *argv, text=True, timeout=60)


def test_docker_root_without_permission(docker: Engine, shared_tmp: str) -> None:
    mode = stat.S_IMODE(os.stat(docker.root).st_mode)
    assert mode & 0o007 == 0, oct(mode)  # dockerd keeps its data root from other users
    root = f"{shared_tmp}/docker"
    copy_root(docker.root, root, ("image",), ("overlay2", "containers"))
    assert DockerRoot(root).resolve_image("multi:1")  # as root the copy is a Docker data root
    for spec in ("docker:web", "docker-image:multi:1"):
        r = as_nobody("tree", spec, "--docker-root", root)
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr == (
            f"ufs-tui: error: {root}: permission denied reading the Docker data root "
            "(run as root, or pass --docker-root)\n"
        ), r.stderr
    # a dir that is really not a data root still says so
    r = as_nobody("tree", "docker:web", "--docker-root", shared_tmp)
    assert r.returncode == 2 and "not a Docker data root (found through --docker-root" in r.stderr


def test_docker_subdir_without_permission(docker: Engine, shared_tmp: str) -> None:
    """The dir named is the one that cannot be searched, wherever it is on the way."""
    root = f"{shared_tmp}/docker"
    copy_root(docker.root, root, ("image",), ("overlay2", "containers"))
    os.chmod(root, 0o755)  # the root is open, image/ (0700 from dockerd) is not
    r = as_nobody("tree", "docker-image:multi:1", "--docker-root", root)
    assert r.returncode == 2
    assert r.stderr.startswith(f"ufs-tui: error: {root}/image: permission denied reading the Docker data root")


def test_podman_root_without_permission(podman: Engine, shared_tmp: str) -> None:
    mode = stat.S_IMODE(os.stat(podman.root).st_mode)
    assert mode & 0o007 == 0, oct(mode)
    root = f"{shared_tmp}/storage"
    copy_root(podman.root, root, ("overlay-layers", "overlay-images", "overlay-containers"), ("overlay",))
    assert StorageRoot(root).resolve_image("multi:1")
    r = as_nobody("tree", "podman-image:multi:1", "--podman-root", root)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr == (
        f"ufs-tui: error: {root}: permission denied reading the containers-storage root "
        "(run as root, or pass --podman-root)\n"
    ), r.stderr


@pytest.fixture
def tagged(docker: Engine, podman: Engine) -> Iterator[str]:
    """One image under two tags of a name of its own (no :latest), in both engines."""
    name = "ufs-tags"
    for engine in (docker, podman):
        for tag in ("b", "a"):
            engine.run("tag", "base:1" if engine is docker else "localhost/base:1", f"{name}:{tag}")
    yield name
    docker.run("rmi", f"{name}:a", f"{name}:b", check=False)
    podman.run("untag", "localhost/base:1", f"localhost/{name}:a", f"localhost/{name}:b", check=False)


def test_name_without_tag_lists_the_tags(docker: Engine, podman: Engine, tagged: str) -> None:
    with pytest.raises(StackError) as err:
        open_source(f"docker-image:{tagged}", docker_root=docker.root)
    assert str(err.value) == (
        f"{tagged}: no such image: without a tag, {tagged} means {tagged}:latest, which does not exist; "
        f"the tags of {tagged} are: {tagged}:a, {tagged}:b"
    )
    with pytest.raises(StackError) as err:
        open_source(f"podman-image:{tagged}", podman_root=podman.root)
    assert f"means {tagged}:latest, which does not exist; the tags of {tagged} are: {tagged}:a, {tagged}:b" in str(
        err.value
    )
    with pytest.raises(StackError) as err:  # the full name podman gives it
        open_source(f"podman-image:localhost/{tagged}", podman_root=podman.root)
    assert f"the tags of localhost/{tagged} are: localhost/{tagged}:a, localhost/{tagged}:b" in str(err.value)
    # a tag that exists opens; a name that does not exist says what was looked for
    assert open_source(f"docker-image:{tagged}:a", docker_root=docker.root).lowers
    with pytest.raises(StackError, match=r"no such image \(without a tag, nothing-here means nothing-here:latest\)"):
        open_source("docker-image:nothing-here", docker_root=docker.root)
    with pytest.raises(StackError, match="^nope:1: no such image$"):  # a tag given: nothing about :latest
        open_source("docker-image:nope:1", docker_root=docker.root)
