"""The CLI contract, through the real console entry (``python -m ufs_tui``) on small hand-made stacks.

Markers are made by hand the way the kernel writes them (0/0 char devices, ``trusted.overlay.*`` xattrs),
which needs root: those tests skip elsewhere and fail in CI (``need``).
"""

from __future__ import annotations

import base64
import json
import os
import re
import socket
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests import nobody
from tests.conftest import need
from ufs_tui.core.model import status as S
from ufs_tui.core.model.display import printable

REPO = Path(__file__).resolve().parents[2]
TIMEOUT = 60  # generous: a hang (e.g. opening a FIFO with no writer) fails instead of blocking the suite

KIND = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


def ufs(*args: str, as_nobody: bool = False) -> subprocess.CompletedProcess[bytes]:
    argv = nobody.argv("-m", "ufs_tui", *args) if as_nobody else [sys.executable, "-m", "ufs_tui", *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "100"}
    return subprocess.run(argv, capture_output=True, timeout=TIMEOUT, cwd=REPO, env=env)


def json_lines(r: subprocess.CompletedProcess[bytes]) -> list[dict[str, Any]]:
    assert r.stdout.endswith(b"\n")
    return [json.loads(line) for line in r.stdout.decode("ascii").splitlines()]


def text_lines(r: subprocess.CompletedProcess[bytes]) -> list[str]:
    assert_terminal_safe(r.stdout)
    return r.stdout.decode("utf-8").splitlines()


def assert_terminal_safe(out: bytes) -> None:
    """No control character at all except the newline ending each line; no C1 control either."""
    bad = sorted({b for b in out if (b < 0x20 and b != 0x0A) or b == 0x7F})
    assert not bad, f"raw control bytes in output: {bad}"
    text = out.decode("utf-8")  # strict: nothing undecodable reaches the terminal
    assert not any(0x80 <= ord(c) < 0xA0 for c in text), "C1 control in output"
    assert all(line.isprintable() for line in text.split("\n"))


def one_error_line(r: subprocess.CompletedProcess[bytes], path: str, problem: str) -> None:
    err = r.stderr.decode("utf-8", "replace")
    assert r.returncode == 2, (r.returncode, err)
    assert "Traceback" not in err
    assert r.stdout == b""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"ufs-tui: error: {path}: "), lines[0]
    assert problem in lines[0], lines[0]


def whiteout(path: str) -> None:
    os.mknod(path, 0o600 | stat.S_IFCHR, os.makedev(0, 0))


def write(path: str, data: str = "x") -> None:
    with open(path, "w") as f:
        f.write(data)


