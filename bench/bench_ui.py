"""UI benchmark (issue 3): the explorer on the 10 x 20,000 synthetic stack of bench_core.

Runs the real app headless (Textual's run_test, the same app factory the CLI uses) and prints:

* first frame: from creating the app to the merged root listed and painted (target <= 1 s);
* opening ``/big`` (20,000 merged names across 10 lowers): time until every row is in the tree, and the
  longest the event loop was blocked meanwhile (target: no block > 50 ms);
* key to repaint: ``down`` pressed in ``/big``, from the key to the screen updated, p50/p95/max
  over N presses (target p95 <= 50 ms);
* live: a file created in the upper's ``/big`` until its row is in the Merged pane, p50/p95/max over
  N files (target p95 <= 250 ms).

Run as root from the repo root: ``.venv/bin/python -m bench.bench_ui`` (``--cache DIR`` reuses the
layers bench_core built there). Not a test: it prints figures.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

from textual import events

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from bench.bench_core import build_stack  # noqa: E402
from ufs_tui.core.demo import remove_tree  # noqa: E402
from ufs_tui.core.model.stack import Stack  # noqa: E402
from ufs_tui.ui.app import UfsApp, make_app  # noqa: E402
from ufs_tui.ui.pilot import settle, wait_until  # noqa: E402

TARGET_FIRST_FRAME = 1.0
TARGET_KEY_P95 = 0.050
TARGET_BLOCK = 0.050
TARGET_LIVE_P95 = 0.250
BURST = 2000


def log(msg: str) -> None:
    print(f"bench_ui: {msg}", file=sys.stderr, flush=True)


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class LoopLag:
    """Measures how late the event loop runs a 5 ms tick: the longest block of the loop."""

    def __init__(self) -> None:
        self.worst = 0.0
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            t = loop.time()
            await asyncio.sleep(0.005)
            self.worst = max(self.worst, loop.time() - t - 0.005)

    def start(self) -> None:
        self.worst = 0.0
        self._task = asyncio.get_running_loop().create_task(self._run())

    def stop(self) -> float:
        if self._task is not None:
            self._task.cancel()
        return self.worst


class Paints:
    """Marks each screen update the app makes (its ``_display``), so a measure ends when the change is painted."""

    def __init__(self, app: UfsApp) -> None:
        self.waiters: list[tuple[Callable[[], bool], asyncio.Future[float]]] = []
        original = app._display

        def display(screen: Any, renderable: Any) -> None:
            original(screen, renderable)
            if renderable is None:
                return
            now = time.perf_counter()
            for cond, fut in list(self.waiters):
                if not fut.done() and cond():
                    fut.set_result(now)
                    self.waiters.remove((cond, fut))

        app._display = display  # type: ignore[method-assign]

    async def until(self, cond: Callable[[], bool], timeout: float = 60) -> float:
        """The time of the first paint after ``cond()`` holds."""
        fut: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.waiters.append((cond, fut))
        return await asyncio.wait_for(fut, timeout)


def send_key(app: UfsApp, key: str) -> None:
    event = events.Key(key, None)
    event.set_sender(app)
    assert app._driver is not None
    app._driver.send_message(event)


def merged_root_shown(app: UfsApp) -> bool:
    """The Merged pane has its root listed (what a first frame waits for)."""
    if not app.query("#tree-merged"):
        return False
    tree = app.pane_tree("merged")
    return "/" in tree.loaded and bool(tree.root.children)


async def run(stack: Stack, upper: str, presses: int, files: int) -> dict[str, float | list[float]]:
    out: dict[str, float | list[float]] = {}
    t0 = time.perf_counter()
    app = make_app(stack, live=True)
    paints = Paints(app)  # before the app starts: the first paint may come before run_test hands over

    first = asyncio.ensure_future(paints.until(lambda: merged_root_shown(app)))
    async with app.run_test(size=(160, 45)) as pilot:
        merged = app.pane_tree("merged")
        out["first_frame"] = await first - t0
        await settle(pilot, timeout=120)
        await wait_until(pilot, lambda: app.watch_ready, "the watcher", timeout=60)
        # open /big in the Merged pane
        await pilot.press("3", "home")
        while merged.cursor_path() != "/big":
            await pilot.press("down")
        lag = LoopLag()
        lag.start()
        t = time.perf_counter()
        send_key(app, "right")
        done = await paints.until(lambda: "/big" in merged.loaded, timeout=120)
        out["open_big"] = done - t
        out["open_big_block"] = lag.stop()
        out["big_rows"] = float(len(merged.nodes["/big"].children))
        await settle(pilot, timeout=120)
        await pilot.press("right")  # to the first entry
        await settle(pilot)
        # key -> repaint, one key at a time (the app quiet before each)
        keys: list[float] = []
        lag.start()
        for _ in range(presses):
            line = merged.cursor_line
            t = time.perf_counter()
            send_key(app, "down")
            keys.append(await paints.until(lambda line=line: merged.cursor_line == line + 1) - t)  # type: ignore[misc]
            await settle(pilot)
        out["key_block"] = lag.stop()
        out["keys"] = keys
        # key held down: the next key as soon as the last one is painted (details lag behind)
        held: list[float] = []
        lag.start()
        for _ in range(presses):
            line = merged.cursor_line
            t = time.perf_counter()
            send_key(app, "down")
            held.append(await paints.until(lambda line=line: merged.cursor_line == line + 1) - t)  # type: ignore[misc]
        out["held_block"] = lag.stop()
        out["held"] = held
        await settle(pilot, timeout=120)
        # live: a file created in the upper's /big
        big_upper = os.path.join(upper, "big")
        os.makedirs(big_upper, exist_ok=True)
        lives: list[float] = []
        for i in range(files):
            name = f"zz-live-{i:04d}"
            path = "/big/" + name
            t = time.perf_counter()
            with open(os.path.join(big_upper, name), "w") as f:
                f.write("x\n")
            lives.append(await paints.until(lambda p=path: p in merged.nodes, timeout=30) - t)  # type: ignore[misc]
            await settle(pilot)
        out["live"] = lives
        for i in range(files):
            os.remove(os.path.join(big_upper, f"zz-live-{i:04d}"))
        await wait_until(pilot, lambda: f"/big/zz-live-{files - 1:04d}" not in merged.nodes, "cleanup", timeout=30)
        await settle(pilot, timeout=120)
        # a burst (an install in a container): BURST files written into the upper's /big as fast as the
        # disk takes them, with /big (20,000 rows) open; until every one is a row, and the longest block
        lag.start()
        t = time.perf_counter()
        for i in range(BURST):
            with open(os.path.join(big_upper, f"zz-burst-{i:05d}"), "w") as f:
                f.write("b\n")
        last = f"/big/zz-burst-{BURST - 1:05d}"
        await wait_until(
            pilot, lambda: all(f"/big/zz-burst-{i:05d}" in merged.nodes for i in range(BURST)), "burst", timeout=120
        )
        out["burst"] = time.perf_counter() - t
        out["burst_block"] = lag.stop()
        assert last in merged.nodes
        for i in range(BURST):
            os.remove(os.path.join(big_upper, f"zz-burst-{i:05d}"))
        await wait_until(pilot, lambda: last not in merged.nodes, "burst cleanup", timeout=120)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cache", metavar="DIR", help="build (or reuse) bench_core's layers in DIR and keep them")
    ap.add_argument("--presses", type=int, default=100)
    ap.add_argument("--files", type=int, default=30)
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("bench_ui: needs root (the synthetic stack has 0/0 whiteouts)", file=sys.stderr)
        return 2
    root = os.path.abspath(args.cache) if args.cache else tempfile.mkdtemp(prefix="ufs-bench-ui-")
    os.makedirs(root, exist_ok=True)
    try:
        built = build_stack(root, log)
        stack = Stack.build(built.lowers, upper=built.upper, work=built.work)
        log("running the app")
        r = asyncio.run(run(stack, built.upper, args.presses, args.files))
    finally:
        if not args.cache:
            remove_tree(root)
    keys = r["keys"]
    lives = r["live"]
    assert isinstance(keys, list) and isinstance(lives, list)

    def row(name: str, value: str, target: str, ok: bool) -> None:
        print(f"{name:<44} {value:<34} {target:<10} {'ok' if ok else 'MISS'}")

    load = os.getloadavg()
    print(f"# bench_ui on {built.layer_entries:,} layer entries, load average {load[0]:.1f} {load[1]:.1f}")
    print(f"{'measure':<44} {'value':<34} {'target':<10}")
    ff = float(r["first_frame"])  # type: ignore[arg-type]
    row("first frame (app created -> root painted)", f"{ff * 1000:.0f} ms", "<= 1000 ms", ff <= TARGET_FIRST_FRAME)
    ob, obb = float(r["open_big"]), float(r["open_big_block"])  # type: ignore[arg-type]
    row(
        f"open /big ({int(r['big_rows'])} rows): all rows in",  # type: ignore[call-overload]
        f"{ob * 1000:.0f} ms",
        "-",
        True,
    )
    row("  longest event-loop block meanwhile", f"{obb * 1000:.0f} ms", "<= 50 ms", obb <= TARGET_BLOCK)
    row(
        f"key -> repaint in /big ({len(keys)} presses)",
        f"p50 {pct(keys, 50) * 1000:.1f} p95 {pct(keys, 95) * 1000:.1f} max {max(keys) * 1000:.1f} ms",
        "p95 <= 50",
        pct(keys, 95) <= TARGET_KEY_P95,
    )
    kb = float(r["key_block"])  # type: ignore[arg-type]
    row("  longest event-loop block meanwhile", f"{kb * 1000:.0f} ms", "<= 50 ms", kb <= TARGET_BLOCK)
    held = r["held"]
    assert isinstance(held, list)
    row(
        f"key held down in /big ({len(held)} presses)",
        f"p50 {pct(held, 50) * 1000:.1f} p95 {pct(held, 95) * 1000:.1f} max {max(held) * 1000:.1f} ms",
        "p95 <= 50",
        pct(held, 95) <= TARGET_KEY_P95,
    )
    hb = float(r["held_block"])  # type: ignore[arg-type]
    row("  longest event-loop block meanwhile", f"{hb * 1000:.0f} ms", "<= 50 ms", hb <= TARGET_BLOCK)
    row(
        f"write in upper -> row in Merged ({len(lives)} files)",
        f"p50 {pct(lives, 50) * 1000:.0f} p95 {pct(lives, 95) * 1000:.0f} max {max(lives) * 1000:.0f} ms",
        "p95 <= 250",
        pct(lives, 95) <= TARGET_LIVE_P95,
    )
    bt, bb = float(r["burst"]), float(r["burst_block"])  # type: ignore[arg-type]
    row(f"burst of {BURST} files in the upper's /big: all rows in", f"{bt * 1000:.0f} ms", "-", True)
    row("  longest event-loop block meanwhile", f"{bb * 1000:.0f} ms", "<= 50 ms", bb <= TARGET_BLOCK)
    print(f"(all key times, ms: {' '.join(f'{k * 1000:.0f}' for k in keys[:40])} ...)")
    print(f"(held key times, ms: {' '.join(f'{k * 1000:.0f}' for k in held[:60])} ...)")
    print(f"(all live times, ms: {' '.join(f'{v * 1000:.0f}' for v in lives)})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
