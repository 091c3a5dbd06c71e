"""Each marker form (OVERLAY-NOTES §2) and each row of §3, on real mounts: the model must show what the kernel shows.

Every test builds real layers, mounts them (as root, or unprivileged in a user namespace for ``userxattr``),
and compares the model (:func:`tests.kernel.layers.model_snapshot`) with the kernel's view of a fresh mount.
Rows of §3 also check what the kernel left in the upper and the status the model gives it.
"""

from __future__ import annotations

import json
import os
import stat
import tempfile

import pytest

from tests import nobody
from tests.kernel.lab import Lab, T, _diff
from tests.kernel.layers import (
    ERROR,
    chown_tree,
    model_snapshot,
    run_in_userns,
)
from ufs_tui.core.demo import remove_tree
from ufs_tui.core.model import status as S
from ufs_tui.core.model.markers import probe
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack

pytestmark = pytest.mark.usefixtures("root_mount")


def status_of(stack: Stack, path: str) -> str | None:
    e = OverlayView(stack).lookup(path)
    return e.status if e else None


def hidden_status(stack: Stack, path: str) -> list[tuple[str, str]]:
    parent, name = os.path.split(path)
    return [(h.layer.name, h.status) for h in OverlayView(stack).hidden(parent) if h.name == name]


# ------------------------------------------------------------------------------------------ §2 whiteouts
def test_chardev_whiteout_and_other_devices(lab: Lab) -> None:
    l0, l1 = lab.lowers
    for n in ("gone", "dev13", "dev01", "blk", "linked1", "linked2"):
        lab.file(f"{l1}/{n}", b"below")
    lab.whiteout(f"{l0}/gone")
    os.mknod(f"{l0}/dev13", stat.S_IFCHR | 0o600, os.makedev(1, 3))
    os.mknod(f"{l0}/dev01", stat.S_IFCHR | 0o600, os.makedev(0, 1))
    os.mknod(f"{l0}/blk", stat.S_IFBLK | 0o600, 0)
    lab.whiteout(f"{l0}/linked1")
    os.link(f"{l0}/linked1", f"{l0}/linked2")  # nlink 2: still a whiteout
    assert os.lstat(f"{l0}/linked2").st_nlink == 2
    k = lab.same()
    assert "/gone" not in k and "/linked1" not in k and "/linked2" not in k
    assert k["/dev13"][0] == "chardev" and k["/dev01"][0] == "chardev" and k["/blk"][0] == "blockdev"
    assert hidden_status(lab.stack(), "/gone") == [("lower:0", S.WHITEOUT), ("lower:1", S.WHITED_OUT)]


def test_xattr_whiteout_forms(lab: Lab) -> None:
    l0, l1 = lab.lowers
    for n in ("zero", "nonempty", "link", "upzero"):
        lab.file(f"{l1}/d/{n}", b"below")
    lab.file(f"{l0}/d/zero", b"")
    os.setxattr(f"{l0}/d/zero", T + "whiteout", b"y")
    lab.file(f"{l0}/d/nonempty", b"data")
    os.setxattr(f"{l0}/d/nonempty", T + "whiteout", b"y")
    os.symlink("target", f"{l0}/d/link")
    os.setxattr(f"{l0}/d/link", T + "whiteout", b"y", follow_symlinks=False)
    lab.file(f"{lab.upper}/d/upzero", b"")
    os.setxattr(f"{lab.upper}/d/upzero", T + "whiteout", b"y")
    k = lab.same()
    assert "/d/zero" not in k and "/d/upzero" not in k
    assert k["/d/nonempty"][0] == "file" and k["/d/link"] == ("symlink", 0o777, 6, "target", None)


@pytest.mark.parametrize("marked", [True, False])
def test_xattr_whiteout_readdir_rule(lab: Lab, marked: bool) -> None:
    """readdir hides an xattr whiteout only where that lower dir has opaque=x; lookup always honours it."""
    l0, l1 = lab.lowers
    lab.file(f"{l1}/d/w", b"below")
    lab.file(f"{l1}/d/keep", b"keep")
    lab.file(f"{l0}/d/w", b"")
    os.setxattr(f"{l0}/d/w", T + "whiteout", b"y")
    if marked:
        os.setxattr(f"{l0}/d", T + "opaque", b"x")
    with lab.mounted() as m:
        listed = os.listdir(f"{m}/d")
        assert not os.path.lexists(f"{m}/d/w")
        assert ("w" in listed) is not marked
        assert "keep" in listed
    lab.same()
    assert status_of(lab.stack(), "/d/w") is None
    assert status_of(lab.stack(), "/d") == S.LOWER  # opaque=x is not opaque


