"""What one layer changed against the layers under it (dive's "current layer"): ``diff`` of an image shows its
top layer's changes, ``--layer`` any layer's, with that layer's own name; the same rules as a container's
upper. Checked on an image archive (its layers read in place) and on layer dirs."""

from __future__ import annotations

import io
import json
import os

import pytest

from tests.archives import docker_save_archive
from ufs_tui import cli


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    capsys.readouterr()
    out = io.StringIO()
    rc = cli.main(argv, stdout=out)
    return rc, out.getvalue(), capsys.readouterr().err


def test_diff_of_an_image_is_its_top_layers_changes(
    tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]
) -> None:
    archive = f"{tmp_path}/img.tar"
    docker_save_archive(archive)  # layer 1: a, b, dir/x; layer 2 (top): a replaced, c added, b deleted
    rc, out, err = run(["diff", archive, "--format", "docker"], capsys)
    assert rc == 0, err
    assert out.splitlines() == ["C /a", "D /b", "A /c"]
    rc, out, err = run(["diff", archive, "--format", "json"], capsys)
    assert rc == 0, err
    assert {(o["path"], o["layer"]) for o in map(json.loads, out.splitlines())} == {
        ("/a", "lower:0"),
        ("/b", "lower:0"),
        ("/c", "lower:0"),
    }
    rc, out, err = run(["diff", archive, "--layer", "lower:1", "--format", "docker"], capsys)
    assert rc == 0, err
    assert out.splitlines() == ["A /a", "A /b", "A /dir", "A /dir/x"]  # the bottom layer adds all it has
    rc, out, err = run(["diff", archive, "--layer", "upper"], capsys)
    assert rc == 2 and "no such layer" in err and "lower:0" in err, err


def test_diff_layer_of_layer_dirs(tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]) -> None:
    base = os.fspath(tmp_path)
    for d in ("l1", "l0", "u"):
        os.makedirs(f"{base}/{d}")
    with open(f"{base}/l1/f", "w") as f:
        f.write("old\n")
    with open(f"{base}/l0/f", "w") as f:
        f.write("new, longer\n")
    with open(f"{base}/u/g", "w") as f:
        f.write("g\n")
    stack = ["--lower", f"{base}/l0:{base}/l1", "--upper", f"{base}/u"]
    rc, out, _ = run(["diff", *stack, "--format", "docker"], capsys)
    assert (rc, out.splitlines()) == (0, ["A /g"])  # the upper's, as before
    rc, out, _ = run(["diff", *stack, "--layer", "lower:0", "--format", "docker"], capsys)
    assert (rc, out.splitlines()) == (0, ["C /f"])
