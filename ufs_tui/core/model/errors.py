"""Errors the core raises: each names a path and the problem, in words a user can act on."""

from __future__ import annotations


class UfsError(Exception):
    """Base class: every error ufs_tui reports to a user without a traceback."""


class StackError(UfsError):
    """A stack cannot be read: a layer is missing, not a directory, unreadable, or badly specified."""

    def __init__(self, path: str, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = path
        self.problem = problem
