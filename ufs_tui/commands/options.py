"""The options every command that reads a stack shares, and the stack they name.

The commands import this module; it imports none of them (nor ``ufs_tui.cli``), so a command never reaches
back into the dispatcher. The user's config file (:mod:`ufs_tui.core.config`) gives these options defaults
(its ``[source]`` table): :func:`apply_config` fills in what the command line left unsaid.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterable

from ..core.config import Config, load_config
from ..core.model.errors import UfsError
from ..core.model.stack import Stack


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
        add_read_options(
            g,
            "the mount options the stack is (or would be) mounted with, where they change what the kernel "
            "shows: metacopy=off (a metacopy file then fails, EPERM), redirect_dir=nofollow (a redirect fails), "
            "userxattr; by default metacopy files and redirects are followed, as with metacopy=on,redirect_dir=on",
        )
        add_engine_options(g)
        g.add_argument(
            "--image",
            metavar="NAME[:TAG]",
            help="which image of an archive that holds several (a tag, an OCI ref name or an id prefix)",
        )


def add_read_options(g: argparse._ArgumentGroup | argparse.ArgumentParser, help: str) -> None:
    """``-o OPT[,OPT...]``: the mount options a stack is read with (into ``stack_options``)."""
    g.add_argument(
        "-o", "--option", dest="stack_options", action="append", default=[], metavar="OPT[,OPT...]", help=help
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


def given_options(args: argparse.Namespace) -> tuple[str, ...]:
    """The mount options given with ``-o`` (each ``-o`` may hold several, comma-separated)."""
    return tuple(o for text in getattr(args, "stack_options", []) for o in text.split(",") if o)


def stack_from_args(args: argparse.Namespace) -> Stack:
    given = given_options(args)
    if getattr(args, "source", None):
        from ..core.sources import open_source

        return open_source(args.source, image=getattr(args, "image", None), **engine_opts(args)).read_with(given)
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


def add_theme_option(p: argparse.ArgumentParser) -> None:
    """``--theme NAME``, where the explorer opens (it wins over ``theme`` in the config file)."""
    p.add_argument(
        "--theme",
        metavar="NAME",
        type=_theme,
        help="the explorer's colour theme, e.g. textual-light, nord, ansi-dark (default: theme in the config file "
        "~/.config/ufs-tui/config.toml, else textual-dark)",
    )


def _theme(name: str) -> str:
    from ..ui.config import theme_names  # Textual: only imported when --theme is given

    names = theme_names()
    if name not in names:
        raise argparse.ArgumentTypeError(f"unknown theme {name!r} (choose from {', '.join(names)})")
    return name


def user_config() -> Config:
    """The user's config file, read now; each of its problems said on stderr (one line each)."""
    config = load_config()
    warn_config(config.problems)
    return config


def warn_config(problems: Iterable[str]) -> None:
    from ..core.model.display import printable

    for problem in problems:
        print(f"ufs-tui: warning: {printable(problem)}", file=sys.stderr)


def apply_config(args: argparse.Namespace, config: Config) -> None:
    """The config's ``[source]`` defaults, for the options of ``args`` the command line did not give (a flag
    given always wins; ``-o`` given replaces the config's ``options`` entirely)."""
    src = config.source
    for name in ("host_root", "docker_root", "containerd_root", "podman_root", "xattr_ns"):
        if getattr(args, name, False) is None and getattr(src, name) is not None:
            setattr(args, name, getattr(src, name))
    if getattr(args, "stack_options", None) == [] and src.options:
        args.stack_options = [",".join(src.options)]
