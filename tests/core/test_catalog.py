"""ps: the upper size (bytes of the files in a writable layer, each inode once, markers counting nothing), and
which engine a containerd namespace is listed under."""

from __future__ import annotations

import os

from tests import nobody
from tests.conftest import need
from tests.ctrdroot import make_root
from ufs_tui.core.sources.catalog import gather, upper_size
from ufs_tui.core.sources.engines import Where


def test_upper_size_counts_each_inode_once(tmp_path: os.PathLike[str]) -> None:
    up = os.fspath(tmp_path)
    os.makedirs(f"{up}/d/e")
    with open(f"{up}/d/a", "wb") as f:
        f.write(b"x" * 1000)
    os.link(f"{up}/d/a", f"{up}/d/e/hard")  # the same inode twice: counted once
    with open(f"{up}/b", "wb") as f:
        f.write(b"y" * 24)
    os.symlink("target-of-nine", f"{up}/l")  # a symlink's size is its target's length
    os.mkfifo(f"{up}/fifo")
    if os.geteuid() == 0:
        os.mknod(f"{up}/gone", 0o600 | 0o020000, os.makedev(0, 0))  # a whiteout: nothing
    assert upper_size(up) == 1000 + 24 + len("target-of-nine")
    assert upper_size(None) is None
    assert upper_size(f"{up}/missing") is None  # gone (garbage-collected): its size cannot be told


def test_upper_size_of_an_unreadable_dir_is_unknown(shared_tmp: str) -> None:
    need(os.geteuid() == 0, "needs root to drop to another user")
    os.makedirs(f"{shared_tmp}/up/closed")
    with open(f"{shared_tmp}/up/f", "w") as f:
        f.write("12345")
    os.chmod(f"{shared_tmp}/up/closed", 0o700)
    code = "import sys; from ufs_tui.core.sources.catalog import upper_size; print(upper_size(sys.argv[1]))"
    r = nobody.run("-c", code, f"{shared_tmp}/up", text=True)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "None"


def docker_root(base: str, graph: bool) -> str:
    """A Docker data root without containers: on the overlay2 graph driver, or on the containerd store."""
    os.makedirs(f"{base}/containers")
    for sub in ("image/overlay2", "overlay2") if graph else ("containerd",):
        os.makedirs(f"{base}/{sub}")
    return base


def listed(where: Where, root: str) -> set[tuple[str, str, str, str]]:
    """(engine, kind, namespace, name) of what ps lists from the containerd root ``root`` and the Docker named."""
    cat = gather(where, [], sizes=False)
    return {(e.engine, e.kind, e.namespace, e.name) for e in cat.entries if e.id in ("c1", "sha256:" + "a" * 64)}


IMAGES = {"docker.io/library/web:1": "sha256:" + "a" * 64}


def test_a_graph_driver_docker_does_not_claim_a_named_containerd(tmp_path: os.PathLike[str]) -> None:
    """Docker on overlay2 keeps no images in containerd: the moby namespace of a containerd root the user named
    is containerd's, listed as such (it was hidden as Docker's, and Docker listed none of it)."""
    root = make_root(f"{tmp_path}/ctrd", namespace="moby", images=IMAGES)
    where = Where(docker_root=docker_root(f"{tmp_path}/docker", graph=True), containerd_root=root)
    assert listed(where, root) == {
        ("containerd", "container", "moby", "c1"),
        ("containerd", "image", "moby", "docker.io/library/web:1"),
    }


def test_a_containerd_store_docker_lists_its_images_once(tmp_path: os.PathLike[str]) -> None:
    """Docker on the containerd store: its namespace's images are Docker's (listed once, with Docker's short
    name); a container ctr made there, which Docker does not know, is still listed."""
    root = make_root(f"{tmp_path}/ctrd", namespace="moby", images=IMAGES)
    where = Where(docker_root=docker_root(f"{tmp_path}/docker", graph=False), containerd_root=root)
    assert listed(where, root) == {("containerd", "container", "moby", "c1"), ("docker", "image", "", "web:1")}
