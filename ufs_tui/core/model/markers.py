"""What one layer holds at one path, and which overlay markers it carries.

:func:`probe` ``lstat``s a single path inside a layer (never following a
symlink, never opening the file) and reads the overlay xattrs that decide the
merged view. Marker forms understood here:

* whiteout: a character device with rdev 0/0, or a zero-size regular file with
  ``<ns>.overlay.whiteout`` (the xattr form);
* opaque dir: ``<ns>.overlay.opaque`` equal to exactly ``y`` (``x`` only says the
  dir holds xattr whiteouts and is *not* opaque);
* redirect: ``<ns>.overlay.redirect`` on a dir or a metacopy file;
* metacopy: ``<ns>.overlay.metacopy`` on a regular file (data lives below);
* origin: ``<ns>.overlay.origin`` (set on copy-up; does not change the view).

``<ns>`` is ``trusted`` or ``user`` (``userxattr`` mounts). OCI ``.wh.`` names are
handled by the merge, since they are names rather than inode properties.
"""

from __future__ import annotations

import errno
import os
import stat

KIND_BY_FMT = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}

# OCI / AUFS image-layer whiteout names.
WH_PREFIX = ".wh."
WH_OPAQUE = ".wh..wh..opq"
# fuse-overlayfs also drops this char device into opaque dirs.
WH_FUSE_OPAQUE = ".wh..opq"

_GONE = (errno.ENOENT, errno.ENOTDIR, errno.ELOOP, errno.ENAMETOOLONG)


class Node:
    """One layer's object at one real path, with its overlay markers decoded."""

    __slots__ = (
        "path",
        "kind",
        "mode",
        "size",
        "uid",
        "gid",
        "mtime",
        "ino",
        "rdev",
        "target",
        "whiteout",
        "opaque",
        "opaque_x",
        "redirect",
        "metacopy",
        "origin",
        "error",
    )

    def __init__(self, path: str, st: os.stat_result | None) -> None:
        self.path = path
        self.whiteout: str | None = None  # "chardev" | "xattr" | "oci"
        self.opaque = False
        self.opaque_x = False
        self.redirect: str | None = None
        self.metacopy = False
        self.origin = False
        self.target: str | None = None
        self.error: str | None = None
        if st is None:
            self.kind = "unknown"
            self.mode = self.size = self.uid = self.gid = self.ino = self.rdev = 0
            self.mtime = 0.0
            return
        self.kind = KIND_BY_FMT.get(stat.S_IFMT(st.st_mode), "unknown")
        self.mode = stat.S_IMODE(st.st_mode)
        self.size = st.st_size
        self.uid = st.st_uid
        self.gid = st.st_gid
        self.mtime = st.st_mtime
        self.ino = st.st_ino
        self.rdev = st.st_rdev

    @property
    def is_dir(self) -> bool:
        return self.kind == "dir"

    def __repr__(self) -> str:  # pragma: no cover - debugging aid
        flags = [f for f in ("whiteout", "opaque", "redirect", "metacopy") if getattr(self, f)]
        return f"Node({self.path!r}, {self.kind}, {' '.join(flags)})"


def probe(path: str, ns: str = "trusted", hint_kind: str | None = None) -> Node | None:
    """Describe what a layer holds at ``path``; None when nothing is there (or it vanished).

    ``hint_kind`` (from a directory listing's d_type) lets symlinks skip the xattr read.
    """
    try:
        st = os.lstat(path)
    except OSError as e:
        if e.errno in _GONE:
            return None
        node = Node(path, None)
        node.error = e.strerror or str(e)
        return node
    node = Node(path, st)
    kind = node.kind
    if kind == "chardev":
        if st.st_rdev == 0:
            node.whiteout = "chardev"
        return node
    if kind == "symlink":
        try:
            node.target = os.fsdecode(os.readlink(path))
        except OSError:
            node.target = None
        return node
    if kind in ("dir", "file"):
        _read_overlay_xattrs(node, ns)
    return node


