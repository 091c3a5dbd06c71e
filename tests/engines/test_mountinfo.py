"""Overlay mounts read back from /proc/self/mountinfo: every escaping form, relative paths, lowerdir+/datadir+.

The kernel is the oracle twice: it writes the mountinfo line we parse (from a mount we made with known
layer paths), and its merged view at the mount point must equal the model of the parsed stack.
"""

from __future__ import annotations

import ctypes
import io
import json
import os
import subprocess
from collections.abc import Iterator

import pytest

from tests.overlay import kernel_tree, model_tree
from ufs_tui import cli
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.stack import escape_layer_path
from ufs_tui.core.sources import list_overlay_mounts, open_source
from ufs_tui.core.sources.mountinfo import OverlayMount, parse_line

HOSTILE = ["a,b", "c:d", "e f", "tab\there", "back\\slash", "nl\nname", "[red]x", "ümlaut", os.fsdecode(b"bad\xff")]


def mount_opts(opts: str, target: str, cwd: str | None = None) -> None:
    r = subprocess.run(
        [b"mount", b"-t", b"overlay", b"overlay", b"-o", os.fsencode(opts), os.fsencode(target)],
        capture_output=True,
        cwd=cwd,
    )
    if r.returncode != 0:
        raise OSError(f"mount -o {opts!r} failed: {r.stderr.decode(errors='replace')}")


def mount_new_api(params: list[tuple[str, str]], target: str) -> None:
    """Mount an overlay through fsopen/fsconfig/fsmount/move_mount: each ``lowerdir+``/``datadir+`` value is
    one raw path (commas and colons included), as runtimes using the new mount API pass them."""
    libc = ctypes.CDLL(None, use_errno=True)
    fs_config_set_string, fs_config_cmd_create, move_mount_f_empty_path = 1, 6, 0x4

    def check(ret: int, what: str) -> int:
        if ret < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"{what}: {os.strerror(err)}")
        return ret

    fsfd = check(libc.fsopen(b"overlay", 0), "fsopen")
    try:
        for key, value in params:
            check(libc.fsconfig(fsfd, fs_config_set_string, key.encode(), os.fsencode(value), 0), f"fsconfig {key}")
        check(libc.fsconfig(fsfd, fs_config_cmd_create, None, None, 0), "fsconfig create")
        mfd = check(libc.fsmount(fsfd, 0, 0), "fsmount")
        try:
            check(libc.move_mount(mfd, b"", -100, os.fsencode(target), move_mount_f_empty_path), "move_mount")
        finally:
            os.close(mfd)
    finally:
        os.close(fsfd)


@pytest.fixture
def mnt(root_mount: None, tmp_layers: str) -> Iterator[str]:
    target = os.path.join(tmp_layers, "merged")
    os.mkdir(target)
    yield target
    while subprocess.run(["umount", target], capture_output=True).returncode == 0:
        pass


def make_layer(path: str, files: dict[str, str]) -> str:
    os.makedirs(path)
    for rel, text in files.items():
        full = os.path.join(path, rel)
        os.makedirs(os.path.dirname(full), exist_ok=True)
        with open(full, "w") as f:
            f.write(text)
    return path


def only_mount(target: str) -> OverlayMount:
    found = [m for m in list_overlay_mounts() if m.target == target]
    assert len(found) == 1, found
    return found[0]


@pytest.mark.parametrize("name", HOSTILE, ids=[repr(n) for n in HOSTILE])
def test_legacy_escapes_round_trip(mnt: str, tmp_layers: str, name: str) -> None:
    lo0 = make_layer(os.path.join(tmp_layers, "L0-" + name), {"top": "0", "shared/x": "from 0"})
    lo1 = make_layer(os.path.join(tmp_layers, "L1-" + name), {"bottom": "1", "shared/y": "from 1"})
    up = make_layer(os.path.join(tmp_layers, "U-" + name), {"shared/new": "upper"})
    work = make_layer(os.path.join(tmp_layers, "W-" + name), {})
    opts = (
        f"lowerdir={escape_layer_path(lo0)}:{escape_layer_path(lo1)},"
        f"upperdir={escape_layer_path(up)},workdir={escape_layer_path(work)}"
    )
    mount_opts(opts, mnt)
    m = only_mount(mnt)
    assert (m.lowers, m.upper, m.work, m.problems) == ((lo0, lo1), up, work, ())
    stack = open_source(mnt)
    assert [layer.path for layer in stack.lowers] == [lo0, lo1] and stack.upper is not None
    assert model_tree(stack) == kernel_tree(mnt)


