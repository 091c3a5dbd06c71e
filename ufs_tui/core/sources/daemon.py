"""Ask a running Docker daemon where its data is (``GET /info``), read-only and within a short timeout.

Only where the daemon answers on a local Unix socket: ``DOCKER_HOST=unix://PATH``, else the default
socket (``/var/run/docker.sock`` on the host). A daemon reached over TCP or SSH keeps its data on
another machine, so it is not asked. Nothing here fails: no answer is ``None``, and the caller falls back
to the config files and defaults.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Mapping
from dataclasses import dataclass

from .common import parse_json
from .host import Host

DEFAULT_SOCKET = "/var/run/docker.sock"
_LIMIT = 4 << 20  # an /info answer is a few kB; never read more than this


@dataclass(frozen=True)
class DockerInfo:
    """What ``docker info`` says about storage. ``root`` is a host path."""

    root: str
    driver: str  # "overlay2" (graph driver) | "overlayfs" (containerd store) | ...
    containerd_store: bool  # DriverStatus driver-type io.containerd.snapshotter.v1
    containerd_address: str | None  # the containerd dockerd talks to
    namespace: str  # containerd namespace of its containers ("moby")


def docker_socket(host: Host, env: Mapping[str, str] | None = None) -> str | None:
    """The local socket to ask, or None when DOCKER_HOST names a daemon elsewhere."""
    value = (os.environ if env is None else env).get("DOCKER_HOST", "")
    if not value:
        return host.path(DEFAULT_SOCKET)
    if value.startswith("unix://"):
        return value[len("unix://") :]
    return None


def docker_info(host: Host, env: Mapping[str, str] | None = None, timeout: float = 1.0) -> DockerInfo | None:
    sock_path = docker_socket(host, env)
    if sock_path is None or not os.path.exists(sock_path):
        return None
    body = _get(sock_path, "/info", timeout)
    if body is None:
        return None
    try:
        info = parse_json(body)
    except ValueError:
        return None
    if not isinstance(info, dict) or not isinstance(info.get("DockerRootDir"), str):
        return None
    status = {str(k): str(v) for k, v in _pairs(info.get("DriverStatus"))}
    ctrd = info.get("Containerd") if isinstance(info.get("Containerd"), dict) else {}
    assert isinstance(ctrd, dict)
    spaces = ctrd.get("Namespaces") if isinstance(ctrd.get("Namespaces"), dict) else {}
    assert isinstance(spaces, dict)
    driver = str(info.get("Driver") or "")
    return DockerInfo(
        root=info["DockerRootDir"],
        driver=driver,
        containerd_store=status.get("driver-type") == "io.containerd.snapshotter.v1",
        containerd_address=str(ctrd["Address"]) if isinstance(ctrd.get("Address"), str) else None,
        namespace=str(spaces.get("Containers") or "moby"),
    )


def _pairs(value: object) -> list[tuple[object, object]]:
    if not isinstance(value, list):
        return []
    return [(p[0], p[1]) for p in value if isinstance(p, list) and len(p) == 2]


def _get(sock_path: str, path: str, timeout: float) -> bytes | None:
    """The body of a 200 answer to ``GET path`` over HTTP/1.0 (the daemon closes the connection after it)."""
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout)
            s.connect(sock_path)
            s.sendall(f"GET {path} HTTP/1.0\r\nHost: docker\r\n\r\n".encode())
            chunks: list[bytes] = []
            size = 0
            while size <= _LIMIT:
                chunk = s.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                size += len(chunk)
    except OSError:  # refused, timed out, permission denied: no answer
        return None
    data = b"".join(chunks)
    head, sep, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n", 1)[0].split(b" ")
    if not sep or len(status) < 2 or status[1] != b"200":
        return None
    if b"transfer-encoding: chunked" in head.lower():
        return _unchunk(body)
    return body


def _unchunk(body: bytes) -> bytes | None:
    out: list[bytes] = []
    pos = 0
    while True:
        end = body.find(b"\r\n", pos)
        if end < 0:
            return None
        size = body[pos:end].split(b";")[0].strip(b" \t")
        if not size or size.strip(b"0123456789abcdefABCDEF"):
            return None  # chunk-size is 1*HEXDIG: no sign, no prefix
        n = int(size, 16)
        if n == 0:
            return b"".join(out)
        out.append(body[end + 2 : end + 2 + n])
        pos = end + 2 + n + 2
