"""SiPP: sensitivity-informed provable pruning (Baykal, Liebenwein, Gilitschenski, Feldman & Rus).

A connection's *sensitivity* is the largest share it takes, over a small batch of inputs, of
the part of its unit's pre-activation that has the same sign as its own contribution.
Pruning keeps a budget of connections per unit and sign, either the most sensitive ones
(deterministic), a sample drawn in proportion to sensitivity and reweighted so that the
pre-activations stay unbiased (randomized), or per unit whichever of the two has the smaller
error bound (hybrid). The network is trained dense, pruned once and retrained.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from topo.train.methods.base import Changes, Context, Pruner, drop_and_grow
from topo.train.methods.imp import train_levels
from topo.train.methods.selection import keep_top
from topo.train.model import SparseMLP

__all__ = ["SiPP", "sipp_sensitivities", "sipp_prune", "sipp_tails", "SiPPLayer",
           "SIPP_DELTA"]

SIPP_DELTA = 0.1
"""Failure probability δ in the randomized error bound the hybrid compares."""

_NOTHING = np.zeros(0, dtype=np.int64)
_CHUNK = 4_000_000   # entries of one (samples x connections) block of shares


class SiPP(Pruner):
    """``sipp``: train dense, prune by sensitivity to ``density``, retrain.

    Level 0 trains the dense network; then (:func:`~topo.train.methods.train_levels`) the
    sensitivities of every prunable connection are measured on ``batch_size`` training
    samples drawn with the run's generator (:func:`sipp_sensitivities`), the prunable
    layers are pruned to ``round(density · N)`` connections by ``mode``
    (:func:`sipp_prune`), and level 1 retrains the pruned network from its weights (no
    rewinding) with a fresh optimiser.

    Notes
    -----
    Baykal, Liebenwein, Gilitschenski, Feldman & Rus (2022), "Sensitivity-informed provable
    pruning of neural networks", SIAM Journal on Mathematics of Data Science (arXiv
    1910.05422, "SiPPing neural networks"). Assumed where topo cannot follow the paper
    exactly: one prune-retrain cycle; all layers' sensitivities from the unpruned network
    on one batch; the budget is split between units, signs and layers so as to make their
    deterministic error bounds equal (the common-ε allocation of the paper, made exact by
    ranking tails of sensitivities), and that one split serves all three modes
    (:func:`sipp_prune`).
    """

    # mypy reads a staticmethod in Method's ClassVar[Callable] as a method without its
    # argument (as IMP's, whose module is on pyproject.toml's torch list)
    driver = staticmethod(train_levels)  # type: ignore[assignment]
    levels = 1

    def __init__(self, density: float, mode: str = "deterministic",
                 batch_size: int = 128, delta: float = SIPP_DELTA) -> None:
        if mode not in ("deterministic", "randomized", "hybrid"):
            raise ValueError(f"unknown SiPP mode {mode!r}")
        self.density, self.mode, self.batch_size, self.delta = density, mode, batch_size, delta
        self.last: list[SiPPLayer] = []

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> SiPP:
        return cls(config.target_density(), config.sipp_mode, config.sipp_batch_size)

    def scores(self, ctx: Context) -> list[np.ndarray]:
        X, _ = ctx.train_data
        idx = torch.randperm(len(X), generator=ctx.generator)[:self.batch_size]
        sens = sipp_sensitivities(ctx.model, X[idx])
        return [s for s, p in zip(sens, ctx.prunable) if p]

    def next_level(self, ctx: Context) -> Changes:
        """Prune the trained network to :attr:`density` (see :func:`sipp_prune`)."""
        prunable = [k for k in range(len(ctx.layers)) if ctx.prunable[k]]
        n_keep = max(1, int(round(self.density * self.prunable_connections(ctx))))
        layers = [ctx.layers[k] for k in prunable]
        self.last = sipp_prune(
            [layer.values.data.numpy().astype(np.float64) for layer in layers],
            [layer.flat.numpy() // layer.n_in for layer in layers],
            self.scores(ctx), n_keep, self.mode, ctx.rng, delta=self.delta)
        changes = {}
        for k, layer, result in zip(prunable, layers, self.last):
            changes[k] = drop_and_grow(layer, ~result.keep, _NOTHING, None, ctx.optimizer)
            layer.values.data = torch.as_tensor(result.values[result.keep], dtype=torch.float32)
        return changes

    def describe(self) -> dict[str, Any]:
        return {"levels": 1, "level_densities": [1.0, self.density], "sipp_mode": self.mode}


@dataclass(frozen=True)
class SiPPLayer:
    """The outcome of SiPP for one layer.

    Attributes
    ----------
    keep
        Boolean per connection: kept.
    values
        Per connection, its weight after pruning (reweighted where sampled; the old weight
        where not kept).
    randomized
        Boolean per unit (row): some of its connections were sampled (else all were kept
        by sensitivity).
    """

    keep: np.ndarray
    values: np.ndarray
    randomized: np.ndarray


def sipp_sensitivities(model: SparseMLP, x: torch.Tensor) -> list[np.ndarray]:
    """Sensitivity of every connection of every layer on the inputs ``x``.

    For connection ``e`` from input unit ``j`` to unit ``i`` of a layer, with the layer's
    inputs ``a(x)`` (the network's inputs for the first layer, the activations of the
    previous layer otherwise), the weight and the input are split into positive and
    negative parts, ``w = w⁺ - w⁻`` and ``a = a⁺ - a⁻``. For each of the two input parts
    ``a^σ``, the share of ``e`` in the sum over the unit's connections of the same weight
    sign is ``|w_e| a^σ_j(x) / Σ_{e' into i, sign(w_e') = sign(w_e)} |w_e'| a^σ_{j'}(x)``
    (0 when the sum is 0), and

        s_e = max over x in the batch and σ in {+, -} of that share.

    Parameters
    ----------
    model
        The network (every layer's connections are scored).
    x
        The batch of inputs, shape ``(B, n_in)``.

    Returns
    -------
    list of np.ndarray
        Per layer, one sensitivity in ``[0, 1]`` per connection (order of ``layer.flat``).

    Notes
    -----
    Baykal et al. (2022), Section 3 (empirical sensitivity) and their treatment of
    negative weights and inputs by splitting into positive and negative parts. A weight
    of exactly 0 counts as positive and has sensitivity 0. O(B · nnz) per layer, in
    blocks of samples.
    """
    model.eval()
    with torch.no_grad():
        acts = [x]
        for k, layer in enumerate(model.layers[:-1]):
            acts.append(model.act(layer(acts[k])))
    model.train()
    return [_layer_sensitivity(layer.values.data.double(), layer.flat, layer.n_in,
                               layer.n_out, a.double())
            for layer, a in zip(model.layers, acts)]


def sipp_prune(values: Sequence[np.ndarray], rows: Sequence[np.ndarray],
               sensitivities: Sequence[np.ndarray], n_keep: int, mode: str,
               rng: np.random.Generator, *, delta: float = SIPP_DELTA) -> list[SiPPLayer]:
    """Prune layers to ``n_keep`` connections in total by SiPP.

    The connections of a layer fall into *parts*: one per unit (row) and weight sign
    (a weight of 0 counts as positive). Each part gets a budget ``k`` of connections so that
    the deterministic error bound below is as equal as possible over all parts of all
    layers (the largest one as small as the total ``n_keep`` allows): every connection is
    scored by its part's *tail*, the sum of the sensitivities of the part's connections
    ranked at or after it (most sensitive first), and the ``n_keep`` highest tails are
    kept (:func:`sipp_tails`; ties to the earlier connection). Within a part this keeps the
    most sensitive first, so ``k`` is the number of its connections among them. Then per
    part, with sensitivities ``s`` (sum ``S``):

    - **deterministic**: keep its ``k`` most sensitive connections, weights unchanged;
      relative error bound ``ε_det = min(1, Σ of the dropped s)``.
    - **randomized**: draw connections i.i.d. with probability ``p_e = s_e / S`` until ``k``
      distinct ones are drawn (``m`` draws, ``c_e`` times each); keep them with weights
      ``w_e c_e / (m p_e)``, whose expectation for a fixed ``m`` is ``w_e``; error bound
      ``ε_rand = min(1, sqrt(8 S log(2/δ) / (3 k)))`` (Bernstein's inequality for ``k``
      draws, each term in ``[0, S z]``). A part that can keep every connection of
      positive sensitivity keeps its ``k`` most sensitive unchanged (its estimate is exact).
    - **hybrid**: per unit, randomized when the larger of its two parts' ``ε_rand`` is
      below the larger of their ``ε_det``, deterministic otherwise (a part that is not
      sampled in any mode, being empty or able to keep all its sensitive connections,
      counts with its ``ε_det`` in both).

    Parameters
    ----------
    values, rows, sensitivities
        Per layer, per connection: weight, unit (row) index and sensitivity.
    n_keep
        Connections to keep over all layers.
    mode
        ``"deterministic"``, ``"randomized"`` or ``"hybrid"``.
    rng
        Draws the samples.
    delta
        Failure probability in ``ε_rand``.

    Returns
    -------
    list of SiPPLayer
        Per layer: kept connections, their new weights, which units were sampled.

    Raises
    ------
    ValueError
        Unknown mode or mismatched lengths.

    Notes
    -----
    Baykal et al. (2022): SiPP-Det, SiPP-Rand and SiPP-Hybrid. Sampling until ``k``
    distinct connections appear is simulated exactly and without a loop over draws: the
    first draw of connection ``e`` comes at time ``T_e ~ Exp(p_e)`` of a rate-1 Poisson
    stream of draws, the ``k`` earliest are kept, and each kept ``e`` is drawn again a
    ``Poisson(p_e (T_(k) - T_e))`` number of times before ``T_(k)``. Assumed: the stopping
    rule makes ``m`` depend on the draws, so the reweighting is unbiased only given
    ``m`` (the paper samples a fixed number; topo fixes the kept count instead, so that
    every mode reaches the target density). O(N log N).
    """
    if mode not in ("deterministic", "randomized", "hybrid"):
        raise ValueError(f"unknown SiPP mode {mode!r}")
    if not (len(values) == len(rows) == len(sensitivities)):
        raise ValueError("values, rows and sensitivities need one entry per layer")
    top = keep_top([sipp_tails(np.asarray(w, np.float64), np.asarray(r, np.int64),
                               np.asarray(t, np.float64))
                    for w, r, t in zip(values, rows, sensitivities)], n_keep)
    return [_prune_layer(np.asarray(w, np.float64), np.asarray(r, np.int64),
                         np.asarray(s, np.float64), t, mode, rng, delta)
            for w, r, s, t in zip(values, rows, sensitivities, top)]


def sipp_tails(values: np.ndarray, rows: np.ndarray, sensitivities: np.ndarray) -> np.ndarray:
    """Per connection, the sum of the sensitivities of its part (unit and weight sign) from
    it on, the part's connections ranked by decreasing sensitivity (ties: earlier first).

    Keeping a part's ``k`` most sensitive connections leaves a deterministic error bound
    equal to the tail of its ``(k + 1)``-th; so keeping the connections whose tails exceed
    ``ε`` gives every part a bound of at most ``ε`` with the fewest connections, and the
    ``n`` highest tails over all layers are the split of ``n`` connections with the smallest
    largest bound. O(N log N).
    """
    part = rows * 2 + (values < 0)
    order = np.lexsort((np.arange(part.size), -sensitivities, part))
    s_sorted = sensitivities[order]
    part_sorted = part[order]
    cum = np.cumsum(s_sorted)
    starts = np.searchsorted(part_sorted, part_sorted, side="left")
    before = cum - s_sorted - (cum[starts] - s_sorted[starts])   # more sensitive, same part
    totals = np.bincount(part, weights=sensitivities)
    tails = np.empty(part.size)
    tails[order] = totals[part_sorted] - before
    return tails


# ---------------------------------------------------------------- helpers
def _layer_sensitivity(w: torch.Tensor, flat: torch.Tensor, n_in: int, n_out: int,
                       a: torch.Tensor) -> np.ndarray:
    rows = torch.div(flat, n_in, rounding_mode="floor")
    cols = flat - rows * n_in
    positive = w >= 0
    mag = w.abs()
    sens = torch.zeros(w.numel(), dtype=torch.float64)
    if w.numel() == 0:
        return sens.numpy()
    # |W+| and |W-| as dense matrices give every unit's same-sign sums in one product
    parts = []
    for sign in (positive, ~positive):
        m = torch.zeros(n_out * n_in, dtype=torch.float64)
        m[flat[sign]] = mag[sign]
        parts.append(m.view(n_out, n_in))
    part_of = torch.where(positive, 0, 1)
    block = max(1, _CHUNK // max(1, w.numel()))
    for a_part in (a.clamp(min=0), (-a).clamp(min=0)):
        for begin in range(0, len(a_part), block):
            ab = a_part[begin:begin + block]                       # (b, n_in)
            sums = torch.stack([ab @ p.t() for p in parts])        # (2, b, n_out)
            contrib = ab[:, cols] * mag                            # (b, nnz)
            denom = sums[part_of, :, rows].t()                     # (b, nnz)
            share = torch.where(denom > 0, contrib / torch.where(denom > 0, denom, 1.0),
                                torch.zeros((), dtype=torch.float64))
            sens = torch.maximum(sens, share.max(0).values)
    return sens.clamp(max=1.0).numpy()


def _prune_layer(w: np.ndarray, rows: np.ndarray, s: np.ndarray, top: np.ndarray, mode: str,
                 rng: np.random.Generator, delta: float) -> SiPPLayer:
    n_units = int(rows.max()) + 1 if rows.size else 0
    part = rows * 2 + (w < 0)                  # part id: unit and weight sign
    n_parts = 2 * n_units
    budget = np.bincount(part, weights=top, minlength=n_parts).astype(np.int64)
    total = np.bincount(part, weights=s, minlength=n_parts)
    dropped = np.bincount(part, weights=np.where(top, 0.0, s), minlength=n_parts)
    positive = np.bincount(part, weights=s > 0, minlength=n_parts).astype(np.int64)
    eps_det = np.minimum(1.0, dropped)
    # sampling only helps a part that must leave out some connection of positive
    # sensitivity; every other part is kept by sensitivity whatever the mode, and its
    # bound is the deterministic one (0 for a part without connections)
    samplable = (budget > 0) & (budget < positive)
    eps_rand = eps_det.copy()
    eps_rand[samplable] = np.minimum(1.0, np.sqrt(
        8.0 * total[samplable] * math.log(2.0 / delta) / (3.0 * budget[samplable])))
    if mode == "deterministic":
        sample_unit = np.zeros(n_units, dtype=bool)
    elif mode == "randomized":
        sample_unit = np.ones(n_units, dtype=bool)
    else:
        unit_det = eps_det.reshape(n_units, 2).max(1)
        unit_rand = eps_rand.reshape(n_units, 2).max(1)
        sample_unit = unit_rand < unit_det
    sampled_part = samplable & np.repeat(sample_unit, 2)
    keep = top.copy()
    new_w = w.copy()
    on = sampled_part[part]
    if on.any():
        kept, weights = _sample_until_distinct(part[on], s[on], w[on], budget, total, rng)
        keep[on] = kept
        new_w[on] = weights
    return SiPPLayer(keep=keep, values=new_w, randomized=sampled_part.reshape(n_units, 2).any(1))


def _sample_until_distinct(part: np.ndarray, s: np.ndarray, w: np.ndarray,
                           budget: np.ndarray, total: np.ndarray,
                           rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per part, i.i.d. draws with probability ``s / S`` until ``budget`` distinct
    connections came up; returns the keep mask and the reweighted weights."""
    p = s / total[part]
    with np.errstate(divide="ignore"):
        first = rng.standard_exponential(p.size) / p          # inf where p = 0
    order = np.lexsort((np.arange(p.size), first, part))       # by part, then arrival
    ranked_part = part[order]
    starts = np.searchsorted(ranked_part, ranked_part, side="left")
    rank = np.empty(p.size, dtype=np.int64)
    rank[order] = np.arange(p.size) - starts
    keep = rank < budget[part]
    # time of each part's k-th first arrival
    last = np.zeros(total.size)
    last[part[keep & (rank == budget[part] - 1)]] = first[keep & (rank == budget[part] - 1)]
    repeats = np.zeros(p.size, dtype=np.int64)
    lam = p[keep] * (last[part[keep]] - first[keep])
    repeats[keep] = rng.poisson(np.maximum(lam, 0.0))
    counts = np.where(keep, 1 + repeats, 0)
    draws = np.bincount(part, weights=counts, minlength=total.size)
    new_w = w.copy()
    new_w[keep] = w[keep] * counts[keep] / (draws[part[keep]] * p[keep])
    return keep, new_w
