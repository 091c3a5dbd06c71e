"""Fixtures for mount tests: a real, throwaway unprivileged user (made with useradd, removed afterwards)."""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests import nobody
from tests.conftest import need
from ufs_tui.core.mounting.record import recorded
from ufs_tui.core.mounting.userns import _start_time, _wait_gone


@dataclass(frozen=True)
class User:
    """A user the test created: no groups but its own, a home it owns and a Python it can run on the copy of this
    checkout that every user can read (tests/nobody.py). ``run`` runs a command as the user with a clean
    environment: no XDG_RUNTIME_DIR and no UFS_TUI_RUNTIME_DIR (so the default runtime dir, ``/tmp/ufs-tui-UID``,
    is what ufs-tui uses)."""

    name: str
    uid: int
    gid: int
    home: str
    python: str

    @property
    def runtime(self) -> str:
        return f"/tmp/ufs-tui-{self.uid}"

    def env(self) -> dict[str, str]:
        return {
            "HOME": self.home,
            "USER": self.name,
            "LOGNAME": self.name,
            "PATH": "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin",
            "LC_ALL": "C.UTF-8",
            **nobody.environ(),
        }

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        as_user = ["setpriv", f"--reuid={self.uid}", f"--regid={self.gid}", "--init-groups", "--reset-env"]
        return subprocess.run(
            [*as_user, "env", "-i", *(f"{k}={v}" for k, v in self.env().items()), *argv],
            capture_output=True, text=True, cwd=self.home, timeout=timeout,
        )  # fmt: skip

    def ufs_tui(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.run(self.python, "-m", "ufs_tui", *args)


@pytest.fixture
def throwaway_user() -> Iterator[User]:
    """As root: create a real user with a home (useradd), find a Python it can run on the copy of this checkout;
    afterwards end what it left running (by pid, from its mount record), and remove the user, its home and its
    runtime dir (userdel --remove)."""
    need(os.geteuid() == 0, "needs root to create a user")
    need(all(shutil.which(t) for t in ("useradd", "userdel", "setpriv")), "needs useradd, userdel and setpriv")
    name = f"ufst{uuid.uuid4().hex[:8]}"
    r = subprocess.run(
        ["useradd", "--create-home", "--user-group", "--shell", "/bin/sh", "--comment", "ufs-tui test", name],
        capture_output=True, text=True,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    pw = pwd.getpwnam(name)
    try:
        assert pw.pw_uid != 0 and os.path.isdir(pw.pw_dir)
        yield User(name, pw.pw_uid, pw.pw_gid, pw.pw_dir, nobody.python(pw.pw_uid))
    finally:
        runtime = f"/tmp/ufs-tui-{pw.pw_uid}"
        if os.path.isdir(runtime):
            for h in recorded(runtime):  # a helper a failed test left: end it by its pid (checked it is it)
                pid = h.helper_pid
                if pid is not None and h.helper_start is not None and _start_time(pid) == h.helper_start:
                    os.kill(pid, 9)
                    _wait_gone(pid, 30)
            shutil.rmtree(runtime, ignore_errors=True)
        r = subprocess.run(["userdel", "--remove", name], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert not os.path.exists(pw.pw_dir)