def test_hostile_mount_point(root_mount: None, tmp_layers: str) -> None:
    target = os.path.join(tmp_layers, "mnt \n,:\\[red]" + os.fsdecode(b"\xfe"))
    os.mkdir(target)
    lo = [make_layer(os.path.join(tmp_layers, f"l{i}"), {f"f{i}": str(i)}) for i in range(2)]
    mount_opts(f"lowerdir={lo[0]}:{lo[1]}", target)
    try:
        m = only_mount(target)
        assert m.lowers == tuple(lo) and m.upper is None and m.read_only
        assert model_tree(open_source(target)) == kernel_tree(target)
        out = io.StringIO()
        assert cli.main(["mounts", "--format", "json"], stdout=out) == 0
        rows = [json.loads(line) for line in out.getvalue().splitlines()]
        assert any(r["target"] == target and r["lowers"] == lo for r in rows)
        text = io.StringIO()
        assert cli.main(["mounts"], stdout=text) == 0
        assert "\n," not in text.getvalue() and "\\n,:" in text.getvalue()  # the newline is shown escaped
    finally:
        subprocess.run(["umount", target], check=True)


def test_new_api_lowerdir_plus_and_datadir_plus(mnt: str, tmp_layers: str) -> None:
    lo0 = make_layer(os.path.join(tmp_layers, "n:0 x"), {"a": "0"})
    lo1 = make_layer(os.path.join(tmp_layers, "n,1"), {"b": "1"})
    data = make_layer(os.path.join(tmp_layers, "data:d"), {"blob": "data"})
    mount_new_api([("lowerdir+", lo0), ("lowerdir+", lo1), ("datadir+", data)], mnt)
    m = only_mount(mnt)
    assert (m.lowers, m.data_layers, m.upper) == ((lo0, lo1), (data,), None)
    stack = open_source(mnt)
    assert [layer.path for layer in stack.data_layers] == [data]
    assert model_tree(stack) == kernel_tree(mnt)


def test_legacy_data_only_layers(mnt: str, tmp_layers: str) -> None:
    lo = make_layer(os.path.join(tmp_layers, "lo"), {"a": "0"})
    d1 = make_layer(os.path.join(tmp_layers, "d1"), {"blob1": "1"})
    d2 = make_layer(os.path.join(tmp_layers, "d:2"), {"blob2": "2"})
    mount_opts(f"lowerdir={lo}::{d1}::{escape_layer_path(d2)},metacopy=on,redirect_dir=on", mnt)
    m = only_mount(mnt)
    assert (m.lowers, m.data_layers) == ((lo,), (d1, d2))
    assert "metacopy=on" in m.options
    assert model_tree(open_source(mnt)) == kernel_tree(mnt)


def test_relative_layer_paths(mnt: str, tmp_layers: str) -> None:
    base = os.path.join(tmp_layers, "home")
    make_layer(os.path.join(base, "l", "A"), {"fa": "a"})
    make_layer(os.path.join(base, "l", "B"), {"fb": "b", "fa": "hidden"})
    make_layer(os.path.join(base, "id1", "diff"), {"new": "n"})
    make_layer(os.path.join(base, "id1", "work"), {})
    target = os.path.join(base, "id1", "merged")
    os.mkdir(target)
    mount_opts("lowerdir=l/A:l/B,upperdir=id1/diff,workdir=id1/work", target, cwd=base)  # Docker's fallback
    try:
        m = only_mount(target)
        assert m.lowers == (f"{base}/l/A", f"{base}/l/B") and m.upper == f"{base}/id1/diff"
        assert model_tree(open_source(target)) == kernel_tree(target)
    finally:
        subprocess.run(["umount", target], check=True)


def test_not_a_mount_point(root_mount: None, tmp_layers: str) -> None:
    with pytest.raises(StackError, match="not an overlay mount point"):
        open_source(tmp_layers)
    out = io.StringIO()
    assert cli.main(["tree", tmp_layers], stdout=out) == 2


def test_parse_ignores_other_filesystems_and_garbage() -> None:
    assert parse_line("36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue") is None
    assert parse_line("not a mountinfo line") is None
    assert parse_line("") is None
    m = parse_line("40 1 0:5 / /m rw - overlay overlay rw,lowerdir=/a:::/b")
    assert m is not None and m.problems  # bad lowerdir syntax is reported, not raised
