"""Engines benchmark (issue 12): a host with many containers and snapshots, read without the daemons.

Starts Docker 29 (containerd image store) attached to a separately started containerd 2.3.3 (from
``shared/engines/docker-engine.tar.xz``) and Debian's Docker 20.10 (overlay2 graph driver), each with private
roots and sockets. On both it makes ``--containers`` containers (``docker create``; on Docker 29 each an
``-init`` and a writable snapshot) and, in a namespace of its own, more snapshots with ``ctr`` until the host
holds at least ``--snapshots``; both Dockers get the same image (``bench_sources``' rootfs: Debian minbase by
debootstrap, or its busybox fallback, plus two build steps) and one running container ``big`` with the same
changes.

Printed, each measured in the same run, medians of interleaved runs in fresh processes:

* ``ufs-tui ps --format json`` (every engine, upper sizes added up): target <= 300 ms; beside it, the same
  list from the daemon, ``docker ps -a`` + ``docker images``, as a reference;
* opening one container by name: ``ufs-tui diff docker:NAME --format docker`` (its upper is empty: the time is
  Python's start, the imports and finding the stack), target <= 300 ms; reference ``docker inspect NAME``;
  and ``open_source("docker:NAME")`` alone, in this process;
* ``ufs-tui tree docker:big --format json`` on the containerd store against the same on the graph driver:
  target ratio <= 1.1x; beside them, ``tree`` of the same layers given as ``--lower``/``--upper`` dirs (the
  walk alone: what is left is opening the source).

Run as root from the repo root: ``.venv/bin/python -m bench.bench_engines`` (``--help`` for options). Every
engine is stopped by PID at the end and nothing stays mounted. ``--cache DIR`` keeps the rootfs tar.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script: python bench/bench_engines.py
    sys.path.insert(0, REPO)

from bench.bench_core import CHILD_ENV, timed, verdict  # noqa: E402
from bench.bench_sources import DOCKERFILE, build_rootfs, dockerd  # noqa: E402

TARGET_PS = 0.300
TARGET_OPEN = 0.300
TARGET_TREE_RATIO = 1.1
IMAGE = "ufs-bench-engines:1"
CHANGES = "echo changed >> /etc/os-release; rm -rf /usr/share/locale; mkdir -p /new/d; echo n > /new/d/f"


def log(msg: str) -> None:
    print(f"bench_engines: {msg}", file=sys.stderr, flush=True)


def ufs(*args: str) -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "ufs-tui")
    return [script, *args]


def docker_env(sock: str) -> dict[str, str]:
    return CHILD_ENV | {"DOCKER_HOST": f"unix://{sock}", "DOCKER_BUILDKIT": "0"}


def run(argv: list[str], env: dict[str, str], input: bytes | None = None) -> str:
    r = subprocess.run(argv, capture_output=True, env=env, input=input, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode(errors="surrogateescape")


def make_image(env: dict[str, str], rootfs_tar: str, tmp: str) -> None:
    with open(rootfs_tar, "rb") as f:
        run(["docker", "import", "-", "ufs-bench-base:1"], env, f.read())
    ctx = tempfile.mkdtemp(dir=tmp)
    with open(f"{ctx}/Dockerfile", "w") as f:
        f.write(DOCKERFILE)
    run(["docker", "build", "-q", "--network", "none", "-t", IMAGE, ctx], env)
    run(["docker", "run", "-d", "--network", "none", "--name", "big", IMAGE, "sleep", "100000"], env)
    run(["docker", "exec", "big", "sh", "-c", CHANGES], env)


def many(fn: Callable[[int], object], n: int) -> None:
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(fn, range(n)))


def populate(env: dict[str, str], ctr: list[str], containers: int, snapshots: int) -> int:
    """``containers`` stopped containers on Docker 29, and ctr snapshots in namespace ``bench`` (committed chains
    of ten) until the containerd holds ``snapshots``; returns how many snapshots it holds."""
    log(f"docker create x{containers}")
    many(
        lambda i: run(["docker", "create", "--network", "none", "--name", f"c{i:04d}", IMAGE, "true"], env), containers
    )

    def count() -> int:
        out = run([*ctr, "-n", "moby", "snapshots", "ls"], CHILD_ENV).count("\n") - 1
        return out + max(0, run([*ctr, "-n", "bench", "snapshots", "ls"], CHILD_ENV).count("\n") - 1)

    missing = max(0, snapshots - count())
    chains = (missing + 9) // 10
    log(f"ctr snapshots: {chains} chains of 10 committed snapshots")

    def chain(c: int) -> None:
        parent: list[str] = []
        for k in range(10):
            key = f"bench-{c}-{k}"
            run([*ctr, "-n", "bench", "snapshots", "prepare", f"{key}-a", *parent], CHILD_ENV)
            run([*ctr, "-n", "bench", "snapshots", "commit", key, f"{key}-a"], CHILD_ENV)
            parent = [key]

    many(chain, chains)
    return count()


def medians(argvs: dict[str, tuple[list[str], dict[str, str]]], runs: int) -> dict[str, float]:
    for argv, env in argvs.values():
        timed(argv, env=env)  # warm-up: page cache, bytecode
    names = list(argvs)
    t: dict[str, list[float]] = {n: [] for n in names}
    for k in range(runs):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            argv, env = argvs[name]
            t[name].append(timed(argv, env=env))
    return {n: statistics.median(v) for n, v in t.items()}


def walk_only(**roots: str) -> list[str]:
    """``tree`` of the layers ``docker:big`` opens to, given as --lower/--upper dirs: the walk without opening the
    source (no daemon asked, no engine records read)."""
    from ufs_tui.core.sources import open_source

    stack = open_source("docker:big", **roots)
    argv = ufs("tree", "--lower", ":".join(layer.path for layer in stack.lowers), "--format", "json")
    return argv + (["--upper", stack.upper.path] if stack.upper else [])


def in_process_open(name: str, docker_root: str, containerd_root: str, runs: int) -> float:
    from ufs_tui.core.sources import open_source

    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        open_source(f"docker:{name}", docker_root=docker_root, containerd_root=containerd_root)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.bench_engines", description=__doc__.split("\n\n")[0])
    ap.add_argument("--containers", type=int, default=500)
    ap.add_argument("--snapshots", type=int, default=2000)
    ap.add_argument("--runs", type=int, default=9)
    ap.add_argument("--cache", help="keep the rootfs tar here between runs")
    ap.add_argument("--synthetic", action="store_true", help="use the busybox rootfs, not debootstrap")
    args = ap.parse_args(argv)
    if os.geteuid() != 0:
        raise SystemExit("bench: run as root (it starts container engines)")
    from tests.engines import modern

    if not modern.available():
        raise SystemExit("bench: needs docker-engine.tar.xz (shared/engines), runc and a docker CLI")
    tmp = tempfile.mkdtemp(prefix="ufs-bench-engines-")
    cache = args.cache or f"{tmp}/cache"
    os.makedirs(cache, exist_ok=True)
    load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        rootfs_tar, kind = build_rootfs(cache, args.synthetic)
        d29 = modern.start_docker29_external(tmp)
        try:
            with dockerd(f"{tmp}/d20") as d20:
                return measure(args, d29, d20, rootfs_tar, kind, tmp, load0)
        finally:
            d29.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def measure(
    args: argparse.Namespace, d29: object, d20: object, rootfs_tar: str, kind: str, tmp: str, load0: str
) -> int:
    from tests.engines.modern import ModernEngine

    assert isinstance(d29, ModernEngine) and d29.docker_socket and d29.data_root
    env29 = docker_env(d29.docker_socket)
    env20 = dict(d20.env)  # type: ignore[attr-defined]
    log(f"image from the {kind} rootfs on both Dockers")
    make_image(env29, rootfs_tar, tmp)
    make_image(env20, rootfs_tar, tmp)
    n_snap = populate(env29, d29.ctr.argv[:3], args.containers, args.snapshots)
    log(f"docker create x{args.containers} on Docker 20.10 too: the tree compares hosts alike")
    create = ["docker", "create", "--network", "none", IMAGE, "true"]
    many(lambda i: run(create, env20), args.containers)
    n_cont = len(run(["docker", "ps", "-aq"], env29).split())
    log(f"host: {n_cont} Docker 29 containers, {n_snap} snapshots; timing")
    one = f"c{args.containers // 2:04d}"  # a container in the middle
    ps_ufs = ufs("ps", "--format", "json", "--containerd-root", d29.containerd_root)
    argvs = {
        "ps": (ps_ufs, env29),
        "docker ps": (["sh", "-c", "docker ps -a --no-trunc >/dev/null && docker images --no-trunc"], env29),
        "open": (ufs("diff", f"docker:{one}", "--format", "docker"), env29),
        "inspect": (["docker", "inspect", one], env29),
        "python": ([sys.executable, "-c", "pass"], CHILD_ENV),
    }
    t = medians(argvs, args.runs)
    tree = medians(
        {
            "store": (ufs("tree", "docker:big", "--format", "json"), env29),
            "graph": (ufs("tree", "docker:big", "--format", "json"), env20),
            "store dirs": (walk_only(docker_root=d29.data_root, containerd_root=d29.containerd_root), CHILD_ENV),
            "graph dirs": (walk_only(docker_root=d20.data_root), CHILD_ENV),  # type: ignore[attr-defined]
        },
        args.runs,
    )
    t_in = in_process_open(one, d29.data_root, d29.containerd_root, args.runs)
    ratio = tree["store"] / tree["graph"]
    print()
    print(f"host: Docker 29.7.2 (containerd store, external containerd 2.3.3): {n_cont} containers, {n_snap} snapshots")
    print(f"image: {kind} rootfs + 2 build steps; container 'big' on both Dockers with the same changes")
    print(f"{'measure':<58} {'value':>10}  {'reference':>22}  {'target':>9}  result")
    print("-" * 114)
    rows = [
        (
            "ufs-tui ps --format json (fresh process)",
            t["ps"],
            f"docker ps+images {t['docker ps'] * 1000:.0f} ms",
            TARGET_PS,
        ),
        (
            "ufs-tui diff docker:NAME (open by name, fresh process)",
            t["open"],
            f"docker inspect {t['inspect'] * 1000:.0f} ms",
            TARGET_OPEN,
        ),
        ("open_source('docker:NAME') in this process", t_in, "", TARGET_OPEN),
    ]
    for name, value, ref, target in rows:
        print(
            f"{name:<58} {value * 1000:>7.0f} ms  {ref:>22}  {f'<= {target * 1000:.0f} ms':>9}  "
            f"{verdict(value <= target)}"
        )
    print(f"{'  python -c pass (start-up floor)':<58} {t['python'] * 1000:>7.0f} ms")
    print(f"{'tree docker:big, containerd store':<58} {tree['store'] * 1000:>7.0f} ms")
    print(f"{'tree docker:big, overlay2 graph driver':<58} {tree['graph'] * 1000:>7.0f} ms")
    walks = f"{tree['store dirs'] * 1000:.0f} ms vs {tree['graph dirs'] * 1000:.0f} ms"
    print(f"{'  the same layers as --lower/--upper dirs (the walk alone)':<58} {walks:>22}")
    print(
        f"{'  ratio store / graph driver':<58} {ratio:>8.2f}x  {'':>22}  {f'<= {TARGET_TREE_RATIO}x':>9}  "
        f"{verdict(ratio <= TARGET_TREE_RATIO)}"
    )
    print("-" * 114)
    print(
        f"ratios: ps / docker ps+images {t['ps'] / t['docker ps']:.2f}x; open / docker inspect "
        f"{t['open'] / t['inspect']:.2f}x; load average {load0} at start, "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end ({os.cpu_count()} CPUs)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
