"""Real container engines for the engine tests, each started once per session in its own temp dirs.

dockerd and podman get their own data root, run dir and socket under one temp dir; nothing global is
started or touched. Finalizers remove containers, stop the daemon by its PID, unmount whatever is
still mounted under the temp dir and delete it. ``need(...)`` makes a missing engine fail in CI.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from tests.conftest import need
from tests.overlay import can_mount_overlay

BUSYBOX = "/bin/busybox"


def wait_for(cond: Callable[[], bool], timeout: float, what: str) -> None:
    """Poll ``cond`` until true; fail after ``timeout`` seconds (never a blind sleep)."""
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.05)


def mounts_under(prefix: str) -> list[str]:
    from ufs_tui.core.sources.mountinfo import unescape_octal

    out = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            target = unescape_octal(line.split(" ")[4])
            if target == prefix or target.startswith(prefix.rstrip("/") + "/"):
                out.append(target)
    return out


def unmount_all_under(prefix: str) -> None:
    for target in reversed(mounts_under(prefix)):  # children before parents
        subprocess.run(["umount", "-l", target], capture_output=True)


def stop_pid(pid: int, timeout: float = 30) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return

    def gone() -> bool:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        # a zombie child of ours is gone for our purposes
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().split(") ", 1)[1].startswith("Z")
        except OSError:
            return True

    try:
        wait_for(gone, timeout, f"pid {pid} to exit")
    except TimeoutError:
        os.kill(pid, signal.SIGKILL)


def make_rootfs(root: str) -> None:
    """A small busybox rootfs with the files OVERLAY-NOTES §4 uses."""
    os.makedirs(f"{root}/bin")
    shutil.copy2(BUSYBOX, f"{root}/bin/busybox")
    subprocess.run(["chroot", root, "/bin/busybox", "--install", "-s", "/bin"], check=True)
    for d in ("etc", "opt/app/sub", "var/log", "tmp", "root"):
        os.makedirs(f"{root}/{d}", exist_ok=True)
    files = {
        "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
        "etc/group": "root:x:0:\n",
        "etc/motd": "welcome\n",
        "opt/app/one": "1\n",
        "opt/app/two": "2\n",
        "opt/app/sub/deep": "deep\n",
        "var/log/old": "old log\n",
    }
    for rel, text in files.items():
        with open(f"{root}/{rel}", "w") as f:
            f.write(text)
    os.chmod(f"{root}/tmp", 0o1777)


@pytest.fixture(scope="session")
def engine_tmp() -> Iterator[str]:
    need(os.geteuid() == 0, "engine tests need root")
    need(can_mount_overlay(), "overlayfs cannot be mounted here")
    need(os.path.exists(BUSYBOX), "busybox-static is not installed (/bin/busybox)")
    d = tempfile.mkdtemp(prefix="ufs-engines-")
    yield d
    unmount_all_under(d)
    subprocess.run(["chmod", "-R", "u+rwx", d], capture_output=True)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def rootfs_tar(engine_tmp: str) -> str:
    root = f"{engine_tmp}/rootfs"
    make_rootfs(root)
    tar = f"{engine_tmp}/rootfs.tar"
    subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
    return tar


# Build steps on top of the imported base: more layers, with a whiteout and an opaque dir in them.
DOCKERFILE = """\
FROM base:1
RUN mkdir -p /layer2/keep && echo two > /layer2/f && echo k > /layer2/keep/k && rm /etc/motd
RUN rm -rf /layer2/keep && mkdir /layer2/keep && echo again > /layer2/keep/new && echo three > /layer3
"""

# What the test containers do (through exec, so it is finished when exec returns).
CHANGES = (
    "echo changed >> /etc/passwd; rm -rf /opt/app; mkdir /opt/app; echo new > /opt/app/x; touch /newfile; "
    "mkdir -p /newdir/sub; echo 1 > /newdir/sub/f; rm -rf /var/log; ln -s /x /bin/newlink; rm /bin/ls; "
    "echo x > /bin/ls; chmod 700 /layer2/f; printf 'odd' > '/odd name [red]'"
)


@dataclass
class Engine:
    name: str
    argv: list[str]  # the CLI with its root options
    root: str  # data root / storage root
    env: dict[str, str]

    def run(self, *args: str, input: bytes | None = None, check: bool = True) -> str:
        r = subprocess.run([*self.argv, *args], input=input, capture_output=True, env=self.env, timeout=180)
        if check and r.returncode != 0:
            raise RuntimeError(f"{' '.join(self.argv[:1] + list(args))} failed: {r.stderr.decode(errors='replace')}")
        return r.stdout.decode(errors="surrogateescape")


@pytest.fixture(scope="session")
def docker(engine_tmp: str, rootfs_tar: str) -> Iterator[Engine]:
    need(shutil.which("dockerd") is not None and shutil.which("docker") is not None, "docker.io is not installed")
    base = f"{engine_tmp}/docker"
    os.makedirs(base)
    sock = f"{base}/d.sock"
    log = open(f"{base}/dockerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "dockerd",
            "--storage-driver=overlay2",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            f"--data-root={base}/data",
            f"--exec-root={base}/exec",
            f"--host=unix://{sock}",
            f"--pidfile={base}/d.pid",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
    engine = Engine("docker", ["docker"], f"{base}/data", env)

    def up() -> bool:
        if proc.poll() is not None:
            with open(f"{base}/dockerd.log") as f:
                raise RuntimeError("dockerd exited: " + f.read()[-2000:])
        return os.path.exists(sock) and engine.run("version", check=False) != ""

    try:
        wait_for(up, 60, "dockerd to answer")
        with open(rootfs_tar, "rb") as f:
            engine.run("import", "-", "base:1", input=f.read())
        ctx = f"{base}/ctx"
        os.makedirs(ctx)
        with open(f"{ctx}/Dockerfile", "w") as f:
            f.write(DOCKERFILE)
        engine.run("build", "--network", "none", "-t", "multi:1", ctx)
        yield engine
    finally:
        ids = engine.run("ps", "-aq", check=False).split()
        if ids:
            engine.run("rm", "-f", *ids, check=False)
        stop_pid(proc.pid)
        proc.wait(timeout=10)
        log.close()
        unmount_all_under(base)


@pytest.fixture(scope="session")
def podman(engine_tmp: str, rootfs_tar: str) -> Iterator[Engine]:
    need(shutil.which("podman") is not None, "podman is not installed")
    base = f"{engine_tmp}/podman"
    os.makedirs(base)
    argv = [
        "podman",
        f"--root={base}/root",
        f"--runroot={base}/run",
        f"--tmpdir={base}/tmp",
        "--storage-driver=overlay",
        "--cgroup-manager=cgroupfs",
        "--events-backend=file",
    ]
    engine = Engine("podman", argv, f"{base}/root", dict(os.environ))
    try:
        with open(rootfs_tar, "rb") as f:
            engine.run("import", "-", "base:1", input=f.read())
        ctx = f"{base}/ctx"
        os.makedirs(ctx)
        with open(f"{ctx}/Dockerfile", "w") as f:
            f.write(DOCKERFILE.replace("FROM base:1", "FROM localhost/base:1"))
        engine.run("build", "--network", "none", "-t", "multi:1", ctx)
        yield engine
    finally:
        engine.run("rm", "-f", "-a", "-t", "0", check=False)
        # conmon runs 'podman container cleanup' after a container dies, and that mounts the storage again
        wait_for(lambda: not processes_mentioning(base), 60, "podman's conmon and cleanup processes to exit")
        unmount_all_under(base)


def processes_mentioning(text: str) -> list[int]:
    """PIDs whose command line contains ``text`` (our own engines' helpers: conmon, shims, cleanup)."""
    out = []
    needle = text.encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if needle in f.read():
                    out.append(int(pid))
        except OSError:
            continue
    return out


PODMAN_RUN = ["--network", "none", "--ulimit", "nofile=20000:20000", "--ulimit", "nproc=32768:32768"]


@pytest.fixture(scope="session")
def docker_archive(docker: Engine, engine_tmp: str) -> str:
    """``docker save multi:1`` (the legacy docker-archive format)."""
    path = f"{engine_tmp}/multi-docker.tar"
    docker.run("save", "-o", path, "multi:1")
    return path


@pytest.fixture(scope="session")
def oci_archive(podman: Engine, engine_tmp: str) -> str:
    """``podman save --format oci-archive multi:1`` (an OCI layout in a tar, gzip layers)."""
    path = f"{engine_tmp}/multi-oci.tar"
    podman.run("save", "--format", "oci-archive", "-o", path, "localhost/multi:1")
    return path


@pytest.fixture(scope="session")
def containerd(engine_tmp: str, docker_archive: str) -> Iterator[Engine]:
    need(shutil.which("containerd") is not None and shutil.which("ctr") is not None, "containerd is not installed")
    base = f"{engine_tmp}/containerd"
    os.makedirs(base)
    sock = f"{base}/c.sock"
    with open(f"{base}/config.toml", "w") as f:
        f.write(f'version = 2\ndisabled_plugins = ["io.containerd.grpc.v1.cri"]\n[grpc]\n  address = "{sock}"\n')
    log = open(f"{base}/containerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        ["containerd", "--config", f"{base}/config.toml", "--root", f"{base}/root", "--state", f"{base}/state"],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    # runc keeps state in /run/containerd/runc/<namespace>: a namespace of our own keeps it apart
    namespace = f"ufs-test-{os.getpid()}"
    engine = Engine("containerd", ["ctr", "--address", sock, "-n", namespace], f"{base}/root", dict(os.environ))

    def up() -> bool:
        if proc.poll() is not None:
            with open(f"{base}/containerd.log") as f:
                raise RuntimeError("containerd exited: " + f.read()[-2000:])
        return os.path.exists(sock) and subprocess.run([*engine.argv, "version"], capture_output=True).returncode == 0

    try:
        wait_for(up, 60, "containerd to answer")
        engine.run("images", "import", docker_archive)
        yield engine
    finally:
        for task in engine.run("tasks", "ls", "-q", check=False).split():
            engine.run("tasks", "kill", "-s", "SIGKILL", task, check=False)
            wait_for(lambda t=task: t not in _running_tasks(engine), 30, f"task {task} to stop")
            engine.run("tasks", "rm", "-f", task, check=False)
        for c in engine.run("containers", "ls", "-q", check=False).split():
            engine.run("containers", "rm", c, check=False)
        stop_pid(proc.pid)
        proc.wait(timeout=10)
        log.close()
        unmount_all_under(base)
        with contextlib.suppress(OSError):
            os.rmdir(f"/run/containerd/runc/{namespace}")


def _running_tasks(engine: Engine) -> str:
    lines = engine.run("tasks", "ls", check=False).splitlines()[1:]
    return " ".join(line.split()[0] for line in lines if "RUNNING" in line)
