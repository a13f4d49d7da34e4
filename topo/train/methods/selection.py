"""Selection rules shared by the methods: top-k by a score, and uniform random growth.

One top-k, :func:`keep_top`, serves every magnitude or saliency rule: per layer (RigL's and
GMP's drop, with one count per layer) and over all layers at once (SNIP, IMP: one global
count). Ties always go to the earlier connection (layer order, then flat position), so a
selection never depends on the sort algorithm.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["keep_top", "grow_top", "grow_random"]


def keep_top(scores: Sequence[np.ndarray], n_keep: int | Sequence[int]) -> list[np.ndarray]:
    """Boolean keep-masks of the highest scores.

    Parameters
    ----------
    scores
        One score array per layer (one score per connection).
    n_keep
        An integer: the ``n_keep`` highest scores over all layers together (global top-k);
        a sequence: ``n_keep[i]`` highest of layer ``i`` (layer-wise top-k). Counts are
        clipped to ``[0, size]``.

    Returns
    -------
    list of np.ndarray
        One boolean array per layer, True where a connection is kept.

    Notes
    -----
    Global magnitude pruning is open_lth's ``sparse_global`` strategy (Frankle & Carbin,
    2019); layer-wise is Zhu & Gupta's (2017) and RigL's drop. Ties: earlier first.
    O(N log N) for N scores.
    """
    arrays = [np.asarray(s, dtype=np.float64).ravel() for s in scores]
    if isinstance(n_keep, (int, np.integer)):
        sizes = np.cumsum([a.size for a in arrays])[:-1]
        return list(np.split(_keep_top(np.concatenate(arrays), int(n_keep)), sizes))
    if len(n_keep) != len(arrays):
        raise ValueError(f"{len(n_keep)} counts for {len(arrays)} score arrays")
    return [_keep_top(a, int(n)) for a, n in zip(arrays, n_keep)]


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


def _keep_top(scores: np.ndarray, n_keep: int) -> np.ndarray:
    keep = np.zeros(scores.size, dtype=bool)
    if n_keep > 0:
        keep[np.argsort(-scores, kind="stable")[:n_keep]] = True
    return keep
