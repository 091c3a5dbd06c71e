"""What dive's numbers and rule thresholds go through in Go, done the same way here (our own code).

dive is written in Go, and some of what it prints depends on Go's library, not on dive's own code:

* :func:`path_clean` is Go's ``path.Clean`` (``posixpath.normpath`` keeps a leading ``//``; Go does not);
* :func:`sort_by` is Go's ``sort.Sort`` (pattern-defeating quicksort since Go 1.19): it is not stable, so the
  order of paths that waste the same number of bytes in dive's list is what this algorithm leaves;
* :func:`parse_float` is ``strconv.ParseFloat(s, 64)``: no spaces, ``inf``/``nan`` spelled as Go takes them,
  underscores only between digits, hex floats, out of range is an error;
* :func:`parse_bytes` is go-humanize's ``ParseBytes`` (``20MB`` = 20,000,000; ``20MiB`` = 20,971,520) and
  :func:`bytes_text` its ``Bytes`` (``13 B``, ``1.2 kB``);
* :func:`float_v` is what ``fmt``'s ``%v`` prints for a float64.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class GoSyntaxError(ValueError):
    """A string Go's parser refuses (``why`` says how)."""


# ------------------------------------------------------------------------------------------- path.Clean
def path_clean(name: str) -> str:
    """Go's ``path.Clean``: the shortest equivalent slash path ("." for nothing; ".." kept at the front of a
    relative path, dropped at the root)."""
    if name == "":
        return "."
    rooted = name.startswith("/")
    parts: list[str] = []
    for part in name.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if parts and parts[-1] != "..":
                parts.pop()
            elif not rooted:
                parts.append("..")
            continue
        parts.append(part)
    cleaned = "/".join(parts)
    if rooted:
        return "/" + cleaned
    return cleaned or "."


