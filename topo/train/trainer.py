"""The training loop: one short loop over epochs and mini-batches.

Per epoch, in order: the method's epoch hook (SET rewires here), the mini-batch steps (each
by the run's step rule, :mod:`topo.train.steps`; a method may replace a step by a mask
update, RigL, or act after one, GMP), evaluation, then
the callbacks (snapshots, metrics, checkpoint, early stopping, progress:
:mod:`topo.train.callbacks`). Structural changes are the method's
(:mod:`topo.train.methods`), which sees a :class:`~topo.train.methods.Context`, never the
trainer. Levels (IMP) are run by the method's driver, above the trainer.

Reproducibility: every random number comes from the run's own torch and numpy generators
(:meth:`Trainer.state_dict` holds their states), so the same seed on the same machine with the
same thread count gives bitwise-identical weights and masks, resumed or not.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch

from topo.train.callbacks import Callback, CallbackList, EpochEnd
from topo.train.checkpoint import (
    generator_state,
    load_optimizer_state,
    load_parameter_values,
    optimizer_state,
    parameter_values,
    restore_generators,
)
from topo.train.data import Dataset
from topo.train.initialization import WeightInit
from topo.train.methods import Changes, Context, LayerChange, Method
from topo.train.model import SparseMLP
from topo.train.optim import Optimizer
from topo.train.steps import GradientStep, StepRule

__all__ = ["Trainer", "TrainingData", "evaluate", "evaluation_row", "structure_row",
           "loss_function"]

EVAL_BATCH = 8192


@dataclass
class TrainingData:
    """A data set's splits as tensors: ``(X, y)`` pairs, float32 inputs, int64 labels or
    float32 targets; ``val`` may be None."""

    train: tuple[torch.Tensor, torch.Tensor]
    test: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor] | None
    classification: bool

    @classmethod
    def from_dataset(cls, data: Dataset) -> TrainingData:
        classification = data.task == "classification"

        def pair(X: np.ndarray | None, y: np.ndarray | None):
            if X is None:
                return None
            y = np.ascontiguousarray(y, dtype=np.int64 if classification else np.float32)
            return (torch.from_numpy(np.ascontiguousarray(X, dtype=np.float32)),
                    torch.from_numpy(y) if classification else torch.from_numpy(y).reshape(-1))

        return cls(pair(data.X_train, data.y_train), pair(data.X_test, data.y_test),
                   pair(data.X_val, data.y_val), classification)


class Trainer:
    """Trains one sparse network: the loop, its counters, and its resumable state.

    ``model``, ``method`` and ``data`` are the network, its sparsity method and the data as
    tensors; ``optimizer(model)`` builds a fresh optimiser; ``loss_fn(out, y, reduction=)``
    is the loss, ``penalty(model)`` a term added to the objective only (L1); ``generator``,
    ``rng``, ``init`` and ``prunable`` go to the method in its
    :class:`~topo.train.methods.Context`; ``level`` is the starting level of a method that
    trains in levels (None otherwise); ``callbacks`` are called in order; ``step_rule``
    turns a mini-batch into an update (:mod:`topo.train.steps`; default: backward pass and
    optimiser step); ``init_generators`` (torch, numpy) are the generators of the method's
    action at initialisation (default: ``generator`` and ``rng``). Built from a
    configuration by :func:`topo.train.runner.build_trainer`.
    """

    def __init__(self, model: SparseMLP, method: Method, data: TrainingData, *,
                 optimizer: Callable[[SparseMLP], Optimizer],
                 loss_fn: Callable[..., torch.Tensor], batch_size: int, epochs: int,
                 generator: torch.Generator, rng: np.random.Generator, init: WeightInit | None,
                 prunable: Sequence[bool],
                 penalty: Callable[[SparseMLP], torch.Tensor] | None = None,
                 level: int | None = None, callbacks: Iterable[Callback] = (),
                 step_rule: StepRule | None = None,
                 init_generators: tuple[torch.Generator, np.random.Generator] | None = None
                 ) -> None:
        self.model, self.method, self.data = model, method, data
        self.step_rule = step_rule or GradientStep()
        self.make_optimizer, self.optimizer = optimizer, optimizer(model)
        self.loss_fn, self.penalty = loss_fn, penalty
        self.batch_size, self.epochs = batch_size, epochs
        self.generator, self.rng, self.init = generator, rng, init
        self.init_generators = init_generators or (generator, rng)
        self.prunable = list(prunable)
        self.callbacks = CallbackList(callbacks)
        self.epoch = self.step = 0
        self.level = level
        self.stop = False   # set by a callback (early stopping) to end the level
        self.changes = [LayerChange()] * len(model.layers)

    def context(self, batch: tuple[torch.Tensor, torch.Tensor] | None = None) -> Context:
        """What the method sees now."""
        return Context(self.model, self.optimizer, self.prunable, self.step, self.rng,
                       self.generator, self.init, self.loss_fn, self.data.train, batch)

    def apply(self, changes: Changes) -> None:
        """Count a method's structural changes in this epoch's row and tell the callbacks."""
        if changes:
            for k, change in changes.items():
                self.changes[k] += change
            self.callbacks.on_mask_update(self, changes)

    def initialise(self) -> None:
        """The method's action at initialisation (SNIP prunes, IMP keeps its rewind point),
        drawing from the initialisation's generators."""
        generator, rng = self.init_generators
        self.apply(self.method.at_init(replace(self.context(), generator=generator, rng=rng)))

    def start_level(self, level: int) -> None:
        """Begin ``level`` at epoch 0 (for a driver of levels)."""
        self.level, self.epoch, self.stop = level, 0, False
        self.changes = [LayerChange()] * len(self.model.layers)

    def reset_optimizer(self) -> None:
        """A fresh optimiser, without state."""
        self.optimizer = self.make_optimizer(self.model)

    def fit(self) -> None:
        """Train the remaining epochs of the current level (until a callback sets stop)."""
        while self.epoch < self.epochs and not self.stop:
            self.train_epoch()

    def train_epoch(self) -> None:
        """One epoch: the method's epoch hook, mini-batch steps, evaluation, callbacks."""
        start = time.perf_counter()
        self.epoch += 1
        self.changes = [LayerChange()] * len(self.model.layers)
        self.apply(self.method.at_epoch_start(self.context(), self.epoch))
        self.model.train()
        X, y = self.data.train
        perm = torch.randperm(len(X), generator=self.generator)
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        seen = 0   # samples of the optimiser steps (a replaced step trains on none)
        for begin in range(0, len(X), self.batch_size):
            idx = perm[begin:begin + self.batch_size]
            xb, yb = X[idx], y[idx]
            if self.method.replaces_step(self.step):
                changes = self.method.at_step(self.context((xb, yb)))
                self.step += 1
                self.apply(changes)
                continue
            out, loss = self.step_rule(self.model, self.optimizer, xb, yb, self.loss_fn,
                                       self.penalty, self.generator)
            self.step += 1
            with torch.no_grad():
                loss_sum += loss.detach().double() * len(idx)
                if self.data.classification:
                    correct += (out.argmax(1) == yb).sum()
            seen += len(idx)
            self.apply(self.method.after_step(self.context()))
        row = {"loss": float(loss_sum) / seen if seen else float("nan")}
        row.update({"train_accuracy": int(correct) / seen if seen else float("nan")}
                   if self.data.classification else {"train_mse": row["loss"]})
        self._report(row, start)

    def report_initial(self) -> None:
        """The epoch-0 row (initialisation, or a level's start): loss on the whole training
        set, then the usual evaluation and callbacks."""
        start = time.perf_counter()
        loss, acc = evaluate(self.model, *self.data.train, self.loss_fn)
        self._report({"loss": loss, **({"train_accuracy": acc} if self.data.classification
                                       else {"train_mse": loss})}, start)

    def _report(self, row: dict[str, Any], start: float) -> None:
        row.update(evaluation_row(self.model, self.data, self.loss_fn))
        row["wall_time"] = time.perf_counter() - start
        head = {"epoch": self.epoch, **({} if self.level is None else {"level": self.level}),
                "step": self.step}
        self.callbacks.on_epoch_end(self, EpochEnd({
            **head, **row, **structure_row(self.model.layers, self.changes)}))

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue this run exactly: counters, network (and its
        main-effect networks), optimiser state, generators, the method's and the callbacks'
        states."""
        state = {"epoch": self.epoch, "step": self.step, "level": self.level, "stop": self.stop,
                 "model": self.model.capture(), "optimizer": optimizer_state(self.optimizer),
                 "generators": generator_state(self.generator, self.rng),
                 "method": self.method.state_dict(), "callbacks": self.callbacks.state_dict()}
        if self.model.main_effects is not None:
            state["main_effects"] = parameter_values(self.model.main_effects.parameter_list())
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from :meth:`state_dict` (a fresh optimiser takes the saved state)."""
        self.model.restore(state["model"])
        if self.model.main_effects is not None:
            load_parameter_values(self.model.main_effects.parameter_list(), state["main_effects"])
        self.reset_optimizer()
        load_optimizer_state(self.optimizer, state["optimizer"])
        restore_generators(state["generators"], self.generator, self.rng)
        self.method.load_state_dict(state["method"])
        self.callbacks.load_state_dict(state["callbacks"])
        self.epoch, self.step, self.stop = state["epoch"], state["step"], state["stop"]
        if self.level is not None:   # whether there are levels is the method's, not the file's
            self.level = state["level"]


