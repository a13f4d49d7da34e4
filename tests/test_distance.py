"""NNSTD (Liu et al. 2020): definition, matchings, published values, distance matrices."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

import topo
from topo.distance import NNSTDResult, jaccard_cost, nnstd
from topo.errors import IncompatibleGraphsError
from topo.graph import LayeredGraph

PUBLISHED = Path(__file__).resolve().parents[2] / "shared" / "external" / "nnstd-set-topologies"
needs_published = pytest.mark.skipif(not PUBLISHED.is_dir(),
                                     reason="published NNSTD topologies not available")


# ----------------------------------------------------------------------------- helpers
def random_net(widths, density, seed, names=None) -> LayeredGraph:
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        mask = rng.random((n_out, n_in)) < density
        layers.append(np.where(mask, rng.normal(size=mask.shape) + 3.0, 0.0))
    return LayeredGraph(layers, names=names)


def permute_hidden(g: LayeredGraph, seed: int) -> tuple[LayeredGraph, list[np.ndarray]]:
    """The same network with every hidden layer's units relabelled by a random permutation."""
    rng = np.random.default_rng(seed)
    perms = [rng.permutation(n) for n in g.n_out[:-1]]
    layers = []
    for k, w in enumerate(g.layers):
        if k < g.n_layers - 1:
            w = w[perms[k]]
        if k > 0:
            w = w[:, perms[k - 1]]
        layers.append(w)
    return LayeredGraph(layers, names=g.names), perms


def in_sets(layer_rows: np.ndarray) -> list[np.ndarray]:
    """Incoming-neighbour index arrays of a dense (n_in, n_out) Keras-layout matrix."""
    return [np.nonzero(layer_rows[:, j])[0] for j in range(layer_rows.shape[1])]


