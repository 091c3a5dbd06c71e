"""Docker 29's containerd image store (``Driver: overlayfs``), read from disk and checked against the engine itself.

Three engines of the tarball (``modern.py``), each started once for this module in its own temp dir:

- ``d29``: dockerd with the containerd it starts itself (root ``DATA_ROOT/containerd/daemon``);
- ``d29_dead``: the same kind, whose dockerd and containerd are SIGKILLed by PID once its containers are made
  (the running container's shim and mount stay, as after a daemon crash): everything is read from disk alone;
- ``d29x``: a containerd started on its own, and a dockerd attached to it with ``--containerd``.

Each has ``base:1`` and ``multi:1`` (conftest's DOCKERFILE, legacy builder: the image's snapshot chain passes
through the build containers' ``-init`` snapshots) and containers ``web`` (running, CHANGES exec'd), ``stopped``
(CHANGES, then stopped) and ``created`` (never started; a file copied in with ``docker cp``). The oracles are
the kernel (the container's own mount in /proc/self/mountinfo, or a read-only overlay of the layers mounted
here) and the engine (``docker diff``, ``docker inspect``, ``docker ps -a``, ``docker images``). Debian's
Docker 20.10 (overlay2, conftest's ``docker``) runs next to them: ``docker:`` keeps opening its containers.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests import nobody
from tests.conftest import need
from tests.engines import modern
from tests.engines.conftest import CHANGES, Engine, mounts_under, wait_for
from tests.engines.modern import ModernEngine
from tests.overlay import Facts, kernel_tree, model_tree, mounted
from ufs_tui import cli
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.sources import list_overlay_mounts, open_source
from ufs_tui.core.sources.common import parse_label

REPO = Path(__file__).resolve().parents[2]
NAMES = ("web", "stopped", "created")
META_DB = "io.containerd.metadata.v1.bolt/meta.db"
SNAP_DIR = "io.containerd.snapshotter.v1.overlayfs"
INIT_LABEL = "init layer (.dockerenv, /etc/hosts, /etc/resolv.conf, ...)"
BUILD_INIT_LABEL = "a build container's init layer"


# ---------------------------------------------------------------------- engines


@dataclass
class D29:
    """One Docker 29 instance and what was recorded from it while its daemon ran."""

    inst: ModernEngine
    ids: dict[str, str] = field(default_factory=dict)  # container name -> id
    diffs: dict[str, list[str]] = field(default_factory=dict)  # container name -> sorted `docker diff` lines
    inspect: dict[str, dict[str, object]] = field(default_factory=dict)  # container name -> `docker inspect`
    ps_a: set[tuple[str, str]] = field(default_factory=set)  # (name, id) from `docker ps -a`
    images: dict[str, str] = field(default_factory=dict)  # repo:tag -> image id, from `docker images`

    @property
    def cli(self) -> Engine:
        return self.inst.cli

    @property
    def root(self) -> str:
        assert self.inst.data_root is not None
        return self.inst.data_root

    @property
    def host(self) -> str:
        return f"unix://{self.inst.docker_socket}"

    def merged(self, name: str) -> str:
        """Where dockerd mounts a running container's root filesystem."""
        return f"{self.root}/rootfs/overlayfs/{self.ids[name]}"


def make_containers(d: D29) -> None:
    c = d.cli
    for name in ("web", "stopped"):
        c.run("run", "-d", "--name", name, "--network", "none", "multi:1", "sleep", "100000")
        c.run("exec", name, "sh", "-c", CHANGES)
    c.run("create", "--name", "created", "--network", "none", "multi:1", "sleep", "100000")
    cp = f"{d.inst.base}/cpfile"
    Path(cp).write_text("copied in\n")
    c.run("cp", cp, "created:/etc/cpfile")  # the created container's upper gets something
    for name in NAMES:
        d.ids[name] = c.run("inspect", "-f", "{{.Id}}", name).strip()
    c.run("stop", "-t", "0", "stopped")
    merged = d.merged("stopped")
    wait_for(lambda: not mounts_under(merged), 30, f"dockerd to unmount {merged}")
    record(d)


