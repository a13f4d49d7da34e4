"""What every sparsity method is made of, and the machinery they share.

A method sees a :class:`Context` (the network, its optimiser, the step, the run's random
generators, the data a saliency needs), never the trainer, and answers the trainer's four
moments (:class:`Method`) with the structural changes it made. Two families cover the
methods of topo:

- :class:`MaskUpdater`: a **drop rule**, a **grow rule** and a **schedule**
  (``rigl_tf2/mask_updaters.py``). The rules default to scores: drop the connections with the
  lowest :meth:`~MaskUpdater.drop_scores`, grow the absent positions with the highest
  :meth:`~MaskUpdater.grow_scores`. SET, RigL and GMP are each a few lines on top.
- :class:`Pruner`: a saliency score per connection and one top-k over all prunable layers
  (:func:`~topo.train.methods.selection.keep_top`): SNIP at initialisation, IMP between
  levels.

Every change goes through :func:`drop_and_grow`, which rebuilds a layer's connection set and
carries the optimiser state of the surviving connections over; new connections start with
zero state (RigL's momentum reset, Evci et al. 2020).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import torch

from topo.train.initialization import WeightInit
from topo.train.methods.schedules import Schedule
from topo.train.methods.selection import grow_top, keep_top
from topo.train.model import SparseLinear, SparseMLP, dense_gradients

if TYPE_CHECKING:  # pragma: no cover
    from topo.train.optim import Optimizer

__all__ = ["Context", "LayerChange", "Changes", "Method", "MaskUpdater", "Pruner",
           "drop_and_grow"]

_NOTHING = np.zeros(0, dtype=np.int64)


@dataclass(frozen=True)
class LayerChange:
    """Connections added and removed in one layer (by one update, or summed over several)."""

    added: int = 0
    removed: int = 0

    def __add__(self, other: LayerChange) -> LayerChange:
        return LayerChange(self.added + other.added, self.removed + other.removed)


Changes = dict[int, LayerChange]
"""The structural changes of one method call: layer index -> :class:`LayerChange`; empty when
nothing changed."""


@dataclass
class Context:
    """What a method sees of a run at one moment.

    Attributes
    ----------
    model
        The network; its layers hold the masks (the connection sets).
    optimizer
        Its optimiser, whose per-connection state :func:`drop_and_grow` keeps consistent.
    prunable
        Per layer, whether a method may change it.
    step
        Optimiser steps (and replacing updates) done so far in the run.
    rng
        The run's numpy generator (masks, regrowth positions).
    generator
        The run's torch generator (weights, batches a method draws).
    init
        Draws initial weights (:class:`~topo.train.initialization.WeightInit`).
    loss_fn
        ``loss_fn(output, target)``, mean over the batch.
    train_data
        All training inputs and targets (for saliencies measured on a batch).
    batch
        The current batch, at a replacing step.
    """

    model: SparseMLP
    optimizer: Optimizer
    prunable: Sequence[bool]
    step: int
    rng: np.random.Generator
    generator: torch.Generator
    init: WeightInit
    loss_fn: Callable[..., torch.Tensor]
    train_data: tuple[torch.Tensor, torch.Tensor]
    batch: tuple[torch.Tensor, torch.Tensor] | None = None

    @property
    def layers(self) -> Sequence[SparseLinear]:
        """The network's layers, input side first."""
        return self.model.layers

    @functools.cached_property
    def gradients(self) -> list[np.ndarray]:
        """``∂L/∂W`` of :attr:`batch` at every position of every layer, flat row-major
        (:func:`~topo.train.model.dense_gradients`), computed once, on first use."""
        if self.batch is None:
            raise RuntimeError("gradients are only available at a replacing step")
        return dense_gradients(self.model, *self.batch, self.loss_fn)


