"""The built-in demo stack: the classic overlayfs walk-through, made by the kernel itself.

Two lowers and an upper are laid out in a temporary dir, mounted, changed
through the mount (so every marker in the upper is one the kernel wrote), and
unmounted again:

* lower:0 has ``a``, ``c``, ``f``, ``dir/``, ``etc/``, ``old/``, ``bin/tool``,
  ``docs/`` and a whiteout for ``gone.txt``; lower:1 (bottom) has ``gone.txt``
  and a ``shadow.txt`` that lower:0 shadows; the upper starts with ``a`` and ``b``;
* through the mount: ``c`` is written (copy-up), ``f`` deleted (whiteout), ``g``
  created (new), ``dir`` removed and made again (opaque), ``etc/config``
  appended (merged dir), ``old/`` replaced by a file; as root also ``bin/tool``
  chmod-ed with ``metacopy=on`` (metacopy) and ``docs`` renamed to ``manual``
  with ``redirect_dir=on`` (redirect).

As root the mount is a plain ``mount -t overlay``. As an ordinary user it runs
in a user namespace (``unshare -rm``) with ``userxattr``; the kernel refuses
``metacopy`` and ``redirect_dir`` there, so those two states are absent and
:attr:`Demo.notes` says so. Without ``unshare``, the markers are made by hand
in their ``user.overlay.*`` xattr forms.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from dataclasses import dataclass, field

from .model.errors import UfsError
from .model.stack import Stack

LOWER0 = {
    "a": "a from lower 0\n",
    "c": "c from lower 0\n",
    "f": "f from lower 0 (deleted in the upper)\n",
    "dir/one": "one\n",
    "dir/two": "two\n",
    "etc/config": "# settings\ncolour = auto\n",
    "etc/hosts": "127.0.0.1 localhost\n",
    "old/inside": "old dir, replaced by a file in the upper\n",
    "docs/readme.md": "# Docs\nRenamed to manual/ in the upper (redirect).\n",
    "shadow.txt": "shadow.txt from lower 0 (hides lower 1's)\n",
    "app.py": 'def greet(name: str) -> str:\n    return f"hello {name}"\n',
}
LOWER1 = {
    "shadow.txt": "shadow.txt from lower 1\n",
    "gone.txt": "deleted by a whiteout in lower 0\n",
    "base/only-in-lower1": "bottom layer\n",
}
UPPER = {"a": "a from the upper\n", "b": "b, only in the upper\n"}

_OPS_COMMON = """
set -e
cd "$MNT"
echo "c, appended through the mount" >> c
rm f
echo "g, created through the mount" > g
rm -rf dir
mkdir dir
echo "a fresh file in the opaque dir" > dir/new.txt
echo "debug = true" >> etc/config
rm -rf old
echo "old is a file now" > old
"""
_OPS_ROOT = """
chmod 600 bin/tool
mv docs manual
"""


@dataclass
class Demo:
    root: str
    stack: Stack
    how: str  # "kernel mount", "user namespace mount", or "hand-made markers"
    notes: list[str] = field(default_factory=list)

    def cleanup(self) -> None:
        remove_tree(self.root)

    def __enter__(self) -> Demo:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()


def remove_tree(path: str) -> None:
    """rm -rf that also copes with the kernel's mode-000 ``work/work`` dir."""
    for dirpath, dirnames, _ in os.walk(path):
        for d in dirnames:
            full = os.path.join(dirpath, d)
            if not os.path.islink(full):
                try:
                    os.chmod(full, 0o755)
                except OSError:
                    pass
    shutil.rmtree(path, ignore_errors=True)


