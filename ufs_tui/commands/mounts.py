"""``ufs-tui mounts``: every overlay mount of the host, with its layers and owner."""

from __future__ import annotations

import argparse
import json
from typing import Any, TextIO

NAME = "mounts"


def add_parser(subparsers: Any) -> None:
    from .options import add_engine_options

    p = subparsers.add_parser(
        NAME,
        help="list overlay mounts (target, layers, owning engine and container)",
        description="List every overlay mount of this host (/proc/self/mountinfo; with --host-root, the host's "
        "mount table, its paths under DIR): target, lowers (topmost first), upper, work, options, and the engine "
        "and container that own it when that can be told. Open one with 'ufs-tui TARGET'.",
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="text blocks or JSON lines")
    add_engine_options(p)
    p.add_argument("--mountinfo", help=argparse.SUPPRESS)


def _ours() -> dict[str, str]:
    """target -> backend of the mounts in this user's ufs-tui record."""
    from ..core.model.errors import UfsError
    from ..core.mounting.record import recorded

    try:
        return {h.target: h.backend for h in recorded()}
    except (OSError, UfsError):
        return {}


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.model.display import printable
    from ..core.sources import list_overlay_mounts, where_from
    from .options import engine_opts

    mounts = list_overlay_mounts(args.mountinfo, where_from(engine_opts(args)))
    ours = _ours()
    for m in mounts:
        if args.format == "json":
            obj: dict[str, object] = {
                "target": m.target,
                "lowers": list(m.lowers),
                "data_layers": list(m.data_layers),
                "upper": m.upper,
                "work": m.work,
                "options": list(m.options),
                "engine": m.engine,
                "container": m.container,
                "container_id": m.container_id,
                "ufs_tui": ours.get(m.target),  # the backend, when ufs-tui made this mount
            }
            if m.problems:
                obj["problems"] = list(m.problems)
            out.write(json.dumps(obj, ensure_ascii=True) + "\n")
            continue
        owner = f"ufs-tui, {ours[m.target]}" if m.target in ours else m.engine or "-"
        if m.container:
            owner += f" {m.container}"
        out.write(f"{printable(m.target)}  [{printable(owner)}]\n")
        for i, p in enumerate(m.lowers):
            out.write(f"  lower:{i}  {printable(p)}\n")
        for i, p in enumerate(m.data_layers, start=len(m.lowers)):
            out.write(f"  data:{i}  {printable(p)}\n")
        out.write(f"  upper    {printable(m.upper) if m.upper else '(none: read-only)'}\n")
        if m.work:
            out.write(f"  work     {printable(m.work)}\n")
        if m.options:
            out.write(f"  options  {printable(','.join(m.options))}\n")
        for problem in m.problems:
            out.write(f"  problem  {printable(problem)}\n")
    if not mounts and args.format == "text":
        out.write("no overlay mounts\n")
    return 0
