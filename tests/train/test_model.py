"""SparseLinear: the CSR path and the masked-dense path compute the same function and gradients."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.train.model import SparseLinear


def _layer(backend: str, seed: int = 0):
    rng = np.random.default_rng(seed)
    n_in, n_out = 30, 20
    flat = np.sort(rng.choice(n_in * n_out, 90, replace=False))
    values = torch.from_numpy(rng.normal(size=90).astype(np.float32))
    bias = torch.from_numpy(rng.normal(size=n_out).astype(np.float32))
    return SparseLinear(n_in, n_out, flat, values, bias, backend=backend), flat, values, bias


def test_sparse_and_dense_paths_agree_with_an_explicit_masked_product():
    sparse, flat, values, bias = _layer("sparse")
    dense, *_ = _layer("dense")
    assert sparse.uses_sparse and not dense.uses_sparse
    x = torch.randn(7, 30, dtype=torch.float32, requires_grad=True)
    w = np.zeros(20 * 30, dtype=np.float32)
    w[flat] = values.numpy()
    expected = x.detach().numpy() @ w.reshape(20, 30).T + bias.numpy()
    for layer in (sparse, dense):
        np.testing.assert_allclose(layer(x).detach().numpy(), expected, rtol=1e-5, atol=1e-5)


def test_sparse_path_gradients_match_the_dense_path():
    sparse, *_ = _layer("sparse")
    dense, *_ = _layer("dense")
    x = torch.randn(5, 30)
    g = torch.randn(5, 20)
    grads = []
    for layer in (sparse, dense):
        xi = x.clone().requires_grad_(True)
        (layer(xi) * g).sum().backward()
        grads.append((xi.grad.numpy(), layer.values.grad.numpy(), layer.bias.grad.numpy()))
    for a, b in zip(*grads):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)
    # the weight gradient of connection (i, j) is sum_b g[b, i] x[b, j]
    rows, cols = np.divmod(sparse.flat.numpy(), 30)
    expected = (g.numpy()[:, rows] * x.numpy()[:, cols]).sum(0)
    np.testing.assert_allclose(grads[0][1], expected, rtol=1e-4, atol=1e-5)


def test_a_connection_of_weight_zero_is_still_in_the_mask():
    layer = SparseLinear(3, 2, np.array([0, 4]), torch.tensor([0.0, 1.5]), torch.zeros(2))
    mask = layer.mask()
    assert mask.sum() == 2 and mask[0, 0] and mask[1, 1]
    assert layer.dense_weight()[0, 0].item() == 0.0


def test_auto_backend_keeps_small_layers_dense():
    layer, *_ = _layer("auto")
    assert not layer.uses_sparse


def test_auto_backend_uses_csr_for_large_sparse_layers_only():
    rng = np.random.default_rng(0)
    size = 784 * 1000
    for density, sparse in ((0.045, True), (0.5, False)):
        flat = np.sort(rng.choice(size, int(density * size), replace=False))
        layer = SparseLinear(784, 1000, flat, torch.zeros(flat.size), torch.zeros(1000))
        assert layer.uses_sparse is sparse


def test_mlp_forward_is_the_explicit_composition_and_accepts_dense_weights():
    from topo.train.model import SparseMLP

    l0 = SparseLinear(3, 2, np.array([0, 4]), torch.tensor([1.0, -2.0]), torch.tensor([0.5, 0.0]))
    l1 = SparseLinear(2, 1, np.array([0, 1]), torch.tensor([3.0, 1.0]), torch.tensor([-1.0]))
    model = SparseMLP([l0, l1], "relu")
    x = torch.tensor([[1.0, 1.0, 1.0]])
    # hidden: relu([1*1 + 0.5, -2*1 + 0]) = [1.5, 0]; out = 3*1.5 + 1*0 - 1 = 3.5
    assert model(x).item() == pytest.approx(3.5)
    assert model.widths == [3, 2, 1]
    # replacing layer 0's weights by a dense matrix of ones: hidden relu([3.5, 3]) -> 3*3.5+3-1
    weights = [torch.ones(2, 3), torch.tensor([[3.0, 1.0]])]
    assert model(x, weights).item() == pytest.approx(12.5)


def test_capture_and_restore_put_back_connections_weights_and_bias():
    layer = SparseLinear(3, 2, np.array([0, 4]), torch.tensor([1.0, -2.0]), torch.ones(2))
    saved = layer.capture()
    layer.set_structure(np.array([1, 2, 3]), torch.tensor([7.0, 8.0, 9.0]))
    layer.bias.data.fill_(5.0)
    saved_again = layer.capture()
    layer.restore(saved)
    assert layer.flat.tolist() == [0, 4] and layer.values.data.tolist() == [1.0, -2.0]
    assert layer.bias.data.tolist() == [1.0, 1.0]
    # a capture is a copy: changing the layer later does not change it
    assert saved_again["flat"].tolist() == [1, 2, 3]
    layer.values.data.fill_(0.0)
    assert saved["values"].tolist() == [1.0, -2.0]


def test_to_graph_takes_the_structure_from_the_connection_set():
    from topo.train.model import SparseMLP

    l0 = SparseLinear(3, 2, np.array([0, 4, 5]), torch.tensor([0.0, 1.5, -1.0]),
                      torch.tensor([0.25, 0.0]))
    model = SparseMLP([l0, SparseLinear(2, 1, np.array([1]), torch.tensor([2.0]),
                                        torch.zeros(1))])
    g = model.to_graph(input_shape=(3, 1))
    assert g.names == ["layers.0", "layers.1"] and g.input_shape == (3, 1)
    assert g.n_connections == [3, 1]   # the weight-0 connection (0, 0) is kept
    w = g.layers[0]
    assert w.toarray().tolist() == [[0.0, 0.0, 0.0], [0.0, 1.5, -1.0]]
    assert sorted(zip(*g.masks()[0].nonzero())) == [(0, 0), (1, 1), (1, 2)]
    assert g.biases[0].tolist() == [0.25, 0.0]


def test_build_mlp_draws_each_mask_then_its_weights_layer_by_layer():
    from topo.train.initialization import WeightInit
    from topo.train.model import build_mlp
    from topo.train.sparsity import random_structure

    model = build_mlp([10, 8, 3], [0.5, 1.0], "tanh", "dense",
                      WeightInit("he_uniform", [10, 8, 3], torch.Generator().manual_seed(1)),
                      np.random.default_rng(2))
    assert [layer.n_connections for layer in model.layers] == [40, 24]
    assert model.activation_name == "tanh" and isinstance(model.act, torch.nn.Tanh)
    # the same draws made by hand: mask 0 (numpy), weights 0 (torch), mask 1, weights 1
    rng, gen = np.random.default_rng(2), torch.Generator().manual_seed(1)
    flat0 = random_structure(10, 8, 0.5, rng)
    w0 = (torch.rand(40, generator=gen) * 2 - 1) * np.sqrt(6 / 5)   # fan_in 0.5 * 10
    np.testing.assert_array_equal(model.layers[0].flat.numpy(), flat0)
    torch.testing.assert_close(model.layers[0].values.data, w0)
    assert model.layers[1].flat.tolist() == list(range(24))
    assert model.layers[0].bias.data.tolist() == [0.0] * 8


def test_dense_gradients_are_those_of_absent_positions_at_weight_zero():
    """A 1-layer linear model, MSE, input e_2: only column 2 receives a gradient.

    dL/dW[i, j] = (2/n_out) (y_hat_i - t_i) x_j, so with x = e_2, output 0 too low and
    output 1 exact, the only non-zero gradient is at (0, 2), an absent position.
    """
    from topo.train.model import SparseMLP, dense_gradients

    layer = SparseLinear(4, 2, np.array([0, 5]), torch.tensor([0.5, 0.5]), torch.zeros(2))
    model = SparseMLP([layer], "identity")
    x = torch.tensor([[0.0, 0.0, 1.0, 0.0]])
    t = torch.tensor([[3.0, 0.0]])
    grads = dense_gradients(model, x, t, torch.nn.functional.mse_loss)
    expected = np.zeros(8)
    expected[2] = 2 / 2 * (0.0 - 3.0) * 1.0
    np.testing.assert_allclose(grads[0], expected)
    assert layer.values.grad is None   # the layer's own gradients are untouched


def test_sparse_path_computes_only_the_gradients_asked_for():
    sparse, *_ = _layer("sparse")
    sparse.bias.requires_grad_(False)
    x = torch.randn(5, 30)   # no input gradient wanted
    sparse(x).sum().backward()
    rows, cols = np.divmod(sparse.flat.numpy(), 30)
    np.testing.assert_allclose(sparse.values.grad.numpy(), x.numpy()[:, cols].sum(0),
                               rtol=1e-5, atol=1e-5)
    assert sparse.bias.grad is None and x.grad is None
    other, *_ = _layer("sparse")
    other.values.requires_grad_(False)
    xi = x.clone().requires_grad_(True)
    other(xi).sum().backward()
    # d(sum y)/dx[b, j] = sum_i W[i, j]: the column sums of the weight matrix
    np.testing.assert_allclose(xi.grad.numpy()[0], other.dense_weight().sum(0).detach(),
                               rtol=1e-5, atol=1e-5)
    assert other.values.grad is None
