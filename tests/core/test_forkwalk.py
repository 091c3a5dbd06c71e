"""The forked walk (ufs_tui/core/reports/forkwalk.py) writes what the serial walk writes, byte for byte, and cleans up.

The stacks are real layer trees on disk with every marker the kernel knows; "serial" is
``report.write_tree_json(jobs=1)``, which walks with :meth:`OverlayView.walk`.
"""

from __future__ import annotations

import io
import os
import shutil
import signal
import stat
import subprocess
import sys

import pytest

from tests import nobody
from tests.conftest import need
from tests.core.test_cli import REPO
from ufs_tui.core.model.merge import Entry, OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.reports import forkwalk
from ufs_tui.core.reports import tree as report

ODD_NAMES = ["new\nline", "[red]markup[bold]", "esc\x1b]0;PWNED\x07", "sp ace", "\udcff\udcfe-not-utf8", "ü"]


def _file(path: str, data: bytes = b"x", mode: int = 0o644) -> None:
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)


def _whiteout(path: str) -> None:
    if os.path.isdir(path):
        shutil.rmtree(path)
    elif os.path.lexists(path):
        os.unlink(path)
    os.mknod(path, stat.S_IFCHR | 0o600, 0)


def build_stack(root: str, dirs: int = 20, files: int = 20) -> Stack:
    """Three lowers and an upper: nested merged dirs, copies in several layers, odd names, and the markers
    (0/0 and xattr whiteouts, opaque dirs, a redirect, a metacopy file) in lowers and the upper."""
    need(os.geteuid() == 0, "needs root for whiteout device nodes and trusted.* xattrs")
    layers = [os.path.join(root, n) for n in ("l0", "l1", "l2", "upper")]
    for n, layer in enumerate(layers):
        os.makedirs(layer)
        for d in range(dirs):
            sub = os.path.join(layer, f"d{d:02d}", f"s{d % 3}")
            os.makedirs(sub, exist_ok=True)
            for f in range(files):
                if (d + f + n) % 4 == 0:  # each name in some layers only
                    _file(os.path.join(sub, f"f{f:02d}"), b"v" * (n + f), 0o600 + n)
            if (d + n) % 3 == 0:
                os.symlink(f"../target-{n}", os.path.join(sub, "link"))
    l0, l1, l2, upper = layers
    for name in ODD_NAMES:
        _file(os.path.join(os.fsencode(l1), os.fsencode(name)))
        os.makedirs(os.path.join(os.fsencode(l2), b"odd", os.fsencode(name)))
    os.mkfifo(os.path.join(l2, "fifo"))
    _whiteout(os.path.join(l0, "d01", "s1", "f01"))  # in a lower, over l1's and l2's copies
    _whiteout(os.path.join(upper, "d02"))  # the upper deletes a whole merged dir
    _file(os.path.join(upper, "d03", "s0", "f03"), b"")
    os.setxattr(os.path.join(upper, "d03", "s0", "f03"), "trusted.overlay.whiteout", b"")  # xattr whiteout
    os.setxattr(os.path.join(l1, "d04"), "trusted.overlay.opaque", b"y")  # hides l2's d04
    os.setxattr(os.path.join(upper, "d05", "s2"), "trusted.overlay.opaque", b"y")
    os.rename(os.path.join(upper, "d06"), os.path.join(upper, "moved"))  # a renamed dir: redirect + whiteout
    os.setxattr(os.path.join(upper, "moved"), "trusted.overlay.redirect", b"d06")
    _whiteout(os.path.join(upper, "d06"))
    meta = os.path.join(upper, "d07", "s1", "f12")  # l1 holds the data (13 bytes)
    _file(meta, b"")
    os.truncate(meta, 13)
    os.setxattr(meta, "trusted.overlay.metacopy", b"")
    return Stack.build([l0, l1, l2], upper=upper, options=("redirect_dir=on", "metacopy=on"))


def serial(stack: Stack) -> tuple[bytes, dict[str, str]]:
    view = OverlayView(stack)
    out = io.StringIO()
    report.write_tree_json(view, out, jobs=1)
    return out.getvalue().encode(), view.errors


