"""Modern engines for the engine tests, each started in its own temp dir: helpers, not fixtures.

- :func:`start_docker29`: Docker Engine 29 with the containerd image store, dockerd starting its own containerd
  (v2.3.3, root ``DATA_ROOT/containerd/daemon``, namespace ``moby``).
- :func:`start_docker29_external`: a separately started containerd v2.3.3 (its own root, state and socket) and a
  Docker 29 attached to it with ``--containerd``; ``DATA_ROOT/containerd`` is then never made.
- :func:`start_containerd16`: Debian's containerd 1.6 driven with Debian's ``ctr``.

Docker 29 and containerd 2.3 come from ``shared/engines/docker-engine.tar.xz`` (beside the repo, or
``$UFS_ENGINES_TARBALL``), unpacked once per process into a temp dir. What the engines do on disk is in
``/work/survey/REPORT.md`` (observed, not from the docs); the facts the helpers rely on:

- dockerd and containerd 2.3 look their helpers up on PATH (``containerd``, ``containerd-shim-runc-v2``, ``runc``):
  with Debian's containerd first on PATH, containerd 2.3 starts Debian's 1.6 shim and every task fails with
  "type with url ID: not found". The unpacked ``bin/`` goes first on their PATH.
- runc keeps its state in ``/run/containerd/runc/<namespace>`` unless the client says otherwise. dockerd says
  ``EXEC_ROOT/runtime-runc``; for ``ctr``, pass :attr:`ModernEngine.run_flags` to ``ctr run`` (a private
  ``--runc-root`` and ``--fifo-dir``) and :attr:`ModernEngine.exec_flags` to ``ctr tasks exec``/``start``. The
  default namespace is one of this instance's own, so even a ``ctr containers create`` (no ``--runc-root`` in
  ctr 1.6) started later keeps apart from other containerds.
- shims outlive containerd, and containerd leaves tasks running when it exits: :meth:`ModernEngine.stop` kills
  the tasks first, then the daemons by PID, then any shim still naming this instance's socket (and the
  container processes under it).
- ``docker diff`` on the containerd store mounts a read-only overlay at ``$TMPDIR/containerd-mountNNN``,
  outside every dir of the instance; ``stop()`` also unmounts overlays whose options name the instance's dir.
"""

from __future__ import annotations

import atexit
import contextlib
import functools
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from tests.engines.conftest import Engine, mounts_under, stop_pid, unmount_all_under, wait_for

TARBALL_ENV = "UFS_ENGINES_TARBALL"
START_TIMEOUT = 60.0
STOP_TIMEOUT = 60.0

_unpacked: str | None = None
_unpack_lock = threading.Lock()


def tarball() -> str | None:
    """docker-engine.tar.xz: ``$UFS_ENGINES_TARBALL``, else ``shared/engines/`` beside the repo, else the
    workplace's ``/work/shared/engines/`` (a clone made elsewhere, as CI's may be)."""
    candidates = [os.environ.get(TARBALL_ENV, "")]
    candidates.append(str(Path(__file__).resolve().parents[3] / "shared" / "engines" / "docker-engine.tar.xz"))
    candidates.append("/work/shared/engines/docker-engine.tar.xz")
    return next((c for c in candidates if c and os.path.isfile(c)), None)


def available() -> bool:
    return tarball() is not None and shutil.which("runc") is not None and shutil.which("docker") is not None


def engines_dir() -> str:
    """The tarball unpacked (``bin/``, ``tools/boltdump``), once per process, removed when the process exits."""
    global _unpacked
    with _unpack_lock:
        if _unpacked is None:
            tar = tarball()
            if tar is None:
                raise FileNotFoundError(f"docker-engine.tar.xz not found (set {TARBALL_ENV})")
            d = tempfile.mkdtemp(prefix="ufs-modern-bin-")
            try:
                subprocess.run(["tar", "-C", d, "-xJf", tar], check=True, capture_output=True)
            except subprocess.CalledProcessError:
                shutil.rmtree(d, ignore_errors=True)
                raise
            atexit.register(shutil.rmtree, d, True)
            _unpacked = d
    return _unpacked


def boltdump() -> str:
    """The tarball's bbolt dumper (copy a db first: containerd holds its lock). Note: it prints ``size``,
    ``inodes`` and ``version`` as unsigned varints, but containerd writes them as signed (zigzag) varints, so
    they show doubled."""
    return f"{engines_dir()}/tools/boltdump"


