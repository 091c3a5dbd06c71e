"""The C extension ``_dirscan`` and the Python functions in ``dirscan.py`` give the same answers.

Every test runs both on the same real dirs and compares them with what the file system says
(``os.lstat``, ``os.listxattr``), so neither can drift from the contract in ``dirscan.py``.
"""

from __future__ import annotations

import errno
import json
import os
import socket
import stat
import subprocess
import sys
from collections.abc import Callable, Iterator
from types import ModuleType

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests import nobody
from tests.conftest import IN_CI, need
from ufs_tui.core.model import dirscan
from ufs_tui.core.model.dirscan import DT_BLK, DT_CHR, DT_DIR, DT_FIFO, DT_LNK, DT_REG, DT_SOCK, DT_UNKNOWN

_dirscan: ModuleType | None
try:
    from ufs_tui.core.model import _dirscan
except ImportError:  # not built: the tests of it skip (and fail in CI, where it must be built)
    _dirscan = None

MARKERS = tuple(f"user.overlay.{k}".encode() for k in ("opaque", "redirect", "metacopy", "whiteout"))
HOSTILE = [
    "new\nline",
    os.fsdecode(b"bad\xffbyte"),
    "[red]rich[bold]",
    "\x1b[31mred\x1b[0m",
    " sp ",
    "-dash",
    "ümlaut",
    "日本",
]


@pytest.fixture
def c_ext() -> ModuleType:
    need(_dirscan is not None, "the C extension ufs_tui.core.model._dirscan is not built (no compiler at install?)")
    assert _dirscan is not None
    return _dirscan


def implementations(c_ext: ModuleType) -> list[tuple[dirscan.ReadDirs, dirscan.MarkedFiles]]:
    return [(dirscan.py_read_dirs, dirscan.py_marked_files), (c_ext.read_dirs, c_ext.marked_files)]


def stat_files_both(c_ext: ModuleType) -> list[dirscan.StatFiles]:
    return [dirscan.py_stat_files, c_ext.stat_files]


def expected_listing(path: str) -> dict[str, int]:
    """What ``read_dirs`` must say of ``path``, from ``lstat`` of each name."""
    by_fmt = {
        stat.S_IFREG: DT_REG,
        stat.S_IFDIR: DT_DIR,
        stat.S_IFLNK: DT_LNK,
        stat.S_IFCHR: DT_CHR,
        stat.S_IFBLK: DT_BLK,
        stat.S_IFIFO: DT_FIFO,
        stat.S_IFSOCK: DT_SOCK,
    }
    return {n: by_fmt[stat.S_IFMT(os.lstat(os.path.join(path, n)).st_mode)] for n in os.listdir(path)}


def expected_marked(path: str, skip: set[str] | None, markers: tuple[bytes, ...]) -> set[str]:
    wanted = {os.fsdecode(m) for m in markers}
    out = set()
    for n, t in expected_listing(path).items():
        if t != DT_REG or (skip and n in skip):
            continue
        try:
            if wanted & set(os.listxattr(os.path.join(path, n), follow_symlinks=False)):
                out.add(n)
        except OSError:
            out.add(n)
    return out


def expected_facts(path: str, skip: set[str] | None, markers: tuple[bytes, ...]) -> dict[str, dirscan.Facts]:
    """What ``stat_files`` must say of ``path``: ``(mode, size, target)`` of each plain name, None for the rest."""
    marked = expected_marked(path, skip, markers)
    out: dict[str, dirscan.Facts] = {}
    for n in os.listdir(path):
        if skip and n in skip:
            continue
        st = os.lstat(os.path.join(path, n))
        whiteout = stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
        if stat.S_ISDIR(st.st_mode) or whiteout or n in marked:
            out[n] = None
        else:
            target = os.readlink(os.path.join(path, n)) if stat.S_ISLNK(st.st_mode) else None
            out[n] = (st.st_mode, st.st_size, target)
    return out


def test_built_in_ci() -> None:
    """CI installs with a compiler: the extension must be built, and in use unless ``UFS_TUI_PURE_PYTHON=1``
    asks for the Python scans (else the figures of the benchmarks would not be the C extension's)."""
    if not IN_CI and _dirscan is None:
        pytest.skip("the C extension is not built here")
    assert _dirscan is not None
    want = "python" if os.environ.get("UFS_TUI_PURE_PYTHON") == "1" else "c"
    assert want == dirscan.IMPLEMENTATION


