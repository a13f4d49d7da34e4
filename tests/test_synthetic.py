"""Specification of topo.train.synthetic: the ten functions of Tsang et al. (2018), Table 1."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from topo.errors import ConfigError
from topo.train.synthetic import FUNCTIONS, evaluate, generate, ground_truth

SYNTHETIC_FILE = Path(__file__).resolve().parents[1] / "topo" / "train" / "synthetic.py"


def _point(**values: float) -> np.ndarray:
    """A 10-feature point from 1-based names, e.g. _point(x1=0.5); unnamed features are 0."""
    x = np.zeros(10)
    for key, v in values.items():
        x[int(key[1:]) - 1] = v
    return x


# Values worked out by hand from the formulas in the paper's table.
HAND_VALUES = [
    # pi^0 sqrt(1) - asin(0) + log(1) - 0 - 0
    (1, _point(x3=0.5, x5=0.5, x8=1.0, x10=1.0), 1.0),
    # pi^(1*1) sqrt(2) - asin(0.5) + log(1) + 0 - 0
    (2, _point(x1=1.0, x2=1.0, x3=1.0, x5=-1.0, x4=1.0), math.pi * math.sqrt(2) - math.pi / 6),
    # exp(0) + 0 - 0^0 + log(1) + 0 + 1
    (3, _point(x5=1.0), 1.0),
    # F3 part: exp(0) + |1*1| - (1^2)^0.5 + log(0.25) + 0 + 1/(1+0); plus (1*0.5)^2
    (4, _point(x1=1.0, x2=1.0, x3=1.0, x4=0.5), 1 + 1 - 1 + math.log(0.25) + 1 + 0.25),
    # 1/1 + sqrt(e^0) + 0 + 0
    (5, _point(), 2.0),
    # e - e + cos(0) + sqrt(0)
    (6, _point(), 1.0),
    # 0 + max(0, 0) - 1/(1+0) + 0 + 0
    (7, _point(), -1.0),
    # 0 + 2^0 + 2^0 + sin(0) + acos(0)
    (8, _point(), 2.0 + math.pi / 2),
    # 0 + e^0 + log(1) + 0 + 1/(1+0)
    (9, _point(), 2.0),
    # sinh(0) + acos(tanh 0) + cos(0) + sec(0)
    (10, _point(), 2.0 + math.pi / 2),
]


@pytest.mark.parametrize("k, x, expected", HAND_VALUES)
def test_function_matches_hand_evaluated_point(k, x, expected):
    assert float(evaluate(k, x)) == pytest.approx(expected, rel=1e-12, abs=1e-12)


def _reference(k: int, x: list[float]) -> float:
    """The paper's formulas written again with the math module, one point at a time."""
    x1, x2, x3, x4, x5, x6, x7, x8, x9, x10 = x
    if k == 1:
        return (math.pi ** (x1 * x2) * math.sqrt(2 * x3) - math.asin(x4) + math.log(x3 + x5)
                - (x9 / x10) * math.sqrt(x7 / x8) - x2 * x7)
    if k == 2:
        return (math.pi ** (x1 * x2) * math.sqrt(2 * abs(x3)) - math.asin(0.5 * x4)
                + math.log(abs(x3 + x5) + 1)
                + (x9 / (1 + abs(x10))) * math.sqrt(abs(x7) / (1 + abs(x8))) - x2 * x7)
    if k in (3, 4):
        f3 = (math.exp(abs(x1 - x2)) + abs(x2 * x3) - abs(x3) ** (2 * abs(x4))
              + math.log(x4 ** 2 + x5 ** 2 + x7 ** 2 + x8 ** 2) + x9 + 1 / (1 + x10 ** 2))
        return f3 + ((x1 * x4) ** 2 if k == 4 else 0.0)
    if k == 5:
        return (1 / (1 + x1 ** 2 + x2 ** 2 + x3 ** 2) + math.sqrt(math.exp(x4 + x5))
                + abs(x6 + x7) + x8 * x9 * x10)
    if k == 6:
        return (math.exp(abs(x1 * x2) + 1) - math.exp(abs(x3 + x4) + 1)
                + math.cos(x5 + x6 - x8) + math.sqrt(x8 ** 2 + x9 ** 2 + x10 ** 2))
    if k == 7:
        return ((math.atan(x1) + math.atan(x2)) ** 2 + max(x3 * x4 + x6, 0.0)
                - (1 + (x4 * x5 * x6 * x7 * x8) ** 2) ** -1
                + (abs(x7) / (1 + abs(x9))) ** 5 + sum(x))
    if k == 8:
        return (x1 * x2 + 2 ** (x3 + x5 + x6) + 2 ** (x3 + x4 + x5 + x7)
                + math.sin(x7 * math.sin(x8 + x9)) + math.acos(0.9 * x10))
    if k == 9:
        return (math.tanh(x1 * x2 + x3 * x4) * math.sqrt(abs(x5)) + math.exp(x5 + x6)
                + math.log((x6 * x7 * x8) ** 2 + 1) + x9 * x10 + 1 / (1 + abs(x10)))
    return (math.sinh(x1 + x2) + math.acos(math.tanh(x3 + x5 + x7)) + math.cos(x4 + x5)
            + 1 / math.cos(x7 * x9))


