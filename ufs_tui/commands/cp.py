"""``ufs-tui cp SOURCE[@LAYER]:PATH DEST``: extract one version of a file or dir (the merged view's, or one
layer's own copy, a whited-out one too) to a path outside the stack (:mod:`ufs_tui.core.extract`)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ..core.model.errors import UfsError
from ..core.model.stack import LAYER_NAME
from . import PROG, confirm, say
from .options import add_stack_options, engine_opts, stack_from_args

NAME = "cp"

# A layer as the CLI and JSON name it (Layer.name): the only text after an '@' that is read as one.

SYNTAX = """\
SOURCE[@LAYER]:PATH is split at the first ':' that is followed by '/': before it, the source and layer; after it,
PATH, taken as it is (it may hold ':', '@' and any other byte). The layer is the text after the last '@' before
that colon, when it is a layer's name: upper, lower:N or data:N (so an image digest, name@sha256:..., stays part
of SOURCE). With --lower/--upper instead of a SOURCE, give [@LAYER]:PATH, or PATH alone when it holds no ':/'.
A SOURCE that itself holds ':/' cannot be written this way: give the stack with --lower/--upper.

  ufs-tui cp docker:web:/etc/nginx ./nginx            the merged view's /etc/nginx, into ./nginx
  ufs-tui cp img.tar@lower:1:/etc/passwd old.passwd   an image layer's own /etc/passwd (even one deleted above)
  ufs-tui cp --lower L0:L1 --upper U @upper:/app .    what the upper holds at /app, as ./app
  ufs-tui cp --lower L0:L1 /etc/hosts /tmp/           the merged /etc/hosts, as /tmp/hosts

Without @LAYER: the version a process in the container sees (what the kernel would show): a metacopy file with
its data from the layer below, a merged dir's contents from every layer, whiteouts applied, hidden entries left
out. With @LAYER: that layer's own copy as stored, PATH in its own tree; its whiteouts, opaque marks and overlay
xattrs are markers, not files, and are left out (one line says so).

Kept, as cp -a keeps them: symlinks as symlinks (never followed), hard links within the copy, holes of sparse
files, FIFOs, sockets and devices (a device needs root), mode, times, xattrs (not overlay's) and, as root, the
owner. DEST is an existing dir (the version goes inside it, under its name) or a new name; an existing file is
not replaced without --force. A DEST inside a layer of the stack, its work dir, an overlay mounted from its
layers, or an engine's storage (Docker's, containerd's, Podman's) is refused.

What will be written is said first, then asked ([y/N] on stdin; --yes does not ask; no stdin and no --yes: nothing
is written). Exit status: 0 all written, 1 some entries could not be (one line each) or not confirmed, 2 refused.
"""


def parse_spec(spec: str) -> tuple[str | None, str | None, str]:
    """(SOURCE or None, LAYER or None, PATH) of ``SOURCE[@LAYER]:PATH`` (see :data:`SYNTAX`); a bare PATH (it
    starts with '/' and holds no ':/') has neither. Raises UfsError for text with no PATH in it."""
    cut = spec.find(":/")
    if cut < 0:
        if spec.startswith("/"):
            return None, None, spec
        raise UfsError(
            f"{spec}: not SOURCE[@LAYER]:PATH: PATH is absolute, after a colon (docker:web:/etc/hosts, "
            "img.tar@lower:1:/etc/passwd; with --lower: /etc/hosts or @upper:/etc/hosts)"
        )
    head, path = spec[:cut], spec[cut + 1 :]
    at = head.rfind("@")
    if at >= 0 and LAYER_NAME.fullmatch(head[at + 1 :]):
        return head[:at] or None, head[at + 1 :], path
    return head or None, None, path


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="extract a version of a file or dir (writes DEST only)",
        description="Extract one version of a file or dir out of a stack to DEST: the merged view's, or one "
        "layer's own copy (an archive member, a whited-out or shadowed version too). Nothing of the stack is "
        "written; it asks first.",
        epilog=SYNTAX,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(p, required=False, source=True)
    spec = next(a for a in p._actions if a.dest == "source")  # the positional SOURCE, read here with its PATH
    spec.nargs, spec.metavar = None, "SOURCE[@LAYER]:PATH"
    spec.help = (
        "what to extract: SOURCE (as for every command: docker:NAME, an archive, a mount point...), an optional "
        "@LAYER (upper, lower:N, data:N; none: the merged view), and the absolute PATH after a colon"
    )
    p.add_argument("dest", metavar="DEST", help="an existing dir to copy into, or the new name")
    p.add_argument("--force", "-f", action="store_true", help="replace existing files at DEST (never a dir)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core import extract
    from ..core.model.display import printable

    source, layer, path = parse_spec(args.source)
    if source is not None and args.lower is not None:
        raise UfsError(
            f"{args.source}: give the stack as SOURCE or with --lower, not both (with --lower, a PATH that holds "
            "':/' is written :PATH)"
        )
    if source is None and args.lower is None:
        raise UfsError(f"{args.source}: no stack: give SOURCE:PATH, or --lower ... with PATH")
    args.source = source
    stack = stack_from_args(args)
    plan = extract.plan(stack, path, args.dest, layer=layer, force=args.force, engines=engine_opts(args))
    if plan.refused:
        for line in plan.refused:
            say(f"{PROG}: error: {printable(line)}")
        return 2
    for line in plan.problems:
        say(f"{PROG}: warning: {printable(line)}")
    for line in plan.notes:
        say(f"{PROG}: note: {printable(line)}")
    say("\n".join(f"cp: {printable(line)}" for line in plan.describe()))
    if not confirm("write it?", args.yes):
        return 1
    done = extract.write(plan, lambda line: say(f"{PROG}: warning: {printable(line)}"))
    if done.xattrs_refused:
        say(f"{PROG}: note: {done.xattrs_refused} xattrs not kept: the destination did not take them")
    say(f"cp: wrote {extract.summary(done.counts)} to {printable(plan.target)}")
    return 1 if plan.problems or done.problems else 0
