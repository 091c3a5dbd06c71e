"""Where :mod:`.extract` never writes: inside a layer of the stack, its work dir, an overlay mounted from its layers,
an image archive it reads, or an engine's storage (Docker's, containerd's, containers-storage).

A destination is judged by its real path (symlinks and ``..`` resolved) and, for the dirs it would be in that
exist, by their identity (device and inode), so a bind mount of a layer is one too. Engine storage is known by
name (the default roots in :mod:`.sources.engines`, the ones the user named, the ones running daemons and the
config files name: refused even before they exist) and by what it holds (:func:`~.sources.engines.engine_storage`).
"""

from __future__ import annotations

import os
import posixpath
from dataclasses import dataclass

from .model.errors import UfsError
from .model.stack import Stack

_HINT = "ufs-tui never writes there: pick a DEST outside the stack's layers, its mounts and the engines' storage"


@dataclass(frozen=True)
class Place:
    """A place no destination may be in: words for it, its real path, its (st_dev, st_ino) where it exists."""

    words: str
    path: str
    ident: tuple[int, int] | None


def place(words: str, path: str) -> Place:
    real = os.path.realpath(path)
    try:
        st = os.stat(real)
    except OSError:
        return Place(words, real, None)
    return Place(words, real, (st.st_dev, st.st_ino))


def forbidden_places(stack: Stack, engines: dict[str, str | None]) -> list[Place]:
    """Every place a destination may not be in, for ``stack`` (``engines``: the engine roots the user named:
    ``docker_root``, ``containerd_root``, ``podman_root``, ``host_root``)."""
    from .sources.archive import TarLayerFS

    out = [place(f"the {layer.name} layer {layer.path}", layer.path) for layer in stack.all_layers]
    for layer in stack.all_layers:
        if isinstance(layer.fs, TarLayerFS):
            out.append(place(f"the image archive {layer.fs.blob.file}", layer.fs.blob.file))
    if stack.work is not None:
        out.append(place(f"the work dir {stack.work}", stack.work))
    out += _mounts(stack, out)
    out += _engines(engines)
    return out


def refusal(target: str, places: list[Place]) -> str | None:
    """Why nothing may be written at ``target`` (a real path), or None."""
    for p in places:
        if target == p.path or target.startswith(p.path.rstrip("/") + "/"):
            return f"{target}: inside {p.words}: {_HINT}"
    idents = {p.ident: p for p in places if p.ident is not None}
    here = target
    while True:
        try:
            st = os.lstat(here)  # (the target itself not followed: a symlink there is replaced, not written through)
        except OSError:
            pass
        else:
            hit = idents.get((st.st_dev, st.st_ino))
            if hit is not None:
                return f"{target}: inside {hit.words} (as {here}): {_HINT}"
        parent = posixpath.dirname(here)
        if parent == here:
            break
        here = parent
    from .sources.engines import engine_storage

    owner = engine_storage(target)
    return f"{target}: inside {owner}: {_HINT}" if owner is not None else None


def _mounts(stack: Stack, layers: list[Place]) -> list[Place]:
    """The overlays mounted (in this mount table, and in this user's record of ufs-tui's mounts) that are made of
    any of this stack's layer dirs: writing into one writes into a layer."""
    ours: set[object] = {p.path for p in layers} | {p.ident for p in layers if p.ident is not None}

    def shares(dirs: list[str | None]) -> bool:
        for d in dirs:
            if d:
                got = place("", d)
                if got.path in ours or got.ident in ours:
                    return True
        return False

    out: list[Place] = []
    try:
        from .sources.mountinfo import read_mountinfo

        for m in read_mountinfo():
            if shares([*m.lowers, *m.data_layers, m.upper, m.work]):
                out.append(place(f"the overlay mounted at {m.target} from this stack's layers", m.target))
    except (OSError, UfsError):
        pass
    try:
        from .mounting.record import recorded, runtime_dir

        runtime = runtime_dir(create=False)
        handles = recorded(runtime) if os.path.isdir(runtime) else []
    except (OSError, UfsError, ValueError, KeyError, TypeError):
        handles = []
    for h in handles:
        s = h.stack
        if shares([*(la.path for la in s.all_layers), s.work]):
            for where in dict.fromkeys((h.target, h.path)):
                out.append(place(f"the overlay ufs-tui mounted at {h.target} from this stack's layers", where))
    return out


def _engines(engines: dict[str, str | None]) -> list[Place]:
    """Every engine's storage this host has or would have: default roots, the roots named, the running daemons'
    and the configured ones (host paths, found under ``--host-root``)."""
    from .sources import where_from
    from .sources.engines import (
        CONTAINERD_ROOT,
        CONTAINERD_STATE,
        DOCKER_ROOT,
        STORAGE_ROOT,
        containerd_daemons,
        dockerds,
        storage_root,
    )

    where = where_from(engines)
    docker, ctrd, state, storage = (
        "Docker's data root",
        "containerd's root",
        "containerd's state dir",
        "containers-storage (Podman, CRI-O)",
    )
    named: list[tuple[str, str | None]] = [
        (docker, DOCKER_ROOT),
        (docker, where.docker_root),
        (ctrd, CONTAINERD_ROOT),
        (ctrd, where.containerd_root),
        (state, CONTAINERD_STATE),
        (storage, STORAGE_ROOT),
        (storage, where.podman_root),
    ]
    try:
        named += [(docker, d.root) for d in dockerds(where.host)]
        for d in containerd_daemons(where):
            named += [(ctrd, d.root), (state, d.state)]
        named.append((storage, storage_root(where)))
    except (OSError, UfsError, ValueError):
        pass
    out = []
    for words, host_path in dict.fromkeys(named):
        if host_path:
            try:
                here = where.host.path(host_path)
            except UfsError:
                continue
            out.append(place(f"{words} {host_path}", here))
    return out
