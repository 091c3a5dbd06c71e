"""Run this checkout as uid 65534 ("nobody"): the one way the tests do it.

A checkout may sit where that uid cannot read (a clone in ``mktemp -d`` or under /root), and so may the venv's
interpreter and its site-packages. So, once a test session, this module copies what a test run as that uid
imports into a fresh dir in /tmp that every user can read, and removes it when the session ends:

* ``ufs_tui/`` (with the ``_dirscan`` extension where it was built in place) and ``tests/`` (some calls run a
  test module, such as ``-m tests.kernel.layers``), from this checkout;
* the third-party packages that importing :data:`IMPORTS` loads (textual, rich, watchfiles...), found in a fresh
  interpreter's ``sys.modules``: only those, not the whole site-packages.

Every Python run as that uid runs on the copy (``PYTHONPATH``; ``PYTHONSAFEPATH`` keeps the cwd off
``sys.path``), whether or not the checkout could have been read, with an interpreter that uid can start.
"""

from __future__ import annotations

import atexit
import functools
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from typing import Any

UID = 65534


def _setpriv(uid: int) -> list[str]:
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


SETPRIV = _setpriv(UID)  # a command after it runs as uid 65534 with no groups
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What a Python run as that uid may import: the CLI, the UI and its watcher (imported when the app starts
# watching), and the test module run in user namespaces.
IMPORTS = ("ufs_tui.cli", "ufs_tui.ui.app", "watchfiles", "tests.kernel.layers")
_OWN = ("ufs_tui", "tests")  # copied from the checkout whole

# Run by the test's own interpreter, on the checkout: the files and dirs of the top-level modules from
# site-packages that importing the modules named loads.
_PROBE = """
import json, site, sys
before = set(sys.modules)
for name in sys.argv[1:]:
    __import__(name)
places = [*site.getsitepackages(), site.getusersitepackages()]
found = set()
for name in set(sys.modules) - before:
    module = sys.modules[name.partition(".")[0]]
    for path in getattr(module, "__path__", None) or [getattr(module, "__file__", None)]:
        if path and any(path.startswith(place + "/") for place in places):
            found.add(path)
print(json.dumps(sorted(found)))
"""


@functools.cache
def tree() -> str:
    """The copy (made on first use, removed at exit): dirs 0755, files 0644, owned by root."""
    probe = subprocess.run(
        [sys.executable, "-c", _PROBE, *IMPORTS],
        env=dict(os.environ, PYTHONPATH=ROOT, PYTHONSAFEPATH="1", PYTHONDONTWRITEBYTECODE="1"),
        capture_output=True, text=True, cwd="/", timeout=120,
    )  # fmt: skip
    if probe.returncode != 0:
        raise RuntimeError(f"cannot import {', '.join(IMPORTS)}: {probe.stderr.strip()}")
    d = tempfile.mkdtemp(prefix="ufs-nobody-", dir="/tmp")
    atexit.register(_remove, d, os.getpid())
    skip = shutil.ignore_patterns("__pycache__", "*.pyc")
    for path in [*(os.path.join(ROOT, own) for own in _OWN), *json.loads(probe.stdout)]:
        dest = os.path.join(d, os.path.basename(path))
        if os.path.isdir(path):
            shutil.copytree(path, dest, ignore=skip, dirs_exist_ok=True)  # (a namespace package: dirs)
        else:
            shutil.copyfile(path, dest)
    for dirpath, _, filenames in os.walk(d):
        os.chmod(dirpath, 0o755)
        for n in filenames:
            os.chmod(os.path.join(dirpath, n), 0o644)
    return d


def _remove(d: str, pid: int) -> None:
    if os.getpid() == pid:  # not in a forked child that happens to exit through atexit
        shutil.rmtree(d, ignore_errors=True)


def environ() -> dict[str, str]:
    """The variables a Python needs to run on the copy."""
    return {"PYTHONPATH": tree(), "PYTHONSAFEPATH": "1", "PYTHONDONTWRITEBYTECODE": "1"}


@functools.cache
def python(uid: int = UID) -> str:
    """A Python >= 3.11 that ``uid`` may start (a venv's may sit under root's mode-700 home) and that imports
    :data:`IMPORTS` from the copy: tried as that uid, with no groups (which it checks too)."""
    facts = "[sys.version_info >= (3, 11), ufs_tui.__file__, os.getuid(), os.geteuid(), os.getgroups()]"
    check = f"import json, os, sys, {', '.join(IMPORTS)}; print(json.dumps({facts}))"
    want = [True, os.path.join(tree(), "ufs_tui", "__init__.py"), uid, uid, []]
    as_uid = [*_setpriv(uid), "env", *_assignments(environ())]
    candidates = [sys.executable, "/usr/bin/python3", shutil.which("python3") or ""]
    tried = []
    for exe in filter(None, candidates):
        try:
            r = subprocess.run([*as_uid, exe, "-c", check], capture_output=True, text=True, cwd="/", timeout=60)
        except OSError as e:
            tried.append(f"{exe}: {e}")
            continue
        if r.returncode == 0 and json.loads(r.stdout) == want:
            return exe
        tried.append(f"{exe}: exit {r.returncode} {r.stdout.strip()} {r.stderr.strip()[-300:]}")
    raise RuntimeError(f"no Python >= 3.11 that uid {uid} can run on {tree()}: " + "; ".join(tried))


def command(*args: str, **variables: str) -> list[str]:
    """``python ARGS`` on the copy, with ``variables`` set too, through env(1) (so the caller's environment, or
    the one handed to subprocess, comes through as well); run by whoever runs it: see :func:`argv`."""
    return ["env", *_assignments({**environ(), **variables}), python(), *args]


def argv(*args: str, **variables: str) -> list[str]:
    """:func:`command` as uid 65534."""
    return [*SETPRIV, *command(*args, **variables)]


def run(*args: str, env: Mapping[str, str] | None = None, **kwargs: Any) -> subprocess.CompletedProcess[Any]:
    """:func:`argv` run from /, its output captured, in 120 s at most (``kwargs`` go to subprocess.run)."""
    kwargs = {"capture_output": True, "cwd": "/", "timeout": 120, **kwargs}
    return subprocess.run(argv(*args), env=env, **kwargs)


def _assignments(variables: Mapping[str, str]) -> list[str]:
    return [f"{k}={v}" for k, v in variables.items()]
