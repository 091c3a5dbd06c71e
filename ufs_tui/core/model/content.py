"""Reading what a file in a layer holds, safely: for the details view and its diff.

Only regular files are ever opened (with ``O_NOFOLLOW | O_NONBLOCK``, and checked
again after opening), and never more than a cap. FIFOs, sockets and devices are
described, not opened. Text is made safe to show: control characters other
than newline and tab become ``\\xNN`` escapes.
"""

from __future__ import annotations

import difflib
import grp
import os
import pwd
import stat
from dataclasses import dataclass
from typing import Literal

from .display import printable

DEFAULT_CAP = 256 * 1024

ContentKind = Literal["text", "binary", "none", "error"]


@dataclass(frozen=True)
class Content:
    kind: ContentKind  # none: not a regular file (never opened); error: could not read
    data: bytes = b""
    size: int = 0  # the file's full size
    truncated: bool = False  # only the first ``cap`` bytes were read
    message: str = ""

    @property
    def text(self) -> str:
        """The data as safe text (only meaningful for kind "text")."""
        return safe_text(self.data.decode("utf-8", errors="surrogateescape"))


def read_content(path: str, cap: int = DEFAULT_CAP) -> Content:
    """Up to ``cap`` bytes of the regular file at ``path``; anything else is described, never opened."""
    try:
        st = os.lstat(path)
    except OSError as e:
        return Content("error", message=e.strerror or str(e))
    if not stat.S_ISREG(st.st_mode):
        return Content("none", size=st.st_size, message=f"{_kind_words(st.st_mode)}: not opened")
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except OSError as e:
        return Content("error", size=st.st_size, message=e.strerror or str(e))
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode):  # swapped between lstat and open
            return Content("none", size=fst.st_size, message=f"{_kind_words(fst.st_mode)}: not opened")
        chunks: list[bytes] = []
        left = cap + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    except OSError as e:
        return Content("error", size=st.st_size, message=e.strerror or str(e))
    finally:
        os.close(fd)
    return content_of(data, fst.st_size, cap)


def content_of(data: bytes, size: int, cap: int = DEFAULT_CAP) -> Content:
    """The Content of a regular file of ``size`` bytes whose first ``cap + 1`` (or fewer) bytes are ``data``."""
    truncated = len(data) > cap
    data = data[:cap]
    kind: ContentKind = "binary" if looks_binary(data, truncated) else "text"
    return Content(kind, data, size, truncated)


def _kind_words(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISLNK(mode):
        return "a symlink"
    return "not a regular file"


def looks_binary(data: bytes, truncated: bool = False) -> bool:
    """NUL bytes, or not UTF-8 (a multi-byte char cut by the cap is allowed), or mostly control bytes."""
    if b"\0" in data:
        return True
    try:
        data.decode("utf-8")
    except UnicodeDecodeError as e:
        if not (truncated and e.start >= len(data) - 3):
            return True
    controls = sum(1 for b in data[:4096] if b < 0x20 and b not in (9, 10, 12, 13))
    return controls > max(8, len(data[:4096]) // 10)


_KEEP = {"\n", "\t"}


def safe_text(text: str) -> str:
    """Control characters (except newline and tab) and undecodable bytes as ``\\xNN``; CRLF kept as a line end."""
    if text.isprintable() or all(ch.isprintable() or ch in _KEEP for ch in text):
        return text
    out = []
    for ch in text:
        code = ord(ch)
        if ch in _KEEP or ch.isprintable():
            out.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x100:
            out.append(f"\\x{code:02x}")
        else:
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
    return "".join(out)


def hexdump(data: bytes, width: int = 16) -> str:
    """``offset  hex bytes  |ascii|`` lines, like ``hexdump -C``."""
    lines = []
    for off in range(0, len(data), width):
        chunk = data[off : off + width]
        hexpart = " ".join(f"{b:02x}" for b in chunk)
        text = "".join(chr(b) if 0x20 <= b < 0x7F else "." for b in chunk)
        lines.append(f"{off:08x}  {hexpart:<{width * 3 - 1}}  |{text}|")
    return "\n".join(lines)


def unified_diff(a: Content, b: Content, old_label: str, new_label: str, cap: int = DEFAULT_CAP) -> tuple[str, str]:
    """(diff text, note) of two files' contents (each read with ``cap``); the diff is empty with a note when it
    cannot be made.

    The labels (paths, which may hold any byte) are made printable here: the diff is text to show.
    """
    old_label, new_label = printable(old_label), printable(new_label)
    for c, label in ((a, old_label), (b, new_label)):
        if c.kind in ("none", "error"):
            return "", f"no diff: {label}: {c.message}"
        if c.kind == "binary":
            if a.data == b.data and a.size == b.size:
                return "", "binary files, same content"
            return "", "binary files differ"
    note = f"only the first {cap} of each file compared" if a.truncated or b.truncated else ""
    lines = difflib.unified_diff(
        a.text.splitlines(keepends=True), b.text.splitlines(keepends=True), old_label, new_label, n=3
    )
    text = "".join(line if line.endswith("\n") else line + "\n" for line in lines)
    if not text:
        return "", "same content" + (f" ({note})" if note else "")
    return text, note


def owner(uid: int, gid: int) -> str:
    """``user:group`` names (numbers when a name is unknown)."""
    try:
        user = pwd.getpwuid(uid).pw_name
    except KeyError:
        user = str(uid)
    try:
        group = grp.getgrgid(gid).gr_name
    except KeyError:
        group = str(gid)
    return f"{user}:{group}"


def is_dir(path: str) -> bool:
    """Whether a layer root (or mount point) exists as a directory now."""
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:
        return False
