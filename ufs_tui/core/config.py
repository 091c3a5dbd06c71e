"""The user's config file: ``$XDG_CONFIG_HOME/ufs-tui/config.toml`` (``~/.config/ufs-tui/config.toml`` when
XDG_CONFIG_HOME is unset or not an absolute path). Read here, with no Textual; the UI checks the theme and the
keymap's binding ids against what it has (:meth:`Config.for_ui`).

Every key is optional::

    theme = "nord"                   # a Textual theme; --theme NAME on the command line wins

    [keymap]                         # a binding's id = its keys (Textual key names, comma-separated)
    "explorer.search" = "ctrl+f"     # the ids: README, Configuration
    "app.help" = "f2,f1"

    [source]                         # defaults of the stack options; a flag on the command line wins
    host_root = "/host"              # --host-root
    docker_root = "/srv/docker"      # --docker-root; containerd_root, podman_root the same
    xattr_ns = "user"                # --xattr-ns: "trusted" or "user"
    options = ["metacopy=off"]       # -o of tree, diff, commit, squash and the explorer (all of it, unless -o is given)

A missing file means the defaults. Anything else wrong is a problem: one line, ``PATH: problem`` (with the
line and column where the TOML itself is wrong), and only the bad part falls back to its default: all of the
file when it cannot be read or is not TOML, else the one key (an unknown key, a value of the wrong type or
out of range). Hostile files (not UTF-8, huge, a FIFO, nested without end, control characters) are problems
like any other, never an exception.
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field, replace

MAX_BYTES = 1 << 20  # a config file is a few lines: past 1 MiB it is not one
SOURCE_PATHS = ("host_root", "docker_root", "containerd_root", "podman_root")
SOURCE_KEYS = (*SOURCE_PATHS, "xattr_ns", "options")
XATTR_NAMESPACES = ("trusted", "user")
_KINDS = {str: "a string", bool: "a boolean", int: "an integer", float: "a float", list: "an array", dict: "a table"}
_BARE = re.compile(r"^[A-Za-z0-9_.-]{1,60}$")
_AT = re.compile(r"^(.*) \(at (line \d+, column \d+|end of document)\)$", re.S)


@dataclass(frozen=True)
class SourceDefaults:
    """The ``[source]`` table: the defaults of the stack options of the same names (None: not set)."""

    host_root: str | None = None
    docker_root: str | None = None
    containerd_root: str | None = None
    podman_root: str | None = None
    xattr_ns: str | None = None
    options: tuple[str, ...] = ()  # () : not set (the stack's own options only)


@dataclass(frozen=True)
class Config:
    """What the file says (only what was valid), and its problems: one line each, ``PATH: problem``."""

    path: str = ""
    theme: str | None = None
    keymap: Mapping[str, str] = field(default_factory=dict)
    source: SourceDefaults = field(default_factory=SourceDefaults)
    problems: tuple[str, ...] = ()

    def for_ui(self, themes: Collection[str], binding_ids: Collection[str]) -> tuple[Config, tuple[str, ...]]:
        """This config with an unknown theme and keymap ids unknown to the UI left out, and the problems that
        makes (the UI's own names: its themes, its bindings' ids)."""
        problems: list[str] = []
        theme = self.theme
        if theme is not None and theme not in themes:
            problems.append(f"{self.path}: theme: unknown theme {_q(theme)} (available: {', '.join(themes)}); "
                            "the default is used")  # fmt: skip
            theme = None
        keymap = {}
        for binding_id, keys in self.keymap.items():
            if binding_id in binding_ids:
                keymap[binding_id] = keys
            else:
                problems.append(f"{self.path}: [keymap] {_key(binding_id)}: no key has this id (the ids: README, "
                                "Configuration); ignored")  # fmt: skip
        return replace(self, theme=theme, keymap=keymap), tuple(problems)


class _Unreadable(Exception):
    """The whole file is left out: why, in words."""


def config_path(environ: Mapping[str, str] | None = None) -> str:
    """Where the config file is: in ``$XDG_CONFIG_HOME`` if that is an absolute path (the XDG spec ignores a
    relative one), else in ``~/.config``."""
    env = os.environ if environ is None else environ
    base = env.get("XDG_CONFIG_HOME", "")
    if not os.path.isabs(base):
        base = os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "ufs-tui", "config.toml")


def load_config(path: str | None = None) -> Config:
    """The config in ``path`` (default: :func:`config_path`); a missing file is the defaults."""
    path = config_path() if path is None else path
    try:
        data = _read(path)
        if data is None:
            return Config(path)
        doc = _parse(data)
    except _Unreadable as e:
        return Config(path, problems=(f"{path}: {e}; the whole file is ignored",))
    return _config(path, doc)


def _read(path: str) -> bytes | None:
    """The file's bytes, None if there is no file. Opened without blocking (a FIFO), only a regular file read."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except PermissionError as e:
        if not _seen(path):  # a dir on the way may not be searched (another user's HOME): no file to speak of
            return None
        raise _Unreadable(f"cannot open it: {_reason(e)}") from None
    except (OSError, ValueError) as e:
        raise _Unreadable(f"cannot open it: {_reason(e)}") from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise _Unreadable("not a regular file")
        data = os.read(fd, MAX_BYTES + 1)
        while len(data) <= MAX_BYTES and (more := os.read(fd, MAX_BYTES + 1 - len(data))):
            data += more
    except OSError as e:
        raise _Unreadable(f"cannot read it: {_reason(e)}") from None
    finally:
        os.close(fd)
    if len(data) > MAX_BYTES:
        raise _Unreadable(f"too big for a config file (over {MAX_BYTES // (1 << 20)} MiB)")
    return data