@dataclass
class ModernEngine:
    """One running instance. ``cli`` is docker (DOCKER_HOST set) or ctr (address and namespace set)."""

    name: str
    base: str  # everything of this instance is under here; stop() removes it
    cli: Engine
    ctr: Engine  # ctr on this instance's containerd, in ``namespace``
    namespace: str
    containerd_address: str
    containerd_root: str
    containerd_state: str
    data_root: str | None = None  # dockerd --data-root
    exec_root: str | None = None  # dockerd --exec-root
    docker_socket: str | None = None
    runc_root: str = ""
    fifo_dir: str = ""
    _procs: list[tuple[str, subprocess.Popen[bytes]]] = field(default_factory=list, repr=False)  # (kind, proc)
    _logs: list[str] = field(default_factory=list, repr=False)
    _stopped: bool = field(default=False, repr=False)

    @property
    def run_flags(self) -> list[str]:
        """For ``ctr run``: runc state and I/O fifos in this instance's dir."""
        return ["--runc-root", self.runc_root, "--fifo-dir", self.fifo_dir]

    @property
    def exec_flags(self) -> list[str]:
        """For ``ctr tasks exec`` and ``ctr tasks start``."""
        return ["--fifo-dir", self.fifo_dir]

    def ctr_in(self, namespace: str) -> Engine:
        """ctr on this containerd in another namespace (``moby``, ``k8s.io``...): use :attr:`run_flags`."""
        return Engine(self.ctr.name, [*self.ctr.argv[:-1], namespace], self.ctr.root, self.ctr.env)

    def logs(self) -> str:
        out = []
        for path in self._logs:
            with contextlib.suppress(OSError), open(path, errors="replace") as f:
                out.append(f"== {path}\n{f.read()[-3000:]}")
        return "\n".join(out)

    def stop(self, remove: bool = True) -> None:
        """Stop tasks and daemons by PID, kill this instance's leftover shims, unmount, remove ``base``
        (``remove=False`` keeps it, for the caller to read the files the daemons closed and delete it)."""
        if self._stopped:
            return
        self._stopped = True
        if self.docker_socket is not None:
            _kill_docker_containers(self)
        managed = _managed_containerd_pid(self)
        for kind, proc in reversed(self._procs):  # dockerd before the containerd it is attached to
            if kind == "containerd" and proc.poll() is None:
                _kill_tasks(self)
            stop_pid(proc.pid, STOP_TIMEOUT)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=10)
        if managed is not None:
            stop_pid(managed, STOP_TIMEOUT)
        _kill_shims(self.containerd_address)
        _unmount_instance(self.base)
        with contextlib.suppress(OSError):  # a ctr-created task without --runc-root, in our own namespace
            os.rmdir(f"/run/containerd/runc/{self.namespace}")
        if remove:
            subprocess.run(["chmod", "-R", "u+rwx", self.base], capture_output=True)
            shutil.rmtree(self.base, ignore_errors=True)


# ---- starting


def start_docker29(parent: str | None = None) -> ModernEngine:
    """Docker 29 (containerd image store) with the containerd it starts itself."""
    base = tempfile.mkdtemp(prefix="ufs-modern-d29-", dir=parent)
    ex = f"{base}/ex"
    inst = _docker_instance("docker29", base, f"{ex}/containerd/containerd.sock")
    inst.containerd_root = f"{inst.data_root}/containerd/daemon"
    inst.containerd_state = f"{ex}/containerd/daemon"
    return _started(inst, lambda: _start_dockerd(inst, []))


def start_docker29_external(parent: str | None = None) -> ModernEngine:
    """containerd 2.3 started on its own, and Docker 29 attached to it (``--containerd``)."""
    base = tempfile.mkdtemp(prefix="ufs-modern-d29x-", dir=parent)
    inst = _docker_instance("docker29-external", base, f"{base}/ctd/containerd.sock")
    inst.containerd_root = f"{base}/ctd/root"
    inst.containerd_state = f"{base}/ctd/state"

    def start() -> None:
        _start_containerd(inst, f"{engines_dir()}/bin/containerd", version=3)
        _start_dockerd(inst, ["--containerd", inst.containerd_address])

    return _started(inst, start)


def start_containerd16(parent: str | None = None, namespace: str | None = None) -> ModernEngine:
    """Debian's containerd (1.6) with Debian's ctr; the CLI is ``ctr --address SOCK -n NAMESPACE``."""
    binary, ctr = shutil.which("containerd") or "containerd", shutil.which("ctr") or "ctr"
    return _containerd_alone("containerd16", binary, ctr, 2, parent, namespace)


