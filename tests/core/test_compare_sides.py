"""The sides of a comparison, opened from what a user types (:mod:`ufs_tui.core.reports.compare_sides`): the
explorer's ``merged`` and layer names of the stack explored, a SOURCE, SOURCE@LAYER, a plain dir, the options they
are read with, and the one line said for a side that cannot be opened. The CLI opens its sides the same way
(tests/core/test_compare.py)."""

from __future__ import annotations

import io
import os
from pathlib import Path

import pytest

from tests.archives import docker_save_archive
from ufs_tui.cli import main
from ufs_tui.core.model.errors import UfsError
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.reports.compare import Comparison, Tree, text_line
from ufs_tui.core.reports.compare_sides import SideOptions, open_side


def write(path: Path, data: bytes = b"x") -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def lines(a: Tree, b: Tree) -> list[str]:
    return [text_line(d) for d in Comparison(a, b).differences()]


@pytest.fixture
def here(tmp_path: Path) -> Stack:
    """The stack explored: lower:1 (bottom), lower:0, and an upper; plain files, no markers."""
    l1, l0, up = tmp_path / "l1", tmp_path / "l0", tmp_path / "up"
    write(l1 / "base", b"base\n")
    write(l1 / "etc/os", b"one\n")
    write(l0 / "etc/os", b"two\n")
    write(l0 / "app", b"app\n")
    write(up / "etc/os", b"top\n")
    write(up / "new", b"new\n")
    return Stack.build([str(l0), str(l1)], upper=str(up), xattr_ns="user")


def test_merged_and_layer_names_name_the_stack_explored(here: Stack) -> None:
    merged = open_side("merged", "A", here=here)
    assert (merged.stack, merged.layer, merged.label) == (here, None, "A")
    for name in ("upper", "lower:0", "lower:1"):
        side = open_side(name, "B", here=here)
        assert side.stack == here and side.layer == here.layer_by_name(name)
    # the upper's own tree against lower:0's: nothing merged in on either side
    assert lines(open_side("lower:0", here=here), open_side("upper", here=here)) == [
        "D /app",
        "C /etc/os  content",
        "A /new",
    ]
    # the merged view against its bottom layer: all that the layers above it made
    assert lines(open_side("lower:1", here=here), open_side("merged", here=here)) == [
        "A /app",
        "C /etc/os  content",
        "A /new",
    ]


def test_the_stack_names_win_over_dirs_of_that_name_which_a_path_still_names(
    here: Stack, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    work = tmp_path / "cwd"
    for name in ("upper", "merged"):
        write(work / name / "only-in-the-dir")
    monkeypatch.chdir(work)
    assert open_side("upper", here=here).layer == here.upper
    assert open_side("merged", here=here).stack == here
    for spec in ("./upper", "./merged"):
        side = open_side(spec, here=here)
        assert side.layer is None and [la.path for la in side.stack.lowers] == [str(work / spec[2:])]
    # with no stack explored (the CLI), the names are paths like any other
    assert [la.path for la in open_side("merged").stack.lowers] == [str(work / "merged")]
    assert lines(open_side("./upper"), open_side("upper", here=here)) == [
        "A /etc",
        "A /etc/os",
        "A /new",
        "D /only-in-the-dir",
    ]


def test_any_source_or_dir_beside_the_stack_explored(here: Stack, tmp_path: Path) -> None:
    archive = str(tmp_path / "image.tar")
    docker_save_archive(archive)  # lower:1: a, b, dir/x; lower:0 replaces a, adds c, deletes b
    top = open_side(f"{archive}@lower:0", "B", here=here)
    assert top.stack != here and top.layer is not None and top.layer.name == "lower:0"
    d = tmp_path / "unpacked"
    write(d / "a", b"a2 longer\n")
    write(d / "c", b"c\n")
    assert lines(top, open_side(str(d), here=here)) == []
    assert lines(open_side(f"{archive}@lower:1"), open_side(archive)) == ["C /a  size 3 → 10, content", "D /b", "A /c"]


def test_the_options_a_side_is_read_with(tmp_path: Path) -> None:
    archive = str(tmp_path / "image.tar")
    docker_save_archive(archive)
    opts = SideOptions(options=("metacopy=off", "metacopy=off"))
    assert open_side(archive, opts=opts).stack.options.count("metacopy=off") == 1  # after the archive's own
    marked, plain = tmp_path / "marked", tmp_path / "plain"
    write(marked / "a")
    write(marked / ".wh.b", b"")  # a naively unpacked layer's whiteout
    write(plain / "a")
    assert lines(open_side(str(plain)), open_side(str(marked))) == ["A /.wh.b"]
    markers = SideOptions(dir_options=("oci-whiteouts",))
    assert lines(open_side(str(plain), opts=markers), open_side(str(marked), opts=markers)) == []
    assert "oci-whiteouts" in open_side(str(marked), opts=markers).stack.options
    # the CLI's flags are those options: one opener for both
    out = io.StringIO()
    assert main(["compare", str(plain), str(marked), "--oci-whiteouts"], stdout=out) == 0 and out.getvalue() == ""
    assert main(["compare", str(plain), str(marked)], stdout=out) == 1 and out.getvalue() == "A /.wh.b\n"


def test_a_bad_side_is_one_line_saying_why(here: Stack, tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo")
    (tmp_path / "dir").mkdir()
    cases = [
        ("lower:7", "lower:7: no such layer (this stack has upper, lower:0, lower:1)"),
        ("data:0", "data:0: no such layer (this stack has upper, lower:0, lower:1)"),
        ("", "A: empty (fix: give merged, a layer name (upper, lower:N, data:N), a SOURCE, SOURCE@LAYER or a dir)"),
        (f"{tmp_path}/dir@upper", f"{tmp_path}/dir@upper: {tmp_path}/dir is a plain dir, not a stack: it has no "
         "layer upper"),
        (str(tmp_path / "nowhere"), f"{tmp_path}/nowhere: no such file or directory, and not a source"),
        (str(tmp_path / "fifo"), f"{tmp_path}/fifo: not a dir, an image archive or a SOURCE (a FIFO, socket or "
         "device is not read)"),
        ("@lower:0", "@lower:0: no SOURCE before '@lower:0'"),
        ("docker-image:", "docker-image:: 'docker-image:' needs a name after the colon"),
    ]  # fmt: skip
    for spec, words in cases:
        with pytest.raises(UfsError) as err:
            open_side(spec, "A", here=here)
        assert str(err.value).startswith(words) and "\n" not in str(err.value), spec
    with pytest.raises(UfsError, match=r"^B: empty \(fix: give a SOURCE, SOURCE@LAYER or a dir\)$"):
        open_side("", "B")  # (no stack explored: no stack names to give)
