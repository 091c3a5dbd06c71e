"""CLI subcommands: one module per subcommand, and what they share.

Each module has ``NAME``, ``add_parser(subparsers)`` and ``run(args, out) -> int``
and is listed in ``COMMAND_MODULES`` in ``ufs_tui/cli.py``; a command that opens
the UI (``demo``) sets ``OPENS_UI`` and is given the UI factory:
``run(args, out, open_ui)``. The stack options they share are in
:mod:`ufs_tui.commands.options`; no command imports ``ufs_tui.cli``.

What a command will write is printed to stderr before it writes; layers are
only written after ``--yes`` or a "y" answer on stdin (no stdin and no
``--yes``: refuse).
"""

from __future__ import annotations

import shlex
import sys
from collections.abc import Callable, Iterable
from typing import Protocol, TextIO

from ..core.model.stack import Stack
from ..core.mounting.preflight import MountError, Problem, one_line

PROG = "ufs-tui"


def say(text: str) -> None:
    """A message for the person (stderr), never mixed with the command's output."""
    print(text, file=sys.stderr, flush=True)


def confirm(question: str, yes: bool, stdin: TextIO | None = None) -> bool:
    """True with ``--yes``; else ask on stderr and read one answer line from stdin ("y"/"yes" accepts).

    With no stdin (closed, or at end of file) the answer is no.
    """
    if yes:
        return True
    stdin = stdin if stdin is not None else sys.stdin
    if stdin is None or stdin.closed:
        say(f"{PROG}: refusing: no --yes and no stdin to ask on")
        return False
    print(f"{question} [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = stdin.readline()
    except (OSError, ValueError):
        answer = ""
    if not answer:
        say(f"\n{PROG}: refusing: no --yes and no answer on stdin")
        return False
    return answer.strip().lower() in ("y", "yes")


def report_problems(problems: Iterable[Problem]) -> int:
    """Each problem as one line: ``ufs-tui: error: SUBJECT: WHAT (fix: HOW)``."""
    for p in problems:
        say(f"{PROG}: error: {one_line(str(p))}")
    return 2


def report_warnings(warnings: Iterable[Problem | str]) -> None:
    for w in warnings:
        say(f"{PROG}: warning: {one_line(str(w))}")


def report_mount_error(e: MountError) -> int:
    """One line per problem, with what the kernel (or fuse-overlayfs) said inside it."""
    for line in e.lines():
        say(f"{PROG}: error: {line}")
    return 2


class OpenUI(Protocol):
    """The UI factory ``ufs_tui.cli`` hands to a command that opens the explorer (its exit status)."""

    def __call__(
        self, stack: Stack, notes: list[str] | None = None, *, on_exit: Callable[[], None] | None = None
    ) -> int: ...


def say_assumptions(stack: Stack) -> None:
    """One ``note:`` line on stderr per thing the model assumes that the layers say may be otherwise."""
    from ..core.model.display import printable
    from ..core.model.inode_index import index_note

    note = index_note(stack.work, stack.options)
    if note is not None:
        say(f"{PROG}: note: {printable(note)}")


def warn_unread(errors: dict[str, str]) -> int:
    """A warning per dir that could not be read while walking; the exit status: 1 if any, else 0."""
    from ..core.model.display import printable

    for path, problem in errors.items():
        say(f"{PROG}: warning: {printable(path)}: {problem} (its entries are missing above)")
    return 1 if errors else 0


def stack_args(stack: Stack) -> str:
    """The stack as ufs-tui options, shell-quoted (what scripts pass to the next command)."""
    argv = ["--lower", stack.lowerdir_option()]
    if stack.upper is not None:
        argv += ["--upper", stack.upper.path]
    if stack.work is not None:
        argv += ["--work", stack.work]
    if stack.xattr_ns == "user":
        argv += ["--xattr-ns", "user"]
    return shlex.join(argv)


__all__ = [
    "OpenUI", "confirm", "report_mount_error", "report_problems", "report_warnings", "say", "say_assumptions",
    "stack_args", "warn_unread",
]  # fmt: skip