def start_containerd23(parent: str | None = None, namespace: str | None = None) -> ModernEngine:
    """The tarball's containerd 2.3.3 alone (no dockerd attached), with its ctr."""
    bin_dir = f"{engines_dir()}/bin"
    return _containerd_alone("containerd23", f"{bin_dir}/containerd", f"{bin_dir}/ctr", 3, parent, namespace)


def _containerd_alone(
    name: str, binary: str, ctr_bin: str, config_version: int, parent: str | None, namespace: str | None
) -> ModernEngine:
    base = tempfile.mkdtemp(prefix=f"ufs-modern-{name.replace('ontainerd', '')}-", dir=parent)
    ns = namespace or f"ufs-{os.getpid()}-{uuid.uuid4().hex[:8]}"  # ctr's own namespace (runc state apart)
    sock = f"{base}/ctd/containerd.sock"
    ctr = Engine("containerd", [ctr_bin, "--address", sock, "-n", ns], f"{base}/ctd/root", _env())
    inst = ModernEngine(
        name=name,
        base=base,
        cli=ctr,
        ctr=ctr,
        namespace=ns,
        containerd_address=sock,
        containerd_root=f"{base}/ctd/root",
        containerd_state=f"{base}/ctd/state",
        runc_root=f"{base}/runc",
        fifo_dir=f"{base}/fifo",
    )
    return _started(inst, lambda: _start_containerd(inst, binary, version=config_version))


@contextlib.contextmanager
def docker29(parent: str | None = None) -> Iterator[ModernEngine]:
    inst = start_docker29(parent)
    try:
        yield inst
    finally:
        inst.stop()


@contextlib.contextmanager
def docker29_external(parent: str | None = None) -> Iterator[ModernEngine]:
    inst = start_docker29_external(parent)
    try:
        yield inst
    finally:
        inst.stop()


@contextlib.contextmanager
def containerd16(parent: str | None = None, namespace: str | None = None) -> Iterator[ModernEngine]:
    inst = start_containerd16(parent, namespace)
    try:
        yield inst
    finally:
        inst.stop()


# ---- the test images


def docker_images(inst: ModernEngine, rootfs_tar: str) -> None:
    """``base:1`` imported from ``rootfs_tar`` and ``multi:1`` built from conftest's DOCKERFILE (legacy builder)."""
    from tests.engines.conftest import DOCKERFILE

    with open(rootfs_tar, "rb") as f:
        inst.cli.run("import", "-", "base:1", input=f.read())
    ctx = tempfile.mkdtemp(prefix="ctx-", dir=inst.base)
    with open(f"{ctx}/Dockerfile", "w") as f:
        f.write(DOCKERFILE)
    inst.cli.run("build", "-q", "--network", "none", "-t", "multi:1", ctx)


# ---- internals


def _env(**extra: str) -> dict[str, str]:
    """The caller's environment without a DOCKER_HOST of its own, plus ``extra``."""
    env = dict(os.environ)
    env.pop("DOCKER_HOST", None)
    env.update(extra)
    return env


def _daemon_env(modern: bool) -> dict[str, str]:
    """For the tarball's daemons, PATH with its bin/ first: dockerd and containerd 2.3 find containerd, the
    shim and runc on PATH. Debian's containerd must not see that bin/ (it would start the 2.3 shim)."""
    path = os.environ.get("PATH", "/usr/bin:/bin") + ":/usr/sbin:/sbin"
    return _env(PATH=f"{engines_dir()}/bin:{path}" if modern else path)


def _docker_instance(name: str, base: str, containerd_address: str) -> ModernEngine:
    sock = f"{base}/docker.sock"
    os.makedirs(f"{base}/docker-config")
    env = _env(DOCKER_HOST=f"unix://{sock}", DOCKER_BUILDKIT="0", DOCKER_CONFIG=f"{base}/docker-config")
    cli = Engine(name, [shutil.which("docker") or "docker"], f"{base}/dr", env)
    ctr = Engine("ctr", [f"{engines_dir()}/bin/ctr", "--address", containerd_address, "-n", "moby"], "", _env())
    return ModernEngine(
        name=name,
        base=base,
        cli=cli,
        ctr=ctr,
        namespace="moby",
        containerd_address=containerd_address,
        containerd_root="",
        containerd_state="",
        data_root=f"{base}/dr",
        exec_root=f"{base}/ex",
        docker_socket=sock,
        runc_root=f"{base}/runc",
        fifo_dir=f"{base}/fifo",
    )


def _started(inst: ModernEngine, start: Callable[[], None]) -> ModernEngine:
    try:
        for d in (inst.runc_root, inst.fifo_dir):
            os.makedirs(d, exist_ok=True)
        start()
    except BaseException:
        inst.stop()
        raise
    return inst