def evaluate(model: SparseMLP, X: torch.Tensor, y: torch.Tensor,
             loss_fn: Callable[..., torch.Tensor]) -> tuple[float, float | None]:
    """Mean loss and (for integer labels) accuracy of ``model`` on ``(X, y)``, in batches of
    :data:`EVAL_BATCH`, in evaluation mode."""
    classification = not torch.is_floating_point(y)
    model.eval()
    loss_sum, correct = 0.0, 0
    with torch.no_grad():
        for begin in range(0, len(X), EVAL_BATCH):
            out = model(X[begin:begin + EVAL_BATCH])
            target = y[begin:begin + EVAL_BATCH]
            loss_sum += float(loss_fn(out, target, reduction="sum"))
            if classification:
                correct += int((out.argmax(1) == target).sum())
    model.train()
    return loss_sum / len(X), correct / len(X) if classification else None


def evaluation_row(model: SparseMLP, data: TrainingData,
                   loss_fn: Callable[..., torch.Tensor]) -> dict[str, float | None]:
    """An epoch row's evaluation: ``test_loss`` and ``test_accuracy`` (classification) or
    ``test_mse``, and ``val_loss`` when there is a validation split."""
    loss, acc = evaluate(model, *data.test, loss_fn)
    row = {"test_loss": loss, "test_accuracy": acc} if data.classification else {"test_mse": loss}
    if data.val is not None:
        row["val_loss"] = evaluate(model, *data.val, loss_fn)[0]
    return row


def structure_row(layers: Sequence[Any], changes: Sequence[LayerChange]) -> dict[str, list]:
    """An epoch row's structure, one entry per layer: ``density``, ``connections`` and the
    connections ``added`` and ``removed`` by the method in the epoch."""
    return {"density": [layer.density for layer in layers],
            "connections": [layer.n_connections for layer in layers],
            "added": [c.added for c in changes], "removed": [c.removed for c in changes]}


def loss_function(task: str) -> Callable[..., torch.Tensor]:
    """Cross-entropy for classification (softmax inside), mean squared error otherwise."""
    return torch.nn.functional.cross_entropy if task == "classification" else _mse


def _mse(out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return torch.nn.functional.mse_loss(out.reshape(-1), y, reduction=reduction)