def test_pure_python_switch() -> None:
    """``UFS_TUI_PURE_PYTHON=1`` picks the Python functions (how the fallback is run by hand)."""
    code = "from ufs_tui.core.model import dirscan; print(dirscan.IMPLEMENTATION, dirscan.read_dirs.__name__)"
    env = dict(os.environ, UFS_TUI_PURE_PYTHON="1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["python", "py_read_dirs"]


def make_zoo(base: str) -> str:
    """A dir with one of every kind of entry, hostile names, and marker xattrs (``user.*``: no root needed)."""
    d = os.path.join(base, "zoo")
    os.mkdir(d)
    for i, name in enumerate(HOSTILE):
        with open(os.path.join(d, f"{name}{i}"), "w") as f:
            f.write("x" * i)
        os.mkdir(os.path.join(d, f"dir {name}"))
        os.symlink(f"/etc/{name}", os.path.join(d, f"link{name}"))
    os.symlink(".", os.path.join(d, "loop"))
    os.symlink(d, os.path.join(d, "abs-to-self"))
    os.mkfifo(os.path.join(d, "fifo"))
    s = socket.socket(socket.AF_UNIX)
    s.bind(os.path.join(d, "sock"))
    s.close()
    if os.geteuid() == 0:
        os.mknod(os.path.join(d, "whiteout"), stat.S_IFCHR | 0o600, 0)
        os.mknod(os.path.join(d, "blk"), stat.S_IFBLK | 0o600, os.makedev(7, 0))
    for key, value in (("whiteout", b""), ("metacopy", b""), ("redirect", b"/a"), ("opaque", b"y")):
        p = os.path.join(d, f"marked-{key}")
        open(p, "w").close()
        os.setxattr(p, f"user.overlay.{key}", value)
    # Names that only look like markers, and a long xattr list (more than one small buffer).
    for i, xname in enumerate(("user.overlay.metacopyx", "user.overlay.meta", "user.overlayfs.metacopy", "user.other")):
        p = os.path.join(d, f"decoy{i}")
        open(p, "w").close()
        os.setxattr(p, xname, b"1")
    p = os.path.join(d, "many-xattrs")
    open(p, "w").close()
    for i in range(40):
        os.setxattr(p, f"user.attr-{i:02d}-" + "z" * 40, b"v")
    p = os.path.join(d, "many-then-marker")
    open(p, "w").close()
    for i in range(40):
        os.setxattr(p, f"user.attr-{i:02d}-" + "z" * 40, b"v")
    os.setxattr(p, "user.overlay.metacopy", b"")
    os.symlink("marked-metacopy", os.path.join(d, "link-to-marked"))
    return d


def test_zoo(tmp_layers: str, c_ext: ModuleType) -> None:
    d = make_zoo(tmp_layers)
    want = expected_listing(d)
    marked = expected_marked(d, None, MARKERS)
    assert {"marked-whiteout", "marked-metacopy", "marked-redirect", "marked-opaque", "many-then-marker"} == marked
    for read_dirs, marked_files in implementations(c_ext):
        (got,) = read_dirs([d])
        assert got == want
        assert isinstance(got, dict)
        (names_only,) = read_dirs([d], False)  # the names; a d_type that is not free may be unknown
        assert isinstance(names_only, dict) and names_only.keys() == want.keys()
        assert all(t in (DT_UNKNOWN, want[n]) for n, t in names_only.items())
        assert marked_files(d, got, None, MARKERS) == marked
        assert marked_files(d + "/", got, None, MARKERS) == marked  # with or without the slash
        assert marked_files(d, got, {"marked-whiteout", "many-then-marker"}, MARKERS) == marked - {
            "marked-whiteout",
            "many-then-marker",
        }
        assert marked_files(d, got, frozenset(got), MARKERS) == set()
        assert marked_files(d, got, None, ()) == set()  # no markers asked for: nothing is marked
        # trusted.* markers (none set here): only the files whose xattrs cannot be read would be named.
        assert marked_files(d, got, None, tuple(m.replace(b"user.", b"trusted.") for m in MARKERS)) == set()


def test_zoo_stat_files(tmp_layers: str, c_ext: ModuleType) -> None:
    d = make_zoo(tmp_layers)
    (listing,) = dirscan.py_read_dirs([d])
    assert isinstance(listing, dict)
    want = expected_facts(d, None, MARKERS)
    assert want["loop"] == (stat.S_IFLNK | 0o777, 1, ".")
    assert want["fifo"] is not None and stat.S_ISFIFO(want["fifo"][0])
    assert want["marked-metacopy"] is None and want["decoy0"] is not None
    if os.geteuid() == 0:
        assert want["whiteout"] is None and want["blk"] is not None
    skip = {"loop", "fifo", f"{HOSTILE[1]}1"}
    for stat_files in stat_files_both(c_ext):
        got = stat_files(d, listing, None, MARKERS)
        assert got == want
        assert stat_files(d, listing, skip, MARKERS) == {n: f for n, f in want.items() if n not in skip}
        assert stat_files(d, listing, frozenset(listing), MARKERS) == {}
        assert stat_files(d, {"no-such-name": DT_REG, "loop": DT_REG}, None, MARKERS) == {
            "no-such-name": None,  # gone since readdir: looked up in full
            "loop": want["loop"],  # what it is now, whatever readdir said
        }


def test_errors_are_those_of_scandir(tmp_layers: str, c_ext: ModuleType) -> None:
    f = os.path.join(tmp_layers, "file")
    open(f, "w").close()
    gone = os.path.join(tmp_layers, "gone")
    link = os.path.join(tmp_layers, "link-to-dir")
    os.mkdir(os.path.join(tmp_layers, "real"))
    os.symlink("real", link)
    for read_dirs, _ in implementations(c_ext):
        a, b, c, d = read_dirs([gone, f, tmp_layers, link])
        assert isinstance(a, FileNotFoundError) and a.errno == errno.ENOENT and a.filename == gone
        assert isinstance(b, NotADirectoryError) and b.filename == f
        assert isinstance(c, dict) and "file" in c
        assert d == {}  # the dir a symlink names is read, as os.scandir does (layer roots may be links)
        assert read_dirs([]) == []


def test_gone_files_count_as_marked(tmp_layers: str, c_ext: ModuleType) -> None:
    """A name that vanished after readdir: the caller must look it up (and finds it gone)."""
    d = os.path.join(tmp_layers, "d")
    os.mkdir(d)
    for n in ("stays", "goes"):
        open(os.path.join(d, n), "w").close()
    for read_dirs, marked_files in implementations(c_ext):
        (listing,) = read_dirs([d])
        assert isinstance(listing, dict)
        os.rename(os.path.join(d, "goes"), os.path.join(tmp_layers, "away"))
        assert marked_files(d, listing, None, MARKERS) == {"goes"}
        assert marked_files(os.path.join(tmp_layers, "no-such-dir"), listing, None, MARKERS) == {"goes", "stays"}
        os.rename(os.path.join(tmp_layers, "away"), os.path.join(d, "goes"))


def test_unreadable_dir(shared_tmp: str, c_ext: ModuleType) -> None:
    """As uid 65534: a dir it cannot read is EACCES; files it cannot reach count as marked."""
    d = os.path.join(shared_tmp, "locked")
    os.mkdir(d, 0o700)
    open(os.path.join(d, "f"), "w").close()
    open_dir = os.path.join(shared_tmp, "open")
    os.mkdir(open_dir, 0o711)  # searchable, not readable
    code = (
        "import sys, json; from ufs_tui.core.model import dirscan, _dirscan; d, o = sys.argv[1:3]; out = []\n"
        "py = dirscan.py_read_dirs, dirscan.py_marked_files, dirscan.py_stat_files\n"
        "c = _dirscan.read_dirs, _dirscan.marked_files, _dirscan.stat_files\n"
        "for rd, mf, sf in (py, c):\n"
        "    (e,) = rd([d]); (e2,) = rd([o]); mk = (b'user.overlay.whiteout',)\n"
        "    out.append([type(e).__name__, e.errno, e.filename, type(e2).__name__,"
        " sorted(mf(d, {'f': 8, 'g': 4}, None, mk)), sf(d, {'f': 8, 'g': 4}, None, mk)])\n"
        "print(json.dumps(out))\n"
    )
    r = nobody.run("-c", code, d, open_dir, text=True)
    assert r.returncode == 0, r.stderr
    want = ["PermissionError", errno.EACCES, d, "PermissionError", ["f"], {"f": None, "g": None}]
    assert json.loads(r.stdout) == [want, want]


def test_big_dirs_use_both_threads(tmp_layers: str, c_ext: ModuleType) -> None:
    """Past the C side's threshold (1,024) its second thread takes part; the answers stay the same."""
    dirs = []
    for k in range(4):
        d = os.path.join(tmp_layers, f"layer{k}")
        os.mkdir(d)
        for i in range(1500 * (k + 1)):
            p = os.path.join(d, f"f{i:05d}")
            open(p, "w").close()
            if i % 97 == k:
                os.setxattr(p, "user.overlay.metacopy", b"")
        os.mkdir(os.path.join(d, "sub"))
        dirs.append(d)
    results = []
    for (read_dirs, marked_files), stat_files in zip(implementations(c_ext), stat_files_both(c_ext), strict=True):
        listings = read_dirs(dirs)
        seen: set[str] = set()
        marked = []
        facts = []
        for d, listing in zip(dirs, listings, strict=True):
            assert isinstance(listing, dict)
            marked.append(marked_files(d, listing, seen or None, MARKERS))
            facts.append(stat_files(d, listing, seen or None, MARKERS))
            seen |= listing.keys()
        results.append((listings, marked, facts))
    assert results[0] == results[1]
    listings, marked, facts = results[0]
    assert [len(f) for f in facts] == [1501, 1500, 1500, 1500]
    assert {n for n, f in facts[2].items() if f is None} == marked[2]
    assert [len(x) if isinstance(x, dict) else x for x in listings] == [1501, 3001, 4501, 6001]
    assert marked[0] == {f"f{i:05d}" for i in range(1500) if i % 97 == 0}
    assert marked[3] == {f"f{i:05d}" for i in range(4500, 6000) if i % 97 == 3}  # only names no layer above has


def test_listxattr_by_path_fallback(tmp_layers: str, c_ext: ModuleType) -> None:
    """Without listxattrat (kernels before 6.13, or a seccomp filter) the C side lists by whole path."""
    d = make_zoo(tmp_layers)
    (listing,) = c_ext.read_dirs([d])
    want = c_ext.marked_files(d, listing, None, MARKERS), c_ext.stat_files(d, listing, None, MARKERS)
    assert want[0] and want[1] == expected_facts(d, None, MARKERS)
    was = c_ext.use_listxattrat(False)
    try:
        assert (c_ext.marked_files(d, listing, None, MARKERS), c_ext.stat_files(d, listing, None, MARKERS)) == want
    finally:
        c_ext.use_listxattrat(was)


def test_bad_arguments(c_ext: ModuleType) -> None:
    marked_files: Callable[..., object] = c_ext.marked_files
    with pytest.raises(TypeError):
        c_ext.read_dirs(["/tmp", 3])
    with pytest.raises(TypeError):
        c_ext.read_dirs(None)
    with pytest.raises(TypeError):
        marked_files("/", {}, [], MARKERS)  # skip: a set or None
    with pytest.raises(TypeError):
        marked_files("/", {}, None, ("user.overlay.opaque",))  # markers: bytes
    with pytest.raises(ValueError):
        marked_files("/", {}, None, (b"m",) * 9)
    assert marked_files("/", {"x": "not an int", 3: 8}, None, MARKERS) == set()  # not DT_REG: not checked


names = st.text(st.characters(codec="utf-8", exclude_characters="/\x00"), min_size=1, max_size=20).filter(
    lambda n: n not in (".", "..")
) | st.binary(min_size=1, max_size=12).filter(lambda b: b"/" not in b and b"\x00" not in b and b not in (b".", b".."))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    entries=st.dictionaries(
        names.map(lambda n: os.fsdecode(n) if isinstance(n, bytes) else n),
        st.sampled_from(["file", "dir", "link", "fifo", "marked", "decoy"]),
        max_size=25,
    ),
    skip_some=st.booleans(),
)
def test_random_dirs_agree(tmp_layers: str, c_ext: ModuleType, entries: dict[str, str], skip_some: bool) -> None:
    for d in _fresh(tmp_layers):
        for name, kind in entries.items():
            p = os.path.join(d, name)
            try:
                if kind == "dir":
                    os.mkdir(p)
                elif kind == "link":
                    os.symlink(name, p)
                elif kind == "fifo":
                    os.mkfifo(p)
                else:
                    open(p, "w").close()
                    if kind != "file":
                        os.setxattr(p, "user.overlay.whiteout" if kind == "marked" else "user.x", b"")
            except OSError as e:  # a name too long for the file system once encoded
                assert e.errno == errno.ENAMETOOLONG
        skip = set(list(entries)[::2]) if skip_some else None
        results = []
        for (read_dirs, marked_files), stat_files in zip(implementations(c_ext), stat_files_both(c_ext), strict=True):
            (listing,) = read_dirs([d])
            assert isinstance(listing, dict)
            results.append((listing, marked_files(d, listing, skip, MARKERS), stat_files(d, listing, skip, MARKERS)))
        want = (expected_listing(d), expected_marked(d, skip, MARKERS), expected_facts(d, skip, MARKERS))
        assert results[0] == results[1] == want


