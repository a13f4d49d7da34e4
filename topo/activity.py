"""Unit activity of a network on given inputs: the dynamic dead neuron rate (DNR).

A ReLU unit is *dead* on an input when it outputs exactly 0 there (its pre-activation is at
most 0). Pruning removes the positive inputs of some units and so switches them off on more
of the data; Liu et al. (2023) follow this through the **dynamic dead neuron rate**: the
share of (input, hidden unit) pairs on which the unit is dead, measured as the network is
pruned. :func:`dead_neuron_rate` computes it for any :class:`~topo.graph.LayeredGraph` on
given inputs, per hidden layer and for the network; :func:`preactivations` gives the forward
pass it reads.

Pure functions of a graph and an input array (numpy and scipy only, no file I/O).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from topo.errors import ConfigError, GraphStructureError, NonFiniteWeightsError
from topo.layer_arrays import LayerArrays

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from topo.graph import LayeredGraph

__all__ = ["DeadNeuronRate", "dead_neuron_rate", "dead_neuron_rate_of_layers",
           "preactivations"]

# above this density a layer's product runs on a dense copy (BLAS), below it on the CSR
_DENSE_PRODUCT = 0.05


@dataclass(frozen=True)
class DeadNeuronRate:
    """The dynamic dead neuron rate of a network on a set of inputs.

    Attributes
    ----------
    layers
        Names of the layers whose output units are measured (every layer but the last).
    rates
        Per hidden layer, the share of (input, unit) pairs on which the unit outputs 0,
        over all its units.
    network
        The same share over all hidden units of the network together.
    connected_rates, connected_network
        The same two over the units with at least one connection (in or out) only: a unit
        without any (pruned away, or removed from a node-space sub-network) outputs
        ``relu(bias)`` whatever the input and counts in :attr:`rates` but not here. NaN
        where no unit has a connection.
    unit_rates
        Per hidden layer, each unit's share of the inputs on which it outputs 0 (a unit
        with rate 1 is dead on every input: statically dead).
    connected
        Per hidden layer, whether each unit has a connection.
    n_inputs
        Number of inputs measured.
    """

    layers: list[str]
    rates: np.ndarray
    network: float
    connected_rates: np.ndarray
    connected_network: float
    unit_rates: list[np.ndarray]
    connected: list[np.ndarray]
    n_inputs: int

    def to_frame(self) -> pandas.DataFrame:
        """One row per hidden layer: ``layer``, ``units``, ``isolated_units`` (without any
        connection), ``dnr``, ``dnr_connected``, ``dead_units`` (dead on every input)."""
        import pandas as pd

        return pd.DataFrame({
            "layer": self.layers,
            "units": [u.size for u in self.unit_rates],
            "isolated_units": [int((~c).sum()) for c in self.connected],
            "dnr": self.rates,
            "dnr_connected": self.connected_rates,
            "dead_units": [int((u == 1.0).sum()) for u in self.unit_rates],
        })


def dead_neuron_rate(graph: LayeredGraph, inputs: np.ndarray, *,
                     activation: str | None = None) -> DeadNeuronRate:
    """Dynamic dead neuron rate (DNR) of ``graph``'s hidden ReLU units on ``inputs``.

    For hidden layer ℓ with ``n_ℓ`` units and inputs ``x_1 .. x_N``::

        DNR_ℓ = (1 / (N n_ℓ)) Σ_i Σ_u 1[h_u(x_i) = 0],   h = relu(W h_prev + b),

    and the network's DNR is the same count over all hidden units divided by
    ``N Σ_ℓ n_ℓ``. A unit is dead on an input when its pre-activation is ``<= 0``; a unit
    without any input connection outputs ``relu(bias)``. The same rates over the units
    that have at least one connection are returned beside (``connected_rates``): pruning
    that isolates units raises the first and may lower the second.

    Parameters
    ----------
    graph
        The network; its layers' stored entries are the connections and its biases
        (``None``: 0) are used.
    inputs
        Array of shape ``(N, n_in[0])`` (or ``(N, *input_shape)``, flattened), ``N >= 1``.
    activation
        The hidden units' activation; ``None`` reads it from ``graph.metadata["activation"]``
        and assumes ``"relu"`` when absent. Only ``"relu"`` is accepted.

    Returns
    -------
    DeadNeuronRate
        Per-layer, network and per-unit rates, over all units and over connected ones.

    Raises
    ------
    ConfigError
        Inputs of the wrong shape, empty or not finite; an activation other than ReLU.
    NotAGraphError
        ``graph`` is not a LayeredGraph (read files with :func:`topo.load`).
    GraphStructureError
        A network of a single layer (no hidden units); a network with convolutions, residual
        streams or unknown wiring (a conv unit's activation is a feature map, which this rate
        does not define).
    NonFiniteWeightsError
        Non-finite weights or biases.

    Notes
    -----
    Liu, Ghosh, Tan & Motani (2023), "AP: selective activation for de-sparsifying pruned
    neural networks", TMLR, who track this rate while pruning. Their text defines the rate
    as the share of ReLU outputs that are 0 on the data, over the network's units (pruned
    units included, as a pruned PyTorch layer still computes them); the pooling over inputs
    and units written above (every (input, unit) pair counts once) is how topo reads it.
    Cost: one forward pass, O(N Σ nnz) on sparse layers, O(N Σ n_in n_out) on layers
    denser than 5 % (dense products).

    Examples
    --------
    >>> import numpy as np
    >>> from topo.graph import LayeredGraph
    >>> g = LayeredGraph([np.array([[1.0], [-1.0]]), np.array([[1.0, 1.0]])])
    >>> dead_neuron_rate(g, np.array([[1.0], [2.0]])).rates.tolist()
    [0.5]
    """
    from topo.graph import require_graph

    graph = require_graph(graph)
    convs = [n for n, g in zip(graph.names, graph.geometry) if not g.is_linear]
    if graph.is_independent or not graph.is_chain or convs:
        raise GraphStructureError(
            f"{graph.source}: the dead neuron rate is computed here for chains of "
            "fully-connected layers; this network has "
            + (f"convolution {convs[0]!r}" if convs else
               "no known wiring" if graph.is_independent else "residual streams"))
    name = activation if activation is not None else graph.metadata.get("activation", "relu")
    if name != "relu":
        raise ConfigError(f"the dead neuron rate is defined for relu units; this network's "
                          f"hidden activation is {name!r}")
    return dead_neuron_rate_of_layers([LayerArrays.of_matrix(w) for w in graph.layers],
                                      graph.biases, inputs, names=graph.names,
                                      source=graph.source)


def dead_neuron_rate_of_layers(layers: Sequence[LayerArrays],
                               biases: Sequence[np.ndarray | None], inputs: np.ndarray, *,
                               names: Sequence[str] | None = None,
                               source: str = "<in-memory graph>") -> DeadNeuronRate:
    """:func:`dead_neuron_rate` of a chain of fully-connected ReLU layers given as arrays.

    The same computation on the arrays a snapshot stores, without a LayeredGraph (so
    without SciPy unless a layer is sparse enough for a sparse product): training records
    the rate of every epoch with it.

    Parameters
    ----------
    layers
        Each layer's connections (:class:`~topo.layer_arrays.LayerArrays`), input side first.
    biases
        Each layer's bias of shape ``(n_out,)``, or None (0).
    inputs
        ``(N, n_in[0])`` (or ``(N, *input_shape)``), ``N >= 1``.
    names
        Layer names (default ``layer0``, ``layer1``, ...); ``source`` names the network in
        messages.

    Returns
    -------
    DeadNeuronRate

    Raises
    ------
    GraphStructureError
        A single layer (no hidden units).
    NonFiniteWeightsError
        Non-finite weights or biases.
    ConfigError
        Inputs of the wrong shape, empty or not finite.
    """
    names = list(names) if names is not None else [f"layer{k}" for k in range(len(layers))]
    if len(layers) < 2:
        raise GraphStructureError("the dead neuron rate needs hidden units: the network has "
                                  "a single layer")
    pre = _forward(layers, biases, inputs, names, source)[:-1]
    n = pre[0].shape[0]
    dead = [(z <= 0.0).sum(axis=0) for z in pre]
    connected = [layers[k].has_inputs() | layers[k + 1].has_outputs() for k in range(len(pre))]
    rates, network = _pooled(dead, [np.ones(d.size, dtype=bool) for d in dead], n)
    connected_rates, connected_network = _pooled(dead, connected, n)
    return DeadNeuronRate(layers=names[:-1], rates=rates, network=network,
                          connected_rates=connected_rates, connected_network=connected_network,
                          unit_rates=[d / n for d in dead], connected=connected, n_inputs=n)


def preactivations(graph: LayeredGraph, inputs: np.ndarray) -> list[np.ndarray]:
    """Pre-activations ``z_k = W_k h_{k-1} + b_k`` of every layer, ReLU between layers.

    Parameters
    ----------
    graph
        The network (biases ``None`` count as 0).
    inputs
        ``(N, n_in[0])`` or ``(N, *input_shape)``.

    Returns
    -------
    list of np.ndarray
        One ``(N, n_out[k])`` float64 array per layer; the last is the network's output.

    Raises
    ------
    ConfigError
        Inputs of the wrong shape, empty or not finite.
    NotAGraphError
        ``graph`` is not a LayeredGraph.
    NonFiniteWeightsError
        Non-finite weights or biases.

    Notes
    -----
    O(N Σ nnz) on sparse layers, dense products on layers denser than 5 %.
    """
    from topo.graph import require_graph

    graph = require_graph(graph)
    return _forward([LayerArrays.of_matrix(w) for w in graph.layers], graph.biases, inputs,
                    graph.names, graph.source)


def _forward(layers: Sequence[LayerArrays], biases: Sequence[np.ndarray | None],
             inputs: np.ndarray, names: Sequence[str], source: str) -> list[np.ndarray]:
    bad = [name for name, w, b in zip(names, layers, biases)
           if not np.isfinite(w.data).all() or (b is not None and not np.isfinite(b).all())]
    if bad:
        raise NonFiniteWeightsError(
            f"{source}: the forward pass needs finite weights, but layer(s) "
            f"{', '.join(repr(b) for b in bad)} hold NaN or infinity")
    h = _as_inputs(inputs, layers[0].shape[1])
    out: list[np.ndarray] = []
    for k, (w, b) in enumerate(zip(layers, biases)):
        if k:
            h = np.maximum(out[-1], 0.0)
        w = w._replace(data=w.data.astype(np.float64))
        if w.nnz > _DENSE_PRODUCT * w.shape[0] * w.shape[1]:
            z = h @ w.toarray().T
        else:
            z = np.asarray((w.to_csr() @ h.T).T)
        out.append(z + (0.0 if b is None else b))
    return out


def _pooled(dead: list[np.ndarray], which: list[np.ndarray], n: int
            ) -> tuple[np.ndarray, float]:
    """Per-layer and network share of dead (input, unit) pairs over the units ``which``."""
    counts = np.array([float(d[w].sum()) for d, w in zip(dead, which)])
    units = np.array([float(w.sum()) for w in which])
    with np.errstate(invalid="ignore", divide="ignore"):
        rates = counts / (n * units)
    network = float(counts.sum() / (n * units.sum())) if units.sum() else float("nan")
    return rates, network


def _as_inputs(inputs: np.ndarray, n_in: int) -> np.ndarray:
    x = np.asarray(inputs, dtype=np.float64)
    if x.ndim > 2 and int(np.prod(x.shape[1:])) == n_in:
        x = x.reshape(x.shape[0], n_in)
    if x.ndim != 2 or x.shape[1] != n_in or x.shape[0] < 1:
        raise ConfigError(f"inputs of shape {tuple(x.shape)} do not fit the network: it "
                          f"needs (N, {n_in}) with N >= 1")
    if not np.isfinite(x).all():
        raise ConfigError("inputs contain NaN or infinity")
    return x


