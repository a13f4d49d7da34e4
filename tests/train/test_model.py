"""SparseLinear: the CSR path and the masked-dense path compute the same function and gradients."""

from __future__ import annotations

import numpy as np
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
