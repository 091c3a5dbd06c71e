"""Hard links and the inode index (``index=on``): every name of a hard-linked lower file copied up through one of
them shows the one copied-up inode, on real mounts; the model must show the same, and say what it assumes
when the options do not say ``index=on``."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.kernel.lab import Lab, _diff
from tests.kernel.layers import model_snapshot
from ufs_tui.core.demo import remove_tree
from ufs_tui.core.explorer import Explorer
from ufs_tui.core.model import status as S
from ufs_tui.core.model.inode_index import INDEX_DIR, default_index, index_note
from ufs_tui.core.model.merge import OverlayView

pytestmark = pytest.mark.usefixtures("root_mount")

INDEX = "index=on,nfs_export=on"


def _three_names(lab: Lab) -> None:
    """The issue's stack: one lower inode under /d/a, /d/b and /d2/c."""
    l0 = lab.lowers[0]
    lab.file(f"{l0}/d/a", b"original\n")
    os.makedirs(f"{l0}/d2")
    os.link(f"{l0}/d/a", f"{l0}/d/b")
    os.link(f"{l0}/d/a", f"{l0}/d2/c")


@pytest.mark.parametrize("options", [INDEX, "index=on"])
def test_names_not_copied_up_show_the_indexed_copy(lab: Lab, options: str) -> None:
    _three_names(lab)
    lab.ops("echo modified >> d/a; chmod 600 d/b", options)
    assert not os.path.lexists(f"{lab.upper}/d2/c")  # only the index ties /d2/c to the copy
    kernel = lab.same(options)
    assert kernel["/d2/c"] == kernel["/d/a"] and kernel["/d2/c"][1:3] == (0o600, len(b"original\nmodified\n"))
    view = OverlayView(lab.stack(options))
    c = view.lookup("/d2/c")
    assert c is not None and c.status == S.COPIED_UP and c.layer.role == "upper"
    assert c.extra and c.real_path == c.extra["index"] and c.real_path.startswith(f"{lab.work}/{INDEX_DIR}/")
    assert os.path.samefile(c.real_path, f"{lab.upper}/d/a")  # one inode: the index entry is the upper copy
    fates = [(v.layer.name, v.fate) for v in view.versions("/d2/c")]
    assert fates == [("upper", S.VISIBLE), ("lower:0", S.F_SHADOWED)]
    hidden = [(h.name, h.status) for h in view.hidden("/d2")]
    assert hidden == [("c", S.SHADOWED)]  # what tree --all lists under the copy
    d = Explorer(lab.stack(options)).details(None, "/d2/c", str)  # the details panel
    assert dict(d.meta)["hard link"].startswith("one copied-up inode: all 3 names of this lower file")
    assert d.content is not None and d.content.data == b"original\nmodified\n"
    assert dict(d.meta)["real path"] == c.real_path


def test_without_index_on_the_model_says_what_it_assumes(lab: Lab, capfd: pytest.CaptureFixture[str]) -> None:
    """The same layers mounted without index=on: each name not copied up shows the lower's file; the model
    agrees, and says it assumes so since the work dir holds an index."""
    if default_index():
        pytest.skip("this kernel's overlay module turns the index on by default")
    _three_names(lab)
    lab.ops("echo modified >> d/a", INDEX)
    kernel = lab.same("index=off")
    assert kernel["/d2/c"][2] == len(b"original\n")
    assert model_snapshot(lab.stack("")) == kernel  # no option said: this kernel's default (off)
    note = index_note(lab.work, ())
    assert note is not None and "index=on" in note and index_note(lab.work, ("index=on",)) is None
    r = subprocess.run([sys.executable, "-m", "ufs_tui", "tree", *lab_args(lab)], capture_output=True, text=True)
    assert r.returncode == 0 and "note:" in r.stderr and "-o index=on" in r.stderr, r.stderr
    assert "c  [lower lower:0]" in r.stdout
    r = subprocess.run(
        [sys.executable, "-m", "ufs_tui", "tree", *lab_args(lab), "-o", "index=on"], capture_output=True, text=True
    )
    assert "note:" not in r.stderr and "c  [copied-up upper via the inode index" in r.stdout, r.stdout


def lab_args(lab: Lab) -> list[str]:
    return ["--lower", lab.lowers[0], "--upper", lab.upper, "--work", lab.work]


def test_deleting_one_name_indexes_the_others(lab: Lab) -> None:
    """``rm`` of one name of a lower hard link with index=on copies the inode into the index first: the other
    names now show that copy (same data), and the model follows it."""
    _three_names(lab)
    lab.ops("rm d/b", INDEX)
    kernel = lab.same(INDEX)
    assert "/d/b" not in kernel and kernel["/d/a"] == kernel["/d2/c"]
    e = OverlayView(lab.stack(INDEX)).lookup("/d/a")
    assert e is not None and e.extra and "index" in e.extra


def test_metacopy_chmod_through_one_name(lab: Lab) -> None:
    """metacopy=on: a chmod through one name indexes a metadata-only copy; the other names show its mode and
    the lower's data (metacopy, data from lower:0)."""
    _three_names(lab)
    options = "index=on,redirect_dir=on,metacopy=on"
    lab.ops("chmod 700 d/b", options)
    kernel = lab.same(options)
    assert kernel["/d2/c"][1] == 0o700
    c = OverlayView(lab.stack(options)).lookup("/d2/c")
    assert c is not None and c.status == S.METACOPY and c.extra and c.extra["data_layer"] == "lower:0"


def test_index_whiteout_fails_the_lookup(lab: Lab) -> None:
    """Under nfs_export=on the index holds dirs too. With the upper's copies taken away, mounting whites out
    the orphan index entry of dir /d, and a file's entry is made a whiteout here (what the kernel leaves when
    every name is deleted): the lookup of /d and of /d2/c, which the upper does not hold, fails with EIO.
    The model predicts the same errno."""
    _three_names(lab)
    lab.ops("echo x >> d/a", INDEX)
    remove_tree(f"{lab.upper}/d")
    index = os.path.join(lab.work, INDEX_DIR)
    (entry,) = [n for n in os.listdir(index) if not os.path.isdir(os.path.join(index, n))]
    os.unlink(os.path.join(index, entry))
    os.mknod(os.path.join(index, entry), 0o20000, 0)  # what ovl_cleanup_and_whiteout leaves
    kernel = lab.same(INDEX)
    eio = ("error", 0, 0, "EIO", None)
    assert kernel["/d2/c"] == kernel["/d"] == eio, _diff({}, kernel)
