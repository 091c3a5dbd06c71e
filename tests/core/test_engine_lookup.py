"""Finding an engine's storage cheaply: a Docker on overlay2 does not load the containerd readers, and the root of
the containerd a Docker 29 talks to is read from what that containerd holds open (its sockets, its metadata db),
its config file only where the kernel does not show that."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator

import pytest

from ufs_tui.core.sources import ctrd, docker
from ufs_tui.core.sources.daemon import DockerInfo
from ufs_tui.core.sources.engines import DockerPlace, Where, docker_containerd_root
from ufs_tui.core.sources.host import Host, open_files


def test_the_overlay2_path_does_not_load_the_containerd_readers() -> None:
    code = (
        "import sys, ufs_tui.cli, ufs_tui.core.sources.docker; "
        "print(sorted({'ufs_tui.core.sources.ctrd', 'ufs_tui.core.sources.bbolt', 'tomllib'} & set(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    assert docker.SNAPSHOTTER == ctrd.SNAPSHOTTER


def test_open_files_shows_listening_sockets_and_files(tmp_path: os.PathLike[str]) -> None:
    sock_path = f"{tmp_path}/s.sock"
    with socket.socket(socket.AF_UNIX) as s, open(f"{tmp_path}/held", "w"):
        s.bind(sock_path)
        s.listen()
        held = open_files(Host(), str(os.getpid()))
        assert held is not None
        assert sock_path in held[0] and f"{tmp_path}/held" in held[1]
    assert open_files(Host(f"{tmp_path}"), str(os.getpid())) is None  # --host-root: the kernel's paths are ours


FAKE = """
import socket, sys, time
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen()
held = open(sys.argv[2], "rb") if sys.argv[2] != "-" else None
print("up", flush=True)
time.sleep(60)
"""


def _fake_containerd(tmp: str, sock: str, hold: str = "-", *flags: str) -> subprocess.Popen[str]:
    """A process whose program is named ``containerd``, listening at ``sock`` and holding ``hold`` open."""
    script, program = f"{tmp}/fake.py", f"{tmp}/containerd"
    with open(script, "w") as f:
        f.write(FAKE)
    if not os.path.lexists(program):
        os.symlink(sys.executable, program)
    proc = subprocess.Popen([program, script, sock, hold, *flags], stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stdout.readline() == "up\n"
    return proc


@pytest.fixture
def fakes() -> Iterator[list[subprocess.Popen[str]]]:
    procs: list[subprocess.Popen[str]] = []
    yield procs
    for p in procs:
        p.kill()
        p.wait()


def _place(address: str) -> DockerPlace:
    info = DockerInfo("/nowhere/docker", "overlayfs", True, address, "moby")
    return DockerPlace("/nowhere/docker", "the daemon (docker info)", info)


def test_the_containerd_root_is_the_one_its_process_holds_open(
    tmp_path: os.PathLike[str], fakes: list[subprocess.Popen[str]]
) -> None:
    root = f"{tmp_path}/real-root"
    os.makedirs(f"{root}/io.containerd.metadata.v1.bolt")
    with open(f"{root}/{ctrd.META_DB}", "wb"):
        pass
    fakes.append(_fake_containerd(f"{tmp_path}", f"{tmp_path}/other.sock", f"{root}/{ctrd.META_DB}"))
    fakes.append(_fake_containerd(f"{tmp_path}", f"{tmp_path}/c.sock", f"{root}/{ctrd.META_DB}"))
    assert docker_containerd_root(Where(), _place(f"unix://{tmp_path}/c.sock")) == root


def test_without_an_open_db_the_config_file_says(
    tmp_path: os.PathLike[str], fakes: list[subprocess.Popen[str]]
) -> None:
    config = f"{tmp_path}/config.toml"
    with open(config, "w") as f:
        f.write(f'root = "{tmp_path}/from-config"\n[grpc]\naddress = "{tmp_path}/c.sock"\n')
    fakes.append(_fake_containerd(f"{tmp_path}", f"{tmp_path}/c.sock", "-", "--config", config))
    assert docker_containerd_root(Where(), _place(f"{tmp_path}/c.sock")) == f"{tmp_path}/from-config"
