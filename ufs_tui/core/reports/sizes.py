"""Sizes in the merged view: the bytes of the visible regular files under each dir, as ``du`` would count them
through the mount (a metacopy file counts its data once; hard links within a layer are not told apart)."""

from __future__ import annotations

from collections.abc import Callable

from ..model.merge import OverlayView


def dir_sizes(view: OverlayView, depth: int, cancelled: Callable[[], bool] = lambda: False) -> dict[str, int]:
    """Merged dir -> bytes of the files under it, for every dir at most ``depth`` levels below ``/`` ("/": 0)."""
    sizes: dict[str, int] = {"/": 0}
    for n, (path, e) in enumerate(view.walk("/", cache=False)):
        if n % 1024 == 0 and cancelled():
            break
        if e.kind == "dir":
            if path.count("/") <= depth:
                sizes[path] = 0
            continue
        if e.kind != "file":
            continue
        size = e.size
        sizes["/"] += size
        parts = path.split("/")[1:-1]  # the dirs above the file, top down
        for i in range(min(len(parts), depth)):
            sizes["/" + "/".join(parts[: i + 1])] += size
    return sizes