def record(d: D29) -> None:
    """What the engine itself says, while it still can."""
    c = d.cli
    for name in NAMES:
        d.diffs[name] = sorted(c.run("diff", name).splitlines())
        d.inspect[name] = json.loads(c.run("inspect", name))[0]
    rows = c.run("ps", "-a", "--no-trunc", "--format", "{{.Names}}\t{{.ID}}").splitlines()
    d.ps_a = {(r.split("\t")[0], r.split("\t")[1]) for r in rows}
    refs = c.run("images", "--format", "{{.Repository}}:{{.Tag}}").split()
    d.images = {ref: c.run("image", "inspect", "-f", "{{.Id}}", ref).strip() for ref in refs}


@pytest.fixture(scope="module")
def modern_ok(engine_tmp: str) -> None:
    """Root, overlayfs and busybox (engine_tmp), and the Docker 29 tarball with runc and the docker CLI."""
    need(modern.available(), "Docker 29 engines: docker-engine.tar.xz (shared/engines), runc and docker are needed")


def _started(kind: str, rootfs_tar: str) -> D29:
    inst = modern.start_docker29() if kind == "own" else modern.start_docker29_external()
    try:
        d = D29(inst)
        modern.docker_images(inst, rootfs_tar)
        make_containers(d)
    except BaseException:
        inst.stop()
        raise
    return d


@pytest.fixture(scope="module")
def d29(modern_ok: None, rootfs_tar: str) -> Iterator[D29]:
    d = _started("own", rootfs_tar)
    try:
        yield d
    finally:
        d.inst.stop()


@pytest.fixture(scope="module")
def d29x(modern_ok: None, rootfs_tar: str, d29: D29) -> Iterator[D29]:
    """Started after ``d29``, whose containerd (a moby namespace with a multi:1 of its own) thus runs, with a
    lower PID, next to this one's: finding "the" containerd must not mean the first one running."""
    d = _started("external", rootfs_tar)
    try:
        yield d
    finally:
        d.inst.stop()


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].startswith("Z")  # a zombie has stopped for our purposes
    except OSError:
        return True


@pytest.fixture(scope="module")
def d29_dead(modern_ok: None, rootfs_tar: str) -> Iterator[D29]:
    """A Docker 29 whose dockerd and containerd are SIGKILLed (by PID) after its containers are made."""
    d = _started("own", rootfs_tar)
    try:
        inst = d.inst
        dockerd = next(proc for kind, proc in inst._procs if kind == "dockerd")
        with open(f"{inst.exec_root}/containerd/containerd.pid") as f:
            containerd = int(f.read().strip())
        with open(f"/proc/{containerd}/cmdline", "rb") as f:
            assert str(inst.exec_root).encode() in f.read()  # dockerd's own containerd, not someone else's
        os.kill(dockerd.pid, signal.SIGKILL)
        dockerd.wait(timeout=30)
        os.kill(containerd, signal.SIGKILL)
        wait_for(lambda: _gone(containerd), 30, "the killed containerd to exit")
        yield d
    finally:
        d.inst.stop()


# ---------------------------------------------------------------------- helpers


