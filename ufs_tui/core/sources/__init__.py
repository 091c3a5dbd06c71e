"""Open real stacks: live overlay mounts, Docker, Podman, containerd, image archives.

:func:`open_source` takes a source spec (what the CLI's positional SOURCE holds) and returns a
:class:`~ufs_tui.core.model.stack.Stack` with layer labels:

* ``docker:NAME_OR_ID`` / ``docker-image:NAME[:TAG]`` on either of Docker's layouts: the overlay2 graph
  driver or the containerd image store (option ``docker_root``, and ``containerd_root``);
* ``podman:NAME_OR_ID`` / ``podman-image:NAME[:TAG]`` (option ``podman_root``);
* ``containerd:[NAMESPACE/]ID`` / ``containerd-image:[NAMESPACE/]REF`` from containerd's metadata (option
  ``containerd_root``), ``nerdctl:[NAMESPACE/]NAME``, ``k8s:[NAMESPACE/]POD[/CONTAINER]`` (containerd or CRI-O);
* ``mount:PATH`` or a directory that is an overlay mount point;
* ``archive:PATH`` or a file / OCI layout directory: ``docker save`` or OCI image archive (option
  ``image`` picks one image of an archive that holds several).

:func:`list_overlay_mounts` lists every overlay mount with its owner when that can be told.
"""

from __future__ import annotations

import os
import posixpath
import re
from dataclasses import replace
from typing import Any

from ..model.errors import StackError
from ..model.stack import Stack
from .engines import Where
from .host import Host
from .mountinfo import OverlayMount, find_mount, read_mountinfo

__all__ = ["OverlayMount", "list_overlay_mounts", "open_source", "is_source_spec", "SCHEMES"]

SCHEMES = (
    "docker", "docker-image", "podman", "podman-image", "containerd", "containerd-image", "nerdctl", "k8s", "mount",
    "archive",
)  # fmt: skip


def is_source_spec(text: str) -> bool:
    """Whether ``text`` names a source (scheme prefix or an existing path)."""
    scheme, sep, _ = text.partition(":")
    if sep and scheme in SCHEMES:
        return True
    return os.path.lexists(text)


def where_from(opts: dict[str, Any]) -> Where:
    """The host and engine roots an ``open_source`` call names (``host_root``, ``docker_root``, ...)."""
    return Where(
        Host(opts.get("host_root") or "/"),
        docker_root=opts.get("docker_root"),
        podman_root=opts.get("podman_root"),
        containerd_root=opts.get("containerd_root"),
    )


def host_mounts(where: Where, mountinfo: str | None = None) -> list[OverlayMount]:
    """The overlay mounts of the host (none when its mount table cannot be seen from here)."""
    path = mountinfo or where.host.mountinfo()
    return read_mountinfo(path, where.host) if path else []


def list_overlay_mounts(mountinfo: str | None = None, where: Where | None = None) -> list[OverlayMount]:
    """Every overlay mount in ``mountinfo`` (else the host's mount table), with engine and container filled in
    when they can be told."""
    where = where or Where()
    return [attribute(m) for m in host_mounts(where, mountinfo)]


_DOCKER_UPPER = re.compile(r"^(?P<root>.+)/overlay2/(?P<id>[^/]+)/diff$")
_DOCKER_STORE_TARGET = re.compile(r"^(?P<root>.+)/rootfs/overlayfs/(?P<id>[0-9a-f]{64})$")
_PODMAN_UPPER = re.compile(r"^(?P<root>.+)/overlay/(?P<id>[^/]+)/diff$")


def attribute(m: OverlayMount) -> OverlayMount:
    from . import containerd

    if m.upper:
        hit = _DOCKER_UPPER.match(m.upper)
        if hit and os.path.isdir(posixpath.join(hit.group("root"), "image", "overlay2")):
            from .docker import DockerRoot

            root = hit.group("root")
            try:
                c = DockerRoot(root).container_for_cache_id(hit.group("id"))
            except StackError:
                c = None
            return replace(
                m, engine="docker", engine_root=root, container=c.name if c else None, container_id=c.id if c else None
            )
        hit = _PODMAN_UPPER.match(m.upper)
        if hit and os.path.isdir(posixpath.join(hit.group("root"), "overlay-layers")):
            from .podman import StorageRoot

            root = hit.group("root")
            try:
                pc = StorageRoot(root).container_for_layer(hit.group("id"))
            except StackError:
                pc = None
            return replace(
                m,
                engine="podman",
                engine_root=root,
                container=pc.name if pc else None,
                container_id=pc.id if pc else None,
            )
    hit = _DOCKER_STORE_TARGET.match(m.target)
    if hit and os.path.isfile(posixpath.join(hit.group("root"), "containers", hit.group("id"), "config.v2.json")):
        from .docker import containers

        root, cid = hit.group("root"), hit.group("id")
        try:
            name = next((c.name for c in containers(root) if c.id == cid), cid[:12])
        except StackError:
            name = cid[:12]
        return replace(m, engine="docker", engine_root=root, container=name, container_id=cid)
    if containerd.is_containerd_mount(m):
        task = containerd.task_of(m.target)
        return replace(
            m,
            engine="containerd",
            container=f"{task[0]}/{task[1]}" if task else None,
            container_id=task[1] if task else None,
        )
    return m


