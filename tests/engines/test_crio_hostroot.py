"""CRI-O pods (``k8s:`` on containers-storage) and ``--host-root``, against real engines, the kernel and fuzzing.

* CRI-O, emulated with podman 4.3 (no CRI-O binary here): containers named as CRI-O names them
  (``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>``, the infra container ``k8s_POD_...``) with CRI-O's
  annotations, which podman writes to ``overlay-containers/<ID>/userdata/config.json`` once a container has
  started. ``k8s:`` must choose the container kubelet means (a running attempt over a newer stopped one, the
  newest of stopped ones, never a sandbox, the storage name when there is no config.json yet), and its stack
  must be exactly podman's (``podman inspect`` GraphDriver.Data, the kernel's mount) with ``model_tree ==
  kernel_tree``; ``ps`` lists them as engine ``cri-o``. CRI-O >= 1.22 keeps its records in
  ``volatile-containers.json``, which podman 4.3 does not write: a copy of the storage metadata stands in.
* ``--host-root X``: in a private mount namespace (``unshare -m --propagation private``), ``/`` is bound at X,
  then the engines' own dirs and mounts are made unreachable at their real paths there (unmounted, a read-only
  tmpfs over the engine temp dir), as in ``kubectl debug node/NAME`` where only X leads to the host. The CLI
  with ``--host-root X`` must print what it printed on the real paths before (layer paths under X), for
  ``docker:`` (with ``--docker-root``, without any root flag, and through an absolute symlink inside X),
  ``podman:``, ``k8s:`` (CRI-O), a mount point, ``diff`` and ``ps``. Nothing may leak into our namespace.
  :meth:`Host.path` is checked against the kernel itself (``openat2`` with ``RESOLVE_IN_ROOT``), and
  :meth:`Host.proc` in PID and mount namespaces of our own.
* Hypothesis fuzzing of the parsers of outside data: the Docker socket client, config files in a host root,
  CRI-O names and labels, containers-storage metadata, Go varints and times, Docker's container records:
  each returns or raises StackError with a one-line message, never anything else, never a hang. Shapes known
  to break them (deep nesting, huge numbers, negative chunk sizes, FIFOs and endless files) have their own
  tests.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import io
import json
import os
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.conftest import need, time_limit
from tests.ctrdroot import uvarint_bytes
from tests.engines.conftest import CHANGES, PODMAN_RUN, Engine, mounts_under, processes_mentioning, wait_for
from tests.overlay import kernel_tree, model_tree
from ufs_tui import cli
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.sources import daemon, docker, engines, k8s, open_source, podman
from ufs_tui.core.sources.ctrd import go_time, uvarint, varint
from ufs_tui.core.sources.host import Host

UFS_TUI = os.path.join(os.path.dirname(sys.executable), "ufs-tui")
CRIO_TYPE = "io.kubernetes.cri-o.ContainerType"


def run_cli(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = cli.main(list(argv), stdout=out)
    return rc, out.getvalue()


def one_line(e: StackError) -> None:
    assert "\n" not in str(e) and str(e).strip(), repr(str(e))


def overlay_options() -> dict[str, dict[str, str]]:
    """Mount target -> the overlay's layer options, from our own mount table (our temp paths need no unescaping)."""
    out = {}
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            head, _, tail = line.rstrip("\n").partition(" - ")
            rest = tail.split(" ")
            if rest[0] != "overlay":
                continue
            opts = dict(o.partition("=")[::2] for o in rest[2].split(","))
            out[head.split(" ")[4]] = opts
    return out


def mounted_uppers() -> set[str]:
    return {o["upperdir"] for o in overlay_options().values() if "upperdir" in o}


# ====================================================================== CRI-O, emulated with podman
@dataclass(frozen=True)
class Pod:
    """One container as CRI-O records it: its storage name, kubelet's names, CRI-O's type, and what to make."""

    name: str
    namespace: str
    pod: str
    container: str  # POD for a sandbox
    kind: str  # container | sandbox
    how: str  # running | stopped | created

    def args(self) -> list[str]:
        notes = {
            "io.kubernetes.pod.name": self.pod,
            "io.kubernetes.pod.namespace": self.namespace,
            "io.kubernetes.container.name": self.container,
            CRIO_TYPE: self.kind,
        }
        return ["--name", self.name, *(a for k, v in notes.items() for a in ("--annotation", f"{k}={v}"))]


# In creation order. A tick of the clock (created-at is in whole seconds) separates the groups, so that the
# stopped attempt 0 of web/app is NEWER than the running attempt 1: only "running wins" picks attempt 1.
PODS = (
    [
        Pod("k8s_POD_web_default_uid1_0", "default", "web", "POD", "sandbox", "running"),
        Pod("k8s_app_web_default_uid1_1", "default", "web", "app", "container", "running"),
        Pod("k8s_pg_db_prod_uid2_0", "prod", "db", "pg", "container", "stopped"),
    ],
    [
        Pod("k8s_app_web_default_uid1_0", "default", "web", "app", "container", "stopped"),
        Pod("k8s_pg_db_prod_uid2_1", "prod", "db", "pg", "container", "stopped"),
        Pod("k8s_task_job_batch_uid3_0", "batch", "job", "task", "container", "created"),
        Pod("k8s_POD_job_batch_uid3_0", "batch", "job", "POD", "sandbox", "created"),
    ],
)
ALL_PODS = [p for group in PODS for p in group]
APP = "k8s_app_web_default_uid1_1"  # the running attempt, with CHANGES made in it
PLAIN = "ufs-crio-plain"  # a podman container that is no pod's


@dataclass(frozen=True)
class Made:
    """What podman says about a container it made."""

    id: str
    status: str  # podman's State.Status: running | exited | created
    upper: str
    work: str
    lowers: list[str]
    merged: str | None
    created_at: int  # containers.json metadata created-at (what CRI-O and ufs-tui go by)


def podman_facts(engine: Engine, name: str) -> Made:
    d = json.loads(engine.run("inspect", "--format", "json", name))[0]
    data = d["GraphDriver"]["Data"]
    with open(f"{engine.root}/overlay-containers/containers.json") as f:
        rec = next(c for c in json.load(f) if c["id"] == d["Id"])
    return Made(
        d["Id"],
        d["State"]["Status"],
        data["UpperDir"],
        data["WorkDir"],
        data["LowerDir"].split(":"),
        data.get("MergedDir"),
        json.loads(rec["metadata"])["created-at"],
    )


@pytest.fixture(scope="module")
def pods(podman: Engine) -> Iterator[dict[str, Made]]:
    made: list[str] = []
    try:
        for i, group in enumerate(PODS):
            if i:
                tick = int(time.time())
                wait_for(lambda t=tick: int(time.time()) > t, 3, "the clock to pass a second")
            for p in group:
                verb = ["create"] if p.how == "created" else ["run", "-d"]
                podman.run(*verb, *p.args(), *PODMAN_RUN, "localhost/multi:1", "sleep", "100000")
                made.append(p.name)
                if p.how == "stopped":
                    podman.run("stop", "-t", "0", p.name)
        podman.run("create", "--name", PLAIN, *PODMAN_RUN, "localhost/multi:1", "true")
        made.append(PLAIN)
        podman.run("exec", APP, "sh", "-c", CHANGES)
        facts = {name: podman_facts(podman, name) for name in made}
        idle = [facts[p.name].upper for p in ALL_PODS if p.how != "running"]
        wait_for(lambda: not set(idle) & mounted_uppers(), 30, "stopped containers' layers to be unmounted")
        yield facts
    finally:
        if made:
            podman.run("rm", "-f", "-t", "0", *made, check=False)
        wait_for(lambda: not any(processes_mentioning(n) for n in made), 60, "conmon of the pod containers to exit")


