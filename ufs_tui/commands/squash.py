"""``ufs-tui squash``: a range of adjacent lower layers becomes one new layer dir."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from . import confirm, say, stack_args
from .options import add_stack_options, stack_from_args

NAME = "squash"


def _layer_name(text: str) -> str:
    return f"lower:{text}" if text.isdigit() else text


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="merge adjacent lower layers into one new layer",
        description="Squash lowers FROM..TO (inclusive; lower:0 is the topmost) into the new dir DEST, with the "
        "range's whiteouts applied. Whiteouts and opaque dirs that still hide something in the layers below the range "
        "are kept as markers; the rest are dropped. Mounting the new stack shows the same merged view. No existing "
        "layer is changed. Prints the new stack's options.",
    )
    add_stack_options(p, source=True)
    p.add_argument(
        "--from", dest="top", required=True, metavar="LAYER", help="topmost layer of the range (lower:N or N)"
    )
    p.add_argument("--to", dest="bottom", required=True, metavar="LAYER", help="bottom layer of the range")
    p.add_argument("--dest", required=True, metavar="DIR", help="the new layer dir to create (must not exist)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.mounting.layers_ops import plan_squash, squash

    stack = stack_from_args(args)
    plan = plan_squash(stack, _layer_name(args.top), _layer_name(args.bottom), args.dest)
    say(plan.describe())
    if not confirm("squash?", args.yes):
        return 1
    res = squash(stack, plan)
    for note in res.notes:
        say(f"squash: note: {note}")
    say(
        f"squash: wrote {res.dest}: {res.whiteouts} whiteouts and {res.opaque} opaque dirs kept, "
        f"{res.dropped_markers} markers dropped (they hid nothing below)"
    )
    print(stack_args(res.stack), file=out)
    return 0
