"""The kernel's lowerdir syntax: ':' separates, '\\' escapes, '::' starts data-only layers."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.stack import escape_layer_path, parse_lowerdir


@pytest.mark.parametrize(
    ("spec", "expected"),
    [
        ("/a", [("/a", False)]),
        ("/a:/b:/c", [("/a", False), ("/b", False), ("/c", False)]),
        (r"/a\:b:/c", [("/a:b", False), ("/c", False)]),
        (r"/a\\:/b", [("/a\\", False), ("/b", False)]),
        (r"/a\,b", [("/a,b", False)]),
        ("/l1:/l2::/d1::/d2", [("/l1", False), ("/l2", False), ("/d1", True), ("/d2", True)]),
        ("/l1::/d1", [("/l1", False), ("/d1", True)]),
        (r"/l1::/d\:1", [("/l1", False), ("/d:1", True)]),
        (r"/x\::/d", [("/x:", False), ("/d", False)]),
        (r"/x\:::/d", [("/x:", False), ("/d", True)]),
    ],
)
def test_parse(spec: str, expected: list[tuple[str, bool]]) -> None:
    assert parse_lowerdir(spec) == expected


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("/a:::/b", "only single ':' or double '::'"),
        ("/a::::/b", "only single ':' or double '::'"),
        ("/a:", "trailing ':'"),
        ("/a::", "trailing ':'"),
        ("", "empty"),
        (":/a", "empty layer path"),
        ("::/a", "empty layer path"),
        ("/l1::/d1:/l2", "a normal layer cannot follow a data-only layer"),
        ("/l1::/d1::/d2:/l3", "a normal layer cannot follow a data-only layer"),
    ],
)
def test_rejected(spec: str, problem: str) -> None:
    with pytest.raises(StackError) as info:
        parse_lowerdir(spec)
    assert problem in info.value.problem
    assert problem in str(info.value)
    if spec:
        assert info.value.path == spec  # the message names the bad lowerdir string itself


@pytest.mark.parametrize(
    ("path", "escaped"),
    [("/a", "/a"), ("/a:b", r"/a\:b"), ("/a,b", r"/a\,b"), ("/a\\b", r"/a\\b"), (r"/\:", r"/\\\:")],
)
def test_escape(path: str, escaped: str) -> None:
    assert escape_layer_path(path) == escaped


paths = st.lists(st.text(min_size=1), min_size=1, max_size=6)


@given(paths)
def test_escape_round_trip(ps: list[str]) -> None:
    assert parse_lowerdir(":".join(escape_layer_path(p) for p in ps)) == [(p, False) for p in ps]


@given(paths, paths)
def test_escape_round_trip_with_data_layers(normal: list[str], data: list[str]) -> None:
    spec = ":".join(escape_layer_path(p) for p in normal) + "".join("::" + escape_layer_path(p) for p in data)
    assert parse_lowerdir(spec) == [(p, False) for p in normal] + [(p, True) for p in data]
