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
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from typing import Any

from tests import nobody
from tests.overlay import Facts, _digest, model_digest, model_tree, mount_overlay, umount
from ufs_tui.core import status as S
from ufs_tui.core.markers import KIND_BY_FMT
from ufs_tui.core.merge import OverlayView
from ufs_tui.core.stack import Stack

NEW_NAMES = ["a", "b", "c", "d", "e", "n"]
OPS = ("write", "append", "chmod", "delete", "rmrf", "rmrf_mkdir", "rename", "create")
CREATE_KINDS = ("file", "dir", "symlink", "fifo")
MODES = (0o644, 0o600, 0o755, 0o4755, 0o640)


def build_tree(root: str, tree: dict[str, Any], ns: str) -> None:
    other = "user" if ns == "trusted" else "trusted"
    for name, node in tree.items():
        path = os.path.join(root, name)
        decoy = False
        if node[0] == "decoy":
            decoy, node = True, node[1]
        kind = node[0]
        if kind == "file":
            with open(path, "wb") as f:
                f.write(bytes.fromhex(node[1]))
            os.chmod(path, node[2])
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
            build_tree(path, node[1], ns)
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


ERROR: Facts = ("error", 0, 0, None, None)


def kernel_snapshot(mnt: str) -> dict[str, Facts]:
    """:func:`tests.overlay.kernel_tree`, plus names whose lookup fails (EPERM, EIO...) as :data:`ERROR`."""
    out: dict[str, Facts] = {}

    def walk(real: str, rel: str) -> None:
        for name in sorted(os.listdir(real)):
            p = os.path.join(real, name)
            path = rel + "/" + name
            try:
                st = os.lstat(p)
            except FileNotFoundError:
                continue
            except OSError:
                out[path] = ERROR
                continue
            kind = KIND_BY_FMT.get(stat.S_IFMT(st.st_mode), "unknown")
            target = os.fsdecode(os.readlink(p)) if kind == "symlink" else None
            digest = _digest(p) if kind == "file" else None
            out[path] = (
                kind,
                stat.S_IMODE(st.st_mode),
                st.st_size if kind in ("file", "symlink") else 0,
                target,
                digest,
            )
            if kind == "dir":
                walk(p, path)

    walk(mnt, "")
    return out


def model_snapshot(stack: Stack) -> dict[str, Facts]:
    """:func:`tests.overlay.model_tree`, with entries the kernel cannot look up (status error) as :data:`ERROR`."""
    view = OverlayView(stack)
    if not any(e.status == S.ERROR for _, e in view.walk()):
        return model_tree(stack)
    out: dict[str, Facts] = {}

    def walk(path: str) -> None:
        for e in view.list_dir(path):
            p = path.rstrip("/") + "/" + e.name
            if e.status == S.ERROR:
                out[p] = ERROR
                continue
            out[p] = (e.kind, e.mode, e.size if e.kind in ("file", "symlink") else 0, e.target, model_digest(e))
            if e.is_dir:
                walk(p)

    walk("/")
    return out


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
        data = bytes.fromhex(data_hex)
        items = _paths(mnt)
        files = [p for p, m in items if stat.S_ISREG(m)]
        nondirs = [p for p, m in items if p and not stat.S_ISDIR(m)]
        dirs = [p for p, m in items if stat.S_ISDIR(m)]  # includes the root ""
        subdirs = [p for p in dirs if p]
        chmodable = [p for p, m in items if p and not stat.S_ISLNK(m)]
        anything = [p for p, _ in items if p]

        def pick(pool: list[str], n: int) -> str | None:
            return pool[n % len(pool)] if pool else None

        def full(rel: str) -> str:
            return os.path.join(mnt, rel) if rel else mnt

        target: str | None
        try:
            if op in ("write", "append"):
                target = pick(files, i)
                if target is None:
                    continue
                with open(full(target), "wb" if op == "write" else "ab") as f:
                    f.write(data)
            elif op == "chmod":
                target = pick(chmodable, i)
                if target is None:
                    continue
                mode = MODES[k % len(MODES)]
                if stat.S_ISDIR(os.lstat(full(target)).st_mode):
                    mode = (0o755, 0o700, 0o750)[k % 3]
                os.chmod(full(target), mode)
                target += f" {mode:o}"
            elif op == "delete":
                target = pick(nondirs, i)
                if target is None:
                    continue
                os.unlink(full(target))
            elif op in ("rmrf", "rmrf_mkdir"):
                target = pick(subdirs, i)
                if target is None:
                    continue
                shutil.rmtree(full(target))
                if op == "rmrf_mkdir":
                    os.mkdir(full(target))
            elif op == "rename":
                src = pick(anything, i)
                parent = pick(dirs, j)
                if src is None or parent is None:
                    continue
                dst = f"{parent}/{NEW_NAMES[k % len(NEW_NAMES)]}" if parent else NEW_NAMES[k % len(NEW_NAMES)]
                target = f"{src} -> {dst}"
                os.rename(full(src), full(dst))
            elif op == "create":
                parent = pick(dirs, j)
                if parent is None:
                    continue
                name = NEW_NAMES[i % len(NEW_NAMES)]
                target = f"{parent}/{name}" if parent else name
                what = CREATE_KINDS[k % len(CREATE_KINDS)]
                p = full(target)
                target += f" ({what})"
                if what == "file":
                    with open(p, "xb") as f:
                        f.write(data)
                elif what == "dir":
                    os.mkdir(p)
                elif what == "symlink":
                    os.symlink("/etc/passwd" if data[:1] < b"\x80" else "../loop", p)
                else:
                    os.mkfifo(p, 0o644)
            else:  # pragma: no cover
                raise ValueError(op)
        except OSError as e:  # EXDEV (dir rename, default options), EEXIST, ENOTEMPTY, EINVAL...: the kernel said no
            log.append(f"{op} {target}: {e.strerror}")
            continue
        log.append(f"{op} {target}")
    return log


def cycle(spec: dict[str, Any]) -> dict[str, Any]:
    """Mount, snapshot, apply the ops, unmount, mount afresh, snapshot, unmount."""
    lowers, upper, work, mnt, options = spec["lowers"], spec["upper"], spec["work"], spec["mnt"], spec["options"]
    mount_overlay(lowers, upper, work, mnt, options)
    try:
        before = kernel_snapshot(mnt)
        log = apply_ops(mnt, spec["ops"])
    finally:
        umount(mnt)
    mount_overlay(lowers, upper, work, mnt, options)
    try:
        after = kernel_snapshot(mnt)
    finally:
        umount(mnt)
    return {"before": before, "after": after, "log": log}


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


if __name__ == "__main__":
    print(json.dumps(cycle(json.loads(sys.argv[1]))))
