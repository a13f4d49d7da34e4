"""SNIP: connection sensitivity on one batch, global top-k at initialisation."""

from __future__ import annotations

import numpy as np
import torch

from topo.train.config import TrainConfig
from topo.train.methods import SNIP, LayerChange, snip_scores
from topo.train.model import SparseLinear, SparseMLP

from .conftest import make_context


def _model(seed: int = 0):
    torch.manual_seed(seed)
    l0 = SparseLinear(5, 4, np.arange(20), torch.randn(20), torch.randn(4))
    l1 = SparseLinear(4, 3, np.arange(12), torch.randn(12), torch.randn(3))
    return SparseMLP([l0, l1], "relu")


def _independent_scores(model, x, y):
    w0 = model.layers[0].values.detach().view(4, 5).clone().requires_grad_(True)
    w1 = model.layers[1].values.detach().view(3, 4).clone().requires_grad_(True)
    b0, b1 = model.layers[0].bias.detach(), model.layers[1].bias.detach()
    out = torch.relu(x @ w0.T + b0) @ w1.T + b1
    torch.nn.functional.cross_entropy(out, y).backward()
    return [(w0.grad * w0).abs().reshape(-1).detach().numpy(),
            (w1.grad * w1).abs().reshape(-1).detach().numpy()]


def test_snip_scores_are_gradient_times_weight_of_one_batch():
    model = _model()
    x, y = torch.randn(8, 5), torch.tensor([0, 1, 2, 0, 1, 2, 0, 1])
    expected = _independent_scores(model, x, y)
    scores = snip_scores(model, x, y, torch.nn.functional.cross_entropy)
    for s, e in zip(scores, expected):
        np.testing.assert_allclose(s, e, rtol=1e-5, atol=1e-7)
    assert model.layers[0].values.grad is None   # gradients cleared again


def test_snip_keeps_the_top_density_of_prunable_connections_on_a_drawn_batch():
    model = _model(1)
    X = torch.randn(30, 5)
    y = torch.arange(30) % 3
    ctx = make_context(model, train_data=(X, y), seed=7, prunable=[True, False],
                       loss_fn=torch.nn.functional.cross_entropy)
    # the batch: the first 6 of a permutation drawn with the run's torch generator
    idx = torch.randperm(30, generator=torch.Generator().manual_seed(7))[:6]
    score0 = _independent_scores(model, X[idx], y[idx])[0]
    changes = SNIP(density=0.25, batch_size=6).at_init(ctx)
    # only layer 0 is prunable: round(0.25 * 20) = 5 kept, the 5 highest scores
    assert changes == {0: LayerChange(added=0, removed=15)}
    assert model.layers[0].flat.tolist() == sorted(np.argsort(-score0)[:5].tolist())
    assert model.layers[1].n_connections == 12


def test_snip_reads_density_and_batch_size_from_the_configuration():
    method = SNIP.from_config(TrainConfig(method="snip", density=0.3, batch_size=16), 100)
    assert (method.density, method.batch_size) == (0.3, 16) and SNIP.starts_dense
