"""Initial weight distributions with sparse-aware fans."""

from __future__ import annotations

import math

import pytest
import torch

from topo.errors import ConfigError
from topo.train.initialization import WeightInit


def _draw(kind: str, density: float, n: int = 20000):
    # layer 0 of a 100-50 network: fan_in = density * 100, fan_out = density * 50
    return WeightInit(kind, [100, 50], torch.Generator().manual_seed(0)).draw(0, n, density)


def test_he_uniform_bound_uses_the_effective_fan_in():
    w = _draw("he_uniform", 0.24)   # fan_in 24: b = sqrt(6 / 24) = 0.5
    assert w.dtype == torch.float32 and w.shape == (20000,)
    assert w.abs().max() <= 0.5 and w.abs().max() > 0.499
    assert w.var().item() == pytest.approx(0.5 ** 2 / 3, rel=0.03)   # U(-b, b): b^2 / 3


def test_he_normal_variance_is_two_over_fan_in():
    w = _draw("he_normal", 0.5)   # fan_in 50: variance 2 / 50
    assert w.var().item() == pytest.approx(0.04, rel=0.03)
    assert abs(w.mean().item()) < 0.01


def test_xavier_uniform_and_torch_default_bounds():
    # fan_in 0.5 * 100 = 50, fan_out 0.5 * 50 = 25
    assert _draw("xavier_uniform", 0.5).abs().max() <= math.sqrt(6 / 75)
    assert _draw("xavier_uniform", 0.5).abs().max() > 0.999 * math.sqrt(6 / 75)
    assert _draw("torch_default", 0.5).abs().max() <= 1 / math.sqrt(50)


def test_fans_below_one_are_raised_to_one():
    w = _draw("he_uniform", 0.001)   # fan_in 0.1 -> 1: b = sqrt(6)
    assert w.abs().max() <= math.sqrt(6) and w.abs().max() > 0.99 * math.sqrt(6)


def test_draws_come_from_the_given_generator():
    a = _draw("he_uniform", 0.24, n=5)
    # U(-b, b) as 2 b u - b with u ~ U(0, 1) from the same seed
    u = torch.rand(5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(a, (u * 2 - 1) * 0.5)


def test_unknown_initialisation_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown weight_init"):
        WeightInit("orthogonal", [4, 2], torch.Generator())
