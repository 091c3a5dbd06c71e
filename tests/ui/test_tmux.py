"""The real program in a real terminal (tmux), as a person uses it: keys in, screen out, clean exit.

Waits are for real conditions (text on the screen, the program's exit through ``tmux wait-for``),
each bounded by a timeout.
"""

from __future__ import annotations

import os
import select
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator

import pytest

from tests.conftest import need

UFS = os.path.join(os.path.dirname(sys.executable), "ufs-tui")


@pytest.fixture
def session(tmp_path: os.PathLike[str]) -> Iterator[Callable[..., str]]:
    need(shutil.which("tmux") is not None, "needs tmux")
    name = f"ufs-{uuid.uuid4().hex[:8]}"
    made: list[str] = []

    def start(width: int, height: int, done_file: str) -> str:
        cmd = (
            f"stty -g > {done_file}.before; {UFS} demo; echo $? > {done_file}; "
            f"stty -g > {done_file}.after; tmux wait-for -S {name}"
        )
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", str(width), "-y", str(height), cmd], check=True)
        made.append(name)
        return name

    yield start
    for n in made:
        subprocess.run(["tmux", "kill-session", "-t", n], capture_output=True)


def capture(name: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", name], capture_output=True, text=True).stdout


def wait_screen(name: str, cond: Callable[[str], bool], timeout: float = 30) -> str:
    deadline = time.monotonic() + timeout
    while True:
        screen = capture(name)
        if cond(screen):
            return screen
        if time.monotonic() > deadline:
            raise AssertionError(f"screen never matched; last:\n{screen}")
        subprocess.run(["tmux", "wait-for", "-S", "nothing"], capture_output=True)  # a round trip to tmux


def wait_exit(name: str, timeout: float = 30) -> None:
    subprocess.run(["tmux", "wait-for", name], timeout=timeout, check=True)


def pid_of_app(name: str) -> int:
    shell = subprocess.run(["tmux", "list-panes", "-t", name, "-F", "#{pane_pid}"], capture_output=True, text=True)
    out = subprocess.run(["pgrep", "-P", shell.stdout.strip()], capture_output=True, text=True).stdout.split()
    return int(out[0])


@pytest.mark.parametrize("size", [(160, 45), (80, 24)])
def test_keys_and_quit(session: Callable[..., str], tmp_path: os.PathLike[str], size: tuple[int, int]) -> None:
    done = os.path.join(os.fspath(tmp_path), "rc")
    name = session(size[0], size[1], done)
    # ready: the Merged pane has the focus and the first row's details are shown
    screen = wait_screen(name, lambda s: "etc/" in s and "/a " in s and "[merged pane]" in s)
    assert "Lower" in screen and "Upper" in screen and "Details" in screen
    for _ in range(7):  # a, app.py, b, base, bin, c, dir, etc
        subprocess.run(["tmux", "send-keys", "-t", name, "Down"], check=True)
    wait_screen(name, lambda s: "* /etc " in s and "Metadata" in s)
    subprocess.run(["tmux", "send-keys", "-t", name, "Right"], check=True)
    wait_screen(name, lambda s: "config" in s)
    subprocess.run(["tmux", "send-keys", "-t", name, "Right"], check=True)
    wait_screen(name, lambda s: "~ /etc/config" in s and "copied up" in s)
    subprocess.run(["tmux", "send-keys", "-t", name, "?"], check=True)
    wait_screen(name, lambda s: "Help: every key" in s)
    subprocess.run(["tmux", "send-keys", "-t", name, "Escape"], check=True)
    wait_screen(name, lambda s: "Help: every key" not in s)
    subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=True)
    wait_exit(name)
    with open(done) as f:
        assert f.read().strip() == "0"
    with open(done + ".before") as a, open(done + ".after") as b:
        assert a.read() == b.read()  # the terminal is restored


@pytest.mark.parametrize("sig", ["HUP", "TERM"])
def test_signal_exits_cleanly(session: Callable[..., str], tmp_path: os.PathLike[str], sig: str) -> None:
    done = os.path.join(os.fspath(tmp_path), "rc")
    name = session(120, 40, done)
    wait_screen(name, lambda s: "Merged" in s and "live" in s)
    before = {d for d in os.listdir("/tmp") if d.startswith("ufs-tui-demo-")}
    subprocess.run(["kill", f"-{sig}", str(pid_of_app(name))], check=True)
    wait_exit(name)
    with open(done + ".before") as a, open(done + ".after") as b:
        assert a.read() == b.read()
    after = {d for d in os.listdir("/tmp") if d.startswith("ufs-tui-demo-")}
    assert len(before - after) >= 1, "the demo's temp dir was not removed"


def test_quit_and_the_terminal_gone_at_once_still_cleans_up() -> None:
    """'q', and the terminal closes right after it (an SSH session dropped as one quits), eight times: each
    time the program ends and the demo's temp dir is removed. Textual's exit can hang for good on writes to
    the lost terminal (in about one run in ten here, before its cleanup or after it); the hangup watcher then
    cleans up and ends the process (ufs_tui.ui.hangup.HANGUP_GRACE). Before it did, a run in ten or twenty left
    the process hanging and the temp dir behind."""
    from ufs_tui.ui.hangup import HANGUP_GRACE

    need(shutil.which("tmux") is not None, "needs tmux")
    for _ in range(8):
        name = f"ufs-qh-{uuid.uuid4().hex[:8]}"
        before = {d for d in os.listdir("/tmp") if d.startswith("ufs-tui-demo-")}
        cmd = f"env -u COLUMNS -u LINES {UFS} demo; true"  # (the shell stays: pid_of_app finds its child)
        subprocess.run(["tmux", "new-session", "-d", "-s", name, "-x", "120", "-y", "40", cmd], check=True)
        try:
            wait_screen(name, lambda s: "Merged" in s and "shadow.txt" in s)
            app = os.pidfd_open(pid_of_app(name))  # (not our child: its pidfd says when it has ended)
            mine = {d for d in os.listdir("/tmp") if d.startswith("ufs-tui-demo-")} - before
            assert len(mine) == 1
            subprocess.run(["tmux", "send-keys", "-t", name, "q"], check=True)
        finally:
            subprocess.run(["tmux", "kill-session", "-t", name], capture_output=True)
        try:
            ended, _, _ = select.select([app], [], [], HANGUP_GRACE + 20)
        finally:
            os.close(app)
        assert ended, "the app did not end after its terminal went away"
        assert not os.path.exists(os.path.join("/tmp", mine.pop())), "the demo's temp dir was not removed"
