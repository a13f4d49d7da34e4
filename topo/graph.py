"""LayeredGraph: the data model every analysis in topo reads.

A feed-forward network is an ordered list of bipartite layers. Layer ``k`` connects
``n_in[k]`` units to ``n_out[k]`` units and is stored as a ``scipy.sparse.csr_matrix`` of
shape ``(n_out, n_in)`` (PyTorch's orientation). The **stored entries of the matrix are the
connections** and its values are the weights, so a connection whose weight is exactly 0 (as
SET and RigL regrow them) is still a connection. Biases are kept beside the matrices and are
never edges.

Nodes of the whole network are numbered globally, input side first: the ``n_in[0]`` inputs
are ``0 .. n_in[0]-1``, the outputs of layer 0 follow, and so on. :meth:`LayeredGraph.offsets`
gives the first global id of every unit layer.

The data model does no file I/O: :mod:`topo.io` reads and writes graphs (``topo.load``,
``topo.save_snapshot``, ``topo.io.export_graph``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from topo import structure
from topo.errors import GraphStructureError, NonFiniteWeightsError, NotAGraphError

if TYPE_CHECKING:  # pragma: no cover
    import igraph
    import networkx
    import pandas

__all__ = ["LayeredGraph", "require_graph", "stacked_edges"]


class LayeredGraph:
    """A feed-forward network as an ordered list of sparse bipartite layers.

    Parameters
    ----------
    layers
        One matrix per layer, input side first, each of shape ``(n_out, n_in)``. Sparse
        matrices keep their stored entries as the connections; a dense array is converted
        with its non-zero entries as the connections (pass ``masks`` to say otherwise).
    masks
        Optional structure per layer (same shapes, non-zero = connection). When given, the
        connections are exactly the mask's non-zeros, whatever the weights are there.
    biases
        Optional bias vector per layer (length ``n_out``), or ``None`` entries.
    names
        Layer names (from the checkpoint); defaults to ``layer0``, ``layer1``, ...
    input_shape
        Shape of one input sample, e.g. ``(28, 28)``, when the inputs form a picture.
    metadata
        Free-form snapshot metadata (format, source, run id, epoch, step, method, seed,
        accuracy, ...). Values should be JSON-serialisable.

    Raises
    ------
    GraphStructureError
        A layer is not 2-D, a mask's shape differs from its weights, a bias has the wrong
        length, or consecutive widths disagree (``n_in[k+1] != n_out[k]``).
    """

    def __init__(
        self,
        layers: Sequence[Any],
        *,
        masks: Sequence[Any] | None = None,
        biases: Sequence[Any] | None = None,
        names: Sequence[str] | None = None,
        input_shape: Sequence[int] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        if len(layers) == 0:
            raise GraphStructureError("a layered graph needs at least one layer")
        names = list(names) if names is not None else [f"layer{k}" for k in range(len(layers))]
        if len(names) != len(layers):
            raise GraphStructureError(f"{len(names)} layer names for {len(layers)} layers")
        if masks is not None and len(masks) != len(layers):
            raise GraphStructureError(f"{len(masks)} masks for {len(layers)} layers")
        if biases is not None and len(biases) != len(layers):
            raise GraphStructureError(f"{len(biases)} biases for {len(layers)} layers")
        self.names: list[str] = [str(n) for n in names]
        self.layers: list[sp.csr_matrix] = [
            _as_connection_matrix(w, None if masks is None else masks[k], self.names[k])
            for k, w in enumerate(layers)
        ]
        self.biases: list[np.ndarray | None] = []
        for k in range(len(self.layers)):
            b = None if biases is None else biases[k]
            if b is not None:
                b = np.asarray(b, dtype=np.float64).reshape(-1)
                if b.shape[0] != self.layers[k].shape[0]:
                    raise GraphStructureError(
                        f"layer {self.names[k]!r}: bias has {b.shape[0]} entries for "
                        f"{self.layers[k].shape[0]} outputs"
                    )
            self.biases.append(b)
        for name, w in zip(self.names, self.layers):
            if 0 in w.shape:
                raise GraphStructureError(
                    f"layer {name!r} has shape {w.shape}: a layer needs at least one input "
                    "and one output")
        for k in range(1, len(self.layers)):
            if self.layers[k].shape[1] != self.layers[k - 1].shape[0]:
                raise GraphStructureError(
                    f"layer {self.names[k]!r} takes {self.layers[k].shape[1]} inputs but "
                    f"layer {self.names[k - 1]!r} gives {self.layers[k - 1].shape[0]} outputs"
                )
        self.input_shape: tuple[int, ...] | None = (
            tuple(int(s) for s in input_shape) if input_shape is not None else None
        )
        if self.input_shape is not None and math.prod(self.input_shape) != self.n_in[0]:
            raise GraphStructureError(
                f"input shape {self.input_shape} does not hold {self.n_in[0]} inputs"
            )
        self.metadata: dict[str, Any] = dict(metadata or {})

    # ------------------------------------------------------------------ shape
    @property
    def n_layers(self) -> int:
        """Number of weight layers."""
        return len(self.layers)

    @property
    def n_in(self) -> list[int]:
        """Input width of every layer."""
        return [int(w.shape[1]) for w in self.layers]

    @property
    def n_out(self) -> list[int]:
        """Output width of every layer."""
        return [int(w.shape[0]) for w in self.layers]

    @property
    def widths(self) -> list[int]:
        """Unit counts input to output: ``[n_in[0], n_out[0], ..., n_out[-1]]``."""
        return [self.n_in[0], *self.n_out]

    @property
    def n_units(self) -> int:
        """Number of units (nodes) in the whole network."""
        return int(sum(self.widths))

    def offsets(self) -> np.ndarray:
        """First global node id of every unit layer (length ``n_layers + 1``)."""
        return np.concatenate([[0], np.cumsum(self.widths)[:-1]]).astype(np.int64)

    @property
    def n_connections(self) -> list[int]:
        """Number of connections (stored entries) per layer."""
        return [int(w.nnz) for w in self.layers]

    @property
    def densities(self) -> list[float]:
        """Connections divided by possible connections, per layer."""
        return [structure.density(w) for w in self.layers]

    def masks(self) -> list[sp.csr_matrix]:
        """Binary structure of every layer: a CSR matrix with a 1 for each connection."""
        return [structure.binary(w) for w in self.layers]

    def is_finite(self) -> bool:
        """True when no weight or bias is NaN or infinite."""
        return not self.nonfinite_layers()

    def nonfinite_layers(self) -> list[str]:
        """Names of the layers whose weights or bias hold NaN or infinity."""
        bad = []
        for name, w, b in zip(self.names, self.layers, self.biases):
            if not np.isfinite(w.data).all() or (b is not None and not np.isfinite(b).all()):
                bad.append(name)
        return bad

    def require_finite(self, what: str = "this analysis") -> None:
        """Raise :class:`NonFiniteWeightsError` when any weight is NaN or infinite."""
        bad = self.nonfinite_layers()
        if bad:
            raise NonFiniteWeightsError(
                f"{self.source}: {what} needs finite weights, but layer(s) "
                f"{', '.join(repr(b) for b in bad)} hold NaN or infinity"
            )

    @property
    def source(self) -> str:
        """Where the graph came from (file or folder), for messages."""
        return str(self.metadata.get("source", "<in-memory graph>"))

    # ---------------------------------------------------------- conversions
    def copy(self) -> LayeredGraph:
        """A deep copy (matrices, biases and metadata)."""
        return LayeredGraph(
            [w.copy() for w in self.layers],  # sparse input keeps every stored entry
            biases=[None if b is None else b.copy() for b in self.biases],
            names=list(self.names),
            input_shape=self.input_shape,
            metadata=dict(self.metadata),
        )

    def edges(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All connections as global ``(source, target, weight)`` arrays, layer by layer.

        Within a layer the order is the CSR order (by output unit, then input unit).
        """
        return stacked_edges(self.layers)

    def node_layers(self) -> np.ndarray:
        """Unit-layer index (0 = inputs) of every global node id."""
        return np.repeat(np.arange(self.n_layers + 1), self.widths)

    def node_units(self) -> np.ndarray:
        """Index of every global node within its unit layer."""
        return np.concatenate([np.arange(n) for n in self.widths])

    def to_networkx(self) -> networkx.DiGraph:
        """A ``networkx.DiGraph``: global node ids, edges input-to-output with ``weight``.

        Nodes carry ``layer`` (0 = inputs) and ``unit`` (index within the layer); edges carry
        ``weight`` and ``layer`` (the index of the weight layer). Built on demand.
        """
        import networkx as nx

        g = nx.DiGraph()
        layer_of, unit_of = self.node_layers(), self.node_units()
        g.add_nodes_from(
            (int(i), {"layer": int(lay), "unit": int(u)})
            for i, (lay, u) in enumerate(zip(layer_of, unit_of))
        )
        src, dst, wts = self.edges()
        edge_layer = np.repeat(np.arange(self.n_layers), self.n_connections)
        g.add_edges_from(
            (int(s), int(t), {"weight": float(w), "layer": int(lay)})
            for s, t, w, lay in zip(src, dst, wts, edge_layer)
        )
        return g

    def to_igraph(self) -> igraph.Graph:
        """A directed ``igraph.Graph`` with the same node ids, ``weight``/``layer`` attributes.

        Built from the edge list rather than a weighted adjacency matrix so that connections
        whose weight is exactly 0 are kept.
        """
        import igraph as ig

        src, dst, wts = self.edges()
        g = ig.Graph(n=self.n_units, edges=np.column_stack([src, dst]).tolist(), directed=True)
        g.vs["layer"] = self.node_layers().tolist()
        g.vs["unit"] = self.node_units().tolist()
        g.es["weight"] = wts.tolist()
        g.es["layer"] = np.repeat(np.arange(self.n_layers), self.n_connections).tolist()
        return g

    # --------------------------------------------------------------- summary
    def summary(self) -> pandas.DataFrame:
        """One row per layer, input side first.

        Columns: ``name``, ``n_in``, ``n_out``, ``connections``, ``density``,
        ``inputs_without_outgoing`` (inputs of the layer with no connection in it),
        ``outputs_without_incoming``, ``weight_min``, ``weight_mean``, ``weight_max``
        (over connections; NaN for an empty layer) and ``nonfinite`` (count of NaN/inf
        weights).
        """
        import pandas as pd

        rows = []
        for name, w in zip(self.names, self.layers):
            data = w.data
            finite = data[np.isfinite(data)]
            without_outgoing, without_incoming = structure.isolated_units(w)
            rows.append({
                "name": name,
                "n_in": int(w.shape[1]),
                "n_out": int(w.shape[0]),
                "connections": int(w.nnz),
                "density": structure.density(w),
                "inputs_without_outgoing": without_outgoing,
                "outputs_without_incoming": without_incoming,
                "weight_min": float(finite.min()) if finite.size else float("nan"),
                "weight_mean": float(finite.mean()) if finite.size else float("nan"),
                "weight_max": float(finite.max()) if finite.size else float("nan"),
                "nonfinite": int(data.size - finite.size),
            })
        return pd.DataFrame(rows)

    def same_structure(self, other: LayeredGraph) -> bool:
        """True when both graphs have the same widths and exactly the same connections."""
        if self.widths != other.widths:
            return False
        for a, b in zip(self.masks(), other.masks()):
            if not (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)):
                return False
        return True

    def __repr__(self) -> str:
        return (f"LayeredGraph({'-'.join(map(str, self.widths))}, "
                f"connections={sum(self.n_connections)}, source={self.source!r})")


