"""NNSTD: the neural-network sparse topology distance of Liu et al. (2020), and its matchings.

Two sparse networks are compared layer by layer from the input side. Every output unit of a
layer is described by the set of its incoming neighbours; two units cost the normalised graph
edit distance of those sets, which is their Jaccard distance ``|a △ b| / |a ∪ b|`` (0 when both
sets are empty). The units of the two networks are matched by an optimal assignment on that
cost; before layer ``k`` is compared, network B's inputs of layer ``k`` are re-indexed by the
matching found for layer ``k - 1`` (the inputs of layer 0 are the same pixels/features in both
networks). A layer's distance is its matched cost divided by its number of units and the
network's distance is the mean over layers.

Reference
---------
S. Liu, T. van der Lee, A. Yaman, Z. Atashgahi, D. Ferraro, G. Sokar, M. Pechenizkiy,
D. C. Mocanu, "Topological Insights into Sparse Neural Networks", ECML-PKDD 2020
(arXiv:2006.14085), Section 3 and its published implementation
``Sparse_Topology_Distance/sparse_topology_distance.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from topo.errors import IncompatibleGraphsError
from topo.graph import LayeredGraph, require_graph

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["NNSTDResult", "nnstd", "jaccard_cost", "matching_column_map"]

# cost that keeps a tie-breaking assignment inside its class of tied units (costs are <= 1)
_FORBIDDEN = 1e6
# at most this many rounds of (tentative next-layer matching, re-assignment of tied units)
_TIE_ROUNDS = 3


@dataclass
class NNSTDResult:
    """The NNSTD of two networks, layer by layer.

    Attributes
    ----------
    per_layer
        One distance in ``[0, 1]`` per layer, input side first.
    distance
        Their mean: the network distance.
    matchings
        One entry per layer: an integer array ``perm`` of length ``n_out_a`` such that unit
        ``perm[i]`` of network B's layer outputs is matched to unit ``i`` of network A
        (``-1`` where A's unit has no partner because B's layer is narrower), or ``None``
        for a layer whose outputs are kept in place (the output layer in the default mode).
    names
        Layer names of network A.
    n_out_a, n_out_b
        Output widths of every layer of A and B.
    matched_cost
        Sum of the unit costs of every layer (unmatched units included, at 1 each).
    reference
        Whether the published algorithm was followed exactly (``reference=True``).
    """

    per_layer: np.ndarray
    distance: float
    matchings: list[np.ndarray | None]
    names: list[str] = field(default_factory=list)
    n_out_a: list[int] = field(default_factory=list)
    n_out_b: list[int] = field(default_factory=list)
    matched_cost: list[float] = field(default_factory=list)
    reference: bool = False

    def to_frame(self) -> pandas.DataFrame:
        """One row per layer, input side first.

        Columns: ``layer`` (index), ``name``, ``nnstd``, ``n_out_a``, ``n_out_b``,
        ``matched`` (whether the layer's outputs were matched), ``unmatched`` (units of the
        wider side without a partner) and ``cost`` (the layer's summed unit cost).
        """
        import pandas as pd

        return pd.DataFrame({
            "layer": np.arange(len(self.per_layer)),
            "name": self.names,
            "nnstd": self.per_layer,
            "n_out_a": self.n_out_a,
            "n_out_b": self.n_out_b,
            "matched": [m is not None for m in self.matchings],
            "unmatched": [abs(a - b) for a, b in zip(self.n_out_a, self.n_out_b)],
            "cost": self.matched_cost,
        })


def nnstd(a: LayeredGraph, b: LayeredGraph, *, reference: bool = False) -> NNSTDResult:
    """Neural-network sparse topology distance (NNSTD) between two layered graphs.

    Parameters
    ----------
    a, b
        The two networks (read files with :func:`topo.load`). They need the same number of
        layers, the same number of inputs and the same number of outputs; hidden widths may
        differ (not with ``reference=True``).
    reference
        ``True`` follows the published implementation exactly: every layer is matched,
        including the output layer (so class identity is not kept), and each layer's cost is
        divided by A's width. ``False`` (default) keeps the output units in place (they are
        labelled classes: unit ``i`` of A is compared with unit ``i`` of B after the input
        re-indexing) and lets hidden widths differ: a unit of the wider network without a
        partner costs 1, and the layer's cost is divided by the larger width, so that
        ``nnstd(a, b)`` equals ``nnstd(b, a)`` up to ties between optimal matchings.

    Returns
    -------
    NNSTDResult
        Per-layer distances, their mean, the matchings and a per-layer table
        (:meth:`NNSTDResult.to_frame`).

    Raises
    ------
    IncompatibleGraphsError
        Different numbers of layers, inputs or outputs; with ``reference=True`` also
        different hidden widths.
    NotAGraphError
        ``a`` or ``b`` is not a LayeredGraph (e.g. a path).

    Notes
    -----
    For layer ``k`` with binary structure ``A`` (``n_a x m``) and ``B`` re-indexed on its input
    side (``n_b x m``), the intersections of all incoming-neighbour sets are the sparse product
    ``I = A Bᵀ``; unions are ``U = deg_a + deg_bᵀ - I``; the unit cost is
    ``(U - I) / U`` (0 where ``U = 0``), the same rounding as the published edit-distance
    formula. The matching is an optimal assignment on that dense cost
    (:func:`scipy.optimize.linear_sum_assignment`, the shortest augmenting path method of
    Crouse 2016), chosen by measurement (``analysis/results/nnstd_solvers.md``): on SET
    layers at epsilon = 20 most unit pairs share an input and the sparse solver
    :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching` is 2-3 times slower;
    integer-scaled costs gain nothing (scipy solves in float64). The assignment takes most of
    the time of one pair (``analysis/results/nnstd_pair.md``). A rectangular cost (different
    widths) is solved directly, about five times faster than padding it to a square with
    cost-1 dummies, which gives the same optimum: unmatched units add 1 each.

    Ties: the first layer's value depends only on the optimal cost, but the re-indexing of
    later layers depends on which optimal matching is returned, and trained sparse networks
    have many tied units (units without inputs, units with the same in-set). With
    ``reference=True`` the cost matrix is the published one bit for bit and goes to the same
    solver in the same unit order, so the published values are reproduced exactly, ties
    included; relabelling the hidden units of an input can then change later layers' values
    (on the published SET networks a relabelled copy of a network is at 0.03-0.08 from it in
    layers 1 and 2). The default mode breaks ties on purpose: units whose cost rows (or
    columns) are equal may exchange partners at no cost, and they are re-assigned, by an exact
    assignment inside each class of tied units, to agree best on their outgoing connections
    (with the next layer placed by a tentative matching, at most three rounds). The matched
    cost of every layer stays optimal; a relabelled copy is then at distance 0 unless its ties
    reach deeper than one layer (on the published networks, 0 to 0.004 in layers 1 and 2).

    Complexity per layer: ``O(nnz(A) · n_b)`` for the cost and ``O(n³)`` worst case for the
    assignment (``n = max(n_a, n_b)``), ``O(n_a n_b)`` memory.

    The published implementation compares neurons pair by pair in Python (about 45 CPU s for
    one pair of the 784-784-784-784-10 networks it was published with); the values here equal
    its values.

    References
    ----------
    S. Liu et al., "Topological Insights into Sparse Neural Networks", ECML-PKDD 2020,
    arXiv:2006.14085.
    D. F. Crouse, "On implementing 2D rectangular assignment algorithms", IEEE Transactions
    on Aerospace and Electronic Systems 52(4), 2016.
    """
    a, b = require_graph(a, "network a"), require_graph(b, "network b")
    _check_comparable(a, b, reference)
    masks_a, masks_b = a.masks(), b.masks()
    n_layers = a.n_layers
    per_layer = np.zeros(n_layers)
    costs: list[float] = []
    matchings: list[np.ndarray | None] = []
    # col_map[j] = column (aligned input index) of B's input unit j in A's frame
    col_map = np.arange(b.n_in[0], dtype=np.int64)
    n_cols = a.n_in[0]
    for k in range(n_layers):
        ma, mb = masks_a[k], masks_b[k]
        n_a, n_b = ma.shape[0], mb.shape[0]
        last = k == n_layers - 1
        if last and not reference:
            diag = _paired_cost(ma, mb, col_map, n_cols)
            cost = float(diag.sum())
            matchings.append(None)
            per_layer[k] = cost / n_a if n_a else 0.0
            costs.append(cost)
            continue
        c = jaccard_cost(ma, mb, col_map, n_cols)
        rows, cols = linear_sum_assignment(c)
        cost = float(c[rows, cols].sum())
        perm = np.full(n_a, -1, dtype=np.int64)
        perm[rows] = cols
        if not reference and not last:
            perm = _break_ties(c, perm, masks_a[k + 1], masks_b[k + 1],
                               next_in_place=k + 1 == n_layers - 1)
        matchings.append(perm)
        if reference:
            per_layer[k] = cost / n_a if n_a else 0.0
        else:
            cost += abs(n_a - n_b)
            per_layer[k] = cost / max(n_a, n_b) if max(n_a, n_b) else 0.0
        costs.append(cost)
        col_map, n_cols = _next_column_map(perm, n_a, n_b)
    return NNSTDResult(
        per_layer=per_layer,
        distance=float(per_layer.mean()),
        matchings=matchings,
        names=list(a.names),
        n_out_a=list(a.n_out),
        n_out_b=list(b.n_out),
        matched_cost=costs,
        reference=reference,
    )


def jaccard_cost(
    mask_a: sp.csr_matrix,
    mask_b: sp.csr_matrix,
    col_map: np.ndarray | None = None,
    n_cols: int | None = None,
) -> np.ndarray:
    """Jaccard distance of the incoming-neighbour sets of every pair of units.

    Parameters
    ----------
    mask_a, mask_b
        Layer structures of shape ``(n_a, m_a)`` and ``(n_b, m_b)``: the stored entries of
        row ``i`` are the inputs of unit ``i``.
    col_map
        Where each input of B lies in A's input frame (length ``m_b``, values below
        ``n_cols``); identity when omitted (then ``m_a`` must equal ``m_b``).
    n_cols
        Size of the common input frame (``m_a`` when omitted).

    Returns
    -------
    numpy.ndarray
        Dense ``(n_a, n_b)`` float64 array: ``|a △ b| / |a ∪ b|``, 0 where both sets are empty.

    Notes
    -----
    Intersections come from one sparse-times-dense product ``A · Bᵀ`` in float32 (exact for
    counts below 2²⁴); no pair of units is visited in Python. ``O(nnz(A) · n_b)`` time.
    """
    n_a, n_b = mask_a.shape[0], mask_b.shape[0]
    if n_cols is None:
        n_cols = mask_a.shape[1]
    if col_map is None:
        col_map = np.arange(mask_b.shape[1], dtype=np.int64)
    a32 = sp.csr_matrix(
        (np.ones(mask_a.nnz, dtype=np.float32), mask_a.indices, mask_a.indptr),
        shape=(n_a, n_cols))
    bt = np.zeros((n_cols, n_b), dtype=np.float32)
    rows_b = np.repeat(np.arange(n_b), np.diff(mask_b.indptr))
    bt[col_map[mask_b.indices], rows_b] = 1.0
    # counts stay exact in float32 (below 2**24); only the final division is float64, so
    # every cost is the correctly rounded quotient of two integers, as in the published code
    inter = a32 @ bt
    union = np.add.outer(np.diff(mask_a.indptr).astype(np.float32),
                         np.diff(mask_b.indptr).astype(np.float32))
    union -= inter
    edit = union - inter
    np.maximum(union, 1.0, out=union)  # both sets empty: edit = 0, cost 0
    return np.divide(edit, union, dtype=np.float64)


def matching_column_map(perm: np.ndarray, n_a: int, n_b: int) -> tuple[np.ndarray, int]:
    """Where B's units lie in A's frame after a matching: the re-indexing of the next layer.

    Parameters
    ----------
    perm
        A matching of one layer (an entry of :attr:`NNSTDResult.matchings`): ``perm[i]`` is
        B's unit matched to A's unit ``i``, ``-1`` for none; length ``n_a``.
    n_a, n_b
        Widths of the layer in A and in B.

    Returns
    -------
    (numpy.ndarray, int)
        ``col_map`` of length ``n_b`` and the size of the common frame. B's unit ``perm[i]``
        takes A's index ``i``; B's units without a partner get fresh indices after A's
        ``n_a`` units, so they never coincide with a unit of A. Re-indexing the inputs of B's
        next layer by ``col_map`` (or the rows of this layer, as :func:`topo.mask_overlap`
        does) puts B in A's frame.

    Examples
    --------
    >>> col_map, n = matching_column_map(np.array([1, -1]), 2, 3)
    >>> col_map.tolist(), n  # B's unit 1 is A's 0; B's units 0 and 2 are new (2, 3)
    ([2, 0, 3], 4)
    """
    col_map = np.empty(n_b, dtype=np.int64)
    matched = perm >= 0
    col_map[perm[matched]] = np.flatnonzero(matched)
    free = np.ones(n_b, dtype=bool)
    free[perm[matched]] = False
    n_free = int(free.sum())
    col_map[free] = n_a + np.arange(n_free)
    return col_map, n_a + n_free


# --------------------------------------------------------------------------- helpers
def _check_comparable(a: LayeredGraph, b: LayeredGraph, reference: bool) -> None:
    where = f"{a.source} vs {b.source}"
    if a.n_layers != b.n_layers:
        raise IncompatibleGraphsError(
            f"{where}: {a.n_layers} layers against {b.n_layers}; NNSTD compares networks "
            "with the same number of layers")
    if a.n_in[0] != b.n_in[0]:
        raise IncompatibleGraphsError(
            f"{where}: {a.n_in[0]} inputs against {b.n_in[0]}; the input layers must match")
    if a.n_out[-1] != b.n_out[-1]:
        raise IncompatibleGraphsError(
            f"{where}: {a.n_out[-1]} outputs against {b.n_out[-1]}; the output layers "
            "must match")
    if reference and a.widths != b.widths:
        raise IncompatibleGraphsError(
            f"{where}: widths {'-'.join(map(str, a.widths))} against "
            f"{'-'.join(map(str, b.widths))}; the published algorithm (reference=True) "
            "needs equal widths (the default mode lets hidden widths differ)")


# the solver's internal name for the public re-indexing above
_next_column_map = matching_column_map


def _break_ties(c: np.ndarray, perm: np.ndarray, next_a: sp.csr_matrix,
                next_b: sp.csr_matrix, next_in_place: bool) -> np.ndarray:
    """Among equally optimal matchings, pick the one whose units agree on their outputs.

    Units of A with identical cost rows (e.g. identical in-sets, or no inputs at all) can
    exchange their partners without changing the layer's cost, and so can units of B with
    identical cost columns. Such ties decide how the next layer is re-indexed, so they are
    resolved by a second, exact assignment inside each class of tied units on the Jaccard
    distance of the units' out-sets, with B's next-layer units placed by a tentative matching
    of the next layer (or in place when the next layer is the output layer). The matched
    cost of this layer is unchanged.
    """
    row_class = _equal_line_classes(c)
    col_class = _equal_line_classes(c.T)
    matched = np.flatnonzero(perm >= 0)
    tied_rows = matched[_in_shared_class(row_class[matched])]
    tied_cols = perm[matched][_in_shared_class(col_class[perm[matched]])]
    if tied_rows.size == 0 and tied_cols.size == 0:
        return perm
    n_a, n_b = c.shape
    out_a = next_a.T.tocsr()  # row u: the next-layer units that read unit u of A
    out_b = next_b.T.tocsr()
    for _ in range(_TIE_ROUNDS if not next_in_place else 1):
        before = perm
        if next_in_place:
            next_map = np.arange(next_b.shape[0])
            n_frame = max(next_a.shape[0], next_b.shape[0])
        else:
            col_map, n_cols = _next_column_map(perm, n_a, n_b)
            c_next = jaccard_cost(next_a, next_b, col_map, n_cols)
            rows, cols = linear_sum_assignment(c_next)
            perm_next = np.full(next_a.shape[0], -1, dtype=np.int64)
            perm_next[rows] = cols
            next_map, n_frame = _next_column_map(perm_next, next_a.shape[0], next_b.shape[0])
        perm = perm.copy()
        if tied_rows.size:
            partners = perm[tied_rows]
            secondary = jaccard_cost(out_a[tied_rows], out_b[partners], next_map, n_frame)
            same = row_class[tied_rows][:, None] == row_class[tied_rows][None, :]
            rows, cols = linear_sum_assignment(np.where(same, secondary, _FORBIDDEN))
            perm[tied_rows[rows]] = partners[cols]
        if tied_cols.size:
            inverse = np.full(n_b, -1, dtype=np.int64)
            inverse[perm[matched]] = matched
            owners = inverse[tied_cols]
            secondary = jaccard_cost(out_a[owners], out_b[tied_cols], next_map, n_frame)
            same = col_class[tied_cols][:, None] == col_class[tied_cols][None, :]
            rows, cols = linear_sum_assignment(np.where(same, secondary, _FORBIDDEN))
            perm[owners[rows]] = tied_cols[cols]
        if np.array_equal(perm, before):
            break
    return perm


def _equal_line_classes(c: np.ndarray) -> np.ndarray:
    """Class label of every row of ``c``: rows with exactly equal values share a label."""
    n = c.shape[0]
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    # A random projection sorts equal rows next to each other in O(size); only neighbours
    # with (nearly) equal keys are then compared exactly, which is rare unless rows tie.
    # (einsum rather than BLAS: waking BLAS threads between solver calls costs milliseconds)
    key = np.einsum("ij,j->i", c, np.random.default_rng(0).random(c.shape[1]))
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    close = np.abs(np.diff(sorted_key)) <= 1e-9 * (1.0 + np.abs(sorted_key[1:]))
    candidates = np.flatnonzero(close) + 1
    same_as_previous = np.zeros(n, dtype=bool)
    if candidates.size:
        same_as_previous[candidates] = np.all(
            c[order[candidates]] == c[order[candidates - 1]], axis=1)
    labels = np.empty(n, dtype=np.int64)
    labels[order] = np.cumsum(~same_as_previous)
    return labels


def _in_shared_class(labels: np.ndarray) -> np.ndarray:
    """True for the entries whose label occurs more than once."""
    _, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    return counts[inverse] > 1


def _paired_cost(mask_a: sp.csr_matrix, mask_b: sp.csr_matrix, col_map: np.ndarray,
                 n_cols: int) -> np.ndarray:
    """Jaccard distance between unit ``i`` of A and unit ``i`` of B (same widths)."""
    aligned_b = sp.csr_matrix(
        (np.ones(mask_b.nnz, dtype=np.int8), col_map[mask_b.indices], mask_b.indptr),
        shape=(mask_b.shape[0], n_cols))
    aligned_b.has_sorted_indices = False  # the column re-indexing broke the row order
    aligned_b.sort_indices()
    wide_a = sp.csr_matrix(
        (np.ones(mask_a.nnz, dtype=np.int8), mask_a.indices, mask_a.indptr),
        shape=(mask_a.shape[0], n_cols))
    inter = np.diff(wide_a.multiply(aligned_b).tocsr().indptr).astype(np.float64)
    union = np.diff(mask_a.indptr) + np.diff(mask_b.indptr) - inter
    edit = union - inter
    return np.divide(edit, union, out=np.zeros_like(edit), where=union > 0)
