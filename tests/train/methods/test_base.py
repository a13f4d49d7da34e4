"""The shared machinery: drop_and_grow, optimiser state, MaskUpdater and Pruner."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.train.methods import (
    Context,
    LayerChange,
    MaskUpdater,
    Method,
    Pruner,
    Schedule,
    drop_and_grow,
)
from topo.train.model import SparseLinear, SparseMLP
from topo.train.optim import SGD, Adam

from ..conftest import tiny_layer
from .conftest import make_context


def test_drop_and_grow_keeps_survivors_and_resets_optimizer_state_of_new_connections():
    layer = tiny_layer()
    opt = SGD([layer.values, layer.bias], lr=0.1, momentum=0.9)
    layer(torch.ones(1, 4)).sum().backward()
    opt.step()
    momentum_before = opt.state[layer.values]["momentum_buffer"].clone()
    values_before = layer.values.data.clone()
    change = drop_and_grow(layer, np.array([False, True, False, False]), np.array([1]),
                           torch.tensor([9.0]), opt)
    assert change == LayerChange(added=1, removed=1)
    assert layer.flat.tolist() == [0, 1, 5, 7]
    assert layer.values.data.tolist() == [values_before[0], 9.0, values_before[2],
                                          values_before[3]]
    buf = opt.state[layer.values]["momentum_buffer"]
    assert buf.tolist() == [momentum_before[0], 0.0, momentum_before[2], momentum_before[3]]
    # the optimiser now steps the new parameter object
    assert any(p is layer.values for p in opt.param_groups[0]["params"])


def test_drop_and_grow_moves_every_per_connection_state_of_adam():
    layer = tiny_layer()
    opt = Adam([layer.values, layer.bias], lr=0.1)
    (layer(torch.ones(1, 4)) ** 2).sum().backward()
    opt.step()
    before = {k: v.clone() for k, v in opt.state[layer.values].items()}
    drop_and_grow(layer, np.array([True, False, False, False]), np.array([3]), None, opt)
    state = opt.state[layer.values]
    # positions now 2, 3, 5, 7: the survivors 2, 5, 7 keep theirs, 3 starts at 0
    for key in ("exp_avg", "exp_avg_sq"):
        assert state[key].tolist() == [before[key][1], 0.0, before[key][2], before[key][3]]
    assert state["step"].item() == before["step"].item() == 1   # not per connection
    assert layer.values.data[1].item() == 0.0   # no value given: grown at 0


def test_drop_and_grow_without_state_or_optimizer():
    layer = tiny_layer()
    opt = SGD([layer.values], lr=0.1)   # no step yet: no state
    drop_and_grow(layer, np.array([False, False, True, False]), np.zeros(0, int), None, opt)
    assert layer.flat.tolist() == [0, 2, 7] and opt.param_groups[0]["params"][0] is layer.values
    assert drop_and_grow(layer, np.zeros(3, bool), np.array([1]), None, None).added == 1


def test_drop_and_grow_refuses_growing_an_existing_connection():
    with pytest.raises(ValueError, match="absent"):
        drop_and_grow(tiny_layer(), np.zeros(4, bool), np.array([2]), None, None)
    with pytest.raises(ValueError, match="distinct"):
        drop_and_grow(tiny_layer(), np.zeros(4, bool), np.array([1, 1]), None, None)


def test_layer_changes_add_up():
    assert LayerChange(2, 1) + LayerChange(3, 4) == LayerChange(5, 5)


def test_the_rules_a_subclass_must_define_are_named():
    ctx = make_context(SparseMLP([tiny_layer()]))
    with pytest.raises(NotImplementedError):
        MaskUpdater(Schedule()).n_keep(tiny_layer(), 0.5)
    with pytest.raises(NotImplementedError):
        MaskUpdater(Schedule()).grow_scores(ctx, 0)
    with pytest.raises(NotImplementedError):
        Pruner().scores(ctx)


def test_the_base_method_changes_nothing():
    m = Method.from_config(None, 10)
    ctx = make_context(SparseMLP([tiny_layer()]))
    assert m.at_init(ctx) == m.at_epoch_start(ctx, 2) == m.at_step(ctx) == {}
    assert m.after_step(ctx) == {} and not m.replaces_step(5)
    assert m.describe() == {} and m.state_dict() == {} and m.levels == 0 and m.driver is None
    m.load_state_dict({})


class _Every(Schedule):
    def after_step(self, step):
        return 0.5 if step == 1 else None


class _Toy(MaskUpdater):
    """Drops by |w| to half the connections, grows where a fixed score is highest, and
    records what layer 0 looked like whenever it scored a layer."""

    def __init__(self, scores):
        super().__init__(_Every())
        self.scores, self.seen = scores, []

    def n_keep(self, layer, amount):
        return int(amount * layer.n_connections)

    def grow_scores(self, ctx, k):
        self.seen.append(ctx.layers[0].flat.tolist())
        return self.scores[k]


def _two_layers():
    l0 = tiny_layer()
    l1 = SparseLinear(2, 2, np.array([0, 3]), torch.tensor([-1.0, 0.5]), torch.zeros(2))
    return SparseMLP([l0, l1], "identity")


def test_mask_updater_drops_lowest_scores_and_grows_highest_absent():
    model = _two_layers()
    scores = [np.array([0, 9, 0, 8, 0, 0, 0, 7.0]), np.array([0, 5, 6, 0.0])]
    toy = _Toy(scores)
    changes = toy.after_step(make_context(model, step=1))
    # layer 0: |w| 1, 2, 3, 4 at 0, 2, 5, 7: keep 5, 7; grow the best absent 1 (9), 3 (8)
    assert model.layers[0].flat.tolist() == [1, 3, 5, 7]
    assert model.layers[0].values.data.tolist() == [0.0, 0.0, 3.0, 4.0]
    # layer 1: |w| 1 at 0 and 0.5 at 3: keep 0; of the absent 1, 2, 3 grow 2 (score 6)
    assert model.layers[1].flat.tolist() == [0, 2]
    assert changes == {0: LayerChange(2, 2), 1: LayerChange(1, 1)}
    # both layers were scored on the network as it was before the update
    assert toy.seen == [[0, 2, 5, 7], [0, 2, 5, 7]]
    assert toy.after_step(make_context(model, step=2)) == {}   # not scheduled


def test_mask_updater_leaves_unprunable_and_full_layers_alone():
    model = _two_layers()
    full = SparseLinear(2, 1, np.array([0, 1]), torch.tensor([1.0, 2.0]), torch.zeros(1))
    model = SparseMLP([*model.layers, full], "identity")
    toy = _Toy([np.zeros(8), np.zeros(4), np.zeros(2)])
    changes = toy.after_step(make_context(model, step=1, prunable=[False, True, True]))
    assert list(changes) == [1]   # layer 0 is not prunable, layer 2 has no absent position
    assert model.layers[0].flat.tolist() == [0, 2, 5, 7] and full.n_connections == 2


def test_pruning_updater_prunes_full_layers_and_grows_nothing():
    class Prune(_Toy):
        grows = False

    model = SparseMLP([SparseLinear(2, 1, np.array([0, 1]), torch.tensor([1.0, -2.0]),
                                    torch.zeros(1))], "identity")
    assert Prune([None]).after_step(make_context(model, step=1)) == {0: LayerChange(0, 1)}
    assert model.layers[0].flat.tolist() == [1]


def test_moments_follow_the_schedule():
    class Sched(Schedule):
        def at_epoch_start(self, epoch):
            return 0.5 if epoch == 3 else None

        def replacing_step(self, step):
            return 0.5 if step == 4 else None

    toy = _Toy([np.arange(8.0), np.arange(4.0)])
    toy.schedule = Sched()
    assert toy.replaces_step(4) and not toy.replaces_step(3)
    assert toy.at_epoch_start(make_context(_two_layers()), 2) == {}
    assert set(toy.at_epoch_start(make_context(_two_layers()), 3)) == {0, 1}
    assert set(toy.at_step(make_context(_two_layers(), step=4))) == {0, 1}


def test_pruner_keeps_the_most_salient_connections_of_prunable_layers_together():
    class ByValue(Pruner):
        def scores(self, ctx):
            return [np.abs(layer.values.data.numpy())
                    for layer, p in zip(ctx.layers, ctx.prunable) if p]

    model = _two_layers()
    ctx = make_context(model, prunable=[True, True])
    assert ByValue().prunable_connections(ctx) == 6
    changes = ByValue().prune(ctx, 3)
    # |w|: layer 0 1, 2, 3, 4; layer 1 1, 0.5: the three largest are 4, 3, 2
    assert model.layers[0].values.data.tolist() == [2.0, 3.0, 4.0]
    assert model.layers[1].n_connections == 0
    assert changes == {0: LayerChange(0, 1), 1: LayerChange(0, 2)}


def test_gradients_are_computed_once_and_only_at_a_replacing_step():
    layer = SparseLinear(2, 1, np.array([0]), torch.tensor([1.0]), torch.zeros(1))
    model = SparseMLP([layer], "identity")
    ctx = make_context(model, batch=(torch.tensor([[1.0, 2.0]]), torch.tensor([[0.0]])))
    # loss (w0 x0 - 0)^2 = 1: dL/dW = 2 * 1 * x = [2, 4]
    np.testing.assert_allclose(ctx.gradients[0], [2.0, 4.0])
    assert ctx.gradients is ctx.gradients
    with pytest.raises(RuntimeError, match="replacing step"):
        _ = make_context(model).gradients
    assert isinstance(ctx, Context) and ctx.layers is model.layers
