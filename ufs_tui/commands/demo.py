"""``ufs-tui demo``: the built-in demo stack, opened in the UI or printed as a tree."""

from __future__ import annotations

import argparse
import sys
from typing import Any, TextIO

from . import OpenUI
from .options import add_theme_option

NAME = "demo"
OPENS_UI = True  # run() is given the UI factory of ufs_tui.cli


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="the built-in demo stack",
        description="Build the demo stack in a temp dir (through a real overlay mount: as root directly, "
        "otherwise in a user namespace), open it, and remove it on exit.",
    )
    p.add_argument("--print", action="store_true", help="print the demo's merged tree instead of opening the UI")
    p.add_argument("--format", choices=("text", "json"), default="text", help="with --print")
    p.add_argument("--all", action="store_true", help="with --print: include hidden things")
    add_theme_option(p)


def run(args: argparse.Namespace, out: TextIO, open_ui: OpenUI) -> int:
    from ..core.demo import build_demo
    from ..core.model.merge import OverlayView
    from ..core.reports import tree as report

    with build_demo() as demo:
        if args.print:
            # comments in a text tree; beside JSON lines, which hold only JSON: on stderr
            said = sys.stderr if args.format == "json" else out
            print(f"# demo stack in {demo.root}, made by {demo.how}", file=said)
            for note in demo.notes:
                print(f"# note: {note}", file=said)
            view = OverlayView(demo.stack)
            (report.write_tree_json if args.format == "json" else report.write_tree_text)(view, out, args.all)
            return 0
        return open_ui(demo.stack, [demo.how, *demo.notes], on_exit=demo.cleanup)