def test_emulation_writes_what_crio_writes(podman: Engine, pods: dict[str, Made]) -> None:
    """The emulation holds CRI-O's facts: annotations in userdata/config.json once started, none before."""
    for p in ALL_PODS:
        made = pods[p.name]
        assert made.status == {"running": "running", "stopped": "exited", "created": "created"}[p.how], p
        spec = f"{podman.root}/overlay-containers/{made.id}/userdata/config.json"
        if p.how == "created":
            assert not os.path.exists(spec)
            continue
        with open(spec) as f:
            notes = json.load(f)["annotations"]
        assert notes[CRIO_TYPE] == p.kind and notes["io.kubernetes.pod.name"] == p.pod
    assert pods["k8s_app_web_default_uid1_0"].created_at > pods[APP].created_at  # the stopped attempt is newer
    assert pods["k8s_pg_db_prod_uid2_1"].created_at > pods["k8s_pg_db_prod_uid2_0"].created_at


CHOICES = [
    ("default/web/app", APP),  # running attempt 1 over the newer stopped attempt 0
    ("web", APP),  # one part: POD in default (the sandbox is no container of it)
    ("default/web", APP),  # NAMESPACE/POD
    ("web/app", APP),  # POD/CONTAINER in default
    ("prod/db/pg", "k8s_pg_db_prod_uid2_1"),  # none running: the newest attempt
    ("prod/db", "k8s_pg_db_prod_uid2_1"),
    ("batch/job/task", "k8s_task_job_batch_uid3_0"),  # never started: no config.json, the storage name tells
    ("batch/job", "k8s_task_job_batch_uid3_0"),  # its created-only sandbox is not a second container
]


@pytest.mark.parametrize(("spec", "name"), CHOICES, ids=[c[0] for c in CHOICES])
def test_k8s_chooses_the_container_kubelet_means(podman: Engine, pods: dict[str, Made], spec: str, name: str) -> None:
    stack = open_source(f"k8s:{spec}", podman_root=podman.root)
    made = pods[name]
    assert stack.upper is not None and stack.upper.path == made.upper
    assert f"container:{made.id}" in stack.upper.label


def test_k8s_sandbox_is_never_chosen_and_errors_say_what_exists(podman: Engine, pods: dict[str, Made]) -> None:
    for spec in ("default/web/POD", "batch/job/POD"):
        with pytest.raises(StackError, match=r"has no container POD \(it has (app|task)\)") as err:
            open_source(f"k8s:{spec}", podman_root=podman.root)
        one_line(err.value)
    with pytest.raises(StackError, match=r"no such pod \(pods: .*default/web") as err:
        open_source("k8s:nowhere/none", podman_root=podman.root)
    one_line(err.value)


@pytest.mark.parametrize("name", [APP, "k8s_pg_db_prod_uid2_1", "k8s_task_job_batch_uid3_0"])
def test_k8s_stack_is_podmans_container(podman: Engine, pods: dict[str, Made], name: str) -> None:
    """Layers exactly as podman records them (and as the kernel mounts them); the merged tree as the kernel's."""
    made = pods[name]
    spec = next(f"k8s:{p.namespace}/{p.pod}/{p.container}" for p in ALL_PODS if p.name == name)
    stack = open_source(spec, podman_root=podman.root)
    assert stack.upper is not None
    assert (stack.upper.path, stack.work) == (made.upper, made.work)
    assert [layer.path for layer in stack.lowers] == made.lowers
    assert len(stack.lowers) == 3 and "echo three > /layer3" in stack.lowers[0].label
    if made.status == "running":
        assert made.merged is not None
        opts = overlay_options()[made.merged]
        assert opts["upperdir"] == stack.upper.path and opts["workdir"] == stack.work
        kernel_lowers = [os.path.realpath(p) for p in opts["lowerdir"].split(":")]  # podman mounts l/ links
        assert kernel_lowers == [os.path.realpath(layer.path) for layer in stack.lowers]
        assert model_tree(stack) == kernel_tree(made.merged)
        return
    merged = podman.run("mount", name).strip()  # as the container would see it
    try:
        assert model_tree(stack) == kernel_tree(merged)
    finally:
        podman.run("umount", name)
    wait_for(lambda: made.upper not in mounted_uppers(), 30, f"{name} to be unmounted")


def ps_rows(*argv: str) -> list[dict[str, Any]]:
    rc, out = run_cli("ps", "--format", "json", *argv)
    assert rc in (0, 1), out  # 1: an engine that is not here or cannot be read was noted
    return [json.loads(line) for line in out.splitlines()]


def test_ps_lists_crio_pods(podman: Engine, pods: dict[str, Made]) -> None:
    rows = {r["id"]: r for r in ps_rows("--podman-root", podman.root) if r["kind"] == "container"}
    for p in ALL_PODS:
        made = pods[p.name]
        row = rows.get(made.id)
        if p.kind == "sandbox":  # test_ps_sandbox_is_crios
            continue
        assert row is not None, p
        spec = f"k8s:{p.namespace}/{p.pod}/{p.container}"
        current = open_source(spec, podman_root=podman.root).upper  # test_k8s_chooses_the_container_kubelet_means
        want = {
            "engine": "cri-o",
            "namespace": p.namespace,
            "name": f"{p.pod}/{p.container}",
            "state": "running" if made.status == "running" else "stopped",
            "upper": made.upper,
            # the attempt kubelet means opens by its pod's name; an earlier one by its id
            "source": spec if current is not None and current.path == made.upper else f"podman:{made.id}",
        }
        assert {k: row[k] for k in want} == want
    plain = rows[pods[PLAIN].id]
    assert (plain["engine"], plain["source"], plain["state"]) == ("podman", f"podman:{PLAIN}", "stopped")
    for row in rows.values():  # every listed source opens
        if row["id"] in {m.id for m in pods.values()}:
            assert open_source(row["source"], podman_root=podman.root).upper is not None


def test_ps_sandbox_is_crios(podman: Engine, pods: dict[str, Made]) -> None:
    """A pod's infra container is CRI-O's, not a podman container: not listed (as ps leaves out containerd's
    sandboxes), or listed as cri-o."""
    rows = {r["id"]: r for r in ps_rows("--podman-root", podman.root) if r["kind"] == "container"}
    for p in ALL_PODS:
        row = rows.get(pods[p.name].id)
        if p.kind == "sandbox":
            assert row is None or row["engine"] == "cri-o", f"{p.name} listed as {row['engine']} {row['source']}"


