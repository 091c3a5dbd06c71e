"""``ufs-tui diff --format docker|podman`` against ``docker diff`` / ``podman diff`` themselves.

Each scenario runs in a fresh container of each engine (private daemons, see conftest); then the
engine's own diff is the expected output, and ``ufs-tui diff`` (a subprocess, stdout a pipe: what a
script sees) reads the container's layers from the data root and must print the same. Docker's
order is random (a Go map), so its lines are compared as a multiset; podman's order is its walk
order, compared byte for byte. Where the engine's own diff fails, ufs-tui must fail too (exit 2).
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.engines.conftest import CHANGES, PODMAN_RUN, Engine, make_rootfs, mounts_under, wait_for
from tests.overlay import mounted
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.sources import open_source

REPO = Path(__file__).resolve().parents[2]

# Names that must come out exactly as the engines print them.
ODD = [b"sp ace", b"nl\nname", b"tab\tname", b"back\\slash", b"bad\xffname", b"cut\xe2\x82x", b"\x1b[31mred"]


def make_diff_rootfs(root: str) -> None:
    """conftest's busybox rootfs plus odd names and a deeper tree to delete."""
    make_rootfs(root)
    rootb = os.fsencode(root)
    os.makedirs(rootb + b"/odd/dir")
    for name in ODD:
        with open(rootb + b"/odd/" + name, "wb") as f:
            f.write(b"x\n")
        os.mkdir(rootb + b"/odd/dir/" + name)
    os.makedirs(f"{root}/srv/tree/a/b/c")
    for rel in ("srv/tree/f", "srv/tree/a/f", "srv/tree/a/b/c/f"):
        Path(root, rel).write_text(rel + "\n")
    os.mknod(f"{root}/opt/dev0", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(f"{root}/opt/dev1", 0o644 | stat.S_IFCHR, os.makedev(1, 3))
    os.mknod(f"{root}/opt/blk0", 0o600 | stat.S_IFBLK, os.makedev(7, 0))


def sh_name(raw: bytes) -> str:
    """A shell word that makes the bytes ``raw`` (printf with octal escapes, for busybox sh)."""
    return "\"$(printf '" + "".join(f"\\{b:03o}" for b in raw) + "')\""


ODD_SCRIPT = "; ".join(
    [
        *(f"touch /{sh_name(n)}" for n in ODD),  # new at the root
        *(f"echo changed >> /odd/{sh_name(n)}" for n in ODD[:3]),  # changed
        *(f"rm /odd/{sh_name(n)}" for n in ODD[3:]),  # deleted
        *(f"mkdir -p /newodd/{sh_name(n)}/in" for n in ODD),  # new dirs with children
        *(f"chmod 700 /odd/dir/{sh_name(n)}" for n in ODD),  # changed dirs
    ]
)


@dataclass
class Scenario:
    script: str
    image: str = "diffbase:1"
    host: Callable[[Engine, str], None] | None = None  # done from the host after the script
    notes: list[str] = field(default_factory=list)


def same_mode(path: str) -> str:
    return f"chmod $(stat -c %a {path}) {path}"


CAP_NET_BIND = bytes.fromhex("0100000200040000000000000000000000000000")  # v2, cap_net_bind_service


def set_capability(engine: Engine, name: str) -> None:
    """security.capability on a copied-up file, its stat unchanged: docker diff still reports it."""
    upper = upper_dir(engine, name)
    os.setxattr(f"{upper}/opt/app/one", "security.capability", CAP_NET_BIND, follow_symlinks=False)


def stop(engine: Engine, name: str) -> Stack:
    """Stop the container and wait until its rootfs is unmounted (the host then changes its upper)."""
    merged = merged_dir(engine, name)
    engine.run("stop", "-t", "0", name)
    wait_for(lambda: not mounts_under(merged), 60, f"{engine.name} to unmount {merged}")
    return open_source(f"{engine.name}:{name}", **{f"{engine.name}_root": engine.root})


def ghost_whiteouts(engine: Engine, name: str) -> None:
    """Whiteouts over names no lower has (docker: nothing to delete; podman: D all the same)."""
    upper = stop(engine, name).upper
    assert upper is not None
    for rel in ("ghost", "etc/ghost"):
        os.mknod(f"{upper.path}/{rel}", 0o644 | stat.S_IFCHR, 0)


def broken_metacopy(engine: Engine, name: str) -> None:
    """A metacopy file with no data below: lstat through the mount fails (the engine mounts with metacopy off)."""
    upper = stop(engine, name).upper
    assert upper is not None
    with open(f"{upper.path}/mcbad", "w") as f:
        f.truncate(5)
    os.setxattr(f"{upper.path}/mcbad", "trusted.overlay.metacopy", b"")


def subsecond_times(engine: Engine, name: str) -> None:
    """mtimes that differ from the image's below the second (image times have no nanoseconds)."""
    stack = stop(engine, name)
    assert stack.upper is not None
    up = stack.upper.path
    lower = OverlayView(stack.without_upper())

    def sec(path: str) -> int:
        e = lower.lookup(path)
        assert e is not None
        return os.lstat(e.real_path).st_mtime_ns // 10**9

    half = 5 * 10**8
    os.utime(f"{up}/opt/app/one", ns=(0, sec("/opt/app/one") * 10**9 + half))  # same second: the same time
    os.utime(f"{up}/opt/app/two", ns=(0, (sec("/opt/app/two") + 1) * 10**9))  # a second later
    os.utime(f"{up}/opt/app", ns=(0, (sec("/opt/app") - 1) * 10**9 + half))  # a dir half a second earlier
    os.utime(f"{up}/srv/tree", ns=(0, sec("/srv/tree") * 10**9 + half))  # a dir in the same second


def rename_with_redirects(engine: Engine, name: str) -> None:
    """Rename lower dirs the way a redirect_dir=on mount does: the engine only mounts with the
    kernel's defaults (which follow redirects), so the container is stopped and its layers mounted here."""
    stack = stop(engine, name)
    assert stack.upper is not None and stack.work is not None
    with tempfile.TemporaryDirectory() as mnt:
        lowers = [layer.path for layer in stack.lowers]
        with mounted(lowers, stack.upper.path, stack.work, mnt, "redirect_dir=on"):
            os.rename(f"{mnt}/opt/app", f"{mnt}/opt/moved")  # relative redirect
            os.rename(f"{mnt}/srv/tree/a", f"{mnt}/moved-a")  # absolute redirect
            Path(mnt, "moved-a", "added").write_text("new\n")
    assert os.getxattr(f"{stack.upper.path}/opt/moved", "trusted.overlay.redirect") == b"app"


SCENARIOS: dict[str, Scenario] = {
    "noop-copy-ups": Scenario(
        f"{same_mode('/etc/passwd')}; touch /root/t; rm /root/t; cp -p /opt/app/one /opt/app/one.tmp; "
        "mv /opt/app/one.tmp /opt/app/one; ln /opt/app/two /tmp/hl; rm /tmp/hl"
    ),
    "rm-rf-mkdir-deep": Scenario(
        "rm -rf /opt; mkdir -p /opt/app/sub/deeper; echo 1 > /opt/app/one; echo deep > /opt/app/sub/deep; "
        "touch /opt/app/sub/deeper/f; rm -rf /srv/tree/a; mkdir -p /srv/tree/a/b/c; cp -p /etc/group /srv/tree/a/f"
    ),
    "rm-rf-mkdir": Scenario(
        "echo changed >> /etc/passwd; rm -rf /opt/app; mkdir /opt/app; echo new > /opt/app/x; touch /newfile"
    ),
    "replace-kinds": Scenario(
        "rm /etc/motd; mkdir /etc/motd; rm -rf /var/log; echo file > /var/log; rm -rf /srv/tree/a/b; "
        "ln -s /x /srv/tree/a/b; rm -rf /opt/app/sub; mkfifo /opt/app/sub"
    ),
    "file-to-dir-with-child": Scenario("rm /etc/motd; mkdir /etc/motd; touch /etc/motd/inside"),
    "chmod-chown": Scenario(
        "chmod 700 /opt/app/two; chmod 1777 /root; chown 1:1 /etc/group; chmod 4755 /opt/app/one; "
        "chmod 700 /opt/app/sub; chown 2 /srv/tree/a/b/c"
    ),
    "symlinks": Scenario(
        "ln -s /x /newlink; rm /opt/app/one; ln -s two /opt/app/one; rm /bin/cat; ln -s /bin/busybox /bin/cat; "
        "ln -s /etc /opt/etclink; rm /bin/ls; echo fake > /bin/ls; rm /bin/sh; ln -s busybox /bin/sh"
    ),
    "delete-trees": Scenario("rm -rf /srv/tree /opt/app/sub; rm /opt/app/two; rm -rf /var"),
    "odd-names": Scenario(ODD_SCRIPT),
    "walk-order": Scenario(
        "mkdir -p /a/b/c /a-c /a.b /opt/app/sub/x; touch /a/b/c/f /a-c/f /a.b/f /a0 /opt/app/sub/x/f /opt/app-x"
    ),
    "renames": Scenario("mv /opt/app/two /opt/app/two.moved; mv /etc/group /root/group; mv /srv/tree/a/f /srv/f"),
    "special-files": Scenario("mkfifo /fifo; mknod /opt/app/null c 1 3; rm /opt/app/one; mkfifo /opt/app/one"),
    "devices": Scenario(
        "touch -r /opt/dev0 /tmp/r0; rm /opt/dev0; mknod /opt/dev0 c 1 5; touch -r /tmp/r0 /opt/dev0; "
        "touch -r /opt/dev1 /tmp/r1; rm /opt/dev1; mknod /opt/dev1 c 1 3; touch -r /tmp/r1 /opt/dev1; "
        "touch /opt/blk0; rm /tmp/r0 /tmp/r1"
    ),
    "broken-metacopy": Scenario("touch /newfile", host=broken_metacopy),
    "ghost-whiteouts": Scenario(same_mode("/etc/passwd"), host=ghost_whiteouts),
    "subsecond-times": Scenario(
        f"{same_mode('/opt/app/one')}; {same_mode('/opt/app/two')}; {same_mode('/srv/tree/f')}", host=subsecond_times
    ),
    "capability": Scenario(f"{same_mode('/opt/app/one')}; {same_mode('/opt/app/two')}", host=set_capability),
    "redirects": Scenario("touch /opt/app/before", host=rename_with_redirects),
    "multi-layer-image": Scenario(
        "rm -rf /layer2/keep; mkdir /layer2/keep; touch /layer2/keep/new; echo x > /etc/motd; rm /layer3; "
        "mkdir -p /layer2/deep/er; touch /layer2/keep",
        image="multi:1",
    ),
    "conftest-changes": Scenario(CHANGES, image="multi:1"),
}


@pytest.fixture(scope="module")
def rootfs_tar_odd(engine_tmp: str) -> str:
    root = f"{engine_tmp}/diff-rootfs"
    make_diff_rootfs(root)
    tar = f"{engine_tmp}/diff-rootfs.tar"
    subprocess.run(["tar", "-C", root, "-cf", tar, "."], check=True)
    return tar


@pytest.fixture(scope="module")
def docker_images(docker: Engine, rootfs_tar_odd: str) -> Engine:
    with open(rootfs_tar_odd, "rb") as f:
        docker.run("import", "-", "diffbase:1", input=f.read())
    return docker


@pytest.fixture(scope="module")
def podman_images(podman: Engine, rootfs_tar_odd: str) -> Engine:
    with open(rootfs_tar_odd, "rb") as f:
        podman.run("import", "-", "diffbase:1", input=f.read())
    return podman


def upper_dir(engine: Engine, name: str) -> str:
    stack = open_source(f"{engine.name}:{name}", **{f"{engine.name}_root": engine.root})
    assert stack.upper is not None
    return stack.upper.path


def merged_dir(engine: Engine, name: str) -> str:
    return engine.run("inspect", "-f", "{{.GraphDriver.Data.MergedDir}}", name).strip()


def start(engine: Engine, scenario: str) -> str:
    """The scenario's container on this engine, made once per module."""
    name = f"{engine.name[0]}d-{scenario}"
    if name in _made:
        return name
    s = SCENARIOS[scenario]
    image = s.image if engine.name == "docker" else f"localhost/{s.image}"
    opts = ["--network", "none"] if engine.name == "docker" else PODMAN_RUN
    engine.run("run", "-d", "--name", name, *opts, image, "sleep", "100000")
    engine.run("exec", name, "sh", "-c", s.script)
    _made[name] = engine
    if s.host is not None:
        s.host(engine, name)
    return name


_made: dict[str, Engine] = {}  # containers made by this module (removed when it is done)


@pytest.fixture(scope="module", autouse=True)
def _remove_containers() -> Iterator[None]:
    yield
    for name, engine in _made.items():
        engine.run("rm", "-f", *(["-t", "0"] if engine.name == "podman" else []), name, check=False)
    _made.clear()


def engine_diff(engine: Engine, name: str) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([*engine.argv, "diff", name], capture_output=True, env=engine.env, timeout=180)


def ufs_diff(engine: Engine, name: str) -> subprocess.CompletedProcess[bytes]:
    """``ufs-tui diff`` as a script runs it: stdout is a pipe."""
    argv = [sys.executable, "-m", "ufs_tui", "diff", f"{engine.name}:{name}"]
    argv += [f"--{engine.name}-root", engine.root, "--format", engine.name]
    return subprocess.run(argv, capture_output=True, cwd=REPO, timeout=180)


def lines(out: bytes) -> Counter[bytes]:
    return Counter(out.split(b"\n"))


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_docker_diff(docker_images: Engine, scenario: str) -> None:
    docker = docker_images
    name = start(docker, scenario)
    want = engine_diff(docker, name)
    got = ufs_diff(docker, name)
    if want.returncode != 0:  # docker's own diff fails: so must ufs-tui's
        assert b"Error response from daemon: " in want.stderr and want.stdout == b""
        assert (got.returncode, got.stdout) == (2, b"")
        assert b"docker diff fails here" in got.stderr
        return
    assert (got.returncode, got.stderr) == (0, b"")
    missing, extra = lines(want.stdout) - lines(got.stdout), lines(got.stdout) - lines(want.stdout)
    assert (sorted(missing), sorted(extra)) == ([], [])
    assert len(got.stdout) == len(want.stdout)


@pytest.mark.parametrize("scenario", sorted(SCENARIOS))
def test_podman_diff(podman_images: Engine, scenario: str) -> None:
    podman = podman_images
    name = start(podman, scenario)
    want = engine_diff(podman, name)
    got = ufs_diff(podman, name)
    if want.returncode != 0:  # podman's own diff fails: so must ufs-tui's
        assert b"Error: " in want.stderr and want.stdout == b""
        assert (got.returncode, got.stdout) == (2, b"")
        assert b"podman diff fails here" in got.stderr
        return
    assert (got.returncode, got.stderr) == (0, b"")
    assert got.stdout.split(b"\n") == want.stdout.split(b"\n")  # same lines, same order, same bytes


def test_scenarios_really_change_things(docker_images: Engine, podman_images: Engine) -> None:
    """The comparisons above are not vacuous: the engines print the cases the rules are about."""
    docker_all = {s: engine_diff(docker_images, start(docker_images, s)) for s in SCENARIOS}
    docker_out = {s: r.stdout for s, r in docker_all.items()}
    podman_out = {s: engine_diff(podman_images, start(podman_images, s)) for s in SCENARIOS}
    assert docker_out["noop-copy-ups"] == b""  # a copy-up that changed no stat: nothing
    assert b"C /opt/app/one\n" in podman_out["noop-copy-ups"].stdout  # podman: any copy-up
    assert b"A /nl\nname\n" in docker_out["odd-names"] and b"A /bad\xef\xbf\xbdname\n" in docker_out["odd-names"]
    assert b"A /bad\xffname\n" in podman_out["odd-names"].stdout
    assert b"C /opt/app/one\n" in docker_out["capability"]
    assert b"A /opt/moved/sub/deep\n" in docker_out["redirects"] and b"D /opt/app\n" in docker_out["redirects"]
    assert podman_out["file-to-dir-with-child"].returncode != 0
    assert docker_all["broken-metacopy"].returncode != 0 and b"A /mcbad\n" in podman_out["broken-metacopy"].stdout
    assert b"C /opt/dev0\n" in docker_out["devices"] and b"/opt/blk0" not in docker_out["devices"]
    assert docker_out["ghost-whiteouts"] == b"" and b"D /ghost\n" in podman_out["ghost-whiteouts"].stdout
