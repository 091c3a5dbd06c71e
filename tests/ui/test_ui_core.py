"""The pure helpers the UI rests on (ufs_tui/core/watch.py, content.py, panes.py), on real files."""

from __future__ import annotations

import os

from tests.archives import docker_save_archive
from ufs_tui.core.demo import Demo, build_demo
from ufs_tui.core.explorer import Explorer
from ufs_tui.core.model import status as S
from ufs_tui.core.model.content import hexdump, read_content, safe_text, unified_diff
from ufs_tui.core.model.merge import OverlayView
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.panes import layer_items, merged_items, own_stack, where
from ufs_tui.core.sources import open_source
from ufs_tui.core.watch import ChangeMapper, Changes


def test_change_mapper_maps_layer_paths_to_merged_dirs(tmp_layers: str) -> None:
    low, up, mnt = (os.path.join(tmp_layers, n) for n in ("l", "u", "m"))
    for d in (low, up, mnt):
        os.makedirs(d)
    stack = Stack.build([low], upper=up, xattr_ns="user")
    m = ChangeMapper(stack, mount_point=mnt, max_names=3)
    ch = m.map([f"{up}/a", f"{low}/d/x", f"{mnt}/d/y", f"{low}", "/elsewhere/z"])
    assert ch.dirs == {"/": None, "/d": {"x", "y"}}  # the root itself changed: relist "/" whole
    assert ch.roots == {low} and ch.touched == {up, low, mnt}
    burst = m.map([f"{up}/big/f{i}" for i in range(10)])
    assert burst.dirs == {"/big": None}  # more than max_names: one relisting instead
    total = Changes(max_names=3)
    total.update(ch)
    total.update(burst)
    assert total.dirs == {"/": None, "/d": {"x", "y"}, "/big": None} and total.events == 15


def test_read_content_never_opens_a_fifo_and_caps(tmp_path: os.PathLike[str]) -> None:
    d = os.fspath(tmp_path)
    fifo = os.path.join(d, "fifo")
    os.mkfifo(fifo)
    c = read_content(fifo)  # opening a FIFO with no writer would block: it must not be opened
    assert c.kind == "none" and "FIFO" in c.message
    big = os.path.join(d, "big")
    with open(big, "w") as f:
        f.write("x" * 5000)
    c = read_content(big, cap=100)
    assert c.kind == "text" and c.truncated and len(c.data) == 100 and c.size == 5000
    binf = os.path.join(d, "bin")
    with open(binf, "wb") as f:
        f.write(b"\x7fELF\x00\x01")
    assert read_content(binf).kind == "binary"
    assert hexdump(b"AB\x00").startswith("00000000  41 42 00")
    link = os.path.join(d, "link")
    os.symlink(big, link)
    assert read_content(link).kind == "none"  # a symlink is described, never followed
    assert safe_text("a\x1b[31m\tb\n\udcff") == "a\\x1b[31m\tb\n\\xff"


def test_unified_diff(tmp_path: os.PathLike[str]) -> None:
    a, b = os.path.join(os.fspath(tmp_path), "a"), os.path.join(os.fspath(tmp_path), "b")
    with open(a, "w") as f:
        f.write("one\ntwo\n")
    with open(b, "w") as f:
        f.write("one\nthree\n")
    text, note = unified_diff(read_content(a), read_content(b), "lower:0/x", "upper/x")
    assert "--- lower:0/x" in text and "-two" in text and "+three" in text and note == ""
    assert unified_diff(read_content(a), read_content(a), "x", "y") == ("", "same content")


