"""Kubernetes pods' containers on this node: ``k8s:[NAMESPACE/]POD[/CONTAINER]`` (namespace ``default``).

Two runtimes keep them on disk, both read without their daemons:

* containerd (namespace ``k8s.io``): each container carries the kubelet's labels
  ``io.kubernetes.pod.namespace``, ``io.kubernetes.pod.name``, ``io.kubernetes.container.name``, and CRI's
  ``io.cri-containerd.kind`` (``container``; a pod's ``sandbox`` holds only the pause image and is skipped);
* CRI-O (containers-storage, ``volatile-containers.json`` since CRI-O 1.22): each container's OCI spec,
  kept at ``overlay-containers/<ID>/userdata/config.json``, carries the same keys as annotations, with
  ``io.kubernetes.cri-o.ContainerType``; its storage name is ``k8s_<container>_<pod>_<namespace>_<uid>_<n>``.

A restarted container leaves its earlier attempts behind: a running one wins, else the newest.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Callable
from dataclasses import dataclass

from ..model.display import printable
from ..model.errors import StackError
from ..model.stack import Stack
from .common import container_label, parse_json, read_bytes
from .containerd import Found, container_stack, roots
from .engines import Where, storage_root

NS_LABEL = "io.kubernetes.pod.namespace"
POD_LABEL = "io.kubernetes.pod.name"
CONTAINER_LABEL = "io.kubernetes.container.name"
KIND_LABEL = "io.cri-containerd.kind"
CRIO_TYPE = "io.kubernetes.cri-o.ContainerType"
K8S_NAMESPACE = "k8s.io"


@dataclass(frozen=True)
class KubeContainer:
    """One container of a pod, on either runtime; ``open`` makes its stack."""

    namespace: str
    pod: str
    container: str
    runtime: str  # containerd | cri-o
    id: str
    created: float
    running: bool
    open: Callable[[], Stack]

    @property
    def spec(self) -> str:
        return f"k8s:{self.namespace}/{self.pod}/{self.container}"


def from_labels(labels: dict[str, str]) -> tuple[str, str, str] | None:
    """(namespace, pod, container) of a pod's app container, from kubelet's labels or annotations."""
    ns, pod, name = labels.get(NS_LABEL), labels.get(POD_LABEL), labels.get(CONTAINER_LABEL)
    kind = labels.get(KIND_LABEL) or labels.get(CRIO_TYPE) or "container"
    if not (ns and pod and name) or kind != "container":
        return None
    return ns, pod, name


def containerd_pods(where: Where, running: set[tuple[str, str]]) -> list[KubeContainer]:
    out = []
    for ctrd in roots(where):
        ns = ctrd.namespace(K8S_NAMESPACE)
        for c in ns.containers.values():
            names = from_labels(c.labels)
            if names is None:
                continue
            found = Found(ctrd, ns, c)
            label = container_label("/".join(names))

            def opener(
                found: Found = found, key: str = c.snapshot_key, label: str = label, image: str = c.image
            ) -> Stack:
                return container_stack(found, key, label, image)

            out.append(KubeContainer(*names, "containerd", c.id, c.created, (K8S_NAMESPACE, c.id) in running, opener))
    return out


def crio_pods(where: Where, mounted_uppers: set[str]) -> list[KubeContainer]:
    from .podman import StorageRoot

    root = where.host.path(storage_root(where))
    if not os.path.isdir(posixpath.join(root, "overlay-containers")):
        return []
    storage = StorageRoot(root)
    out = []
    for c in storage.containers():
        annotations = _annotations(_crio_config(root, c.id))
        names = from_labels(annotations) or _from_storage_name(c.name)
        if names is None:
            continue
        label = container_label("/".join(names))

        def opener(cid: str = c.id, label: str = label) -> Stack:
            return storage.open_container(cid, upper_label=label)

        running = storage.diff_dir(c.layer) in mounted_uppers
        out.append(KubeContainer(*names, "cri-o", c.id, c.created, running, opener))
    return out


def _crio_config(root: str, cid: str) -> str:
    return posixpath.join(root, "overlay-containers", cid, "userdata", "config.json")


def is_crio_sandbox(root: str, cid: str, name: str) -> bool:
    """Whether a container of containers-storage is a CRI-O pod's infra (pause) container."""
    return name.startswith("k8s_POD_") or _annotations(_crio_config(root, cid)).get(CRIO_TYPE) == "sandbox"


def _annotations(path: str) -> dict[str, str]:
    try:
        spec = parse_json(read_bytes(path))
    except (OSError, ValueError):
        return {}
    notes = spec.get("annotations") if isinstance(spec, dict) else None
    return {str(k): str(v) for k, v in notes.items()} if isinstance(notes, dict) else {}


def _from_storage_name(name: str) -> tuple[str, str, str] | None:
    """``k8s_<container>_<pod>_<namespace>_<uid>_<attempt>`` (CRI-O's name; ``POD`` is a sandbox)."""
    parts = name.split("_")
    if len(parts) != 6 or parts[0] != "k8s" or parts[1] == "POD":
        return None
    return parts[3], parts[2], parts[1]


def pod_containers(where: Where, running: set[tuple[str, str]], mounted_uppers: set[str]) -> list[KubeContainer]:
    """Every pod container on this node, on containerd and on CRI-O."""
    out = []
    try:
        out += containerd_pods(where, running)
    except StackError:
        if where.containerd_root:
            raise  # the root the user named cannot be read: that, not "no such pod"
        # else: no containerd on this node
    return out + crio_pods(where, mounted_uppers)


def attempt_rank(running: bool, created: float) -> tuple[bool, float]:
    """How kubelet's current attempt of a restarted container is told from the earlier ones: a running one
    wins, else the newest (the highest rank)."""
    return running, created


def choose(spec: str, pods: list[KubeContainer]) -> KubeContainer:
    """The container ``[NAMESPACE/]POD[/CONTAINER]`` names (two parts: NAMESPACE/POD if such a pod exists,
    else POD/CONTAINER in ``default``)."""
    parts = spec.split("/")
    if len(parts) > 3 or not all(parts):
        raise StackError(spec, "give k8s:[NAMESPACE/]POD[/CONTAINER]")
    readings: list[tuple[str, str, str | None]]
    if len(parts) == 1:
        readings = [("default", parts[0], None)]
    elif len(parts) == 3:
        readings = [(parts[0], parts[1], parts[2])]
    else:
        readings = [(parts[0], parts[1], None), ("default", parts[0], parts[1])]
    for ns, pod, name in readings:
        in_pod = [p for p in pods if p.namespace == ns and p.pod == pod]
        if not in_pod:
            continue
        names = sorted({p.container for p in in_pod})
        if name is None and len(names) > 1:
            raise StackError(
                spec, f"pod {ns}/{pod} has {len(names)} containers: {', '.join(names)}; give k8s:{ns}/{pod}/CONTAINER"
            )
        want = [p for p in in_pod if p.container == (name or names[0])]
        if want:
            return max(want, key=lambda p: attempt_rank(p.running, p.created))
        raise StackError(spec, f"pod {ns}/{pod} has no container {name} (it has {', '.join(names)})")
    every = list(dict.fromkeys(f"{p.namespace}/{p.pod}" for p in pods))
    shown = ", ".join(printable(p) for p in every[:12]) or "none on this node"
    raise StackError(spec, f"no such pod (pods: {shown}; list them with 'ufs-tui ps')")


def open_pod(spec: str, where: Where, running: set[tuple[str, str]], mounted_uppers: set[str]) -> Stack:
    return choose(spec, pod_containers(where, running, mounted_uppers)).open()
