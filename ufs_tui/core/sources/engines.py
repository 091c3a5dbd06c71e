"""Where the engines of a host keep their data, found without asking them to do anything.

* Docker: ``--docker-root``; else the daemon's own answer (``GET /info`` on ``DOCKER_HOST`` or the default
  socket); else a running dockerd's ``--data-root`` (or its config file's ``data-root``); else
  ``/etc/docker/daemon.json``'s ``data-root``; else ``/var/lib/docker``.
* containerd: ``--containerd-root``; else the roots of the containerd daemons running (``--root``, or
  ``root`` in their ``--config`` file, else in ``/etc/containerd/config.toml``); else that config's
  ``root``, else ``/var/lib/containerd``. Docker's containerd image store uses Docker's own containerd
  (root ``DATA_ROOT/containerd/daemon``) unless dockerd was pointed at another one with ``--containerd``: the
  root of the containerd listening there is the one whose metadata db it holds open, as ``/proc`` shows (its
  command line and config file where that cannot be seen).
* containers-storage (Podman, CRI-O): ``--podman-root``; else ``/etc/containers/storage.conf``'s
  ``graphroot``; else ``/var/lib/containers/storage``.

All paths here are host paths until :meth:`Host.path` maps them (``--host-root``).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass, field
from typing import Any

from ..model.errors import StackError
from .common import parse_json, parse_toml, read_bytes
from .daemon import DockerInfo, docker_info
from .host import Host, engine_pids, engine_processes, flag_value, open_files

DOCKER_ROOT = "/var/lib/docker"
DOCKER_CONFIG = "/etc/docker/daemon.json"
CONTAINERD_ROOT = "/var/lib/containerd"
CONTAINERD_STATE = "/run/containerd"
CONTAINERD_SOCKET = "/run/containerd/containerd.sock"
CONTAINERD_CONFIG = "/etc/containerd/config.toml"
STORAGE_ROOT = "/var/lib/containers/storage"
STORAGE_CONFIG = "/etc/containers/storage.conf"
CONFIG_LIMIT = 1 << 20  # an engine config larger than this is not read
CONTAINERD_META_DB = "/io.containerd.metadata.v1.bolt/meta.db"  # under its root: held open while it runs


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
        return parse_toml(read_bytes(path, CONFIG_LIMIT))
    except (OSError, ValueError):
        return {}


def _json(path: str) -> dict[str, Any]:
    try:
        data = parse_json(read_bytes(path, CONFIG_LIMIT))
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


@dataclass(frozen=True)
class Dockerd:
    """A running dockerd, from its command line and config file: its data root and the containerd it was
    told to use (``--containerd``; None: its own, or the host's when that one's socket exists)."""

    root: str
    containerd: str | None


def dockerds(host: Host) -> list[Dockerd]:
    out = []
    for argv in engine_processes(host, ("dockerd",)):
        config = _json(host.path(flag_value(argv, "--config-file") or DOCKER_CONFIG))
        root = flag_value(argv, "--data-root", "-g") or _str(config.get("data-root")) or DOCKER_ROOT
        out.append(Dockerd(root, flag_value(argv, "--containerd") or _str(config.get("containerd"))))
    return out


def docker_place(where: Where) -> DockerPlace:
    host = where.host
    if where.docker_root:
        return DockerPlace(where.docker_root, "--docker-root")
    info = docker_info(host)
    if info is not None:
        return DockerPlace(info.root, "the daemon (docker info)", info)
    roots = sorted({d.root for d in dockerds(host)})
    if len(roots) == 1:
        return DockerPlace(roots[0], "the running dockerd's command line")
    if roots:
        raise StackError(
            "docker",
            f"{len(roots)} dockerd run here, with data roots {', '.join(roots)}: say which "
            "with --docker-root (or DOCKER_HOST)",
        )
    root = _str(_json(host.path(DOCKER_CONFIG)).get("data-root"))
    if root:
        return DockerPlace(root, DOCKER_CONFIG)
    return DockerPlace(DOCKER_ROOT, "the default")


def docker_containerd_root(where: Where, place: DockerPlace) -> str:
    """The containerd root that holds Docker's containerd image store (a host path): that of the containerd
    Docker talks to (the daemon says which, or a running dockerd's ``--containerd``); else Docker's own,
    ``DATA_ROOT/containerd/daemon``, where it exists; else the host's containerd (dockerd uses it when its socket
    exists). Never some other containerd that happens to run: that one may hold another Docker's images."""
    if where.containerd_root:
        return where.containerd_root
    host = where.host
    address = place.info.containerd_address if place.info else None
    if address is None:
        address = next((d.containerd for d in dockerds(host) if d.root == place.root), None)
    own = posixpath.join(place.root, "containerd", "daemon")
    has_own = os.path.exists(host.path(posixpath.join(own, "io.containerd.metadata.v1.bolt")))
    if address is None and has_own:
        return own
    want = _socket(host, address or CONTAINERD_SOCKET)
    listening = _containerd_at(host, want)
    if listening is not None:
        return listening
    if has_own:  # the daemon named its own containerd, whose process cannot be seen from here
        return own
    if address is None or want == _socket(host, CONTAINERD_SOCKET):
        return _containerd_from(host, None).root
    raise StackError(
        place.root,
        f"Docker uses the containerd at {address}, whose root could not be found: give it with --containerd-root",
    )


