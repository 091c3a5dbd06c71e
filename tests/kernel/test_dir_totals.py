"""Dir totals (:class:`ufs_tui.core.reports.sizes.DirTotals`, the size on each dir row of the explorer) against the
kernel: for every dir of a stack the kernel wrote (copy-ups, whiteouts, an opaque dir, a renamed dir), the bytes of
the regular files under it, summed through the real mount; and again after changes, with only the changed dirs
forgotten."""

from __future__ import annotations

import os
from collections.abc import Callable

import pytest

from tests.kernel.lab import Lab
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.reports.sizes import DirTotals, _Read, _Where

pytestmark = pytest.mark.usefixtures("root_mount")


def _kernel_totals(mnt: str) -> dict[str, int]:
    """Merged dir -> bytes of the regular files under it, as ``find -type f`` through the mount sees them."""
    totals: dict[str, int] = {}
    for d, dirs, files in os.walk(mnt, topdown=False):
        rel = "/" + os.path.relpath(d, mnt) if d != mnt else "/"
        rel = rel.replace("/./", "/")
        total = sum(totals[os.path.join(rel, s)] for s in dirs if not os.path.islink(os.path.join(d, s)))
        for f in files:
            p = os.path.join(d, f)
            if os.path.isfile(p) and not os.path.islink(p):
                total += os.lstat(p).st_size
        totals[rel] = total
    return totals


# (layer, path) -> content: a base lower, a lower over it, then the upper written through a mount (_stack)
FILES = {
    (1, "usr/lib/big"): b"B" * 5000, (1, "usr/lib/small"): b"s" * 30, (1, "usr/share/doc/x"): b"x" * 700,
    (1, "cache/a"): b"a" * 300, (1, "docs/guide"): b"g" * 120,
    (0, "usr/lib/more"): b"m" * 90, (0, "usr/lib/small"): b"S" * 40,  # (over the base's)
}  # fmt: skip


def _stack(lab: Lab) -> None:
    for (n, rel), data in FILES.items():
        lab.file(f"{lab.lowers[n]}/{rel}", data)
    low = lab.lowers[0]
    os.symlink("usr/lib/big", f"{low}/link")  # a symlink counts nothing
    lab.whiteout(f"{low}/usr/share/doc/x")
    lab.ops(
        "echo grown >> usr/lib/big; rm -rf cache; mkdir cache; echo c > cache/new; mv docs manual; "
        "mkdir -p deep/a/b/c; head -c 1234 /dev/zero > deep/a/b/c/z",
        "redirect_dir=on",
    )


def test_every_dir_total_is_what_the_kernel_shows(lab: Lab) -> None:
    _stack(lab)
    stack = lab.stack("redirect_dir=on")
    with lab.mounted("redirect_dir=on") as m:
        want = _kernel_totals(m)
    totals = DirTotals(stack)
    assert {d: totals.total(d) for d in want} == want
    assert want["/usr/lib"] == 5000 + 6 + 40 + 90 and want["/cache"] == 2  # (the copy-up; the opaque dir)
    assert want["/manual"] == 120  # a renamed dir: its bytes are in the lower it came from


def test_forget_sums_a_changed_dir_again_and_keeps_the_rest(lab: Lab) -> None:
    _stack(lab)
    stack = lab.stack("redirect_dir=on")
    totals = DirTotals(stack)
    assert totals.total("/") is not None
    assert totals.known("/usr/share") == 0 and totals.known("/deep/a/b") == 1234
    lab.ops("head -c 4000 /dev/zero > deep/a/b/c/z2; rm usr/lib/big", "redirect_dir=on")
    totals.forget("/deep/a/b/c", ["z2"])
    totals.forget("/usr/lib", ["big"])
    # the changed dirs and every dir above them are summed again; the others are kept
    assert totals.known("/deep/a/b/c") is None and totals.known("/deep") is None and totals.known("/") is None
    assert totals.known("/usr/share") == 0 and totals.known("/manual") == 120
    with lab.mounted("redirect_dir=on") as m:
        want = _kernel_totals(m)
    assert {d: totals.total(d) for d in want} == want
    assert want["/deep"] == 5234


def test_a_dir_replaced_by_another_forgets_what_was_under_it(lab: Lab) -> None:
    _stack(lab)
    stack = lab.stack("redirect_dir=on")
    totals = DirTotals(stack)
    assert totals.total("/usr") == 5000 + 6 + 40 + 90
    lab.ops("rm -rf usr/lib; mkdir usr/lib; echo 12345 > usr/lib/only", "redirect_dir=on")  # now opaque
    totals.forget("/usr", ["lib"])
    assert totals.known("/usr/lib") is None
    assert totals.total("/usr") == 6 and totals.total("/usr/lib") == 6


def test_a_sum_can_be_cancelled_and_resumed(lab: Lab) -> None:
    _stack(lab)
    totals = DirTotals(lab.stack("redirect_dir=on"))
    calls = []

    def cancel_after_three() -> bool:
        calls.append(1)
        return len(calls) > 3

    assert totals.total("/", cancel_after_three) is None
    assert totals.known("/") is None
    assert totals.total("/") == (5000 + 6 + 40 + 90) + 2 + 120 + 1234  # usr (doc/x deleted), cache, manual, deep


class _ChangeAfterReading(DirTotals):
    """DirTotals where another thread's change lands right after a given dir was read (and before it is stored)."""

    def __init__(self, stack: Stack, after: str, change: Callable[[], None]) -> None:
        super().__init__(stack)
        self.after, self.change = after, change

    def _read(self, path: str, where: _Where) -> _Read:
        got = super()._read(path, where)
        if path == self.after:
            self.after = ""
            self.change()
        return got


@pytest.mark.parametrize("after", ["/usr/lib", "/deep/a/b/c", "/"])
def test_a_change_while_summing_is_not_lost(lab: Lab, after: str) -> None:
    """A dir forgotten while a sum runs is read again: the total is the one after the change, never a mix."""
    _stack(lab)

    def change() -> None:  # as writes through the mount would, and the watcher's forget
        with open(os.path.join(lab.upper, "deep/a/b/c/z"), "ab") as f:
            f.write(b"+" * 766)
        with open(os.path.join(lab.upper, "usr/lib/new"), "wb") as f:
            f.write(b"n" * 10)
        totals.forget("/deep/a/b/c", ["z"])
        totals.forget("/usr/lib", ["new"])

    totals = _ChangeAfterReading(lab.stack("redirect_dir=on"), after, change)
    got = totals.total("/")
    assert totals.after == ""  # (the change came)
    with lab.mounted("redirect_dir=on") as m:
        want = _kernel_totals(m)
    assert got == want["/"] and {d: totals.total(d) for d in want} == want
    assert want["/deep"] == 2000 and want["/usr/lib"] == 5000 + 6 + 40 + 90 + 10
