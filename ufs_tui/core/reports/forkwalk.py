"""A one-pass walk of the merged tree spread over forked worker processes: the same lines, in the same order.

``tree --format json`` spends its time in system calls on the layers (an ``lstat`` per
name, a ``listxattr`` per file, a readdir per layer dir) and in Python per entry, one
core's worth. Here the walk starts in this process; a small tree ends here. Past a
budget, ``jobs`` workers are forked: the first goes on with the walk, and each worker,
while another one is idle, gives a pending subdir away as a new task (the shallowest
one it has not reached: the biggest share), leaving a *hole* in its lines where that
subdir's lines go. This process hands out the tasks, stitches the pieces together in
tree order as they arrive, and writes them.

Workers only read the layers, as the serial walk does. Tasks and results travel as
marshal frames over pipes. Whatever happens here (an error, a closed stdout, Ctrl-C,
SIGTERM, SIGHUP), the workers are ended and reaped before this returns; if this process
is killed outright, they end at their next write to it or read from it.
"""

from __future__ import annotations

import functools
import gc
import marshal
import mmap
import os
import selectors
import signal
import struct
import threading
from collections import deque
from collections.abc import Callable
from typing import Any

from ..model.errors import StackError
from ..model.merge import Entry, OverlayView, Source

Line = Callable[[str, Entry], str]  # (merged path, entry) -> its output line, newline included
Write = Callable[[bytes], object]
Key = tuple[int, ...]  # a task's place in the tree: its parent task's key + (n,) for the n-th dir it gave away
# A walk's output: lines (encoded), a hole (the key of the task whose output goes there), or [real dir, problem]
# (a dir that could not be read, where the serial walk would have recorded it in OverlayView.errors).
Segment = bytes | Key | list[str]
_HEADER = struct.Struct("<Q")
CHUNK = 2048  # lines a walk gathers before it passes them on
BUDGET = 2000  # entries a walk lists in this process before it forks
HOLD = 256 << 20  # bytes of lines received ahead of the output, past which workers share no more dirs
_SIGNALS = (signal.SIGTERM, signal.SIGHUP)


