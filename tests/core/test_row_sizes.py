"""Sizes on the explorer's rows (issue 16): a file's bytes, a dir's total under it (the merged view's in the Merged
pane, the layer's own in a layer pane), sort by size, a minimum size; and the size words and their parser."""

from __future__ import annotations

import os
import re
from decimal import Decimal

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from tests.core.test_fuzz_parsers import SETTINGS
from ufs_tui.core.explorer import Explorer, ViewFilter
from ufs_tui.core.model.display import human_size, parse_size, row_size
from ufs_tui.core.model.stack import Stack


def _write(path: str, size: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x" * size)


@pytest.fixture
def stack(tmp_layers: str) -> Stack:
    """lower: /big (3000 B), /lib/{a 500, b 700}, /lib/deep/c 2000, /small 10; upper: /lib/a grown to 900,
    /new 1500, and /small deleted (a whiteout)."""
    low, up = f"{tmp_layers}/low", f"{tmp_layers}/up"
    for rel, size in {"big": 3000, "lib/a": 500, "lib/b": 700, "lib/deep/c": 2000, "small": 10}.items():
        _write(f"{low}/{rel}", size)
    for rel, size in {"lib/a": 900, "new": 1500}.items():
        _write(f"{up}/{rel}", size)
    os.mknod(f"{up}/small", 0o600 | 0o020000, 0)  # a whiteout
    os.symlink("big", f"{up}/link")
    return Stack.build([low], upper=up)


def _rows(ex: Explorer, flt: ViewFilter, path: str = "/", pane: str = "merged") -> list[tuple[str, int | None]]:
    src = None if pane == "merged" else ex.stack.layer_by_name(pane)
    return [(it.name, it.size) for it in ex.items(src, path, "", flt)]


def test_rows_carry_file_sizes_and_known_dir_totals(stack: Stack) -> None:
    ex = Explorer(stack)
    by_name = ViewFilter()
    assert _rows(ex, by_name) == [("big", 3000), ("lib", None), ("link", None), ("new", 1500)]  # lib: not summed
    assert ex.totals(None, "fate").total("/lib") == 900 + 700 + 2000
    assert _rows(ex, by_name)[1] == ("lib", 3600)  # known now: the row has it
    # a layer pane: that layer's own tree (the upper holds /lib/a only; its whiteout has no size)
    assert _rows(ex, ViewFilter(order="size"), pane="upper") == [
        ("new", 1500), ("lib", 900), ("link", None), ("small", None)
    ]  # fmt: skip
    assert _rows(ex, ViewFilter(order="size"), pane="lower:0") == [
        ("lib", 3200), ("big", 3000), ("small", 10)
    ]  # fmt: skip


def test_sort_by_size_sums_every_dir_first_largest_first_ties_by_name(stack: Stack) -> None:
    ex = Explorer(stack)
    assert _rows(ex, ViewFilter(order="size")) == [("lib", 3600), ("big", 3000), ("new", 1500), ("link", None)]
    assert _rows(ex, ViewFilter(order="size"), "/lib") == [("deep", 2000), ("a", 900), ("b", 700)]


def test_a_minimum_size_leaves_out_smaller_files_dirs_with_less_and_sizeless_rows(stack: Stack) -> None:
    ex = Explorer(stack)
    assert _rows(ex, ViewFilter(min_size=1500)) == [("big", 3000), ("lib", 3600), ("new", 1500)]
    assert _rows(ex, ViewFilter(min_size=1501), "/lib") == [("deep", 2000)]
    assert _rows(ex, ViewFilter(min_size=4000)) == []
    assert ex.item(None, "/lib/b", "", ViewFilter(min_size=701)) is None
    got = ex.item(None, "/lib/b", "", ViewFilter(min_size=700))
    assert got is not None and got.size == 700


@pytest.mark.parametrize(
    ("n", "words"),
    [(0, "0 B"), (999, "999 B"), (1000, "1.0 kB"), (9949, "9.9 kB"), (9950, "10 kB"), (999_499, "999 kB"),
     (999_500, "1.0 MB"), (12_345_678, "12 MB"), (4_200_000_000, "4.2 GB"), (10**15, "1000 TB")],
)  # fmt: skip
def test_row_sizes_fit_six_columns(n: int, words: str) -> None:
    assert row_size(n) == words


@pytest.mark.parametrize(
    ("text", "n"),
    [("10M", 10**7), ("1.5 GB", 15 * 10**8), ("512k", 512_000), ("4KiB", 4096), ("100", 100), (" 2 mib ", 2 << 20),
     (".5k", 500), ("0", 0)],
)  # fmt: skip
def test_sizes_are_read_as_human_size_writes_them(text: str, n: int) -> None:
    assert parse_size(text) == n


@pytest.mark.parametrize("text", ["", "M", "10 parsecs", "-5M", "1e9", "1,5M", "[red]10M", "10M\n5"])
def test_what_is_not_a_size_is_refused_in_one_line(text: str) -> None:
    with pytest.raises(ValueError, match=r"^(not a size|unknown unit)") as err:
        parse_size(text)
    assert "\n" not in str(err.value).replace("\\n", "")


@SETTINGS
@given(st.text(alphabet=st.sampled_from("0123456789.kKmMgGtTiIbB \t-e,"), max_size=30) | st.text(max_size=30))
def test_size_parser_fuzz(text: str) -> None:
    """Anything typed: a size (an exact, non-negative number of bytes) or ValueError, nothing else."""
    try:
        n = parse_size(text)
    except ValueError:
        event("refused")
        return
    event("parsed")
    assert isinstance(n, int) and n >= 0
    number = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", text)
    assert number is not None and n == int(Decimal(number.group(1)) * parse_size("1" + number.group(2)))


@given(st.integers(min_value=0, max_value=10**16))
def test_a_row_size_reads_back_near_what_it_was(n: int) -> None:
    """row_size and human_size round; parse_size reads them back within the rounding."""
    for words in (row_size(n), human_size(n)):
        back = parse_size(words)
        assert abs(back - n) <= max(n * 0.05, 1), (n, words, back)
