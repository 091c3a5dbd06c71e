"""Wasted space (:mod:`ufs_tui.core.reports.waste`, ``ufs-tui du``) on layers the kernel wrote: each kind of
waste made by real operations through a real mount, each counted once, with the layer that holds the bytes
and the layer whose change made them unreachable."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.archives import docker_save_archive
from tests.kernel.lab import Lab
from ufs_tui.core.reports.waste import (
    DELETED,
    DUPLICATE,
    HASHING,
    OPAQUE_HIDDEN,
    OVERWRITTEN,
    UNCHANGED_COPY,
    WALKING,
    find_waste,
)  # fmt: skip
from ufs_tui.core.sources.archive import open_archive

pytestmark = pytest.mark.usefixtures("root_mount")


def _stored(root: str) -> int:
    """Bytes of the regular files under a layer dir, as ``find -type f`` sees them."""
    total = 0
    for d, _, files in os.walk(root):
        for f in files:
            st = os.lstat(os.path.join(d, f))
            total += st.st_size if os.path.isfile(os.path.join(d, f)) and not os.path.islink(os.path.join(d, f)) else 0
    return total


def _image(lab: Lab) -> None:
    """lower l1: a base; lower l0 and the upper: changes the kernel made through a mount."""
    base = lab.lowers[1]
    lab.file(f"{base}/big", b"B" * 4000)
    lab.file(f"{base}/same", b"S" * 300)
    lab.file(f"{base}/gone", b"G" * 200)
    lab.file(f"{base}/dir/a", b"A" * 100)
    lab.file(f"{base}/dir/b", b"b" * 50)
    lab.file(f"{base}/cache/x", b"X" * 70)
    lab.file(f"{base}/copy1", b"dup" * 10)
    lab.file(f"{base}/sub/copy2", b"dup" * 10)
    lab.ops("echo new > big; chmod 600 same; rm gone; rm -rf dir; mkdir dir; echo fresh > dir/c; rm -r cache")


def test_each_kind_of_waste_is_found_once_with_its_cause(lab: Lab) -> None:
    _image(lab)
    report = find_waste(lab.stack())
    rows = {(w.path, w.kind): w for w in report.rows}
    assert rows[("/big", OVERWRITTEN)].size == 4000
    assert rows[("/same", UNCHANGED_COPY)].size == 300  # chmod without metacopy: the whole file copied up
    assert rows[("/gone", DELETED)].size == 200
    assert rows[("/dir", OPAQUE_HIDDEN)].size == 150  # rm -rf; mkdir: an opaque dir hides both files
    assert rows[("/cache", DELETED)].size == 70
    assert rows[("/sub/copy2", DUPLICATE)].same_as == "/copy1"
    assert len(report.rows) == 6 and all(w.by is None or w.by.role == "upper" for w in report.rows)
    assert {w.layer.name for w in report.rows if w.kind != DUPLICATE} == {"lower:1"}
    # every byte of every layer is counted once: the totals are what the layer dirs hold
    assert report.layer_bytes == {
        "upper": _stored(lab.upper),
        "lower:0": _stored(lab.lowers[0]),
        "lower:1": _stored(lab.lowers[1]),
    }
    assert report.wasted == 4000 + 300 + 200 + 150 + 70 + 30
    assert report.by_cause() == {"upper": 4720, "-": 30}


def test_metacopy_copies_waste_nothing(lab: Lab) -> None:
    lab.file(f"{lab.lowers[1]}/same", b"S" * 300)
    lab.ops("chmod 600 same", "redirect_dir=on,metacopy=on")
    report = find_waste(lab.stack("redirect_dir=on,metacopy=on"), duplicates=False)
    assert report.rows == [] and report.layer_bytes["upper"] == 0 and report.layer_bytes["lower:1"] == 300


def test_du_command_text_json_and_paths(lab: Lab, tmp_path: os.PathLike[str]) -> None:
    _image(lab)
    args = ["--lower", ":".join(lab.lowers), "--upper", lab.upper, "--work", lab.work]
    cmd = [sys.executable, "-m", "ufs_tui", "du", *args]
    text = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    assert "/big: 4.0 kB added in lower:1, replaced in upper; the lower copy is dead weight" in text
    assert "/same: 300 B in lower:1, copied again unchanged in upper" in text
    got = json.loads(subprocess.run([*cmd, "--format", "json"], capture_output=True, text=True, check=True).stdout)
    assert got["wasted"] == 4750 and got["by_kind"][DUPLICATE] == 30 and got["top"][0]["path"] == "/big"
    paths = subprocess.run([*cmd, "--by", "path", "--depth", "1"], capture_output=True, text=True, check=True).stdout
    lines = paths.splitlines()  # visible bytes: big's 4 new bytes, same, dir/c, copy1 and sub/copy2
    assert lines[0].split() == ["370", "B", "/"] and ["30", "B", "/sub"] in [line.split() for line in lines]
    archive = os.path.join(str(tmp_path), "image.tar")
    docker_save_archive(archive)
    report = find_waste(open_archive(archive))
    assert [(w.path, w.kind, w.size) for w in report.rows] == [("/a", OVERWRITTEN, 3), ("/b", DELETED, 3)]


def test_a_renamed_dir_is_not_waste(lab: Lab) -> None:
    """``mv docs manual`` with redirect_dir=on whites out /docs, yet its lower dir still shows at /manual."""
    lab.file(f"{lab.lowers[1]}/docs/guide", b"g" * 100)
    lab.file(f"{lab.lowers[1]}/docs/old/notes", b"n" * 40)
    lab.ops("mv docs manual; rm manual/old/notes", "redirect_dir=on")
    report = find_waste(lab.stack("redirect_dir=on"), duplicates=False)
    assert [(w.path, w.kind, w.size) for w in report.rows] == [("/manual/old/notes", DELETED, 40)]
    assert report.layer_bytes["lower:1"] == 140


def test_ci_exact_rules_count_each_dead_copy_once(lab: Lab) -> None:
    """``ci --rules exact``: the same waste as ``du``, judged by dive's rules, each offender said in words."""
    _image(lab)
    args = ["--lower", ":".join(lab.lowers), "--upper", lab.upper, "--work", lab.work]
    cmd = [sys.executable, "-m", "ufs_tui", "ci", *args, "--rules", "exact", "--format", "json"]
    r = subprocess.run(cmd, capture_output=True, text=True)
    got = json.loads(r.stdout)
    assert r.returncode == 1 and got["rules"] == "exact" and got["wastedBytes"] == 4750
    stored = _stored(lab.upper) + sum(_stored(d) for d in lab.lowers)
    assert got["sizeBytes"] == stored and got["userSizeBytes"] == stored - _stored(lab.lowers[1])
    assert abs(got["efficiency"] - (1 - 4750 / stored)) < 1e-9
    first = got["inefficientFiles"][0]
    assert (first["file"], first["count"], first["sizeBytes"]) == ("/big", 2, 4000)
    assert first["why"].startswith("4.0 kB added in lower:1, replaced in upper")
    passing = subprocess.run([*cmd[:-2], "--lowestEfficiency", "0", "--highestUserWastedPercent", "disabled"])
    assert passing.returncode == 0


