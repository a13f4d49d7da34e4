"""The ten synthetic interaction benchmarks of Tsang et al. (ICLR 2018), in pure numpy.

Each function ``F1`` ... ``F10`` maps ten features to a scalar and comes with its ground-truth
interaction sets (Tsang, Cheng & Liu, "Detecting Statistical Interactions from Neural Network
Weights", ICLR 2018, Table 1). Features are drawn from ``U(-1, 1)``, except for ``F1``, which
uses the ranges of Hooker (2004): ``x1, x2, x3, x6, x7, x9 ~ U(0, 1)`` and
``x4, x5, x8, x10 ~ U(0.6, 1)``.

The formulas below use the paper's 1-based feature names; arrays and the returned interaction
sets are 0-based (``x1`` is column 0)::

    ==== =====================================================================================
    F1   pi^(x1 x2) sqrt(2 x3) - asin(x4) + log(x3 + x5) - (x9 / x10) sqrt(x7 / x8) - x2 x7
    F2   pi^(x1 x2) sqrt(2|x3|) - asin(0.5 x4) + log(|x3 + x5| + 1)
         + (x9 / (1 + |x10|)) sqrt(|x7| / (1 + |x8|)) - x2 x7
    F3   exp|x1 - x2| + |x2 x3| - (x3^2)^|x4| + log(x4^2 + x5^2 + x7^2 + x8^2) + x9
         + 1 / (1 + x10^2)
    F4   F3 + (x1 x4)^2
    F5   1 / (1 + x1^2 + x2^2 + x3^2) + sqrt(exp(x4 + x5)) + |x6 + x7| + x8 x9 x10
    F6   exp(|x1 x2| + 1) - exp(|x3 + x4| + 1) + cos(x5 + x6 - x8) + sqrt(x8^2 + x9^2 + x10^2)
    F7   (atan(x1) + atan(x2))^2 + max(x3 x4 + x6, 0) - (1 + (x4 x5 x6 x7 x8)^2)^-1
         + (|x7| / (1 + |x9|))^5 + sum_i x_i
    F8   x1 x2 + 2^(x3 + x5 + x6) + 2^(x3 + x4 + x5 + x7) + sin(x7 sin(x8 + x9)) + acos(0.9 x10)
    F9   tanh(x1 x2 + x3 x4) sqrt|x5| + exp(x5 + x6) + log((x6 x7 x8)^2 + 1) + x9 x10
         + 1 / (1 + |x10|)
    F10  sinh(x1 + x2) + acos(tanh(x3 + x5 + x7)) + cos(x4 + x5) + sec(x7 x9)
    ==== =====================================================================================

Two places where the table, read literally, is not real-valued on ``U(-1, 1)``, and what this
module does (the same choices as the public re-implementations of the benchmark):

* ``F3``/``F4``: the paper writes ``x3^(2|x4|)``; a negative base to a non-integer power is
  not real, so it is evaluated as ``(x3^2)^|x4| = |x3|^(2|x4|)``, equal to the literal form
  wherever that is real (``x3 >= 0``).
* ``F2``: ``sqrt(x7 / (1 + |x8|))`` would be NaN for half the samples; it is evaluated as
  ``sqrt(|x7| / (1 + |x8|))``. The interaction sets are unchanged by either choice.

References
----------
Tsang, M., Cheng, D., Liu, Y. (2018). Detecting Statistical Interactions from Neural Network
Weights. ICLR 2018, Table 1.
Hooker, G. (2004). Discovering additive structure in black box functions. KDD 2004.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import numpy as np

from topo.errors import ConfigError

__all__ = ["FUNCTIONS", "N_FEATURES", "generate", "evaluate", "ground_truth", "function_index"]

N_FEATURES = 10
FUNCTIONS: tuple[str, ...] = tuple(f"synthetic-F{k}" for k in range(1, 11))

# Ground truth of Tsang et al. (2018), Table 1, with the paper's 1-based feature names.
_INTERACTIONS_1BASED: dict[int, list[tuple[int, ...]]] = {
    1: [(1, 2, 3), (3, 5), (7, 8, 9, 10), (2, 7)],
    2: [(1, 2, 3), (3, 5), (7, 8, 9, 10), (2, 7)],
    3: [(1, 2), (2, 3), (3, 4), (4, 5, 7, 8)],
    4: [(1, 2), (2, 3), (3, 4), (1, 4), (4, 5, 7, 8)],
    5: [(1, 2, 3), (4, 5), (6, 7), (8, 9, 10)],
    6: [(1, 2), (3, 4), (5, 6, 8), (8, 9, 10)],
    7: [(1, 2), (3, 4, 6), (4, 5, 6, 7, 8), (7, 9)],
    8: [(1, 2), (3, 5, 6), (3, 4, 5, 7), (7, 8, 9)],
    9: [(1, 2, 3, 4, 5), (5, 6), (6, 7, 8), (9, 10)],
    10: [(1, 2), (3, 5, 7), (4, 5), (7, 9)],
}


def generate(
    name_or_index: str | int, n_samples: int, seed: int | None = 0
) -> tuple[np.ndarray, np.ndarray, list[tuple[int, ...]]]:
    """Draw a data set from one of the ten synthetic functions.

    Parameters
    ----------
    name_or_index
        ``"synthetic-F3"``, ``"F3"``, ``"f3"`` or the integer ``3`` (1 ... 10).
    n_samples
        Number of samples to draw (>= 1).
    seed
        Seed of the ``numpy.random.default_rng`` that draws the features.

    Returns
    -------
    X : numpy.ndarray
        ``float64`` features of shape ``(n_samples, 10)``.
    y : numpy.ndarray
        ``float64`` targets of shape ``(n_samples,)``.
    interactions : list of tuple of int
        The ground-truth interaction sets, 0-based feature indices, each sorted.

    Raises
    ------
    ConfigError
        An unknown function name or a non-positive sample count.

    Notes
    -----
    O(n_samples) time and memory. The input distributions are those of Tsang et al. (2018):
    ``U(-1, 1)`` for every feature, except ``F1`` (Hooker, 2004 ranges, see the module notes).
    """
    k = function_index(name_or_index)
    if int(n_samples) < 1:
        raise ConfigError(f"synthetic-F{k}: n_samples must be at least 1, got {n_samples}")
    rng = np.random.default_rng(seed)
    if k == 1:
        low = np.zeros(N_FEATURES)
        low[[3, 4, 7, 9]] = 0.6
        X = rng.uniform(low, 1.0, size=(int(n_samples), N_FEATURES))
    else:
        X = rng.uniform(-1.0, 1.0, size=(int(n_samples), N_FEATURES))
    return X, evaluate(k, X), ground_truth(k)


def evaluate(name_or_index: str | int, X: np.ndarray) -> np.ndarray:
    """Value of one synthetic function at the rows of ``X``.

    Parameters
    ----------
    name_or_index
        As for :func:`generate`.
    X
        Array of shape ``(n, 10)`` (or one point of shape ``(10,)``).

    Returns
    -------
    numpy.ndarray
        ``float64`` values, shape ``(n,)`` (or a 0-d array for one point).

    Raises
    ------
    ConfigError
        An unknown function, or ``X`` without 10 features.
    """
    k = function_index(name_or_index)
    X = np.asarray(X, dtype=np.float64)
    if X.shape[-1] != N_FEATURES:
        raise ConfigError(f"synthetic-F{k} takes {N_FEATURES} features, got shape {X.shape}")
    x = [X[..., i] for i in range(N_FEATURES)]
    return np.asarray(_FORMULAS[k](*x), dtype=np.float64)


def ground_truth(name_or_index: str | int) -> list[tuple[int, ...]]:
    """The ground-truth interaction sets of one function, as sorted 0-based tuples."""
    k = function_index(name_or_index)
    return [tuple(i - 1 for i in s) for s in _INTERACTIONS_1BASED[k]]


def function_index(name_or_index: str | int) -> int:
    """The function number 1 ... 10 named by ``"synthetic-F<k>"``, ``"F<k>"`` or ``k``.

    Raises
    ------
    ConfigError
        Anything else.
    """
    if isinstance(name_or_index, (int, np.integer)) and not isinstance(name_or_index, bool):
        k = int(name_or_index)
    else:
        match = re.fullmatch(r"(?:synthetic-)?[fF](\d+)", str(name_or_index).strip())
        k = int(match.group(1)) if match else -1
    if not 1 <= k <= 10:
        raise ConfigError(
            f"unknown synthetic function {name_or_index!r}; choose one of "
            f"{', '.join(FUNCTIONS)} (or F1..F10, or 1..10)")
    return k


# ----------------------------------------------------------------------------- formulas
def _f1(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    return (np.pi ** (x1 * x2) * np.sqrt(2 * x3) - np.arcsin(x4) + np.log(x3 + x5)
            - (x9 / x10) * np.sqrt(x7 / x8) - x2 * x7)


def _f2(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    return (np.pi ** (x1 * x2) * np.sqrt(2 * np.abs(x3)) - np.arcsin(0.5 * x4)
            + np.log(np.abs(x3 + x5) + 1)
            + (x9 / (1 + np.abs(x10))) * np.sqrt(np.abs(x7) / (1 + np.abs(x8))) - x2 * x7)


def _f3(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    return (np.exp(np.abs(x1 - x2)) + np.abs(x2 * x3) - (x3 ** 2) ** np.abs(x4)
            + np.log(x4 ** 2 + x5 ** 2 + x7 ** 2 + x8 ** 2) + x9 + 1 / (1 + x10 ** 2))


def _f4(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    return _f3(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10) + (x1 * x4) ** 2


def _f5(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    return (1 / (1 + x1 ** 2 + x2 ** 2 + x3 ** 2) + np.sqrt(np.exp(x4 + x5))
            + np.abs(x6 + x7) + x8 * x9 * x10)


def _f6(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    return (np.exp(np.abs(x1 * x2) + 1) - np.exp(np.abs(x3 + x4) + 1)
            + np.cos(x5 + x6 - x8) + np.sqrt(x8 ** 2 + x9 ** 2 + x10 ** 2))


def _f7(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    total = x1 + x2 + x3 + x4 + x5 + x6 + x7 + x8 + x9 + x10
    return ((np.arctan(x1) + np.arctan(x2)) ** 2 + np.maximum(x3 * x4 + x6, 0)
            - 1 / (1 + (x4 * x5 * x6 * x7 * x8) ** 2)
            + (np.abs(x7) / (1 + np.abs(x9))) ** 5 + total)


def _f8(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    return (x1 * x2 + 2.0 ** (x3 + x5 + x6) + 2.0 ** (x3 + x4 + x5 + x7)
            + np.sin(x7 * np.sin(x8 + x9)) + np.arccos(0.9 * x10))


def _f9(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    return (np.tanh(x1 * x2 + x3 * x4) * np.sqrt(np.abs(x5)) + np.exp(x5 + x6)
            + np.log((x6 * x7 * x8) ** 2 + 1) + x9 * x10 + 1 / (1 + np.abs(x10)))


def _f10(x1, x2, x3, x4, x5, x6, x7, x8, x9, x10):
    return (np.sinh(x1 + x2) + np.arccos(np.tanh(x3 + x5 + x7)) + np.cos(x4 + x5)
            + 1 / np.cos(x7 * x9))


_FORMULAS: dict[int, Callable[..., np.ndarray]] = {
    1: _f1, 2: _f2, 3: _f3, 4: _f4, 5: _f5, 6: _f6, 7: _f7, 8: _f8, 9: _f9, 10: _f10,
}
