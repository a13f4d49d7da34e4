"""The sparsity methods' rules, each checked against a hand-derived or independent result."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from topo.train.methods import (
    drop_and_grow,
    er_densities,
    erk_densities,
    global_magnitude_keep,
    gmp_density,
    grow_random,
    grow_top,
    random_structure,
    rigl_drop_fraction,
    set_drop_mask,
    snip_scores,
)
from topo.train.model import SparseLinear, SparseMLP


def test_er_densities_of_set_on_digits():
    # eps (n_in + n_out) / (n_in n_out): 20*164/6400, 20*200/10000, min(1, 20*110/1000)
    assert er_densities([64, 100, 100, 10], 20) == pytest.approx([0.5125, 0.4, 1.0])


def test_erk_reaches_the_target_density_and_caps_small_layers():
    widths = [784, 1000, 1000, 1000, 10]
    dens = erk_densities(widths, 0.05)
    sizes = [widths[k] * widths[k + 1] for k in range(4)]
    total = sum(d * s for d, s in zip(dens, sizes))
    assert total == pytest.approx(0.05 * sum(sizes))
    # the 1000 -> 10 layer's ER shape (1010/10000) is so large that it is capped at dense
    assert dens[3] == 1.0
    # the others keep the Erdos-Renyi ratio (n_in + n_out) / (n_in n_out)
    assert dens[0] / dens[1] == pytest.approx((1784 / 784000) / (2000 / 1e6))


def test_random_structure_has_the_exact_count():
    rng = np.random.default_rng(0)
    flat = random_structure(64, 100, 0.5125, rng)
    assert flat.size == 3280 and np.all(np.diff(flat) > 0)


def test_set_drops_smallest_positive_and_largest_negative_fraction():
    values = np.array([0.5, -0.1, 0.2, -0.9, 0.05, -0.3, 0.8, -0.02, 0.0, 0.4])
    # positives 0.5, 0.2, 0.05, 0.8, 0.4: floor(0.4*5) = 2 smallest -> 0.05, 0.2
    # negatives -0.1, -0.9, -0.3, -0.02: floor(0.4*4) = 1 closest to 0 -> -0.02
    # the exact zero lies between the thresholds and goes too
    drop = set_drop_mask(values, 0.4)
    assert np.flatnonzero(drop).tolist() == [2, 4, 7, 8]


def _tiny_layer():
    flat = np.array([0, 2, 5, 7])
    return SparseLinear(4, 2, flat, torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.zeros(2))


def test_drop_and_grow_keeps_survivors_and_resets_optimizer_state_of_new_connections():
    layer = _tiny_layer()
    opt = torch.optim.SGD([layer.values, layer.bias], lr=0.1, momentum=0.9)
    layer(torch.ones(1, 4)).sum().backward()
    opt.step()
    momentum_before = opt.state[layer.values]["momentum_buffer"].clone()
    values_before = layer.values.data.clone()
    change = drop_and_grow(layer, np.array([False, True, False, False]), np.array([1]),
                           torch.tensor([9.0]), opt)
    assert (change.added, change.removed) == (1, 1)
    assert layer.flat.tolist() == [0, 1, 5, 7]
    assert layer.values.data.tolist() == [values_before[0], 9.0, values_before[2],
                                          values_before[3]]
    buf = opt.state[layer.values]["momentum_buffer"]
    assert buf.tolist() == [momentum_before[0], 0.0, momentum_before[2], momentum_before[3]]
    # the optimiser now steps the new parameter object
    assert any(p is layer.values for p in opt.param_groups[0]["params"])


def test_drop_and_grow_refuses_growing_an_existing_connection():
    layer = _tiny_layer()
    with pytest.raises(ValueError):
        drop_and_grow(layer, np.zeros(4, bool), np.array([2]), None, None)


def test_grow_top_picks_highest_scores_among_absent_positions():
    scores = np.array([9.0, 1.0, 8.0, 3.0, 7.0, 0.0])
    # position 0 and 2 are connections: the two best absent are 4 (7.0) and 3 (3.0)
    assert grow_top(scores, np.array([0, 2]), 2).tolist() == [3, 4]


def test_grow_random_only_picks_absent_positions():
    rng = np.random.default_rng(0)
    grown = grow_random(rng, 100, np.arange(0, 100, 2), 30)
    assert grown.size == 30 and np.all(grown % 2 == 1) and np.unique(grown).size == 30


def test_rigl_grows_where_the_gradient_is_large():
    """A 1-layer linear model, MSE, input e_2: only column 2 receives a gradient.

    dL/dW[i, j] = (2/n_out) (y_hat_i - t_i) x_j, so with x = e_2, output 0 too low and
    output 1 exact, the only absent position with a non-zero gradient is (0, 2).
    """
    from topo.train.methods import dense_gradients

    layer = SparseLinear(4, 2, np.array([0, 5]), torch.tensor([0.5, 0.5]), torch.zeros(2),
                         backend="dense")
    model = SparseMLP([layer], "identity")
    x = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    t = torch.tensor([[3.0, 0.0]])
    grads = dense_gradients(model, x, t, torch.nn.functional.mse_loss)
    expected = np.zeros(8)
    expected[2] = 2 / 2 * (0.0 - 3.0) * 1.0   # row 0, col 2
    np.testing.assert_allclose(grads[0], expected)
    grown = grow_top(np.abs(grads[0]), layer.flat.numpy(), 1)
    assert grown.tolist() == [2]


def test_rigl_drop_fraction_decays_by_cosine():
    assert rigl_drop_fraction(0, 0.3, 1000) == pytest.approx(0.3)
    assert rigl_drop_fraction(500, 0.3, 1000) == pytest.approx(0.15)
    assert rigl_drop_fraction(250, 0.3, 1000) == pytest.approx(
        0.15 * (1 + math.cos(math.pi / 4)))
    assert rigl_drop_fraction(1000, 0.3, 1000) == 0.0


def test_gmp_follows_the_cubic_schedule():
    # s_t = s_f (1 - (1 - (t - t0)/(T - t0))^3) with s_f = 0.9
    assert gmp_density(0, 0, 1000, 0.1) == 1.0
    assert gmp_density(500, 0, 1000, 0.1) == pytest.approx(1 - 0.9 * (1 - 0.5 ** 3))
    assert gmp_density(1000, 0, 1000, 0.1) == pytest.approx(0.1)
    assert gmp_density(5000, 0, 1000, 0.1) == pytest.approx(0.1)


def test_global_magnitude_keeps_the_largest_weights_across_layers():
    keep = global_magnitude_keep([np.array([0.1, -5.0, 0.3]), np.array([-0.2, 4.0])], 3)
    assert [k.tolist() for k in keep] == [[False, True, True], [False, True]]


def test_snip_scores_are_gradient_times_weight_of_one_batch():
    torch.manual_seed(0)
    l0 = SparseLinear(5, 4, np.arange(20), torch.randn(20), torch.randn(4), backend="dense")
    l1 = SparseLinear(4, 3, np.arange(12), torch.randn(12), torch.randn(3), backend="dense")
    model = SparseMLP([l0, l1], "relu")
    x, y = torch.randn(8, 5), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    # independent computation with plain tensors
    w0 = l0.values.detach().view(4, 5).clone().requires_grad_(True)
    w1 = l1.values.detach().view(3, 4).clone().requires_grad_(True)
    out = torch.relu(x @ w0.T + l0.bias.detach()) @ w1.T + l1.bias.detach()
    torch.nn.functional.cross_entropy(out, y).backward()
    expected = [(w0.grad * w0).abs().reshape(-1), (w1.grad * w1).abs().reshape(-1)]
    scores = snip_scores(model, x, y, torch.nn.functional.cross_entropy)
    for s, e in zip(scores, expected):
        np.testing.assert_allclose(s, e.detach().numpy(), rtol=1e-5, atol=1e-7)
