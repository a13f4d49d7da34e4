"""Sparse-structure primitives shared by the data model and every analysis.

A layer's *structure* is the set of its connections: the stored entries of its
``(n_out, n_in)`` CSR matrix, whatever their values (SET and RigL regrow connections at weight
exactly 0, so a value of 0 does not mean "no connection"). The functions here work on those
matrices directly (the sparse matrix *is* the bipartite graph, as in scikit-network) and never
on weights: binary structures, intersections and unions of connection sets, the Jaccard index,
degrees, isolated units, units on input-to-output paths and structure fingerprints.

Convolutions. A layer maps input *units* to output units; a unit may have several *positions*
(a conv layer's input channel has ``kh * kw`` kernel positions, a linear layer reading a
flattened ``(C, H, W)`` feature map has ``H * W`` per channel). The layer's CSR matrix then has
``n_in_units * positions`` columns, column ``in_unit * positions + position`` (PyTorch's
``weight.reshape(C_out, -1)``), and every kernel element is a connection. The block helpers
here re-index whole units (:func:`block_columns`, :func:`reindex_blocks`) and collapse a layer
to its *unit graph* (:func:`unit_graph`, :func:`unit_structure`). With one position per unit
they are the identity on the layer.

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
    "UNIT_NORMS",
    "block_columns",
    "reindex_blocks",
    "unit_graph",
    "unit_structure",
]

#: Norms a unit graph can give each (output unit, input unit) block of kept elements
#: (:func:`unit_graph`).
UNIT_NORMS = ("l2", "l1", "max", "sum", "count")


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


def units_on_paths(layers: Sequence[sp.spmatrix], reads: Sequence[int] | None = None,
                   writes: Sequence[int] | None = None,
                   output_sets: Sequence[int] | None = None,
                   ) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per layer, which of its input-side and output-side units lie on an input-to-output path
    through that layer.

    Parameters
    ----------
    layers
        Unit-level structures ``(n_out, n_in)`` in forward order (for layers with several
        positions per unit, their :func:`unit_structure`).
    reads, writes
        The unit set each layer reads and writes (see :class:`topo.graph.LayeredGraph`);
        omitted: the chain (layer ``k`` reads set ``k`` and writes set ``k + 1``). Set 0 is the
        network input.
    output_sets
        The sets whose units are network outputs; omitted: the set the last layer writes.
        (Independent matrices: every layer's own output set.)

    Returns
    -------
    (list of numpy.ndarray, list of numpy.ndarray)
        Indexed by layer: boolean flags of the layer's input units, and of its output units.
        An input unit is on a path through the layer when some network input reaches it and
        one of its connections in this layer leads to a unit that reaches a network output;
        an output unit when a connection of this layer brings it a reached input and it
        reaches a network output.

    Notes
    -----
    A layer reads the *current value* of its read set: the sum of what the layers before it
    wrote there (a residual addition), and adds its output to its write set. Reachability
    follows those values exactly: a forward pass in layer order (a set's reached units
    accumulate as its writers add to it) and a backward pass in reverse order (a set's
    value after a write reaches the output through every later reader and, by the identity
    of the addition, through every later value of the set). For a chain this is plain
    forward and backward reachability. ``O(connections)`` per pass.
    """
    masks = [_structure(m) for m in layers]
    n = len(masks)
    reads = list(range(n)) if reads is None else [int(r) for r in reads]
    writes = list(range(1, n + 1)) if writes is None else [int(w) for w in writes]
    if output_sets is None:
        output_sets = [writes[-1]]
    n_sets = max(max(reads), max(writes)) + 1
    size = [0] * n_sets
    for k, m in enumerate(masks):
        size[reads[k]], size[writes[k]] = m.shape[1], m.shape[0]
    written = set(writes)
    # forward: the reached units of every set's current value
    current = [np.ones(s, dtype=bool) if i not in written or i == reads[0] else
               np.zeros(s, dtype=bool) for i, s in enumerate(size)]
    read_value = []
    for k, m in enumerate(masks):
        value = current[reads[k]].copy()
        read_value.append(value)
        current[writes[k]] = current[writes[k]] | _reaches(m, value)
    # backward: units of a set's value after each write that reach an output
    later = [np.zeros(s, dtype=bool) for s in size]
    for s in output_sets:
        later[int(s)][:] = True
    after_write: list[np.ndarray] = [np.zeros(0, dtype=bool)] * n
    for k in range(n - 1, -1, -1):
        after_write[k] = later[writes[k]].copy()
        later[reads[k]] = later[reads[k]] | _reaches(masks[k].T.tocsr(), after_write[k])
    on_in = [read_value[k] & _reaches(masks[k].T.tocsr(), after_write[k]) for k in range(n)]
    on_out = [after_write[k] & _reaches(masks[k], read_value[k]) for k in range(n)]
    return on_in, on_out


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


