"""Activate-while-Pruning (AP) on top of IMP with rewinding (Liu, Ghosh, Tan & Motani, 2023)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from topo.errors import ConfigError
from topo.train.methods.base import Changes, Context, drop_and_grow
from topo.train.methods.imp import IMP
from topo.train.methods.selection import keep_top
from topo.train.model import LayerState

__all__ = ["AP", "ap_keep_masks"]

_NOTHING = np.zeros(0, dtype=np.int64)


class AP(IMP):
    """``ap``: IMP whose every pruning removes part of its share by AP's rule.

    Each level ends like IMP's (:func:`~topo.train.methods.train_levels`), but of the
    ``round(rate · N)`` prunable connections a level removes (``N`` surviving),
    ``round(share · N)`` are chosen by AP and the rest by global magnitude:

    1. keep the ``N - round(rate N) + round(share N)`` largest ``|w|`` (global);
    2. among those, remove the ``round(share N)`` **negative** weights that moved least
       during the level's training, ``|w_end - w_start|`` (``w_start``: their values when
       the level's training began, i.e. at initialisation for level 0 and after rewinding
       for the others; :func:`ap_keep_masks`);

    then the survivors are rewound as in IMP.

    Parameters
    ----------
    rate, levels, rewind_step
        As for :class:`~topo.train.methods.IMP`.
    share
        AP's share of the surviving weights per level (the paper's 2 %); below ``rate``.

    Notes
    -----
    Liu, Ghosh, Tan & Motani (2023), "AP: selective activation for de-sparsifying pruned
    neural networks", TMLR (arXiv 2212.06145). The method aims at the dynamic dead neuron
    rate (DNR): negative weights push relu units below 0, and those that barely moved
    while training matter least, so removing them activates units that pruning switched
    off. Assumed where the text leaves it open: the sign is that of the weight at the end
    of the level; AP chooses among the weights that survive the magnitude step, so the
    level's total is exact; when fewer negative weights survive than AP's share, the
    remainder is removed by magnitude; ties go to the earlier connection.
    """

    def __init__(self, rate: float, levels: int, rewind_step: int = 0,
                 share: float = 0.02) -> None:
        super().__init__(rate, levels, rewind_step)
        if not 0.0 < share < rate:
            raise ValueError(f"share must lie in (0, rate), got {share}")
        self.share = share
        self.level_start: list[LayerState] | None = None

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> AP:
        imp = IMP.from_config(config, total_steps)
        if not config.ap_share < imp.rate:
            raise ConfigError(f"ap_share ({config.ap_share}) must be below imp_rate "
                              f"({imp.rate})")
        return cls(imp.rate, imp.levels, imp.rewind_step, config.ap_share)

    def at_init(self, ctx: Context) -> Changes:
        self.level_start = ctx.model.capture()
        return super().at_init(ctx)

    def next_level(self, ctx: Context) -> Changes:
        changes = super().next_level(ctx)   # prunes (self.prune) and rewinds
        self.level_start = ctx.model.capture()
        return changes

    def prune(self, ctx: Context, n_keep: int) -> Changes:
        """Keep ``n_keep`` of the prunable connections: magnitude, then AP (see above)."""
        if self.level_start is None:
            raise RuntimeError("AP has no record of the level's starting weights")
        prunable = [k for k in range(len(ctx.layers)) if ctx.prunable[k]]
        values = [ctx.layers[k].values.data.numpy().astype(np.float64) for k in prunable]
        moved = [np.abs(values[i] - _start_values(ctx.layers[k].flat, self.level_start[k]))
                 for i, k in enumerate(prunable)]
        n_ap = int(round(self.share * self.prunable_connections(ctx)))
        keeps = ap_keep_masks(values, moved, n_keep, n_ap)
        return {k: drop_and_grow(ctx.layers[k], ~keep, _NOTHING, None, ctx.optimizer)
                for k, keep in zip(prunable, keeps)}

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "ap_share": self.share}

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "level_start": self.level_start}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.level_start = state.get("level_start")


def ap_keep_masks(values: Sequence[np.ndarray], moved: Sequence[np.ndarray], n_keep: int,
                  n_ap: int) -> list[np.ndarray]:
    """Which connections survive a level of IMP with Activate-while-Pruning.

    Parameters
    ----------
    values
        Per layer, the weights at the end of the level (one per connection).
    moved
        Per layer, how far each weight moved during the level, ``|w_end - w_start|``.
    n_keep
        Connections that survive, over all layers together.
    n_ap
        How many of the removed are chosen by AP (at most the number removed).

    Returns
    -------
    list of np.ndarray
        Boolean keep-mask per layer.

    Notes
    -----
    First the ``n_keep + n_ap`` largest ``|w|`` are kept (global magnitude pruning, ties to
    the earlier connection); of those, the ``n_ap`` negative weights with the smallest
    ``moved`` are removed (ties to the earlier connection). When fewer than ``n_ap``
    negative weights are left, all of them go and the remainder is removed by magnitude.
    Liu et al. (2023), Algorithm 1. O(N log N).
    """
    sizes = np.cumsum([len(v) for v in values])[:-1]
    w = np.concatenate([np.asarray(v, dtype=np.float64) for v in values])
    d = np.concatenate([np.asarray(m, dtype=np.float64) for m in moved])
    n_total = w.size
    n_keep = min(max(n_keep, 0), n_total)
    n_ap = min(max(n_ap, 0), n_total - n_keep)
    keep = keep_top([np.abs(w)], n_keep + n_ap)[0]
    candidates = keep & (w < 0)
    n_from_ap = min(n_ap, int(candidates.sum()))
    removed = keep_top([np.where(candidates, -d, -np.inf)], n_from_ap)[0]
    keep &= ~removed
    shortfall = n_ap - n_from_ap
    if shortfall:
        keep = keep_top([np.where(keep, np.abs(w), -np.inf)], int(keep.sum()) - shortfall)[0]
    return list(np.split(keep, sizes))


def _start_values(flat: torch.Tensor, start: LayerState) -> np.ndarray:
    """The values at the level's start of the connections ``flat`` (a subset of those then)."""
    pos = np.searchsorted(start["flat"].numpy(), flat.numpy())
    return start["values"].numpy()[pos].astype(np.float64)
