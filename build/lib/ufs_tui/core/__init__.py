"""The headless core of ufs_tui: overlay stacks, their markers and merged view.

Nothing in this package imports ``textual`` (tests/core/test_boundary.py checks).
"""

from .errors import StackError, UfsError
from .markers import Node, probe
from .merge import Entry, Hidden, LayerVersion, OverlayView
from .stack import Layer, Stack, parse_lowerdir

__all__ = [
    "Entry",
    "Hidden",
    "Layer",
    "LayerVersion",
    "Node",
    "OverlayView",
    "Stack",
    "StackError",
    "UfsError",
    "parse_lowerdir",
    "probe",
]