def snapshot(root: str) -> dict[str, tuple[object, ...]]:
    """Everything about a layer tree a write would change (mode, size, mtime, ctime, xattrs, targets)."""
    out: dict[str, tuple[object, ...]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in [*dirnames, *filenames, ""]:
            p = os.path.join(dirpath, name) if name else dirpath
            st = os.lstat(p)
            xattrs = (
                tuple(
                    sorted(
                        (x, os.getxattr(p, x, follow_symlinks=False)) for x in os.listxattr(p, follow_symlinks=False)
                    )
                )
                if not stat.S_ISLNK(st.st_mode)
                else ()
            )
            target = os.readlink(p) if stat.S_ISLNK(st.st_mode) else None
            out[p] = (st.st_mode, st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_nlink, xattrs, target)
    return out


@pytest.fixture
def as_root() -> None:
    need(os.geteuid() == 0, "needs root to make whiteouts (mknod 0/0) and trusted.overlay.* xattrs")


# --------------------------------------------------------------------------- statuses


class StatusStack:
    """lower:0 = l0 (topmost lower), lower:1 = l1, upper = u; one name per status."""

    def __init__(self, base: str) -> None:
        self.l0, self.l1, self.u = (os.path.join(base, n) for n in ("l0", "l1", "u"))
        l0, l1, u = self.l0, self.l1, self.u
        for d in (l0, l1, u):
            os.mkdir(d)
        write(f"{l0}/lf", "lower")  # lower
        write(f"{u}/newf", "new")  # new
        write(f"{l1}/cf", "old")  # copied-up (l1/cf shadowed)
        write(f"{u}/cf", "newer")
        os.mkdir(f"{l1}/md")  # merged
        write(f"{l1}/md/a")
        os.mkdir(f"{u}/md")
        write(f"{u}/md/b")
        os.mkdir(f"{l1}/od")  # opaque (l1/od opaque-hidden)
        write(f"{l1}/od/k")
        os.mkdir(f"{u}/od")
        write(f"{u}/od/n")
        os.setxattr(f"{u}/od", "trusted.overlay.opaque", b"y")
        write(f"{l1}/rf")  # replaced: dir over file
        os.mkdir(f"{u}/rf")
        os.mkdir(f"{l1}/rd")  # replaced: file over dir
        write(f"{l1}/rd/z")
        write(f"{u}/rd", "f")
        write(f"{l1}/mc", "hello world")  # metacopy: full size, no data, data from l1
        with open(f"{u}/mc", "w") as f:
            f.truncate(11)
        os.setxattr(f"{u}/mc", "trusted.overlay.metacopy", b"")
        os.chmod(f"{u}/mc", 0o600)
        os.mkdir(f"{l1}/olddir")  # redirect: renamed dir, whiteout at the old name
        write(f"{l1}/olddir/c")
        os.mkdir(f"{u}/newdir")
        os.setxattr(f"{u}/newdir", "trusted.overlay.redirect", b"olddir")
        whiteout(f"{u}/olddir")
        write(f"{l0}/wf")  # whiteout over l0/wf (whited-out)
        whiteout(f"{u}/wf")
        with open(f"{u}/mcbad", "w") as f:  # error: metacopy with nothing below
            f.truncate(5)
        os.setxattr(f"{u}/mcbad", "trusted.overlay.metacopy", b"")

    def args(self) -> list[str]:
        return ["--lower", f"{self.l0}:{self.l1}", "--upper", self.u]

    def visible(self) -> dict[str, tuple[str, str, str, dict[str, str]]]:
        """path -> (real path of the topmost copy, layer, status, extra fields); source = real unless noted."""
        l0, l1, u = self.l0, self.l1, self.u
        return {
            "/cf": (f"{u}/cf", "upper", S.COPIED_UP, {}),
            "/lf": (f"{l0}/lf", "lower:0", S.LOWER, {}),
            "/mc": (f"{u}/mc", "upper", S.METACOPY, {"source": f"{l1}/mc", "data_layer": "lower:1"}),
            "/mcbad": (f"{u}/mcbad", "upper", S.ERROR, {"error": "*"}),
            "/md": (f"{u}/md", "upper", S.MERGED, {}),
            "/md/a": (f"{l1}/md/a", "lower:1", S.LOWER, {}),
            "/md/b": (f"{u}/md/b", "upper", S.NEW, {}),
            "/newdir": (f"{u}/newdir", "upper", S.REDIRECT, {"redirect": "olddir"}),
            "/newdir/c": (f"{l1}/olddir/c", "lower:1", S.LOWER, {}),
            "/newf": (f"{u}/newf", "upper", S.NEW, {}),
            "/od": (f"{u}/od", "upper", S.OPAQUE, {}),
            "/od/n": (f"{u}/od/n", "upper", S.NEW, {}),
            "/rd": (f"{u}/rd", "upper", S.REPLACED, {}),
            "/rf": (f"{u}/rf", "upper", S.REPLACED, {}),
        }

    def hidden(self) -> set[tuple[str, str, str, str, str | None]]:
        """(path, real path, layer, status, by) of everything --all adds."""
        l0, l1, u = self.l0, self.l1, self.u
        return {
            ("/cf", f"{l1}/cf", "lower:1", S.SHADOWED, "upper"),
            ("/od", f"{l1}/od", "lower:1", S.OPAQUE_HIDDEN, "upper"),
            ("/olddir", f"{u}/olddir", "upper", S.WHITEOUT, None),
            ("/olddir", f"{l1}/olddir", "lower:1", S.WHITED_OUT, "upper"),
            ("/rd", f"{l1}/rd", "lower:1", S.SHADOWED, "upper"),
            ("/rf", f"{l1}/rf", "lower:1", S.SHADOWED, "upper"),
            ("/wf", f"{u}/wf", "upper", S.WHITEOUT, None),
            ("/wf", f"{l0}/wf", "lower:0", S.WHITED_OUT, "upper"),
        }


def facts(real: str) -> dict[str, Any]:
    st = os.lstat(real)
    return {
        "type": KIND[stat.S_IFMT(st.st_mode)],
        "mode": stat.S_IMODE(st.st_mode),
        "size": st.st_size,
        "target": os.readlink(real) if stat.S_ISLNK(st.st_mode) else None,
    }


BASE_KEYS = {"path", "type", "mode", "size", "target", "layer", "source", "status"}


@pytest.fixture
def status_stack(as_root: None, tmp_path: Path) -> StatusStack:
    return StatusStack(str(tmp_path))


def test_every_status_is_covered(status_stack: StatusStack) -> None:
    made = {v[2] for v in status_stack.visible().values()} | {h[3] for h in status_stack.hidden()}
    assert made == set(S.STYLES)


def test_tree_json_fields(status_stack: StatusStack) -> None:
    r = ufs("tree", *status_stack.args(), "--format", "json")
    assert r.returncode == 0, r.stderr
    assert r.stderr == b""
    lines = json_lines(r)
    expected = status_stack.visible()
    assert [o["path"] for o in lines] == sorted(expected)  # pre-order, names sorted: here the same as sorted paths
    for o in lines:
        real, layer, status, extra = expected[o["path"]]
        want = {"path": o["path"], **facts(real), "layer": layer, "source": extra.get("source", real), "status": status}
        for key in ("redirect", "data_layer"):
            if key in extra:
                want[key] = extra[key]
        if "error" in extra:
            assert isinstance(o.get("error"), str) and o["error"], o
            want["error"] = o["error"]
            want["errno"] = "EIO"  # metacopy files without data (what status_stack's errors are)
        assert o == want
        assert set(o) - BASE_KEYS <= {"redirect", "data_layer", "error", "errno"}


def test_tree_text_matches_json(status_stack: StatusStack) -> None:
    """Each text line: indent, the status's glyph, the name (``/`` for dirs), then ``[status layer``."""
    js = json_lines(ufs("tree", *status_stack.args(), "--format", "json"))
    r = ufs("tree", *status_stack.args())
    assert r.returncode == 0, r.stderr
    lines = text_lines(r)
    assert lines[0].startswith("/  [upper=")
    assert len(lines) == 1 + len(js)
    for o, line in zip(js, lines[1:], strict=True):
        depth = o["path"].count("/") - 1
        name = o["path"].rsplit("/", 1)[1] + ("/" if o["type"] == "dir" else "")
        assert line.startswith("    " * depth + S.STYLES[o["status"]].glyph + " " + name + "  ["), line
        assert f"[{o['status']} {o['layer']}" in line


def test_tree_all_adds_hidden_with_by(status_stack: StatusStack) -> None:
    plain = json_lines(ufs("tree", *status_stack.args(), "--format", "json"))
    r = ufs("tree", *status_stack.args(), "--format", "json", "--all")
    assert r.returncode == 0, r.stderr
    lines = json_lines(r)
    hidden_statuses = set(S.HIDDEN_STATUS.values())
    visible = [o for o in lines if o["status"] not in hidden_statuses]
    hidden = [o for o in lines if o["status"] in hidden_statuses]
    assert visible == plain
    got = {(o["path"], o["source"], o["layer"], o["status"], o.get("by")) for o in hidden}
    want = status_stack.hidden()
    # a whiteout marker is hidden by nothing: its ``by`` (if any) is not part of the contract
    got = {(p, s, la, st, None if st == S.WHITEOUT else by) for p, s, la, st, by in got}
    assert got == want
    assert len(hidden) == len(want)
    for o in hidden:
        assert set(o) >= BASE_KEYS
        assert {k: o[k] for k in ("type", "mode", "size", "target")} == facts(o["source"])
    seen: set[str] = {"/"}
    for o in lines:  # parents before children
        assert (o["path"].rsplit("/", 1)[0] or "/") in seen, o["path"]
        seen.add(o["path"])


def test_tree_all_text_glyphs(status_stack: StatusStack) -> None:
    r = ufs("tree", *status_stack.args(), "--all")
    assert r.returncode == 0, r.stderr
    lines = text_lines(r)[1:]
    for path, _real, layer, status, by in status_stack.hidden():
        name = path.rsplit("/", 1)[1]
        prefix = f"{S.STYLES[status].glyph} {name}  [{status} {layer}"
        match = [line for line in lines if line.startswith(prefix)]
        assert len(match) == 1, (prefix, lines)
        if by and by != layer:
            assert match[0].endswith(f" by {by}]")


def test_commands_never_write_to_layers(status_stack: StatusStack) -> None:
    before = {d: snapshot(d) for d in (status_stack.l0, status_stack.l1, status_stack.u)}
    for args in (["tree"], ["tree", "--all"], ["tree", "--format", "json", "--all"], ["diff"]):
        for fmt in (["--format", f] for f in ("docker", "podman", "json")) if args == ["diff"] else [[]]:
            r = ufs(*args, *status_stack.args(), *fmt)
            # docker diff itself fails on this stack's metacopy file without data: so does --format docker (2)
            assert r.returncode in ((0, 2) if "docker" in fmt else (0,)), (args, fmt, r.stderr)
            assert b"Traceback" not in r.stderr
    assert {d: snapshot(d) for d in before} == before


# --------------------------------------------------------------------------- hostile names


HOSTILE = [
    "nl\nname",
    "esc\x1b[31mred",
    "[red]x",
    "[bold]b[reset]",
    "bell\x07",
    "tab\tcr\r",
    "del\x7f",
    "c1\x9b2J",
    "back\\slash",
]
RAW = [b"bad\xff\xfe", b"lat1-\xe9t\xe9", b"\x1b]0;title\x07"]


@pytest.fixture
def hostile_stack(tmp_path: Path) -> tuple[str, list[bytes]]:
    low = tmp_path / "low"
    low.mkdir()
    names = [n.encode() for n in HOSTILE] + RAW
    lowb = os.fsencode(low)
    for n in names:
        with open(lowb + b"/" + n, "wb") as f:
            f.write(b"data")
    os.mkdir(lowb + b"/[red]x[")  # with the file in it, the path is /[red]x[/red]
    with open(lowb + b"/[red]x[/red]", "wb"):
        pass
    os.mkdir(lowb + b"/dir\xff\n")
    with open(lowb + b"/dir\xff\n/in\x1b[2Jside", "wb"):
        pass
    os.symlink(b"\x1b[2J\xff\ntarget", lowb + b"/evil-link")
    return str(low), [*names, b"[red]x[", b"[red]x[/red]", b"dir\xff\n", b"dir\xff\n/in\x1b[2Jside", b"evil-link"]


def test_hostile_names_text_is_terminal_safe(hostile_stack: tuple[str, list[bytes]]) -> None:
    low, names = hostile_stack
    r = ufs("tree", "--lower", low)
    assert r.returncode == 0, r.stderr
    lines = text_lines(r)  # asserts no control bytes, strict UTF-8
    assert len(lines) == 1 + len(names)  # a newline in a name did not split a line
    body = "\n".join(lines)
    for raw in names:
        assert printable(os.fsdecode(raw.rsplit(b"/", 1)[-1])) in body
    assert "[red]x" in body and "[red]x[/" in body  # markup is shown literally
    assert "evil-link -> \\x1b[2J\\xff\\ntarget" in body


def test_hostile_names_json_round_trip(hostile_stack: tuple[str, list[bytes]]) -> None:
    low, names = hostile_stack
    r = ufs("tree", "--lower", low, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert_terminal_safe(r.stdout)  # JSON escapes control characters too
    lines = json_lines(r)
    got = {os.fsencode(o["path"]) for o in lines}
    assert got == {b"/" + n for n in names}
    for o in lines:
        raw = os.fsencode(o["path"])
        try:
            raw.decode("utf-8")
        except UnicodeDecodeError:
            assert base64.b64decode(o["path_b64"]) == raw
        else:
            assert "path_b64" not in o
        assert os.path.lexists(os.fsencode(o["source"]))
        if _utf8(o["source"]):
            assert "source_b64" not in o
        else:  # the real path is not UTF-8 either: exact bytes too, for any language
            assert base64.b64decode(o["source_b64"]) == os.fsencode(o["source"])
    link = next(o for o in lines if o["path"] == "/evil-link")
    assert os.fsencode(link["target"]) == b"\x1b[2J\xff\ntarget"
    assert base64.b64decode(link["target_b64"]) == b"\x1b[2J\xff\ntarget"


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def test_hostile_names_diff_docker_on_a_pipe_are_docker_s_bytes(
    tmp_path: Path, hostile_stack: tuple[str, list[bytes]]
) -> None:
    """Into a pipe, --format docker prints names as docker diff does: raw, each byte that is not UTF-8 as
    U+FFFD (tests/core/test_diff.py checks that a terminal gets them escaped)."""
    low, names = hostile_stack
    empty = tmp_path / "empty"
    empty.mkdir()
    r = ufs("diff", "--lower", str(empty), "--upper", low, "--format", "docker")
    assert r.returncode == 0, r.stderr

    def as_docker(raw: bytes) -> bytes:
        text = os.fsdecode(raw)
        return "".join("\ufffd" if 0xDC80 <= ord(c) <= 0xDCFF else c for c in text).encode()

    # sorted by the raw path, one line each (a name with a newline spans two, as in docker's own output)
    assert r.stdout == b"".join(b"A /" + as_docker(n) + b"\n" for n in sorted(names))


# --------------------------------------------------------------------------- special files


@pytest.fixture
def special_stack(as_root: None, tmp_path: Path) -> str:
    low = tmp_path / "low"
    (low / "sub").mkdir(parents=True)
    os.mkfifo(low / "fifo")  # no writer: opening it for reading would block forever
    os.mkfifo(low / "sub" / "fifo2")
    s = socket.socket(socket.AF_UNIX)
    try:
        s.bind(str(low / "sock"))
    finally:
        s.close()
    os.mknod(low / "null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))  # a device, not a whiteout
    os.mknod(low / "loop0", 0o660 | stat.S_IFBLK, os.makedev(7, 0))
    os.symlink("self", low / "self")  # loop of one
    os.symlink("b", low / "a")  # loop of two
    os.symlink("a", low / "b")
    os.symlink("/", low / "rootlink")  # absolute, outside the layer: must not be followed
    os.symlink("/etc/passwd", low / "passwd")
    os.symlink("../../..", low / "sub" / "up")
    return str(low)


def test_special_files_listed_never_opened(special_stack: str) -> None:
    r = ufs("tree", "--lower", special_stack, "--format", "json")  # would time out if a FIFO were opened
    assert r.returncode == 0, r.stderr
    got = {o["path"]: (o["type"], o["target"], o["status"]) for o in json_lines(r)}
    assert got == {
        "/a": ("symlink", "b", S.LOWER),
        "/b": ("symlink", "a", S.LOWER),
        "/fifo": ("fifo", None, S.LOWER),
        "/loop0": ("blockdev", None, S.LOWER),
        "/null": ("chardev", None, S.LOWER),
        "/passwd": ("symlink", "/etc/passwd", S.LOWER),
        "/rootlink": ("symlink", "/", S.LOWER),
        "/self": ("symlink", "self", S.LOWER),
        "/sock": ("socket", None, S.LOWER),
        "/sub": ("dir", None, S.LOWER),
        "/sub/fifo2": ("fifo", None, S.LOWER),
        "/sub/up": ("symlink", "../../..", S.LOWER),
    }


def test_special_files_text_and_all(special_stack: str) -> None:
    r = ufs("tree", "--lower", special_stack, "--all")
    assert r.returncode == 0, r.stderr
    body = "\n".join(text_lines(r))
    for line in ("self -> self", "a -> b", "b -> a", "rootlink -> /", "passwd -> /etc/passwd", "up -> ../../.."):
        assert line in body
    assert "rootlink/" not in body


def test_special_files_in_upper_diff(special_stack: str, tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    r = ufs("diff", "--lower", str(empty), "--upper", special_stack, "--format", "json")
    assert r.returncode == 0, r.stderr
    got = {o["path"]: o["type"] for o in json_lines(r)}
    assert got["/fifo"] == "fifo" and got["/sock"] == "socket" and got["/null"] == "chardev"
    assert all(o["kind"] == "A" for o in json_lines(r))


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("command", ["tree", "diff"])
def test_error_missing_dir(tmp_path: Path, command: str) -> None:
    (tmp_path / "l").mkdir()
    missing = str(tmp_path / "nope")
    one_error_line(ufs(command, "--lower", missing, "--upper", str(tmp_path / "l")), missing, "does not exist")
    one_error_line(ufs(command, "--lower", str(tmp_path / "l"), "--upper", missing), missing, "does not exist")


@pytest.mark.parametrize("command", ["tree", "diff"])
def test_error_file_as_layer(tmp_path: Path, command: str) -> None:
    (tmp_path / "l").mkdir()
    f = tmp_path / "file"
    f.write_text("x")
    one_error_line(
        ufs(command, "--lower", f"{tmp_path}/l:{f}", "--upper", str(tmp_path / "l")), str(f), "not a directory"
    )
    one_error_line(ufs(command, "--lower", str(tmp_path / "l"), "--upper", str(f)), str(f), "not a directory")


@pytest.mark.parametrize("command", ["tree", "diff"])
def test_error_names_a_hostile_path_on_one_safe_line(tmp_path: Path, command: str) -> None:
    """A missing layer whose name holds a newline and an escape sequence: one line, escaped, no raw control byte."""
    (tmp_path / "l").mkdir()
    missing = str(tmp_path / "no\nsuch\x1b]0;PWNED\x07")
    r = ufs(command, "--lower", missing, "--upper", str(tmp_path / "l"))
    err = os.fsdecode(r.stderr)
    assert r.returncode == 2
    assert err.count("\n") == 1 and "\x1b" not in err and "\x07" not in err
    assert "no\\nsuch\\x1b]0;PWNED\\x07" in err and "does not exist" in err


@pytest.mark.parametrize(
    ("spec", "problem"),
    [
        ("{d}:::{d}", "only single ':' or double '::'"),
        ("{d}:", "trailing ':'"),
        ("{d}::", "trailing ':'"),
        (":{d}", "empty layer path"),
        ("{d}::{d}:{d}", "a normal layer cannot follow a data-only layer"),
    ],
)
def test_error_bad_lowerdir(tmp_path: Path, spec: str, problem: str) -> None:
    spec = spec.format(d=tmp_path)
    one_error_line(ufs("tree", "--lower", spec), spec, problem)


def test_error_unreadable_layer(shared_tmp: str) -> None:
    ok, secret = os.path.join(shared_tmp, "ok"), os.path.join(shared_tmp, "secret")
    os.mkdir(ok, 0o755)
    os.mkdir(secret, 0o700)  # owned by root: uid 65534 cannot list it
    write(os.path.join(secret, "f"))
    r = ufs("tree", "--lower", f"{ok}:{secret}", as_nobody=True)
    one_error_line(r, secret, "permission denied")


def test_unreadable_subdir_warns_and_prints_the_rest(shared_tmp: str) -> None:
    low = os.path.join(shared_tmp, "low")
    os.mkdir(low, 0o755)
    for d in ("a", "locked", "z"):
        os.mkdir(os.path.join(low, d), 0o755)
        write(os.path.join(low, d, "f"))
    os.chmod(os.path.join(low, "locked"), 0o000)
    locked = os.path.join(low, "locked")
    for fmt in ("text", "json"):
        r = ufs("tree", "--lower", low, "--format", fmt, as_nobody=True)
        err = r.stderr.decode()
        assert r.returncode == 1, (r.returncode, err)
        assert "Traceback" not in err
        warnings = err.splitlines()
        assert len(warnings) == 1 and warnings[0].startswith(f"ufs-tui: warning: {locked}: "), err
        assert "ermission denied" in warnings[0]
        if fmt == "json":
            assert [o["path"] for o in json_lines(r)] == ["/a", "/a/f", "/locked", "/z", "/z/f"]
        else:
            assert [line.strip() for line in text_lines(r)[1:]] == [
                "a/  [lower lower:0]",
                "f  [lower lower:0]",
                "locked/  [lower lower:0]",
                "z/  [lower lower:0]",
                "f  [lower lower:0]",
            ]


def test_diff_without_upper_is_the_top_layers_changes(tmp_path: Path) -> None:
    """No upper: the topmost lower's changes (tests/core/test_layer_changes.py); a bad --layer is one line."""
    (tmp_path / "f").write_text("x\n")
    r = ufs("diff", "--lower", str(tmp_path), "--format", "docker")
    assert (r.returncode, r.stdout.decode(), r.stderr.decode()) == (0, "A /f\n", "")
    r = ufs("diff", "--lower", str(tmp_path), "--layer", "lower:7")
    err = r.stderr.decode()
    assert r.returncode == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("ufs-tui: error: lower:7: no such layer (this stack has lower:0)")


# --------------------------------------------------------------------------- help


def test_help_top_level() -> None:
    for args in (["--help"], []):
        r = ufs(*args)
        assert r.returncode == 0
        out = r.stdout.decode()
        for word in ("tree", "diff", "demo", "--lower", "--upper", "--work"):
            assert word in out, word


def test_help_tree_explains_options_and_statuses() -> None:
    r = ufs("tree", "--help")
    assert r.returncode == 0
    out = " ".join(r.stdout.decode().split())  # argparse wraps lines
    for opt in ("--lower", "--upper", "--work", "--xattr-ns", "--userxattr", "--oci-whiteouts", "--format", "--all"):
        assert opt in out, opt
    assert "'::'" in out and "'\\:'" in out  # lowerdir syntax
    raw = r.stdout.decode()
    for s in S.STYLES.values():  # one line per status: glyph, status, legend
        line = rf"^ +{re.escape(s.glyph)} {re.escape(s.status)} +{re.escape(s.legend)}$"
        assert re.search(line, raw, re.M), s.status
    for field in ("path", "type", "mode", "size", "target", "layer", "source", "status", "by", "path_b64"):
        assert field in out, field


def test_help_diff_explains_options_and_statuses() -> None:
    r = ufs("diff", "--help")
    assert r.returncode == 0
    out = " ".join(r.stdout.decode().split())
    for opt in ("--lower", "--upper", "--format", "text", "docker", "json"):
        assert opt in out, opt
    assert "A/C/D" in out
    for s in S.STYLES.values():
        assert s.status in out, s.status
    for kind in ("added", "changed", "deleted"):
        assert kind in out.lower(), kind


def test_lowerdir_escapes_on_the_command_line(tmp_path: Path) -> None:
    """A layer whose path holds ':' and ',' is given with the kernel's escapes and read as one layer."""
    odd = tmp_path / "a:b,c"
    (odd / "d").mkdir(parents=True)
    (odd / "d" / "f").write_text("x")
    plain = tmp_path / "p"
    plain.mkdir()
    (plain / "g").write_text("y")
    spec = str(odd).replace(":", "\\:").replace(",", "\\,") + ":" + str(plain)
    r = ufs("tree", "--lower", spec, "--format", "json")
    assert r.returncode == 0, r.stderr
    got = [(o["path"], o["layer"], o["source"]) for o in json_lines(r)]
    assert got == [
        ("/d", "lower:0", f"{odd}/d"),
        ("/d/f", "lower:0", f"{odd}/d/f"),
        ("/g", "lower:1", f"{plain}/g"),
    ]


def test_option_tells_the_model_the_mount_options(root_mount: None, tmp_path: Path) -> None:
    """A metacopy file (made by the kernel, chmod under metacopy=on): followed by default, as with metacopy=on;
    with ``-o metacopy=off`` an error, as the kernel's EPERM on a metacopy=off mount of the same layers."""
    from tests.overlay import mounted

    low, up, work, mnt = (tmp_path / n for n in ("l", "u", "w", "m"))
    for d in (low, up, work, mnt):
        d.mkdir()
    (low / "f").write_text("data\n")
    with mounted([str(low)], str(up), str(work), str(mnt), "metacopy=on"):
        os.chmod(mnt / "f", 0o600)
    base = ["tree", "--lower", str(low), "--upper", str(up), "--format", "json"]
    (default,) = json_lines(ufs(*base))
    assert default["status"] == S.METACOPY and default["source"] == str(low / "f")
    (off,) = json_lines(ufs(*base, "-o", "metacopy=off"))
    assert off["status"] == S.ERROR and "EPERM" in off["error"]
    with mounted([str(low)], str(up), str(work), str(mnt), "metacopy=off"), pytest.raises(PermissionError):
        os.lstat(mnt / "f")


@pytest.mark.parametrize("command", [["tree"], ["tree", "--format", "json"], ["diff"], ["demo", "--print"]])
def test_a_full_disk_for_the_output_is_one_error_line(tmp_path: Path, command: list[str]) -> None:
    need(os.path.exists("/dev/full"), "needs /dev/full")
    low, up = tmp_path / "low", tmp_path / "up"
    for d in (low, up):
        d.mkdir()
        for i in range(300):
            (d / f"f{i:03d}-{d.name}").write_text("x\n")
    argv = [sys.executable, "-m", "ufs_tui", *command]
    if command[0] != "demo":
        argv += ["--lower", str(low), "--upper", str(up)]
    with open("/dev/full", "w") as full:
        r = subprocess.run(argv, stdout=full, stderr=subprocess.PIPE, timeout=TIMEOUT, cwd=REPO)
    err = r.stderr.decode()
    assert r.returncode == 2 and err == "ufs-tui: error: cannot write the output: No space left on device\n", err


def test_a_closed_stdout_is_one_error_line(tmp_path: Path) -> None:
    r = subprocess.run(
        [sys.executable, "-m", "ufs_tui", "tree", "--lower", str(tmp_path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        timeout=TIMEOUT,
        cwd=REPO,
        preexec_fn=lambda: os.close(1),
    )
    assert r.returncode == 2 and r.stderr == b"ufs-tui: error: cannot write the output: standard output is closed\n"
