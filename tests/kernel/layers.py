"""Build layer trees from a small spec, apply operations through a real mount, snapshot the kernel's view.

Shared by the kernel tests. The ``run`` entry point (``python -m tests.kernel.layers JSON``) does the
mount / operate / remount / snapshot cycle in one process, so it can run inside ``unshare -rm`` as an
unprivileged user (``userxattr`` mounts) as well as in the test process as root.

Spec of one layer tree: ``{name: node}`` where a node is one of

* ``["file", data_hex, mode]``
* ``["symlink", target]`` (target ``"@self"`` = the link's own name: a loop)
* ``["fifo", mode]``
* ``["wh"]`` a 0/0 character device (kernel whiteout)
* ``["xwh"]`` a zero-size file with ``<ns>.overlay.whiteout`` (xattr whiteout)
* ``["dir", {children}, mode, opaque, redirect]`` with ``opaque`` None or the xattr value (``"y"``, ``"x"``,
  ``"yes"``, ...) and ``redirect`` None or the ``overlay.redirect`` value.
* ``["decoy", node]`` the node, plus ``overlay.opaque=y`` in the *other* xattr namespace (must be ignored).
* ``["link", "a/b"]`` a hard link to the non-directory at ``a/b`` of the same layer (made after the rest of the
  tree, so it may name anything the spec makes).
* ``["meta", size, redirect, mode]`` a metacopy file: sparse, ``size`` bytes, no data, ``overlay.metacopy``
  (empty value) and, unless ``redirect`` is None, ``overlay.redirect`` (an absolute one reaches data-only layers).
* under the name ``"."``: ``["root", opaque]`` sets ``overlay.opaque`` on the layer root itself (``"x"``: the
  root holds xattr whiteouts).

Errors are facts too: a name whose ``lstat`` fails is ``("error", 0, 0, "EPERM", None)`` (the errno's name), a
file whose content cannot be read has ``"error:N"`` (errno number) as its digest, and a dir whose ``readdir``
fails has an extra key ``"<dir>/"`` with ``("readdir-error", 0, 0, "EIO", None)``.
"""

from __future__ import annotations

import ctypes
import errno as errno_mod
import json
import os
import shutil
import stat
import subprocess
import sys
from collections.abc import Callable, Collection
from typing import Any

from tests import nobody
from tests.overlay import Facts, _digest, model_tree, mount_overlay, umount
from ufs_tui.core.model import status as S
from ufs_tui.core.model.errors import StackError
from ufs_tui.core.model.markers import KIND_BY_FMT
from ufs_tui.core.model.merge import Entry, OverlayView
from ufs_tui.core.model.stack import Stack

NEW_NAMES = ["a", "b", "c", "d", "e", "n"]
OPS = ("write", "append", "chmod", "delete", "rmrf", "rmrf_mkdir", "rename", "create")
# More ops (the newer oracle tests): a hard link made through the mount (a lower file is copied up first; with
# index=on the kernel indexes it), a rename that always picks a dir (redirects, with redirect_dir=on) and a chmod
# that always picks a regular file (metacopy, with metacopy=on).
OPS_MORE = (*OPS, "link", "rename_dir", "chmod_file")
CREATE_KINDS = ("file", "dir", "symlink", "fifo")
MODES = (0o644, 0o600, 0o755, 0o4755, 0o640)


def build_tree(root: str, tree: dict[str, Any], ns: str) -> None:
    """Make ``tree`` (see the module doc) in the existing dir ``root``; hard links last."""
    links: list[tuple[str, str]] = []
    _build(root, tree, ns, links)
    for path, target in links:
        real = os.path.join(root, target)
        if not os.path.lexists(real) or stat.S_ISDIR(os.lstat(real).st_mode):
            raise ValueError(f"link {path} -> {target}: no such non-directory in the layer")
        os.link(real, path, follow_symlinks=False)


