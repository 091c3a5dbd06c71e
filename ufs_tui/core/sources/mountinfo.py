"""Overlay mounts as the kernel lists them in ``/proc/self/mountinfo``.

Escaping (OVERLAY-NOTES §6): every field is octal-escaped (``\\040`` space,
``\\011`` tab, ``\\012`` newline, ``\\134`` backslash, ``\\054`` a comma inside
an option value), so super options are split on raw commas *before* the octal
escapes are undone. After that, ``lowerdir=``, ``upperdir=`` and ``workdir=``
still carry the mount string's own backslash escapes (``\\:``, ``\\,``, ``\\\\``);
``lowerdir+=`` and ``datadir+=`` (new mount API, one layer each) do not.
Relative layer paths (Docker's ``l/...`` fallback for long option strings) are
resolved against the directory the engine mounted from, found by trying the
mount target's grandparent and the upper's.
"""

from __future__ import annotations

import os
import posixpath
import re
from collections.abc import Callable
from dataclasses import dataclass, field

from ..model.errors import StackError
from ..model.stack import Stack, parse_lowerdir
from .host import Host

MOUNTINFO = "/proc/self/mountinfo"


@dataclass(frozen=True)
class OverlayMount:
    """One overlay mount: where it is, its layers (lowers top first) and who owns it, if that can be told."""

    mount_id: int
    target: str
    lowers: tuple[str, ...]
    upper: str | None
    work: str | None
    data_layers: tuple[str, ...] = ()
    options: tuple[str, ...] = ()  # every super option that is not a layer (ro/rw, redirect_dir=on, ...)
    source: str = "overlay"
    engine: str | None = None  # "docker" | "podman" | "containerd" | None
    container: str | None = None  # container name (or id when it has no name)
    container_id: str | None = None
    engine_root: str | None = None  # the engine's data root, when known
    problems: tuple[str, ...] = field(default=())  # e.g. a relative layer path that could not be resolved

    @property
    def read_only(self) -> bool:
        return self.upper is None

    def stack(self, check: bool = True) -> Stack:
        """The stack of this mount (layers as the kernel was given them)."""
        if not self.lowers:
            raise StackError(self.target, "overlay mount without lower layers")
        from ..model.kernel_defaults import in_effect

        opts = in_effect(self.options)  # what changes the view, with this kernel's defaults
        return Stack.build(
            _lowerdir_string(self.lowers, self.data_layers),
            upper=self.upper,
            work=self.work,
            options=opts,
            check=check,
        )


def _lowerdir_string(lowers: tuple[str, ...], data: tuple[str, ...]) -> str:
    from ..model.stack import escape_layer_path

    return ":".join(escape_layer_path(p) for p in lowers) + "".join("::" + escape_layer_path(p) for p in data)


def unescape_octal(field_: str) -> str:
    """Undo mountinfo's ``\\NNN`` escapes (bytes, so non-UTF-8 names survive as surrogate escapes)."""
    if "\\" not in field_:
        return field_
    raw = os.fsencode(field_)
    out = re.sub(rb"\\([0-7]{3})", lambda m: bytes([int(m.group(1), 8) & 0xFF]), raw)
    return os.fsdecode(out)


def unescape_backslash(value: str) -> str:
    """Undo a mount string's ``\\X`` escapes (``upperdir=a\\,b`` is the path ``a,b``)."""
    out: list[str] = []
    i = 0
    while i < len(value):
        c = value[i]
        if c == "\\" and i + 1 < len(value):
            out.append(value[i + 1])
            i += 2
            continue
        out.append(c)
        i += 1
    return "".join(out)


def parse_line(line: str, host: Host | None = None) -> OverlayMount | None:
    """Parse one mountinfo line; None when it is not an overlay mount (or malformed)."""
    line = line.rstrip("\n")
    head, sep, tail = line.partition(" - ")
    if not sep:
        return None
    fields = head.split(" ")
    rest = tail.split(" ")
    if len(fields) < 5 or len(rest) < 3 or rest[0] != "overlay":
        return None
    try:
        mount_id = int(fields[0])
    except ValueError:
        return None
    target = unescape_octal(fields[4])
    source = unescape_octal(rest[1])
    return parse_options(rest[2], target, mount_id=mount_id, source=source, host=host)


