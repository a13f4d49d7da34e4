"""Specification of topo.interactions: NID and the persistence score, pairwise and any order."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from topo.errors import ConfigError, GraphStructureError, NonFiniteWeightsError
from topo.graph import LayeredGraph
from topo.interactions import interaction_matrix, interaction_strengths, unit_importance


# ------------------------------------------------------------------ independent references
def _random_network(seed: int, widths=(6, 8, 5, 2), density=0.6) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    layers = []
    for k in range(len(widths) - 1):
        w = rng.normal(size=(widths[k + 1], widths[k]))
        w[rng.random(w.shape) > density] = 0.0
        layers.append(w)
    return layers


def _nid_z(layers: list[np.ndarray]) -> np.ndarray:
    """z_h by brute force: sum over every path from h to every output of |weight| products."""
    n_hidden = layers[0].shape[0]
    z = np.zeros(n_hidden)
    widths = [w.shape[0] for w in layers]
    for h in range(n_hidden):
        for path in itertools.product(*[range(n) for n in widths[1:]]):
            prod, prev = 1.0, h
            for w, node in zip(layers[1:], path):
                prod *= abs(w[node, prev])
                prev = node
            z[h] += prod
    return z


def _reach(layers: list[np.ndarray]) -> np.ndarray:
    """Feed-forward reach_h by brute force: every directed path from h through layers 2..L to
    every output, the smallest normalised |w| on it, the largest such bottleneck."""
    scale = max(np.abs(w).max() for w in layers)
    widths = [w.shape[0] for w in layers]
    reach = np.zeros(widths[0])
    for h in range(widths[0]):
        for path in itertools.product(*[range(n) for n in widths[1:]]):
            bottleneck, prev = np.inf, h
            for w, node in zip(layers[1:], path):
                bottleneck = min(bottleneck, abs(w[node, prev]) / scale)
                prev = node
            reach[h] = max(reach[h], bottleneck)
    return reach


def _top_sets(a_row: np.ndarray):
    """(S_k, a_(k), a_(k+1)) for k >= 1 at one unit, connected features only."""
    order = [i for i in np.argsort(-a_row, kind="stable") if a_row[i] > 0]
    vals = [a_row[i] for i in order] + [0.0]
    return [(frozenset(order[:k]), vals[k - 1], vals[k]) for k in range(1, len(order) + 1)]


def _direct_ph(layers):
    """Pairwise and any-order persistence scores straight from the definition."""
    scale = max(np.abs(w).max() for w in layers)
    a = np.abs(layers[0]) / scale
    reach = _reach(layers)
    p = a.shape[1]
    pair = np.zeros((p, p))
    sets: dict[frozenset, float] = {}
    for h in range(a.shape[0]):
        for s, level, nxt in _top_sets(a[h]):
            persistence = level - nxt
            for i, j in itertools.combinations(sorted(s), 2):
                pair[i, j] += persistence * reach[h]
                pair[j, i] += persistence * reach[h]
            if len(s) >= 2:
                sets[s] = sets.get(s, 0.0) + persistence * reach[h]
    return pair, sets


def _direct_nid_sets(layers):
    z = _nid_z(layers)
    a = np.abs(layers[0])
    sets: dict[frozenset, float] = {}
    for h in range(a.shape[0]):
        for s, level, _ in _top_sets(a[h]):
            if len(s) >= 2:
                sets[s] = sets.get(s, 0.0) + z[h] * level
    return sets


def _ranked_and_pruned(sets: dict[frozenset, float]) -> list[tuple[tuple[int, ...], float]]:
    ranked = sorted(((s, v) for s, v in sets.items() if v > 0), key=lambda sv: -sv[1])
    kept = []
    for r, (s, v) in enumerate(ranked):
        if not any(s < t for t, _ in ranked[:r]):
            kept.append((tuple(sorted(s)), v))
    return kept


# ------------------------------------------------------------------ NID
@pytest.mark.parametrize("seed", range(5))
def test_nid_pairwise_matches_brute_force(seed):
    layers = _random_network(seed)
    z = _nid_z(layers)
    a = np.abs(layers[0])
    p = a.shape[1]
    g = LayeredGraph(layers)
    table = interaction_strengths(g, method="nid")
    assert len(table) == p * (p - 1) // 2
    for features, strength in zip(table["features"], table["strength"]):
        i, j = features
        expected = sum(z[h] * min(a[h, i], a[h, j]) for h in range(a.shape[0]))
        assert strength == pytest.approx(expected, abs=1e-12)
    np.testing.assert_allclose(unit_importance(g, method="nid"), z)


@pytest.mark.parametrize("seed", range(4))
def test_nid_any_order_matches_brute_force(seed):
    layers = _random_network(seed, widths=(7, 6, 4, 1), density=0.7)
    expected = _ranked_and_pruned(_direct_nid_sets(layers))
    table = interaction_strengths(LayeredGraph(layers), method="nid", order="any")
    assert list(table["features"]) == [s for s, _ in expected]
    np.testing.assert_allclose(table["strength"], [v for _, v in expected])


def test_any_order_with_more_than_64_features():
    # set identity is kept in 64-bit words: 150 features need three of them
    layers = _random_network(7, widths=(150, 12, 3, 1), density=0.06)
    layers[0][0, [3, 70, 140]] = [2.0, 1.5, 1.2]
    layers[0][1, [3, 70, 140]] = [1.9, 1.6, 1.1]  # the same top-3 set at a second unit
    expected = _ranked_and_pruned(_direct_nid_sets(layers))
    table = interaction_strengths(LayeredGraph(layers), method="nid", order="any")
    assert list(table["features"]) == [s for s, _ in expected]
    np.testing.assert_allclose(table["strength"], [v for _, v in expected])


def test_network_without_first_layer_connections_has_only_zero_pairs():
    g = LayeredGraph([np.zeros((2, 3)), np.ones((1, 2))])
    pairs = interaction_strengths(g, method="ph")
    assert list(pairs["features"]) == [(0, 1), (0, 2), (1, 2)]
    assert (pairs["strength"] == 0).all()
    assert len(interaction_strengths(g, method="nid", order="any")) == 0


# ------------------------------------------------------------------ persistence score
@pytest.mark.parametrize("seed", range(5))
def test_reach_is_the_widest_directed_path(seed):
    layers = _random_network(seed, widths=(5, 7, 6, 4, 2), density=0.5)
    np.testing.assert_allclose(unit_importance(LayeredGraph(layers), method="ph"),
                               _reach(layers), atol=1e-12)


def test_hand_case_reach_follows_the_signal_forward():
    # h1 -> g1 0.9, g1 -> out 0.01, h2 -> g1 0.9, h2 -> g2 0.05, g2 -> out 0.9 (one feature
    # feeding h1 and h2 at weight 1, so the normalised weights are the raw ones). h1's only
    # forward path is h1 -> g1 -> out, bottleneck 0.01; the undirected path
    # h1 - g1 - h2 - g2 - out (bottleneck 0.05) runs backwards through g1 -> h2, which no
    # signal can. h2: max(min(0.9, 0.01), min(0.05, 0.9)) = 0.05.
    w1 = np.array([[1.0], [1.0]])
    w2 = np.array([[0.9, 0.9],
                   [0.0, 0.05]])
    w3 = np.array([[0.01, 0.9]])
    g = LayeredGraph([w1, w2, w3])
    np.testing.assert_allclose(unit_importance(g, method="ph"), [0.01, 0.05])
    np.testing.assert_allclose(unit_importance(g, method="ph2"), [0.01 ** 2, 0.05 ** 2])


_WEIGHTS = st.sampled_from([0.0, 0.0, 0.1, 0.25, 0.5, 0.5, -0.5, 1.0, -2.0])


@st.composite
def _layered(draw):
    """Small layered networks with ties, zeros, empty rows and empty columns."""
    widths = draw(st.lists(st.integers(1, 4), min_size=3, max_size=5))
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        values = draw(st.lists(_WEIGHTS, min_size=n_in * n_out, max_size=n_in * n_out))
        layers.append(np.array(values).reshape(n_out, n_in))
    if max(np.abs(w).max() for w in layers) == 0:
        layers[0][0, 0] = 1.0
    return layers


@settings(max_examples=60, deadline=None)
@given(_layered())
def test_reach_matches_networkx_reachability_in_the_filtration(layers):
    # independent computation: for each level t of the super-level filtration (from the top),
    # the directed graph of the edges of layers 2..L with normalised |w| >= t; reach_h is the
    # first t at which networkx finds an output among h's descendants (0 if none)
    import networkx as nx

    scale = max(np.abs(w).max() for w in layers)
    n_out = layers[-1].shape[0]
    edges = [((k, i), (k + 1, o), abs(w[o, i]) / scale)
             for k, w in enumerate(layers[1:], start=1) for o, i in zip(*np.nonzero(w))]
    expected = np.zeros(layers[0].shape[0])
    for h in range(layers[0].shape[0]):
        for t in sorted({v for _, _, v in edges}, reverse=True):
            g = nx.DiGraph()
            g.add_node((1, h))
            g.add_edges_from((u, v) for u, v, value in edges if value >= t)
            outputs = {(len(layers), o) for o in range(n_out)}
            if outputs & nx.descendants(g, (1, h)):
                expected[h] = t
                break
    np.testing.assert_allclose(unit_importance(LayeredGraph(layers), method="ph"), expected,
                               atol=1e-12)


@pytest.mark.parametrize("seed", range(5))
def test_ph_pairwise_matches_direct_definition(seed):
    layers = _random_network(seed, widths=(6, 9, 5, 2), density=0.6)
    pair, _ = _direct_ph(layers)
    g = LayeredGraph(layers)
    np.testing.assert_allclose(interaction_matrix(g, method="ph"), pair, atol=1e-12)
    table = interaction_strengths(g, method="ph")
    for (i, j), strength in zip(table["features"], table["strength"]):
        assert strength == pytest.approx(pair[i, j], abs=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_ph_any_order_matches_direct_definition(seed):
    layers = _random_network(seed, widths=(7, 6, 4, 1), density=0.7)
    _, sets = _direct_ph(layers)
    expected = _ranked_and_pruned(sets)
    table = interaction_strengths(LayeredGraph(layers), method="ph", order="any")
    assert list(table["features"]) == [s for s, _ in expected]
    np.testing.assert_allclose(table["strength"], [v for _, v in expected])


@pytest.mark.parametrize("seed", range(3))
def test_ph2_is_the_persistence_score_of_the_squared_weights(seed):
    layers = _random_network(seed, widths=(7, 6, 4, 1), density=0.7)
    squared = [w ** 2 for w in layers]  # the filtration of w^2 (signs do not matter)
    pair, sets = _direct_ph(squared)
    g = LayeredGraph(layers)
    np.testing.assert_allclose(interaction_matrix(g, method="ph2"), pair, atol=1e-12)
    np.testing.assert_allclose(unit_importance(g, method="ph2"), _reach(layers) ** 2,
                               atol=1e-12)
    expected = _ranked_and_pruned(sets)
    table = interaction_strengths(g, method="ph2", order="any")
    assert list(table["features"]) == [s for s, _ in expected]
    np.testing.assert_allclose(table["strength"], [v for _, v in expected])


def _direct_ph2n(layers):
    """ph2n straight from its definition: persistences of top-k sets, summed unit by unit."""
    scale = max(np.abs(w).max() for w in layers)
    a = (np.abs(layers[0]) / scale) ** 2
    u = _reach(layers) ** 2
    p = a.shape[1]
    together = np.zeros((p, p))  # omega(i, j): persistence of the sets holding both i and j
    alone = np.zeros((p, p))  # D(i | j): persistence of the sets holding i, where j is attached
    for h in range(a.shape[0]):
        attached = [j for j in range(p) if a[h, j] > 0]
        for s, level, nxt in _top_sets(a[h]):
            for i in s:
                for j in attached:
                    alone[i, j] += (level - nxt) * u[h]
                    if j in s and j != i:
                        together[i, j] += (level - nxt) * u[h]
    m = np.mean(np.diag(alone))
    expected = np.zeros((p, p))
    for i, j in itertools.permutations(range(p), 2):
        d = np.sqrt((alone[i, j] + m) * (alone[j, i] + m))
        expected[i, j] = together[i, j] / d if d > 0 else 0.0
    return expected


@pytest.mark.parametrize("seed", range(4))
def test_ph2n_matches_direct_definition(seed):
    layers = _random_network(seed, widths=(7, 6, 4, 1), density=0.6)
    expected = _direct_ph2n(layers)
    g = LayeredGraph(layers)
    np.testing.assert_allclose(interaction_matrix(g, method="ph2n"), expected, atol=1e-12)
    table = interaction_strengths(g, method="ph2n")
    got = {f: v for f, v in zip(table["features"], table["strength"])}
    assert got == pytest.approx({(i, j): expected[i, j]
                                 for i, j in itertools.combinations(range(7), 2)})


@pytest.mark.parametrize("seed", range(3))
def test_ph2n_is_a_share_below_one(seed):
    # min(a_i, a_j) <= a_i at every unit where both are attached, and m > 0 adds to the
    # denominator
    g = LayeredGraph(_random_network(seed, widths=(8, 10, 3, 2), density=0.8))
    m = interaction_matrix(g, method="ph2n")
    assert (m >= 0).all() and (m < 1).all()
    np.testing.assert_allclose(m, m.T)


def _hand_network() -> LayeredGraph:
    # 3 features -> 2 hidden -> 2 hidden -> 1 output; the largest |w| is 1, so the
    # normalised weights are the raw ones
    w1 = np.array([[0.8, 0.4, 0.0],
                   [0.0, 0.2, 0.6]])
    w2 = np.array([[0.5, 0.0],
                   [0.3, 0.9]])
    w3 = np.array([[1.0, 0.2]])
    return LayeredGraph([w1, w2, w3])


def test_hand_example_reach_follows_the_forward_paths():
    # h1_0: h2_0 -> out is min(0.5, 1.0) = 0.5, h2_1 -> out min(0.3, 0.2) = 0.2: reach 0.5.
    # h1_1: its only path, h2_1 -> out, is min(0.9, 0.2) = 0.2 (the undirected filtration gave
    # 0.3, through h1_1 - h2_1 - h1_0 - h2_0 - out, backwards along h1_0 -> h2_1).
    np.testing.assert_allclose(unit_importance(_hand_network(), method="ph"), [0.5, 0.2])
    # NID: z = |w3| |w2| = [1*0.5 + 0.2*0.3, 0.2*0.9]
    np.testing.assert_allclose(unit_importance(_hand_network(), method="nid"), [0.56, 0.18])


def test_hand_example_pairwise_strengths():
    ph = interaction_strengths(_hand_network(), method="ph")
    # (0,1): min(0.8, 0.4) * 0.5 ; (1,2): min(0.2, 0.6) * 0.2 ; (0,2): never together
    assert list(ph["features"]) == [(0, 1), (1, 2), (0, 2)]
    np.testing.assert_allclose(ph["strength"], [0.2, 0.04, 0.0])
    nid = interaction_strengths(_hand_network(), method="nid")
    np.testing.assert_allclose(nid["strength"], [0.4 * 0.56, 0.2 * 0.18, 0.0])


def test_hand_example_any_order():
    # each unit has two connected features: S_2 = {0,1} at h0 (persistence 0.4 - 0) and
    # S_2 = {1,2} at h1 (persistence 0.2 - 0)
    table = interaction_strengths(_hand_network(), method="ph", order="any")
    assert list(table["features"]) == [(0, 1), (1, 2)]
    np.testing.assert_allclose(table["strength"], [0.4 * 0.5, 0.2 * 0.2])


def test_hand_example_ph2n():
    # ph2: a = squared weights, h0: (0.64, 0.16, 0), h1: (0, 0.04, 0.36); u = reach^2 =
    # (0.25, 0.04). omega(0,1) = 0.25 * 0.16 = 0.04, omega(1,2) = 0.04 * 0.04 = 0.0016.
    # Totals: T0 = 0.25 * 0.64 = 0.16, T1 = 0.04 + 0.0016 = 0.0416, T2 = 0.04 * 0.36 = 0.0144,
    # m = 0.216 / 3. Feature 1 is attached at both units, so D(0|1) = T0 and D(2|1) = T2;
    # features 0 and 2 only at one unit each: D(1|0) = 0.04 (h0), D(1|2) = 0.0016 (h1).
    m = 0.216 / 3
    table = interaction_strengths(_hand_network(), method="ph2n")
    assert list(table["features"]) == [(0, 1), (1, 2), (0, 2)]
    np.testing.assert_allclose(table["strength"], [
        0.04 / np.sqrt((0.16 + m) * (0.04 + m)),
        0.0016 / np.sqrt((0.0016 + m) * (0.0144 + m)),
        0.0])


def test_top_k_set_persistence_is_the_gap_to_the_next_feature():
    # one hidden unit straight to the output (reach = 1 after normalisation by |w| = 1):
    # features join at 0.9, 0.6, 0.5, 0.1 -> S_2 lives 0.6-0.5, S_3 0.5-0.1, S_4 0.1-0
    w1 = np.array([[0.9, 0.1, 0.6, 0.5]])
    g = LayeredGraph([w1, np.array([[1.0]])])
    table = interaction_strengths(g, method="ph", order="any")
    got = dict(zip(table["features"], table["strength"]))
    # ranked by strength: {0,2,3} = 0.4 first; {0,2} = 0.1 (the smaller of two tied sets comes
    # first) is a strict subset of {0,2,3} and is dropped; {0,1,2,3} = 0.1 is a subset of
    # nothing ranked above it
    assert got == pytest.approx({(0, 2, 3): 0.4, (0, 1, 2, 3): 0.1})
    assert list(table["features"]) == [(0, 2, 3), (0, 1, 2, 3)]


# ------------------------------------------------------------------ planted interactions
@pytest.mark.parametrize("method", ["ph", "nid", "ph2", "ph2n"])
def test_planted_pair_ranks_first(method):
    rng = np.random.default_rng(0)
    w1 = 0.05 * rng.normal(size=(12, 8))
    w1[np.arange(8), np.arange(8)] = 0.7  # main effects: one unit per feature
    w1[10, :] = 0.0
    w1[10, [2, 5]] = [0.9, 0.8]  # the planted pair
    w2 = 0.3 + 0.1 * rng.random(size=(6, 12))
    w3 = 0.5 + 0.1 * rng.random(size=(1, 6))
    table = interaction_strengths(LayeredGraph([w1, w2, w3]), method=method, top=3)
    assert table["features"].iloc[0] == (2, 5)
    assert table["strength"].iloc[0] > 2 * table["strength"].iloc[1]


def test_ph2n_puts_a_planted_pair_above_two_main_effects_that_meet_by_chance():
    # features 0 and 1 each drive six units alone (strong main effects) and meet, both at 0.5,
    # at two more; the planted pair (2, 5) sits at two units with 0.5 and 0.45
    rng = np.random.default_rng(3)
    w1 = 0.02 * rng.random(size=(20, 8))
    w1[0:6, 0] = 1.0
    w1[6:12, 1] = 1.0
    w1[12:14, [0, 1]] = 0.5
    w1[14:16, 2] = 0.5
    w1[14:16, 5] = 0.45
    w2 = 0.3 + 0.01 * rng.random(size=(4, 20))
    w3 = np.full((1, 4), 0.5)
    g = LayeredGraph([w1, w2, w3])
    # ph2: min^2 summed, 2 * 0.25 for (0, 1) against 2 * 0.2025 for (2, 5)
    assert interaction_strengths(g, method="ph2")["features"].iloc[0] == (0, 1)
    # ph2n: (0, 1) is a small share of features 0 and 1's persistence, (2, 5) almost all of
    # theirs
    table = interaction_strengths(g, method="ph2n", top=2)
    assert table["features"].iloc[0] == (2, 5)
    assert table["strength"].iloc[0] > 2 * table["strength"].iloc[1]


@pytest.mark.parametrize("method", ["ph", "nid", "ph2"])
def test_planted_triple_ranks_first_in_any_order(method):
    rng = np.random.default_rng(1)
    w1 = 0.05 * rng.normal(size=(10, 7))
    w1[[0, 1], :] = 0.0
    w1[0, [1, 3, 6]] = [0.9, 0.85, 0.8]
    w1[1, [1, 3, 6]] = [0.8, 0.9, 0.85]
    w2 = 0.3 + 0.1 * rng.random(size=(4, 10))
    w3 = 0.5 + 0.1 * rng.random(size=(1, 4))
    table = interaction_strengths(LayeredGraph([w1, w2, w3]), method=method, order="any")
    assert table["features"].iloc[0] == (1, 3, 6)


# ------------------------------------------------------------------ table contract
def test_pairwise_lists_every_pair_including_zeros_in_a_fixed_order():
    w1 = np.array([[1.0, 0.5, 0.0, 0.0, 0.0]])
    table = interaction_strengths(LayeredGraph([w1, np.array([[1.0]])]), method="ph")
    assert list(table.columns) == ["features", "strength"]
    assert len(table) == 10
    assert table["features"].iloc[0] == (0, 1)
    # zero-strength pairs follow in lexicographic order
    assert list(table["features"].iloc[1:4]) == [(0, 2), (0, 3), (0, 4)]
    assert (table["strength"].iloc[1:] == 0).all()


def test_top_cuts_after_pruning():
    layers = _random_network(3, widths=(7, 6, 4, 1), density=0.7)
    g = LayeredGraph(layers)
    full = interaction_strengths(g, method="ph", order="any")
    top = interaction_strengths(g, method="ph", order="any", top=3)
    assert list(top["features"]) == list(full["features"].iloc[:3])
    pairs = interaction_strengths(g, method="nid", top=4)
    assert len(pairs) == 4


def test_ph_is_invariant_to_scaling_and_nid_scales_with_depth():
    layers = _random_network(2)
    g, g3 = LayeredGraph(layers), LayeredGraph([3.0 * w for w in layers])
    np.testing.assert_allclose(interaction_matrix(g3, method="ph"),
                               interaction_matrix(g, method="ph"))
    # NID: the first layer's min is scaled once and z once per layer above
    np.testing.assert_allclose(interaction_matrix(g3, method="nid"),
                               3.0 ** len(layers) * interaction_matrix(g, method="nid"))


def test_explicit_zero_connections_behave_as_absent():
    layers = _random_network(4)
    masks = [np.ones_like(w) for w in layers]
    sparse, dense = LayeredGraph(layers), LayeredGraph(layers, masks=masks)
    for method in ("ph", "nid", "ph2n"):
        np.testing.assert_allclose(interaction_matrix(sparse, method=method),
                                   interaction_matrix(dense, method=method))


# ------------------------------------------------------------------ errors
def test_any_order_refuses_work_beyond_its_budget(monkeypatch):
    import topo.interactions

    # 2 distinct candidates, {0,1} and {0,1,2} (each at both units): features 0, 1, 2 lie in
    # 2, 2 and 1 of them -> work 2^2 + 2^2 + 1^2 = 9
    w1 = np.array([[0.9, 0.5, 0.1], [0.8, 0.6, 0.2]])
    g = LayeredGraph([w1, np.array([[1.0, 1.0]])])
    monkeypatch.setattr(topo.interactions, "_MAX_PRUNE_WORK", 8)
    with pytest.raises(ConfigError, match="order='pairwise'"):
        interaction_strengths(g, order="any")
    monkeypatch.setattr(topo.interactions, "_MAX_PRUNE_WORK", 9)
    assert len(interaction_strengths(g, order="any")) >= 1


def test_single_layer_network_is_a_clear_error():
    with pytest.raises(GraphStructureError, match="first hidden layer"):
        interaction_strengths(LayeredGraph([np.ones((1, 4))], names=["fc"]))


def test_nan_weights_are_a_clear_error():
    w1 = np.array([[np.nan, 1.0], [0.5, 0.2]])
    g = LayeredGraph([w1, np.array([[1.0, 1.0]])], names=["fc1", "fc2"])
    for method in ("ph", "nid"):
        with pytest.raises(NonFiniteWeightsError, match="fc1"):
            interaction_strengths(g, method=method)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "shap"}, "unknown interaction method"),
    ({"order": 3}, "unknown interaction order"),
    ({"top": 0}, "top must be a positive integer"),
    ({"top": 2.5}, "top must be a positive integer"),
    ({"method": "ph2n", "order": "any"}, "scores pairs only"),
])
def test_bad_options_are_config_errors(kwargs, message):
    g = LayeredGraph([np.ones((2, 3)), np.ones((1, 2))])
    with pytest.raises(ConfigError, match=message):
        interaction_strengths(g, **kwargs)


def test_docstring_examples_hold():
    import doctest

    import topo.interactions

    assert doctest.testmod(topo.interactions).failed == 0


@pytest.mark.xdist_group("scikit-learn")   # scikit-learn's import: on one worker of the suite
def test_interaction_auc_is_sklearns_roc_auc_with_pairs_inside_true_sets_positive():
    import pandas as pd
    from sklearn.metrics import roc_auc_score

    from topo.interactions import interaction_auc

    rng = np.random.default_rng(5)
    pairs = [(i, j) for i in range(6) for j in range(i + 1, 6)]
    strengths = np.round(rng.uniform(size=len(pairs)), 1)  # rounded: ties included
    table = pd.DataFrame({"features": pairs, "strength": strengths})
    truth = [(0, 1, 2), (3, 5)]
    true_pairs = {(0, 1), (0, 2), (1, 2), (3, 5)}  # inside (0, 1, 2) or (3, 5)
    labels = [p in true_pairs for p in pairs]
    assert interaction_auc(table, truth) == pytest.approx(roc_auc_score(labels, strengths))
    assert np.isnan(interaction_auc(table, [(7, 8)]))


def test_any_order_says_how_many_candidates_it_pruned_and_can_keep_them():
    # one unit with features 0.9, 0.8, 0.7 (largest |w| 1.0, the output's): top-2 {0, 1}
    # lives 0.8 - 0.7 = 0.1, top-3 {0, 1, 2} 0.7 - 0 = 0.7, so {0, 1} is a subset of a
    # stronger set and is pruned
    g = LayeredGraph([np.array([[0.9, 0.8, 0.7]]), np.array([[1.0]])])
    pruned = interaction_strengths(g, method="ph", order="any")
    assert list(pruned["features"]) == [(0, 1, 2)]
    assert pruned.attrs == {"candidates": 2, "pruned": 1}
    kept = interaction_strengths(g, method="ph", order="any", keep_subsets=True)
    assert list(kept["features"]) == [(0, 1, 2), (0, 1)]
    np.testing.assert_allclose(kept["strength"], [0.7, 0.1])
    assert kept.attrs == {"candidates": 2, "pruned": 0}
