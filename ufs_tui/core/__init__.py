"""The headless core of ufs_tui: overlay stacks, their markers and merged view.

Nothing in this package imports ``textual`` (tests/core/test_boundary.py checks).
"""

from .model.errors import StackError, UfsError
from .model.markers import Node, probe
from .model.merge import Entry, Hidden, LayerVersion, OverlayView
from .model.stack import Layer, Stack, parse_lowerdir

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
