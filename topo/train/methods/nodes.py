"""Sub-networks of a dense parent that keep some hidden units: the search space of random
search in node space (Farahani, 2024)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from topo.errors import ConfigError
from topo.train.methods.base import Changes, Context, Method, drop_and_grow

__all__ = ["NodeSubnetwork", "sample_units", "node_structure"]

_NOTHING = np.zeros(0, dtype=np.int64)


class NodeSubnetwork(Method):
    """``nodes``: the dense parent network with only some hidden units, never changed.

    At initialisation the network is dense with its initial weights (those of the dense
    parent with the same seed); every connection into or out of a removed hidden unit is
    then removed (:func:`node_structure`). The kept units are given (``keep_units``, as
    ``topo search --space nodes`` passes them) or drawn with the run's generator at
    ``node_sparsity`` (:func:`sample_units`). The inputs and outputs are always kept.

    Notes
    -----
    Farahani (2024), "Random search as a baseline for sparse neural network architecture
    search", arXiv 2403.08265: sub-networks of an over-parameterised parent obtained by
    keeping subsets of its hidden units, with the parent's initialisation.
    """

    starts_dense = True

    def __init__(self, keep_units: Sequence[Sequence[int]] | None = None,
                 node_sparsity: float | None = None) -> None:
        if (keep_units is None) == (node_sparsity is None):
            raise ValueError("give exactly one of keep_units and node_sparsity")
        self.keep_units = None if keep_units is None else [list(k) for k in keep_units]
        self.node_sparsity = node_sparsity

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> NodeSubnetwork:
        return cls(config.keep_units, config.node_sparsity)

    def at_init(self, ctx: Context) -> Changes:
        widths = ctx.model.widths
        hidden = widths[1:-1]
        if self.keep_units is None:
            if self.node_sparsity is None:  # pragma: no cover - refused by __init__
                raise AssertionError("neither keep_units nor node_sparsity")
            self.keep_units = [k.tolist() for k in
                               sample_units(hidden, self.node_sparsity, ctx.rng)]
        keep = [np.asarray(k, dtype=np.int64) for k in self.keep_units]
        if len(keep) != len(hidden) or any(
                k.size == 0 or k.max() >= n for k, n in zip(keep, hidden)):
            raise ConfigError(f"keep_units {self.keep_units} do not fit the hidden widths "
                              f"{hidden}: one non-empty list of unit indices below the width "
                              "per hidden layer")
        structure = node_structure(widths, keep)
        changes = {}
        for k, layer in enumerate(ctx.layers):
            drop = ~np.isin(layer.flat.numpy(), structure[k])
            if drop.any():
                changes[k] = drop_and_grow(layer, drop, _NOTHING, None, ctx.optimizer)
        return changes

    def describe(self) -> dict[str, Any]:
        return {"keep_units": self.keep_units}

    def state_dict(self) -> dict[str, Any]:
        return {"keep_units": self.keep_units}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.keep_units = state.get("keep_units", self.keep_units)


def sample_units(hidden_widths: Sequence[int], node_sparsity: float,
                 rng: np.random.Generator) -> list[np.ndarray]:
    """Kept units of each hidden layer, drawn uniformly without replacement.

    Each hidden layer of width ``n`` keeps ``n - round(node_sparsity · n)`` units (at
    least one), independently of the other layers.

    Parameters
    ----------
    hidden_widths
        Widths of the hidden layers.
    node_sparsity
        Fraction of each hidden layer's units removed, in ``[0, 1)``.
    rng
        The generator that draws them.

    Returns
    -------
    list of np.ndarray
        Sorted indices of the kept units, one array per hidden layer.

    Raises
    ------
    ValueError
        ``node_sparsity`` outside ``[0, 1)``.

    Notes
    -----
    Farahani (2024), arXiv 2403.08265: sub-networks sampled in node space at a given
    sparsity. O(Σ n).
    """
    if not 0.0 <= node_sparsity < 1.0:
        raise ValueError(f"node_sparsity must lie in [0, 1), got {node_sparsity}")
    out = []
    for n in hidden_widths:
        n_keep = max(1, n - int(round(node_sparsity * n)))
        out.append(np.sort(rng.choice(n, size=n_keep, replace=False)).astype(np.int64))
    return out


def node_structure(widths: Sequence[int], keep: Sequence[np.ndarray]) -> list[np.ndarray]:
    """Flat row-major positions of every layer's connections when only the ``keep`` units
    of each hidden layer are kept and every kept unit is connected to every kept unit of
    the neighbouring layers (inputs and outputs all kept).

    Returns
    -------
    list of np.ndarray
        Sorted flat indices ``row * n_in + col`` per layer. O(Σ connections).
    """
    units = [np.arange(widths[0]), *[np.asarray(k, dtype=np.int64) for k in keep],
             np.arange(widths[-1])]
    return [np.sort((units[k + 1][:, None] * widths[k] + units[k][None, :]).ravel())
            for k in range(len(widths) - 1)]
