"""``ufs-tui cp`` against the kernel: the merged view's version written out is what a real mount shows (bytes,
type, mode, owner, mtime, symlink targets, devices, xattrs, hard links), with whiteouts, an opaque dir, a renamed
dir and a metacopy file the kernel wrote itself; a layer's own copy of what the merged view hides; and no
destination inside the mounted overlay."""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
from collections.abc import Iterator

import pytest

from tests.kernel.lab import Lab
from ufs_tui.core import extract
from ufs_tui.core.demo import remove_tree
from ufs_tui.core.model.markers import KIND_BY_FMT

pytestmark = pytest.mark.usefixtures("root_mount")

OPTIONS = "redirect_dir=on,metacopy=on"
Facts = tuple[object, ...]


@pytest.fixture
def out() -> Iterator[str]:
    d = tempfile.mkdtemp(prefix="ufs-cp-out-")
    try:
        yield d
    finally:
        remove_tree(d)


def facts(root: str) -> tuple[dict[str, Facts], set[frozenset[str]]]:
    """Every path under ``root`` (itself: "/"): type, mode, owner, mtime, size, symlink target, device number,
    sha256 of the data, xattrs; and the groups of paths that are one inode (hard links)."""
    tree: dict[str, Facts] = {}
    inodes: dict[int, set[str]] = {}

    def one(real: str, rel: str) -> None:
        st = os.lstat(real)
        kind = KIND_BY_FMT[stat.S_IFMT(st.st_mode)]
        digest = None
        if kind == "file":
            with open(real, "rb") as f:
                digest = hashlib.sha256(f.read()).hexdigest()
        target = os.readlink(real) if kind == "symlink" else None
        xattrs = {x: os.getxattr(real, x, follow_symlinks=False) for x in os.listxattr(real, follow_symlinks=False)}
        size = st.st_size if kind in ("file", "symlink") else 0
        rdev = st.st_rdev if kind in ("chardev", "blockdev") else 0
        tree[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, st.st_mtime_ns, size, target, rdev, digest)
        tree[rel] += (tuple(sorted(xattrs.items())),)
        if kind != "dir":
            inodes.setdefault(st.st_ino, set()).add(rel)
        if kind == "dir":
            for name in sorted(os.listdir(real)):
                one(os.path.join(real, name), rel.rstrip("/") + "/" + name)

    one(root, "/")
    return tree, {frozenset(names) for names in inodes.values() if len(names) > 1}


