"""Canonical colours of hidden units: labels that do not depend on how units are numbered.

Two networks that differ only in the numbering of their hidden units (the same pixels in, the
same classes out) are the same network. NNSTD's default mode breaks ties between equally good
matchings with colours that every relabelling leaves unchanged, so that such a pair is at
distance 0 and no answer depends on unit order.

Colours come from colour refinement (1-dimensional Weisfeiler-Leman) on the layered graph:
input units start with their index (pixels are labelled), output units with their index when
they are classes, hidden units with their layer; each round a unit's colour becomes a hash of
its colour, the multiset of its in-neighbours' colours and the multiset of its
out-neighbours' colours, until no class splits. Refinement runs on both networks at once, so
equal colours mean the same thing in both.

Colour refinement alone can leave units of equal colour that are not interchangeable (regular
structures fool it). The colours are *exact* when every class of equal colour inside a hidden
layer consists of twins: units with the same in-neighbours and the same out-neighbours, which
any permutation exchanges without changing the network. Then a bijection that keeps colours
between two relabelled copies is an isomorphism. When a class is not made of twins, both
networks are labelled instead by a canonical labelling (BLISS, Junttila and Kaski 2007,
through igraph), which is exact for every structure; its colour for a unit is its canonical
position within the layer.

References
----------
B. Weisfeiler and A. Leman, "The reduction of a graph to canonical form and the algebra which
appears therein", 1968; M. Grohe, K. Kersting, M. Mladenov and P. Schweitzer, "Color
refinement and its applications", 2021. T. Junttila and P. Kaski, "Engineering an efficient
canonical labeling tool for large and sparse graphs", ALENEX 2007 (BLISS).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

__all__ = ["CanonicalColours", "canonical_colours", "mix64"]

_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_IN = np.uint64(0x2545F4914F6CDD1D)
_OUT = np.uint64(0x9FB21C651E98DF25)
_SELF = np.uint64(0xD1B54A32D192ED03)


def mix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on ``uint64`` arrays (arithmetic modulo 2**64)."""
    x = np.asarray(x, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    return x ^ (x >> np.uint64(31))


@dataclass
class CanonicalColours:
    """Colours of the hidden units of two networks.

    Attributes
    ----------
    a, b
        One ``uint64`` array per layer whose outputs are matched (every layer but the last
        in NNSTD's default mode): the colour of each output unit of that layer.
    method
        ``"refinement"`` (colour refinement, every class of equal colour made of twins) or
        ``"bliss"`` (canonical labelling).
    rounds
        Refinement rounds until no class split.
    """

    a: list[np.ndarray]
    b: list[np.ndarray]
    method: str
    rounds: int


def canonical_colours(masks_a: Sequence[sp.csr_matrix], masks_b: Sequence[sp.csr_matrix],
                      ) -> CanonicalColours:
    """Canonical colours of the hidden units of two layered networks.

    Parameters
    ----------
    masks_a, masks_b
        Binary layer structures ``(n_out, n_in)``, input side first, with the same number of
        layers, inputs and outputs. Inputs and outputs are labelled by their index.

    Returns
    -------
    CanonicalColours
        Colours of the outputs of every layer but the last. Relabelling the hidden units of
        either network permutes its colours the same way; two units of one network with the
        same colour are twins or the method is ``"bliss"``.

    Notes
    -----
    Each refinement round is two sparse products with ``uint64`` vectors (sums of hashed
    neighbour colours modulo 2**64, so a multiset becomes one number) and a hash:
    ``O(connections)``; rounds stop when the number of classes stops growing (at most the
    number of units, in practice a few more than the depth). A hash collision can only merge
    classes, never split equal ones, so it cannot break the invariance; the twin check then
    catches a merge that matters. The BLISS fallback is exponential in the worst case and
    fast on the networks met in practice.
    """
    graph_a = _Layered(masks_a)
    graph_b = _Layered(masks_b)
    colour_a, colour_b = graph_a.initial(), graph_b.initial()
    n_classes = _count(colour_a, colour_b)
    rounds = 0
    while True:
        next_a, next_b = graph_a.refine(colour_a), graph_b.refine(colour_b)
        rounds += 1
        count = _count(next_a, next_b)
        colour_a, colour_b = next_a, next_b
        if count == n_classes:
            break
        n_classes = count
    if graph_a.classes_are_twins(colour_a) and graph_b.classes_are_twins(colour_b):
        return CanonicalColours(graph_a.hidden(colour_a), graph_b.hidden(colour_b),
                                "refinement", rounds)
    return CanonicalColours(graph_a.hidden(graph_a.bliss()), graph_b.hidden(graph_b.bliss()),
                            "bliss", rounds)


# --------------------------------------------------------------------------- helpers
def _count(x: np.ndarray, y: np.ndarray) -> int:
    """Number of distinct colours in ``x`` and ``y`` together (a sort: faster here than
    ``np.unique``, whose hashing path costs more on these few thousand values)."""
    z = np.sort(np.concatenate([x, y]))
    return int(z.size and 1 + np.count_nonzero(z[1:] != z[:-1]))


class _Layered:
    """One network as a graph on all its units: inputs, hidden layers, outputs."""

    def __init__(self, masks: Sequence[sp.csr_matrix]) -> None:
        self.masks = list(masks)
        widths = [self.masks[0].shape[1]] + [m.shape[0] for m in self.masks]
        self.offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
        self.n = int(self.offsets[-1])
        src, dst = [], []
        for k, m in enumerate(self.masks):
            rows = np.repeat(np.arange(m.shape[0], dtype=np.int64), np.diff(m.indptr))
            src.append(self.offsets[k] + m.indices.astype(np.int64))
            dst.append(self.offsets[k + 1] + rows)
        s, t = np.concatenate(src), np.concatenate(dst)
        ones = np.ones(s.size, dtype=np.uint64)
        # the connections come layer by layer and row by row, so t never decreases: the
        # CSR arrays of `into` are written directly (no COO conversion)
        indptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(t, minlength=self.n), out=indptr[1:])
        self.into = sp.csr_matrix((ones, s, indptr), shape=(self.n, self.n))
        self.out_of = self.into.T.tocsr()

    def layer_of(self) -> np.ndarray:
        return np.repeat(np.arange(self.offsets.size - 1), np.diff(self.offsets))

    def initial(self) -> np.ndarray:
        layer = self.layer_of().astype(np.uint64)
        index = (np.arange(self.n) - self.offsets[:-1][self.layer_of()]).astype(np.uint64)
        last = np.uint64(self.offsets.size - 2)
        labelled = (layer == 0) | (layer == last)
        # inputs and outputs: their index in their layer; hidden units: their layer only
        colour = mix64(layer * _SELF + np.where(labelled, index + np.uint64(1), 0))
        return colour

    def refine(self, colour: np.ndarray) -> np.ndarray:
        h_in = self.into @ mix64(colour ^ _IN)
        h_out = self.out_of @ mix64(colour ^ _OUT)
        return mix64(mix64(colour ^ mix64(h_in)) + h_out * _SELF)

    def hidden(self, colour: np.ndarray) -> list[np.ndarray]:
        return [np.asarray(colour[self.offsets[k]:self.offsets[k + 1]], dtype=np.uint64)
                for k in range(1, self.offsets.size - 2)]

    def classes_are_twins(self, colour: np.ndarray) -> bool:
        """Whether units of equal colour in every hidden layer have equal neighbourhoods."""
        for k in range(1, self.offsets.size - 2):
            c = colour[self.offsets[k]:self.offsets[k + 1]]
            order = np.argsort(c, kind="stable")
            repeat = np.flatnonzero(c[order][1:] == c[order][:-1])
            if repeat.size == 0:
                continue
            first, second = order[repeat], order[repeat + 1]
            ins = self.masks[k - 1]
            outs = self.masks[k].T.tocsr()
            for m in (ins, outs):
                diff = (m[first] != m[second])
                if diff.nnz:
                    return False
        return True

    def bliss(self) -> np.ndarray:
        """Canonical position of every unit within its layer (BLISS through igraph)."""
        import igraph

        layer = self.layer_of()
        index = np.arange(self.n) - self.offsets[:-1][layer]
        last = self.offsets.size - 2
        n_in, n_out = int(self.offsets[1]), int(self.offsets[-1] - self.offsets[-2])
        # colour classes: every input and output alone, every hidden layer together
        vertex_colour = np.where(layer == 0, index, 0)
        vertex_colour = np.where((layer > 0) & (layer < last), n_in + layer - 1, vertex_colour)
        vertex_colour = np.where(layer == last, n_in + last + index, vertex_colour)
        del n_out
        coo = self.out_of.tocoo()
        g = igraph.Graph(n=self.n, edges=list(zip(coo.row.tolist(), coo.col.tolist())),
                         directed=False)
        # igraph's permutation lists the vertex that takes each canonical place (that is
        # how permute_vertices reads it); the canonical place of a vertex is its inverse
        permutation = np.asarray(g.canonical_permutation(color=vertex_colour.tolist()),
                                 dtype=np.int64)
        labelling = np.argsort(permutation)
        # rank of each unit's canonical label within its layer
        position = np.empty(self.n, dtype=np.uint64)
        for k in range(self.offsets.size - 1):
            lo, hi = self.offsets[k], self.offsets[k + 1]
            ranks = np.empty(hi - lo, dtype=np.uint64)
            ranks[np.argsort(labelling[lo:hi], kind="stable")] = np.arange(hi - lo)
            position[lo:hi] = ranks
        return mix64(position + np.uint64(0x5851F42D4C957F2D))
