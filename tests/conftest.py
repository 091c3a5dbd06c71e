"""Shared fixtures. Tests that need root or a real overlay mount skip elsewhere but FAIL when CI=true."""

from __future__ import annotations

import os
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
