"""Small helpers the engine readers share: JSON and text files, sizes, ids, layer labels."""

from __future__ import annotations

import json
import os
from dataclasses import replace
from typing import Any

from ..errors import StackError
from ..stack import Stack


def read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read().strip()
    except FileNotFoundError:
        raise StackError(path, "missing (is this the engine's data root?)") from None
    except OSError as e:
        raise StackError(path, f"cannot be read: {e.strerror}") from None


def read_json(path: str) -> Any:
    text = read_text(path)
    try:
        return json.loads(text) if text else None
    except ValueError as e:
        raise StackError(path, f"not valid JSON: {e}") from None


def human_size(n: int) -> str:
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def short(digest: str, n: int = 12) -> str:
    """``sha256:abcdef...`` or ``abcdef...`` -> the first ``n`` hex digits."""
    return digest.split(":", 1)[-1][:n]


def one_line(text: str, limit: int = 120) -> str:
    """A history command squeezed onto one line (labels are shown in one line; the display layer escapes)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def layer_label(step: str | None, size: int | None, ids: list[tuple[str, str]]) -> str:
    """``created_by · size · diff:abc chain:def ...`` for one image layer."""
    parts = [one_line(step) if step else "(no history)"]
    if size is not None:
        parts.append(human_size(size))
    id_text = " ".join(f"{k}:{short(v)}" for k, v in ids if v)
    if id_text:
        parts.append(id_text)
    return " · ".join(parts)


def history_steps(config: dict[str, Any]) -> list[str | None]:
    """created_by of each history entry that made a layer, bottom first (empty_layer entries skipped)."""
    out: list[str | None] = []
    for h in config.get("history") or []:
        if isinstance(h, dict) and not h.get("empty_layer"):
            created = h.get("created_by")
            comment = h.get("comment")
            out.append(str(created) if created else (str(comment) if comment else None))
    return out


def unique_match(kind: str, want: str, candidates: dict[str, str]) -> str:
    """Resolve ``want`` among ``candidates`` (key -> id): exact key, exact id, or a unique id prefix."""
    if want in candidates:
        return candidates[want]
    ids = set(candidates.values())
    bare = want.split(":", 1)[1] if want.startswith("sha256:") else want
    if bare in ids:
        return bare
    if len(bare) >= 3 and all(c in "0123456789abcdef" for c in bare):
        hits = {i for i in ids if i.startswith(bare)}
        if len(hits) == 1:
            return hits.pop()
        if len(hits) > 1:
            raise StackError(want, f"ambiguous {kind} id prefix ({len(hits)} match)")
    raise StackError(want, f"no such {kind}")


def is_dir(path: str) -> bool:
    return os.path.isdir(path)


def with_labels(stack: Stack, upper: str | None, lowers: list[str]) -> Stack:
    """``stack`` with Layer.label set on the upper and on the lowers (top first)."""
    new_lowers = tuple(
        replace(layer, label=lowers[i]) if i < len(lowers) else layer for i, layer in enumerate(stack.lowers)
    )
    new_upper = replace(stack.upper, label=upper) if stack.upper is not None and upper else stack.upper
    return replace(stack, lowers=new_lowers, upper=new_upper)
