"""Overlay mount options as text: the ones the kernel knows, one parsed, and a stack's whole option string.

:func:`mount_params` is the one source of what a mount is given: the (key, value) pairs the kernel's mount API
takes, from which :func:`option_string` writes the ``-o`` string ``mount -t overlay`` would take (and
mount(2) is given, where the new API cannot be used).
"""

from __future__ import annotations

from collections.abc import Sequence

from ..model.stack import Stack, escape_layer_path

# name -> allowed values (None: a flag without a value)
KNOWN_OPTIONS: dict[str, tuple[str, ...] | None] = {
    "redirect_dir": ("on", "off", "follow", "nofollow"),
    "metacopy": ("on", "off"),
    "index": ("on", "off"),
    "userxattr": None,
    "volatile": None,
    "xino": ("on", "off", "auto"),
    "nfs_export": ("on", "off"),
    "uuid": ("on", "off", "auto", "null"),
}


def parse_option(text: str) -> tuple[str, str | None]:
    """``"metacopy=on"`` → ``("metacopy", "on")``; ``"volatile"`` → ``("volatile", None)``."""
    name, sep, value = text.partition("=")
    return name.strip(), (value.strip() if sep else None)


def mount_options(stack: Stack, backend: str, options: Sequence[str] = ()) -> tuple[str, ...]:
    """The options to mount ``stack`` with: the user's, plus ``userxattr`` where the markers need it.

    The userns backend always needs ``userxattr``; the kernel backend gets it
    when the stack's markers are ``user.overlay.*``. The same option is never
    listed twice.
    """
    out: list[str] = []
    for opt in [*options, *(o for o in stack.options if o == "userxattr")]:
        if opt not in out:
            out.append(opt)
    wants_user = backend == "userns" or (backend == "kernel" and stack.xattr_ns == "user")
    if wants_user and "userxattr" not in out:
        out.append("userxattr")
    return tuple(out)


def mount_params(stack: Stack, options: Sequence[str] = ()) -> list[tuple[str, str | None]]:
    """(key, value) pairs for the kernel, in order; values escaped like the legacy option string."""
    params: list[tuple[str, str | None]] = [("lowerdir", stack.lowerdir_option())]
    if stack.upper is not None:
        params.append(("upperdir", escape_layer_path(stack.upper.path)))
    if stack.work is not None:
        params.append(("workdir", escape_layer_path(stack.work)))
    params.extend(parse_option(o) for o in options)
    return params


def params_string(params: Sequence[tuple[str, str | None]]) -> str:
    """(key, value) pairs as one option string: ``key=value`` or ``key``, joined with commas."""
    return ",".join(k if v is None else f"{k}={v}" for k, v in params)


def option_string(stack: Stack, options: Sequence[str] = ()) -> str:
    """The ``-o`` string ``mount -t overlay`` would take (one source: :func:`mount_params`)."""
    return params_string(mount_params(stack, options))