def test_ps_row_source_opens_that_rows_container(podman: Engine, pods: dict[str, Made]) -> None:
    """'Each row ends with the SOURCE that opens it': opening a row's SOURCE gives that row's writable layer
    (an earlier attempt of a pod container included)."""
    ours = {m.id for m in pods.values()}
    wrong = []
    for row in ps_rows("--podman-root", podman.root):
        if row["id"] in ours:
            opened = open_source(row["source"], podman_root=podman.root)
            if opened.upper is None or opened.upper.path != row["upper"]:
                wrong.append(f"{row['engine']} {row['name']} {row['id'][:12]} -> {row['source']}")
    assert not wrong, "sources that open another container: " + "; ".join(wrong)


def copy_storage_volatile(root: str, dest: str) -> None:
    """The storage metadata of ``root`` with every container record in volatile-containers.json (CRI-O >= 1.22);
    the layer dirs are the real ones (``overlay`` is a symlink to them)."""
    os.makedirs(f"{dest}/overlay-containers")
    shutil.copytree(f"{root}/overlay-layers", f"{dest}/overlay-layers", ignore=shutil.ignore_patterns("*.lock"))
    shutil.copytree(f"{root}/overlay-images", f"{dest}/overlay-images", ignore=shutil.ignore_patterns("*.lock"))
    os.symlink(f"{root}/overlay", f"{dest}/overlay")
    with open(f"{root}/overlay-containers/containers.json") as f:
        records = json.load(f)
    with open(f"{dest}/overlay-containers/volatile-containers.json", "w") as f:
        json.dump(records, f)
    for rec in records:
        spec = f"{root}/overlay-containers/{rec['id']}/userdata/config.json"
        os.makedirs(f"{dest}/overlay-containers/{rec['id']}/userdata")
        if os.path.exists(spec):
            shutil.copy(spec, f"{dest}/overlay-containers/{rec['id']}/userdata/config.json")


def test_crio_records_in_volatile_containers_json(podman: Engine, pods: dict[str, Made], tmp_path: Any) -> None:
    copy = f"{tmp_path}/storage"
    copy_storage_volatile(podman.root, copy)
    assert not os.path.exists(f"{copy}/overlay-containers/containers.json")
    for spec, name in (("prod/db/pg", "k8s_pg_db_prod_uid2_1"), ("batch/job/task", "k8s_task_job_batch_uid3_0")):
        stack = open_source(f"k8s:{spec}", podman_root=copy)
        assert stack.upper is not None and os.path.realpath(stack.upper.path) == pods[name].upper
    rows = {r["id"]: r for r in ps_rows("--podman-root", copy, "--no-size")}
    assert rows[pods["k8s_pg_db_prod_uid2_1"].id]["source"] == "k8s:prod/db/pg"
    assert rows[pods[APP].id]["engine"] == "cri-o"


# ====================================================================== Host.path, Host.proc
def test_host_path_on_a_temp_tree(tmp_path: Any) -> None:
    root = os.path.realpath(tmp_path)
    os.makedirs(f"{root}/data/docker/overlay2")
    os.makedirs(f"{root}/var/lib")
    os.symlink("/data/docker", f"{root}/var/lib/docker")  # absolute: into the host root again
    os.symlink("../../data", f"{root}/var/lib/rel")  # relative
    os.symlink("/", f"{root}/var/lib/top")
    os.symlink("../../../../../../data", f"{root}/var/up")  # climbs past the root: stays at it
    os.symlink("loop2", f"{root}/var/loop1")
    os.symlink("/var/loop1", f"{root}/var/loop2")
    os.symlink("self", f"{root}/self")
    os.symlink("/missing/dir", f"{root}/dangling")
    host = Host(root)
    assert not host.local and Host().local and Host("/").path("/var/lib/docker") == "/var/lib/docker"
    assert host.path("/var/lib/docker/overlay2") == f"{root}/data/docker/overlay2"
    assert host.path("/var/lib/rel/docker") == f"{root}/data/docker"
    assert host.path("/var/lib/top/var/lib/docker") == f"{root}/data/docker"
    assert host.path("/var/up/docker") == f"{root}/data/docker"
    assert host.path("/../../../data/./docker//overlay2/") == f"{root}/data/docker/overlay2"
    assert host.path("/var/lib/docker/../docker") == f"{root}/data/docker"  # '..' of the link's target
    assert host.path("/nope/deeper/x") == f"{root}/nope/deeper/x"  # missing: joined as it is
    assert host.path("/dangling/x") == f"{root}/missing/dir/x"
    assert Host(root + "/").path("/var/lib/docker") == f"{root}/data/docker"
    for loop in ("/var/loop1", "/var/loop2/x", "/self"):
        with pytest.raises(StackError, match="too many levels of symbolic links") as err:
            host.path(loop)
        one_line(err.value)


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_LIBC = ctypes.CDLL(None, use_errno=True)
_SYS_OPENAT2 = 437  # x86_64 and aarch64 alike
_RESOLVE_IN_ROOT = 0x10


def kernel_in_root(root_fd: int, path: str) -> str:
    """Where the kernel itself resolves ``path`` with ``root_fd`` as ``/`` (openat2 RESOLVE_IN_ROOT, as
    a chroot would): the real path, or OSError (ENOENT, ENOTDIR, ELOOP)."""
    how = _OpenHow(os.O_PATH | os.O_CLOEXEC, 0, _RESOLVE_IN_ROOT)
    fd = _LIBC.syscall(_SYS_OPENAT2, root_fd, os.fsencode(path), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    finally:
        os.close(fd)


NAMES = st.sampled_from(["a", "b", "c"])
REL = st.lists(st.one_of(NAMES, st.just(".."), st.just(".")), min_size=0, max_size=5).map("/".join)
LINK_TARGETS = st.one_of(REL.filter(bool), REL.map(lambda p: "/" + p))
TREE = st.lists(
    st.tuples(st.lists(NAMES, min_size=1, max_size=3), st.one_of(st.just("dir"), st.just("file"), LINK_TARGETS)),
    max_size=12,
)


def build_tree(root: str, entries: list[tuple[list[str], str]]) -> None:
    """Make dirs, files and symlinks under ``root`` without ever following a symlink (an absolute one would
    lead out of ``root``): an entry whose parent is not a real dir is left out."""
    for parts, what in entries:
        parent = root
        for name in parts[:-1]:
            parent = f"{parent}/{name}"
            try:
                os.mkdir(parent)
            except FileExistsError:
                pass
            if not os.path.isdir(parent) or os.path.islink(parent):
                break
        else:
            path = f"{parent}/{parts[-1]}"
            if os.path.lexists(path):
                continue
            if what == "dir":
                os.mkdir(path)
            elif what == "file":
                os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW))
            else:
                os.symlink(what, path)


