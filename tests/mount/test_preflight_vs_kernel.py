"""The mount preflight against the kernel itself: for every combination of the options that interact
(redirect_dir, metacopy, index, userxattr), the preflight refuses exactly the combinations the kernel
refuses, and the editor's check (the UI) says the same as the CLI's (one preflight)."""

from __future__ import annotations

import dataclasses
import itertools
import os
import subprocess

from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.mount import MountManager
from ufs_tui.core.mounting.preflight import check_mount
from ufs_tui.ui.screens.stack import stack_problems

VALUES = {
    "redirect_dir": (None, "on", "follow", "nofollow", "off"),
    "metacopy": (None, "on", "off"),
    "index": (None, "on", "off"),
    "userxattr": (False, True),
}


def combos() -> list[list[str]]:
    out = []
    for rd, mc, ix, ux in itertools.product(*VALUES.values()):
        opts = [f"redirect_dir={rd}"] if rd else []
        opts += [f"metacopy={mc}"] if mc else []
        opts += [f"index={ix}"] if ix else []
        opts += ["userxattr"] if ux else []
        out.append(opts)
    return out


def test_preflight_refuses_what_the_kernel_refuses(root_mount: None, tmp_path: os.PathLike[str]) -> None:
    base = os.fspath(tmp_path)
    wrong = []
    for i, opts in enumerate(combos()):
        d = f"{base}/{i}"
        for sub in ("l", "u", "w", "m"):
            os.makedirs(f"{d}/{sub}")
        stack = Stack.build([f"{d}/l"], upper=f"{d}/u", work=f"{d}/w")
        said = check_mount(stack, opts, "kernel")
        o = ",".join([f"lowerdir={d}/l", f"upperdir={d}/u", f"workdir={d}/w", *opts])
        kernel = subprocess.run(["mount", "-t", "overlay", "overlay", "-o", o, f"{d}/m"], capture_output=True)
        if kernel.returncode == 0:
            subprocess.run(["umount", f"{d}/m"], check=True)
        if bool(said) != (kernel.returncode != 0):
            wrong.append(
                f"{','.join(opts) or '(none)'}: kernel {'refuses' if kernel.returncode else 'mounts'}, "
                f"preflight {'refuses' if said else 'passes'} {[str(p) for p in said]}"
            )
        editor = stack_problems(dataclasses.replace(stack, options=tuple(opts)), "kernel")
        cli = MountManager(runtime=base).check(stack, "kernel", opts)
        if [str(p) for p in editor] != [str(p) for p in cli]:
            wrong.append(f"{','.join(opts)}: the editor says {editor}, the CLI {cli}")
    assert not wrong, "\n".join(wrong)
