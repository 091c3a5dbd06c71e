"""containerd containers and images, read from containerd's metadata (running or not, no daemon needed).

``containerd:[NAMESPACE/]ID`` opens a container's snapshot (its writable layer over its image's layers),
``containerd-image:[NAMESPACE/]REF`` an image's unpacked layers. Without a namespace every namespace of
every containerd root found is searched (see :mod:`.engines`). A running task's rootfs is also an overlay
mounted at ``<state>/io.containerd.runtime.v2.task/<namespace>/<id>/rootfs``: :func:`task_of` and
:func:`is_containerd_mount` tell such mounts apart in the mount table.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable
from typing import NamedTuple

from ..model.display import printable
from ..model.errors import StackError
from ..model.stack import Stack
from .common import BUILD_INIT_LAYER, INIT_LAYER, SEP, container_label, id_list, layer_label, short, with_labels
from .ctrd import (
    SNAPSHOTTER,
    Container,
    ContainerdRoot,
    Image,
    ImageConfig,
    Namespace,
    Snapshot,
    chain_stack,
    image_config,
    snapshot_chain,
)
from .engines import Where, containerd_daemons
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


# ---------------------------------------------------------------------- finding things by name
class Found(NamedTuple):
    """A container or image of one namespace of one containerd root."""

    ctrd: ContainerdRoot
    ns: Namespace
    container: Container | None = None
    image: Image | None = None

    @property
    def where(self) -> str:
        what = self.container.id if self.container else self.image.name if self.image else ""
        return f"{self.ns.name}/{what}"


def find_roots(where: Where) -> tuple[list[ContainerdRoot], list[StackError]]:
    """The containerd roots of the host that can be read, and why the others cannot."""
    out: list[ContainerdRoot] = []
    errors: list[StackError] = []
    for d in containerd_daemons(where):
        try:
            out.append(ContainerdRoot(where.host.path(d.root)).check())
        except StackError as e:
            errors.append(e)
    return out, errors


def roots(where: Where) -> list[ContainerdRoot]:
    """The containerd roots of the host that can be read; a root the user named must be readable, and there
    must be one."""
    out, errors = find_roots(where)
    if errors and where.containerd_root:
        raise errors[0]
    if not out:
        why = "; ".join(str(e) for e in errors) or "none found"
        raise StackError(
            "containerd", f"no containerd root with metadata on this host ({why}); give it with --containerd-root"
        )
    return out


def split_namespace(spec: str) -> tuple[str | None, str]:
    """``NAMESPACE/REST`` -> (NAMESPACE, REST); a spec without ``/`` has no namespace."""
    ns, sep, rest = spec.partition("/")
    return (ns, rest) if sep else (None, spec)


Matcher = Callable[[ContainerdRoot, Namespace, str], list[Found]]


def search(where: Where, spec: str, match: Matcher, what: str) -> Found:
    """The one thing ``spec`` names in the host's containerd roots, else a StackError that lists what exists.

    ``NAMESPACE/REST`` looks for REST in that namespace when a root has it (``k8s.io/...``); where that
    finds nothing, the whole spec is looked for in every namespace, as an image ref has slashes of its own
    (``docker.io/library/x``, ``library/x``)."""
    found: list[Found] = []
    every: set[str] = set()
    ns_name, rest = split_namespace(spec)
    for ctrd in roots(where):
        spaces = ctrd.all_namespaces()
        every.update(n.name for n in spaces)
        scoped = [f for n in spaces if n.name == ns_name for f in match(ctrd, n, rest)]
        found += scoped or [f for n in spaces for f in match(ctrd, n, spec)]
    if len(found) == 1:
        return found[0]
    if found:
        listed = ", ".join(printable(f.where) for f in found[:10])
        raise StackError(spec, f"names {len(found)} {what}s: {listed}; give NAMESPACE/NAME or more of the id")
    shown = ", ".join(printable(n) for n in sorted(every)) or "none"
    raise StackError(spec, f"no such containerd {what} (namespaces: {shown}; list what exists with 'ufs-tui ps')")


def match_container(ctrd: ContainerdRoot, ns: Namespace, want: str) -> list[Found]:
    if want in ns.containers:
        return [Found(ctrd, ns, ns.containers[want])]
    return [Found(ctrd, ns, c) for cid, c in ns.containers.items() if len(want) >= 3 and cid.startswith(want)]


def normalized_refs(ref: str) -> list[str]:
    """The names an image reference may be stored under: as given, and as a fully qualified Docker Hub name
    (``busybox`` -> ``docker.io/library/busybox:latest``)."""
    out = [ref]
    name = ref
    if "@" not in name and ":" not in name.rsplit("/", 1)[-1]:
        name += ":latest"
        out.append(name)
    first = name.split("/", 1)[0]
    if "/" not in name:
        out.append("docker.io/library/" + name)
    elif "." not in first and ":" not in first and first != "localhost":
        out.append("docker.io/" + name)
    return out


def match_image(ctrd: ContainerdRoot, ns: Namespace, want: str) -> list[Found]:
    for ref in normalized_refs(want):
        if ref in ns.images:
            return [Found(ctrd, ns, image=ns.images[ref])]
    bare = want.removeprefix("sha256:")
    if len(bare) >= 3 and all(c in "0123456789abcdef" for c in bare):
        hits = {i.digest: i for i in ns.images.values() if i.digest.removeprefix("sha256:").startswith(bare)}
        return [Found(ctrd, ns, image=i) for i in hits.values()]
    return []


# ---------------------------------------------------------------------- stacks with labels
def image_labels(found: Found, cfg: ImageConfig | None, chain: list[Snapshot]) -> list[str]:
    """A label for each snapshot of ``chain`` (top first): an image layer's step, size and ids, or what it is."""
    by_chain = {c: i for i, c in enumerate(cfg.chain_ids)} if cfg else {}
    out = []
    for snap in chain:
        ids = [("snapshot", snap.id)]
        i = by_chain.get(snap.key)
        if cfg is not None and i is not None:
            step = cfg.steps[i] if i < len(cfg.steps) else None
            out.append(layer_label(step, snap.size, [("diff", cfg.diff_ids[i]), ("chain", snap.key), *ids]))
        elif snap.key == chain[0].key + "-init":
            out.append(f"{INIT_LAYER}{SEP}{id_list(ids)}")
        elif snap.key.endswith("-init"):
            out.append(f"{BUILD_INIT_LAYER}{SEP}{id_list(ids)}")
        else:
            out.append(f"{snap.kind} snapshot {printable(snap.key)}{SEP}{id_list(ids)}")
    return out


