"""Screens of the explorer: help, legend, search, status filter."""
