"""NNSTD: the neural-network sparse topology distance of Liu et al. (2020), and its matchings.

Two sparse networks are compared layer by layer from the input side. Every output unit of a
layer is described by the set of its incoming neighbours; two units cost the normalised graph
edit distance of those sets, which is their Jaccard distance ``|a △ b| / |a ∪ b|`` (0 when both
sets are empty). The units of the two networks are matched by an optimal assignment on that
cost; before layer ``k`` is compared, network B's inputs of layer ``k`` are re-indexed by the
matching found for layer ``k - 1`` (the inputs of layer 0 are the same pixels/features in both
networks). A layer's distance is its matched cost divided by its number of units and the
network's distance is the mean over layers.

Beyond chains of fully-connected layers
---------------------------------------
A layer maps input *units* to output units (:mod:`topo.graph`): for a conv layer the units
are channels and every kept kernel element ``(input channel, position)`` is a connection.
topo extends the definition as follows; for a chain of fully-connected layers every step is
exactly the one above.

1. *Incoming sets are sets of elements.* Output unit ``i`` of a layer is described by the set
   of its kept elements ``(input unit, position)``; two units cost the Jaccard distance of
   those sets. With one position per unit this is the set of input neurons.
2. *Re-indexing moves whole units.* B's input unit ``j`` goes to A's index ``m(j)`` with all
   its positions: element ``(j, p)`` becomes ``(m(j), p)``
   (:func:`topo.structure.block_columns`).
3. *Unit sets are matched, not layers.* Every layer reads one unit set and writes one; a
   residual addition makes several layers write one set (a stream). Layers are visited in
   forward order and a set is matched when it is first read (sets nobody reads, at the
   end): its matching is the optimal assignment (with the canonical tie rule below) of the
   *sum* of the costs of every layer that writes the set and whose read set is matched by
   then, each with its inputs re-indexed by its read set's matching. Writers whose inputs
   are computed from the set itself (the second convolution of a residual block, which
   reads the block's hidden set) cannot take part and are evaluated under the fixed
   matching; every reader of the set is re-indexed by it. The network's inputs, and in the
   default mode its output set (classes), stay in place.
4. *Per-layer values.* A layer's NNSTD is its cost under the matchings of the set it reads
   and the set it writes, divided by the larger width of its write set (by its width for a
   set kept in place); the network's distance is the mean over layers.
5. *Ties.* The tie rule's agreement compares two units' outgoing connections in every
   layer that reads their set, as (output unit, kernel position) pairs (the mean over the
   readers); its canonical colours come from colour refinement of both networks' whole
   unit-set graphs (edges labelled by kernel position; BLISS on a graph that keeps each
   connection's direction and position when refinement is not exact),
   :class:`topo.unit_sets.SetColours`.

For a chain, set ``k + 1`` has one writer, layer ``k``, whose read set ``k`` is matched
before it, and is first read by layer ``k + 1``: step 3 is Liu et al.'s layer-by-layer
matching, steps 1-2 and 4 their cost and normalisation, step 5 the chain's tie rule (one
reader, the next layer; the colour formulas coincide when every label is 0), so the result
is the same, matchings included (tested on every MLP family: ``tests/test_distance_cnn.py``).
A network against a copy whose channels are permuted consistently (through its streams) is
at 0 in every layer.
Independent matrices (unknown wiring) are compared matrix by matrix: inputs in place,
outputs matched, no matching shared between matrices. ``reference=True`` (the published
code) is for chains of fully-connected layers only.

Reference
---------
S. Liu, T. van der Lee, A. Yaman, Z. Atashgahi, D. Ferraro, G. Sokar, M. Pechenizkiy,
D. C. Mocanu, "Topological Insights into Sparse Neural Networks", ECML-PKDD 2020
(arXiv:2006.14085), Section 3 and its published implementation
``Sparse_Topology_Distance/sparse_topology_distance.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from topo import unit_sets
from topo.assignment import (
    SOLVERS,
    LayerCost,
    Preference,
    canonical_matching_path,
    choose_solver,
    dense_cost_wanted,
    jaccard_cost,
    layer_cost,
    similarity_density_bound,
)
from topo.canonical import CanonicalColours, canonical_colours
from topo.errors import ConfigError, IncompatibleGraphsError
from topo.graph import LayeredGraph, require_graph
from topo.structure import block_columns

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["NNSTDResult", "nnstd", "jaccard_cost", "matching_column_map"]


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
        Layers writing one unit set share its matching.
    names
        Layer names of network A.
    n_out_a, n_out_b
        Output widths of every layer of A and B.
    matched_cost
        Sum of the unit costs of every layer (unmatched units included, at 1 each).
    reference
        Whether the published algorithm was followed exactly (``reference=True``).
    sparse_distance
        Mean over the sparse layers only: a layer that is fully connected in both networks
        always scores 0 and would dilute the mean (NaN when every layer is dense).
    dense
        Per layer, whether it is fully connected in both networks.
    solvers
        Per layer, the assignment path used: ``"core"`` (LAPMOD on the cheapest pairs,
        certified), ``"sparse"`` (LAPMOD on the pairs sharing an input), ``"dense"``
        (LAPJV), ``"scipy"``, ``"in place"`` (outputs not matched) or, for a layer that
        writes a residual stream matched on other layers' costs, ``"fixed"`` (evaluated
        under that matching).
    tied_units
        Per layer, how many of A's units had their partner chosen among equally good optimal
        matchings by the canonical rule (0 in reference mode, which keeps the solver's).
    tie_labels
        How the canonical colours of the tie rule were obtained: ``"refinement"`` or
        ``"bliss"`` (see :mod:`topo.canonical`), ``None`` when no layer had a tie.
    kernels
        Per layer, how a ``"core"`` layer's matching and optimal dual were found (one of
        :data:`topo.assignment.KERNEL_PATHS`): ``"compiled"`` (topo's compiled solver,
        its dual checked), ``"lapmod"`` (LAPMOD, the dual by the compiled label-correcting
        search: wide layers of a sparse similarity graph), ``"numpy"`` (LAPMOD, the dual by
        NumPy's Bellman-Ford rounds: the path of an install without the compiled module),
        ``"lapmod (compiled dual not verified)"`` (the compiled dual failed its check, so
        LAPMOD was used); ``""`` for the other paths. The values do not depend on it.
    """

    per_layer: np.ndarray
    distance: float
    matchings: list[np.ndarray | None]
    names: list[str] = field(default_factory=list)
    n_out_a: list[int] = field(default_factory=list)
    n_out_b: list[int] = field(default_factory=list)
    matched_cost: list[float] = field(default_factory=list)
    reference: bool = False
    sparse_distance: float = float("nan")
    dense: list[bool] = field(default_factory=list)
    solvers: list[str] = field(default_factory=list)
    tied_units: list[int] = field(default_factory=list)
    tie_labels: str | None = None
    kernels: list[str] = field(default_factory=list)

    def to_frame(self) -> pandas.DataFrame:
        """One row per layer, input side first.

        Columns: ``layer`` (index), ``name``, ``nnstd``, ``n_out_a``, ``n_out_b``,
        ``matched`` (whether the layer's outputs were matched), ``unmatched`` (units of the
        wider side without a partner), ``cost`` (the layer's summed unit cost), ``dense``
        (fully connected in both networks), ``solver`` and ``tied_units``.
        """
        import pandas as pd

        n = len(self.per_layer)
        return pd.DataFrame({
            "layer": np.arange(n),
            "name": self.names,
            "nnstd": self.per_layer,
            "n_out_a": self.n_out_a,
            "n_out_b": self.n_out_b,
            "matched": [m is not None for m in self.matchings],
            "unmatched": [abs(a - b) for a, b in zip(self.n_out_a, self.n_out_b)],
            "cost": self.matched_cost,
            "dense": self.dense or [False] * n,
            "solver": self.solvers or [""] * n,
            "tied_units": self.tied_units or [0] * n,
        })