@pytest.mark.parametrize("value", [b"y", b"yes", b"Y", b"", b"x"])
def test_opaque_only_for_exactly_y(lab: Lab, value: bytes) -> None:
    l0, l1 = lab.lowers
    lab.file(f"{l1}/d/below", b"below")
    lab.file(f"{l0}/d/mine", b"mine")
    lab.file(f"{lab.upper}/u/top", b"top")
    lab.file(f"{l0}/u/under", b"under")
    os.setxattr(f"{l0}/d", T + "opaque", value)
    os.setxattr(f"{lab.upper}/u", T + "opaque", value)
    k = lab.same()
    assert ("/d/below" in k) is (value != b"y")
    assert ("/u/under" in k) is (value != b"y")
    assert status_of(lab.stack(), "/u") == (S.OPAQUE if value == b"y" else S.MERGED)


# ------------------------------------------------------------------------------------------ §2 redirects
def test_redirect_relative_made_by_kernel(lab: Lab) -> None:
    l0, _ = lab.lowers
    lab.file(f"{l0}/docs/readme", b"read me")
    with lab.mounted("redirect_dir=on") as m:
        os.rename(f"{m}/docs", f"{m}/manual")
    assert lab.xattrs(f"{lab.upper}/manual")[T + "redirect"] == b"docs"
    assert stat.S_ISCHR(os.lstat(f"{lab.upper}/docs").st_mode) and os.lstat(f"{lab.upper}/docs").st_rdev == 0
    k = lab.same("redirect_dir=on")
    assert k["/manual/readme"][0] == "file" and "/docs" not in k
    st = lab.stack("redirect_dir=on")
    assert status_of(st, "/manual") == S.REDIRECT
    assert ("upper", S.WHITEOUT) in hidden_status(st, "/docs")
    # the redirect is followed by default mounts too (redirect_always_follow)
    lab.same("")


def test_redirect_absolute_made_by_kernel(lab: Lab) -> None:
    l0, l1 = lab.lowers
    lab.file(f"{l0}/a/d/one", b"1")
    lab.file(f"{l1}/a/d/two", b"2")
    lab.mk("l0/b")
    with lab.mounted("redirect_dir=on") as m:
        os.rename(f"{m}/a/d", f"{m}/b/e")
    assert lab.xattrs(f"{lab.upper}/b/e")[T + "redirect"] == b"/a/d"
    k = lab.same("redirect_dir=on")
    assert {"/b/e/one", "/b/e/two"} <= set(k) and "/a/d" not in k
    assert status_of(lab.stack("redirect_dir=on"), "/b/e") == S.REDIRECT


def test_dir_rename_is_exdev_by_default(lab: Lab) -> None:
    lab.file(f"{lab.lowers[0]}/d/f")
    with lab.mounted() as m, pytest.raises(OSError) as e:
        os.rename(f"{m}/d", f"{m}/e")
    assert e.value.errno == 18  # EXDEV
    lab.same()


def test_redirect_not_followed_with_nofollow(lab: Lab) -> None:
    """With redirect_dir=nofollow a redirect where lookup goes on is EPERM: the model says error."""
    l0, l1 = lab.lowers
    lab.file(f"{l1}/o/two", b"2")
    lab.mk("l0/n")
    os.setxattr(f"{l0}/n", T + "redirect", b"o")
    lab.whiteout(f"{l0}/o")
    lab.mk("u/up")
    os.setxattr(f"{lab.upper}/up", T + "redirect", b"/o")
    lab.mk("u/alone")  # nothing below its redirect target: still refused
    lab.mk("l0/lonely")
    os.setxattr(f"{l0}/lonely", T + "redirect", b"nowhere")
    lab.mk("l1/last")  # the last lower's redirect is never read
    os.setxattr(f"{l1}/last", T + "redirect", b"o")
    os.setxattr(f"{lab.upper}/alone", T + "redirect", b"/nowhere")
    k = lab.same("redirect_dir=nofollow")
    assert k["/n"] == k["/up"] == k["/alone"] == k["/lonely"] == ERROR and k["/last"][0] == "dir"
    k = lab.same("redirect_dir=on")
    assert k["/n"][0] == "dir" and "/n/two" in k
    assert "/up/two" not in k  # /o is whited out in lower:0, which stops the absolute lookup there


