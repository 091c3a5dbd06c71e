"""The archive reader's own tar header parser agrees with Python's tarfile on every header kind it reads,
and hands what it does not read (sparse files, broken headers) to tarfile."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import sys
import tarfile

import pytest

from ufs_tui.core.sources import archive as A

ATTRS = ("name", "type", "mode", "uid", "gid", "size", "mtime", "linkname", "devmajor", "devminor", "offset_data")
NON_UTF8 = os.fsdecode(b"bad-\xff\xfe-name")
HOSTILE = "[red]x\nnew\x1b[31m line"


def facts(reader: object, path: str) -> list[tuple[object, ...]]:
    blob = A.Blob(path, 0, os.path.getsize(path))
    f, stream = A._open_blob(blob)
    try:
        return [tuple(getattr(ti, a) for a in ATTRS) for ti in reader(stream)]  # type: ignore[operator]
    finally:
        stream.close()
        f.close()


def add(tf: tarfile.TarFile, name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **attrs: object) -> None:
    ti = tarfile.TarInfo(name)
    ti.type = kind
    ti.mode = 0o644 if kind != tarfile.DIRTYPE else 0o755
    ti.mtime = 1_700_000_000
    for k, v in attrs.items():
        setattr(ti, k, v)
    if kind == tarfile.REGTYPE:
        ti.size = len(data)
        tf.addfile(ti, io.BytesIO(data))
    else:
        tf.addfile(ti)


def build(path: str, fmt: int, compress: bool = False) -> None:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=fmt, encoding="utf-8", errors="surrogateescape") as tf:
        add(tf, "./", tarfile.DIRTYPE)
        add(tf, "etc/", tarfile.DIRTYPE)
        add(tf, "etc/passwd", data=b"root:x:0:0\n" * 50)
        add(tf, "etc/empty")
        add(tf, "etc/.wh.gone", data=b"")
        add(tf, "etc/.wh..wh..opq")
        add(tf, "bin", tarfile.DIRTYPE)
        add(tf, "bin/link", tarfile.SYMTYPE, linkname="../etc/passwd")
        add(tf, "bin/hard", tarfile.LNKTYPE, linkname="etc/passwd")
        add(tf, "dev", tarfile.DIRTYPE)
        add(tf, "dev/whiteout", tarfile.CHRTYPE, devmajor=0, devminor=0)
        add(tf, "dev/tty", tarfile.CHRTYPE, devmajor=5, devminor=0)
        add(tf, "dev/loop", tarfile.BLKTYPE, devmajor=7, devminor=1)
        add(tf, "dev/pipe", tarfile.FIFOTYPE)
        add(tf, "d" * 60 + "/" + "e" * 70 + "/" + "f" * 80, data=b"long\n")  # > 100: prefix / GNU L / pax path
        if fmt != tarfile.USTAR_FORMAT:
            add(tf, "x" * 300, data=b"longer than the prefix can hold\n")
            add(tf, "bin/longlink", tarfile.SYMTYPE, linkname="/" + "t" * 150)
            add(tf, "uid-big", data=b"u", uid=9_000_000, gid=9_000_001)  # pax record / GNU base-256
            add(tf, NON_UTF8, data=b"bytes\n")
            add(tf, HOSTILE, data=b"odd\n")
            add(tf, "café/ünïcode", data=b"utf8\n")
        add(tf, "big", data=os.urandom(70_000))
    data = raw.getvalue()
    with open(path, "wb") as f:
        f.write(gzip.compress(data) if compress else data)


@pytest.mark.parametrize(
    "fmt", [tarfile.USTAR_FORMAT, tarfile.GNU_FORMAT, tarfile.PAX_FORMAT], ids=["ustar", "gnu", "pax"]
)
@pytest.mark.parametrize("compress", [False, True], ids=["plain", "gzip"])
def test_fast_reader_equals_tarfile(tmp_path: os.PathLike[str], fmt: int, compress: bool) -> None:
    path = os.path.join(os.fspath(tmp_path), "layer.tar")
    build(path, fmt, compress)
    fast = facts(A._fast_members, path)
    assert fast == facts(A._tarfile_members, path)
    names = [row[0] for row in fast]
    assert "d" * 60 + "/" + "e" * 70 + "/" + "f" * 80 in names and "." in names and "etc" in names
    if fmt != tarfile.USTAR_FORMAT:
        assert "x" * 300 in names and NON_UTF8 in names and HOSTILE in names


def test_layer_fs_reads_through_the_fast_index(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), "layer.tar")
    build(path, tarfile.PAX_FORMAT)
    root = path
    fs = A.TarLayerFS(root, A.Blob(path, 0, os.path.getsize(path)))
    assert fs.read(f"{root}/etc/passwd", 1 << 20) == b"root:x:0:0\n" * 50
    assert fs.read(f"{root}/bin/hard", 4) == b"root"  # a hard link reads its target's data
    node = fs.probe(f"{root}/dev/whiteout")
    assert node is not None and node.whiteout == "chardev"
    node = fs.probe(f"{root}/uid-big")
    assert node is not None and (node.uid, node.gid) == (9_000_000, 9_000_001)
    assert fs.listdir(f"{root}/etc") == {"passwd": "file", "empty": "file", ".wh.gone": "file", ".wh..wh..opq": "file"}


@pytest.mark.parametrize("fmt", ["gnu", "posix"])
def test_sparse_files_fall_back_to_tarfile(tmp_path: os.PathLike[str], fmt: str) -> None:
    if shutil.which("tar") is None:
        pytest.skip("GNU tar is needed to write sparse members")
    d = os.fspath(tmp_path)
    src = os.path.join(d, "src")
    os.mkdir(src)
    with open(os.path.join(src, "sparse"), "wb") as f:
        f.seek(1 << 20)
        f.write(b"end")
    with open(os.path.join(src, "plain"), "w") as f:
        f.write("plain\n")
    path = os.path.join(d, "layer.tar")
    subprocess.run(["tar", f"--format={fmt}", "--sparse", "-C", src, "-cf", path, "sparse", "plain"], check=True)
    with pytest.raises(A._Unsupported):
        facts(A._fast_members, path)
    fs = A.TarLayerFS(path, A.Blob(path, 0, os.path.getsize(path)))
    node = fs.probe(f"{path}/sparse")
    assert node is not None and node.size == (1 << 20) + 3
    assert fs.read(f"{path}/plain", 100) == b"plain\n"


def test_broken_header_falls_back_and_reports(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(os.fspath(tmp_path), "junk.tar")
    with open(path, "wb") as f:
        f.write(b"not a tar at all " * 100)
    with pytest.raises(A._Unsupported):
        facts(A._fast_members, path)
    with pytest.raises(A.StackError, match="cannot read layer tar"):
        A.TarLayerFS(path, A.Blob(path, 0, os.path.getsize(path)))


def test_a_fifo_given_as_an_archive_is_refused_not_waited_on(tmp_path: os.PathLike[str]) -> None:
    """Opening a FIFO for reading blocks until a writer comes: the CLI must say what it is instead of hanging."""
    fifo = os.path.join(str(tmp_path), "image.tar")
    os.mkfifo(fifo)
    r = subprocess.run(
        [sys.executable, "-m", "ufs_tui", "tree", fifo],
        capture_output=True,
        text=True,
        timeout=30,
        stdin=subprocess.DEVNULL,
    )
    assert r.returncode == 2 and "not an image archive: a FIFO" in r.stderr, r.stderr


@pytest.mark.parametrize("gz", [False, True])
def test_a_member_is_hashed_as_a_stream_never_held_whole(tmp_path: os.PathLike[str], gz: bool) -> None:
    """Hashing an archive member (waste's unchanged copies and duplicates, compare's content) reads it in chunks:
    a 48 MB member costs a few MB of memory at most, plain or gzip-compressed, and gives the member's SHA-256."""
    import hashlib
    import tracemalloc

    from tests.archives import layered_archive
    from ufs_tui.core.model.stack import fs_digest

    big = os.urandom(1 << 20) * 48
    path = os.path.join(os.fspath(tmp_path), "img.tar")
    layered_archive(path, [{"big": big, "small": b"tiny"}], oci=gz, gzip_layers=gz)
    del big  # (the test's own copy out of the measure)
    stack = A.open_archive(path)
    layer = stack.lowers[0]
    assert layer.fs is not None
    real = layer.path + "/big"
    tracemalloc.start()
    try:
        digest = fs_digest(layer.fs, real)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 4 << 20, f"hashing a 48 MB member held {peak:,} bytes"
    assert digest == hashlib.sha256(b"".join(layer.fs.chunks(real))).digest()
    assert (
        layer.fs.read(real, 10) == layer.fs.read(real, 1 << 30)[:10]
        and layer.fs.read(layer.path + "/small", 99) == b"tiny"
    )
    assert b"".join(layer.fs.chunks(layer.path + "/small")) == b"tiny"


@pytest.mark.parametrize("gz", [False, True])
def test_a_member_cut_short_after_indexing_is_an_error_not_short_data(tmp_path: os.PathLike[str], gz: bool) -> None:
    """The archive shrank after it was opened (rewritten meanwhile): reading the member says so (OSError), it never
    hands back fewer bytes as if they were the file."""
    from tests.archives import layered_archive

    path = os.path.join(os.fspath(tmp_path), "img.tar")
    layered_archive(path, [{"big": os.urandom(1 << 20)}], oci=gz, gzip_layers=gz)
    layer = A.open_archive(path).lowers[0]
    assert layer.fs is not None
    os.truncate(path, os.path.getsize(path) // 2)
    with pytest.raises(OSError):
        b"".join(layer.fs.chunks(layer.path + "/big"))
    with pytest.raises(OSError):
        layer.fs.read(layer.path + "/big", 1 << 30)
