"""Exact unit matchings for NNSTD: layer costs, assignment solvers and the canonical optimum.

One NNSTD layer compares the ``n_a`` output units of network A with the ``n_b`` output units
of network B. Two units cost the Jaccard distance of their incoming-neighbour sets (inputs in
a common frame). A pair that shares no input costs exactly 1, unless both units have no
inputs at all (then 0), so a layer's cost is fully described by its *similarity graph*: the
unit pairs that share an input or are both empty, with their costs; every other pair costs 1.
Widths may differ: the problem is padded to ``n = max(n_a, n_b)`` with dummy units that cost
1 against everything (an unmatched unit costs 1).

This module builds that cost (:func:`layer_cost`, sparse or dense), solves it exactly with a
solver chosen from its shape and the density of its similarity graph (:func:`solve_layer`:
LAPMOD on the sparse graph, LAPJV on the dense matrix, or SciPy's solver), and then picks one
optimal matching canonically (:func:`canonical_optimum`), so that the answer does not depend
on which of several optimal matchings a solver happened to return.

The canonical choice
--------------------
All optimal matchings share one *optimal face*: given any optimal matching ``M`` and any
optimal dual ``(u, v)``, a pair belongs to some optimal matching exactly when its reduced cost
``c_ij - u_i - v_j`` is 0 and it lies on an alternating cycle of such pairs, i.e. when its two
matched pairs fall in the same strongly connected component of the zero-reduced-cost
exchange graph. The face splits into independent blocks (those components); every perfect
matching of zero-reduced-cost pairs inside every block is optimal, and nothing else is. The
canonical matching minimises a secondary cost over this face: a pair of units with the same
*canonical colour* (:mod:`topo.canonical`) costs 1, any other pair ``2 + h`` with ``h`` in
``[0, 1)`` a fixed symmetric hash of the two colours. The face does not depend on the solver
or on unit order, nor do the colours, so neither does the choice.

The dual is recovered from the solver's matching as shortest-path potentials of the exchange
graph (Bellman-Ford on the pairs that can matter, plus one hub node standing for all pairs
that cost 1); pairs are called tight when their reduced cost is at most ``TOL = 1e-9``: two
matchings whose costs differ by less than that are treated as equally good.

The compiled path
-----------------
topo ships an optional C module, ``topo._nnstd_kernels`` (``topo/_nnstd_kernels.c``, built
by ``pip install`` where a C compiler is present; :func:`kernels_available`). When it is
built:

- :func:`layer_cost` counts the shared inputs of every pair in C (for each unit of A, its
  inputs' readers in B) and divides the same integers, so the costs are bit-identical;
- the ``"core"`` path solves each core with topo's shortest augmenting path solver
  (Jonker and Volgenant 1987: column reduction, augmenting row reduction, then Dijkstra
  searches with dual updates; the pairs of cost 1 are reached through one hub instead of
  being listed), which returns an optimal dual ``(u, v)`` with its matching. A core grown
  after a failed certificate is solved again from the last matching and dual. The dual is
  checked in NumPy before use (module notes of :func:`canonical_matching_path`); if the
  check fails the layer takes the NumPy path, and the result records it;
- layers wider than 1200 units whose cost is a similarity graph keep LAPMOD, which is
  faster there; their dual comes from a compiled label-correcting search that computes the
  same potentials as the Bellman-Ford rounds.

The optimal face, and so the canonical matching, does not depend on which optimal dual is
used, so the compiled and NumPy paths give the same matchings and values (tested on random
networks with ties and empty units). :func:`compiled_kernels` switches the module off for
a block; ``NNSTDResult.kernels`` records the path of each layer.

Why not one solve on a lexicographically perturbed cost (``M · c + secondary``)? It is exact
only when ``M`` exceeds the total secondary cost divided by the smallest non-zero gap between
two matchings' primary totals. Jaccard costs are quotients with denominators up to
``deg_a + deg_b``, so that gap can be as small as one over the least common multiple of every
union size in the layer (beyond 2**64 once union sizes 1 to 47 occur), and no float or 64-bit
integer scaling is exact in general. It would also give every pair its own cost (the colour
term differs between pairs that cost 1), so the sparse and core paths would become dense
``n x n`` problems, and colours would be needed for every layer instead of only tied ones.

References
----------
R. Jonker and A. Volgenant, "A shortest augmenting path algorithm for dense and sparse linear
assignment problems", Computing 38, 1987 (LAPJV; the compiled solver follows its
initialisation and augmentation). A. Volgenant, "Linear and semi-assignment
problems: a core oriented approach", Computers & Operations Research 23, 1996 (LAPMOD).
D. F. Crouse, "On implementing 2D rectangular assignment algorithms", IEEE Trans. Aerospace
and Electronic Systems 52(4), 2016 (SciPy's solver). R. E. Burkard, M. Dell'Amico and
S. Martello, "Assignment Problems", SIAM 2009, Section 4 (duality, the optimal face).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import connected_components

from topo.errors import ConfigError, TopoError

__all__ = ["LayerCost", "Preference", "jaccard_cost", "layer_cost", "choose_solver",
           "dense_cost_wanted", "solve_layer", "core_pairs", "core_cap", "canonical_matching",
           "canonical_matching_path", "canonical_optimum", "optimal_face", "compiled_kernels",
           "kernels_available", "SOLVERS", "KERNEL_PATHS", "TOL", "ETA"]

SOLVERS = ("auto", "core", "sparse", "dense", "scipy")
# reduced costs at most this are zero: matchings closer than this in cost are equally good
TOL = 1e-9
# a decrease of a potential smaller than this is float noise, not an update
_STEP = 1e-12
# first bound on the exchanges that can bind (doubled until it exceeds -min potential)
_THETA0 = 0.05
# levels of exchange weights in the Bellman-Ford tables
_LEVELS = 5
# layers up to this size get their face from the full exchange matrix (measured crossover;
# larger when the dense cost is at hand anyway)
_SMALL = 384
_SMALL_DENSE = 768
# the default solver takes the dense path (full LAPJV, full exchange matrix) below this width
_SMALL_AUTO = 128
# rows of a dense cost checked at once against the dual (bounds the temporary memory)
_CHECK_ROWS = 256
# similarity graphs with at most this many pairs per unit are solved whole
_CORE_WORTH = 150
# a core holding more than this share of the similarity graph is replaced by all of it
_CORE_FULL = 0.6
# pairs outside the core added at once when the certificate fails
_MARGIN = 0.05
# blocks of the face re-matched on a dense matrix up to this size
_DENSE_BLOCK = 200
# similarity graphs with at most this many pairs per unit are solved whole by the compiled
# solver (its check of the pairs left out of a core is cheap)
_KERNEL_WORTH = 40
# layers wider than this with a sparse similarity graph are solved by LAPMOD (measured on
# 784-n-n-n-10 SET pairs at epsilon 5: the compiled solver is faster up to about 1200 units,
# LAPMOD beyond; the compiled solver's searches grow long on the very degenerate costs)
_KERNEL_SOLVER_MAX = 1200
# sample of costs read for the compiled path's first core (its size only changes the time)
_KERNEL_SAMPLE = 20_000
# pairs per unit in the compiled path's first core, for a similarity graph and for a dense
# cost (measured on 1000-wide SET pairs at epsilon 5 and 20)
_KERNEL_CORE_SPARSE = 16
_KERNEL_CORE_DENSE = 48
# pairs per unit in the first core of the "core" path (measured: most layers certify at once)
_CORE_PER_UNIT = 32
# weight of the colour tie-break against the agreement in the secondary cost
ETA = 2.0 ** -20
# how a "core" layer's matching and dual were found (NNSTDResult.kernels): the compiled
# solver with its own dual; LAPMOD with the dual from the compiled label-correcting search
# (wide layers of a sparse similarity graph, where LAPMOD is faster); LAPMOD with NumPy's
# Bellman-Ford rounds (no compiled module, or switched off); LAPMOD after a compiled dual
# failed its check; "" for the other paths
KERNEL_PATHS = ("compiled", "lapmod", "numpy", "lapmod (compiled dual not verified)", "")

# topo._nnstd_kernels once imported (None: not built); False: not looked for yet
_KERNELS: ModuleType | None | bool = False
_USE_KERNELS = True


def _kernels() -> ModuleType | None:
    """The compiled kernels, or ``None`` when they are not built or are switched off."""
    global _KERNELS
    if not _USE_KERNELS:
        return None
    if _KERNELS is False:
        try:
            from topo import _nnstd_kernels
        except ImportError:
            _KERNELS = None
        else:
            _KERNELS = _nnstd_kernels
    return _KERNELS if isinstance(_KERNELS, ModuleType) else None


def kernels_available() -> bool:
    """Whether the compiled kernels (``topo._nnstd_kernels``) were built with topo."""
    global _USE_KERNELS
    old, _USE_KERNELS = _USE_KERNELS, True
    try:
        return _kernels() is not None
    finally:
        _USE_KERNELS = old


@contextmanager
def compiled_kernels(enabled: bool) -> Iterator[None]:
    """Use (``True``, the default when built) or avoid the compiled kernels inside a block.

    With ``False`` every layer takes the NumPy path (the one an install without a C compiler
    uses); the results are the same, only the time differs. Not thread-safe: the setting is
    module-wide.
    """
    global _USE_KERNELS
    old, _USE_KERNELS = _USE_KERNELS, bool(enabled)
    try:
        yield
    finally:
        _USE_KERNELS = old


@dataclass
class LayerCost:
    """Jaccard costs of one layer: the similarity graph, optionally with the dense matrix.

    Attributes
    ----------
    n_a, n_b
        Widths of A's and B's layer.
    rows, cols, values
        The similarity graph in row-major order: every pair ``(rows[t], cols[t])`` whose
        units share an input or both have none, with its cost ``values[t] < 1`` (or 0).
        Every other pair costs exactly 1. Empty when ``dense`` holds the costs.
    dense
        The full ``(n_a, n_b)`` cost matrix when it was built (dense path), else ``None``.
    """

    n_a: int
    n_b: int
    rows: np.ndarray
    cols: np.ndarray
    values: np.ndarray
    dense: np.ndarray | None = None

    def lookup(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """Cost of the pairs ``(i[t], j[t])`` (indices below ``n_a`` and ``n_b``)."""
        i = np.asarray(i, dtype=np.int64)
        j = np.asarray(j, dtype=np.int64)
        if self.dense is not None:
            return self.dense[i, j].astype(np.float64)
        out = np.ones(i.size)
        if self.rows.size:
            keys = self.rows.astype(np.int64) * self.n_b + self.cols
            want = i * self.n_b + j
            pos = np.minimum(np.searchsorted(keys, want), keys.size - 1)
            hit = keys[pos] == want
            out[hit] = self.values[pos[hit]]
        return out


def layer_cost(mask_a: sp.csr_matrix, mask_b: sp.csr_matrix, col_map: np.ndarray,
               n_cols: int, *, dense: bool) -> LayerCost:
    """Build the Jaccard cost of one layer in a common input frame.

    Parameters
    ----------
    mask_a, mask_b
        Binary structures ``(n_a, m_a)`` and ``(n_b, m_b)``; row ``i`` holds unit ``i``'s
        inputs.
    col_map
        Column of A's frame for each input of B (length ``m_b``, values below ``n_cols``).
    n_cols
        Size of the common input frame (at least ``m_a``).
    dense
        Also build the dense ``(n_a, n_b)`` matrix (for a dense solver). Otherwise only the
        similarity graph is built: no array of ``n_a * n_b`` entries is allocated.

    Returns
    -------
    LayerCost

    Notes
    -----
    Intersections come from one sparse product ``A Bᵀ`` (integer counts); the cost of a pair
    is ``(U - I) / U`` with ``U = deg_a + deg_b - I``, the correctly rounded quotient of two
    integers, bit-identical to :func:`jaccard_cost`. ``O(Σ_c deg_A(c) deg_B(c))``
    time for the sparse graph (``c`` over inputs), plus ``O(n_a n_b)`` for the dense matrix.
    """
    n_a, n_b = mask_a.shape[0], mask_b.shape[0]
    kernels = _kernels()
    if kernels is not None:
        built = _compiled_cost(kernels, mask_a, mask_b, col_map, n_cols, dense)
        if built is not None:
            return built
    deg_a = np.diff(mask_a.indptr)
    deg_b = np.diff(mask_b.indptr)
    if dense:
        full = jaccard_cost(mask_a, mask_b, col_map, n_cols)
        none = np.zeros(0, dtype=np.int64)
        return LayerCost(n_a, n_b, none, none, np.zeros(0), dense=full)
    a = sp.csr_matrix((np.ones(mask_a.nnz, dtype=np.int32), mask_a.indices, mask_a.indptr),
                      shape=(n_a, n_cols))
    bt = sp.csr_matrix((np.ones(mask_b.nnz, dtype=np.int32), col_map[mask_b.indices],
                        mask_b.indptr), shape=(n_b, n_cols)).T.tocsr()
    inter = (a @ bt).tocsr()
    inter.sum_duplicates()
    inter.sort_indices()
    rows = np.repeat(np.arange(n_a, dtype=np.int64), np.diff(inter.indptr))
    cols = inter.indices.astype(np.int64)
    shared = inter.data.astype(np.float32)
    union = deg_a[rows].astype(np.float32) + deg_b[cols].astype(np.float32) - shared
    values = np.divide(union - shared, union, dtype=np.float64)
    empty_a = np.flatnonzero(deg_a == 0)
    empty_b = np.flatnonzero(deg_b == 0)
    if empty_a.size and empty_b.size:  # two units without inputs cost 0
        er = np.repeat(empty_a, empty_b.size)
        ec = np.tile(empty_b, empty_a.size)
        rows = np.concatenate([rows, er])
        cols = np.concatenate([cols, ec])
        values = np.concatenate([values, np.zeros(er.size)])
        order = np.lexsort((cols, rows))
        rows, cols, values = rows[order], cols[order], values[order]
    return LayerCost(n_a, n_b, rows, cols, values)


def _compiled_cost(kernels: ModuleType, mask_a: sp.csr_matrix, mask_b: sp.csr_matrix,
                   col_map: np.ndarray, n_cols: int, dense: bool) -> LayerCost | None:
    """:func:`layer_cost` by the compiled kernel (the same values, bit for bit).

    ``None`` when the kernel does not apply: a structure not in canonical CSR form (sorted,
    no duplicate entries) or a ``col_map`` that sends two inputs to one column.
    """
    if not (mask_a.has_canonical_format and mask_b.has_canonical_format):
        return None
    n_a, n_b = mask_a.shape[0], mask_b.shape[0]
    args = [np.ascontiguousarray(x, dtype=np.int64) for x in
            (mask_a.indptr, mask_a.indices, mask_b.indptr, mask_b.indices, col_map)]
    if dense:
        full = np.empty((n_a, n_b))
        if kernels.jaccard(*args, int(n_cols), full) is False:
            return None
        none = np.zeros(0, dtype=np.int64)
        return LayerCost(n_a, n_b, none, none, np.zeros(0), dense=full)
    out = kernels.jaccard(*args, int(n_cols), None)
    if out is False:
        return None
    return LayerCost(n_a, n_b, *_pair_arrays(out))


def similarity_density_bound(mask_a: sp.csr_matrix, mask_b: sp.csr_matrix,
                             col_map: np.ndarray, n_cols: int) -> float:
    """Upper bound on the fraction of unit pairs that share an input, in ``O(n_cols)``.

    The number of (A unit, B unit, shared input) triples, ``Σ_c deg_A(c) deg_B(c)`` over
    the common inputs ``c``, bounds the number of pairs sharing an input.
    """
    size = mask_a.shape[0] * mask_b.shape[0]
    if size == 0:
        return 0.0
    in_a = np.bincount(mask_a.indices, minlength=n_cols)[:n_cols]
    in_b = np.bincount(col_map[mask_b.indices], minlength=n_cols)[:n_cols]
    return min(1.0, float(in_a.astype(np.float64) @ in_b) / size)


def choose_solver(n_a: int, n_b: int, density: float) -> str:
    """The solver path of a layer in the default ``solver="auto"``.

    ``"dense"`` (LAPJV on the full matrix, the optimal face from the full exchange matrix)
    for layers of fewer than 128 units, where everything is cheap; else ``"core"``: LAPMOD
    on the cheapest pairs only, certified optimal for the whole layer by an optimal dual
    (:func:`canonical_matching`). ``density`` (the fraction of unit pairs sharing an input, or
    its bound) only decides how the cost is built (:func:`dense_cost_wanted`).
    """
    del density
    return "dense" if max(n_a, n_b) < _SMALL_AUTO else "core"


def dense_cost_wanted(n_a: int, n_b: int, density: float) -> bool:
    """Whether to build a layer's cost as a dense matrix rather than its similarity graph.

    The sparse product that lists the pairs sharing an input costs more than the dense
    product once those pairs are frequent: the dense matrix is built when their fraction
    (or its bound) exceeds 0.1 for layers of 256 to 999 units, 0.25 from 1000 units and 0.45
    from 3000 units, and always below 256 units (``analysis/results/nnstd_solvers.md``).
    """
    n = max(n_a, n_b)
    limit = 0.45 if n >= 3000 else 0.25 if n >= 1000 else 0.1 if n >= 256 else -1.0
    return density > limit


def solve_layer(cost: LayerCost, solver: str, core: LayerCost | None = None) -> np.ndarray:
    """One optimal matching of the padded square problem.

    Parameters
    ----------
    cost
        The layer cost (``cost.dense`` is needed for ``"dense"`` and ``"scipy"``).
    solver
        ``"sparse"`` (LAPMOD of the ``lapx`` package on the similarity graph),
        ``"dense"`` (its LAPJV on the dense matrix), ``"scipy"``
        (:func:`scipy.optimize.linear_sum_assignment`) or ``"core"`` (LAPMOD on ``core``, a
        subset of the similarity graph, every other pair counted at 1: optimal for the
        layer only when certified, see :func:`canonical_matching`).
    core
        The pairs for ``"core"`` (:func:`core_pairs`).

    Returns
    -------
    numpy.ndarray
        ``col_of`` of length ``n = max(n_a, n_b)``: the column matched to every row of the
        padded problem (rows ``>= n_a`` and columns ``>= n_b`` are the cost-1 dummies).
    """
    n_a, n_b = cost.n_a, cost.n_b
    n = max(n_a, n_b)
    partner = np.full(n_a, -1, dtype=np.int64)
    if n_a and n_b:
        if solver == "sparse":
            partner = _lapmod_partial(cost)
        elif solver == "core":
            if core is None:
                raise ConfigError("solver 'core' needs the core pairs")
            partner = _lapmod_partial(core)
        elif solver in ("dense", "scipy"):
            if cost.dense is None:
                raise ConfigError(f"solver {solver!r} needs the dense cost matrix")
            if solver == "dense":
                import lap

                rows, cols = lap.lapjvr(cost.dense, extend_cost=n_a != n_b,
                                        return_cost=False)
            else:
                rows, cols = linear_sum_assignment(cost.dense)
            partner[rows] = cols
        else:
            raise ConfigError(f"unknown solver {solver!r}; use one of {', '.join(SOLVERS)}")
    return _complete(partner, n_a, n_b, n)


def core_pairs(cost: LayerCost, cap: float, extra: tuple[np.ndarray, np.ndarray] | None = None
               ) -> LayerCost:
    """The pairs of a layer that cost at most ``cap``, plus the pairs ``extra``.

    Returned as a similarity graph (no dense matrix), in row-major order, with the exact
    costs. Every pair left out costs more than ``cap`` (or is not in ``extra``).
    """
    n_b = max(cost.n_b, 1)
    if cost.dense is not None:
        keep = cost.dense <= cap
        if extra is not None and extra[0].size:
            keep[extra[0], extra[1]] = True
        rows, cols = np.nonzero(keep)
        rows, cols = rows.astype(np.int64), cols.astype(np.int64)
        return LayerCost(cost.n_a, cost.n_b, rows, cols, cost.dense[rows, cols])
    keep = cost.values <= cap
    if extra is not None and extra[0].size:
        # the entries of the similarity graph are in row-major order: find the extra ones
        # (a pair outside the graph costs 1 like every pair left out: nothing to add)
        keys = cost.rows * n_b + cost.cols
        want = extra[0] * n_b + extra[1]
        pos = np.minimum(np.searchsorted(keys, want), max(keys.size - 1, 0))
        if keys.size:
            keep[pos[keys[pos] == want]] = True
    return LayerCost(cost.n_a, cost.n_b, cost.rows[keep], cost.cols[keep], cost.values[keep])


def core_cap(cost: LayerCost, sample_size: int = 200_000, per_unit: int = _CORE_PER_UNIT
             ) -> float:
    """A cost below which a layer keeps about ``per_unit`` pairs per unit (>= 1: all).

    Read from a regular sample of about ``sample_size`` of the costs below 1, so it costs a
    fraction of one pass; the result does not depend on it (the core solution is certified
    or enlarged), only the time does.
    """
    n = max(cost.n_a, cost.n_b)
    values = cost.dense.ravel() if cost.dense is not None else cost.values
    want = per_unit * n
    if values.size <= want:
        return 1.0
    step = max(1, values.size // sample_size)
    sample = values[::step]
    sample = sample[sample < 1.0]
    fraction = want / values.size
    if sample.size == 0 or fraction * sample.size < 1:
        return 1.0
    return float(np.partition(sample, int(fraction * sample.size))[int(fraction * sample.size)])


def canonical_matching(cost: LayerCost, solver: str, preference: Preference
                       ) -> tuple[np.ndarray, int]:
    """The canonical optimal matching of one layer, found by ``solver``.

    As :func:`canonical_matching_path` without the name of the path taken.
    """
    perm, n_tied, _ = canonical_matching_path(cost, solver, preference)
    return perm, n_tied


def canonical_matching_path(cost: LayerCost, solver: str, preference: Preference
                            ) -> tuple[np.ndarray, int, str]:
    """The canonical optimal matching of one layer, found by ``solver``, and how.

    Parameters
    ----------
    cost
        The layer cost (with its dense matrix for ``"dense"`` and ``"scipy"``).
    solver
        A path of :func:`solve_layer`. With ``"core"`` the matching is first found on the
        cheapest pairs only (:func:`core_cap`, :func:`core_pairs`); the optimal dual of the
        face computation then certifies it for the whole layer, or names the pairs left out
        whose reduced cost is negative, which join the core before the layer is solved again
        (Volgenant's core-oriented approach; it ends, at worst with every pair in the core).
    preference
        The secondary cost among optimal matchings (:class:`Preference`).

    Returns
    -------
    (numpy.ndarray, int, str)
        As :func:`canonical_optimum`, then the path of :data:`KERNEL_PATHS` taken:
        ``"compiled"`` when the compiled solver found the matching and its optimal dual;
        ``"lapmod"`` when LAPMOD found the matching and the compiled label-correcting search
        its dual (layers wider than 1200 units with a sparse similarity graph, where LAPMOD
        is faster); ``"numpy"`` when LAPMOD and NumPy's Bellman-Ford rounds did (no compiled
        module, or switched off by :func:`compiled_kernels`);
        ``"lapmod (compiled dual not verified)"`` when the compiled dual failed its check
        and LAPMOD was used instead; ``""`` for the paths other than ``"core"``.

    Notes
    -----
    With the compiled module, the ``"core"`` path solves each core with the compiled
    shortest augmenting path solver, which returns an optimal dual ``(u, v)`` with its
    matching. The dual is checked before use, independently of the solver: the matching is
    a permutation, ``|c_ij - u_i - v_j| <= TOL`` on it, ``c_ij - u_i - v_j >= -TOL`` on every
    pair of the core and ``max u + max v <= 1 + TOL`` (every pair costs at most 1, so this
    holds exactly when no pair of cost 1 has a negative reduced cost); the pairs left out of
    the core are then checked as on the NumPy path. The optimal face and the canonical
    matching follow from that dual as from the Bellman-Ford one: the face does not depend
    on which optimal dual certifies it (module notes), so both paths give the same result.
    """
    if solver != "core":
        return canonical_optimum(cost, solve_layer(cost, solver), preference) + ("",)
    kernels = _kernels()
    if kernels is None:
        return _core_by_numpy(cost, preference) + ("numpy",)
    if cost.dense is None and max(cost.n_a, cost.n_b) > _KERNEL_SOLVER_MAX:
        # wide layers of a sparse similarity graph: LAPMOD is faster than the compiled
        # solver there (measured); its dual comes from the compiled label-correcting search
        return _core_by_numpy(cost, preference) + ("lapmod",)
    found = _core_by_kernel(kernels, cost, preference)
    if found is not None:
        return found + ("compiled",)
    return _core_by_numpy(cost, preference) + ("lapmod (compiled dual not verified)",)


def _core_by_numpy(cost: LayerCost, preference: Preference) -> tuple[np.ndarray, int]:
    """The ``"core"`` path with LAPMOD and the dual by Bellman-Ford."""
    if cost.dense is None and cost.rows.size <= _CORE_WORTH * max(cost.n_a, cost.n_b):
        # a short similarity graph is solved whole: a core would save less than its check
        return canonical_optimum(cost, solve_layer(cost, "sparse"), preference)
    cap = core_cap(cost)
    extra = None
    while True:
        core = core_pairs(cost, cap, extra)
        if cost.dense is None and core.rows.size > _CORE_FULL * cost.rows.size:
            return canonical_optimum(cost, solve_layer(cost, "sparse"), preference)
        col_of = solve_layer(cost, "core", core)
        try:
            face = optimal_face(cost, col_of, core=core, cap=cap)
        except _Uncertified as missing:
            extra = missing.pairs if extra is None else (
                np.concatenate([extra[0], missing.pairs[0]]),
                np.concatenate([extra[1], missing.pairs[1]]))
            continue
        return _choose(cost, col_of, face, preference)


def _core_by_kernel(kernels: ModuleType, cost: LayerCost, preference: Preference
                    ) -> tuple[np.ndarray, int] | None:
    """The ``"core"`` path with the compiled solver and its dual; ``None`` when a dual fails
    its check (then the caller takes the NumPy path).

    As on the NumPy path, the layer is first solved on its cheapest pairs (all of a short
    similarity graph); the dual of that solution, once checked, is tested on the pairs left
    out, and those with a reduced cost below ``-TOL`` join the core (with every pair below
    ``_MARGIN``) for a solve that starts from the last solution. The tight pairs of the
    layer then give its optimal face.
    """
    n_a, n_b = cost.n_a, cost.n_b
    n = max(n_a, n_b)
    sparse_graph = cost.dense is None
    cap = 1.0
    keep = None  # which pairs of a similarity graph are in the core
    extra = None  # pairs added to a dense core (a boolean matrix)
    if not (sparse_graph and cost.rows.size <= _KERNEL_WORTH * n):
        cap = core_cap(cost, _KERNEL_SAMPLE,
                       _KERNEL_CORE_SPARSE if sparse_graph else _KERNEL_CORE_DENSE)
        if sparse_graph and cap < 1.0:
            keep = cost.values <= cap
    warm = None
    while True:
        if sparse_graph:
            at = None if keep is None else np.flatnonzero(keep)
            if at is not None and at.size > _CORE_FULL * cost.rows.size:
                keep = at = None
            core = cost if at is None else LayerCost(
                n_a, n_b, cost.rows.take(at), cost.cols.take(at), cost.values.take(at))
        else:
            core = _dense_core(kernels, cost, cap, extra)
        # a core grown by the pairs that failed the check starts from the last solution
        col_of, u, v = warm = _solve_with_dual(kernels, core, warm)
        if not _dual_certifies(core, col_of, u, v):
            return None
        if sparse_graph:
            grown = np.zeros(cost.rows.size, dtype=bool) if keep is None else keep
            violated, positions = kernels.graph_check(
                *(np.ascontiguousarray(x, dtype=np.int64) for x in (cost.rows, cost.cols)),
                np.ascontiguousarray(cost.values, dtype=np.float64), u, v, TOL, _MARGIN,
                grown)
            if violated:  # (only with a core: the pairs in it passed the check above)
                keep = grown
                continue
            at = np.frombuffer(positions, dtype=np.int64)
            pr, pc = cost.rows.take(at), cost.cols.take(at)
        else:
            red = core.values - u[core.rows] - v[core.cols]
            tight = red <= TOL
            rows_t, cols_t = [core.rows[tight]], [core.cols[tight]]
            if cap < 1.0:
                k, j, red = _dense_left_out(kernels, cost, u, v, cap)
                if (red < -TOL).any():
                    if extra is None:
                        extra = np.zeros((n_a, n_b), dtype=bool)
                    extra[k, j] = True
                    continue
                rows_t.append(k[red <= TOL])
                cols_t.append(j[red <= TOL])
            pr, pc = np.concatenate(rows_t), np.concatenate(cols_t)
        return _choose(cost, col_of, _face_from_dual(col_of, u, v, pr, pc), preference)


def _pair_arrays(buffers: tuple[bytes, bytes, bytes]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows, columns (int64) and values (float64) of pairs a compiled kernel returned as
    three byte buffers."""
    rows, cols, values = buffers
    return (np.frombuffer(rows, dtype=np.int64), np.frombuffer(cols, dtype=np.int64),
            np.frombuffer(values, dtype=np.float64))


