"""Where the engines of a host keep their data, found without asking them to do anything.

* Docker: ``--docker-root``; else the daemon's own answer (``GET /info`` on ``DOCKER_HOST`` or the default
  socket); else a running dockerd's ``--data-root`` (or its config file's ``data-root``); else
  ``/etc/docker/daemon.json``'s ``data-root``; else ``/var/lib/docker``.
* containerd: ``--containerd-root``; else the roots of the containerd daemons running (``--root``, or
  ``root`` in their ``--config`` file, else in ``/etc/containerd/config.toml``); else that config's
  ``root``, else ``/var/lib/containerd``. Docker's containerd image store uses Docker's own containerd
  (root ``DATA_ROOT/containerd/daemon``) unless dockerd was pointed at another one with ``--containerd``.
* containers-storage (Podman, CRI-O): ``--podman-root``; else ``/etc/containers/storage.conf``'s
  ``graphroot``; else ``/var/lib/containers/storage``.

All paths here are host paths until :meth:`Host.path` maps them (``--host-root``).
"""

from __future__ import annotations

import json
import os
import posixpath
import tomllib
from dataclasses import dataclass, field
from typing import Any

from .daemon import DockerInfo, docker_info
from .host import Host, engine_processes, flag_value

DOCKER_ROOT = "/var/lib/docker"
DOCKER_CONFIG = "/etc/docker/daemon.json"
CONTAINERD_ROOT = "/var/lib/containerd"
CONTAINERD_STATE = "/run/containerd"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
STORAGE_ROOT = "/var/lib/containers/storage"
STORAGE_CONFIG = "/etc/containers/storage.conf"


@dataclass(frozen=True)
class Where:
    """The host, and the engine roots a user named (host paths; None: find them)."""

    host: Host = field(default_factory=Host)
    docker_root: str | None = None
    podman_root: str | None = None
    containerd_root: str | None = None


@dataclass(frozen=True)
class ContainerdDaemon:
    """A containerd: its root, state dir and socket (host paths), from its command line and config."""

    root: str
    state: str = CONTAINERD_STATE
    address: str = CONTAINERD_SOCKET
    running: bool = False


def _toml(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError):
        return {}
    return data


def _json(path: str) -> dict[str, Any]:
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read(1 << 20))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _str(value: object) -> str | None:
    return value if isinstance(value, str) and value.startswith("/") else None


def _containerd_from(host: Host, argv: list[str] | None) -> ContainerdDaemon:
    config = (flag_value(argv, "--config", "-c") if argv else None) or CONTAINERD_CONFIG
    cfg = _toml(host.path(config))
    grpc = cfg.get("grpc") if isinstance(cfg.get("grpc"), dict) else {}
    assert isinstance(grpc, dict)
    root = (flag_value(argv, "--root") if argv else None) or _str(cfg.get("root")) or CONTAINERD_ROOT
    state = (flag_value(argv, "--state") if argv else None) or _str(cfg.get("state")) or CONTAINERD_STATE
    address = (flag_value(argv, "--address", "-a") if argv else None) or _str(grpc.get("address")) or CONTAINERD_SOCKET
    return ContainerdDaemon(root, state, address, running=argv is not None)


def containerd_daemons(where: Where) -> list[ContainerdDaemon]:
    """Every containerd of the host: the one named by ``--containerd-root``, the running ones, and the
    configured or default one where its root exists. Docker's own containerd is among the running ones."""
    host = where.host
    if where.containerd_root:
        return [ContainerdDaemon(where.containerd_root)]
    found: dict[str, ContainerdDaemon] = {}
    for argv in engine_processes(host, ("containerd",)):
        d = _containerd_from(host, argv)
        found.setdefault(d.root, d)
    default = _containerd_from(host, None)
    if default.root not in found and os.path.isdir(host.path(default.root)):
        found[default.root] = default
    return list(found.values())


@dataclass(frozen=True)
class DockerPlace:
    """A Docker data root (host path) and how it was found; ``info`` when the daemon answered."""

    root: str
    how: str
    info: DockerInfo | None = None


def docker_place(where: Where) -> DockerPlace:
    host = where.host
    if where.docker_root:
        return DockerPlace(where.docker_root, "--docker-root")
    info = docker_info(host)
    if info is not None:
        return DockerPlace(info.root, "the daemon (docker info)", info)
    for argv in engine_processes(host, ("dockerd",)):
        root = flag_value(argv, "--data-root", "-g")
        config = flag_value(argv, "--config-file")
        root = root or _str(_json(host.path(config or DOCKER_CONFIG)).get("data-root"))
        return DockerPlace(root or DOCKER_ROOT, "the running dockerd's command line")
    root = _str(_json(host.path(DOCKER_CONFIG)).get("data-root"))
    if root:
        return DockerPlace(root, DOCKER_CONFIG)
    return DockerPlace(DOCKER_ROOT, "the default")


def docker_containerd_root(where: Where, place: DockerPlace) -> str:
    """The containerd root that holds Docker's containerd image store (a host path): the running containerd
    the daemon says it talks to; else Docker's own (``DATA_ROOT/containerd/daemon``) where it exists; else the
    host's containerd."""
    if where.containerd_root:
        return where.containerd_root
    address = place.info.containerd_address if place.info else None
    daemons = containerd_daemons(where)
    for d in daemons:
        if address is not None and d.running and d.address == address:
            return d.root
    own = posixpath.join(place.root, "containerd", "daemon")
    if os.path.exists(where.host.path(posixpath.join(own, "io.containerd.metadata.v1.bolt"))):
        return own
    return daemons[0].root if daemons else CONTAINERD_ROOT


def storage_root(where: Where) -> str:
    if where.podman_root:
        return where.podman_root
    cfg = _toml(where.host.path(STORAGE_CONFIG))
    storage = cfg.get("storage") if isinstance(cfg.get("storage"), dict) else {}
    assert isinstance(storage, dict)
    return _str(storage.get("graphroot")) or STORAGE_ROOT
