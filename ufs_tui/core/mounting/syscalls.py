"""The kernel's mount calls: an overlay mounted with the new mount API (fsopen, fsconfig, fsmount, move_mount),
or with mount(2) where that cannot be used, and unmounted with umount2, through ``ctypes``.

A failed mount raises :class:`KernelMountError` with what the kernel said about it: the mount API's own log
and the overlay's new lines in ``/dev/kmsg``. Nothing here explains them (:mod:`.preflight` does).
"""

from __future__ import annotations

import ctypes
import errno
import os
from collections.abc import Sequence
from typing import Any

from ..model.libc import libc as load_libc
from .options import params_string

_SYS_MOVE_MOUNT, _SYS_FSOPEN, _SYS_FSCONFIG, _SYS_FSMOUNT = 429, 430, 431, 432
_FSCONFIG_SET_FLAG, _FSCONFIG_SET_STRING, _FSCONFIG_CMD_CREATE = 0, 1, 6
_FSOPEN_CLOEXEC, _FSMOUNT_CLOEXEC, _MOVE_MOUNT_F_EMPTY_PATH = 1, 1, 4
_AT_FDCWD = -100
MNT_DETACH = 2


class KernelMountError(OSError):
    """A failed mount, with what the kernel said (the mount API's log and new kernel-log lines)."""

    def __init__(self, err: int, messages: list[str]) -> None:
        super().__init__(err, os.strerror(err))
        self.messages = messages


def _syscall(nr: int, *args: Any) -> int:
    libc = load_libc()
    if libc is None:
        raise OSError(errno.ENOSYS, "no libc")
    r = int(libc.syscall(ctypes.c_long(nr), *args))
    if r < 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
    return r


def _fs_log(fd: int) -> list[str]:
    out: list[str] = []
    for _ in range(64):
        try:
            data = os.read(fd, 4096)
        except OSError:
            break
        if not data:
            break
        out.append(data.decode("utf-8", "replace").strip())
    return out


class _KernelLogTail:
    """New overlay lines in /dev/kmsg since creation (empty when it cannot be read, e.g. unprivileged)."""

    def __init__(self) -> None:
        self.fd: int | None
        try:
            self.fd = os.open("/dev/kmsg", os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            os.lseek(self.fd, 0, os.SEEK_END)
        except OSError:
            self.fd = None

    def lines(self) -> list[str]:
        out: list[str] = []
        if self.fd is None:
            return out
        for _ in range(1000):
            try:
                rec = os.read(self.fd, 8192)
            except BlockingIOError:
                break
            except OSError as e:
                if e.errno == errno.EPIPE:
                    continue
                break
            if not rec:
                break
            text = rec.decode("utf-8", "replace").split(";", 1)[-1].split("\n", 1)[0]
            if "overlay" in text:
                out.append(text.strip())
        return out

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


FSCONFIG_VALUE_MAX = 255  # fsconfig copies at most 256 bytes of a string value, its NUL included (else EINVAL)


def kernel_mount(params: Sequence[tuple[str, str | None]], target: str) -> list[str]:
    """Mount an overlay at ``target`` with the new mount API; raise :class:`KernelMountError` with the reason.

    Returns what the kernel logged about a mount it made anyway (e.g. an upper already in use by another
    mount: only a warning without index=on)."""
    tail = _KernelLogTail()
    try:
        if any(v is not None and len(os.fsencode(v)) > FSCONFIG_VALUE_MAX for _, v in params):
            return _legacy_mount(params, target, tail)  # mount(2) takes a page of options
        try:
            fsfd = _syscall(_SYS_FSOPEN, ctypes.c_char_p(b"overlay"), ctypes.c_uint(_FSOPEN_CLOEXEC))
        except OSError as e:
            if e.errno == errno.ENOSYS:
                return _legacy_mount(params, target, tail)
            raise KernelMountError(e.errno or errno.EIO, tail.lines()) from None
        try:
            try:
                for key, value in params:
                    if value is None:
                        _syscall(
                            _SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_SET_FLAG),
                            ctypes.c_char_p(key.encode()), ctypes.c_void_p(None), ctypes.c_int(0),
                        )  # fmt: skip
                    else:
                        _syscall(
                            _SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_SET_STRING),
                            ctypes.c_char_p(key.encode()), ctypes.c_char_p(os.fsencode(value)), ctypes.c_int(0),
                        )  # fmt: skip
                _syscall(
                    _SYS_FSCONFIG, ctypes.c_int(fsfd), ctypes.c_uint(_FSCONFIG_CMD_CREATE),
                    ctypes.c_void_p(None), ctypes.c_void_p(None), ctypes.c_int(0),
                )  # fmt: skip
                mfd = _syscall(_SYS_FSMOUNT, ctypes.c_int(fsfd), ctypes.c_uint(_FSMOUNT_CLOEXEC), ctypes.c_uint(0))
            except OSError as e:
                raise KernelMountError(e.errno or errno.EIO, _fs_log(fsfd) + tail.lines()) from None
            said = _fs_log(fsfd)
            try:
                _syscall(
                    _SYS_MOVE_MOUNT, ctypes.c_int(mfd), ctypes.c_char_p(b""), ctypes.c_int(_AT_FDCWD),
                    ctypes.c_char_p(os.fsencode(target)), ctypes.c_uint(_MOVE_MOUNT_F_EMPTY_PATH),
                )  # fmt: skip
            except OSError as e:
                raise KernelMountError(e.errno or errno.EIO, tail.lines()) from None
            finally:
                os.close(mfd)
            return [m for m in dict.fromkeys(said + tail.lines()) if m]
        finally:
            os.close(fsfd)
    finally:
        tail.close()


def _legacy_mount(params: Sequence[tuple[str, str | None]], target: str, tail: _KernelLogTail) -> list[str]:
    libc = load_libc()
    assert libc is not None
    data = params_string(params)
    r = libc.mount(b"overlay", os.fsencode(target), b"overlay", ctypes.c_ulong(0), os.fsencode(data))
    if r != 0:
        raise KernelMountError(ctypes.get_errno(), tail.lines())
    return tail.lines()


def kernel_umount(target: str, lazy: bool = False) -> None:
    """umount2(2) ``target``; ``lazy``: detach it even while it is busy (MNT_DETACH)."""
    libc = load_libc()
    if libc is None:
        raise OSError(errno.ENOSYS, "no libc")
    if libc.umount2(os.fsencode(target), ctypes.c_int(MNT_DETACH if lazy else 0)) != 0:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e), target)
