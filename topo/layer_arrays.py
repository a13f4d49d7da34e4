"""One layer's connections as plain CSR arrays, usable without SciPy.

A :class:`~topo.graph.LayeredGraph` holds each layer as a SciPy CSR matrix. Importing
``scipy.sparse`` costs about a third of a second, which is most of what topo adds to the
start of a training run, so the parts of training that run before the first mini-batch (the
epoch-0 snapshot, :mod:`topo.io.snapshot`; the dead neuron rate, :mod:`topo.activity`) work
on these arrays instead: the very arrays a snapshot stores and a graph's CSR matrix holds.

This module imports nothing from topo (it sits with :mod:`topo.structure` at the bottom of
the layers).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import scipy.sparse as sp

__all__ = ["LayerArrays"]


class LayerArrays(NamedTuple):
    """A layer's connections in canonical CSR form (rows = output units).

    Attributes
    ----------
    indptr
        int array of shape ``(n_out + 1,)``: row ``i``'s connections are the entries
        ``indptr[i]:indptr[i + 1]``.
    indices
        int array of shape ``(nnz,)``: each connection's column, increasing within a row.
    data
        float64 array of shape ``(nnz,)``: each connection's weight (a weight may be 0; it
        is still a connection).
    shape
        ``(n_out, n_in)`` of the weight matrix.
    """

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray
    shape: tuple[int, int]

    @classmethod
    def of_matrix(cls, matrix: sp.csr_matrix) -> LayerArrays:
        """The arrays of a canonical CSR matrix (shared, not copied)."""
        return cls(matrix.indptr, matrix.indices, matrix.data,
                   (int(matrix.shape[0]), int(matrix.shape[1])))

    @property
    def nnz(self) -> int:
        """Number of connections."""
        return int(self.indices.size)

    def rows(self) -> np.ndarray:
        """Each connection's row (output unit), shape ``(nnz,)``."""
        return np.repeat(np.arange(self.shape[0]), np.diff(self.indptr))

    def toarray(self) -> np.ndarray:
        """The dense ``(n_out, n_in)`` float64 weight matrix (0 where no connection)."""
        dense = np.zeros(self.shape, dtype=np.float64)
        dense[self.rows(), self.indices] = self.data
        return dense

    def to_csr(self) -> sp.csr_matrix:
        """The layer as a SciPy CSR matrix over the same arrays (imports SciPy)."""
        import scipy.sparse as sp

        return sp.csr_matrix((self.data, self.indices, self.indptr), shape=self.shape)

    def has_inputs(self) -> np.ndarray:
        """Whether each output unit has a connection, bool array of shape ``(n_out,)``."""
        return np.diff(self.indptr) > 0

    def has_outputs(self) -> np.ndarray:
        """Whether each input unit has a connection, bool array of shape ``(n_in,)``."""
        return np.bincount(self.indices, minlength=self.shape[1]) > 0
