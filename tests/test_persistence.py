"""Specification of topo.persistence: 0-dimensional persistence and neural persistence."""

from __future__ import annotations

import math

import numpy as np
import pytest
import scipy.sparse as sp

from topo.errors import ConfigError, NonFiniteWeightsError
from topo.graph import LayeredGraph
from topo.persistence import (
    network_persistence_diagram,
    neural_persistence,
    persistence_diagrams,
)


# ------------------------------------------------------------------ an independent reference
def _union_find_deaths(n_nodes: int, edges: list[tuple[int, int, float]]) -> list[float]:
    """Kruskal by hand: edges in decreasing weight; a merge at w records the death w.

    The component that survives is paired with 0.
    """
    parent = list(range(n_nodes))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    deaths = []
    for u, v, w in sorted(edges, key=lambda e: -e[2]):
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[ru] = rv
            deaths.append(w)
    survivors = len({find(x) for x in range(n_nodes)})
    return deaths + [0.0] * survivors


def _dense_layer_deaths(a: np.ndarray) -> list[float]:
    """Diagram deaths of one layer from its dense normalised matrix (every pair is an edge;
    a weight of 0 is an edge entering at level 0, as the definition says)."""
    n_out, n_in = a.shape
    edges = [(n_out + i, o, float(a[o, i])) for o in range(n_out) for i in range(n_in)]
    return _union_find_deaths(n_in + n_out, edges)


def _random_layers(rng, widths, density):
    layers = []
    for k in range(len(widths) - 1):
        w = rng.normal(size=(widths[k + 1], widths[k]))
        w[rng.random(w.shape) > density] = 0.0
        layers.append(w)
    return layers


# ------------------------------------------------------------------ hand-computed examples
def test_tree_layer_by_hand():
    # normalised weights 1, 0.5, 0.25 form a tree on 4 units: deaths 1, 0.5, 0.25 and the
    # surviving component (1, 0): persistences 0, 0.5, 0.75, 1
    g = LayeredGraph([np.array([[4.0, 2.0], [0.0, 1.0]])])
    result = neural_persistence(g)
    total = math.sqrt(0.5 ** 2 + 0.75 ** 2 + 1.0)
    assert result.total_persistence[0] == pytest.approx(total)
    assert result.normalized[0] == pytest.approx(total / math.sqrt(3))
    assert result.mean_normalized == pytest.approx(total / math.sqrt(3))
    np.testing.assert_allclose(persistence_diagrams(g)[0],
                               [[1, 1.0], [1, 0.5], [1, 0.25], [1, 0.0]])


def test_cycle_edge_is_not_a_merge():
    # 2x2 complete layer, normalised 1, 0.5 / 0.75, 0.25: the 0.25 edge closes a cycle
    g = LayeredGraph([np.array([[4.0, 2.0], [3.0, 1.0]])])
    np.testing.assert_allclose(persistence_diagrams(g)[0][:, 1], [1.0, 0.75, 0.5, 0.0])
    total = math.sqrt(0.25 ** 2 + 0.5 ** 2 + 1.0)
    assert neural_persistence(g).total_persistence[0] == pytest.approx(total)


def test_weight_one_is_kept_as_a_merge_at_level_one():
    # all normalised weights equal 1: three merges at 1 (persistence 0), one survivor
    g = LayeredGraph([np.full((2, 2), -3.0)])
    np.testing.assert_array_equal(persistence_diagrams(g)[0][:, 1], [1.0, 1.0, 1.0, 0.0])
    assert neural_persistence(g).total_persistence[0] == pytest.approx(1.0)


def test_isolated_units_each_count_as_a_component():
    # one edge (normalised 1) joins o0 and i0; i1, i2 and o1 stay alone: 4 components
    g = LayeredGraph([np.array([[2.0, 0.0, 0.0], [0.0, 0.0, 0.0]])])
    result = neural_persistence(g)
    assert result.components[0] == 4
    assert result.total_persistence[0] == pytest.approx(2.0)  # sqrt(0 + 4 * 1)
    assert result.normalized[0] == pytest.approx(2.0 / math.sqrt(4))


