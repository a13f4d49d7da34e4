"""RigL: rigging the lottery (Evci et al., 2020)."""

from __future__ import annotations

from typing import Any

import numpy as np

from topo.train.methods.base import Context, MaskUpdater
from topo.train.methods.schedules import CosineSchedule
from topo.train.model import SparseLinear

__all__ = ["RigL"]


class RigL(MaskUpdater):
    """RigL: drop the smallest ``|w|``, grow where ``|∂L/∂w|`` of the batch is largest.

    Drop scores: ``|w|``, ``int(α_t nnz)`` connections per layer. Grow scores: the dense
    gradient of the update step's batch at every position (absent ones as if of weight 0).
    New weights: 0. Schedule: every ΔT steps until ``end_fraction`` of training, with the
    cosine-decayed fraction α_t (:class:`CosineSchedule`); the update takes the place of
    that step's optimiser step.

    Notes
    -----
    Evci et al. (2020), "Rigging the lottery: making all tickets winners", ICML, Algorithm 1.
    """

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> RigL:
        t_end = int(config.rigl_end_fraction * total_steps)
        return cls(CosineSchedule(config.rigl_alpha, config.rigl_delta_t, t_end))

    def n_keep(self, layer: SparseLinear, amount: float) -> int:
        return layer.n_connections - int(amount * layer.n_connections)

    def grow_scores(self, ctx: Context, k: int) -> np.ndarray:
        return np.abs(ctx.gradients[k])