def ufs(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    """``ufs-tui ARGV`` in this process: (exit code, stdout, stderr)."""
    capsys.readouterr()
    out = io.StringIO()
    rc = cli.main(list(argv), stdout=out)
    return rc, out.getvalue(), capsys.readouterr().err


def ufs_process(*argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """``ufs-tui ARGV`` as a script runs it: the installed command, stdout a pipe."""
    exe = Path(sys.executable).with_name("ufs-tui")
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "ufs_tui"]
    return subprocess.run(
        [*cmd, *argv], capture_output=True, text=True, env=env or dict(os.environ), cwd=REPO, timeout=120
    )


def one_error_line(err: str) -> str:
    """The single error line a failing command prints (asserted to be exactly one line)."""
    assert err.startswith("ufs-tui: error: ") and err.endswith("\n") and err.count("\n") == 1, err
    return err[:-1]


@dataclass(frozen=True)
class RealMount:
    lowers: list[str]
    upper: str | None
    work: str | None


def real_mount(target: str) -> RealMount:
    """The layers of the overlay mounted at ``target``, read from /proc/self/mountinfo here (not by ufs_tui)."""

    def unescape(s: str) -> str:
        out, i = b"", 0
        raw = os.fsencode(s)
        while i < len(raw):
            if raw[i : i + 1] == b"\\" and raw[i + 1 : i + 4].isdigit():
                out += bytes([int(raw[i + 1 : i + 4], 8)])
                i += 4
            else:
                out += raw[i : i + 1]
                i += 1
        return os.fsdecode(out)

    with open("/proc/self/mountinfo") as f:
        hits = [line.split(" - ", 1) for line in f if unescape(line.split(" ")[4]) == target]
    assert len(hits) == 1, f"{target} is mounted {len(hits)} times"
    fstype, _source, options = hits[0][1].split(" ", 2)
    assert fstype == "overlay"
    opts = dict(o.partition("=")[::2] for o in unescape(options.strip()).split(","))
    return RealMount(opts["lowerdir"].split(":"), opts.get("upperdir"), opts.get("workdir"))


def paths(stack: Stack) -> RealMount:
    return RealMount([layer.path for layer in stack.lowers], stack.upper.path if stack.upper else None, stack.work)


def kernel_view(stack: Stack) -> dict[str, Facts]:
    """The kernel's merged tree of ``stack``, mounted read-only here: the upper as the top lower (nothing is
    written to any layer), and an empty dir below a single lower (an overlay needs two without an upper)."""
    dirs = ([stack.upper.path] if stack.upper else []) + [layer.path for layer in stack.lowers]
    with tempfile.TemporaryDirectory() as tmp:
        os.mkdir(f"{tmp}/mnt")
        if len(dirs) == 1:
            os.mkdir(f"{tmp}/empty")
            dirs.append(f"{tmp}/empty")
        with mounted(dirs, None, None, f"{tmp}/mnt", "ro"):
            return kernel_tree(f"{tmp}/mnt")


def ps_rows(capsys: pytest.CaptureFixture[str], base: str, *argv: str) -> list[dict[str, object]]:
    """``ufs-tui ps --format json`` (other engines on this host may add warnings, never about ours)."""
    rc, out, err = ufs(capsys, "ps", "--format", "json", *argv)
    warnings = err.splitlines()
    assert all(w.startswith("ufs-tui: warning: ") and base not in w for w in warnings), err
    assert rc == (1 if warnings else 0)
    return [json.loads(line) for line in out.splitlines()]


def diff_ids(d: D29, image: str) -> list[str]:
    return [str(x) for x in json.loads(d.cli.run("image", "inspect", "-f", "{{json .RootFS.Layers}}", image))]


def chain_ids(diffs: list[str]) -> list[str]:
    """ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)) (the OCI spec's)."""
    out: list[str] = []
    for diff in diffs:
        out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff}".encode()).hexdigest() if out else diff)
    return out


def history(d: D29, image: str) -> list[str]:
    """What made each layer of ``image``, top first (created_by, else the comment: "Imported from -")."""
    lines = d.cli.run("history", "--no-trunc", "--format", "{{.CreatedBy}}\t{{.Comment}}", image).splitlines()
    return [by or comment for by, _, comment in (line.partition("\t") for line in lines)]


# ---------------------------------------------------------------------- 1. Docker 29 with its own containerd