def nnstd(a: LayeredGraph, b: LayeredGraph, *, reference: bool = False,
          solver: str = "auto") -> NNSTDResult:
    """Neural-network sparse topology distance (NNSTD) between two layered graphs.

    Parameters
    ----------
    a, b
        The two networks (read files with :func:`topo.load`). They need the same number of
        layers, the same number of inputs and the same number of outputs; hidden widths may
        differ (not with ``reference=True``). Conv layers, residual streams and independent
        matrices need the same layer kinds, kernel shapes, groups and wiring in both (see
        the module notes, "Beyond chains").
    reference
        ``True`` follows the published implementation exactly: every layer is matched,
        including the output layer (so class identity is not kept), each layer's cost is
        divided by A's width, and the matching is whichever optimal one SciPy's solver
        returns. ``False`` (default) keeps the output units in place (they are labelled
        classes: unit ``i`` of A is compared with unit ``i`` of B after the input
        re-indexing), lets hidden widths differ (a unit of the wider network without a
        partner costs 1, and the layer's cost is divided by the larger width) and chooses
        among equally good matchings by the canonical rule below.
    solver
        ``"auto"`` (default) picks per layer from its widths: ``"core"`` (LAPMOD on the
        cheapest pairs, certified by the dual; the cost is built dense or sparse from the
        fraction of unit pairs that share an input) from 128 units, else ``"dense"``.
        ``"sparse"`` forces LAPMOD on every pair sharing an input (every other pair costing
        exactly 1), ``"dense"`` LAPJV on the full matrix, ``"scipy"``
        :func:`scipy.optimize.linear_sum_assignment`. Every choice gives the same result in
        the default mode; the path used is in :attr:`NNSTDResult.solvers`. Reference mode
        always uses SciPy's solver.

    Returns
    -------
    NNSTDResult
        Per-layer distances, their mean and the mean over sparse layers, the matchings and a
        per-layer table (:meth:`NNSTDResult.to_frame`).

    Raises
    ------
    IncompatibleGraphsError
        Different numbers of layers, inputs or outputs, layer geometry or wiring; with
        ``reference=True`` also different hidden widths.
    NotAGraphError
        ``a`` or ``b`` is not a LayeredGraph (e.g. a path).
    ConfigError
        An unknown ``solver``, a solver other than SciPy's with ``reference=True``, or
        ``reference=True`` for a network that is not a chain of fully-connected layers.

    Notes
    -----
    For layer ``k`` with binary structure ``A`` (``n_a x m``) and ``B`` re-indexed on its input
    side (``n_b x m``), the intersections of all incoming-neighbour sets are the sparse product
    ``I = A Bᵀ``; unions are ``U = deg_a + deg_bᵀ - I``; the unit cost is
    ``(U - I) / U`` (0 where ``U = 0``), the same rounding as the published edit-distance
    formula. Layer ``k``'s value is the minimum over all matchings of its cost given the
    matching of layer ``k - 1``, exactly as Liu et al. define it, whatever solver finds it
    (:mod:`topo.assignment`; thresholds measured in ``analysis/results/nnstd_solvers.md``).

    Ties. Layer 0's value depends only on the optimal cost, but the re-indexing of every later
    layer depends on *which* optimal matching is used, and networks have many: units without
    inputs, units with the same in-set, whole dense layers, and unrelated pairs of matchings
    whose costs happen to be equal (several per 1000-unit layer of random SET networks at
    epsilon = 5). The published code keeps whichever one its solver returns, so its later
    layers depend on unit order and solver (``reference=True`` reproduces this bit for bit).
    The default mode makes the choice canonical:

    1. The *optimal face* of the layer (every pair that belongs to some optimal matching, in
       independent blocks) is computed exactly from an optimal matching and an optimal dual
       (:func:`topo.assignment.optimal_face`); costs within ``1e-9`` count as equal.
    2. Within each block the matching minimises the secondary cost
       ``agreement(i, j) + 2**-20 * t(i, j)`` (:class:`topo.assignment.Preference`).
       ``agreement`` compares the two units' outgoing connections: for the last hidden
       layer (its next layer is the output layer, kept in place) the Jaccard distance of
       their sets of outputs; for earlier hidden layers, whose next layer is not matched
       yet, the relative difference of their out-degrees ``|o_a - o_b| / max(o_a, o_b)``.
       ``t`` is 0 for two units of the same *canonical colour* and ``1 + h`` otherwise, ``h``
       in ``[0, 1)`` a fixed symmetric hash of the two colours. Colours come from colour
       refinement of both layered graphs (inputs and output classes labelled by index),
       checked exact (units of equal colour are twins), else from a canonical labelling
       (BLISS); see :mod:`topo.canonical`.

    What this guarantees: every layer's value is still the optimum given the previous layer's
    matching (only the choice among optima is fixed); the result depends neither on the
    solver nor on how the hidden units of either network are numbered; and a network against
    a relabelled copy of itself is at 0 in every layer, for every structure (tied, duplicate
    or empty units, dense layers), because the relabelling is an optimal matching whose every
    pair has secondary cost 0, and any other such matching differs from it only by twins.
    What it does not promise: the choice among optima is not the one that minimises later
    layers (that is a quadratic assignment problem); for two different networks it is a
    fixed, documented rule.

    Solvers. With ``solver="auto"`` a layer of 128 units or more is solved by LAPMOD on its
    cheapest pairs only (about 32 per unit, :func:`topo.assignment.core_cap`); the dual of
    step 1 then certifies that matching for the whole layer, or names the pairs left out with
    a negative reduced cost, which join before the layer is solved again
    (:func:`topo.assignment.canonical_matching`). Smaller layers use LAPJV on the full matrix.

    Complexity per layer: ``O(Σ_c deg_A(c) deg_B(c))`` for the sparse cost (``c`` over
    inputs) or ``O(nnz(A) · n_b)`` for the dense one, ``O(n³)`` worst case for the
    assignment (``n = max(n_a, n_b)``), a few Bellman-Ford rounds over the near-optimal
    exchanges for the face, ``O(n_a n_b)`` memory on the dense path and ``O(pairs sharing an
    input)`` on the sparse one. Colour refinement (only when a layer has a tie) is
    ``O(connections)`` per round.

    The published implementation compares neurons pair by pair in Python (about 45 CPU s for
    one pair of the 784-784-784-784-10 networks it was published with); the values here equal
    its values in reference mode.

    References
    ----------
    S. Liu et al., "Topological Insights into Sparse Neural Networks", ECML-PKDD 2020,
    arXiv:2006.14085.
    R. Jonker and A. Volgenant, "A shortest augmenting path algorithm for dense and sparse
    linear assignment problems", Computing 38, 1987.
    D. F. Crouse, "On implementing 2D rectangular assignment algorithms", IEEE Transactions
    on Aerospace and Electronic Systems 52(4), 2016.
    """
    a, b = require_graph(a, "network a"), require_graph(b, "network b")
    if not (a.is_linear and a.is_chain and b.is_linear and b.is_chain):
        unit_sets.check_comparable(a, b, reference)
        if solver not in SOLVERS:
            raise ConfigError(f"unknown NNSTD solver {solver!r}; use one of "
                              f"{', '.join(SOLVERS)}")
        return _nnstd_unit_sets(a, b, solver)
    _check_comparable(a, b, reference)
    if solver not in SOLVERS:
        raise ConfigError(f"unknown NNSTD solver {solver!r}; use one of {', '.join(SOLVERS)}")
    if reference and solver not in ("auto", "scipy"):
        raise ConfigError("reference=True uses SciPy's solver, as the published code does "
                        f"(solver={solver!r} was asked for)")
    masks_a, masks_b = a.masks(), b.masks()
    n_layers = a.n_layers
    per_layer = np.zeros(n_layers)
    costs: list[float] = []
    matchings: list[np.ndarray | None] = []
    paths: list[str] = []
    kernels: list[str] = []
    tied: list[int] = []
    labels = _LazyColours(masks_a, masks_b)
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
            paths.append("in place")
            kernels.append("")
            tied.append(0)
            per_layer[k] = cost / n_a if n_a else 0.0
            costs.append(cost)
            continue
        if reference:
            perm, cost = _reference_layer(ma, mb, col_map, n_cols)
            paths.append("scipy")
            kernels.append("")
            tied.append(0)
            per_layer[k] = cost / n_a if n_a else 0.0
        else:
            preference = Preference(
                _agreement(masks_a[k + 1], masks_b[k + 1], outputs=k + 1 == n_layers - 1),
                lambda k=k: labels.layer(k))
            perm, cost, path, n_tied, kernel = _canonical_layer(ma, mb, col_map, n_cols,
                                                                solver, preference)
            paths.append(path)
            kernels.append(kernel)
            tied.append(n_tied)
            per_layer[k] = cost / max(n_a, n_b) if max(n_a, n_b) else 0.0
        matchings.append(perm)
        costs.append(cost)
        col_map, n_cols = _next_column_map(perm, n_a, n_b)
    return _result(a, b, per_layer, matchings, costs, reference, paths, tied, labels.method,
                   kernels)