def config_of(found: Found, image_name: str) -> ImageConfig | None:
    image = found.ns.images.get(image_name)
    if image is None:
        return None
    try:
        return image_config(found.ctrd, found.ns, image)
    except StackError:
        return None


def container_stack(found: Found, key: str, upper_label: str, image_name: str) -> Stack:
    chain = snapshot_chain(found.ctrd, found.ns, key)
    stack = chain_stack(found.ctrd, chain)
    labels = image_labels(found, config_of(found, image_name), chain)
    if stack.upper is None:
        return with_labels(stack, None, labels)
    return with_labels(stack, f"{upper_label}{SEP}{id_list([('snapshot', chain[0].id)])}", labels[1:])


def open_container(spec: str, where: Where) -> Stack:
    found = search(where, spec, match_container, "container")
    c = found.container
    assert c is not None
    if c.snapshotter != SNAPSHOTTER or not c.snapshot_key:
        using = c.snapshotter or "no snapshotter"
        raise StackError(spec, f"container {c.id} uses {using}; only the overlayfs snapshotter's layers can be read")
    return container_stack(found, c.snapshot_key, container_label(found.where, c.image), c.image)


def open_image(spec: str, where: Where) -> Stack:
    found = search(where, spec, match_image, "image")
    return image_stack(found)


def image_stack(found: Found) -> Stack:
    image = found.image
    assert image is not None
    cfg = image_config(found.ctrd, found.ns, image)
    if not cfg.chain_ids:
        raise StackError(image.name, "image has no layers")
    if cfg.chain_ids[-1] not in found.ns.snapshots:
        raise StackError(
            image.name,
            f"image is not unpacked in namespace {found.ns.name} (no snapshot {short(cfg.chain_ids[-1])}); "
            "'ctr images unpack' or running a container from it makes one",
        )
    chain = snapshot_chain(found.ctrd, found.ns, cfg.chain_ids[-1])
    stack = chain_stack(found.ctrd, chain)
    return with_labels(stack, None, image_labels(found, cfg, chain))


def running_tasks(mounts: list[OverlayMount]) -> set[tuple[str, str]]:
    """(namespace, id) of every containerd task whose rootfs is mounted."""
    return {t for t in (task_of(m.target) for m in mounts) if t is not None}


def upper_dir(found: Found, key: str) -> str | None:
    """The writable dir of an active snapshot (None if it is not one)."""
    rec = found.ns.snapshots.get(key)
    backend = found.ctrd.snapshots().get(rec[0]) if rec else None
    if backend is None or backend.kind != "active":
        return None
    return posixpath.join(found.ctrd.snapshot_dir(backend.id), "fs")