# ------------------------------------------------------------------------------------------ §2 metacopy
def test_metacopy_chmod(lab: Lab) -> None:
    data = bytes(range(256)) * 64
    lab.file(f"{lab.lowers[0]}/bin/tool", data, 0o755)
    with lab.mounted("redirect_dir=on,metacopy=on") as m:
        os.chmod(f"{m}/bin/tool", 0o700)
    up = f"{lab.upper}/bin/tool"
    xs = lab.xattrs(up)
    assert T + "metacopy" in xs and T + "origin" in xs
    st = os.lstat(up)
    assert st.st_size == len(data) and st.st_blocks * 512 < len(data)  # full size, (almost) no blocks
    k = lab.same("redirect_dir=on,metacopy=on")
    assert k["/bin/tool"][1] == 0o700
    stack = lab.stack("redirect_dir=on,metacopy=on")
    assert status_of(stack, "/bin/tool") == S.METACOPY
    fates = [(v.layer.name, v.fate) for v in OverlayView(stack).versions("/bin/tool")]
    assert fates == [("upper", S.VISIBLE), ("lower:0", S.F_DATA)]
    # writing clears it: a full copy
    with lab.mounted("redirect_dir=on,metacopy=on") as m, open(f"{m}/bin/tool", "ab") as f:
        f.write(b"!")
    assert T + "metacopy" not in lab.xattrs(up)
    lab.same("redirect_dir=on,metacopy=on")
    assert status_of(lab.stack("redirect_dir=on,metacopy=on"), "/bin/tool") == S.COPIED_UP


def test_metacopy_from_data_only_layer(lab: Lab) -> None:
    l1, d1 = lab.lowers
    data = b"the data lives in the data-only layer\n" * 10
    lab.file(f"{d1}/blobs/abc", data)
    with open(f"{l1}/f", "wb") as f:
        f.truncate(len(data))
    os.setxattr(f"{l1}/f", T + "metacopy", b"")
    os.setxattr(f"{l1}/f", T + "redirect", b"/blobs/abc")
    opts = "redirect_dir=on,metacopy=on"
    kernel = lab.kernel(opts, lowers=[l1, ":" + d1])  # lowerdir=L1::D1
    assert "/blobs" not in kernel  # data-only paths are invisible
    model = model_snapshot(lab.stack(opts, lower=f"{l1}::{d1}"))
    assert model == kernel, _diff(model, kernel)
    e = OverlayView(lab.stack(opts, lower=f"{l1}::{d1}")).lookup("/f")
    assert e is not None and e.source == f"{d1}/blobs/abc"


# ------------------------------------------------------------------------------------------ §2 namespaces
def test_userxattr_markers_and_trusted_ignored() -> None:
    root = tempfile.mkdtemp(prefix="ufs-markers-")
    os.chmod(root, 0o755)
    try:
        lab = Lab(root)
        l0, l1 = lab.lowers
        for n in ("uo", "to"):
            lab.file(f"{l1}/{n}/below", b"below")
            lab.file(f"{l0}/{n}/mine", b"mine")
        os.setxattr(f"{l0}/uo", "user.overlay.opaque", b"y")
        os.setxattr(f"{l0}/to", T + "opaque", b"y")
        lab.file(f"{l1}/uw", b"below")
        lab.file(f"{l1}/tw", b"below")
        lab.file(f"{l0}/uw", b"")
        os.setxattr(f"{l0}/uw", "user.overlay.whiteout", b"y")
        lab.file(f"{l0}/tw", b"")
        os.setxattr(f"{l0}/tw", T + "whiteout", b"y")
        lab.file(f"{l0}/dir/x")
        chown_tree(root, nobody.UID)
        run = {"lowers": lab.lowers, "upper": lab.upper, "work": lab.work, "mnt": lab.mnt, "options": "userxattr"}
        out = run_in_userns(run | {"ops": [["rmrf_mkdir", 0, 0, 0, ""]]})  # rm -rf /dir; mkdir /dir
        kernel = {k: tuple(v) for k, v in out["after"].items()}
        model = model_snapshot(lab.stack("userxattr", ns="user"))
        assert model == kernel, _diff(model, kernel)  # type: ignore[arg-type]
        assert "/uo/below" not in kernel and "/to/below" in kernel
        assert "/uw" not in kernel and kernel["/tw"][0] == "file"
        assert os.getxattr(f"{lab.upper}/dir", "user.overlay.opaque") == b"y"  # rm -rf + mkdir, made by the kernel
        assert status_of(lab.stack("userxattr", ns="user"), "/dir") == S.OPAQUE
    finally:
        remove_tree(root)


