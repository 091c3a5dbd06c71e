"""The user-namespace helper imports ufs_tui from where the app runs, whatever its interpreter has installed: the
helper's PYTHONPATH names the dir that holds the ``ufs_tui`` package (it named ``ufs_tui/`` itself once the
module had moved a level deeper, and only an installed ufs_tui made the helper work)."""

from __future__ import annotations

import subprocess
import sys

from ufs_tui.core.mounting import userns


def test_an_interpreter_without_site_packages_imports_the_helper_from_its_path() -> None:
    code = "import ufs_tui.core.mounting.userns as u; print(u.__file__)"
    r = subprocess.run(
        [sys.executable, "-S", "-c", code],  # -S: no site-packages, so nothing installed can be found
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": userns.PACKAGE_PARENT},
        cwd="/",
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == userns.__file__
