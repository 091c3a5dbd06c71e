"""``diff`` on real overlay mounts: the docker rules against moby's algorithm run on the kernel's own trees.

The image is a lower dir; container commands run through a real overlay mount (root), which leaves in the
upper exactly what the kernel writes; then ``ufs-tui diff`` reads the layers (unmounted). The reference is
:func:`naive_changes`, a line-by-line port of moby's ``archive.ChangesDirs`` (what ``docker diff`` runs on
Docker 20.10) applied to the kernel's merged mount and to a mount of the lowers alone. Where OVERLAY-NOTES §4
records what ``docker diff`` printed for the same commands, the reference must print that too. The engines
themselves are asked in tests/engines/test_diff_engines.py.
"""

from __future__ import annotations

import json
import os
import pty
import stat
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from tests import nobody
from tests.overlay import mounted
from ufs_tui.core.model import status as S
from ufs_tui.core.model.display import printable

REPO = Path(__file__).resolve().parents[2]

KIND = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}

IMAGE = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/motd": "welcome\n",
    "opt/app/one": "1\n",
    "opt/app/two": "2\n",
    "opt/app/sub/deep": "deep\n",
    "var/log/old": "old log\n",
    "bin/busybox": "\x7fELF not really\n",
    "bin/ls": "ls\n",
    "bin/cat": "cat\n",
    "root/.profile": "PS1='# '\n",
}


@dataclass
class Scenario:
    script: str  # run with sh in the mount point
    observed: list[str] | None = None  # what docker diff printed for it (OVERLAY-NOTES §4), if recorded
    options: str = ""  # extra mount options
    renames: list[tuple[str, str]] = field(default_factory=list)  # done with os.rename after the script


SCENARIOS = {
    "rm-rf-mkdir": Scenario(
        "echo changed >> etc/passwd; rm -rf opt/app; mkdir opt/app; echo new > opt/app/x; touch newfile",
        ["A /newfile", "A /opt/app/x", "C /etc", "C /etc/passwd", "C /opt", "C /opt/app", "D /opt/app/one",
         "D /opt/app/sub", "D /opt/app/two"],
    ),
    "mixed": Scenario(
        "mkdir -p newdir/sub; echo 1 > newdir/sub/f; rm -rf var/log; rm etc/motd; mkdir etc/motd; "
        "chmod 700 opt/app/one; touch opt/app; ln -s /x bin/newlink; rm bin/ls; echo x > bin/ls",
        ["A /bin/newlink", "A /newdir", "A /newdir/sub", "A /newdir/sub/f", "C /bin", "C /bin/ls", "C /etc",
         "C /etc/motd", "C /opt", "C /opt/app", "C /opt/app/one", "C /var", "D /var/log"],
    ),
    "noop-copy-ups": Scenario(
        "chmod 644 etc/passwd; touch root/t; rm root/t; cp -p opt/app/one opt/app/one.tmp; "
        "mv opt/app/one.tmp opt/app/one",
        [],
    ),
    "rm-rf-mkdir-deep": Scenario(
        "rm -rf opt; mkdir -p opt/app/sub/deeper; echo 1 > opt/app/one; touch opt/app/sub/deeper/f; "
        "rm -rf var; echo file > var",
    ),
    "redirects": Scenario(
        "touch opt/app/before", options="redirect_dir=on", renames=[("opt/app", "opt/moved"), ("var/log", "newlog")]
    ),
}  # fmt: skip


def ufs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ufs_tui", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


# --------------------------------------------------------------------------- the reference


class _Info:
    """moby's FileInfo: one name of one tree, with its lstat and security.capability."""

    def __init__(self, st: os.stat_result | None, cap: bytes | None, parent: _Info | None, name: str) -> None:
        self.st, self.cap, self.parent, self.name = st, cap, parent, name
        self.children: dict[str, _Info] = {}
        self.added = False

    def path(self) -> str:
        if self.parent is None:
            return "/"
        return os.path.join(self.parent.path(), self.name)

    def is_dir(self) -> bool:  # moby: mode & S_IFDIR != 0 (true for sockets and block devices too)
        return self.parent is None or (self.st is not None and self.st.st_mode & stat.S_IFDIR != 0)


