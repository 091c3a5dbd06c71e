"""Redirects over generations of layers, and what ``redirect_dir=nofollow`` refuses, on real mounts.

A redirect whose target path runs through a dir that is itself redirected in a lower layer is looked up from
that dir's redirect on (``ovl_lookup_layer`` rewrites the path as it walks it): what image builds make when
a renamed dir is renamed again in a later layer. With ``nofollow`` the kernel refuses a redirect only where
its lookup would go on below (EPERM) and lists nothing under a dir it refuses.
"""

from __future__ import annotations

import os
import shutil

import pytest

from tests.kernel.lab import Lab, T, _diff
from tests.kernel.layers import kernel_snapshot, model_snapshot
from ufs_tui.core.model import status as S
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack

pytestmark = pytest.mark.usefixtures("root_mount")

EPERM = ("error", 0, 0, "EPERM", None)


def test_redirect_through_a_redirected_dir(lab: Lab) -> None:
    """The issue's stack: /deep3 -> /p/sub1/deep, and /p/sub1 in the middle layer -> /a/sub: /deep3/f shows."""
    l0, l1 = lab.lowers
    lab.file(f"{l1}/a/sub/deep/f", b"f\n")
    os.makedirs(f"{l0}/p/sub1")
    os.setxattr(f"{l0}/p/sub1", T + "redirect", b"/a/sub")
    top = lab.mk("top")
    os.makedirs(f"{top}/deep3")
    os.setxattr(f"{top}/deep3", T + "redirect", b"/p/sub1/deep")
    with lab.mounted("redirect_dir=on", [top, l0, l1]) as m:
        kernel = kernel_snapshot(m)
    model = model_snapshot(Stack.build([top, l0, l1], None, None, options=("redirect_dir=on",)))
    assert kernel["/deep3/f"][0] == "file" and model == kernel, _diff(model, kernel)


def _next_generation(lab: Lab, n: int) -> None:
    """The upper becomes the top lower under a fresh upper and work dir (as a build's next layer)."""
    done = os.path.join(lab.root, f"gen{n}")
    os.rename(lab.upper, done)
    lab.lowers.insert(0, done)
    shutil.rmtree(lab.work)
    os.makedirs(lab.upper)
    os.makedirs(lab.work)


@pytest.mark.parametrize("options", ["redirect_dir=on", "redirect_dir=on,metacopy=on"])
def test_renames_over_three_generations(lab: Lab, options: str) -> None:
    """Real ``mv``s: rename a dir, make the upper a lower, rename its child, again: each generation's view
    matches the kernel's, and the last rename shows the bottom layer's files."""
    l1 = lab.lowers[1]
    lab.file(f"{l1}/a/sub/deep/f", b"bottom\n")
    lab.file(f"{l1}/a/sub/g", b"g\n", 0o600)
    lab.ops("mv a p; chmod 700 p/sub/g", options)
    lab.same(options)
    _next_generation(lab, 1)
    lab.ops("mv p/sub q; echo more >> q/deep/f", options)
    lab.same(options)
    _next_generation(lab, 2)
    lab.ops("mv q/deep r; mkdir -p a/sub; mv r a/sub/deep2", options)
    kernel = lab.same(options)
    assert kernel["/a/sub/deep2/f"][0] == "file" and "/q/deep" not in kernel
    e = OverlayView(lab.stack(options)).lookup("/a/sub/deep2")
    assert e is not None and e.status == S.REDIRECT


def test_nofollow_refuses_only_where_lookup_goes_on(lab: Lab) -> None:
    """nofollow: EPERM for a redirect read where the parent has layers below (whatever it points at, in the
    upper or a middle lower); no error under an opaque dir or in the parent's last layer; nothing listed under
    a refused dir."""
    l0, l1 = lab.lowers
    for path, value in (
        (f"{lab.upper}/hit", b"x"),  # a target below
        (f"{lab.upper}/miss", b"nowhere"),  # no target: still refused
        (f"{lab.upper}/o/r", b"x"),  # /o is opaque in the upper: nothing below it
        (f"{l0}/mid", b"x"),  # a middle lower with a lower below it
        (f"{l1}/last", b"x"),  # the bottom lower: never read
        (f"{lab.upper}/abs", b"/y"),
    ):
        os.makedirs(path)
        lab.file(f"{path}/k", b"k")
        os.setxattr(path, T + "redirect", value)
    os.setxattr(f"{lab.upper}/o", T + "opaque", b"y")
    lab.file(f"{l1}/x/h", b"h")
    lab.file(f"{l1}/y/j", b"j")
    lab.whiteout(f"{lab.upper}/x")  # renamed away, as the kernel leaves it (else /x is reached twice: ESTALE)
    lab.whiteout(f"{lab.upper}/y")
    lab.file(f"{l1}/o/x/hidden", b"h")
    kernel = lab.same("redirect_dir=nofollow")
    assert kernel["/hit"] == kernel["/miss"] == kernel["/mid"] == kernel["/abs"] == EPERM
    assert "/hit/k" not in kernel and kernel["/o/r/k"][0] == kernel["/last/k"][0] == "file"
    view = OverlayView(lab.stack("redirect_dir=nofollow"))
    hit = view.lookup("/hit")
    assert hit is not None and hit.status == S.ERROR and hit.errno == "EPERM" and hit.sources is None
    assert [e.name for e in view.list_dir("/o/r")] == ["k"]
    with pytest.raises(StackError):
        view.list_dir("/hit")
    kernel = lab.same("redirect_dir=on")
    assert kernel["/hit/h"][0] == kernel["/abs/j"][0] == "file" and "/miss/k" in kernel
