"""ufs_tui: see inside overlayfs stacks (lower, upper and merged side by side)."""

__version__ = "0.1.0"