class Method:
    """A sparse-training method, as the trainer sees it.

    The trainer calls the four moments below and counts the :data:`Changes` they return;
    the defaults do nothing (``static`` and ``dense`` are exactly this). A method that trains
    in several levels (IMP) names the function that runs them as :attr:`driver`.

    Attributes
    ----------
    starts_dense
        The network starts dense (GMP, SNIP, IMP, dense) rather than from
        ``init_sparsity``.
    levels
        Number of levels after the first (IMP's pruning rounds); 0 for one level.
    driver
        ``driver(trainer)`` trains every level; ``None``: the trainer's own ``fit``.
    optimizer
        The name of the optimiser the method's rule needs (SSGD's scaled step), used in
        place of the configuration's; ``None``: the configuration's.
    """

    starts_dense: ClassVar[bool] = False
    optimizer: ClassVar[str | None] = None
    levels: int = 0
    driver: ClassVar[Callable[[Any], None] | None] = None

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> Method:
        """The method with its hyper-parameters taken from a
        :class:`~topo.train.config.TrainConfig`; ``total_steps`` is the number of optimiser
        steps of one level."""
        return cls()

    @classmethod
    def prunable_layers(cls, config: Any, n_layers: int) -> list[bool]:
        """Per layer, whether the method may change it: every layer but the output layer,
        which only with ``config.sparse_output``."""
        return [config.sparse_output or k < n_layers - 1 for k in range(n_layers)]

    def at_init(self, ctx: Context) -> Changes:
        """Once, after the network is initialised and before epoch 1."""
        return {}

    def at_epoch_start(self, ctx: Context, epoch: int) -> Changes:
        """Before the first step of every epoch (1-based)."""
        return {}

    def replaces_step(self, step: int) -> bool:
        """True when the step after ``step`` steps is a structure update
        (:meth:`at_step`) instead of an optimiser step."""
        return False

    def at_step(self, ctx: Context) -> Changes:
        """The structure update of a step for which :meth:`replaces_step` is True
        (``ctx.batch`` is that step's batch)."""
        return {}

    def after_step(self, ctx: Context) -> Changes:
        """After every optimiser step; ``ctx.step`` counts it."""
        return {}

    def describe(self) -> dict[str, Any]:
        """Fields for the run manifest (``run.json``) beyond the configuration."""
        return {}

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs to continue the method exactly (tensors allowed)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`state_dict` returned."""


class MaskUpdater(Method):
    """A method defined by a drop rule, a grow rule and a :class:`Schedule`.

    At every moment its schedule names, each prunable layer is updated: the drop rule picks
    connections to remove, and (for a method that grows, :attr:`grows`) as many absent
    positions are grown by the grow rule, with weights from :meth:`new_weights`. Every
    layer's decision is taken on the network as it was before the update (as rigl_tf2
    computes all masks before assigning them), then all are applied. A layer that is full
    (density 1) is not rewired by a growing method: it has no absent position to grow.

    Subclasses define :meth:`drop_scores` (default ``|w|``) and :meth:`n_keep`, and
    :meth:`grow_scores`; a rule that is not a ranking overrides :meth:`drop` or
    :meth:`grow` itself (SET).

    A position dropped and grown again by the same update either restarts as a new
    connection (new weight, no optimiser state; SET's reference does this) or, when
    :attr:`keeps_regrown` is True, stays the connection it was, with its weight and
    optimiser state, and counts as neither added nor removed (rigl's
    ``generic_mask_update`` with ``reinit_when_same=False``, its default).
    """

    grows: ClassVar[bool] = True
    keeps_regrown: bool = False

    def __init__(self, schedule: Schedule) -> None:
        self.schedule = schedule

    # ---------------------------------------------------------------- the two rules
    def drop_scores(self, ctx: Context, k: int) -> np.ndarray:
        """Score per connection of layer ``k``; the lowest are dropped. Default ``|w|``."""
        return np.abs(ctx.layers[k].values.data.numpy())

    def n_keep(self, layer: SparseLinear, amount: float) -> int:
        """How many connections of ``layer`` survive an update of size ``amount``."""
        raise NotImplementedError

    def drop(self, ctx: Context, k: int, amount: float) -> np.ndarray:
        """Boolean per connection of layer ``k`` (True: drop): all but the
        :meth:`n_keep` highest :meth:`drop_scores`."""
        layer = ctx.layers[k]
        return ~keep_top([self.drop_scores(ctx, k)], [self.n_keep(layer, amount)])[0]

    def grow_scores(self, ctx: Context, k: int) -> np.ndarray:
        """Score per position (flat row-major) of layer ``k``; the highest absent grow."""
        raise NotImplementedError

    def grow(self, ctx: Context, k: int, keep_flat: np.ndarray, n: int) -> np.ndarray:
        """``n`` absent positions of layer ``k`` to grow (sorted flat indices): the highest
        :meth:`grow_scores` outside ``keep_flat``."""
        return grow_top(self.grow_scores(ctx, k), keep_flat, n)

    def new_weights(self, ctx: Context, k: int, n: int) -> torch.Tensor | None:
        """Weights of ``n`` grown connections of layer ``k``; None: 0."""
        return None

    # ---------------------------------------------------------------- the moments
    def at_epoch_start(self, ctx: Context, epoch: int) -> Changes:
        return self.update(ctx, self.schedule.at_epoch_start(epoch))

    def replaces_step(self, step: int) -> bool:
        return self.schedule.replacing_step(step) is not None

    def at_step(self, ctx: Context) -> Changes:
        return self.update(ctx, self.schedule.replacing_step(ctx.step))

    def after_step(self, ctx: Context) -> Changes:
        return self.update(ctx, self.schedule.after_step(ctx.step))

    def update(self, ctx: Context, amount: float | None) -> Changes:
        """Drop (and grow) in every prunable layer; nothing when ``amount`` is None."""
        if amount is None:
            return {}
        plans = []
        for k, layer in enumerate(ctx.layers):
            if not ctx.prunable[k] or (self.grows and layer.density >= 1.0):
                continue
            drop = self.drop(ctx, k, amount)
            if not drop.any():
                continue
            grown = _NOTHING
            if self.grows:
                flat = layer.flat.numpy()
                grown = self.grow(ctx, k, flat[~drop], int(drop.sum()))
                if self.keeps_regrown:
                    drop, grown = _keep_regrown(flat, drop, grown)
                    if not drop.any():
                        continue
            plans.append((k, drop, grown, self.new_weights(ctx, k, grown.size)))
        return {k: drop_and_grow(ctx.layers[k], drop, grown, values, ctx.optimizer)
                for k, drop, grown, values in plans}


class Pruner(Method):
    """A method that removes connections by one saliency score over all prunable layers."""

    starts_dense = True

    def scores(self, ctx: Context) -> list[np.ndarray]:
        """Saliency per connection of every prunable layer (in layer order)."""
        raise NotImplementedError

    def prune(self, ctx: Context, n_keep: int) -> Changes:
        """Keep the ``n_keep`` most salient connections of the prunable layers together."""
        prunable = [k for k in range(len(ctx.layers)) if ctx.prunable[k]]
        keeps = keep_top(self.scores(ctx), n_keep)
        return {k: drop_and_grow(ctx.layers[k], ~keep, _NOTHING, None, ctx.optimizer)
                for k, keep in zip(prunable, keeps)}

    def prunable_connections(self, ctx: Context) -> int:
        """Connections of the prunable layers."""
        return sum(layer.n_connections for layer, p in zip(ctx.layers, ctx.prunable) if p)


# ---------------------------------------------------------------- the shared machinery
def _keep_regrown(flat: np.ndarray, drop: np.ndarray,
                  grown: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``drop`` and ``grown`` without the positions that are both dropped and grown."""
    again = np.isin(flat, grown) & drop
    if not again.any():
        return drop, grown
    return drop & ~again, grown[~np.isin(grown, flat[again])]


def drop_and_grow(layer: SparseLinear, drop: np.ndarray, grown: np.ndarray,
                  new_values: torch.Tensor | None,
                  optimizer: Optimizer | None) -> LayerChange:
    """Remove the connections flagged in ``drop`` and add the connections ``grown``.

    Parameters
    ----------
    layer
        The layer to change in place.
    drop
        Boolean per existing connection (order of ``layer.flat``): True = remove.
    grown
        Flat row-major positions to add; each must be absent after the drop (a position
        dropped in this same update may be grown again: it restarts as a new connection).
    new_values
        Weights of the grown connections, in increasing flat-index order; ``None`` means 0.
    optimizer
        Its per-connection state is carried over for survivors and zeroed for new ones.

    Returns
    -------
    LayerChange
        Connections added and removed.

    Raises
    ------
    ValueError
        A grown position is still a connection after the drop.

    Notes
    -----
    O(nnz log nnz).
    """
    old_flat = layer.flat.numpy()
    drop = np.asarray(drop, dtype=bool)
    keep_idx = np.flatnonzero(~drop)
    keep_flat = old_flat[keep_idx]
    grown = np.sort(np.asarray(grown, dtype=np.int64))
    if np.intersect1d(keep_flat, grown).size or np.unique(grown).size != grown.size:
        raise ValueError("grown positions must be distinct and absent after the drop")
    new_flat = np.union1d(keep_flat, grown)
    values = torch.zeros(new_flat.size, dtype=torch.float32)
    pos_keep = np.searchsorted(new_flat, keep_flat)
    values[torch.as_tensor(pos_keep)] = layer.values.data[torch.as_tensor(keep_idx)]
    if new_values is not None and grown.size:
        pos_new = np.searchsorted(new_flat, grown)
        values[torch.as_tensor(pos_new)] = new_values[:grown.size].float()
    old_param = layer.values
    layer.set_structure(new_flat, values)
    _move_optimizer_state(optimizer, old_param, layer.values, keep_idx, pos_keep)
    return LayerChange(added=int(grown.size), removed=int(drop.sum()))


def _move_optimizer_state(optimizer: Optimizer | None, old: torch.nn.Parameter,
                          new: torch.nn.Parameter, old_pos: np.ndarray,
                          new_pos: np.ndarray) -> None:
    """Point ``optimizer`` at ``new`` and carry the per-connection state of survivors."""
    if optimizer is None:
        return
    for group in optimizer.param_groups:
        group["params"] = [new if p is old else p for p in group["params"]]
    state = optimizer.state.pop(old, None)
    if not state:
        return
    old_n, new_n = old.numel(), new.numel()
    src = torch.as_tensor(old_pos, dtype=torch.int64)
    dst = torch.as_tensor(new_pos, dtype=torch.int64)
    moved = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.dim() == 1 and value.numel() == old_n:
            buf = value.new_zeros(new_n)
            buf[dst] = value[src]
            moved[key] = buf
        else:
            moved[key] = value
    optimizer.state[new] = moved
