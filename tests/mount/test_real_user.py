"""The user-namespace backend end to end as an ordinary user the test creates (useradd), with ufs-tui's defaults:
no $XDG_RUNTIME_DIR and no $UFS_TUI_RUNTIME_DIR, so the record and the mount target live in /tmp/ufs-tui-UID.
Mount with the CLI, write through /proc/PID/root/TARGET, unmount with ``umount --mine``.
"""

from __future__ import annotations

import os
import stat
import subprocess

from tests.mount.conftest import User
from tests.mount.helpers import make_tree
from ufs_tui.core.mounting.record import recorded
from ufs_tui.core.mounting.userns import _start_time, _wait_gone


def test_userns_mount_write_and_umount_as_a_new_user(userns_mount: None, throwaway_user: User) -> None:
    user = throwaway_user
    r = user.run("sh", "-c", "id -u; echo ${XDG_RUNTIME_DIR:-unset} ${UFS_TUI_RUNTIME_DIR:-unset}")
    assert r.returncode == 0 and r.stdout.split() == [str(user.uid), "unset", "unset"], r.stderr
    layers = os.path.join(user.home, "layers")
    make_tree(layers, {"l0/a": "a0\n", "l0/sub/x": "x\n", "l1/b": "b1\n", "u/": None, "w/": None})
    subprocess.run(["chown", "-R", f"{user.uid}:{user.gid}", layers], check=True)  # the user's own layers
    assert not os.path.exists(user.runtime)

    r = user.ufs_tui("mount", "--lower", f"{layers}/l0:{layers}/l1", "--upper", f"{layers}/u", "--work", f"{layers}/w")
    assert r.returncode == 0, r.stderr
    path = r.stdout.strip()
    # The default runtime dir: made by ufs-tui, private to the user; the record and the target are in it.
    st = os.lstat(user.runtime)
    assert stat.S_ISDIR(st.st_mode) and st.st_uid == user.uid and stat.S_IMODE(st.st_mode) == 0o700
    [h] = recorded(user.runtime)
    assert h.backend == "userns" and h.helper_pid is not None and os.path.dirname(h.target) == user.runtime
    assert path == f"/proc/{h.helper_pid}/root{h.target}" and f"mounted in a user namespace at {h.target}" in r.stderr
    assert os.stat(f"/proc/{h.helper_pid}").st_uid == user.uid  # the helper runs as the user

    # Write through the mount as the user, at /proc/PID/root/TARGET; read the lowers through it.
    w = user.run("sh", "-ec", f'cat "{path}/a" "{path}/b"; echo new > "{path}/sub/made"; rm "{path}/b"')
    assert w.returncode == 0 and w.stdout == "a0\nb1\n", w.stderr
    made = os.lstat(f"{layers}/u/sub/made")
    with open(f"{layers}/u/sub/made") as f:
        assert made.st_uid == user.uid and f.read() == "new\n"
    wh = os.lstat(f"{layers}/u/b")  # the deletion, as the kernel records it in a user namespace
    assert stat.S_ISCHR(wh.st_mode) and wh.st_rdev == 0
    assert os.getxattr(f"{layers}/u/sub", "user.overlay.origin") is not None  # userxattr: user.overlay.*

    r = user.ufs_tui("umount", "--mine")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"unmounted: {h.target} (userns)"
    assert _wait_gone(h.helper_pid, 30) or _start_time(h.helper_pid) != h.helper_start
    assert recorded(user.runtime) == [] and not os.path.exists(h.target)
    assert os.listdir(f"{layers}/u/sub") == ["made"]  # what was written stays in the upper
