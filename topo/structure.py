"""Sparse-structure primitives shared by the data model and every analysis.

A layer's *structure* is the set of its connections: the stored entries of its
``(n_out, n_in)`` CSR matrix, whatever their values (SET and RigL regrow connections at weight
exactly 0, so a value of 0 does not mean "no connection"). The functions here work on those
matrices directly (the sparse matrix *is* the bipartite graph, as in scikit-network) and never
on weights: binary structures, intersections and unions of connection sets, the Jaccard index,
degrees, isolated units, units on input-to-output paths and structure fingerprints.

Every function is ``O(nnz)`` in the connections it reads (sparse index arithmetic, no Python
loop over units or connections). They take matrices, not :class:`~topo.graph.LayeredGraph`
objects, so that the data model itself uses them too (this module imports nothing from topo).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

__all__ = [
    "binary",
    "size",
    "density",
    "intersection_count",
    "union",
    "jaccard_index",
    "jaccard",
    "pooled_jaccard",
    "in_degrees",
    "out_degrees",
    "isolated_units",
    "units_on_paths",
    "fingerprint",
]


def binary(matrix: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    """The structure of ``matrix``: a canonical CSR matrix of ``int8`` ones, one per connection.

    Parameters
    ----------
    matrix
        A sparse matrix (its stored entries are the connections, explicit zeros included) or a
        dense array (its non-zero entries are the connections).

    Returns
    -------
    scipy.sparse.csr_matrix
        Same shape; duplicate entries summed into one, column indices sorted within each row.
        A new matrix: changing it never changes ``matrix``.

    Examples
    --------
    >>> import numpy as np, scipy.sparse as sp
    >>> w = sp.csr_matrix((np.array([0.0, 2.5]), np.array([0, 2]), np.array([0, 2, 2])),
    ...                   shape=(2, 3))
    >>> binary(w).toarray()  # the explicit zero at (0, 0) is a connection
    array([[1, 0, 1],
           [0, 0, 0]], dtype=int8)
    """
    if sp.issparse(matrix) and matrix.format == "csr" and matrix.has_canonical_format:
        return sp.csr_matrix((np.ones(matrix.nnz, dtype=np.int8), matrix.indices.copy(),
                              matrix.indptr.copy()), shape=matrix.shape)
    out = sp.csr_matrix(matrix, copy=True)
    out.sum_duplicates()
    out.data = np.ones(out.nnz, dtype=np.int8)
    out.sort_indices()
    return out


def size(matrix: sp.spmatrix | np.ndarray) -> int:
    """Number of possible connections of a layer: ``n_out * n_in``."""
    return int(matrix.shape[0]) * int(matrix.shape[1])


def density(matrix: sp.spmatrix) -> float:
    """Connections divided by possible connections (0 for a layer with no possible one)."""
    possible = size(matrix)
    return matrix.nnz / possible if possible else 0.0


def intersection_count(a: sp.spmatrix, b: sp.spmatrix) -> int:
    """Number of positions that hold a connection in both ``a`` and ``b``.

    Layers of different shapes are compared on their own indices: only the common
    ``min(n_out) x min(n_in)`` grid can hold a shared position.
    """
    a, b = _structure(a), _structure(b)
    if a.shape != b.shape:
        rows, cols = min(a.shape[0], b.shape[0]), min(a.shape[1], b.shape[1])
        a, b = a[:rows, :cols], b[:rows, :cols]
    return int(a.multiply(b).nnz)


def union(a: sp.spmatrix, b: sp.spmatrix) -> sp.csr_matrix:
    """Structure holding every connection of ``a`` or of ``b`` (same shapes)."""
    out = (_structure(a) + _structure(b)).tocsr()
    out.data[:] = 1
    return out


def jaccard_index(shared: int, n_a: int, n_b: int) -> float:
    """``|A ∩ B| / |A ∪ B|`` from the two set sizes and their intersection; 1 when both are empty.

    Examples
    --------
    >>> jaccard_index(2, 3, 3)  # 2 shared of 4 distinct
    0.5
    >>> jaccard_index(0, 0, 0)
    1.0
    """
    total = n_a + n_b - shared
    return shared / total if total else 1.0


def jaccard(a: sp.spmatrix, b: sp.spmatrix) -> float:
    """Jaccard index of the connection sets of two layers (1 when both are empty)."""
    a, b = _structure(a), _structure(b)
    return jaccard_index(intersection_count(a, b), int(a.nnz), int(b.nnz))


def pooled_jaccard(layers_a: Sequence[sp.spmatrix], layers_b: Sequence[sp.spmatrix]) -> float:
    """Jaccard index of two networks' connection sets, all layers pooled (1 if both are empty).

    Layer ``k`` of one network is compared with layer ``k`` of the other on their own indices
    (see :func:`intersection_count`); the caller checks that the layer counts agree.
    """
    shared = total = 0
    for a, b in zip(layers_a, layers_b, strict=True):
        a, b = _structure(a), _structure(b)
        i = intersection_count(a, b)
        shared += i
        total += a.nnz + b.nnz - i
    return shared / total if total else 1.0


def in_degrees(matrix: sp.spmatrix) -> np.ndarray:
    """Incoming connections of every output unit (length ``n_out``)."""
    return np.diff(_structure(matrix).indptr).astype(np.int64)


def out_degrees(matrix: sp.spmatrix) -> np.ndarray:
    """Outgoing connections of every input unit into this layer (length ``n_in``)."""
    return np.bincount(_structure(matrix).indices, minlength=matrix.shape[1]).astype(np.int64)


def isolated_units(matrix: sp.spmatrix) -> tuple[int, int]:
    """``(inputs without an outgoing connection, outputs without an incoming one)`` of a layer."""
    return (int(np.count_nonzero(out_degrees(matrix) == 0)),
            int(np.count_nonzero(in_degrees(matrix) == 0)))


def units_on_paths(layers: Sequence[sp.spmatrix]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per layer, which of its input-side and output-side units lie on an input-to-output path.

    A unit is on such a path when some network input reaches it (a forward pass of boolean
    reachability) and it reaches some network output (a backward pass).

    Parameters
    ----------
    layers
        Consecutive layers, input side first (``layers[k + 1].shape[1] == layers[k].shape[0]``).

    Returns
    -------
    (list of numpy.ndarray, list of numpy.ndarray)
        Indexed by layer: boolean flags of the layer's input units, and of its output units.
    """
    masks = [_structure(m) for m in layers]
    forward = [np.ones(masks[0].shape[1], dtype=bool)]
    for m in masks:
        forward.append(np.asarray(m @ forward[-1].astype(np.int64)).ravel() > 0)
    backward = [np.ones(masks[-1].shape[0], dtype=bool)]
    for m in reversed(masks):
        backward.append(np.asarray(m.T @ backward[-1].astype(np.int64)).ravel() > 0)
    backward.reverse()
    on = [f & b for f, b in zip(forward, backward)]
    return on[:-1], on[1:]


def fingerprint(layers: Sequence[sp.spmatrix]) -> bytes:
    """A 20-byte hash of the structures of ``layers``: equal structures give equal hashes.

    Weights are ignored; shapes count. Used to recognise snapshots whose structure repeats.
    """
    h = hashlib.blake2b(digest_size=20)
    for m in layers:
        m = _structure(m)
        h.update(np.asarray(m.shape, dtype=np.int64).tobytes())
        h.update(np.asarray(m.indptr, dtype=np.int64).tobytes())
        h.update(np.asarray(m.indices, dtype=np.int64).tobytes())
    return h.digest()


def _structure(matrix: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    """``matrix`` itself when it already is a binary structure (read only), else :func:`binary`."""
    if (sp.issparse(matrix) and matrix.format == "csr" and matrix.dtype == np.int8
            and matrix.has_canonical_format and bool(np.all(matrix.data == 1))):
        return matrix
    return binary(matrix)
