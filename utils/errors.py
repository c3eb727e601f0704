"""Errors caused by the user's input or environment, told apart from bugs by their type.

An entry script turns a :class:`UserError` into one line on stderr and exit code 2 wherever
it is raised, during set-up or in the middle of training (a resume that does not fit, a full
disk); any other exception is a bug and keeps its traceback.
"""

from __future__ import annotations

__all__ = ["UserError", "ConfigError", "CheckpointError", "StorageError"]


class UserError(Exception):
    """Raised for bad input or a broken environment; the message says what is wrong and what to do."""


class ConfigError(UserError, ValueError):
    """A configuration value or name is wrong; the message names the option."""


class CheckpointError(UserError, ValueError):
    """A checkpoint file cannot be used: missing, not a checkpoint, damaged, unsafe or of another model."""


class StorageError(UserError, OSError):
    """Writing an output file failed (a full disk, no permission); the message names the path."""
