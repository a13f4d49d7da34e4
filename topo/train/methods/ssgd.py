"""SSGD: sparsity-promoting SGD, then pruning of the weights it left small (Lee et al., 2020)."""

from __future__ import annotations

from typing import Any

import numpy as np

from topo.train.methods.base import Changes, Context, Pruner

__all__ = ["SSGDPruning"]


class SSGDPruning(Pruner):
    """``ssgd``: train dense with SSGD's affine-scaled steps, prune after the last step.

    Training uses the ``ssgd`` optimiser (:class:`~topo.train.optim.SSGD`: each weight's
    step scaled by ``w² / mean(w²)``, ``w = (θ² + ε)^½`` or ``|θ| + ε``), whatever
    ``optimizer`` says (``sgd``, the default, is read as this; others are refused by the
    configuration). Right after the last optimiser step, the prunable connections with the
    smallest ``|θ|`` are removed, over all prunable layers together: down to ``density``
    (global top-k by ``|θ|``), or every connection with ``|θ| < threshold`` (at least one
    connection is kept). The last epoch's evaluation and snapshot show the pruned network.

    Parameters
    ----------
    total_steps
        Optimiser steps of the run; pruning follows the last.
    density, threshold
        Exactly one: the target density of the prunable connections, or the threshold.

    Notes
    -----
    Lee, Fedorov, Rao & Garudadri (2020), "SSGD: sparsity-promoting stochastic gradient
    descent algorithm for unbiased DNN pruning", ICASSP. Assumed where the paper leaves it
    open: one pruning after training without retraining (the scaled steps are what make
    the small weights prunable); the magnitude cut is global over the prunable layers.
    """

    optimizer = "ssgd"

    def __init__(self, total_steps: int, density: float | None = None,
                 threshold: float | None = None) -> None:
        if (density is None) == (threshold is None):
            raise ValueError("give exactly one of density and threshold")
        self.total_steps, self.density, self.threshold = total_steps, density, threshold

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> SSGDPruning:
        if config.ssgd_threshold is not None:
            return cls(total_steps, threshold=config.ssgd_threshold)
        return cls(total_steps, density=config.target_density())

    def scores(self, ctx: Context) -> list[np.ndarray]:
        return [np.abs(layer.values.data.numpy()).astype(np.float64)
                for layer, p in zip(ctx.layers, ctx.prunable) if p]

    def n_keep(self, ctx: Context) -> int:
        """Connections the final pruning keeps."""
        if self.threshold is not None:
            threshold = self.threshold
            kept = sum(int((s >= threshold).sum()) for s in self.scores(ctx))
        elif self.density is not None:   # __init__ sets exactly one of the two
            kept = int(round(self.density * self.prunable_connections(ctx)))
        else:  # pragma: no cover - refused by __init__
            raise AssertionError("neither density nor threshold")
        return max(1, kept)

    def after_step(self, ctx: Context) -> Changes:
        if ctx.step != self.total_steps:
            return {}
        return self.prune(ctx, self.n_keep(ctx))

    def describe(self) -> dict[str, Any]:
        rule = ({"prune_threshold": self.threshold} if self.threshold is not None
                else {"prune_density": self.density})
        return {"optimizer_used": self.optimizer, "prune_step": self.total_steps, **rule}