def _build(root: str, tree: dict[str, Any], ns: str, links: list[tuple[str, str]]) -> None:
    other = "user" if ns == "trusted" else "trusted"
    for name, node in tree.items():
        path = os.path.join(root, name)
        decoy = False
        if node[0] == "decoy":
            decoy, node = True, node[1]
        kind = node[0]
        if kind == "root":
            if node[1] is not None:
                os.setxattr(root, f"{ns}.overlay.opaque", node[1].encode())
        elif kind == "link":
            links.append((path, node[1]))
        elif kind in ("file", "meta"):
            _make_file(path, node, ns)
        elif kind == "symlink":
            os.symlink(name if node[1] == "@self" else node[1], path)
        elif kind == "fifo":
            os.mkfifo(path, node[1])
            os.chmod(path, node[1])
        elif kind == "wh":
            os.mknod(path, stat.S_IFCHR | 0o600, 0)
        elif kind == "xwh":
            open(path, "wb").close()
            os.setxattr(path, f"{ns}.overlay.whiteout", b"y")
        elif kind == "dir":
            os.mkdir(path)
            _build(path, node[1], ns, links)
            os.chmod(path, node[2])
            if node[3] is not None:
                os.setxattr(path, f"{ns}.overlay.opaque", node[3].encode())
            if node[4] is not None:
                os.setxattr(path, f"{ns}.overlay.redirect", node[4].encode())
        else:  # pragma: no cover - a bad spec is a bug in the test
            raise ValueError(node)
        if decoy and kind in ("file", "dir"):
            os.setxattr(path, f"{other}.overlay.opaque", b"y")
            os.setxattr(path, f"{other}.overlay.whiteout", b"y")


def _make_file(path: str, node: list[Any], ns: str) -> None:
    """A ``file`` node (data written) or a ``meta`` node (sparse, metacopy xattr, maybe a redirect)."""
    with open(path, "wb") as f:
        if node[0] == "file":
            f.write(bytes.fromhex(node[1]))
        else:
            f.truncate(node[1])
    if node[0] == "meta":
        os.chmod(path, node[3])
        os.setxattr(path, f"{ns}.overlay.metacopy", b"")
        if node[2] is not None:
            os.setxattr(path, f"{ns}.overlay.redirect", node[2].encode())
    else:
        os.chmod(path, node[2])


def error(code: int | str | None) -> Facts:
    """The facts of a name whose lookup fails with errno ``code`` (a number or its name, "EPERM")."""
    name = errno_mod.errorcode.get(code, str(code)) if isinstance(code, int) else code
    return ("error", 0, 0, name, None)


def readdir_error(code: int | str | None) -> Facts:
    """The facts under key ``"<dir>/"`` of a dir whose listing fails with errno ``code``."""
    return ("readdir-error", 0, 0, error(code)[3], None)


def readdir_maybe(code: str) -> Facts:
    """The model's facts under ``"<dir>/"`` of a merged impure dir whose ``readdir`` fails with ``code`` or leaves
    the failing names out, by the on-disk order (:class:`ufs_tui.core.model.readdir.ReaddirFault`)."""
    return ("readdir-maybe", 0, 0, code, None)


