"""Schedules: when an update happens and how large it is."""

from __future__ import annotations

import math

import pytest

from topo.train.methods.schedules import (
    CosineSchedule,
    CubicSchedule,
    EpochSchedule,
    Schedule,
    gmp_density,
    rigl_drop_fraction,
)


def test_the_base_schedule_never_updates():
    s = Schedule()
    assert (s.at_epoch_start(2), s.replacing_step(100), s.after_step(100)) == (None,) * 3


def test_epoch_schedule_updates_before_every_epoch_from_the_second():
    s = EpochSchedule(0.3)
    assert [s.at_epoch_start(e) for e in (1, 2, 3)] == [None, 0.3, 0.3]
    assert s.replacing_step(10) is None and s.after_step(10) is None


def test_cosine_schedule_replaces_every_delta_t_th_step_before_t_end():
    s = CosineSchedule(alpha=0.3, delta_t=5, t_end=16)
    fired = [t for t in range(30) if s.replacing_step(t) is not None]
    assert fired == [5, 10, 15]   # not step 0, not from t_end = 16 on
    assert s.replacing_step(10) == pytest.approx(0.15 * (1 + math.cos(math.pi * 10 / 16)))
    assert s.after_step(10) is None


def test_rigl_drop_fraction_decays_by_cosine():
    assert rigl_drop_fraction(0, 0.3, 1000) == pytest.approx(0.3)
    assert rigl_drop_fraction(500, 0.3, 1000) == pytest.approx(0.15)
    assert rigl_drop_fraction(250, 0.3, 1000) == pytest.approx(
        0.15 * (1 + math.cos(math.pi / 4)))
    assert rigl_drop_fraction(1000, 0.3, 1000) == 0.0


def test_cubic_schedule_prunes_every_delta_t_steps_and_at_the_end():
    s = CubicSchedule(final_density=0.1, begin=2, end=13, delta_t=4)
    fired = [t for t in range(20) if s.after_step(t) is not None]
    assert fired == [6, 10, 13]   # 2 + 4k up to the end, and the end itself
    assert s.after_step(13) == pytest.approx(0.1)
    # s_t = s_f (1 - (1 - (t - t0) / (T - t0))^3): at t = 6, 0.9 (1 - (7/11)^3)
    assert s.after_step(6) == pytest.approx(1 - 0.9 * (1 - (7 / 11) ** 3))


def test_cubic_schedule_end_is_after_begin():
    s = CubicSchedule(final_density=0.5, begin=10, end=3, delta_t=100)
    assert [t for t in range(20) if s.after_step(t) is not None] == [11]


def test_gmp_follows_the_cubic_schedule():
    assert gmp_density(0, 0, 1000, 0.1) == 1.0
    assert gmp_density(500, 0, 1000, 0.1) == pytest.approx(1 - 0.9 * (1 - 0.5 ** 3))
    assert gmp_density(1000, 0, 1000, 0.1) == pytest.approx(0.1)
    assert gmp_density(5000, 0, 1000, 0.1) == pytest.approx(0.1)