def test_pane_items_of_the_demo(demo: Demo) -> None:
    stack = demo.stack
    full = OverlayView(stack)
    assert stack.upper is not None
    up = {it.name: it.status for it in layer_items(full, OverlayView(own_stack(stack, stack.upper)), stack.upper, "/")}
    assert up["f"] == S.WHITEOUT and up["g"] == S.NEW and up["c"] == S.COPIED_UP and up["dir"] == S.OPAQUE
    l0 = stack.lowers[0]
    low = {it.name: it.status for it in layer_items(full, OverlayView(own_stack(stack, l0)), l0, "/")}
    assert low["f"] == S.WHITED_OUT and low["dir"] == S.OPAQUE_HIDDEN and low["etc"] == S.MERGED
    assert low["gone.txt"] == S.WHITEOUT and low["app.py"] == S.LOWER
    # children of a hidden dir share its fate
    inside = layer_items(full, OverlayView(own_stack(stack, l0)), l0, "/dir", S.OPAQUE_HIDDEN)
    assert {it.name for it in inside} == {"one", "two"} and {it.status for it in inside} == {S.OPAQUE_HIDDEN}
    changed = {it.name: it.status for it in merged_items(full, "/", True, OverlayView(stack.without_upper()))}
    assert S.LOWER not in changed.values() and changed["f"] == S.WHITED_OUT
    assert where(full, None, "/f")[0] == S.WHITEOUT
    assert where(full, stack.upper, "/app.py")[0] is None


def test_path_in_a_layer_follows_a_redirected_dir(root_mount: None) -> None:
    """The demo renames docs/ to manual/ through a redirect_dir=on mount: the Lower pane finds the file under docs/."""
    with build_demo(mode="kernel") as demo:
        stack = demo.stack
        assert stack.upper is not None
        explorer = Explorer(stack)
        l0 = stack.lowers[0]
        assert explorer.path_in(l0, "/manual/readme.md") == "/docs/readme.md"
        assert os.path.isfile(os.path.join(l0.path, "docs", "readme.md"))
        assert explorer.path_in(stack.upper, "/manual/readme.md") == "/manual/readme.md"
        assert explorer.path_in(l0, "/etc/config") == "/etc/config"
        assert explorer.path_in(None, "/manual/readme.md") == "/manual/readme.md"
        assert explorer.path_in(l0, "/no/such/thing") == "/no/such/thing"


def test_unreadable_dirs_and_unstatable_entries_are_said_so(tmp_path: object) -> None:
    """As uid 65534: a root-only dir in a layer is reported as unreadable (its entries missing), and an entry
    that cannot even be lstat'ed (its dir has no x bit) shows why instead of made-up metadata."""
    import json
    import shutil
    import tempfile

    from tests import nobody
    from tests.conftest import need

    need(os.geteuid() == 0, "needs root to run as another uid")
    need(shutil.which("setpriv") is not None, "needs setpriv (util-linux)")
    root = tempfile.mkdtemp(prefix="ufs-unreadable-")
    try:
        os.chmod(root, 0o755)
        low = os.path.join(root, "l")
        for d in ("locked", "noexec"):
            os.makedirs(os.path.join(low, d))
            with open(os.path.join(low, d, "inner"), "w") as f:
                f.write("x\n")
        os.chmod(os.path.join(low, "locked"), 0o700)  # root's: uid 65534 cannot list it
        os.chmod(os.path.join(low, "noexec"), 0o644)  # listable, but nothing in it can be lstat'ed
        script = (
            "import json, sys\n"
            "from ufs_tui.core.model.stack import Stack\n"
            "from ufs_tui.core.explorer import Explorer, ViewFilter\n"
            "e = Explorer(Stack.build([sys.argv[1]], xattr_ns='user'))\n"
            "flt = ViewFilter()\n"
            "e.items(None, '/', 'lower', flt); e.items(None, '/locked', 'lower', flt)\n"
            "e.items(None, '/noexec', 'lower', flt)\n"
            "d = e.details(None, '/locked', str)\n"
            "n = e.details(None, '/noexec/inner', str)\n"
            "print(json.dumps({'unreadable': e.unreadable(None, '/locked'), 'meta': d.meta, 'inner': n.meta}))\n"
        )
        r = nobody.run("-c", script, low, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout)
        assert out["unreadable"] == [[os.path.join(low, "locked"), "Permission denied"]]
        assert ["unreadable", f"{low}/locked: Permission denied (its entries are missing)"] in out["meta"]
        inner = dict(map(tuple, out["inner"]))
        assert inner["type"] == "unknown" and "ermission denied" in inner["error"]
        assert "owner" not in inner and "mtime" not in inner  # nothing made up
    finally:
        for dirpath, dirnames, _ in os.walk(root):
            for n in dirnames:
                os.chmod(os.path.join(dirpath, n), 0o755)
        shutil.rmtree(root)


