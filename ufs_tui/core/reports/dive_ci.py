"""dive's ``.dive-ci`` file, read as dive reads it: YAML, a ``rules:`` mapping, dive's camelCase rule names.

::

    rules:
      lowestEfficiency: 0.95          # a ratio 0-1
      highestWastedBytes: 20MB        # go-humanize sizes: 20MB = 20,000,000 bytes, 20MiB = 20,971,520
      highestUserWastedPercent: 0.20  # a ratio 0-1; "disabled" (or off, false, "") turns a rule off

dive (``cmd/dive/cli/internal/options/ci.go``) decodes the file with Go's yaml.v3 into string fields, so:

* a value is its text as written (``0.90`` stays ``0.90``; quotes removed, escapes applied);
* a null value (empty, ``~``, ``null``) leaves the default; a rule missing from the file keeps its default;
* other keys (``plugins:``, snake-case names) are ignored; a key given twice in the same mapping is an error;
* only the first YAML document is read.

This reader knows the YAML a ``.dive-ci`` is written in: block mappings and sequences, plain and quoted
scalars, one-line flow collections, comments, ``---``. What it does not know (block scalars, anchors, tags
other than ``!!str``, a value over several lines) is an error naming the line, never a guess.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field

from ..model.errors import UfsError

RULE_KEYS = ("lowestEfficiency", "highestWastedBytes", "highestUserWastedPercent")
DEFAULT_PATH = ".dive-ci"
_MAX_BYTES = 1 << 20


class DiveCiError(UfsError):
    """A ``.dive-ci`` that cannot be read, or that dive would refuse (one line: ``PATH: line N: problem``)."""


@dataclass
class _Scalar:
    text: str
    null: bool = False


@dataclass
class _Map:
    pairs: list[tuple[_Scalar, _Node, int]] = field(default_factory=list)  # key, value, line


@dataclass
class _Seq:
    items: list[_Node] = field(default_factory=list)


_Node = _Scalar | _Map | _Seq


@dataclass
class _Line:
    no: int
    indent: int
    text: str  # from the first non-space character, trailing blanks removed


class _Unsupported(Exception):
    def __init__(self, no: int, why: str) -> None:
        super().__init__(f"line {no}: {why}")


def read_dive_ci(path: str) -> dict[str, str]:
    """The rules a ``.dive-ci`` file sets: rule name -> the value's text (rules it leaves alone are absent)."""
    try:
        with open(path, "rb") as f:
            raw = f.read(_MAX_BYTES + 1)
    except OSError as e:
        raise DiveCiError(f"{path}: cannot be read: {e.strerror or e}") from None
    if len(raw) > _MAX_BYTES:
        raise DiveCiError(f"{path}: over {_MAX_BYTES // (1 << 20)} MiB: not a .dive-ci")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise DiveCiError(f"{path}: not UTF-8 text, so not YAML dive can read") from None
    return parse_dive_ci(text, path)


def parse_dive_ci(text: str, path: str = DEFAULT_PATH) -> dict[str, str]:
    """The rules ``text`` (a ``.dive-ci``) sets; raises :class:`DiveCiError` (one line) when dive would refuse
    the file or this reader cannot be sure what it says."""
    try:
        root = _Parser(_lines(text)).document()
        return _rules(root)
    except _Unsupported as e:
        raise DiveCiError(f"{path}: {e}") from None
    except RecursionError:
        raise DiveCiError(f"{path}: nested too deeply to be a .dive-ci") from None


def _rules(root: _Node | None) -> dict[str, str]:
    if root is None or (isinstance(root, _Scalar) and root.null):
        return {}
    if not isinstance(root, _Map):
        raise _Unsupported(1, "the file must be a mapping with a 'rules:' key, as dive's .dive-ci is")
    rules = _unique(root).get("rules")
    if rules is None or (isinstance(rules[0], _Scalar) and rules[0].null):
        return {}
    node, no = rules
    if not isinstance(node, _Map):
        raise _Unsupported(no, "'rules:' must hold a mapping of rule names to values")
    out: dict[str, str] = {}
    for key, (value, vno) in _unique(node).items():
        if key not in RULE_KEYS:
            continue
        if not isinstance(value, _Scalar):
            raise _Unsupported(vno, f"the value of {key} must be a single value, not a list or mapping")
        if not value.null:
            out[key] = value.text
    return out


