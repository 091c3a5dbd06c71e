"""containerd's own records read without the daemon: ``containerd:``, ``containerd-image:``, ``k8s:``, ``nerdctl:``
and ``ufs-tui ps``, against real containerd 1.6 (Debian) and 2.3.3 (the engines tarball).

Each engine runs once per module with its own root, state and socket. The image (conftest's ``docker save
multi:1``, renamed to a name of this run's own) is imported into namespaces ``default``, ``moby`` and
``k8s.io`` (and, not unpacked, into one more); each of those gets a running container that ran CHANGES, a
created one (no task) and a stopped one (its task ran CHANGES, was killed and deleted). The references are
containerd itself: ``ctr snapshots mounts`` (the mount it would make), the task's rootfs mount in
/proc/self/mountinfo, ``ctr tasks ls`` and ``ctr snapshots ls``; and the kernel (``kernel_tree`` of a real mount
of the same layers). Other containerds may run on this host at the same time (other sessions' tests): every
name here carries this run's uid, so a name given without a namespace or root is still unique.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest

from tests.conftest import need
from tests.engines import modern
from tests.engines.conftest import CHANGES, Engine, wait_for
from tests.engines.modern import ModernEngine
from tests.overlay import kernel_tree, model_tree, mounted
from ufs_tui import cli
from ufs_tui.core.model.display import human_size, printable
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.sources import open_source
from ufs_tui.core.sources.common import parse_label

NAMESPACES = ("default", "moby", "k8s.io")
TAG = {"default": "d", "moby": "m", "k8s.io": "k"}
RAW_NS = "ufs-raw"  # the image imported with --no-unpack: no snapshots
SNAPSHOTTER_DIR = "io.containerd.snapshotter.v1.overlayfs"
NERDCTL_ROOT = "/var/lib/nerdctl"
# A label value anyone who can run ctr may set (containerd checks only its length): a newline and an escape.
EVIL = "evil\n\x1b[31mred"
UFS_TUI = os.path.join(os.path.dirname(sys.executable), "ufs-tui")  # the venv's entry point
PS_COLUMNS = ("ENGINE", "NAMESPACE", "NAME", "ID", "STATE", "IMAGE", "UPPER SIZE", "OPEN WITH")

# What CHANGES leaves in a container's upper, in bytes of file data (symlinks: their target's length; the
# whiteout of /var/log: 0): /etc/passwd copied up and appended to, /opt/app/x, /newfile, /newdir/sub/f,
# /bin/newlink -> /x, /bin/ls, /layer2/f copied up (chmod), '/odd name [red]'.
PASSWD = "root:x:0:0:root:/root:/bin/sh\n"  # conftest.make_rootfs
CHANGES_BYTES = len(PASSWD + "changed\n") + len("new\n") + 0 + len("1\n") + len("/x") + len("x\n") + len("two\n") + 3


# ---------------------------------------------------------------------- engines
def start_engine(version: str) -> ModernEngine:
    need(os.geteuid() == 0, "containerd tests need root")
    if version == "1.6":
        need(shutil.which("containerd") is not None and shutil.which("ctr") is not None, "containerd is not installed")
        return modern.start_containerd16()
    need(modern.available(), "docker-engine.tar.xz (containerd 2.3.3) or runc is not available")
    return modern.start_containerd23()


# ---------------------------------------------------------------------- the scenario
@dataclass
class World:
    """One engine with this module's containers and images; every name carries ``uid``."""

    version: str
    inst: ModernEngine
    uid: str
    ref: str  # docker.io/library/multi-UID:1
    diff_ids: list[str]  # bottom first, from the archive's config
    steps: list[str]  # what made each layer, bottom first (created_by, else comment)
    running: dict[str, str] = field(default_factory=dict)  # namespace -> container id
    created: dict[str, str] = field(default_factory=dict)
    stopped: dict[str, str] = field(default_factory=dict)
    pod: dict[str, str] = field(default_factory=dict)  # role -> container id (all in k8s.io)
    nerd: str = ""  # labelled nerdctl/name=web-UID, in default, running
    evil: str = ""  # labelled nerdctl/name=EVIL-UID, in default, created

    @property
    def root(self) -> str:
        return self.inst.containerd_root

    @property
    def short(self) -> str:
        return f"multi-{self.uid}:1"

    @property
    def web(self) -> str:
        return f"web-{self.uid}"

    def ctr(self, ns: str) -> Engine:
        return self.inst.ctr_in(ns)

    def chain_ids(self) -> list[str]:
        out: list[str] = []
        for d in self.diff_ids:
            out.append(d if not out else "sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
        return out

    def containers(self) -> dict[str, str]:
        """id -> namespace of every container made here."""
        out = {cid: ns for d in (self.running, self.created, self.stopped) for ns, cid in d.items()}
        out.update({cid: "k8s.io" for cid in self.pod.values()})
        out.update({self.nerd: "default", self.evil: "default"})
        return out


def renamed_archive(src: str, dest: str, repo: str) -> tuple[list[str], list[str]]:
    """``src`` (docker save of multi:1) with its one image tagged ``repo:1`` instead; (diff ids, steps)."""
    with tarfile.open(src) as tin, tarfile.open(dest, "w") as tout:
        manifest = json.load(tin.extractfile("manifest.json"))  # type: ignore[arg-type]
        config = json.load(tin.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        manifest[0]["RepoTags"] = [f"{repo}:1"]
        top = manifest[0]["Layers"][-1].split("/")[0]
        replaced = {"manifest.json": manifest, "repositories": {repo: {"1": top}}}
        for member in tin.getmembers():
            if member.name in replaced:
                data = json.dumps(replaced[member.name]).encode()
                member.size = len(data)
                tout.addfile(member, io.BytesIO(data))
            else:
                tout.addfile(member, tin.extractfile(member) if member.isfile() else None)
    steps = [
        str(h.get("created_by") or h.get("comment") or "")
        for h in config.get("history", [])
        if not h.get("empty_layer")
    ]
    return list(config["rootfs"]["diff_ids"]), steps


def label_args(labels: dict[str, str]) -> list[str]:
    return [a for k, v in labels.items() for a in ("--label", f"{k}={v}")]


def pod_labels(namespace: str, pod: str, container: str, kind: str = "container") -> dict[str, str]:
    return {
        "io.kubernetes.pod.namespace": namespace,
        "io.kubernetes.pod.name": pod,
        "io.kubernetes.container.name": container,
        "io.cri-containerd.kind": kind,
    }


def task_status(ctr: Engine, cid: str) -> str | None:
    for line in ctr.run("tasks", "ls").splitlines()[1:]:
        words = line.split()
        if words and words[0] == cid:
            return words[-1]
    return None


def build(w: World, archive: str) -> None:
    inst = w.inst

    def run(ns: str, cid: str, labels: dict[str, str] | None = None, changes: str = CHANGES) -> None:
        ctr = w.ctr(ns)
        ctr.run("run", "-d", *inst.run_flags, *label_args(labels or {}), w.ref, cid, "sleep", "100000")
        ctr.run("tasks", "exec", *inst.exec_flags, "--exec-id", "e1", cid, "sh", "-c", changes)

    def create(ns: str, cid: str, labels: dict[str, str] | None = None) -> None:
        w.ctr(ns).run("containers", "create", *label_args(labels or {}), w.ref, cid, "sleep", "1")

    for ns in NAMESPACES:
        w.ctr(ns).run("images", "import", archive)
    w.ctr(RAW_NS).run("images", "import", "--no-unpack", archive)
    w.ctr("moby").run("images", "tag", w.ref, f"docker.io/library/solo-{w.uid}:1")  # a name only moby has
    for ns in NAMESPACES:
        t = TAG[ns]
        w.running[ns], w.created[ns], w.stopped[ns] = f"run-{w.uid}-{t}", f"new-{w.uid}-{t}", f"stop-{w.uid}-{t}"
        run(ns, w.running[ns])
        create(ns, w.created[ns])
        run(ns, w.stopped[ns])
        ctr = w.ctr(ns)
        ctr.run("tasks", "kill", "-s", "SIGKILL", w.stopped[ns])
        wait_for(lambda c=ctr, i=w.stopped[ns]: task_status(c, i) == "STOPPED", 30, "the killed task to stop")
        ctr.run("tasks", "delete", w.stopped[ns])
    # Kubernetes pods in k8s.io: pod default/web-UID with app (restarted: the running attempt is the older
    # one), sidecar and its sandbox (which even has a container name: kind=sandbox alone must skip it), and
    # pod other/pod-UID with one container.
    w.pod = {
        "app0": f"app0-{w.uid}",
        "app1": f"app1-{w.uid}",
        "sidecar": f"side-{w.uid}",
        "sandbox": f"sbx-{w.uid}",
        "other": f"oth-{w.uid}",
    }
    run("k8s.io", w.pod["app0"], pod_labels("default", w.web, "app"), changes="echo app0 > /attempt")
    create("k8s.io", w.pod["app1"], pod_labels("default", w.web, "app"))
    create("k8s.io", w.pod["sidecar"], pod_labels("default", w.web, "sidecar"))
    create("k8s.io", w.pod["sandbox"], pod_labels("default", w.web, "pause", kind="sandbox"))
    create("k8s.io", w.pod["other"], pod_labels("other", f"pod-{w.uid}", "main"))
    # nerdctl's containers: its labels, in default
    w.nerd, w.evil = f"nerd-{w.uid}", f"evil-{w.uid}"
    run("default", w.nerd, {"nerdctl/name": w.web, "nerdctl/namespace": "default"}, changes="echo n > /nerd")
    create("default", w.evil, {"nerdctl/name": f"{EVIL}-{w.uid}", "nerdctl/namespace": "default"})


@pytest.fixture(scope="module", params=["1.6", "2.3.3"], ids=["containerd1.6", "containerd2.3.3"])
def world(request: pytest.FixtureRequest, docker_archive: str) -> Iterator[World]:
    inst = start_engine(request.param)
    try:
        uid = uuid.uuid4().hex[:8]
        archive = f"{inst.base}/multi-{uid}.tar"
        diff_ids, steps = renamed_archive(docker_archive, archive, f"multi-{uid}")
        w = World(request.param, inst, uid, f"docker.io/library/multi-{uid}:1", diff_ids, steps)
        build(w, archive)
        yield w
    finally:
        inst.stop()


# ---------------------------------------------------------------------- what containerd says
def _options(text: str) -> dict[str, str]:
    out = {}
    for opt in text.split(","):
        k, _, v = opt.partition("=")
        out[k] = v
    return out


def ctr_mount(w: World, ns: str, key: str) -> tuple[list[str], str | None]:
    """(lowerdirs top first, upperdir) of the mount containerd makes for snapshot ``key``."""
    out = w.ctr(ns).run("snapshots", "mounts", "/ufs-target", key).strip()
    assert out.startswith("mount -t overlay overlay /ufs-target -o "), out
    opts = _options(out.split(" -o ", 1)[1])
    return opts["lowerdir"].split(":"), opts.get("upperdir")


def _unescape(field: str) -> str:
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def task_mount(w: World, ns: str, cid: str) -> tuple[str, list[str], str | None]:
    """(target, lowerdirs, upperdir) of the running task's rootfs in /proc/self/mountinfo."""
    target = f"{w.inst.containerd_state}/io.containerd.runtime.v2.task/{ns}/{cid}/rootfs"
    with open("/proc/self/mountinfo") as f:
        for line in f:
            left, _, right = line.partition(" - ")
            if _unescape(left.split(" ")[4]) == target and right.startswith("overlay "):
                opts = _options(right.split(" ")[2].strip())
                return target, [_unescape(p) for p in opts["lowerdir"].split(":")], _unescape(opts["upperdir"])
    raise AssertionError(f"no overlay mounted at {target}")


def snapshot_parents(w: World, ns: str) -> dict[str, str]:
    """key -> parent key, from ``ctr snapshots ls``."""
    out = {}
    for line in w.ctr(ns).run("snapshots", "ls").splitlines()[1:]:
        words = line.split()
        if len(words) == 3:
            out[words[0]] = words[1]
    return out


def running_tasks(w: World, ns: str) -> set[str]:
    return {ln.split()[0] for ln in w.ctr(ns).run("tasks", "ls").splitlines()[1:] if ln.split()[-1] == "RUNNING"}


def paths(stack: Stack) -> tuple[list[str], str | None]:
    return [layer.path for layer in stack.lowers], stack.upper.path if stack.upper else None


def snapshot_id(path: str) -> str:
    m = re.search(rf"/{SNAPSHOTTER_DIR}/snapshots/(\d+)/fs$", path)
    assert m, path
    return m.group(1)


def files_size(upper: str) -> int:
    """Bytes of the non-dir entries under ``upper``, each inode once (an oracle for upper_size: du's way)."""
    r = subprocess.run(["find", upper, "!", "-type", "d", "-printf", "%i %s\n"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return sum(int(s) for s in {ln.split()[0]: ln.split()[1] for ln in r.stdout.splitlines()}.values())


def run_cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    out = io.StringIO()
    rc = cli.main(argv, stdout=out)
    return rc, out.getvalue(), capsys.readouterr().err


def one_error(err: str) -> str:
    lines = err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ufs-tui: error: "), err
    return lines[0]


# ---------------------------------------------------------------------- 1. containers
@pytest.mark.parametrize("kind", ["running", "created", "stopped"])
@pytest.mark.parametrize("ns", NAMESPACES)
def test_container_is_the_mount_containerd_makes(world: World, ns: str, kind: str) -> None:
    cid = getattr(world, kind)[ns]
    stack = open_source(f"containerd:{ns}/{cid}")
    lowers, upper = ctr_mount(world, ns, cid)
    assert paths(stack) == (lowers, upper)
    assert stack.upper is not None and stack.upper.path.endswith("/fs")
    assert os.path.isdir(stack.upper.path.removesuffix("/fs") + "/work")
    assert open_source(f"containerd:{cid}") == stack  # unqualified: this run's ids are unique on the host
    # the layers are the image's, labelled with its build steps and ids, bottom layer last
    labels = [parse_label(layer.label) for layer in stack.lowers]
    assert [p.text for p in labels] == [" ".join(s.split()) for s in reversed(world.steps)]
    ids = [dict(p.ids) for p in labels]
    assert [i["diff"] for i in ids] == [d.removeprefix("sha256:") for d in reversed(world.diff_ids)]
    assert [i["chain"] for i in ids] == [c.removeprefix("sha256:") for c in reversed(world.chain_ids())]
    assert [i["snapshot"] for i in ids] == [snapshot_id(p) for p in lowers]
    assert parse_label(stack.upper.label).ids == (("snapshot", snapshot_id(upper or "")),)
    if kind == "running":
        target, mlowers, mupper = task_mount(world, ns, cid)
        assert (mlowers, mupper) == (lowers, upper)
        view = model_tree(stack)
        assert view == kernel_tree(target)
        assert open_source(target) == stack  # the mount point itself: same paths, containerd's labels
    else:
        assert cid not in running_tasks(world, ns)
        # the same layers mounted read-only (the upper as the top lower): the kernel's view of them
        with tempfile.TemporaryDirectory(dir=world.inst.base) as mnt, mounted([upper or "", *lowers], None, None, mnt):
            view = model_tree(stack)
            assert view == kernel_tree(mnt)
    if kind == "created":
        assert os.listdir(upper or "") == [] and "/newfile" not in view
    else:
        assert view["/opt/app/x"][0] == "file" and "/var/log" not in view and "/opt/app/one" not in view


def test_container_with_containerd_root(world: World) -> None:
    """--containerd-root reads that root only; the running daemon is not asked (stack identical)."""
    for ns in NAMESPACES:
        for cid in (world.running[ns], world.stopped[ns]):
            found = open_source(f"containerd:{ns}/{cid}")
            assert open_source(f"containerd:{ns}/{cid}", containerd_root=world.root) == found
            assert open_source(f"containerd:{cid}", containerd_root=world.root) == found
    with pytest.raises(StackError, match="not a containerd root"):
        open_source(f"containerd:{world.running['default']}", containerd_root=world.inst.base)
    with pytest.raises(StackError, match="no such containerd root"):
        open_source(f"containerd:{world.running['default']}", containerd_root=f"{world.inst.base}/nowhere")


# ---------------------------------------------------------------------- 2. images
@pytest.mark.parametrize("ns", NAMESPACES)
def test_image_is_its_chain(world: World, ns: str) -> None:
    chain = world.chain_ids()
    stack = open_source(f"containerd-image:{ns}/{world.ref}")
    assert stack.upper is None
    lowers, _upper = ctr_mount(world, ns, world.running[ns])  # a container made from it: its parents
    assert paths(stack) == (lowers, None)
    # containerd's own parent links: the container's snapshot -> the image's chain ids, top first
    parents = snapshot_parents(world, ns)
    walk, key = [], parents.get(world.created[ns])
    while key:
        walk.append(key)
        key = parents.get(key)
    assert walk == list(reversed(chain))
    labels = [parse_label(layer.label) for layer in stack.lowers]
    assert [p.text for p in labels] == [" ".join(s.split()) for s in reversed(world.steps)]
    assert [p.brief.split(" ")[0] for p in labels] == ["RUN", "RUN", "Imported"]
    assert [dict(p.ids)["diff"] for p in labels] == [d.removeprefix("sha256:") for d in reversed(world.diff_ids)]
    assert [dict(p.ids)["chain"] for p in labels] == [c.removeprefix("sha256:") for c in walk]
    assert all(p.size is not None for p in labels)  # committed layers: the snapshotter recorded their size
    with tempfile.TemporaryDirectory(dir=world.inst.base) as mnt, mounted(lowers, None, None, mnt):
        assert model_tree(stack) == kernel_tree(mnt)
    # short forms of the same name
    assert open_source(f"containerd-image:{ns}/{world.short}") == stack
    assert open_source(f"containerd-image:{ns}/library/{world.short}") == stack


def test_image_short_names(world: World) -> None:
    moby = open_source(f"containerd-image:moby/{world.ref}")
    # a name only one namespace has, without a namespace
    assert open_source(f"containerd-image:solo-{world.uid}:1") == moby
    assert open_source(f"containerd-image:docker.io/library/solo-{world.uid}:1") == moby
    # an image digest prefix in a namespace (two names for one image there: still one image)
    digest = next(
        line.split()[2]
        for line in world.ctr("moby").run("images", "ls").splitlines()[1:]
        if line.split()[0] == world.ref
    )
    assert open_source(f"containerd-image:moby/{digest.removeprefix('sha256:')[:12]}") == moby
    # a name every namespace has: ambiguous, and the error names where
    with pytest.raises(StackError) as e:
        open_source(f"containerd-image:{world.short}")
    for ns in (*NAMESPACES, RAW_NS):
        assert f"{ns}/{world.ref}" in str(e.value)
    assert "give NAMESPACE/NAME" in str(e.value)


def test_image_not_unpacked(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    assert snapshot_parents(world, RAW_NS) == {}  # imported with --no-unpack: no snapshot in that namespace
    with pytest.raises(StackError, match=f"image is not unpacked in namespace {RAW_NS}"):
        open_source(f"containerd-image:{RAW_NS}/{world.ref}")
    rc, out, err = run_cli(["tree", f"containerd-image:{RAW_NS}/{world.short}"], capsys)
    assert (rc, out) == (2, "")
    assert "not unpacked" in one_error(err) and "ctr images unpack" in err


# ---------------------------------------------------------------------- 3. Kubernetes pods
def test_k8s_pods(world: World) -> None:
    p = world.pod

    def upper_of(cid: str) -> str | None:
        return ctr_mount(world, "k8s.io", cid)[1]

    app = open_source(f"k8s:{world.web}/app")
    assert app.upper is not None and app.upper.path == upper_of(p["app0"])  # the running attempt, not the newer
    assert open_source(f"k8s:default/{world.web}/app") == app
    assert paths(open_source(f"containerd:k8s.io/{p['app0']}")) == paths(app)
    assert app.upper.label.startswith(f"container default/{world.web}/app writable layer")
    assert model_tree(app) == kernel_tree(task_mount(world, "k8s.io", p["app0"])[0])
    side = open_source(f"k8s:default/{world.web}/sidecar")
    assert side.upper is not None and side.upper.path == upper_of(p["sidecar"])
    with pytest.raises(StackError) as e:
        open_source(f"k8s:default/{world.web}")
    assert f"pod default/{world.web} has 2 containers: app, sidecar" in str(e.value)
    with pytest.raises(StackError, match="has 2 containers"):
        open_source(f"k8s:{world.web}")
    other = open_source(f"k8s:other/pod-{world.uid}")  # its only container
    assert other.upper is not None and other.upper.path == upper_of(p["other"])
    assert open_source(f"k8s:other/pod-{world.uid}/main") == other
    with pytest.raises(StackError, match=r"has no container nope \(it has app, sidecar\)"):
        open_source(f"k8s:default/{world.web}/nope")
    with pytest.raises(StackError, match="no such pod"):
        open_source(f"k8s:default/nope-{world.uid}")
    # with the root given: the same
    assert open_source(f"k8s:{world.web}/app", containerd_root=world.root) == app


def test_k8s_restarted_none_running_picks_newest(world: World) -> None:
    """Two stopped attempts: the newer one (createdat) wins."""
    ctr = world.ctr("k8s.io")
    pod = f"rs-{world.uid}"
    ids = [f"rs0-{world.uid}", f"rs1-{world.uid}"]
    try:
        for cid in ids:
            ctr.run("containers", "create", *label_args(pod_labels("default", pod, "app")), world.ref, cid, "true")
        stack = open_source(f"k8s:{pod}/app")
        assert stack.upper is not None and stack.upper.path == ctr_mount(world, "k8s.io", ids[1])[1]
    finally:
        for cid in ids:
            ctr.run("containers", "delete", cid, check=False)


def test_k8s_wrong_containerd_root_says_so(world: World) -> None:
    """A --containerd-root that is not one is that error, not "no such pod" (as for containerd: and nerdctl:)."""
    with pytest.raises(StackError, match="no such containerd root"):
        open_source(f"k8s:{world.web}/app", containerd_root=f"{world.inst.base}/nowhere")


# ---------------------------------------------------------------------- 4. nerdctl
def test_nerdctl_by_label(world: World) -> None:
    stack = open_source(f"nerdctl:{world.web}")
    assert stack.upper is not None and stack.upper.path == ctr_mount(world, "default", world.nerd)[1]
    assert open_source(f"nerdctl:default/{world.web}") == stack
    assert open_source(f"nerdctl:{world.web}", containerd_root=world.root) == stack
    assert "/nerd" in model_tree(stack)
    evil = open_source(f"nerdctl:{EVIL}-{world.uid}")
    assert evil.upper is not None and evil.upper.path == ctr_mount(world, "default", world.evil)[1]
    with pytest.raises(StackError, match="no nerdctl container of this name in namespace moby"):
        open_source(f"nerdctl:moby/{world.web}")


@contextlib.contextmanager
def nerdctl_names_store(address: str, namespace: str, name: str, cid: str) -> Iterator[None]:
    """nerdctl's names store for ``address`` holding ``name`` -> ``cid``, made only where none exists."""
    if os.path.lexists(NERDCTL_ROOT):
        need(False, f"{NERDCTL_ROOT} exists on this host: the names store test would write into it")
    store = f"{NERDCTL_ROOT}/{hashlib.sha256(address.encode()).hexdigest()[:8]}/names/{namespace}"
    try:
        os.makedirs(store)
        with open(f"{store}/{name}", "w") as f:
            f.write(cid)
        yield
    finally:
        shutil.rmtree(NERDCTL_ROOT, ignore_errors=True)


def test_nerdctl_names_store(world: World) -> None:
    """A container without the label, named only in /var/lib/nerdctl/HASH/names/NS/NAME."""
    name = f"stored-{world.uid}"
    cid = world.created["default"]
    with pytest.raises(StackError, match="no nerdctl container"):
        open_source(f"nerdctl:{name}")
    with nerdctl_names_store(world.inst.containerd_address, "default", name, cid):
        stack = open_source(f"nerdctl:{name}")
        assert stack.upper is not None and stack.upper.path == ctr_mount(world, "default", cid)[1]
        assert paths(stack) == paths(open_source(f"containerd:default/{cid}"))
        assert open_source(f"nerdctl:default/{name}") == stack
    assert not os.path.exists(NERDCTL_ROOT)


# ---------------------------------------------------------------------- 5. ps
def expected_ps(w: World) -> dict[str, dict[str, Any]]:
    """What ps must say of each container of ``w`` (by id), from ctr's own answers."""
    out: dict[str, dict[str, Any]] = {}
    short_image = w.short
    for cid, ns in w.containers().items():
        if cid == w.pod["sandbox"]:
            continue
        state = "running" if cid in running_tasks(w, ns) else "stopped"
        upper = ctr_mount(w, ns, cid)[1]
        e: dict[str, Any] = {"kind": "container", "id": cid, "state": state, "image": short_image, "upper": upper}
        roles = {v: k for k, v in w.pod.items()}
        if cid in roles:
            pns, pod, cname = {
                "app0": ("default", w.web, "app"),
                "app1": ("default", w.web, "app"),
                "sidecar": ("default", w.web, "sidecar"),
                "other": ("other", f"pod-{w.uid}", "main"),
            }[roles[cid]]
            # the attempt kubelet means opens by its pod's name; an earlier one (app1 here: app0 runs) by its id
            source = f"containerd:k8s.io/{cid}" if roles[cid] == "app1" else f"k8s:{pns}/{pod}/{cname}"
            e.update(engine="k8s", namespace=pns, name=f"{pod}/{cname}", source=source)
        elif cid in (w.nerd, w.evil):
            name = w.web if cid == w.nerd else f"{EVIL}-{w.uid}"
            e.update(engine="nerdctl", namespace="default", name=name, source=f"nerdctl:default/{name}")
        else:
            e.update(engine="containerd", namespace=ns, name=cid, source=f"containerd:{ns}/{cid}")
        out[cid] = e
    return out


def ps_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[dict[str, Any]], str]:
    rc, out, err = run_cli(["ps", "--format", "json", *argv], capsys)
    return rc, [json.loads(line) for line in out.splitlines()], err


def mine(w: World, entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [e for e in entries if w.uid in e["id"] or w.uid in e["name"]]


@pytest.mark.parametrize("with_root", [True, False], ids=["containerd-root", "found"])
def test_ps_json(world: World, with_root: bool, capsys: pytest.CaptureFixture[str]) -> None:
    rc, entries, err = ps_json(["--containerd-root", world.root] if with_root else [], capsys)
    assert rc in (0, 1), err
    assert all(line.startswith("ufs-tui: warning: ") for line in err.splitlines()), err
    assert world.root not in err  # warnings (other engines on this host) are not about this root
    got = mine(world, entries)
    containers = {e["id"]: e for e in got if e["kind"] == "container"}
    assert len(containers) == len([e for e in got if e["kind"] == "container"])  # each listed once
    expected = expected_ps(world)
    assert {cid: {k: e[k] for k in expected[cid]} for cid, e in containers.items()} == expected, err
    written = {world.pod["app0"]: len("app0\n"), world.nerd: len("n\n")}
    written.update({cid: CHANGES_BYTES for cid in (*world.running.values(), *world.stopped.values())})
    for cid, e in containers.items():
        assert e["upper_size"] == written.get(cid, 0) == files_size(e["upper"]), cid
    images = sorted((e["namespace"], e["name"], e["source"]) for e in got if e["kind"] == "image")
    want = [(ns, world.ref, f"containerd-image:{ns}/{world.ref}") for ns in (*NAMESPACES, RAW_NS)]
    solo = f"docker.io/library/solo-{world.uid}:1"
    want.append(("moby", solo, f"containerd-image:moby/{solo}"))
    assert images == sorted(want)


def test_ps_sources_open(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """Every SOURCE ps lists opens (the image that is not unpacked says why not), to the layers it lists."""
    rc, entries, err = ps_json([], capsys)
    assert rc in (0, 1), err
    expected = expected_ps(world)
    got = mine(world, entries)
    assert len(got) == len(expected) + 5, [e["source"] for e in got]  # and 5 images
    for e in got:
        if e["namespace"] == RAW_NS:
            with pytest.raises(StackError, match="not unpacked"):
                open_source(e["source"])
            continue
        stack = open_source(e["source"])
        if e["kind"] == "container":
            assert stack.upper is not None and stack.upper.path == expected[e["id"]]["upper"]
        else:
            assert stack.upper is None and len(stack.lowers) == len(world.diff_ids)


def test_ps_text(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(["ps", "--containerd-root", world.root], capsys)
    assert rc in (0, 1), err
    lines = out.splitlines()
    assert not any(ch in out for ch in "\x1b\r\t"), "raw control characters in the table"
    header = lines[0]
    assert header.split() == " ".join(PS_COLUMNS).split()
    starts, pos = [], 0
    for col in PS_COLUMNS:
        pos = header.index(col, pos)
        starts.append(pos)
        pos += len(col)
    rows: dict[tuple[str, ...], list[list[str]]] = {}
    for line in lines[1:]:
        assert all(line[s - 2 : s] == "  " for s in starts[1:] if len(line) > s), f"misaligned: {line!r}"
        cells = [line[a:b].strip() for a, b in zip(starts, [*starts[1:], None], strict=True)]
        rows.setdefault(tuple(cells[:4]), []).append(cells)
    _rc, entries, _err = ps_json(["--containerd-root", world.root], capsys)
    for e in mine(world, entries):  # each of this run's rows once, as the JSON says, escaped
        ident = e["id"].removeprefix("sha256:")[:12]
        (cells,) = rows[(e["engine"], e["namespace"] or "-", printable(e["name"]), ident)]
        assert cells[4:6] == [e["state"] or "-", e["image"]]
        assert cells[7] == printable(e["source"])
    evil = f"evil\\n\\x1b[31mred-{world.uid}"
    assert rows[("nerdctl", "default", evil, world.evil[:12])] == [
        ["nerdctl", "default", evil, world.evil[:12], "stopped", world.short, human_size(0), f"nerdctl:default/{evil}"]
    ]


def test_hostile_container_id_refused_by_containerd(world: World) -> None:
    """containerd refuses an id with a newline or escape: only labels can carry one (tested above)."""
    r = subprocess.run(
        [*world.ctr("default").argv, "containers", "create", world.ref, f"bad\nid-{world.uid}", "true"],
        capture_output=True,
        env=world.ctr("default").env,
    )
    assert r.returncode != 0


# ---------------------------------------------------------------------- 6. errors
def test_errors(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = run_cli(["tree", f"containerd:nope-{world.uid}"], capsys)
    line = one_error(err)
    assert (rc, out) == (2, "")
    assert "no such containerd container (namespaces: " in line
    assert all(ns in line for ns in (*NAMESPACES, RAW_NS))
    # an id prefix of three containers
    rc, out, err = run_cli(["tree", f"containerd:run-{world.uid}"], capsys)
    line = one_error(err)
    assert rc == 2 and "names 3 containers: " in line
    assert all(f"{ns}/{cid}" in line for ns, cid in world.running.items())
    # NS/ID with a namespace no containerd has: the whole spec is taken as an id, and is not found
    rc, out, err = run_cli(["tree", f"containerd:nosuchns/{world.running['default']}"], capsys)
    assert rc == 2 and "no such containerd container (namespaces: " in one_error(err)
    # an existing namespace, another namespace's container
    rc, out, err = run_cli(["tree", f"containerd:moby/{world.running['default']}"], capsys)
    assert rc == 2 and "no such containerd container" in one_error(err)


@contextlib.contextmanager
def moved_away(path: str) -> Iterator[None]:
    os.rename(path, path + ".away")
    try:
        yield
    finally:
        os.rename(path + ".away", path)


def test_snapshot_dir_gone(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """The upper dir of a stopped container removed behind containerd's back (as its GC would)."""
    cid = world.stopped["default"]
    upper = ctr_mount(world, "default", cid)[1]
    assert upper is not None
    with moved_away(upper):
        rc, out, err = run_cli(["tree", f"containerd:default/{cid}"], capsys)
        line = one_error(err)
        assert (rc, out) == (2, "")
        assert "is gone (garbage-collected or removed" in line and cid in line
    assert open_source(f"containerd:default/{cid}").upper is not None


def test_ps_snapshot_dir_gone(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """ps still lists a container whose upper dir is gone; its size cannot be told (not 0 bytes)."""
    cid = world.stopped["default"]
    upper = ctr_mount(world, "default", cid)[1]
    assert upper is not None
    with moved_away(upper):
        rc, entries, err = ps_json(["--containerd-root", world.root], capsys)
    assert rc in (0, 1), err
    (e,) = [e for e in entries if e["id"] == cid]
    assert e["upper"] == upper and e["upper_size"] is None


def test_error_in_a_subprocess(world: World) -> None:
    r = subprocess.run(
        [UFS_TUI, "tree", f"containerd:run-{world.uid}"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2 and r.stdout == ""
    assert one_error(r.stderr) and "names 3 containers" in r.stderr


# ---------------------------------------------------------------------- several roots, one unreadable
@contextlib.contextmanager
def host_with_two_containerds(w: World) -> Iterator[str]:
    """A host seen through --host-root DIR (as from ``kubectl debug node``): a running containerd whose root's
    meta.db cannot be read (one starting up, a damaged disk), listed first in its /proc, and this engine's
    root as the host's default /var/lib/containerd (bind-mounted read-only). The host's /proc is a tree of
    files (PID 1 in another mount namespace; cmdlines; PID 1's mountinfo = this engine's task mounts)."""
    host = tempfile.mkdtemp(prefix="host-", dir=w.inst.base)
    os.makedirs(f"{host}/proc/1/ns")
    os.symlink("mnt:[4026530000]", f"{host}/proc/1/ns/mnt")
    with open(f"{host}/proc/1/cmdline", "wb") as f:
        f.write(b"/sbin/init\0")
    with open("/proc/self/mountinfo") as src, open(f"{host}/proc/1/mountinfo", "w") as dst:
        dst.writelines(line for line in src if w.inst.containerd_state in line)
    os.makedirs(f"{host}/proc/100")
    with open(f"{host}/proc/100/cmdline", "wb") as f:
        f.write(b"/usr/bin/containerd\0--root\0/broken\0")
    os.makedirs(f"{host}/broken/io.containerd.metadata.v1.bolt")
    with open(f"{host}/broken/io.containerd.metadata.v1.bolt/meta.db", "wb") as f:
        f.write(bytes(8192))  # created, not yet written: no bbolt meta page
    target = f"{host}/var/lib/containerd"
    os.makedirs(target)
    subprocess.run(["mount", "--bind", w.root, target], check=True, capture_output=True)
    try:
        subprocess.run(["mount", "-o", "remount,bind,ro", target], check=True, capture_output=True)
        yield host
    finally:
        subprocess.run(["umount", target], check=True, capture_output=True)


def test_an_unreadable_root_hides_no_other(world: World, capsys: pytest.CaptureFixture[str]) -> None:
    """One containerd root that cannot be read is a warning in ps (and left out of a search); the containers
    of the other roots are still listed and opened."""
    with host_with_two_containerds(world) as host:
        here = f"{host}/var/lib/containerd"
        rc, entries, err = ps_json(["--host-root", host], capsys)
        assert rc == 1 and "/broken/" in err and "not a bbolt database" in err, err
        listed = {e["id"]: e for e in entries if e["kind"] == "container"}
        assert set(listed) == set(world.containers()) - {world.pod["sandbox"]}, err
        assert listed[world.running["moby"]]["state"] == "running"
        assert listed[world.stopped["moby"]]["upper"].startswith(here + "/")
        for spec, cid in (
            (f"containerd:{world.running['default']}", world.running["default"]),
            (f"nerdctl:{world.web}", world.nerd),
            (f"k8s:{world.web}/app", world.pod["app0"]),
        ):
            stack = open_source(spec, host_root=host)
            upper = ctr_mount(world, world.containers()[cid], cid)[1] or ""
            assert stack.upper is not None and stack.upper.path == here + upper.removeprefix(world.root), spec


# ---------------------------------------------------------------------- 7. live
def test_ps_while_containerd_writes(world: World) -> None:
    """ps reads meta.db and the snapshotter's db while containerd commits to them (snapshots prepared and
    removed, containers created and deleted, as fast as ctr goes): each run lists, or warns, or fails in one
    line; never a traceback."""
    ctr = world.ctr("default")
    parent = world.chain_ids()[-1]
    stop = threading.Event()
    cycles = [0]
    problems: list[str] = []

    def churn() -> None:
        while not stop.is_set():
            i = cycles[0]
            key, cid = f"churn-{world.uid}-{i}", f"churn-{world.uid}-c{i}"
            for args in (
                ("snapshots", "prepare", key, parent),
                ("containers", "create", world.ref, cid, "true"),
                ("snapshots", "rm", key),
                ("containers", "delete", cid),
            ):
                r = subprocess.run([*ctr.argv, *args], capture_output=True, env=ctr.env, timeout=60)
                if r.returncode != 0:
                    problems.append(r.stderr.decode(errors="replace"))
            cycles[0] += 1

    thread = threading.Thread(target=churn, daemon=True)
    thread.start()
    outcomes = []
    try:
        wait_for(lambda: cycles[0] >= 1 or bool(problems), 30, "the first churn cycle")
        before = cycles[0]
        for _ in range(20):
            r = subprocess.run([UFS_TUI, "ps", "--format", "json"], capture_output=True, text=True, timeout=60)
            rc, out, err = r.returncode, r.stdout, r.stderr
            outcomes.append(rc)
            assert "Traceback" not in err, err
            if rc == 2:
                one_error(err)
                continue
            assert rc in (0, 1), err
            assert all(line.startswith("ufs-tui: warning: ") for line in err.splitlines()), err
            ids = {json.loads(x)["id"] for x in out.splitlines()}
            if not set(world.containers()) - {world.pod["sandbox"]} <= ids:
                assert rc == 1 and "containerd" in err, f"containers missing without a warning: {err}"
        during = cycles[0] - before
    finally:
        stop.set()
        thread.join(timeout=60)
    assert problems == [], problems[:3]
    assert during >= 2, "the churn did not run alongside"
    assert outcomes.count(0) + outcomes.count(1) >= 1, outcomes
    left = {s for s in snapshot_parents(world, "default") if s.startswith("churn-")}
    assert left == set() and "churn-" not in ctr.run("containers", "ls", "-q")
