"""Making names safe to show: no control characters, no terminal escapes, no markup surprises.

Names are ``str`` decoded with ``os.fsdecode`` (invalid UTF-8 bytes become lone
surrogates, which round-trip with ``os.fsencode``). They become printable only
here, at the edge where they are shown.
"""

from __future__ import annotations

import base64
import os

_ESCAPES = {"\n": "\\n", "\t": "\\t", "\r": "\\r", "\\": "\\\\"}


def printable(name: str) -> str:
    """A one-line, printable form of ``name``: control chars and undecodable bytes as escapes.

    ``\\n`` ``\\t`` ``\\r`` ``\\\\``, other C0 controls and DEL as ``\\xNN``, invalid UTF-8
    bytes as ``\\xNN`` too, C1 controls and other unprintable characters as ``\\uNNNN`` (so the
    byte 0x85 and the character U+0085 stay distinct). Printable text is unchanged.
    """
    if name.isprintable() and "\\" not in name:
        return name
    out = []
    for ch in name:
        code = ord(ch)
        if ch in _ESCAPES:
            out.append(_ESCAPES[ch])
        elif 0xDC80 <= code <= 0xDCFF:  # surrogateescape'd byte
            out.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x20 or code == 0x7F:
            out.append(f"\\x{code:02x}")
        elif not ch.isprintable():
            out.append(f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)


def is_valid_utf8(name: str) -> bool:
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def b64(name: str) -> str:
    """The raw bytes of a name (or path), base64-encoded: for names that are not UTF-8."""
    return base64.b64encode(os.fsencode(name)).decode("ascii")


def from_b64(text: str) -> str:
    return os.fsdecode(base64.b64decode(text))


def human_size(n: int) -> str:
    """A size in decimal units, as Docker writes them: ``18 B``, ``2.0 MB`` (the one style everywhere)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 lower``, ``2 lowers``, ``0 lowers`` (``words``: a plural that is not ``word + "s"``)."""
    return f"{n} {word if n == 1 else words or word + 's'}"
