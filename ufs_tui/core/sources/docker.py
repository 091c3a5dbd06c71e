"""Docker's overlay2 storage, read straight from the data root (no daemon needed).

Layout (OVERLAY-NOTES §5), under the data root (default ``/var/lib/docker``):

* ``image/overlay2/repositories.json``: ``{"Repositories": {repo: {"repo:tag": "sha256:<image-id>"}}}``;
* ``image/overlay2/imagedb/content/sha256/<image-id>``: the image config (``rootfs.diff_ids`` bottom
  first, ``history``);
* ``image/overlay2/layerdb/sha256/<chain-id>/{cache-id,diff,parent,size}``;
* ``image/overlay2/layerdb/mounts/<container-id>/{mount-id,init-id,parent}``;
* ``containers/<id>/config.v2.json`` (``Name``, ``Image``, ``State``);
* ``overlay2/<cache-id>/{diff,work,lower,link}``, ``overlay2/l/<short>`` -> ``../<cache-id>/diff``.

ChainID(L0) = DiffID(L0); ChainID(L0..n) = sha256(ChainID(L0..n-1) + " " + DiffID(Ln)).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import re
from dataclasses import dataclass
from typing import Any

from ..model.display import printable
from ..model.errors import StackError
from ..model.stack import Stack
from .common import (
    INIT_LAYER,
    SEP,
    blocked_dir,
    check_root,
    container_label,
    history_steps,
    id_list,
    layer_label,
    no_such_tag,
    parse_json,
    read_bytes,
    read_json,
    read_text,
    short,
    unique_match,
    with_labels,
)
from .engines import DockerPlace, Where, docker_place

ROOT_WHAT = "the Docker data root (run as root, or pass --docker-root)"
# The Driver of a container on the containerd image store: containerd's overlayfs snapshotter (ctrd.SNAPSHOTTER,
# not imported: the containerd and bbolt readers are loaded only where a store is opened).
SNAPSHOTTER = "overlayfs"


@dataclass(frozen=True)
class ImageLayer:
    diff_id: str
    chain_id: str
    cache_id: str
    size: int | None
    created_by: str | None

    @property
    def label(self) -> str:
        return layer_label(
            self.created_by, self.size, [("diff", self.diff_id), ("chain", self.chain_id), ("cache", self.cache_id)]
        )


@dataclass(frozen=True)
class Container:
    """A container as ``containers/<ID>/config.v2.json`` records it (both storage layouts)."""

    id: str
    name: str
    image: str  # the image id (a config digest on overlay2, the image's target digest on the containerd store)
    state: str  # running | paused | restarting | exited | created
    driver: str = "overlay2"  # overlay2 (graph driver) | overlayfs (containerd store, a snapshotter)
    image_ref: str = ""  # what the user asked for (Config.Image)

    @property
    def running(self) -> bool:
        return self.state in ("running", "paused", "restarting")


def _state(state: dict[str, Any]) -> str:
    if state.get("Running"):
        return "paused" if state.get("Paused") else "restarting" if state.get("Restarting") else "running"
    started = str(state.get("StartedAt") or "")
    return "exited" if started and not started.startswith("0001-") else "created"


def _container_ids(root: str) -> list[str]:
    cdir = posixpath.join(root, "containers")
    try:
        return sorted(os.listdir(cdir))
    except PermissionError:
        raise StackError(cdir, f"permission denied reading {ROOT_WHAT}") from None
    except OSError:
        return []


def _container(root: str, cid: str, name_in: bytes | None = None) -> Container | None:
    """The container record ``cid`` (None when it cannot be read); with ``name_in``, None at once when the
    record's bytes do not hold it (a name looked for is found without parsing every record)."""
    path = posixpath.join(root, "containers", cid, "config.v2.json")
    try:
        data = read_bytes(path)  # read once: looked in, then parsed (as read_json would)
    except OSError:
        return None
    if name_in is not None and name_in not in data:
        return None
    text = data.decode("utf-8", errors="replace").strip()
    try:
        cfg = parse_json(text) if text else None
    except ValueError:
        return None
    if not isinstance(cfg, dict):
        return None
    state = cfg.get("State") if isinstance(cfg.get("State"), dict) else {}
    config = cfg.get("Config") if isinstance(cfg.get("Config"), dict) else {}
    assert isinstance(state, dict) and isinstance(config, dict)
    return Container(
        cid,
        str(cfg.get("Name") or "").lstrip("/") or cid[:12],
        str(cfg.get("Image") or ""),
        _state(state),
        str(cfg.get("Driver") or "overlay2"),
        str(config.get("Image") or ""),
    )


def containers(root: str) -> list[Container]:
    """Every container of the data root ``root`` (either storage layout), by id."""
    return [c for c in (_container(root, cid) for cid in _container_ids(root)) if c is not None]


_PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")  # Docker's names: no JSON escapes in their records


def resolve_container(root: str, want: str) -> Container:
    """The container ``want`` names: an id, a name (with or without its ``/``), or a unique id prefix (Docker's
    order). A name is looked for in the records' bytes first: one record parsed, not every one."""
    ids = _container_ids(root)
    name = want.removeprefix("/")
    if want in ids:
        found = _container(root, want)
    elif _PLAIN_NAME.fullmatch(name):
        needle = f'"Name":"/{name}"'.encode()
        found = next((c for cid in ids if (c := _container(root, cid, needle)) and c.name == name), None)
    else:
        found = None
    if found is not None:
        return found
    conts = containers(root)
    by_key: dict[str, str] = {}
    for c in conts:
        by_key[c.name] = c.id
        by_key["/" + c.name] = c.id
    try:
        cid = unique_match("container", want, by_key | {c.id: c.id for c in conts})
    except StackError as e:
        if not e.problem.startswith("no such"):
            raise
        names = ", ".join(printable(c.name) for c in conts[:12]) or "none"
        more = f", … ({len(conts) - 12} more)" if len(conts) > 12 else ""
        raise StackError(
            want, f"no such container in the Docker data root {root} (its containers: {names}{more})"
        ) from None
    return next(c for c in conts if c.id == cid)


def chain_ids(diff_ids: list[str]) -> list[str]:
    """Chain ids of an image's layers, bottom first, from its diff ids."""
    out: list[str] = []
    for d in diff_ids:
        if not out:
            out.append(d)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {d}".encode()).hexdigest())
    return out


class DockerRoot:
    """One Docker data root (overlay2 driver)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.meta = posixpath.join(root, "image", "overlay2")
        self.layers_dir = posixpath.join(root, "overlay2")
        check_root(
            root,
            ("image/overlay2", "overlay2"),
            "not a Docker data root with the overlay2 storage driver (see --docker-root)",
            ROOT_WHAT,
        )

    # ------------------------------------------------------------------ images
    def tags(self) -> dict[str, str]:
        """``repo:tag`` (and ``repo@digest``) -> image id (hex)."""
        path = posixpath.join(self.meta, "repositories.json")
        if not os.path.exists(path):
            return {}
        data = read_json(path) or {}
        out: dict[str, str] = {}
        for refs in (data.get("Repositories") or {}).values():
            for ref, image_id in (refs or {}).items():
                out[ref] = short(image_id, 64)
        return out

    def resolve_image(self, ref: str) -> str:
        tags = self.tags()
        want = ref
        for prefix in ("docker.io/library/", "docker.io/"):
            if want.startswith(prefix):
                want = want[len(prefix) :]
        bare = want not in tags and ":" not in want.rsplit("/", 1)[-1] and "@" not in want
        if bare and want + ":latest" in tags:
            want += ":latest"
        candidates = dict(tags)
        content = posixpath.join(self.meta, "imagedb", "content", "sha256")
        try:
            for image_id in os.listdir(content):
                candidates.setdefault("sha256:" + image_id, image_id)
        except OSError:
            pass
        try:
            return unique_match("image", want, candidates)
        except StackError as e:
            if bare and e.problem.startswith("no such"):
                raise no_such_tag(ref, want, tags) from None
            raise

    def image_config(self, image_id: str) -> dict[str, Any]:
        cfg = read_json(posixpath.join(self.meta, "imagedb", "content", "sha256", image_id))
        if not isinstance(cfg, dict):
            raise StackError(image_id, "image config is not a JSON object")
        return cfg

    def image_layers(self, image_id: str) -> list[ImageLayer]:
        """The image's layers, bottom first."""
        cfg = self.image_config(image_id)
        diff_ids = [str(d) for d in (cfg.get("rootfs") or {}).get("diff_ids") or []]
        steps = history_steps(cfg)
        out = []
        for i, (diff_id, chain_id) in enumerate(zip(diff_ids, chain_ids(diff_ids), strict=True)):
            ldir = posixpath.join(self.meta, "layerdb", "sha256", short(chain_id, 64))
            cache_id = read_text(posixpath.join(ldir, "cache-id"))
            size: int | None
            try:
                size = int(read_text(posixpath.join(ldir, "size")))
            except (StackError, ValueError):
                size = None
            step = steps[i] if i < len(steps) else None
            out.append(ImageLayer(diff_id, chain_id, cache_id, size, step))
        return out

    def diff_dir(self, cache_id: str) -> str:
        return posixpath.join(self.layers_dir, cache_id, "diff")

    def open_image(self, ref: str) -> Stack:
        image_id = self.resolve_image(ref)
        layers = self.image_layers(image_id)
        if not layers:
            raise StackError(ref, "image has no layers")
        top_first = list(reversed(layers))
        stack = Stack.build([self.diff_dir(layer.cache_id) for layer in top_first])
        return with_labels(stack, None, [layer.label for layer in top_first])

    # -------------------------------------------------------------- containers
    def container_mount_id(self, cid: str) -> str:
        return read_text(posixpath.join(self.meta, "layerdb", "mounts", cid, "mount-id"))

    def container_for_cache_id(self, cache_id: str) -> Container | None:
        """The container whose writable layer is ``overlay2/<cache_id>`` (for labelling mounts)."""
        mounts = posixpath.join(self.meta, "layerdb", "mounts")
        try:
            cids = os.listdir(mounts)
        except OSError:
            return None
        for cid in cids:
            try:
                if read_text(posixpath.join(mounts, cid, "mount-id")) == cache_id:
                    return next((c for c in containers(self.root) if c.id == cid), Container(cid, cid[:12], "", ""))
            except StackError:
                continue
        return None

    def open_container(self, want: str) -> Stack:
        return self.container_stack(resolve_container(self.root, want))

    def container_stack(self, c: Container) -> Stack:
        mount_id = self.container_mount_id(c.id)
        upper = posixpath.join(self.layers_dir, mount_id, "diff")
        work = posixpath.join(self.layers_dir, mount_id, "work")
        init = posixpath.join(self.layers_dir, mount_id + "-init", "diff")
        image_id = short(c.image, 64)
        lowers: list[str] = []
        labels: list[str] = []
        if os.path.isdir(init):
            lowers.append(init)
            labels.append(f"{INIT_LAYER}{SEP}cache:{mount_id}-init")
        try:
            layers = list(reversed(self.image_layers(image_id)))
        except StackError:
            layers = []
        if layers:
            lowers += [self.diff_dir(layer.cache_id) for layer in layers]
            labels += [layer.label for layer in layers]
        else:  # image metadata gone: the overlay2 'lower' file still names the layers
            lowers = self._lower_file(mount_id)
            labels = []
        stack = Stack.build(lowers, upper=upper, work=work if os.path.isdir(work) else None)
        ids = id_list([("container", c.id), ("cache", mount_id)])
        return with_labels(stack, f"{container_label(c.name, c.image_ref)}{SEP}{ids}", labels)

    def _lower_file(self, cache_id: str) -> list[str]:
        text = read_text(posixpath.join(self.layers_dir, cache_id, "lower"))
        return [os.path.realpath(posixpath.join(self.layers_dir, p)) for p in text.split(":") if p]