def _write_tree(root: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as f:
            f.write(text)


def build_demo(parent: str | None = None, mode: str = "auto") -> Demo:
    """Make the demo stack under a new temp dir. ``mode``: auto, kernel, userns or handmade.

    ``auto`` mounts (as root; in a user namespace otherwise) and, when that mount is refused (no overlay
    in this kernel, user namespaces disabled), makes the markers by hand instead and says why.
    """
    root = tempfile.mkdtemp(prefix="ufs-tui-demo-", dir=parent)
    try:
        try:
            return _build(root, mode)
        except UfsError as e:
            if mode != "auto":
                raise
            remove_tree(root)
            os.mkdir(root, 0o700)
            demo = _build(root, "handmade")
            demo.notes.insert(0, f"the mount was refused, so the markers were made by hand ({e})")
            return demo
    except BaseException:
        remove_tree(root)
        raise


def _build(root: str, mode: str) -> Demo:
    l0, l1, upper, work, mnt = (os.path.join(root, n) for n in ("lower0", "lower1", "upper", "work", "merged"))
    for d in (l0, l1, upper, work, mnt):
        os.mkdir(d)
    _write_tree(l0, LOWER0)
    _write_tree(l1, LOWER1)
    _write_tree(upper, UPPER)
    os.makedirs(os.path.join(l0, "bin"))
    with open(os.path.join(l0, "bin", "tool"), "wb") as f:
        f.write(b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 4)
    os.chmod(os.path.join(l0, "bin", "tool"), 0o755)
    if mode == "auto":
        if os.geteuid() == 0:
            mode = "kernel"
        elif shutil.which("unshare"):
            mode = "userns"
        else:
            mode = "handmade"
    notes: list[str] = []
    ns = "trusted" if mode == "kernel" else "user"
    # The options it was made with are the stack's: mounting it again (m in the UI) uses them.
    options: tuple[str, ...] = {"kernel": ("redirect_dir=on", "metacopy=on"), "userns": ("userxattr",)}.get(mode, ())
    _lower_whiteout(l0, "gone.txt", ns)
    env = dict(os.environ, MNT=mnt)
    opts = ",".join([f"lowerdir={l0}:{l1},upperdir={upper},workdir={work}", *options])
    if mode == "kernel":
        script = f'mount -t overlay overlay -o {opts} "$MNT"\n'
        script += _OPS_COMMON + _OPS_ROOT + 'cd /\numount "$MNT"\n'
        _run(["sh", "-c", script], env)
        how = f"kernel mount ({', '.join(sorted(options))})"
    elif mode == "userns":
        script = f'mount -t overlay overlay -o {opts} "$MNT"\n' + _OPS_COMMON + 'cd /\numount "$MNT"\n'
        _run(["unshare", "-rm", "sh", "-c", script], env)
        how = "user namespace mount (userxattr)"
        notes.append("metacopy and redirect need root: the kernel refuses them with userxattr, so they are absent here")
    else:
        _handmade(l0, upper)
        how = "hand-made markers (user.overlay.* xattrs)"
        notes.append("made without a mount: whiteouts are xattr whiteouts; metacopy and redirect are absent")
    os.rmdir(mnt)
    stack = Stack.build([l0, l1], upper=upper, work=work, xattr_ns=ns, options=options)  # type: ignore[arg-type]
    return Demo(root, stack, how, notes)


def _lower_whiteout(layer: str, name: str, ns: str) -> None:
    """A whiteout inside a lower, as an image layer would carry one."""
    path = os.path.join(layer, name)
    if ns == "trusted":
        os.mknod(path, 0o600 | 0o020000, 0)  # S_IFCHR, rdev 0/0
    else:
        open(path, "w").close()
        os.setxattr(path, "user.overlay.whiteout", b"y")
        os.setxattr(layer, "user.overlay.opaque", b"x")


def _handmade(l0: str, upper: str) -> None:
    """What the mount would have left, made by hand in the xattr forms an ordinary user can write."""
    shutil.copy2(os.path.join(l0, "c"), os.path.join(upper, "c"))
    with open(os.path.join(upper, "c"), "a") as f:
        f.write("c, appended through the mount\n")
    for name in ("f",):
        open(os.path.join(upper, name), "w").close()
        os.setxattr(os.path.join(upper, name), "user.overlay.whiteout", b"y")
    _write_tree(upper, {"g": "g, created through the mount\n", "dir/new.txt": "a fresh file in the opaque dir\n"})
    os.setxattr(os.path.join(upper, "dir"), "user.overlay.opaque", b"y")
    os.makedirs(os.path.join(upper, "etc"))
    shutil.copy2(os.path.join(l0, "etc", "config"), os.path.join(upper, "etc", "config"))
    with open(os.path.join(upper, "etc", "config"), "a") as f:
        f.write("debug = true\n")
    _write_tree(upper, {"old": "old is a file now\n"})


def _run(argv: list[str], env: dict[str, str]) -> None:
    try:
        r = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UfsError(f"could not build the demo stack: {e}") from None
    if r.returncode != 0:
        raise UfsError(f"could not build the demo stack: {(r.stderr or r.stdout).strip()}")