def require_graph(value: Any, role: str = "network") -> LayeredGraph:
    """``value`` when it is a :class:`LayeredGraph`, else a :class:`~topo.errors.NotAGraphError`.

    Analyses take graphs and never open files; the error says how to read a path.

    Parameters
    ----------
    value
        What the caller passed.
    role
        How the message names it (e.g. ``"network a"``).
    """
    if isinstance(value, LayeredGraph):
        return value
    if isinstance(value, (str, Path)):
        raise NotAGraphError(
            f"{role}: got the path {str(value)!r}, expected a LayeredGraph; analyses never open "
            "files: read it with topo.load(path) (a run or a folder of snapshots with "
            "topo.read_sequence(path))")
    raise NotAGraphError(f"{role}: expected a LayeredGraph, got {type(value).__name__}")


def stacked_edges(layers: Sequence[sp.spmatrix]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Global ``(source, target, value)`` arrays of consecutive ``(n_out, n_in)`` layers.

    Node ids run input side first: layer ``k``'s inputs start where the units before them end.
    Within a layer the order is the CSR order (by output unit, then input unit).
    """
    widths = [layers[0].shape[1], *(w.shape[0] for w in layers)]
    offsets = np.concatenate([[0], np.cumsum(widths)]).astype(np.int64)
    src, dst, values = [], [], []
    for k, w in enumerate(layers):
        coo = sp.coo_matrix(w)
        src.append(coo.col.astype(np.int64) + offsets[k])
        dst.append(coo.row.astype(np.int64) + offsets[k + 1])
        values.append(coo.data.astype(np.float64))
    return np.concatenate(src), np.concatenate(dst), np.concatenate(values)


def _as_connection_matrix(weight: Any, mask: Any, name: str) -> sp.csr_matrix:
    """CSR matrix whose stored entries are exactly the connections of one layer."""
    if mask is not None:
        mask_shape = mask.shape
        w_shape = weight.shape
        if len(w_shape) != 2 or len(mask_shape) != 2:
            raise GraphStructureError(
                f"layer {name!r}: weights and mask must be 2-D, got shapes "
                f"{tuple(w_shape)} and {tuple(mask_shape)}")
        if tuple(mask_shape) != tuple(w_shape):
            raise GraphStructureError(
                f"layer {name!r}: mask shape {tuple(mask_shape)} differs from weight shape "
                f"{tuple(w_shape)}")
        m = sp.csr_matrix(mask)
        m.eliminate_zeros()
        m.sort_indices()
        rows = np.repeat(np.arange(m.shape[0]), np.diff(m.indptr))
        if m.nnz == 0:
            values = np.zeros(0)
        elif sp.issparse(weight):
            values = np.asarray(sp.csr_matrix(weight)[rows, m.indices]).ravel()
        else:
            values = np.asarray(weight)[rows, m.indices]
        out = sp.csr_matrix((values.astype(np.float64), m.indices.copy(), m.indptr.copy()),
                            shape=m.shape)
        return out
    if sp.issparse(weight):
        if len(weight.shape) != 2:
            raise GraphStructureError(f"layer {name!r}: weights must be 2-D")
        out = sp.csr_matrix(weight, dtype=np.float64, copy=True)
        out.sum_duplicates()
        out.sort_indices()
        return out
    arr = np.asarray(weight)
    if arr.ndim != 2:
        raise GraphStructureError(
            f"layer {name!r}: weights must be 2-D (n_out, n_in), got shape {arr.shape}")
    nz = arr != 0
    # NaN compares unequal to 0, so NaN weights stay connections and are reported later.
    rows, cols = np.nonzero(nz)
    return sp.csr_matrix((arr[rows, cols].astype(np.float64), (rows, cols)), shape=arr.shape)
