"""The demo stack, as root and as an ordinary user: every state it promises is there, and it is what the kernel shows.

As root it is made through a real mount; as an ordinary user through a user-namespace mount (userxattr),
or, where that mount is refused, with hand-made markers. Each way is checked against a kernel mount of
the layers it leaves, and the CLI's ``demo --print`` is run as an unprivileged uid.
"""

from __future__ import annotations

import json
import os
import tempfile

import pytest

from tests import nobody
from tests.conftest import need
from tests.kernel.layers import kernel_snapshot, model_snapshot, run_in_userns
from tests.overlay import mounted
from ufs_tui.core.demo import build_demo, remove_tree
from ufs_tui.core.model import status as S
from ufs_tui.core.model.merge import OverlayView

EVERY_STATE = {S.LOWER, S.NEW, S.COPIED_UP, S.REPLACED, S.MERGED, S.OPAQUE}


def _statuses(view: OverlayView) -> set[str]:
    return {e.status for _, e in view.walk()} | {h.status for _, h, _ in view.walk_items(with_hidden=True)}


def test_demo_as_root_shows_every_state_and_equals_the_kernel(root_mount: None) -> None:
    demo = build_demo()
    try:
        assert demo.how.startswith("kernel mount")
        view = OverlayView(demo.stack)
        seen = _statuses(view)
        assert EVERY_STATE | {S.METACOPY, S.REDIRECT, S.WHITEOUT, S.WHITED_OUT, S.OPAQUE_HIDDEN} <= seen
        mnt = os.path.join(demo.root, "check")
        os.mkdir(mnt)
        s = demo.stack
        assert s.upper is not None and s.work is not None
        with mounted([lw.path for lw in s.lowers], s.upper.path, s.work, mnt, ",".join(s.options)):
            kernel = kernel_snapshot(mnt)
        assert model_snapshot(demo.stack) == kernel
    finally:
        demo.cleanup()
    assert not os.path.exists(demo.root)


@pytest.mark.parametrize("userns", [True, False], ids=["userns", "unshare-refused"])
def test_demo_as_an_ordinary_user(userns_mount: None, userns: bool) -> None:
    """``ufs-tui demo --print`` as uid 65534: a user-namespace mount, or (user namespaces refused: an
    ``unshare`` that fails) hand-made markers, said so in the notes; every state an ordinary user can make."""
    need(os.geteuid() == 0, "needs root to run the CLI as another uid")
    tmp = tempfile.mkdtemp(prefix="ufs-demo-user-", dir="/tmp")  # a dir that uid can reach
    os.chmod(tmp, 0o777)
    try:
        _demo_as_nobody(tmp, userns)
    finally:
        remove_tree(tmp)


def _demo_as_nobody(tmp: str, userns: bool) -> None:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "TMPDIR": tmp, "HOME": tmp}
    if not userns:
        fake = os.path.join(tmp, "bin")
        os.mkdir(fake)
        with open(os.path.join(fake, "unshare"), "w") as f:
            f.write("#!/bin/sh\necho 'unshare: unshare failed: Operation not permitted' >&2\nexit 1\n")
        os.chmod(os.path.join(fake, "unshare"), 0o755)
        os.chmod(fake, 0o755)
        env["PATH"] = fake + ":" + env["PATH"]
    r = nobody.run("-m", "ufs_tui", "demo", "--print", "--format", "json", "--all", env=env, text=True)
    assert r.returncode == 0, r.stderr
    header = [line for line in r.stderr.splitlines() if line.startswith("#")]  # JSON lines hold only JSON
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    made_by = "user namespace mount" if userns else "hand-made markers"
    assert any(made_by in line for line in header), header
    if not userns:
        assert any("the mount was refused" in line for line in header), header
    seen = {row["status"] for row in rows}
    assert EVERY_STATE | {S.WHITEOUT, S.WHITED_OUT, S.OPAQUE_HIDDEN} <= seen, seen
    assert not [d for d in os.listdir(tmp) if d.startswith("ufs-tui-demo-")]  # cleaned up


def test_hand_made_demo_equals_a_userxattr_mount(userns_mount: None) -> None:
    """The markers made by hand are the ones the kernel honours: a userxattr mount of those layers (as an
    unprivileged uid in a user namespace) shows exactly what the model shows."""
    need(os.geteuid() == 0, "needs root to hand the layers to another uid")
    demo = build_demo(mode="handmade")
    try:
        assert demo.stack.xattr_ns == "user"
        for dirpath, dirnames, filenames in os.walk(demo.root):
            for n in [dirpath, *(os.path.join(dirpath, x) for x in dirnames + filenames)]:
                os.lchown(n, nobody.UID, nobody.UID)
        s = demo.stack
        assert s.upper is not None and s.work is not None
        mnt = os.path.join(demo.root, "check")
        os.mkdir(mnt)
        os.chown(mnt, nobody.UID, nobody.UID)
        spec = {
            "lowers": [lw.path for lw in s.lowers],
            "upper": s.upper.path,
            "work": s.work,
            "mnt": mnt,
            "options": "userxattr",
            "ops": [],
        }
        out = run_in_userns(spec)
        kernel = {k: tuple(v) for k, v in out["before"].items()}
        assert model_snapshot(s) == kernel
        assert {S.OPAQUE, S.COPIED_UP, S.NEW} <= _statuses(OverlayView(s))
    finally:
        remove_tree(demo.root)


def test_build_demo_falls_back_only_in_auto_mode(monkeypatch: pytest.MonkeyPatch, tmp_path: os.PathLike[str]) -> None:
    """An explicit mode that cannot be made is an error, not a silent fallback."""
    fake = os.path.join(os.fspath(tmp_path), "bin")
    os.mkdir(fake)
    with open(os.path.join(fake, "unshare"), "w") as f:
        f.write("#!/bin/sh\nexit 1\n")
    os.chmod(os.path.join(fake, "unshare"), 0o755)
    monkeypatch.setenv("PATH", fake + ":" + os.environ.get("PATH", ""))
    from ufs_tui.core.model.errors import UfsError

    with pytest.raises(UfsError, match="could not build the demo stack"):
        build_demo(parent=os.fspath(tmp_path), mode="userns")
    assert [d for d in os.listdir(os.fspath(tmp_path)) if d.startswith("ufs-tui-demo-")] == []