class _AnyError(tuple):  # type: ignore[type-arg]
    """:data:`ERROR`: equal to the facts of *any* failed lookup, whatever its errno (for tests that assert only
    "this name is an error"; the snapshots themselves always carry the errno, and compare it)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, tuple) and len(other) == 5 and other[0] == "error" and other[1:3] == (0, 0)

    def __ne__(self, other: object) -> bool:
        return not self == other

    __hash__ = tuple.__hash__


ERROR: Facts = _AnyError(("error", 0, 0, None, None))
_ERRNO_BY_STRERROR = {os.strerror(n): name for n, name in errno_mod.errorcode.items()}


def kernel_snapshot(mnt: str, names: Collection[str] = ()) -> dict[str, Facts]:
    """:func:`tests.overlay.kernel_tree`, plus names whose lookup fails (EPERM, EIO...) as :func:`error` with the
    errno, and dirs whose ``readdir`` fails as :func:`readdir_error` under ``"<dir>/"``.

    ``names`` are also looked up in every dir, listed or not: a merged dir's ``readdir`` leaves out a name whose
    lookup fails (the kernel looks each name up for its inode number, on one filesystem or with xino, and drops
    the ones that fail), where ``lstat`` still says why. Such a name is recorded as the error it is (whether
    ``readdir`` shows a failing name is inode-number bookkeeping); one ``lstat`` finds and ``readdir`` does not
    list is recorded with kind ``unlisted-<kind>``.
    """
    out: dict[str, Facts] = {}

    def walk(real: str, rel: str) -> None:
        try:
            listed = set(os.listdir(real))
        except OSError as e:
            out[rel + "/"] = readdir_error(e.errno)
            return
        for name in sorted(listed | set(names)):
            p = os.path.join(real, name)
            path = rel + "/" + name
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            except OSError as e:
                out[path] = error(e.errno)
                continue
            kind = KIND_BY_FMT.get(stat.S_IFMT(st.st_mode), "unknown")
            target = os.fsdecode(os.readlink(p)) if kind == "symlink" else None
            digest = _digest(p) if kind == "file" else None
            size = st.st_size if kind in ("file", "symlink") else 0
            out[path] = (kind if name in listed else f"unlisted-{kind}", stat.S_IMODE(st.st_mode), size, target, digest)
            if kind == "dir":
                walk(p, path)

    walk(mnt, "")
    return out


def layer_names(roots: list[str]) -> set[str]:
    """Every name (last path component) anywhere in the layers under ``roots``."""
    out: set[str] = set()
    for root in roots:
        for _, dirnames, filenames in os.walk(root):
            out.update(dirnames, filenames)
    return out


def model_snapshot(stack: Stack) -> dict[str, Facts]:
    """:func:`tests.overlay.model_tree` with the errors the model predicts: entries with status error as
    :func:`error` (``Entry.errno``), content that cannot be read as ``"error:N"`` (``Entry.data_error``), dirs
    that cannot be listed as :func:`readdir_error`. The eager one-pass walk must agree with the lazy one."""
    view = OverlayView(stack)
    out: dict[str, Facts] = {}

    def walk(path: str, sources: Any) -> None:
        key = path.rstrip("/") + "/"
        try:
            entries = view.list_dir(path) if sources is None else view.scan_dir(path, sources)
        except StackError as err:
            out[key] = readdir_error(_model_errno(err.problem))
            return
        unreadable = [view.errors[real] for _, real in (sources or view.dir_sources(path)) if real in view.errors]
        if unreadable:
            out[key] = readdir_error(_model_errno(unreadable[0]))
        fault = view.readdir_fault(path)
        if fault is not None and fault.certain:
            out[key] = readdir_error(fault.errno)
            return
        if fault is not None:
            out[key] = readdir_maybe(fault.errno)
        for e in entries:
            p = key + e.name
            if e.status == S.ERROR:
                out[p] = error(e.errno)
                continue
            out[p] = (e.kind, e.mode, e.size if e.kind in ("file", "symlink") else 0, e.target, model_content(e))
            if e.is_dir:
                walk(p, e.sources)

    walk("/", None)
    if not any(f[0] in ("error", "readdir-error") for f in out.values()):
        model_tree(stack)  # (asserts the eager walk of ``tree --format json`` sees the same tree)
    return out


def model_content(e: Entry) -> str | None:
    """What reading a merged file gives, by the model: its data's digest, or ``error:N`` where the model says
    opening it fails (``Entry.data_error``: the errno it names, else ENOENT, a data-only lookup that finds
    nothing)."""
    if e.kind != "file":
        return None
    if e.data_error:
        name = (e.extra or {}).get("errno") or "ENOENT"
        return f"error:{getattr(errno_mod, name, name)}"
    return _digest(e.source)


def _model_errno(problem: str) -> str:
    """The errno a model's problem text names (its strerror, as dirscan records it), else the text itself."""
    if problem in _ERRNO_BY_STRERROR:
        return _ERRNO_BY_STRERROR[problem]
    return next((name for text, name in _ERRNO_BY_STRERROR.items() if text in problem), problem)


def _paths(mnt: str) -> list[tuple[str, int]]:
    """(relative path, st_mode) of everything lstat can see in the mount, sorted, root first."""
    out: list[tuple[str, int]] = [("", os.lstat(mnt).st_mode)]

    def walk(rel: str) -> None:
        real = os.path.join(mnt, rel) if rel else mnt
        try:
            names = sorted(os.listdir(real))
        except OSError:
            return
        for name in names:
            r = f"{rel}/{name}" if rel else name
            try:
                mode = os.lstat(os.path.join(mnt, r)).st_mode
            except OSError:
                continue
            out.append((r, mode))
            if stat.S_ISDIR(mode):
                walk(r)

    walk("")
    return out


def apply_ops(mnt: str, ops: list[list[Any]]) -> list[str]:
    """Apply ``ops`` (``[op, i, j, k, data_hex]``) through the mount; returns what each did (for failure output).

    Indices pick among the paths present at that moment, so the same ops replay the same way. Symlinks are
    never followed (no chmod or write through them) and FIFOs are never opened.
    """
    log: list[str] = []
    for op, i, j, k, data_hex in ops:
        chosen = _choose(mnt, op, i, j, k, bytes.fromhex(data_hex))
        if chosen is None:
            continue
        target, act = chosen
        try:
            act()
        except OSError as e:  # EXDEV (dir rename, default options), EEXIST, ENOTEMPTY, EINVAL...: the kernel said no
            log.append(f"{op} {target}: {e.strerror}")
            continue
        log.append(f"{op} {target}")
    return log


