"""Layers and stacks: which directories make up an overlay, in kernel order.

A :class:`Stack` is what ``mount -t overlay`` is given: lower layers (the first
listed is the *topmost* lower), an optional upper, an optional work dir, and
options. Nothing here reads file contents or writes anything.
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, Protocol

from .errors import StackError

if TYPE_CHECKING:
    from .markers import Node

Role = Literal["upper", "lower", "data"]
XattrNamespace = Literal["trusted", "user"]


class LayerFS(Protocol):
    """A layer that is not a directory on disk (e.g. a tar member of an image archive).

    Paths are full "real" paths: the layer's ``path`` followed by the merged-relative path.
    """

    def probe(self, path: str, ns: str = "trusted", hint_kind: str | None = None) -> Node | None:
        """Like :func:`markers.probe`: what the layer holds at ``path`` (lstat-like), None if nothing."""
        ...

    def listdir(self, path: str) -> dict[str, str | None] | None:
        """Names in dir ``path`` with a kind hint each; None if it is not a dir. Raises OSError if unreadable."""
        ...

    def lexists(self, path: str) -> bool: ...

    def read(self, path: str, n: int) -> bytes:
        """Up to ``n`` bytes of the regular file at ``path``."""
        ...

    def chunks(self, path: str) -> Iterator[bytes]:
        """All of the regular file at ``path``, as a stream of chunks (never held whole). Raises OSError."""
        ...


def within(path: str, root: str) -> bool:
    """Whether ``path`` is ``root`` or under it (``/a/bc`` is not under ``/a/b``; everything is under ``/``)."""
    return path.startswith(root) and (len(path) == len(root) or path[len(root)] == "/" or root[-1:] == "/")


def fs_holding(real: str, roots: Iterable[tuple[str, LayerFS]]) -> LayerFS | None:
    """The LayerFS whose layer root holds ``real`` (an archive's layer tar), None for a path on disk."""
    return next((fs for root, fs in roots if within(real, root)), None)


def fs_digest(fs: LayerFS, path: str) -> bytes:
    """The SHA-256 of the regular file at ``path`` of ``fs``, read as a stream. Raises OSError."""
    h = hashlib.sha256()
    for chunk in fs.chunks(path):
        h.update(chunk)
    return h.digest()


_EMPTY_LAYER = (
    "bad lowerdir: empty layer path "
    "(fix: separate layers with ':' and data-only layers with '::'; escape a ':' in a path with a backslash)"
)

# What Layer.name gives: ``upper``, ``lower:N``, ``data:N`` (N without leading zeros); as SOURCE@LAYER takes it.
LAYER_NAME = re.compile(r"upper|(?:lower|data):(?:0|[1-9][0-9]*)")


@dataclass(frozen=True)
class Layer:
    """One layer directory of a stack.

    ``index`` is the kernel's order among lowers (0 = topmost lower); the upper
    has index -1. Data-only lowers (after ``::``) have role ``data`` and are
    numbered after the normal lowers.
    """

    path: str
    role: Role
    index: int
    label: str = ""
    fs: LayerFS | None = field(default=None, compare=False, repr=False)  # None: a directory on disk

    @property
    def name(self) -> str:
        """The name used in CLI and JSON output: ``upper``, ``lower:N`` or ``data:N``."""
        if self.role == "upper":
            return "upper"
        return f"{self.role}:{self.index}"

    def real(self, rel: str) -> str:
        """The real path of merged-relative path ``rel`` ("/a/b") inside this layer."""
        if rel in ("", "/"):
            return self.path
        return self.path.rstrip("/") + rel


@dataclass(frozen=True)
class Stack:
    lowers: tuple[Layer, ...]
    upper: Layer | None = None
    work: str | None = None
    data_layers: tuple[Layer, ...] = ()
    xattr_ns: XattrNamespace = "trusted"
    options: tuple[str, ...] = field(default=())

    @property
    def layers(self) -> tuple[Layer, ...]:
        """Every layer that takes part in normal lookup, top-down (upper first)."""
        return ((self.upper,) if self.upper else ()) + self.lowers

    @property
    def all_layers(self) -> tuple[Layer, ...]:
        return self.layers + self.data_layers

    def read_with(self, options: Sequence[str]) -> Stack:
        """This stack read with ``options`` too (mount options given with it): its own first, none twice."""
        return replace(self, options=tuple(dict.fromkeys([*self.options, *options]))) if options else self

    def below(self, layer: Layer) -> Stack:
        """The read-only stack of the lowers under ``layer``: what it sits on."""
        if layer.role == "upper":
            lowers = self.lowers
        elif layer.role == "lower":
            lowers = self.lowers[layer.index + 1 :]
        else:
            lowers = ()
        return replace(self, lowers=lowers, upper=None, work=None)

    def without_upper(self) -> Stack:
        return replace(self, upper=None, work=None)

    def changer(self, name: str | None = None) -> Layer:
        """The layer whose own changes "changes only" and ``diff`` show: ``name``, else the upper, else the
        topmost lower (an image's top layer). Raises StackError for a name the stack does not have."""
        if name is None:
            return self.layers[0]
        try:
            layer = self.layer_by_name(name)
        except KeyError:
            names = ", ".join(la.name for la in self.layers)
            raise StackError(name, f"no such layer (this stack has {names})") from None
        if layer.role == "data":
            raise StackError(name, "a data-only layer changes nothing by itself (it holds metacopy files' data)")
        return layer

    def focused(self, layer: Layer) -> tuple[Stack, dict[str, str]]:
        """``layer`` as the upper over the layers under it: what comparing that stack with its lowers shows is
        what ``layer`` changed. Also the names its layers have in this stack (by their names there)."""
        if layer.role == "upper":
            return self, {}
        under = self.lowers[layer.index + 1 :]
        sub = self.relayered(under, layer)
        old = (*under, *self.data_layers)
        return sub, {"upper": layer.name} | {
            new.name: was.name for new, was in zip((*sub.lowers, *sub.data_layers), old, strict=True)
        }

    def read_only(self) -> Stack:
        """The same merged view with nothing writable: the upper becomes the topmost lower (lower:0), the
        lowers move down one, labels kept; no work dir. A mount of it writes nothing."""
        return self.relayered((self.upper, *self.lowers) if self.upper else self.lowers)

    def relayered(
        self,
        lowers: Sequence[Layer | str],
        upper: Layer | str | None = None,
        work: str | None = None,
        data: Sequence[Layer | str] | None = None,
    ) -> Stack:
        """This stack with other layers, numbered the kernel's way: the one place layers get their numbers.

        ``lowers`` (topmost first) become lower:0, lower:1, ...; the data layers (``data``, else this stack's)
        are numbered after them; ``upper`` becomes the upper, ``work`` the work dir; the xattr namespace and the
        options are kept. A layer given as a path is a plain dir; a :class:`Layer` keeps its path, label and
        ``fs`` whatever its role and number were."""
        normal = tuple(_numbered(la, "lower", i) for i, la in enumerate(lowers))
        kept = self.data_layers if data is None else data
        data_layers = tuple(_numbered(la, "data", len(normal) + i) for i, la in enumerate(kept))
        top = _numbered(upper, "upper", -1) if upper else None
        return replace(self, lowers=normal, upper=top, work=work, data_layers=data_layers)

    def layer_by_name(self, name: str) -> Layer:
        for layer in self.all_layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def lowerdir_option(self) -> str:
        """The ``lowerdir=`` value that mounts this stack (escaped, data layers after ``::``)."""
        normal = ":".join(escape_layer_path(layer.path) for layer in self.lowers)
        data = "".join("::" + escape_layer_path(layer.path) for layer in self.data_layers)
        return normal + data

    @classmethod
    def build(
        cls,
        lower: str | list[str],
        upper: str | None = None,
        work: str | None = None,
        xattr_ns: XattrNamespace | None = None,
        options: tuple[str, ...] = (),
        check: bool = True,
    ) -> Stack:
        """Build a stack from a kernel ``lowerdir`` string (or a list of paths).

        Checks every layer is an existing, readable directory when ``check``.
        ``xattr_ns`` None means detect it (see :func:`detect_xattr_ns`).
        """
        parsed = parse_lowerdir(lower) if isinstance(lower, str) else [(p, False) for p in lower]
        if not parsed and upper is None:
            raise StackError("--lower", "a stack needs at least one lower layer (fix: give --lower DIR[:DIR...])")
        normal = [p for p, data_only in parsed if not data_only]
        data = [p for p, data_only in parsed if data_only]
        if not normal and data:
            raise StackError(
                "--lower",
                "data-only layers (after '::') need at least one normal lower before them "
                "(fix: put a normal layer first: --lower DIR::DATA)",
            )
        paths = normal + data + ([upper] if upper else [])
        if check:
            for p in paths:
                check_layer_dir(p)
            if work is not None:
                check_layer_dir(work, what="work dir")
        stack = cls((), options=tuple(options)).relayered(
            [_root(p) for p in normal],
            _root(upper) if upper else None,
            _root(work) if work else None,
            [_root(p) for p in data],
        )
        if "userxattr" in options:
            xattr_ns = "user"
        ns = xattr_ns or detect_xattr_ns(stack)
        return replace(stack, xattr_ns=ns)


def _numbered(layer: Layer | str, role: Role, index: int) -> Layer:
    if isinstance(layer, str):
        return Layer(layer, role, index)
    return replace(layer, role=role, index=index)


def _root(path: str) -> str:
    """Layer roots are resolved like the kernel does: symlinks in the path are followed."""
    return os.path.realpath(path)


def check_layer_dir(path: str, what: str = "layer") -> None:
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise StackError(path, f"{what} does not exist (fix: create it, or correct the path)") from None
    except PermissionError:
        raise StackError(
            path, f"{what} is not accessible (permission denied) (fix: run as a user who may enter it, or chmod it)"
        ) from None
    except OSError as e:
        raise StackError(
            path, f"{what} cannot be read: {e.strerror} (fix: check the path and its permissions)"
        ) from None
    import stat as _stat

    if not _stat.S_ISDIR(st.st_mode):
        raise StackError(path, f"{what} is not a directory (fix: give a directory, not a file)")
    if not os.access(path, os.R_OK | os.X_OK):
        raise StackError(
            path, f"{what} is not readable (permission denied) (fix: run as a user who may read it, or chmod it)"
        )


def parse_lowerdir(spec: str) -> list[tuple[str, bool]]:
    """Parse a kernel ``lowerdir=`` string into ``[(path, data_only), ...]``.

    Layers are separated by ``:``; ``\\`` escapes the next character (so ``\\:``
    is a colon in a path). ``::`` starts data-only layers; every layer after the
    first ``::`` must also be data-only (joined by ``::``). The kernel rejects
    ``:::``, a trailing ``:`` and empty paths; so does this.
    """
    if spec == "":
        raise StackError("--lower", "empty lowerdir (fix: give --lower DIR[:DIR...])")
    parts: list[tuple[str, int]] = []  # (path, number of colons before it)
    cur: list[str] = []
    colons_before = 0
    i = 0
    n = len(spec)
    while i < n:
        c = spec[i]
        if c == "\\" and i + 1 < n:
            cur.append(spec[i + 1])
            i += 2
            continue
        if c == ":":
            run = 0
            while i < n and spec[i] == ":":
                run += 1
                i += 1
            if run > 2:
                raise StackError(
                    spec,
                    "bad lowerdir: only single ':' or double '::' separators are allowed "
                    "(fix: separate layers with ':' and data-only layers with '::'; escape a ':' in a path with a "
                    "backslash)",
                )
            if i >= n:
                raise StackError(
                    spec,
                    "bad lowerdir: trailing ':' (fix: remove it; escape a ':' that is part of a path with a backslash)",
                )
            if not cur:
                raise StackError(spec, _EMPTY_LAYER)
            parts.append(("".join(cur), colons_before))
            cur = []
            colons_before = run
            continue
        cur.append(c)
        i += 1
    if not cur:
        raise StackError(spec, _EMPTY_LAYER)
    parts.append(("".join(cur), colons_before))
    out: list[tuple[str, bool]] = []
    in_data = False
    for path, sep in parts:
        if sep == 2:
            in_data = True
        elif in_data:
            raise StackError(
                spec,
                "bad lowerdir: a normal layer cannot follow a data-only layer ('::') "
                "(fix: list the normal layers first, then the data-only ones after '::')",
            )
        out.append((path, in_data))
    return out


def escape_layer_path(path: str) -> str:
    """Escape a path for use in ``lowerdir=``/``upperdir=`` (``\\``, ``:`` and ``,``)."""
    return path.replace("\\", "\\\\").replace(":", "\\:").replace(",", "\\,")


def detect_xattr_ns(stack: Stack) -> XattrNamespace:
    """Guess whether the stack's markers use ``trusted.overlay.*`` or ``user.overlay.*``.

    Looks at the xattrs of the layer roots (the kernel puts ``overlay.uuid`` on
    the upper root; copy-ups mark parents ``impure``/``origin``). With no hint,
    root gets ``trusted`` and other users ``user`` (they cannot read
    ``trusted.*`` at all, so it is the only form they can have made).
    """
    seen: set[str] = set()
    for layer in stack.all_layers:
        try:
            names = os.listxattr(layer.path, follow_symlinks=False)
        except OSError:
            continue
        for xname in names:
            if xname.startswith("user.overlay."):
                seen.add("user")
            elif xname.startswith("trusted.overlay."):
                seen.add("trusted")
    if "trusted" in seen:
        return "trusted"
    if "user" in seen:
        return "user"
    return "trusted" if os.geteuid() == 0 else "user"
