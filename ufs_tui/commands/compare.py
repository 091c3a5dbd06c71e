"""``ufs-tui compare A B``: any two sources or layers side by side, B against A (A/C/D lines, content diffs)."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any, TextIO

from . import PROG, say, say_assumptions
from .options import add_engine_options, add_read_options, engine_opts, given_options

if TYPE_CHECKING:
    from ..core.reports.compare import Tree

NAME = "compare"

SIDE_HELP = (
    "a SOURCE as the other commands take it (docker:NAME, docker-image:NAME[:TAG], podman:..., containerd:..., "
    "nerdctl:..., k8s:..., an overlay mount point, an image archive or OCI layout dir), or a plain dir; "
    "SOURCE@LAYER for one layer's own tree (@upper, @lower:N, @data:N)"
)


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="compare any two sources or layers: what B adds (A), changes (C) and deletes (D) against A",
        description="Compare two trees, B against A, and print one line per path where they differ. A tree is "
        "a SOURCE's merged view (what the kernel shows where it is mounted), one layer of it (SOURCE@upper, "
        "SOURCE@lower:N, SOURCE@data:N: what that layer holds itself, its whiteouts no files), or a plain dir. "
        "Image vs image, layer vs layer, container vs container, a layer vs a dir: any two. Nothing is mounted "
        "or written.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("a", metavar="A", help=SIDE_HELP)
    p.add_argument("b", metavar="B", help="the same for the other side (the lines say what B is against A)")
    p.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="text (the default: 'KIND PATH', and for C what differs) or json (one object per difference)",
    )
    p.add_argument(
        "--diff",
        action="store_true",
        help="after each regular file whose content changed, its unified diff (binary files: one line, sizes)",
    )
    p.add_argument(
        "--content",
        metavar="PATH",
        help="compare PATH only (a dir: and what is under it), with --diff: e.g. --content /etc/motd",
    )
    g = p.add_argument_group("how the trees are read")
    add_read_options(
        g,
        "mount options both stacks are read with, where they change what the kernel shows (as for tree: "
        "metacopy=off, redirect_dir=nofollow, userxattr, index=on)",
    )
    g.add_argument(
        "--xattr-ns",
        choices=("trusted", "user"),
        help="a plain dir's overlay xattrs: trusted.overlay.* or user.overlay.* (detected when not given)",
    )
    g.add_argument("--userxattr", action="store_true", help="same as --xattr-ns user")
    g.add_argument(
        "--oci-whiteouts",
        action="store_true",
        help="a plain dir's .wh.NAME files delete NAME and .wh..wh..opq hides the dir (a naively unpacked layer)",
    )
    g.add_argument("--image-a", metavar="NAME[:TAG]", help="which image of A, an archive that holds several")
    g.add_argument("--image-b", metavar="NAME[:TAG]", help="which image of B, an archive that holds several")
    add_engine_options(g)


EPILOG = """\
lines, B against A, in tree order (names sorted by their bytes, a dir before what it holds):
  A PATH                      only in B (and so is everything under a dir only in B)
  D PATH                      only in A (a deleted dir is one line, as docker diff prints it)
  C PATH  FIELD A → B, ...    in both, and they differ: type (then nothing else is said), mode (not for
                              symlinks), owner (uid:gid), size, target (symlinks), device, content
                              (regular files of equal sizes, by sha256; a size change says content too)
  not compared: times, xattrs, hard links, the size of a dir.

--format json: one object per line: kind, path (and path_b64 when the path is not UTF-8), type (B's; A's
for D) and, for C, "fields": {"FIELD": {"a": ..., "b": ...}} (mode as a number; content as "sha256:HEX",
null when the sizes differ; a_b64/b_b64 for a target that is not UTF-8); with --diff, "diff" too.

sides: SOURCE@LAYER splits only at a last '@' followed by a layer name, so a reference with '@'
(docker-image:alpine@sha256:...) stays whole; a path that itself ends in @upper is taken as a path when
the part before the '@' does not exist. A dir that is an overlay mount point is read as the stack mounted
there, an archive dir (oci-layout, manifest.json) as an image; any other dir is a plain dir: a stack of that
one dir. Dirs both sides take from the same real layer dirs (images that share their bottom layers) are not
read: they are the same.

names: escaped in text (\\n, \\t, \\\\, \\xNN for bytes that are not UTF-8), so no name can send escape
sequences to the terminal; exact in JSON.

exit status: 0 the trees are the same, 1 they differ, 2 trouble: a side cannot be opened, or (with no
difference found) something could not be read: a dir on a side (a warning on stderr each; what is under it
is not compared), a file's content. A difference found is an answer even with parts unread: 1.
"""


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.reports.compare import Comparison, json_line, text_line

    cmp = Comparison(_side(args, args.a, args.image_a, "A"), _side(args, args.b, args.image_b, "B"))
    diffs = args.diff or args.content is not None
    differ = False
    write = out.write
    for d in cmp.differences(args.content or "/"):
        differ = True
        text = cmp.content_diff(d) if diffs else ""
        if args.format == "json":
            write(json_line(d, text if text else None) + "\n")
        else:
            write(text_line(d) + "\n" + text)
    out.flush()
    from ..core.model.display import printable

    for path, problem in cmp.errors.items():
        say(f"{PROG}: warning: {printable(path)}: {printable(problem)} (not compared)")
    return 1 if differ else 2 if cmp.errors else 0


def _side(args: argparse.Namespace, spec: str, image: str | None, label: str) -> Tree:
    """One side (see :mod:`ufs_tui.core.reports.compare_sides`), read with the command line's options."""
    from ..core.reports.compare_sides import SideOptions, open_side

    markers = (("userxattr",) if args.userxattr else ()) + (("oci-whiteouts",) if args.oci_whiteouts else ())
    opts = SideOptions(image, given_options(args), markers, args.xattr_ns, engine_opts(args))
    tree = open_side(spec, label, opts)
    say_assumptions(tree.stack)
    return tree