def parse_options(
    super_opts: str, target: str, mount_id: int = 0, source: str = "overlay", host: Host | None = None
) -> OverlayMount:
    """Build an :class:`OverlayMount` from the raw (still octal-escaped) super options field. With a ``host``
    (``--host-root``), the paths, which name the host's own, are mapped to where they are here."""
    here = (host or Host()).path
    lowers: list[str] = []
    data: list[str] = []
    upper: str | None = None
    work: str | None = None
    others: list[str] = []
    problems: list[str] = []
    for raw in super_opts.split(","):
        if not raw:
            continue
        opt = unescape_octal(raw)
        key, eq, value = opt.partition("=")
        if not eq:
            others.append(opt)
            continue
        if key == "lowerdir":
            try:
                for path, data_only in parse_lowerdir(value):
                    (data if data_only else lowers).append(path)
            except StackError as e:
                problems.append(f"lowerdir: {e.problem}")
        elif key == "lowerdir+":
            lowers.append(value)
        elif key == "datadir+":
            data.append(value)
        elif key == "upperdir":
            upper = unescape_backslash(value)
        elif key == "workdir":
            work = unescape_backslash(value)
        else:
            others.append(opt)
    paths = [*lowers, *data, *([upper] if upper else []), *([work] if work else [])]
    if any(not p.startswith("/") for p in paths):
        base = _relative_base(target, paths, here)
        if base is None:
            problems.append("relative layer paths whose base directory could not be found")
        else:
            lowers = [_abs(base, p) for p in lowers]
            data = [_abs(base, p) for p in data]
            upper = _abs(base, upper) if upper else None
            work = _abs(base, work) if work else None
    return OverlayMount(
        mount_id=mount_id,
        target=here(target),
        lowers=tuple(here(p) for p in lowers),
        upper=here(upper) if upper else None,
        work=here(work) if work else None,
        data_layers=tuple(here(p) for p in data),
        options=tuple(others),
        source=source,
        problems=tuple(problems),
    )


def _abs(base: str, path: str) -> str:
    return path if path.startswith("/") else posixpath.normpath(posixpath.join(base, path))


def _relative_base(target: str, paths: list[str], here: Callable[[str], str]) -> str | None:
    """The dir relative layer paths were given from: the first candidate under which all of them exist."""
    rel = [p for p in paths if not p.startswith("/")]
    candidates: list[str] = []
    # Docker overlay2 and containers-storage mount <home>/<id>/merged from <home>.
    candidates.append(posixpath.dirname(posixpath.dirname(target.rstrip("/"))))
    for p in paths:
        if p.startswith("/"):  # <home>/<id>/diff given absolute, the rest relative
            candidates.append(posixpath.dirname(posixpath.dirname(p.rstrip("/"))))
    candidates.append(posixpath.dirname(target.rstrip("/")))
    for base in dict.fromkeys(candidates):
        if base and all(os.path.isdir(here(posixpath.join(base, p))) for p in rel):
            return base
    return None


def read_mountinfo(path: str = MOUNTINFO, host: Host | None = None) -> list[OverlayMount]:
    """Every overlay mount in a mountinfo file, in mount order, without owner information (paths mapped
    under ``host``'s root when it is not this machine's)."""
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            text = f.read()
    except OSError as e:
        raise StackError(path, f"cannot read mount table: {e.strerror}") from None
    out = []
    for line in text.splitlines():
        m = parse_line(line, host)
        if m is not None:
            out.append(m)
    return out


def find_mount(target: str, mounts: list[OverlayMount]) -> OverlayMount | None:
    """The topmost overlay mounted exactly at ``target`` (symlinks in ``target`` resolved)."""
    want = os.path.realpath(target)
    found = None
    for m in mounts:
        if m.target == want or m.target == target:
            found = m  # a later line is mounted on top of an earlier one
    return found
