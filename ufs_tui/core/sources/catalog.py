"""Every container and image of every engine on a host, each with the SOURCE that opens it (``ufs-tui ps``).

Read from the engines' own records, without their daemons: Docker (both layouts), containers-storage
(Podman, and CRI-O's pod containers), and every containerd root found (its namespaces; Kubernetes pods in
``k8s.io``, nerdctl's names). The images of Docker's containerd namespace are listed once, as Docker's (its
containers there have no snapshots; what else is in it, such as a container ctr made, is listed as
containerd's). A container is ``running`` when its writable layer is mounted (Docker: as its own record says).
"""

from __future__ import annotations

import os
import posixpath
import stat
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial

from ..model.errors import StackError
from .common import short_ref
from .containerd import Found, find_roots, running_tasks, upper_dir
from .ctrd import SNAPSHOTTER, ContainerdRoot, Namespace
from .docker_ctrd import ContainerdStore
from .engines import Where, docker_place, storage_root
from .k8s import K8S_NAMESPACE, KIND_LABEL, attempt_rank, crio_pods, from_labels, is_crio_sandbox
from .mountinfo import OverlayMount
from .nerdctl import name_of


@dataclass(frozen=True)
class Entry:
    """One container or image: who has it, its state, its writable layer, and what opens it."""

    engine: str  # docker | podman | cri-o | containerd | nerdctl | k8s
    kind: str  # container | image
    namespace: str  # containerd namespace (Kubernetes: the pod's namespace), else ""
    name: str
    id: str
    state: str  # running | paused | exited | created | stopped | "" (an image)
    image: str
    upper: str | None  # the writable layer's dir (here), for a container
    source: str  # the SOURCE that opens it: docker:web, k8s:default/web/app, ...
    upper_size: int | None = None
    created: float = 0.0  # seconds since the epoch, where the engine's record says


@dataclass
class Catalog:
    entries: list[Entry]
    notes: list[str]  # what could not be read, one line each


def gather(where: Where, mounts: list[OverlayMount], sizes: bool = True) -> Catalog:
    cat = Catalog([], [])
    uppers = {m.upper for m in mounts if m.upper}
    tasks = running_tasks(mounts)
    docker_ns: set[tuple[str, str]] = set()  # (containerd root, namespace) whose images Docker lists
    _collect(cat, "Docker", lambda: _docker(where, docker_ns))
    _collect(cat, "containers-storage", lambda: _storage(where, uppers))
    ctrds, errors = find_roots(where)
    cat.notes += [f"containerd: {e}" for e in errors]
    for ctrd in ctrds:  # one root that cannot be read leaves the others listed
        _collect(cat, "containerd", partial(_containerd, ctrd, tasks, docker_ns))
    cat.entries = _earlier_attempts(cat.entries)
    if sizes:
        cat.entries = [replace(e, upper_size=upper_size(e.upper)) if e.upper else e for e in cat.entries]
    return cat


def _earlier_attempts(entries: list[Entry]) -> list[Entry]:
    """A restarted pod container has a row for each attempt, and ``k8s:NS/POD/CONTAINER`` opens the one kubelet
    means; each earlier attempt's row gets its runtime's own SOURCE, which opens that attempt."""
    attempts: dict[str, list[Entry]] = {}
    for e in entries:
        if e.source.startswith("k8s:"):
            attempts.setdefault(e.source, []).append(e)
    earlier = {
        id(e)
        for group in attempts.values()
        for e in group
        if e is not max(group, key=lambda a: attempt_rank(a.state == "running", a.created))
    }
    own = {"k8s": f"containerd:{K8S_NAMESPACE}/{{}}", "cri-o": "podman:{}"}
    return [replace(e, source=own[e.engine].format(e.id)) if id(e) in earlier else e for e in entries]


def _collect(cat: Catalog, engine: str, step: Callable[[], Iterator[Entry]]) -> None:
    try:
        cat.entries.extend(step())
    except StackError as e:
        cat.notes.append(f"{engine}: {e}")


def _docker(where: Where, docker_ns: set[tuple[str, str]]) -> Iterator[Entry]:
    from .docker import DockerRoot, containers, has_graph_driver

    place = docker_place(where)
    root = where.host.path(place.root)
    if not os.path.isdir(posixpath.join(root, "containers")):
        return
    conts = containers(root)
    store = ContainerdStore.if_present(where, place, conts)
    found = store.found() if store else None
    if store is not None:
        docker_ns.add((os.path.realpath(store.path), store.namespace))  # as the kernel or a config spells it
    graph = DockerRoot(root) if has_graph_driver(root) else None
    for c in conts:
        upper = None
        if c.driver == "overlay2" and graph is not None:
            try:
                upper = graph.diff_dir(graph.container_mount_id(c.id))
            except StackError:
                upper = None
        elif found is not None:
            upper = upper_dir(found, c.id)
        image = c.image_ref or c.image.removeprefix("sha256:")[:12]
        yield Entry("docker", "container", "", c.name, c.id, c.state, image, upper, f"docker:{c.name}")
    if graph is not None:
        for ref, image_id in sorted(graph.tags().items()):
            if "@" not in ref:
                yield Entry("docker", "image", "", ref, image_id, "", ref, None, f"docker-image:{ref}")
    if found is not None:
        for img in found.ns.images.values():
            if not img.name.startswith("moby-dangling@"):
                ref = short_ref(img.name)
                yield Entry("docker", "image", "", ref, img.digest, "", ref, None, f"docker-image:{ref}")


