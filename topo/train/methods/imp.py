"""Iterative magnitude pruning with rewinding: lottery tickets (Frankle & Carbin, 2019)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from topo.errors import ConfigError
from topo.train._text import count
from topo.train.methods.base import Changes, Context, Pruner
from topo.train.model import LayerState, SparseMLP

if TYPE_CHECKING:  # pragma: no cover
    from topo.train.trainer import Trainer

__all__ = ["IMP", "train_levels", "rewind"]


def train_levels(trainer: Trainer) -> None:
    """IMP's driver: train level 0, then per level: end-of-level callbacks (early stopping
    restores its best weights), prune and rewind (:meth:`IMP.next_level`), a fresh
    optimiser (as open_lth starts every level), the level's epoch-0 report, and training.

    Resumes where the trainer's state says (its ``level`` and ``epoch``).
    """
    imp: IMP = trainer.method
    while True:
        trainer.fit()
        if trainer.level >= imp.levels:
            return
        trainer.callbacks.on_level_end(trainer)
        trainer.start_level(trainer.level + 1)
        trainer.apply(imp.next_level(trainer.context()))
        trainer.reset_optimizer()
        trainer.report_initial()


class IMP(Pruner):
    """IMP: train, remove ``rate`` of the remaining prunable weights by global ``|w|``,
    rewind the survivors to their values at step ``rewind_step``, repeat for ``levels``.

    Scores: ``|w|`` over all prunable layers (global top-k). The output layer is left
    dense unless ``prune_output`` (:meth:`prunable_layers`), as open_lth's default for its
    fully connected LeNets ignores ``fc.weight`` when pruning. Rewinding to step 0 is the
    lottery-ticket reset (Frankle & Carbin 2019); to a step k > 0, Frankle et al. (2020).
    Biases are rewound too. The levels are run by :func:`train_levels`.

    Notes
    -----
    Frankle & Carbin (2019), "The lottery ticket hypothesis", ICLR, Section 2; Frankle,
    Dziugaite, Roy & Carbin (2020), "Linear mode connectivity and the lottery ticket
    hypothesis", ICML (rewinding); open_lth's ``sparse_global`` pruning strategy and
    ``models/mnist_lenet.py`` (``pruning_layers_to_ignore='fc.weight'``).
    """

    driver = staticmethod(train_levels)

    @classmethod
    def prunable_layers(cls, config: Any, n_layers: int) -> list[bool]:
        """Every layer but the output layer, which only with ``config.prune_output``."""
        return [config.prune_output or k < n_layers - 1 for k in range(n_layers)]

    def __init__(self, rate: float, levels: int, rewind_step: int = 0) -> None:
        self.rate, self.levels, self.rewind_step = rate, levels, rewind_step
        self.rewind_point: list[LayerState] | None = None

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> IMP:
        if config.imp_rewind_step > total_steps:
            raise ConfigError(f"imp_rewind_step {config.imp_rewind_step} lies beyond the "
                              f"{count(total_steps, 'step')} of a level")
        return cls(config.imp_rate, config.n_imp_levels(), config.imp_rewind_step)

    def at_init(self, ctx: Context) -> Changes:
        if self.rewind_step == 0:
            self.rewind_point = ctx.model.capture()
        return {}

    def after_step(self, ctx: Context) -> Changes:
        if ctx.step == self.rewind_step:
            self.rewind_point = ctx.model.capture()
        return {}

    def scores(self, ctx: Context) -> list[np.ndarray]:
        return [np.abs(layer.values.data.numpy())
                for layer, p in zip(ctx.layers, ctx.prunable) if p]

    def next_level(self, ctx: Context) -> Changes:
        """Prune ``rate`` of the remaining prunable connections, then rewind."""
        remaining = self.prunable_connections(ctx)
        changes = self.prune(ctx, remaining - int(round(self.rate * remaining)))
        if self.rewind_point is None:
            raise RuntimeError("IMP has no rewind point")   # excluded by from_config
        rewind(ctx.model, self.rewind_point)
        return changes

    def describe(self) -> dict[str, Any]:
        # densities of the pruned layers; the manifest's densities say the whole network's
        return {"levels": self.levels,
                "level_densities": [(1.0 - self.rate) ** lev for lev in range(self.levels + 1)]}

    def state_dict(self) -> dict[str, Any]:
        return {"rewind_point": self.rewind_point}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rewind_point = state.get("rewind_point")


def rewind(model: SparseMLP, point: list[LayerState]) -> None:
    """Give every surviving connection (and every bias) its value at ``point``.

    ``point`` must hold every current connection (it was taken when the network was at
    least as dense). A layer's normalisation (BatchNorm of a CNN) is rewound too, its
    running statistics included, as open_lth rewinds the whole model state.
    """
    for layer, saved in zip(model.layers, point, strict=True):
        now = layer.flat.numpy()
        pos = np.searchsorted(saved["flat"].numpy(), now)
        layer.restore({**saved, "flat": now,
                       "values": saved["values"][torch.as_tensor(pos)].clone()})
