"""A lab for kernel tests: layers, an upper, a work dir and a mount point under one temp dir, and the check
that the model shows what a fresh mount of them shows (:meth:`Lab.same`)."""

from __future__ import annotations

import contextlib
import os
import stat
import subprocess
from collections.abc import Iterator

from tests.kernel.layers import kernel_snapshot, model_snapshot
from tests.overlay import Facts, mount_overlay, umount
from ufs_tui.core.model.kernel_defaults import in_effect
from ufs_tui.core.model.stack import Stack

T = "trusted.overlay."


class Lab:
    """Layers l0 (top lower) .. lN, an upper, a work dir and a mount point under one temp dir."""

    def __init__(self, root: str, nlowers: int = 2) -> None:
        self.root = root
        self.lowers = [self.mk(f"l{n}") for n in range(nlowers)]
        self.upper, self.work, self.mnt = self.mk("u"), self.mk("w"), self.mk("m")

    def mk(self, rel: str) -> str:
        p = os.path.join(self.root, rel)
        os.makedirs(p, exist_ok=True)
        return p

    def file(self, path: str, data: bytes = b"x", mode: int = 0o644) -> str:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(data)
        os.chmod(path, mode)
        return path

    def whiteout(self, path: str) -> str:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        os.mknod(path, stat.S_IFCHR | 0o600, 0)
        return path

    @contextlib.contextmanager
    def mounted(self, options: str = "", lowers: list[str] | None = None) -> Iterator[str]:
        mount_overlay(lowers or self.lowers, self.upper, self.work, self.mnt, options)
        try:
            yield self.mnt
        finally:
            umount(self.mnt)

    def stack(self, options: str = "", ns: str = "trusted", lower: str | list[str] | None = None) -> Stack:
        opts = in_effect([o for o in options.split(",") if o])  # what such a mount does, defaults said
        return Stack.build(lower or self.lowers, self.upper, self.work, xattr_ns=ns, options=opts)  # type: ignore[arg-type]

    def kernel(self, options: str = "", lowers: list[str] | None = None) -> dict[str, Facts]:
        with self.mounted(options, lowers) as m:
            return kernel_snapshot(m)

    def same(self, options: str = "", model_options: str | None = None) -> dict[str, Facts]:
        """Assert model == kernel for a fresh mount with ``options``; returns the view."""
        kernel = self.kernel(options)
        model = model_snapshot(self.stack(options if model_options is None else model_options))
        assert model == kernel, _diff(model, kernel)
        return kernel

    def ops(self, script: str, options: str = "") -> None:
        """Run a shell script with the mount as cwd (the kernel writes the markers)."""
        with self.mounted(options) as m:
            r = subprocess.run(["sh", "-ec", script], cwd=m, capture_output=True, text=True, errors="replace")
            assert r.returncode == 0, r.stderr

    def xattrs(self, path: str) -> dict[str, bytes]:
        return {x: os.getxattr(path, x, follow_symlinks=False) for x in os.listxattr(path, follow_symlinks=False)}


def _diff(model: dict[str, Facts], kernel: dict[str, Facts]) -> str:
    lines = ["model != kernel:"]
    for p in sorted(set(model) | set(kernel)):
        if model.get(p) != kernel.get(p):
            lines.append(f"  {p!r}: model={model.get(p)} kernel={kernel.get(p)}")
    return "\n".join(lines)