def _unique(m: _Map) -> dict[str, tuple[_Node, int]]:
    """A mapping's keys (null keys left out, as dive's decoder skips them); a key given twice is an error."""
    seen: dict[str, int] = {}
    out: dict[str, tuple[_Node, int]] = {}
    for key, value, no in m.pairs:
        if key.text in seen:
            raise _Unsupported(no, f"mapping key {key.text!r} already defined at line {seen[key.text]}")
        seen[key.text] = no
        if not key.null:
            out[key.text] = (value, no)
    return out


_BAD_CHARS = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x84\x86-\x9f\ud800-\udfff\ufffe\uffff]")


def _lines(text: str) -> list[_Line]:
    """The content lines of the first YAML document (comment-only and blank lines left out)."""
    text = text.removeprefix("\ufeff")
    bad = _BAD_CHARS.search(text)
    if bad:
        raise _Unsupported(text.count("\n", 0, bad.start()) + 1, "a control character: not YAML text")
    if any(ch in text for ch in "\x85\u2028\u2029"):
        raise _Unsupported(1, "unusual line break characters (NEL, U+2028, U+2029) are not supported")
    out: list[_Line] = []
    for no, line in enumerate(re.split("\r\n|\r|\n", text), 1):
        if line.startswith(("---", "...")) and line[3:4] in ("", " ", "\t"):
            rest = line[3:].strip(" \t")
            if line.startswith("...") or out:
                break  # the end of the first document
            if rest and not rest.startswith("#"):
                raise _Unsupported(no, "content on the '---' line is not supported")
            continue
        if line.startswith("%") and not out:
            raise _Unsupported(no, "YAML directives (%YAML, %TAG) are not supported")
        body = line.lstrip(" ")
        if not body.strip(" \t") or body.lstrip(" \t").startswith("#"):
            continue
        if body.startswith("\t"):
            raise _Unsupported(no, "a tab in the indentation (YAML indents with spaces)")
        out.append(_Line(no, len(line) - len(body), body.rstrip(" \t")))
    return out


_MAP_COLON = re.compile(r":(?:[ \t]|$)")
_PLAIN_START_BAD = set(",[]{}#&*!|>'\"%@`")


class _Parser:
    """Block YAML over content lines: a node at an indent is a mapping, a sequence or one scalar line."""

    def __init__(self, lines: list[_Line]) -> None:
        self.lines = lines
        self.i = 0

    def peek(self) -> _Line | None:
        return self.lines[self.i] if self.i < len(self.lines) else None

    def document(self) -> _Node | None:
        first = self.peek()
        if first is None:
            return None
        node = self.block(first.indent)
        left = self.peek()
        if left is not None:
            raise _Unsupported(left.no, "unexpected text after the document's top-level node (bad indentation?)")
        return node

    def block(self, indent: int) -> _Node:
        line = self.peek()
        assert line is not None and line.indent == indent
        if _is_seq_entry(line.text):
            return self.sequence(indent)
        if _map_key(line) is not None:
            return self.mapping(indent)
        self.i += 1
        node = _inline_value(line.text, line.no)
        self.no_continuation(line.no, indent - 1)
        return node

    def mapping(self, indent: int) -> _Map:
        m = _Map()
        while (line := self.peek()) is not None and line.indent == indent:
            if _is_seq_entry(line.text):
                raise _Unsupported(line.no, "a list entry where a 'key: value' was expected")
            parsed = _map_key(line)
            if parsed is None:
                raise _Unsupported(line.no, "expected 'key: value' at this indentation")
            key, rest = parsed
            self.i += 1
            m.pairs.append((key, self.value_after(rest, line.no, indent, in_map=True), line.no))
        if (line := self.peek()) is not None and line.indent > indent:
            raise _Unsupported(line.no, "bad indentation")
        return m

    def sequence(self, indent: int) -> _Seq:
        s = _Seq()
        while (line := self.peek()) is not None and line.indent == indent and _is_seq_entry(line.text):
            rest = line.text[1:].lstrip(" ")
            if rest.startswith("\t"):
                raise _Unsupported(line.no, "a tab after '-' is not supported")
            if not rest or rest.startswith("#"):
                self.i += 1
                s.items.append(self.value_after("", line.no, indent, in_map=False))
                continue
            column = indent + len(line.text) - len(rest)
            self.lines[self.i] = _Line(line.no, column, rest)  # the entry's content, as a line of its own
            s.items.append(self.block(column))
        if (line := self.peek()) is not None and line.indent > indent:
            raise _Unsupported(line.no, "bad indentation")
        return s

    def value_after(self, rest: str, no: int, indent: int, in_map: bool) -> _Node:
        """The value of a key (``in_map``) or a sequence entry whose line is done up to ``rest``."""
        if rest and not rest.startswith("#"):
            node = _inline_value(rest, no)
            self.no_continuation(no, indent)
            return node
        nxt = self.peek()
        if nxt is not None and nxt.indent > indent:
            return self.block(nxt.indent)
        if in_map and nxt is not None and nxt.indent == indent and _is_seq_entry(nxt.text):
            return self.sequence(indent)  # "key:" then "- item" at the key's own indentation
        return _Scalar("", null=True)

    def no_continuation(self, no: int, indent: int) -> None:
        nxt = self.peek()
        if nxt is not None and nxt.indent > indent:
            raise _Unsupported(nxt.no, f"a value continued from line {no} onto the next line is not supported")


