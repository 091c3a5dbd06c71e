"""Docker's containerd image store (the default of Docker 29 on fresh installs), read without the daemon.

The layers are snapshots of containerd's overlayfs snapshotter in namespace ``moby`` (``docker info``'s
``Containerd.Namespaces.Containers``), in Docker's own containerd (root ``DATA_ROOT/containerd/daemon``) or
in the host's containerd when dockerd uses that one (see :func:`.engines.docker_containerd_root`). A
container's snapshot key is its ID; its parent is the committed ``<ID>-init`` (``.dockerenv``, ``/etc/hosts``,
...), whose parent is the image's top layer (its ChainID). The parent links are followed rather than the
image's layer list, since a legacy-builder image's layers can sit on a build container's init snapshot.
Names come from ``DATA_ROOT/containers/<ID>/config.v2.json`` (:func:`.docker.containers`).
"""

from __future__ import annotations

import os
import posixpath

from ..model.errors import StackError
from ..model.stack import Stack
from .common import SEP, container_label, id_list, no_such_tag, short_ref
from .containerd import Found, container_stack, image_stack, match_image
from .ctrd import META_DB, SNAPSHOTTER, ContainerdRoot
from .docker import Container, containers, has_graph_driver
from .engines import DockerPlace, Where, docker_containerd_root


def uses_store(where: Where, place: DockerPlace, conts: list[Container] | None = None) -> bool:
    """Whether this Docker keeps its layers in containerd: as the daemon says; without it, as its data root
    shows (no overlay2 layers, buildkit's ``containerd-*`` cache, or a container on the snapshotter: ``conts``,
    its containers when the caller has read them already). A Docker on overlay2 never claims a containerd's
    ``moby`` namespace: another engine's images may be there."""
    if place.info is not None:
        return place.info.containerd_store
    root = where.host.path(place.root)
    if not has_graph_driver(root):
        return True
    try:
        if any(name.startswith("containerd-") for name in os.listdir(posixpath.join(root, "buildkit"))):
            return True
    except OSError:
        pass
    return any(c.driver == SNAPSHOTTER for c in (containers(root) if conts is None else conts))


class ContainerdStore:
    """The containerd namespace that holds one Docker data root's images and containers."""

    def __init__(self, where: Where, place: DockerPlace) -> None:
        self.root = docker_containerd_root(where, place)
        self.path = where.host.path(self.root)
        self.namespace = place.info.namespace if place.info else "moby"
        self.data_root = place.root

    @classmethod
    def if_present(
        cls, where: Where, place: DockerPlace, conts: list[Container] | None = None
    ) -> ContainerdStore | None:
        """The store, where Docker keeps images or layers in it (a Docker on the overlay2 driver has a
        namespace there too, for its running containers, but no snapshots)."""
        if not uses_store(where, place, conts):
            return None
        store = cls(where, place)
        if not os.path.exists(posixpath.join(store.path, META_DB)):
            if where.containerd_root or (place.info is not None and place.info.containerd_store):
                ContainerdRoot(store.path)  # a root the user named, or the daemon uses, must be there: says why not
            return None
        ns = store.to_open().ns
        return store if ns.images or ns.snapshots else None

    def found(self) -> Found:
        """The store's namespace, all of it read at once (to list what it holds)."""
        ctrd = ContainerdRoot(self.path)
        return Found(ctrd, ctrd.namespace(self.namespace))

    def to_open(self, *keys: str) -> Found:
        """The store's namespace read as far as opening one thing needs: its images, the snapshots ``keys`` and
        their parents; the rest only when asked for."""
        ctrd = ContainerdRoot(self.path)
        return Found(ctrd, ctrd.namespace_for(self.namespace, keys))

    def container_stack(self, c: Container) -> Stack:
        found = self.to_open(c.id)
        if c.id not in found.ns.snapshots:
            raise StackError(
                c.name,
                f"container {c.id[:12]} has no snapshot in namespace {self.namespace} of the containerd root "
                f"{self.root} (removed since? if dockerd uses another containerd, give its root: --containerd-root)",
            )
        image = next((i.name for i in found.ns.images.values() if i.digest == c.image), "")
        ids = id_list([("container", c.id)])
        return container_stack(found, c.id, f"{container_label(c.name, image or c.image_ref)}{SEP}{ids}", image)

    def open_image(self, ref: str) -> Stack:
        found = self.to_open()
        hits = match_image(found.ctrd, found.ns, ref)
        if len(hits) > 1:
            shown = ", ".join(short_ref(h.image.name) for h in hits if h.image)
            raise StackError(ref, f"ambiguous image id prefix ({len(hits)} match: {shown})")
        if not hits:
            names = [short_ref(n) for n in found.ns.images if not n.startswith("moby-dangling@")]
            bare = ":" not in ref.rsplit("/", 1)[-1] and "@" not in ref
            if bare:
                raise no_such_tag(ref, short_ref(ref), names)
            listed = ", ".join(sorted(names)[:12]) or "none"
            raise StackError(ref, f"no such image in Docker's containerd image store (images: {listed})")
        return image_stack(hits[0])