def _collect(root: str) -> _Info:
    """moby's walker, one tree at a time (its inode pruning only drops identical pairs)."""

    def fill(info: _Info, real: str) -> None:
        for name in sorted(os.listdir(real), key=os.fsencode):
            p = os.path.join(real, name)
            try:
                st = os.lstat(p)
            except FileNotFoundError:  # readdir can list a whiteout that lstat says is not there
                continue
            try:
                cap: bytes | None = os.getxattr(p, "security.capability", follow_symlinks=False)
            except OSError:
                cap = None
            child = info.children[name] = _Info(st, cap, info, name)
            if stat.S_ISDIR(st.st_mode):
                fill(child, p)

    top = _Info(None, None, None, "/")
    fill(top, root)
    return top


def _stat_different(old: os.stat_result, new: os.stat_result) -> bool:
    def same_time(a: int, b: int) -> bool:
        return a == b or (a // 10**9 == b // 10**9 and (a % 10**9 == 0 or b % 10**9 == 0))

    if (old.st_mode, old.st_uid, old.st_gid, old.st_rdev) != (new.st_mode, new.st_uid, new.st_gid, new.st_rdev):
        return True
    if old.st_mode & stat.S_IFDIR != stat.S_IFDIR:
        return not same_time(old.st_mtime_ns, new.st_mtime_ns) or old.st_size != new.st_size
    return False


def _add_changes(info: _Info, old: _Info | None, out: list[str]) -> None:
    size_at_entry = len(out)
    if old is None:
        out.append(f"A {info.path()}")
        info.added = True
    old_children = dict(old.children) if old is not None and info.is_dir() else {}
    for name, new_child in info.children.items():
        old_child = old_children.pop(name, None)
        if old_child is not None:
            assert old_child.st is not None and new_child.st is not None
            if _stat_different(old_child.st, new_child.st) or old_child.cap != new_child.cap:
                out.append(f"C {new_child.path()}")
                new_child.added = True
        _add_changes(new_child, old_child, out)
    out.extend(f"D {c.path()}" for c in old_children.values())
    if len(out) > size_at_entry and info.is_dir() and not info.added and info.path() != "/":
        out.insert(size_at_entry, f"C {info.path()}")


def naive_changes(new_root: str, old_root: str) -> list[str]:
    """moby's ``ChangesDirs(new, old)``: the lines ``docker diff`` prints, sorted."""
    out: list[str] = []
    _add_changes(_collect(new_root), _collect(old_root), out)
    return sorted(out, key=_path)


def _path(line: str) -> bytes:
    return os.fsencode(line.split(" ", 1)[1])


# --------------------------------------------------------------------------- containers on real mounts


@dataclass
class Container:
    args: list[str]  # the ufs-tui stack options
    upper: str
    reference: list[str]  # naive_changes on the kernel's trees
    observed: list[str] | None


def run_container(tmp_layers: str, s: Scenario) -> Container:
    image, empty, upper, work, mnt, old = (
        os.path.join(tmp_layers, n) for n in ("image", "empty", "upper", "work", "mnt", "old")
    )
    for d in (image, empty, upper, work, mnt, old):
        os.mkdir(d)
    for rel, data in IMAGE.items():
        os.makedirs(os.path.dirname(os.path.join(image, rel)), exist_ok=True)
        Path(image, rel).write_text(data)
    with mounted([image], upper, work, mnt, s.options):
        subprocess.run(["sh", "-ec", s.script], cwd=mnt, check=True, capture_output=True, timeout=60)
        for a, b in s.renames:
            os.rename(os.path.join(mnt, a), os.path.join(mnt, b))
        # the lowers alone: a second, empty lower lets the kernel mount them without an upper
        with mounted([image, empty], None, None, old, "ro"):
            reference = naive_changes(mnt, old)
    return Container(["--lower", image, "--upper", upper], upper, reference, s.observed)


@pytest.fixture(params=sorted(SCENARIOS))
def container(request: pytest.FixtureRequest, root_mount: None, tmp_layers: str) -> Container:
    return run_container(tmp_layers, SCENARIOS[request.param])


def test_diff_docker_is_mobys_diff_of_the_kernel_trees(container: Container) -> None:
    if container.observed is not None:  # the reference prints what docker diff printed for these commands
        assert container.reference == sorted(container.observed, key=_path)
    r = ufs("diff", *container.args, "--format", "docker")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.splitlines() == container.reference


def test_diff_json(container: Container) -> None:
    r = ufs("diff", *container.args, "--format", "json")
    assert r.returncode == 0, r.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in r.stdout.splitlines()]
    assert [f"{o['kind']} {o['path']}" for o in lines] == container.reference
    for o in lines:
        assert {"kind", "path", "type", "mode", "size", "layer", "source", "status"} <= set(o)
        st = os.lstat(o["source"])
        assert o["type"] == KIND[stat.S_IFMT(st.st_mode)]
        assert o["mode"] == stat.S_IMODE(st.st_mode)
        assert o["status"] in S.STYLES
        if o["kind"] in ("A", "C"):  # the object the merged view shows
            assert o["status"] not in S.HIDDEN_STATUS.values()
            if o["layer"] == "upper":
                assert o["source"] == container.upper + o["path"]
            else:  # inside a redirected dir: a lower object seen at a new path
                assert o["status"] == S.LOWER and o["kind"] == "A"
        elif o["layer"] == "upper":  # a whiteout the container's rm (or mv) left
            assert o["status"] == S.WHITEOUT
            assert o["type"] == "chardev" and os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0
        else:  # a lower child hidden by an opaque dir the container made
            assert o["status"] == S.OPAQUE_HIDDEN
            assert o["layer"] == "lower:0"
        if o["kind"] == "A" and o["layer"] == "upper":
            assert o["status"] in (S.NEW, S.REDIRECT)  # a renamed dir is new at its new name


