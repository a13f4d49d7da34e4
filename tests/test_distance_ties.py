"""NNSTD's default mode under ties: relabelled copies at 0, optimal layers, symmetry.

Expected values come from hand computation and from an independent brute force over all
permutations of tiny layers (Python sets, itertools), never from the code under test.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import topo
from topo.graph import LayeredGraph

# ----------------------------------------------------------------------------- helpers


def relabel(masks: list[np.ndarray], perms: list[np.ndarray]) -> list[np.ndarray]:
    """Masks of the same network with hidden layer ``k``'s units renumbered by ``perms[k]``."""
    out = []
    for k, m in enumerate(masks):
        if k < len(masks) - 1:
            m = m[perms[k]]
        if k > 0:
            m = m[:, perms[k - 1]]
        out.append(m)
    return out


def graph(masks: list[np.ndarray]) -> LayeredGraph:
    # weights 1 on the connections; the structure is what NNSTD reads
    return LayeredGraph([m.astype(float) for m in masks])


def jaccard(x: set, y: set) -> float:
    union = x | y
    return len(union - (x & y)) / len(union) if union else 0.0


def in_sets(mask: np.ndarray, frame: np.ndarray | None = None) -> list[set]:
    """Incoming sets of every unit of a (n_out, n_in) mask, inputs renamed by ``frame``."""
    sets = []
    for row in mask:
        cols = np.flatnonzero(row)
        sets.append({int(frame[c]) if frame is not None else int(c) for c in cols})
    return sets


def brute_layer_optimum(sa: list[set], sb: list[set]) -> float:
    """Minimum summed cost over all matchings (unmatched units of the wider side at 1)."""
    n_a, n_b = len(sa), len(sb)
    best = np.inf
    if n_a <= n_b:
        for cols in itertools.permutations(range(n_b), n_a):
            best = min(best, sum(jaccard(sa[i], sb[j]) for i, j in enumerate(cols)))
    else:
        for rows in itertools.permutations(range(n_a), n_b):
            best = min(best, sum(jaccard(sa[i], sb[j]) for j, i in enumerate(rows)))
    return best + abs(n_a - n_b)


def frame_of(perm: np.ndarray, n_a: int, n_b: int) -> np.ndarray:
    """Index of B's units in A's frame after a matching (B's unmatched units get new ones)."""
    frame = np.empty(n_b, dtype=np.int64)
    matched = perm >= 0
    frame[perm[matched]] = np.flatnonzero(matched)
    free = np.setdiff1d(np.arange(n_b), perm[matched])
    frame[free] = n_a + np.arange(free.size)
    return frame


@st.composite
def tied_masks(draw, max_width: int = 6, max_layers: int = 4):
    """Random layered masks rich in ties: dense layers, empty, duplicate and twin units."""
    n_layers = draw(st.integers(2, max_layers))
    widths = [draw(st.integers(1, max_width)) for _ in range(n_layers + 1)]
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    masks = []
    for k in range(n_layers):
        n_out, n_in = widths[k + 1], widths[k]
        kind = draw(st.sampled_from(["random", "dense", "empty", "duplicates", "sparse"]))
        if kind == "dense":
            m = np.ones((n_out, n_in), dtype=bool)
        elif kind == "empty":
            m = np.zeros((n_out, n_in), dtype=bool)
        else:
            m = rng.random((n_out, n_in)) < (0.15 if kind == "sparse" else rng.uniform(0.2, 0.8))
            if kind == "duplicates" and n_out > 1:
                source = rng.integers(0, n_out, size=n_out)
                m = m[np.minimum(source, np.arange(n_out))]  # many rows copied from earlier ones
            blank = rng.random(n_out) < 0.25
            m[blank] = False
        masks.append(m)
    return masks


# ---------------------------------------------------------------------------- the cases
def test_hand_case_fully_tied_first_layer_is_at_zero():
    # The case: every hidden unit of the first layer reads every input, so every
    # layer-0 matching costs 0; only the true swap makes layer 1 identical, and then the
    # output layer too. The published tie-breaking gives [0, 0.25, 0.667] here.
    w0 = np.ones((4, 3))
    w1 = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=float)
    w2 = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=float)
    a = LayeredGraph([w0, w1, w2])
    swap = [1, 0, 2, 3]
    b = LayeredGraph([w0[swap], w1[:, swap], w2])
    result = topo.nnstd(a, b)
    assert list(result.per_layer) == [0.0, 0.0, 0.0]
    assert list(result.matchings[0]) == swap
    assert list(result.matchings[1]) == [0, 1, 2, 3]
    assert result.tied_units[0] == 4


def test_hand_case_reference_mode_keeps_the_published_behaviour():
    w0 = np.ones((4, 3))
    w1 = np.array([[1, 0, 0, 0], [1, 1, 0, 0], [0, 1, 1, 0], [0, 0, 1, 1]], dtype=float)
    w2 = np.array([[1, 1, 0, 0], [0, 0, 1, 1]], dtype=float)
    a = LayeredGraph([w0, w1, w2])
    b = LayeredGraph([w0[[1, 0, 2, 3]], w1[:, [1, 0, 2, 3]], w2])
    # SciPy's solver keeps the identity at layer 0 (all costs 0). Layer 1 then compares
    # A's in-sets {0}, {0,1}, {1,2}, {2,3} with B's {1}, {0,1}, {0,2}, {2,3}; the only
    # matching of cost 1 is A0-B2 (1/2), A1-B1, A2-B0 (1/2), A3-B3: 1/4 per unit. In that
    # frame B's outputs read {1,2} and {0,3} where A's read {0,1} and {2,3}: every pair
    # costs 2/3, so the output layer is at 2/3.
    assert topo.nnstd(a, b, reference=True).per_layer == pytest.approx([0, 0.25, 2 / 3])