def _dense_core(kernels: ModuleType, cost: LayerCost, cap: float,
                extra: np.ndarray | None) -> LayerCost:
    """:func:`core_pairs` of a dense cost by the compiled selection (the same pairs): those
    of cost at most ``cap`` and those set in ``extra`` (a boolean ``(n_a, n_b)`` matrix)."""
    assert cost.dense is not None
    n_a, n_b = cost.n_a, cost.n_b
    if n_a == 0 or n_b == 0:
        none = np.zeros(0, dtype=np.int64)
        return LayerCost(n_a, n_b, none, none, np.zeros(0))
    return LayerCost(n_a, n_b, *_pair_arrays(
        kernels.reduced(cost.dense, n_b, None, None, None, cap, extra)))


def _dense_left_out(kernels: ModuleType, cost: LayerCost, u: np.ndarray, v: np.ndarray,
                    cap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs ``(k, j)`` of a dense cost with reduced cost ``red <= _MARGIN``, in the rows
    that may hold a pair left out of the core (cost above ``cap``) with a reduced cost of at
    most ``TOL``: those where ``cap - u_k - max v`` is at most ``TOL``."""
    assert cost.dense is not None
    n_a, n_b = cost.n_a, cost.n_b
    empty = np.zeros(0, dtype=np.int64)
    if n_a == 0 or n_b == 0:
        return empty, empty, np.zeros(0)
    vb = np.ascontiguousarray(v[:n_b])
    rows = np.flatnonzero(cap - u[:n_a] - float(vb.max()) <= TOL).astype(np.int64)
    return _pair_arrays(kernels.reduced(cost.dense, n_b, rows, np.ascontiguousarray(u), vb,
                                        _MARGIN))


def _solve_with_dual(kernels: ModuleType, core: LayerCost,
                     warm: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
                     ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Optimal matching ``col_of`` and dual ``(u, v)`` of the padded problem on ``core``
    (every pair not in it at cost 1), by the compiled solver; ``warm``: an optimal
    ``(col_of, u, v)`` of the same layer with fewer pairs listed, to start from."""
    n_a, n_b = core.n_a, core.n_b
    n = max(n_a, n_b)
    indptr = np.zeros(n_a + 1, dtype=np.int64)
    np.cumsum(np.bincount(core.rows, minlength=n_a)[:n_a], out=indptr[1:])
    if warm is None:
        col_of, u, v = np.empty(n, dtype=np.int64), np.empty(n), np.empty(n)
    else:
        col_of, u, v = (x.copy() for x in warm)
    kernels.solve(n_a, n_b, indptr, np.ascontiguousarray(core.cols, dtype=np.int64),
                  np.ascontiguousarray(core.values, dtype=np.float64), col_of, u, v,
                  warm is not None)
    return col_of, u, v


def _dual_certifies(core: LayerCost, col_of: np.ndarray, u: np.ndarray, v: np.ndarray
                    ) -> bool:
    """Whether ``(u, v)`` is an optimal dual of the padded problem on ``core`` for the
    matching ``col_of``: feasible on every pair (listed, and the implicit ones of cost 1)
    and tight on the matching, all within ``TOL``."""
    n_a, n_b = core.n_a, core.n_b
    n = col_of.size
    if n == 0:
        return True
    if col_of.min() < 0 or col_of.max() >= n or np.bincount(col_of, minlength=n).max() > 1:
        return False
    if not (np.isfinite(u).all() and np.isfinite(v).all()):
        return False
    real = np.flatnonzero((np.arange(n) < n_a) & (col_of < n_b))
    d = np.ones(n)
    d[real] = core.lookup(real, col_of[real])
    if np.abs(d - u - v[col_of]).max() > TOL:
        return False
    if core.rows.size and (core.values - u[core.rows] - v[core.cols]).min() < -TOL:
        return False
    # every pair costs at most 1: this is the check of every pair of cost 1
    return float(u.max() + v.max()) <= 1.0 + TOL


def _face_from_dual(col_of: np.ndarray, u: np.ndarray, v: np.ndarray, pr: np.ndarray,
                    pc: np.ndarray) -> Face:
    """The optimal face (as :func:`optimal_face`) from an optimal dual ``(u, v)`` of the
    layer and its tight pairs ``(pr[t], pc[t])`` of cost below 1 (every pair of the
    similarity graph with reduced cost ``c - u - v`` at most ``TOL``; repeats allowed).

    The exchange ``k -> l`` (row ``k`` takes column ``col_of[l]``) is tight when its pair is;
    the potentials of the pairs are ``p_k = v[col_of[k]]``. The pairs of cost 1 are tight
    exactly for the rows of the largest ``u`` and the columns with ``v >= 1 - max u`` (every
    pair costs at most 1, so ``max u + max v <= 1``): they go through one hub node.
    """
    n = col_of.size
    node_of_col = np.empty(n, dtype=np.int64)
    node_of_col[col_of] = np.arange(n)
    head = node_of_col[pc]
    other = pr != head
    tk, tl = pr[other], head[other]
    graph_k, graph_l = [tk], [tl]
    p = v[col_of]
    top = float(u.max()) if n else 0.0
    hub_rows = np.flatnonzero(u >= top - TOL)
    hub_cols = np.flatnonzero(p >= 1.0 - top - TOL)
    if hub_cols.size:
        graph_k += [hub_rows, np.full(hub_cols.size, n)]
        graph_l += [np.full(hub_rows.size, n), hub_cols]
    else:
        hub_rows = hub_cols
    gk, gl = np.concatenate(graph_k), np.concatenate(graph_l)
    graph = sp.csr_matrix((np.ones(gk.size, dtype=np.int8), (gk, gl)), shape=(n + 1, n + 1))
    _, labels = connected_components(graph, directed=True, connection="strong")
    label = labels[:n]
    sizes = np.bincount(label, minlength=labels.max() + 1)
    return Face(label=label, blocks=np.flatnonzero(sizes >= 2), tight_k=tk, tight_l=tl,
                hub_rows=hub_rows, hub_cols=hub_cols,
                hub_label=int(labels[n]) if hub_rows.size else -1, potentials=p)


def canonical_optimum(cost: LayerCost, col_of: np.ndarray, preference: Preference
                      ) -> tuple[np.ndarray, int]:
    """The canonical optimal matching, from any optimal matching ``col_of``.

    Parameters
    ----------
    cost
        The layer cost.
    col_of
        An optimal matching of the padded problem (:func:`solve_layer`).
    preference
        The secondary cost among optimal matchings (:class:`Preference`); its colours are
        computed only when the optimum is not unique.

    Returns
    -------
    (numpy.ndarray, int)
        ``perm`` of length ``n_a``: B's unit matched to each unit of A, ``-1`` for none.
        Among all optimal matchings it minimises the secondary cost of the module notes, so
        it is the same whichever optimal matching ``col_of`` was. Then the number of A's
        units in blocks of the face with a choice.
    """
    return _choose(cost, col_of, optimal_face(cost, col_of), preference)


@dataclass
class Preference:
    """The secondary cost that picks one matching among a layer's optimal ones.

    Attributes
    ----------
    agreement
        ``agreement(i, j)``: a cost in ``[0, 1]`` for A's unit ``i`` against B's unit ``j``
        that depends only on what relabelling leaves unchanged and is 0 for a unit against
        its own relabelled copy (in NNSTD: how well their outgoing connections agree,
        :func:`topo.distance.nnstd`). ``None``: 0 for every pair.
    colours
        Returns the canonical colours (``uint64``) of A's and B's units
        (:mod:`topo.canonical`); called only when a layer has a choice.

    Notes
    -----
    Pair ``(i, j)`` costs ``agreement(i, j) + ETA * t(i, j)`` with ``t = 0`` for two units of
    the same colour and ``1 + h`` otherwise, ``h`` in ``[0, 1)`` a fixed symmetric hash of
    the two colours; a pair with a dummy unit (the narrower network's missing units) has
    agreement 1 and the dummy colour. ``ETA = 2**-20``, so agreement decides first and the
    colours break its ties.
    """

    agreement: Callable[[np.ndarray, np.ndarray], np.ndarray] | None
    colours: Callable[[], tuple[np.ndarray, np.ndarray]]

    def weights(self, rows: np.ndarray, cols: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
        """Secondary cost of the padded pairs ``(rows[t], cols[t])``."""
        real = (rows < n_a) & (cols < n_b)
        g = np.ones(rows.size)
        if self.agreement is not None and real.any():
            g[real] = self.agreement(rows[real], cols[real])
        colour_a, colour_b = self.colours()
        n = max(n_a, n_b)
        row_colour = np.full(n, _DUMMY_COLOUR, dtype=np.uint64)
        row_colour[:n_a] = colour_a
        col_colour = np.full(n, _DUMMY_COLOUR, dtype=np.uint64)
        col_colour[:n_b] = colour_b
        rc, cc = row_colour[rows], col_colour[cols]
        t = np.where(rc == cc, 0.0, 1.0 + _pair_hash(rc, cc))
        return g + ETA * t


@dataclass
class Face:
    """The optimal face of one layer, in terms of the matched pairs of ``col_of``.

    ``label[k]`` is the block of pair ``k`` (row ``k``, column ``col_of[k]``); ``blocks``
    lists the labels of blocks with two or more pairs (only there is there a choice).
    ``tight_k, tight_l`` are the zero-reduced-cost exchanges ``k -> l`` (row ``k`` takes
    column ``col_of[l]``) of the similarity graph; rows in ``hub_rows`` may take any column of
    a pair in ``hub_cols`` that is not in the similarity graph, when both lie in block
    ``hub_label`` (-1: none).
    """

    label: np.ndarray
    blocks: np.ndarray
    tight_k: np.ndarray
    tight_l: np.ndarray
    hub_rows: np.ndarray
    hub_cols: np.ndarray
    hub_label: int
    potentials: np.ndarray


def optimal_face(cost: LayerCost, col_of: np.ndarray, *, core: LayerCost | None = None,
                 cap: float = 1.0) -> Face:
    """Blocks of the optimal face of one layer, from one optimal matching.

    Parameters
    ----------
    cost
        The layer cost.
    col_of
        An optimal matching of the padded problem (length ``max(n_a, n_b)``), or with
        ``core`` a matching that is optimal when only the pairs of ``core`` may cost less
        than 1.
    core, cap
        The pairs the dual is computed on (:func:`core_pairs` with ``cap``); every other
        pair of the layer that shares an input is then checked against the dual.

    Returns
    -------
    Face

    Raises
    ------
    _Uncertified
        With ``core``: pairs outside it have a negative reduced cost, so ``col_of`` is not
        optimal for the layer; they are listed.

    Notes
    -----
    Pair ``k`` is row ``k`` with column ``col_of[k]``, of cost ``d_k``. The exchange
    ``k -> l`` (row ``k`` takes column ``col_of[l]``) changes the cost by
    ``w_kl = c(k, col_of[l]) - d_k``; cycles of exchanges are the differences between
    matchings, none is negative because ``col_of`` is optimal, and the zero ones connect the
    optimal matchings. Potentials ``p`` with ``p_l - p_k <= w_kl`` (an optimal dual) come
    from Bellman-Ford started at 0 everywhere; only exchanges with ``w_kl < θ`` can bind when
    ``-min p < θ``, so ``θ`` doubles from 0.05 (0.2 on the sparse path) until that holds
    (each try starts from the last potentials). The ``n²`` exchanges into columns outside
    the similarity graph all cost ``1 - d_k`` and go through one hub node. Layers of at
    most 384 units (768 with a dense cost) use the full ``n x n`` exchange matrix instead
    (no pruning, no hub), unless a ``core`` is given.
    With a ``core``, Bellman-Ford runs on the core's exchanges only; a pair ``(k, j)`` left
    out costs more than ``cap``, so its reduced cost is at least
    ``cap - d_k + p_k - max p``: only the rows where that bound is not positive have their
    pairs checked one by one. A negative reduced cost raises; a zero one is a tight
    exchange like the others.
    Blocks are the strongly connected components of the tight exchanges. Time ``O(R · E_θ)``
    for ``R`` Bellman-Ford rounds over the ``E_θ`` exchanges below ``θ``.
    """
    n_a, n_b = cost.n_a, cost.n_b
    n = col_of.size
    node_of_col = np.empty(n, dtype=np.int64)
    node_of_col[col_of] = np.arange(n)
    real = np.flatnonzero((np.arange(n) < n_a) & (col_of < n_b))
    d = np.ones(n)
    d[real] = cost.lookup(real, col_of[real])
    if core is None and n <= (_SMALL_DENSE if cost.dense is not None else _SMALL):
        return _small_face(cost, col_of, d)
    hub_w = 1.0 - d
    p = np.zeros(n)
    graph_cost = cost if core is None else core
    # the similarity graph is short: list most of it at once; a dense matrix is long
    theta = _THETA0 if graph_cost.dense is not None else 4 * _THETA0
    exchanges = _Exchanges(graph_cost, d, node_of_col)
    while True:
        k, head, w = exchanges.below(theta)
        keep_hub = hub_w < theta
        p = _potentials(n, k, head, w, hub_w, keep_hub, p)
        # an exchange left out (w >= theta) then has reduced cost above TOL: never tight
        if -p.min(initial=0.0) + 2 * TOL < theta or theta > 2.0:
            break
        theta *= 2.0
    tight = w + p[k] - p[head] <= TOL
    tk, tl = k[tight], head[tight]
    if core is not None and cap < 1.0:
        ck, cl = _check_left_out(cost, d, p, node_of_col, cap)
        tk, tl = np.concatenate([tk, ck]), np.concatenate([tl, cl])
    hub_rows = hub_cols = np.zeros(0, dtype=np.int64)
    graph_k, graph_l = [tk], [tl]
    if keep_hub.any():
        hub_value = (p + hub_w)[keep_hub].min()
        hub_rows = np.flatnonzero(keep_hub & (p + hub_w - hub_value <= TOL))
        hub_cols = np.flatnonzero(p >= hub_value - TOL)
        graph_k += [hub_rows, np.full(hub_cols.size, n)]
        graph_l += [np.full(hub_rows.size, n), hub_cols]
    gk, gl = np.concatenate(graph_k), np.concatenate(graph_l)
    graph = sp.csr_matrix((np.ones(gk.size, dtype=np.int8), (gk, gl)), shape=(n + 1, n + 1))
    _, labels = connected_components(graph, directed=True, connection="strong")
    label = labels[:n]
    sizes = np.bincount(label, minlength=labels.max() + 1)
    blocks = np.flatnonzero(sizes >= 2)
    return Face(label=label, blocks=blocks, tight_k=tk, tight_l=tl, hub_rows=hub_rows,
                hub_cols=hub_cols, hub_label=int(labels[n]) if hub_rows.size else -1,
                potentials=p)


# --------------------------------------------------------------------------- helpers
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


def _small_face(cost: LayerCost, col_of: np.ndarray, d: np.ndarray) -> Face:
    """The optimal face of a small layer from the full exchange matrix (no pruning, no hub)."""
    n = col_of.size
    full = np.ones((n, n))
    if cost.dense is not None:
        full[:cost.n_a, :cost.n_b] = cost.dense
    else:
        full[cost.rows, cost.cols] = cost.values
    w = full[:, col_of] - d[:, None]  # w[k, l]: row k takes the column of pair l
    np.fill_diagonal(w, 0.0)
    p = np.zeros(n)
    frontier = np.arange(n)
    for _ in range(2 * n + 8):
        if frontier.size == 0:
            break
        new = np.minimum(p, (p[frontier, None] + w[frontier]).min(axis=0))
        dropped = new < p - _STEP
        p = np.where(dropped, new, p)
        frontier = np.flatnonzero(dropped)
    else:
        raise TopoError("NNSTD: the dual potentials of a layer did not converge (please report)")
    tight = w + p[:, None] - p[None, :] <= TOL
    np.fill_diagonal(tight, False)
    tk, tl = np.nonzero(tight)
    graph = sp.csr_matrix((np.ones(tk.size, dtype=np.int8), (tk, tl)), shape=(n, n))
    _, label = connected_components(graph, directed=True, connection="strong")
    sizes = np.bincount(label, minlength=label.max() + 1)
    empty = np.zeros(0, dtype=np.int64)
    return Face(label=label, blocks=np.flatnonzero(sizes >= 2), tight_k=tk, tight_l=tl,
                hub_rows=empty, hub_cols=empty, hub_label=-1, potentials=p)


def _complete(partner: np.ndarray, n_a: int, n_b: int, n: int) -> np.ndarray:
    """Full matching of the padded square problem from a partial one of the real units.

    Rows without a partner (and the dummy rows) take the free columns in increasing order;
    any such completion is optimal when the partial matching is, since every pair involving
    them costs 1.
    """
    col_of = np.empty(n, dtype=np.int64)
    col_of[:n_a] = partner
    used = np.zeros(n, dtype=bool)
    used[partner[partner >= 0]] = True
    free_rows = np.concatenate([np.flatnonzero(partner < 0), np.arange(n_a, n)])
    col_of[free_rows] = np.flatnonzero(~used)
    return col_of


def _lapmod_partial(cost: LayerCost) -> np.ndarray:
    """Optimal partial matching on the similarity graph with LAPMOD (lapx).

    The square problem of size ``n_a + n_b``: A's units, then one stand-in per B unit (rows);
    B's units, then one stand-in per A unit (columns). Unit ``i`` of A takes a B unit of the
    similarity graph at its cost, or its own stand-in (unmatched); the stand-in of B's unit
    ``j`` takes ``j`` (unmatched) or, at no cost, the stand-in of an A unit it shares a pair
    with (the mirror of a matched pair). Unmatched units cost 1 on the wider side and 0 on
    the other, so the total is the layer's cost with every leftover pair at 1. All costs are
    shifted by +1 (constant over perfect matchings).
    """
    import lap

    n_a, n_b = cost.n_a, cost.n_b
    r, c, v = cost.rows, cost.cols, cost.values
    unmatched_a, unmatched_b = (1.0, 0.0) if n_a >= n_b else (0.0, 1.0)
    size = n_a + n_b
    indptr, indices, data = _lapmod_graph(n_a, n_b, r, c, v, unmatched_a, unmatched_b)
    x, _ = lap.lapmod(size, data, indptr, indices, return_cost=False)
    x = np.asarray(x[:n_a], dtype=np.int64)
    x[x >= n_b] = -1
    return x


def _lapmod_graph(n_a: int, n_b: int, r: np.ndarray, c: np.ndarray, v: np.ndarray,
                  unmatched_a: float, unmatched_b: float
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """CSR arrays (``indptr``, ``indices``, ``data``) of :func:`_lapmod_partial`'s problem.

    Written in place from the row-major pairs ``(r, c)`` instead of through a COO-to-CSR
    conversion and a sort: row ``i < n_a`` holds its pairs, then its stand-in column
    ``n_b + i`` (after every ``c < n_b``); row ``n_a + j`` holds column ``j``, then the
    stand-ins ``n_b + r`` of the pairs ``(r, j)`` in increasing ``r``. Column indices
    increase within every row, as LAPMOD requires.
    """
    nnz = r.size
    counts = np.concatenate([np.bincount(r, minlength=n_a)[:n_a] + 1,
                             np.bincount(c, minlength=n_b)[:n_b] + 1])
    indptr = np.zeros(n_a + n_b + 1, dtype=np.int32)
    np.cumsum(counts, out=indptr[1:])
    indices = np.empty(2 * nnz + n_a + n_b, dtype=np.int32)
    data = np.empty(indices.size)
    # top rows: pair t (row r[t]) lands after the r[t] stand-ins of the rows before it
    top = np.arange(nnz) + r
    indices[top] = c
    data[top] = v + 1.0
    stand_in = indptr[1:n_a + 1] - 1
    indices[stand_in] = n_b + np.arange(n_a)
    data[stand_in] = 1.0 + unmatched_a
    # bottom rows: the pairs by column (stable: increasing r within a column)
    by_col = np.argsort(_small_ints(c, n_b), kind="stable")
    cs = c[by_col]
    base = nnz + n_a
    bottom = base + np.arange(nnz) + cs + 1
    indices[bottom] = n_b + r[by_col]
    data[bottom] = 1.0
    head = indptr[n_a:n_a + n_b]
    indices[head] = np.arange(n_b)
    data[head] = 1.0 + unmatched_b
    return indptr, indices, data


def _small_ints(x: np.ndarray, bound: int) -> np.ndarray:
    """``x`` (values in ``[0, bound)``) as 16-bit integers where they fit: NumPy's stable sort
    is then a radix sort (linear time), the same order as sorting ``x`` itself."""
    return x.astype(np.uint16) if bound <= 1 << 16 else x


class _Exchanges:
    """Exchanges ``k -> l`` of the similarity graph with ``w_kl < theta``, sorted by ``k``.

    Built with one pass over the costs for each larger bound asked for.
    """

    def __init__(self, cost: LayerCost, d: np.ndarray, node_of_col: np.ndarray) -> None:
        self.cost, self.d, self.node_of_col = cost, d, node_of_col
        self.cap = -1.0

    def below(self, theta: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if theta > self.cap:
            self.cap = theta
            self.k, self.head, self.w = self._build(self.cap)
        sel = self.w < theta
        return self.k[sel], self.head[sel], self.w[sel]

    def _build(self, cap: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        cost, d = self.cost, self.d
        if cost.dense is not None:
            full = cost.dense
            # the same subtraction as the exchange weights, so no weight below cap is lost
            # to rounding
            rows, cols = np.nonzero((full < 1.0) & (full - d[:cost.n_a, None] < cap))
            vals = full[rows, cols]
        else:
            rows, cols, vals = cost.rows, cost.cols, cost.values
            sel = vals - d[rows] < cap
            rows, cols, vals = rows[sel], cols[sel], vals[sel]
        k = rows.astype(np.int64)
        head = self.node_of_col[cols]
        w = vals - d[k]
        keep = k != head
        return k[keep], head[keep], w[keep]


def _potentials(n: int, k: np.ndarray, head: np.ndarray, w: np.ndarray, hub_w: np.ndarray,
                keep_hub: np.ndarray, p: np.ndarray) -> np.ndarray:
    """:func:`_bellman_ford`'s potentials, by the compiled label-correcting search when it is
    built (the same fixed point; NumPy's rounds when it is not, or did not end)."""
    kernels = _kernels()
    if kernels is not None:
        out = p.astype(np.float64, copy=True)
        if kernels.potentials(np.ascontiguousarray(k, dtype=np.int64),
                              np.ascontiguousarray(head, dtype=np.int64),
                              np.ascontiguousarray(w, dtype=np.float64),
                              np.where(keep_hub, hub_w, np.inf), out, _STEP):
            return out
    return _bellman_ford(n, k, head, w, hub_w, keep_hub, p)


def _bellman_ford(n: int, k: np.ndarray, head: np.ndarray, w: np.ndarray, hub_w: np.ndarray,
                  keep_hub: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Largest potentials ``p' <= p`` with ``p'_l <= p'_k + w_kl`` and the hub constraints.

    Frontier Bellman-Ford: only nodes whose potential dropped in the last round relax their
    exchanges, and a node ``k`` only those with ``w_kl < -p_k`` (no other can lower a
    potential that is at most 0). Exchanges are grouped in levels of ``w`` (bounds halving
    from the largest), each level by tail ``k``, so that a node reads at most about twice
    the exchanges it needs; one round gathers the exchanges of every level it needs at once
    (a table of where each node's exchanges of each level start), so that its cost is a
    fixed number of array operations plus the exchanges read.
    """
    p = p.copy()
    top = float(w.max(initial=0.0))
    bounds = np.array([0.0] + [top / 2.0 ** j for j in range(_LEVELS - 2, -1, -1)])
    level = np.searchsorted(bounds, w, side="right").astype(np.uint8)
    order = np.argsort(level, kind="stable")  # keeps the order by tail within a level
    k, head, w = k[order], head[order], w[order]
    # starts[j * n + v]: first exchange of node v in level j (levels one after another)
    per_level = np.bincount(level, minlength=_LEVELS + 1)
    present = np.flatnonzero(per_level)
    starts = np.zeros((_LEVELS + 1) * n + 1, dtype=np.int64)
    np.cumsum(np.bincount(level[order].astype(np.int64) * n + k,
                          minlength=(_LEVELS + 1) * n), out=starts[1:])
    # exchanges of level j have w >= lower[j]: a node k needs level j when -p_k > lower[j]
    lower = np.concatenate([[-np.inf], bounds])[present]
    offset = (present * n)[:, None]
    hub_value = np.inf
    frontier = np.arange(n)
    for _ in range(2 * n + 8):
        if frontier.size == 0:
            return p
        new = p.copy()
        wanted = -p[frontier][None, :] > lower[:, None]
        cell = (offset + frontier[None, :])[wanted]
        first = starts[cell]
        counts = starts[cell + 1] - first
        total = int(counts.sum())
        if total:
            idx = np.repeat(first - (np.cumsum(counts) - counts), counts) + np.arange(total)
            np.minimum.at(new, head[idx], p[k[idx]] + w[idx])
        hubbed = frontier[keep_hub[frontier]]
        if hubbed.size:
            hub_value = min(hub_value, float((p[hubbed] + hub_w[hubbed]).min()))
            np.minimum(new, hub_value, out=new)
        dropped = new < p - _STEP
        p = np.where(dropped, new, p)
        frontier = np.flatnonzero(dropped)
    raise TopoError("NNSTD: the dual potentials of a layer did not converge (please report)")


class _Uncertified(Exception):
    """A core matching is not optimal for the whole layer: ``pairs`` left out must join."""

    def __init__(self, pairs: tuple[np.ndarray, np.ndarray]) -> None:
        super().__init__("core matching not optimal for the layer")
        self.pairs = pairs


def _check_left_out(cost: LayerCost, d: np.ndarray, p: np.ndarray, node_of_col: np.ndarray,
                    cap: float) -> tuple[np.ndarray, np.ndarray]:
    """Reduced costs of the pairs outside the core, for the rows whose bound is not positive.

    Returns the tight ones as exchanges ``(k, l)``; raises :class:`_Uncertified` when one
    of them is negative, with every checked pair whose reduced cost is below ``_MARGIN`` (the
    pairs likely to matter once the matching changes, so that one more solve usually ends).
    """
    n_a, n_b = cost.n_a, cost.n_b
    bound = cap - d[:n_a] + p[:n_a] - p.max(initial=0.0)
    rows = np.flatnonzero(bound <= TOL)
    empty = np.zeros(0, dtype=np.int64)
    if rows.size == 0:
        return empty, empty
    p_col = p[node_of_col[:n_b]]
    ks, js, reds = [], [], []
    if cost.dense is not None:
        for lo in range(0, rows.size, _CHECK_ROWS):
            chunk = rows[lo:lo + _CHECK_ROWS]
            # the same subtraction as the exchange weights of the Bellman-Ford graph
            red = (cost.dense[chunk] - d[chunk, None]) + p[chunk, None] - p_col[None, :]
            kk, jj = np.nonzero(red <= _MARGIN)
            ks.append(chunk[kk])
            js.append(jj.astype(np.int64))
            reds.append(red[kk, jj])
    else:
        starts = np.searchsorted(cost.rows, rows)
        counts = np.searchsorted(cost.rows, rows, side="right") - starts
        total = int(counts.sum())
        idx = np.repeat(starts - (np.cumsum(counts) - counts), counts) + np.arange(total)
        k = cost.rows[idx]
        j = cost.cols[idx]
        red = (cost.values[idx] - d[k]) + p[k] - p_col[j]
        low = red <= _MARGIN
        ks.append(k[low])
        js.append(j[low])
        reds.append(red[low])
    k, j, red = np.concatenate(ks), np.concatenate(js), np.concatenate(reds)
    if (red < -TOL).any():
        raise _Uncertified((k, j))
    tight = red <= TOL
    return k[tight], node_of_col[j[tight]]


def _choose(cost: LayerCost, col_of: np.ndarray, face: Face, preference: Preference
            ) -> tuple[np.ndarray, int]:
    """The matching of :func:`canonical_optimum` from the face, and the tied-unit count."""
    n_a, n_b = cost.n_a, cost.n_b
    n_tied = 0
    if face.blocks.size:
        col_of = _choose_in_blocks(cost, col_of, face, preference)
        n_tied = int(np.isin(face.label[:n_a], face.blocks).sum())
    perm = col_of[:n_a].copy()
    perm[perm >= n_b] = -1
    return perm, n_tied


def _choose_in_blocks(cost: LayerCost, col_of: np.ndarray, face: Face,
                      preference: Preference) -> np.ndarray:
    """Re-match the pairs of every block of the face by the secondary cost."""
    n_a, n_b = cost.n_a, cost.n_b
    n = col_of.size
    colour_a, colour_b = preference.colours()
    row_colour = np.full(n, _DUMMY_COLOUR, dtype=np.uint64)
    row_colour[:n_a] = colour_a
    col_colour = np.full(n, _DUMMY_COLOUR, dtype=np.uint64)
    col_colour[:n_b] = colour_b
    in_block = np.isin(face.label, face.blocks)
    col_of = col_of.copy()
    # allowed (row, column) pairs inside blocks: own pairs, tight exchanges, hub pairs
    nodes = np.flatnonzero(in_block)
    ek = face.tight_k
    el = face.tight_l
    same = in_block[ek] & (face.label[ek] == face.label[el])
    pr = [nodes, ek[same]]
    pc = [col_of[nodes], col_of[el[same]]]
    if face.hub_label >= 0 and face.hub_label in set(face.blocks.tolist()):
        hr = face.hub_rows[face.label[face.hub_rows] == face.hub_label]
        hc = face.hub_cols[face.label[face.hub_cols] == face.hub_label]
        rr = np.repeat(hr, hc.size)
        cc = np.tile(col_of[hc], hr.size)
        outside = _not_in_graph(cost, rr, cc)
        pr.append(rr[outside])
        pc.append(cc[outside])
    rows = np.concatenate(pr)
    cols = np.concatenate(pc)
    key = np.unique(rows * n + cols)
    rows, cols = key // n, key % n
    # positive weights: the matching routine needs every allowed pair to be an entry
    weight = 1.0 + preference.weights(rows, cols, n_a, n_b)
    # rows and columns of the blocks in canonical order (colour, then index)
    block_rows = nodes[np.lexsort((nodes, row_colour[nodes]))]
    block_cols = col_of[nodes]
    block_cols = block_cols[np.lexsort((block_cols, col_colour[block_cols]))]
    row_pos = np.empty(n, dtype=np.int64)
    row_pos[block_rows] = np.arange(block_rows.size)
    col_pos = np.empty(n, dtype=np.int64)
    col_pos[block_cols] = np.arange(block_cols.size)
    m = block_rows.size
    r, c = _block_assignment(row_pos[rows], col_pos[cols], weight, m)
    col_of[block_rows[r]] = block_cols[c]
    return col_of


def _block_assignment(rows: np.ndarray, cols: np.ndarray, weight: np.ndarray, m: int
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Minimum-weight perfect matching of ``m`` rows and columns on the allowed pairs given.

    SciPy's dense solver with forbidden pairs at infinity up to 200 units, LAPMOD on the
    allowed pairs beyond (SciPy's sparse routine can take seconds on weights this close).
    """
    if m <= _DENSE_BLOCK:
        full = np.full((m, m), np.inf)
        full[rows, cols] = weight
        return linear_sum_assignment(full)
    import lap

    graph = sp.csr_matrix((weight, (rows, cols)), shape=(m, m))
    graph.sort_indices()
    x, _ = lap.lapmod(m, graph.data, graph.indptr.astype(np.int32),
                      graph.indices.astype(np.int32), return_cost=False)
    return np.arange(m), np.asarray(x, dtype=np.int64)


_DUMMY_COLOUR = np.uint64(0x9E3779B97F4A7C15)


def _pair_hash(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """A fixed symmetric hash of two colours, as a float in ``[0, 1)``.

    Symmetric so that comparing B with A makes the mirror choice of comparing A with B.
    """
    from topo.canonical import mix64

    h = mix64(mix64(x) + mix64(y))
    return (h >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def _not_in_graph(cost: LayerCost, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """True for the pairs that are not in the similarity graph (they cost 1)."""
    real = (rows < cost.n_a) & (cols < cost.n_b)
    out = np.ones(rows.size, dtype=bool)
    out[real] = cost.lookup(rows[real], cols[real]) >= 1.0
    return out

