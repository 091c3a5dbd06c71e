"""``ufs-tui commit``: the upper becomes the topmost lower and a fresh empty upper takes its place."""

from __future__ import annotations

import argparse
import os
from typing import Any, TextIO

from ..core.mounting.preflight import MountError
from . import confirm, report_mount_error, report_problems, say, stack_args
from .options import add_stack_options, stack_from_args

NAME = "commit"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="turn the upper into a lower layer",
        description="Commit: the upper becomes the new topmost lower, and a new empty upper and work dir are created "
        "(next to the old ones unless given). No existing layer is changed. If ufs-tui has this stack mounted, it is "
        "unmounted and the new stack mounted at the same place. Prints the new stack's options.",
    )
    add_stack_options(p, source=True)
    p.add_argument(
        "--new-upper",
        metavar="DIR",
        help="the new empty upper to create (default: UPPER.N; required where the upper is in an engine's storage, "
        "which ufs-tui never writes to)",
    )
    p.add_argument("--new-work", metavar="DIR", help="the new empty work dir to create (default: WORK.N; as above)")
    p.add_argument("--yes", "-y", action="store_true", help="do not ask for confirmation")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.model.errors import UfsError
    from ..core.mounting.layers_ops import NeedsDestination, commit, plan_commit
    from ..core.mounting.mount import MountManager
    from ..core.mounting.record import recorded
    from ..core.mounting.unmount import unmount_recorded

    stack = stack_from_args(args)
    try:
        plan = plan_commit(stack, args.new_upper, args.new_work)
    except NeedsDestination as e:
        raise UfsError(f"{e}: give --new-upper DIR --new-work DIR") from None
    assert stack.upper is not None
    mounted = [h for h in recorded() if h.stack.upper is not None and h.stack.upper.path == stack.upper.path]
    lines = list(plan.lines)
    for h in mounted:
        lines.append(f"{h.target} ({h.backend}) will be unmounted and the new stack mounted there")
    say("\n".join(lines))
    if not confirm("commit?", args.yes):
        return 1
    manager = MountManager()
    options = {h.id: [o for o in h.options if o != "userxattr" or h.backend != "userns"] for h in mounted}
    for h in mounted:  # before anything is created or unmounted: would the new stack mount there?
        problems = manager.check(plan.result, h.backend, options[h.id], replacing=h, will_create=plan.creates)
        if problems:
            say(f"commit: not done: the new stack would not mount at {h.target}; nothing was created or unmounted")
            return report_problems(problems)
    done: list[str] = []
    for h in mounted:
        try:
            unmount_recorded(h)
        except MountError as e:
            still = f"; already unmounted: {', '.join(done)} (mount them again)" if done else ""
            say(f"commit: not done: {h.target} could not be unmounted and is still mounted; nothing was created{still}")
            return report_mount_error(e)
        done.append(h.target)
    new_stack = commit(plan)
    for h in mounted:
        opts = options[h.id]
        if h.created_target:
            os.makedirs(h.target, exist_ok=True)
        try:
            nh = manager.mount(new_stack, h.target, h.backend, opts, force=True, detach=True)
        except MountError as e:
            say(f"commit: done, but the new stack could not be mounted at {h.target}")
            return report_mount_error(e)
        nh.created_target = h.created_target
        manager.record.add(nh.to_record())
        say(f"commit: {nh.note}")
    print(stack_args(new_stack), file=out)
    return 0
