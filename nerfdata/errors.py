"""The errors nerfdata raises for bad input.

Every error a user can cause (a bad config, a corrupt checkpoint, a non-rigid pose) is a
:class:`NerfDataError`. The CLI prints its message as one line and exits with status 2; library
callers catch it like any exception. Inner code trusts its inputs and uses ``assert`` for invariants.
"""

__all__ = ["CheckpointError", "ConfigError", "NerfDataError", "OutputError", "PoseError"]


class NerfDataError(Exception):
    """Base class for every error caused by input nerfdata was given."""


class ConfigError(NerfDataError, ValueError):
    """A configuration value or key is invalid."""


class PoseError(NerfDataError, ValueError):
    """A camera pose or intrinsics is invalid (non-rigid, non-finite, zero-size image...)."""


class CheckpointError(NerfDataError):
    """A checkpoint is missing, corrupt, tampered with, or does not match its field."""


class OutputError(NerfDataError, OSError):
    """A file cannot be written: no space left, a read-only or forbidden folder, an output path under a file.

    Also an ``OSError``, so that code handling failed writes as such still does.
    """
