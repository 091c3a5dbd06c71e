"""Layers get their numbers in one place, Stack.relayered: every stack made from a changed list of lowers (build,
read-only, focused, commit and squash plans, the mount record, the layer-count child's JSON) is numbered by it."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from ufs_tui.core.model.stack import Layer, Stack
from ufs_tui.core.mounting.layers_ops import plan_commit, plan_squash
from ufs_tui.core.mounting.record import MountHandle
from ufs_tui.core.reports.layerstats import stack_from_json, stack_to_json


def numbering(stack: Stack) -> list[tuple[str, str, str]]:
    return [(la.name, os.path.basename(la.path), la.label) for la in (*stack.layers, *stack.data_layers)]


def dirs(tmp_path: Path, *names: str) -> str:
    for n in names:
        (tmp_path / n).mkdir()
    return str(tmp_path)


def test_paths_and_layers_are_numbered_the_kernels_way(tmp_path: Path) -> None:
    d = dirs(tmp_path, "a", "b", "c", "data", "u", "w")
    base = Stack.build(f"{d}/a:{d}/b::{d}/data", xattr_ns="user", options=("metacopy=on",))
    labelled = dataclasses.replace(base.lowers[1], label="sha256:b", role="data", index=7)
    s = base.relayered([f"{d}/c", labelled], Layer(f"{d}/u", "lower", 3, "mine"), f"{d}/w")
    assert numbering(s) == [
        ("upper", "u", "mine"), ("lower:0", "c", ""), ("lower:1", "b", "sha256:b"), ("data:2", "data", ""),
    ]  # fmt: skip
    assert (s.work, s.xattr_ns, s.options) == (f"{d}/w", "user", ("metacopy=on",))
    only = base.relayered([f"{d}/a"], data=[f"{d}/c", f"{d}/data"])
    assert numbering(only) == [("lower:0", "a", ""), ("data:1", "c", ""), ("data:2", "data", "")]
    assert only.upper is None and only.work is None


def test_every_maker_of_a_changed_stack_numbers_alike(tmp_path: Path) -> None:
    d = dirs(tmp_path, "a", "b", "c", "data", "u", "w")
    s = Stack.build(f"{d}/a:{d}/b:{d}/c::{d}/data", f"{d}/u", f"{d}/w")
    assert numbering(s.read_only()) == numbering(s.relayered([s.upper, *s.lowers])) == [
        ("lower:0", "u", ""), ("lower:1", "a", ""), ("lower:2", "b", ""), ("lower:3", "c", ""),
        ("data:4", "data", ""),
    ]  # fmt: skip
    focused, names = s.focused(s.lowers[1])
    assert numbering(focused) == [("upper", "b", ""), ("lower:0", "c", ""), ("data:1", "data", "")]
    assert names == {"upper": "lower:1", "lower:0": "lower:2", "data:1": "data:3"}
    committed = plan_commit(s, f"{d}/u2", f"{d}/w2").result
    assert numbering(committed)[:3] == [("upper", "u2", ""), ("lower:0", "u", ""), ("lower:1", "a", "")]
    assert numbering(committed)[-1] == ("data:4", "data", "")
    squashed = plan_squash(s, "lower:0", "lower:1", f"{d}/ab").result
    assert numbering(squashed) == [
        ("upper", "u", ""),
        ("lower:0", "ab", ""),
        ("lower:1", "c", ""),
        ("data:2", "data", ""),
    ]
    assert stack_from_json(stack_to_json(s)) == s.relayered(s.lowers, s.upper)  # the child gets no work dir
    h = MountHandle(id="x", backend="kernel", target=f"{d}/m", stack=s, options=())
    assert MountHandle.from_record(h.to_record()).stack == s