@settings(max_examples=300, deadline=None)
@given(TREE, st.lists(st.tuples(st.booleans(), REL), min_size=1, max_size=4))
def test_host_path_resolves_as_the_kernel_does(entries: list[tuple[list[str], str]], queries: Any) -> None:
    """Where the kernel finds a path in a chroot, Host.path finds the same; a loop is a StackError; whatever is
    given, the answer stays inside the root."""
    with tempfile.TemporaryDirectory(prefix="ufs-hostpath-") as tmp:
        root = os.path.realpath(tmp)
        build_tree(root, entries)
        root_fd = os.open(root, os.O_PATH | os.O_DIRECTORY)
        try:
            for absolute, rel in queries:
                query = ("/" if absolute else "") + rel
                try:
                    want: str | int = kernel_in_root(root_fd, query)
                    event("kernel: found")
                except OSError as e:
                    want = e.errno
                    event(f"kernel: {errno.errorcode.get(e.errno, e.errno)}")
                try:
                    got = Host(root).path(query)
                except StackError as e:
                    one_line(e)
                    assert want != 0 and isinstance(want, int), f"{query}: kernel found {want}, Host.path: {e}"
                    continue
                assert got == root + "/" or got.startswith(root + "/"), (query, got)
                assert ".." not in got[len(root) :].split("/"), (query, got)
                if isinstance(want, str):
                    assert got.rstrip("/") == want.rstrip("/") or (got == root + "/" and want == root), (query, got)
                elif want == errno.ELOOP:
                    raise AssertionError(f"{query}: the kernel says ELOOP, Host.path gave {got}")
        finally:
            os.close(root_fd)


PROC_PROBE = textwrap.dedent(
    """
    import json, os, subprocess, sys, tempfile
    from ufs_tui.core.sources.host import Host, engine_processes

    d = tempfile.mkdtemp(prefix="ufs-proc-")
    me = os.path.basename(sys.executable)
    probe = ("import json, os, sys; from ufs_tui.core.sources.host import Host, engine_processes; "
             "h = Host(sys.argv[1]); "
             "print(json.dumps([h.proc(), h.mountinfo(), [a[1:2] for a in engine_processes(h, (sys.argv[2],))]]))")
    out = {"pid1": os.getpid()}
    h = Host(d)
    out["absent"] = [h.proc(), h.mountinfo(), engine_processes(h, (me,))]
    os.mkdir(d + "/proc")
    subprocess.run(["mount", "-t", "proc", "proc", d + "/proc"], check=True)
    out["own_proc"] = [h.proc(), h.mountinfo()]
    inner = ["unshare", "-m", "--propagation", "private"]
    r = subprocess.run([*inner, sys.executable, "-c", probe, d, me], capture_output=True, text=True, check=True)
    out["other_ns"] = json.loads(r.stdout)
    script = 'umount "$1" && exec "$2" -c "$3" "$4" "$5"'
    r = subprocess.run([*inner, "sh", "-c", script, "-", d + "/proc", sys.executable, probe, d, me],
                       capture_output=True, text=True, check=True)
    out["other_ns_no_dir_proc"] = json.loads(r.stdout)
    subprocess.run(["umount", d + "/proc"], check=True)
    os.rmdir(d + "/proc")
    os.rmdir(d)
    out["dir"] = d
    print(json.dumps(out))
    """
)


def test_host_proc_and_mountinfo_in_namespaces_of_our_own() -> None:
    """In a PID namespace of our own (PID 1 is the probe, so its mount namespace can be compared):
    no DIR/proc and PID 1 ours -> None; DIR/proc whose PID 1 is ours -> None; from another mount namespace
    -> DIR/proc, else /proc (the host's init is not ours)."""
    need(os.geteuid() == 0 and shutil.which("unshare") is not None, "needs root and unshare")
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--propagation", "private", sys.executable, "-c", PROC_PROBE]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=60, cwd="/")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    d = out["dir"]
    assert out["pid1"] == 1
    assert out["absent"] == [None, None, []]
    assert out["own_proc"] == [None, None]
    # the processes seen are this namespace's: PID 1 (python -c PROC_PROBE) and the probe (python -c probe)
    assert out["other_ns"] == [f"{d}/proc", f"{d}/proc/1/mountinfo", [["-c"], ["-c"]]]
    assert out["other_ns_no_dir_proc"] == ["/proc", "/proc/1/mountinfo", [["-c"], ["-c"]]]
    assert not os.path.exists(d)


def test_mount_point_without_the_hosts_mount_table_says_why(tmp_path: Any) -> None:
    """--host-root DIR where no /proc shows the host's init (PID 1 is ours, DIR has no proc): a mount point
    cannot be looked up, and the error says why rather than "not an overlay mount point"."""
    need(os.geteuid() == 0 and shutil.which("unshare") is not None, "needs root and unshare")
    host = f"{tmp_path}/host"
    os.makedirs(f"{host}/srv/merged")
    argv = ["unshare", "--pid", "--fork", "--mount-proc", "--propagation", "private"]
    r = subprocess.run(
        [*argv, UFS_TUI, "tree", f"{host}/srv/merged", "--host-root", host], capture_output=True, text=True, timeout=60
    )
    assert (r.returncode, r.stdout) == (2, ""), r.stderr
    assert r.stderr.count("\n") == 1 and "the host's mount table cannot be seen from here" in r.stderr, r.stderr


# ====================================================================== --host-root for real
NS_JOB = textwrap.dedent(
    """
    import json, os, subprocess, sys

    job = json.loads(sys.argv[1])
    x, env = job["x"], job["env"]

    def run(argv):
        r = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, cwd="/")
        return {"rc": r.returncode, "out": r.stdout, "err": r.stderr}

    def targets():
        with open("/proc/self/mountinfo") as f:
            return [line.split(" ")[4] for line in f]

    out = {"before": {}, "after": {}}
    # Other dockerds (other test sessions on this machine) are out of sight here: which one a search finds
    # first is not what is tested.
    for pid in job["hide_pids"]:
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=4k", "ufs-hidden", f"/proc/{pid}"])
    subprocess.run(["mount", "--rbind", "/", x], check=True)
    for key, argv in job["before"].items():
        out["before"][key] = run(argv)
    # The host's engines are reachable only through x from here on: their mounts are not in our table, and
    # their dirs at the real paths are an empty read-only tmpfs.
    hidden = job["hide"]
    for t in reversed(targets()):
        if t.startswith(hidden + "/"):
            subprocess.run(["umount", "-l", t], check=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "ufs-hidden", hidden], check=True)
    out["hidden_left"] = [t for t in targets() if t.startswith(hidden + "/")]
    try:
        for link, target in job["links"].items():
            os.symlink(target, x + link)  # the same file system as the real /tmp: removed below
        for key, argv in job["after"].items():
            out["after"][key] = run(argv)
    finally:
        for link in job["links"]:
            os.unlink(x + link)
    # The host's config files: a tmpfs over x/etc, here only (the real /etc is the same file system as x/etc)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64k", "ufs-hidden", x + "/etc"], check=True)
    for path, text in job["conf"].items():
        os.makedirs(os.path.dirname(x + path), exist_ok=True)
        with open(x + path, "w") as f:
            f.write(text)
    for key, argv in job["after_conf"].items():
        out["after"][key] = run(argv)
    print(json.dumps(out))
    """
)

HOST_PROBE = (
    "import json, sys; from ufs_tui.core.sources.host import Host; h = Host(sys.argv[1]); "
    "print(json.dumps([h.proc(), h.mountinfo()]))"
)
DOCKER_CTR = "ufs-hostroot"


@dataclass
class HostRun:
    x: str
    before: dict[str, dict[str, Any]]
    after: dict[str, dict[str, Any]]
    docker_merged: str
    leaked: list[str]


