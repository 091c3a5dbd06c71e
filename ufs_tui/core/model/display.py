"""Making names safe to show: no control characters, no terminal escapes, no markup surprises.

Names are ``str`` decoded with ``os.fsdecode`` (invalid UTF-8 bytes become lone
surrogates, which round-trip with ``os.fsencode``). They become printable only
here, at the edge where they are shown.
"""

from __future__ import annotations

import base64
import os
import re
from decimal import Decimal

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


def row_size(n: int) -> str:
    """A size in at most 6 columns, in human_size's units: ``18 B``, ``2.3 MB``, ``23 MB``, ``230 MB`` (a row's)."""
    value = float(n)
    for unit in ("B", "kB", "MB", "GB", "TB"):
        if value < 999.5 or unit == "TB":
            if unit == "B":
                return f"{n} B"
            return f"{value:.1f} {unit}" if value < 9.95 else f"{value:.0f} {unit}"
        value /= 1000
    return f"{n} B"  # pragma: no cover


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9, "t": 10**12,
          "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?|\.\d+)\s*([a-zA-Z]*)\s*")


def parse_size(text: str) -> int:
    """Bytes from ``10M``, ``1.5 GB``, ``512k``, ``4KiB``, ``100`` (units as human_size writes them, decimal;
    ``KiB``/``MiB``/``GiB`` binary; any case). Raises ValueError with the reason in words."""
    m = _SIZE.fullmatch(text)
    if m is None:
        raise ValueError(f"not a size: {text!r} (e.g. 10M, 1.5GB, 512k, 4KiB, 100)")
    unit = m.group(2).lower()
    if unit not in _UNITS:
        raise ValueError(f"unknown unit {m.group(2)!r} (B, k, M, G, T, or KiB, MiB, GiB, TiB)")
    return int(Decimal(m.group(1)) * _UNITS[unit])  # (exact: no float overflow for a long number)


def plural(n: int, word: str, words: str | None = None) -> str:
    """``1 lower``, ``2 lowers``, ``0 lowers`` (``words``: a plural that is not ``word + "s"``)."""
    return f"{n} {word if n == 1 else words or word + 's'}"