def test_diff_text(container: Container) -> None:
    js = [json.loads(line) for line in ufs("diff", *container.args, "--format", "json").stdout.splitlines()]
    r = ufs("diff", *container.args)  # text is the default
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [f"{o['kind']} {S.STYLES[o['status']].glyph} {o['path']}  [{o['status']}]" for o in js]
    assert [line[0] + " " + line[4:].split("  [", 1)[0] for line in lines] == container.reference


def test_redirected_dir_is_added_with_its_contents(root_mount: None, tmp_layers: str) -> None:
    """redirect_dir=on: a renamed lower dir is an upper dir with overlay.redirect and a whiteout at the old
    name; docker's naive diff sees a new tree at the new name (every entry A) and the old name gone."""
    c = run_container(tmp_layers, SCENARIOS["redirects"])
    assert os.getxattr(f"{c.upper}/opt/moved", "trusted.overlay.redirect") == b"app"
    assert os.getxattr(f"{c.upper}/newlog", "trusted.overlay.redirect") == b"/var/log"
    want = ["A /newlog", "A /newlog/old", "C /opt", "D /opt/app", "A /opt/moved", "A /opt/moved/before",
            "A /opt/moved/one", "A /opt/moved/sub", "A /opt/moved/sub/deep", "A /opt/moved/two", "C /var",
            "D /var/log"]  # fmt: skip
    assert c.reference == want
    r = ufs("diff", *c.args, "--format", "docker")
    assert (r.returncode, r.stdout.splitlines()) == (0, want)


def test_rm_rf_mkdir_statuses(root_mount: None, tmp_layers: str) -> None:
    """The opaque dir a container's ``rm -rf d; mkdir d`` leaves is status ``opaque``; its lower children are D,
    a name it holds again is compared with the lower one (C here: other content)."""
    image, upper, work, mnt = (os.path.join(tmp_layers, n) for n in ("image", "upper", "work", "mnt"))
    for d in (image, upper, work, mnt):
        os.mkdir(d)
    os.makedirs(os.path.join(image, "opt/app"))
    for n in ("one", "two"):
        Path(image, "opt/app", n).write_text(n)
    with mounted([image], upper, work, mnt):
        subprocess.run(["sh", "-ec", "rm -rf opt/app; mkdir opt/app; echo x > opt/app/one"], cwd=mnt, check=True)
    r = ufs("diff", "--lower", image, "--upper", upper, "--format", "json")
    got = [(o["kind"], o["path"], o["status"]) for o in map(json.loads, r.stdout.splitlines())]
    assert got == [
        ("C", "/opt", S.MERGED),
        ("C", "/opt/app", S.OPAQUE),
        ("C", "/opt/app/one", S.NEW),
        ("D", "/opt/app/two", S.OPAQUE_HIDDEN),
    ]


# --------------------------------------------------------------------------- names: raw for scripts, escaped on a tty

NAMES = [b"sp ace", b"nl\nname", b"tab\tname", b"back\\slash", b"bad\xffname", b"cut\xe2\x82x", b"\x1b[31mred"]


@pytest.fixture
def odd_upper(tmp_path: Path) -> list[str]:
    """An upper of new files with odd names over an empty lower (no markers: no root needed)."""
    low, up = tmp_path / "low", tmp_path / "up"
    low.mkdir()
    up.mkdir()
    for n in NAMES:
        with open(os.fsencode(up) + b"/" + n, "wb") as f:
            f.write(b"x")
    return ["--lower", str(low), "--upper", str(up)]