def _result(a: LayeredGraph, b: LayeredGraph, per_layer: np.ndarray, matchings: list,
            matched_cost: list, reference: bool, paths: list, tied: list,
            tie_labels: str, kernels: list) -> NNSTDResult:
    """The result of a pair: per-layer values, their mean, and the mean over the layers that
    are not dense in both networks."""
    dense = [a.densities[k] == 1.0 and b.densities[k] == 1.0 for k in range(a.n_layers)]
    sparse_values = per_layer[~np.asarray(dense, dtype=bool)]
    return NNSTDResult(
        per_layer=per_layer,
        distance=float(per_layer.mean()),
        matchings=matchings,
        names=list(a.names),
        n_out_a=list(a.n_out),
        n_out_b=list(b.n_out),
        matched_cost=matched_cost,
        reference=reference,
        sparse_distance=float(sparse_values.mean()) if sparse_values.size else float("nan"),
        dense=dense,
        solvers=paths,
        tied_units=tied,
        tie_labels=tie_labels,
        kernels=kernels,
    )




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


def _nnstd_unit_sets(a: LayeredGraph, b: LayeredGraph, solver: str) -> NNSTDResult:
    """NNSTD of networks that are not chains of fully-connected layers (module notes)."""
    masks_a, masks_b = a.masks(), b.masks()
    wiring = a.wiring
    in_place = list(wiring.input_sets)
    if not a.is_independent:
        in_place.append(wiring.output_set)
    plan = unit_sets.matching_plan(wiring.reads, wiring.writes, in_place)
    colours = unit_sets.SetColours(a, b, in_place)
    # per set: B's units in A's frame (col_map, n_cols) and the matching (None: in place)
    frame: dict[int, tuple[np.ndarray, int]] = {
        s: (np.arange(b.set_sizes[s], dtype=np.int64), a.set_sizes[s]) for s in in_place}
    perm_of: dict[int, np.ndarray | None] = {s: None for s in in_place}
    costs: dict[int, LayerCost] = {}
    paths = ["fixed"] * a.n_layers
    kernels = [""] * a.n_layers
    tied = [0] * a.n_layers

    def element_frame(k: int) -> tuple[np.ndarray, int]:
        col_map, n_cols = frame[wiring.reads[k]]
        p = a.positions[k]
        return block_columns(col_map, p), n_cols * p

    for s in plan.order:
        layers = plan.contributors[s]
        n_a, n_b = a.set_sizes[s], b.set_sizes[s]
        frames = [element_frame(k) for k in layers]
        bound = min(1.0, sum(similarity_density_bound(masks_a[k], masks_b[k], *f)
                             for k, f in zip(layers, frames)))
        path = choose_solver(n_a, n_b, bound) if solver == "auto" else solver
        for k, f in zip(layers, frames):
            costs[k] = layer_cost(masks_a[k], masks_b[k], *f,
                                  dense=_dense_cost(path, n_a, n_b, bound))
        preference = Preference(_set_agreement(a, b, masks_a, masks_b, s, in_place),
                                lambda s=s: colours.of_set(s))
        perm, n_tied, kernel = canonical_matching_path(
            unit_sets.combined_cost([costs[k] for k in layers]), path, preference)
        for k in layers:
            paths[k] = path
            kernels[k] = kernel
        tied[layers[0]] = n_tied
        perm_of[s] = perm
        frame[s] = matching_column_map(perm, n_a, n_b)
    per_layer = np.zeros(a.n_layers)
    matched_cost: list[float] = []
    for k in range(a.n_layers):
        perm = perm_of[wiring.writes[k]]
        n_a, n_b = a.n_out[k], b.n_out[k]
        col_map, n_cols = element_frame(k)
        if perm is None:
            cost = float(_paired_cost(masks_a[k], masks_b[k], col_map, n_cols).sum())
            paths[k] = "in place"
            per_layer[k] = cost / n_a
        else:
            if k in costs:
                cost = _matched_cost(costs[k], perm)
            else:
                rows = np.flatnonzero(perm >= 0)
                cost = float(unit_sets.pair_costs(masks_a[k], masks_b[k], rows, perm[rows],
                                                  col_map, n_cols).sum()) + abs(n_a - n_b)
            per_layer[k] = cost / max(n_a, n_b)
        matched_cost.append(cost)
    return _result(a, b, per_layer, [perm_of[w] for w in wiring.writes], matched_cost, False,
                   paths, tied, colours.method, kernels)


