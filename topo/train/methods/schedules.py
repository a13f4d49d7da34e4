"""When a mask update happens and how large it is.

A schedule answers, for each moment a trainer offers, "update now, and by how much?" with an
amount (a drop fraction, or a target density for pruning schedules) or ``None``. There are
three moments, because the methods act at three (see :class:`Schedule`); each schedule
below uses one of them. As in ``rigl_tf2`` (``update_schedule``), schedules are small
classes of their own, so a method is its scores plus a schedule.

Steps are counted from the start of the run: at a *replacing* step ``t`` is the number of
steps done before it, after a step the number done including it.
"""

from __future__ import annotations

import math

__all__ = ["Schedule", "EpochSchedule", "CosineSchedule", "CubicSchedule",
           "rigl_drop_fraction", "gmp_density"]


class Schedule:
    """No updates at all; subclasses answer one of the three moments."""

    def at_epoch_start(self, epoch: int) -> float | None:
        """Amount of an update before the first step of ``epoch`` (1-based), or None."""
        return None

    def replacing_step(self, step: int) -> float | None:
        """Amount of an update that takes the place of the optimiser step after ``step``
        steps (the update uses that batch, the weights do not move), or None."""
        return None

    def after_step(self, step: int) -> float | None:
        """Amount of an update right after the optimiser step that made ``step`` steps,
        or None."""
        return None


class EpochSchedule(Schedule):
    """A constant ``fraction`` before every epoch from ``first_epoch`` on.

    SET rewires after every epoch but the last (Mocanu et al. 2018, reference
    ``set_mlp.py``); topo does it at the start of epochs 2..E, which is the same sequence of
    networks and lets each epoch's snapshot hold the weights its accuracy was measured on.
    """

    def __init__(self, fraction: float, first_epoch: int = 2) -> None:
        self.fraction = fraction
        self.first_epoch = first_epoch

    def at_epoch_start(self, epoch: int) -> float | None:
        return self.fraction if epoch >= self.first_epoch else None


class CosineSchedule(Schedule):
    """RigL's schedule: every ``delta_t`` steps before ``t_end``, drop fraction
    ``α/2 (1 + cos(π t / T_end))``; the update replaces that step's optimiser step.

    Notes
    -----
    Evci et al. (2020), "Rigging the lottery", eq. (1) and Section 3 (updates stop at
    ``T_end``, 75 % of training by default).
    """

    def __init__(self, alpha: float, delta_t: int, t_end: int) -> None:
        self.alpha, self.delta_t, self.t_end = alpha, delta_t, t_end

    def replacing_step(self, step: int) -> float | None:
        if step > 0 and step % self.delta_t == 0 and step < self.t_end:
            return rigl_drop_fraction(step, self.alpha, self.t_end)
        return None


class CubicSchedule(Schedule):
    """Zhu & Gupta's schedule: after every ``delta_t``-th step from ``begin`` to ``end`` (and
    at ``end``), prune to the density of :func:`gmp_density`."""

    def __init__(self, final_density: float, begin: int, end: int, delta_t: int) -> None:
        self.final_density = final_density
        self.begin, self.end, self.delta_t = begin, max(begin + 1, end), delta_t

    def after_step(self, step: int) -> float | None:
        if step <= self.begin or step > self.end:
            return None
        if (step - self.begin) % self.delta_t != 0 and step != self.end:
            return None
        return gmp_density(step, self.begin, self.end, self.final_density)


def rigl_drop_fraction(step: int, alpha: float, t_end: int) -> float:
    """RigL's cosine-decayed drop fraction ``α/2 (1 + cos(π t / T_end))`` (0 from T_end on).

    Notes
    -----
    Evci et al. (2020), eq. (1). O(1).
    """
    if step >= t_end:
        return 0.0
    return alpha / 2.0 * (1.0 + math.cos(math.pi * step / t_end))


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
