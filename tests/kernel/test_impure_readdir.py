"""``readdir`` of an impure upper dir looks each upper name up (:mod:`ufs_tui.core.model.readdir`): a chmod under
``metacopy=on`` leaves a metacopy file, and the same layers mounted with metacopy off then refuse that name
(EPERM), which fails the listing of a dir that merges nothing, and fails it or leaves the name out in a
merged dir. The model must say which, on real mounts."""

from __future__ import annotations

import errno
import os

import pytest

from tests.kernel.lab import Lab
from ufs_tui.core.explorer import Explorer
from ufs_tui.core.model import status as S
from ufs_tui.core.model.merge import OverlayView

pytestmark = pytest.mark.usefixtures("root_mount")

META = "redirect_dir=on,metacopy=on"


def _chmod_under_metacopy(lab: Lab) -> None:
    """/new (a dir only the upper has) and /both (merged with lower l0) each get a copied-up /f (a metacopy file
    after a chmod) and a plain file /g written in the upper only."""
    lab.file(f"{lab.lowers[0]}/new_src/f", b"data")
    lab.file(f"{lab.lowers[0]}/both/f", b"data")
    lab.ops("mkdir new; mv new_src/f new/f; chmod 600 new/f both/f; echo g > new/g; echo g > both/g", META)


def test_an_impure_dir_that_merges_nothing_cannot_be_listed(lab: Lab) -> None:
    _chmod_under_metacopy(lab)
    assert os.getxattr(f"{lab.upper}/new", "trusted.overlay.impure") == b"y"
    with lab.mounted("metacopy=off") as m:
        with pytest.raises(PermissionError):
            os.listdir(f"{m}/new")
        assert os.lstat(f"{m}/new/g").st_size == 2  # the other names still look up
    view = OverlayView(lab.stack("metacopy=off"))
    fault = view.readdir_fault("/new")
    assert fault is not None and fault.certain and (fault.name, fault.errno) == ("f", "EPERM")
    assert {e.name: e.status for e in view.list_dir("/new")} == {"f": S.ERROR, "g": S.NEW}
    d = Explorer(lab.stack("metacopy=off")).details(None, "/new", str)
    assert dict(d.meta)["listing"].startswith("listing this dir fails (EPERM): the kernel looks names up")


def test_an_impure_merged_dir_fails_or_leaves_the_name_out(lab: Lab) -> None:
    _chmod_under_metacopy(lab)
    with lab.mounted("metacopy=off") as m:
        try:
            listed: set[str] | int = set(os.listdir(f"{m}/both"))
        except OSError as e:
            listed = e.errno or 0
    fault = OverlayView(lab.stack("metacopy=off")).readdir_fault("/both")
    assert fault is not None and not fault.certain and (fault.name, fault.errno) == ("f", "EPERM")
    assert listed in ({"g"}, errno.EPERM)  # which one: the names' order on disk


def test_with_metacopy_on_nothing_fails(lab: Lab) -> None:
    _chmod_under_metacopy(lab)
    with lab.mounted(META) as m:
        assert sorted(os.listdir(f"{m}/new")) == ["f", "g"]
    view = OverlayView(lab.stack(META))
    assert view.readdir_fault("/new") is None and view.readdir_fault("/both") is None
    assert "listing" not in dict(Explorer(lab.stack(META)).details(None, "/new", str).meta)