def test_weights_are_normalised_by_the_largest_weight_of_the_whole_network():
    # layer 0 alone would normalise by 2, but layer 1 holds |w| = 8
    g = LayeredGraph([np.array([[2.0, 1.0]]), np.array([[-8.0]])])
    # layer 0: units o0, i0, i1; normalised 0.25, 0.125 form a tree
    first = math.sqrt(0.75 ** 2 + 0.875 ** 2 + 1.0)
    # layer 1: a single edge at 1: persistences 0 and the survivor 1
    second = 1.0
    result = neural_persistence(g)
    np.testing.assert_allclose(result.total_persistence, [first, second])
    np.testing.assert_allclose(result.normalized, [first / math.sqrt(2), second / 1.0])
    assert result.mean_normalized == pytest.approx((first / math.sqrt(2) + second) / 2)
    assert result.scale == 8.0


def test_p_norm_order():
    g = LayeredGraph([np.array([[4.0, 2.0], [0.0, 1.0]])])
    result = neural_persistence(g, p=1)
    assert result.total_persistence[0] == pytest.approx(0.5 + 0.75 + 1.0)
    assert result.normalized[0] == pytest.approx((0.5 + 0.75 + 1.0) / 3)


# ------------------------------------------------------------------ against union-find
@pytest.mark.parametrize("seed", range(6))
def test_matches_dense_union_find(seed):
    rng = np.random.default_rng(seed)
    layers = _random_layers(rng, [7, 5, 6, 3], density=0.5)
    g = LayeredGraph(layers)
    scale = max(np.abs(w).max() for w in layers)
    diagrams = persistence_diagrams(g)
    result = neural_persistence(g)
    for k, w in enumerate(layers):
        deaths = np.sort(_dense_layer_deaths(np.abs(w) / scale))[::-1]
        np.testing.assert_allclose(diagrams[k][:, 1], deaths, atol=1e-12)
        np.testing.assert_array_equal(diagrams[k][:, 0], 1.0)
        total = math.sqrt(sum((1.0 - d) ** 2 for d in deaths))
        assert result.total_persistence[k] == pytest.approx(total)
        assert result.normalized[k] == pytest.approx(total / math.sqrt(sum(w.shape) - 1))
    assert result.mean_normalized == pytest.approx(np.mean(result.normalized))


def test_whole_network_diagram_matches_union_find():
    rng = np.random.default_rng(11)
    layers = _random_layers(rng, [6, 5, 4, 2], density=0.4)
    g = LayeredGraph(layers)
    scale = max(np.abs(w).max() for w in layers)
    offsets = np.cumsum([0, 6, 5, 4])
    edges = []
    for k, w in enumerate(layers):
        for o, i in zip(*np.nonzero(w)):
            edges.append((int(offsets[k] + i), int(offsets[k + 1] + o), abs(w[o, i]) / scale))
    deaths = np.sort(_union_find_deaths(17, edges))[::-1]
    np.testing.assert_allclose(network_persistence_diagram(g)[:, 1], deaths, atol=1e-12)


# ------------------------------------------------------------------ storage and invariances
def test_sparse_and_dense_storage_give_the_same_values():
    rng = np.random.default_rng(3)
    w = rng.normal(size=(6, 8))
    w[rng.random(w.shape) > 0.3] = 0.0
    w2 = rng.normal(size=(2, 6))
    sparse = LayeredGraph([w, w2])
    # same weights, but every zero stored as a connection of weight 0
    dense = LayeredGraph([w, w2], masks=[np.ones_like(w), np.ones_like(w2)])
    assert dense.n_connections[0] == 48 and sparse.n_connections[0] < 48
    a, b = neural_persistence(sparse), neural_persistence(dense)
    np.testing.assert_allclose(a.total_persistence, b.total_persistence)
    np.testing.assert_allclose(a.normalized, b.normalized)
    for da, db in zip(persistence_diagrams(sparse), persistence_diagrams(dense)):
        np.testing.assert_allclose(da, db)


