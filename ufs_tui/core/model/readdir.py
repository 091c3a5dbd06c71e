"""When ``readdir`` of a merged dir fails though every layer dir can be read: an *impure* upper dir.

The kernel gives copied-up and redirected entries the inode number of their lower origin, so in an upper dir
marked ``overlay.impure`` (it has such children) ``readdir`` looks each of the upper's names up through the
overlay, when all layers are on one filesystem (``ovl_cache_update``). A lookup that fails (a metacopy file
with metacopy off, one whose data is missing, a redirect not followed) then fails the ``readdir``:

* an upper dir that merges nothing (no lower dir under it, no ``overlay.origin``): all its names are looked up
  before the first is returned, so ``ls`` always fails, with the first failing name's errno in the upper
  dir's own order;
* a merged dir: names are looked up as they are returned; a failure fails the ``getdents`` call only when it
  is the first entry of that call, else the call returns what it has and the name is left out. Which one
  happens depends on where the name falls in the layer dirs' on-disk order (a hash order on ext4),
  so the model says "fails or leaves the name out".

Names only in lower layers are not looked up for this, and with layers on several filesystems none is, but
for one kind: a regular file first met in a lower dir that holds xattr whiteouts (``overlay.opaque=x``) is
looked up to see whether it is one (``check_xwhiteout``), and its failure counts the same way.
"""

from __future__ import annotations

import errno as errno_mod
import os
from dataclasses import dataclass

from . import status as S
from .entry import Entry, Source
from .stack import Stack


@dataclass(frozen=True)
class ReaddirFault:
    """``readdir`` of a dir fails (``certain``), or fails or leaves ``name`` out, with ``errno``."""

    name: str
    errno: str
    certain: bool

    def words(self) -> str:
        outcome = "fails" if self.certain else f"fails or leaves {self.name!r} out"
        return (
            f"listing this dir {outcome} ({self.errno}): the kernel looks names up while listing it (an impure "
            f"dir's copied-up names, for their inode numbers; files beside xattr whiteouts, for whether they are "
            f"one), and looking up {self.name!r} fails"
        )


def readdir_fault(stack: Stack, ns: str, sources: tuple[Source, ...], entries: list[Entry]) -> ReaddirFault | None:
    """How the kernel's ``readdir`` of the merged dir made of ``sources`` fails, if it does (see the module doc).
    ``entries``: the dir's merged listing."""
    if not sources or any(layer.fs is not None for layer, _ in sources):
        return None
    top, top_dir = sources[0]
    merged = len(sources) > 1 or (top.role == "upper" and _xattr(top_dir, f"{ns}.overlay.origin") is not None)
    if not merged and top.role != "upper":
        return None  # a lower dir that merges nothing is listed as it is on disk
    failing = {e.name: e.errno or "EIO" for e in _looked_up(stack, ns, sources, merged, entries) if e.status == S.ERROR}
    if not failing:
        return None
    if merged:
        name = min(failing)  # (which name's failure shows depends on the on-disk order: any one of them)
        return ReaddirFault(name, failing[name], certain=False)
    try:
        order = os.listdir(top_dir)
    except OSError as e:
        return ReaddirFault("", errno_mod.errorcode.get(e.errno or 0, "EIO"), certain=True)
    name = next((n for n in order if n in failing), min(failing))
    return ReaddirFault(name, failing[name], certain=True)


def _looked_up(stack: Stack, ns: str, sources: tuple[Source, ...], merged: bool, entries: list[Entry]) -> list[Entry]:
    """The entries ``readdir`` looks up: the upper's names in an impure upper dir (layers on one filesystem);
    in a merged dir, regular files first met in a lower dir that holds xattr whiteouts (``overlay.opaque=x``)."""
    dirs = dict(sources)
    upper = sources[0][0] if sources[0][0].role == "upper" else None
    impure = upper is not None and _xattr(dirs[upper], f"{ns}.overlay.impure") is not None and _one_filesystem(stack)
    xwhiteouts = {
        la for la, real in sources if merged and la.role == "lower" and _xattr(real, f"{ns}.overlay.opaque") == b"x"
    }
    return [e for e in entries if (impure and e.layer is upper) or (e.layer in xwhiteouts and e.kind == "file")]


def _xattr(path: str, name: str) -> bytes | None:
    try:
        return os.getxattr(path, name, follow_symlinks=False)
    except OSError:
        return None


def _one_filesystem(stack: Stack) -> bool:
    """All layers on one filesystem (the kernel's ``ovl_same_dev`` without xino): readdir looks names up."""
    try:
        return len({os.stat(layer.path).st_dev for layer in stack.all_layers}) == 1
    except OSError:
        return False
