"""Initial densities (ER, ERK) and random masks, against hand computations."""

from __future__ import annotations

import numpy as np
import pytest

from topo.errors import ConfigError
from topo.train.sparsity import (
    er_densities,
    erk_densities,
    initial_densities,
    network_density,
    prunable_density,
    random_structure,
)


def test_er_densities_of_set_on_digits():
    # eps (n_in + n_out) / (n_in n_out): 20*164/6400, 20*200/10000, min(1, 20*110/1000)
    assert er_densities([64, 100, 100, 10], 20) == pytest.approx([0.5125, 0.4, 1.0])
    assert er_densities([64, 100, 10], 20, [True, False]) == pytest.approx([0.5125, 1.0])


def test_erk_scales_the_erdos_renyi_shape_to_the_target():
    # sizes 200 and 100, shapes 30/200 = 0.15 and 25/100 = 0.25; budget 0.5 * 300 = 150
    # eps = 150 / (0.15 * 200 + 0.25 * 100) = 150 / 55
    eps = 150 / 55
    assert erk_densities([10, 20, 5], 0.5) == pytest.approx([0.15 * eps, 0.25 * eps])


def test_erk_makes_layers_that_would_exceed_one_dense_and_solves_again():
    # shapes 0.02 (10000 weights) and 0.51 (200): eps = 5100 / 302 gives layer 1 8.6 > 1;
    # dense, it takes 200 of the 5100 connections, so eps = 4900 / (0.02 * 10000) = 24.5
    assert erk_densities([100, 100, 2], 0.5) == pytest.approx([0.49, 1.0])


def test_erk_budget_counts_sparse_layers_only():
    # layer 1 is not sparse: the budget is 0.5 * 200 = 100 connections for layer 0 alone
    assert erk_densities([10, 20, 5], 0.5, [True, False]) == pytest.approx([0.5, 1.0])
    assert erk_densities([10, 20, 5], 0.5, [False, False]) == [1.0, 1.0]


def test_erk_of_a_larger_network_keeps_the_target_and_the_ratios():
    widths = [784, 1000, 1000, 1000, 10]
    dens = erk_densities(widths, 0.05)
    sizes = [widths[k] * widths[k + 1] for k in range(4)]
    assert sum(d * s for d, s in zip(dens, sizes)) == pytest.approx(0.05 * sum(sizes))
    assert dens[3] == 1.0   # 1000 -> 10: shape 1010/10000, capped
    assert dens[0] / dens[1] == pytest.approx((1784 / 784000) / (2000 / 1e6))


@pytest.mark.parametrize("density", [0.0, 1.5])
def test_erk_density_outside_the_unit_interval_is_refused(density):
    with pytest.raises(ConfigError, match="density must lie in"):
        erk_densities([10, 20, 5], density)


def test_initial_densities_dispatch_on_the_kind():
    widths, sparse = [10, 20, 5], [True, True]
    assert initial_densities("er", widths, sparse, epsilon=2, density=None) == pytest.approx(
        [2 * 30 / 200, 2 * 25 / 100])
    erk = [0.15 * 150 / 55, 0.25 * 150 / 55]
    assert initial_densities("erk", widths, sparse, epsilon=2, density=0.5) == pytest.approx(erk)
    # with a density, er solves its scale for it: the same shape as erk
    assert initial_densities("er", widths, sparse, epsilon=2, density=0.5) == pytest.approx(erk)
    assert initial_densities("dense", widths, sparse, epsilon=2, density=None) == [1.0, 1.0]
    with pytest.raises(ConfigError, match="unknown init_sparsity"):
        initial_densities("uniform", widths, sparse, epsilon=2, density=0.5)
    with pytest.raises(ConfigError, match="init_sparsity dense starts every layer dense"):
        initial_densities("dense", widths, sparse, epsilon=2, density=0.5)


def test_a_layer_kept_dense_counts_in_the_density_budget():
    """10-20-5 with the output layer (100 weights) dense: 0.5 of all 300 is 150 connections,
    100 of them in the dense layer, so layer 0 keeps 50 of its 200 (as RigL's ERK counts)."""
    assert prunable_density(0.5, [10, 20, 5], [True, False]) == pytest.approx(50 / 200)
    densities = initial_densities("erk", [10, 20, 5], [True, False], epsilon=20, density=0.5)
    assert densities == pytest.approx([0.25, 1.0])
    assert network_density([50, 100], [10, 20, 5]) == 0.5
    assert prunable_density(0.5, [10, 20, 5], [True, True]) == 0.5


def test_a_density_the_dense_layers_alone_exceed_is_refused():
    # the dense 100 of 300 are a third; one connection for layer 0 needs 101 / 300
    with pytest.raises(ConfigError, match=r"density 0.3 cannot be met: the layer kept dense "
                                          r"\(1\) holds 100 of the network's 300 connections "
                                          r"\(0.3333\); choose a density of at least 0.3367"):
        prunable_density(0.3, [10, 20, 5], [True, False])
    assert prunable_density(101 / 300, [10, 20, 5], [True, False]) == pytest.approx(1 / 200)
    with pytest.raises(ConfigError, match="every layer is kept dense"):
        prunable_density(0.5, [10, 20, 5], [False, False])


def test_random_structure_has_the_exact_count_sorted_and_unique():
    rng = np.random.default_rng(0)
    flat = random_structure(64, 100, 0.5125, rng)
    assert flat.size == 3280 and np.all(np.diff(flat) > 0)
    assert flat.min() >= 0 and flat.max() < 6400


def test_random_structure_extremes():
    rng = np.random.default_rng(0)
    assert random_structure(3, 2, 1.0, rng).tolist() == [0, 1, 2, 3, 4, 5]
    assert random_structure(3, 2, 0.01, rng).size == 1   # never an empty layer


def _layer(n_in, n_out, flat):
    from types import SimpleNamespace

    return SimpleNamespace(n_in=n_in, n_out=n_out, flat=np.array(flat, dtype=np.int64))


def test_connectivity_follows_paths_from_the_inputs():
    """2-2-2: input 0 -> hidden 1 (flat 1*2 + 0 = 2); hidden 0 -> output 0 (flat 0) and
    hidden 1 -> output 1 (flat 3). Hidden 0 is reached by no input, so output 0 is cut off."""
    from topo.train.sparsity import connectivity

    state = connectivity([_layer(2, 2, [2]), _layer(2, 2, [0, 3])])
    assert (state.empty_layers, state.unreached_outputs, state.disconnected) == ([], [0], False)
    assert state.problems == ["output unit 0 of 2 is reached by no input"]
    # hidden 1 -> output 1 removed: nothing reaches the outputs
    state = connectivity([_layer(2, 2, [2]), _layer(2, 2, [0])])
    assert state.disconnected and state.problems == ["no input unit reaches any output unit"]
    state = connectivity([_layer(2, 2, []), _layer(2, 2, [0, 3])])
    assert state.empty_layers == [0] and state.problems == [
        "layer 0 has no connection", "no input unit reaches any output unit"]
    assert connectivity([_layer(2, 2, [0, 3]), _layer(2, 2, [1, 2])]).problems == []
