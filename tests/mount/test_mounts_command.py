"""``ufs-tui mounts`` marks the mounts ufs-tui made (from this user's record), and ``umount`` of a dir where
nothing is mounted points at the command that lists them."""

from __future__ import annotations

import io
import json
import os

import pytest

from ufs_tui import cli
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.mount import MountManager


def test_mounts_marks_ours_and_umount_points_at_it(
    root_mount: None, tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    base = os.fspath(tmp_path)
    for d in ("l", "l2", "rt", "empty"):
        os.makedirs(f"{base}/{d}")
    monkeypatch.setenv("UFS_TUI_RUNTIME_DIR", f"{base}/rt")
    manager = MountManager(runtime=f"{base}/rt")
    handle = manager.mount(Stack.build([f"{base}/l", f"{base}/l2"]), None, "kernel", [])
    try:
        out = io.StringIO()
        assert cli.main(["mounts"], stdout=out) == 0
        assert f"{handle.target}  [ufs-tui, kernel]" in out.getvalue().splitlines()
        out = io.StringIO()
        assert cli.main(["mounts", "--format", "json"], stdout=out) == 0
        ours = [o for o in map(json.loads, out.getvalue().splitlines()) if o["target"] == handle.target]
        assert [o["ufs_tui"] for o in ours] == ["kernel"]
        capsys.readouterr()
        assert cli.main(["umount", f"{base}/empty"], stdout=io.StringIO()) == 2
        err = capsys.readouterr().err
        assert "nothing is mounted here" in err and "'ufs-tui mounts' lists" in err and "--mine" not in err, err
    finally:
        manager.unmount(handle)