def _is_seq_entry(text: str) -> bool:
    return text == "-" or text.startswith(("- ", "-\t"))


def _map_key(line: _Line) -> tuple[_Scalar, str] | None:
    """``key: rest`` -> (key, rest); None when the line is not a mapping entry."""
    text, no = line.text, line.no
    if text[0] in "'\"":
        key, end = _quoted(text, 0, no)
        after = text[end:].lstrip(" \t")
        if not after.startswith(":") or not _MAP_COLON.match(after):
            return None
        return key, after[1:].strip(" \t")
    if text.startswith(("? ", "?\t")) or text == "?":
        raise _Unsupported(no, "complex mapping keys ('? ') are not supported")
    hit = _MAP_COLON.search(text)
    comment = re.search(r"[ \t]#", text)
    if hit is None or (comment is not None and comment.start() < hit.start()):
        return None
    raw = text[: hit.start()].rstrip(" \t")
    if not raw or raw[0] in "[{":
        raise _Unsupported(no, "this kind of mapping key is not supported")
    if raw[0] in _PLAIN_START_BAD or raw.startswith(("- ", "-\t")):
        raise _Unsupported(no, f"a key may not start with {raw[0]!r} (anchors, tags, aliases are not supported)")
    return _Scalar(raw, null=raw in _NULLS), text[hit.end() :].strip(" \t")


_NULLS = ("~", "null", "Null", "NULL")


def _inline_value(text: str, no: int) -> _Node:
    """A value on one line: a quoted or plain scalar, or a flow collection ([...] / {...}); ``!!str`` before
    a scalar makes it a string even when it reads as null."""
    tagged = text.startswith("!!str") and text[5:6] in ("", " ", "\t")
    if tagged:
        text = text[5:].lstrip(" \t")
        if not text or text.startswith("#"):
            return _Scalar("")
    first = text[0]
    if first in "'\"":
        node, end = _quoted(text, 0, no)
        _only_comment(text[end:], no)
        return node
    if first in "[{" and not tagged:
        value, end = _Flow(text, no).node(0)
        _only_comment(text[end:], no)
        return value
    if first in "|>":
        raise _Unsupported(no, "block scalars ('|', '>') are not supported")
    if first in "&*!" or (first in "[{" and tagged):
        raise _Unsupported(no, "anchors, aliases and tags (other than !!str before a scalar) are not supported")
    if first in "%@`" or _is_seq_entry(text):
        raise _Unsupported(no, f"a value may not start with {first!r}")
    comment = re.search(r"[ \t]#", text)
    plain = (text[: comment.start()] if comment else text).rstrip(" \t")
    if _MAP_COLON.search(plain):
        raise _Unsupported(no, "mapping values are not allowed here (quote a value that holds ': ')")
    return _Scalar(plain, null=plain in _NULLS and not tagged)


def _only_comment(rest: str, no: int) -> None:
    """After a quoted value or a flow collection: nothing but blanks and a comment."""
    rest = rest.lstrip(" \t")
    if rest and not rest.startswith("#"):
        raise _Unsupported(no, f"unexpected text after the value: {rest[:20]!r}")


_ESCAPES = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r",
    "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0", "L": "\u2028", "P": "\u2029",
}  # fmt: skip
_HEX_LEN = {"x": 2, "u": 4, "U": 8}


