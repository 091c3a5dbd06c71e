"""Open real stacks: live overlay mounts, Docker, Podman, containerd, image archives.

:func:`open_source` takes a source spec (what the CLI's positional SOURCE holds) and returns a
:class:`~ufs_tui.core.stack.Stack` with layer labels:

* ``docker:NAME_OR_ID`` / ``docker-image:NAME[:TAG]`` (option ``docker_root``);
* ``podman:NAME_OR_ID`` / ``podman-image:NAME[:TAG]`` (option ``podman_root``);
* ``containerd:ID`` (a running task, through its mount);
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

from ..errors import StackError
from ..stack import Stack
from .mountinfo import MOUNTINFO, OverlayMount, find_mount, read_mountinfo

__all__ = ["OverlayMount", "list_overlay_mounts", "open_source", "is_source_spec", "SCHEMES"]

SCHEMES = ("docker", "docker-image", "podman", "podman-image", "containerd", "mount", "archive")

_DOCKER_UPPER = re.compile(r"^(?P<root>.+)/overlay2/(?P<id>[^/]+)/diff$")
_PODMAN_UPPER = re.compile(r"^(?P<root>.+)/overlay/(?P<id>[^/]+)/diff$")


def is_source_spec(text: str) -> bool:
    """Whether ``text`` names a source (scheme prefix or an existing path)."""
    scheme, sep, _ = text.partition(":")
    if sep and scheme in SCHEMES:
        return True
    return os.path.lexists(text)


def list_overlay_mounts(mountinfo: str = MOUNTINFO) -> list[OverlayMount]:
    """Every overlay mount in ``mountinfo``, with engine and container filled in when they can be told."""
    return [_attribute(m) for m in read_mountinfo(mountinfo)]


def _attribute(m: OverlayMount) -> OverlayMount:
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
    if scheme in ("docker", "docker-image"):
        from . import docker

        root = opts.get("docker_root")
        return docker.open_container(rest, root) if scheme == "docker" else docker.open_image(rest, root)
    if scheme in ("podman", "podman-image"):
        from . import podman

        root = opts.get("podman_root")
        return podman.open_container(rest, root) if scheme == "podman" else podman.open_image(rest, root)
    if scheme == "containerd":
        from . import containerd

        return containerd.open_container(rest, read_mountinfo(opts.get("mountinfo") or MOUNTINFO))
    if scheme == "mount":
        return open_mount(rest, opts.get("mountinfo") or MOUNTINFO)
    from .archive import open_archive

    return open_archive(rest, opts.get("image"))


def open_mount(path: str, mountinfo: str = MOUNTINFO) -> Stack:
    """The stack of the overlay mounted at ``path``; a Docker/Podman container mount gets its engine's labels."""
    mounts = read_mountinfo(mountinfo)
    m = find_mount(path, mounts)
    if m is None:
        raise StackError(path, "not an overlay mount point (for layer dirs use --lower/--upper)")
    m = _attribute(m)
    if m.problems:
        raise StackError(path, "; ".join(m.problems))
    if m.container_id and m.engine_root:
        try:
            if m.engine == "docker":
                from .docker import DockerRoot

                labelled = DockerRoot(m.engine_root).open_container(m.container_id)
            else:
                from .podman import StorageRoot

                labelled = StorageRoot(m.engine_root).open_container(m.container_id)
            plain = m.stack()
            if _paths(labelled) == _paths(plain):  # the mount is the truth; labels only when they agree
                return labelled
        except StackError:
            pass
    if m.engine == "containerd" and m.container_id:
        from . import containerd

        return containerd.open_container(m.container or m.container_id, mounts)
    return m.stack()


def _paths(stack: Stack) -> tuple[str | None, ...]:
    return (stack.upper.path if stack.upper else None, *(layer.path for layer in stack.all_layers))