def test_user_overlay_xattrs_ignored_by_trusted_mount(lab: Lab) -> None:
    l0, l1 = lab.lowers
    lab.file(f"{l1}/d/below")
    lab.file(f"{l0}/d/mine")
    os.setxattr(f"{l0}/d", "user.overlay.opaque", b"y")
    lab.file(f"{l1}/w", b"below")
    lab.file(f"{l0}/w", b"")
    os.setxattr(f"{l0}/w", "user.overlay.whiteout", b"y")
    k = lab.same()
    assert "/d/below" in k and k["/w"][0] == "file"


def test_bookkeeping_xattrs_never_change_the_view(lab: Lab) -> None:
    l0, l1 = lab.lowers
    lab.file(f"{l1}/d/below")
    lab.file(f"{l0}/d/f", b"f")
    lab.file(f"{lab.upper}/d/g", b"g")
    lab.file(f"{lab.upper}/h", b"h")
    before = lab.same()
    for p in (f"{l0}/d", f"{lab.upper}/d", f"{l0}/d/f", f"{lab.upper}/d/g", f"{lab.upper}/h"):
        for key, value in (("origin", b""), ("impure", b"y"), ("nlink", b"U+1"), ("overlay.opaque", b"y")):
            os.setxattr(p, T + key, value)
        os.setxattr(p, T + "overlay.whiteout", b"y")  # a nested overlay's escaped marker
    os.setxattr(lab.upper, T + "uuid", os.urandom(16))
    after = lab.same()
    assert after == before
    assert model_snapshot(lab.stack()) == before


# ------------------------------------------------------------------------------------------ §3 rows
def test_row_write_copies_up_with_origin_and_impure_parent(lab: Lab) -> None:
    l0 = lab.lowers[0]
    for n in ("w", "a", "c", "t"):
        lab.file(f"{l0}/etc/{n}", b"lower")
    lab.ops("echo new > etc/w; echo more >> etc/a; chmod 600 etc/c; touch -d 2001-01-01 etc/t")
    for n in ("w", "a", "c", "t"):
        up = f"{lab.upper}/etc/{n}"
        assert stat.S_ISREG(os.lstat(up).st_mode) and T + "origin" in lab.xattrs(up)
        assert os.lstat(up).st_blocks > 0  # a full copy
    xs = lab.xattrs(f"{lab.upper}/etc")
    assert T + "origin" in xs and xs.get(T + "impure") == b"y"
    lab.same()
    st = lab.stack()
    assert {status_of(st, f"/etc/{n}") for n in ("w", "a", "c", "t")} == {S.COPIED_UP}
    assert status_of(st, "/etc") == S.MERGED
    assert [(v.layer.name, v.fate) for v in OverlayView(st).versions("/etc/w")] == [
        ("upper", S.VISIBLE),
        ("lower:0", S.F_SHADOWED),
    ]


def test_row_create_new_file(lab: Lab) -> None:
    lab.ops("echo hi > g")
    assert lab.xattrs(f"{lab.upper}/g") == {}
    lab.same()
    assert status_of(lab.stack(), "/g") == S.NEW


def test_row_delete_lower_file_and_dir(lab: Lab) -> None:
    l0, l1 = lab.lowers
    lab.file(f"{l0}/f")
    lab.file(f"{l1}/d/x")
    lab.ops("rm f; rm -rf d")
    for n in ("f", "d"):
        st = os.lstat(f"{lab.upper}/{n}")
        assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0
    k = lab.same()
    assert "/f" not in k and "/d" not in k
    stack = lab.stack()
    assert hidden_status(stack, "/f") == [("upper", S.WHITEOUT), ("lower:0", S.WHITED_OUT)]
    fates = [(v.layer.name, v.fate, v.by.name if v.by else None) for v in OverlayView(stack).versions("/d")]
    assert fates == [("upper", S.F_WHITEOUT, None), ("lower:1", S.F_WHITED_OUT, "upper")]


