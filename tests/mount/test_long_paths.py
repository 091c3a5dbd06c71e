"""Long layer paths: the new mount API takes at most 255 bytes a value (fsconfig), while a Docker container's
five layers under /var/lib/docker/overlay2/<64 hex>/diff already make a 400-byte lowerdir; mount(2) takes a
page. Mounted for real, and what the kernel shows is the model's view."""

from __future__ import annotations

import os

from tests.overlay import kernel_tree, model_tree
from ufs_tui.core.model.stack import Stack
from ufs_tui.core.mounting.mount import MountManager


def test_a_lowerdir_longer_than_fsconfig_takes_mounts(root_mount: None, tmp_path: os.PathLike[str]) -> None:
    base = f"{tmp_path}/{'d' * 60}"
    lowers = [f"{base}/{i:02d}{'x' * 64}/diff" for i in range(5)]
    for i, low in enumerate(lowers):
        os.makedirs(low)
        with open(f"{low}/f{i}", "w") as f:
            f.write(f"{i}\n")
    stack = Stack.build(lowers)
    assert len(stack.lowerdir_option()) > 255
    os.makedirs(f"{tmp_path}/rt")
    manager = MountManager(runtime=f"{tmp_path}/rt")
    handle = manager.mount(stack, None, "kernel", [])
    try:
        assert kernel_tree(handle.path) == model_tree(stack)
        assert sorted(os.listdir(handle.path)) == [f"f{i}" for i in range(5)]
    finally:
        manager.unmount(handle)
