"""``ufs-tui umount``: unmount a target, or everything this user mounted with ufs-tui (from its record)."""

from __future__ import annotations

import argparse
from typing import Any, TextIO

from ..core.mounting.preflight import MountError
from . import report_mount_error, say

NAME = "umount"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="unmount what ufs-tui mounted",
        description="Unmount TARGET (a mount point, or the /proc/PID/root/... path of a userns mount), or with "
        "--mine every mount this user made with ufs-tui, from the record in the runtime dir (also after a crash).",
    )
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("target", nargs="?", metavar="TARGET")
    g.add_argument("--mine", action="store_true", help="everything in this user's ufs-tui mount record")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.mounting.unmount import unmount_mine, unmount_target

    if args.mine:
        done, problems = unmount_mine()
        for line in done:
            print(line, file=out)
        for line in problems:
            say(f"ufs-tui: error: {line}")
        if not done and not problems:
            say("umount: nothing in the record")
        return 2 if problems else 0
    try:
        print(unmount_target(args.target), file=out)
    except MountError as e:
        return report_mount_error(e)
    return 0
