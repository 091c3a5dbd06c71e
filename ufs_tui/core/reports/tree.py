"""Plain-text and JSON renderings of the merged tree and of the diff (the CLI contract).

JSON is one object per line. Paths are absolute in the merged view. A name that
is not valid UTF-8 is given in ``path`` with each undecodable byte as a lone
surrogate escape (``\\udcXX``, Python's ``surrogateescape``) and, exactly, as
base64 of the raw bytes in ``path_b64``.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import TextIO

from ..model import status as S
from ..model.display import b64, is_valid_utf8, printable
from ..model.markers import Node, probe
from ..model.merge import Entry, Hidden, OverlayView
from .diff import Change

_enc = json.encoder.encode_basestring_ascii


def _path_fields(path: str) -> str:
    out = '"path":' + _enc(path)
    if not path.isascii() and not is_valid_utf8(path):
        out += ',"path_b64":"' + b64(path) + '"'
    return out


def _b64_fields(**values: str | None) -> str:
    """``,"KEY_b64":"..."`` for each value that is not valid UTF-8 (a symlink target, a real path)."""
    out = ""
    for key, value in values.items():
        if value is not None and not value.isascii() and not is_valid_utf8(value):
            out += ',"' + key + '_b64":"' + b64(value) + '"'
    return out


def entry_json(path: str, e: Entry) -> str:
    target = "null" if e.target is None else _enc(e.target)
    line = (
        "{"
        + _path_fields(path)
        + ',"type":"'
        + e.kind
        + '","mode":'
        + str(e.mode)
        + ',"size":'
        + str(e.size)
        + ',"target":'
        + target
        + ',"layer":"'
        + e.layer.name
        + '","source":'
        + _enc(e.source)
        + ',"status":"'
        + e.status
        + '"'
    )
    line += _b64_fields(target=e.target, source=e.source)
    if e.extra:
        for key in ("redirect", "data_layer", "error", "errno", "index"):
            if key in e.extra:
                line += ',"' + key + '":' + _enc(e.extra[key])
    return line + "}"


def node_json(path: str, node: Node | None, layer: str, status: str, by: str | None, real: str, kind: str = "") -> str:
    obj: dict[str, object] = {"path": path}
    if not is_valid_utf8(path):
        obj["path_b64"] = b64(path)
    obj.update(
        {
            "type": node.kind if node else "unknown",
            "mode": node.mode if node else 0,
            "size": node.size if node else 0,
            "target": node.target if node else None,
            "layer": layer,
            "source": real,
            "status": status,
        }
    )
    for key, value in (("target", node.target if node else None), ("source", real)):
        if value is not None and not is_valid_utf8(value):
            obj[key + "_b64"] = b64(value)
    if node is not None and node.whiteout:
        obj["whiteout"] = node.whiteout
    if by is not None:
        obj["by"] = by
    if kind:
        obj = {"kind": kind, **obj}
    return json.dumps(obj, separators=(",", ":"))


def hidden_json(path: str, h: Hidden, view: OverlayView) -> str:
    node = probe(h.path, view.stack.xattr_ns)
    return node_json(path, node, h.layer.name, h.status, h.by.name if h.by else None, h.path)


def write_tree_json(view: OverlayView, out: TextIO, show_all: bool = False, jobs: int = 1) -> None:
    """One JSON object per line for every merged entry, pre-order (with ``show_all``: hidden things too).

    ``jobs`` > 1 spreads the walk over that many forked processes where it can (see :mod:`.forkwalk`);
    the output is the same, byte for byte.
    """
    write = out.write
    if show_all:
        for path, it, _ in view.walk_items(with_hidden=True):
            if isinstance(it, Entry):
                write(entry_json(path, it) + "\n")
            else:
                write(hidden_json(path, it, view) + "\n")
        return
    # The hot path of ``tree --format json`` (issue 2's benchmark): no listing is cached, and lines
    # are written in big chunks.
    line = JsonLines().line
    if jobs > 1:
        from . import forkwalk  # here: text trees and diffs need none of it (start-up time)

        if forkwalk.can_fork(view):
            out.flush()
            binary = getattr(out, "buffer", None)  # lines are UTF-8 (JSON escapes make them ASCII)
            forkwalk.write_walk(view, line, binary.write if binary is not None else lambda b: write(b.decode()), jobs)
            return
    buf: list[str] = []
    add = buf.append
    for path, e in view.walk(cache=False, eager=True):
        add(line(path, e))
        if len(buf) >= 2048:
            write("".join(buf))
            buf.clear()
    write("".join(buf))


class JsonLines:
    """Formats :func:`entry_json` lines (with their newline), inline for the common case: an ASCII path,
    target and source dir, nothing extra; from the entry's shared parts (see merge.Entry), whose pieces of
    the line are made once."""

    def __init__(self) -> None:
        # id(source tuple) -> ('"layer":"NAME","source":"REAL-DIR/' or "" if not ASCII, the tuple: it keeps the id)
        self._heads: dict[int, tuple[str, object]] = {}
        # id(class tuple) -> ('"type":"KIND","mode":MODE,"size":', '","status":"STATUS"}\n', the tuple)
        self._classes: dict[int, tuple[str, str, object]] = {}

    def line(self, path: str, e: Entry) -> str:
        enc = _enc
        if e._size is None:  # a lazy entry (only from a listing cached before): read what it lacks
            e._load()
        more = e._more  # None, a symlink's target, or (target, sources, extra)
        if more is None:
            target = "null"
        elif more.__class__ is str:
            target = enc(more) if more.isascii() else ""  # not ASCII: maybe not UTF-8 (target_b64)
        elif more[2] is None:  # a dir's sources: nothing extra
            target = "null" if more[0] is None else enc(more[0]) if more[0].isascii() else ""
        else:
            target = ""
        src = e._src
        head = self._heads.get(id(src))
        if head is None:
            srcdir = src[1]
            # A source dir that is not ASCII gets no fast line ("" here): it may need source_b64.
            escaped = enc(srcdir if srcdir != "/" else "")[:-1] if srcdir.isascii() else ""
            head = self._heads[id(src)] = (f',"layer":"{src[0].name}","source":{escaped}/' if escaped else "", src)
        if not target or not head[0] or not path.isascii():
            return entry_json(path, e) + "\n"
        cls = e._cls
        parts = self._classes.get(id(cls))
        if parts is None:
            kind, mode, status = cls
            head_of_class = f',"type":"{kind}","mode":{mode},"size":'
            parts = self._classes[id(cls)] = (head_of_class, f',"status":"{status}"}}\n', cls)
        return (
            '{"path":'
            + enc(path)
            + parts[0]
            + str(e._size)
            + ',"target":'
            + target
            + head[0]
            + enc(path[path.rfind("/") + 1 :])[1:]
            + parts[1]
        )


def _label(e: Entry | Hidden) -> str:
    return printable(e.name)


def write_tree_text(view: OverlayView, out: TextIO, show_all: bool = False) -> None:
    """An indented tree: glyph, name (``/`` for dirs, ``-> target`` for symlinks), status and layer."""
    stack = view.stack
    layers = ", ".join(f"{layer.name}={printable(layer.path)}" for layer in stack.all_layers)
    out.write(f"/  [{layers}]\n")
    for _path, it, depth in view.walk_items(with_hidden=show_all):
        style = S.STYLES[it.status]
        name = _label(it)
        if isinstance(it, Entry):
            if it.is_dir:
                name += "/"
            elif it.target is not None:
                name += " -> " + printable(it.target)
            info = f"{it.status} {it.layer.name}"
            if it.redirect:
                info += f" from {printable(it.redirect)}"
            if it.extra and "data_layer" in it.extra:
                info += f" data from {it.extra['data_layer']}"
            if it.extra and "index" in it.extra:
                info += " via the inode index (a hard link copied up through another name)"
            if it.extra and "error" in it.extra:
                info += f" ({it.extra['error']})"
        else:
            info = f"{it.status} {it.layer.name}" + (f" by {it.by.name}" if it.by and it.by != it.layer else "")
        out.write(f"{'    ' * depth}{style.glyph} {name}  [{info}]\n")


def write_diff(changes: Iterable[Change], out: TextIO, fmt: str, raw: bool = False) -> None:
    """The change list as ``fmt``: ``text``, ``json``, or ``KIND PATH`` lines for ``docker`` and ``podman``.

    ``raw`` (stdout is not a terminal): ``docker`` and ``podman`` lines carry names exactly as those
    commands print them, newlines, tabs and backslashes included: docker's come through its JSON
    API, so each byte that is not valid UTF-8 is U+FFFD; podman's are the raw bytes. Otherwise (a
    terminal) names go through :func:`printable`, so no name can send escape sequences to it.
    ``text`` and ``json`` never depend on ``raw``.
    """
    if fmt in ("docker", "podman"):
        if not raw:
            out.write("".join(f"{c.kind} {printable(c.path)}\n" for c in changes))
            return
        text = "".join(f"{c.kind} {c.path}\n" for c in changes)
        if fmt == "docker":
            text = _GO_INVALID.sub("\ufffd", text)
        _write_raw(out, text)
        return
    for c in changes:
        if fmt == "json":
            out.write(node_json(c.path, c.node, c.layer, c.status, None, c.real, kind=c.kind) + "\n")
        else:
            style = S.STYLES.get(c.status)
            glyph = style.glyph if style else " "
            out.write(f"{c.kind} {glyph} {printable(c.path)}  [{c.status}]\n")


# A byte that is not UTF-8, as os.fsdecode keeps it (a lone surrogate escape): Go's JSON encoder
# makes each one U+FFFD (what docker diff shows).
_GO_INVALID = re.compile("[\udc80-\udcff]")


def _write_raw(out: TextIO, text: str) -> None:
    """Write ``text`` with its names' original bytes (surrogate escapes back to bytes), whatever
    the stream's encoding; a stream with no byte buffer (a StringIO) gets the str itself."""
    buffer = getattr(out, "buffer", None)
    if buffer is None:
        out.write(text)
        return
    out.flush()
    buffer.write(os.fsencode(text))
    buffer.flush()