def test_what_needs_no_hashing_is_given_before_files_are_hashed(lab: Lab) -> None:
    """The waste view shows every kind but duplicates at once: those are handed over before any file is hashed."""
    _image(lab)
    early: list[tuple[str, list[tuple[str, str]]]] = []
    report = find_waste(lab.stack(), so_far=lambda r, doing: early.append((doing, [(w.path, w.kind) for w in r.rows])))
    assert [doing for doing, _ in early] == [HASHING]  # (a walk this small takes less than SO_FAR_EVERY)
    final = [(w.path, w.kind) for w in report.rows]
    assert early[0][1] == [p for p in final if p[1] != DUPLICATE] and ("/sub/copy2", DUPLICATE) in final


def test_a_long_walk_gives_the_report_so_far_as_it_goes(lab: Lab, monkeypatch: pytest.MonkeyPatch) -> None:
    """While the walk is long, what it found so far is handed over (largest first), each time more of it."""
    import ufs_tui.core.reports.waste as W

    for i in range(3000):  # deleted one by one in the upper: 3,000 wastes, found as the walk goes
        lab.file(f"{lab.lowers[1]}/d{i // 100:02d}/f{i:04d}", b"x" * (i % 97 + 1))
        lab.whiteout(f"{lab.upper}/d{i // 100:02d}/f{i:04d}")
    monkeypatch.setattr(W, "SO_FAR_EVERY", 0.0)  # (a report at every check: every 512 names)
    seen: list[tuple[str, int]] = []
    report = find_waste(lab.stack(), so_far=lambda r, doing: seen.append((doing, len(r.rows))))
    walking = [n for doing, n in seen if doing == WALKING]
    assert len(walking) >= 5 and walking == sorted(walking) and 0 < walking[-1] < len(report.rows) == 3000
    assert seen[-1] == (HASHING, 3000)