def test_row_delete_upper_only_file_leaves_nothing(lab: Lab) -> None:
    lab.ops("echo x > only; rm only")
    assert not os.path.lexists(f"{lab.upper}/only")
    lab.same()


@pytest.mark.parametrize("script", ["rm -rf d; mkdir d", "rm d; mkdir d"])
def test_row_opaque_dir(lab: Lab, script: str) -> None:
    """rm -rf + mkdir over a lower dir, and mkdir over a deleted file: an opaque dir."""
    l0 = lab.lowers[0]
    if script.startswith("rm -rf"):
        lab.file(f"{l0}/d/old")
    else:
        lab.file(f"{l0}/d", b"a file")
    lab.ops(script)
    assert lab.xattrs(f"{lab.upper}/d").get(T + "opaque") == b"y"
    lab.same()
    stack = lab.stack()
    assert status_of(stack, "/d") == S.OPAQUE
    assert hidden_status(stack, "/d") == [("lower:0", S.OPAQUE_HIDDEN)]


def test_row_rename_lower_dir_with_redirect_dir(lab: Lab) -> None:
    lab.file(f"{lab.lowers[1]}/d/x")
    lab.ops("mv d e", "redirect_dir=on")
    assert lab.xattrs(f"{lab.upper}/e")[T + "redirect"] == b"d"
    assert os.lstat(f"{lab.upper}/d").st_rdev == 0
    lab.same("redirect_dir=on")
    assert status_of(lab.stack("redirect_dir=on"), "/e") == S.REDIRECT


def test_row_mount_itself(lab: Lab) -> None:
    lab.file(f"{lab.lowers[0]}/f")
    lab.ops("true")
    assert T + "uuid" in lab.xattrs(lab.upper)
    assert stat.S_IMODE(os.lstat(f"{lab.work}/work").st_mode) == 0
    lab.same()
    assert status_of(lab.stack(), "/f") == S.LOWER


def test_versions_fates_merged_and_opaque(lab: Lab) -> None:
    l0, l1 = lab.lowers
    lab.file(f"{l1}/m/a")
    lab.file(f"{l0}/m/b")
    lab.file(f"{lab.upper}/m/c")
    lab.file(f"{l1}/o/a")
    lab.mk("u/o")
    os.setxattr(f"{lab.upper}/o", T + "opaque", b"y")
    lab.same()
    view = OverlayView(lab.stack())
    assert [(v.layer.name, v.fate) for v in view.versions("/m")] == [
        ("upper", S.VISIBLE),
        ("lower:0", S.F_MERGED),
        ("lower:1", S.F_MERGED),
    ]
    assert [(v.layer.name, v.fate) for v in view.versions("/o")] == [
        ("upper", S.VISIBLE),
        ("lower:1", S.F_OPAQUE_HIDDEN),
    ]


def test_versions_below_an_opaque_or_deleted_dir(lab: Lab) -> None:
    """Copies that lookup never reaches, because an ancestor is opaque or deleted above them, are still
    reported, with the fate that hides them and the layer that decides it."""
    l0, l1 = lab.lowers
    lab.file(f"{l1}/o/a")
    lab.file(f"{l0}/o/b")
    lab.file(f"{l1}/o/sub/deep")
    lab.file(f"{lab.upper}/o/a")
    os.setxattr(f"{lab.upper}/o", T + "opaque", b"y")
    lab.file(f"{l0}/p/y")
    os.setxattr(f"{l0}/p", T + "opaque", b"y")
    lab.file(f"{l1}/p/x")
    lab.file(f"{l1}/w/x")
    lab.whiteout(f"{lab.upper}/w")
    kernel = lab.same()
    assert "/o/b" not in kernel and "/o/sub" not in kernel and "/p/x" not in kernel and "/w" not in kernel
    view = OverlayView(lab.stack())

    def fates(path: str) -> list[tuple[str, str, str | None]]:
        return [(v.layer.name, v.fate, v.by.name if v.by else None) for v in view.versions(path)]

    assert fates("/o/a") == [("upper", S.VISIBLE, None), ("lower:1", S.F_OPAQUE_HIDDEN, "upper")]
    assert fates("/o/b") == [("lower:0", S.F_OPAQUE_HIDDEN, "upper")]  # the parent's sources stop at the upper
    assert fates("/o/sub") == [("lower:1", S.F_OPAQUE_HIDDEN, "upper")]
    assert fates("/o/sub/deep") == [("lower:1", S.F_OPAQUE_HIDDEN, "upper")]  # /o/sub is no merged dir
    assert fates("/p/x") == [("lower:1", S.F_OPAQUE_HIDDEN, "lower:0")]
    assert fates("/w/x") == [("lower:1", S.F_PARENT_HIDDEN, "upper")]
    assert view.lookup("/o/b") is None and view.lookup("/p/x") is None


