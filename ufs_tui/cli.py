"""Command line: ``ufs-tui [COMMAND] ...``. Non-interactive commands print text or JSON; no command opens the UI.

Every error a user can cause prints one line, ``ufs-tui: error: PATH: problem``,
and exits 2; a partial result (an unreadable dir met while walking) prints
warnings and exits 1.
"""

from __future__ import annotations

import argparse
import errno
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .commands.options import (
    add_stack_options,
    add_theme_option,
    apply_config,
    engine_opts,
    stack_from_args,
    user_config,
    warn_config,
)
from .core.config import Config
from .core.model.errors import UfsError
from .core.model.stack import Stack

PROG = "ufs-tui"

# Every subcommand is a module: NAME, add_parser(subparsers) and run(args, out) -> int (see ufs_tui/commands).
COMMAND_MODULES: tuple[str, ...] = (
    "ufs_tui.commands.tree",
    "ufs_tui.commands.diff",
    "ufs_tui.commands.cp",
    "ufs_tui.commands.compare",
    "ufs_tui.commands.du",
    "ufs_tui.commands.demo",
    "ufs_tui.commands.ps",
    "ufs_tui.commands.mounts",
    "ufs_tui.commands.mount",
    "ufs_tui.commands.umount",
    "ufs_tui.commands.commit",
    "ufs_tui.commands.squash",
    "ufs_tui.commands.ci",
)

DESCRIPTION = """\
See inside overlayfs stacks: lower, upper and merged side by side.

open the explorer UI:
  ufs-tui --lower L1:L2 --upper U --work W    a stack of dirs (lowers topmost first)
  ufs-tui /path/to/merged                      a mounted overlay (see 'ufs-tui mounts')
  ufs-tui docker:NAME | docker-image:NAME[:TAG] | podman:NAME | podman-image:NAME[:TAG]
  ufs-tui containerd:[NS/]ID | containerd-image:[NS/]REF | nerdctl:[NS/]NAME | k8s:[NAMESPACE/]POD[/CONTAINER]
  ufs-tui IMAGE.tar                            a 'docker save' or OCI archive, read in place
  ufs-tui demo                                 the built-in demo stack

commands (read only unless named otherwise):
  tree     print the merged tree (text or JSON lines), without mounting
  diff     print a layer's changes: the upper's, an image's top layer's (text, json, or as 'docker diff')
  du       sizes and wasted space per layer or per dir, each wasted byte said in words
  ci       a CI gate on wasted space with dive's rules (exit 1 when a rule fails)
  compare  compare any two sources or layers (A/C/D, and the content diff of a changed file)
  cp       extract any version of a file or dir (a layer's, a deleted one too) (writes: to DEST only)
  ps       list every container and image of every engine on this host, and how to open each
  mounts   list the overlay mounts on this host and who owns them
  mount    mount a stack (writes: creates the mount; kernel, user namespace or fuse-overlayfs)
  umount   unmount what ufs-tui mounted (--mine: everything in this user's record)
  commit   the upper becomes a new lower, a fresh upper is created (writes new dirs only)
  squash   merge adjacent lowers into one new layer dir (writes a new dir only)

Run 'ufs-tui COMMAND --help' for a command's options.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in _command_modules():
        module.add_parser(sub)
    return parser


def _command_modules() -> list[Any]:
    import importlib

    return [importlib.import_module(name) for name in COMMAND_MODULES]


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = stdout or sys.stdout
    if out is None:  # started with standard output closed (`>&-`)
        _error(UfsError("cannot write the output: standard output is closed"))
        return 2
    parser = build_parser()
    commands = {"-h", "--help", *(m.NAME for m in _command_modules())}
    if argv and argv[0] not in commands:
        return _open_ui(argv)
    if not argv:
        parser.print_help(out)
        return 0
    args = parser.parse_args(argv)
    config = user_config()
    apply_config(args, config)
    try:
        return _dispatch(args, out, config)
    except UfsError as e:
        _error(e)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except OSError as e:
        if e.errno not in _OUTPUT_ERRNOS:
            raise
        _error(UfsError(f"cannot write the output: {e.strerror}"))
        if out is sys.stdout:  # nothing more can go there: not even what is buffered, at exit
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 2


# Errors from writing the output (a full disk or quota, a file too big, a failing device): one line, no traceback.
_OUTPUT_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def _dispatch(args: argparse.Namespace, out: TextIO, config: Config) -> int:
    for module in _command_modules():
        if args.command == module.NAME:
            if getattr(module, "OPENS_UI", False):
                return int(module.run(args, out, _ui_factory(getattr(args, "theme", None), config)))
            return int(module.run(args, out))
    raise AssertionError(args.command)  # pragma: no cover


def _ui_factory(theme: str | None, config: Config) -> Callable[..., int]:
    """The UI factory a command that opens the explorer is given (``OpenUI``), with ``--theme`` and the config."""

    def open_ui(stack: Stack, notes: list[str] | None = None, *, on_exit: Callable[[], None] | None = None) -> int:
        return _run_ui(stack, notes, on_exit=on_exit, theme=theme, config=config)

    return open_ui


def _error(e: Exception) -> None:
    """The one line an error prints: a path in it may hold any byte, so it is made printable."""
    from .core.model.display import printable

    print(f"{PROG}: error: {printable(str(e))}", file=sys.stderr)


def _open_ui(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Open the explorer UI on a stack.")
    add_stack_options(parser, source=True)
    add_theme_option(parser)
    args = parser.parse_args(argv)
    config = user_config()
    apply_config(args, config)
    try:
        stack = stack_from_args(args)
    except UfsError as e:
        _error(e)
        return 2
    from .core.model.inode_index import index_note

    mount_point = _overlay_mount_point(args.source)
    notes = [note] if (note := index_note(stack.work, stack.options)) else []
    return _run_ui(stack, notes, mount_point=mount_point, engines=engine_opts(args), source=args.source or "",
                   theme=args.theme, config=config)  # fmt: skip


def _overlay_mount_point(source: str | None) -> str | None:
    """SOURCE when it is an overlay mount point: the UI then reads the kernel's merged view there too."""
    if not source or not os.path.isdir(source):
        return None
    from .core.mounting.mount_table import fstype_at

    return os.path.realpath(source) if fstype_at(source) == "overlay" else None


def _run_ui(
    stack: Stack,
    notes: list[str] | None = None,
    mount_point: str | None = None,
    on_exit: Callable[[], None] | None = None,
    engines: dict[str, str | None] | None = None,
    source: str = "",
    theme: str | None = None,
    config: Config | None = None,
) -> int:
    """The explorer on ``stack``, with the theme (``--theme`` wins over the config file's) and the keymap of
    the user's config file."""
    from .ui.app import run_app
    from .ui.config import for_ui

    config, problems = for_ui(config or Config())
    warn_config(problems)
    return run_app(
        stack,
        notes=notes or [],
        keymap=config.keymap,
        mount_point=mount_point,
        on_exit=on_exit,
        engines=engines or {},
        source=source,
        theme=theme or config.theme,
    )
