"""The CI gate's report: text (laid out as dive's ``--ci`` report), one JSON object, or JUnit XML.

Every path and message goes through :func:`printable` (paths may hold any byte); the JSON carries the raw
path too, base64-encoded, when a name is not UTF-8.
"""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET
from typing import Any, TextIO

from ..model.display import b64, is_valid_utf8, printable
from .ci_rules import FAIL, PASS, SKIP, CiNumbers, RuleResult, fixed, passed
from .go_compat import bytes_text, float_v


def write_text(out: TextIO, source: str, numbers: CiNumbers, results: list[RuleResult]) -> None:
    wasted = numbers.wasted_bytes
    user = f"{fixed(numbers.user_wasted_percent * 100, 2)} %" if wasted else "0 %"
    lines = [
        f"Rules: {numbers.rules}    Source: {printable(source)}",
        "",
        "Analysis:",
        f"  {'efficiency:':<18} {fixed(numbers.efficiency * 100, 2)} %",
        f"  {'wastedBytes:':<18} {wasted} bytes {f'({bytes_text(wasted)})' if wasted else ''}".rstrip(),
        f"  {'userWastedPercent:':<18} {user}",
        "",
    ]
    if numbers.inefficient:
        lines.append("Inefficient Files:")
        lines.append(f"  {'Count':<5}  {'Wasted Space':<12}  File Path")
        lines += [f"  {p.count:<5}  {bytes_text(p.size):<12}  {printable(p.path)}" for p in numbers.inefficient]
    else:
        lines.append("Inefficient Files: (None)")
    lines += ["", "Evaluation:"]
    for r in results:
        lines.append(f"  {r.status.upper()}  {r.rule.name} ({printable(r.message)})")
    tally = {s: sum(1 for r in results if r.status == s) for s in (PASS, FAIL, SKIP)}
    parts = " ".join(f"{s}:{n}" for s, n in tally.items() if n)
    lines += ["", f"{'PASS' if passed(results) else 'FAIL'} [{parts}]"]
    out.write("\n".join(lines) + "\n")


def _number(value: float) -> float | None:
    """JSON has no NaN or infinity: they are null (the text form says which)."""
    return value if math.isfinite(value) else None


def as_json(source: str, numbers: CiNumbers, results: list[RuleResult]) -> dict[str, Any]:
    files = []
    for p in numbers.inefficient:
        item: dict[str, Any] = {"count": p.count, "sizeBytes": p.size, "file": p.path}
        if p.why:
            item["why"] = p.why
        if not is_valid_utf8(p.path):
            item["file"], item["file_b64"] = printable(p.path), b64(p.path)
        files.append(item)
    return {
        "source": source,
        "rules": numbers.rules,
        "pass": passed(results),
        "efficiency": numbers.efficiency,
        "wastedBytes": numbers.wasted_bytes,
        "userWastedPercent": _number(numbers.user_wasted_percent),
        "userWastedPercentText": float_v(numbers.user_wasted_percent),
        "sizeBytes": numbers.size_bytes,
        "userSizeBytes": numbers.user_size_bytes,
        "evaluation": [
            {
                "rule": r.rule.name,
                "status": r.status,
                "value": r.rule.value,
                "origin": r.rule.origin,
                "message": r.message,
            }
            for r in results
        ],
        "inefficientFiles": files,
        "notes": list(numbers.notes),
    }


def write_json(out: TextIO, source: str, numbers: CiNumbers, results: list[RuleResult]) -> None:
    """One JSON object on one line (JSON Lines, like every ``--format json`` of ufs-tui)."""
    out.write(json.dumps(as_json(printable(source), numbers, results), ensure_ascii=False) + "\n")


def write_junit(out: TextIO, source: str, numbers: CiNumbers, results: list[RuleResult]) -> None:
    """JUnit XML: one testsuite, one testcase per rule (failure / skipped), the numbers as properties."""
    counts = {
        "tests": str(len(results)),
        "failures": str(sum(1 for r in results if r.status == FAIL)),
        "errors": "0",
        "skipped": str(sum(1 for r in results if r.status == SKIP)),
    }
    suites = ET.Element("testsuites", {"name": "ufs-tui ci", **counts})
    suite = ET.SubElement(suites, "testsuite", {"name": f"{numbers.rules} rules: {printable(source)}", **counts})
    props = ET.SubElement(suite, "properties")
    shown = {
        "source": printable(source),
        "rules": numbers.rules,
        "efficiency": float_v(numbers.efficiency),
        "wastedBytes": str(numbers.wasted_bytes),
        "userWastedPercent": float_v(numbers.user_wasted_percent),
        "sizeBytes": str(numbers.size_bytes),
        "userSizeBytes": str(numbers.user_size_bytes),
        "inefficientFiles": str(len(numbers.inefficient)),
    }
    for name, value in shown.items():
        ET.SubElement(props, "property", {"name": name, "value": value})
    for i, note in enumerate(numbers.notes):
        ET.SubElement(props, "property", {"name": f"note{i + 1}", "value": printable(note)})
    for r in results:
        case = ET.SubElement(suite, "testcase", {"classname": f"ufs-tui.ci.{numbers.rules}", "name": r.rule.name})
        setting = f"{r.rule.name}={printable(r.rule.value)} ({printable(r.rule.origin)})"
        if r.status == FAIL:
            failure = ET.SubElement(case, "failure", {"message": printable(r.message), "type": r.rule.name})
            failure.text = f"threshold: {setting}"
        elif r.status == SKIP:
            ET.SubElement(case, "skipped", {"message": f"rule disabled: {setting}"})
    listing = "\n".join(f"{p.count}  {p.size}  {printable(p.path)}" for p in numbers.inefficient)
    ET.SubElement(suite, "system-out").text = "count  bytes  path\n" + listing if listing else "no inefficient files"
    ET.indent(suites)
    out.write(ET.tostring(suites, encoding="unicode", xml_declaration=True) + "\n")