def _runc_has_time_namespaces() -> bool:
    """runc < 1.2 (Debian 12's 1.1.5) has no time namespace: Docker 29's feature must be off for it."""
    r = subprocess.run(["runc", "--version"], capture_output=True, text=True, env=_daemon_env(False))
    words = r.stdout.split()
    version = words[2] if len(words) > 2 else "0"
    parts = [int(p) if p.isdigit() else 0 for p in version.split("+")[0].split("-")[0].split(".")[:2]]
    return tuple(parts) >= (1, 2)


def _spawn(inst: ModernEngine, argv: list[str], log_name: str, modern: bool) -> subprocess.Popen[bytes]:
    path = f"{inst.base}/{log_name}.log"
    inst._logs.append(path)
    with open(path, "ab") as log:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=log, env=_daemon_env(modern))
    inst._procs.append((log_name, proc))
    return proc


def _start_dockerd(inst: ModernEngine, extra: list[str]) -> None:
    assert inst.data_root and inst.exec_root and inst.docker_socket
    cfg = f"{inst.base}/daemon.json"
    features = {"containerd-snapshotter": True, "time-namespaces": _runc_has_time_namespaces()}
    with open(cfg, "w") as f:
        json.dump({"features": features}, f)
    argv = [
        f"{engines_dir()}/bin/dockerd",
        "--config-file", cfg,
        "--data-root", inst.data_root,
        "--exec-root", inst.exec_root,
        "--host", f"unix://{inst.docker_socket}",
        "--pidfile", f"{inst.base}/dockerd.pid",
        "--iptables=false", "--ip6tables=false", "--bridge=none",
        *extra,
    ]  # fmt: skip
    proc = _spawn(inst, argv, "dockerd", modern=True)
    sock = inst.docker_socket

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"dockerd exited ({proc.returncode}):\n{inst.logs()}")
        return _http_ok(sock, "/_ping")

    wait_for(up, START_TIMEOUT, "dockerd to answer")


def _start_containerd(inst: ModernEngine, binary: str, version: int) -> None:
    os.makedirs(os.path.dirname(inst.containerd_address), exist_ok=True)
    cfg = f"{os.path.dirname(inst.containerd_address)}/config.toml"
    # CRI off: it is not needed, and 2.x's would start its own sandbox plumbing.
    disabled = ["io.containerd.grpc.v1.cri"]
    if version >= 3:
        disabled += ["io.containerd.cri.v1.images", "io.containerd.cri.v1.runtime"]
    with open(cfg, "w") as f:
        f.write(
            f"version = {version}\n"
            f'root = "{inst.containerd_root}"\n'
            f'state = "{inst.containerd_state}"\n'
            f"disabled_plugins = {json.dumps(disabled)}\n"
            f'[grpc]\n  address = "{inst.containerd_address}"\n'
            f'[ttrpc]\n  address = "{inst.containerd_address}.ttrpc"\n'
            '[debug]\n  address = ""\n'
        )
    proc = _spawn(inst, [binary, "--config", cfg], "containerd", modern=version >= 3)

    def up() -> bool:
        if proc.poll() is not None:
            raise RuntimeError(f"containerd exited ({proc.returncode}):\n{inst.logs()}")
        if not os.path.exists(inst.containerd_address):
            return False
        return subprocess.run([*inst.ctr.argv, "version"], capture_output=True, env=inst.ctr.env).returncode == 0

    wait_for(up, START_TIMEOUT, "containerd to answer")


