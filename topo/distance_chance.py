"""The chance level of NNSTD: the distance two unrelated random networks of the same sizes have.

An NNSTD of 0.8 says little on its own: two independent random networks with the same layer
widths and the same numbers of connections are already far apart, and how far depends on
the widths and densities. :func:`nnstd_chance` estimates that expectation by Monte Carlo, so
a distance can be read against it.

Recommended columns for tables that show it beside NNSTD (``topo compare``):
``nnstd_chance`` and ``nnstd_chance_se`` per layer, and for the network
``distance_chance``/``distance_chance_se`` and
``sparse_distance_chance``/``sparse_distance_chance_se`` (:meth:`NNSTDChance.summary`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from topo.errors import ConfigError
from topo.graph import LayeredGraph, require_graph

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["NNSTDChance", "nnstd_chance", "random_like"]

# estimates already made in this process, by signature (widths, counts, options)
_CACHE: dict[str, NNSTDChance] = {}
_CACHE_SIZE = 64


@dataclass
class NNSTDChance:
    """Monte Carlo estimate of the NNSTD of two random networks shaped like a given pair.

    Attributes
    ----------
    per_layer, per_layer_se
        Mean NNSTD of every layer over the samples, and its standard error
        (sample standard deviation / sqrt(n_samples)).
    distance, distance_se
        The same for the network distance (mean over layers).
    sparse_distance, sparse_distance_se
        The same for the mean over sparse layers (NaN when every layer is dense).
    samples
        ``(n_samples, n_layers)`` array of the per-layer values of every sample.
    dense
        Per layer, whether it is fully connected in both networks (it then scores 0).
    names
        Layer names of network A.
    n_samples, seed, degrees, reference
        How the estimate was made.
    """

    per_layer: np.ndarray
    per_layer_se: np.ndarray
    distance: float
    distance_se: float
    sparse_distance: float
    sparse_distance_se: float
    samples: np.ndarray
    dense: list[bool] = field(default_factory=list)
    names: list[str] = field(default_factory=list)
    n_samples: int = 0
    seed: int = 0
    degrees: bool = False
    reference: bool = False

    def to_frame(self) -> pandas.DataFrame:
        """One row per layer: ``layer``, ``name``, ``nnstd_chance``, ``nnstd_chance_se``,
        ``dense``."""
        import pandas as pd

        return pd.DataFrame({
            "layer": np.arange(self.per_layer.size),
            "name": self.names,
            "nnstd_chance": self.per_layer,
            "nnstd_chance_se": self.per_layer_se,
            "dense": self.dense,
        })

    def summary(self) -> dict[str, float]:
        """Network-level values under their recommended column names."""
        return {
            "distance_chance": self.distance,
            "distance_chance_se": self.distance_se,
            "sparse_distance_chance": self.sparse_distance,
            "sparse_distance_chance_se": self.sparse_distance_se,
        }


def nnstd_chance(
    a: LayeredGraph,
    b: LayeredGraph,
    *,
    n_samples: int = 20,
    seed: int = 0,
    degrees: bool = False,
    reference: bool = False,
    solver: str = "auto",
) -> NNSTDChance:
    """Expected NNSTD of two random networks with the sizes of ``a`` and ``b``.

    Parameters
    ----------
    a, b
        The two networks (read files with :func:`topo.load`), compatible as for
        :func:`topo.nnstd`. Conv layers, residual streams and independent matrices are
        imitated with the same geometry and wiring (:func:`random_like`).
    n_samples
        Pairs of random networks drawn (at least 2, for the standard error).
    seed
        Seed of the random draws; the same seed gives the same estimate.
    degrees
        ``False`` (default): each random layer has the same widths and the same number of
        connections as the layer it stands for, placed uniformly at random. ``True``: every
        unit also keeps its number of inputs (its in-degree), its inputs drawn uniformly.
    reference, solver
        Passed to :func:`topo.nnstd` for every sample.

    Returns
    -------
    NNSTDChance
        Per-layer and network means with standard errors, and every sample.

    Raises
    ------
    ConfigError
        ``n_samples < 2`` or an unknown ``solver``.
    NotAGraphError, IncompatibleGraphsError
        What :func:`topo.nnstd` raises for ``a`` and ``b``.

    Notes
    -----
    Sample ``s`` draws network A' shaped like ``a`` and network B' shaped like ``b``,
    independently, and records ``nnstd(A', B')``; the estimate is the mean over samples and
    its standard error the sample standard deviation over ``sqrt(n_samples)``. Estimates are
    cached in the process by their signature (widths, connection counts or sorted in-degree
    sequences, options), so asking again for networks of the same sizes is free. Cost:
    ``n_samples`` NNSTD evaluations.
    """
    from topo.assignment import SOLVERS
    from topo.distance import _check_comparable, nnstd
    from topo.unit_sets import check_comparable

    if n_samples < 2:
        raise ConfigError(f"NNSTD chance level: n_samples must be at least 2, got {n_samples}")
    if solver not in SOLVERS:
        raise ConfigError(f"unknown NNSTD solver {solver!r}; use one of {', '.join(SOLVERS)}")
    a, b = require_graph(a, "network a"), require_graph(b, "network b")
    if a.is_linear and a.is_chain and b.is_linear and b.is_chain:
        _check_comparable(a, b, reference)
    else:
        check_comparable(a, b, reference)
    key = _signature(a, b, n_samples, seed, degrees, reference)
    if key in _CACHE:
        return _CACHE[key]
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n_samples):
        ra = random_like(a, rng, degrees=degrees)
        rb = random_like(b, rng, degrees=degrees)
        rows.append(nnstd(ra, rb, reference=reference, solver=solver).per_layer)
    samples = np.vstack(rows)
    dense = [a.densities[k] == 1.0 and b.densities[k] == 1.0 for k in range(a.n_layers)]
    sparse = ~np.asarray(dense, dtype=bool)
    distance = samples.mean(axis=1)
    sparse_distance = samples[:, sparse].mean(axis=1) if sparse.any() else None
    result = NNSTDChance(
        per_layer=samples.mean(axis=0),
        per_layer_se=_se(samples),
        distance=float(distance.mean()),
        distance_se=float(_se(distance[:, None])[0]),
        sparse_distance=float(sparse_distance.mean()) if sparse_distance is not None
        else float("nan"),
        sparse_distance_se=float(_se(sparse_distance[:, None])[0])
        if sparse_distance is not None else float("nan"),
        samples=samples,
        dense=dense,
        names=list(a.names),
        n_samples=n_samples,
        seed=seed,
        degrees=degrees,
        reference=reference,
    )
    if len(_CACHE) >= _CACHE_SIZE:
        _CACHE.pop(next(iter(_CACHE)))
    _CACHE[key] = result
    return result


def random_like(g: LayeredGraph, rng: np.random.Generator, *, degrees: bool = False
                ) -> LayeredGraph:
    """A random network with ``g``'s widths, geometry, wiring and connection counts.

    Parameters
    ----------
    g
        The network to imitate.
    rng
        Source of randomness.
    degrees
        Keep the in-degree sequence (unit ``i`` gets the ``i``-th smallest in-degree of the
        layer, its inputs drawn uniformly without replacement) rather than only each layer's
        connection count (connections drawn uniformly without replacement among all
        positions).

    Returns
    -------
    LayeredGraph
        Same widths, names, layer geometry and wiring; every connection has weight 1. A
        conv layer's connections are kernel elements, drawn among the layer's possible
        positions (inside its groups for a grouped conv), and an in-degree counts elements.
    """
    layers = []
    for k, w in enumerate(g.layers):
        n_out = w.shape[0]
        starts, n_in = g.allowed_columns(k)
        if degrees:
            # sorted, so that the draw depends only on the multiset of in-degrees
            deg = np.sort(np.diff(w.indptr))
            # each row: the deg smallest of n_in random keys are its inputs
            keys = rng.random((n_out, n_in))
            order = np.argsort(keys, axis=1)
            take = np.arange(n_in)[None, :] < deg[:, None]
            rows = np.repeat(np.arange(n_out), deg)
            cols = order[take]
        else:
            flat = rng.choice(n_out * n_in, size=w.nnz, replace=False)
            rows, cols = np.divmod(flat, n_in)
        cols = cols + starts[rows]
        layers.append(sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=w.shape))
    return LayeredGraph(layers, names=list(g.names), **g.architecture())


# --------------------------------------------------------------------------- helpers
def _se(samples: np.ndarray) -> np.ndarray:
    n = samples.shape[0]
    return samples.std(axis=0, ddof=1) / np.sqrt(n)


def _signature(a: LayeredGraph, b: LayeredGraph, n_samples: int, seed: int, degrees: bool,
               reference: bool) -> str:
    h = hashlib.sha256()
    h.update(repr((n_samples, seed, degrees, reference)).encode())
    for g in (a, b):
        h.update(repr([w.shape for w in g.layers]).encode())
        if not (g.is_linear and g.is_chain):
            h.update(repr((g.geometry, g.wiring)).encode())
        for w in g.layers:
            if degrees:
                h.update(np.sort(np.diff(w.indptr)).astype(np.int64).tobytes())
            else:
                h.update(np.int64(w.nnz).tobytes())
        h.update(b"|")
    return h.hexdigest()