def build(lab: Lab) -> None:
    """Lowers with every kind of entry; then, through a mount, the kernel writes a whiteout, an opaque dir, a
    renamed (redirected) dir, a metacopy file, a copied-up file and new entries."""
    l0, l1 = lab.lowers
    lab.file(f"{l1}/gone", b"deleted through the mount\n")
    lab.file(f"{l1}/keep/a", b"a\n", 0o640)
    lab.file(f"{l1}/keep/b", b"b" * 70_000)
    os.link(f"{l1}/keep/a", f"{l1}/keep/a-link")
    lab.file(f"{l1}/keep/h1", b"one inode, two names\n")
    os.link(f"{l1}/keep/h1", f"{l1}/keep/h2")
    lab.file(f"{l1}/opq/old", b"hidden by the opaque dir\n")
    lab.file(f"{l1}/moved/inside", b"renamed dir's content\n")
    lab.file(f"{l1}/meta", b"metacopy data\n" * 100, 0o644)
    os.chown(f"{l1}/meta", 1234, 5678)
    os.setxattr(f"{l1}/keep/a", "user.note", b"kept")
    os.symlink("keep/a", f"{l1}/rel-link")
    os.symlink("/etc/passwd", f"{l1}/abs-link")
    os.symlink("loop", f"{l1}/loop")
    os.mkfifo(f"{l1}/fifo", 0o620)
    os.mknod(f"{l1}/null", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    lab.file(f"{l0}/keep/a", b"a from lower:0\n")
    os.utime(f"{l1}/keep/b", ns=(1_000_000_000, 1_500_000_000_123_456_789))
    lab.ops(
        "rm gone; rm -r opq; mkdir opq; echo new > opq/new; mv moved renamed; chmod 600 meta; echo more >> keep/b;"
        " mkdir -p newdir/deep; echo x > newdir/deep/x; chmod 555 newdir",
        OPTIONS,
    )


def test_the_merged_version_is_what_the_kernel_shows(lab: Lab, out: str) -> None:
    build(lab)
    assert os.getxattr(f"{lab.upper}/opq", "trusted.overlay.opaque") == b"y"
    assert os.getxattr(f"{lab.upper}/renamed", "trusted.overlay.redirect")
    assert os.getxattr(f"{lab.upper}/meta", "trusted.overlay.metacopy") is not None
    plan = extract.plan(lab.stack(OPTIONS), "/", f"{out}/merged")
    assert plan.refused == [] and plan.problems == []
    problems: list[str] = []
    done = extract.write(plan, problems.append)
    assert problems == [] and done.problems == 0
    written, written_links = facts(f"{out}/merged")
    with lab.mounted(OPTIONS) as m:
        kernel, kernel_links = facts(m)
    assert written == kernel
    assert written_links == kernel_links == {frozenset({"/keep/h1", "/keep/h2"})}  # (a-link's partner is shadowed)
    assert "/gone" not in written and "/opq/old" not in written and written["/opq"][0] == "dir"
    assert written["/renamed/inside"][8] == hashlib.sha256(b"renamed dir's content\n").hexdigest()
    assert written["/meta"][1:4] == (0o600, 1234, 5678)  # the metacopy file's metadata, the lower's data
    assert written["/meta"][8] == hashlib.sha256(b"metacopy data\n" * 100).hexdigest()


def test_a_merged_subdir_and_a_single_file_too(lab: Lab, out: str) -> None:
    build(lab)
    stack = lab.stack(OPTIONS)
    for path in ("/keep", "/opq", "/renamed", "/meta", "/rel-link", "/null"):
        plan = extract.plan(stack, path, out)  # an existing dir: the version goes inside, under its name
        assert plan.target == f"{out}{path}" and not plan.refused
        extract.write(plan, pytest.fail)
    with lab.mounted(OPTIONS) as m:
        for path in ("/keep", "/opq", "/renamed", "/meta", "/rel-link", "/null"):
            got, _ = facts(f"{out}{path}")
            want, _ = facts(f"{m}{path}")
            assert got == want, path


def test_a_whited_out_version_from_its_lower(lab: Lab, out: str) -> None:
    build(lab)
    l1 = lab.lowers[1]
    stack = lab.stack(OPTIONS)
    plan = extract.plan(stack, "/gone", f"{out}/gone", layer="lower:1")
    assert "whited out" in plan.version
    extract.write(plan, pytest.fail)
    assert facts(f"{out}/gone")[0] == facts(f"{l1}/gone")[0]
    plan = extract.plan(stack, "/opq", f"{out}/opq", layer="lower:1")  # hidden by the opaque dir above
    extract.write(plan, pytest.fail)
    assert os.listdir(f"{out}/opq") == ["old"]
    with pytest.raises(extract.UfsError, match="not in the merged view: deleted by a whiteout in upper"):
        extract.plan(stack, "/gone", f"{out}/x")
    with pytest.raises(extract.UfsError, match="upper holds a whiteout there"):
        extract.plan(stack, "/gone", f"{out}/x", layer="upper")


def test_the_uppers_own_copy_leaves_the_markers_out(lab: Lab, out: str) -> None:
    build(lab)
    plan = extract.plan(lab.stack(OPTIONS), "/", f"{out}/upper", layer="upper")
    assert plan.problems == []
    notes = " ".join(plan.notes)
    assert "2 whiteouts, the opaque mark of 2 dirs, 11 overlay xattrs" in notes  # (/gone, /moved; /opq, /newdir)
    assert "/meta: a metacopy file: upper holds only its metadata; its data is copied from lower:1" in notes
    extract.write(plan, pytest.fail)
    names = sorted(os.listdir(f"{out}/upper"))
    assert names == ["keep", "meta", "newdir", "opq", "renamed"]  # no whiteout for /gone
    assert os.listdir(f"{out}/upper/renamed") == []  # as stored: the redirect's target is not followed
    for dirpath, dirnames, filenames in os.walk(f"{out}/upper"):
        for n in [dirpath, *(os.path.join(dirpath, x) for x in dirnames + filenames)]:
            assert not [x for x in os.listxattr(n, follow_symlinks=False) if ".overlay." in x], n
    with open(f"{out}/upper/meta", "rb") as f:
        assert f.read() == b"metacopy data\n" * 100


def test_no_destination_inside_the_mounted_overlay(lab: Lab, out: str) -> None:
    build(lab)
    stack = lab.stack(OPTIONS)
    with lab.mounted(OPTIONS) as m:
        for dest in (f"{m}/new", m, f"{out}/../{os.path.basename(os.path.dirname(m))}/./m/x"):
            plan = extract.plan(stack, "/keep", dest)
            assert len(plan.refused) == 1 and "inside the overlay mounted at" in plan.refused[0], dest
            assert plan.items == []
        os.symlink(m, f"{out}/to-mount")
        plan = extract.plan(stack, "/keep", f"{out}/to-mount")  # a symlink to a dir: written inside it
        assert plan.refused and plan.target == f"{m}/keep"
        assert os.listdir(f"{lab.upper}/keep") == ["b"]  # (what the kernel copied up: nothing was written)


def test_a_metacopy_file_whose_data_the_stack_does_not_reach(lab: Lab, out: str) -> None:
    build(lab)
    stack = lab.stack(OPTIONS, lower=[lab.lowers[0]])  # without lower:1, which holds /meta's data
    plan = extract.plan(stack, "/", f"{out}/upper", layer="upper")
    assert [p for p in plan.problems if p.startswith("/meta")] == [
        "/meta: not copied: a metacopy file: upper holds only its metadata, and the stack's lookup of this path does "
        "not reach its data (extract the merged view's version, or the layer with the data)"
    ]
    extract.write(plan, pytest.fail)
    assert "meta" not in os.listdir(f"{out}/upper")
    with pytest.raises(extract.UfsError, match="the kernel fails this lookup: metacopy file has no data below it"):
        extract.plan(stack, "/meta", f"{out}/m")
