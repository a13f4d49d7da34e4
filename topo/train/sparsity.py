"""Initial sparsity: layer densities (Erdős–Rényi, ERK), the density budget of a network, and
random masks with exact counts.

A network's density is its connections over its possible connections, summed over every
weight layer (what ``topo info`` shows). A target density ``D`` is met with the layers a
method may not change (the output layer unless ``sparse_output``) counted at full density
in the budget, as RigL's ERK counts its dense layers: the layers it may change share
``D N - N_dense`` connections (:func:`prunable_density`), which is refused when it is not
positive.

Erdős–Rényi densities: layer density ``min(1, ε (n_in + n_out) / (n_in n_out))`` (Mocanu et
al. 2018). ERK to a target density: the same shape with ε solved so that the connection
count meets the budget, layers that would exceed 1 set dense and ε solved again (Evci et al.
2020, ``get_sparsities_erdos_renyi``; for fully connected layers ER and ERK have the same
shape). Masks hold exactly ``round(density · n_in n_out)`` connections chosen uniformly
without replacement.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from topo.errors import ConfigError
from topo.train._text import count
from topo.train.registry import INIT_SPARSITIES

__all__ = ["er_densities", "erk_densities", "kernel_densities", "initial_densities",
           "prunable_density", "network_density", "random_structure", "Connectivity",
           "connectivity",
           "ConnectivityWarning"]


def initial_densities(kind: str, widths: Sequence[int], sparse: Sequence[bool], *,
                      epsilon: float, density: float | None) -> list[float]:
    """Per-layer densities of a network that starts sparse.

    Parameters
    ----------
    kind
        ``er``, ``erk`` or ``dense`` (:data:`~topo.train.registry.INIT_SPARSITIES`).
    widths, sparse
        Unit counts input to output; per layer, whether it may be sparse.
    epsilon
        ER's ε, used by ``er`` when no ``density`` is given.
    density
        Target density of the whole network (:func:`prunable_density`): ``erk`` meets it,
        and so does ``er`` when it is given (ε solved for it: the same shape); ``None``
        means ``er`` with ``epsilon`` (``erk`` needs a density).

    Raises
    ------
    ConfigError
        Unknown ``kind``; a ``density`` that cannot be met; ``erk`` without a density;
        ``dense`` with a density below 1.
    """
    INIT_SPARSITIES.check(kind)
    if kind == "dense":
        if density is not None and density < 1.0:
            raise ConfigError(f"init_sparsity dense starts every layer dense: density "
                              f"{density:g} cannot be met (choose er or erk)")
        return [1.0] * (len(widths) - 1)
    if kind == "er" and density is None:
        return er_densities(widths, epsilon, sparse)
    if density is None:
        raise ConfigError("erk needs a target density")
    return erk_densities(widths, prunable_density(density, widths, sparse), sparse)


def prunable_density(density: float, widths: Sequence[int] | None, sparse: Sequence[bool],
                     *, sizes: Sequence[int] | None = None) -> float:
    """The density the sparse layers must have together for the network to have ``density``.

    With ``N`` possible connections in all, ``N_dense`` of them in the layers kept dense
    (``sparse[k]`` False) and ``N_sparse`` in the others, the sparse layers hold
    ``density · N - N_dense`` connections: ``(density N - N_dense) / N_sparse``. With every
    layer sparse this is ``density`` itself. ``sizes`` (possible connections per layer)
    replaces ``widths`` for a network that is not a chain of linear layers.

    Raises
    ------
    ConfigError
        ``density`` outside (0, 1], or too low for the dense layers alone (fewer connections
        left than sparse layers, one each).

    Notes
    -----
    The dense layers count in the budget as in RigL's ERK (Evci et al. 2020,
    ``get_sparsities_erdos_renyi``: ``rhs -= n_zeros`` for a dense layer). O(L).
    """
    if not 0.0 < density <= 1.0:
        raise ConfigError(f"density must lie in (0, 1], got {density}")
    if sizes is None:
        if widths is None:
            raise ValueError("give widths or sizes")
        sizes = [widths[k] * widths[k + 1] for k in range(len(widths) - 1)]
    total = sum(sizes)
    dense = sum(size for size, s in zip(sizes, sparse) if not s)
    free = total - dense
    n_sparse = sum(1 for s in sparse if s)
    if n_sparse == 0:
        if density < 1.0:
            raise ConfigError(f"density {density:g} cannot be met: every layer is kept dense")
        return 1.0
    budget = density * total - dense
    if budget < n_sparse:
        kept = [str(k) for k, s in enumerate(sparse) if not s]
        which = (f"layer kept dense ({kept[0]}) holds" if len(kept) == 1
                 else f"layers kept dense ({', '.join(kept)}) hold")
        raise ConfigError(
            f"density {density:g} cannot be met: the {which} {dense} of the "
            f"network's {count(total, 'connection')} ({dense / total:.4g}); choose a "
            f"density of at least {(dense + n_sparse) / total:.4g}, or let the method change "
            "the output layer too (--sparse-output; imp: --prune-output)")
    return min(1.0, budget / free)


def network_density(connections: Sequence[int], widths: Sequence[int]) -> float:
    """Connections over possible connections, summed over all layers (``topo info``'s)."""
    sizes = [widths[k] * widths[k + 1] for k in range(len(widths) - 1)]
    return sum(connections) / sum(sizes)


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
    sizes = np.array([widths[k] * widths[k + 1] for k in range(n_layers)], dtype=float)
    raw = np.array([(widths[k] + widths[k + 1]) / sizes[k] for k in range(n_layers)])
    return _erk(sizes, raw, density, sparse)


def kernel_densities(kind: str, shapes: Sequence[Sequence[int]], sparse: Sequence[bool], *,
                     epsilon: float, density: float | None) -> list[float]:
    """Per-layer densities of a network with convolutions (:func:`initial_densities` for
    layers given by their weight shapes).

    Parameters
    ----------
    kind
        ``er``, ``erk`` or ``dense``.
    shapes
        Per layer, its dense weight shape in PyTorch's layout: ``(n_out, n_in)`` for a
        linear layer (``n_in`` = the columns of its matrix, a flattened feature map's
        ``C H W`` included), ``(C_out, C_in, kh, kw)`` for a conv.
    sparse
        Per layer, whether it may be sparse.
    epsilon, density
        As :func:`initial_densities`.

    Returns
    -------
    list of float

    Raises
    ------
    ConfigError
        As :func:`initial_densities`.

    Notes
    -----
    As RigL defines them (Evci et al. 2020, Appendix; ``get_sparsities_erdos_renyi`` of
    google-research/rigl, ``sparse_utils.py``): ``erk`` is the kernel-aware shape, layer
    density proportional to ``sum(shape) / prod(shape)``, i.e.
    ``(C_in + C_out + kh + kw) / (C_in C_out kh kw)`` for a conv, scaled to meet ``density``
    with the layers that would exceed 1 made dense; ``er`` is the kernel-blind shape
    ``ε (C_in + C_out) / (C_in C_out)`` (Mocanu et al. 2018's Erdős–Rényi, with channels as
    the units of a conv; ε solved for ``density`` when one is given). For a linear layer both
    are :func:`er_densities`'s. The dense layers count in the budget
    (:func:`prunable_density` with ``sizes``). O(L^2) for L layers.
    """
    INIT_SPARSITIES.check(kind)
    shapes = [tuple(int(d) for d in shape) for shape in shapes]
    sizes = np.array([math.prod(shape) for shape in shapes], dtype=float)
    if kind == "dense":
        if density is not None and density < 1.0:
            raise ConfigError(f"init_sparsity dense starts every layer dense: density "
                              f"{density:g} cannot be met (choose er or erk)")
        return [1.0] * len(shapes)
    blind = np.array([(shape[0] + shape[1]) / (shape[0] * shape[1]) for shape in shapes])
    if kind == "er" and density is None:
        return [1.0 if not s else min(1.0, epsilon * r) for r, s in zip(blind, sparse)]
    if density is None:
        raise ConfigError("erk needs a target density")
    raw = blind if kind == "er" else np.array([sum(shape) / math.prod(shape)
                                               for shape in shapes])
    return _erk(sizes, raw, prunable_density(density, None, sparse, sizes=sizes.tolist()),
                sparse)


def _erk(sizes: np.ndarray, raw: np.ndarray, density: float,
         sparse: Sequence[bool] | None) -> list[float]:
    """Densities ``ε raw[k]`` meeting ``density`` over the sparse layers, those above 1 made
    dense and ε solved again (until none exceeds 1)."""
    n_layers = len(sizes)
    sparse = [True] * n_layers if sparse is None else list(sparse)
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


class ConnectivityWarning(UserWarning):
    """A structural change left a layer empty or output units without a path from the
    inputs (the network, or those outputs, no longer depend on the input)."""


@dataclass
class Connectivity:
    """Whether a network's output can depend on its input (:func:`connectivity`).

    Attributes
    ----------
    empty_layers
        Layers without a connection.
    unreached_outputs
        Output units that no path from an input unit reaches (their value is a constant:
        biases only).
    n_outputs
        Output units in all.
    """

    empty_layers: list[int] = field(default_factory=list)
    unreached_outputs: list[int] = field(default_factory=list)
    n_outputs: int = 0

    @property
    def disconnected(self) -> bool:
        """No output unit depends on the input: the network computes a constant."""
        return len(self.unreached_outputs) == self.n_outputs

    @property
    def problems(self) -> list[str]:
        """One phrase per problem (empty when the network is connected)."""
        out = [f"layer {k} has no connection" for k in self.empty_layers]
        if self.disconnected:
            out.append("no input unit reaches any output unit")
        elif self.unreached_outputs:
            shown = ", ".join(map(str, self.unreached_outputs[:10]))
            more = len(self.unreached_outputs) - 10
            out.append(f"output unit{'s' if len(self.unreached_outputs) > 1 else ''} "
                       f"{shown}{f' and {more} more' if more > 0 else ''} of "
                       f"{self.n_outputs} {'are' if len(self.unreached_outputs) > 1 else 'is'}"
                       " reached by no input")
        return out


def connectivity(network: Any) -> Connectivity:
    """Empty layers and output units that no input reaches, from the connection sets.

    ``network`` is a sequence of :class:`~topo.train.model.SparseLinear` layers forming a
    chain (anything with ``flat``, ``n_in`` and ``n_out``), input side first, or a model
    with ``layers`` (a :class:`~topo.train.model.SparseMLP` or
    :class:`~topo.train.cnn.SparseCNN`); a model's ``reads``/``writes`` (unit sets, as
    :class:`~topo.graph.Wiring`) and ``carries`` (parameter-free identity shortcuts:
    ``(layer, from_set, to_set, offset)``) are followed when it has them. A unit is
    reached when a connection leads to it from a reached unit of the set the layer reads
    (for a conv or flatten layer: from any position of a reached input unit), or an identity
    carries a reached unit into it; every input unit is reached. The output units are those
    of the set the last layer writes.

    Notes
    -----
    O(connections): one pass over each layer's connection set.
    """
    layers = list(getattr(network, "layers", network))
    n = len(layers)
    reads = list(getattr(network, "reads", range(n)))
    writes = list(getattr(network, "writes", range(1, n + 1)))
    carries: dict[int, list[tuple[int, int, int]]] = {}
    for k, src, dst, offset in getattr(network, "carries", ()):
        carries.setdefault(k, []).append((src, dst, offset))
    first = layers[0]
    reached_sets = {reads[0]: np.ones(first.n_in // getattr(first, "positions", 1),
                                      dtype=bool)}
    empty = []
    for k, layer in enumerate(layers):
        flat = np.asarray(layer.flat)
        if flat.size == 0:
            empty.append(k)
        rows, cols = np.divmod(flat, layer.n_in)
        units = cols // getattr(layer, "positions", 1)
        out = reached_sets.get(writes[k])
        if out is None:
            out = reached_sets[writes[k]] = np.zeros(layer.n_out, dtype=bool)
        out[rows[reached_sets[reads[k]][units]]] = True
        for src, dst, offset in carries.get(k, ()):
            source = reached_sets[src]
            reached_sets[dst][offset:offset + source.size] |= source
    reached = reached_sets[writes[-1]]
    return Connectivity(empty, np.flatnonzero(~reached).tolist(), int(reached.size))
