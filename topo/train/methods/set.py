"""SET: sparse evolutionary training (Mocanu et al., 2018)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from topo.train.methods.base import Context, MaskUpdater
from topo.train.methods.schedules import EpochSchedule
from topo.train.methods.selection import grow_random

__all__ = ["SET", "set_drop_mask"]


class SET(MaskUpdater):
    """SET: drop the ζ smallest weights of each sign, regrow as many at random, every epoch.

    Drop rule: :func:`set_drop_mask` (not one ranking: ζ of the positive and ζ of the
    negative weights, closest to 0 first). Grow rule: absent positions uniformly at random.
    New weights: drawn like the initial ones (SET's reference), or 0 with
    ``regrow_zero``. Schedule: before epochs 2..E (:class:`EpochSchedule`).

    Notes
    -----
    Mocanu et al. (2018), "Scalable training of artificial neural networks with adaptive
    sparse connectivity inspired by network science", Nature Communications 9, Algorithm 1
    and the reference ``set_mlp.py`` (``weightsEvolution``).
    """

    def __init__(self, zeta: float = 0.3, regrow_zero: bool = False) -> None:
        super().__init__(EpochSchedule(zeta))
        self.regrow_zero = regrow_zero

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> SET:
        return cls(config.zeta, config.set_regrow_zero)

    def drop(self, ctx: Context, k: int, amount: float) -> np.ndarray:
        return set_drop_mask(ctx.layers[k].values.data.numpy(), amount)

    def grow(self, ctx: Context, k: int, keep_flat: np.ndarray, n: int) -> np.ndarray:
        return grow_random(ctx.rng, ctx.layers[k].size, keep_flat, n)

    def new_weights(self, ctx: Context, k: int, n: int) -> torch.Tensor | None:
        return None if self.regrow_zero else ctx.init.draw(k, n, ctx.layers[k].density)


def set_drop_mask(values: np.ndarray, zeta: float) -> np.ndarray:
    """SET's signed drop rule: the ζ fraction of smallest positive and of largest negative.

    Removes ``floor(ζ n_pos)`` positive weights closest to 0, ``floor(ζ n_neg)`` negative
    weights closest to 0, and every weight exactly 0 (which lies between the two thresholds in
    SET's reference ``weightsEvolution``). Ties go to the earlier connection.

    Notes
    -----
    Mocanu et al. (2018), Algorithm 1 and the reference implementation
    (``set_mlp.py``, ``weightsEvolution``). O(nnz log nnz).
    """
    values = np.asarray(values)
    drop = values == 0
    pos = np.flatnonzero(values > 0)
    neg = np.flatnonzero(values < 0)
    n_pos, n_neg = int(zeta * pos.size), int(zeta * neg.size)
    if n_pos:
        drop[pos[np.argsort(values[pos], kind="stable")[:n_pos]]] = True
    if n_neg:
        drop[neg[np.argsort(-values[neg], kind="stable")[:n_neg]]] = True
    return drop
