"""Fixtures for the UI tests: the demo stack, and waiting for the app's real conditions (never sleeping)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ufs_tui.core.demo import Demo, build_demo


@pytest.fixture
def demo() -> Iterator[Demo]:
    with build_demo() as d:
        yield d