def _storage(where: Where, uppers: set[str]) -> Iterator[Entry]:
    from .podman import StorageRoot

    root = where.host.path(storage_root(where))
    if not os.path.isdir(posixpath.join(root, "overlay-containers")):
        return
    storage = StorageRoot(root)
    pods = {p.id: p for p in crio_pods(where, uppers)}
    for c in storage.containers():
        upper = storage.diff_dir(c.layer)
        state = "running" if upper in uppers else "stopped"
        pod = pods.get(c.id)
        if pod is not None:
            name = f"{pod.pod}/{pod.container}"
            yield Entry(
                "cri-o", "container", pod.namespace, name, c.id, state, c.image[:12], upper, pod.spec, created=c.created
            )
        elif not is_crio_sandbox(root, c.id, c.name):  # a pod's pause container is left out, as containerd's
            yield Entry("podman", "container", "", c.name, c.id, state, c.image[:12], upper, f"podman:{c.name}")
    for img in storage.images():
        names = [str(n) for n in img.get("names") or ()]
        iid = str(img.get("id", ""))
        ref = names[0] if names else iid[:12]
        yield Entry("podman", "image", "", ref, iid, "", ref, None, f"podman-image:{ref}")


def _containerd(ctrd: ContainerdRoot, tasks: set[tuple[str, str]], docker_ns: set[tuple[str, str]]) -> Iterator[Entry]:
    for ns in ctrd.all_namespaces():
        yield from _namespace(ctrd, ns, tasks, images=(os.path.realpath(ctrd.root), ns.name) not in docker_ns)


def _namespace(ctrd: ContainerdRoot, ns: Namespace, tasks: set[tuple[str, str]], images: bool) -> Iterator[Entry]:
    found = Found(ctrd, ns)
    for c in ns.containers.values():
        if c.labels.get(KIND_LABEL) == "sandbox" or c.snapshotter != SNAPSHOTTER or not c.snapshot_key:
            continue  # a pod's pause container; no overlayfs layers (Docker's own runtime records have none)
        state = "running" if (ns.name, c.id) in tasks else "stopped"
        upper = upper_dir(found, c.snapshot_key)
        image = short_ref(c.image)
        pod = from_labels(c.labels) if ns.name == K8S_NAMESPACE else None
        nerd = name_of(c.labels)
        if pod is not None:
            spec = f"k8s:{pod[0]}/{pod[1]}/{pod[2]}"
            yield Entry(
                "k8s", "container", pod[0], f"{pod[1]}/{pod[2]}", c.id, state, image, upper, spec, created=c.created
            )
        elif nerd is not None:
            spec = f"nerdctl:{ns.name}/{nerd}"
            yield Entry("nerdctl", "container", ns.name, nerd, c.id, state, image, upper, spec)
        else:
            spec = f"containerd:{ns.name}/{c.id}"
            yield Entry("containerd", "container", ns.name, c.id, c.id, state, image, upper, spec)
    for img in ns.images.values() if images else ():
        spec = f"containerd-image:{ns.name}/{img.name}"
        yield Entry("containerd", "image", ns.name, img.name, img.digest, "", img.name, None, spec)


def upper_size(path: str | None) -> int | None:
    """Bytes of the files in a writable layer (each inode once; whiteouts and dirs count nothing); None when it
    is gone or a dir of it cannot be read. Entries that vanish while it is added up (a running container) are
    skipped."""
    if path is None or not os.path.isdir(path):
        return None
    total = 0
    seen: set[int] = set()
    pending = [path]
    while pending:
        try:
            it = os.scandir(pending.pop())
        except FileNotFoundError:
            continue
        except OSError:
            return None
        with it:
            for entry in it:
                try:
                    st = entry.stat(follow_symlinks=False)
                except FileNotFoundError:
                    continue
                except OSError:
                    return None
                if stat.S_ISDIR(st.st_mode):
                    pending.append(entry.path)
                elif st.st_nlink == 1 or st.st_ino not in seen:
                    seen.add(st.st_ino)
                    total += st.st_size
    return total