# ------------------------------------------------------------------------------------------ image-layer forms
def test_oci_whiteouts_only_with_option(lab: Lab) -> None:
    l0, l1 = lab.lowers
    lab.file(f"{l1}/gone", b"below")
    lab.file(f"{l1}/d/old", b"below")
    lab.file(f"{l0}/.wh.gone", b"")
    lab.file(f"{l0}/d/.wh..wh..opq", b"")
    lab.file(f"{l0}/d/new", b"new")
    k = lab.same()  # the kernel ignores .wh. names: they and what they name are all there
    assert {"/gone", "/.wh.gone", "/d/old", "/d/.wh..wh..opq"} <= set(k)
    model = model_snapshot(lab.stack("oci-whiteouts"))
    assert set(model) == {"/d", "/d/new"}


def test_fuse_overlayfs_opaque_dir(lab: Lab) -> None:
    l0, l1 = lab.lowers
    lab.file(f"{l1}/d/old", b"below")
    lab.file(f"{l0}/d/.wh..wh..opq", b"")
    lab.whiteout(f"{l0}/d/.wh..opq")
    lab.file(f"{l0}/d/new", b"new")
    k = lab.same()  # the kernel: not opaque (no xattr); .wh..opq is a whiteout of nothing
    assert "/d/old" in k and "/d/.wh..wh..opq" in k
    model = model_snapshot(lab.stack("oci-whiteouts"))
    assert set(model) == {"/d", "/d/new"}
    assert status_of(lab.stack("oci-whiteouts"), "/d") == S.OPAQUE


# ------------------------------------------------------------------------------------------ hostile input
HOSTILE = ["new\nline", os.fsdecode(b"bad\xffbyte"), "[red]rich[bold]", "\x1b[31mred\x1b[0m", " sp ", "-dash"]


def test_hostile_names(lab: Lab) -> None:
    l0, l1 = lab.lowers
    for n in HOSTILE:
        lab.file(os.path.join(l1, n, n), n.encode("utf-8", "surrogateescape"))
        lab.file(os.path.join(l0, n, "x"))
        os.symlink(n, os.path.join(l0, "to" + n))
        lab.file(os.path.join(l1, "w" + n))
        lab.whiteout(os.path.join(l0, "w" + n))
        lab.file(os.path.join(lab.upper, "u" + n))
    k = lab.same()
    assert len(k) == 5 * len(HOSTILE)  # dir, dir/name, dir/x, symlink, upper file
    lab.ops('for f in *; do echo more >> "$f/x" 2>/dev/null || true; done')
    lab.same()


def test_entry_vanishing_after_listing_is_gone(lab: Lab) -> None:
    l0 = lab.lowers[0]
    lab.file(f"{l0}/d/f")
    lab.file(f"{l0}/d/g")
    names = os.listdir(f"{l0}/d")
    os.unlink(f"{l0}/d/f")
    os.rmdir(lab.mk("l0/e"))
    assert "f" in names
    assert probe(f"{l0}/d/f") is None
    assert probe(f"{l0}/e/inside") is None
    view = OverlayView(lab.stack())
    assert [e.name for e in view.list_dir("/d")] == ["g"] and view.lookup("/d/f") is None
    assert view.errors == {}
    lab.same()


