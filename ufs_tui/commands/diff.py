"""``ufs-tui diff``: what one layer changes over the layers under it (text, JSON, or as the engines print it)."""

from __future__ import annotations

import argparse
import dataclasses
from typing import Any, TextIO

from . import say_assumptions, warn_unread
from .options import add_stack_options, stack_from_args

NAME = "diff"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="print the upper's changes (an image's: its top layer's; --layer: any layer's)",
        description="Print what the upper changes over the lowers (a stack without one: what its topmost lower "
        "changes; --layer NAME: what that layer changes over the layers under it, as dive's current layer). "
        "--format docker prints exactly the A/C/D lines "
        "'docker diff' prints for a container with this stack, --format podman exactly what 'podman diff' prints "
        "(the engines' rules differ; both observed with Docker 20.10 and Podman 4.3).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(p, source=True)
    p.add_argument(
        "--layer", metavar="NAME", help="the layer whose changes to print: upper, lower:N (default: the topmost)"
    )
    p.add_argument(
        "--format",
        choices=("text", "docker", "podman", "json"),
        default="text",
        help="text (the default: kind, status glyph, path, status), docker or podman (KIND PATH lines, as the "
        "engine prints them), json (one object per change)",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.model.errors import UfsError
    from ..core.reports import tree as report
    from ..core.reports.diff import changes, podman_changes

    whole = stack_from_args(args)
    say_assumptions(whole)
    changer = whole.changer(args.layer)
    if args.format == "podman" and changer.fs is not None:
        raise UfsError(f"{changer.name}: --format podman reads layer dirs, and this layer is in an archive")
    stack, names = whole.focused(changer)
    errors: dict[str, str] = {}
    # names exactly as the engine prints them for scripts; escaped on a terminal
    isatty = getattr(out, "isatty", None)
    raw = not (isatty is not None and isatty())
    if args.format == "podman":
        found = podman_changes(stack, errors)
    else:  # docker: fail where docker diff fails; text and json show such an entry (status error)
        found = changes(stack, errors, strict=args.format == "docker")
    found = (dataclasses.replace(c, layer=names.get(c.layer, c.layer)) for c in found)
    report.write_diff(found, out, args.format, raw)
    return warn_unread(errors)


def _epilog() -> str:
    import textwrap

    from ..core.model import status as S

    def para(text: str, indent: str = "") -> str:
        return textwrap.fill(text, 88, initial_indent=indent, subsequent_indent=indent + "   " if indent else "")

    rows = "\n".join(f"  {s.glyph} {s.status:<14} {s.legend}" for s in S.STYLES.values())
    kinds = [
        f"{S.DIFF_ADDED}  added: the path is new (docker: and everything under a new dir)",
        f"{S.DIFF_CHANGED}  changed: docker: in both trees, and its mode, file type, owner, device number, "
        "capability xattr or (not for dirs) mtime or size differ, or a change is under this dir; podman: the upper "
        "holds a path a lower layer has (a dir only if its size, mode or mtime differ), or an ancestor of an A/D",
        f"{S.DIFF_DELETED}  deleted: docker: the path is gone (one line, none for its children); podman: a "
        "whiteout, or an opaque dir that a lower has (its contents follow)",
    ]
    text = [
        "--format docker: what 'docker diff' prints (moby's naive diff of the container's merged tree against its "
        "lowers': a copy-up that changed no metadata is not listed), sorted by path. --format podman: what "
        "'podman diff' prints (containers-storage's walk of the raw upper), in its order. Where the engine's own "
        "diff fails (docker: an entry the kernel refuses to look up; podman: a file in a dir that replaced a lower "
        "file), so does this, with exit 2. --format text and json list the changes of --format docker (such an "
        "entry too, with status error): text with the status glyph and status, json with kind, path, type, mode, "
        "size, layer, source and status (and path_b64 when a name is not UTF-8).",
        "names: when stdout is not a terminal, docker and podman lines carry names exactly as the engine prints "
        "them (newlines, tabs and backslashes as they are; docker shows each byte that is not UTF-8 as U+FFFD, "
        "podman the raw byte). On a terminal they are escaped (\\n, \\t, \\\\, \\xNN), so no name can send "
        "escape sequences to it. A dir that cannot be read: a warning, exit 1, and the rest is printed.",
    ]
    return (
        "kinds (the engines' letters):\n"
        + "\n".join(para(k, "  ") for k in kinds)
        + "\n\n"
        + "\n\n".join(para(t) for t in text)
        + "\n\nstatuses:\n"
        + rows
    )