def _fresh(base: str) -> Iterator[str]:
    import shutil
    import tempfile

    d = tempfile.mkdtemp(dir=base)
    try:
        yield d
    finally:
        shutil.rmtree(d)


@pytest.fixture
def no_dtype_fs(tmp_path: os.PathLike[str]) -> Iterator[str]:
    """A mounted ext4 without the ``filetype`` feature: its readdir gives every name d_type DT_UNKNOWN."""
    import shutil

    need(os.geteuid() == 0, "needs root to mount a loop file system")
    need(shutil.which("mkfs.ext4") is not None, "needs mkfs.ext4 (e2fsprogs)")
    img, mnt = os.path.join(tmp_path, "fs.img"), os.path.join(tmp_path, "mnt")
    os.mkdir(mnt)
    with open(img, "wb") as f:
        f.truncate(16 << 20)
    subprocess.run(["mkfs.ext4", "-q", "-F", "-O", "^filetype", img], check=True, capture_output=True)
    r = subprocess.run(["mount", "-o", "loop", img, mnt], capture_output=True, text=True)
    need(r.returncode == 0, f"cannot mount a loop file system here: {r.stderr.strip()}")
    try:
        yield mnt
    finally:
        subprocess.run(["umount", mnt], check=True)


def test_file_system_without_dtype(no_dtype_fs: str, c_ext: ModuleType) -> None:
    """Each name's type comes from an lstat there; ``types=False`` leaves it unknown (the C side reads none)."""
    d = os.path.join(no_dtype_fs, "layer")
    os.mkdir(d)
    os.mkdir(os.path.join(d, "dir"))
    for name in ("plain", "marked", HOSTILE[1]):
        open(os.path.join(d, name), "w").close()
    os.setxattr(os.path.join(d, "marked"), "user.overlay.metacopy", b"")
    os.symlink("plain", os.path.join(d, "link"))
    os.mkfifo(os.path.join(d, "fifo"))
    want = expected_listing(d)
    assert sorted(want.values()) == sorted([DT_DIR, DT_REG, DT_REG, DT_REG, DT_LNK, DT_FIFO])
    (raw,) = c_ext.read_dirs([d], False)
    assert raw == dict.fromkeys(want, DT_UNKNOWN)  # (so this file system really has no d_type)
    for (read_dirs, marked_files), stat_files in zip(implementations(c_ext), stat_files_both(c_ext), strict=True):
        (got,) = read_dirs([d])
        assert got == want
        assert isinstance(got, dict)
        assert marked_files(d, got, None, MARKERS) == {"marked"}
        assert stat_files(d, got, None, MARKERS) == expected_facts(d, None, MARKERS)
