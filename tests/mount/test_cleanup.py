"""Nothing the app mounted outlives it: quitting, SIGTERM and SIGHUP unmount; after SIGKILL, umount --mine cleans up."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests import nobody
from tests.mount.helpers import ROOT, cli, env_for, scratch
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.mount_table import mount_points
from ufs_tui.core.mounting.record import recorded
from ufs_tui.core.mounting.signals import managed_mounts
from ufs_tui.core.mounting.userns import _wait_gone

HOLDER = """
import signal, sys
from ufs_tui.core.mounting.mount import MountManager
from ufs_tui.core.mounting.signals import install_signal_cleanup
from ufs_tui.core.model.stack import Stack
lower, upper, work, target, backend = sys.argv[1:6]
manager = MountManager()
install_signal_cleanup(manager)
stack = Stack.build(lower.split(":"), upper, work, xattr_ns="user" if backend == "userns" else "trusted")
h = manager.mount(stack, target, backend=backend)
print(h.path, h.helper_pid, flush=True)
while True:
    signal.pause()
"""


@pytest.fixture
def d() -> Iterator[str]:
    with scratch({"l0/a": "a\n", "l1/b": "b\n", "u/": None, "w/": None, "m/": None}) as d:
        yield d


def _hold(d: str, backend: str) -> tuple[subprocess.Popen[str], str, int | None]:
    """Start a process that mounts with MountManager (signal cleanup installed) and waits; return it once mounted."""
    args = ["-c", HOLDER, f"{d}/l0:{d}/l1", f"{d}/u", f"{d}/w", f"{d}/m", backend]
    argv = [sys.executable, *args]
    if backend == "userns":
        subprocess.run(["chown", "-R", "65534:65534", d], check=True)
        argv = nobody.argv(*args)
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env_for(f"{d}/rt"))
    assert proc.stdout is not None
    line = proc.stdout.readline()  # returns once the holder has mounted (or died: then it is empty)
    assert line, proc.stderr.read() if proc.stderr else ""
    path, pid = line.split()
    return proc, path, None if pid == "None" else int(pid)


def _assert_gone(d: str, backend: str, path: str, helper: int | None) -> None:
    if backend == "userns":
        assert helper is not None and _wait_gone(helper, 30)
        assert not os.path.exists(path)
    else:
        assert f"{d}/m" not in mount_points()


BACKENDS = ["kernel", "userns"]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_unmounts_everything(request: pytest.FixtureRequest, d: str, backend: str, sig: int) -> None:
    request.getfixturevalue("root_mount" if backend == "kernel" else "userns_mount")
    proc, path, helper = _hold(d, backend)
    assert sorted(os.listdir(path)) == ["a", "b"]
    assert len(recorded(f"{d}/rt")) == 1
    proc.send_signal(sig)
    assert proc.wait(timeout=30) == -sig  # cleaned up, then died of the signal as usual
    _assert_gone(d, backend, path, helper)
    assert recorded(f"{d}/rt") == []


@pytest.mark.parametrize("backend", BACKENDS)
def test_umount_mine_cleans_up_after_sigkill(request: pytest.FixtureRequest, d: str, backend: str) -> None:
    request.getfixturevalue("root_mount" if backend == "kernel" else "userns_mount")
    proc, path, helper = _hold(d, backend)
    proc.kill()
    proc.wait(timeout=30)
    assert len(recorded(f"{d}/rt")) == 1  # the record survives the crash
    if backend == "kernel":
        assert f"{d}/m" in mount_points()  # a kernel mount outlives its process
    else:
        _assert_gone(d, backend, path, helper)  # the namespace helper ends when its owner's pipe closes
    r = cli(f"{d}/rt", "umount", "--mine", as_nobody=backend == "userns")
    assert r.returncode == 0, r.stderr
    assert ("unmounted" if backend == "kernel" else "was already gone") in r.stdout
    _assert_gone(d, backend, path, helper)
    assert recorded(f"{d}/rt") == []


def test_managed_mounts_unmounts_on_leaving_the_block(root_mount: None, d: str) -> None:
    stack = Stack.build([f"{d}/l0", f"{d}/l1"], f"{d}/u", f"{d}/w")
    with managed_mounts(f"{d}/rt") as manager:
        h = manager.mount(stack)  # a fresh target in the runtime dir
        assert h.target in mount_points() and os.path.dirname(h.target) == f"{d}/rt"
        h2 = manager.mount(Stack.build([f"{d}/l0", f"{d}/l1"]), f"{d}/m")
        assert len(recorded(f"{d}/rt")) == 2
    assert h.target not in mount_points() and h2.target not in mount_points()
    assert not os.path.exists(h.target)  # we made it, we removed it
    assert os.path.isdir(f"{d}/m")
    assert recorded(f"{d}/rt") == []
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


def test_helper_module_path_is_importable() -> None:
    assert os.path.isdir(os.path.join(ROOT, "ufs_tui", "core"))