def dockerd_pids() -> list[int]:
    out = []
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip() == "dockerd":
                    out.append(int(pid))
        except (OSError, ValueError):
            continue
    return out


@pytest.fixture(scope="module")
def host_run(docker: Engine, podman: Engine, pods: dict[str, Made], engine_tmp: str) -> Iterator[HostRun]:
    need(shutil.which("unshare") is not None, "needs unshare (util-linux)")
    need(os.access(UFS_TUI, os.X_OK), f"needs the ufs-tui script at {UFS_TUI}")
    docker.run("run", "-d", "--name", DOCKER_CTR, "--network", "none", "multi:1", "sleep", "100000")
    base = tempfile.mkdtemp(prefix="ufs-hostroot-")
    link = f"/tmp/ufs-hostroot-link-{os.getpid()}"
    try:
        docker.run("exec", DOCKER_CTR, "sh", "-c", CHANGES)
        cid = docker.run("inspect", "-f", "{{.Id}}", DOCKER_CTR).strip()
        with open(f"{docker.root}/image/overlay2/layerdb/mounts/{cid}/mount-id") as f:
            merged = f"{docker.root}/overlay2/{f.read().strip()}/merged"
        x = f"{base}/host"
        os.mkdir(x)
        dr, pr = ("--docker-root", docker.root), ("--podman-root", podman.root)
        commands: dict[str, list[str]] = {
            "docker-tree": ["tree", f"docker:{DOCKER_CTR}", *dr],
            "docker-diff": ["diff", f"docker:{DOCKER_CTR}", *dr],
            "docker-found": ["tree", f"docker:{DOCKER_CTR}"],  # no root flag, no DOCKER_HOST
            "podman-tree": ["tree", f"podman:{APP}", *pr],
            "podman-diff": ["diff", f"podman:{APP}", *pr, "--format", "podman"],
            "k8s-tree": ["tree", "k8s:default/web/app", *pr],
            "mount-tree": ["tree", merged],
            "ps": ["ps", *dr, *pr, "--format", "json"],
        }
        before = {k: [UFS_TUI, *v] for k, v in commands.items()}
        after = {k: [UFS_TUI, *v, "--host-root", x] for k, v in commands.items()}
        after["mount-tree"] = [UFS_TUI, "tree", x + merged, "--host-root", x]
        after["docker-link"] = [UFS_TUI, "tree", f"docker:{DOCKER_CTR}", "--docker-root", link, "--host-root", x]
        after["probe"] = [sys.executable, "-c", HOST_PROBE, x]
        env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
        with open(f"{os.path.dirname(docker.root)}/d.pid") as f:
            ours = int(f.read())
        others = [pid for pid in dockerd_pids() if pid != ours]
        job = {"x": x, "env": env, "before": before, "after": after, "hide": engine_tmp, "links": {link: docker.root}}
        job["hide_pids"] = others
        job["conf"] = {"/etc/containers/storage.conf": f'[storage]\ndriver = "overlay"\ngraphroot = "{podman.root}"\n'}
        job["after_conf"] = {"podman-conf": [UFS_TUI, "tree", f"podman:{APP}", "--host-root", x]}
        argv = ["unshare", "-m", "--propagation", "private", sys.executable, "-c", NS_JOB, json.dumps(job)]
        r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["hidden_left"] == []
        leaked = mounts_under(base) + mounts_under(x) + [t for t in mounts_under(engine_tmp) if t == engine_tmp]
        leaked += [link] if os.path.lexists(link) else []
        with open("/proc/self/mountinfo") as f:
            leaked += [line for line in f if "ufs-hidden" in line]
        yield HostRun(x, out["before"], out["after"], merged, leaked)
    finally:
        docker.run("rm", "-f", DOCKER_CTR, check=False)
        if os.path.islink(link):
            os.unlink(link)
        # never a recursive delete: were / still bound at X, it would delete everything
        for d in (f"{base}/host", base):
            with contextlib.suppress(OSError):
                os.rmdir(d)


def test_host_root_leaves_nothing_behind(host_run: HostRun) -> None:
    assert host_run.leaked == []


def test_host_root_finds_the_hosts_proc(host_run: HostRun) -> None:
    """PID 1 of X/proc is the host's init, in another mount namespace than ours: its mount table is the host's."""
    r = host_run.after["probe"]
    assert r["rc"] == 0, r["err"]
    x = host_run.x
    assert json.loads(r["out"]) == [f"{x}/proc", f"{x}/proc/1/mountinfo"]


def split_tree(text: str) -> tuple[list[tuple[str, str]], str]:
    """The tree's first line, ``/  [NAME=PATH, ...]``, as (name, path) pairs; and the rest."""
    head, _, body = text.partition("\n")
    assert head.startswith("/  [") and head.endswith("]"), head
    pairs = [tuple(p.split("=", 1)) for p in head[4:-1].split(", ")]
    return [(n, p) for n, p in pairs], body


def assert_same_tree(x: str, before: dict[str, Any], after: dict[str, Any]) -> None:
    assert before["rc"] == 0 and before["err"] == "", before["err"]
    assert (after["rc"], after["err"]) == (0, ""), after["err"]
    layers_before, body_before = split_tree(before["out"])
    layers_after, body_after = split_tree(after["out"])
    assert body_after == body_before
    assert [n for n, _ in layers_after] == [n for n, _ in layers_before]
    for (_, here), (_, there) in zip(layers_before, layers_after, strict=True):
        assert there.startswith(x + "/"), there  # read through X, as the host's path resolves there
        assert os.path.realpath(there[len(x) :]) == os.path.realpath(here), (here, there)


@pytest.mark.parametrize("key", ["docker-tree", "podman-tree", "k8s-tree"])
def test_host_root_tree_equals_the_real_one(host_run: HostRun, key: str) -> None:
    assert "newfile" in host_run.before[key]["out"]
    assert_same_tree(host_run.x, host_run.before[key], host_run.after[key])


@pytest.mark.parametrize("key", ["docker-diff", "podman-diff"])
def test_host_root_diff_equals_the_real_one(host_run: HostRun, key: str) -> None:
    before, after = host_run.before[key], host_run.after[key]
    assert before["rc"] == 0 and "/newdir/sub/f" in before["out"], before["err"]
    assert after == before


def test_host_root_config_file(host_run: HostRun) -> None:
    """No --podman-root: graphroot from the host's /etc/containers/storage.conf, read as X/etc/containers/..."""
    assert_same_tree(host_run.x, host_run.before["podman-tree"], host_run.after["podman-conf"])


def test_host_root_mount_point(host_run: HostRun) -> None:
    """A mount point under X: the host's mount table (not ours, which no longer has it) says what is mounted."""
    assert host_run.before["mount-tree"]["out"].startswith("/  [upper=" + host_run.docker_merged[: -len("merged")])
    assert_same_tree(host_run.x, host_run.before["mount-tree"], host_run.after["mount-tree"])


def test_host_root_docker_found_without_flags(host_run: HostRun) -> None:
    """No --docker-root, no DOCKER_HOST: the running dockerd's --data-root, read from X/proc/PID/cmdline (other
    test sessions' dockerds are hidden in the namespace)."""
    assert host_run.before["docker-found"] == host_run.before["docker-tree"]
    assert_same_tree(host_run.x, host_run.before["docker-found"], host_run.after["docker-found"])


