"""``ufs-tui mount``: mount a stack (kernel, user namespace or fuse-overlayfs) and print where to read it."""

from __future__ import annotations

import argparse
import sys
from dataclasses import replace
from typing import Any, TextIO

from ..core.mounting.options import KNOWN_OPTIONS
from ..core.mounting.preflight import ENGINE_STORAGE, IN_USE, NOT_EMPTY, MountError
from . import confirm, report_mount_error, report_problems, report_warnings, say
from .options import add_stack_options, stack_from_args

NAME = "mount"
FLAG_FIX = {IN_USE: "; --force mounts anyway", NOT_EMPTY: "; --force mounts anyway", ENGINE_STORAGE: " (--read-only)"}


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="mount a stack",
        description="Mount the stack with overlayfs. Backends: kernel (root), userns (any user: the mount lives in a "
        "user namespace held by a helper process, visible only there; it is printed as /proc/PID/root/TARGET, "
        "which you can read), fuse (fuse-overlayfs). The mount stays until 'ufs-tui umount TARGET' (or "
        "'ufs-tui umount --mine'). Prints the path to read the merged view at.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(p)
    p.add_argument(
        "-o",
        "--option",
        action="append",
        default=[],
        metavar="OPT[,OPT...]",
        help="overlay mount options: " + ", ".join(sorted(KNOWN_OPTIONS)) + " (e.g. redirect_dir=on, metacopy=on)",
    )
    p.add_argument("--backend", choices=("auto", "kernel", "userns", "fuse"), default="auto",
                   help="auto: kernel for root, userns otherwise")  # fmt: skip
    p.add_argument(
        "--force",
        action="store_true",
        help="mount over a non-empty target dir (hiding its contents), and with an upper or work dir another overlay "
        "mount uses (the kernel allows that without index=on, but writes through both are undefined)",
    )
    p.add_argument(
        "--read-only",
        action="store_true",
        help="mount with nothing writable: the upper becomes the topmost lower, no work dir (how the layers of an "
        "engine's container are mounted: ufs-tui never writes in an engine's storage)",
    )
    p.add_argument("--yes", "-y", action="store_true", help="do not ask (on a terminal it asks first)")
    p.add_argument("target", nargs="?", metavar="TARGET", help="an empty dir (default: a new dir in the runtime dir)")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.mounting.mount import MountManager, target_problem

    stack = stack_from_args(args)
    if args.read_only:
        stack = stack.read_only()
    options = [o for text in args.option for o in text.split(",") if o]
    manager = MountManager()
    problems = manager.check(stack, args.backend, options, allow_in_use=args.force)
    tp = target_problem(args.target) if args.target else None
    if tp is not None and not (args.force and tp.kind == NOT_EMPTY):
        problems.append(tp)
    if problems:
        return report_problems([replace(p, fix=f"{p.fix}{FLAG_FIX.get(p.kind, '')}") for p in problems])
    said = [str(w) for w in manager.warnings(stack, args.backend, options, allow_in_use=args.force)]
    report_warnings(said)
    say(f"{NAME}: {manager.plan(stack, args.target, args.backend, options)}")
    if sys.stdin is not None and sys.stdin.isatty() and not confirm("mount?", args.yes):
        return 1  # asked on a terminal; scripts (no terminal) and --yes are not asked
    try:
        handle = manager.mount(
            stack, args.target, args.backend, options, force=args.force, detach=True, allow_in_use=args.force
        )
    except MountError as e:
        return report_mount_error(e)
    report_warnings(w for w in handle.warnings if w not in said)  # what the kernel logged
    say(f"{NAME}: {handle.note}")
    print(handle.path, file=out)
    return 0
