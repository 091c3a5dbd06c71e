"""Podman / containers-storage (overlay driver), read straight from the storage root.

Layout (OVERLAY-NOTES §5), under the root (default ``/var/lib/containers/storage``):
``overlay/<layer-id>/{diff,work,link,lower}``, ``overlay-layers/layers.json`` (id, names, parent,
diff-digest, diff-size), ``overlay-images/images.json`` (id, names, layer = top layer id) with the
image config stored as ``overlay-images/<id>/=<base64 of "sha256:<id>">``, and
``overlay-containers/containers.json`` (id, names, image, layer). There is no init layer.
"""

from __future__ import annotations

import base64
import os
import posixpath
from dataclasses import dataclass
from typing import Any

from ..model.errors import StackError
from ..model.stack import Stack
from .common import (
    SEP,
    check_root,
    container_label,
    history_steps,
    id_list,
    layer_label,
    no_such_tag,
    parse_json,
    read_json,
    unique_match,
    with_labels,
)
from .engines import Where, storage_root


@dataclass(frozen=True)
class StorageLayer:
    id: str
    parent: str | None
    diff_digest: str
    size: int | None
    names: tuple[str, ...]


@dataclass(frozen=True)
class PodContainer:
    id: str
    name: str
    image: str
    layer: str
    created: float = 0.0  # from the engine's metadata (created-at), seconds since the epoch


def _created(metadata: object) -> float:
    """``created-at`` (Unix seconds) of the JSON string the engine keeps in ``metadata`` (0 if absent)."""
    if not isinstance(metadata, str):
        return 0.0
    try:
        value = parse_json(metadata)
        created = value.get("created-at") if isinstance(value, dict) else None
        return float(created) if isinstance(created, int | float) else 0.0
    except (ValueError, OverflowError):  # not JSON; a number too big for a time
        return 0.0


class StorageRoot:
    """One containers-storage root with the overlay driver."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.layers_dir = posixpath.join(root, "overlay")
        check_root(
            root,
            ("overlay-layers", "overlay"),
            "not a containers-storage root with the overlay driver (see --podman-root)",
            "the containers-storage root (run as root, or pass --podman-root)",
        )

    def _list(self, *parts: str) -> list[dict[str, Any]]:
        path = posixpath.join(self.root, *parts)
        if not os.path.exists(path):
            return []
        data = read_json(path)
        return [d for d in data if isinstance(d, dict)] if isinstance(data, list) else []

    def layers(self) -> dict[str, StorageLayer]:
        out = {}
        for name in ("layers.json", "volatile-layers.json"):
            for d in self._list("overlay-layers", name):
                lid = str(d.get("id", ""))
                size = d.get("diff-size")
                out[lid] = StorageLayer(
                    lid,
                    d.get("parent") or None,
                    str(d.get("diff-digest") or ""),
                    int(size) if isinstance(size, int) else None,
                    tuple(str(n) for n in d.get("names") or ()),
                )
        return out

    def images(self) -> list[dict[str, Any]]:
        return self._list("overlay-images", "images.json")

    def containers(self) -> list[PodContainer]:
        out = []
        for name in ("containers.json", "volatile-containers.json"):
            for d in self._list("overlay-containers", name):
                names = [str(n) for n in d.get("names") or ()]
                cid = str(d.get("id", ""))
                layer = d.get("layer")
                if not cid or not isinstance(layer, str):
                    continue
                name = names[0] if names else cid[:12]
                out.append(PodContainer(cid, name, str(d.get("image", "")), layer, _created(d.get("metadata"))))
        return out

    def chain(self, top: str) -> list[StorageLayer]:
        """The layer ``top`` and its parents, top first."""
        layers = self.layers()
        out: list[StorageLayer] = []
        cur: str | None = top
        while cur:
            layer = layers.get(cur)
            if layer is None:
                raise StackError(posixpath.join(self.root, "overlay-layers"), f"layer {cur} is not recorded")
            out.append(layer)
            cur = layer.parent
            if len(out) > 1000:
                raise StackError(self.root, "layer parent chain loops")
        return out

    def image_config(self, image_id: str) -> dict[str, Any]:
        key = "sha256:" + image_id
        path = posixpath.join(self.root, "overlay-images", image_id, "=" + base64.b64encode(key.encode()).decode())
        try:
            cfg = read_json(path)
        except StackError:
            return {}
        return cfg if isinstance(cfg, dict) else {}

    def resolve_image(self, ref: str) -> dict[str, Any]:
        images = self.images()
        names: dict[str, str] = {}
        for img in images:
            for n in img.get("names") or ():
                n = str(n)
                names[n] = img["id"]
                # podman's short names: localhost/bb:multi is also bb:multi, docker.io/library/x:t also x:t
                for prefix in ("localhost/", "docker.io/library/", "docker.io/"):
                    if n.startswith(prefix):
                        names.setdefault(n[len(prefix) :], img["id"])
        want = ref
        last = want.rsplit("/", 1)[-1]
        bare = want not in names and ":" not in last and "@" not in want
        if bare:
            want += ":latest"
            if want not in names:
                want = ref
        try:
            image_id = unique_match("image", want, names | {i["id"]: i["id"] for i in images})
        except StackError as e:
            if bare and e.problem.startswith("no such"):
                raise no_such_tag(ref, ref, names) from None
            raise
        return next(i for i in images if i["id"] == image_id)

    def _labels(self, chain: list[StorageLayer], image_id: str | None) -> list[str]:
        steps = history_steps(self.image_config(image_id)) if image_id else []
        labels = []
        for depth, layer in enumerate(chain):  # top first; history is bottom first
            idx = len(chain) - 1 - depth
            step = steps[idx] if idx < len(steps) else None
            labels.append(layer_label(step, layer.size, [("diff", layer.diff_digest), ("layer", layer.id)]))
        return labels

    def diff_dir(self, layer_id: str) -> str:
        return posixpath.join(self.layers_dir, layer_id, "diff")

    def open_image(self, ref: str) -> Stack:
        img = self.resolve_image(ref)
        chain = self.chain(str(img["layer"]))
        stack = Stack.build([self.diff_dir(layer.id) for layer in chain])
        return with_labels(stack, None, self._labels(chain, str(img["id"])))

    def resolve_container(self, want: str) -> PodContainer:
        conts = self.containers()
        cid = unique_match("container", want, {c.name: c.id for c in conts} | {c.id: c.id for c in conts})
        return next(c for c in conts if c.id == cid)

    def container_for_layer(self, layer_id: str) -> PodContainer | None:
        return next((c for c in self.containers() if c.layer == layer_id), None)

    def open_container(self, want: str, upper_label: str | None = None) -> Stack:
        c = self.resolve_container(want)
        chain = self.chain(c.layer)
        lowers = chain[1:]
        upper = self.diff_dir(c.layer)
        work = posixpath.join(self.layers_dir, c.layer, "work")
        if not lowers:
            raise StackError(want, "container layer has no image layers under it")
        stack = Stack.build(
            [self.diff_dir(layer.id) for layer in lowers], upper=upper, work=work if os.path.isdir(work) else None
        )
        ids = id_list([("container", c.id), ("layer", c.layer)])
        label = upper_label or container_label(c.name)
        return with_labels(stack, f"{label}{SEP}{ids}", self._labels(lowers, c.image or None))


def open_container(spec: str, where: Where) -> Stack:
    return StorageRoot(where.host.path(storage_root(where))).open_container(spec)


def open_image(spec: str, where: Where) -> Stack:
    return StorageRoot(where.host.path(storage_root(where))).open_image(spec)
