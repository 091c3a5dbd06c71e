"""nerdctl containers by name: ``nerdctl:[NAMESPACE/]NAME`` (namespace ``default`` unless given).

nerdctl keeps its containers in containerd (snapshot key = container ID, snapshotter overlayfs) and labels
each with ``nerdctl/name``; its names store ``/var/lib/nerdctl/<hash>/names/<namespace>/<name>`` holds the
ID too (``<hash>``: the first 8 hex digits of the SHA-256 of the containerd socket's path). The label is
read first; the names store is the fallback for a container whose record lost it.
"""

from __future__ import annotations

import os
import posixpath

from ..model.display import printable
from ..model.errors import StackError
from ..model.stack import Stack
from .common import container_label
from .containerd import Found, container_stack, roots, split_namespace
from .ctrd import SNAPSHOTTER
from .engines import Where

NAME_LABEL = "nerdctl/name"
DATA_ROOT = "/var/lib/nerdctl"
DEFAULT_NAMESPACE = "default"


def name_of(labels: dict[str, str]) -> str | None:
    return labels.get(NAME_LABEL) or None


def _names_store(where: Where, namespace: str, name: str) -> set[str]:
    """Container IDs the names stores of every containerd address give for ``name``."""
    base = where.host.path(DATA_ROOT)
    out: set[str] = set()
    try:
        hashes = os.listdir(base)
    except OSError:
        return out
    for h in hashes:
        try:
            with open(posixpath.join(base, h, "names", namespace, name), "rb") as f:
                out.add(f.read(256).decode("ascii", "replace").strip())
        except OSError:
            continue
    return out


def find(where: Where, spec: str) -> Found:
    ns_name, name = split_namespace(spec)
    ns_name = ns_name or DEFAULT_NAMESPACE
    stored = _names_store(where, ns_name, name)
    hits: list[Found] = []
    every: list[str] = []
    for ctrd in roots(where):
        ns = ctrd.namespace(ns_name)
        for c in ns.containers.values():
            label = name_of(c.labels)
            if label:
                every.append(label)
            if label == name or (label is None and c.id in stored) or c.id == name:
                hits.append(Found(ctrd, ns, c))
    if len(hits) == 1:
        return hits[0]
    if hits:
        raise StackError(spec, f"names {len(hits)} containers: {', '.join(h.where for h in hits)}")
    listed = ", ".join(printable(n) for n in sorted(every)[:12]) or "none"
    raise StackError(spec, f"no nerdctl container of this name in namespace {ns_name} (names: {listed})")


def open_container(spec: str, where: Where) -> Stack:
    found = find(where, spec)
    c = found.container
    assert c is not None
    if c.snapshotter != SNAPSHOTTER:
        raise StackError(spec, f"container {c.id} uses the {c.snapshotter} snapshotter; only overlayfs can be read")
    label = container_label(f"{found.ns.name}/{name_of(c.labels) or c.id[:12]}", c.image)
    return container_stack(found, c.snapshot_key, label, c.image)
