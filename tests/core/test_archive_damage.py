"""Damaged and truncated layer tars are errors, never a quietly smaller layer: real tar and gzip files, written
here, then broken the ways disks and downloads break them (flipped bytes, cut short)."""

from __future__ import annotations

import gzip
import io
import os
import random
import tarfile
import zlib

import pytest

from ufs_tui.core.sources import archive as A

N_FILES = 200


def layer_tar(fmt: int = tarfile.PAX_FORMAT) -> bytes:
    """A layer tar of incompressible files (so a flipped byte lands in deflate data, not in a long run)."""
    raw = io.BytesIO()
    rnd = random.Random(7)
    with tarfile.open(fileobj=raw, mode="w", format=fmt) as tf:
        for i in range(N_FILES):
            data = rnd.randbytes(2000 + i)
            ti = tarfile.TarInfo(f"dir{i % 5}/file{i}")
            ti.size, ti.mtime = len(data), 1_700_000_000
            tf.addfile(ti, io.BytesIO(data))
    return raw.getvalue()


def write(tmp: os.PathLike[str], name: str, data: bytes) -> str:
    path = os.path.join(os.fspath(tmp), name)
    with open(path, "wb") as f:
        f.write(data)
    return path


def index(path: str) -> A.TarLayerFS:
    return A.TarLayerFS(path, A.Blob(path, 0, os.path.getsize(path)))


def last_header(raw: bytes) -> int:
    """The offset of the last member's header (its name field starts the 512-byte block)."""
    at = raw.rindex(f"dir4/file{N_FILES - 1}".encode())
    return at - at % 512


def flipped(data: bytes, at: int, n: int = 100) -> bytes:
    return data[:at] + bytes(b ^ 0x5A for b in data[at : at + n]) + data[at + n :]


def files(fs: A.TarLayerFS) -> int:
    return sum(1 for ti in fs.members.values() if ti.isreg())


def test_intact_layers_index_whole(tmp_path: os.PathLike[str]) -> None:
    raw = layer_tar()
    assert files(index(write(tmp_path, "plain.tar", raw))) == N_FILES
    assert files(index(write(tmp_path, "gz.tar", gzip.compress(raw)))) == N_FILES
    # zero padding after the gzip stream (some writers pad blobs) is not damage
    assert files(index(write(tmp_path, "padded.tar", gzip.compress(raw) + b"\0" * 4096))) == N_FILES
    # a tar that stops after its last member, without the end marker, is still read (as tarfile does)
    header = last_header(raw)
    end = header + 512 + (2000 + N_FILES - 1 + 511) // 512 * 512
    assert files(index(write(tmp_path, "noend.tar", raw[:end]))) == N_FILES


@pytest.mark.parametrize("where", [0.1, 0.3, 0.5, 0.7, 0.9])
def test_flipped_bytes_in_gzip_layer(tmp_path: os.PathLike[str], where: float) -> None:
    """100 bytes changed anywhere in a gzip layer: zlib, the tar headers or the gzip CRC catch it."""
    gz = gzip.compress(layer_tar())
    path = write(tmp_path, "layer.tar.gz", flipped(gz, int(len(gz) * where)))
    with pytest.raises(A.DamagedLayer, match="cannot read layer tar: ") as err:
        index(path)
    assert err.value.path == path
    words = ("gzip data is corrupt", "gzip data is damaged", "bad tar header", "truncated")
    assert any(w in err.value.detail for w in words), err.value.detail


def test_gzip_crc_is_checked(tmp_path: os.PathLike[str]) -> None:
    """A gzip stream whose deflate data is fine but whose CRC does not match its contents."""
    raw = layer_tar()
    gz = bytearray(gzip.compress(raw))
    gz[-8:-4] = (zlib.crc32(raw) ^ 1).to_bytes(4, "little")
    with pytest.raises(A.DamagedLayer, match="CRC check failed"):
        index(write(tmp_path, "crc.tar.gz", bytes(gz)))


@pytest.mark.parametrize("keep", [0.25, 0.5, 0.99])
def test_truncated_gzip_layer(tmp_path: os.PathLike[str], keep: float) -> None:
    gz = gzip.compress(layer_tar())
    with pytest.raises(A.DamagedLayer, match="truncated"):
        index(write(tmp_path, "cut.tar.gz", gz[: int(len(gz) * keep)]))


@pytest.mark.parametrize("fmt", [tarfile.USTAR_FORMAT, tarfile.PAX_FORMAT], ids=["ustar", "pax"])
def test_truncated_plain_layer(tmp_path: os.PathLike[str], fmt: int) -> None:
    raw = layer_tar(fmt)
    header = last_header(raw)
    with pytest.raises(A.DamagedLayer, match="truncated: the data ends inside 'dir4/file199'"):
        index(write(tmp_path, "data.tar", raw[: header + 512 + 1000]))  # inside the last file's data
    with pytest.raises(A.DamagedLayer, match="truncated: the data ends inside the tar header"):
        index(write(tmp_path, "head.tar", raw[: header + 100]))  # inside a header
    with pytest.raises(A.DamagedLayer, match="truncated"):  # gzip of a cut tar: the gzip is whole, the tar is not
        index(write(tmp_path, "cut.tar.gz", gzip.compress(raw[: header + 512 + 1000])))


def test_broken_header_in_the_middle(tmp_path: os.PathLike[str]) -> None:
    """A header in the middle with a wrong checksum: the fast reader hands over to tarfile, which would stop
    there without a word; the layer is reported damaged instead."""
    raw = layer_tar(tarfile.USTAR_FORMAT)
    at = raw.index(b"dir0/file100")
    path = write(tmp_path, "bad.tar", flipped(raw, at + 20, 10))
    with open(path, "rb") as f, pytest.raises(A._Unsupported):
        list(A._fast_members(f))
    with pytest.raises(A.DamagedLayer, match=r"bad tar header at offset \d+ of the layer tar"):
        index(path)


def test_damaged_data_after_indexing_reads_as_an_error(tmp_path: os.PathLike[str]) -> None:
    """The blob changes on disk after it was indexed: reading a file gives OSError (the UI shows it), not a crash."""
    gz = gzip.compress(layer_tar())
    path = write(tmp_path, "layer.tar.gz", gz)
    fs = index(path)
    write(tmp_path, "layer.tar.gz", flipped(gz, len(gz) // 2, 2000))
    with pytest.raises(OSError, match="gzip"):
        fs.read(f"{path}/dir4/file199", 1 << 20)