# ---------------------------------------------------------------------- both layouts
def data_root(where: Where) -> tuple[str, DockerPlace]:
    """The Docker data root as a path here, and how it was found."""
    place = docker_place(where)
    root = where.host.path(place.root)
    check_root(
        root, ("containers",), f"not a Docker data root (found through {place.how}; see --docker-root)", ROOT_WHAT
    )
    return root, place


def has_graph_driver(root: str) -> bool:
    """Whether the data root holds overlay2 layers (a dir this user cannot read says so: StackError)."""
    for sub in ("image/overlay2", "overlay2"):
        path = posixpath.join(root, sub)
        try:
            os.stat(path)
        except PermissionError:
            raise StackError(blocked_dir(path), f"permission denied reading {ROOT_WHAT}") from None
        except OSError:
            return False
    return True


def open_container(spec: str, where: Where) -> Stack:
    """``docker:NAME|ID`` on either layout: the container's own record says which (``Driver``)."""
    root, place = data_root(where)
    c = resolve_container(root, spec)
    if c.driver == "overlay2":
        return DockerRoot(root).container_stack(c)
    if c.driver != SNAPSHOTTER:
        raise StackError(
            spec,
            f"container {c.name} uses the storage driver {c.driver}; ufs-tui reads overlay2 and "
            f"the containerd image store ({SNAPSHOTTER})",
        )
    from .docker_ctrd import ContainerdStore

    return ContainerdStore(where, place).container_stack(c)


def open_image(spec: str, where: Where) -> Stack:
    """``docker-image:NAME[:TAG]``: in the layout the daemon uses, else the containerd store first where both are
    on disk (a host upgraded to Docker 29 keeps its old overlay2 images), then the other."""
    root, place = data_root(where)
    from .docker_ctrd import ContainerdStore

    graph = DockerRoot(root) if has_graph_driver(root) else None
    store = ContainerdStore.if_present(where, place)
    order: list[DockerRoot | ContainerdStore] = [x for x in (store, graph) if x is not None]
    if place.info is not None and place.info.driver == "overlay2":
        order.reverse()
    if not order:
        raise StackError(root, "holds neither overlay2 layers nor a containerd image store (see --docker-root)")
    first_error: StackError | None = None
    for layout in order:
        try:
            return layout.open_image(spec)
        except StackError as e:
            first_error = first_error or e
    assert first_error is not None
    raise first_error
