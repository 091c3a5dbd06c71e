"""printable(): names reach the screen with no control character, escape or undecodable byte left raw."""

from __future__ import annotations

import os
import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ufs_tui.core.model.display import b64, from_b64, is_valid_utf8, printable


@pytest.mark.parametrize("code", [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)])
def test_every_c0_c1_control_and_del_is_escaped(code: int) -> None:
    out = printable(f"a{chr(code)}b")
    assert chr(code) not in out
    assert out.isprintable()
    named = {0x0A: "\\n", 0x09: "\\t", 0x0D: "\\r"}
    # C0 and DEL as \xNN; C1 as \u00NN, so U+0085 and the raw byte 0x85 (\x85) stay distinct
    escaped = f"\\x{code:02x}" if code < 0x80 else f"\\u{code:04x}"
    assert out == "a" + named.get(code, escaped) + "b"


@pytest.mark.parametrize("byte", range(0x80, 0x100))
def test_undecodable_bytes_are_hex_escapes(byte: int) -> None:
    name = os.fsdecode(b"x" + bytes([byte]) + b"y")
    assert not is_valid_utf8(name)
    assert printable(name) == f"x\\x{byte:02x}y"


def test_backslash_is_escaped_so_escapes_are_unambiguous() -> None:
    assert printable("a\\b") == "a\\\\b"
    assert printable("\\x1b") == "\\\\x1b"
    assert printable("\x1b") == "\\x1b"
    assert printable("\\x1b") != printable("\x1b")


@pytest.mark.parametrize(
    "name",
    ["plain.txt", "é à ü", "日本語", "emoji 🎉", "[red]x[/red]", "a b", "Ωmega", "ﬁle"],
)
def test_normal_unicode_is_unchanged(name: str) -> None:
    assert printable(name) == name


@pytest.mark.parametrize("char", ["\u2028", "\u2029", "\u202e", "\u200b", "\ufeff", "\ud800", "\udc00"])
def test_other_unprintable_characters_are_escaped(char: str) -> None:
    """Line/paragraph separators, bidi overrides, zero-width and stray surrogates do not reach the terminal."""
    out = printable("a" + char + "b")
    assert char not in out
    assert out == f"a\\u{ord(char):04x}b"


def test_hostile_terminal_sequences() -> None:
    out = printable("\x1b[31mred\x1b[0m\x07\x9b2J\x1b]0;title\x07")
    assert out == "\\x1b[31mred\\x1b[0m\\x07\\u009b2J\\x1b]0;title\\x07"


def test_c1_character_and_raw_byte_differ() -> None:
    assert printable("\x85") != printable(os.fsdecode(b"\x85"))


any_char = st.integers(min_value=0, max_value=0x10FFFF).map(chr)


@given(st.text(alphabet=any_char))
def test_result_is_always_printable(name: str) -> None:
    out = printable(name)
    assert out.isprintable()
    assert "\x1b" not in out
    assert not any(unicodedata.category(c) in ("Cc", "Cs", "Zl", "Zp") for c in out)
    if name.isprintable() and "\\" not in name:
        assert out == name


@given(st.binary())
def test_raw_bytes_always_printable(raw: bytes) -> None:
    name = os.fsdecode(raw)
    out = printable(name)
    assert out.isprintable()
    assert "\x1b" not in out
    assert from_b64(b64(name)) == name
    assert os.fsencode(from_b64(b64(name))) == raw