def _seen(path: str) -> bool:
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _reason(e: Exception) -> str:
    return e.strerror if isinstance(e, OSError) and e.strerror else str(e)


def _parse(data: bytes) -> dict[str, object]:
    import tomllib  # only where there is a file (the CLI's start-up, and the overlay2 path, load no TOML reader)

    try:
        text = data.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise _Unreadable(f"line {line}: not UTF-8 text (byte 0x{data[e.start]:02x})") from None
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = _AT.match(str(e))
        what, where = (m.group(1), m.group(2)) if m else (str(e), "")
        where = where.replace("end of document", f"line {text.count(chr(10)) + 1} (the end of the file)")
        problem = f"{where}: not valid TOML: {_lower_first(what)}" if where else f"not valid TOML: {what}"
        raise _Unreadable(problem) from None
    except RecursionError:
        raise _Unreadable("not valid TOML: nested too deeply") from None
    except ValueError as e:  # e.g. an integer of more digits than Python converts
        raise _Unreadable(f"not valid TOML: {e}") from None


def _lower_first(text: str) -> str:
    return text[:1].lower() + text[1:]


def _config(path: str, doc: dict[str, object]) -> Config:
    problems: list[str] = []

    def say(where: str, what: str) -> None:
        problems.append(f"{path}: {where}: {what}; ignored")

    theme: str | None = None
    keymap: dict[str, str] = {}
    source = SourceDefaults()
    for key, value in doc.items():
        if key == "theme":
            if not isinstance(value, str):
                say("theme", f"must be a theme's name (a string), not {_kind(value)}")
            elif not value:
                say("theme", "an empty name")
            else:
                theme = value
        elif key == "keymap":
            keymap = _keymap(value, say)
        elif key == "source":
            source = _source(value, say)
        else:
            say(_key(key), "unknown key (the keys: theme, [keymap], [source])")
    return Config(path, theme, keymap, source, tuple(problems))


def _keymap(value: object, say: Callable[[str, str], None]) -> dict[str, str]:
    if not isinstance(value, dict):
        say("keymap", f'must be a table ([keymap], then lines of "binding id" = "keys"), not {_kind(value)}')
        return {}
    keymap = {}
    for binding_id, keys in _dotted(value):
        where = f"[keymap] {_key(binding_id)}"
        if not isinstance(keys, str):
            say(where, f'must be the keys as a string (e.g. "ctrl+f" or "f2,ctrl+f"), not {_kind(keys)}')
        elif problem := _keys_problem(keys):
            say(where, problem)
        else:
            keymap[binding_id] = keys
    return keymap


def _dotted(table: dict[str, object], prefix: str = "") -> list[tuple[str, object]]:
    """The table's keys as dotted ids: ``explorer.search = ...`` unquoted (a table ``explorer`` in TOML) is
    ``"explorer.search" = ...``."""
    out: list[tuple[str, object]] = []
    for key, value in table.items():
        if isinstance(value, dict):
            out += _dotted(value, f"{prefix}{key}.")
        else:
            out.append((prefix + key, value))
    return out


def _keys_problem(keys: str) -> str | None:
    """What is wrong with a keys string (Textual key names, comma-separated), if anything."""
    names = [k.strip() for k in keys.split(",")]
    if not all(names):
        return f'{_q(keys)}: an empty key name (keys are comma-separated, e.g. "f2,ctrl+f")'
    bad = [k for k in names if len(k) > 40 or not k.isprintable() or any(c.isspace() for c in k)]
    if bad:
        return f"{_q(bad[0])} is not a key name (no spaces or control characters; e.g. ctrl+f, f2, space)"
    return None


def _source(value: object, say: Callable[[str, str], None]) -> SourceDefaults:
    if not isinstance(value, dict):
        say("source", f"must be a table ([source], then lines of option = value), not {_kind(value)}")
        return SourceDefaults()
    got: dict[str, str] = {}
    options: tuple[str, ...] = ()
    for key, v in value.items():
        where = f"[source] {_key(key)}"
        if key in SOURCE_PATHS:
            if not isinstance(v, str):
                say(where, f"must be a path (a string), not {_kind(v)}")
            elif not os.path.isabs(path := os.path.expanduser(v)) or "\0" in path:
                say(where, f"must be an absolute path, not {_q(v)}")
            else:
                got[key] = path
        elif key == "xattr_ns":
            if v in XATTR_NAMESPACES:
                got[key] = v
            else:
                say(where, f'must be "trusted" or "user", not {_q(v) if isinstance(v, str) else _kind(v)}')
        elif key == "options":
            if isinstance(v, list) and all(isinstance(o, str) for o in v):
                options = tuple(o for text in v for o in text.split(",") if o)
            else:
                say(where, f'must be an array of strings (e.g. ["metacopy=off"]), not {_kind(v)}')
        else:
            say(where, f"unknown key (the keys: {', '.join(SOURCE_KEYS)})")
    return SourceDefaults(**got, options=options)


def _kind(value: object) -> str:
    if isinstance(value, list) and not all(isinstance(o, str) for o in value):
        return "an array holding something other than strings"
    return _KINDS.get(type(value), "a date or time")


def _key(key: str) -> str:
    """A key as TOML writes it: bare when it can be, else quoted."""
    return key if _BARE.match(key) else _q(key)


def _q(text: str, limit: int = 60) -> str:
    """``text`` quoted, at most ``limit`` characters of it (a hostile file's values can be long; the caller
    makes the line printable)."""
    return repr(text if len(text) <= limit else text[:limit] + "…")
