"""Every ``--format json`` output is JSON Lines and nothing else on stdout (notes and warnings go to stderr),
so that ``| jq`` works: tree, diff, demo --print, mounts and ps."""

from __future__ import annotations

import io
import json
import os

import pytest

from ufs_tui import cli


def _stack(base: str) -> list[str]:
    low, up = f"{base}/l", f"{base}/u"
    for d in (low, up):
        os.makedirs(d)
    with open(f"{low}/a", "w") as f:
        f.write("a\n")
    with open(f"{up}/b", "w") as f:
        f.write("b\n")
    return ["--lower", low, "--upper", up]


@pytest.mark.parametrize(
    "argv",
    [
        ["tree", "--format", "json"],
        ["diff", "--format", "json"],
        ["demo", "--print", "--format", "json"],
        ["demo", "--print", "--format", "json", "--all"],
        ["mounts", "--format", "json"],
        ["ps", "--format", "json", "--no-size"],
    ],
    ids=lambda a: " ".join(a),
)
def test_json_lines_only(argv: list[str], tmp_path: os.PathLike[str], capsys: pytest.CaptureFixture[str]) -> None:
    if argv[0] in ("tree", "diff"):
        argv = [*argv, *_stack(os.fspath(tmp_path))]
    out = io.StringIO()
    rc = cli.main(argv, stdout=out)
    assert rc in (0, 1), capsys.readouterr().err
    lines = out.getvalue().splitlines()
    if argv[0] in ("tree", "demo", "diff"):
        assert lines, "no output"
    for line in lines:
        assert isinstance(json.loads(line), dict), line
