"""The core's watcher (ufs_tui/core/watcher.py) on real files: its callbacks, from its own thread.

No sleeps: each step waits for the callback it expects (a queue, with a timeout).
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from ufs_tui.core.model.stack import Stack
from ufs_tui.core.watch import ChangeMapper, Changes
from ufs_tui.core.watcher import Watcher

TIMEOUT = 20.0


class Calls:
    """What the watcher called, in order, and from which thread."""

    def __init__(self) -> None:
        self.q: queue.Queue[tuple[str, object]] = queue.Queue()
        self.threads: set[int] = set()

    def changes(self, c: Changes) -> None:
        self.threads.add(threading.get_ident())
        self.q.put(("changes", c))

    def ready(self) -> None:
        self.threads.add(threading.get_ident())
        self.q.put(("ready", None))

    def missing(self, roots: list[str]) -> None:
        self.threads.add(threading.get_ident())
        self.q.put(("missing", roots))

    def next(self, kind: str) -> object:
        """The next call of ``kind`` (others before it are dropped)."""
        while True:
            got, arg = self.q.get(timeout=TIMEOUT)
            if got == kind:
                return arg

    def changes_until(self, done: object) -> Changes:
        """Changes reported until ``done(total)`` holds: a burst may come in more than one batch."""
        total = Changes()
        while not done(total):  # type: ignore[operator]
            c = self.next("changes")
            assert isinstance(c, Changes)
            total.update(c)
        return total


@pytest.fixture
def layers(tmp_path: Path) -> Iterator[tuple[str, str, Watcher, Calls]]:
    low, up = tmp_path / "lower", tmp_path / "upper"
    (low / "d").mkdir(parents=True)
    up.mkdir()
    stack = Stack.build([str(low)], upper=str(up), xattr_ns="user")
    calls = Calls()
    w = Watcher(ChangeMapper(stack), calls.changes, calls.ready, calls.missing)
    w.start()
    try:
        yield str(low), str(up), w, calls
    finally:
        w.stop(timeout=5)


def test_changes_are_reported_as_merged_dirs_from_the_watcher_thread(layers: tuple[str, str, Watcher, Calls]) -> None:
    low, up, w, calls = layers
    calls.next("ready")
    with open(os.path.join(up, "new"), "w") as f:
        f.write("x\n")
    with open(os.path.join(low, "d", "inner"), "w") as f:
        f.write("y\n")
    total = calls.changes_until(lambda t: "new" in (t.dirs.get("/") or ()) and "inner" in (t.dirs.get("/d") or ()))
    assert total.touched == {up, low} and total.events >= 2 and not total.roots
    assert len(calls.threads) == 1 and threading.get_ident() not in calls.threads  # the watcher's own thread


def test_a_burst_of_names_in_one_dir_becomes_one_relisting(layers: tuple[str, str, Watcher, Calls]) -> None:
    _, up, _, calls = layers
    calls.next("ready")
    os.mkdir(os.path.join(up, "big"))
    for i in range(300):  # more than Changes.max_names
        with open(os.path.join(up, "big", f"f{i:03d}"), "w") as f:
            f.write("b\n")
    total = calls.changes_until(lambda t: t.dirs.get("/big", set()) is None)
    assert total.dirs["/big"] is None  # the whole dir is listed again, not 300 lookups


def test_a_root_that_goes_and_comes_back(layers: tuple[str, str, Watcher, Calls]) -> None:
    _, up, w, calls = layers
    calls.next("ready")
    os.rename(up, up + ".away")
    assert calls.next("missing") == [up]
    assert w.missing == [up]
    calls.next("ready")  # watching again, on the roots there are
    os.rename(up + ".away", up)
    assert calls.next("missing") == []
    calls.next("ready")
    with open(os.path.join(up, "after"), "w") as f:
        f.write("z\n")
    total = calls.changes_until(lambda t: "after" in (t.dirs.get("/") or ()))
    assert up in total.touched


def test_nothing_is_called_after_stop(tmp_path: Path) -> None:
    low = tmp_path / "l"
    low.mkdir()
    calls = Calls()
    w = Watcher(ChangeMapper(Stack.build([str(low)], xattr_ns="user")), calls.changes, calls.ready, calls.missing)
    w.start()
    calls.next("ready")
    w.stop(timeout=10)
    assert w.stopped and not w.alive  # the thread has ended: no callback can come any more
    (low / "late").write_text("x")
    assert calls.q.empty()