def default_jobs() -> int:
    """Workers for a walk: the CPUs this process may run on, at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):  # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


def can_fork(view: OverlayView) -> bool:
    """Whether a walk of ``view`` may be forked: its layers are dirs on disk (an image archive's reader
    keeps one file offset, which forked readers would share) and no other thread runs here (a fork
    copies only the calling thread)."""
    return (
        hasattr(os, "fork")
        and all(layer.fs is None for layer in view.stack.all_layers)
        and threading.active_count() == 1
    )


class _Walk:
    """One task's walk: the pre-order lines of a dir's contents, with a hole for each subdir given away."""

    def __init__(self, view: OverlayView, line: Line, key: Key, path: str, sources: tuple[Source, ...]) -> None:
        self.view = view
        self.line = line
        self.key = key
        self.segments: list[Segment] = []
        self._buf: list[str] = []
        self._given: dict[int, Key] = {}  # id(dir entry) -> the key of the task it became
        self._kids = 0
        self._stopped_at: Entry | None = None  # the dir a budgeted run stopped before opening
        self._scanned = 0  # entries listed so far (what a budget counts)
        # per open dir: [its entries, the next one to walk, the next one to look at for a dir to give away]
        self._stack: list[list[Any]] = [[self._scan(path, sources), 0, 0]]

    def _scan(self, path: str, sources: tuple[Source, ...]) -> list[Entry]:
        """The listing of one dir; a layer dir that cannot be read goes into the segments, where the serial walk
        records it in ``errors``."""
        errors = self.view.errors
        n_errors = len(errors)
        try:
            entries = self.view.scan_dir(path, sources, eager=True)
        except StackError as err:
            errors.setdefault(path, err.problem)
            entries = []
        if len(errors) != n_errors:
            self._flush()
            self.segments.extend([real, problem] for real, problem in list(errors.items())[n_errors:])
        self._scanned += len(entries)
        return entries

    def run(
        self,
        emit: Callable[[list[Segment]], None],
        hungry: mmap.mmap | None = None,
        give: Callable[[Key, Entry], None] | None = None,
        budget: int = 0,
    ) -> bool:
        """Walk on, passing the segments to ``emit`` every :data:`CHUNK` lines and when it stops. Before opening a
        dir: give one away through ``give`` if ``hungry[0]`` says a worker is idle; with a ``budget``, stop (False)
        if the dir would take the entries listed past it (a run later goes on from there). True at the end."""
        line, given = self.line, self._given
        buf = self._buf
        add = buf.append
        stack = self._stack
        if self._stopped_at is not None:
            e, self._stopped_at = self._stopped_at, None
            self._open(e, hungry, give)
        while stack:
            if len(buf) >= CHUNK:
                self._pass_on(emit)
            level = stack[-1]
            entries, i = level[0], level[1]
            if i >= len(entries):
                stack.pop()
                continue
            level[1] = i + 1
            e = entries[i]
            add(line(e.path, e))
            more = e._more  # what Entry.sources reads (a dir's sources), without a property call per entry
            if more.__class__ is not tuple or more[1] is None or e._cls[0] != "dir":
                continue
            if given:
                key = given.pop(id(e), None)
                if key is not None:
                    self._hole(key)
                    continue
            if budget and self._scanned + _guess_entries(more[1]) > budget:
                self._stopped_at = e
                self._pass_on(emit)
                return False
            self._open(e, hungry, give)
        self._pass_on(emit)
        return True

    def _pass_on(self, emit: Callable[[list[Segment]], None]) -> None:
        self._flush()
        emit(self.segments)
        self.segments = []

    def _open(self, e: Entry, hungry: mmap.mmap | None, give: Callable[[Key, Entry], None] | None) -> None:
        """Walk into dir ``e`` next, after giving another dir away if a worker waits for one."""
        if give is not None and hungry is not None and hungry[0]:
            self._give_one(give)
        assert e.sources is not None
        self._stack.append([self._scan(e.path, e.sources), 0, 0])

    def _give_one(self, give: Callable[[Key, Entry], None]) -> None:
        for level in self._stack:  # shallowest first: the biggest share of what is left
            entries = level[0]
            j = max(level[1], level[2])
            while j < len(entries):
                e = entries[j]
                j += 1
                if e.sources is not None and e.kind == "dir":
                    level[2] = j
                    key = self.key + (self._kids,)
                    self._kids += 1
                    self._given[id(e)] = key
                    give(key, e)
                    return
            level[2] = j

    def _hole(self, key: Key) -> None:
        self._flush()
        self.segments.append(key)

    def _flush(self) -> None:
        if self._buf:
            self.segments.append("".join(self._buf).encode("utf-8", "surrogateescape"))
            self._buf.clear()


def write_walk(view: OverlayView, line: Line, write: Write, jobs: int, budget: int = 0, hold: int = HOLD) -> int:
    """``write`` the ``line`` of every entry (UTF-8) below the root of ``view``, in :meth:`OverlayView.walk` order,
    with up to ``jobs`` forked workers; how many tasks they took (0: the walk stayed in this process). Unreadable
    dirs land in ``view.errors`` in walk order.

    The walk starts here, and a tree of up to ``budget`` entries (default :data:`BUDGET`) ends here too (a fork
    costs more). Past that, the first worker goes on with the walk (it has it: a fork copies it) and gives dirs
    away to the others. Lines of later dirs wait here for those before them; past ``hold`` bytes of them, the
    workers share no more dirs (each walks on by itself).
    """
    here = functools.partial(_write_segments, view, write=write)
    walk = _Walk(view, line, (), "/", view.dir_sources("/"))
    if walk.run(here, budget=(budget or BUDGET) if jobs > 1 else 0):
        return 0
    layers = view.stack.all_layers
    index = {id(layer): i for i, layer in enumerate(layers)}
    # SIGTERM or SIGHUP (a closed SSH session) while the workers run: end them, then take the signal as before.
    caught: list[int] = []

    def stop(signum: int, frame: object) -> None:
        raise _Signalled(signum)

    before = {sig: signal.signal(sig, stop) for sig in _SIGNALS}
    done = False
    pool: _Pool | None = None
    try:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # not while forking: a worker could be missed
        try:
            pool = _Pool(view, line, jobs, layers, index, walk, hold)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        if pool.pids:
            pool.run(walk.key, write)
        else:  # no worker could be forked: the walk goes on here
            walk.run(here)
        done = True
    except _Signalled as s:
        caught.append(s.signum)
    finally:
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, _SIGNALS)  # one now waits till the workers are gone
        try:
            if pool is not None:
                pool.close(kill=not done)
        finally:
            for sig, handler in before.items():
                signal.signal(sig, handler)
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    for signum in caught:
        signal.raise_signal(signum)
    return pool.tasks if pool is not None else 0


def _guess_entries(sources: tuple[Source, ...]) -> int:
    """About how many entries the layer dirs ``sources`` hold, from their sizes (ext4 and tmpfs grow a dir
    by some 20-30 bytes an entry; a small ext4 dir is one 4 KiB block): only to decide whether to fork."""
    n = 0
    for _, real in sources:
        try:
            n += 16 + max(0, os.lstat(real).st_size - 4096) // 24
        except OSError:
            pass
    return n


class _Signalled(BaseException):
    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def _write_segments(view: OverlayView, segments: list[Segment], write: Write) -> None:
    """Write lines, record errors: for segments without holes (a walk that gave nothing away)."""
    for seg in segments:
        if isinstance(seg, bytes):
            write(seg)
        elif isinstance(seg, list):
            view.errors[seg[0]] = seg[1]


def _wire_sources(index: dict[int, int], sources: tuple[tuple[Any, str], ...]) -> tuple[tuple[int, str], ...]:
    return tuple((index[id(layer)], real) for layer, real in sources)


class _Pool:
    """The forked workers, their pipes, and the stitching of their output."""

    def __init__(
        self,
        view: OverlayView,
        line: Line,
        jobs: int,
        layers: tuple[Any, ...],
        index: dict[int, int],
        walk: _Walk,
        hold: int,
    ) -> None:
        """Fork ``jobs`` workers; the first goes on with ``walk`` (stopped by its budget), the others wait. Past
        ``hold`` bytes of lines received and not yet written (lines come out in tree order: those of later dirs
        wait here), workers are asked for no more dirs to share."""
        self.view = view
        self.hold = hold
        self.hungry = mmap.mmap(-1, 1)  # shared with the workers: how many of them wait for a task
        self.hungry[0] = min(jobs - 1, 255)
        self.tasks = 0  # handed out so far
        self.pids: list[int] = []
        self.task_fds: list[int] = []  # parent -> worker
        self.result_fds: list[int] = []  # worker -> parent
        for n in range(jobs):
            fds: list[int] = []
            try:
                fds.extend(os.pipe())
                fds.extend(os.pipe())
                task_r, task_w, result_r, result_w = fds
                pid = os.fork()
            except OSError:  # out of processes, memory or fds: go on with the workers there are
                for fd in fds:
                    os.close(fd)
                break
            if pid == 0:  # the worker
                code = 1
                try:
                    # A worker makes no reference cycles, and lives for one walk: no collector passes over
                    # the heap it shares with this process (each would touch, so copy, its pages).
                    gc.disable()
                    for sig in (signal.SIGINT, *_SIGNALS):
                        signal.signal(sig, signal.SIG_DFL)
                    signal.pthread_sigmask(signal.SIG_UNBLOCK, _SIGNALS)
                    for fd in (task_w, result_r, *self.task_fds, *self.result_fds):
                        os.close(fd)  # another worker's pipe held open here would never see its end
                    try:
                        _serve(view, line, task_r, result_w, self.hungry, layers, index, walk if n == 0 else None)
                        code = 0
                    except Exception:  # noqa: BLE001 - told to the parent, which raises it there
                        import traceback

                        _send(result_w, ("E", traceback.format_exc()))
                finally:
                    os._exit(code)
            os.close(task_r)
            os.close(result_w)
            self.pids.append(pid)
            self.task_fds.append(task_w)
            self.result_fds.append(result_r)
        self.hungry[0] = min(max(len(self.pids) - 1, 0), 255)
        self.tasks = 1 if self.pids else 0  # the walk the first worker goes on with

    def run(self, key: Key, write: Write) -> None:
        """Write the lines of the walk of ``key`` (the first worker's) in tree order, with those of the tasks it
        leads to, handed out as they come."""
        view, hungry, hold = self.view, self.hungry, self.hold
        queue: deque[bytes] = deque()  # marshalled (key, path, wire sources) of tasks not handed out
        held = 0  # bytes of lines received and not yet written
        idle = deque(range(1, len(self.pids)))
        # key -> [segments so far, done]; a task's entry goes once its output is written
        results: dict[Key, list[Any]] = {}
        worker_of = {fd: w for w, fd in enumerate(self.result_fds)}
        inbox = {fd: bytearray() for fd in self.result_fds}
        sel = selectors.DefaultSelector()
        for fd in self.result_fds:
            sel.register(fd, selectors.EVENT_READ)
        cursor: list[list[Any]] = [[key, 0]]  # the output still to write: per open task, (key, next segment)

        def dispatch() -> None:
            sends = []
            while queue and idle:
                sends.append((idle.popleft(), queue.popleft()))
            # Before the tasks go (their workers read it): ask for more only with no task waiting, and while
            # what is held here for later in the output is not too much (a worker then walks its dir itself).
            hungry[0] = 0 if queue or held > hold else min(len(idle), 255)
            for w, task in sends:
                _write_all(self.task_fds[w], _frame(task))
                self.tasks += 1

        def write_some() -> bool:
            """Write what has arrived, in tree order, a few segments at a time (the workers wait on us for
            tasks); True if more is ready."""
            nonlocal held
            budget = 8
            while cursor:
                level = cursor[-1]
                got = results.get(level[0])
                if got is None:
                    return False
                segs, i = got[0], level[1]
                if i == len(segs):
                    if not got[1]:
                        return False  # not done yet
                    del results[level[0]]
                    cursor.pop()
                    continue
                if budget == 0:
                    return True
                budget -= 1
                seg = segs[i]
                segs[i] = None  # written: let it go
                level[1] = i + 1
                if isinstance(seg, tuple):
                    cursor.append([seg, 0])
                elif isinstance(seg, bytes):
                    write(seg)
                    held -= len(seg)
                else:
                    view.errors[seg[0]] = seg[1]
            return False

        dispatch()
        try:
            while True:
                more = write_some()
                if not cursor:
                    if results or queue or len(idle) != len(self.pids):  # a task no hole asked for: a bug
                        raise RuntimeError("walk: a task's output was never written")
                    return
                for sk, _ in sel.select(0 if more else None):
                    fd = int(sk.fd)
                    chunk = os.read(fd, 1 << 20)
                    if not chunk:
                        raise RuntimeError("a walk worker exited before its task was done")
                    box = inbox[fd]
                    box += chunk
                    for msg in _frames(box):
                        kind = msg[0]
                        if kind == "P":  # more of a task's output: (key, segments)
                            held += sum(len(seg) for seg in msg[2] if isinstance(seg, bytes))
                            got = results.get(msg[1])
                            if got is None:
                                results[msg[1]] = [msg[2], False]
                            else:
                                got[0].extend(msg[2])
                        elif kind == "T":  # a dir given away: a new task
                            queue.append(marshal.dumps(msg[1:]))
                        elif kind == "D":  # a task done: (key,)
                            results.setdefault(msg[1], [[], False])[1] = True
                            idle.append(worker_of[fd])
                        else:
                            raise RuntimeError("a walk worker failed:\n" + msg[1])
                dispatch()
        finally:
            sel.close()

    def close(self, kill: bool) -> None:
        """End the workers (they exit when their task pipe closes; ``kill``: at once) and reap them."""
        for fd in self.task_fds + self.result_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        for pid in self.pids:
            if kill:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:  # pragma: no cover - already gone
                    pass
            os.waitpid(pid, 0)
        self.pids.clear()
        self.task_fds.clear()
        self.result_fds.clear()
        self.hungry.close()


def _serve(
    view: OverlayView,
    line: Line,
    task_fd: int,
    result_fd: int,
    hungry: mmap.mmap,
    layers: tuple[Any, ...],
    index: dict[int, int],
    walk: _Walk | None,
) -> None:
    """A worker's life: go on with ``walk`` if given, then walk each task that comes, until the task pipe closes."""

    def give(key: Key, e: Entry) -> None:
        assert e.sources is not None
        _send(result_fd, ("T", key, e.path, _wire_sources(index, e.sources)))

    while True:
        if walk is None:
            header = _read_exactly(task_fd, _HEADER.size)
            if not header:
                return
            key, path, wire = marshal.loads(_read_exactly(task_fd, _HEADER.unpack(header)[0]))
            view.errors.clear()  # each task reports the dirs it could not read (as first met in its walk)
            walk = _Walk(view, line, key, path, tuple((layers[i], real) for i, real in wire))
        walk.run(functools.partial(_send_part, result_fd, walk.key), hungry, give)
        _send(result_fd, ("D", walk.key))
        walk = None


def _send_part(fd: int, key: Key, segments: list[Segment]) -> None:
    _send(fd, ("P", key, segments))


def _frame(payload: bytes) -> bytes:
    return _HEADER.pack(len(payload)) + payload


def _send(fd: int, msg: tuple[Any, ...]) -> None:
    _write_all(fd, _frame(marshal.dumps(msg)))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def _read_exactly(fd: int, n: int) -> bytes:
    """``n`` bytes from ``fd``; b"" at its end (a frame cut short is an error)."""
    parts: list[bytes] = []
    left = n
    while left:
        chunk = os.read(fd, left)
        if not chunk:
            if left == n:
                return b""
            raise EOFError("a frame cut short")
        parts.append(chunk)
        left -= len(chunk)
    return b"".join(parts)


def _frames(box: bytearray) -> list[Any]:
    """The whole messages at the start of ``box``, taken out of it."""
    out = []
    pos = 0
    size = _HEADER.size
    while len(box) - pos >= size:
        (n,) = _HEADER.unpack_from(box, pos)
        if len(box) - pos - size < n:
            break
        out.append(marshal.loads(box[pos + size : pos + size + n]))
        pos += size + n
    del box[:pos]
    return out
