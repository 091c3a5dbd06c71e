"""``ufs-tui ci``: dive's CI gate on an image or stack: its efficiency and wasted bytes, pass or fail.

A rule set computes the numbers (``--rules``; one function each in :data:`RULE_SETS`, returning
:class:`~ufs_tui.core.reports.ci_rules.CiNumbers`); dive's three rules judge them, with thresholds from the
options, else a ``.dive-ci`` file, else dive's defaults.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

from . import say
from .options import add_stack_options, stack_from_args

if TYPE_CHECKING:  # the core modules load when the command runs
    from ..core.reports.ci_rules import CiNumbers, Rule

NAME = "ci"


def _dive_numbers(args: argparse.Namespace) -> CiNumbers:
    """dive's numbers, exactly as dive 0.13 computes them (ufs_tui.core.reports.dive_rules)."""
    from ..core.reports import dive_rules

    archive = dive_rules.archive_source(getattr(args, "source", None))
    if archive is not None:
        return dive_rules.archive_numbers(archive, getattr(args, "image", None))
    return dive_rules.stack_numbers(stack_from_args(args))


def _exact_numbers(args: argparse.Namespace) -> CiNumbers:
    """The exact numbers: N−1 copies, whiteouts, opaque dirs, unchanged copies, duplicates (reports.waste)."""
    from ..core.reports.waste import exact_numbers

    return exact_numbers(stack_from_args(args))


#: The rule sets ``--rules`` chooses from: name -> the function that computes the numbers.
RULE_SETS: dict[str, Callable[[argparse.Namespace], CiNumbers]] = {"dive": _dive_numbers, "exact": _exact_numbers}
DEFAULT_RULES = "dive"


def add_parser(subparsers: Any) -> None:
    p = subparsers.add_parser(
        NAME,
        help="dive's CI gate: an image's efficiency and wasted bytes against thresholds (exit 0 pass, 1 fail)",
        description="Judge an image (or stack) by dive's CI rules: its efficiency and the bytes its layers "
        "waste, against thresholds. Nothing is mounted or written.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_stack_options(p, source=True)
    p.add_argument(
        "--rules",
        choices=tuple(RULE_SETS),
        default=DEFAULT_RULES,
        help="how the numbers are computed: dive = exactly as dive computes them (default: %(default)s); exact = "
        "each name stored N times counts N-1 times, and deleted, opaque-hidden, unchanged copies and duplicate "
        "content count too, each said in words (as 'ufs-tui du')",
    )
    p.add_argument("--format", choices=("text", "json", "junit"), default="text", help="text, one JSON object, "
                   "or JUnit XML (a testcase per rule)")  # fmt: skip
    g = p.add_argument_group("thresholds (dive's names; an option wins over .dive-ci, which wins over the default)")
    g.add_argument(
        "--ci-config",
        metavar="FILE",
        help="dive's CI config file (YAML, a 'rules:' mapping); default: .dive-ci in the current dir if there is one",
    )
    g.add_argument("--lowestEfficiency", metavar="RATIO", help="fail below this efficiency, 0-1 (default 0.9)")
    g.add_argument(
        "--highestWastedBytes", metavar="SIZE", help="fail above these wasted bytes: 20MB, 1.5GiB... (default off)"
    )
    g.add_argument(
        "--highestUserWastedPercent",
        metavar="RATIO",
        help="fail above this ratio of wasted bytes to the bytes the layers above the base add, 0-1 (default 0.1)",
    )


def run(args: argparse.Namespace, out: TextIO) -> int:
    from ..core.model.display import printable
    from ..core.reports import ci_report
    from ..core.reports.ci_rules import evaluate, passed

    rules = _rules(args)  # a bad threshold is an error before any layer is read
    numbers = RULE_SETS[args.rules](args)
    for note in numbers.notes:
        say(f"ufs-tui: note: {printable(note)}")
    results = evaluate(rules, numbers)
    source = args.source or _stack_words(args)
    write = {"json": ci_report.write_json, "junit": ci_report.write_junit}.get(args.format, ci_report.write_text)
    write(out, source, numbers, results)
    return 0 if passed(results) else 1


def _rules(args: argparse.Namespace) -> list[Rule]:
    from ..core.reports.ci_rules import RULE_NAMES, configure
    from ..core.reports.dive_ci import find_dive_ci, read_dive_ci

    path = find_dive_ci(args.ci_config)
    file_values = read_dive_ci(path) if path is not None else {}
    rules = configure(file_values, path or "", {name: getattr(args, name) for name in RULE_NAMES})
    if path is not None:
        from ..core.model.display import printable

        say(f"ufs-tui: note: using CI config {printable(path)}")
    return rules


def _stack_words(args: argparse.Namespace) -> str:
    return " ".join(f"--{k} {v}" for k in ("lower", "upper") if (v := getattr(args, k, None)))


EPILOG = """\
rules (dive's; a value of disabled, off, false or "" turns a rule off):
  lowestEfficiency          fail when efficiency < RATIO                            default 0.9
  highestWastedBytes        fail when wasted bytes > SIZE (20MB = 20,000,000 bytes,  default disabled
                            20MiB = 20,971,520)
  highestUserWastedPercent  fail when wasted bytes / user bytes > RATIO              default 0.1

the numbers (--rules dive: exactly as dive 0.13 computes them, from each layer tar's headers):
  efficiency         for every path stored in some layer: the smallest copy's bytes, summed, over every
                     copy's bytes, summed (1: nothing stored twice)
  wasted bytes       the bytes of every path two layers or more hold (a whiteout is one of them): all
                     its copies, the surviving one included (dive#684). dive counts each layer's leaves:
                     a dir deleted with its files is waste only where its path comes back as a leaf
  user bytes         the bytes of every layer but the first (the base image's)
  dive ignores opaque dirs (.wh..wh..opq); what it does with whiteouts, implicit dirs and repeated layers
  is followed too (see ufs_tui/core/reports/dive_rules.py)

.dive-ci (read from the current dir unless --ci-config names another; options win over it):
  rules:
    lowestEfficiency: 0.95
    highestWastedBytes: 20MB
    highestUserWastedPercent: 0.20

output: text (dive's --ci report), --format json (one object: the numbers, each rule's verdict, the
inefficient files), --format junit (a testsuite with a testcase per rule: failure / skipped)

exit status: 0 every rule passes (or is skipped), 1 a rule fails, 2 an error (a source that cannot be read,
a bad threshold or .dive-ci: one line on stderr)

SOURCE is any source the other commands take: an image archive (docker save, OCI) is read from its layer
tars; for a stack of layer dirs (--lower/--upper, an engine's container or image, a mount) the layer dirs
are read as the tars of them (sizes from lstat, .wh. files and 0/0 char devices as whiteouts), and a note
says so.
"""
