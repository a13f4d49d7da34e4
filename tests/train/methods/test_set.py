"""SET: the signed drop rule, random regrowth, and its epoch schedule."""

from __future__ import annotations

import math

import numpy as np
import torch

from topo.train.config import TrainConfig
from topo.train.methods import SET, LayerChange, set_drop_mask
from topo.train.model import SparseLinear, SparseMLP

from ..conftest import tiny_layer
from .conftest import make_context


def test_set_drops_smallest_positive_and_largest_negative_fraction():
    values = np.array([0.5, -0.1, 0.2, -0.9, 0.05, -0.3, 0.8, -0.02, 0.0, 0.4])
    # positives 0.5, 0.2, 0.05, 0.8, 0.4: floor(0.4*5) = 2 smallest -> 0.05, 0.2
    # negatives -0.1, -0.9, -0.3, -0.02: floor(0.4*4) = 1 closest to 0 -> -0.02
    # the exact zero lies between the thresholds and goes too
    assert np.flatnonzero(set_drop_mask(values, 0.4)).tolist() == [2, 4, 7, 8]


def test_set_ties_go_to_the_earlier_connection():
    assert set_drop_mask(np.array([0.5, 0.5, 0.5]), 0.4).tolist() == [True, False, False]
    # only negative weights: floor(0.4 * 3) = 1, the one closest to 0
    assert set_drop_mask(np.array([-0.5, -0.1, -0.3]), 0.4).tolist() == [False, True, False]


def test_set_rewires_before_every_epoch_but_the_first_keeping_the_count():
    model = SparseMLP([tiny_layer()], "identity")   # weights 1, 2, 3, 4 at 0, 2, 5, 7
    method = SET(zeta=0.5)
    assert method.at_epoch_start(make_context(model), 1) == {}
    changes = method.at_epoch_start(make_context(model, seed=4), 2)
    assert changes == {0: LayerChange(added=2, removed=2)}
    layer = model.layers[0]
    assert layer.n_connections == 4
    # survivors: the two largest positive weights, 3 and 4 at 5 and 7
    kept = dict(zip(layer.flat.tolist(), layer.values.data.tolist()))
    assert kept[5] == 3.0 and kept[7] == 4.0
    # the grown ones: 2 of the 6 positions outside {5, 7}, chosen by the run's numpy
    # generator (rng.choice without replacement), weights from the run's torch generator
    rng = np.random.default_rng(4)
    grown = np.sort(rng.choice(np.array([0, 1, 2, 3, 4, 6]), size=2, replace=False))
    assert sorted(set(kept) - {5, 7}) == grown.tolist()
    bound = math.sqrt(6 / (0.5 * 4))   # he_uniform at the layer's density 4/8, n_in 4
    draw = (torch.rand(2, generator=torch.Generator().manual_seed(4)) * 2 - 1) * bound
    assert [kept[p] for p in grown] == draw.tolist()


def test_set_can_regrow_at_zero_and_leaves_full_layers_alone():
    model = SparseMLP([tiny_layer()], "identity")
    SET(zeta=0.5, regrow_zero=True).at_epoch_start(make_context(model), 2)
    new = [v for p, v in zip(model.layers[0].flat.tolist(), model.layers[0].values.tolist())
           if v not in (3.0, 4.0)]
    assert new == [0.0, 0.0]
    full = SparseMLP([SparseLinear(2, 1, np.array([0, 1]), torch.tensor([1.0, -1.0]),
                                   torch.zeros(1))])
    assert SET(zeta=0.5).at_epoch_start(make_context(full), 2) == {}


def test_set_reads_zeta_and_regrowth_from_the_configuration():
    method = SET.from_config(TrainConfig(method="set", zeta=0.2, set_regrow_zero=True), 100)
    assert method.schedule.fraction == 0.2 and method.regrow_zero