def _set_agreement(a: LayeredGraph, b: LayeredGraph, masks_a: list[sp.csr_matrix],
                   masks_b: list[sp.csr_matrix], unit_set: int, in_place: list[int]
                   ) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """The tie rule's agreement of two units of a set: :func:`_agreement` over its readers.

    Each layer reading the set compares the two units' outgoing connections, kernel
    positions included (the Jaccard distance of their (output unit, position) sets when the
    reader writes a set kept in place, else the relative difference of their numbers of
    outgoing connections); several readers give the mean. For a chain the one reader is the
    next layer and this is :func:`_agreement` itself.
    """
    readers = a.readers(unit_set)
    if not readers:
        return None
    parts = [_agreement(unit_sets.outgoing_layout(masks_a[r], a.positions[r]),
                        unit_sets.outgoing_layout(masks_b[r], b.positions[r]),
                        outputs=a.writes[r] in in_place) for r in readers]
    if len(parts) == 1:
        return parts[0]

    def mean(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        return sum(part(i, j) for part in parts) / len(parts)

    return mean


# --------------------------------------------------------------------------- helpers
def _check_comparable(a: LayeredGraph, b: LayeredGraph, reference: bool) -> None:
    where = f"{a.source} vs {b.source}"
    if a.n_layers != b.n_layers:
        raise IncompatibleGraphsError(
            f"{where}: {a.n_layers} layer{'s' * (a.n_layers != 1)} against {b.n_layers}; "
            "NNSTD compares networks with the same number of layers")
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


def _reference_layer(ma: sp.csr_matrix, mb: sp.csr_matrix, col_map: np.ndarray, n_cols: int
                     ) -> tuple[np.ndarray, float]:
    """One layer as the published implementation matches it: SciPy's solver on the cost."""
    c = jaccard_cost(ma, mb, col_map, n_cols)
    rows, cols = linear_sum_assignment(c)
    perm = np.full(ma.shape[0], -1, dtype=np.int64)
    perm[rows] = cols
    return perm, float(c[rows, cols].sum())


def _canonical_layer(ma: sp.csr_matrix, mb: sp.csr_matrix, col_map: np.ndarray, n_cols: int,
                     solver: str, preference: Preference
                     ) -> tuple[np.ndarray, float, str, int, str]:
    """One layer of the default mode: the canonical optimal matching and its cost.

    Returns the matching, the layer's cost (unmatched units at 1 each), the solver path used,
    the number of A's units whose partner was chosen among tied optimal matchings and the
    kernel path (:func:`topo.assignment.canonical_matching_path`).
    """
    n_a, n_b = ma.shape[0], mb.shape[0]
    density = similarity_density_bound(ma, mb, col_map, n_cols)
    path = choose_solver(n_a, n_b, density) if solver == "auto" else solver
    cost = layer_cost(ma, mb, col_map, n_cols, dense=_dense_cost(path, n_a, n_b, density))
    perm, n_tied, kernel = canonical_matching_path(cost, path, preference)
    return perm, _matched_cost(cost, perm), path, n_tied, kernel


def _dense_cost(path: str, n_a: int, n_b: int, density: float) -> bool:
    """Whether a layer solved on ``path`` builds its cost as a dense matrix."""
    return path in ("dense", "scipy") or (path == "core" and dense_cost_wanted(n_a, n_b,
                                                                                  density))


def _matched_cost(cost: LayerCost, perm: np.ndarray) -> float:
    """A layer's cost under a matching: matched pairs, plus 1 per unit without a partner."""
    matched = np.flatnonzero(perm >= 0)
    return float(cost.lookup(matched, perm[matched]).sum()) + abs(cost.n_a - cost.n_b)


def _agreement(next_a: sp.csr_matrix, next_b: sp.csr_matrix, *, outputs: bool
               ) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """How well two units' outgoing connections agree: the secondary cost of the tie rule.

    ``next_a``, ``next_b`` are the structures of the next layer (``(n_next, n_units)``).
    When the next layer is the output layer (kept in place, so both networks' outputs are
    the same units) it is the Jaccard distance of the two units' sets of outputs (0 when both
    are empty); elsewhere the next layer's units are not matched yet and it is the relative
    difference of the two out-degrees, ``|o_a - o_b| / max(o_a, o_b)`` (0 when both are 0).
    Both depend on nothing that relabelling hidden units changes.
    """
    if not outputs:
        out_a = np.bincount(next_a.indices, minlength=next_a.shape[1]).astype(np.float64)
        out_b = np.bincount(next_b.indices, minlength=next_b.shape[1]).astype(np.float64)

        def degree_gap(i: np.ndarray, j: np.ndarray) -> np.ndarray:
            x, y = out_a[i], out_b[j]
            top = np.maximum(x, y)
            return np.divide(np.abs(x - y), top, out=np.zeros_like(top), where=top > 0)

        return degree_gap
    sets_a = next_a.T.tocsr()
    sets_b = next_b.T.tocsr()
    size_a = np.diff(sets_a.indptr).astype(np.float64)
    size_b = np.diff(sets_b.indptr).astype(np.float64)

    def output_distance(i: np.ndarray, j: np.ndarray) -> np.ndarray:
        rows, ri = np.unique(i, return_inverse=True)
        cols, ci = np.unique(j, return_inverse=True)
        shared = (sets_a[rows].astype(np.float64) @ sets_b[cols].astype(np.float64).T)
        if rows.size * cols.size <= _DENSE_LOOKUP:
            inter = np.asarray(shared.toarray())[ri, ci]
        else:
            inter = np.asarray(shared.tocsr()[ri, ci]).ravel()
        union = size_a[i] + size_b[j] - inter
        return np.divide(union - inter, union, out=np.zeros_like(union), where=union > 0)

    return output_distance


# pairs of a secondary-cost lookup held as one dense array at most
_DENSE_LOOKUP = 4_000_000


class _LazyColours:
    """Canonical colours of both networks, computed the first time a layer has a tie."""

    def __init__(self, masks_a: list[sp.csr_matrix], masks_b: list[sp.csr_matrix]) -> None:
        self._masks = (masks_a, masks_b)
        self._colours: CanonicalColours | None = None

    @property
    def method(self) -> str | None:
        return self._colours.method if self._colours is not None else None

    def layer(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        if self._colours is None:
            self._colours = canonical_colours(*self._masks)
        return self._colours.a[k], self._colours.b[k]


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
