"""Fixtures of the kernel tests."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator

import pytest

from tests.kernel.lab import Lab
from tests.overlay import umount
from ufs_tui.core.demo import remove_tree


@pytest.fixture
def lab() -> Iterator[Lab]:
    """A :class:`Lab` with two lowers, removed afterwards (unmounted first if a test failed while mounted)."""
    root = tempfile.mkdtemp(prefix="ufs-markers-")
    os.chmod(root, 0o755)
    try:
        yield Lab(root)
    finally:
        if os.path.ismount(os.path.join(root, "m")):  # a test that failed while mounted
            umount(os.path.join(root, "m"))
        remove_tree(root)