def _choose(mnt: str, op: str, i: int, j: int, k: int, data: bytes) -> tuple[str, Callable[[], None]] | None:
    """What ``op`` does now: (its description, the action), or None when there is nothing to pick."""
    items = _paths(mnt)
    dirs = [p for p, m in items if stat.S_ISDIR(m)]  # includes the root ""
    pools = {
        "files": [p for p, m in items if stat.S_ISREG(m)],
        "nondirs": [p for p, m in items if p and not stat.S_ISDIR(m)],
        "subdirs": [p for p in dirs if p],
        "chmodable": [p for p, m in items if p and not stat.S_ISLNK(m)],
        "anything": [p for p, _ in items if p],
    }
    pool = {
        "write": "files",
        "append": "files",
        "chmod": "chmodable",
        "chmod_file": "files",
        "delete": "nondirs",
        "rmrf": "subdirs",
        "rmrf_mkdir": "subdirs",
        "rename": "anything",
        "rename_dir": "subdirs",
        "link": "nondirs",
    }
    if op != "create" and not pools[pool[op]]:
        return None
    if not dirs:  # pragma: no cover - the root is always there
        return None

    def full(rel: str) -> str:
        return os.path.join(mnt, rel) if rel else mnt

    if op == "create":
        what = CREATE_KINDS[k % len(CREATE_KINDS)]
        return _create(full, dirs[j % len(dirs)], NEW_NAMES[i % len(NEW_NAMES)], what, data)
    target = pools[pool[op]][i % len(pools[pool[op]])]
    p = full(target)
    if op in ("write", "append"):
        return target, lambda: _write(p, data, "wb" if op == "write" else "ab")
    if op in ("chmod", "chmod_file"):
        mode = (0o755, 0o700, 0o750)[k % 3] if stat.S_ISDIR(os.lstat(p).st_mode) else MODES[k % len(MODES)]
        return f"{target} {mode:o}", lambda: os.chmod(p, mode)
    if op == "delete":
        return target, lambda: os.unlink(p)
    if op in ("rmrf", "rmrf_mkdir"):
        return target, lambda: _rmrf(p, op == "rmrf_mkdir")
    if op in ("rename", "rename_dir", "link"):
        parent = dirs[j % len(dirs)]
        dst = f"{parent}/{NEW_NAMES[k % len(NEW_NAMES)]}" if parent else NEW_NAMES[k % len(NEW_NAMES)]
        if op == "link":
            return f"{target} -> {dst}", lambda: os.link(p, full(dst), follow_symlinks=False)
        return f"{target} -> {dst}", lambda: os.rename(p, full(dst))
    raise ValueError(op)  # pragma: no cover


def _write(path: str, data: bytes, how: str) -> None:
    with open(path, how) as f:
        f.write(data)


def _rmrf(path: str, mkdir: bool) -> None:
    shutil.rmtree(path)
    if mkdir:
        os.mkdir(path)


def _create(
    full: Callable[[str], str], parent: str, name: str, what: str, data: bytes
) -> tuple[str, Callable[[], None]]:
    target = f"{parent}/{name}" if parent else name
    p = full(target)
    if what == "file":
        return f"{target} ({what})", lambda: _write(p, data, "xb")
    if what == "dir":
        return f"{target} ({what})", lambda: os.mkdir(p)
    if what == "symlink":
        return f"{target} ({what})", lambda: os.symlink("/etc/passwd" if data[:1] < b"\x80" else "../loop", p)
    return f"{target} ({what})", lambda: os.mkfifo(p, 0o644)


def cycle(spec: dict[str, Any]) -> dict[str, Any]:
    """Mount, snapshot, apply the ops, unmount, mount afresh, snapshot, unmount."""
    lowers, upper, work, mnt, options = spec["lowers"], spec["upper"], spec["work"], spec["mnt"], spec["options"]
    roots = [p.lstrip(":") for p in lowers] + ([upper] if upper else [])
    mount_overlay(lowers, upper, work, mnt, options)
    try:
        before = kernel_snapshot(mnt, layer_names(roots))
        log = apply_ops(mnt, spec["ops"])
    finally:
        umount(mnt)
    mount_overlay(lowers, upper, work, mnt, options)
    try:
        after = kernel_snapshot(mnt, layer_names(roots))
    finally:
        umount(mnt)
    return {"before": before, "after": after, "log": log}


CLONE_NEWNS, MS_REC, MS_PRIVATE = 0x00020000, 0x4000, 1 << 18  # <sched.h>, <sys/mount.h>


