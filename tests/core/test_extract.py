"""``ufs-tui cp SOURCE[@LAYER]:PATH DEST`` (:mod:`ufs_tui.core.extract`) on layers made by hand and on image
archives: what is written and what is kept, what is refused, what is said, hostile names and sources that change
or fail under it. The merged view checked against a real mount: tests/kernel/test_extract.py."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import stat
import subprocess
import sys
import tarfile
import tracemalloc
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from tests import nobody
from tests.conftest import need
from tests.core.test_fuzz_parsers import SETTINGS, parsed
from ufs_tui.commands.cp import LAYER_NAME, parse_spec
from ufs_tui.core import extract
from ufs_tui.core.model.errors import UfsError
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.sources import open_source

REPO = Path(__file__).resolve().parents[2]


def ufs(*args: str, stdin: bytes | None = None, as_nobody: bool = False) -> subprocess.CompletedProcess[bytes]:
    argv = nobody.argv("-m", "ufs_tui", *args) if as_nobody else [sys.executable, "-m", "ufs_tui", *args]
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    kw: dict[str, object] = {"input": stdin} if stdin is not None else {"stdin": subprocess.DEVNULL}
    return subprocess.run(argv, capture_output=True, timeout=120, cwd="/", env=env, **kw)  # type: ignore[call-overload]


def lines(r: subprocess.CompletedProcess[bytes]) -> list[str]:
    """stderr's lines: no raw control character may reach the terminal."""
    assert not [b for b in r.stderr if (b < 0x20 and b != 0x0A) or b == 0x7F], r.stderr
    return r.stderr.decode().splitlines()


def put(path: str, data: bytes = b"x", mode: int = 0o644) -> str:
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)
    os.chmod(path, mode)
    return path


def read(path: str) -> bytes:
    with open(path, "rb") as f:
        return f.read()


