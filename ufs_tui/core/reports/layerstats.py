"""Per-layer counts for the layer list: what each layer adds, copies up and deletes over the layers below it."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from dataclasses import asdict, dataclass

from ..model import status as S
from ..model.merge import Entry, Hidden, OverlayView
from ..model.stack import Layer, Stack
from ..panes import own_stack


@dataclass
class LayerCounts:
    new: int = 0  # non-dirs with nothing of that name below
    copied: int = 0  # non-dirs over a non-dir below (full copy-up)
    metacopy: int = 0  # metadata-only copy-ups
    whiteouts: int = 0
    opaque: int = 0  # opaque dirs
    files: int = 0  # every non-dir, markers excluded
    size: int = 0  # bytes in regular files (a metacopy file's full size is not counted)
    complete: bool = True  # False when cancelled midway


def layer_counts(stack: Stack, layer: Layer, cancelled: Callable[[], bool] = lambda: False) -> LayerCounts:
    """Walk ``layer``'s own tree; compare each non-dir with the stack below it."""
    own = OverlayView(own_stack(stack, layer))
    below = OverlayView(stack.below(layer))
    counts = LayerCounts()
    for n, (path, item, _) in enumerate(own.walk_items("/", with_hidden=True)):
        if n % 256 == 0 and cancelled():
            counts.complete = False
            break
        if isinstance(item, Hidden):
            if item.status == S.WHITEOUT:
                counts.whiteouts += 1
            continue
        assert isinstance(item, Entry)
        if item.is_dir:
            if item.status == S.OPAQUE:
                counts.opaque += 1
            continue
        counts.files += 1
        if item.status == S.METACOPY:
            counts.metacopy += 1
            continue
        if item.kind == "file":
            counts.size += item.size
        under = below.lookup(path) if below.stack.lowers else None
        if under is None:
            counts.new += 1
        else:
            counts.copied += 1
    return counts


def stack_to_json(stack: Stack) -> str:
    """What :func:`main` needs to rebuild ``stack`` in another process."""
    return json.dumps(
        {
            "lowers": [layer.path for layer in stack.lowers],
            "upper": stack.upper.path if stack.upper else None,
            "data": [layer.path for layer in stack.data_layers],
            "xattr_ns": stack.xattr_ns,
            "options": list(stack.options),
        }
    )


def stack_from_json(text: str) -> Stack:
    d = json.loads(text)
    bare = Stack((), xattr_ns=d["xattr_ns"], options=tuple(d["options"]))
    return bare.relayered(d["lowers"], d["upper"], data=d["data"])


def main(argv: list[str] | None = None) -> int:
    """``python -m ufs_tui.core.reports.layerstats [LAYER...] < stack.json``: one JSON line of counts per layer.

    The UI runs this in a child process, so counting a big stack never competes with the UI for the GIL.
    """
    args = sys.argv[1:] if argv is None else argv
    stack = stack_from_json(sys.stdin.read())
    for layer in stack.all_layers:
        if args and layer.name not in args and layer.path not in args:
            continue
        counts = layer_counts(stack, layer)
        print(json.dumps({"layer": layer.name, **asdict(counts)}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
