"""dive's CI gate: the numbers a rule set computes, dive's three rules, their thresholds and verdicts.

A *rule set* is a function that reads an image (or stack) and returns :class:`CiNumbers`: the image's
efficiency, its wasted bytes, the wasted bytes relative to what the layers above the base add, and the paths
behind them. ``dive`` (:mod:`ufs_tui.core.reports.dive_rules`) computes them exactly as dive does; another
rule set returns the same type with its own counting.

The rules are dive's (``cmd/dive/cli/internal/command/ci/rules.go``), with its names and defaults:

==========================  =========  ==================================================================
rule                        default    fails when
==========================  =========  ==================================================================
lowestEfficiency            0.9        efficiency < threshold (a ratio 0-1)
highestWastedBytes          disabled   wasted bytes > threshold (go-humanize sizes: 20MB, 1.5GiB, ...)
highestUserWastedPercent    0.1        wasted bytes / user bytes > threshold (a ratio 0-1)
==========================  =========  ==================================================================

A value of ``disabled``, ``off``, ``false`` or an empty string (any case, spaces around) turns a rule off:
it is skipped. A value dive cannot read is an error naming the rule and where the value came from.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..model.errors import UfsError
from .go_compat import GoSyntaxError, float_v, parse_bytes, parse_float, to_lower, trim_space

LOWEST_EFFICIENCY = "lowestEfficiency"
HIGHEST_WASTED_BYTES = "highestWastedBytes"
HIGHEST_USER_WASTED_PERCENT = "highestUserWastedPercent"
RULE_NAMES = (LOWEST_EFFICIENCY, HIGHEST_WASTED_BYTES, HIGHEST_USER_WASTED_PERCENT)
DEFAULTS = {LOWEST_EFFICIENCY: "0.9", HIGHEST_WASTED_BYTES: "disabled", HIGHEST_USER_WASTED_PERCENT: "0.1"}

PASS, FAIL, SKIP = "pass", "fail", "skip"


class RuleConfigError(UfsError):
    """A rule threshold dive would refuse."""


@dataclass(frozen=True)
class InefficientPath:
    """A path stored more than once across the layers (or deleted), as a rule set counts it."""

    path: str
    count: int  # how many layers hold (or delete) it
    size: int  # the bytes the rule set counts against it
    why: str = ""  # what wasted them, with each layer's build step (the exact rules say it; dive does not)


@dataclass(frozen=True)
class CiNumbers:
    """What a rule set says of an image: the three numbers dive's rules test, and the paths behind them."""

    rules: str  # the rule set's name: "dive"
    efficiency: float  # 0-1 (1: nothing stored twice)
    wasted_bytes: int
    user_wasted_percent: float  # wasted bytes / user bytes, a ratio; NaN or +Inf when there are no user bytes
    size_bytes: int  # every layer's bytes, as the rule set counts them
    user_size_bytes: int  # the same without the first (base) layer
    inefficient: tuple[InefficientPath, ...]  # largest first
    notes: tuple[str, ...] = ()  # what the numbers assume, or where they part from the tool they follow


@dataclass(frozen=True)
class Rule:
    """One of dive's rules as configured: ``value`` as given, ``origin`` where it was given."""

    name: str
    value: str
    origin: str  # "default", ".dive-ci", "--lowestEfficiency", ...
    threshold: float | int | None  # None: the rule is disabled

    @property
    def disabled(self) -> bool:
        return self.threshold is None


@dataclass(frozen=True)
class RuleResult:
    rule: Rule
    status: str  # PASS, FAIL or SKIP
    message: str


def is_disabled(value: str) -> bool:
    """dive's ``isRuleDisabled``: "", "disabled", "off", "false" (any case, spaces around)."""
    return to_lower(trim_space(value)) in ("", "disabled", "off", "false")


def make_rule(name: str, value: str, origin: str) -> Rule:
    """A rule from its text; raises :class:`RuleConfigError` with dive's wording (and the value's origin)."""
    if is_disabled(value):
        return Rule(name, value, origin, None)
    where = "" if origin == "default" else f"{origin}: "
    if name == HIGHEST_WASTED_BYTES:
        try:
            return Rule(name, value, origin, parse_bytes(value))
        except GoSyntaxError as e:
            raise RuleConfigError(f"{where}invalid {name} config value, given {value!r}: {e}") from None
    try:
        ratio = parse_float(value)
    except GoSyntaxError as e:
        raise RuleConfigError(f"{where}invalid {name} config value, given {value!r}: {e}") from None
    if ratio < 0 or ratio > 1:  # NaN passes, as in dive
        raise RuleConfigError(f"{where}{name} config value is outside allowed range (0-1), given '{ratio:f}'")
    return Rule(name, value, origin, ratio)


def configure(file_values: dict[str, str], file_origin: str, option_values: dict[str, str | None]) -> list[Rule]:
    """dive's three rules: each from its option if given, else from the ``.dive-ci`` file, else the default.
    Every bad value is reported at once, in one line."""
    rules: list[Rule] = []
    problems: list[str] = []
    for name in RULE_NAMES:
        option = option_values.get(name)
        if option is not None:
            value, origin = option, f"--{name}"
        elif name in file_values:
            value, origin = file_values[name], file_origin
        else:
            value, origin = DEFAULTS[name], "default"
        try:
            rules.append(make_rule(name, value, origin))
        except RuleConfigError as e:
            problems.append(str(e))
    if problems:
        raise RuleConfigError("; ".join(problems))
    return rules


def evaluate(rules: list[Rule], numbers: CiNumbers) -> list[RuleResult]:
    """Each rule's verdict on ``numbers``, with dive's messages (sorted by rule name, as dive prints them)."""
    out = []
    for rule in sorted(rules, key=lambda r: r.name):
        if rule.threshold is None:
            out.append(RuleResult(rule, SKIP, "disabled"))
            continue
        failed = _failure(rule, numbers)
        out.append(RuleResult(rule, FAIL, failed) if failed else RuleResult(rule, PASS, rule.value))
    return out


def _failure(rule: Rule, n: CiNumbers) -> str:
    """dive's message when ``rule`` fails on ``n``, else ""."""
    th = rule.threshold
    assert th is not None
    if rule.name == LOWEST_EFFICIENCY and th > n.efficiency:
        return f"image efficiency is too low (efficiency={fixed(n.efficiency, 2)} < threshold={float_v(th)})"
    if rule.name == HIGHEST_WASTED_BYTES and n.wasted_bytes > th:
        return f"too many bytes wasted (wasted-bytes={n.wasted_bytes} > threshold={int(th)})"
    if rule.name == HIGHEST_USER_WASTED_PERCENT and n.user_wasted_percent > th:
        pct = fixed(n.user_wasted_percent, 2)
        return (
            "too many bytes wasted, relative to the user bytes added "
            f"(%-user-wasted-bytes={pct} > threshold={float_v(th)})"
        )
    return ""


def fixed(value: float, places: int) -> str:
    """Go's ``%.Nf`` (``NaN``, ``+Inf`` spelled as Go spells them)."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return f"{value:.{places}f}"


def passed(results: list[RuleResult]) -> bool:
    return all(r.status != FAIL for r in results)