def digest(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.sha256(f.read()).hexdigest()


def copy(stack: Stack, path: str, dest: str, layer: str | None = None, force: bool = False) -> list[str]:
    """Plan and write, as the CLI does; the problem lines."""
    plan = extract.plan(stack, path, dest, layer=layer, force=force)
    assert plan.refused == [], plan.refused
    said = list(plan.problems)
    extract.write(plan, said.append)
    return said


@pytest.fixture
def two(tmp_path: Path) -> tuple[Stack, Path]:
    """lower l1 with a file, a dir and a symlink; upper u over it; an empty out/."""
    for d in ("l1", "u", "w", "out"):
        (tmp_path / d).mkdir()
    put(f"{tmp_path}/l1/a", b"lower a\n")
    put(f"{tmp_path}/l1/d/x", b"x\n")
    os.symlink("a", f"{tmp_path}/l1/s")
    put(f"{tmp_path}/u/a", b"upper a\n", 0o600)
    stack = Stack.build([f"{tmp_path}/l1"], upper=f"{tmp_path}/u", work=f"{tmp_path}/w", xattr_ns="user")
    return stack, tmp_path


# ------------------------------------------------------------------------------------------ SOURCE@LAYER:PATH
@pytest.mark.parametrize(
    ("spec", "want"),
    [
        ("docker:web:/etc/hosts", ("docker:web", None, "/etc/hosts")),
        ("docker:web@upper:/etc", ("docker:web", "upper", "/etc")),
        ("img.tar@lower:12:/a:/b@c", ("img.tar", "lower:12", "/a:/b@c")),
        ("docker-image:nginx@sha256:0abc:/x", ("docker-image:nginx@sha256:0abc", None, "/x")),
        ("docker-image:nginx@sha256:0abc@data:3:/x", ("docker-image:nginx@sha256:0abc", "data:3", "/x")),
        ("docker-image:localhost:5000/app:1:/", ("docker-image:localhost:5000/app:1", None, "/")),
        ("/mnt/merged:/etc/passwd", ("/mnt/merged", None, "/etc/passwd")),
        ("@upper:/etc", (None, "upper", "/etc")),
        (":/a:/b", (None, None, "/a:/b")),
        ("/etc/hosts", (None, None, "/etc/hosts")),
        ("/x@upper", (None, None, "/x@upper")),
        ("src@lower:/p", ("src@lower", None, "/p")),
    ],
)
def test_the_spec_syntax(spec: str, want: tuple[str | None, str | None, str]) -> None:
    assert parse_spec(spec) == want


@pytest.mark.parametrize("spec", ["", ":", "docker:web", "docker:web:etc", "a@upper"])
def test_a_spec_without_a_path_is_one_line(spec: str) -> None:
    with pytest.raises(UfsError) as e:
        parse_spec(spec)
    assert "\n" not in str(e.value) and "PATH" in str(e.value)


PIECES = ["a", "b", ":", "/", "@", ".", "upper", "lower", "data", "1", "\n", "\x1b", "\\", " ", "é", "\udcff"]
SOURCES = st.one_of(
    st.lists(st.sampled_from(PIECES), max_size=12).map("".join).filter(lambda s: ":/" not in s),
    st.sampled_from(["docker:web", "docker-image:nginx@sha256:0abc", "docker-image:localhost:5000/app:1",
                     "k8s:ns/pod/c", "/mnt/merged", "./img.tar", "containerd-image:k8s.io/docker.io/x:1"]),
)  # fmt: skip
LAYERS = (
    st.none()
    | st.just("upper")
    | st.tuples(st.sampled_from(["lower", "data"]), st.integers(0, 200)).map(lambda t: f"{t[0]}:{t[1]}")
)
PATHS = st.lists(st.sampled_from([*PIECES, ":/"]), max_size=12).map(lambda p: "/" + "".join(p))


@SETTINGS
@given(SOURCES, LAYERS, PATHS)
def test_the_spec_round_trips(source: str, layer: str | None, path: str) -> None:
    """Whatever the PATH holds (':', '@', ':/', control characters, bytes that are not UTF-8), and whatever a
    SOURCE without ':/' holds, the three parts come back as they were put in; but for a SOURCE that ends in
    '@' and a layer's name given without a layer: that one is read as SOURCE@LAYER (the documented ambiguity)."""
    if layer is not None:
        source_at = source + "@" + layer
    else:
        source_at = source
        if "@" in source and LAYER_NAME.fullmatch(source.rsplit("@", 1)[1]):
            return
    assert parse_spec(source_at + ":" + path) == (source or None, layer, path)


@SETTINGS
@given(st.text(max_size=60))
def test_any_spec_parses_or_is_refused_in_one_line(spec: str) -> None:
    got = parsed(lambda: parse_spec(spec))
    if got is not None:
        source, layer, path = got
        assert path.startswith("/") and spec.endswith(path) and (layer is None or LAYER_NAME.fullmatch(layer))
        assert spec == path or spec == (source or "") + (f"@{layer}" if layer else "") + ":" + path


# ----------------------------------------------------------------------------------------------- on disk
def test_versions_and_what_is_kept(two: tuple[Stack, Path]) -> None:
    stack, tmp = two
    os.setxattr(f"{tmp}/l1/d/x", "user.kept", b"value")
    os.setxattr(f"{tmp}/l1/d/x", "user.overlay.origin", b"a marker")
    os.utime(f"{tmp}/l1/d/x", ns=(1_111_111_111_222_333_444, 1_000_000_000_555_666_777))
    os.chmod(f"{tmp}/l1/d", 0o555)  # a read-only dir gets its mode once its contents are written
    assert copy(stack, "/", f"{tmp}/out/merged") == []
    assert copy(stack, "/a", f"{tmp}/out/lower-a", layer="lower:0") == []
    out = f"{tmp}/out"
    assert sorted(os.listdir(f"{out}/merged")) == ["a", "d", "s"]
    with open(f"{out}/merged/a", "rb") as f:
        assert f.read() == b"upper a\n"
    assert stat.S_IMODE(os.lstat(f"{out}/merged/a").st_mode) == 0o600
    with open(f"{out}/lower-a", "rb") as f:
        assert f.read() == b"lower a\n"
    assert os.readlink(f"{out}/merged/s") == "a" and os.path.islink(f"{out}/merged/s")
    x = os.lstat(f"{out}/merged/d/x")
    assert (x.st_atime_ns, x.st_mtime_ns) == (1_111_111_111_222_333_444, 1_000_000_000_555_666_777)
    assert os.listxattr(f"{out}/merged/d/x") == ["user.kept"]  # not the stack's overlay xattr (user.overlay.*)
    assert stat.S_IMODE(os.lstat(f"{out}/merged/d").st_mode) == 0o555
    assert os.lstat(f"{out}/merged/d").st_mtime_ns == os.lstat(f"{tmp}/l1/d").st_mtime_ns


def test_a_data_only_layers_own_copy(tmp_path: Path) -> None:
    put(f"{tmp_path}/l/visible", b"v\n")
    put(f"{tmp_path}/data/blobs/one", b"data of a metacopy file\n")
    stack = Stack.build(f"{tmp_path}/l::{tmp_path}/data", xattr_ns="user")
    assert [la.name for la in stack.all_layers] == ["lower:0", "data:1"]
    with pytest.raises(UfsError, match="not in the merged view"):
        extract.plan(stack, "/blobs/one", f"{tmp_path}/one")  # a data-only layer's names are not in the view
    assert copy(stack, "/blobs/one", f"{tmp_path}/one", layer="data:1") == []
    assert read(f"{tmp_path}/one") == b"data of a metacopy file\n"


def test_into_an_existing_dir_and_force(two: tuple[Stack, Path]) -> None:
    stack, tmp = two
    out = f"{tmp}/out"
    put(f"{out}/d/mine", b"kept\n")
    plan = extract.plan(stack, "/d", out)
    assert plan.target == f"{out}/d" and not plan.refused and "into the existing dir" in plan.describe()[1]
    extract.write(plan, pytest.fail)
    assert sorted(os.listdir(f"{out}/d")) == ["mine", "x"]
    plan = extract.plan(stack, "/d", out)  # d/x is there now
    assert plan.refused == [f"{out}/d/x: exists (1 existing file would be overwritten): give --force to replace "
                            "them, or another DEST"]  # fmt: skip
    put(f"{out}/d/x", b"old\n")
    os.symlink("/etc/passwd", f"{out}/a")
    plan = extract.plan(stack, "/a", f"{out}/a", force=True)  # a symlink there is replaced, not written through
    assert [it.replace for it in plan.items] == [True]
    extract.write(plan, pytest.fail)
    assert not os.path.islink(f"{out}/a") and read(f"{out}/a") == b"upper a\n"
    os.makedirs(f"{out}/dir-here/a")
    plan = extract.plan(stack, "/a", f"{out}/dir-here/a", force=True)  # (an existing dir: inside it)
    assert plan.target == f"{out}/dir-here/a/a" and not plan.refused
    os.mkdir(f"{out}/clash")
    os.mkdir(f"{out}/clash/d")
    put(f"{out}/clash/d/x/inner")
    plan = extract.plan(stack, "/d", f"{out}/clash", force=True)
    assert (
        len(plan.refused) == 1 and "exists and is a dir" in plan.refused[0] and "even with --force" in plan.refused[0]
    )


def test_hard_links_sparse_files_and_symlink_loops(tmp_path: Path) -> None:
    lower, out = tmp_path / "l", tmp_path / "out"
    lower.mkdir()
    out.mkdir()
    put(f"{lower}/h1", b"one inode\n")
    os.makedirs(f"{lower}/sub")
    os.link(f"{lower}/h1", f"{lower}/sub/h2")
    os.symlink("loop", f"{lower}/loop")
    os.symlink("b", f"{lower}/a")
    os.symlink("a", f"{lower}/b")
    with open(f"{lower}/sparse", "wb") as f:
        f.truncate(64 << 20)
        f.seek(32 << 20)
        f.write(b"data in the middle")
    stack = Stack.build([str(lower)])
    plan = extract.plan(stack, "/", f"{out}/c")
    assert plan.counts()["hard link"] == 1 and plan.counts()["bytes"] == len(b"one inode\n") + (64 << 20)
    assert copy(stack, "/", f"{out}/c") == []
    assert os.path.samefile(f"{out}/c/h1", f"{out}/c/sub/h2")
    assert [os.readlink(f"{out}/c/{n}") for n in ("loop", "a", "b")] == ["loop", "b", "a"]
    st_ = os.lstat(f"{out}/c/sparse")
    assert st_.st_size == 64 << 20 and st_.st_blocks * 512 < (1 << 20)  # the holes stayed holes
    assert digest(f"{out}/c/sparse") == digest(f"{lower}/sparse")
    os.symlink("dest-loop", f"{out}/dest-loop")  # a DEST that is a symlink loop: replaced with --force only
    assert "exists" in extract.plan(stack, "/h1", f"{out}/dest-loop").refused[0]
    assert copy(stack, "/h1", f"{out}/dest-loop", force=True) == []
    assert read(f"{out}/dest-loop") == b"one inode\n"


def test_sources_that_vanish_or_change_after_the_plan(tmp_path: Path) -> None:
    lower = tmp_path / "l"
    put(f"{lower}/keep", b"k\n")
    put(f"{lower}/vanish", b"v\n")
    put(f"{lower}/gone-dir/f", b"f\n")
    put(f"{lower}/to-link", b"t\n")
    stack = Stack.build([str(lower)])
    plan = extract.plan(stack, "/", f"{tmp_path}/out")
    os.unlink(f"{lower}/vanish")
    shutil.rmtree(f"{lower}/gone-dir")
    os.unlink(f"{lower}/to-link")
    os.symlink("keep", f"{lower}/to-link")
    said: list[str] = []
    done = extract.write(plan, said.append)
    assert done.problems == 3 and len(said) == 3, said  # the dir is one line, not one per entry it held
    assert said[0].startswith("/gone-dir: not copied: it vanished since it was listed")
    assert said[1].startswith("/to-link: not copied: it changed since it was listed: now a symlink")
    assert said[2].startswith("/vanish: not copied: it vanished since it was listed")
    assert sorted(os.listdir(f"{tmp_path}/out")) == ["keep"]


# -------------------------------------------------------------------------------------------- refusals (CLI)
def test_refusals_are_one_line_and_write_nothing(two: tuple[Stack, Path]) -> None:
    _, tmp = two
    stack = ["--lower", f"{tmp}/l1", "--upper", f"{tmp}/u", "--work", f"{tmp}/w"]
    fake_docker = tmp / "docker-root"  # an engine's storage, known by what it holds
    for d in ("containers", "image", "network"):
        (fake_docker / d).mkdir(parents=True)
    cases = {
        f"{tmp}/u/x": "inside the upper layer",
        f"{tmp}/l1/d": "inside the lower:0 layer",
        f"{tmp}/w/x": "inside the work dir",
        f"{tmp}/out/../w/../u/y": "inside the upper layer",
        "/var/lib/docker/ufs-tui-test-never-written": "inside Docker's data root /var/lib/docker",
        "/var/lib/containerd/x": "inside containerd's root /var/lib/containerd",
        "/run/containerd/x": "inside containerd's state dir /run/containerd",
        "/var/lib/containers/storage/x": "inside containers-storage (Podman, CRI-O)",
        f"{fake_docker}/x": f"inside Docker's data root {fake_docker}",
        f"{tmp}/nothing/x": "the dir DEST goes in does not exist",
    }
    for dest, words in cases.items():
        r = ufs("cp", *stack, "/a", dest, "--yes")
        said = lines(r)
        assert r.returncode == 2 and len(said) == 1 and words in said[0] and said[0].startswith("ufs-tui: error: "), (
            dest,
            said,
        )
    r = ufs("cp", *stack, "--docker-root", f"{tmp}/mydocker", "/a", f"{tmp}/mydocker/x", "--yes")
    assert r.returncode == 2 and "inside Docker's data root" in lines(r)[0]
    assert not os.path.lexists("/var/lib/docker/ufs-tui-test-never-written")
    assert os.listdir(f"{tmp}/out") == [] and sorted(os.listdir(f"{tmp}/u")) == ["a"]


def test_it_says_what_it_will_write_and_asks(two: tuple[Stack, Path]) -> None:
    _, tmp = two
    stack = ["--lower", f"{tmp}/l1", "--upper", f"{tmp}/u"]
    r = ufs("cp", *stack, ":/", f"{tmp}/out/all")  # no stdin (/dev/null), no --yes: nothing is written
    said = lines(r)
    assert r.returncode == 1 and not os.path.lexists(f"{tmp}/out/all")
    assert said[:2] == [
        "cp: copy the merged view's /",
        f"cp: will write 2 files (10 B), 2 dirs, 1 symlink to {tmp}/out/all",
    ]
    assert "refusing: no --yes and no answer on stdin" in said[-1]
    r = ufs("cp", *stack, "/a", f"{tmp}/out/a", stdin=b"n\n")
    assert r.returncode == 1 and not os.path.lexists(f"{tmp}/out/a")
    r = ufs("cp", *stack, "/a", f"{tmp}/out/a", stdin=b"y\n")
    assert r.returncode == 0 and read(f"{tmp}/out/a") == b"upper a\n"
    assert lines(r)[-1].endswith(f"[y/N] cp: wrote 1 file (8 B) to {tmp}/out/a")  # (the answer is not echoed)
    r = ufs("cp", *stack, "/a", f"{tmp}/out/a", "--yes")
    assert r.returncode == 2 and "give --force to replace them" in lines(r)[0]
    r = ufs("cp", *stack, "/a", f"{tmp}/out/a", "--yes", "--force")
    assert r.returncode == 0
    r = ufs("cp", *stack, "/nope", f"{tmp}/out/n", "--yes")
    assert r.returncode == 2 and lines(r) == ["ufs-tui: error: /nope: not in the merged view: absent from every layer"]
    r = ufs("cp", *stack, "/s/x", f"{tmp}/out/n", "--yes")
    assert r.returncode == 2 and lines(r) == [
        "ufs-tui: error: /s/x: /s is a symlink, not a dir (-> a) (a symlink on the way is not followed: PATH is as "
        "the stack stores it)"
    ]
    r = ufs("cp", *stack, "@lower:7:/a", f"{tmp}/out/n", "--yes")
    assert r.returncode == 2 and lines(r) == ["ufs-tui: error: @lower:7: no such layer (this stack has upper, lower:0)"]
    r = ufs("cp", f"{tmp}/l1:/a", *stack, f"{tmp}/out/n", "--yes")
    assert r.returncode == 2 and "give the stack as SOURCE or with --lower, not both" in lines(r)[0]
    r = ufs("cp", "--help")
    assert r.returncode == 0 and b"split at the first ':' that is followed by '/'" in r.stdout


def test_hostile_names_are_written_byte_exact_and_said_escaped(tmp_path: Path) -> None:
    lower, out = tmp_path / "l", tmp_path / "out"
    lower.mkdir()
    out.mkdir()
    names = [b"new\nline", b"\xff\xfe not utf-8", b"\x1b[31mred\x1b[0m", b"back\\slash", b"tab\there"]
    for n in names:
        with open(os.path.join(bytes(lower), n), "wb") as f:
            f.write(n)
    os.mkdir(os.path.join(bytes(lower), b"dir\n\x1b]0;title\x07"))
    stack_args = ["--lower", str(lower)]
    r = ufs("cp", *stack_args, ":/", f"{out}/copy", "--yes")
    assert r.returncode == 0, r.stderr
    got = sorted(os.listdir(os.path.join(bytes(out), b"copy")))
    assert got == sorted([*names, b"dir\n\x1b]0;title\x07"])
    for n in names:
        with open(os.path.join(bytes(out), b"copy", n), "rb") as f:
            assert f.read() == n
    hostile = os.fsdecode(b"\x1b[31mred\x1b[0m")
    r = ufs("cp", *stack_args, "/" + hostile, f"{out}/copy", "--yes")  # exists: refused, the name escaped
    said = lines(r)
    assert r.returncode == 2 and said == [f"ufs-tui: error: {out}/copy/\\x1b[31mred\\x1b[0m: exists (1 existing "
                                          "file would be overwritten): give --force to replace them, or another "
                                          "DEST"]  # fmt: skip
    r = ufs("cp", *stack_args, os.fsdecode(b"/dir\n\x1b]0;title\x07/\xff"), f"{out}/x", "--yes")
    assert r.returncode == 2 and len(lines(r)) == 1 and "\\n\\x1b]0;title\\x07/\\xff" in lines(r)[0]


# ----------------------------------------------------------------------------------- root: devices, owners
def test_fifos_devices_and_owners(tmp_path: Path) -> None:
    need(os.geteuid() == 0, "needs root to make a device node and to keep owners")
    lower, out = tmp_path / "l", tmp_path / "out"
    lower.mkdir()
    out.mkdir()
    os.mkfifo(f"{lower}/fifo", 0o640)
    os.mknod(f"{lower}/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    os.mknod(f"{lower}/loop9", stat.S_IFBLK | 0o660, os.makedev(7, 9))
    put(f"{lower}/owned", b"o\n", 0o4750)
    os.chown(f"{lower}/owned", 1234, 5678)
    os.chmod(f"{lower}/owned", 0o4750)
    os.setxattr(f"{lower}/owned", "trusted.kept", b"t")
    os.symlink("nowhere", f"{lower}/link")
    os.chown(f"{lower}/link", 4321, 8765, follow_symlinks=False)
    assert copy(Stack.build([str(lower)], xattr_ns="user"), "/", f"{out}/c") == []
    for name in ("fifo", "null", "loop9", "owned", "link"):
        a, b = os.lstat(f"{lower}/{name}"), os.lstat(f"{out}/c/{name}")
        assert (a.st_mode, a.st_rdev, a.st_uid, a.st_gid, a.st_mtime_ns) == (
            b.st_mode,
            b.st_rdev,
            b.st_uid,
            b.st_gid,
            b.st_mtime_ns,
        ), name
    assert os.getxattr(f"{out}/c/owned", "trusted.kept") == b"t"  # (the stack's markers are user.overlay.*)


def test_as_another_user_devices_are_skipped_and_unreadable_files_said(shared_tmp: str) -> None:
    lower, out = f"{shared_tmp}/l", f"{shared_tmp}/out"
    os.makedirs(lower)
    os.mkdir(out)
    os.chown(out, nobody.UID, nobody.UID)
    os.mkfifo(f"{lower}/fifo", 0o644)
    os.mknod(f"{lower}/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    put(f"{lower}/secret\nname", b"s\n", 0o600)
    put(f"{lower}/readable", b"r\n")
    put(f"{lower}/private/inside", b"i\n")
    os.chmod(f"{lower}/private", 0o700)
    r = ufs("cp", "--lower", lower, "--xattr-ns", "user", ":/", f"{out}/c", "--yes", as_nobody=True)
    said = lines(r)
    assert r.returncode == 1, said
    problems = [line for line in said if line.startswith("ufs-tui: warning: /") and "config" not in line]
    assert problems == [
        f"ufs-tui: warning: {lower}/private: cannot be read: Permission denied (what it holds is not copied)",
        "ufs-tui: warning: /null: not copied: skipped: a device (chardev 1:3); making one needs root (CAP_MKNOD)",
        f"ufs-tui: warning: /secret\\nname: not copied: cannot be read: Permission denied ({lower}/secret\\nname)",
    ]
    assert sorted(os.listdir(f"{out}/c")) == ["fifo", "private", "readable"]
    assert stat.S_ISFIFO(os.lstat(f"{out}/c/fifo").st_mode)


# -------------------------------------------------------------------------------------------------- archives
def layer_tar(build: Callable[[tarfile.TarFile], None], path: str | None = None) -> bytes | str:
    """A layer tar written by ``build``: its bytes, or written to ``path``."""
    if path is not None:
        with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
            build(t)
        return path
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as t:
        build(t)
    return buf.getvalue()


def add(t: tarfile.TarFile, name: str, data: bytes = b"", **kw: object) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode, info.mtime = 0o644, 1_600_000_000
    for k, v in kw.items():
        setattr(info, k, v)
    t.addfile(info, io.BytesIO(data) if info.isreg() else None)


def save(path: str, layers: list[bytes | str]) -> str:
    """A ``docker save`` archive of ``layers`` (bottom first; bytes, or a layer tar's path)."""
    with tarfile.open(path, "w") as t:
        names = []
        for n, layer in enumerate(layers):
            name = f"l{n}/layer.tar"
            if isinstance(layer, str):
                t.add(layer, name)
            else:
                add(t, name, layer)
            names.append(name)
        add(t, "config.json", json.dumps({"rootfs": {"type": "layers"}}).encode())
        add(t, "manifest.json", json.dumps([{"Config": "config.json", "RepoTags": ["t:1"], "Layers": names}]).encode())
    return path


def test_archive_members_links_and_whited_out_versions(tmp_path: Path) -> None:
    def base(t: tarfile.TarFile) -> None:
        add(t, "etc", type=tarfile.DIRTYPE, mode=0o755)
        add(t, "etc/passwd", b"root:x:0:0\n", mode=0o640, uid=0, gid=42)
        add(t, "etc/link", type=tarfile.LNKTYPE, linkname="etc/passwd")
        add(t, "etc/sym", type=tarfile.SYMTYPE, linkname="passwd")
        add(t, "etc/old", b"deleted above\n")

    def top(t: tarfile.TarFile) -> None:
        add(t, "etc/.wh.old")
        add(t, "etc/new", b"new\n")

    archive = save(f"{tmp_path}/img.tar", [layer_tar(base), layer_tar(top)])  # type: ignore[list-item]
    stack = open_source(archive)
    assert copy(stack, "/etc", f"{tmp_path}/merged") == []
    assert sorted(os.listdir(f"{tmp_path}/merged")) == ["link", "new", "passwd", "sym"]
    assert os.path.samefile(f"{tmp_path}/merged/link", f"{tmp_path}/merged/passwd")  # the tar said so
    assert os.readlink(f"{tmp_path}/merged/sym") == "passwd"
    pw = os.lstat(f"{tmp_path}/merged/passwd")
    assert (stat.S_IMODE(pw.st_mode), pw.st_mtime, pw.st_gid if os.geteuid() == 0 else 42) == (0o640, 1.6e9, 42)
    said = r"deleted by a whiteout in lower:0 \(a layer's own copy: SOURCE@lower:1:/etc/old; held by lower:1\)"
    with pytest.raises(UfsError, match="not in the merged view: " + said):
        extract.plan(stack, "/etc/old", f"{tmp_path}/old")
    plan = extract.plan(stack, "/etc/old", f"{tmp_path}/old", layer="lower:1")
    assert "whited out" in plan.version
    extract.write(plan, pytest.fail)
    assert read(f"{tmp_path}/old") == b"deleted above\n"
    plan = extract.plan(stack, "/etc", f"{tmp_path}/top", layer="lower:0")
    assert plan.notes == ["left out overlay's own markers (they are not files): 1 whiteout"]
    extract.write(plan, pytest.fail)
    assert os.listdir(f"{tmp_path}/top") == ["new"]


def test_a_gzip_layer_streams_its_members_in_any_order(tmp_path: Path) -> None:
    import gzip

    def build(t: tarfile.TarFile) -> None:
        for name in ("z", "m", "a"):  # tar order; written in name order: the stream goes back and forth
            add(t, f"d/{name}", name.encode() * 70_000)

    layer = gzip.compress(layer_tar(build))  # type: ignore[arg-type]
    stack = open_source(save(f"{tmp_path}/img.tar", [layer]))
    assert copy(stack, "/d", f"{tmp_path}/d") == []
    for name in ("z", "m", "a"):
        assert read(f"{tmp_path}/d/{name}") == name.encode() * 70_000


def test_a_big_member_is_streamed_and_zeros_become_holes(tmp_path: Path) -> None:
    size = 48 << 20
    blob = bytes(range(256)) * 4096  # 1 MiB of data, between holes

    def build(t: tarfile.TarFile) -> None:
        info = tarfile.TarInfo("big")
        info.size = size

        class Stream(io.RawIOBase):
            pos = 0

            def readable(self) -> bool:
                return True

            def readinto(self, b: memoryview) -> int:  # type: ignore[override]
                n = min(len(b), size - self.pos)
                data = blob[: min(n, len(blob))] if (16 << 20) <= self.pos < (17 << 20) else bytes(n)
                b[: len(data)] = data
                self.pos += len(data)
                return len(data)

        t.addfile(info, io.BufferedReader(Stream()))

    layer = layer_tar(build, f"{tmp_path}/layer.tar")
    archive = save(f"{tmp_path}/img.tar", [layer])
    os.unlink(f"{tmp_path}/layer.tar")
    stack = open_source(archive)
    plan = extract.plan(stack, "/big", f"{tmp_path}/big")
    tracemalloc.start()
    try:
        extract.write(plan, pytest.fail)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 8 << 20, peak  # chunks, never the member whole
    st_ = os.lstat(f"{tmp_path}/big")
    assert st_.st_size == size and st_.st_blocks * 512 < 4 << 20
    with open(f"{tmp_path}/big", "rb") as f:
        f.seek(16 << 20)
        assert f.read(len(blob)) == blob


def test_a_gnu_sparse_member(tmp_path: Path) -> None:
    need(shutil.which("tar") is not None, "needs GNU tar to write a sparse member")
    src = tmp_path / "src"
    src.mkdir()
    with open(src / "sp", "wb") as f:
        f.truncate(8 << 20)
        f.seek(3 << 20)
        f.write(b"middle")
    subprocess.run(
        ["tar", "--sparse", "--format=gnu", "-cf", f"{tmp_path}/layer.tar", "-C", str(src), "sp"], check=True
    )
    stack = open_source(save(f"{tmp_path}/img.tar", [f"{tmp_path}/layer.tar"]))
    assert copy(stack, "/sp", f"{tmp_path}/sp") == []
    assert digest(f"{tmp_path}/sp") == digest(f"{src}/sp")
    assert os.lstat(f"{tmp_path}/sp").st_blocks * 512 < 1 << 20


def test_a_damaged_member_is_one_line_and_the_rest_is_written(tmp_path: Path) -> None:
    def build(t: tarfile.TarFile) -> None:
        add(t, "first", b"1" * 5000)
        add(t, "last", b"2" * 50_000)

    archive = save(f"{tmp_path}/img.tar", [layer_tar(build)])  # type: ignore[list-item]
    stack = open_source(archive)
    plan = extract.plan(stack, "/", f"{tmp_path}/out")
    with open(archive, "rb") as f:
        data = f.read()
    cut = data.index(b"2" * 512) + 1000  # the archive is cut short inside /last's data, after it was read
    with open(archive, "r+b") as f:
        f.truncate(cut)
    said: list[str] = []
    done = extract.write(plan, said.append)
    assert done.problems == 1 and len(said) == 1, said
    assert said[0].startswith("/last: not copied: the archive member is damaged: its data ends ") and said[0].endswith(
        " bytes early (the archive changed, or is cut short)"
    )
    assert os.listdir(f"{tmp_path}/out") == ["first"]


def test_a_dest_inside_the_archive_read_is_refused(tmp_path: Path) -> None:
    archive = save(f"{tmp_path}/img.tar", [layer_tar(lambda t: add(t, "a", b"a"))])  # type: ignore[list-item]
    plan = extract.plan(open_source(archive), "/a", archive, force=True)
    assert plan.refused == [f"{archive}: inside the image archive {archive}: ufs-tui never writes there: pick a DEST "
                            "outside the stack's layers, its mounts and the engines' storage"]  # fmt: skip


def test_an_archive_cut_short_while_asked_is_one_line_and_exit_1(tmp_path: Path) -> None:
    """The archive changes between the plan and the answer: the member that cannot be read any more is one line,
    the rest is written, exit 1."""

    def build(t: tarfile.TarFile) -> None:
        add(t, "a", b"a" * 3000)
        add(t, "z", b"z" * 90_000)

    archive = save(f"{tmp_path}/img.tar", [layer_tar(build)])  # type: ignore[list-item]
    argv = [sys.executable, "-m", "ufs_tui", "cp", f"{archive}:/", f"{tmp_path}/out"]
    p = subprocess.Popen(argv, stdin=subprocess.PIPE, stderr=subprocess.PIPE, stdout=subprocess.PIPE, cwd="/")
    assert p.stdin is not None and p.stderr is not None
    said = b""
    while not said.endswith(b"[y/N] "):
        chunk = p.stderr.read1(4096)  # type: ignore[attr-defined]
        assert chunk, said
        said += chunk
    with open(archive, "rb") as f:
        data = f.read()
    with open(archive, "r+b") as f:
        f.truncate(data.index(b"z" * 512) + 100)
    _, rest = p.communicate(b"y\n", timeout=120)
    text = rest.decode()  # (after the question, on its line: the answer is not echoed)
    assert p.returncode == 1, text
    assert text.splitlines() == [
        "ufs-tui: warning: /z: not copied: the archive member is damaged: its data ends 89,900 bytes early (the "
        "archive changed, or is cut short)",
        "cp: wrote 1 file (3.0 kB), 1 dir to " + f"{tmp_path}/out",
    ]
    assert os.listdir(f"{tmp_path}/out") == ["a"]


def test_a_full_destination_stops_with_one_line(tmp_path: Path) -> None:
    need(os.geteuid() == 0, "needs root to mount a small tmpfs")
    lower, small = tmp_path / "l", tmp_path / "small"
    put(f"{lower}/big", os.urandom(3 << 20))
    put(f"{lower}/later", b"never reached\n")
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(small)], check=True)
    try:
        r = ufs("cp", "--lower", str(lower), ":/", f"{small}/c", "--yes")
        said = lines(r)
        assert r.returncode == 2 and said[-1] == (
            f"ufs-tui: error: {small}/c/big: No space left on device: stopped; what was written so far is kept"
        ), said
        assert os.listdir(f"{small}/c") == []  # (the half-written file is removed)
    finally:
        subprocess.run(["umount", str(small)], check=True)
