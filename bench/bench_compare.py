"""``ufs-tui compare`` on two big stacks against ``diff -rq`` on their two kernel mounts (issue 16).

Builds a base layer of ``--files`` files (default 100,000: 100 dirs of 1,000, 20-400 bytes each), and two
stacks over it, A and B, each with a small top lower and an upper; B's upper makes a few hundred changes of
every kind, through its mount:

* ``copied``: B's base is a copy of A's (``cp -a``): every file of both trees is read and compared;
* ``shared``: both stacks sit on the same base dir (two images sharing their bottom layer): dirs only the base
  makes are the same on both sides and are not read.

Both stacks are mounted, and each run times the real CLI (``ufs-tui compare MOUNT_A MOUNT_B``: the stacks are
read from their layers, found in the mount table) and ``diff -rq MOUNT_A MOUNT_B`` (through the kernel), warm,
interleaved: medians of the wall time and of the CPU time (user + system). It first checks that every path
``diff -rq`` names is in compare's lines.

Run as root from the repo root: ``.venv/bin/python -m bench.bench_compare`` (``--help``). Everything it makes
(the mounts, the temp dir) is removed at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import NamedTuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLI = [sys.executable, "-m", "ufs_tui"]


def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def write(path: str, data: bytes, mode: int = 0o644) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)


def build_base(root: str, files: int) -> None:
    per_dir = 1000
    for n in range(files):
        d = os.path.join(root, "usr", f"d{n // per_dir:03d}")
        if n % per_dir == 0:
            os.makedirs(d)
        write(os.path.join(d, f"f{n:06d}"), b"x" * (20 + n % 380))


# B's changes: new content (same size and not), modes, deletions, files replaced by dirs, a dir deleted, a new tree
OPS = """
set -e
n=0
for d in usr/d000 usr/d002 usr/d004 usr/d006; do
  for f in $(ls $d | head -50); do
    n=$((n+1))
    case $((n % 5)) in
      0) echo changed > $d/$f ;;
      1) chmod 600 $d/$f ;;
      2) rm $d/$f ;;
      3) printf 'y' | dd of=$d/$f bs=1 count=1 conv=notrunc 2>/dev/null ;;
      4) rm $d/$f; mkdir $d/$f; echo in > $d/$f/x ;;
    esac
  done
done
rm -rf usr/d008
mkdir -p new/sub && for i in $(seq 100); do echo $i > new/sub/n$i; done
"""


@contextlib.contextmanager
def mounted(lowers: list[str], upper: str, work: str, mnt: str) -> Iterator[str]:
    opts = f"lowerdir={':'.join(lowers)},upperdir={upper},workdir={work}"
    subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, mnt], check=True)
    try:
        yield mnt
    finally:
        subprocess.run(["umount", mnt], check=True)


def timed(argv: list[str]) -> tuple[float, float, bytes]:
    """Wall time, CPU time (user + system) and the output of a run."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t = time.perf_counter()
    r = subprocess.run(argv, capture_output=True, cwd=REPO)
    took = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode not in (0, 1):
        raise SystemExit(f"{' '.join(argv)}: exit {r.returncode}: {r.stderr.decode(errors='replace')}")
    return took, after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime, r.stdout


def same_paths(ours: bytes, theirs: bytes, ma: str, mb: str) -> None:
    """Every path ``diff -rq`` names is in compare's lines (which also list what is under an added dir)."""
    mine = {line.split(" ")[1] for line in ours.decode().splitlines()}
    named = set()
    for line in theirs.decode().splitlines():
        m = re.match(r"Only in (.*): (.*)$", line)
        if m:
            where = m.group(1)
            named.add(where[len(ma if where.startswith(ma) else mb) :] + "/" + m.group(2))
            continue
        m = re.match(r"Files (\S+) and \S+ differ$", line) or re.match(r"File (\S+) is a .* while file", line)
        if m:
            named.add(m.group(1)[len(ma) :])
    missing = {p.replace("//", "/") for p in named} - mine
    if missing:
        raise SystemExit(f"diff -rq names paths compare does not: {sorted(missing)[:5]}")