def test_host_root_absolute_symlink_stays_inside(host_run: HostRun) -> None:
    """--docker-root /tmp/LINK where LINK -> /REAL/DATA/ROOT: followed inside X (on the real / the data root is an
    empty tmpfs here)."""
    assert_same_tree(host_run.x, host_run.before["docker-tree"], host_run.after["docker-link"])


def test_host_root_ps(host_run: HostRun, pods: dict[str, Made]) -> None:
    """The same rows, their writable layers under X, the same states (running: its upper is in the host's
    mount table)."""
    x = host_run.x

    def rows(r: dict[str, Any]) -> dict[tuple[str, str, str], dict[str, Any]]:
        assert r["rc"] in (0, 1), r["err"]
        out = [json.loads(line) for line in r["out"].splitlines()]
        return {(o["kind"], o["id"], o["name"]): o for o in out if o["engine"] in ("docker", "podman", "cri-o")}

    before, after = rows(host_run.before["ps"]), rows(host_run.after["ps"])
    assert any(r["name"] == DOCKER_CTR and r["state"] == "running" for r in before.values())
    assert any(r["id"] == pods[APP].id and r["state"] == "running" for r in before.values())
    assert sorted(after) == sorted(before)
    wrong = []
    for key, was in before.items():
        want = dict(was, upper=x + was["upper"] if was["upper"] else None)
        got = after[key]
        wrong += [f"{was['engine']} {was['name']}: {k} {want[k]!r} -> {got[k]!r}" for k in want if got[k] != want[k]]
    assert not wrong, "\n".join(wrong)


# ====================================================================== fuzzing the parsers of outside data
@contextlib.contextmanager
def fake_daemon(answer: bytes) -> Iterator[str]:
    """A Unix socket that answers one request with ``answer`` and closes (a daemon, or something else)."""
    d = tempfile.mkdtemp(prefix="ufs-sock-")
    path = f"{d}/docker.sock"
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)

    def serve() -> None:
        try:
            conn, _ = srv.accept()
        except OSError:
            return
        with conn:
            conn.settimeout(5)
            try:
                got = b""
                while b"\r\n\r\n" not in got:
                    chunk = conn.recv(4096)
                    if not chunk:
                        break
                    got += chunk
                conn.sendall(answer)
            except OSError:
                pass

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    try:
        yield path
    finally:
        with contextlib.suppress(OSError):
            srv.shutdown(socket.SHUT_RDWR)
        srv.close()
        t.join(5)
        shutil.rmtree(d)


def chunked(parts: list[tuple[bytes, bytes]], end: bool) -> bytes:
    return b"".join(size + b"\r\n" + data + b"\r\n" for size, data in parts) + (b"0\r\n\r\n" if end else b"")


DATA = st.binary(max_size=40)
GOOD_CHUNKS = st.lists(DATA.filter(bool), max_size=4)
CHUNKS = st.lists(
    st.tuples(st.one_of(st.integers(0, 80).map(lambda n: b"%x" % n), st.binary(max_size=5)), DATA), max_size=4
)
STATUS = st.one_of(st.sampled_from([b"200", b"404", b"500", b"", b"200 "]), st.binary(max_size=4))
HEADERS = st.lists(
    st.one_of(
        st.sampled_from([b"Transfer-Encoding: chunked", b"transfer-encoding: CHUNKED", b"Content-Length: 5"]),
        st.binary(max_size=20),
    ),
    max_size=3,
).map(lambda hs: b"".join(h + b"\r\n" for h in hs))
ANSWERS = st.one_of(
    st.binary(max_size=200),
    st.builds(lambda s, h, b: b"HTTP/1.1 " + s + b" OK\r\n" + h + b"\r\n" + b, STATUS, HEADERS, st.binary(max_size=80)),
    st.builds(
        lambda s, h, parts, end: (
            b"HTTP/1.0 " + s + b" X\r\nTransfer-Encoding: chunked\r\n" + h + b"\r\n" + chunked(parts, end)
        ),
        STATUS,
        HEADERS,
        CHUNKS,
        st.booleans(),
    ),
)


@settings(max_examples=150, deadline=None)
@given(ANSWERS)
def test_fuzz_daemon_get(answer: bytes) -> None:
    with fake_daemon(answer) as path, time_limit(3):
        got = daemon._get(path, "/info", 1.0)
    assert got is None or isinstance(got, bytes)


@settings(max_examples=100, deadline=None)
@given(GOOD_CHUNKS, st.booleans())
def test_fuzz_daemon_get_chunked_round_trip(datas: list[bytes], chunked_answer: bool) -> None:
    """A well-formed answer gives its body back, chunked or not."""
    body = b"".join(datas)
    if chunked_answer:
        answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + chunked(
            [(b"%x" % len(d), d) for d in datas], True
        )
    else:
        answer = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + body
    with fake_daemon(answer) as path, time_limit(3):
        assert daemon._get(path, "/info", 1.0) == body
    with time_limit(3):
        assert daemon._unchunk(chunked([(b"%x" % len(d), d) for d in datas], True)) == body


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=60))
def test_fuzz_unchunk_bytes(body: bytes) -> None:
    with time_limit(2):
        got = daemon._unchunk(body)
    assert got is None or isinstance(got, bytes)


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
INFO = st.one_of(
    JSON,
    st.fixed_dictionaries(
        {},
        optional={
            "DockerRootDir": st.one_of(st.just("/var/lib/docker"), JSON),
            "Driver": JSON,
            "DriverStatus": st.one_of(
                JSON, st.lists(st.one_of(st.lists(JSON, min_size=2, max_size=2), JSON), max_size=3)
            ),
            "Containerd": st.one_of(
                JSON,
                st.fixed_dictionaries(
                    {}, optional={"Address": JSON, "Namespaces": st.one_of(JSON, st.dictionaries(st.text(), JSON))}
                ),
            ),
        },
    ),
)


@settings(max_examples=150, deadline=None)
@given(INFO)
def test_fuzz_docker_info(info: Any) -> None:
    answer = b"HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n\r\n" + json.dumps(info).encode()
    with fake_daemon(answer) as path, time_limit(3):
        got = daemon.docker_info(Host(), env={"DOCKER_HOST": f"unix://{path}"})
    if isinstance(info, dict) and isinstance(info.get("DockerRootDir"), str):
        assert got is not None and got.root == info["DockerRootDir"]
        assert all(isinstance(v, str) for v in (got.driver, got.namespace))
        assert got.containerd_address is None or isinstance(got.containerd_address, str)
    else:
        assert got is None


TOML_LINES = st.one_of(
    st.sampled_from(["[grpc]", "[storage]", "[storage.options]", "[[storage]]", '[plugins."io.containerd"]', ""]),
    st.builds(
        "{} = {}".format,
        st.sampled_from(["root", "state", "address", "graphroot", "runroot", "driver", "version", "'a b'"]),
        st.one_of(
            st.text(max_size=12).map(json.dumps),
            st.integers().map(str),
            st.sampled_from(["true", "[1, '/x']", "{}", "{ a = 1 }", "1979-05-27T07:32:00Z", "1979-02-30", "inf"]),
            st.sampled_from(["nan", "'/var/lib/x'", '"/var/lib/containerd"', "[", "0x_1", "1e400", '"\\ud800"']),
        ),
    ),
    st.text(max_size=16),
)
TOML = st.lists(TOML_LINES, max_size=8).map(lambda lines: "\n".join(lines).encode())
CONFIG_BYTES = st.one_of(st.binary(max_size=120), TOML, JSON.map(lambda v: json.dumps(v).encode()))