def _http_ok(sock_path: str, path: str) -> bool:
    """GET over a unix socket, without the docker CLI: true on an HTTP 200."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(5)
            s.connect(sock_path)
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            return s.recv(64).split(b"\r\n", 1)[0].split(b" ")[1:2] == [b"200"]
    except OSError:
        return False


def _managed_containerd_pid(inst: ModernEngine) -> int | None:
    """The containerd that dockerd started itself (its pid file in EXEC_ROOT/containerd), if it is that one."""
    if inst.exec_root is None:
        return None
    try:
        with open(f"{inst.exec_root}/containerd/containerd.pid") as f:
            pid = int(f.read().strip())
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return pid if inst.exec_root.encode() in f.read() else None
    except (OSError, ValueError):
        return None


def _kill_docker_containers(inst: ModernEngine) -> None:
    """SIGKILL the running containers: dockerd would otherwise give each 10 s to stop at shutdown (not
    when a daemon is gone already: with no containerd to answer, the CLI would only wait)."""
    if not inst._procs or any(proc.poll() is not None for _kind, proc in inst._procs):
        return
    with contextlib.suppress(subprocess.SubprocessError, RuntimeError):
        ids = inst.cli.run("ps", "-q", check=False).split()
        if ids:
            inst.cli.run("kill", *ids, check=False)


def _kill_tasks(inst: ModernEngine) -> None:
    """Kill and delete every task in every namespace: containerd leaves them running when it exits."""
    try:
        namespaces = inst.ctr_in("default").run("namespaces", "ls", "-q", check=False).split()
        for ns in namespaces:
            ctr = inst.ctr_in(ns)
            tasks = ctr.run("tasks", "ls", "-q", check=False).split()
            for task in tasks:
                ctr.run("tasks", "kill", "-a", "-s", "SIGKILL", task, check=False)
            for task in tasks:
                with contextlib.suppress(TimeoutError):
                    wait_for(functools.partial(_task_stopped, ctr, task), 15, f"task {task} to stop")
                ctr.run("tasks", "delete", "-f", task, check=False)
    except (subprocess.SubprocessError, RuntimeError):
        pass


def _task_stopped(ctr: Engine, task: str) -> bool:
    for line in ctr.run("tasks", "ls", check=False).splitlines()[1:]:
        words = line.split()
        if words and words[0] == task:
            return words[-1] != "RUNNING"
    return True


def _processes() -> dict[int, tuple[int, bytes]]:
    """pid -> (ppid, cmdline) of every process."""
    out = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                ppid = int(f.read().rsplit(b") ", 1)[1].split()[1])
            with open(f"/proc/{name}/cmdline", "rb") as f:
                out[int(name)] = (ppid, f.read())
        except (OSError, IndexError, ValueError):
            continue
    return out


def _kill_shims(address: str) -> None:
    """SIGKILL shims still serving this containerd (``-address SOCK``), their children first; remove their
    sockets in /run/containerd/s (the shims' own dir, shared by every containerd on the host)."""
    procs = _processes()
    needle = b"\0-address\0" + address.encode() + b"\0"
    shims = [pid for pid, (_pp, cmd) in procs.items() if b"containerd-shim" in cmd and needle in cmd + b"\0"]
    if not shims:
        return
    sockets = _listening_sockets(shims)
    victims: list[int] = []
    todo = list(shims)
    while todo:
        pid = todo.pop()
        victims.append(pid)
        todo += [p for p, (pp, _c) in procs.items() if pp == pid and p not in victims]
    for pid in reversed(victims):  # children, then the shims
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    for pid in shims:
        stop_pid(pid, 5)
    for path in sockets:
        with contextlib.suppress(OSError):
            os.unlink(path)


def _listening_sockets(pids: list[int]) -> list[str]:
    """Paths under /run/containerd/s of unix sockets that ``pids`` hold open."""
    by_inode = {}
    with contextlib.suppress(OSError), open("/proc/net/unix") as f:
        for line in f.readlines()[1:]:
            parts = line.split()
            if len(parts) >= 8 and parts[7].startswith("/run/containerd/s/"):
                by_inode[parts[6]] = parts[7]
    out = []
    for pid in pids:
        with contextlib.suppress(OSError):
            for fd in os.listdir(f"/proc/{pid}/fd"):
                with contextlib.suppress(OSError):
                    link = os.readlink(f"/proc/{pid}/fd/{fd}")
                    if link.startswith("socket:[") and link[8:-1] in by_inode:
                        out.append(by_inode[link[8:-1]])
    return out


def _unmount_instance(base: str) -> None:
    """Everything mounted under ``base``, and overlays elsewhere built from its layers (docker diff's temp
    mounts at $TMPDIR/containerd-mountNNN): children first, until none is left."""
    for _ in range(5):
        unmount_all_under(base)
        elsewhere = _overlays_using(base)
        for target in elsewhere:
            subprocess.run(["umount", "-l", target], capture_output=True)
            if os.path.basename(target).startswith("containerd-mount"):
                with contextlib.suppress(OSError):
                    os.rmdir(target)
        if not mounts_under(base) and not elsewhere:
            return
    left = mounts_under(base) + _overlays_using(base)
    if left:
        raise RuntimeError(f"could not unmount: {left}")


def _overlays_using(base: str) -> list[str]:
    from ufs_tui.core.sources.mountinfo import unescape_octal

    prefix = base.rstrip("/") + "/"
    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            fields = line.split(" - ", 1)
            if len(fields) == 2 and fields[1].startswith("overlay ") and prefix in unescape_octal(fields[1]):
                out.append(unescape_octal(line.split(" ")[4]))
    return list(reversed(out))