def open_source(spec: str, **opts: Any) -> Stack:
    """Open the stack a source spec names (see the module doc). Raises StackError with a clear message."""
    scheme, sep, rest = spec.partition(":")
    if sep and scheme in SCHEMES:
        if not rest:
            raise StackError(spec, f"'{scheme}:' needs a name after the colon")
        return _open_scheme(scheme, rest, opts)
    if os.path.isdir(spec):
        if os.path.exists(posixpath.join(spec, "oci-layout")) or os.path.exists(posixpath.join(spec, "manifest.json")):
            return _open_scheme("archive", spec, opts)
        return _open_scheme("mount", spec, opts)
    if os.path.lexists(spec):
        return _open_scheme("archive", spec, opts)
    raise StackError(spec, "no such file or directory, and not a source (docker:NAME, podman:NAME, containerd:ID, ...)")


def _open_scheme(scheme: str, rest: str, opts: dict[str, Any]) -> Stack:
    where = where_from(opts)
    if scheme in ("docker", "docker-image"):
        from . import docker

        return (docker.open_container if scheme == "docker" else docker.open_image)(rest, where)
    if scheme in ("podman", "podman-image"):
        from . import podman

        return (podman.open_container if scheme == "podman" else podman.open_image)(rest, where)
    if scheme in ("containerd", "containerd-image"):
        from . import containerd

        return (containerd.open_container if scheme == "containerd" else containerd.open_image)(rest, where)
    if scheme == "nerdctl":
        from . import nerdctl

        return nerdctl.open_container(rest, where)
    if scheme == "k8s":
        from . import containerd, k8s

        mounts = host_mounts(where, opts.get("mountinfo"))
        uppers = {m.upper for m in mounts if m.upper}
        return k8s.open_pod(rest, where, containerd.running_tasks(mounts), uppers)
    if scheme == "mount":
        return open_mount(rest, opts.get("mountinfo"), where)
    from .archive import open_archive

    return open_archive(rest, opts.get("image"))


def open_mount(path: str, mountinfo: str | None = None, where: Where | None = None) -> Stack:
    """The stack of the overlay mounted at ``path`` (in ``mountinfo``, else the host's mount table); an engine's
    container mount gets its engine's labels."""
    where = where or Where()
    if mountinfo is None and where.host.mountinfo() is None:
        raise StackError(
            path,
            f"the host's mount table cannot be seen from here (neither {where.host.root}/proc nor /proc shows the "
            "host's init): run where the host's processes are visible (kubectl debug node does so)",
        )
    mounts = host_mounts(where, mountinfo)
    m = find_mount(path, mounts)
    if m is None:
        raise StackError(path, "not an overlay mount point (for layer dirs use --lower/--upper)")
    m = attribute(m)
    if m.problems:
        raise StackError(path, "; ".join(m.problems))
    if m.container_id:
        try:
            labelled = _engine_stack(m, where)
            if labelled is not None and _paths(labelled) == _paths(m.stack()):
                return labelled  # the mount is the truth; labels only when they agree
        except StackError:
            pass
    return m.stack()


def _engine_stack(m: OverlayMount, where: Where) -> Stack | None:
    """The stack the engine records for the container of mount ``m`` (with its layer labels)."""
    assert m.container_id is not None
    if m.engine == "docker" and m.engine_root:
        from . import docker

        return docker.open_container(m.container_id, replace(where, docker_root=_host_path(where, m.engine_root)))
    if m.engine == "podman" and m.engine_root:
        from .podman import StorageRoot

        return StorageRoot(m.engine_root).open_container(m.container_id)
    if m.engine == "containerd" and m.container:
        from . import containerd

        return containerd.open_container(m.container, where)
    return None


def _host_path(where: Where, here: str) -> str:
    """The host path of ``here`` (a path under the host root): engine roots given by name are host paths."""
    root = where.host.root.rstrip("/")
    return here[len(root) :] or "/" if root and here.startswith(root + "/") else here


def _paths(stack: Stack) -> tuple[str | None, ...]:
    return (stack.upper.path if stack.upper else None, *(layer.path for layer in stack.all_layers))
