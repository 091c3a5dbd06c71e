"""containerd containers (overlayfs snapshotter), found through their live mounts.

A running task's rootfs is an overlay mounted at
``<state>/io.containerd.runtime.v2.task/<namespace>/<container-id>/rootfs`` whose layers are
``<root>/io.containerd.snapshotter.v1.overlayfs/snapshots/<N>/fs``. Reading the mount table needs no
access to containerd's bbolt metadata, so only running containers can be opened this way.
"""

from __future__ import annotations

import posixpath
import re

from ..errors import StackError
from ..stack import Stack
from .common import with_labels
from .mountinfo import OverlayMount

TASK_RE = re.compile(r"/io\.containerd\.runtime\.v2\.task/(?P<ns>[^/]+)/(?P<id>[^/]+)/rootfs$")
SNAPSHOT_RE = re.compile(r"/io\.containerd\.snapshotter\.v1\.overlayfs/snapshots/(?P<n>[^/]+)/fs$")


def task_of(target: str) -> tuple[str, str] | None:
    """(namespace, container id) when ``target`` is a containerd task's rootfs mount point."""
    m = TASK_RE.search(target)
    return (m.group("ns"), m.group("id")) if m else None


def snapshot_of(path: str) -> str | None:
    m = SNAPSHOT_RE.search(path)
    return m.group("n") if m else None


def is_containerd_mount(mount: OverlayMount) -> bool:
    paths = [*mount.lowers, *([mount.upper] if mount.upper else [])]
    return task_of(mount.target) is not None or any(snapshot_of(p) for p in paths)


def find(spec: str, mounts: list[OverlayMount]) -> OverlayMount:
    """The rootfs mount of container ``spec`` (``ID``, a unique ID prefix, or ``NAMESPACE/ID``)."""
    want_ns, _, want_id = spec.rpartition("/")
    hits = []
    for m in mounts:
        task = task_of(m.target)
        if task is None:
            continue
        ns, cid = task
        if want_ns and ns != want_ns:
            continue
        if cid == want_id:
            return m
        if cid.startswith(want_id):
            hits.append(m)
    if len(hits) == 1:
        return hits[0]
    if len(hits) > 1:
        raise StackError(spec, f"ambiguous containerd container id prefix ({len(hits)} match)")
    raise StackError(spec, "no running containerd container with this id (only running tasks can be opened)")


def open_container(spec: str, mounts: list[OverlayMount]) -> Stack:
    m = find(spec, mounts)
    stack = m.stack()
    task = task_of(m.target)
    assert task is not None
    labels = [_label(p) for p in m.lowers]
    return with_labels(stack, f"container {task[0]}/{task[1][:12]} writable layer ({_label(m.upper or '')})", labels)


def _label(path: str) -> str:
    n = snapshot_of(path)
    return f"snapshot {n}" if n else posixpath.basename(posixpath.dirname(path))
