"""NNSTD chance level: the Monte Carlo estimator against exact enumeration on tiny layers."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import topo
from topo.distance_chance import NNSTDChance, nnstd_chance, random_like
from topo.errors import ConfigError, IncompatibleGraphsError
from topo.graph import LayeredGraph


def jaccard(x: set, y: set) -> float:
    union = x | y
    return len(union - (x & y)) / len(union) if union else 0.0


def layer0_value(sa: list[set], sb: list[set]) -> float:
    """Optimal matched cost over all permutations, per unit (equal widths)."""
    n = len(sa)
    return min(sum(jaccard(sa[i], sb[p[i]]) for i in range(n))
               for p in itertools.permutations(range(n))) / n


def all_masks(n_out: int, n_in: int, count: int) -> list[list[set]]:
    """Every (n_out, n_in) structure with ``count`` connections, as lists of in-sets."""
    cells = [(r, c) for r in range(n_out) for c in range(n_in)]
    out = []
    for chosen in itertools.combinations(cells, count):
        sets = [set() for _ in range(n_out)]
        for r, c in chosen:
            sets[r].add(c)
        out.append(sets)
    return out


def all_with_degrees(n_in: int, degrees: list[int]) -> list[list[set]]:
    return [list(map(set, rows)) for rows in itertools.product(
        *[itertools.combinations(range(n_in), d) for d in degrees])]


def net(layer0: np.ndarray) -> LayeredGraph:
    # the output layer is dense in both networks, so it always scores 0
    return LayeredGraph([layer0.astype(float), np.ones((1, layer0.shape[0]))])


def exact_moments(structures: list[list[set]]) -> tuple[float, float]:
    values = np.array([layer0_value(x, y) for x in structures for y in structures])
    return float(values.mean()), float(values.std())


def test_estimate_matches_exact_enumeration_with_its_standard_error():
    # 2 hidden units, 3 inputs, 3 connections: C(6, 3) = 20 structures, 400 pairs; 200 samples
    mean, sd = exact_moments(all_masks(2, 3, 3))
    g = net(np.array([[1, 1, 0], [0, 0, 1]]))
    est = nnstd_chance(g, g, n_samples=200, seed=1)
    assert est.dense == [False, True]
    assert est.per_layer[1] == 0.0
    se = est.per_layer_se[0]
    assert se == pytest.approx(sd / np.sqrt(200), rel=0.25)
    assert abs(est.per_layer[0] - mean) < 4 * se
    # the sparse-layer mean is layer 0 alone; the network mean is diluted by the dense layer
    assert est.sparse_distance == pytest.approx(est.per_layer[0])
    assert est.distance == pytest.approx(est.per_layer[0] / 2)


def test_estimate_with_in_degrees_kept_matches_exact_enumeration():
    # in-degrees (1, 2) of 3 inputs: 3 * 3 = 9 structures, 81 pairs
    mean, sd = exact_moments(all_with_degrees(3, [1, 2]))
    g = net(np.array([[0, 1, 0], [1, 0, 1]]))
    est = nnstd_chance(g, g, n_samples=150, seed=2, degrees=True)
    se = est.per_layer_se[0]
    assert se == pytest.approx(sd / np.sqrt(150), rel=0.25)
    assert abs(est.per_layer[0] - mean) < 4 * se
    # the two samplings have different expectations here: counts alone allow (0, 3) splits
    counts_mean, _ = exact_moments(all_masks(2, 3, 3))
    assert abs(mean - counts_mean) > 0.02


def test_random_like_keeps_widths_counts_and_optionally_in_degrees():
    rng = np.random.default_rng(0)
    g = LayeredGraph([(rng.random((30, 20)) < 0.2).astype(float),
                      (rng.random((5, 30)) < 0.5).astype(float)], names=["fc1", "fc2"])
    r = random_like(g, np.random.default_rng(1))
    assert r.widths == g.widths and r.n_connections == g.n_connections
    assert r.names == ["fc1", "fc2"]
    d = random_like(g, np.random.default_rng(1), degrees=True)
    for w, x in zip(g.layers, d.layers):
        assert sorted(np.diff(w.indptr)) == list(np.diff(x.indptr))
    assert not all((x != w).nnz == 0 for w, x in zip(g.layers, r.layers))


def test_seeded_cached_and_exported():
    rng = np.random.default_rng(3)
    g = LayeredGraph([(rng.random((12, 10)) < 0.3).astype(float),
                      (rng.random((3, 12)) < 0.5).astype(float)])
    h = LayeredGraph([(rng.random((12, 10)) < 0.3).astype(float),
                      (rng.random((3, 12)) < 0.5).astype(float)])
    first = topo.nnstd_chance(g, h, n_samples=5, seed=7)
    assert isinstance(first, NNSTDChance)
    assert topo.nnstd_chance(g, h, n_samples=5, seed=7) is first  # cached
    # another network of the same sizes and counts shares the estimate
    same_counts = random_like(g, np.random.default_rng(9))
    again = nnstd_chance(same_counts, h, n_samples=5, seed=7)
    assert again is first
    other = nnstd_chance(g, h, n_samples=5, seed=8)
    assert not np.array_equal(other.samples, first.samples)
    frame = first.to_frame()
    assert list(frame.columns) == ["layer", "name", "nnstd_chance", "nnstd_chance_se", "dense"]
    assert set(first.summary()) == {"distance_chance", "distance_chance_se",
                                    "sparse_distance_chance", "sparse_distance_chance_se"}
    assert first.samples.shape == (5, 2)


def test_bad_requests_are_clear_errors():
    g = LayeredGraph([np.ones((3, 4)), np.ones((2, 3))])
    with pytest.raises(ConfigError, match="at least 2"):
        nnstd_chance(g, g, n_samples=1)
    with pytest.raises(IncompatibleGraphsError, match="outputs"):
        nnstd_chance(g, LayeredGraph([np.ones((3, 4)), np.ones((5, 3))]))
    with pytest.raises(ConfigError, match="unknown NNSTD solver"):
        nnstd_chance(g, g, solver="fast")


def test_sparse_distance_of_nnstd_leaves_dense_layers_out():
    rng = np.random.default_rng(5)
    a = LayeredGraph([np.ones((6, 5)), (rng.random((4, 6)) < 0.4).astype(float)])
    b = LayeredGraph([np.ones((6, 5)), (rng.random((4, 6)) < 0.4).astype(float)])
    result = topo.nnstd(a, b)
    assert result.dense == [True, False]
    assert result.per_layer[0] == 0.0
    assert result.sparse_distance == result.per_layer[1]
    assert result.distance == pytest.approx(result.per_layer[1] / 2)
