"""Widgets of the explorer: pane trees, layer list, details panel."""