def test_sign_and_scale_of_the_weights_do_not_matter():
    rng = np.random.default_rng(5)
    layers = _random_layers(rng, [5, 4, 3], density=0.7)
    base = neural_persistence(LayeredGraph(layers))
    flipped = neural_persistence(LayeredGraph([-3.5 * w for w in layers]))
    np.testing.assert_allclose(base.normalized, flipped.normalized)


def test_diagram_has_one_pair_per_unit():
    rng = np.random.default_rng(2)
    g = LayeredGraph(_random_layers(rng, [9, 4, 2], density=0.3))
    sizes = [d.shape for d in persistence_diagrams(g)]
    assert sizes == [(13, 2), (6, 2)]


def test_empty_and_all_zero_networks():
    # no connection at all: every unit is its own component, persistence 1 each
    g = LayeredGraph([sp.csr_matrix((2, 3))])
    result = neural_persistence(g)
    assert result.total_persistence[0] == pytest.approx(math.sqrt(5))
    assert result.scale == 0.0


# ------------------------------------------------------------------ results and errors
def test_frame_and_dict_views():
    g = LayeredGraph([np.array([[4.0, 2.0], [0.0, 1.0]]), np.array([[1.0, 1.0]])],
                     names=["fc1", "fc2"])
    result = neural_persistence(g)
    frame = result.to_frame()
    assert list(frame.columns) == ["name", "n_in", "n_out", "components",
                                   "total_persistence", "normalized"]
    assert list(frame["name"]) == ["fc1", "fc2"]
    d = result.to_dict()
    assert [layer["name"] for layer in d["layers"]] == ["fc1", "fc2"]
    assert list(d["layers"][0]) == list(frame.columns)  # one vocabulary
    assert (d["layers"][0]["n_in"], d["layers"][0]["n_out"]) == (2, 2)
    assert d["layers"][1]["components"] == 1
    assert d["mean_normalized"] == pytest.approx(result.mean_normalized)
    assert (d["p"], d["scale"]) == (2.0, 4.0)


def test_nan_weights_are_a_clear_error():
    w = np.array([[1.0, np.nan], [0.5, 0.2]])
    g = LayeredGraph([w, np.array([[1.0, 1.0]])], names=["fc1", "fc2"])
    with pytest.raises(NonFiniteWeightsError, match="fc1"):
        neural_persistence(g)
    with pytest.raises(NonFiniteWeightsError, match="fc1"):
        persistence_diagrams(g)


def test_bad_norm_order():
    with pytest.raises(ConfigError, match="p must"):
        neural_persistence(LayeredGraph([np.eye(2)]), p=0)


# ------------------------------------------------------------------ figures
def test_diagram_and_barcode_figures_draw_every_pair():
    from topo.plot import plot_barcode, plot_persistence_diagrams

    g = LayeredGraph([np.array([[4.0, 2.0], [0.0, 1.0]]), np.array([[1.0, 1.0]])],
                     names=["fc1", "fc2"])
    diagrams = persistence_diagrams(g)
    axes = plot_persistence_diagrams(diagrams, names=g.names, kind="diagram")
    assert [ax.get_title() for ax in axes] == ["layer 0: fc1", "layer 1: fc2"]
    points = axes[0].collections[0].get_offsets()
    np.testing.assert_allclose(points, diagrams[0])
    # topo's diagrams are all born at 1: by default each layer's deaths as a histogram
    deaths = plot_persistence_diagrams(diagrams, names=g.names)
    assert sum(p.get_height() for p in deaths[0].patches) == np.count_nonzero(
        diagrams[0][:, 1] > 0)
    ax = plot_barcode(diagrams[0])
    segments = ax.collections[0].get_segments()
    # bars from death to birth, longest (persistence 1: the survivor) on top
    assert len(segments) == 4
    np.testing.assert_allclose(segments[0], [[0.0, 3.0], [1.0, 3.0]])
    import matplotlib.pyplot as plt

    plt.close("all")


def test_docstring_examples_hold():
    import doctest

    import topo.persistence

    assert doctest.testmod(topo.persistence).failed == 0