def test_search_matches_substrings_and_globs(tmp_layers: str) -> None:
    """A query is a case-insensitive substring, and also a glob when it has * ? [: a name holding '[red]'
    is found by typing it, '*.CONF' finds every .conf."""
    low = os.path.join(tmp_layers, "l")
    os.makedirs(os.path.join(low, "etc"))
    for name in ("[red]x", "etc/a.conf", "etc/b.conf", "plain"):
        with open(os.path.join(low, name), "w") as f:
            f.write("x\n")
    explorer = Explorer(Stack.build([low], xattr_ns="user"))

    def search(q: str) -> list[str]:
        got: list[str] = []
        explorer.search(q, lambda: False, got.extend)
        return sorted(got)

    assert search("[red]") == ["/[red]x"]
    assert search("*.CONF") == ["/etc/a.conf", "/etc/b.conf"]
    assert search("lai") == ["/plain"]
    assert search("etc/b") == ["/etc/b.conf"]


def test_details_of_an_image_archive_read_its_layers_in_place(tmp_path: os.PathLike[str]) -> None:
    """A file in an image archive: its content, read from the layer tar in place, and the diff against the
    version it replaces in the layer below, as for layer dirs; no inode (a tar member has none)."""
    archive = f"{tmp_path}/img.tar"
    docker_save_archive(archive)
    stack = open_source(archive)
    top, bottom = stack.lowers
    e = Explorer(stack)
    d = e.details(None, "/a", str)
    assert d.content is not None and (d.content.kind, d.content.data) == ("text", b"a2 longer\n")
    assert d.content_path == f"{top.path}/a"
    assert d.diff_labels == (bottom.name, top.name)
    assert "-a1\n" in d.diff and "+a2 longer\n" in d.diff
    assert dict(d.meta)["inode"] == "none (a member of an image archive)"
    own = e.details(bottom, "/a", str)  # the Lower pane's older version, shown as it is in its layer
    assert own.content is not None and own.content.data == b"a1\n"
    only_below = e.details(None, "/dir/x", str)  # in one layer only: content, nothing to compare
    assert only_below.content is not None and only_below.content.data == b"x\n" and only_below.diff == ""


def test_a_change_forgets_only_the_views_that_read_its_layer(tmp_layers: str) -> None:
    """A write in the upper: the merged view and the upper's own view list again, the lower's own listing is
    kept (it cannot have changed), and the Lower pane still shows the new fate (its rows take it from the
    merged view). A change under the mount point (a write through the mount) forgets every view."""
    from ufs_tui.core.explorer import ViewFilter

    low, up, mnt = (os.path.join(tmp_layers, n) for n in ("l", "u", "m"))
    for d in (low, up, mnt):
        os.makedirs(d)
    with open(os.path.join(low, "f"), "w") as f:
        f.write("lower\n")
    stack = Stack.build([low], upper=up, xattr_ns="user")
    assert stack.upper is not None
    l0, flt = stack.lowers[0], ViewFilter()
    for mount_point in (None, mnt):
        ex = Explorer(stack, mount_point)
        assert {it.name: it.status for it in ex.items(l0, "/", S.LOWER, flt)} == {"f": S.LOWER}
        ex.items(stack.upper, "/", S.LOWER, flt)
        own_lower, own_upper = ex.own(l0).list_all("/"), ex.own(stack.upper).list_all("/")
        with open(os.path.join(up, "f"), "w") as f:
            f.write("upper\n")
        root = mnt if mount_point else up
        ex.apply(ex.mapper.map([os.path.join(root, "f")]))
        assert (ex.own(l0).list_all("/") is own_lower) is (mount_point is None)
        assert ex.own(stack.upper).list_all("/") is not own_upper
        assert {it.name: it.status for it in ex.items(l0, "/", S.LOWER, flt)} == {"f": S.SHADOWED}
        os.remove(os.path.join(up, "f"))