def forked(stack: Stack, jobs: int, budget: int = 40) -> tuple[bytes, dict[str, str], int]:
    """The forked walk's output, errors and tasks; past ``budget`` entries listed it forks (a small one: these
    trees are smaller than the default)."""
    view = OverlayView(stack)
    out = io.BytesIO()
    tasks = forkwalk.write_walk(view, report.JsonLines().line, out.write, jobs, budget)
    return out.getvalue(), view.errors, tasks


def children() -> set[int]:
    """Live child processes of this one (not zombies)."""
    me = str(os.getpid())
    found = set()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if fields[1] == me and fields[0] != "Z":
            found.add(int(pid))
    return found


@pytest.mark.parametrize("jobs", [2, 3, 5])
def test_forked_walk_writes_what_the_serial_walk_writes(tmp_layers: str, jobs: int) -> None:
    stack = build_stack(tmp_layers)
    want, want_errors = serial(stack)
    assert want.count(b"\n") > 250 and b'"status":"metacopy"' in want and b'"redirect":' in want
    before = children()
    got, errors, tasks = forked(stack, jobs)
    assert got == want
    assert errors == want_errors == {}
    assert tasks >= 2  # the work was shared: an idle worker got a dir given away
    assert children() == before  # every worker reaped


@pytest.mark.parametrize("jobs", [2, 4])
def test_holding_little_ahead_of_the_output_still_walks_it_all(tmp_layers: str, jobs: int) -> None:
    stack = build_stack(tmp_layers)
    want = serial(stack)[0]
    view = OverlayView(stack)
    out = io.BytesIO()
    tasks = forkwalk.write_walk(view, report.JsonLines().line, out.write, jobs, budget=40, hold=1)
    assert out.getvalue() == want and tasks >= 1


@pytest.mark.parametrize("budget", [1, 2, 3, 7, 20, 100, 10_000])
def test_the_walk_goes_on_in_a_worker_wherever_the_budget_stops_it(tmp_layers: str, budget: int) -> None:
    stack = build_stack(tmp_layers)
    want = serial(stack)[0]
    got, _, tasks = forked(stack, 2, budget)
    assert got == want
    assert (tasks == 0) == (budget == 10_000)  # this tree is about 1,000 entries: the walk stayed here


def test_a_small_tree_is_walked_here(tmp_layers: str) -> None:
    stack = build_stack(tmp_layers, dirs=8, files=5)
    view = OverlayView(stack)
    out = io.BytesIO()
    assert forkwalk.write_walk(view, report.JsonLines().line, out.write, 4) == 0  # the default budget
    assert out.getvalue() == serial(stack)[0]


def test_a_failing_worker_raises_here_and_every_worker_is_reaped(tmp_layers: str) -> None:
    stack = build_stack(tmp_layers)
    parent = os.getpid()
    line = report.JsonLines().line

    def breaks_in_a_worker(path: str, e: Entry) -> str:
        if os.getpid() != parent and path.endswith("/f07"):
            raise ValueError("broken on purpose")
        return line(path, e)

    before = children()
    with pytest.raises(RuntimeError, match="broken on purpose"):
        forkwalk.write_walk(OverlayView(stack), breaks_in_a_worker, io.BytesIO().write, 3, 40)
    assert children() == before


def _start_big_walk(root: str, stderr: int) -> subprocess.Popen[bytes]:
    """``tree --format json -j 3`` of a tree of some 5,000 entries (past the budget: it forks), read until the
    workers run."""
    stack = build_stack(root, dirs=60, files=80)
    argv = [sys.executable, "-m", "ufs_tui", "tree", "--format", "json", "-j", "3", *_stack_args(stack)]
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=stderr, cwd=REPO)
    assert p.stdout is not None
    for _ in range(forkwalk.BUDGET + 500):  # what the walk writes before it forks, and then some
        assert p.stdout.readline()
    return p