class Row(NamedTuple):
    case: str
    lines: int
    ours: float
    diff: float
    ours_cpu: float
    diff_cpu: float


def run_case(name: str, tmp: str, shared: bool, runs: int) -> Row:
    base_a = os.path.join(tmp, "base")
    base_b = base_a if shared else os.path.join(tmp, "base-copy")
    if not os.path.isdir(base_b):
        say("copying the base...")
        subprocess.run(["cp", "-a", base_a, base_b], check=True)
    dirs = {}
    for side, base in (("a", base_a), ("b", base_b)):
        root = os.path.join(tmp, f"{name}-{side}")
        for sub in ("top/etc", "u", "w", "m"):
            os.makedirs(os.path.join(root, sub))
        write(os.path.join(root, "top", "etc", "side"), side.encode())
        dirs[side] = ([os.path.join(root, "top"), base], *(os.path.join(root, s) for s in ("u", "w", "m")))
    with mounted(*dirs["b"]) as mb:  # B's changes, made by the kernel
        subprocess.run(["sh", "-c", OPS], cwd=mb, check=True)
    wall: dict[str, list[float]] = {"ours": [], "diff": []}
    cpu: dict[str, list[float]] = {"ours": [], "diff": []}
    with mounted(*dirs["a"]) as ma, mounted(*dirs["b"]) as mb:
        ours = [*CLI, "compare", ma, mb]
        theirs = ["diff", "-rq", "--no-dereference", ma, mb]
        out = timed(ours)[2]
        same_paths(out, timed(theirs)[2], ma, mb)
        for i in range(runs):
            order = [("ours", ours), ("diff", theirs)]
            for label, argv in order if i % 2 == 0 else order[::-1]:
                took, used, _ = timed(argv)
                wall[label].append(took)
                cpu[label].append(used)
    shown = {k: " ".join(f"{t:.2f}" for t in v) for k, v in wall.items()}
    say(f"{name}: compare {shown['ours']} s, diff -rq {shown['diff']} s (wall)")
    med = {k: statistics.median(v) for k, v in wall.items()}
    med_cpu = {k: statistics.median(v) for k, v in cpu.items()}
    return Row(name, len(out.splitlines()), med["ours"], med["diff"], med_cpu["ours"], med_cpu["diff"])


def main() -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--files", type=int, default=100_000, help="files in the base layer (default 100,000)")
    p.add_argument("--runs", type=int, default=3, help="timed runs of each (default 3)")
    args = p.parse_args()
    if os.geteuid() != 0:
        say("bench_compare: needs root (it mounts overlays)")
        return 2
    tmp = tempfile.mkdtemp(prefix="ufs-bench-compare-")
    try:
        say(f"building a base of {args.files} files in {tmp}...")
        build_base(os.path.join(tmp, "base"), args.files)
        rows = [run_case(name, tmp, shared, args.runs) for name, shared in (("copied", False), ("shared", True))]
        head = f"{'base':<8} {'lines':>6} {'compare':>9} {'diff -rq':>9} {'ratio':>6}"
        print(f"{head}   CPU: {'compare':>8} {'diff -rq':>9}")
        for r in rows:
            print(
                f"{r.case:<8} {r.lines:>6} {r.ours:>8.2f}s {r.diff:>8.2f}s {r.ours / r.diff:>6.2f}   "
                f"{r.ours_cpu:>12.2f}s {r.diff_cpu:>8.2f}s"
            )
    finally:
        with open("/proc/self/mountinfo") as f:
            table = f.read().splitlines()
        for line in reversed(table):
            target = line.split(" ")[4]
            if target.startswith(tmp):
                subprocess.run(["umount", target], check=False)
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