# ------------------------------------------------------------------------------------------- sort.Sort
class _Sorter:
    """Go's ``sort.Sort`` over ``items`` ordered by ``less``: the same comparisons and swaps in the same order,
    so elements that compare equal end where Go leaves them."""

    def __init__(self, items: list[T], less: Callable[[T, T], bool]) -> None:
        self.items: list[T] = items
        self._less = less

    def less(self, i: int, j: int) -> bool:
        return self._less(self.items[i], self.items[j])

    def swap(self, i: int, j: int) -> None:
        items = self.items
        items[i], items[j] = items[j], items[i]

    def insertion_sort(self, a: int, b: int) -> None:
        for i in range(a + 1, b):
            j = i
            while j > a and self.less(j, j - 1):
                self.swap(j, j - 1)
                j -= 1

    def sift_down(self, lo: int, hi: int, first: int) -> None:
        root = lo
        while True:
            child = 2 * root + 1
            if child >= hi:
                return
            if child + 1 < hi and self.less(first + child, first + child + 1):
                child += 1
            if not self.less(first + root, first + child):
                return
            self.swap(first + root, first + child)
            root = child

    def heap_sort(self, a: int, b: int) -> None:
        first, hi = a, b - a
        for i in range((hi - 1) // 2, -1, -1):
            self.sift_down(i, hi, first)
        for i in range(hi - 1, -1, -1):
            self.swap(first, first + i)
            self.sift_down(0, i, first)

    def pdqsort(self, a: int, b: int, limit: int) -> None:
        balanced, partitioned = True, True
        while True:
            length = b - a
            if length <= 12:
                self.insertion_sort(a, b)
                return
            if limit == 0:
                self.heap_sort(a, b)
                return
            if not balanced:
                self.break_patterns(a, b)
                limit -= 1
            pivot, hint = self.choose_pivot(a, b)
            if hint == _DECREASING:
                self.reverse_range(a, b)
                pivot = (b - 1) - (pivot - a)
                hint = _INCREASING
            if balanced and partitioned and hint == _INCREASING and self.partial_insertion_sort(a, b):
                return
            if a > 0 and not self.less(a - 1, pivot):
                a = self.partition_equal(a, b, pivot)
                continue
            mid, partitioned = self.partition(a, b, pivot)
            left, right = mid - a, b - mid
            if left < right:
                balanced = left >= length // 8
                self.pdqsort(a, mid, limit)
                a = mid + 1
            else:
                balanced = right >= length // 8
                self.pdqsort(mid + 1, b, limit)
                b = mid

    def partition(self, a: int, b: int, pivot: int) -> tuple[int, bool]:
        self.swap(a, pivot)
        i, j = a + 1, b - 1
        while i <= j and self.less(i, a):
            i += 1
        while i <= j and not self.less(j, a):
            j -= 1
        if i > j:
            self.swap(j, a)
            return j, True
        self.swap(i, j)
        i, j = i + 1, j - 1
        while True:
            while i <= j and self.less(i, a):
                i += 1
            while i <= j and not self.less(j, a):
                j -= 1
            if i > j:
                break
            self.swap(i, j)
            i, j = i + 1, j - 1
        self.swap(j, a)
        return j, False

    def partition_equal(self, a: int, b: int, pivot: int) -> int:
        self.swap(a, pivot)
        i, j = a + 1, b - 1
        while True:
            while i <= j and not self.less(a, i):
                i += 1
            while i <= j and self.less(a, j):
                j -= 1
            if i > j:
                return i
            self.swap(i, j)
            i, j = i + 1, j - 1

    def partial_insertion_sort(self, a: int, b: int) -> bool:
        i = a + 1
        for _ in range(5):
            while i < b and not self.less(i, i - 1):
                i += 1
            if i == b:
                return True
            if b - a < 50:
                return False
            self.swap(i, i - 1)
            if i - a >= 2:  # the smaller one to the left
                j = i - 1
                while j >= 1 and self.less(j, j - 1):
                    self.swap(j, j - 1)
                    j -= 1
            if b - i >= 2:  # the greater one to the right
                j = i + 1
                while j < b and self.less(j, j - 1):
                    self.swap(j, j - 1)
                    j += 1
        return False

    def break_patterns(self, a: int, b: int) -> None:
        length = b - a
        if length < 8:
            return
        state = length
        modulus = 1 << length.bit_length()
        for idx in range(a + (length // 4) * 2 - 1, a + (length // 4) * 2 + 2):
            state ^= (state << 13) & _MASK64
            state ^= state >> 7
            state ^= (state << 17) & _MASK64
            other = state & (modulus - 1)
            if other >= length:
                other -= length
            self.swap(idx, a + other)

    def choose_pivot(self, a: int, b: int) -> tuple[int, int]:
        length = b - a
        swaps = [0]
        i, j, k = a + length // 4, a + length // 4 * 2, a + length // 4 * 3
        if length >= 8:
            if length >= 50:  # Tukey's ninther
                i, j, k = (
                    self.median(i - 1, i, i + 1, swaps),
                    self.median(j - 1, j, j + 1, swaps),
                    self.median(k - 1, k, k + 1, swaps),
                )
            j = self.median(i, j, k, swaps)
        if swaps[0] == 0:
            return j, _INCREASING
        return j, _DECREASING if swaps[0] == 12 else _UNKNOWN

    def median(self, a: int, b: int, c: int, swaps: list[int]) -> int:
        a, b = self.order2(a, b, swaps)
        b, c = self.order2(b, c, swaps)
        a, b = self.order2(a, b, swaps)
        return b

    def order2(self, a: int, b: int, swaps: list[int]) -> tuple[int, int]:
        if self.less(b, a):
            swaps[0] += 1
            return b, a
        return a, b

    def reverse_range(self, a: int, b: int) -> None:
        i, j = a, b - 1
        while i < j:
            self.swap(i, j)
            i, j = i + 1, j - 1


_UNKNOWN, _INCREASING, _DECREASING = 0, 1, 2
_MASK64 = (1 << 64) - 1


def sort_by(items: list[T], less: Callable[[T, T], bool]) -> None:
    """Sort ``items`` in place as Go's ``sort.Sort`` does with this ``less`` (not stable, but deterministic)."""
    n = len(items)
    if n > 1:
        _Sorter(items, less).pdqsort(0, n, n.bit_length())


# ------------------------------------------------------------------------------------- strconv.ParseFloat
_GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"


def trim_space(text: str) -> str:
    """Go's ``strings.TrimSpace`` (Unicode white space as Go's ``unicode.IsSpace`` has it)."""
    return text.strip(_GO_SPACE)


def to_lower(text: str) -> str:
    """Go's ``strings.ToLower``: one character for one (Python lowers U+0130 to two)."""
    return text.replace("\u0130", "i").lower()


def parse_float(text: str) -> float:
    """``strconv.ParseFloat(text, 64)``; raises :class:`GoSyntaxError` where Go returns an error."""
    special = _special_float(text)
    if special is not None:
        return special
    end, is_hex = _float_prefix(text)
    if end != len(text) or end == 0:
        raise GoSyntaxError(f"parsing {text!r}: invalid syntax")
    if "_" in text and not _underscores_ok(text):
        raise GoSyntaxError(f"parsing {text!r}: invalid syntax")
    plain = text.replace("_", "")
    try:
        value = float.fromhex(plain) if is_hex else float(plain)
    except OverflowError:
        raise GoSyntaxError(f"parsing {text!r}: value out of range") from None
    if math.isinf(value):
        raise GoSyntaxError(f"parsing {text!r}: value out of range")
    return value


def _special_float(text: str) -> float | None:
    """Go's ``special``: [+-]inf, [+-]infinity, nan (any case); anything else: None."""
    lower = text.lower()
    sign = -1.0 if lower.startswith("-") else 1.0
    bare = lower[1:] if lower[:1] in ("+", "-") else lower
    if bare in ("inf", "infinity"):
        return sign * math.inf
    if lower == "nan":
        return math.nan
    return None


def _float_prefix(s: str) -> tuple[int, bool]:
    """How much of ``s`` Go's ``readFloat`` reads as a number (0: none), and whether it is hex."""
    i, n = 0, len(s)
    if i < n and s[i] in "+-":
        i += 1
    is_hex = i + 2 < n and s[i] == "0" and s[i + 1] in "xX"
    if is_hex:
        i += 2
    digits = "0123456789abcdefABCDEF" if is_hex else "0123456789"
    saw_dot = saw_digits = False
    while i < n:
        c = s[i]
        if c == "_":
            pass
        elif c == ".":
            if saw_dot:
                break
            saw_dot = True
        elif c in digits:
            saw_digits = True
        else:
            break
        i += 1
    if not saw_digits:
        return 0, is_hex
    if i < n and s[i] in ("pP" if is_hex else "eE"):
        i += 1
        if i < n and s[i] in "+-":
            i += 1
        if i >= n or not s[i].isascii() or not s[i].isdigit():
            return 0, is_hex
        while i < n and (s[i] in "0123456789_"):
            i += 1
    elif is_hex:
        return 0, is_hex  # a hex float needs its p exponent
    return i, is_hex


def _underscores_ok(s: str) -> bool:
    """Go's ``underscoreOK``: an underscore only between digits, or between a base prefix and a digit."""
    saw = "^"
    i = 0
    if s[:1] in ("+", "-"):
        s = s[1:]
    is_hex = len(s) >= 2 and s[0] == "0" and s[1].lower() in "box"
    if is_hex:
        i, saw = 2, "0"
        is_hex = s[1].lower() == "x"
    for c in s[i:]:
        if c.isascii() and (c.isdigit() or (is_hex and c.lower() in "abcdef")):
            saw = "0"
        elif c == "_":
            if saw != "0":
                return False
            saw = "_"
        elif saw == "_":
            return False
        else:
            saw = "!"
    return saw != "_"


# ------------------------------------------------------------------------------------------ go-humanize
_SIZES = {
    "": 1, "b": 1,
    "k": 1000, "kb": 1000, "ki": 1 << 10, "kib": 1 << 10,
    "m": 1000**2, "mb": 1000**2, "mi": 1 << 20, "mib": 1 << 20,
    "g": 1000**3, "gb": 1000**3, "gi": 1 << 30, "gib": 1 << 30,
    "t": 1000**4, "tb": 1000**4, "ti": 1 << 40, "tib": 1 << 40,
    "p": 1000**5, "pb": 1000**5, "pi": 1 << 50, "pib": 1 << 50,
    "e": 1000**6, "eb": 1000**6, "ei": 1 << 60, "eib": 1 << 60,
}  # fmt: skip


def parse_bytes(text: str) -> int:
    """go-humanize's ``ParseBytes``: a number (digits, ``.``, ``,``) then a unit (SI: kB = 1000; IEC: KiB =
    1024; any case; spaces around it); raises :class:`GoSyntaxError` where it returns an error."""
    end = 0
    for ch in text:
        if ch in ".," or (ch.isascii() and ch.isdigit()):
            end += 1
        elif ch.isdecimal():  # a non-ASCII digit: Go cuts its bytes apart, and ParseFloat refuses them
            raise GoSyntaxError(f"parsing {text!r}: invalid syntax")
        else:
            break
    value = parse_float(text[:end].replace(",", ""))
    unit = to_lower(trim_space(text[end:]))
    if unit not in _SIZES:
        raise GoSyntaxError(f"unhandled size name: {unit}")
    value *= float(_SIZES[unit])
    if value >= 2.0**64:
        raise GoSyntaxError(f"too large: {text}")
    return int(value)


def bytes_text(n: int) -> str:
    """go-humanize's ``Bytes``: SI units, one decimal under 10 (``9 B``, ``13 B``, ``1.2 kB``, ``83 MB``)."""
    if n < 10:
        return f"{n} B"
    e = math.floor(math.log(n) / math.log(1000))
    value = math.floor(n / 1000.0**e * 10 + 0.5) / 10
    unit = ("B", "kB", "MB", "GB", "TB", "PB", "EB")[int(e)]
    return f"{value:.1f} {unit}" if value < 10 else f"{value:.0f} {unit}"


# ----------------------------------------------------------------------------------------------- fmt %v
def float_v(value: float) -> str:
    """What Go's ``fmt`` prints for a float64 with ``%v``: the shortest digits that read back as the same
    float, with an exponent when it is under -4 or 6 and over (``0.35``, ``100000``, ``1e-05``, ``1e+06``)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    sign = "-" if math.copysign(1.0, value) < 0 else ""
    if value == 0:
        return sign + "0"
    digits, exp = _shortest_digits(abs(value))
    if exp < -4 or exp >= 6:
        mantissa = f"{digits[0]}.{digits[1:]}" if len(digits) > 1 else digits
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    point = exp + 1
    if point <= 0:
        return f"{sign}0.{'0' * -point}{digits}"
    if point >= len(digits):
        return f"{sign}{digits}{'0' * (point - len(digits))}"
    return f"{sign}{digits[:point]}.{digits[point:]}"


def _shortest_digits(value: float) -> tuple[str, int]:
    """The significant digits of a positive float's shortest round-trip form (Python's repr, as Go's), and
    its decimal exponent: value = d.ddd x 10**exp."""
    from decimal import Decimal

    t = Decimal(repr(value)).as_tuple()
    digits = "".join(map(str, t.digits)).rstrip("0")
    stripped = len(t.digits) - len(digits)
    assert isinstance(t.exponent, int)
    return digits, len(digits) + t.exponent + stripped - 1