def run_in_private_mounts(spec: dict[str, Any]) -> dict[str, Any]:
    """:func:`cycle` as root in a forked child with a mount namespace of its own (private propagation), returning
    what it returns (JSON-shaped: facts as lists, see :func:`facts_from_json`).

    The mounts then never exist in the host's namespace: a mount namespace someone else creates meanwhile (a
    container engine, ``unshare -m``) cannot take a copy of one and keep its superblock alive after the unmount,
    which makes the next mount of that upper with ``index=on`` fail (EBUSY: "upperdir is in-use")."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        try:
            os.close(r)
            libc = ctypes.CDLL(None, use_errno=True)
            if libc.unshare(CLONE_NEWNS) != 0 or libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
                raise OSError(ctypes.get_errno(), "unshare/mount --make-rprivate /")
            out: dict[str, Any] = {"ok": cycle(spec)}
        except BaseException as e:  # noqa: BLE001 - everything goes back to the parent
            out = {"error": f"{type(e).__name__}: {e}", "oserror": isinstance(e, OSError)}
        with os.fdopen(w, "w") as f:
            f.write(json.dumps(out))
        os._exit(0)
    os.close(w)
    with os.fdopen(r) as f:
        text = f.read()
    os.waitpid(pid, 0)
    got: dict[str, Any] = json.loads(text) if text else {"error": "the child died", "oserror": False}
    if "error" in got:
        raise (OSError if got["oserror"] else RuntimeError)(got["error"])
    result: dict[str, Any] = got["ok"]
    return result


def facts_from_json(tree: dict[str, list[Any]]) -> dict[str, Facts]:
    return {k: (v[0], v[1], v[2], v[3], v[4]) for k, v in tree.items()}


def run_in_userns(spec: dict[str, Any], timeout: float = 120) -> dict[str, Any]:
    """Run :func:`cycle` as uid 65534 inside ``unshare -rm`` (the layers must belong to that uid)."""
    argv = [*nobody.SETPRIV, "unshare", "-rm", *nobody.command("-m", "tests.kernel.layers", json.dumps(spec))]
    r = subprocess.run(argv, cwd="/", capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"userns cycle failed ({r.returncode}): {r.stderr.strip()}")
    out: dict[str, Any] = json.loads(r.stdout)
    return out


def chown_tree(root: str, uid: int) -> None:
    os.lchown(root, uid, uid)
    for dirpath, dirnames, filenames in os.walk(root):
        for n in dirnames + filenames:
            os.lchown(os.path.join(dirpath, n), uid, uid)


def describe_layers(paths: dict[str, str]) -> str:
    """A listing of every layer (kind, mode, size, target, rdev, xattrs) for failure messages."""
    lines = []
    for label, root in paths.items():
        lines.append(f"== {label}: {root}")
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for n in sorted(dirnames + filenames):
                p = os.path.join(dirpath, n)
                st = os.lstat(p)
                extra = ""
                if stat.S_ISLNK(st.st_mode):
                    extra = " -> " + os.readlink(p)
                elif stat.S_ISCHR(st.st_mode):
                    extra = f" rdev={os.major(st.st_rdev)}/{os.minor(st.st_rdev)}"
                xs = {}
                try:
                    for x in os.listxattr(p, follow_symlinks=False):
                        xs[x] = os.getxattr(p, x, follow_symlinks=False)
                except OSError:
                    pass
                rel = os.path.relpath(p, root)
                lines.append(f"  {rel} {stat.filemode(st.st_mode)} size={st.st_size}{extra} {xs or ''}")
    return "\n".join(lines)


def build_layers(root: str, spec: dict[str, Any], ns: str = "trusted") -> dict[str, str]:
    """Make a stack spec's layers under ``root``: ``l0``.. (``spec["lowers"]``, top first), ``d0``.. (``spec["data"]``,
    data-only), ``u`` (``spec["upper"]``, None: no upper), and empty ``w`` and ``m``. Returns label -> path."""
    paths: dict[str, str] = {}
    trees = [(f"l{n}", t) for n, t in enumerate(spec["lowers"])]
    trees += [(f"d{n}", t) for n, t in enumerate(spec.get("data") or [])]
    trees += [("u", spec["upper"])] if spec.get("upper") is not None else []
    for label, tree in trees:
        paths[label] = os.path.join(root, label)
        os.mkdir(paths[label])
        build_tree(paths[label], tree, ns)
    for label in ("w", "m"):
        paths[label] = os.path.join(root, label)
        os.mkdir(paths[label])
    return paths


if __name__ == "__main__":
    if sys.argv[1] == "build":  # by hand: python -m tests.kernel.layers build DIR 'SPEC' (a failure prints both)
        print(json.dumps(build_layers(sys.argv[2], json.loads(sys.argv[3]), *sys.argv[4:])))
    else:
        print(json.dumps(cycle(json.loads(sys.argv[1]))))
