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
    gradient of the update step's batch at every position (absent ones as if of weight 0),
    the dropped positions included. New weights: 0. A connection dropped and grown again
    in the same update keeps its weight and optimiser state, as RigL's code does
    (``reinit_regrown=True``: it restarts at 0 without state, rigl's
    ``reinit_when_same``). Schedule: every ΔT steps until ``end_fraction`` of training,
    with the cosine-decayed fraction α_t (:class:`CosineSchedule`); the update takes the
    place of that step's optimiser step.

    Notes
    -----
    Evci et al. (2020), "Rigging the lottery: making all tickets winners", ICML, Algorithm 1;
    google-research/rigl, ``rigl_tf2/mask_updaters.py``, ``generic_mask_update``: new
    connections (and the momentum reset) are the grown positions that were not
    connections before the update.
    """

    def __init__(self, schedule: CosineSchedule, reinit_regrown: bool = False) -> None:
        super().__init__(schedule)
        self.keeps_regrown = not reinit_regrown

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> RigL:
        t_end = int(config.rigl_end_fraction * total_steps)
        return cls(CosineSchedule(config.rigl_alpha, config.rigl_delta_t, t_end),
                   reinit_regrown=config.rigl_reinit_regrown)

    def n_keep(self, layer: SparseLinear, amount: float) -> int:
        return layer.n_connections - int(amount * layer.n_connections)

    def grow_scores(self, ctx: Context, k: int) -> np.ndarray:
        return np.abs(ctx.gradients[k])
