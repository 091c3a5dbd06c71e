"""``ufs-tui compare`` and :mod:`ufs_tui.core.reports.compare` on plain dirs and image archives (no mount, no root):
each kind of difference, layer vs layer of one archive, two images of one archive sharing their bottom layer (not
read), hostile names, unified diffs, JSON, exit statuses; and the ``SOURCE@LAYER`` split, fuzzed.

What the kernel shows through real mounts is in tests/kernel/test_compare.py."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.archives import docker_save_archive, layer_tar
from tests.conftest import time_limit
from ufs_tui.cli import main
from ufs_tui.core.model.display import printable
from ufs_tui.core.model.errors import StackError, UfsError
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.reports.compare import LAYER_NAME, Comparison, Difference, Tree, json_line, split_layer, text_line

REPO = Path(__file__).resolve().parents[2]


def write(path: Path, data: bytes = b"x", mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    path.chmod(mode)


def run(*argv: str) -> tuple[int, str]:
    out = io.StringIO()
    rc = main(["compare", *argv], stdout=out)
    return rc, out.getvalue()


def cli(*argv: str) -> subprocess.CompletedProcess[bytes]:
    """The real console entry, in a process of its own (what a user sees, tracebacks included)."""
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "ufs_tui", "compare", *argv], capture_output=True, timeout=60, cwd=REPO, env=env
    )


def plain(path: Path | str) -> Tree:
    return Tree(Stack.build([os.fspath(path)]))


def diffs(a: Tree, b: Tree, path: str = "/") -> list[Difference]:
    return list(Comparison(a, b).differences(path))


def summary(found: list[Difference]) -> list[tuple[str, str, tuple[str, ...]]]:
    return [(d.kind, d.path, tuple(f.name for f in d.fields)) for d in found]


@pytest.fixture
def two(tmp_path: Path) -> tuple[Path, Path]:
    """Two dirs that differ in each way a plain user can make."""
    a, b = tmp_path / "a", tmp_path / "b"
    for side in (a, b):
        write(side / "same/file", b"same\n")
        write(side / "etc/motd", b"hello\n" if side is a else b"world\n")  # same size, other content
        write(side / "mode", b"m", 0o644 if side is a else 0o600)
        write(side / "grows", b"12" if side is a else b"12345")
        (side / "link").symlink_to("x" if side is a else "y")
    write(a / "gone/sub/deep", b"d")  # a dir only in A: one D line
    write(a / "gone/other", b"o")
    write(b / "new/sub/f", b"n")  # a dir only in B: A for it and all under it
    write(a / "swap", b"file in A")  # file -> dir
    write(b / "swap/inner", b"i")
    write(a / "dirfile/inner", b"i")  # dir -> file
    write(b / "dirfile", b"file in B")
    return a, b


def test_each_kind_of_difference_in_tree_order(two: tuple[Path, Path]) -> None:
    a, b = two
    assert summary(diffs(plain(a), plain(b))) == [
        ("C", "/dirfile", ("type",)),  # a dir replaced by a file: one line, nothing under it
        ("C", "/etc/motd", ("content",)),
        ("D", "/gone", ()),
        ("C", "/grows", ("size", "content")),
        ("C", "/link", ("target",)),
        ("C", "/mode", ("mode",)),
        ("A", "/new", ()),
        ("A", "/new/sub", ()),
        ("A", "/new/sub/f", ()),
        ("C", "/swap", ("type",)),  # a file replaced by a dir: what the dir holds is new
        ("A", "/swap/inner", ()),
    ]


def test_text_lines_say_what_differs_with_both_values(two: tuple[Path, Path]) -> None:
    a, b = two
    rc, out = run(str(a), str(b))
    assert rc == 1
    lines = out.splitlines()
    assert "C /etc/motd  content" in lines
    assert "C /grows  size 2 → 5, content" in lines
    assert "C /mode  mode 0644 → 0600" in lines
    assert "C /link  target x → y" in lines
    assert "C /swap  type file → dir" in lines
    assert "D /gone" in lines and "A /new/sub/f" in lines


def test_json_lines_parse_and_carry_both_values(two: tuple[Path, Path]) -> None:
    a, b = two
    rc, out = run(str(a), str(b), "--format", "json")
    assert rc == 1
    objs = {o["path"]: o for o in map(json.loads, out.splitlines())}
    motd = objs["/etc/motd"]["fields"]["content"]
    assert motd == {
        "a": "sha256:" + hashlib.sha256(b"hello\n").hexdigest(),
        "b": "sha256:" + hashlib.sha256(b"world\n").hexdigest(),
    }
    assert objs["/grows"]["fields"] == {"size": {"a": 2, "b": 5}, "content": {"a": None, "b": None}}
    assert objs["/mode"]["fields"] == {"mode": {"a": 0o644, "b": 0o600}}
    assert objs["/swap"] == {"kind": "C", "path": "/swap", "type": "dir", "fields": {"type": {"a": "file", "b": "dir"}}}
    assert objs["/gone"] == {"kind": "D", "path": "/gone", "type": "dir"}
    assert objs["/new/sub/f"] == {"kind": "A", "path": "/new/sub/f", "type": "file"}


def test_the_same_tree_exits_0_and_prints_nothing(two: tuple[Path, Path]) -> None:
    a, _ = two
    assert run(str(a), str(a)) == (0, "")
    r = cli(str(a), str(a), "--format", "json")
    assert (r.returncode, r.stdout, r.stderr) == (0, b"", b"")


def test_b_against_a_is_a_against_b_mirrored(two: tuple[Path, Path]) -> None:
    a, b = two
    swap = {"A": "D", "D": "A", "C": "C"}
    forward = {(d.kind, d.path) for d in diffs(plain(a), plain(b))}
    back = {(swap[d.kind], d.path) for d in diffs(plain(b), plain(a))}
    # (a deleted dir is one line, an added one a line per path: compare the tops only)
    assert {x for x in forward if not x[1].startswith(("/new/", "/swap/", "/gone/", "/dirfile/"))} == {
        x for x in back if not x[1].startswith(("/new/", "/swap/", "/gone/", "/dirfile/"))
    }


def test_content_prints_the_unified_diff_of_one_path(two: tuple[Path, Path]) -> None:
    a, b = two
    rc, out = run(str(a), str(b), "--content", "/etc/motd")
    assert rc == 1
    assert out == "C /etc/motd  content\n--- A:/etc/motd\n+++ B:/etc/motd\n@@ -1 +1 @@\n-hello\n+world\n"
    rc, out = run(str(a), str(b), "--content", "/same/file")
    assert (rc, out) == (0, "")
    rc, out = run(str(a), str(b), "--content", "/etc")  # a dir: what is under it
    assert rc == 1 and out.startswith("C /etc/motd  content\n--- A:/etc/motd\n")
    rc, out = run(str(a), str(b), "--content", "/nowhere")
    assert (rc, out) == (2, "")


def test_diff_in_json_and_binary_files(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    write(a / "bin", b"\0\1\2" * 10)
    write(b / "bin", b"\0\1\3" * 10 + b"tail")
    write(a / "esc", b"\x1b]0;pwned\x07 line\n")
    write(b / "esc", b"\x1b[31m red\x07 line\n")
    rc, out = run(str(a), str(b), "--diff")
    assert rc == 1
    assert "Binary files A:/bin and B:/bin differ (30 B and 34 B)\n" in out
    assert "\x1b" not in out and "\x07" not in out  # content escapes are escaped too
    assert "-\\x1b]0;pwned\\x07 line\n+\\x1b[31m red\\x07 line\n" in out
    rc, out = run(str(a), str(b), "--diff", "--format", "json")
    objs = {o["path"]: o for o in map(json.loads, out.splitlines())}
    assert objs["/bin"]["diff"].startswith("Binary files")
    assert objs["/esc"]["diff"].startswith("--- A:/esc\n+++ B:/esc\n")


def test_hostile_names_are_escaped_in_text_and_exact_in_json(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    names = [b"new\nline", b"bad\xff\xfe", b"\x1b[2J\x1b]0;title\x07", b"tab\there", b"back\\slash"]
    for raw in names:
        write(Path(os.fsdecode(os.path.join(os.fsencode(b), raw))), b"x")
    rc, out = run(str(a), str(b))
    assert rc == 1
    assert "\x1b" not in out and "\x07" not in out and len(out.splitlines()) == len(names)
    for raw in names:
        assert f"A /{printable(os.fsdecode(raw))}" in out.splitlines()
    rc, out = run(str(a), str(b), "--format", "json")
    paths = set()
    for obj in map(json.loads, out.splitlines()):
        exact = base64.b64decode(obj["path_b64"]) if "path_b64" in obj else obj["path"].encode()
        paths.add(exact)
    assert paths == {b"/" + raw for raw in names}
    r = cli(str(a), str(b))  # the real stdout: no traceback whatever the locale makes of it
    assert r.returncode == 1 and r.stderr == b"" and b"\x1b" not in r.stdout


def test_names_are_in_byte_order_each_dir_before_what_it_holds(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    for raw in (b"a-b", b"a/x", b"\xc3\xa9", b"\xff", b"Z", b"\x7f"):
        write(Path(os.fsdecode(os.path.join(os.fsencode(b), raw))))
    got = [os.fsencode(d.path) for d in diffs(plain(a), plain(b))]
    assert got == [b"/Z", b"/a", b"/a/x", b"/a-b", b"/\x7f", b"/\xc3\xa9", b"/\xff"]


def test_symlink_loops_and_fifos_are_compared_never_followed_or_opened(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for side in (a, b):
        side.mkdir()
        (side / "loop").symlink_to("loop")
        (side / "up").symlink_to("..")
        os.mkfifo(side / "fifo", 0o644 if side is a else 0o600)
    with time_limit(20):
        assert summary(diffs(plain(a), plain(b))) == [("C", "/fifo", ("mode",))]
    (tmp_path / "self").symlink_to("self")
    r = cli(str(tmp_path / "self"), str(a))
    assert r.returncode == 2 and r.stderr.count(b"\n") == 1 and b"Traceback" not in r.stderr


def test_a_name_that_vanishes_mid_walk_is_absent_from_then_on(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    for side in (a, b):
        for n in "abcdefgh":
            write(side / "d" / n, n.encode())
        write(side / "e/x", b"x")
    write(b / "d/a", b"changed")
    walk = Comparison(plain(a), plain(b)).differences()
    first = next(walk)
    assert (first.kind, first.path) == ("C", "/d/a")
    os.unlink(b / "d/c")  # listed in B already: now gone
    os.unlink(a / "d/e")
    (b / "d/f").unlink()
    (a / "d/f").unlink()  # gone from both: nothing to say
    for side in (a, b):  # a dir not listed yet, gone from both
        os.unlink(side / "e/x")
        os.rmdir(side / "e")
    rest = list(walk)
    assert [(d.kind, d.path) for d in rest] == [("D", "/d/c"), ("A", "/d/e")]


def test_the_root_itself_is_compared(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir(mode=0o755)
    b.mkdir(mode=0o700)
    os.chmod(b, 0o700)
    assert run(str(a), str(b)) == (1, "C /  mode 0755 → 0700\n")


# ------------------------------------------------------------------------------------------------ archives


def two_images_archive(path: str) -> None:
    """A ``docker save`` of two images, app:1 and app:2, that share their bottom layer (``usr/`` with many files)."""
    base = layer_tar({f"usr/lib/f{n}": b"%d" % n for n in range(50)} | {"etc/os": b"base\n"})
    one = layer_tar({"app/run": b"v1\n", "app/conf": b"x=1\n"})
    two = layer_tar({"app/run": b"v2\n", "app/new": b"n\n", "etc/.wh.os": b""})
    blobs = {"base/layer.tar": base, "one/layer.tar": one, "two/layer.tar": two}
    with tarfile.open(path, "w") as t:

        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            t.addfile(info, io.BytesIO(data))

        manifest = []
        for tag, top in (("app:1", "one/layer.tar"), ("app:2", "two/layer.tar")):
            layers = ["base/layer.tar", top]
            diff_ids = [f"sha256:{hashlib.sha256(blobs[x]).hexdigest()}" for x in layers]
            config = {"rootfs": {"type": "layers", "diff_ids": diff_ids}}
            name = f"{tag.replace(':', '-')}.json"
            add(name, json.dumps(config).encode())
            manifest.append({"Config": name, "RepoTags": [tag], "Layers": layers})
        for name, data in blobs.items():
            add(name, data)
        add("manifest.json", json.dumps(manifest).encode())


@pytest.fixture
def archive(tmp_path: Path) -> str:
    path = str(tmp_path / "hand.tar")
    docker_save_archive(path)
    return path


def test_layer_against_layer_of_one_archive(archive: str) -> None:
    # lower:1 (the bottom: a, b, dir/x) against lower:0 (the top: a replaced, c new, a .wh. whiteout for b)
    rc, out = run(f"{archive}@lower:1", f"{archive}@lower:0")
    assert rc == 1
    # the top layer's own tree: its whiteout is no file of it, and it has no dir/
    assert out.splitlines() == ["C /a  size 3 → 10, content", "D /b", "A /c", "D /dir"]
    rc, out = run(archive, f"{archive}@lower:1")  # the merged image against its bottom layer
    assert out.splitlines() == ["C /a  size 10 → 3, content", "A /b", "D /c"]
    assert run(f"{archive}@lower:0", f"{archive}@lower:0") == (0, "")
    assert run(archive, archive) == (0, "")


def test_a_layer_against_a_plain_dir(archive: str, tmp_path: Path) -> None:
    d = tmp_path / "unpacked"
    write(d / "a", b"a2 longer\n")
    write(d / "c", b"c\n")
    assert run(f"{archive}@lower:0", str(d)) == (0, "")
    write(d / "c", b"C\n")
    assert run(f"{archive}@lower:0", str(d)) == (1, "C /c  content\n")
    rc, out = run(str(d), f"{archive}@lower:0", "--diff")
    assert out == "C /c  content\n--- A:/c\n+++ B:/c\n@@ -1 +1 @@\n-C\n+c\n"


def test_two_images_of_one_archive_share_their_bottom_layer_unread(tmp_path: Path, monkeypatch: Any) -> None:
    path = str(tmp_path / "two.tar")
    two_images_archive(path)
    rc, out = run(path, path, "--image-a", "app:1", "--image-b", "app:2")
    assert rc == 1
    assert out.splitlines() == ["D /app/conf", "A /app/new", "C /app/run  content", "D /etc/os"]
    from ufs_tui.core.sources.archive import open_archive

    scanned: list[str] = []
    a, b = Tree(open_archive(path, "app:1")), Tree(open_archive(path, "app:2"))
    for tree in (a, b):
        scan = tree.view.scan_dir

        def counting(p: str, *args: Any, scan: Any = scan) -> Any:
            scanned.append(p)
            return scan(p, *args)

        monkeypatch.setattr(tree.view, "scan_dir", counting)
    assert len(diffs(a, b)) == 4
    assert "/usr" not in scanned and "/usr/lib" not in scanned  # the shared layer's own dirs: the same, unread
    assert sorted(set(scanned)) == ["/", "/app", "/etc"]


def test_bad_sides_are_one_line_and_exit_2(archive: str, tmp_path: Path) -> None:
    cases = [
        (f"{archive}@lower:7", b"no such layer (this stack has lower:0, lower:1)"),
        (f"{archive}@upper", b"no such layer"),
        (f"{tmp_path}@upper", b"is a plain dir, not a stack: it has no layer upper"),
        (str(tmp_path / "nowhere"), b"no such file or directory"),
        ("@lower:0", b"no SOURCE before '@lower:0'"),
        (str(tmp_path / "fifo"), b"not a dir, an image archive or a SOURCE"),  # (never opened: no hang)
    ]
    os.mkfifo(tmp_path / "fifo")
    for spec, words in cases:
        r = cli(spec, archive)
        assert r.returncode == 2, (spec, r)
        assert r.stdout == b"" and r.stderr.count(b"\n") == 1 and words in r.stderr, (spec, r.stderr)


def test_a_path_holding_an_at_sign_is_a_path(tmp_path: Path) -> None:
    d = tmp_path / "build@upper"
    write(d / "f", b"1")
    e = tmp_path / "x@lower:0"
    write(e / "f", b"2")
    rc, out = run(str(d), str(e))
    assert (rc, out) == (1, "C /f  content\n")
    assert split_layer("docker-image:alpine@sha256:" + "0" * 64) == ("docker-image:alpine@sha256:" + "0" * 64, None)


def test_help_explains() -> None:
    r = cli("--help")
    text = r.stdout.decode()
    assert r.returncode == 0
    for words in ("SOURCE@LAYER", "only in B", "only in A", "exit status", "--content", "sha256", "tree order"):
        assert words in text, words


# ------------------------------------------------------------------------------------------------ output units


def test_text_and_json_lines_of_a_target_that_is_not_utf8() -> None:
    from ufs_tui.core.reports.compare import Field

    bad = os.fsdecode(b"t\xff\n")
    d = Difference("C", "/l", "symlink", (Field("target", "ok", bad),))
    assert text_line(d) == "C /l  target ok → t\\xff\\n"
    obj = json.loads(json_line(d))
    assert base64.b64decode(obj["fields"]["target"]["b_b64"]) == b"t\xff\n" and "a_b64" not in obj["fields"]["target"]


# ------------------------------------------------------------------------------------------------ SOURCE@LAYER

SPEC_CHARS = st.sampled_from(list("ab/:@.-_ \n\\\x00\x1b") + ["upper", "lower:", "data:", "0", "1", "12", "07"])
SPEC = st.lists(SPEC_CHARS, max_size=12).map("".join)
NAME = st.one_of(st.just("upper"), st.builds("{}:{}".format, st.sampled_from(["lower", "data"]), st.integers(0, 999)))


def _never(_: str) -> bool:
    return False


def _split(spec: str, exists: Any = _never) -> tuple[str, str | None] | None:
    try:
        with time_limit(5):
            return split_layer(spec, exists)
    except UfsError as e:
        shown = printable(str(e))
        assert isinstance(e, StackError) and "\n" not in shown and "\x1b" not in shown
        return None


@settings(max_examples=400, deadline=None)
@given(SPEC, st.sets(SPEC, max_size=4))
def test_split_gives_back_the_spec_or_refuses_in_one_line(spec: str, existing: set[str]) -> None:
    got = _split(spec, existing.__contains__)
    if got is None:  # refused: only a bare @LAYER (nothing before it, and not a path itself)
        assert spec.startswith("@") and LAYER_NAME.fullmatch(spec[1:]) and spec not in existing
        return
    source, layer = got
    if layer is None:
        assert source == spec
    else:
        assert f"{source}@{layer}" == spec and LAYER_NAME.fullmatch(layer) and source
        assert not (spec in existing and source not in existing)  # a path that exists whole stays whole


@settings(max_examples=300, deadline=None)
@given(SPEC.filter(bool), NAME)
def test_any_source_then_a_layer_name_splits_there(source: str, name: str) -> None:
    assert _split(f"{source}@{name}") == (source, name)
    assert _split(f"{source}@{name}", {f"{source}@{name}", source}.__contains__) == (source, name)
    assert _split(f"{source}@{name}", {f"{source}@{name}"}.__contains__) == (f"{source}@{name}", None)


@settings(max_examples=300, deadline=None)
@given(SPEC, st.sampled_from(["upper ", "lower:", "lower:01", "data:x", "Upper", "lower:-1", "lower:1/", "top"]))
def test_a_suffix_that_is_no_layer_name_never_splits(source: str, suffix: str) -> None:
    assert _split(f"{source}@{suffix}") == (f"{source}@{suffix}", None)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["d", "@", "upper", "lower:0", "lower:9", "x", "/"]), min_size=1, max_size=6))
def test_the_cli_opens_any_spec_or_says_why_in_one_line(parts: list[str]) -> None:
    """Whatever SOURCE[@LAYER] a user types (paths that exist, with '@' in them, or not): exit 0/1 or 2 with
    one line, never a traceback."""
    import tempfile

    with tempfile.TemporaryDirectory() as d:
        os.makedirs(os.path.join(d, "d@upper", "x"))
        os.makedirs(os.path.join(d, "d", "x"))
        spec = os.path.join(d, "".join(parts))
        err = io.StringIO()
        with time_limit(20), contextlib.redirect_stderr(err):
            rc, out = run(spec, os.path.join(d, "d"))
        assert rc in (0, 1, 2)
        if rc == 2:
            assert err.getvalue().count("\n") == 1 and err.getvalue().startswith("ufs-tui: error: ")
