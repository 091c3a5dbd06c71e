"""``ufs-tui ps``: every container and image of every engine on this host, and the SOURCE that opens each."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

NAME = "ps"

COLUMNS = ("ENGINE", "NAMESPACE", "NAME", "ID", "STATE", "IMAGE", "UPPER SIZE", "OPEN WITH")


def add_parser(subparsers: Any) -> None:
    from .options import add_engine_options

    p = subparsers.add_parser(
        NAME,
        help="list every container and image of every engine on this host",
        description="List the containers and images of every engine found on this host, read from their own "
        "records without their daemons: Docker (overlay2 and the containerd image store), Podman and CRI-O "
        "(containers-storage), containerd (every namespace; Kubernetes pods in k8s.io; nerdctl's names). "
        "Each row ends with the SOURCE that opens it: 'ufs-tui SOURCE', 'ufs-tui tree SOURCE'. A container is "
        "running when its writable layer is mounted (Docker: as its record says); its upper size is the bytes "
        "of the files in its writable layer.",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="a table, or JSON lines")
    p.add_argument(
        "--no-size", dest="size", action="store_false", help="do not add up each writable layer's size (faster)"
    )
    add_engine_options(p)
    p.add_argument("--mountinfo", help=argparse.SUPPRESS)


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.model.display import human_size, printable
    from ..core.sources import host_mounts, where_from
    from ..core.sources.catalog import gather
    from .options import engine_opts

    where = where_from(engine_opts(args))
    cat = gather(where, host_mounts(where, args.mountinfo), sizes=args.size)
    if args.format == "json":
        for e in cat.entries:
            obj = {
                "engine": e.engine,
                "kind": e.kind,
                "namespace": e.namespace,
                "name": e.name,
                "id": e.id,
                "state": e.state,
                "image": e.image,
                "upper": e.upper,
                "upper_size": e.upper_size,
                "source": e.source,
            }
            out.write(json.dumps(obj, ensure_ascii=True) + "\n")
    else:
        rows = [
            (
                e.engine,
                e.namespace or "-",
                e.name,
                e.id.removeprefix("sha256:")[:12],
                e.state or "-",
                e.image,
                human_size(e.upper_size) if e.upper_size is not None else "-",
                e.source,
            )
            for e in cat.entries
        ]
        shown = [tuple(printable(c) for c in row) for row in rows]
        widths = [max([len(h)] + [len(r[i]) for r in shown]) for i, h in enumerate(COLUMNS)]
        for row in [COLUMNS, *shown]:
            out.write("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() + "\n")
        if not rows:
            out.write("no containers or images found (give an engine's root: see --help)\n")
    from . import say

    for note in cat.notes:
        say(f"ufs-tui: warning: {printable(note)}")
    return 1 if cat.notes else 0
