"""Gradual magnitude pruning (Zhu & Gupta, 2017)."""

from __future__ import annotations

from typing import Any

from topo.train.methods.base import MaskUpdater
from topo.train.methods.schedules import CubicSchedule
from topo.train.model import SparseLinear

__all__ = ["GMP"]


class GMP(MaskUpdater):
    """Gradual magnitude pruning: from dense, every layer to the same scheduled density.

    Drop scores: ``|w|``; each prunable layer keeps ``max(1, round(d_t n_in n_out))``
    connections. Grows nothing. Schedule: after every ΔT-th step from ``begin`` to ``end``
    (75 % of training by default), the cubic density ``d_t`` (:class:`CubicSchedule`).

    Notes
    -----
    Zhu & Gupta (2017), "To prune, or not to prune: exploring the efficacy of pruning for
    model compression", eq. (1).
    """

    starts_dense = True
    grows = False

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> GMP:
        end = int(config.gmp_end_fraction * total_steps)
        return cls(CubicSchedule(config.target_density(), config.gmp_begin, end,
                                 config.gmp_delta_t))

    def n_keep(self, layer: SparseLinear, amount: float) -> int:
        return min(layer.n_connections, max(1, int(round(amount * layer.size))))
