"""The upper's changes against the lowers, in the form ``docker diff`` prints them.

Rules (observed with Docker on overlay2, OVERLAY-NOTES §4), for every path in
the upper except its root:

* a whiteout is ``D``;
* an opaque dir that exists below is ``C``, and each child of the lower dir it
  hides is ``D``;
* anything else is ``C`` if the lower view has that path, else ``A``
  (so a parent dir copied up only because a child changed is ``C``).

"Has that path" is decided by the lowers' own merged view, so a whiteout or an
opaque dir inside the lowers is honoured, and paths under an opaque or
redirected upper dir are compared with what that dir really sits on.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterator
from dataclasses import dataclass

from . import status as S
from .markers import WH_FUSE_OPAQUE, WH_OPAQUE, WH_PREFIX, Node, probe
from .merge import Entry, OverlayView, join
from .stack import Stack


@dataclass(frozen=True)
class Change:
    kind: str  # "A", "C" or "D"
    path: str  # merged path
    real: str  # the real path in the upper (for D of a hidden lower child: the lower's path)
    node: Node | None  # the upper object (or, for a hidden lower child, the lower one)
    status: str  # the merged-view status, or a hidden status for D lines
    layer: str  # layer name the object lives in


def changes(stack: Stack) -> Iterator[Change]:
    """Every change the upper makes over the lowers, sorted by path."""
    if stack.upper is None:
        return
    merged = OverlayView(stack)
    below = OverlayView(stack.without_upper())
    out: list[Change] = []
    _walk(stack, merged, below, "/", "/", stack.upper.path, out)
    out.sort(key=lambda c: os.fsencode(c.path))
    yield from out


def _walk(
    stack: Stack,
    merged: OverlayView,
    below: OverlayView,
    mpath: str,
    bpath: str | None,
    real_dir: str,
    out: list[Change],
    replaced: frozenset[str] = frozenset(),
) -> None:
    """Walk one upper dir. ``bpath`` is the lower-view path it sits on (None: nothing below).

    ``replaced``: names an opaque dir hides below and holds again itself (reported ``C``).
    """
    assert stack.upper is not None
    oci = "oci-whiteouts" in stack.options
    try:
        names = sorted(os.listdir(real_dir))
    except OSError:
        return
    for name in names:
        if oci and name.startswith(WH_PREFIX):
            if name in (WH_OPAQUE, WH_FUSE_OPAQUE):
                continue
            target = name[len(WH_PREFIX) :]
            out.append(Change(S.DIFF_DELETED, join(mpath, target), join(real_dir, name), None, S.WHITEOUT, "upper"))
            continue
        real = posixpath.join(real_dir, name)
        node = probe(real, stack.xattr_ns)
        if node is None:
            continue
        path = join(mpath, name)
        if node.whiteout:
            out.append(Change(S.DIFF_DELETED, path, real, node, S.WHITEOUT, "upper"))
            continue
        child_b = _below_path(bpath, name, node)
        lower_entry = below.lookup(child_b) if child_b is not None else None
        entry = merged.lookup(path)
        status = entry.status if entry is not None else S.NEW
        if node.is_dir and oci:
            node.opaque = node.opaque or any(
                os.path.lexists(posixpath.join(real, m)) for m in (WH_OPAQUE, WH_FUSE_OPAQUE)
            )
        kind = S.DIFF_CHANGED if lower_entry is not None or name in replaced else S.DIFF_ADDED
        out.append(Change(kind, path, real, node, status, "upper"))
        if node.is_dir:
            if node.opaque:
                again: frozenset[str] = frozenset()
                if lower_entry is not None and lower_entry.is_dir and child_b is not None:
                    again = _hidden_children(below, child_b, path, real, out)
                _walk(stack, merged, below, path, None, real, out, again)
            else:
                _walk(stack, merged, below, path, child_b if _is_dir(lower_entry) else None, real, out)


def _is_dir(entry: Entry | None) -> bool:
    return entry is not None and entry.is_dir


def _below_path(bpath: str | None, name: str, node: Node) -> str | None:
    """The lower-view path an upper object sits on, following a redirect."""
    if bpath is None:
        return None
    if node.redirect:
        if node.redirect.startswith("/"):
            return node.redirect
        return join(bpath, node.redirect)
    return join(bpath, name)


def _hidden_children(below: OverlayView, bpath: str, mpath: str, upper_dir: str, out: list[Change]) -> frozenset[str]:
    """``D`` for each lower child an opaque upper dir hides; returns the names the upper holds again."""
    again = set()
    for e in below.list_dir(bpath):
        if os.path.lexists(posixpath.join(upper_dir, e.name)):
            again.add(e.name)
            continue
        n = probe(e.real_path, below.stack.xattr_ns)
        out.append(Change(S.DIFF_DELETED, join(mpath, e.name), e.real_path, n, S.OPAQUE_HIDDEN, e.layer.name))
    return frozenset(again)


# Paths `podman diff` never reports: the runtime's own mounts and files (podman libpod/diff.go).
PODMAN_INIT_PATHS = frozenset(
    {
        "/dev",
        "/etc/hostname",
        "/etc/hosts",
        "/etc/resolv.conf",
        "/proc",
        "/run",
        "/run/notify",
        "/run/.containerenv",
        "/run/secrets",
        "/sys",
        "/etc/mtab",
    }
)


def podman_changes(stack: Stack) -> Iterator[Change]:
    """The change list as ``podman diff`` prints it (OVERLAY-NOTES §4).

    Differs from Docker's for opaque dirs that exist below: the dir itself is ``D`` and the
    names it holds again are ``A`` (no ``D`` per hidden lower child); and the runtime's own
    paths (:data:`PODMAN_INIT_PATHS`) are left out.
    """
    opaque: set[str] = set()
    for c in changes(stack):
        if c.path in PODMAN_INIT_PATHS:
            continue
        if c.kind == S.DIFF_DELETED and c.status == S.OPAQUE_HIDDEN:
            continue
        if c.kind == S.DIFF_CHANGED and c.node is not None and c.node.is_dir and c.node.opaque:
            opaque.add(c.path)
            yield Change(S.DIFF_DELETED, c.path, c.real, c.node, c.status, c.layer)
            continue
        if c.kind == S.DIFF_CHANGED and posixpath.dirname(c.path) in opaque:
            yield Change(S.DIFF_ADDED, c.path, c.real, c.node, c.status, c.layer)
            continue
        if c.kind == S.DIFF_CHANGED and c.node is not None and c.node.is_dir and _same_dir_below(stack, c):
            continue
        yield c


def _same_dir_below(stack: Stack, c: Change) -> bool:
    """containers-storage skips a dir whose size, mode and mtime equal those of the topmost lower
    that has the path (``os.Stat`` of the raw layer path): only a parent of a change, not changed itself."""
    try:
        up = os.stat(c.real)
    except OSError:
        return False
    for layer in stack.lowers:
        try:
            st = os.stat(layer.real(c.path))
        except OSError:
            continue
        same_time = st.st_mtime_ns == up.st_mtime_ns or (
            st.st_mtime_ns // 10**9 == up.st_mtime_ns // 10**9
            and (st.st_mtime_ns % 10**9 == 0 or up.st_mtime_ns % 10**9 == 0)
        )
        return st.st_size == up.st_size and st.st_mode == up.st_mode and same_time
    return False
