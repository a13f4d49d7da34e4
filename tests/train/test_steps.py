"""Step rules: the gradient step, and the sketched Gauss-Newton step against the exact
minimum-norm solve of the linearised problem."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.errors import ConfigError
from topo.train import TrainConfig
from topo.train.model import SparseLinear, SparseMLP
from topo.train.sketched_gn import (
    count_sketch,
    gauss_newton_direction,
    jacobian_products,
    preconditioned_cg,
)
from topo.train.steps import GradientStep, SketchedGaussNewtonStep


def _mse(out, y, reduction="mean"):
    return torch.nn.functional.mse_loss(out.reshape(-1), y, reduction=reduction)


def _two_layer(n=6, d=3, m=5, nnz=11, seed=0):
    torch.manual_seed(seed)
    flat = np.sort(np.random.default_rng(seed).choice(d * m, size=nnz, replace=False))
    hidden = SparseLinear(d, m, flat, torch.randn(nnz), 0.1 * torch.randn(m))
    out = SparseLinear(m, 1, np.arange(m), torch.randn(m), torch.tensor([0.3]))
    model = SparseMLP([hidden, out], "relu")
    return model, torch.randn(n, d), torch.randn(n)


def _jacobian(model, x):
    """∂f(x_i)/∂(first layer's connection weights), by autograd (independent of topo's
    structured products)."""
    hidden, out = model.layers

    xd, bias = x.double(), hidden.bias.detach().double()
    a, c = out.dense_weight().detach().double(), out.bias.detach().double()

    def f(values):
        w = torch.zeros(hidden.size, dtype=torch.float64).index_put((hidden.flat,), values)
        z = torch.relu(xd @ w.view(hidden.n_out, hidden.n_in).t() + bias)
        return (z @ a.t() + c).reshape(-1)

    values = hidden.values.detach().double().clone()
    return torch.autograd.functional.jacobian(f, values).double().numpy(), \
        f(values).detach().double().numpy()


@pytest.mark.xdist_group("torch-dynamo")   # torch.optim imports torch._dynamo
def test_gradient_step_is_backward_then_the_optimiser_step():
    model, x, y = _two_layer()
    reference, _, _ = _two_layer()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    out, loss = GradientStep()(model, opt, x, y, _mse,
                               lambda m: m.layers[0].values.abs().sum(), None)
    ref_out = reference(x)
    ref_loss = _mse(ref_out, y)
    (ref_loss + reference.layers[0].values.abs().sum()).backward()
    with torch.no_grad():
        for p in reference.parameters():
            p -= 0.1 * p.grad
    torch.testing.assert_close(loss, ref_loss)
    torch.testing.assert_close(out, ref_out)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q)


def test_gauss_newton_direction_equals_the_exact_minimum_norm_solve():
    model, x, y = _two_layer()
    hidden, out = model.layers
    J, f = _jacobian(model, x)
    r = f - y.double().numpy()
    # n = 6 samples, 11 connections: J has full row rank, Δ = Jᵀ (J Jᵀ)⁻¹ r
    assert np.linalg.matrix_rank(J) == 6
    exact = J.T @ np.linalg.solve(J @ J.T, r)
    direction, info = gauss_newton_direction(
        x, hidden.flat, hidden.values.detach(), hidden.bias.detach(),
        out.dense_weight().detach()[0], torch.as_tensor(r), n_in=3, sketch_size=24,
        tol=1e-12, max_iter=50, generator=torch.Generator().manual_seed(1), damping=0.0)
    np.testing.assert_allclose(direction.numpy(), exact, rtol=1e-8, atol=1e-10)
    assert info["relative_residual"] <= 1e-12 and info["iterations"] <= 6
    # the linearised problem is solved: J Δ = r
    np.testing.assert_allclose(J @ direction.numpy(), r, atol=1e-9)
    # with the default damping: the exact solve of the damped system
    damped, info = gauss_newton_direction(
        x, hidden.flat, hidden.values.detach(), hidden.bias.detach(),
        out.dense_weight().detach()[0], torch.as_tensor(r), n_in=3, sketch_size=24,
        tol=1e-12, max_iter=50, generator=torch.Generator().manual_seed(1))
    lam = 1e-8 * np.mean(np.sum(J * J, axis=1))
    assert info["damping"] == pytest.approx(lam, rel=1e-12)
    np.testing.assert_allclose(damped.numpy(),
                               J.T @ np.linalg.solve(J @ J.T + lam * np.eye(6), r),
                               rtol=1e-8, atol=1e-10)


@pytest.mark.xdist_group("torch-dynamo")   # torch.optim imports torch._dynamo
def test_the_step_rule_moves_only_the_first_layer_by_lr_times_the_direction():
    model, x, y = _two_layer(seed=2)
    hidden, out = model.layers
    J, f = _jacobian(model, x)
    exact = J.T @ np.linalg.solve(J @ J.T, f - y.double().numpy())
    before = [p.detach().clone() for p in model.parameters()]
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    rule = SketchedGaussNewtonStep(sketch_size=None, cg_tol=1e-12, cg_iters=50)
    got_out, loss = rule(model, opt, x, y, _mse, None, torch.Generator().manual_seed(0))
    np.testing.assert_allclose((before[0] - hidden.values.detach()).double().numpy(),
                               0.5 * exact, rtol=1e-4, atol=1e-5)
    for old, new in zip(before[1:], [hidden.bias, out.values, out.bias]):
        torch.testing.assert_close(old, new.detach())
    torch.testing.assert_close(loss, _mse(got_out, y))
    assert rule.last["sketch_size"] == 4 * len(x)


@pytest.mark.xdist_group("torch-dynamo")   # torch.optim imports torch._dynamo
def test_a_full_gauss_newton_step_fits_a_batch_when_no_unit_switches():
    # every hidden unit stays active (bias 50), so f is linear in W, f(x) = v·x + c with
    # v = Σ a_r w_r: 3 samples in 3 dimensions are fitted exactly by the full step (lr = 1);
    # output weights of alternating sign keep f small
    torch.manual_seed(5)
    hidden = SparseLinear(3, 10, np.arange(30), torch.randn(30), torch.full((10,), 50.0))
    out = SparseLinear(10, 1, np.arange(10), torch.tensor([1.0, -1.0] * 5), torch.zeros(1))
    model = SparseMLP([hidden, out], "relu")
    x, y = torch.randn(3, 3), torch.randn(3)
    rule = SketchedGaussNewtonStep(None, 1e-12, 50)
    rule(model, torch.optim.SGD(model.parameters(), lr=1.0), x, y, _mse, None,
         torch.Generator().manual_seed(0))
    assert bool((hidden(x) > 0).all())
    torch.testing.assert_close(model(x).reshape(-1), y, atol=1e-4, rtol=0)


def test_jacobian_products_match_the_explicit_jacobian():
    model, x, y = _two_layer(seed=3)
    hidden, out = model.layers
    J, _ = _jacobian(model, x)
    rows = torch.div(hidden.flat, 3, rounding_mode="floor")
    cols = hidden.flat - rows * 3
    w = hidden.dense_weight().detach().double()
    active = (x.double() @ w.t() + hidden.bias.detach().double()) > 0
    jv, jtu = jacobian_products(x.double(), active, out.dense_weight().detach()[0].double(),
                                rows, cols)
    v = torch.randn(hidden.n_connections, dtype=torch.float64)
    u = torch.randn(len(x), dtype=torch.float64)
    np.testing.assert_allclose(jv(v).numpy(), J @ v.numpy(), rtol=1e-10)
    np.testing.assert_allclose(jtu(u).numpy(), J.T @ u.numpy(), rtol=1e-10)


def test_count_sketch_is_a_signed_hashing_of_the_jacobian_columns():
    model, x, _ = _two_layer(seed=4)
    hidden, out = model.layers
    J, _ = _jacobian(model, x)
    rows = torch.div(hidden.flat, 3, rounding_mode="floor")
    cols = hidden.flat - rows * 3
    w = hidden.dense_weight().detach().double()
    active = (x.double() @ w.t() + hidden.bias.detach().double()) > 0
    sketch = count_sketch(x.double(), active, out.dense_weight().detach()[0].double(), rows,
                          cols, 7, torch.Generator().manual_seed(9))
    g = torch.Generator().manual_seed(9)   # the same draws, to build S explicitly
    h = torch.randint(7, (hidden.n_connections,), generator=g).numpy()
    sign = torch.randint(2, (hidden.n_connections,), generator=g).numpy() * 2.0 - 1.0
    S = np.zeros((7, hidden.n_connections))
    S[h, np.arange(hidden.n_connections)] = sign
    np.testing.assert_allclose(sketch.numpy(), S @ J.T, rtol=1e-10, atol=1e-12)


def test_preconditioned_cg_stops_at_its_tolerance_or_its_iteration_limit():
    rng = np.random.default_rng(0)
    A = rng.normal(size=(8, 20))
    M = torch.as_tensor(A @ A.T)
    rhs = torch.as_tensor(rng.normal(size=8))
    sketch = torch.as_tensor(A.T)    # an exact "sketch": the preconditioner is M itself
    g, info = preconditioned_cg(lambda v: M @ v, rhs, sketch, 1e-10, 50)
    np.testing.assert_allclose(M.numpy() @ g.numpy(), rhs.numpy(), atol=1e-8)
    assert info["iterations"] == 1      # a perfect preconditioner solves in one step
    g, info = preconditioned_cg(lambda v: M @ v, rhs, sketch, 1e-10, 50, shift=2.0)
    np.testing.assert_allclose(M.numpy() @ g.numpy() + 2.0 * g.numpy(), rhs.numpy(),
                               atol=1e-8)
    assert info["iterations"] == 1
    poor = torch.as_tensor(rng.normal(size=(30, 8)))
    g, info = preconditioned_cg(lambda v: M @ v, rhs, poor, 1e-12, 2)
    assert info["iterations"] == 2 and info["relative_residual"] > 1e-12
    zero, info = preconditioned_cg(lambda v: M @ v, torch.zeros(8, dtype=torch.float64),
                                   sketch, 1e-10, 50)
    assert zero.abs().max() == 0 and info["iterations"] == 0


def test_dependent_rows_are_solved_through_the_damping():
    # 5 samples but one input and 2 units, all active: J has rank <= 2, J Jᵀ is singular,
    # and Δ approaches the least-squares step (JᵀJ)⁺ Jᵀ r
    x = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0]])
    flat = torch.tensor([0, 1])
    values, bias, a = torch.tensor([1.0, 2.0]), torch.tensor([10.0, 10.0]), \
        torch.tensor([1.0, -0.5])
    r = torch.tensor([1.0, -1.0, 2.0, 0.0, 1.0], dtype=torch.float64)
    direction, info = gauss_newton_direction(
        x, flat, values, bias, a, r, n_in=1, sketch_size=10, tol=1e-12, max_iter=50,
        generator=torch.Generator().manual_seed(0))
    J = np.column_stack([1.0 * x.numpy()[:, 0], -0.5 * x.numpy()[:, 0]])
    np.testing.assert_allclose(direction.numpy(), np.linalg.pinv(J) @ r.numpy(), rtol=1e-5)
    assert info["damping"] > 0


def test_a_network_whose_units_are_all_dead_gets_no_direction():
    direction, info = gauss_newton_direction(
        torch.ones(3, 2), torch.tensor([0, 1]), torch.tensor([-1.0, -1.0]),
        torch.tensor([0.0]), torch.tensor([1.0]), torch.ones(3, dtype=torch.float64),
        n_in=2, sketch_size=6, tol=1e-8, max_iter=10,
        generator=torch.Generator().manual_seed(0))
    assert direction.tolist() == [0.0, 0.0] and info["iterations"] == 0


def test_a_sketch_that_lost_rank_still_gives_a_preconditioner():
    M = torch.eye(3, dtype=torch.float64) * 2.0
    sketch = torch.zeros(6, 3, dtype=torch.float64)
    sketch[0, 0] = 1.0                  # rank 1
    g, info = preconditioned_cg(lambda v: M @ v, torch.ones(3, dtype=torch.float64), sketch,
                                1e-12, 20)
    np.testing.assert_allclose(g.numpy(), [0.5, 0.5, 0.5], rtol=1e-10)


@pytest.mark.parametrize("changes, message", [
    ({"dataset": "digits", "arch": [64, 20, 10]}, "regression tasks"),
    ({"arch": [10, 20, 20, 1]}, "two-layer networks with one output"),
    ({"arch": None}, "two-layer networks"),
    ({"activation": "tanh"}, "needs relu units"),
    ({"l1": 0.1}, "cannot add an l1 penalty"),
])
def test_sketched_gn_refuses_what_it_cannot_train(changes, message):
    base = {"optimizer": "sketched-gn", "dataset": "synthetic-F1", "arch": [10, 20, 1]}
    with pytest.raises(ConfigError, match=message):
        TrainConfig(**{**base, **changes})
