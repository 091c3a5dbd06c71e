"""``ufs-tui tree``: the merged tree of a stack, computed from its layers (text or JSON lines)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from . import say_assumptions, warn_unread
from .options import add_stack_options, stack_from_args

NAME = "tree"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="print the merged tree",
        description="Print the merged view of a stack, computed from the layers (nothing is mounted or written).",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(p, source=True)
    p.add_argument("--format", choices=("text", "json"), default="text", help="text tree or JSON lines")
    p.add_argument(
        "--all", action="store_true", help="also list hidden things: whiteouts, shadowed and hidden lower entries"
    )
    p.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="with --format json: walk with N processes (default: one per CPU this may use, at most 8; "
        "1 walks in this process). The output is the same either way.",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.model.merge import OverlayView
    from ..core.reports import tree as report

    view = OverlayView(stack_from_args(args))
    say_assumptions(view.stack)
    view.list_dir("/")  # a root that cannot be read is an error, not a warning
    if args.format == "json":
        from ..core.reports.forkwalk import default_jobs

        report.write_tree_json(view, out, args.all, args.jobs or default_jobs())
    else:
        report.write_tree_text(view, out, args.all)
    return warn_unread(view.errors)


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {n}")
    return n


def _epilog() -> str:
    from ..core.model import status as S

    rows = "\n".join(f"  {s.glyph} {s.status:<14} {s.legend}" for s in S.STYLES.values())
    return (
        "statuses (JSON 'status' field; the glyph starts each text line):\n"
        + rows
        + "\n\nJSON lines carry: path, type, mode, size, target, layer (upper | lower:N | data:N), source (the real "
        "path whose data backs the entry), status; plus redirect, data_layer, error where they apply, by (the "
        "layer that hides it) with --all, and path_b64 (the raw bytes) when a name is not valid UTF-8."
    )
