"""``ufs-tui ci --rules dive`` on images real engines built: the same numbers as ``dive --ci --json``.

One build (on the busybox base the engine tests import) with what dive counts in its own way: files written
again in later layers (the surviving copy counted too, dive#684), a dir deleted and made again (an opaque dir
in the layer), deleted files and dirs (whiteouts), hard links and symlinks, a chmod that copies a whole file
up, and ENV/LABEL steps (history entries with no layer). It is saved by Docker (Docker 25+'s layout: OCI
blobs and manifest.json) and by podman (the legacy docker-archive layout), and read from the engine's own
layer dirs too (no tar headers: the numbers of the tars the engine writes of them).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import pytest

from tests.core.test_ci import dive_numbers, our_numbers, require_dive, same
from tests.engines.conftest import Engine
from ufs_tui import cli

CI_DOCKERFILE = """\
FROM base:1
RUN mkdir -p /app/data && for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do head -c $((i * 100)) /dev/zero \
 > /app/data/f$i; done && echo v1 > /app/version && cp /bin/busybox /app/tool && ln /app/tool /app/tool-hard \
 && ln -s /app/tool /app/tool-soft && for i in 1 2 3; do echo same > /app/same$i; done
ENV STAGE=2
RUN echo v2-longer > /app/version && rm -rf /app/data && mkdir /app/data && echo fresh > /app/data/f1 \
 && rm /etc/motd && rm -rf /opt/app && rm /app/tool-soft && mkdir /app/tool-soft
RUN echo v3-longer-still > /app/version && rm /app/tool-hard && chmod 600 /app/tool \
 && for i in 1 2 3; do echo same > /app/same$i; done
LABEL stage=3
"""
IMAGE = "ciwaste:1"


@pytest.fixture
def dive() -> str:
    return require_dive()


def _build(engine: Engine, base_ref: str, tmp: str) -> None:
    ctx = os.path.join(tmp, f"ci-ctx-{engine.name}")
    os.makedirs(ctx, exist_ok=True)
    with open(f"{ctx}/Dockerfile", "w") as f:
        f.write(CI_DOCKERFILE.replace("FROM base:1", f"FROM {base_ref}"))
    engine.run("build", "--network", "none", "-t", IMAGE, ctx)


@pytest.fixture(scope="module")
def docker_ci_archive(docker: Engine, engine_tmp: str) -> str:
    _build(docker, "base:1", engine_tmp)
    path = f"{engine_tmp}/ciwaste-docker.tar"
    docker.run("save", "-o", path, IMAGE)
    return path


@pytest.fixture(scope="module")
def podman_ci_archive(podman: Engine, engine_tmp: str) -> str:
    _build(podman, "localhost/base:1", engine_tmp)
    path = f"{engine_tmp}/ciwaste-podman.tar"
    podman.run("save", "--format", "docker-archive", "-o", path, f"localhost/{IMAGE}")
    return path


def _copy_to_own_dir(archive: str, tmp_path: os.PathLike[str]) -> str:
    """dive writes nothing next to the archive, but its JSON goes there: a dir of the test's own."""
    own = os.path.join(os.fspath(tmp_path), os.path.basename(archive))
    with open(archive, "rb") as src, open(own, "wb") as dst:
        dst.write(src.read())
    return own


def test_docker_save_same_numbers_as_dive(dive: str, docker_ci_archive: str, tmp_path: os.PathLike[str]) -> None:
    archive = _copy_to_own_dir(docker_ci_archive, tmp_path)
    with open(archive, "rb") as f:
        assert b"manifest.json" in f.read()  # Docker 25+ writes both layouts in one
    theirs, ours = dive_numbers(dive, archive), our_numbers(archive)
    assert same(theirs, ours), f"\n dive {theirs}\n ours {ours}"
    files = {path for path, _, _ in theirs["files"]}
    assert {"/app/version", "/app/tool", "/app/same1"} <= files and theirs["wasted"] > 500_000


def test_podman_save_same_numbers_as_dive(dive: str, podman_ci_archive: str, tmp_path: os.PathLike[str]) -> None:
    archive = _copy_to_own_dir(podman_ci_archive, tmp_path)
    theirs, ours = dive_numbers(dive, archive), our_numbers(archive)
    assert same(theirs, ours), f"\n dive {theirs}\n ours {ours}"


def test_docker_layer_dirs_same_numbers_as_dive(
    dive: str, docker: Engine, docker_ci_archive: str, tmp_path: os.PathLike[str]
) -> None:
    """The image's layer dirs in Docker's data root (no tar headers): the numbers of the tars Docker writes."""
    theirs = dive_numbers(dive, _copy_to_own_dir(docker_ci_archive, tmp_path))
    out = io.StringIO()
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stderr", err)
        rc = cli.main(["ci", "--format", "json", f"docker-image:{IMAGE}", "--docker-root", docker.root], stdout=out)
    assert rc in (0, 1), err.getvalue()
    assert "the layers are directories" in err.getvalue()
    got = json.loads(out.getvalue())
    ours = {
        "efficiency": got["efficiency"],
        "wasted": got["wastedBytes"],
        "user_wasted": got["userWastedPercent"],
        "files": [(f["file"], f["count"], f["sizeBytes"]) for f in got["inefficientFiles"]],
    }
    assert same(theirs, ours), f"\n dive {theirs}\n ours {ours}"


def test_dive_itself_agrees_on_the_verdict(dive: str, docker_ci_archive: str, tmp_path: os.PathLike[str]) -> None:
    archive = _copy_to_own_dir(docker_ci_archive, tmp_path)
    r = subprocess.run([dive, "--source", "docker-archive", archive, "--ci"], capture_output=True, cwd=tmp_path)
    out = io.StringIO()
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        rc = cli.main(["ci", archive], stdout=out)
    finally:
        os.chdir(cwd)
    assert rc == r.returncode == 1, r.stdout.decode(errors="replace")
