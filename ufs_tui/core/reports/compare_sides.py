"""The sides of a comparison (:mod:`.compare`), opened from what a user types: the one way ``ufs-tui compare A B``
and the explorer's compare open a side.

A side is:

* ``SOURCE``: its merged view, the SOURCE opened as the other commands open one (``docker:NAME``,
  ``docker-image:NAME``, an image archive, an OCI layout dir, an overlay mount point, ...);
* ``SOURCE@LAYER``: that layer's own tree (``@upper``, ``@lower:N``, ``@data:N``; see :func:`.compare.split_layer`);
* a plain dir (a dir that is no SOURCE: not an overlay mount point, not an archive dir): the stack of that one dir;
* in the explorer, relative to the stack it explores (``here``): ``merged``, that stack's merged view, or the
  name of one of its layers (``upper``, ``lower:N``, ``data:N``), that layer's own tree. These names win over a
  dir of the same name in the working dir: ``./upper`` names the dir.

A side that cannot be opened raises StackError (or the UfsError of its source) with one line saying why; a FIFO,
socket or device is refused unread (reading one as an archive could block).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..model.errors import StackError
from ..model.stack import LAYER_NAME, Stack, XattrNamespace
from .compare import Tree, split_layer

MERGED = "merged"  # in the explorer: the merged view of the stack explored


@dataclass(frozen=True)
class SideOptions:
    """How a side named by a SOURCE or a dir is read (the command line's options; the explorer gives the engine
    roots it was started with)."""

    image: str | None = None  # which image of an archive that holds several
    options: tuple[str, ...] = ()  # mount options the side is read with (a SOURCE's own come first)
    dir_options: tuple[str, ...] = ()  # a plain dir's markers: userxattr, oci-whiteouts
    xattr_ns: XattrNamespace | None = None  # a plain dir's overlay xattrs (None: detected)
    engines: Mapping[str, str | None] = field(default_factory=dict)  # docker_root, containerd_root, ... host_root


def open_side(spec: str, label: str = "", opts: SideOptions | None = None, here: Stack | None = None) -> Tree:
    """The side ``spec`` names (see the module doc), as a :class:`.compare.Tree` labelled ``label`` ("A", "B");
    ``here``: the stack explored, whose ``merged`` and layer names ``spec`` may be. Raises UfsError."""
    if not spec:
        words = f"{MERGED}, a layer name (upper, lower:N, data:N), " if here is not None else ""
        raise StackError(label or "side", f"empty (fix: give {words}a SOURCE, SOURCE@LAYER or a dir)")
    if here is not None and (spec == MERGED or LAYER_NAME.fullmatch(spec)):
        return _tree(here, None if spec == MERGED else spec, spec, label)
    source, layer = split_layer(spec)
    return _tree(_open_stack(spec, source, layer, opts or SideOptions()), layer, spec, label)


def _tree(stack: Stack, layer_name: str | None, spec: str, label: str) -> Tree:
    if layer_name is None:
        return Tree(stack, label=label)
    try:
        layer = stack.layer_by_name(layer_name)
    except KeyError:
        names = ", ".join(la.name for la in stack.all_layers)
        raise StackError(spec, f"no such layer (this stack has {names})") from None
    return Tree(stack, layer, label)


def _open_stack(spec: str, source: str, layer: str | None, opts: SideOptions) -> Stack:
    """The stack of ``source``: a SOURCE opened, or a plain dir's stack of one layer."""
    _no_special_file(source)
    if not _plain_dir(source):
        from ..sources import open_source

        stack = open_source(source, image=opts.image, **opts.engines)
        return stack.read_with(opts.options)
    if layer is not None:
        raise StackError(spec, f"{source} is a plain dir, not a stack: it has no layer {layer}")
    return Stack.build([source], xattr_ns=opts.xattr_ns, options=(*opts.dir_options, *opts.options))


def _no_special_file(source: str) -> None:
    """Refuse a FIFO, socket or device as a side: reading one as an archive could block, or do worse."""
    try:
        mode = os.stat(source).st_mode
    except OSError:
        return  # (not a path: a SOURCE by name, or one that says why it cannot be opened)
    if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
        raise StackError(source, "not a dir, an image archive or a SOURCE (a FIFO, socket or device is not read)")


def _plain_dir(source: str) -> bool:
    """A dir that is no SOURCE: not a scheme, an overlay mount point or an image archive dir."""
    from ..sources import SCHEMES

    scheme, sep, _ = source.partition(":")
    if (sep and scheme in SCHEMES) or not os.path.isdir(source):
        return False
    if any(os.path.exists(os.path.join(source, marker)) for marker in ("oci-layout", "manifest.json")):
        return False
    from ..mounting.mount_table import fstype_at

    return fstype_at(source) != "overlay"