def test_running_container_is_its_real_mount(d29: D29, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", d29.host)  # no --docker-root: the daemon says where its data is
    stack = open_source("docker:web")
    target = d29.merged("web")
    assert paths(stack) == real_mount(target)
    assert len(stack.lowers) == 6  # its -init, and the image's 3 layers with 2 build containers' -init between
    assert stack.upper is not None and stack.upper.path.startswith(f"{d29.root}/containerd/daemon/{SNAP_DIR}/")
    assert model_tree(stack) == kernel_tree(target)
    # the same container by an id prefix, by the mount point, and as the mount table lists it
    cid = d29.ids["web"]
    assert open_source(f"docker:{cid[:12]}") == stack
    assert open_source(target) == stack
    [m] = [m for m in list_overlay_mounts() if m.target == target]
    assert (m.engine, m.container, m.container_id) == ("docker", "web", cid)


@pytest.mark.parametrize("name", ["stopped", "created"])
def test_not_running_container_tree_equals_kernel(d29: D29, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", d29.host)
    stack = open_source(f"docker:{name}")
    assert not mounts_under(d29.merged(name))
    web = open_source("docker:web")
    assert stack.upper is not None and stack.work is not None and len(stack.lowers) == 6
    assert [layer.path for layer in stack.lowers[1:]] == [layer.path for layer in web.lowers[1:]]  # the image's
    assert stack.lowers[0].path != web.lowers[0].path  # its own -init
    assert model_tree(stack) == kernel_view(stack)


@pytest.mark.parametrize("name", NAMES)
def test_diff_equals_docker_diff(d29: D29, monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", d29.host)
    want = sorted(d29.cli.run("diff", name).splitlines())
    assert want == d29.diffs[name] and want  # the container really changed something
    out = io.StringIO()
    assert cli.main(["diff", f"docker:{name}", "--format", "docker"], stdout=out) == 0
    assert sorted(out.getvalue().splitlines()) == want
    r = ufs_process("diff", f"docker:{name}", "--format", "docker")
    assert (r.returncode, r.stderr) == (0, "")
    assert sorted(r.stdout.splitlines()) == want and len(r.stdout) == sum(len(w) + 1 for w in want)


@pytest.mark.parametrize("image", ["multi:1", "base:1"])
def test_image_tree_and_labels(d29: D29, monkeypatch: pytest.MonkeyPatch, image: str) -> None:
    monkeypatch.setenv("DOCKER_HOST", d29.host)
    stack = open_source(f"docker-image:{image}")
    assert stack.upper is None
    assert model_tree(stack) == kernel_view(stack)
    parts = [parse_label(layer.label) for layer in stack.lowers]
    layers = [p for p in parts if dict(p.ids).get("diff")]  # the image's own layers, top first
    inits = [p for p in parts if not dict(p.ids).get("diff")]
    # RootFS.Layers (bottom first) are the diff ids of the labelled layers, their chain ids the snapshot keys,
    # and the steps are docker history's
    diffs = diff_ids(d29, image)
    assert [dict(p.ids)["diff"] for p in reversed(layers)] == [i.removeprefix("sha256:") for i in diffs]
    assert [dict(p.ids)["chain"] for p in reversed(layers)] == [i.removeprefix("sha256:") for i in chain_ids(diffs)]
    for layer, p in zip(stack.lowers, parts, strict=True):
        assert layer.path == f"{d29.inst.containerd_root}/{SNAP_DIR}/snapshots/{dict(p.ids)['snapshot']}/fs"
    assert [p.text for p in layers] == history(d29, image)
    assert all(dict(p.ids).keys() == {"diff", "chain", "snapshot"} for p in layers)
    if image == "multi:1":
        # legacy builder: each built layer sits on its build container's -init snapshot
        assert len(stack.lowers) == 5
        assert [bool(dict(p.ids).get("diff")) for p in parts] == [True, False, True, False, True]
        assert all(p.text.startswith(BUILD_INIT_LABEL) and dict(p.ids).keys() == {"snapshot"} for p in inits)
        assert "echo three > /layer3" in parts[0].brief and parts[0].brief.startswith("RUN ")
        assert "rm /etc/motd" in parts[2].brief and parts[4].text == "Imported from -"
        # a container of the image: its own -init over exactly these layers, labels and all
        web = open_source("docker:web")
        assert web.lowers[0].label.startswith(INIT_LABEL)
        assert [(x.path, x.label) for x in web.lowers[1:]] == [(x.path, x.label) for x in stack.lowers]
    else:
        assert len(stack.lowers) == 1 and not inits and parts[0].text == "Imported from -"


def test_ps_agrees_with_docker(d29: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    monkeypatch.setenv("DOCKER_HOST", d29.host)
    rows = [r for r in ps_rows(capsys, d29.inst.base) if r["engine"] == "docker"]
    containers = {str(r["name"]): r for r in rows if r["kind"] == "container"}
    images = {str(r["name"]): r for r in rows if r["kind"] == "image"}
    # docker ps -a and docker images list exactly what ps lists for docker
    assert {(name, r["id"]) for name, r in containers.items()} == d29.ps_a
    assert {name: r["id"] for name, r in images.items()} == d29.images
    for name in NAMES:
        info = d29.inspect[name]
        state, config = info["State"], info["Config"]
        assert isinstance(state, dict) and isinstance(config, dict)
        row = containers[name]
        upper = open_source(f"docker:{name}").upper
        assert upper is not None
        assert (row["id"], row["name"], row["state"]) == (info["Id"], str(info["Name"]).lstrip("/"), state["Status"])
        assert (row["image"], images[str(row["image"])]["id"]) == (config["Image"], info["Image"])
        assert (row["upper"], row["source"], row["namespace"]) == (upper.path, f"docker:{name}", "")
        assert isinstance(row["upper_size"], int) and row["upper_size"] > 0
    assert {name: r["state"] for name, r in containers.items()} == {
        "web": "running",
        "stopped": "exited",
        "created": "created",
    }
    assert containers["web"]["upper"] == real_mount(d29.merged("web")).upper
    assert {str(r["source"]) for r in images.values()} == {f"docker-image:{ref}" for ref in d29.images}


# ---------------------------------------------------------------------- 1b. the daemons gone


def test_dead_daemon_running_container(d29_dead: D29, monkeypatch: pytest.MonkeyPatch) -> None:
    d = d29_dead
    monkeypatch.setenv("DOCKER_HOST", d.host)  # nobody answers there any more
    stack = open_source("docker:web", docker_root=d.root)
    target = d.merged("web")  # the container still runs under its shim, its mount stays
    assert paths(stack) == real_mount(target)
    assert model_tree(stack) == kernel_tree(target)


@pytest.mark.parametrize("name", NAMES)
def test_dead_daemon_diff_and_tree(
    d29_dead: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], name: str
) -> None:
    d = d29_dead
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    rc, out, err = ufs(capsys, "diff", f"docker:{name}", "--docker-root", d.root, "--format", "docker")
    assert (rc, err) == (0, "")
    assert sorted(out.splitlines()) == d.diffs[name]  # what docker diff said while the daemon ran
    stack = open_source(f"docker:{name}", docker_root=d.root)
    assert stack.upper is not None and stack.upper.path.startswith(f"{d.root}/containerd/daemon/{SNAP_DIR}/")
    if name != "web":
        assert model_tree(stack) == kernel_view(stack)


def test_dead_daemon_images_and_ps(
    d29_dead: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    d = d29_dead
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    for image in ("multi:1", "base:1"):
        stack = open_source(f"docker-image:{image}", docker_root=d.root)
        assert model_tree(stack) == kernel_view(stack)
        assert all(layer.path.startswith(f"{d.root}/containerd/daemon/") for layer in stack.lowers)
    rows = [r for r in ps_rows(capsys, d.inst.base, "--docker-root", d.root) if r["engine"] == "docker"]
    assert {(r["name"], r["id"]) for r in rows if r["kind"] == "container"} == d.ps_a
    assert {r["name"]: r["id"] for r in rows if r["kind"] == "image"} == d.images
    states = {r["name"]: r["state"] for r in rows if r["kind"] == "container"}
    assert states == {"web": "running", "stopped": "exited", "created": "created"}  # as the records say


# ---------------------------------------------------------------------- 2. Docker 29 on an external containerd


def test_external_containerd_found_through_daemon(
    d29x: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", d29x.host)
    assert not os.path.exists(f"{d29x.root}/containerd")  # nothing in the data root says where the layers are
    stack = open_source("docker:web")
    target = d29x.merged("web")
    assert paths(stack) == real_mount(target)
    assert stack.upper is not None and stack.upper.path.startswith(f"{d29x.inst.containerd_root}/{SNAP_DIR}/")
    assert model_tree(stack) == kernel_tree(target)
    for name in NAMES:
        rc, out, err = ufs(capsys, "diff", f"docker:{name}", "--format", "docker")
        assert (rc, err) == (0, "")
        assert sorted(out.splitlines()) == d29x.diffs[name]
    image = open_source("docker-image:multi:1")
    assert [(x.path, x.label) for x in image.lowers] == [(x.path, x.label) for x in stack.lowers[1:]]


def test_external_containerd_root_given(
    d29x: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", d29x.host)
    found = open_source("docker:web")
    monkeypatch.delenv("DOCKER_HOST")
    roots = {"docker_root": d29x.root, "containerd_root": d29x.inst.containerd_root}
    assert open_source("docker:web", **roots) == found
    image = open_source("docker-image:multi:1", **roots)
    assert model_tree(image) == kernel_view(image)
    argv = ["--docker-root", d29x.root, "--containerd-root", d29x.inst.containerd_root]
    rc, out, err = ufs(capsys, "diff", "docker:stopped", "--format", "docker", *argv)
    assert (rc, err) == (0, "") and sorted(out.splitlines()) == d29x.diffs["stopped"]
    r = ufs_process("diff", "docker:web", "--format", "docker", *argv)
    assert (r.returncode, r.stderr) == (0, "") and sorted(r.stdout.splitlines()) == d29x.diffs["web"]


@pytest.mark.parametrize("spec", ["docker:web", "docker-image:multi:1"])
def test_external_containerd_root_empty_dir(
    d29x: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path, spec: str
) -> None:
    monkeypatch.setenv("DOCKER_HOST", d29x.host)
    rc, out, err = ufs(capsys, "tree", spec, "--containerd-root", str(tmp_path))
    assert (rc, out) == (2, "")
    line = one_error_line(err)
    assert str(tmp_path) in line and "--containerd-root" in line and "not a containerd root" in line


@pytest.mark.parametrize("spec", ["docker:web", "docker-image:multi:1"])
def test_external_containerd_not_asked(
    d29: D29, d29x: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], spec: str
) -> None:
    """``--docker-root`` alone: the daemon is not asked, so its containerd's address is not known. The running
    dockerd with that data root names it (``--containerd``); failing that, the error must say to give
    ``--containerd-root``. Never the layers of another Docker's containerd (``d29``'s also holds a multi:1)."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    rc, out, err = ufs(capsys, "tree", spec, "--docker-root", d29x.root, "--format", "json")
    if rc == 0:
        sources = {json.loads(line)["source"] for line in out.splitlines()}
        assert all(s.startswith(f"{d29x.inst.containerd_root}/") for s in sources if s), sorted(sources)[:3]
    else:
        assert (rc, out) == (2, "")
        assert "--containerd-root" in one_error_line(err)


def test_external_ps_not_asked(
    d29: D29, d29x: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """``ps --docker-root`` alone: Docker's images and writable layers are this Docker's, or (its containerd not
    found) a warning says to give ``--containerd-root``; never another Docker's images under this one's name."""
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    capsys.readouterr()
    out = io.StringIO()
    rc = cli.main(["ps", "--format", "json", "--docker-root", d29x.root], stdout=out)
    err = capsys.readouterr().err
    rows = [r for r in map(json.loads, out.getvalue().splitlines()) if r["engine"] == "docker"]
    assert {(r["name"], r["id"]) for r in rows if r["kind"] == "container"} == d29x.ps_a
    images = {r["name"]: r["id"] for r in rows if r["kind"] == "image"}
    uppers = {r["name"]: r["upper"] for r in rows if r["kind"] == "container"}
    if images or any(uppers.values()):
        assert images == d29x.images
        assert all(str(u).startswith(f"{d29x.inst.containerd_root}/") for u in uppers.values()), uppers
    else:
        assert rc == 1 and "--containerd-root" in err


# ---------------------------------------------------------------------- 3. errors


def test_error_no_such_name_lists_names(
    d29: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DOCKER_HOST", d29.host)
    rc, out, err = ufs(capsys, "tree", "docker:nope")
    assert (rc, out) == (2, "")
    line = one_error_line(err)
    head = f"ufs-tui: error: nope: no such container in the Docker data root {d29.root} (its containers: "
    assert line.startswith(head) and line.endswith(")")
    assert sorted(line[len(head) : -1].split(", ")) == sorted(NAMES)
    r = ufs_process("diff", "docker:nope", "--format", "docker")
    assert (r.returncode, r.stdout, r.stderr) == (2, "", err)


def test_error_ambiguous_id_prefix(d29: D29, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    """Two containers whose ids share a prefix (the second one's record forged in a copy of the records)."""
    root = tmp_path / "dr"
    cid = d29.ids["web"]
    twin = cid[:6] + ("0" if cid[6] != "0" else "1") + cid[7:]
    for dest in (cid, twin):
        (root / "containers" / dest).mkdir(parents=True)
        shutil.copy(f"{d29.root}/containers/{cid}/config.v2.json", root / "containers" / dest)
    argv = ["--docker-root", str(root), "--containerd-root", d29.inst.containerd_root]
    rc, out, err = ufs(capsys, "tree", f"docker:{cid[:6]}", *argv)
    assert (rc, out) == (2, "")
    line = one_error_line(err)
    assert line.startswith(f"ufs-tui: error: {cid[:6]}: ambiguous container id prefix") and "2 match" in line
    assert ufs(capsys, "diff", f"docker:{cid[:7]}", "--format", "docker", *argv)[0] == 0  # one more digit: found


@pytest.mark.parametrize("what", ["upper fs", "init dir"])
def test_error_snapshot_dir_gone(
    d29: D29, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], what: str
) -> None:
    """A snapshot dir removed (garbage-collected) while the metadata still names it: the stopped container's own
    upper, or the whole dir of its -init snapshot."""
    monkeypatch.setenv("DOCKER_HOST", d29.host)
    stack = open_source("docker:stopped")
    assert stack.upper is not None
    cid = d29.ids["stopped"]
    fs, key = (stack.upper.path, cid) if what == "upper fs" else (stack.lowers[0].path, cid + "-init")
    moved = os.path.dirname(fs) + ".gone" if what == "init dir" else fs + ".gone"
    src = os.path.dirname(fs) if what == "init dir" else fs
    os.rename(src, moved)
    try:
        rc, out, err = ufs(capsys, "diff", "docker:stopped", "--format", "docker")
    finally:
        os.rename(moved, src)
    assert (rc, out) == (2, "")
    line = one_error_line(err)
    assert line.startswith(f"ufs-tui: error: {fs}: the dir of snapshot {key} is gone"), line
    assert open_source("docker:stopped") == stack  # back again


DAMAGE = ["intact", "empty", "truncated", "bad magic", "garbage pages", "snapshotter db truncated"]


@pytest.mark.parametrize("damage", DAMAGE)
def test_error_damaged_metadata(d29: D29, capsys: pytest.CaptureFixture[str], tmp_path: Path, damage: str) -> None:
    """A copy of the containerd root's two bbolt files (the layer dirs linked in), damaged."""
    real = d29.inst.containerd_root
    root = tmp_path / "ctrd"
    for db in (META_DB, f"{SNAP_DIR}/metadata.db"):
        (root / db).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f"{real}/{db}", root / db)
    os.symlink(f"{real}/{SNAP_DIR}/snapshots", root / SNAP_DIR / "snapshots")
    os.symlink(f"{real}/io.containerd.content.v1.content", root / "io.containerd.content.v1.content")
    victim = root / (f"{SNAP_DIR}/metadata.db" if damage.startswith("snapshotter") else META_DB)
    size = victim.stat().st_size
    with open(victim, "r+b") as f:
        if damage == "empty":
            f.truncate(0)
        elif "truncated" in damage:
            f.truncate(8192 + 100)  # the two meta pages kept, the pages they name cut off
        elif damage == "bad magic":
            f.write(b"\xa5" * 8192)  # both meta pages
        elif damage == "garbage pages":
            f.seek(8192)
            f.write(b"\xa5" * (size - 8192))
    argv = ["--docker-root", d29.root, "--containerd-root", str(root)]
    for spec in ("docker:stopped", "docker-image:multi:1"):
        rc, out, err = ufs(capsys, "tree", spec, "--format", "json", *argv)
        if damage == "intact":
            assert (rc, err) == (0, "")
            real_stack = open_source(spec, docker_root=d29.root, containerd_root=real)
            assert model_tree(open_source(spec, docker_root=d29.root, containerd_root=str(root))) == model_tree(
                real_stack
            )
            continue
        assert (rc, out) == (2, "")
        line = one_error_line(err)
        assert line.startswith(f"ufs-tui: error: {victim}: "), line
        problem = line.split(f"{victim}: ", 1)[1]
        expected = {
            "empty": "empty file (0 bytes): not a bbolt database",
            "truncated": "truncated: ",
            "bad magic": "not a bbolt database (bad magic)",
            "garbage pages": "corrupt: ",
            "snapshotter db truncated": "truncated: ",
        }[damage]
        assert problem.startswith(expected), problem


def as_nobody(*argv: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    return nobody.run("-m", "ufs_tui", *argv, env=env, text=True, timeout=60)


@pytest.fixture
def open_base(d29: D29) -> Iterator[str]:
    """The engine's own base dir made passable (0755) for the test, so its data root's own mode is what counts."""
    base = d29.inst.base
    mode = stat.S_IMODE(os.stat(base).st_mode)
    os.chmod(base, 0o755)
    try:
        yield base
    finally:
        os.chmod(base, mode)


def test_error_data_root_unreadable_as_nobody(d29: D29, open_base: str) -> None:
    mode = stat.S_IMODE(os.stat(d29.root).st_mode)
    assert mode & 0o001 == 0, oct(mode)  # dockerd keeps its data root from other users (0710)
    for spec in ("docker:web", "docker-image:multi:1"):
        r = as_nobody("tree", spec, "--docker-root", d29.root)
        assert (r.returncode, r.stdout) == (2, "")
        assert r.stderr == (
            f"ufs-tui: error: {d29.root}: permission denied reading the Docker data root "
            "(run as root, or pass --docker-root)\n"
        ), r.stderr
    # the records readable (a copy), the containerd root under the data root not
    shared = tempfile.mkdtemp(prefix="ufs-d29-nobody-")
    try:
        os.chmod(shared, 0o755)
        for cid in d29.ids.values():
            os.makedirs(f"{shared}/containers/{cid}")
            shutil.copy(f"{d29.root}/containers/{cid}/config.v2.json", f"{shared}/containers/{cid}")
        subprocess.run(["chmod", "-R", "a+rX", shared], check=True)
        ctrd = d29.inst.containerd_root
        r = as_nobody("tree", "docker:web", "--docker-root", shared, "--containerd-root", ctrd)
        assert (r.returncode, r.stdout) == (2, "")
        assert r.stderr == f"ufs-tui: error: {ctrd}: permission denied reading the containerd root (run as root)\n"
    finally:
        shutil.rmtree(shared)


# ---------------------------------------------------------------------- 4. the overlay2 graph driver next to it


@pytest.fixture(scope="module")
def overlay2_container(docker: Engine, d29: D29) -> Iterator[str]:
    """A container of Debian's Docker 20.10 (overlay2), made while the Docker 29 engines run."""
    name = "d29-next-overlay2"
    docker.run("rm", "-f", name, check=False)
    docker.run("run", "-d", "--name", name, "--network", "none", "multi:1", "sleep", "100000")
    try:
        docker.run("exec", name, "sh", "-c", CHANGES)
        yield name
    finally:
        docker.run("rm", "-f", name, check=False)


def test_overlay2_through_its_daemon(
    docker: Engine, overlay2_container: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    name = overlay2_container
    monkeypatch.setenv("DOCKER_HOST", docker.env["DOCKER_HOST"])
    stack = open_source(f"docker:{name}")
    assert stack == open_source(f"docker:{name}", docker_root=docker.root)
    assert stack.upper is not None and stack.upper.path.startswith(f"{docker.root}/overlay2/")
    merged = docker.run("inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", name).strip()
    m = real_mount(merged)  # overlay2 names its lowers by their short links l/ID (relative to overlay2/, or not)
    lowers = [os.path.realpath(p if p.startswith("/") else f"{docker.root}/overlay2/{p}") for p in m.lowers]
    assert paths(stack) == RealMount(lowers, m.upper, m.work)
    assert model_tree(stack) == kernel_tree(merged)
    rc, out, err = ufs(capsys, "diff", f"docker:{name}", "--format", "docker")
    assert (rc, err) == (0, "") and sorted(out.splitlines()) == sorted(docker.run("diff", name).splitlines())
    image = open_source("docker-image:multi:1")
    assert len(image.lowers) == 3 and all(layer.path.startswith(f"{docker.root}/overlay2/") for layer in image.lowers)
    assert model_tree(image) == kernel_view(image)
    rows = [r for r in ps_rows(capsys, docker.root) if r["engine"] == "docker" and r["kind"] == "container"]
    row = next(r for r in rows if r["name"] == name)
    assert (row["upper"], row["source"], row["state"]) == (stack.upper.path, f"docker:{name}", "running")
