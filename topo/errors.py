"""The exception family for user-facing problems.

Every problem a user can cause (a missing file, a corrupt checkpoint, two networks that
cannot be compared) raises a subclass of :class:`TopoError` whose message names the file or
layer and says what is wrong. The command line prints that message as one line on stderr
and exits non-zero; it never shows a traceback for these.

Two classes also derive from the built-in exception a Python caller would expect for the same
mistake (:class:`NotAGraphError` is a ``TypeError``, :class:`InvalidTableError` a
``ValueError``), so ``except TypeError`` around an analysis keeps working.
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
    "NotAGraphError",
    "EmptyInputError",
    "InvalidTableError",
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
    """An option or argument value is invalid (unknown method, bad architecture, a matching
    or label list that does not fit, ...)."""


class OutputError(TopoError):
    """An output file or folder cannot be written (missing parent, no permission, a folder,
    an unsupported file type)."""


class NotAGraphError(TopoError, TypeError):
    """An analysis was given something other than a LayeredGraph (analyses never open files:
    read a path with :func:`topo.load` or a run with :func:`topo.read_sequence`)."""


class EmptyInputError(TopoError, ValueError):
    """An analysis or command that needs networks was given none (an empty sequence)."""


class InvalidTableError(TopoError, ValueError):
    """A table or matrix handed to a plot or writer lacks what it needs (a square matrix, a
    known column, a fitting shape)."""