def run_on_tty(argv: list[str]) -> bytes:
    """Run with stdout a terminal (a pty); what the terminal received (the pty turns \\n into \\r\\n)."""
    master, slave = pty.openpty()
    try:
        proc = subprocess.Popen(argv, stdout=slave, stderr=subprocess.DEVNULL, cwd=REPO)
        os.close(slave)
        out = b""
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                break
            if not chunk:
                break
            out += chunk
        assert proc.wait(timeout=60) == 0
    finally:
        os.close(master)
    return out.replace(b"\r\n", b"\n")


# docker diff's names come through its JSON API: Go makes each byte that is not UTF-8 a U+FFFD
AS_DOCKER_SHOWS = {b"bad\xffname": "bad\ufffdname".encode(), b"cut\xe2\x82x": "cut\ufffd\ufffdx".encode()}


@pytest.mark.parametrize("fmt", ["docker", "podman"])
def test_names_raw_on_a_pipe(odd_upper: list[str], fmt: str) -> None:
    r = subprocess.run([sys.executable, "-m", "ufs_tui", "diff", *odd_upper, "--format", fmt], capture_output=True)
    assert r.returncode == 0, r.stderr
    shown = [AS_DOCKER_SHOWS.get(n, n) if fmt == "docker" else n for n in sorted(NAMES)]  # podman: raw bytes
    assert r.stdout == b"".join(b"A /" + n + b"\n" for n in shown)


@pytest.mark.parametrize("fmt", ["docker", "podman"])
def test_names_escaped_on_a_terminal(odd_upper: list[str], fmt: str) -> None:
    out = run_on_tty([sys.executable, "-m", "ufs_tui", "diff", *odd_upper, "--format", fmt])
    assert not {b for b in out if b < 0x20 and b != 0x0A}, out  # no escape sequence reaches the terminal
    text = out.decode("utf-8")
    assert text.splitlines() == [f"A {printable(os.fsdecode(b'/' + n))}" for n in sorted(NAMES)]


# --------------------------------------------------------------------------- unreadable dirs


@pytest.mark.parametrize("fmt", ["docker", "podman", "json", "text"])
def test_unreadable_dir_warns_and_prints_the_rest(shared_tmp: str, fmt: str) -> None:
    low, up = os.path.join(shared_tmp, "low"), os.path.join(shared_tmp, "up")
    for d in (low, up, f"{up}/a", f"{up}/locked", f"{up}/z"):
        os.mkdir(d, 0o755)
    for d in ("a", "locked", "z"):
        Path(up, d, "f").write_text("x")
    os.chmod(f"{up}/locked", 0o000)
    r = nobody.run("-m", "ufs_tui", "diff", "--lower", low, "--upper", up, "--format", fmt)
    err = r.stderr.decode()
    assert r.returncode == 1, (r.returncode, err)
    assert "Traceback" not in err
    warnings = err.splitlines()
    assert len(warnings) == 1 and warnings[0].startswith(f"ufs-tui: warning: {up}/locked: "), err
    assert "ermission denied" in warnings[0]
    paths = [line.split(" ")[-1] if fmt != "text" else line.split(" ")[2] for line in r.stdout.decode().splitlines()]
    if fmt == "json":
        paths = [json.loads(line)["path"] for line in r.stdout.decode().splitlines()]
    assert paths == ["/a", "/a/f", "/locked", "/z", "/z/f"]


def test_entry_the_kernel_refuses(root_mount: None, tmp_path: Path) -> None:
    """A metacopy file with no data below: lstat through a mount fails, so docker diff fails (exit 2, no lines);
    text and json list it, with status error."""
    low, up = tmp_path / "low", tmp_path / "up"
    low.mkdir()
    up.mkdir()
    (up / "ok").write_text("x")
    with open(up / "mcbad", "w") as f:
        f.truncate(5)
    os.setxattr(up / "mcbad", "trusted.overlay.metacopy", b"")
    args = ["--lower", str(low), "--upper", str(up)]
    r = ufs("diff", *args, "--format", "docker")
    assert (r.returncode, r.stdout) == (2, "")
    assert r.stderr.startswith("ufs-tui: error: /mcbad: docker diff fails here: ") and len(r.stderr.splitlines()) == 1
    r = ufs("diff", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert [(o["kind"], o["path"], o["status"]) for o in map(json.loads, r.stdout.splitlines())] == [
        ("A", "/mcbad", S.ERROR),
        ("A", "/ok", S.NEW),
    ]
    r = ufs("diff", *args, "--format", "podman")  # podman reads the raw upper: no lookup to fail
    assert (r.returncode, r.stdout) == (0, "A /mcbad\nA /ok\n")