@settings(max_examples=300, deadline=None)
@given(CONFIG_BYTES)
def test_fuzz_config_file_parsers(data: bytes) -> None:
    with tempfile.NamedTemporaryFile(prefix="ufs-cfg-") as f:
        f.write(data)
        f.flush()
        for parse in (engines._toml, engines._json):
            assert isinstance(parse(f.name), dict)


# What a host root may hold where a config file is looked for.
FILE_KINDS = st.one_of(
    st.just(None),  # absent
    CONFIG_BYTES,
    st.builds(lambda v: json.dumps({"data-root": v}).encode(), JSON),
    st.builds(lambda v: b'[storage]\ngraphroot = "%s"\n' % v.encode(), st.sampled_from(["/x", "rel", "/../..", ""])),
    st.builds(lambda v: b'root = "%s"\n[grpc]\naddress = "/s"\n' % v.encode(), st.sampled_from(["/r", "r", "/"])),
    st.sampled_from(["dir", "link:self", "link:/missing/x", "link:/etc/containerd/config.toml", "link:../../.."]),
)
CONFIGS = ("etc/containerd/config.toml", "etc/docker/daemon.json", "etc/containers/storage.conf")


def place_file(root: str, rel: str, what: bytes | str | None) -> None:
    path = f"{root}/{rel}"
    os.makedirs(os.path.dirname(path), exist_ok=True)
    if what is None:
        return
    if what == "dir":
        os.mkdir(path)
    elif isinstance(what, str):
        target = what.removeprefix("link:")
        os.symlink(os.path.basename(path) if target == "self" else target, path)
    else:
        with open(path, "wb") as f:
            f.write(what)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(FILE_KINDS, FILE_KINDS, FILE_KINDS), st.booleans())
def test_fuzz_engine_places_from_hostile_configs(files: tuple[Any, Any, Any], default_root: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="ufs-hostile-") as root:
        for rel, what in zip(CONFIGS, files, strict=True):
            place_file(root, rel, what)
        if default_root:
            os.makedirs(f"{root}/var/lib/containerd")
        where = engines.Where(Host(root))
        for find in (engines.containerd_daemons, engines.docker_place, engines.storage_root):
            try:
                with time_limit(3):
                    got: Any = find(where)
            except StackError as e:
                one_line(e)
                continue
            if find is engines.storage_root:
                assert isinstance(got, str) and got.startswith("/")
            elif find is engines.docker_place:
                assert isinstance(got.root, str) and got.root.startswith("/")
            else:
                assert all(isinstance(d.root, str) and d.root.startswith("/") for d in got)
                assert all(isinstance(d.address, str) and isinstance(d.state, str) for d in got)


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.text(max_size=40), st.lists(st.text(alphabet="ab_POD0", max_size=4), max_size=8).map("_".join)))
def test_fuzz_storage_name(name: str) -> None:
    got = k8s._from_storage_name(name)
    if got is not None:
        parts = name.split("_")
        assert got == (parts[3], parts[2], parts[1]) and parts[0] == "k8s" and parts[1] != "POD"


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.text(alphabet=st.characters(blacklist_characters="_"), min_size=1, max_size=6), min_size=4, max_size=4),
    st.integers(0, 99),
)
def test_storage_name_round_trip(names: list[str], attempt: int) -> None:
    ctr, pod, ns, uid = names
    got = k8s._from_storage_name(f"k8s_{ctr}_{pod}_{ns}_{uid}_{attempt}")
    assert got == (None if ctr == "POD" else (ns, pod, ctr))


LABEL_KEYS = st.sampled_from([k8s.NS_LABEL, k8s.POD_LABEL, k8s.CONTAINER_LABEL, k8s.KIND_LABEL, k8s.CRIO_TYPE, "x"])


@settings(max_examples=300, deadline=None)
@given(st.dictionaries(LABEL_KEYS, st.one_of(st.sampled_from(["", "container", "sandbox", "POD"]), st.text())))
def test_fuzz_from_labels(labels: dict[str, str]) -> None:
    got = k8s.from_labels(labels)
    kind = labels.get(k8s.KIND_LABEL) or labels.get(k8s.CRIO_TYPE) or "container"
    if got is not None:
        assert got == (labels[k8s.NS_LABEL], labels[k8s.POD_LABEL], labels[k8s.CONTAINER_LABEL]) and all(got)
        assert kind == "container"
    else:
        assert kind != "container" or not all(labels.get(k) for k in (k8s.NS_LABEL, k8s.POD_LABEL, k8s.CONTAINER_LABEL))


@settings(max_examples=300, deadline=None)
@given(st.one_of(JSON, JSON.map(json.dumps), st.builds(lambda v: json.dumps({"created-at": v}), JSON), st.text()))
def test_fuzz_podman_created(metadata: Any) -> None:
    got = podman._created(metadata)
    assert isinstance(got, float)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=16), st.integers(0, 2**64 - 1), st.integers(-(2**63), 2**63 - 1))
def test_fuzz_go_varints(data: bytes, u: int, s: int) -> None:
    got = uvarint(data)
    assert got is None or 0 <= got < 2**64
    v = varint(data)
    assert v is None or -(2**63) <= v < 2**63
    assert uvarint(uvarint_bytes(u) + data) == u
    assert varint(uvarint_bytes((s << 1) ^ (s >> 63)) + data) == s  # Go's zig-zag encoding
    assert uvarint(b"\xff" * 10) is None and uvarint(b"\x80" * 9 + b"\x02") is None  # overflow, as Go says


@settings(max_examples=300, deadline=None)
@given(st.one_of(st.none(), st.binary(max_size=20)), st.integers(-(2**63), 2**63 - 1), st.integers(0, 999_999_999))
def test_fuzz_go_time(data: bytes | None, sec: int, nsec: int) -> None:
    assert isinstance(go_time(data), float)
    encoded = b"\x01" + sec.to_bytes(8, "big", signed=True) + nsec.to_bytes(4, "big") + b"\xff\xff"
    assert go_time(encoded) == sec - 62135596800 + nsec / 1e9


