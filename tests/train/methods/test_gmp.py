"""Gradual magnitude pruning."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.train.config import TrainConfig
from topo.train.methods import GMP, LayerChange
from topo.train.methods.schedules import CubicSchedule
from topo.train.model import SparseLinear, SparseMLP

from .conftest import make_context


def _dense():
    values = torch.tensor([0.1, -0.8, 0.3, 0.5, -0.2, 0.9, 0.05, -0.4])
    return SparseMLP([SparseLinear(4, 2, np.arange(8), values, torch.zeros(2))], "identity")


def test_gmp_prunes_each_layer_by_magnitude_to_the_scheduled_density():
    model = _dense()
    method = GMP(CubicSchedule(final_density=0.25, begin=0, end=10, delta_t=5))
    assert method.after_step(make_context(model, step=4)) == {}
    # step 10 is the end: density 0.25, round(0.25 * 8) = 2 kept: |0.9| and |-0.8|
    changes = method.after_step(make_context(model, step=10))
    assert changes == {0: LayerChange(added=0, removed=6)}
    assert model.layers[0].flat.tolist() == [1, 5]
    assert model.layers[0].values.data.tolist() == pytest.approx([-0.8, 0.9])


def test_gmp_keeps_at_least_one_connection_and_never_grows():
    model = _dense()
    method = GMP(CubicSchedule(final_density=0.01, begin=0, end=1, delta_t=1))
    method.after_step(make_context(model, step=1))
    assert model.layers[0].flat.tolist() == [5]
    assert method.n_keep(model.layers[0], 0.9) == 1   # never more than it has


def test_gmp_schedule_comes_from_the_configuration():
    config = TrainConfig(method="gmp", density=0.3, gmp_begin=4, gmp_delta_t=6,
                         gmp_end_fraction=0.5)
    s = GMP.from_config(config, total_steps=40).schedule
    assert (s.final_density, s.begin, s.end, s.delta_t) == (0.3, 4, 20, 6)
    assert GMP.starts_dense
