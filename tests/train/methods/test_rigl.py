"""RigL: magnitude drop, gradient growth, cosine schedule."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.train.config import TrainConfig
from topo.train.methods import LayerChange, RigL
from topo.train.methods.schedules import CosineSchedule
from topo.train.model import SparseMLP
from topo.train.optim import SGD

from ..conftest import tiny_layer
from .conftest import make_context


def test_rigl_grows_where_the_gradient_of_the_batch_is_largest():
    """Weights 1, 2, 3, 4 at (0,0), (0,2), (1,1), (1,3); input x = (1, 0, 2, 0), target 0.

    Output 0 is 1*1 + 2*2 = 5, output 1 is 0. With the mean squared error over the two
    outputs, dL/dW[i, j] = (2/2) y_i x_j: row 0 is 5 * (1, 0, 2, 0), row 1 is 0. At drop
    fraction 0.5, int(0.5 * 4) = 2 connections go: the smallest |w|, 1 and 2 at positions 0
    and 2. The absent positions with the largest |gradient| are 2 (10) and 0 (5): the very
    positions just dropped. With ``reinit_regrown`` (rigl's ``reinit_when_same``) they
    restart as new connections at weight 0.
    """
    model = SparseMLP([tiny_layer()], "identity")
    method = RigL(CosineSchedule(alpha=1.0, delta_t=5, t_end=10), reinit_regrown=True)
    # at step 5 of T_end 10 the fraction is 1/2 (1 + cos(pi / 2)) = 0.5
    assert method.replaces_step(5) and not method.replaces_step(4)
    batch = (torch.tensor([[1.0, 0.0, 2.0, 0.0]]), torch.tensor([[0.0, 0.0]]))
    changes = method.at_step(make_context(model, step=5, batch=batch))
    layer = model.layers[0]
    assert changes == {0: LayerChange(added=2, removed=2)}
    assert layer.flat.tolist() == [0, 2, 5, 7]
    assert layer.values.data.tolist() == [0.0, 0.0, 3.0, 4.0]
    # by default (RigL's code) the same update changes nothing at all
    model = SparseMLP([tiny_layer()], "identity")
    kept = RigL(CosineSchedule(alpha=1.0, delta_t=5, t_end=10))
    assert kept.at_step(make_context(model, step=5, batch=batch)) == {}
    assert model.layers[0].values.data.tolist() == [1.0, 2.0, 3.0, 4.0]


@pytest.mark.parametrize("reinit, change, values, momentum", [
    (False, LayerChange(added=1, removed=1), [2.0, 3.0, 0.0, 4.0], [0.25, 0.125, 0.0, 1.0]),
    (True, LayerChange(added=2, removed=2), [0.0, 3.0, 0.0, 4.0], [0.0, 0.125, 0.0, 1.0]),
])
def test_a_connection_dropped_and_regrown_keeps_its_weight_and_momentum(reinit, change,
                                                                        values, momentum):
    """Weights 1, 2, 3, 4 at flat positions 0, 2, 5, 7; input x = (0, 1, 2, 0), target 0.

    Outputs: row 0 = 2*2 = 4, row 1 = 3*1 = 3; dL/dW[i, j] = y_i x_j (mean squared error
    over two outputs): row 0 = (0, 4, 8, 0), row 1 = (0, 3, 6, 0), i.e. flat positions
    0..7 score 0, 4, 8, 0, 0, 3, 6, 0. Drop the two smallest |w| (positions 0 and 2); the
    best absent positions are 2 (8) and 6 (6). Position 2 is dropped and grown again:
    RigL keeps it (weight 2, its momentum); position 0 goes; 6 is new (weight 0, no
    momentum). With reinit, 2 restarts like 6.
    """
    layer = tiny_layer()
    model = SparseMLP([layer], "identity")
    optimizer = SGD([layer.values, layer.bias], lr=0.0, momentum=0.9)
    layer.values.grad = torch.tensor([0.5, 0.25, 0.125, 1.0])
    optimizer.step()   # lr 0: the weights stay, the momentum becomes the gradient
    method = RigL(CosineSchedule(alpha=1.0, delta_t=5, t_end=10), reinit_regrown=reinit)
    batch = (torch.tensor([[0.0, 1.0, 2.0, 0.0]]), torch.tensor([[0.0, 0.0]]))
    changes = method.at_step(make_context(model, optimizer=optimizer, step=5, batch=batch))
    layer = model.layers[0]
    assert changes == {0: change}
    assert layer.flat.tolist() == [2, 5, 6, 7]
    assert layer.values.data.tolist() == values
    assert optimizer.state[layer.values]["momentum_buffer"].tolist() == momentum


def test_rigl_schedule_ends_at_a_fraction_of_training():
    method = RigL.from_config(TrainConfig(method="rigl", rigl_delta_t=7, rigl_alpha=0.2,
                                          rigl_end_fraction=0.5), total_steps=40)
    assert (method.schedule.t_end, method.schedule.delta_t, method.schedule.alpha) == (20, 7,
                                                                                       0.2)
    assert method.n_keep(tiny_layer(), 0.3) == 4 - int(0.3 * 4)


def test_rigl_changes_nothing_when_the_fraction_rounds_to_zero():
    model = SparseMLP([tiny_layer()], "identity")
    method = RigL(CosineSchedule(alpha=0.1, delta_t=5, t_end=10))   # int(0.05 * 4) = 0
    batch = (torch.ones(1, 4), torch.zeros(1, 2))
    assert method.at_step(make_context(model, step=5, batch=batch)) == {}
    assert model.layers[0].flat.tolist() == [0, 2, 5, 7]
    np.testing.assert_array_equal(model.layers[0].values.data.numpy(), [1, 2, 3, 4])