def published_edit_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Normalised edit distance of two neighbour sets, as the published code states it."""
    if len(a) == 0 and len(b) == 0:
        return 0
    common = np.intersect1d(a, b)
    if common.shape[0] == 0:
        return 1
    edit = (len(a) - len(common)) + (len(b) - len(common))
    return edit / np.union1d(a, b).shape[0]


def published_nnstd(weights_a: list[np.ndarray], weights_b: list[np.ndarray]) -> np.ndarray:
    """The published algorithm, pair by pair, on dense (n_in, n_out) matrices.

    Layer by layer: cost of every pair of output units, Hungarian matching, cost / n_out;
    the next layer of B has its input rows re-ordered by the matching just found.
    """
    out = np.zeros(len(weights_a))
    cols = None
    for k, (wa, wb) in enumerate(zip(weights_a, weights_b)):
        wb = wb.copy() if cols is None else wb[cols, :]
        sa, sb = in_sets(wa), in_sets(wb)
        cost = np.array([[published_edit_distance(x, y) for y in sb] for x in sa])
        rows, cols = linear_sum_assignment(cost)
        out[k] = cost[rows, cols].sum() / wa.shape[1]
    return out


def keras(g: LayeredGraph) -> list[np.ndarray]:
    return [(w.toarray() != 0).astype(np.float64).T for w in g.layers]


# ---------------------------------------------------------------------- definition
@pytest.mark.parametrize("reference", [False, True])
def test_identical_networks_are_at_distance_zero(reference):
    g = random_net([20, 15, 12, 5], 0.3, seed=0)
    result = nnstd(g, g.copy(), reference=reference)
    assert np.array_equal(result.per_layer, np.zeros(3))
    assert result.distance == 0.0


@pytest.mark.parametrize("reference", [False, True])
def test_hidden_units_permuted_gives_zero_in_every_layer(reference):
    g = random_net([30, 25, 20, 6], 0.25, seed=1)
    h, perms = permute_hidden(g, seed=2)
    result = nnstd(g, h, reference=reference)
    assert np.allclose(result.per_layer, 0.0, atol=1e-15)
    # where A's units have distinct in-sets the matching undoes the relabelling
    inverse = np.argsort(perms[0])
    assert np.array_equal(result.matchings[0], inverse)


def network_with_tied_units(seed: int) -> LayeredGraph:
    """20-12-10-3 network whose hidden units 1, 4, 7 and 9 have no inputs (tied in layer 0)."""
    rng = np.random.default_rng(seed)
    w0 = (rng.random((12, 20)) < 0.3).astype(float)
    w0[[1, 4, 7, 9]] = 0.0
    w1 = (rng.random((10, 12)) < 0.4).astype(float)
    w2 = (rng.random((3, 10)) < 0.5).astype(float)
    return LayeredGraph([w0, w1, w2])


@pytest.mark.parametrize("seed", range(8))
def test_tied_units_are_matched_by_their_outputs(seed):
    # Units without inputs cost the same against every partner; which of them is matched to
    # which decides the next layer. The default mode resolves the tie by the units' outputs,
    # so a relabelled copy is at distance 0 in every layer.
    g = network_with_tied_units(0)
    h, _ = permute_hidden(g, seed)
    assert np.array_equal(nnstd(g, h).per_layer, np.zeros(3))


@pytest.mark.parametrize("seed", range(3))
def test_every_matching_is_optimal_for_its_layer(seed):
    # tie-breaking may only choose among optimal matchings: recompute each matched layer's
    # cost in the frame given by the previous matching and compare with the optimum
    a = network_with_tied_units(seed)
    b = network_with_tied_units(seed + 100)
    result = nnstd(a, b)
    sets_b_frame = None
    for k in range(2):
        wa, wb = keras(a)[k], keras(b)[k]
        if sets_b_frame is not None:
            wb = wb[sets_b_frame, :]
        cost = np.array([[published_edit_distance(x, y) for y in in_sets(wb)]
                         for x in in_sets(wa)])
        rows, cols = linear_sum_assignment(cost)
        perm = result.matchings[k]
        assert cost[np.arange(len(perm)), perm].sum() == pytest.approx(cost[rows, cols].sum(),
                                                                       abs=1e-12)
        assert result.per_layer[k] == pytest.approx(cost[rows, cols].sum() / len(perm))
        sets_b_frame = perm


def test_single_layer_with_disjoint_in_sets_is_at_distance_one():
    a = np.zeros((4, 10))
    b = np.zeros((4, 10))
    a[:, :5] = 1.0
    b[:, 5:] = 1.0
    for reference in (False, True):
        assert nnstd(LayeredGraph([a]), LayeredGraph([b]), reference=reference).per_layer[0] \
            == 1.0


def test_hand_computed_single_layer():
    # in-sets: A = {0,1}, {2}; B = {1,2}, {0,1}
    # cost: A0-B0 = 2/3, A0-B1 = 0, A1-B0 = 1/2, A1-B1 = 1
    a = LayeredGraph([np.array([[1, 1, 0], [0, 0, 1]], dtype=float)])
    b = LayeredGraph([np.array([[0, 1, 1], [1, 1, 0]], dtype=float)])
    matched = nnstd(a, b, reference=True)
    assert matched.per_layer[0] == pytest.approx((0 + 1 / 2) / 2)
    assert list(matched.matchings[0]) == [1, 0]
    in_place = nnstd(a, b)  # output units are classes: A0-B0, A1-B1
    assert in_place.per_layer[0] == pytest.approx((2 / 3 + 1) / 2)
    assert in_place.matchings == [None]


def test_next_layer_is_compared_after_reindexing_by_the_matching():
    # layer 0 as in the hand-computed case, matching B1 -> A0 and B0 -> A1;
    # layer 1: A's output reads hidden 0, B's output reads hidden 1 = A's hidden 0.
    a = LayeredGraph([np.array([[1, 1, 0], [0, 0, 1]], dtype=float), np.array([[1.0, 0.0]])])
    b = LayeredGraph([np.array([[0, 1, 1], [1, 1, 0]], dtype=float), np.array([[0.0, 1.0]])])
    result = nnstd(a, b)
    assert result.per_layer == pytest.approx([0.25, 0.0])
    assert result.distance == pytest.approx(0.125)


def test_different_hidden_widths_cost_one_per_unmatched_unit():
    # A hidden {0}, {1}; B hidden {0}, {1}, {2}: two perfect pairs, one B unit left: 1/3.
    # Output: A reads {0, 1}; B reads {0, 1, 2} whose unit 2 has no partner: 1 - 2/3.
    a = LayeredGraph([np.array([[1, 0, 0], [0, 1, 0]], dtype=float), np.array([[1.0, 1.0]])])
    b = LayeredGraph([np.eye(3), np.array([[1.0, 1.0, 1.0]])])
    ab, ba = nnstd(a, b), nnstd(b, a)
    assert ab.per_layer == pytest.approx([1 / 3, 1 / 3])
    assert ba.per_layer == pytest.approx([1 / 3, 1 / 3])
    assert list(ab.matchings[0]) == [0, 1]
    assert sorted(ba.matchings[0]) == [-1, 0, 1]


def test_symmetric_for_random_networks_of_different_widths():
    a = random_net([16, 12, 9, 4], 0.35, seed=3)
    b = random_net([16, 10, 11, 4], 0.35, seed=4)
    assert nnstd(a, b).per_layer == pytest.approx(nnstd(b, a).per_layer, abs=1e-12)


def test_units_without_inputs_and_empty_layers():
    empty = LayeredGraph([sp.csr_matrix((3, 4)), sp.csr_matrix((2, 3))])
    other_empty = LayeredGraph([sp.csr_matrix((3, 4)), sp.csr_matrix((2, 3))])
    assert np.array_equal(nnstd(empty, other_empty).per_layer, [0.0, 0.0])
    full = LayeredGraph([np.ones((3, 4)), np.ones((2, 3))])
    # every unit of the empty network against a unit with inputs: cost 1
    assert np.array_equal(nnstd(empty, full).per_layer, [1.0, 1.0])
    assert np.array_equal(nnstd(full, empty, reference=True).per_layer, [1.0, 1.0])


@pytest.mark.parametrize("seed", range(4))
def test_reference_mode_equals_the_published_pairwise_algorithm(seed):
    a = random_net([14, 11, 11, 5], 0.2, seed=10 + seed)
    b = random_net([14, 11, 11, 5], 0.2, seed=20 + seed)
    expected = published_nnstd(keras(a), keras(b))
    assert np.abs(nnstd(a, b, reference=True).per_layer - expected).max() <= 1e-12


def test_jaccard_cost_against_set_arithmetic():
    rng = np.random.default_rng(5)
    ma = sp.csr_matrix(rng.random((7, 9)) < 0.3)
    mb = sp.csr_matrix(rng.random((5, 6)) < 0.4)
    col_map = np.array([8, 0, 3, 10, 2, 5])  # B's inputs in a frame of 11 columns
    cost = jaccard_cost(ma, mb, col_map, 11)
    for i in range(7):
        sa = set(np.nonzero(ma[[i]].toarray()[0])[0])
        for j in range(5):
            sb = {int(col_map[c]) for c in np.nonzero(mb[[j]].toarray()[0])[0]}
            union = sa | sb
            want = len(union - (sa & sb)) / len(union) if union else 0.0
            assert cost[i, j] == pytest.approx(want, abs=1e-15)


def test_to_frame_has_one_row_per_layer():
    a = random_net([8, 6, 3], 0.5, seed=6, names=["fc1", "fc2"])
    frame = nnstd(a, random_net([8, 6, 3], 0.5, seed=7)).to_frame()
    assert list(frame["name"]) == ["fc1", "fc2"]
    assert list(frame["layer"]) == [0, 1]
    assert {"nnstd", "n_out_a", "n_out_b", "matched"} <= set(frame.columns)
    assert list(frame["matched"]) == [True, False]


def test_public_name_is_the_function():
    assert topo.nnstd is nnstd
    assert topo.NNSTDResult is NNSTDResult


@pytest.mark.parametrize("widths_b, message", [
    ([9, 6, 3], "inputs"),
    ([8, 6, 4], "outputs"),
    ([8, 3], "layers"),
])
def test_incompatible_networks_are_a_clear_error(widths_b, message):
    a = random_net([8, 6, 3], 0.5, seed=8)
    a.metadata["source"] = "netA"
    with pytest.raises(IncompatibleGraphsError, match=message) as info:
        nnstd(a, random_net(widths_b, 0.5, seed=9))
    assert "netA" in str(info.value)


def test_reference_mode_needs_equal_hidden_widths():
    with pytest.raises(IncompatibleGraphsError, match="reference"):
        nnstd(random_net([8, 6, 3], 0.5, 1), random_net([8, 5, 3], 0.5, 2), reference=True)


# ------------------------------------------------------------ published topologies
def _published(net: str, epoch: int) -> Path:
    return PUBLISHED / f"e5_s0_{net}" / f"epoch_{epoch:03d}"


def _published_keras(folder: Path) -> list[np.ndarray]:
    """Binary (n_in, n_out) matrices read with scipy alone, bias row dropped."""
    return [(sp.load_npz(folder / f"weight_l{k}.npz").toarray()[:-1] != 0).astype(np.float64)
            for k in range(4)]


def _dense_published_nnstd(wa: list[np.ndarray], wb: list[np.ndarray]) -> np.ndarray:
    """The published algorithm with the pair loop replaced by dense set arithmetic."""
    out = np.zeros(len(wa))
    cols = None
    for k, (x, y) in enumerate(zip(wa, wb)):
        y = y if cols is None else y[cols, :]
        inter = x.T @ y
        size = x.sum(0)[:, None] + y.sum(0)[None, :]
        union = size - inter
        edit = size - 2 * inter
        cost = np.where(union > 0, edit / np.where(union > 0, union, 1), 0.0)
        rows, cols = linear_sum_assignment(cost)
        out[k] = cost[rows, cols].sum() / x.shape[1]
    return out


@needs_published
def test_published_values_w0_w9_epoch_190():
    a, b = topo.load(_published("w0", 190)), topo.load(_published("w9", 190))
    result = nnstd(a, b, reference=True)
    # README of the data: 0.5428, 0.5807, 0.5769, 0.0 from the published implementation
    assert result.per_layer == pytest.approx([0.5428, 0.5807, 0.5769, 0.0], abs=5e-5)
    # the unmodified published functions, re-run on these files, print these values
    published_run = [0.5428486572063861, 0.5807150488684837, 0.576925882138524, 0.0]
    assert np.abs(result.per_layer - published_run).max() <= 1e-9
    expected = _dense_published_nnstd(_published_keras(_published("w0", 190)),
                                      _published_keras(_published("w9", 190)))
    assert np.abs(result.per_layer - expected).max() <= 1e-9


@needs_published
@pytest.mark.parametrize("epoch, net, layer0", [(190, "w1", 0.4714), (0, "w1", 0.2902),
                                               (0, "w9", 0.3738)])
def test_published_first_layer_values(epoch, net, layer0):
    a, b = topo.load(_published("w0", epoch)), topo.load(_published(net, epoch))
    result = nnstd(a, b, reference=True)
    assert result.per_layer[0] == pytest.approx(layer0, abs=5e-5)
    expected = _dense_published_nnstd(_published_keras(_published("w0", epoch)),
                                      _published_keras(_published(net, epoch)))
    assert np.abs(result.per_layer - expected).max() <= 1e-9


@needs_published
def test_first_layer_value_does_not_depend_on_unit_order():
    # Only the optimal cost enters layer 0; later layers depend on which optimal matching
    # the solver returns (these networks have many tied units), so only layer 0 is invariant.
    a, b = topo.load(_published("w0", 190)), topo.load(_published("w9", 190))
    base = nnstd(a, b, reference=True).per_layer[0]
    shuffled, _ = permute_hidden(b, seed=11)
    assert nnstd(a, shuffled, reference=True).per_layer[0] == pytest.approx(base, abs=1e-12)
