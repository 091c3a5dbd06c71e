"""Small helpers the engine readers share: JSON and text files, sizes, ids, layer labels."""

from __future__ import annotations

import errno
import json
import os
import posixpath
import re
import stat
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from ..model.display import human_size, printable
from ..model.errors import StackError
from ..model.stack import Stack

OUTSIDE_LIMIT = 64 << 20  # bytes read at most from one engine file (configs, records, blobs)
READ_CHUNK = 64 << 10


def read_bytes(path: str, limit: int = OUTSIDE_LIMIT) -> bytes:
    """A regular file's bytes. Whatever else is at ``path`` (a FIFO, whose open would wait for a writer; a
    device such as /dev/zero, which never ends; a dir) and a file larger than ``limit`` are an OSError."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise OSError(errno.EINVAL, "not a regular file", path)
        chunks: list[bytes] = []
        got = 0
        # Each read asks for what the file holds (one read, one more to see its end), at least READ_CHUNK: a buffer
        # asked for is allocated whole, and a large one costs more than the read of a small file (mmap, faults).
        while chunk := os.read(fd, min(max(st.st_size + 1 - got, READ_CHUNK), limit + 1 - got)):
            chunks.append(chunk)
            got += len(chunk)
            if got > limit:
                raise OSError(errno.EFBIG, f"larger than {limit} bytes", path)
        return b"".join(chunks)
    finally:
        os.close(fd)


def parse_json(data: bytes | str) -> Any:
    """JSON from outside: any fault (nesting too deep for Python's parser, a number too long) is a ValueError."""
    try:
        return json.loads(data)
    except RecursionError:
        raise ValueError("nested too deeply") from None


def parse_toml(data: bytes) -> dict[str, Any]:
    """TOML from outside: any fault (not UTF-8, nesting too deep, a number too long) is a ValueError."""
    import tomllib  # only engine configs are TOML: not loaded where none is read

    try:
        return tomllib.loads(data.decode("utf-8"))
    except RecursionError:
        raise ValueError("nested too deeply") from None


def read_text(path: str) -> str:
    try:
        return read_bytes(path).decode("utf-8", errors="replace").strip()
    except FileNotFoundError:
        raise StackError(path, "missing (is this the engine's data root?)") from None
    except OSError as e:
        raise StackError(path, f"cannot be read: {e.strerror}") from None


def read_json(path: str) -> Any:
    text = read_text(path)
    try:
        return parse_json(text) if text else None
    except ValueError as e:
        raise StackError(path, f"not valid JSON: {e}") from None


def short(digest: str, n: int = 12) -> str:
    """``sha256:abcdef...`` or ``abcdef...`` -> the first ``n`` hex digits."""
    return digest.split(":", 1)[-1][:n]


def one_line(text: str, limit: int = 120) -> str:
    """A history command squeezed onto one line (labels are shown in one line; the display layer escapes)."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


SEP = " · "
INIT_LAYER = "init layer (.dockerenv, /etc/hosts, /etc/resolv.conf, ...)"  # Docker's per-container <ID>-init
BUILD_INIT_LAYER = (
    "a build container's init layer (.dockerenv, ...: in no layer tar of the image, yet under its layers here)"
)


def container_label(name: str, image: str = "") -> str:
    """The label of a container's writable layer: ``container web writable layer (image nginx:1)``."""
    return f"container {name} writable layer" + (f" (image {short_ref(image)})" if image else "")


HUB = "docker.io/library/"


def short_ref(name: str) -> str:
    """``docker.io/library/x:1`` -> ``x:1`` (how Docker shows a Docker Hub image's name)."""
    name = name.removeprefix(HUB)
    return name.removeprefix("docker.io/")


def is_init_layer(label: str) -> bool:
    """Whether a layer label is one of Docker's init layers (the engine's files, the least telling layer)."""
    return label.startswith((INIT_LAYER, BUILD_INIT_LAYER))


STEP_LIMIT = 4000  # a created_by longer than this (a huge heredoc) is cut in the label
_SIZE_RE = re.compile(r"^\d+(\.\d)? (B|kB|MB|GB)$")
_ID_RE = re.compile(r"^[a-z]+:[0-9A-Za-z._-]+$")


def layer_label(step: str | None, size: int | None, ids: list[tuple[str, str]]) -> str:
    """``created_by · size · diff:HEX chain:HEX ...`` for one image layer: the whole step on one line, full ids.

    :func:`parse_label` takes it apart again (the UI shows a short form in the layer list, all of it when
    a layer is looked at)."""
    parts = [one_line(step, STEP_LIMIT) if step else "(no history)"]
    if size is not None:
        parts.append(human_size(size))
    id_text = id_list(ids)
    if id_text:
        parts.append(id_text)
    return SEP.join(parts)


def id_list(ids: list[tuple[str, str]]) -> str:
    """``diff:HEX chain:HEX``: each id without its ``sha256:`` prefix; empty ids left out."""
    return " ".join(f"{k}:{v.split(':', 1)[-1]}" for k, v in ids if v)


@dataclass(frozen=True)
class LabelParts:
    """A layer label taken apart: what made the layer (or what it is), its size, its ids."""

    text: str
    size: str | None = None
    ids: tuple[tuple[str, str], ...] = ()

    @property
    def brief(self) -> str:
        """The step as a person reads it: ``RUN cmd`` for ``/bin/sh -c cmd``, ``CMD [...]`` for a ``#(nop)``."""
        return brief_step(self.text)


def parse_label(label: str) -> LabelParts:
    """The parts of a label made by :func:`layer_label` (or any other label: then it is all ``text``).

    Parsed from the right, so a step that itself holds `` · `` stays whole."""
    parts = label.split(SEP)
    ids: tuple[tuple[str, str], ...] = ()
    size = None
    if len(parts) > 1:
        tokens = parts[-1].split(" ")
        if all(_ID_RE.match(t) for t in tokens):
            ids = tuple((k, v) for k, _, v in (t.partition(":") for t in tokens))
            parts.pop()
    if len(parts) > 1 and _SIZE_RE.match(parts[-1]):
        size = parts.pop()
    return LabelParts(SEP.join(parts), size, ids)


_SHELL = re.compile(r"^(RUN )?(\|\d+ (\S+=\S* )*)?/bin/(ba)?sh -c ")


def brief_step(step: str) -> str:
    """``/bin/sh -c #(nop) CMD ["sh"]`` -> ``CMD ["sh"]``; ``/bin/sh -c cmd`` (also BuildKit's
    ``RUN /bin/sh -c cmd # buildkit``) -> ``RUN cmd``; anything else as it is."""
    text = step.removesuffix(" # buildkit")
    m = _SHELL.match(text)
    if m is None:
        return text
    rest = text[m.end() :]
    if rest.startswith("#(nop) "):
        return rest[len("#(nop) ") :].lstrip()
    return "RUN " + rest


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


def check_root(root: str, subdirs: tuple[str, ...], not_root: str, whose: str) -> None:
    """``root`` and ``root/SUB`` are dirs, else StackError: ``not_root``, or "permission denied reading
    ``whose``" naming the dir that cannot be searched (so a data root of mode 710 is not called "not a data root")."""
    for sub in ("", *subdirs):
        path = posixpath.join(root, sub) if sub else root
        try:
            st = os.stat(path)
        except PermissionError:
            raise StackError(blocked_dir(path), f"permission denied reading {whose}") from None
        except OSError:
            raise StackError(root, not_root) from None
        if not stat.S_ISDIR(st.st_mode):
            raise StackError(root, not_root)


def blocked_dir(path: str) -> str:
    """The first dir on the way to ``path`` that this user cannot search (``path`` itself if none is found)."""
    cur = "/"
    for comp in os.path.abspath(path).strip("/").split("/"):
        nxt = posixpath.join(cur, comp)
        try:
            os.stat(nxt)
        except PermissionError:
            return cur
        except OSError:
            return path
        cur = nxt
    return path


def no_such_tag(ref: str, repo: str, names: Iterable[str], limit: int = 12) -> StackError:
    """The error for a name given without a tag that has no ``:latest``: say so, and list the tags it has."""
    tags = sorted({n for n in names if _repo_of(n) == repo})
    meant = f"without a tag, {printable(repo)} means {printable(repo)}:latest"
    if not tags:
        return StackError(ref, f"no such image ({meant})")
    shown = ", ".join(printable(t) for t in tags[:limit])
    if len(tags) > limit:
        shown += f", … ({len(tags) - limit} more)"
    return StackError(ref, f"no such image: {meant}, which does not exist; the tags of {printable(repo)} are: {shown}")


def _repo_of(name: str) -> str | None:
    """``repo`` of ``repo:tag`` (None for a digest reference or a name without a tag)."""
    repo, sep, tag = name.rpartition(":")
    if not sep or "/" in tag or "@" in name:
        return None
    return repo


def with_labels(stack: Stack, upper: str | None, lowers: list[str]) -> Stack:
    """``stack`` with Layer.label set on the upper and on the lowers (top first)."""
    new_lowers = tuple(
        replace(layer, label=lowers[i]) if i < len(lowers) else layer for i, layer in enumerate(stack.lowers)
    )
    new_upper = replace(stack.upper, label=upper) if stack.upper is not None and upper else stack.upper
    return replace(stack, lowers=new_lowers, upper=new_upper)
