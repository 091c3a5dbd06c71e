"""``diff`` against what ``docker diff`` printed for the same container commands (OVERLAY-NOTES §4).

The image is a lower dir; the commands run through a real overlay mount (root), which leaves in the upper
exactly what the kernel writes; then ``ufs-tui diff`` reads the layers (unmounted) and must print the
docker lines.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.overlay import mounted
from ufs_tui.core import status as S

REPO = Path(__file__).resolve().parents[2]

KIND = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "chardev",
    stat.S_IFBLK: "blockdev",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}

IMAGE = {
    "etc/passwd": "root:x:0:0:root:/root:/bin/sh\n",
    "etc/motd": "welcome\n",
    "opt/app/one": "1\n",
    "opt/app/two": "2\n",
    "var/log/old": "old log\n",
    "bin/busybox": "\x7fELF not really\n",
    "bin/ls": "ls\n",
    "bin/cat": "cat\n",
}

SCENARIOS = {
    "rm-rf-mkdir": (
        "echo changed >> etc/passwd; rm -rf opt/app; mkdir opt/app; echo new > opt/app/x; touch newfile",
        ["A /newfile", "A /opt/app/x", "C /etc", "C /etc/passwd", "C /opt", "C /opt/app", "D /opt/app/one",
         "D /opt/app/two"],
    ),
    "mixed": (
        "mkdir -p newdir/sub; echo 1 > newdir/sub/f; rm -rf var/log; rm etc/motd; mkdir etc/motd; "
        "chmod 700 opt/app/one; touch opt/app; ln -s /x bin/newlink; rm bin/ls; echo x > bin/ls",
        ["A /bin/newlink", "A /newdir", "A /newdir/sub", "A /newdir/sub/f", "C /bin", "C /bin/ls", "C /etc",
         "C /etc/motd", "C /opt", "C /opt/app", "C /opt/app/one", "C /var", "D /var/log"],
    ),
}  # fmt: skip


def ufs(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ufs_tui", *args], capture_output=True, text=True, cwd=REPO, timeout=60
    )


@pytest.fixture(params=sorted(SCENARIOS))
def container(request: pytest.FixtureRequest, root_mount: None, tmp_layers: str) -> tuple[list[str], list[str], str]:
    """Run a scenario through a real mount; returns (ufs-tui stack args, expected docker lines, upper)."""
    script, expected = SCENARIOS[request.param]
    image, upper, work, mnt = (os.path.join(tmp_layers, n) for n in ("image", "upper", "work", "mnt"))
    for d in (image, upper, work, mnt):
        os.mkdir(d)
    for rel, data in IMAGE.items():
        os.makedirs(os.path.dirname(os.path.join(image, rel)), exist_ok=True)
        Path(image, rel).write_text(data)
    with mounted([image], upper, work, mnt):
        subprocess.run(["sh", "-ec", script], cwd=mnt, check=True, capture_output=True, timeout=60)
    return ["--lower", image, "--upper", upper], expected, upper


def _path(line: str) -> bytes:
    return os.fsencode(line.split(" ", 1)[1])


def test_diff_docker_prints_what_docker_printed(container: tuple[list[str], list[str], str]) -> None:
    args, expected, _ = container
    r = ufs("diff", *args, "--format", "docker")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""
    assert r.stdout.splitlines() == sorted(expected, key=_path)


def test_diff_json(container: tuple[list[str], list[str], str]) -> None:
    args, expected, upper = container
    r = ufs("diff", *args, "--format", "json")
    assert r.returncode == 0, r.stderr
    lines: list[dict[str, Any]] = [json.loads(line) for line in r.stdout.splitlines()]
    assert [f"{o['kind']} {o['path']}" for o in lines] == sorted(expected, key=_path)
    for o in lines:
        assert {"kind", "path", "type", "mode", "size", "layer", "source", "status"} <= set(o)
        st = os.lstat(o["source"])
        assert o["type"] == KIND[stat.S_IFMT(st.st_mode)]
        assert o["mode"] == stat.S_IMODE(st.st_mode)
        assert o["status"] in S.STYLES
        if o["kind"] in ("A", "C"):
            assert o["layer"] == "upper"
            assert o["source"] == upper + o["path"]
            assert o["status"] not in S.HIDDEN_STATUS.values()
        elif o["layer"] == "upper":  # a whiteout the container's rm left
            assert o["status"] == S.WHITEOUT
            assert o["type"] == "chardev" and os.major(st.st_rdev) == 0 and os.minor(st.st_rdev) == 0
        else:  # a lower child hidden by an opaque dir the container made
            assert o["status"] == S.OPAQUE_HIDDEN
            assert o["layer"] == "lower:0"
        if o["kind"] == "A":
            assert o["status"] == S.NEW


def test_diff_text(container: tuple[list[str], list[str], str]) -> None:
    args, expected, _ = container
    js = [json.loads(line) for line in ufs("diff", *args, "--format", "json").stdout.splitlines()]
    r = ufs("diff", *args)  # text is the default
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines == [f"{o['kind']} {S.STYLES[o['status']].glyph} {o['path']}  [{o['status']}]" for o in js]
    assert [line[0] + " " + line[4:].split("  [", 1)[0] for line in lines] == sorted(expected, key=_path)


def test_rm_rf_mkdir_statuses(root_mount: None, tmp_layers: str) -> None:
    """The opaque dir a container's ``rm -rf d; mkdir d`` leaves is status ``opaque``; its lower children are D."""
    image, upper, work, mnt = (os.path.join(tmp_layers, n) for n in ("image", "upper", "work", "mnt"))
    for d in (image, upper, work, mnt):
        os.mkdir(d)
    os.makedirs(os.path.join(image, "opt/app"))
    for n in ("one", "two"):
        Path(image, "opt/app", n).write_text(n)
    with mounted([image], upper, work, mnt):
        subprocess.run(["sh", "-ec", "rm -rf opt/app; mkdir opt/app; echo x > opt/app/one"], cwd=mnt, check=True)
    r = ufs("diff", "--lower", image, "--upper", upper, "--format", "json")
    got = [(o["kind"], o["path"], o["status"]) for o in map(json.loads, r.stdout.splitlines())]
    # /opt/app/one is in the upper again (a new file in the opaque dir): docker reports it C, not D
    assert got == [
        ("C", "/opt", S.MERGED),
        ("C", "/opt/app", S.OPAQUE),
        ("C", "/opt/app/one", S.NEW),
        ("D", "/opt/app/two", S.OPAQUE_HIDDEN),
    ]