CONFIG_V2 = st.fixed_dictionaries(
    {},
    optional={
        "Name": JSON,
        "Image": JSON,
        "Driver": st.one_of(st.just("overlay2"), JSON),
        "State": st.one_of(
            JSON,
            st.fixed_dictionaries(
                {}, optional={"Running": JSON, "Paused": JSON, "Restarting": JSON, "StartedAt": JSON}
            ),
        ),
        "Config": st.one_of(JSON, st.fixed_dictionaries({}, optional={"Image": JSON})),
    },
)
RECORD = st.one_of(
    st.binary(max_size=100),
    JSON.map(lambda v: json.dumps(v).encode()),
    CONFIG_V2.map(lambda v: json.dumps(v).encode()),
    st.sampled_from(["dir", "no-file", "file-not-dir", "link:/nowhere", "link:self"]),
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(RECORD, max_size=3))
def test_fuzz_docker_containers(records: list[Any]) -> None:
    with tempfile.TemporaryDirectory(prefix="ufs-dockerroot-") as root:
        for i, rec in enumerate(records):
            cdir = f"{root}/containers/{i:064x}"
            if rec == "file-not-dir":
                os.makedirs(f"{root}/containers", exist_ok=True)
                open(cdir, "w").close()  # noqa: SIM115
                continue
            os.makedirs(cdir)
            if rec == "no-file":
                continue
            place_file(cdir, "config.v2.json", "link:self" if rec == "link:self" else rec)
        try:
            with time_limit(3):
                got = docker.containers(root)
        except StackError as e:
            one_line(e)
            return
    assert len(got) <= len(records)
    for c in got:
        assert all(isinstance(v, str) for v in (c.id, c.name, c.image, c.driver, c.image_ref)) and c.name
        assert c.state in ("running", "paused", "restarting", "exited", "created")


# ---------------------------------------------------------------------- shapes known to break parsers
DEEP_JSON = "[" * 100_000
DEEP_TOML = "a = " + "[" * 20_000


def _served(body: bytes) -> Callable[[], object]:
    def ask() -> object:
        answer = b"HTTP/1.0 200 OK\r\n\r\n" + body
        with fake_daemon(answer) as path:
            return daemon.docker_info(Host(), env={"DOCKER_HOST": f"unix://{path}"})

    return ask


def _in_file(name: str, data: str, parse: Callable[[str], object]) -> Callable[[], object]:
    def read() -> object:
        with tempfile.TemporaryDirectory(prefix="ufs-deep-") as d:
            path = f"{d}/{name}"
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(path, "w") as f:
                f.write(data)
            return parse(d if name.startswith("containers/") else path)

    return read


HOSTILE = {
    "daemon.docker_info deep JSON": _served(DEEP_JSON.encode()),
    "engines._json deep JSON": _in_file("daemon.json", DEEP_JSON, engines._json),
    "engines._toml deep TOML": _in_file("config.toml", DEEP_TOML, engines._toml),
    "engines._toml 5000-digit integer": _in_file("storage.conf", "root = 1" + "0" * 5000, engines._toml),
    "docker.containers deep config.v2.json": _in_file(
        f"containers/{'a' * 64}/config.v2.json", DEEP_JSON, docker.containers
    ),
    "podman._created deep metadata": lambda: podman._created('{"created-at": ' + DEEP_JSON),
    "podman._created 400-digit created-at": lambda: podman._created('{"created-at": 1' + "0" * 400 + "}"),
    "k8s._annotations deep config.json": _in_file("config.json", '{"annotations": ' + DEEP_JSON, k8s._annotations),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_shapes_are_errors_not_crashes(case: str) -> None:
    """Deeply nested JSON/TOML (Python's parsers raise RecursionError, not ValueError) and numbers too big to
    convert: a result, or a one-line StackError."""
    try:
        with time_limit(10):
            HOSTILE[case]()
    except StackError as e:
        one_line(e)


@pytest.mark.parametrize("body", [b"-6\r\n", b"-a\r\n", b"3\r\nabc\r\n-7\r\n0\r\n\r\n", b"3\r\nabc\r\n-2\r\n0\r\n\r\n"])
def test_chunk_size_below_zero(body: bytes) -> None:
    """A negative chunk size is no HTTP (chunk-size = 1*HEXDIG): no answer, and never a loop; through the socket
    client too (a daemon, or whatever listens on DOCKER_HOST, answering so hangs every command)."""
    with time_limit(2):
        assert daemon._unchunk(body) is None
    answer = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" + body
    with fake_daemon(answer) as path, time_limit(3):
        assert daemon.docker_info(Host(), env={"DOCKER_HOST": f"unix://{path}"}) is None


SPECIAL_PROBE = textwrap.dedent(
    """
    import json, os, signal, sys
    from ufs_tui.core.model.errors import StackError
    from ufs_tui.core.sources import engines
    from ufs_tui.core.sources.host import Host

    root, kind = sys.argv[1], sys.argv[2]
    for rel in ("etc/containerd/config.toml", "etc/docker/daemon.json", "etc/containers/storage.conf"):
        os.makedirs(os.path.dirname(f"{root}/{rel}"), exist_ok=True)
        if kind == "fifo":
            os.mkfifo(f"{root}/{rel}")
        else:
            os.symlink("/dev/zero", f"{root}/{rel}")  # the host's /dev/zero: {root}/dev/zero
    if kind == "zero":
        os.makedirs(f"{root}/dev")
        os.mknod(f"{root}/dev/zero", 0o20666, os.makedev(1, 5))

    class Hang(Exception):  # not an OSError, which the code may catch
        pass

    def fire(*a):
        raise Hang

    signal.signal(signal.SIGALRM, fire)
    out = {}
    where = engines.Where(Host(root))
    for name in ("containerd_daemons", "docker_place", "storage_root"):
        try:
            signal.setitimer(signal.ITIMER_REAL, 1.5)
            try:
                getattr(engines, name)(where)
                out[name] = "ok"
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except StackError:
            out[name] = "StackError"
        except BaseException as e:
            out[name] = type(e).__name__
    print(json.dumps(out))
    """
)


@pytest.mark.parametrize("kind", ["fifo", "zero"])
def test_config_that_is_a_fifo_or_endless(kind: str, tmp_path: Any) -> None:
    """A config file in the host root that is a FIFO (open blocks until a writer comes) or endless
    (-> /dev/zero): a prompt result or StackError, never a hang or an unbounded read. Run in a child process with
    its memory capped."""
    need(os.geteuid() == 0, "needs root to make a device node")

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 29, 1 << 29))

    r = subprocess.run(
        [sys.executable, "-c", SPECIAL_PROBE, str(tmp_path), kind],
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap,
        cwd="/",
    )
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert all(v in ("ok", "StackError") for v in got.values()), got


def test_engine_places_read_the_host_roots_configs(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config files are read under the host root, and the roots they name are host paths (kept as given).
    Running daemons come first where the host's processes can be seen: none here (that is another test's)."""
    monkeypatch.setattr(engines, "engine_processes", lambda host, names: [])
    root = str(tmp_path)
    place_file(root, CONFIGS[0], b'root = "/srv/ctrd"\nstate = "/run/c2"\n[grpc]\naddress = "/run/c2/c.sock"\n')
    place_file(root, CONFIGS[1], b'{"data-root": "/srv/docker"}')
    place_file(root, CONFIGS[2], b'[storage]\ngraphroot = "/srv/storage"\n')
    os.makedirs(f"{root}/srv/ctrd")
    where = engines.Where(Host(root))
    assert engines.storage_root(where) == "/srv/storage"
    assert engines.docker_place(where).root == "/srv/docker"
    daemons = [(d.root, d.state, d.address) for d in engines.containerd_daemons(where)]
    assert daemons == [("/srv/ctrd", "/run/c2", "/run/c2/c.sock")]