def _quoted(text: str, start: int, no: int) -> tuple[_Scalar, int]:
    """The quoted scalar at ``text[start]`` and the index after its closing quote (one line only)."""
    quote, i, out = text[start], start + 1, []
    while i < len(text):
        ch = text[i]
        if quote == "'" and ch == "'":
            if text[i + 1 : i + 2] == "'":
                out.append("'")
                i += 2
                continue
            return _Scalar("".join(out)), i + 1
        if quote == '"' and ch == '"':
            return _Scalar("".join(out)), i + 1
        if quote == '"' and ch == "\\":
            i = _escape(text, i + 1, no, out)
            continue
        out.append(ch)
        i += 1
    raise _Unsupported(no, "a quoted value over several lines is not supported (or its closing quote is missing)")


def _escape(text: str, i: int, no: int, out: list[str]) -> int:
    code = text[i : i + 1]
    if code in _ESCAPES:
        out.append(_ESCAPES[code])
        return i + 1
    if code in _HEX_LEN:
        digits = text[i + 1 : i + 1 + _HEX_LEN[code]]
        if len(digits) == _HEX_LEN[code] and all(c in "0123456789abcdefABCDEF" for c in digits):
            value = int(digits, 16)
            if value <= 0x10FFFF and not 0xD800 <= value <= 0xDFFF:
                out.append(chr(value))
                return i + 1 + len(digits)
    raise _Unsupported(no, f"invalid escape in a double-quoted value: \\{code}")


class _Flow:
    """A flow collection on one line: ``[a, 'b', {k: v}]``, ``{k: v, k2: [x]}``."""

    def __init__(self, text: str, no: int) -> None:
        self.text, self.no = text, no

    def skip(self, i: int) -> int:
        while i < len(self.text) and self.text[i] in " \t":
            i += 1
        return i

    def node(self, i: int) -> tuple[_Node, int]:
        i = self.skip(i)
        ch = self.text[i : i + 1]
        if ch in ("[", "{"):
            return self.collection(i)
        if ch in ("'", '"'):
            return _quoted(self.text, i, self.no)
        if ch == "" or ch in "]},#" or ch in "&*!|>%@`":
            raise _Unsupported(self.no, "a flow collection this reader does not support (or it is not closed)")
        end = i
        while end < len(self.text) and self.text[end] not in ",[]{}" and not _MAP_COLON.match(self.text, end):
            if self.text[end] == "#" and self.text[end - 1] in " \t":
                break
            end += 1
        plain = self.text[i:end].rstrip(" \t")
        return _Scalar(plain, null=plain in _NULLS or not plain), end

    def collection(self, i: int) -> tuple[_Node, int]:
        closing = "]" if self.text[i] == "[" else "}"
        node: _Seq | _Map = _Seq() if closing == "]" else _Map()
        i = self.skip(i + 1)
        while self.text[i : i + 1] != closing:
            item, i = self.node(i)
            i = self.skip(i)
            if isinstance(node, _Map):
                if not isinstance(item, _Scalar):
                    raise _Unsupported(self.no, "a list or mapping as a key is not supported")
                value: _Node = _Scalar("", null=True)
                if self.text[i : i + 1] == ":":
                    i = self.skip(i + 1)
                    if self.text[i : i + 1] in (",", "}"):
                        value = _Scalar("", null=True)
                    else:
                        value, i = self.node(i)
                        i = self.skip(i)
                node.pairs.append((item, value, self.no))
            else:
                if self.text[i : i + 1] == ":":
                    raise _Unsupported(self.no, "a 'key: value' inside a flow list is not supported")
                node.items.append(item)
            if self.text[i : i + 1] == ",":
                i = self.skip(i + 1)
            elif self.text[i : i + 1] != closing:
                raise _Unsupported(self.no, "a flow collection this reader does not support (or it is not closed)")
        return node, i + 1


def find_dive_ci(given: str | None) -> str | None:
    """The ``.dive-ci`` to read: ``given`` (which must exist), else ``.dive-ci`` in the current dir if there is
    one (as dive's ``--ci-config`` default), else None (dive's defaults)."""
    if given is not None:
        if not os.path.isfile(given):
            raise DiveCiError(f"{given}: no such CI config file (--ci-config)")
        return given
    return DEFAULT_PATH if os.path.isfile(DEFAULT_PATH) else None
