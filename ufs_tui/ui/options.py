"""What the app is started with (the one factory, :func:`ufs_tui.ui.app.make_app`, fills it)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class UiOptions:
    notes: Sequence[str] = ()
    mount_point: str | None = None  # the merged mount point, watched too when given
    live: bool = True
    frozen: bool = False  # snapshots: hide times, inodes and the absolute temp paths
    aliases: dict[str, str] = field(default_factory=dict)  # path prefix -> shown as
    theme: str | None = None
    lower: str | None = None  # layer name first shown in the Lower pane
    engines: dict[str, str | None] = field(default_factory=dict)  # --host-root, --docker-root, ... ('o' lists them)
    source: str = ""  # the SOURCE opened (docker:web, IMAGE.tar, ...), shown over the layer list
    # Run once as the app ends, after its mounts are undone (the demo's temp dir): inside the app, where
    # SIGHUP and SIGTERM are still handled, not after it, where they would end the process first.
    on_exit: Callable[[], None] | None = None

    def alias(self, path: str) -> str:
        """``path`` as it is shown (the demo's temp dir as $DEMO)."""
        for prefix, shown in self.aliases.items():
            if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
                return shown + path[len(prefix.rstrip("/")) :]
        return path