def test_twenty_unit_network_with_dense_first_layer_against_relabelled_copies():
    rng = np.random.default_rng(0)
    for _ in range(10):
        masks = [np.ones((15, 20), bool), rng.random((12, 15)) < 0.3, rng.random((4, 12)) < 0.5]
        perms = [rng.permutation(15), rng.permutation(12)]
        result = topo.nnstd(graph(masks), graph(relabel(masks, perms)))
        assert np.array_equal(result.per_layer, np.zeros(3))


def test_one_dimensional_refinement_cannot_tell_but_canonical_labelling_can():
    # First and last layers dense: hidden units are told apart only by the middle layer, a
    # 2-regular bipartite graph (a 12-cycle through 6 + 6 units). Colour refinement gives
    # every hidden unit of a layer the same colour although they are not interchangeable,
    # so the exact canonical labelling (BLISS) decides.
    w1 = np.zeros((6, 6), bool)
    for i in range(6):
        w1[i, i] = w1[i, (i + 1) % 6] = True
    masks = [np.ones((6, 3), bool), w1, np.ones((2, 6), bool)]
    rng = np.random.default_rng(1)
    for _ in range(5):
        perms = [rng.permutation(6), rng.permutation(6)]
        result = topo.nnstd(graph(masks), graph(relabel(masks, perms)))
        assert np.array_equal(result.per_layer, np.zeros(3))
        assert result.tie_labels == "bliss"


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(masks=tied_masks(), data=st.data())
def test_relabelled_copy_is_at_zero_in_every_layer(masks, data):
    seed = data.draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(m.shape[0]) for m in masks[:-1]]
    result = topo.nnstd(graph(masks), graph(relabel(masks, perms)))
    assert np.array_equal(result.per_layer, np.zeros(len(masks)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=tied_masks(max_width=5, max_layers=3), data=st.data())
def test_every_layer_is_the_optimum_given_the_previous_matching(a, data):
    # B: the same widths as A, its own random structure with ties of its own
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    b = [rng.random(m.shape) < rng.uniform(0.1, 0.9) for m in a]
    b[0][rng.random(b[0].shape[0]) < 0.3] = False
    result = topo.nnstd(graph(a), graph(b))
    frame = None
    for k in range(len(a) - 1):
        sa, sb = in_sets(a[k]), in_sets(b[k], frame)
        best = brute_layer_optimum(sa, sb)
        perm = result.matchings[k]
        chosen = sum(jaccard(sa[i], sb[j]) for i, j in enumerate(perm) if j >= 0)
        assert chosen + abs(len(sa) - len(sb)) == pytest.approx(best, abs=1e-12)
        assert result.per_layer[k] == pytest.approx(best / max(len(sa), len(sb)), abs=1e-12)
        frame = frame_of(perm, len(sa), len(sb))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(a=tied_masks(max_width=6, max_layers=3), data=st.data())
def test_symmetric_and_blind_to_unit_numbering(a, data):
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    b = [rng.random(m.shape) < rng.uniform(0.1, 0.9) for m in a]
    ga, gb = graph(a), graph(b)
    base = topo.nnstd(ga, gb).per_layer
    assert topo.nnstd(gb, ga).per_layer == pytest.approx(base, abs=1e-12)
    perms_a = [rng.permutation(m.shape[0]) for m in a[:-1]]
    perms_b = [rng.permutation(m.shape[0]) for m in b[:-1]]
    shuffled = topo.nnstd(graph(relabel(a, perms_a)), graph(relabel(b, perms_b))).per_layer
    assert shuffled == pytest.approx(base, abs=1e-12)


def test_different_hidden_widths_with_ties_are_symmetric_and_optimal():
    rng = np.random.default_rng(4)
    a = [np.ones((5, 4), bool), rng.random((3, 5)) < 0.5, rng.random((2, 3)) < 0.6]
    b = [np.ones((3, 4), bool), rng.random((4, 3)) < 0.5, rng.random((2, 4)) < 0.6]
    ab, ba = topo.nnstd(graph(a), graph(b)), topo.nnstd(graph(b), graph(a))
    assert ab.per_layer == pytest.approx(ba.per_layer, abs=1e-12)
    # layer 0: every pair of dense units costs 0; two of A's five units stay unmatched
    assert ab.per_layer[0] == pytest.approx(2 / 5)


def test_wide_relabelled_copy_with_dense_layer_duplicates_and_empty_units():
    rng = np.random.default_rng(8)
    w1 = rng.random((420, 400)) < 0.01
    w1[rng.integers(0, 420, 60)] = w1[rng.integers(0, 420)]  # a class of duplicate units
    w1[rng.random(420) < 0.05] = False  # units without inputs
    masks = [np.ones((400, 30), bool), w1, rng.random((5, 420)) < 0.3]
    perms = [rng.permutation(400), rng.permutation(420)]
    result = topo.nnstd(graph(masks), graph(relabel(masks, perms)))
    assert np.array_equal(result.per_layer, np.zeros(3))
    assert result.tied_units[0] == 400
