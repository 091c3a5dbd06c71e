"""Command line: ``ufs-tui [COMMAND] ...``. Non-interactive commands print text or JSON; no command opens the UI.

Every error a user can cause prints one line, ``ufs-tui: error: PATH: problem``,
and exits 2; a partial result (an unreadable dir met while walking) prints
warnings and exits 1.
"""

from __future__ import annotations

import argparse
import dataclasses
import errno
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, TextIO

from .core.errors import UfsError
from .core.stack import Stack

PROG = "ufs-tui"

# More subcommands live in their own modules; each has NAME, add_parser(subparsers) and run(args, out) -> int.
COMMAND_MODULES: tuple[str, ...] = (
    "ufs_tui.commands.ps",
    "ufs_tui.commands.mounts",
    "ufs_tui.commands.mount",
    "ufs_tui.commands.umount",
    "ufs_tui.commands.commit",
    "ufs_tui.commands.squash",
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
  ps       list every container and image of every engine on this host, and how to open each
  mounts   list the overlay mounts on this host and who owns them
  mount    mount a stack (writes: creates the mount; kernel, user namespace or fuse-overlayfs)
  umount   unmount what ufs-tui mounted (--mine: everything in this user's record)
  commit   the upper becomes a new lower, a fresh upper is created (writes new dirs only)
  squash   merge adjacent lowers into one new layer dir (writes a new dir only)

Run 'ufs-tui COMMAND --help' for a command's options.
"""


def add_stack_options(p: argparse.ArgumentParser, required: bool = True, source: bool = False) -> None:
    if source:  # a positional SOURCE replaces --lower/--upper (see ufs_tui.core.sources)
        p.add_argument(
            "source",
            nargs="?",
            metavar="SOURCE",
            help="docker:NAME_OR_ID, docker-image:NAME[:TAG], podman:NAME_OR_ID, podman-image:NAME[:TAG], "
            "containerd:[NS/]ID, containerd-image:[NS/]REF, nerdctl:[NS/]NAME, k8s:[NAMESPACE/]POD[/CONTAINER], "
            "an overlay mount point, or an image archive (docker save / OCI); instead of --lower "
            "('ufs-tui ps' lists what this host has)",
        )
    g = p.add_argument_group("stack (the same options as mount -t overlay)")
    g.add_argument(
        "--lower",
        required=required and not source,
        metavar="DIR[:DIR...]",
        help="lower layers, topmost first, in the kernel's lowerdir syntax: ':' separates, '\\:' escapes a "
        "colon, '::' starts data-only layers",
    )
    g.add_argument("--upper", metavar="DIR", help="the upper (writable) layer; omit for a read-only stack")
    g.add_argument("--work", metavar="DIR", help="the work dir (only needed to mount)")
    g.add_argument(
        "--xattr-ns",
        choices=("trusted", "user"),
        help="which overlay xattrs mark whiteouts/opaque dirs: trusted.overlay.* (default for root) or "
        "user.overlay.* (userxattr mounts); detected from the layers when not given",
    )
    g.add_argument("--userxattr", action="store_true", help="same as --xattr-ns user (the mount option's name)")
    g.add_argument(
        "--oci-whiteouts",
        action="store_true",
        help="also honour image-tarball markers: .wh.NAME deletes NAME below, .wh..wh..opq makes a dir opaque "
        "(naively unpacked image layers, fuse-overlayfs uppers); the kernel itself ignores them",
    )
    if source:
        g.add_argument(
            "-o",
            "--option",
            dest="stack_options",
            action="append",
            default=[],
            metavar="OPT[,OPT...]",
            help="the mount options the stack is (or would be) mounted with, where they change what the kernel "
            "shows: metacopy=off (a metacopy file then fails, EPERM), redirect_dir=nofollow (a redirect fails), "
            "userxattr; by default metacopy files and redirects are followed, as with metacopy=on,redirect_dir=on",
        )
        add_engine_options(g)
        g.add_argument(
            "--image",
            metavar="NAME[:TAG]",
            help="which image of an archive that holds several (a tag, an OCI ref name or an id prefix)",
        )


def add_engine_options(g: argparse._ArgumentGroup | argparse.ArgumentParser) -> None:
    """Where the engines keep their data (each found on its own when not given; see 'ufs-tui ps')."""
    g.add_argument(
        "--docker-root",
        metavar="DIR",
        help="Docker's data root (default: what the daemon says, on DOCKER_HOST or the default socket; else "
        "data-root in /etc/docker/daemon.json; else /var/lib/docker). Both layouts: overlay2 and the containerd "
        "image store",
    )
    g.add_argument(
        "--containerd-root",
        metavar="DIR",
        help="containerd's root, for containerd:, nerdctl:, k8s: and Docker's containerd image store (default: "
        "the roots of the containerd daemons running, else root in /etc/containerd/config.toml, else "
        "/var/lib/containerd; Docker's own: DATA_ROOT/containerd/daemon)",
    )
    g.add_argument(
        "--podman-root",
        metavar="DIR",
        help="containers-storage root for podman: and CRI-O's k8s: (default: graphroot in "
        "/etc/containers/storage.conf, else /var/lib/containers/storage)",
    )
    g.add_argument(
        "--host-root",
        metavar="DIR",
        help="the host's / is mounted at DIR (inside 'kubectl debug node/NAME' it is /host): engine roots, the "
        "host's mount table and config files name host paths, found under DIR; the --*-root options are host "
        "paths too",
    )


def engine_opts(args: argparse.Namespace) -> dict[str, str | None]:
    return {k: getattr(args, k, None) for k in ("docker_root", "containerd_root", "podman_root", "host_root")}


def stack_from_args(args: argparse.Namespace) -> Stack:
    given = [o for text in getattr(args, "stack_options", []) for o in text.split(",") if o]
    if getattr(args, "source", None):
        from dataclasses import replace

        from .core.sources import open_source

        stack = open_source(args.source, image=getattr(args, "image", None), **engine_opts(args))
        return replace(stack, options=tuple(dict.fromkeys([*stack.options, *given]))) if given else stack
    if args.lower is None:
        raise UfsError("--lower: give the lower layers (--lower DIR[:DIR...]) or a SOURCE (see --help)")
    options: list[str] = []
    if args.userxattr:
        options.append("userxattr")
    if args.oci_whiteouts:
        options.append("oci-whiteouts")
    options += given
    return Stack.build(
        args.lower,
        upper=args.upper,
        work=args.work,
        xattr_ns=args.xattr_ns,
        options=tuple(options),
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    tree = sub.add_parser(
        "tree",
        help="print the merged tree",
        description="Print the merged view of a stack, computed from the layers (nothing is mounted or written).",
        epilog=_tree_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(tree, source=True)
    tree.add_argument("--format", choices=("text", "json"), default="text", help="text tree or JSON lines")
    tree.add_argument(
        "--all", action="store_true", help="also list hidden things: whiteouts, shadowed and hidden lower entries"
    )
    tree.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        default=None,
        metavar="N",
        help="with --format json: walk with N processes (default: one per CPU this may use, at most 8; "
        "1 walks in this process). The output is the same either way.",
    )

    diff = sub.add_parser(
        "diff",
        help="print the upper's changes (an image's: its top layer's; --layer: any layer's)",
        description="Print what the upper changes over the lowers (a stack without one: what its topmost lower "
        "changes; --layer NAME: what that layer changes over the layers under it, as dive's current layer). "
        "--format docker prints exactly the A/C/D lines "
        "'docker diff' prints for a container with this stack, --format podman exactly what 'podman diff' prints "
        "(the engines' rules differ; both observed with Docker 20.10 and Podman 4.3).",
        epilog=_diff_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(diff, source=True)
    diff.add_argument(
        "--layer", metavar="NAME", help="the layer whose changes to print: upper, lower:N (default: the topmost)"
    )
    diff.add_argument(
        "--format",
        choices=("text", "docker", "podman", "json"),
        default="text",
        help="text (the default: kind, status glyph, path, status), docker or podman (KIND PATH lines, as the "
        "engine prints them), json (one object per change)",
    )

    demo = sub.add_parser(
        "demo",
        help="the built-in demo stack",
        description="Build the demo stack in a temp dir (through a real overlay mount: as root directly, "
        "otherwise in a user namespace), open it, and remove it on exit.",
    )
    demo.add_argument("--print", action="store_true", help="print the demo's merged tree instead of opening the UI")
    demo.add_argument("--format", choices=("text", "json"), default="text", help="with --print")
    demo.add_argument("--all", action="store_true", help="with --print: include hidden things")
    for module in _command_modules():
        module.add_parser(sub)
    return parser


def _command_modules() -> list[Any]:
    import importlib

    return [importlib.import_module(name) for name in COMMAND_MODULES]


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more: {n}")
    return n


def _tree_epilog() -> str:
    from .core import status as S

    rows = "\n".join(f"  {s.glyph} {s.status:<14} {s.legend}" for s in S.STYLES.values())
    return (
        "statuses (JSON 'status' field; the glyph starts each text line):\n"
        + rows
        + "\n\nJSON lines carry: path, type, mode, size, target, layer (upper | lower:N | data:N), source (the real "
        "path whose data backs the entry), status; plus redirect, data_layer, error where they apply, by (the "
        "layer that hides it) with --all, and path_b64 (the raw bytes) when a name is not valid UTF-8."
    )


def _diff_epilog() -> str:
    import textwrap

    from .core import status as S

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


def main(argv: Sequence[str] | None = None, stdout: TextIO | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    out = stdout or sys.stdout
    if out is None:  # started with standard output closed (`>&-`)
        _error(UfsError("cannot write the output: standard output is closed"))
        return 2
    parser = build_parser()
    commands = {"tree", "diff", "demo", "-h", "--help", *(m.NAME for m in _command_modules())}
    if argv and argv[0] not in commands:
        return _open_ui(argv)
    if not argv:
        parser.print_help(out)
        return 0
    args = parser.parse_args(argv)
    try:
        return _dispatch(args, out)
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


def _dispatch(args: argparse.Namespace, out: TextIO) -> int:
    from .core import report
    from .core.merge import OverlayView

    if args.command == "tree":
        view = OverlayView(stack_from_args(args))
        view.list_dir("/")  # a root that cannot be read is an error, not a warning
        if args.format == "json":
            from .core.forkwalk import default_jobs

            report.write_tree_json(view, out, args.all, args.jobs or default_jobs())
        else:
            report.write_tree_text(view, out, args.all)
        return _warn(view.errors)
    if args.command == "diff":
        from .core.diff import changes, podman_changes

        whole = stack_from_args(args)
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
        return _warn(errors)
    if args.command == "demo":
        from .core.demo import build_demo

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
            return _run_ui(demo.stack, demo_notes=[demo.how, *demo.notes], on_exit=demo.cleanup)
    for module in _command_modules():
        if args.command == module.NAME:
            return int(module.run(args, out))
    raise AssertionError(args.command)  # pragma: no cover


def _error(e: Exception) -> None:
    """The one line an error prints: a path in it may hold any byte, so it is made printable."""
    from .core.display import printable

    print(f"{PROG}: error: {printable(str(e))}", file=sys.stderr)


def _warn(errors: dict[str, str]) -> int:
    from .core.display import printable

    for path, problem in errors.items():
        print(f"{PROG}: warning: {printable(path)}: {problem} (its entries are missing above)", file=sys.stderr)
    return 1 if errors else 0


def _open_ui(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog=PROG, description="Open the explorer UI on a stack.")
    add_stack_options(parser, source=True)
    args = parser.parse_args(argv)
    try:
        stack = stack_from_args(args)
    except UfsError as e:
        _error(e)
        return 2
    mount_point = _overlay_mount_point(args.source)
    return _run_ui(stack, mount_point=mount_point, engines=engine_opts(args), source=args.source or "")


def _overlay_mount_point(source: str | None) -> str | None:
    """SOURCE when it is an overlay mount point: the UI then reads the kernel's merged view there too."""
    if not source or not os.path.isdir(source):
        return None
    from .core.mount import fstype_at

    return os.path.realpath(source) if fstype_at(source) == "overlay" else None


def _run_ui(
    stack: Stack,
    demo_notes: list[str] | None = None,
    mount_point: str | None = None,
    on_exit: Callable[[], None] | None = None,
    engines: dict[str, str | None] | None = None,
    source: str = "",
) -> int:
    from .ui.app import run_app

    return run_app(
        stack, notes=demo_notes or [], mount_point=mount_point, on_exit=on_exit, engines=engines or {}, source=source
    )
