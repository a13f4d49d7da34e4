"""SNIP: single-shot network pruning at initialisation (Lee et al., 2019)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from topo.train.methods.base import Changes, Context, Pruner
from topo.train.model import SparseMLP

__all__ = ["SNIP", "snip_scores"]


class SNIP(Pruner):
    """SNIP: at initialisation keep the ``density`` fraction of the prunable connections with
    the largest ``|∂L/∂w ⊙ w|`` on one batch (global top-k), then train the mask unchanged.

    The batch: ``batch_size`` training samples drawn with the run's torch generator.

    Notes
    -----
    Lee, Ajanthan & Torr (2019), "SNIP: single-shot network pruning based on connection
    sensitivity", ICLR, eq. (6) (normalising by the sum does not change the ranking).
    """

    def __init__(self, density: float, batch_size: int) -> None:
        self.density, self.batch_size = density, batch_size

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> SNIP:
        return cls(config.target_density(), config.batch_size)

    def scores(self, ctx: Context) -> list[np.ndarray]:
        X, y = ctx.train_data
        idx = torch.randperm(len(X), generator=ctx.generator)[:self.batch_size]
        scores = snip_scores(ctx.model, X[idx], y[idx], ctx.loss_fn)
        return [s for s, p in zip(scores, ctx.prunable) if p]

    def at_init(self, ctx: Context) -> Changes:
        n_keep = max(1, int(round(self.density * self.prunable_connections(ctx))))
        return self.prune(ctx, n_keep)


def snip_scores(model: SparseMLP, x: torch.Tensor, y: torch.Tensor,
                loss_fn: Callable[..., torch.Tensor]) -> list[np.ndarray]:
    """SNIP connection sensitivity ``|∂L/∂w ⊙ w|`` of every existing connection, one batch.

    Notes
    -----
    Lee, Ajanthan & Torr (2019), eq. (6). O(one forward and backward pass).
    """
    model.zero_grad(set_to_none=True)
    loss_fn(model(x), y).backward()
    out = [(layer.values.grad * layer.values.data).abs().numpy().astype(np.float64)
           for layer in model.layers]
    model.zero_grad(set_to_none=True)
    return out
