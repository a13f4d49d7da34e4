"""Feature-interaction detection from a trained network's weights: NID and persistence scores.

Both methods read only the weights. Write ``a[h, i] = |W1[h, i]|`` for the first layer (hidden
unit ``h``, input feature ``i``) and give every first-layer unit ``h`` an importance ``u_h``:

``nid``
    Neural Interaction Detection (Tsang et al., 2018): ``u = z = 1^T |W_L| ... |W_2|``, the
    summed influence of ``h`` on the outputs through all paths, on the raw weights.
``ph``
    The persistence score, **topo's own definition**: it is not the PID method of Liu et al.
    (NeurIPS 2020), whose definitions are not published in full, and it is not a
    reimplementation of it. On the weights normalised by the largest ``|w|`` of the network,
    ``u_h = reach_h``, the *feed-forward reach* of ``h``: the bottleneck (smallest normalised
    ``|w|``) of the widest directed path from ``h`` to an output unit, the level of the
    super-level filtration of layers ``2 .. L`` at which a signal from ``h`` can first flow to
    an output. A set of features that is the top-``k`` set ``S_k`` at ``h`` lives, at ``h``,
    from the level ``a_(k)`` of its ``k``-th strongest feature until the next one joins at
    ``a_(k+1)``.
``ph2``
    The same persistence score on the filtration of the squared normalised weights
    ``w^2 / max w^2`` (persistence measured in units of squared weight, the weight's "energy"):
    ``a`` becomes ``a^2`` and the reach becomes ``reach^2``.
``ph2n``
    ph2's pairwise strength as a *share* (pairwise only): the persistence that features ``i``
    and ``j`` spend together in top-``k`` sets, divided by the geometric mean of the
    persistence each spends in all top-``k`` sets at the units where the other one is attached
    too, with a pseudo-count of one average feature's total. A feature with a strong main
    effect has a large total, so sharing units with another strong feature by chance no longer
    ranks the pair high. Defined exactly in :func:`interaction_strengths`, Notes.

Selection caveat: ``ph2`` and ``ph2n`` were chosen among about 190 variants by their AUC on
the synthetic benchmark of Tsang et al. (2018) (on its seed-0 networks, with the undirected
reach topo used before), and ``analysis/interaction_benchmark.py`` measures them on that same
benchmark; their advantage there is partly a selection effect and is not evidence that they
generalise to other data. ``analysis/results/interaction_benchmark.md`` reports every score.

Pairwise, the first three methods reduce to the same sum,
``omega(i, j) = sum_h u_h min(a[h, i], a[h, j])``: for the persistence score, summing the
persistences ``a_(k) - a_(k+1)`` of all top-``k`` sets at ``h`` that contain both ``i`` and
``j`` telescopes to ``min(a[h, i], a[h, j])``. The methods differ in ``u`` (a sum over paths
of weight products against the bottleneck of the best path), in the scale of ``a`` and, for
higher orders, in how a set is scored (see :func:`interaction_strengths`).

References
----------
Tsang, M., Cheng, D., Liu, Y. (2018). Detecting Statistical Interactions from Neural Network
Weights. ICLR 2018.
Rieck, B. et al. (2019). Neural Persistence: A Complexity Measure for Deep Neural Networks
Using Algebraic Topology. ICLR 2019 (the super-level filtration of normalised ``|w|``).
Pollack, M. (1960). The maximum capacity through a network. Operations Research 8(5)
(widest paths).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from topo.errors import ConfigError, GraphStructureError
from topo.graph import LayeredGraph, require_graph
from topo.persistence import normalized_abs_weights

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = [
    "INTERACTION_COLUMNS",
    "METHODS",
    "ORDERS",
    "interaction_strengths",
    "interaction_auc",
    "interaction_matrix",
    "unit_importance",
]

#: Columns of :func:`interaction_strengths` (``topo interactions``'s table, CSV and JSON).
INTERACTION_COLUMNS = ("features", "strength")
METHODS = ("ph", "nid", "ph2", "ph2n")
# Methods defined for pairs only.
_PAIRWISE_ONLY = ("ph2n",)
ORDERS = ("pairwise", "any")

# Largest number of (unit, pair) terms handled at once by the pairwise kernel.
_CHUNK_TERMS = 4_000_000
# Largest pruning work (sum over features of squared candidate counts) for one any-order call:
# about half a minute on one core; a dense 784-300 first layer would need ~1e13.
_MAX_PRUNE_WORK = 2e9


def interaction_strengths(
    graph: LayeredGraph,
    *,
    method: str = "ph",
    order: str = "pairwise",
    top: int | None = None,
    keep_subsets: bool = False,
) -> pandas.DataFrame:
    """Rank feature interactions of a trained network, strongest first.

    Parameters
    ----------
    graph
        A network with at least one hidden layer (two weight layers or more); its first layer
        reads the features.
    method
        ``"ph"`` (persistence score), ``"nid"`` (Neural Interaction Detection), ``"ph2"``
        (the persistence score of the squared weights) or ``"ph2n"`` (ph2's pairwise
        strength as a share of the two features' own persistence; pairwise only).
    order
        ``"pairwise"``: every pair ``i < j`` of features, zero strengths included.
        ``"any"``: candidate sets of any size >= 2, after pruning (see Notes).
    top
        Keep only the ``top`` strongest rows (after pruning for ``order="any"``).
    keep_subsets
        For ``order="any"``: keep the candidates that are strict subsets of a stronger
        candidate instead of pruning them (see Notes).

    Returns
    -------
    pandas.DataFrame
        Columns ``features`` (a sorted tuple of 0-based feature indices) and ``strength``,
        sorted by decreasing strength; ties keep a fixed order (smaller sets first, then
        lexicographic). For ``order="any"``, ``attrs["candidates"]`` is the number of
        candidate sets of positive strength and ``attrs["pruned"]`` how many of them were
        dropped as strict subsets of a stronger one (0 with ``keep_subsets``), so that a
        short list (on a dense first layer often a single set) can be told apart from a
        network with few interactions.

    Raises
    ------
    GraphStructureError
        The network has a single layer, so no first hidden layer; or it is not a chain of
        fully-connected layers (conv or flatten layers, residual streams, independent
        matrices): the features and the paths to the outputs these scores read are then
        not defined.
    NonFiniteWeightsError
        A weight is NaN or infinite.
    ConfigError
        Unknown ``method`` or ``order``, ``top`` not a positive integer, or ``order="any"``
        with ``method="ph2n"``; or, for ``order="any"``, a first layer so dense that pruning
        the candidates would take more than about half a minute (see Notes).

    Notes
    -----
    Let ``a[h, i]`` be the first-layer weights in absolute value (NID: raw; ph: divided by the
    largest ``|w|`` of the network; ph2 and ph2n: the square of ph's) and ``u_h`` the unit
    importance of :func:`unit_importance`. For each first-layer unit ``h`` order its features
    by decreasing ``a[h, i]``: ``a_(1) >= a_(2) >= ... >= a_(m)`` (``m`` connected features;
    ``a_(m+1) = 0``; an absent connection or a weight of 0 counts as not connected) and let
    ``S_k`` be the top-``k`` set.

    The persistence score, exactly. In the super-level filtration of the normalised ``|w|``
    the features attached to ``h`` join ``h`` in decreasing order of ``a[h, i]``; the set
    ``S_k`` exists as a cluster of its own (``h`` with exactly these features) from level
    ``a_(k)`` until the next feature joins at ``a_(k+1)``, so its persistence at ``h`` is
    ``a_(k) - a_(k+1)``. A signal from ``h`` reaches an output from level ``reach_h`` on (the
    feed-forward reach, :func:`unit_importance`). The strength of a feature set ``S`` is
    ``sum_h (a_(k) - a_(k+1)) reach_h`` over the units ``h`` where ``S = S_k``, and the
    pairwise strength of ``(i, j)`` is ``sum_h sum_{k: i, j in S_k} (a_(k) - a_(k+1)) reach_h``.

    *Pairwise* (both methods): ``omega(i, j) = sum_h u_h min(a[h, i], a[h, j])``. For NID this
    is Tsang et al.'s pairwise strength with ``min`` as the averaging function; for ph the
    inner sum over ``k`` telescopes to ``min(a[h, i], a[h, j])``. Computed as a sum over units
    of ``u_h a[h, j]`` for every feature ``i`` ranked above ``j`` at ``h``:
    ``O(sum_h m_h^2)`` time, vectorised (``numpy.bincount``), in chunks of bounded memory.

    *ph2n, pairwise only*, exactly. With ph2's ``a`` (the squared normalised ``|W1|``) and
    ``u = reach ** 2``, let ``omega(i, j) = sum_h u_h min(a[h, i], a[h, j])`` be ph2's pairwise
    strength, ``D(i | j) = sum_h u_h a[h, i] [j is attached to h]`` (the sum over the units
    ``h`` where both ``i`` and ``j`` are connected, ``a > 0``), ``T_i = D(i | i)`` feature
    ``i``'s total and ``m`` the mean of ``T_i`` over all ``p`` features. Then::

        ph2n(i, j) = omega(i, j) / sqrt((D(i | j) + m) (D(j | i) + m)),

    and 0 when the denominator is 0 (no connection at all). The reasoning: at unit ``h`` the
    persistences of the top-``k`` sets that contain ``i`` sum to ``a[h, i]`` (the same
    telescoping as above), so ``D(i | j)`` is the reach-weighted persistence of feature ``i``
    at the units it shares with ``j``, and ``omega(i, j) / D(i | j)``, in ``[0, 1]``, the share
    of it spent in sets that also hold ``j``. The score is the geometric mean of the two
    shares (a persistence-weighted Ochiai coefficient), so that two features with strong
    main effects, which meet at many units with large weights without interacting, no longer
    outrank an interaction for their size alone. Conditioning on the units where the other
    feature is attached keeps a sparse mask's chance overlaps out of the share; for a dense
    first layer ``D(i | j) = T_i``. The pseudo-count ``m`` (one average feature's total) keeps
    a feature with almost no weight from turning a few chance co-occurrences into a share
    near 1. ph2n ranks pairs differently from ph2 and is not a sum over sets, so it has no
    any-order form. Cost over ph2: one sparse product ``|W1|^T diag(u) mask``,
    ``O(sum_h m_h^2)``.

    *Any order*: every ``S_k``, ``k = 2 .. m``, at every unit is a candidate; a candidate's
    strength is summed over the units where it is a top-``k`` set, with the contribution
    ``z_h a_(k)`` (NID, Tsang et al., 2018, Algorithm 1) or ``(a_(k) - a_(k+1)) reach_h``
    (ph). Candidates of strength 0 are not listed. Candidates are ranked and a candidate that
    is a strict subset of a higher-ranked candidate is dropped (the redundancy pruning of
    Tsang et al., 2018) unless ``keep_subsets``; on a dense first layer every unit's top-k
    sets are nested and the full set is often the strongest, so one row may remain.
    Identical sets are recognised exactly by their bit sets (one 64-bit word per 64
    features). Pruning compares candidates with a sparse product, ``O(sum_f c_f^2)``
    for ``c_f`` candidates holding feature ``f``; above ``2e9`` (a dense first layer on
    hundreds of features) a ConfigError says so instead of running for hours.

    Examples
    --------
    >>> import numpy as np
    >>> from topo.graph import LayeredGraph
    >>> g = LayeredGraph([np.array([[0.8, 0.4, 0.0], [0.0, 0.2, 0.6]]), np.array([[1.0, 0.5]])])
    >>> interaction_strengths(g, method="ph")
      features  strength
    0   (0, 1)       0.4
    1   (1, 2)       0.1
    2   (0, 2)       0.0

    References
    ----------
    Tsang, M., Cheng, D., Liu, Y. (2018). Detecting Statistical Interactions from Neural
    Network Weights. ICLR 2018 (NID, MLP-M, the redundancy pruning).
    The persistence scores ``ph``, ``ph2`` and ``ph2n`` are topo's own; they are not the PID
    method of Liu, Z. et al. (NeurIPS 2020), which also reads interactions from persistent
    homology but whose definitions are not published in full.
    """
    _check_options(method, order, top)
    a1, u = _first_layer_and_importance(graph, method)
    p = a1.shape[1]
    if order == "pairwise":
        matrix = _pairwise_matrix(a1, u, method)
        i, j = np.triu_indices(p, k=1)
        strength = np.abs(matrix[i, j])  # all >= 0; abs turns a -0.0 into 0.0
        # (i, j) come in lexicographic order, which a stable sort keeps among ties; the bits of
        # a non-negative float sort like the float itself, and integers sort faster
        rank = np.argsort(-strength.view(np.int64), kind="stable")
        if top is not None:
            rank = rank[:top]
        features: list[tuple[int, ...]] = list(zip(i[rank].tolist(), j[rank].tolist()))
        return _frame(features, strength[rank])
    sets, strength = _any_order_candidates(a1, u, method)
    work = float(np.sum(sets.sum(axis=0, dtype=np.float64) ** 2))
    if work > _MAX_PRUNE_WORK:
        raise ConfigError(
            f"{graph.source}: any-order interaction detection would compare {len(sets)} "
            f"candidate sets (about {work:.2g} feature overlaps, more than {_MAX_PRUNE_WORK:.0g}); "
            "use order='pairwise' or a sparser first layer")
    candidates = len(sets)
    sets, strength = _prune_subsets(sets, strength, drop=not keep_subsets)
    pruned = candidates - len(sets)
    if top is not None:
        sets, strength = sets[:top], strength[:top]
    features = [tuple(np.flatnonzero(row).tolist()) for row in sets]
    table = _frame(features, strength)
    table.attrs.update(candidates=int(candidates), pruned=int(pruned))
    return table


def interaction_auc(table: pandas.DataFrame, truth: Sequence[Sequence[int]]) -> float:
    """Pairwise ROC AUC of a ranking of feature pairs against known interactions.

    Parameters
    ----------
    table
        A pairwise table of :func:`interaction_strengths` (columns ``features``, pairs, and
        ``strength``), normally every pair (``top=None``): the AUC is over the rows given.
    truth
        The true interactions as sets of 0-based feature indices (e.g. the ground truth of
        the synthetic functions of Tsang et al. 2018, which a synthetic run keeps in its
        ``run.json`` as ``interactions``).

    Returns
    -------
    float
        The probability that a true pair is ranked above a false one, ties counting one half
        (the Mann-Whitney form of the area under the ROC curve, as
        ``sklearn.metrics.roc_auc_score`` computes it). A pair is true when both its features
        lie in one true interaction (Tsang et al. 2018, Section 5.1). NaN when the rows hold
        no true pair or no false one.

    Notes
    -----
    ``O(n log n)`` for ``n`` rows (one ranking).

    References
    ----------
    Tsang, M., Cheng, D., Liu, Y. (2018). Detecting Statistical Interactions from Neural
    Network Weights. ICLR 2018.
    """
    from scipy.stats import rankdata

    sets = [frozenset(int(f) for f in t) for t in truth]
    features = table[INTERACTION_COLUMNS[0]]
    positive = np.array([any(set(f) <= t for t in sets) for f in features], dtype=bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.asarray(table[INTERACTION_COLUMNS[1]], dtype=np.float64))
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def interaction_matrix(graph: LayeredGraph, *, method: str = "ph") -> np.ndarray:
    """Pairwise strengths as a symmetric ``(p, p)`` matrix with a zero diagonal.

    Same values as ``interaction_strengths(graph, method=method)`` without building the
    ranked table; see there for the definition, errors and complexity.
    """
    _check_options(method, "pairwise", None)
    a1, u = _first_layer_and_importance(graph, method)
    return _pairwise_matrix(a1, u, method)


def unit_importance(graph: LayeredGraph, *, method: str = "ph") -> np.ndarray:
    """Importance ``u_h`` of every first-layer unit: NID's ``z`` or the persistence reach.

    Parameters
    ----------
    graph
        A network with at least two weight layers.
    method
        ``"nid"``: ``z = 1^T |W_L| ... |W_2|`` (raw weights; Tsang et al., 2018, summed
        over outputs). ``"ph"``: ``reach_h``, the feed-forward reach (topo's definition): the
        maximum over directed paths ``h -> ... -> output`` through layers ``2 .. L`` of the
        smallest normalised ``|w|`` on the path (the bottleneck of the widest path), 0 when
        no path exists; equivalently the largest level ``t`` of the super-level filtration of
        those layers at which some output is reachable from ``h`` along edges followed in
        their forward direction only. ``"ph2"`` and ``"ph2n"``: ``reach_h ** 2``.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_out[0],)``.

    Raises
    ------
    GraphStructureError, NonFiniteWeightsError, ConfigError
        As for :func:`interaction_strengths`.

    Notes
    -----
    NID: ``L - 1`` sparse matrix-vector products, ``O(E)``. Reach: a widest-path (bottleneck)
    dynamic programme from the outputs down through the layers, ``O(E)``. topo's persistence
    score first used the widest *undirected* path instead, which may go backwards through a
    layer, as no signal can: a unit could borrow another unit's route to the output (hidden
    ``h1 -> g1`` 0.9, ``g1 -> out`` 0.01, ``h2 -> g1`` 0.9, ``h2 -> g2`` 0.05, ``g2 -> out``
    0.9 give ``h1`` 0.05 undirected, 0.01 feed-forward).

    Examples
    --------
    >>> import numpy as np
    >>> from topo.graph import LayeredGraph
    >>> w1 = np.array([[1.0], [1.0]])                  # one feature -> h1, h2
    >>> w2 = np.array([[0.9, 0.9], [0.0, 0.05]])       # (h1, h2) -> (g1, g2)
    >>> w3 = np.array([[0.01, 0.9]])                   # (g1, g2) -> out
    >>> unit_importance(LayeredGraph([w1, w2, w3]), method="ph")
    array([0.01, 0.05])

    References
    ----------
    Pollack, M. (1960). The maximum capacity through a network. Operations Research 8(5).
    """
    _check_options(method, "pairwise", None)
    return _first_layer_and_importance(graph, method)[1]


# ---------------------------------------------------------------------------- helpers
def _check_options(method: str, order: str, top: int | None) -> None:
    if method not in METHODS:
        raise ConfigError(f"unknown interaction method {method!r}; choose one of "
                          f"{', '.join(METHODS)}")
    if order not in ORDERS:
        raise ConfigError(f"unknown interaction order {order!r}; choose one of "
                          f"{', '.join(ORDERS)}")
    if order == "any" and method in _PAIRWISE_ONLY:
        raise ConfigError(f"interaction method {method!r} scores pairs only; use "
                          "order='pairwise' or another method")
    if top is not None and (isinstance(top, bool) or not isinstance(top, (int, np.integer))
                            or top < 1):
        raise ConfigError(f"top must be a positive integer, got {top!r}")


def _first_layer_and_importance(
    graph: LayeredGraph, method: str
) -> tuple[sp.csr_matrix, np.ndarray]:
    """``|W1|`` (raw for NID, normalised for ph, squared for ph2) and the importance ``u``."""
    graph = require_graph(graph)
    _require_mlp(graph)
    if graph.n_layers < 2:
        raise GraphStructureError(
            f"{graph.source}: interaction detection needs a first hidden layer, but the network "
            f"has a single layer ({graph.names[0]!r}, {graph.n_in[0]} -> {graph.n_out[0]})")
    what = f"interaction detection ({method})"
    graph.require_finite(what)
    if method == "nid":
        layers = [abs(w) for w in graph.layers]
        z = np.ones(graph.n_out[-1])
        for w in reversed(layers[1:]):
            z = w.T @ z
        return layers[0], np.asarray(z, dtype=np.float64)
    layers, _ = normalized_abs_weights(graph, what=what)
    if method in ("ph2", "ph2n"):
        # the filtration of w^2 / max w^2: same order of edges, levels squared
        layers = [w.power(2) for w in layers]
    return layers[0], _feedforward_reach(layers[1:])


def _require_mlp(graph: LayeredGraph) -> None:
    """Interactions are defined here for chains of fully-connected layers only.

    Both methods read features from the inputs of a fully-connected first layer and follow
    the weights of a chain to the outputs. A conv layer's inputs are channels whose kernel
    positions are offsets, not features, and residual streams give paths these scores do not
    define; a refusal beats an answer that reads them as if they were.
    """
    if graph.is_independent or not graph.is_chain:
        raise GraphStructureError(
            f"{graph.source}: interaction detection follows the weights of a chain of "
            "fully-connected layers from the input features to the outputs; this network "
            + ("was read as independent matrices (its wiring is unknown)"
               if graph.is_independent else "has residual streams"))
    odd = [n for n, g in zip(graph.names, graph.geometry) if not g.is_linear]
    if odd:
        raise GraphStructureError(
            f"{graph.source}: interaction detection reads input features through "
            f"fully-connected layers; layer(s) {', '.join(repr(n) for n in odd)} are "
            f"{'/'.join(sorted({g.kind for g in graph.geometry if not g.is_linear}))} layers "
            "(their inputs are channels with kernel or pixel positions, not features)")


def _feedforward_reach(upper: list[sp.csr_matrix]) -> np.ndarray:
    """Bottleneck of the widest directed path from each input unit of ``upper[0]`` to an output.

    Dynamic programming from the outputs down, one layer at a time (a layered network is a DAG
    whose paths go through the layers in order): ``r_out = +inf`` at the outputs and, for a
    layer ``W`` of shape ``(n_out, n_in)``, ``r_in[j] = max_i min(W[i, j], r_out[i])`` over
    its stored entries (0 for a unit without one). Per layer one column-grouped reduction,
    ``O(E)`` in all.
    """
    reach = np.full(upper[-1].shape[0], np.inf)
    for w in reversed(upper):
        csc = sp.csc_matrix(w)
        counts = np.diff(csc.indptr)
        through = np.minimum(np.abs(csc.data), reach[csc.indices])
        below = np.zeros(w.shape[1])
        has = counts > 0
        if through.size:
            below[has] = np.maximum.reduceat(through, csc.indptr[:-1][has])
        reach = below
    return reach


def _sorted_rows(a1: sp.csr_matrix, u: np.ndarray
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Entries with ``u_h > 0`` and ``a > 0``, each row sorted by decreasing weight.

    Returns row ids, feature ids, weights (all in that order), each entry's rank in its row and
    the start of its row in the arrays.
    """
    coo = a1.tocoo()
    keep = (coo.data > 0) & (u[coo.row] > 0)
    row, col, val = coo.row[keep].astype(np.int64), coo.col[keep].astype(np.int64), coo.data[keep]
    order = np.lexsort((col, -val, row))
    row, col, val = row[order], col[order], val[order]
    counts = np.bincount(row, minlength=a1.shape[0])
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    rank = np.arange(row.size) - starts[row]
    return row, col, val, rank, starts[row]


def _pairwise_matrix(a1: sp.csr_matrix, u: np.ndarray, method: str) -> np.ndarray:
    """The symmetric pairwise strengths of ``method`` from ``a1`` and ``u``."""
    matrix = _pairwise_min_sum(a1, u)
    if method != "ph2n":
        return matrix
    # D[i, j] = sum_h u_h a1[h, i] [a1[h, j] > 0], over the entries that the min-sum counts
    coo = a1.tocoo()
    keep = (coo.data > 0) & (u[coo.row] > 0)
    row, col = coo.row[keep], coo.col[keep]
    weighted = sp.csr_matrix((u[row] * coo.data[keep], (row, col)), shape=a1.shape)
    attached = sp.csr_matrix((np.ones(row.size), (row, col)), shape=a1.shape)
    shared = (weighted.T @ attached).toarray()
    pseudo = shared.diagonal().mean() if shared.size else 0.0
    denominator = np.sqrt((shared + pseudo) * (shared.T + pseudo))
    return np.divide(matrix, denominator, out=np.zeros_like(matrix), where=denominator > 0)


def _pairwise_min_sum(a1: sp.csr_matrix, u: np.ndarray) -> np.ndarray:
    """``M[i, j] = sum_h u_h min(a1[h, i], a1[h, j])`` for ``i != j``; ``M[i, i] = 0``."""
    p = a1.shape[1]
    row, col, val, rank, start = _sorted_rows(a1, u)
    out = np.zeros(p * p)
    contribution = u[row] * val  # the weaker of the two decides the min
    # chunks of entries holding about _CHUNK_TERMS pairs each, to bound the memory
    cum = np.cumsum(rank)
    n_chunks = int(cum[-1] // _CHUNK_TERMS) + 1 if cum.size else 0
    cuts = np.searchsorted(cum, np.arange(1, n_chunks) * _CHUNK_TERMS)
    edges = np.unique(np.concatenate([[0], cuts, [row.size]])).astype(np.int64)
    for lo, hi in zip(edges[:-1], edges[1:]):
        r = rank[lo:hi]
        total = int(r.sum())
        if total == 0:
            continue
        lower = np.repeat(np.arange(lo, hi), r)  # the weaker entry of each pair
        first = np.repeat(np.cumsum(r) - r, r)
        upper = np.repeat(start[lo:hi], r) + (np.arange(total) - first)
        out += np.bincount(col[upper] * p + col[lower], weights=contribution[lower],
                           minlength=p * p)
    m = out.reshape(p, p)
    return m + m.T


def _any_order_candidates(
    a1: sp.csr_matrix, u: np.ndarray, method: str
) -> tuple[np.ndarray, np.ndarray]:
    """Distinct top-k sets (k >= 2) as a boolean ``(n, p)`` matrix and their summed strengths."""
    p = a1.shape[1]
    row, col, val, rank, _ = _sorted_rows(a1, u)
    if method == "nid":
        score = u[row] * val
    else:
        nxt = np.zeros_like(val)
        same = np.zeros(val.size, dtype=bool)
        same[:-1] = row[1:] == row[:-1]
        nxt[:-1] = np.where(same[:-1], val[1:], 0.0)
        score = u[row] * (val - nxt)
    # exact set keys: for every 64-feature word, the OR (= sum of distinct bits) of the prefix
    n_words = (p + 63) // 64
    keys = np.zeros((row.size, n_words), dtype=np.uint64)
    row_start = np.concatenate([[True], row[1:] != row[:-1]]) if row.size else np.array([], bool)
    base = np.maximum.accumulate(np.where(row_start, np.arange(row.size), 0))
    for w in range(n_words):
        bits = np.where(col // 64 == w, np.left_shift(np.uint64(1), (col % 64).astype(np.uint64)),
                        np.uint64(0)).astype(np.uint64)
        cs = np.cumsum(bits, dtype=np.uint64)
        before = np.concatenate([[np.uint64(0)], cs[:-1]]).astype(np.uint64)
        keys[:, w] = cs - before[base]
    cand = rank >= 1
    keys, score = keys[cand], score[cand]
    if keys.shape[0] == 0:
        return np.zeros((0, p), dtype=bool), np.zeros(0)
    uniq, inverse = np.unique(keys, axis=0, return_inverse=True)
    strength = np.bincount(inverse.ravel(), weights=score, minlength=uniq.shape[0])
    sets = np.unpackbits(uniq.astype("<u8").view(np.uint8), axis=1, bitorder="little")[:, :p]
    sets = sets.astype(bool)
    keep = strength > 0
    return sets[keep], strength[keep]


def _prune_subsets(sets: np.ndarray, strength: np.ndarray,
                   drop: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """Rank candidates and (with ``drop``) drop every strict subset of a higher-ranked one."""
    if sets.shape[0] == 0:
        return sets, strength
    size = sets.sum(axis=1)
    # tie order: smaller sets first, then lexicographic by their sorted features
    lex = np.lexsort(sets.T[::-1].astype(np.int8) * -1)
    lex_rank = np.empty(sets.shape[0], dtype=np.int64)
    lex_rank[lex] = np.arange(sets.shape[0])
    order = np.lexsort((lex_rank, size, -strength))
    sets, strength, size = sets[order], strength[order], size[order]
    if not drop:
        return sets, strength
    b = sp.csr_matrix(sets.astype(np.int32))
    dropped = np.zeros(sets.shape[0], dtype=bool)
    step = max(1, _CHUNK_TERMS // max(1, sets.shape[0]))
    for lo in range(0, sets.shape[0], step):
        hi = min(lo + step, sets.shape[0])
        # overlaps of candidates lo..hi-1 (columns) with every candidate ranked above (rows)
        overlap = (b[:hi] @ b[lo:hi].T).tocsr()
        c = np.repeat(np.arange(hi), np.diff(overlap.indptr))
        r = overlap.indices + lo
        hit = (c < r) & (overlap.data == size[r]) & (size[c] > size[r])
        dropped[r[hit]] = True
    return sets[~dropped], strength[~dropped]


def _frame(features: Sequence[tuple[int, ...]], strength: np.ndarray) -> pandas.DataFrame:
    import pandas as pd

    column_features, column_strength = INTERACTION_COLUMNS
    return pd.DataFrame({column_features: pd.Series(features, dtype=object),
                         column_strength: np.asarray(strength, dtype=np.float64)})
