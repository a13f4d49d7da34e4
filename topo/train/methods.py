"""Sparse-training methods behind one drop-and-grow interface.

A method decides **which connections to drop and which absent positions to grow**, and when;
the shared function :func:`drop_and_grow` applies the decision to a layer, keeps the per-layer
counts, and moves the optimiser state: surviving connections keep theirs, new connections
start from zero (RigL's momentum reset, Evci et al. 2020). The design follows
``rigl_tf2/mask_updaters.py``: SET and RigL differ only in their grow scores.

========= =========================================================== =======================
method    rule                                                        reference
========= =========================================================== =======================
dense     all connections, never changed                              --
static    random ER/ERK mask, never changed                           Mocanu et al. 2018
set       after every epoch but the last, per layer: drop the ζ       Mocanu et al. 2018
          fraction of the smallest positive and ζ of the largest
          negative weights, regrow as many uniformly at random among
          absent positions, new weights drawn like the initial ones
rigl      every ΔT steps until 75 % of training: drop α_t of the      Evci et al. 2020
          connections by |w|, grow as many where |∂L/∂w| of the
          current batch is largest among absent positions, new
          weights 0, α_t = α/2 (1 + cos(π t / T_end))
gmp       from dense, every ΔT steps from t0 to T_end prune each      Zhu & Gupta 2017
          layer by |w| to s_t = s_f (1 - (1 - (t-t0)/(T_end-t0))^3)
imp       train, prune p of the remaining weights by global |w|,      Frankle & Carbin 2019;
          rewind survivors to their values at step k, repeat          Frankle et al. 2020
snip      at initialisation keep the top density fraction of          Lee et al. 2019
          |g ⊙ w| (one batch, global), then train static
========= =========================================================== =======================

Erdős–Rényi densities: layer density ``min(1, ε (n_in + n_out) / (n_in n_out))`` (Mocanu et
al. 2018). ERK to a target overall density ``D``: the same shape with ε solved so that the
connection count is ``D`` times the possible one, layers that would exceed 1 set dense and ε
solved again (Evci et al. 2020, ``get_sparsities_erdos_renyi``; for fully connected layers
ER and ERK have the same shape). Masks hold exactly ``round(density · n_in n_out)``
connections chosen uniformly without replacement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from topo.errors import ConfigError
from topo.train.model import SparseLinear

__all__ = [
    "er_densities", "erk_densities", "random_structure", "drop_and_grow", "grow_top",
    "grow_random", "set_drop_mask", "dense_gradients",
    "magnitude_keep", "global_magnitude_keep", "gmp_density", "rigl_drop_fraction",
    "snip_scores", "LayerChange",
]


@dataclass
class LayerChange:
    """Connections added and removed in one layer by one structural update."""

    added: int = 0
    removed: int = 0


# ---------------------------------------------------------------- densities and masks
def er_densities(widths: Sequence[int], epsilon: float,
                 sparse: Sequence[bool] | None = None) -> list[float]:
    """Erdős–Rényi density of every layer: ``min(1, ε (n_in + n_out) / (n_in n_out))``.

    Parameters
    ----------
    widths
        Unit counts input to output.
    epsilon
        SET's ε (> 0).
    sparse
        Per layer, whether it is sparse at all (dense layers get 1).

    Returns
    -------
    list of float

    Notes
    -----
    Mocanu et al. (2018), "Scalable training of artificial neural networks with adaptive
    sparse connectivity inspired by network science", Nature Communications 9, eq. (1).
    """
    out = []
    for k in range(len(widths) - 1):
        n_in, n_out = widths[k], widths[k + 1]
        if sparse is not None and not sparse[k]:
            out.append(1.0)
        else:
            out.append(min(1.0, epsilon * (n_in + n_out) / (n_in * n_out)))
    return out


def erk_densities(widths: Sequence[int], density: float,
                  sparse: Sequence[bool] | None = None) -> list[float]:
    """Densities with the Erdős–Rényi shape whose sparse layers together reach ``density``.

    Layers whose density would exceed 1 are made dense and the scale is solved again for the
    rest (iterating until no layer exceeds 1). Layers marked not sparse are dense and not
    counted in the budget.

    Raises
    ------
    ConfigError
        ``density`` outside (0, 1].

    Notes
    -----
    Evci et al. (2020), "Rigging the lottery", Appendix (ERK); ``get_sparsities_erdos_renyi``
    of google-research/rigl. O(L^2) for L layers.
    """
    if not 0.0 < density <= 1.0:
        raise ConfigError(f"density must lie in (0, 1], got {density}")
    n_layers = len(widths) - 1
    sparse = [True] * n_layers if sparse is None else list(sparse)
    sizes = np.array([widths[k] * widths[k + 1] for k in range(n_layers)], dtype=float)
    raw = np.array([(widths[k] + widths[k + 1]) / sizes[k] for k in range(n_layers)])
    dense = [not s for s in sparse]
    while True:
        budget = density * sizes[np.array(sparse)].sum()
        fixed = sum(sizes[k] for k in range(n_layers) if dense[k] and sparse[k])
        free = [k for k in range(n_layers) if sparse[k] and not dense[k]]
        if not free:
            break
        eps = (budget - fixed) / sum(raw[k] * sizes[k] for k in free)
        over = [k for k in free if eps * raw[k] > 1.0]
        if not over:
            break
        for k in over:
            dense[k] = True
    return [1.0 if dense[k] else float(eps * raw[k]) for k in range(n_layers)]


def random_structure(n_in: int, n_out: int, density: float,
                     rng: np.random.Generator) -> np.ndarray:
    """Sorted flat indices of ``round(density n_in n_out)`` positions drawn without replacement.

    At least one connection is kept so that no layer is empty.
    """
    size = n_in * n_out
    count = min(size, max(1, int(round(density * size))))
    if count == size:
        return np.arange(size, dtype=np.int64)
    return np.sort(rng.choice(size, size=count, replace=False)).astype(np.int64)


# ---------------------------------------------------------------- shared machinery
def drop_and_grow(layer: SparseLinear, drop: np.ndarray, grown: np.ndarray,
                  new_values: torch.Tensor | None,
                  optimizer: torch.optim.Optimizer | None) -> LayerChange:
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
    O(nnz log nnz). The selection of ``grown`` is the method's: :func:`grow_top` (RigL) or
    :func:`grow_random` (SET).
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


def grow_top(scores: np.ndarray, keep_flat: np.ndarray, n: int) -> np.ndarray:
    """The ``n`` positions with the highest score among those not in ``keep_flat``.

    ``scores`` covers every position (flat row-major). Returns sorted flat indices.
    O(n_in n_out) (``argpartition``).
    """
    scores = np.asarray(scores, dtype=np.float64).copy()
    scores[keep_flat] = -np.inf
    n = min(n, scores.size - np.asarray(keep_flat).size)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    top = np.argpartition(-scores, n - 1)[:n] if n < scores.size else np.arange(scores.size)
    return np.sort(top).astype(np.int64)


def grow_random(rng: np.random.Generator, size: int, keep_flat: np.ndarray,
                n: int) -> np.ndarray:
    """``n`` positions drawn uniformly without replacement among those not in ``keep_flat``.

    Returns sorted flat indices. O(n_in n_out).
    """
    absent = np.ones(size, dtype=bool)
    absent[keep_flat] = False
    candidates = np.flatnonzero(absent)
    n = min(n, candidates.size)
    if n <= 0:
        return np.zeros(0, dtype=np.int64)
    return np.sort(rng.choice(candidates, size=n, replace=False)).astype(np.int64)


def _move_optimizer_state(optimizer: torch.optim.Optimizer | None, old: torch.nn.Parameter,
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


def magnitude_keep(values: np.ndarray, n_keep: int) -> np.ndarray:
    """Boolean per weight: True for the ``n_keep`` largest ``|w|`` (ties: earlier first)."""
    values = np.asarray(values)
    keep = np.zeros(values.size, dtype=bool)
    if n_keep > 0:
        order = np.argsort(-np.abs(values), kind="stable")
        keep[order[:n_keep]] = True
    return keep


def global_magnitude_keep(per_layer: Sequence[np.ndarray], n_keep: int) -> list[np.ndarray]:
    """Keep the ``n_keep`` largest ``|w|`` across layers; one boolean array per layer.

    Notes
    -----
    Global magnitude pruning as in open_lth's ``sparse_global`` strategy (Frankle & Carbin,
    2019). O(N log N) for N weights.
    """
    sizes = [np.asarray(v).size for v in per_layer]
    keep = magnitude_keep(np.concatenate([np.asarray(v, dtype=np.float64) for v in per_layer]),
                          n_keep)
    return list(np.split(keep, np.cumsum(sizes)[:-1]))


def gmp_density(step: int, begin: int, end: int, final_density: float) -> float:
    """Zhu & Gupta's cubic schedule: density at ``step`` when pruning from dense.

    ``s_t = s_f + (s_i - s_f)(1 - (t - t0)/(n Δt))^3`` with ``s_i = 0`` and
    ``s_f = 1 - final_density``; the density is ``1 - s_t``, 1 before ``begin`` and
    ``final_density`` from ``end`` on.

    Notes
    -----
    Zhu & Gupta (2017), "To prune, or not to prune", eq. (1). O(1).
    """
    if step <= begin:
        return 1.0
    if step >= end or end <= begin:
        return float(final_density)
    s_f = 1.0 - final_density
    frac = (step - begin) / (end - begin)
    sparsity = s_f + (0.0 - s_f) * (1.0 - frac) ** 3
    return 1.0 - sparsity


def rigl_drop_fraction(step: int, alpha: float, t_end: int) -> float:
    """RigL's cosine-decayed drop fraction ``α/2 (1 + cos(π t / T_end))`` (0 from T_end on).

    Notes
    -----
    Evci et al. (2020), eq. (1). O(1).
    """
    if step >= t_end:
        return 0.0
    return alpha / 2.0 * (1.0 + math.cos(math.pi * step / t_end))


def snip_scores(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                loss_fn) -> list[np.ndarray]:
    """SNIP connection sensitivity ``|∂L/∂w ⊙ w|`` of every existing connection, one batch.

    Notes
    -----
    Lee, Ajanthan & Torr (2019), "SNIP: single-shot network pruning based on connection
    sensitivity", eq. (6) (the normalisation by the sum does not change the ranking).
    O(one forward and backward pass).
    """
    model.zero_grad(set_to_none=True)
    loss = loss_fn(model(x), y)
    loss.backward()
    out = []
    for layer in model.layers:
        g = layer.values.grad
        out.append((g * layer.values.data).abs().numpy().astype(np.float64))
    model.zero_grad(set_to_none=True)
    return out


def dense_gradients(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor,
                    loss_fn) -> list[np.ndarray]:
    """``∂L/∂W`` of the batch at every position (absent ones too), flat row-major per layer.

    The network is evaluated with dense weight matrices equal to the sparse ones (zeros at
    absent positions), so the gradient at an absent position is what it would receive if it
    were a connection of weight 0 (RigL's grow criterion).
    """
    weights = [layer.dense_weight().detach().clone().requires_grad_(True)
               for layer in model.layers]
    h = x
    last = len(weights) - 1
    for k, (w, layer) in enumerate(zip(weights, model.layers)):
        h = torch.nn.functional.linear(h, w, layer.bias.detach())
        if k < last:
            h = model.act(h)
    loss = loss_fn(h, y)
    grads = torch.autograd.grad(loss, weights)
    return [g.reshape(-1).numpy().astype(np.float64) for g in grads]


# ---------------------------------------------------------------- methods (schedules)
class Method:
    """A sparse-training method: when to change the structure, and which scores to use.

    The trainer calls the hooks; a hook changes layers only through :func:`drop_and_grow`
    and reports every change with ``trainer.record_change(k, change)``.
    """

    name = "dense"
    starts_dense = False

    def after_init(self, trainer) -> None:
        """Called once, after the weights are initialised and before epoch 1."""

    def epoch_start(self, trainer, epoch: int) -> None:
        """Called before the first step of every epoch (1-based)."""

    def replaces_step(self, trainer, t: int) -> bool:
        """True when step ``t`` (steps done so far) is a structure update, not an SGD step."""
        return False

    def update(self, trainer, x: torch.Tensor, y: torch.Tensor) -> None:
        """The structure update of a step for which :meth:`replaces_step` is True."""

    def after_step(self, trainer, t: int) -> None:
        """Called after the optimiser step; ``t`` counts the steps done, this one included."""


class Static(Method):
    """``static``: a random mask fixed for the whole run (and ``dense``: all connections)."""

    name = "static"


class Dense(Method):
    """``dense``: every connection, never changed."""

    name = "dense"
    starts_dense = True


class SET(Method):
    """SET (Mocanu et al., 2018): signed magnitude drop and random regrowth once per epoch.

    Rewiring happens between epochs, after every epoch but the last (as in SET's reference
    ``set_mlp.py``); it is done at the start of epochs 2..E so that each epoch's snapshot
    holds the weights its test accuracy was measured on, and the connections added/removed
    in epoch ``e`` are exactly the difference between snapshots ``e-1`` and ``e``. Layers
    that are fully dense (ER density capped at 1) are not rewired.
    """

    name = "set"

    def epoch_start(self, trainer, epoch: int) -> None:
        if epoch < 2:
            return
        cfg = trainer.config
        for k, layer in enumerate(trainer.model.layers):
            if not trainer.prunable[k] or layer.density >= 1.0:
                continue
            drop = set_drop_mask(layer.values.data.numpy(), cfg.zeta)
            keep_flat = layer.flat.numpy()[~drop]
            grown = grow_random(trainer.np_rng, layer.n_in * layer.n_out, keep_flat,
                                int(drop.sum()))
            new_values = None
            if not cfg.set_regrow_zero:
                new_values = trainer.draw_weights(k, grown.size, layer.density)
            trainer.record_change(k, drop_and_grow(layer, drop, grown, new_values,
                                                   trainer.optimizer))


class RigL(Method):
    """RigL (Evci et al., 2020): magnitude drop, gradient growth every ΔT steps."""

    name = "rigl"

    def replaces_step(self, trainer, t: int) -> bool:
        cfg = trainer.config
        return t > 0 and t % cfg.rigl_delta_t == 0 and t < self.t_end(trainer)

    @staticmethod
    def t_end(trainer) -> int:
        return int(trainer.config.rigl_end_fraction * trainer.total_steps)

    def update(self, trainer, x: torch.Tensor, y: torch.Tensor) -> None:
        fraction = rigl_drop_fraction(trainer.step, trainer.config.rigl_alpha,
                                      self.t_end(trainer))
        grads = dense_gradients(trainer.model, x, y, trainer.loss_fn)
        for k, layer in enumerate(trainer.model.layers):
            if not trainer.prunable[k] or layer.density >= 1.0:
                continue
            n = int(fraction * layer.n_connections)
            if n == 0:
                continue
            keep = magnitude_keep(layer.values.data.numpy(), layer.n_connections - n)
            keep_flat = layer.flat.numpy()[keep]
            grown = grow_top(np.abs(grads[k]), keep_flat, n)
            trainer.record_change(k, drop_and_grow(layer, ~keep, grown, None,
                                                   trainer.optimizer))


class GMP(Method):
    """Gradual magnitude pruning (Zhu & Gupta, 2017), every layer to the same density."""

    name = "gmp"
    starts_dense = True

    def after_step(self, trainer, t: int) -> None:
        cfg = trainer.config
        begin = cfg.gmp_begin
        end = max(begin + 1, int(cfg.gmp_end_fraction * trainer.total_steps))
        if t <= begin or t > end or ((t - begin) % cfg.gmp_delta_t != 0 and t != end):
            return
        density = gmp_density(t, begin, end, cfg.target_density())
        for k, layer in enumerate(trainer.model.layers):
            if not trainer.prunable[k]:
                continue
            target = max(1, int(round(density * layer.n_in * layer.n_out)))
            if target >= layer.n_connections:
                continue
            keep = magnitude_keep(layer.values.data.numpy(), target)
            trainer.record_change(k, drop_and_grow(layer, ~keep, np.zeros(0, np.int64), None,
                                                   trainer.optimizer))


class SNIP(Method):
    """SNIP (Lee et al., 2019): prune at initialisation by ``|g ⊙ w|``, then train static."""

    name = "snip"
    starts_dense = True

    def after_init(self, trainer) -> None:
        x, y = trainer.snip_batch()
        scores = snip_scores(trainer.model, x, y, trainer.loss_fn)
        prunable = [k for k in range(len(scores)) if trainer.prunable[k]]
        total = sum(scores[k].size for k in prunable)
        n_keep = max(1, int(round(trainer.config.target_density() * total)))
        keeps = global_magnitude_keep([scores[k] for k in prunable], n_keep)
        for k, keep in zip(prunable, keeps):
            layer = trainer.model.layers[k]
            trainer.record_change(k, drop_and_grow(layer, ~keep, np.zeros(0, np.int64), None,
                                                   trainer.optimizer))


class IMP(Method):
    """Iterative magnitude pruning with rewinding; the levels are run by the trainer."""

    name = "imp"
    starts_dense = True

    def prune_level(self, trainer) -> None:
        """Remove ``imp_rate`` of the remaining prunable weights by global magnitude."""
        layers = trainer.model.layers
        prunable = [k for k in range(len(layers)) if trainer.prunable[k]]
        remaining = sum(layers[k].n_connections for k in prunable)
        n_keep = remaining - int(round(trainer.config.imp_rate * remaining))
        keeps = global_magnitude_keep([layers[k].values.data.numpy() for k in prunable],
                                      n_keep)
        for k, keep in zip(prunable, keeps):
            trainer.record_change(k, drop_and_grow(layers[k], ~keep, np.zeros(0, np.int64),
                                                   None, trainer.optimizer))


METHOD_CLASSES: dict[str, type[Method]] = {
    "dense": Dense, "static": Static, "set": SET, "rigl": RigL, "gmp": GMP, "snip": SNIP,
    "imp": IMP,
}


def make_method(name: str) -> Method:
    """The method object registered under ``name``."""
    try:
        return METHOD_CLASSES[name]()
    except KeyError:
        raise ConfigError(f"unknown method {name!r}; choose one of "
                          f"{', '.join(METHOD_CLASSES)}") from None
