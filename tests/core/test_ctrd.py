"""ctrd.py on containerd roots written by the tests' bbolt writer: layouts and damage the real engines (tested
in tests/engines) do not make on demand: a newer schema, loops and holes in the snapshot parents, a snapshot
dir removed under its record."""

from __future__ import annotations

import os

import pytest

from tests.boltwriter import write_db
from tests.ctrdroot import make_root, snap_dir, zigzag
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.sources.containerd import open_container, open_image
from ufs_tui.core.sources.ctrd import META_DB, SNAPSHOTTER_DB, ContainerdRoot, go_time, snapshot_chain, uvarint, varint
from ufs_tui.core.sources.engines import Where


def test_a_container_stack_follows_the_parents(tmp_path: os.PathLike[str]) -> None:
    root = make_root(os.fspath(tmp_path))
    stack = open_container("ns/c1", Where(containerd_root=root))
    assert stack.upper is not None and stack.upper.path == snap_dir(root, 3)
    assert stack.work == f"{root}/io.containerd.snapshotter.v1.overlayfs/snapshots/3/work"
    assert [la.path for la in stack.lowers] == [snap_dir(root, 2), snap_dir(root, 1)]
    assert stack == open_container("c1", Where(containerd_root=root))  # the only one: no namespace needed
    ns = ContainerdRoot(root).namespace("ns")
    assert ns.containers["c1"].labels == {"a": "b"}
    assert ContainerdRoot(root).snapshots()["ns/2/l2"].size == 200  # a signed (zig-zag) varint


def test_a_newer_schema_is_refused_with_a_fix(tmp_path: os.PathLike[str]) -> None:
    root = make_root(os.fspath(tmp_path), version=5)
    with pytest.raises(StackError, match=r"schema version 5, newer than ufs-tui knows .*fix: a newer ufs-tui"):
        open_container("ns/c1", Where(containerd_root=root))


def test_no_v1_bucket_is_an_unknown_layout(tmp_path: os.PathLike[str]) -> None:
    root = os.fspath(tmp_path)
    os.makedirs(os.path.dirname(f"{root}/{META_DB}"))
    write_db(f"{root}/{META_DB}", {b"v2": {b"ns": {}}})
    with pytest.raises(StackError, match="no 'v1' bucket: a layout ufs-tui does not know"):
        ContainerdRoot(root).all_namespaces()


def test_parent_loop_and_missing_parent(tmp_path: os.PathLike[str]) -> None:
    loop = make_root(f"{tmp_path}/loop", chain=[("c1", "l1", 2, 2), ("l1", "c1", 1, 3)])
    with pytest.raises(StackError, match="snapshot parents of c1 loop"):
        open_container("ns/c1", Where(containerd_root=loop))
    hole = make_root(f"{tmp_path}/hole", chain=[("c1", "gone", 2, 2)])
    with pytest.raises(StackError, match="parent snapshot of c1 gone is not in namespace ns"):
        open_container("ns/c1", Where(containerd_root=hole))


def test_a_garbage_collected_snapshot_dir(tmp_path: os.PathLike[str]) -> None:
    root = make_root(os.fspath(tmp_path))
    os.rename(snap_dir(root, 2), snap_dir(root, 2) + ".gone")
    with pytest.raises(StackError, match="the dir of snapshot l2 is gone .garbage-collected"):
        open_container("ns/c1", Where(containerd_root=root))


def test_names_that_match_nothing_or_several(tmp_path: os.PathLike[str]) -> None:
    root = make_root(os.fspath(tmp_path))
    with pytest.raises(StackError, match=r"no such containerd container \(namespaces: ns;"):
        open_container("nope", Where(containerd_root=root))
    with pytest.raises(StackError, match=r"no such containerd image \(namespaces: ns;"):
        open_image("ns/busybox", Where(containerd_root=root))
    with pytest.raises(StackError, match="no such containerd root"):
        open_container("c1", Where(containerd_root=f"{root}/missing"))


def test_go_encodings() -> None:
    assert uvarint(b"\x96\x01") == 150 and uvarint(b"\x80") is None and uvarint(b"\xff" * 10 + b"\x01") is None
    assert [varint(zigzag(n)) for n in (0, -1, 1, -64, 10**12)] == [0, -1, 1, -64, 10**12]
    # 2026-12-07T00:00:00Z as time.MarshalBinary: version 1, seconds since year 1, nanoseconds, zone -1 (UTC)
    secs = 1796601600 + 62135596800
    assert go_time(b"\x01" + secs.to_bytes(8, "big") + (5 * 10**8).to_bytes(4, "big") + b"\xff\xff") == 1796601600.5
    assert go_time(b"\x09" + bytes(14)) == 0.0 and go_time(None) == 0.0


def test_opening_one_thing_reads_its_chain_and_the_rest_on_demand(tmp_path: os.PathLike[str]) -> None:
    """namespace_for reads the images and the chain of the keys named at once; other snapshots one chain at a
    time, the containers when asked for; iterated, it holds what namespace() holds."""
    chain = [("c1", "l2", 3, 2), ("l2", "l1", 2, 3), ("l1", None, 1, 3), ("other", None, 4, 3)]
    root = make_root(os.fspath(tmp_path), chain=chain, images={"docker.io/library/x:1": "sha256:" + "a" * 64})
    ctrd = ContainerdRoot(root)
    whole = ctrd.namespace("ns")
    part = ctrd.namespace_for("ns", ["c1"])
    assert dict(part.images) == dict(whole.images)
    assert part.snapshots["l1"] == whole.snapshots["l1"] and "nope" not in part.snapshots
    assert part.snapshots.get("other") == whole.snapshots["other"]  # read on demand
    assert dict(part.snapshots) == dict(whole.snapshots) and len(part.snapshots) == 4
    assert dict(part.containers) == dict(whole.containers)
    assert snapshot_chain(ctrd, part, "c1") == snapshot_chain(ContainerdRoot(root), whole, "c1")
    assert ctrd.namespace_for("missing", ["c1"]).snapshots.get("c1") is None
    assert ctrd.backends(["ns/3/c1", "ns/9/gone"]) == {"ns/3/c1": ctrd.snapshots()["ns/3/c1"]}
    assert ctrd.backends(["ns/2/l2"]) == {"ns/2/l2": ctrd.snapshots()["ns/2/l2"]}  # from the whole read, once made


def test_a_snapshot_missing_from_the_snapshotter_db_is_told_before_a_hole_further_down(
    tmp_path: os.PathLike[str],
) -> None:
    root = make_root(os.fspath(tmp_path), chain=[("c1", "l2", 3, 2), ("l2", "gone", 2, 3)])
    write_db(f"{root}/{SNAPSHOTTER_DB}", {b"v1": {b"snapshots": {}}})
    ns = ContainerdRoot(root).namespace_for("ns", ["c1"])
    with pytest.raises(StackError, match=r"snapshot c1 \(ns/3/c1\) is not in the overlayfs snapshotter's db"):
        snapshot_chain(ContainerdRoot(root), ns, "c1")
