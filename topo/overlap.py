"""How much two sparse networks share their connections, against chance.

:func:`mask_overlap`: per layer and pooled, the Jaccard index and Hamming distance of two
connection sets, raw and after aligning hidden units with the NNSTD matchings, beside the
value two independent random masks of the same counts would give (hypergeometric).
:func:`topo.compare` puts it beside NNSTD.

Convolutions and other layers with several positions per unit are compared element by
element: every kept kernel element is a connection, and the possible positions are the
layer's ``n_out * (n_in / groups) * positions`` (a grouped conv cannot connect outside its
groups, so those positions do not count, nor does the chance level draw them). Aligning by
NNSTD matchings moves whole units: output channels by the matching of the set the layer
writes, input channels (with all their kernel positions) by the matching of the set it reads.
Independent matrices are compared matrix by matrix, inputs in place. The union of one run's
connections over time (the ITOP rate) is in :mod:`topo.evolution`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from topo import structure
from topo.distance import matching_column_map
from topo.errors import ConfigError, IncompatibleGraphsError
from topo.graph import LayeredGraph, require_graph

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["OVERLAP_COLUMNS", "ALIGNED_COLUMNS", "mask_overlap", "overlap_records",
           "overlap_matchings", "pooled_jaccard", "expected_random_jaccard"]

#: Columns of :func:`mask_overlap` (and keys of :func:`overlap_records`), in order; the
#: :data:`ALIGNED_COLUMNS` follow when matchings are given. ``topo compare --json`` prints
#: them under ``"overlap"``.
OVERLAP_COLUMNS = (
    "layer", "name", "possible", "connections_a", "connections_b", "intersection", "union",
    "jaccard", "hamming", "hamming_fraction", "density_a", "density_b",
    "expected_intersection_random", "expected_jaccard_random",
)
#: Columns of the overlap after re-indexing B's hidden units by the NNSTD matchings.
ALIGNED_COLUMNS = ("aligned_intersection", "aligned_union", "aligned_jaccard", "aligned_hamming")

# hypergeometric probabilities below this fraction of the largest one are dropped before
# convolving layers: they change E[J] by less than 1e-20 relative.
_PMF_FLOOR = 1e-20


def mask_overlap(
    a: LayeredGraph,
    b: LayeredGraph,
    matchings: Sequence[np.ndarray | None] | None = None,
) -> pandas.DataFrame:
    """Overlap of the connection sets of two networks, per layer and pooled.

    Parameters
    ----------
    a, b
        Two networks with the same number of layers (read files with :func:`topo.load`),
        the same kinds of layer and kernel shapes. Layers whose shapes differ are compared
        on their own indices (a position outside the common shape cannot be shared).
    matchings
        Optional NNSTD matchings (:attr:`topo.distance.NNSTDResult.matchings` of
        ``nnstd(a, b)``): one entry per layer, ``perm[i]`` = B's output unit matched to A's
        unit ``i`` (``-1`` for none), or ``None`` for a layer whose outputs stay in place.
        When given, B's units are re-indexed by them (rows of layer ``k`` by matching ``k``,
        columns by the matching of the layer that writes what layer ``k`` reads: for a
        chain, matching ``k - 1``) and the ``aligned_*`` columns are added. The two
        networks then need the same wiring.

    Returns
    -------
    pandas.DataFrame
        One row per layer (``layer`` = its index as a string, ``name``) and a last pooled row
        (``layer = "all"``). Columns (:data:`OVERLAP_COLUMNS`, then :data:`ALIGNED_COLUMNS`
        with matchings): ``possible`` (positions of either grid),
        ``connections_a``, ``connections_b``, ``intersection``, ``union``, ``jaccard``
        (``|A ∩ B| / |A ∪ B|``, 1 when both are empty), ``hamming`` (``|A △ B|``, the number
        of positions where the masks differ), ``hamming_fraction`` (``hamming / possible``),
        ``density_a``, ``density_b``, ``expected_intersection_random``
        (``E[|A ∩ B|]``) and ``expected_jaccard_random`` (``E[J]``) for two independent
        uniformly random masks with the same counts per layer, and with ``matchings``:
        ``aligned_intersection``, ``aligned_union``, ``aligned_jaccard``,
        ``aligned_hamming``.

    Raises
    ------
    IncompatibleGraphsError
        Different numbers of layers, layer kinds or kernel shapes (or, with matchings,
        different wiring).
    ConfigError
        Matchings whose count or lengths do not fit the layers, or two layers writing one
        unit set with different matchings.
    NotAGraphError
        ``a`` or ``b`` is not a LayeredGraph.

    Notes
    -----
    The chance level is the exact expectation of the Jaccard index, ``E[J]``, not the ratio
    ``E[|A ∩ B|] / E[|A ∪ B|]``. With ``N`` positions and counts ``K_a``, ``K_b``, the
    intersection ``X`` of two independent uniformly random masks is hypergeometric,
    ``P(X = x) = C(K_a, x) C(N - K_a, K_b - x) / C(N, K_b)``, so
    ``E[J] = Σ_x P(X = x) · x / (K_a + K_b - x)``. For the pooled row every layer is drawn
    independently with its own counts and ``X`` is the sum of the layers' intersections, whose
    law is the convolution of their hypergeometric laws. ``N`` is the layer's possible
    positions (for a grouped conv, only those inside its groups). The chance level is ``NaN``
    for a layer whose two shapes (or groups) differ (and then for the pooled row). It is the
    chance level of the raw overlap; the aligned overlap of random masks is higher, because
    the matching is chosen to make the connection sets agree.

    The aligned Jaccard index is not an upper bound of the raw one and can be lower. The NNSTD
    matching is chosen layer by layer, from the input side, to make the *incoming-neighbour
    sets* of matched units agree (an assignment on their Jaccard distances); it does not
    maximise the overlap of the connection sets, and re-indexing B's units by it also moves the
    inputs of the next layer. When the two networks already share many connections in place
    (e.g. runs started from nearly the same mask), the identity can overlap more than the
    matching: for the published SET networks w0 and w9 at epoch 190 (Liu et al. 2020; w9's
    initial mask is w0's with about 9% of the connections changed) the raw
    Jaccard index of layers 1 and 2 is 0.43 and 0.46, the aligned one 0.30 and 0.30 with the
    matchings of ``nnstd(reference=True)`` (0.31 and 0.32 with the default mode's), while
    layer 0, whose inputs are not re-indexed, goes from 0.27 to 0.29. :func:`overlap_matchings`
    gives matchings that maximise the shared connections instead, layer by layer.

    Complexity: ``O(nnz)`` per layer for the overlaps; ``O(s log s)`` for the chance level,
    ``s`` the support of the hypergeometric law.

    References
    ----------
    S. Liu et al., "Topological Insights into Sparse Neural Networks", ECML-PKDD 2020
    (overlap of sparse topologies found by SET); N. L. Johnson, A. W. Kemp, S. Kotz,
    "Univariate Discrete Distributions", 3rd ed., Wiley 2005, ch. 6 (hypergeometric law).
    """
    rows = overlap_records(a, b, matchings)
    import pandas as pd

    return pd.DataFrame(rows)


def overlap_records(
    a: LayeredGraph,
    b: LayeredGraph,
    matchings: Sequence[np.ndarray | None] | None = None,
) -> list[dict[str, Any]]:
    """The rows of :func:`mask_overlap` as plain dicts (per layer, then pooled), without pandas.

    For callers that only print or serialise the values (the ``topo compare --json`` path),
    so that they need not import pandas.
    """
    a, b = require_graph(a, "network a"), require_graph(b, "network b")
    _check_layers(a, b)
    masks_a, masks_b = a.masks(), b.masks()
    if matchings is not None:
        set_maps = _set_maps(a, b, matchings)
    rows = []
    pmfs: list[tuple[int, np.ndarray] | None] = []
    for k, (ma, mb) in enumerate(zip(masks_a, masks_b)):
        inter = structure.intersection_count(ma, mb)
        possible = _possible(a, b, k)
        row = _overlap_row(ma.nnz, mb.nnz, inter, possible)
        row = {"layer": str(k), "name": a.names[k], **row,
               "density_a": a.densities[k], "density_b": b.densities[k]}
        if ma.shape == mb.shape and a.geometry[k].groups == b.geometry[k].groups:
            n = a.possible[k]
            lo, pmf = _hypergeom_pmf(n, ma.nnz, mb.nnz)
            pmfs.append((lo, pmf))
            row["expected_intersection_random"] = ma.nnz * mb.nnz / n if n else 0.0
            row["expected_jaccard_random"] = _expected_jaccard(lo, pmf, ma.nnz + mb.nnz)
        else:
            pmfs.append(None)
            row["expected_intersection_random"] = float("nan")
            row["expected_jaccard_random"] = float("nan")
        if matchings is not None:
            positions = a.positions[k]
            col_map = structure.block_columns(set_maps[b.reads[k]], positions)
            aligned = _aligned_intersection(ma, mb, set_maps[b.writes[k]], col_map)
            row.update(_aligned_columns(ma.nnz, mb.nnz, aligned))
        rows.append(row)
    pooled: dict = {"layer": "all", "name": "all"}
    totals = {c: sum(int(r[c]) for r in rows) for c in
              ("possible", "connections_a", "connections_b", "intersection")}
    pooled.update(_overlap_row(totals["connections_a"], totals["connections_b"],
                               totals["intersection"], totals["possible"]))
    size_a = sum(a.possible)
    size_b = sum(b.possible)
    pooled["density_a"] = totals["connections_a"] / size_a if size_a else 0.0
    pooled["density_b"] = totals["connections_b"] / size_b if size_b else 0.0
    if all(p is not None for p in pmfs):
        pooled["expected_intersection_random"] = float(
            sum(r["expected_intersection_random"] for r in rows))
        lo, pmf = _convolve_all([p for p in pmfs if p is not None])
        pooled["expected_jaccard_random"] = _expected_jaccard(
            lo, pmf, totals["connections_a"] + totals["connections_b"])
    else:
        pooled["expected_intersection_random"] = float("nan")
        pooled["expected_jaccard_random"] = float("nan")
    if matchings is not None:
        pooled.update(_aligned_columns(totals["connections_a"], totals["connections_b"],
                                       sum(r["aligned_intersection"] for r in rows)))
    return [*rows, pooled]


def overlap_matchings(a: LayeredGraph, b: LayeredGraph, *,
                      match_outputs: bool = False) -> list[np.ndarray | None]:
    """Matchings of hidden units that maximise the connections two networks share.

    An alternative to the NNSTD matchings for :func:`mask_overlap` (``topo compare --align
    overlap``): the NNSTD matching makes the incoming-neighbour *sets* of matched units agree
    (an assignment on their Jaccard distances), which does not make the overlap of the
    connection sets as large as possible; this one does, layer by layer.

    Parameters
    ----------
    a, b
        Two networks with the same number of layers (read files with :func:`topo.load`).
    match_outputs
        Match the output layer's units too (as ``nnstd(reference=True)`` does); by default
        they stay in place (they are classes).

    Returns
    -------
    list
        One entry per layer, in the form of :attr:`topo.distance.NNSTDResult.matchings`: an
        integer array ``perm`` of length ``n_out`` of A, ``perm[i]`` = B's unit matched to A's
        unit ``i`` (``-1`` where B's layer is narrower and ``i`` has no partner), or ``None``
        for the output layer when it stays in place.

    Raises
    ------
    IncompatibleGraphsError
        Different numbers of layers.
    NotAGraphError
        ``a`` or ``b`` is not a LayeredGraph.

    Notes
    -----
    Exactly what is computed: layer by layer from the input side, with B's inputs of layer
    ``k`` re-indexed by the matching chosen for layer ``k - 1`` (the inputs of layer 0 are
    the same features in both networks), the matching of B's output units to A's that
    maximises ``sum_i |N_A(i) ∩ N_B(perm[i])|``, the number of connections the two layers
    share, where ``N(i)`` is the set of unit ``i``'s inputs: a linear assignment problem on
    the matrix of intersection counts (one sparse product ``A_k B_k^T``), solved exactly by
    :func:`scipy.optimize.linear_sum_assignment`. Every layer's overlap is therefore the
    largest possible *given the previous layer's matching*, and layer 0's aligned overlap is
    never below its raw overlap (the identity is one of its candidates). It is not the
    largest pooled overlap over all joint re-labellings of the hidden units: re-labelling a
    layer's units also moves the inputs of the next layer, and maximising over all layers at
    once is a quadratic assignment problem. So a later layer's aligned overlap can still be
    below its raw one, and where a layer has several optimal matchings the solver's choice
    (which depends on the units' order) decides the next layer's value.

    Complexity: one product and one ``n_a x n_b`` assignment per matched layer, ``O(E_k
    n) + O(n^3)`` for ``E_k`` connections and ``n`` units.
    """
    from scipy.optimize import linear_sum_assignment

    a, b = require_graph(a, "network a"), require_graph(b, "network b")
    if a.n_layers != b.n_layers:
        raise IncompatibleGraphsError(
            f"{a.source} vs {b.source}: {_layers(a.n_layers)} against {b.n_layers}")
    matchings: list[np.ndarray | None] = []
    col_map = np.arange(b.n_in[0])
    for k, (ma, mb) in enumerate(zip(a.masks(), b.masks())):
        if k == a.n_layers - 1 and not match_outputs:
            matchings.append(None)
            break
        width = max(ma.shape[1], int(col_map.max(initial=-1)) + 1)
        moved = sp.csr_matrix((np.ones(mb.nnz), col_map[mb.indices], mb.indptr),
                              shape=(mb.shape[0], width))
        wide_a = sp.csr_matrix((np.ones(ma.nnz), ma.indices, ma.indptr),
                               shape=(ma.shape[0], width))
        shared = (wide_a @ moved.T).toarray()
        rows, cols = linear_sum_assignment(shared, maximize=True)
        perm = np.full(ma.shape[0], -1, dtype=np.int64)
        perm[rows] = cols
        matchings.append(perm)
        col_map = matching_column_map(perm, ma.shape[0], mb.shape[0])[0]
    return matchings


def pooled_jaccard(a: LayeredGraph, b: LayeredGraph) -> float:
    """Jaccard index of the two networks' connection sets, all layers pooled (1 if both empty).

    Positions are compared on each layer's own indices, as in :func:`mask_overlap`.
    """
    a, b = require_graph(a, "network a"), require_graph(b, "network b")
    _check_layers(a, b)
    return structure.pooled_jaccard(a.masks(), b.masks())


def expected_random_jaccard(n: int, k_a: int, k_b: int) -> float:
    """``E[J]`` of two independent uniformly random masks with ``k_a``, ``k_b`` of ``n`` positions.

    The exact expectation over the hypergeometric law of the intersection (see
    :func:`mask_overlap`); 1 when both counts are 0.
    """
    if not (0 <= k_a <= n and 0 <= k_b <= n):
        raise ConfigError(f"counts {k_a}, {k_b} do not fit {n} positions")
    lo, pmf = _hypergeom_pmf(n, k_a, k_b)
    return _expected_jaccard(lo, pmf, k_a + k_b)


# --------------------------------------------------------------------------- helpers
def _check_layers(a: LayeredGraph, b: LayeredGraph) -> None:
    """Same number of layers, and layer by layer the same kind and kernel shape."""
    where = f"{a.source} vs {b.source}"
    if a.n_layers != b.n_layers:
        raise IncompatibleGraphsError(f"{where}: {_layers(a.n_layers)} against {b.n_layers}")
    for k, (ga, gb) in enumerate(zip(a.geometry, b.geometry)):
        if (ga.kind, ga.kernel_shape) != (gb.kind, gb.kernel_shape):
            raise IncompatibleGraphsError(
                f"{where}: layer {k} ({a.names[k]!r}) is {ga.describe()} in one network and "
                f"{gb.describe()} in the other; connections are compared kernel element by "
                "kernel element")


def _possible(a: LayeredGraph, b: LayeredGraph, k: int) -> int:
    """Positions either layer may hold: both possible counts less the common ones.

    A grouped conv may connect only inside its groups; where the two layers differ in shape,
    the common positions are those of the common sub-grid both may hold.
    """
    if a.layers[k].shape == b.layers[k].shape and a.geometry[k].groups == b.geometry[k].groups:
        return a.possible[k]
    n_rows = min(a.n_out[k], b.n_out[k])
    width = min(a.layers[k].shape[1], b.layers[k].shape[1])
    start_a, span_a = a.allowed_columns(k)
    start_b, span_b = b.allowed_columns(k)
    lo = np.maximum(start_a[:n_rows], start_b[:n_rows])
    hi = np.minimum(np.minimum(start_a[:n_rows] + span_a, start_b[:n_rows] + span_b), width)
    common = int(np.maximum(hi - lo, 0).sum())
    return int(a.possible[k]) + int(b.possible[k]) - common


def _layers(n: int) -> str:
    return "1 layer" if n == 1 else f"{n} layers"


def _overlap_row(n_a: int, n_b: int, inter: int, possible: int) -> dict[str, Any]:
    union = n_a + n_b - inter
    hamming = union - inter
    return {
        "possible": int(possible),
        "connections_a": int(n_a),
        "connections_b": int(n_b),
        "intersection": int(inter),
        "union": int(union),
        "jaccard": structure.jaccard_index(inter, n_a, n_b),
        "hamming": int(hamming),
        "hamming_fraction": hamming / possible if possible else 0.0,
    }


def _aligned_columns(n_a: int, n_b: int, inter: int) -> dict[str, Any]:
    union = n_a + n_b - inter
    return dict(zip(ALIGNED_COLUMNS, (int(inter), int(union),
                                      structure.jaccard_index(inter, n_a, n_b),
                                      int(union - inter))))


def _set_maps(a: LayeredGraph, b: LayeredGraph,
              matchings: Sequence[np.ndarray | None]) -> list[np.ndarray]:
    """Index in A's frame of every unit of every unit set of B, from the layer matchings.

    A set's map comes from the matching of the layers that write it (they must agree); sets
    no layer matches (the inputs, outputs kept in place) keep their indices.
    """
    if len(matchings) != a.n_layers:
        raise ConfigError(f"{len(matchings)} matchings for {_layers(a.n_layers)}")
    if a.wiring.reads != b.wiring.reads or a.wiring.writes != b.wiring.writes \
            or a.is_independent != b.is_independent:
        raise IncompatibleGraphsError(
            f"{a.source} vs {b.source}: the two networks are wired differently, so their "
            "units cannot be aligned")
    maps: list[np.ndarray | None] = [None] * len(b.set_sizes)
    given: list[np.ndarray | None] = [None] * len(b.set_sizes)
    for k, perm in enumerate(matchings):
        unit_set = b.writes[k]
        n_a, n_b = a.n_out[k], b.n_out[k]
        if perm is not None:
            perm = np.asarray(perm, dtype=np.int64)
            matched = perm[perm >= 0]
            if (perm.shape != (n_a,) or matched.size and matched.max() >= n_b
                    or np.unique(matched).size != matched.size):
                raise ConfigError(
                    f"layer {a.names[k]!r}: matching of length {perm.size} is not a matching "
                    f"of {n_a} units of A to {n_b} units of B")
        if k not in b.writers(unit_set)[:1]:
            first = given[unit_set]
            if (first is None) != (perm is None) or (
                    perm is not None and not np.array_equal(first, perm)):
                raise ConfigError(
                    f"layer {a.names[k]!r} writes unit set {unit_set} with another matching "
                    f"than layer {a.names[b.writers(unit_set)[0]]!r}; one set has one "
                    "matching")
            continue
        given[unit_set] = perm
        if perm is not None:
            maps[unit_set] = matching_column_map(perm, n_a, n_b)[0]
    return [np.arange(size) if m is None else m for m, size in zip(maps, b.set_sizes)]


def _aligned_intersection(ma: sp.csr_matrix, mb: sp.csr_matrix, row_map: np.ndarray,
                          col_map: np.ndarray) -> int:
    coo = mb.tocoo()
    rows, cols = row_map[coo.row], col_map[coo.col]
    shape = (max(ma.shape[0], int(rows.max(initial=-1)) + 1),
             max(ma.shape[1], int(cols.max(initial=-1)) + 1))
    moved = sp.csr_matrix((np.ones(rows.size, dtype=np.int8), (rows, cols)), shape=shape)
    wide_a = sp.csr_matrix((np.ones(ma.nnz, dtype=np.int8), ma.indices, ma.indptr),
                           shape=(ma.shape[0], shape[1]))
    wide_a.resize(shape)
    return int(wide_a.multiply(moved).nnz)


def _hypergeom_pmf(n: int, k_a: int, k_b: int) -> tuple[int, np.ndarray]:
    """Law of the intersection of two random masks: (smallest value, probabilities)."""
    lo, hi = max(0, k_a + k_b - n), min(k_a, k_b)
    x = np.arange(lo, hi + 1)
    pmf = np.exp(_hypergeom_logpmf(x, n, k_a, k_b)) if n else np.ones(1)
    keep = np.flatnonzero(pmf > _PMF_FLOOR * pmf.max())
    return lo + int(keep[0]), pmf[keep[0]:keep[-1] + 1]


def _hypergeom_logpmf(x: np.ndarray, n: int, k_a: int, k_b: int) -> np.ndarray:
    """``log P(X = x)`` of the hypergeometric law (``k_b`` draws from ``n`` with ``k_a`` good).

    ``log C(K_a, x) + log C(N - K_a, K_b - x) - log C(N, K_b)`` with each binomial written
    through the log-beta function, ``C(m, j) = 1 / ((m + 1) B(m - j + 1, j + 1))``, which stays
    accurate for large ``m`` (scipy.stats.hypergeom's formula, without importing
    scipy.stats, which costs a third of a second at start-up).
    """
    from scipy.special import betaln

    x = np.asarray(x, dtype=np.float64)
    good, bad = float(k_a), float(n - k_a)
    return (betaln(good + 1, 1) + betaln(bad + 1, 1) + betaln(n - k_b + 1, k_b + 1)
            - betaln(x + 1, good - x + 1) - betaln(k_b - x + 1, bad - k_b + x + 1)
            - betaln(n + 1, 1))


def _convolve_all(pmfs: list[tuple[int, np.ndarray]]) -> tuple[int, np.ndarray]:
    """Law of a sum of independent variables given as (offset, probabilities)."""
    lo, out = 0, np.ones(1)
    for off, pmf in pmfs:
        lo += off
        if out.size * pmf.size <= 1_000_000:
            out = np.convolve(out, pmf)
        else:
            from scipy.signal import fftconvolve  # 70 ms to import: only for long supports

            out = np.clip(fftconvolve(out, pmf), 0.0, None)
    return lo, out / out.sum()


def _expected_jaccard(lo: int, pmf: np.ndarray, total: int) -> float:
    """``Σ P(X = x) x / (total - x)`` over the support starting at ``lo``."""
    if total == 0:
        return 1.0
    x = np.arange(lo, lo + pmf.size, dtype=np.float64)
    return float(np.sum(pmf * x / (total - x)))
