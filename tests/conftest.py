"""Shared fixtures. Tests that need root or a real overlay mount skip elsewhere but FAIL when CI=true."""

from __future__ import annotations

import contextlib
import os
import signal
from collections.abc import Iterator

import pytest

from tests.overlay import can_mount_overlay, can_userns_overlay

IN_CI = os.environ.get("CI", "").lower() == "true"


def need(condition: bool, reason: str) -> None:
    """Skip with ``reason`` unless ``condition``; in CI (CI=true) fail instead, since CI must run everything."""
    if condition:
        return
    if IN_CI:
        pytest.fail(f"required in CI but unavailable: {reason}")
    pytest.skip(reason)


@pytest.fixture(autouse=True)
def no_user_config(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every test sees no user config file (``$XDG_CONFIG_HOME/ufs-tui/config.toml``) unless it makes one: a
    developer's own config must not change what a test sees. Child processes inherit it."""
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path_factory.mktemp("xdg-config")))


@pytest.fixture
def root_mount() -> None:
    """Use in tests that mount overlays as root."""
    need(os.geteuid() == 0, "needs root to mount overlayfs")
    need(can_mount_overlay(), "overlayfs cannot be mounted here")


@pytest.fixture
def userns_mount() -> None:
    """Use in tests that mount overlays in an unprivileged user namespace (userxattr)."""
    need(can_userns_overlay(), "unprivileged user-namespace overlay mounts are not possible here")


@pytest.fixture
def tmp_layers(tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A temp dir for layer trees that is removed even with the kernel's mode-000 work/work inside."""
    from ufs_tui.core.demo import remove_tree

    path = os.fspath(tmp_path)
    yield path
    remove_tree(path)


@pytest.fixture
def shared_tmp() -> Iterator[str]:
    """A temp dir that uid 65534 can traverse (pytest's tmp_path is private to root), removed afterwards even
    when a test left dirs in it without permissions."""
    import shutil
    import tempfile

    need(os.geteuid() == 0, "needs root to run the CLI as another user (setpriv)")
    need(shutil.which("setpriv") is not None, "needs setpriv (util-linux)")
    d = tempfile.mkdtemp(prefix="ufs-shared-")
    os.chmod(d, 0o755)
    try:
        yield d
    finally:
        for dirpath, dirnames, _ in os.walk(d):
            for n in dirnames:
                os.chmod(os.path.join(dirpath, n), 0o755)
        shutil.rmtree(d)


class Hang(BaseException):
    """Raised into code that runs too long: a BaseException, so no ``except Exception`` (or OSError) under test
    can swallow it."""


@contextlib.contextmanager
def time_limit(seconds: float) -> Iterator[None]:
    """Turn a hang into :class:`Hang` (SIGALRM; the code under test runs in this, the main, thread)."""

    def fire(signum: int, frame: object) -> None:
        raise Hang(f"still running after {seconds}s: a hang")

    old = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