def _containerd_at(host: Host, want: str) -> str | None:
    """The root of the running containerd that listens at socket ``want`` (a path here). Where the kernel shows
    what a containerd holds open (its sockets, its metadata db), that says; where it does not, its command line
    and config file do (so no TOML is parsed, nor its parser loaded, where the kernel answers)."""
    for pid, argv in engine_pids(host, ("containerd",)):
        held = open_files(host, pid)
        root = _held_root(held[1]) if held is not None else None
        if held is not None and root is not None:
            if any(_socket(host, path) == want for path in held[0]):
                return root
            continue
        d = _containerd_from(host, argv)
        if _socket(host, d.address) == want:
            return d.root
    return None


def _held_root(files: list[str]) -> str | None:
    """The containerd root whose metadata db is among ``files`` (the running containerd holds it open)."""
    return next((f[: -len(CONTAINERD_META_DB)] or "/" for f in files if f.endswith(CONTAINERD_META_DB)), None)


def _socket(host: Host, address: str) -> str:
    """A socket path in one spelling (``unix://`` dropped, ``/var/run`` -> ``/run`` as the host resolves it)."""
    path = address.removeprefix("unix://")
    here = host.path(path)
    real = os.path.realpath(here)
    return real if os.path.exists(real) else here


# What marks the root of each engine's own storage (every name must be there), and how it is named in words.
_STORAGE_MARKS = (
    ("containerd's root {}", ("io.containerd.metadata.v1.bolt",)),
    ("containers-storage {} (Podman, CRI-O)", ("overlay-layers", "storage.lock")),
    ("Docker's data root {}", ("containers", "image", "network")),
)


def engine_storage(path: str) -> str | None:
    """The engine storage that holds ``path`` (or would, were it made), in words with its root, such as
    ``Docker's data root /var/lib/docker``; None when no engine's does. ufs-tui never writes there."""
    here = os.path.realpath(path)
    while True:
        for words, marks in _STORAGE_MARKS:
            if all(os.path.exists(posixpath.join(here, m)) for m in marks):
                return words.format(here)
        parent = posixpath.dirname(here)
        if parent == here:
            return None
        here = parent


def storage_root(where: Where) -> str:
    if where.podman_root:
        return where.podman_root
    cfg = _toml(where.host.path(STORAGE_CONFIG))
    storage = cfg.get("storage") if isinstance(cfg.get("storage"), dict) else {}
    assert isinstance(storage, dict)
    return _str(storage.get("graphroot")) or STORAGE_ROOT
