"""Core benchmark (issue 2): the merged view of a large synthetic stack against the kernel.

Builds a stack of 10 lowers (about 20,000 entries each) plus a small upper, about 110,000 merged
entries, mounts it, and prints, measured in the same run:

* ``ufs-tui tree --format json`` (the real CLI, a subprocess, output to /dev/null, one worker per
  CPU as by default) against ``find MERGED -printf '%p %y %m %s %l\\n'`` on the mounted merged dir:
  medians of interleaved runs and their ratio (target <= 1.5x); also the CPU time of both and the
  CLI in one process (``-j 1``);
* ``OverlayView(stack).list_dir("/big")`` on a cold view, a 20,000-entry dir spread across the 10
  lowers (target <= 50 ms), and the system calls it cannot avoid, timed alone in the same run;
* memory of a full walk held in memory, ``list(view.walk())`` (target <= 300 bytes per entry), as a
  tracemalloc delta and, in a fresh process, as an RSS delta.

Run as root from the repo root: ``.venv/bin/python -m bench.bench_core`` (``--help`` for options).
Everything it makes (mount, temp dir) is removed at the end, also on error or Ctrl-C, unless
``--cache DIR`` asks to keep the built layers for the next run.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import resource
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from types import FrameType

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:  # run as a script: python bench/bench_core.py
    sys.path.insert(0, REPO)

from ufs_tui.core.model import dirscan  # noqa: E402
from ufs_tui.core.model.merge import OverlayView  # noqa: E402
from ufs_tui.core.model.scan import _marker_xattr_bytes  # noqa: E402
from ufs_tui.core.model.stack import Stack  # noqa: E402

# ------------------------------------------------------------------ the synthetic stack
SPEC_VERSION = "2"  # bump when the layout below changes (invalidates --cache dirs)
N_LOWERS = 10
BIG_DIR = "big"  # one dir with BIG_N entries spread across the lowers
BIG_N = 20_000
TREE_FILES = 91_000  # distinct file names in the nested tree (before whiteouts)
# how many lowers hold a given tree file: (copies, weight); mean 1.79 copies
COPIES = ((1, 62), (2, 25), (3, 9), (N_LOWERS, 4))
OPAQUE_LOWER = ("tree/a05/b5", 3)  # opaque in lower 3: hides the copies in lowers 4..9
UPPER_OPAQUE = "tree/a07/b2"  # the upper replaces this dir with an opaque one
SEED = 20261128

TARGET_RATIO = 1.5
TARGET_LIST_MS = 50.0
TARGET_BYTES = 300.0


@dataclass
class Plan:
    """What each layer holds: rel path -> ("dir" | "file" | "symlink" | "whiteout", size)."""

    lowers: list[dict[str, tuple[str, int]]] = field(default_factory=lambda: [{} for _ in range(N_LOWERS)])
    upper: dict[str, tuple[str, int]] = field(default_factory=dict)

    def add(self, layer: dict[str, tuple[str, int]], rel: str, kind: str, size: int = 0) -> None:
        parent = os.path.dirname(rel)
        while parent and parent not in layer:
            layer[parent] = ("dir", 0)
            parent = os.path.dirname(parent)
        layer[rel] = (kind, size)


def tree_dir(g: int) -> str:
    leaf = g % 1000  # 20 x 10 x 5 = 1000 leaf dirs, three levels deep
    return f"tree/a{leaf // 50:02d}/b{leaf // 5 % 10}/c{leaf % 5}"


def make_plan() -> Plan:
    """A deterministic layout with realistic overlap (see README.md for the numbers)."""
    rng = random.Random(SEED)
    plan = Plan()
    # /big: name j lives in lower j % 10; a quarter of the names also in a second lower.
    for j in range(BIG_N):
        home = j % N_LOWERS
        plan.add(plan.lowers[home], f"{BIG_DIR}/entry-{j:05d}.dat", "file", j % 4096)
        if j % 4 == 0:
            plan.add(plan.lowers[(home + 3) % N_LOWERS], f"{BIG_DIR}/entry-{j:05d}.dat", "file", 100)
    # The nested tree: each file in 1, 2, 3 or all lowers; some deleted by a whiteout in a lower above.
    copies_pop = [c for c, _ in COPIES]
    copies_w = [w for _, w in COPIES]
    for g in range(TREE_FILES):
        rel = f"{tree_dir(g)}/file-{g:06d}.{('txt', 'so', 'py', 'conf')[g % 4]}"
        kind = "symlink" if g % 17 == 0 else "file"
        n = rng.choices(copies_pop, copies_w)[0]
        holders = sorted(rng.sample(range(N_LOWERS), n))
        if n >= 2 and rng.random() < 0.05:
            top, rest = holders[0], holders[1:]  # the topmost holder deletes it
            plan.add(plan.lowers[top], rel, "whiteout")
            holders = rest
        for i in holders:
            plan.add(plan.lowers[i], rel, kind, rng.randrange(0, 65536))
    # An opaque dir in a middle lower.
    rel, i = OPAQUE_LOWER
    plan.add(plan.lowers[i], rel, "opaque")
    # The upper: copied-up files, new files, whiteouts, an opaque dir over a merged tree dir.
    for g in range(0, TREE_FILES, 97):
        rel = f"{tree_dir(g)}/file-{g:06d}.{('txt', 'so', 'py', 'conf')[g % 4]}"
        kind = ("file", "whiteout", "file")[g % 3]
        plan.add(plan.upper, rel, kind, 4242)
    for k in range(600):
        plan.add(plan.upper, f"{tree_dir(k * 7)}/new-{k:04d}.log", "file", k)
    plan.add(plan.upper, UPPER_OPAQUE, "opaque")
    # A 0/0 whiteout in a dir that is not merged (an opaque one) is listed by readdir but cannot be
    # stat'ed (OVERLAY-NOTES 2): keep those out so find has nothing to complain about.
    for rel in [r for r, (k, _) in plan.upper.items() if k == "whiteout" and r.startswith(UPPER_OPAQUE + "/")]:
        del plan.upper[rel]
    for k in range(50):
        plan.add(plan.upper, f"{UPPER_OPAQUE}/fresh-{k:02d}", "file", k)
    return plan


def write_layer(root: str, layer: dict[str, tuple[str, int]]) -> None:
    os.makedirs(root, exist_ok=True)
    for rel in sorted(layer):  # parents sort before children
        kind, size = layer[rel]
        path = os.path.join(root, rel)
        if kind in ("dir", "opaque"):
            os.makedirs(path, exist_ok=True)
            if kind == "opaque":
                os.setxattr(path, "trusted.overlay.opaque", b"y")
        elif kind == "file":
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                os.ftruncate(fd, size)  # sparse: sizes are real, no data blocks written
            finally:
                os.close(fd)
        elif kind == "symlink":
            os.symlink(f"../lib/target-{size}", path)
        elif kind == "whiteout":
            os.mknod(path, 0o600 | 0o020000, os.makedev(0, 0))  # S_IFCHR, rdev 0/0
        else:  # pragma: no cover
            raise AssertionError(kind)


@dataclass
class Built:
    root: str
    lowers: list[str]
    upper: str
    work: str
    merged: str
    layer_entries: int


def build_stack(root: str, log: Callable[[str], None]) -> Built:
    lowers = [os.path.join(root, f"lower{i}") for i in range(N_LOWERS)]
    built = Built(
        root, lowers, os.path.join(root, "upper"), os.path.join(root, "work"), os.path.join(root, "merged"), 0
    )
    stamp = os.path.join(root, "STAMP")
    if os.path.exists(stamp):
        with open(stamp) as f:
            info = json.load(f)
        if info.get("spec") == SPEC_VERSION:
            built.layer_entries = int(info["layer_entries"])
            log(f"reusing the stack cached in {root}")
            return built
        log(f"{root} holds an older stack: rebuilding it")
        for name in os.listdir(root):
            shutil.rmtree(os.path.join(root, name), ignore_errors=True)
    t0 = time.perf_counter()
    plan = make_plan()
    for path, layer in zip(lowers, plan.lowers, strict=True):
        write_layer(path, layer)
    write_layer(built.upper, plan.upper)
    os.makedirs(built.work, exist_ok=True)
    os.makedirs(built.merged, exist_ok=True)
    plan_counts = [len(layer) for layer in plan.lowers] + [len(plan.upper)]
    built.layer_entries = sum(plan_counts)
    with open(stamp, "w") as f:
        json.dump({"spec": SPEC_VERSION, "layer_entries": built.layer_entries, "per_layer": plan_counts}, f)
    log(
        f"built the stack in {time.perf_counter() - t0:.1f}s: lowers hold "
        f"{min(plan_counts[:-1]):,}..{max(plan_counts[:-1]):,} entries each, the upper {plan_counts[-1]:,}"
    )
    return built


@contextlib.contextmanager
def mounted(b: Built) -> Iterator[str]:
    opts = f"lowerdir={':'.join(b.lowers)},upperdir={b.upper},workdir={b.work}"
    if os.path.ismount(b.merged):  # left behind by a killed run on a --cache dir
        subprocess.run(["umount", b.merged], capture_output=True)
    r = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", opts, b.merged], capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench: mount -t overlay failed: {r.stderr.strip()}")
    try:
        yield b.merged
    finally:
        if subprocess.run(["umount", b.merged], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", b.merged], capture_output=True)


# ------------------------------------------------------------------ measurements
def cli_argv(b: Built, jobs: int | None = None) -> list[str]:
    script = os.path.join(os.path.dirname(sys.executable), "ufs-tui")
    head = (
        [script]
        if os.access(script, os.X_OK)
        else [sys.executable, "-c", "import sys; from ufs_tui.cli import main; sys.exit(main())"]
    )
    argv = [*head, "tree", "--format", "json", "--lower", ":".join(b.lowers), "--upper", b.upper]
    return argv if jobs is None else [*argv, "-j", str(jobs)]


def find_argv(merged: str) -> list[str]:
    return ["find", merged, "-printf", "%p %y %m %s %l\\n"]


# The benchmark measures the CLI as normally run, so two settings of some shells and CI images are
# removed from the child's environment: PYTHONUNBUFFERED makes the CLI issue one write(2) per line,
# and PYTHONDONTWRITEBYTECODE makes every run compile every module again (an installed package has
# its bytecode). The bytecode goes to a cache dir of the bench's own (PYTHONPYCACHEPREFIX, set by
# main()), filled by the untimed runs before the timed ones.
CHILD_ENV = {k: v for k, v in os.environ.items() if k not in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")}


def timed(argv: list[str], cpu: list[float] | None = None, env: dict[str, str] | None = None) -> float:
    """Wall seconds of one run; its CPU seconds (user + system, its forked workers included) go to ``cpu``."""
    with open(os.devnull, "w") as devnull:
        r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        t0 = time.perf_counter()
        r = subprocess.run(argv, stdout=devnull, stderr=subprocess.PIPE, env=env or CHILD_ENV)
        dt = time.perf_counter() - t0
        r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise SystemExit(f"bench: {argv[0]} failed ({r.returncode}): {r.stderr.decode(errors='replace').strip()}")
    if cpu is not None:
        cpu.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
    return dt


def check_same_tree(b: Built, merged: str) -> tuple[int, int]:
    """Untimed sanity check: the CLI lists exactly the paths find sees through the mount."""
    cli = subprocess.run(cli_argv(b), capture_output=True, check=True, env=CHILD_ENV)
    ours = {json.loads(line)["path"] for line in cli.stdout.splitlines()}
    fnd = subprocess.run(["find", merged, "-mindepth", "1", "-printf", "/%P\\n"], capture_output=True, check=True)
    theirs = {os.fsdecode(p) for p in fnd.stdout.splitlines()}
    if ours != theirs:
        extra, missing = sorted(ours - theirs)[:5], sorted(theirs - ours)[:5]
        raise SystemExit(f"bench: ufs-tui and the kernel disagree: extra {extra}, missing {missing}")
    return len(ours), len(theirs)


def syscall_floor(b: Built) -> float:
    """Seconds for the system calls a layer-reading model cannot avoid, in a bare Python loop.

    Every layer dir is read (``listdir``), and each name's topmost copy gets an ``lstat`` (type, mode,
    size) and, for regular files, a ``listxattr`` (whiteout and metacopy markers). No merging rules,
    no objects, no output: what is left of ``tree --format json`` once all of ufs-tui's own work is
    gone (and without Python's start-up). Informational, to read the ratio against find.
    """
    lstat, listxattr, listdir, isdir = os.lstat, os.listxattr, os.listdir, os.path.isdir
    t0 = time.perf_counter()
    todo = [[b.upper, *b.lowers]]
    while todo:
        srcs = todo.pop()
        top: dict[str, str] = {}
        for src in reversed(srcs):
            try:
                top.update(dict.fromkeys(listdir(src), src))
            except OSError:
                pass
        for name, src in top.items():
            p = src + "/" + name
            m = lstat(p).st_mode
            if m & 0o170000 == 0o100000:
                listxattr(p, follow_symlinks=False)
            elif m & 0o170000 == 0o040000:
                todo.append([q for q in (s + "/" + name for s in srcs) if isdir(q)])
    return time.perf_counter() - t0


def bench_tree(b: Built, merged: str, runs: int, log: Callable[[str], None]) -> dict[str, list[float]]:
    """Interleaved runs (the order turns each time) of the CLI as a user runs it (one worker per CPU), the
    CLI with ``-j 1`` (one process), the CLI with the Python scans (``UFS_TUI_PURE_PYTHON=1``: where the C
    extension is not built) and find; wall and CPU seconds of each, and the syscall floor."""
    pure = CHILD_ENV | {"UFS_TUI_PURE_PYTHON": "1"}
    argvs = {"cli": (cli_argv(b), None), "cli1": (cli_argv(b, 1), None), "clipy": (cli_argv(b), pure)}
    argvs["find"] = (find_argv(merged), None)
    for argv, env in argvs.values():
        timed(argv, env=env)  # warm-up: page cache, dentries, the overlay's own caches, bytecode
    names = list(argvs)
    t: dict[str, list[float]] = {k: [] for k in [*names, *("cpu_" + n for n in names), "floor"]}
    for k in range(runs):
        for name in names[k % len(names) :] + names[: k % len(names)]:
            argv, env = argvs[name]
            t[name].append(timed(argv, t["cpu_" + name], env))
        t["floor"].append(syscall_floor(b))
        log(
            f"  run {k + 1}/{runs}: ufs-tui {t['cli'][-1]:.3f}s  ufs-tui -j1 {t['cli1'][-1]:.3f}s  "
            f"python scans {t['clipy'][-1]:.3f}s  find {t['find'][-1]:.3f}s  floor {t['floor'][-1]:.3f}s"
        )
    return t


def bench_list_dir(stack: Stack, runs: int) -> dict[str, list[float]]:
    """Cold ``list_dir`` of the big dir (ms each), interleaved with the same through dirscan's Python functions
    (``python``), with its syscall floor (``floor``) and with the same calls through dirscan (``scans``);
    ``n``: the entry count."""
    t: dict[str, list[float]] = {"list": [], "python": [], "floor": [], "scans": [], "n": []}
    for k in range(runs):
        for how in ("list", "python") if k % 2 == 0 else ("python", "list"):
            with python_scans(how == "python"):
                view = OverlayView(stack)  # cold view: nothing cached in ufs_tui
                t0 = time.perf_counter()
                entries = view.list_dir("/" + BIG_DIR)
                t[how].append((time.perf_counter() - t0) * 1000)
        t["n"] = [len(entries)]
        t["floor"].append(list_dir_floor(stack) * 1000)
        t["scans"].append(list_dir_scans(stack) * 1000)
    return t


def list_dir_scans(stack: Stack) -> float:
    """Seconds for what :func:`list_dir_floor` times, through dirscan's functions as the listing calls them
    (the C extension's, where it is built): the system calls and the sort, without the listing's own work."""
    t0 = time.perf_counter()
    dirs = [os.path.join(layer.path, BIG_DIR) for layer in stack.layers]
    seen: set[str] = set()
    markers = _marker_xattr_bytes(stack.xattr_ns)
    for d, listing in zip(dirs, dirscan.read_dirs(dirs), strict=True):
        if isinstance(listing, dict):
            dirscan.marked_files(d, listing, seen or None, markers)
            seen.update(listing)
    sorted(seen)
    return time.perf_counter() - t0


@contextlib.contextmanager
def python_scans(on: bool) -> Iterator[None]:
    """dirscan's Python functions in place of the C extension's, while inside (``on``)."""
    names = ("read_dirs", "marked_files", "stat_files")
    saved = {n: getattr(dirscan, n) for n in names}
    if on:
        for n in names:
            setattr(dirscan, n, getattr(dirscan, "py_" + n))
    try:
        yield
    finally:
        for n, f in saved.items():
            setattr(dirscan, n, f)


def list_dir_floor(stack: Stack) -> float:
    """Seconds for the system calls a listing of the big dir cannot avoid, in a bare Python loop: a readdir
    (with d_type) of each layer's copy of the dir, a ``listxattr`` of each name's topmost copy if it is a regular
    file (a whiteout, metacopy or redirect marker may sit there), and the sort. No objects, no rules."""
    t0 = time.perf_counter()
    top: dict[str, os.DirEntry[str]] = {}
    for layer in reversed(stack.layers):
        try:
            with os.scandir(os.path.join(layer.path, BIG_DIR)) as it:
                top.update((de.name, de) for de in it)
        except FileNotFoundError:
            pass
    for de in top.values():
        if de.is_file(follow_symlinks=False):
            os.listxattr(de.path, follow_symlinks=False)
    sorted(top)
    return time.perf_counter() - t0


def bench_memory_tracemalloc(stack: Stack) -> tuple[int, int]:
    """Bytes still allocated after ``held = list(view.walk())``, from tracemalloc, and the entry count."""
    import gc

    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    view = OverlayView(stack)
    held = list(view.walk())
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    n = len(held)
    del held, view
    return after - before, n


RSS_CHILD = r"""
import gc, json, sys
sys.path.insert(0, sys.argv[1])
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
def rss():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0
stack = Stack.build(sys.argv[2].split(":"), upper=sys.argv[3])
OverlayView(stack).list_dir("/")  # imports and first-use allocations happen before the baseline
gc.collect()
r0 = rss()
view = OverlayView(stack)
held = list(view.walk())
gc.collect()
print(json.dumps({"delta": rss() - r0, "n": len(held)}))
"""


def bench_memory_rss(b: Built) -> tuple[int, int]:
    """RSS growth of a fresh process across ``held = list(view.walk())`` (no tracemalloc overhead)."""
    r = subprocess.run(
        [sys.executable, "-c", RSS_CHILD, REPO, ":".join(b.lowers), b.upper], capture_output=True, text=True, check=True
    )
    got = json.loads(r.stdout)
    return int(got["delta"]), int(got["n"])


# ------------------------------------------------------------------ report
def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="bench.bench_core", description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="interleaved runs of ufs-tui and find (default 5)")
    ap.add_argument("--list-runs", type=int, default=9, help="cold list_dir runs (default 9)")
    ap.add_argument("--cache", metavar="DIR", help="build the layers in DIR and keep them for the next run")
    ap.add_argument("--json", action="store_true", help="also print the figures as one JSON object")
    args = ap.parse_args(argv)

    if os.geteuid() != 0:
        print(
            "bench: needs root (it mounts an overlay); run it as root, e.g. sudo .venv/bin/python -m bench.bench_core",
            file=sys.stderr,
        )
        return 2
    if shutil.which("find") is None:
        print("bench: GNU find is needed", file=sys.stderr)
        return 2

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    def on_term(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_term)
    root = os.path.abspath(args.cache) if args.cache else tempfile.mkdtemp(prefix="ufs-bench-")
    os.makedirs(root, exist_ok=True)
    CHILD_ENV["PYTHONPYCACHEPREFIX"] = os.path.join(root, "pycache")
    t_start = time.perf_counter()
    load0 = " ".join(f"{x:.2f}" for x in os.getloadavg())
    try:
        b = build_stack(root, log)
        stack = Stack.build(b.lowers, upper=b.upper)
        with mounted(b) as merged:
            n_ours, n_kernel = check_same_tree(b, merged)
            log(f"ufs-tui and the kernel agree on all {n_ours:,} merged entries")
            t = bench_tree(b, merged, args.runs, log)
            t_cli, t_find, t_floor = t["cli"], t["find"], t["floor"]
        lt = bench_list_dir(stack, args.list_runs)
        list_ms, list_floor_ms, n_big = lt["list"], lt["floor"], int(lt["n"][0])
        tm_bytes, n_walk = bench_memory_tracemalloc(stack)
        rss_bytes, n_rss = bench_memory_rss(b)
    except KeyboardInterrupt:
        log("bench: interrupted; cleaning up")
        return 130
    finally:
        if not args.cache:
            shutil.rmtree(root, ignore_errors=True)

    med_cli, med_find = statistics.median(t_cli), statistics.median(t_find)
    ratio = med_cli / med_find
    med_floor = statistics.median(t_floor)
    med_list = statistics.median(list_ms)
    per_entry = tm_bytes / n_walk
    per_entry_rss = rss_bytes / n_rss
    print()
    print(
        f"stack: {N_LOWERS} lowers + upper, {b.layer_entries:,} layer entries, {n_kernel:,} merged entries "
        f"(identical to the kernel's)"
    )
    scans = "the C extension (ufs_tui/core/model/_dirscan.c)" if dirscan.IMPLEMENTATION == "c" else "Python"
    print(f"layer dir scans: {scans}")
    print(f"{'measure':<62} {'value':>14}  {'target':>10}  result")
    print("-" * 98)
    rows = [
        (f"ufs-tui tree --format json (median of {len(t_cli)})", f"{med_cli * 1000:,.0f} ms", "", ""),
        (f"find MERGED -printf ... (median of {len(t_find)})", f"{med_find * 1000:,.0f} ms", "", ""),
        ("  ratio ufs-tui / find", f"{ratio:.2f}x", f"<= {TARGET_RATIO}x", verdict(ratio <= TARGET_RATIO)),
        (
            f"  CPU time (user + sys, workers included): ufs-tui / find ({os.cpu_count()} CPUs)",
            f"{statistics.median(t['cpu_cli']) / statistics.median(t['cpu_find']):.2f}x",
            "",
            "",
        ),
        (
            "  ufs-tui tree -j 1 (one process) / find",
            f"{statistics.median(t['cli1']) / med_find:.2f}x",
            "",
            "",
        ),
        (
            "  ufs-tui tree with the Python scans (UFS_TUI_PURE_PYTHON=1) / find",
            f"{statistics.median(t['clipy']) / med_find:.2f}x",
            "",
            "",
        ),
        (
            f"  syscall floor in bare Python / find (median of {len(t_floor)})",
            f"{med_floor / med_find:.2f}x",
            "",
            "",
        ),
        (
            "  per merged entry: ufs-tui / find",
            f"{med_cli / n_kernel * 1e6:.1f} / {med_find / n_kernel * 1e6:.1f} us",
            "",
            "",
        ),
        (
            f"list_dir('/{BIG_DIR}'), {n_big:,} entries, cold view (median of {len(list_ms)})",
            f"{med_list:.1f} ms",
            f"<= {TARGET_LIST_MS:.0f} ms",
            verdict(med_list <= TARGET_LIST_MS),
        ),
        (
            f"  the same with the Python scans (median of {len(lt['python'])})",
            f"{statistics.median(lt['python']):.1f} ms",
            "",
            "",
        ),
        (
            f"  its syscall floor in bare Python (median of {len(list_floor_ms)})",
            f"{statistics.median(list_floor_ms):.1f} ms",
            "",
            "",
        ),
        (
            f"  the same system calls through dirscan ({dirscan.IMPLEMENTATION}) (median of {len(lt['scans'])})",
            f"{statistics.median(lt['scans']):.1f} ms",
            "",
            "",
        ),
        (
            f"memory of list(view.walk()), {n_walk:,} entries (tracemalloc)",
            f"{per_entry:.0f} B/entry",
            f"<= {TARGET_BYTES:.0f} B",
            verdict(per_entry <= TARGET_BYTES),
        ),
        (
            "  same, RSS delta in a fresh process",
            f"{per_entry_rss:.0f} B/entry",
            f"<= {TARGET_BYTES:.0f} B",
            verdict(per_entry_rss <= TARGET_BYTES),
        ),
    ]
    for name, value, target, result in rows:
        print(f"{name:<62} {value:>14}  {target:>10}  {result}")
    print("-" * 98)
    print(f"ufs-tui runs (s): {' '.join(f'{t:.3f}' for t in t_cli)}")
    print(f"ufs-tui -j1 (s):  {' '.join(f'{x:.3f}' for x in t['cli1'])}")
    print(f"Python scans (s): {' '.join(f'{x:.3f}' for x in t['clipy'])}")
    print(f"find runs (s):    {' '.join(f'{t:.3f}' for t in t_find)}")
    print(f"floor runs (s):   {' '.join(f'{t:.3f}' for t in t_floor)}")
    print(f"list_dir runs (ms): {' '.join(f'{t:.1f}' for t in list_ms)}")
    print(f"Python scans (ms):  {' '.join(f'{t:.1f}' for t in lt['python'])}")
    print(f"its floor (ms):     {' '.join(f'{t:.1f}' for t in list_floor_ms)}")
    print(f"through dirscan:    {' '.join(f'{t:.1f}' for t in lt['scans'])}")
    print(
        f"total bench time {time.perf_counter() - t_start:.0f}s; load average {load0} at start, "
        f"{' '.join(f'{x:.2f}' for x in os.getloadavg())} at the end ({os.cpu_count()} CPUs)"
    )
    if args.json:
        print(
            json.dumps(
                {
                    "merged_entries": n_kernel,
                    "layer_entries": b.layer_entries,
                    "tree_s": t_cli,
                    "find_s": t_find,
                    "floor_s": t_floor,
                    "tree_j1_s": t["cli1"],
                    "tree_python_scans_s": t["clipy"],
                    "scans": dirscan.IMPLEMENTATION,
                    "tree_cpu_s": t["cpu_cli"],
                    "find_cpu_s": t["cpu_find"],
                    "ratio": ratio,
                    "list_dir_ms": list_ms,
                    "list_dir_floor_ms": list_floor_ms,
                    "list_dir_python_scans_ms": lt["python"],
                    "list_dir_dirscan_calls_ms": lt["scans"],
                    "list_dir_entries": n_big,
                    "bytes_per_entry_tracemalloc": per_entry,
                    "bytes_per_entry_rss": per_entry_rss,
                }
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