def test_unreadable_dir_is_an_error_not_a_crash(lab: Lab) -> None:
    l0, l1 = lab.lowers
    lab.file(f"{l0}/open/f")
    lab.file(f"{l0}/secret/f")
    lab.file(f"{l1}/secret/g")
    os.chmod(f"{l0}/secret", 0o700)  # root's: uid 65534 cannot read it
    for p in (lab.root, *lab.lowers, lab.upper):
        os.chmod(p, 0o755)
    script = (
        "import json, sys\n"
        "from ufs_tui.core.model.merge import OverlayView\n"
        "from ufs_tui.core.model.stack import Stack\n"
        "v = OverlayView(Stack.build(sys.argv[1:3], xattr_ns='user'))\n"
        "paths = [p for p, _ in v.walk()]\n"
        "print(json.dumps({'paths': paths, 'errors': v.errors}))\n"
    )
    r = nobody.run("-c", script, l0, l1, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert "/open/f" in out["paths"]
    assert any(real.startswith(f"{l0}/secret") for real in out["errors"]), out


def test_metacopy_needs_metacopy_on(lab: Lab) -> None:
    """Hand-made metacopy files: EPERM with metacopy off (the default), EIO when no data is found below."""
    l0, l1 = lab.lowers
    for n in ("f", "g", "z"):
        lab.file(f"{l1}/{n}", b"data\n")
    for path in (f"{l0}/f", f"{l0}/g", f"{lab.upper}/g", f"{lab.upper}/h", f"{l1}/z"):
        with open(path, "wb") as f:
            f.truncate(5)
        os.setxattr(path, T + "metacopy", b"")
    kernel = lab.kernel("")
    assert kernel["/f"] == kernel["/g"] == kernel["/h"] == kernel["/z"] == ERROR
    model = model_snapshot(lab.stack("metacopy=off"))
    assert model == kernel, _diff(model, kernel)
    on = "redirect_dir=on,metacopy=on"
    kernel = lab.same(on)
    assert kernel["/f"][4] == kernel["/g"][4] != ERROR[4] and kernel["/h"] == kernel["/z"] == ERROR
    assert status_of(lab.stack(on), "/g") == S.METACOPY and status_of(lab.stack(on), "/h") == S.ERROR


# ------------------------------------------------------------------ redirects the kernel refuses or ignores
@pytest.mark.parametrize(
    ("value", "why"),
    [
        (b"", "EINVAL"),
        (b"../x", "EINVAL"),  # relative, with a '/'
        (b"/o/", "EINVAL"),  # an empty component
        (b"//o", "EINVAL"),
        (b"/", "EINVAL"),
        (b"/a/../o", "EACCES"),
        (b"..", "EACCES"),
        (b".", "EACCES"),
    ],
)
def test_invalid_redirect_values_fail_the_lookup(lab: Lab, value: bytes, why: str) -> None:
    """``ovl_get_redirect_xattr`` refuses malformed values; '.' and '..' fail the lookup. Never read outside."""
    l0, l1 = lab.lowers
    lab.file(f"{l1}/o/two", b"2")
    lab.file(f"{l1}/a/one", b"1")
    lab.file(f"{l0}/r/mine", b"m")
    os.setxattr(f"{l0}/r", T + "redirect", value)
    k = lab.same("redirect_dir=on")
    assert k["/r"] == ERROR
    e = OverlayView(lab.stack("redirect_dir=on")).lookup("/r")
    assert e is not None and e.status == S.ERROR and e.extra is not None and why in e.extra["error"]


def test_redirects_the_kernel_never_reads(lab: Lab) -> None:
    """A dir's redirect in the bottom lower, and a redirect on a plain (not metacopy) file, change nothing."""
    l0, l1 = lab.lowers
    lab.file(f"{l0}/o/two", b"2")
    lab.file(f"{l1}/bottom/mine", b"m")
    os.setxattr(f"{l1}/bottom", T + "redirect", b"o")
    lab.file(f"{l1}/f", b"below")
    lab.file(f"{lab.upper}/f", b"above")
    os.setxattr(f"{lab.upper}/f", T + "redirect", b"/o/two")
    k = lab.same("redirect_dir=on,metacopy=on")
    assert "/bottom/two" not in k and "/bottom/mine" in k
    stack = lab.stack("redirect_dir=on,metacopy=on")
    assert status_of(stack, "/bottom") == S.LOWER
    assert status_of(stack, "/f") == S.COPIED_UP


def test_renamed_metacopy_file_is_metacopy(lab: Lab) -> None:
    """chmod then rename with metacopy=on: a metacopy file with a redirect; its status says metacopy."""
    lab.file(f"{lab.lowers[0]}/d/tool", b"#!/bin/sh\n" * 100, 0o755)
    lab.ops("chmod 700 d/tool && mv d/tool d/tool2", "redirect_dir=on,metacopy=on")
    xs = lab.xattrs(f"{lab.upper}/d/tool2")
    assert T + "metacopy" in xs and T + "redirect" in xs
    lab.same("redirect_dir=on,metacopy=on")
    e = OverlayView(lab.stack("redirect_dir=on,metacopy=on")).lookup("/d/tool2")
    assert e is not None and e.status == S.METACOPY and e.redirect is not None
    assert e.source == f"{lab.lowers[0]}/d/tool"


def test_data_only_layers_are_reached_only_from_a_lower_metacopy(lab: Lab) -> None:
    """An upper metacopy file whose absolute redirect is found in no normal lower: EIO, even though a
    data-only layer has the path (the kernel looks there only from a metacopy copy in a normal lower)."""
    l1, d1 = lab.lowers
    data = b"data\n" * 50
    lab.file(f"{d1}/blob/data", data)
    lab.mk("l0/keep")
    with open(f"{lab.upper}/h", "wb") as f:
        f.truncate(len(data))
    os.setxattr(f"{lab.upper}/h", T + "metacopy", b"")
    os.setxattr(f"{lab.upper}/h", T + "redirect", b"/blob/data")
    opts = "redirect_dir=on,metacopy=on"
    kernel = lab.kernel(opts, lowers=[l1, ":" + d1])
    assert kernel["/h"] == ERROR
    model = model_snapshot(lab.stack(opts, lower=f"{l1}::{d1}"))
    assert model == kernel, _diff(model, kernel)


def test_lower_metacopy_whose_data_is_in_no_data_layer(lab: Lab) -> None:
    """The kernel defers the data-only lookup to open: stat works, open fails with ENOENT."""
    l1, d1 = lab.lowers
    lab.file(f"{d1}/other", b"x")
    with open(f"{l1}/f", "wb") as f:
        f.truncate(3)
    os.setxattr(f"{l1}/f", T + "metacopy", b"")
    os.setxattr(f"{l1}/f", T + "redirect", b"/blobs/missing")
    opts = "redirect_dir=on,metacopy=on"
    kernel = lab.kernel(opts, lowers=[l1, ":" + d1])
    assert kernel["/f"][:3] == ("file", 0o644, 3) and kernel["/f"][4] == "error:2"
    stack = lab.stack(opts, lower=f"{l1}::{d1}")
    model = model_snapshot(stack)
    assert model == kernel, _diff(model, kernel)
    e = OverlayView(stack).lookup("/f")
    assert e is not None and e.status == S.METACOPY and e.data_error is not None


def test_user_markers_mean_userxattr_rules_however_the_stack_was_told() -> None:
    """A stack whose markers are user.overlay.* is a userxattr stack: redirects are refused (EPERM) and
    metacopy is off, also when the namespace was detected or given without --userxattr."""
    root = tempfile.mkdtemp(prefix="ufs-markers-")
    os.chmod(root, 0o755)
    try:
        lab = Lab(root)
        l0, l1 = lab.lowers
        lab.file(f"{l1}/to/b", b"b")
        lab.mk("u/r")
        os.setxattr(f"{lab.upper}/r", "user.overlay.redirect", b"/to")
        os.setxattr(lab.upper, "user.overlay.uuid", b"x" * 16)  # what detection reads: user markers here
        lab.file(f"{l0}/keep", b"k")
        chown_tree(root, nobody.UID)
        run = {"lowers": lab.lowers, "upper": lab.upper, "work": lab.work, "mnt": lab.mnt, "options": "userxattr"}
        out = run_in_userns(run | {"ops": []})
        kernel = {k: tuple(v) for k, v in out["after"].items()}
        assert kernel["/r"] == ERROR
        for stack in (Stack.build(lab.lowers, lab.upper, lab.work), lab.stack(ns="user")):
            assert stack.xattr_ns == "user"
            model = model_snapshot(stack)
            assert model == kernel, _diff(model, kernel)  # type: ignore[arg-type]
    finally:
        remove_tree(root)


def test_dot_component_fails_only_where_the_lookup_reaches_it(lab: Lab) -> None:
    """``/x/..``: EACCES when some lower has a dir ``x`` (the walk reaches ``..``), a plain dir otherwise."""
    l0, l1 = lab.lowers
    lab.file(f"{l0}/r/mine", b"m")
    lab.file(f"{l0}/s/mine", b"m")
    os.setxattr(f"{l0}/r", T + "redirect", b"/nothere/..")
    os.setxattr(f"{l0}/s", T + "redirect", b"/x/..")
    lab.file(f"{l1}/x/f", b"f")
    k = lab.same("redirect_dir=on")
    assert k["/r"][0] == "dir" and "/r/mine" in k
    assert k["/s"] == ERROR
