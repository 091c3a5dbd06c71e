"""``ufs-tui du``: sizes and wasted space of a stack: per layer, per path, and each wasted byte said in words."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING, Any, TextIO

from . import say_assumptions, warn_unread
from .options import add_stack_options, stack_from_args

if TYPE_CHECKING:
    from ..core.model.merge import OverlayView
    from ..core.reports.waste import WasteReport

NAME = "du"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="sizes and wasted space, per layer or per path",
        description=(
            "Sizes and wasted space of a stack, read from its layers (nothing is mounted or written). Wasted bytes "
            "are what a layer stores that the merged view never shows: a file overwritten by a later layer, copied "
            "again unchanged (a chmod, chown or touch; metacopy would have copied metadata only), deleted by a "
            "whiteout or hidden by an opaque dir (its bytes still ship), or the same content as another visible "
            "file. Each name stored N times counts N-1 times (dive counts all N)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(p, source=True)
    p.add_argument("--by", choices=("layer", "path"), default="layer", help="sizes per layer (default) or per dir")
    p.add_argument("--depth", type=int, default=2, metavar="N", help="with --by path: dirs N levels deep (default 2)")
    p.add_argument("--top", type=int, default=20, metavar="N", help="list the N largest wastes (default 20)")
    p.add_argument(
        "--no-duplicates", action="store_true", help="skip hashing equal-size files to find duplicate content"
    )
    p.add_argument("--format", choices=("text", "json"), default="text", help="text or one JSON object")


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.model.merge import OverlayView
    from ..core.reports.waste import find_waste

    stack = stack_from_args(args)
    say_assumptions(stack)
    view = OverlayView(stack)
    view.list_dir("/")  # a root that cannot be read is an error, not a warning
    report = find_waste(stack, duplicates=not args.no_duplicates)
    if args.by == "path":
        _paths(view, args, out)
    elif args.format == "json":
        out.write(json.dumps(_json(report, view, args.top)) + "\n")
    else:
        _text(report, view, args.top, out)
    return warn_unread(view.errors)


def _layer_rows(report: WasteReport, view: OverlayView) -> list[dict[str, Any]]:
    from ..core.reports.waste import build_step

    here: dict[str, int] = {}
    for w in report.rows:
        here[w.layer.name] = here.get(w.layer.name, 0) + w.size
    caused = report.by_cause()
    return [
        {
            "layer": la.name,
            "step": build_step(la),
            "stored": report.layer_bytes.get(la.name, 0),
            "wasted_here": here.get(la.name, 0),
            "waste_caused": caused.get(la.name, 0),
        }
        for la in view.stack.layers
    ]


def _json(report: WasteReport, view: OverlayView, top: int) -> dict[str, Any]:
    from ..core.model.display import b64, is_valid_utf8

    rows = []
    for w in report.rows[: max(top, 0)]:
        row: dict[str, Any] = {"path": w.path, "kind": w.kind, "size": w.size, "layer": w.layer.name}
        row |= {"by": w.by.name if w.by else None, "same_as": w.same_as or None, "words": w.words()}
        if not is_valid_utf8(w.path):
            row["path_b64"] = b64(w.path)
        rows.append(row)
    return {
        "stored": report.total,
        "wasted": report.wasted,
        "efficiency": round(report.efficiency, 6),
        "layers": _layer_rows(report, view),
        "by_kind": report.by_kind(),
        "wastes": len(report.rows),
        "top": rows,
    }


def _text(report: WasteReport, view: OverlayView, top: int, out: TextIO) -> None:
    from ..core.model.display import human_size as hs
    from ..core.model.display import printable

    share = f"{100 * report.wasted / report.total:.1f}%" if report.total else "0%"
    out.write(
        f"{len(view.stack.layers)} layers store {hs(report.total)} in regular files; {hs(report.wasted)} of it is "
        f"wasted ({share}; efficiency {100 * report.efficiency:.1f}%)\n\n"
    )
    out.write(f"{'layer':<10} {'stored':>10} {'wasted here':>12} {'waste caused':>13}  build step\n")
    for r in _layer_rows(report, view):
        out.write(
            f"{r['layer']:<10} {hs(r['stored']):>10} {hs(r['wasted_here']):>12} {hs(r['waste_caused']):>13}  "
            f"{printable(r['step'])}\n"
        )
    kinds = ", ".join(f"{k} {hs(v)}" for k, v in report.by_kind().items() if v)
    out.write(f"\nby kind: {kinds or 'none'}\n")
    if report.rows and top > 0:
        out.write(f"\nlargest waste ({min(top, len(report.rows))} of {len(report.rows)}):\n")
        for w in report.rows[:top]:
            out.write(f"  {printable(w.path)}: {printable(w.words())}\n")


def _paths(view: OverlayView, args: argparse.Namespace, out: TextIO) -> None:
    from ..core.model.display import human_size, printable
    from ..core.reports.sizes import dir_sizes

    sizes = sorted(dir_sizes(view, max(args.depth, 0)).items(), key=lambda kv: (-kv[1], kv[0]))
    if args.format == "json":
        out.write(json.dumps({"dirs": [{"path": p, "size": s} for p, s in sizes]}) + "\n")
        return
    for path, size in sizes:
        out.write(f"{human_size(size):>10}  {printable(path)}\n")
