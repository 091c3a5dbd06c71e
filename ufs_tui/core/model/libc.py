"""The C library, loaded once and only when a system call Python lacks is needed (start-up time)."""

from __future__ import annotations

import ctypes
import ctypes.util

_LIBC: list[ctypes.CDLL | None] = []


def libc() -> ctypes.CDLL | None:
    """The process's C library with ``errno`` kept (``ctypes.get_errno``), or None where it cannot be loaded."""
    if not _LIBC:
        try:
            _LIBC.append(ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True))
        except OSError:
            _LIBC.append(None)
    return _LIBC[0]
