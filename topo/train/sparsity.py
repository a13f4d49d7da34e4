"""Initial sparsity: layer densities (Erdős–Rényi, ERK) and random masks with exact counts.

Erdős–Rényi densities: layer density ``min(1, ε (n_in + n_out) / (n_in n_out))`` (Mocanu et
al. 2018). ERK to a target overall density ``D``: the same shape with ε solved so that the
connection count is ``D`` times the possible one, layers that would exceed 1 set dense and ε
solved again (Evci et al. 2020, ``get_sparsities_erdos_renyi``; for fully connected layers
ER and ERK have the same shape). Masks hold exactly ``round(density · n_in n_out)``
connections chosen uniformly without replacement.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from topo.errors import ConfigError
from topo.train.registry import INIT_SPARSITIES

__all__ = ["er_densities", "erk_densities", "initial_densities", "random_structure"]


def initial_densities(kind: str, widths: Sequence[int], sparse: Sequence[bool], *,
                      epsilon: float, density: float) -> list[float]:
    """Per-layer densities of a network that starts sparse.

    Parameters
    ----------
    kind
        ``er`` (uses ``epsilon``), ``erk`` (uses ``density``) or ``dense``
        (:data:`~topo.train.registry.INIT_SPARSITIES`).
    widths, sparse
        Unit counts input to output; per layer, whether it may be sparse.

    Raises
    ------
    ConfigError
        Unknown ``kind``, or an ERK ``density`` outside (0, 1].
    """
    INIT_SPARSITIES.check(kind)
    if kind == "er":
        return er_densities(widths, epsilon, sparse)
    if kind == "erk":
        return erk_densities(widths, density, sparse)
    return [1.0] * (len(widths) - 1)


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