@pytest.mark.parametrize("k", range(1, 11))
def test_vectorised_values_match_pointwise_formula(k):
    X, y, _ = generate(k, 50, seed=3)
    expected = [_reference(k, row.tolist()) for row in X]
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("name", FUNCTIONS)
def test_samples_are_finite_with_the_documented_shapes(name):
    X, y, _ = generate(name, 30_000, seed=0)
    assert X.shape == (30_000, 10) and y.shape == (30_000,)
    assert X.dtype == np.float64 and y.dtype == np.float64
    assert np.isfinite(y).all()


def test_f1_uses_hooker_input_ranges():
    X, _, _ = generate("F1", 20_000, seed=1)
    wide = [0, 1, 2, 5, 6, 8]
    narrow = [3, 4, 7, 9]
    assert X[:, wide].min() >= 0.0 and X[:, wide].max() <= 1.0
    assert X[:, wide].min() < 0.01
    assert X[:, narrow].min() >= 0.6 and X[:, narrow].max() <= 1.0
    assert X[:, narrow].min() < 0.61


def test_other_functions_use_the_symmetric_unit_interval():
    X, _, _ = generate("synthetic-F5", 20_000, seed=1)
    assert X.min() >= -1.0 and X.max() <= 1.0
    assert X.min() < -0.99 and X.max() > 0.99
    assert abs(X.mean()) < 0.02


def test_ground_truth_is_table_1_in_zero_based_indices():
    assert ground_truth(1) == [(0, 1, 2), (2, 4), (6, 7, 8, 9), (1, 6)]
    assert ground_truth("F4") == [(0, 1), (1, 2), (2, 3), (0, 3), (3, 4, 6, 7)]
    assert ground_truth("synthetic-F10") == [(0, 1), (2, 4, 6), (3, 4), (6, 8)]
    assert generate(9, 5, seed=0)[2] == [(0, 1, 2, 3, 4), (4, 5), (5, 6, 7), (8, 9)]


def test_every_name_form_selects_the_same_function():
    a = generate("synthetic-F6", 10, seed=4)
    b = generate("F6", 10, seed=4)
    c = generate(6, 10, seed=4)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], c[1])
    assert a[2] == b[2] == c[2]


def test_same_seed_same_data_and_different_seed_different_data():
    X1, y1, _ = generate(3, 100, seed=7)
    X2, y2, _ = generate(3, 100, seed=7)
    X3, _, _ = generate(3, 100, seed=8)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    assert not np.array_equal(X1, X3)


def test_functions_list_names_all_ten():
    assert tuple(f"synthetic-F{k}" for k in range(1, 11)) == FUNCTIONS


@pytest.mark.parametrize("bad", ["F0", "F11", "synthetic-X", 0, 11, "mnist"])
def test_unknown_function_is_a_config_error(bad):
    with pytest.raises(ConfigError, match="unknown synthetic function"):
        generate(bad, 10, seed=0)


def test_non_positive_sample_count_is_a_config_error():
    with pytest.raises(ConfigError, match="n_samples"):
        generate(2, 0, seed=0)


# start-up, end to end: the command in a fresh interpreter (as tests/train/test_startup.py);
# `make test-slow` runs it, and CI runs both
@pytest.mark.slow
def test_module_does_not_import_torch():
    # Load the file on its own, so that what the topo.train package imports does not count.
    code = ("import importlib.util, sys; "
            "spec = importlib.util.spec_from_file_location('synthetic_alone', "
            f"{str(SYNTHETIC_FILE)!r}); "
            "m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m); "
            "m.generate(1, 5, 0); print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "False"
