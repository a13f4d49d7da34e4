"""The loop: what it calls when, what a row holds, and its state_dict round trip."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.train import TrainConfig
from topo.train.callbacks import Callback
from topo.train.methods import LayerChange, Method
from topo.train.model import SparseLinear, SparseMLP
from topo.train.optim import optimizer_factory
from topo.train.runner import build_trainer
from topo.train.trainer import Trainer, TrainingData, evaluate, loss_function

from .conftest import SMALL, STEPS_PER_EPOCH


class Recorder(Callback):
    """Keeps every row and mask update it sees."""

    def __init__(self):
        self.rows, self.updates = [], []

    def on_epoch_end(self, trainer, epoch):
        self.rows.append(epoch.row)

    def on_mask_update(self, trainer, changes):
        self.updates.append((trainer.step, changes))


class Scripted(Method):
    """Logs the moments it is called at; replaces step 2 and removes nothing."""

    def __init__(self):
        self.log = []

    def at_epoch_start(self, ctx, epoch):
        self.log.append(("epoch", epoch, ctx.step))
        return {}

    def replaces_step(self, step):
        return step == 2

    def at_step(self, ctx):
        self.log.append(("replace", ctx.step, len(ctx.batch[0])))
        return {0: LayerChange(1, 1)}

    def after_step(self, ctx):
        self.log.append(("after", ctx.step))
        return {}


def _trainer(method, n=10, batch_size=4, **kw):
    torch.manual_seed(0)
    model = SparseMLP([SparseLinear(3, 2, np.arange(6), torch.randn(6), torch.zeros(2))])
    X = torch.randn(n, 3)
    y = torch.arange(n) % 2
    data = TrainingData((X, y), (X[:4], y[:4]), None, classification=True)
    return Trainer(model, method, data, optimizer=optimizer_factory(TrainConfig()),
                   loss_fn=loss_function("classification"), batch_size=batch_size,
                   epochs=kw.pop("epochs", 2), generator=torch.Generator().manual_seed(1),
                   rng=np.random.default_rng(1), init=None, prunable=[True], **kw)


def test_the_method_is_called_at_its_moments_and_a_replaced_step_trains_nothing():
    method, recorder = Scripted(), Recorder()
    trainer = _trainer(method, callbacks=[recorder])
    trainer.fit()
    # 10 samples in batches of 4: 3 steps an epoch; step 2 (the third batch) is replaced
    assert method.log == [("epoch", 1, 0), ("after", 1), ("after", 2), ("replace", 2, 2),
                          ("epoch", 2, 3), ("after", 4), ("after", 5), ("after", 6)]
    assert [row["step"] for row in recorder.rows] == [3, 6]
    assert recorder.updates == [(3, {0: LayerChange(1, 1)})]
    assert recorder.rows[0]["added"] == [1] and recorder.rows[1]["added"] == [0]


def test_a_row_has_the_documented_fields_in_order():
    recorder = Recorder()
    trainer = _trainer(Method(), callbacks=[recorder], level=0)
    trainer.report_initial()
    trainer.train_epoch()
    assert list(recorder.rows[0]) == ["epoch", "level", "step", "loss", "train_accuracy",
                                      "test_loss", "test_accuracy", "wall_time", "density",
                                      "connections", "added", "removed"]
    assert recorder.rows[1]["epoch"] == 1 and recorder.rows[1]["connections"] == [6]
    # the epoch-0 loss and accuracy are those of the whole training set at initialisation
    fresh = _trainer(Method())
    assert evaluate(fresh.model, *fresh.data.train, fresh.loss_fn) == (
        recorder.rows[0]["loss"], recorder.rows[0]["train_accuracy"])


def test_evaluate_on_a_hand_made_network():
    # y = x0 - x1: inputs (2, 1) -> 1 and (0, 3) -> -3; two classes with logits (y, 0)
    layer = SparseLinear(2, 2, np.array([0, 1]), torch.tensor([1.0, -1.0]), torch.zeros(2))
    model = SparseMLP([layer], "identity")
    X = torch.tensor([[2.0, 1.0], [0.0, 3.0]])
    loss, acc = evaluate(model, X, torch.tensor([0, 0]), loss_function("classification"))
    # cross-entropy: log(1 + e^-1) and log(1 + e^3); the first is right, the second not
    assert loss == pytest.approx((np.log1p(np.exp(-1)) + np.log1p(np.exp(3))) / 2)
    assert acc == 0.5
    single = SparseMLP([SparseLinear(2, 1, np.array([0, 1]), torch.tensor([1.0, -1.0]),
                                     torch.zeros(1))], "identity")
    mse, none = evaluate(single, X, torch.tensor([1.0, 0.0]), loss_function("regression"))
    assert none is None   # outputs 1 and -3 against targets 1 and 0
    assert mse == pytest.approx((0.0 + 9.0) / 2)


def test_a_penalty_enters_the_objective_but_not_the_reported_loss():
    calls = []

    def constant(model):
        calls.append(1)
        return torch.tensor(1000.0)   # no gradient: training is unchanged

    plain, penalised = Recorder(), Recorder()
    _trainer(Method(), callbacks=[plain]).fit()
    _trainer(Method(), callbacks=[penalised], penalty=constant).fit()
    assert len(calls) == 6
    assert [r["loss"] for r in plain.rows] == [r["loss"] for r in penalised.rows]


def test_a_callback_stops_the_level_and_levels_restart_at_epoch_zero():
    class StopAfterOne(Callback):
        def on_epoch_end(self, trainer, epoch):
            trainer.stop = True

    trainer = _trainer(Method(), epochs=5, level=0, callbacks=[StopAfterOne()])
    trainer.fit()
    assert trainer.epoch == 1 and trainer.stop
    trainer.start_level(1)
    assert (trainer.level, trainer.epoch, trainer.stop) == (1, 0, False)
    assert trainer.step == 3   # steps count on across levels
    old = trainer.optimizer
    trainer.reset_optimizer()
    assert trainer.optimizer is not old and not trainer.optimizer.state


def test_state_dict_round_trip_continues_bitwise_identically():
    config = TrainConfig(method="rigl", epochs=3, optimizer="adam", rigl_delta_t=7, **SMALL)
    a = build_trainer(config)
    a.initialise()
    a.train_epoch()
    b = build_trainer(config)   # a fresh trainer of the same run ...
    b.load_state_dict(a.state_dict())   # ... takes a's state, then both train on
    assert (b.epoch, b.step) == (1, STEPS_PER_EPOCH)
    a.train_epoch()
    b.train_epoch()
    for la, lb in zip(a.model.layers, b.model.layers):
        assert torch.equal(la.flat, lb.flat) and torch.equal(la.values, lb.values)
        assert torch.equal(la.bias, lb.bias)
        sa, sb = a.optimizer.state[la.values], b.optimizer.state[lb.values]
        assert torch.equal(sa["exp_avg"], sb["exp_avg"]) and sa["step"] == sb["step"]
    assert a.level is None and a.state_dict()["level"] is None


def test_a_levelled_state_keeps_its_level_and_a_plain_one_none():
    config = TrainConfig(method="imp", epochs=1, imp_levels=2, **SMALL)
    a = build_trainer(config)
    a.initialise()
    a.start_level(2)
    b = build_trainer(config)
    b.load_state_dict(a.state_dict())
    assert b.level == 2 and b.method.rewind_point is not None
    plain = build_trainer(config.replace(method="dense", imp_levels=None))
    plain.load_state_dict({**plain.state_dict(), "level": 3})
    assert plain.level is None   # whether a run has levels is its method's


def test_train_metrics_average_over_the_batches_that_trained():
    """A step replaced by a mask update trains no batch: the epoch's loss and accuracy are
    those of the optimiser steps' batches, weighted by their sizes (before the fix the sums
    left the replaced batch out but divided by all 10 samples)."""
    seen = []

    def recording_loss(out, y, reduction="mean"):
        loss = loss_function("classification")(out, y, reduction=reduction)
        if torch.is_grad_enabled():   # the training steps' forward passes only
            seen.append((float(loss.detach()), int((out.argmax(1) == y).sum()), len(y)))
        return loss

    recorder = Recorder()
    trainer = _trainer(Scripted(), epochs=1, callbacks=[recorder])
    trainer.loss_fn = recording_loss
    trainer.fit()
    # batches of 4, 4 and 2; the third (step 2) is replaced
    assert [n for _, _, n in seen] == [4, 4]
    row = recorder.rows[0]
    assert row["loss"] == pytest.approx(sum(loss * n for loss, _, n in seen) / 8)
    assert row["train_accuracy"] == sum(c for _, c, _ in seen) / 8


def test_an_epoch_of_replaced_steps_has_no_train_metrics():
    class ReplaceAll(Method):
        def replaces_step(self, step):
            return True

    recorder = Recorder()
    _trainer(ReplaceAll(), epochs=1, callbacks=[recorder]).fit()
    assert np.isnan(recorder.rows[0]["loss"]) and np.isnan(recorder.rows[0]["train_accuracy"])
