"""NNSTD over unit sets: the pieces around the per-layer solver for conv and residual networks.

:func:`topo.nnstd` matches *unit sets*, not layers (see :mod:`topo.distance`). This module
holds what that needs beyond one layer's cost and assignment:

- :func:`check_comparable`: two networks NNSTD can compare (same wiring and layer geometry,
  same input sets and output set);
- :func:`matching_plan`: the order in which sets are matched and which layers' costs each
  matching is solved on;
- :func:`combined_cost`: the summed Jaccard costs of several layers writing one set, as one
  layer cost (their mean, so that every pair outside all similarity graphs still costs 1);
- :func:`pair_costs`: the Jaccard distance of given unit pairs of one layer;
- :class:`SetColours`: canonical colours of the units of every set, from colour refinement of
  both networks' whole unit-set graphs (element-level: a connection is labelled by its kernel
  position), which reduce exactly to :mod:`topo.canonical`'s colours for a chain of
  fully-connected layers.

Nothing here opens a file or solves an assignment; :mod:`topo.distance` does the rest.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from topo.assignment import LayerCost
from topo.canonical import _IN, _OUT, _SELF, mix64
from topo.errors import ConfigError, IncompatibleGraphsError
from topo.graph import LayeredGraph

__all__ = ["MatchingPlan", "matching_plan", "check_comparable", "combined_cost", "pair_costs",
           "outgoing_layout", "SetColours"]


@dataclass(frozen=True)
class MatchingPlan:
    """Which unit sets are matched, in which order, on which layers.

    Attributes
    ----------
    order
        The sets whose matching is solved, in the order they are solved.
    contributors
        For every solved set, the layers whose summed cost its matching minimises.
    in_place
        Sets kept in place (the inputs; the output set in NNSTD's default mode).
    """

    order: list[int]
    contributors: dict[int, list[int]]
    in_place: list[int]


def matching_plan(reads: Sequence[int], writes: Sequence[int], in_place: Sequence[int]
                  ) -> MatchingPlan:
    """The order of the set matchings and the layers each one is solved on.

    Parameters
    ----------
    reads, writes
        The unit set every layer reads and writes, in forward order.
    in_place
        Sets not matched (their units keep their indices).

    Returns
    -------
    MatchingPlan

    Notes
    -----
    Layers are visited in forward order; a set is matched when it is first read (sets that
    no layer reads, at the end, by number). Its matching is solved on the summed cost of
    every layer that writes it and whose own read set is matched by then. A writer whose
    read set is not (the second convolution of a residual block, which reads a set computed
    from this very stream) is evaluated later under the fixed matching. The first writer of
    a set always comes before its first reader, so every matched set has at least one such
    layer. For a chain, set ``k + 1`` is matched when layer ``k + 1`` reads it, on layer
    ``k`` alone: Liu et al.'s order.
    """
    matched = set(int(s) for s in in_place)
    order: list[int] = []
    contributors: dict[int, list[int]] = {}

    def solve(unit_set: int) -> None:
        layers = [j for j, w in enumerate(writes) if w == unit_set and reads[j] in matched]
        contributors[unit_set] = layers
        matched.add(unit_set)
        order.append(unit_set)

    for r in reads:
        if r not in matched:
            solve(r)
    for s in sorted(set(writes) - matched):
        solve(s)
    return MatchingPlan(order, contributors, sorted(set(int(s) for s in in_place)))


def check_comparable(a: LayeredGraph, b: LayeredGraph, reference: bool) -> None:
    """Refuse two networks NNSTD cannot compare, saying why.

    Raises
    ------
    IncompatibleGraphsError
        Different numbers of layers, wiring, layer kinds, kernel shapes or groups, input
        widths, or output widths (default mode).
    ConfigError
        ``reference=True`` for a network that is not a chain of fully-connected layers.
    """
    where = f"{a.source} vs {b.source}"
    if reference:
        raise ConfigError(
            f"{where}: reference=True follows the published implementation, which compares "
            "chains of fully-connected layers; use the default mode for conv layers, "
            "residual streams or independent matrices")
    if a.n_layers != b.n_layers:
        raise IncompatibleGraphsError(
            f"{where}: {a.n_layers} layers against {b.n_layers}; NNSTD compares networks "
            "with the same number of layers")
    if (a.wiring.reads, a.wiring.writes, a.is_independent) != \
            (b.wiring.reads, b.wiring.writes, b.is_independent):
        raise IncompatibleGraphsError(
            f"{where}: the two networks are wired differently (unit sets read "
            f"{list(a.reads)} / {list(b.reads)}, written {list(a.writes)} / {list(b.writes)})")
    for k, (ga, gb) in enumerate(zip(a.geometry, b.geometry)):
        if (ga.kind, ga.kernel_shape, ga.groups) != (gb.kind, gb.kernel_shape, gb.groups):
            raise IncompatibleGraphsError(
                f"{where}: layer {k} ({a.names[k]!r}) is {ga.describe()} in one network and "
                f"{gb.describe()} in the other")
    for s in a.wiring.input_sets:
        if a.set_sizes[s] != b.set_sizes[s]:
            raise IncompatibleGraphsError(
                f"{where}: {a.set_sizes[s]} inputs against {b.set_sizes[s]} (unit set {s}); "
                "the input layers must match")
    if not a.is_independent and a.set_sizes[a.output_set] != b.set_sizes[b.output_set]:
        raise IncompatibleGraphsError(
            f"{where}: {a.set_sizes[a.output_set]} outputs against "
            f"{b.set_sizes[b.output_set]}; the output layers must match")


def combined_cost(costs: Sequence[LayerCost]) -> LayerCost:
    """The mean of the costs of several layers writing one set, as one layer cost.

    Minimising the mean minimises the sum; every pair outside all similarity graphs has mean
    cost 1, as one layer's cost requires. All costs must be dense, or all sparse.
    """
    if len(costs) == 1:
        return costs[0]
    n_a, n_b, w = costs[0].n_a, costs[0].n_b, len(costs)
    if costs[0].dense is not None:
        total = np.zeros((n_a, n_b))
        for c in costs:
            total += c.dense
        none = np.zeros(0, dtype=np.int64)
        return LayerCost(n_a, n_b, none, none, np.zeros(0), dense=total / w)
    keys = np.concatenate([c.rows.astype(np.int64) * n_b + c.cols for c in costs])
    deficit = np.concatenate([c.values - 1.0 for c in costs])
    unique, inverse = np.unique(keys, return_inverse=True)
    values = 1.0 + np.bincount(inverse, weights=deficit, minlength=unique.size) / w
    return LayerCost(n_a, n_b, unique // n_b, unique % n_b, values)


def pair_costs(mask_a: sp.csr_matrix, mask_b: sp.csr_matrix, rows_a: np.ndarray,
               rows_b: np.ndarray, col_map: np.ndarray, n_cols: int) -> np.ndarray:
    """Jaccard distance of the incoming sets of unit ``rows_a[t]`` of A and ``rows_b[t]`` of B.

    ``col_map`` puts B's matrix columns in A's frame of ``n_cols`` columns. The distance is
    ``(U - I) / U`` in float64 from the integer counts (0 when both sets are empty), the
    value every other NNSTD cost uses.
    """
    a = mask_a[np.asarray(rows_a, dtype=np.int64)]
    b = mask_b[np.asarray(rows_b, dtype=np.int64)]
    wide_a = sp.csr_matrix((np.ones(a.nnz, dtype=np.int8), a.indices, a.indptr),
                           shape=(a.shape[0], n_cols))
    moved = sp.csr_matrix((np.ones(b.nnz, dtype=np.int8), col_map[b.indices], b.indptr),
                          shape=(b.shape[0], n_cols))
    moved.has_sorted_indices = False
    moved.sort_indices()
    inter = np.diff(wide_a.multiply(moved).tocsr().indptr).astype(np.float64)
    union = np.diff(a.indptr) + np.diff(b.indptr) - inter
    edit = union - inter
    return np.divide(edit, union, out=np.zeros_like(edit), where=union > 0)


def outgoing_layout(mask: sp.csr_matrix, positions: int) -> sp.csr_matrix:
    """A layer's structure with its output side spread over kernel positions.

    Element ``(j, u * positions + p)`` of the ``(n_out, n_in * positions)`` layer becomes
    ``(j * positions + p, u)``: shape ``(n_out * positions, n_in)``, so that column ``u``
    lists input unit ``u``'s outgoing connections as (output unit, position) pairs. With
    one position per unit it is the layer itself.
    """
    if positions == 1:
        return mask
    coo = mask.tocoo()
    cols = coo.col.astype(np.int64)
    out = sp.csr_matrix((coo.data, (coo.row.astype(np.int64) * positions + cols % positions,
                                    cols // positions)),
                        shape=(mask.shape[0] * positions, mask.shape[1] // positions))
    out.sort_indices()
    return out


class SetColours:
    """Canonical colours of the units of both networks, by unit set, computed on first use.

    Parameters
    ----------
    a, b
        The two networks (same wiring and geometry).
    labelled
        Sets whose units are labelled by their index (the network inputs; the output set
        when kept in place).

    Notes
    -----
    Colour refinement runs on each network's unit-set graph: one node per unit of every set,
    one edge per connection (kernel element) from the unit of the read set to the unit of
    the write set, labelled by the element's kernel position (and by its layer where two
    layers join the same pair of sets). Labelled units start from their index, every other
    unit from its set; each round a unit's colour becomes a hash of its colour and of the
    multisets of (neighbour colour, edge label) in and out, until no class splits. Equal
    colours are checked to be twins (the same labelled neighbourhoods); otherwise BLISS
    labels each network canonically, on a graph where every connection is a path through two
    extra nodes coloured by its label and its direction (a chain without labels: the plain
    graph, whose sets already give every edge its direction). With one position per unit
    and a chain, the labels are all 0 and every formula is :mod:`topo.canonical`'s, so the
    colours are its colours.
    """

    def __init__(self, a: LayeredGraph, b: LayeredGraph, labelled: Sequence[int]) -> None:
        self._args = (a, b, sorted(set(int(s) for s in labelled)))
        self._colours: tuple[list[np.ndarray], list[np.ndarray]] | None = None
        self.method: str | None = None

    def of_set(self, unit_set: int) -> tuple[np.ndarray, np.ndarray]:
        """Colours (``uint64``) of A's and B's units of ``unit_set``."""
        if self._colours is None:
            self._compute()
        assert self._colours is not None
        return self._colours[0][unit_set], self._colours[1][unit_set]

    def _compute(self) -> None:
        a, b, labelled = self._args
        ga, gb = _SetGraph(a, labelled), _SetGraph(b, labelled)
        ca, cb = ga.initial(), gb.initial()
        n_classes = _count(ca, cb)
        while True:
            na, nb = ga.refine(ca), gb.refine(cb)
            count = _count(na, nb)
            ca, cb = na, nb
            if count == n_classes:
                break
            n_classes = count
        if ga.classes_are_twins(ca) and gb.classes_are_twins(cb):
            self.method = "refinement"
        else:
            self.method = "bliss"
            ca, cb = ga.bliss(), gb.bliss()
        self._colours = (ga.by_set(ca), gb.by_set(cb))


# --------------------------------------------------------------------------- helpers
def _count(x: np.ndarray, y: np.ndarray) -> int:
    return int(np.unique(np.concatenate([x, y])).size)


class _SetGraph:
    """One network as a graph on the units of all its sets, edges labelled by position."""

    def __init__(self, g: LayeredGraph, labelled: list[int]) -> None:
        self.g = g
        self.sizes = np.asarray(g.set_sizes, dtype=np.int64)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(np.int64)
        self.n = int(self.offsets[-1])
        self.labelled = labelled
        pairs = list(zip(g.reads, g.writes))
        shared = {p for p in pairs if pairs.count(p) > 1}
        src, dst, label = [], [], []
        max_positions = max(g.positions)
        for k, m in enumerate(g.masks()):
            p = g.positions[k]
            rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
            cols = m.indices.astype(np.int64)
            src.append(self.offsets[g.reads[k]] + cols // p)
            dst.append(self.offsets[g.writes[k]] + rows)
            layer_part = (k + 1) * max_positions if pairs[k] in shared else 0
            label.append(cols % p + layer_part)
        self.src, self.dst = np.concatenate(src), np.concatenate(dst)
        self.label = np.concatenate(label)
        self.salt = mix64(self.label.astype(np.uint64))
        self.n_labels = int(self.label.max(initial=0)) + 1

    def set_of(self) -> np.ndarray:
        return np.repeat(np.arange(self.sizes.size), self.sizes)

    def initial(self) -> np.ndarray:
        unit_set = self.set_of()
        index = (np.arange(self.n) - self.offsets[:-1][unit_set]).astype(np.uint64)
        is_labelled = np.isin(unit_set, self.labelled)
        return mix64(unit_set.astype(np.uint64) * _SELF
                     + np.where(is_labelled, index + np.uint64(1), np.uint64(0)))

    def refine(self, colour: np.ndarray) -> np.ndarray:
        h_in = np.zeros(self.n, dtype=np.uint64)
        h_out = np.zeros(self.n, dtype=np.uint64)
        np.add.at(h_in, self.dst, mix64(colour[self.src] ^ _IN ^ self.salt))
        np.add.at(h_out, self.src, mix64(colour[self.dst] ^ _OUT ^ self.salt))
        return mix64(mix64(colour ^ mix64(h_in)) + h_out * _SELF)

    def by_set(self, colour: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(colour[self.offsets[s]:self.offsets[s + 1]], dtype=np.uint64)
                for s in range(self.sizes.size)]

    def classes_are_twins(self, colour: np.ndarray) -> bool:
        """Whether units of equal colour in every unlabelled set have equal neighbourhoods."""
        width = self.n * self.n_labels
        ones = np.ones(self.src.size, dtype=np.int32)
        ins = sp.csr_matrix((ones, (self.dst, self.src * self.n_labels + self.label)),
                            shape=(self.n, width))
        outs = sp.csr_matrix((ones, (self.src, self.dst * self.n_labels + self.label)),
                             shape=(self.n, width))
        for s in range(self.sizes.size):
            if s in self.labelled:
                continue
            lo = self.offsets[s]
            c = colour[lo:self.offsets[s + 1]]
            order = np.argsort(c, kind="stable")
            repeat = np.flatnonzero(c[order][1:] == c[order][:-1])
            if repeat.size == 0:
                continue
            first, second = lo + order[repeat], lo + order[repeat + 1]
            for m in (ins, outs):
                if (m[first] != m[second]).nnz:
                    return False
        return True

    def bliss(self) -> np.ndarray:
        """Canonical position of every unit within its set (BLISS through igraph)."""
        import igraph

        unit_set = self.set_of()
        index = np.arange(self.n) - self.offsets[:-1][unit_set]
        vertex_colour = self._vertex_colours(unit_set, index)
        if self.n_labels == 1 and self.g.is_chain:
            # a chain's edges all go from one set to the next: the sets' colours give the
            # direction, so the plain undirected graph is exact (topo.canonical's graph)
            pattern = sp.csr_matrix((np.ones(self.src.size, dtype=np.int8),
                                     (self.src, self.dst)), shape=(self.n, self.n)).tocoo()
            edges = list(zip(pattern.row.tolist(), pattern.col.tolist()))
            n_vertices = self.n
        else:
            # every connection becomes a path unit - tail - head - unit whose two inner
            # nodes carry the connection's label and its direction (edges inside a stream,
            # or from a stream back into it, would otherwise lose their direction)
            m = self.src.size
            tail = self.n + np.arange(m)
            head = self.n + m + np.arange(m)
            edges = (list(zip(self.src.tolist(), tail.tolist()))
                     + list(zip(tail.tolist(), head.tolist()))
                     + list(zip(head.tolist(), self.dst.tolist())))
            top = int(vertex_colour.max(initial=-1)) + 1
            vertex_colour = np.concatenate([vertex_colour, top + 2 * self.label,
                                            top + 2 * self.label + 1])
            n_vertices = self.n + 2 * m
        g = igraph.Graph(n=n_vertices, edges=edges, directed=False)
        permutation = np.asarray(g.canonical_permutation(color=vertex_colour.tolist()),
                                 dtype=np.int64)
        labelling = np.argsort(permutation)[:self.n]
        position = np.empty(self.n, dtype=np.uint64)
        for s in range(self.sizes.size):
            lo, hi = self.offsets[s], self.offsets[s + 1]
            ranks = np.empty(hi - lo, dtype=np.uint64)
            ranks[np.argsort(labelling[lo:hi], kind="stable")] = np.arange(hi - lo)
            position[lo:hi] = ranks
        return mix64(position + np.uint64(0x5851F42D4C957F2D))

    def _vertex_colours(self, unit_set: np.ndarray, index: np.ndarray) -> np.ndarray:
        """BLISS's vertex colours: every labelled unit alone, every other set together."""
        if self.g.is_chain and self.labelled == [0, self.sizes.size - 1]:
            # topo.canonical's numbering for a chain, so that the labelling is its labelling
            n_in, last = int(self.sizes[0]), self.sizes.size - 1
            colour = np.where(unit_set == 0, index, n_in + unit_set - 1)
            return np.where(unit_set == last, n_in + last + index, colour)
        is_labelled = np.isin(unit_set, self.labelled)
        n_labelled = int(is_labelled.sum())
        colour = np.empty(self.n, dtype=np.int64)
        colour[is_labelled] = np.arange(n_labelled)
        colour[~is_labelled] = n_labelled + unit_set[~is_labelled]
        return colour