def block_columns(unit_map: np.ndarray, positions: int) -> np.ndarray:
    """The column map of a layer's elements from a map of its input units.

    Parameters
    ----------
    unit_map
        New index of every input unit (length ``n_in``).
    positions
        Positions per input unit.

    Returns
    -------
    numpy.ndarray
        Length ``n_in * positions``: column ``u * positions + p`` goes to
        ``unit_map[u] * positions + p``; whole blocks move, positions keep their order.

    Examples
    --------
    >>> block_columns(np.array([1, 0]), 3).tolist()
    [3, 4, 5, 0, 1, 2]
    """
    unit_map = np.asarray(unit_map, dtype=np.int64)
    return (unit_map[:, None] * positions + np.arange(positions, dtype=np.int64)).ravel()


def reindex_blocks(matrix: sp.spmatrix, positions: int, *,
                   col_map: np.ndarray | None = None, n_cols: int | None = None,
                   row_map: np.ndarray | None = None, n_rows: int | None = None,
                   ) -> sp.csr_matrix:
    """A layer with its input units (whole blocks of positions) and output units re-indexed.

    Parameters
    ----------
    matrix
        The layer, ``(n_out, n_in * positions)``; stored entries are kept with their values.
    positions
        Positions per input unit.
    col_map, n_cols
        New index of every input unit (values below ``n_cols``, the input units of the new
        frame); identity when omitted.
    row_map, n_rows
        New index of every output unit (values below ``n_rows``); identity when omitted.

    Returns
    -------
    scipy.sparse.csr_matrix
        Shape ``(n_rows, n_cols * positions)``, canonical (sorted, no duplicates when the maps
        are injective).

    Raises
    ------
    ValueError
        A map whose length does not fit the layer.
    """
    m = sp.csr_matrix(matrix)
    n_out, width = m.shape
    n_in = width // positions
    coo = m.tocoo()
    rows, cols = coo.row.astype(np.int64), coo.col.astype(np.int64)
    if col_map is not None:
        col_map = np.asarray(col_map, dtype=np.int64)
        if col_map.shape != (n_in,):
            raise ValueError(f"column map of length {col_map.size} for {n_in} input units")
        cols = col_map[cols // positions] * positions + cols % positions
        n_in = int(n_cols) if n_cols is not None else n_in
    if row_map is not None:
        row_map = np.asarray(row_map, dtype=np.int64)
        if row_map.shape != (n_out,):
            raise ValueError(f"row map of length {row_map.size} for {n_out} output units")
        rows = row_map[rows]
        n_out = int(n_rows) if n_rows is not None else n_out
    out = sp.csr_matrix((coo.data, (rows, cols)), shape=(n_out, n_in * positions))
    out.sort_indices()
    return out


def unit_graph(matrix: sp.spmatrix, positions: int, norm: str = "l2") -> sp.csr_matrix:
    """The unit graph of a layer: one connection per (output unit, input unit) block.

    Parameters
    ----------
    matrix
        The layer, ``(n_out, n_in * positions)``, column ``in_unit * positions + position``;
        its stored entries are the connections (explicit zeros included).
    positions
        Positions per input unit (1 for a linear layer).
    norm
        The weight of a unit connection, from the weights ``w`` of the block's *kept*
        elements: ``"l2"`` (default) ``sqrt(Σ w²)``, the Frobenius norm of the kept slice;
        ``"l1"`` ``Σ |w|``; ``"max"`` ``max |w|``; ``"sum"`` ``Σ w`` (signed); ``"count"`` the
        number of kept elements. With one position per unit, ``"l2"``, ``"l1"`` and
        ``"max"`` give ``|w|`` and ``"sum"`` gives ``w`` itself.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(n_out, n_in)`` float64: a stored entry wherever at least one element of the block
        is a connection, whatever its weight (a block of connections weighing 0 is a
        connection of weight 0).

    Raises
    ------
    ValueError
        An unknown ``norm``, or a width that is not a multiple of ``positions``.

    Examples
    --------
    >>> w = sp.csr_matrix(np.array([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, -2.0, 0.0]]))
    >>> unit_graph(w, 2).toarray()  # 2 input units of 2 positions; |(3, 4)| = 5
    array([[5., 0.],
           [0., 2.]])

    Notes
    -----
    ``O(nnz)``: a canonical CSR matrix lists a row's elements by column, so the elements of
    one block are consecutive and each block is one ``reduceat`` segment (no sort).
    """
    if norm not in UNIT_NORMS:
        raise ValueError(f"unknown unit-graph norm {norm!r}; use one of {', '.join(UNIT_NORMS)}")
    m = sp.csr_matrix(matrix)
    if not m.has_canonical_format:
        m = m.copy()
        m.sum_duplicates()
        m.sort_indices()
    n_out, width = m.shape
    if positions < 1 or width % positions:
        raise ValueError(f"{width} columns are not a whole number of {positions}-position units")
    n_in = width // positions
    rows = np.repeat(np.arange(n_out, dtype=np.int64), np.diff(m.indptr))
    units = m.indices.astype(np.int64) // positions
    key = rows * n_in + units
    if key.size == 0:
        return sp.csr_matrix((n_out, n_in), dtype=np.float64)
    starts = np.concatenate([[0], np.flatnonzero(np.diff(key)) + 1])
    w = m.data.astype(np.float64)
    if norm == "l2":
        # scaled by the block's largest |w|, so that one element gives exactly |w| and no
        # square underflows or overflows
        top = np.maximum.reduceat(np.abs(w), starts)
        scale = np.repeat(top, np.diff(np.append(starts, key.size)))
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = np.where(scale > 0, w / scale, 0.0)
            values = top * np.sqrt(np.add.reduceat(ratio * ratio, starts))
        values = np.where(np.isinf(top), np.inf, values)
    elif norm == "l1":
        values = np.add.reduceat(np.abs(w), starts)
    elif norm == "max":
        values = np.maximum.reduceat(np.abs(w), starts)
    elif norm == "sum":
        values = np.add.reduceat(w, starts)
    else:
        values = np.diff(np.append(starts, key.size)).astype(np.float64)
    block_rows = rows[starts]
    indptr = np.zeros(n_out + 1, dtype=np.int64)
    np.cumsum(np.bincount(block_rows, minlength=n_out), out=indptr[1:])
    return sp.csr_matrix((values, units[starts], indptr), shape=(n_out, n_in))


def unit_structure(matrix: sp.spmatrix, positions: int) -> sp.csr_matrix:
    """The binary structure of a layer's unit graph (``int8`` ones, ``(n_out, n_in)``)."""
    if positions == 1:
        return _structure(matrix)
    return binary(unit_graph(matrix, positions, "count"))


def _reaches(matrix: sp.csr_matrix, flags: np.ndarray) -> np.ndarray:
    """Rows of ``matrix`` with a stored entry in a flagged column."""
    return np.asarray(matrix @ flags.astype(np.int64)).ravel() > 0


def _structure(matrix: sp.spmatrix | np.ndarray) -> sp.csr_matrix:
    """``matrix`` itself when it already is a binary structure (read only), else :func:`binary`."""
    if (sp.issparse(matrix) and matrix.format == "csr" and matrix.dtype == np.int8
            and matrix.has_canonical_format and bool(np.all(matrix.data == 1))):
        return matrix
    return binary(matrix)