def test_a_closed_stdout_ends_the_walk_quietly(tmp_layers: str) -> None:
    p = _start_big_walk(tmp_layers, subprocess.PIPE)
    assert p.stdout is not None and p.stderr is not None
    p.stdout.close()  # like `| head`
    err = p.stderr.read()
    assert p.wait(timeout=60) == 0, err
    assert b"Traceback" not in err and b"Exception" not in err, err
    assert not _processes_with(tmp_layers), "a walk worker outlived the command"


def test_sigterm_takes_the_workers_along(tmp_layers: str) -> None:
    p = _start_big_walk(tmp_layers, subprocess.DEVNULL)
    assert p.stdout is not None
    p.send_signal(signal.SIGTERM)  # it waits on us (the pipe is full), its workers on it
    assert p.wait(timeout=60) == -signal.SIGTERM  # the workers ended, then the signal was taken as before
    p.stdout.close()
    assert not _processes_with(tmp_layers), "a walk worker outlived the command"


def test_unreadable_dirs_warn_as_the_serial_walk_does(shared_tmp: str) -> None:
    low = os.path.join(shared_tmp, "low")
    for d in range(8):
        for s in range(3):
            os.makedirs(os.path.join(low, f"d{d}", f"s{s}"))
            _file(os.path.join(low, f"d{d}", f"s{s}", "f"))
    for locked in ("d1", "d3/s2", "d6/s0", "d7"):
        os.chmod(os.path.join(low, locked), 0o000)
    runs = {
        jobs: nobody.run("-m", "ufs_tui", "tree", "--format", "json", "-j", jobs, "--lower", low, timeout=60)
        for jobs in ("1", "4")
    }
    one, four = runs["1"], runs["4"]
    assert one.returncode == four.returncode == 1
    assert four.stdout == one.stdout and four.stderr == one.stderr
    assert one.stderr.count(b"warning:") == 4 and b"Traceback" not in one.stderr


@pytest.mark.parametrize("bad", ["0", "-2", "many"])
def test_jobs_must_be_a_positive_number(tmp_path: object, bad: str) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ufs_tui", "tree", "--lower", str(tmp_path), "-j", bad],
        capture_output=True,
        timeout=60,
        cwd=REPO,
    )
    assert r.returncode == 2 and b"Traceback" not in r.stderr
    assert b"--jobs" in r.stderr and (b"must be 1 or more" in r.stderr or b"not a whole number" in r.stderr)


def _stack_args(stack: Stack) -> list[str]:
    assert stack.upper is not None
    return ["--lower", ":".join(layer.path for layer in stack.lowers), "--upper", stack.upper.path]


def _processes_with(text: str) -> list[int]:
    """Processes whose command line holds ``text`` (a worker is a fork: it has its parent's)."""
    found = []
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        found.append(int(pid))
            except OSError:
                pass
    return found


@pytest.mark.parametrize("nproc", [1, 2])
def test_when_fork_fails_the_walk_goes_on_with_the_workers_there_are(shared_tmp: str, nproc: int) -> None:
    low = os.path.join(shared_tmp, "low")
    for d in range(40):
        os.makedirs(os.path.join(low, f"d{d:02d}"))
        for f in range(80):
            _file(os.path.join(low, f"d{d:02d}", f"f{f:02d}"))
    args = ["tree", "--format", "json", "--lower", low]
    one = nobody.run("-m", "ufs_tui", *args, "-j", "1")
    # As uid 65534 (no other process of its own) with at most `nproc` processes: the first fork (nproc 1)
    # or the second (2) fails with EAGAIN.
    capped = (
        f"import resource, sys; resource.setrlimit(resource.RLIMIT_NPROC, ({nproc}, {nproc})); "
        f"from ufs_tui.cli import main; sys.exit(main({[*args, '-j', '3']!r}))"
    )
    r = nobody.run("-c", capped, timeout=60)
    assert one.returncode == 0 and one.stdout.count(b"\n") == 40 * 81
    assert r.returncode == 0 and r.stdout == one.stdout and r.stderr == b"", r.stderr
