"""Sizes in the panes, as a person uses them (issue 16): every row shows its size, a dir its total once summed in
a worker; ``z`` sorts largest first; ``>`` asks for a minimum size; a live change sums the changed dirs again."""

from __future__ import annotations

import os

from textual.widgets import Input

from tests.ui.helpers import names, row
from ufs_tui.core.model.stack import Stack
from ufs_tui.ui.app import make_app
from ufs_tui.ui.pilot import settle, wait_until
from ufs_tui.ui.screens.confirm import PromptScreen


def _write(path: str, size: int) -> None:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(b"x" * size)


def _stack(root: str) -> Stack:
    low, up = f"{root}/low", f"{root}/up"
    for rel, size in {"big": 3000, "lib/a": 500, "lib/b": 700, "lib/deep/c": 2000, "small": 10}.items():
        _write(f"{low}/{rel}", size)
    _write(f"{up}/new", 1500)
    return Stack.build([low], upper=up, xattr_ns="user")


async def test_rows_show_sizes_and_dirs_their_totals(tmp_layers: str) -> None:
    app = make_app(_stack(tmp_layers), live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)  # (the totals workers too)
        merged, lower = app.pane_tree("merged"), app.pane_tree("lower")
        assert row(merged, "/big") == "  big  3.0 kB"
        assert row(merged, "/lib") == "  lib/  3.2 kB"
        assert row(lower, "/lib").endswith("lib/  3.2 kB")
        assert "new" not in names(lower) and row(merged, "/new").endswith("new  1.5 kB")
        await pilot.press("3", "home", "down", "right")  # open /lib
        await settle(pilot)
        assert row(merged, "/lib/deep") == "  deep/  2.0 kB"


async def test_z_sorts_largest_first_and_back(tmp_layers: str) -> None:
    app = make_app(_stack(tmp_layers), live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        merged = app.pane_tree("merged")
        assert names(merged) == ["big", "lib", "new", "small"]
        await pilot.press("z")
        await settle(pilot)
        assert names(merged) == ["lib", "big", "new", "small"]
        assert "largest first" in str(app.main.query_one("#status").render())
        await pilot.press("z")
        await settle(pilot)
        assert names(merged) == ["big", "lib", "new", "small"]


async def test_a_minimum_size_is_asked_and_a_bad_one_said(tmp_layers: str) -> None:
    app = make_app(_stack(tmp_layers), live=False)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        merged = app.pane_tree("merged")
        await pilot.press("greater_than_sign")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), "the prompt")
        await pilot.press(*"lots", "enter")
        await wait_until(pilot, lambda: isinstance(app.screen, PromptScreen), "the prompt again")
        assert app.screen.query_one(Input).value == "lots"  # what was typed, to fix
        assert any("not a size: 'lots'" in str(n.message) for n in app._notifications)
        app.screen.query_one(Input).value = "1.6k"
        await pilot.press("enter")
        await settle(pilot)
        assert names(merged) == ["big", "lib"]  # new (1.5 kB) and small are smaller
        assert "≥ 1.6 kB" in str(app.main.query_one("#status").render())
        await pilot.press("x")  # clear all filters
        await settle(pilot)
        assert names(merged) == ["big", "lib", "new", "small"]


async def test_a_live_change_sums_the_changed_dir_again(tmp_layers: str) -> None:
    stack = _stack(tmp_layers)
    app = make_app(stack, live=True)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(pilot)
        await wait_until(pilot, lambda: app.watch_ready, "the watcher to start")
        merged, upper = app.pane_tree("merged"), app.pane_tree("upper")
        assert row(merged, "/lib") == "  lib/  3.2 kB"
        _write(f"{tmp_layers}/up/lib/deep/more", 4000)
        await wait_until(pilot, lambda: row(merged, "/lib").endswith("7.2 kB"), "/lib's new total")
        await wait_until(pilot, lambda: row(upper, "/lib").endswith("lib/  4.0 kB"), "the upper's own /lib total")
