"""Errors that are the user's to fix: shown as one clear message, never a traceback."""

from __future__ import annotations

from pathlib import Path


class MartingaleError(Exception):
    """Base class for user-facing errors (bad data, bad configuration, bad arguments)."""


class DataError(MartingaleError):
    """A data file is missing, unreadable, or not in the expected format."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{path}: {problem}")


class LogFileError(DataError):
    """A file given as an eval log is not one, or is cut short or corrupt (the command line exits 2)."""


class ConfigError(MartingaleError):
    """A task or protocol setting is unknown or has a value that is not allowed."""