def _read_overlay_xattrs(node: Node, ns: str) -> None:
    prefix = ns + ".overlay."
    try:
        names = os.listxattr(node.path, follow_symlinks=False)
    except OSError:
        return
    for xname in names:
        if not xname.startswith(prefix):
            continue
        key = xname[len(prefix) :]
        if key not in ("opaque", "redirect", "metacopy", "whiteout", "origin"):
            continue  # impure, uuid, nlink, upper, escaped nested names: bookkeeping
        try:
            value = os.getxattr(node.path, xname, follow_symlinks=False)
        except OSError:
            continue
        if node.kind == "dir":
            if key == "opaque":
                node.opaque = value == b"y"
                node.opaque_x = value == b"x"
            elif key == "redirect":
                node.redirect = os.fsdecode(value)  # even empty: the kernel refuses that (redirect_problem)
            elif key == "origin":
                node.origin = True
        else:  # regular file
            if key == "metacopy":
                node.metacopy = True
            elif key == "whiteout" and node.size == 0:
                node.whiteout = "xattr"
            elif key == "redirect":
                node.redirect = os.fsdecode(value)
            elif key == "origin":
                node.origin = True
    if node.whiteout:
        node.metacopy = False
        node.redirect = None


def redirect_problem(value: str) -> str | None:
    """Why the kernel refuses an ``overlay.redirect`` of this value as soon as it reads it, or None.

    As ``ovl_get_redirect_xattr`` checks it: an empty value, a relative one with a ``/``, an absolute one
    with an empty component (``//``, a trailing ``/``) are invalid (EINVAL). A ``.`` or ``..`` component
    passes this check and fails later, where the lookup reaches it (EACCES: :func:`dot_component`).
    """
    if not value:
        return "empty redirect: the kernel refuses this lookup (EINVAL)"
    if value.startswith("/"):
        if "" in value[1:].split("/"):
            return f"invalid redirect {value!r} (an empty path component): the kernel refuses this lookup (EINVAL)"
    elif "/" in value:
        return f"invalid redirect {value!r} (relative, with a '/'): the kernel refuses this lookup (EINVAL)"
    return None


def dot_component(value: str) -> str:
    """The refusal for a redirect whose lookup reaches a ``.`` or ``..`` component (EACCES)."""
    return f"redirect {value!r} looks up '.' or '..': the kernel refuses this lookup (EACCES)"


def overlay_xattrs(path: str) -> dict[str, bytes]:
    """Every xattr of ``path`` (symlinks not followed), for the details view."""
    out: dict[str, bytes] = {}
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return out
    for xname in sorted(names):
        try:
            out[xname] = os.getxattr(path, xname, follow_symlinks=False)
        except OSError:
            continue
    return out


XATTR_MEANING = {
    "opaque": "opaque dir: hides everything of this name in the layers below (value 'y'); 'x' only marks a dir "
    "holding xattr whiteouts",
    "redirect": "redirect: the layers below are looked up at this path instead of this name (rename with redirect_dir)",
    "metacopy": "metacopy: only metadata was copied up; the data is still read from the layer below",
    "whiteout": "xattr whiteout: this zero-size file deletes the name from the layers below",
    "origin": "origin: file handle of the lower object this was copied up from",
    "impure": "impure: this dir has copied-up or redirected children (bookkeeping)",
    "uuid": "uuid: the overlay instance that owns this upper (bookkeeping)",
    "nlink": "nlink: hard-link count bookkeeping for index=on",
    "upper": "upper: file handle of the upper object (index bookkeeping)",
}


def explain_xattr(name: str) -> str | None:
    """Words for an overlay xattr name (``trusted.overlay.X`` or ``user.overlay.X``), or None."""
    for prefix in ("trusted.overlay.", "user.overlay."):
        if name.startswith(prefix):
            return XATTR_MEANING.get(name[len(prefix) :], "overlay xattr")
    if name.startswith("user.fuseoverlayfs."):
        return "fuse-overlayfs bookkeeping"
    return None
