"""The exception family for user-facing problems.

Every problem a user can cause (a missing file, a corrupt checkpoint, two networks that
cannot be compared) raises a subclass of :class:`TopoError` whose message names the file or
layer and says what is wrong. The command line prints that message as one line on stderr
and exits non-zero; it never shows a traceback for these.
"""

from __future__ import annotations

__all__ = [
    "TopoError",
    "UnreadableFileError",
    "UnsafeFileError",
    "GraphStructureError",
    "NonFiniteWeightsError",
    "IncompatibleGraphsError",
    "ConfigError",
    "OutputError",
]


class TopoError(Exception):
    """Base class of every user-facing error raised by topo."""


class UnreadableFileError(TopoError):
    """A path is missing, holds nothing topo can read, or is truncated/corrupt."""


class UnsafeFileError(TopoError):
    """Reading the file would need to run code from it (e.g. a pickle with arbitrary globals)."""


class GraphStructureError(TopoError):
    """Layers do not form a valid layered graph (not 2-D, widths that disagree, ...)."""


class NonFiniteWeightsError(TopoError):
    """Weights contain NaN or infinity where an analysis needs finite values."""


class IncompatibleGraphsError(TopoError):
    """Two graphs cannot be compared (different input or output widths, ...)."""


class ConfigError(TopoError):
    """An option or configuration value is invalid (unknown method, bad architecture, ...)."""


class OutputError(TopoError):
    """An output file or folder cannot be written (missing parent, no permission, a folder)."""
