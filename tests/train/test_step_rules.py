"""SSGD's affine-scaled step against hand computation, and which step rule a
configuration gets."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.errors import ConfigError
from topo.train import TrainConfig
from topo.train.model import SparseMLP
from topo.train.optim import SSGD, Adam, affine_scaling, optimizer_factory, ssgd, step_rule
from topo.train.steps import GradientStep, SketchedGaussNewtonStep

from .conftest import tiny_layer


def _theta_and_grad():
    theta = torch.nn.Parameter(torch.tensor([1.0, -2.0, 0.5, 0.0]))
    theta.grad = torch.tensor([0.4, 0.4, -0.8, 1.0])
    return theta


def test_affine_scaling_by_hand_in_both_forms():
    theta = torch.tensor([1.0, -2.0, 0.5, 0.0])
    # l2, eps 0.25: w^2 = theta^2 + 0.25 = 1.25, 4.25, 0.5, 0.25; mean 1.5625
    torch.testing.assert_close(affine_scaling(theta, 0.25, "l2"),
                               torch.tensor([0.8, 2.72, 0.32, 0.16]))
    # l1, eps 0.5: w = |theta| + 0.5 = 1.5, 2.5, 1, 0.5; w^2 = 2.25, 6.25, 1, 0.25; mean 2.4375
    torch.testing.assert_close(affine_scaling(theta, 0.5, "l1"),
                               torch.tensor([2.25, 6.25, 1.0, 0.25]) / 2.4375)
    with pytest.raises(ValueError, match="unknown SSGD form 'l3'"):
        affine_scaling(theta, 0.1, "l3")


def test_ssgd_step_is_the_gradient_scaled_weight_by_weight():
    theta = _theta_and_grad()
    bias = torch.nn.Parameter(torch.tensor([1.0, -1.0]))
    bias.grad = torch.tensor([0.5, 0.5])
    opt = SSGD([{"params": [theta], "scaled": True}, {"params": [bias], "scaled": False}],
               lr=0.1, eps=0.25, form="l2")
    opt.step()
    # theta - 0.1 * s * g with s = 0.8, 2.72, 0.32, 0.16 (above)
    expected = [1.0 - 0.1 * 0.8 * 0.4, -2.0 - 0.1 * 2.72 * 0.4, 0.5 + 0.1 * 0.32 * 0.8,
                0.0 - 0.1 * 0.16 * 1.0]
    torch.testing.assert_close(theta.data, torch.tensor(expected))
    # the bias takes the plain step
    torch.testing.assert_close(bias.data, torch.tensor([0.95, -1.05]))


def test_ssgd_momentum_accumulates_the_scaled_gradient_and_decay_is_scaled_too():
    theta = _theta_and_grad()
    opt = SSGD([{"params": [theta], "scaled": True}], lr=1.0, momentum=0.5,
               weight_decay=0.1, eps=0.25)
    opt.step()
    g1 = np.array([0.4, 0.4, -0.8, 1.0]) + 0.1 * np.array([1.0, -2.0, 0.5, 0.0])
    s1 = np.array([0.8, 2.72, 0.32, 0.16])
    theta1 = np.array([1.0, -2.0, 0.5, 0.0]) - s1 * g1
    np.testing.assert_allclose(theta.data.numpy(), theta1, rtol=1e-6)
    theta.grad = torch.tensor([0.4, 0.4, -0.8, 1.0])
    opt.step()
    w2 = theta1 ** 2 + 0.25
    s2 = w2 / w2.mean()
    g2 = np.array([0.4, 0.4, -0.8, 1.0]) + 0.1 * theta1
    buf = 0.5 * (s1 * g1) + s2 * g2
    np.testing.assert_allclose(theta.data.numpy(), theta1 - buf, rtol=1e-5)


def test_small_weights_move_slower_than_large_ones_under_ssgd():
    theta = torch.nn.Parameter(torch.tensor([0.01, 1.0]))
    theta.grad = torch.tensor([1.0, 1.0])
    SSGD([{"params": [theta], "scaled": True}], lr=0.1, eps=1e-4).step()
    moved = np.abs(theta.data.numpy() - np.array([0.01, 1.0]))
    assert moved[0] < 0.001 * moved[1]


def test_ssgd_function_scales_the_connection_weights_and_not_the_biases():
    layer = tiny_layer()
    config = TrainConfig(optimizer="ssgd", ssgd_eps=0.5, ssgd_form="l1", lr=0.2,
                         momentum=0.0)
    opt = ssgd([layer.values, layer.bias], config)
    assert [g["scaled"] for g in opt.param_groups] == [True, False]
    assert (opt.eps, opt.form) == (0.5, "l1")
    model = SparseMLP([layer])
    built = optimizer_factory(config)(model)
    assert isinstance(built, SSGD)
    assert [g["scaled"] for g in built.param_groups] == [True, False]
    assert isinstance(optimizer_factory(config, "adam")(model), Adam)
    with pytest.raises(ConfigError, match="ssgd scales the steps"):
        TrainConfig(optimizer="ssgd", main_effects=True)
    with pytest.raises(ConfigError, match="ssgd scales the steps"):
        TrainConfig(method="ssgd", main_effects=True)


def test_step_rule_follows_the_optimizer():
    assert isinstance(step_rule(TrainConfig()), GradientStep)
    gn = step_rule(TrainConfig(optimizer="sketched-gn", dataset="synthetic-F1",
                               arch=[10, 20, 1], gn_sketch_size=64, gn_cg_tol=1e-3,
                               gn_cg_iters=7))
    assert isinstance(gn, SketchedGaussNewtonStep)
    assert (gn.sketch_size, gn.cg_tol, gn.cg_iters) == (64, 1e-3, 7)
