"""LayeredGraph: the data model every analysis in topo reads.

A feed-forward network is an ordered list of bipartite layers. Layer ``k`` maps ``n_in[k]``
input *units* to ``n_out[k]`` output units and is stored as a ``scipy.sparse.csr_matrix`` of
shape ``(n_out, n_in * positions)`` (PyTorch's orientation). The **stored entries of the
matrix are the connections** and its values are the weights, so a connection whose weight is
exactly 0 (as SET and RigL regrow them) is still a connection. Biases (one per output unit)
are kept beside the matrices and are never edges.

Units and positions (:class:`LayerGeometry`). A linear layer's unit is a neuron with one
position, so its matrix is ``(n_out, n_in)``. A conv layer with weight ``(C_out, C_in / groups,
kh, kw)`` maps ``C_in`` input channels to ``C_out`` output channels; each input unit has
``kh * kw`` positions and the matrix is ``(C_out, C_in * kh * kw)`` with column
``in_unit * positions + position``, exactly PyTorch's ``weight.reshape(C_out, -1)`` for
``groups = 1``: every kernel element is a connection. A grouped or depthwise conv is stored
expanded to that full layout with no stored entry outside its groups. A linear layer reading a
flattened ``(C, H, W)`` feature map (kind ``"flatten"``) has ``C`` input units with ``H * W``
positions each (PyTorch's flatten order). Every layer also has a **unit graph**
(:meth:`LayeredGraph.unit_graph`): ``(n_out, n_in)``, a connection where any element of the
block is kept, weighted by a stated norm of the block.

Wiring. Every layer reads one *unit set* and writes one (:attr:`LayeredGraph.reads`,
:attr:`LayeredGraph.writes`). Set 0 is the network input. In a chain (the default, and every
MLP) layer ``k`` reads set ``k`` and writes set ``k + 1``. Layers are kept in forward order:
a layer reads the *current value* of its set, the sum of what the layers before it wrote
there, and adds its output to the set it writes. So a residual addition is several layers
writing one set (a *stream*): a ResNet basic block's ``conv2`` writes the set its ``conv1``
reads, and a projection shortcut is a layer writing the new stream together with the block's
``conv2``. The network's output is the set the last layer writes. When the wiring of a model
is unknown, ``independent=True`` gives every layer its own input and output set: per-matrix
analyses work, whole-network analyses refuse.

Nodes of the whole network are numbered globally by unit set: the units of set 0 first, then
set 1, and so on (for a chain: inputs first, then the outputs of layer 0, ...).
:meth:`LayeredGraph.offsets` gives the first global id of every set.

The data model does no file I/O: :mod:`topo.io` reads and writes graphs (``topo.load``,
``topo.save_snapshot``, ``topo.io.export_graph``).

Examples
--------
A tiny ResNet-like network: a stem conv writing stream 1, one basic block (``b.conv1``
reads the stream, ``b.conv2`` adds back into it), a projection block into stream 3, and a
linear classifier after global pooling.

>>> import numpy as np
>>> conv = LayerGeometry.conv((3, 3))
>>> rng = np.random.default_rng(0)
>>> w = lambda o, i: rng.normal(size=(o, i, 3, 3))
>>> g = LayeredGraph(
...     [w(4, 3), w(4, 4), w(4, 4), w(8, 4), w(8, 8), rng.normal(size=(8, 4, 1, 1)),
...      rng.normal(size=(10, 8))],
...     names=["stem", "b.conv1", "b.conv2", "p.conv1", "p.conv2", "p.down", "fc"],
...     geometry=[conv] * 5 + [LayerGeometry.conv((1, 1)), LayerGeometry.linear()],
...     reads=[0, 1, 2, 1, 3, 1, 4], writes=[1, 2, 1, 3, 4, 4, 5])
>>> g.set_sizes, g.is_chain
([3, 4, 4, 8, 8, 10], False)
>>> g.writers(4), g.readers(1)
([4, 5], [1, 3, 5])
>>> g.layers[1].shape  # 4 output channels x (4 input channels x 9 kernel positions)
(4, 36)
>>> g.unit_graph(1).shape
(4, 4)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from topo import structure
from topo.errors import ConfigError, GraphStructureError, NonFiniteWeightsError, NotAGraphError

if TYPE_CHECKING:  # pragma: no cover
    import igraph
    import networkx
    import pandas

__all__ = ["LayerGeometry", "Wiring", "LayeredGraph", "LAYER_KINDS", "require_graph",
           "stacked_edges", "conv_matrix"]

#: Kinds of layers (:attr:`LayerGeometry.kind`).
LAYER_KINDS = ("linear", "conv", "flatten")


@dataclass(frozen=True)
class LayerGeometry:
    """How one layer's matrix maps units: its kind, kernel shape and groups.

    Parameters
    ----------
    kind
        ``"linear"`` (a unit is a neuron, one position), ``"conv"`` (a unit is a channel with
        one position per kernel element) or ``"flatten"`` (a linear layer reading a
        flattened feature map: a unit is a channel with one position per pixel).
    kernel_shape
        ``()`` for linear; ``(kh, kw)`` for a 2-D conv (``(k,)`` for Conv1d, three numbers for
        Conv3d); the feature map's ``(H, W)`` (or any spatial shape) for flatten.
    groups
        Groups of a grouped conv (``C_in`` for depthwise); 1 otherwise.
    stride, padding, dilation
        Of a conv, for information only (no analysis uses them); ``None`` when unknown.

    Raises
    ------
    GraphStructureError
        An unknown kind, a kernel shape that does not fit the kind, or groups below 1 (or
        above 1 for a layer that is not a conv).

    Examples
    --------
    >>> LayerGeometry.conv((3, 3)).positions
    9
    >>> LayerGeometry().positions, LayerGeometry().kind
    (1, 'linear')
    >>> LayerGeometry.flatten((4, 4)).describe()
    'flatten 4x4'
    """

    kind: str = "linear"
    kernel_shape: tuple[int, ...] = ()
    groups: int = 1
    stride: tuple[int, ...] | None = None
    padding: tuple[int, ...] | None = None
    dilation: tuple[int, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in LAYER_KINDS:
            raise GraphStructureError(
                f"unknown layer kind {self.kind!r}; use one of {', '.join(LAYER_KINDS)}")
        kernel = _int_tuple(self.kernel_shape, "kernel shape")
        object.__setattr__(self, "kernel_shape", kernel)
        for name in ("stride", "padding", "dilation"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, _int_tuple(value, name, minimum=0))
        if isinstance(self.groups, bool) or not isinstance(self.groups, (int, np.integer)) \
                or self.groups < 1:
            raise GraphStructureError(f"groups must be a positive integer, got {self.groups!r}")
        object.__setattr__(self, "groups", int(self.groups))
        if self.kind == "linear" and kernel:
            raise GraphStructureError(
                f"a linear layer has no kernel shape (got {kernel}); use kind 'conv' or "
                "'flatten'")
        if self.kind != "linear" and not kernel:
            raise GraphStructureError(f"a {self.kind} layer needs a kernel shape")
        if self.kind != "conv" and self.groups != 1:
            raise GraphStructureError(f"a {self.kind} layer has no groups (got {self.groups})")

    @classmethod
    def linear(cls) -> LayerGeometry:
        """A fully-connected layer: one position per input unit."""
        return cls()

    @classmethod
    def conv(cls, kernel_shape: Sequence[int], *, groups: int = 1,
             stride: Sequence[int] | None = None, padding: Sequence[int] | None = None,
             dilation: Sequence[int] | None = None) -> LayerGeometry:
        """A convolution with the given kernel shape (``(kh, kw)`` for Conv2d)."""
        return cls("conv", tuple(kernel_shape), groups,
                   None if stride is None else tuple(stride),
                   None if padding is None else tuple(padding),
                   None if dilation is None else tuple(dilation))

    @classmethod
    def flatten(cls, spatial_shape: Sequence[int]) -> LayerGeometry:
        """A linear layer reading a flattened ``(C, *spatial_shape)`` feature map."""
        return cls("flatten", tuple(spatial_shape))

    @property
    def positions(self) -> int:
        """Positions per input unit: ``prod(kernel_shape)`` (1 for linear)."""
        return int(math.prod(self.kernel_shape))

    @property
    def is_linear(self) -> bool:
        """True for a plain fully-connected layer (kind ``"linear"``)."""
        return self.kind == "linear"

    def describe(self) -> str:
        """Short text for tables: ``linear``, ``conv 3x3``, ``conv 3x3 g32``, ``flatten 4x4``."""
        if self.is_linear:
            return "linear"
        text = f"{self.kind} {'x'.join(map(str, self.kernel_shape))}"
        return text + (f" g{self.groups}" if self.groups != 1 else "")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (``None`` entries left out)."""
        out: dict[str, Any] = {"kind": self.kind, "kernel_shape": list(self.kernel_shape),
                               "groups": self.groups}
        for name in ("stride", "padding", "dilation"):
            value = getattr(self, name)
            if value is not None:
                out[name] = list(value)
        return out

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> LayerGeometry:
        """The geometry :meth:`to_dict` wrote.

        Raises
        ------
        GraphStructureError
            Unknown or ill-typed fields.
        """
        if not isinstance(fields, dict):
            raise GraphStructureError(f"a layer geometry must be a mapping, got {fields!r}")
        unknown = set(fields) - {"kind", "kernel_shape", "groups", "stride", "padding",
                                 "dilation"}
        if unknown:
            raise GraphStructureError(
                f"unknown layer geometry field(s) {', '.join(sorted(unknown))}")
        def seq(name: str) -> tuple | None:
            value = fields.get(name)
            if value is None:
                return None
            if not isinstance(value, (list, tuple)):
                raise GraphStructureError(f"layer geometry {name} must be a list, got {value!r}")
            return tuple(value)
        return cls(fields.get("kind", "linear"), seq("kernel_shape") or (),
                   fields.get("groups", 1), seq("stride"), seq("padding"), seq("dilation"))


@dataclass(frozen=True)
class Wiring:
    """Which unit set every layer reads and writes.

    Attributes
    ----------
    reads, writes
        Per layer, in forward order, the unit set it reads and the one it writes. Sets are
        numbered in order of first use (``reads[0]``, ``writes[0]``, ``reads[1]``, ...), so
        set 0 is the network input and the chain is ``reads = (0, 1, ...)``,
        ``writes = (1, 2, ...)``.
    set_sizes
        Units in every set.
    independent
        Every layer has its own input and output set because the wiring is unknown
        ("independent matrices"): per-matrix analyses only.
    """

    reads: tuple[int, ...]
    writes: tuple[int, ...]
    set_sizes: tuple[int, ...]
    independent: bool = False

    @property
    def n_sets(self) -> int:
        """Number of unit sets."""
        return len(self.set_sizes)

    @property
    def is_chain(self) -> bool:
        """True when layer ``k`` reads set ``k`` and writes set ``k + 1`` for every ``k``."""
        n = len(self.reads)
        return (self.reads == tuple(range(n)) and self.writes == tuple(range(1, n + 1)))

    @property
    def output_set(self) -> int:
        """The set the last layer writes: the network's output."""
        return self.writes[-1]

    @property
    def input_sets(self) -> list[int]:
        """Sets that hold network inputs: set 0, or every layer's read set when independent."""
        return sorted(set(self.reads)) if self.independent else [0]

    @property
    def output_sets(self) -> list[int]:
        """Sets that hold network outputs: the output set, or every write set when
        independent."""
        return sorted(set(self.writes)) if self.independent else [self.output_set]

    def writers(self, unit_set: int) -> list[int]:
        """Layers writing ``unit_set``, in forward order."""
        return [k for k, w in enumerate(self.writes) if w == unit_set]

    def readers(self, unit_set: int) -> list[int]:
        """Layers reading ``unit_set``, in forward order."""
        return [k for k, r in enumerate(self.reads) if r == unit_set]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready ``{"reads", "writes", "independent"}`` (set sizes follow from the layers)."""
        return {"reads": list(self.reads), "writes": list(self.writes),
                "independent": self.independent}

class LayeredGraph:
    """A feed-forward network as an ordered list of sparse bipartite layers.

    Parameters
    ----------
    layers
        One matrix per layer, in forward order, each of shape ``(n_out, n_in * positions)``
        (see the module notes). Sparse matrices keep their stored entries as the
        connections; a dense array is converted with its non-zero entries as the connections
        (pass ``masks`` to say otherwise). A conv layer may also be given as its weight array
        in PyTorch's layout ``(C_out, C_in / groups, *kernel_shape)`` (a flatten layer as
        ``(n_out, C, *spatial_shape)``); it is then expanded to the matrix layout.
    masks
        Optional structure per layer (same shapes, non-zero = connection). When given, the
        connections are exactly the mask's non-zeros, whatever the weights are there.
    biases
        Optional bias vector per layer (length ``n_out``), or ``None`` entries.
    names
        Layer names (from the checkpoint); defaults to ``layer0``, ``layer1``, ...
    input_shape
        Shape of one input sample: e.g. ``(28, 28)`` for an MLP on pictures (its product is
        the number of inputs), ``(3, 32, 32)`` for a conv network (channels first: the first
        entry is the number of input units).
    metadata
        Free-form snapshot metadata (format, source, run id, epoch, step, method, seed,
        accuracy, ...). Values should be JSON-serialisable.
    geometry
        Optional :class:`LayerGeometry` per layer (``None`` entries: linear); all linear
        when omitted.
    reads, writes
        Optional unit set read and written by every layer (integers; renumbered in order of
        first use, see :class:`Wiring`); the chain when omitted. Give both or neither.
    independent
        Every layer reads its own input set and writes its own output set: the wiring of the
        model is unknown (per-matrix analyses only). Not with ``reads``/``writes``.

    Raises
    ------
    GraphStructureError
        A layer is not 2-D (nor a conv weight array fitting its geometry), a mask's shape
        differs from its weights, a bias has the wrong length, a layer's width is not a whole
        number of units, a grouped conv has connections outside its groups, or the widths
        disagree with the wiring (``n_in[k + 1] != n_out[k]`` in a chain; a set read or
        written with two different sizes, a set read before any layer writes it, a set
        that nothing reads and that is not the output).
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
        geometry: Sequence[LayerGeometry | None] | None = None,
        reads: Sequence[int] | None = None,
        writes: Sequence[int] | None = None,
        independent: bool = False,
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
        if geometry is not None and len(geometry) != len(layers):
            raise GraphStructureError(f"{len(geometry)} layer geometries for {len(layers)} "
                                      "layers")
        self.names: list[str] = [str(n) for n in names]
        self.geometry: list[LayerGeometry] = []
        for k in range(len(layers)):
            geo = None if geometry is None else geometry[k]
            if geo is None:
                geo = _LINEAR
            elif not isinstance(geo, LayerGeometry):
                raise GraphStructureError(
                    f"layer {self.names[k]!r}: geometry must be a LayerGeometry, got "
                    f"{type(geo).__name__}")
            self.geometry.append(geo)
        self.layers: list[sp.csr_matrix] = [
            _as_connection_matrix(w, None if masks is None else masks[k], self.names[k],
                                  self.geometry[k])
            for k, w in enumerate(layers)
        ]
        for name, w, geo in zip(self.names, self.layers, self.geometry):
            _check_geometry(name, w, geo)
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
        self.wiring: Wiring = _make_wiring(self.names, self.n_in, self.n_out, reads, writes,
                                           independent)
        self.input_shape: tuple[int, ...] | None = (
            tuple(int(s) for s in input_shape) if input_shape is not None else None
        )
        if self.input_shape is not None:
            _check_input_shape(self.input_shape, self.n_in[0], self.geometry[0])
        self.metadata: dict[str, Any] = dict(metadata or {})

    # ------------------------------------------------------------------ shape
    @property
    def n_layers(self) -> int:
        """Number of weight layers."""
        return len(self.layers)

    @property
    def n_in(self) -> list[int]:
        """Input units of every layer (the matrix width divided by the positions)."""
        return [int(w.shape[1]) // g.positions for w, g in zip(self.layers, self.geometry)]

    @property
    def n_out(self) -> list[int]:
        """Output units of every layer."""
        return [int(w.shape[0]) for w in self.layers]

    @property
    def positions(self) -> list[int]:
        """Positions per input unit of every layer (1 for linear layers)."""
        return [g.positions for g in self.geometry]

    @property
    def kernel_shapes(self) -> list[tuple[int, ...]]:
        """Kernel shape of every layer (``()`` for linear layers)."""
        return [g.kernel_shape for g in self.geometry]

    @property
    def is_linear(self) -> bool:
        """True when every layer is a plain fully-connected layer (one position per unit)."""
        return all(g.is_linear for g in self.geometry)

    # ----------------------------------------------------------------- wiring
    @property
    def reads(self) -> list[int]:
        """The unit set every layer reads (set 0 is the network input)."""
        return list(self.wiring.reads)

    @property
    def writes(self) -> list[int]:
        """The unit set every layer writes."""
        return list(self.wiring.writes)

    @property
    def set_sizes(self) -> list[int]:
        """Units in every unit set."""
        return list(self.wiring.set_sizes)

    @property
    def is_chain(self) -> bool:
        """True when layer ``k`` reads what layer ``k - 1`` writes, and nothing else."""
        return self.wiring.is_chain

    @property
    def is_independent(self) -> bool:
        """True for independent matrices (unknown wiring: per-matrix analyses only)."""
        return self.wiring.independent

    @property
    def output_set(self) -> int:
        """The unit set the last layer writes: the network's output."""
        return self.wiring.output_set

    def writers(self, unit_set: int) -> list[int]:
        """Layers writing ``unit_set``, in forward order."""
        return self.wiring.writers(unit_set)

    def readers(self, unit_set: int) -> list[int]:
        """Layers reading ``unit_set``, in forward order."""
        return self.wiring.readers(unit_set)

    def require_chain(self, what: str = "this analysis") -> None:
        """Raise :class:`GraphStructureError` unless the wiring is the plain chain."""
        self.require_wiring(what)
        if not self.is_chain:
            raise GraphStructureError(
                f"{self.source}: {what} is defined for a chain of layers; this network has "
                "residual streams (layers writing or reading one unit set together)")

    def require_wiring(self, what: str = "this analysis") -> None:
        """Raise :class:`GraphStructureError` for independent matrices (unknown wiring)."""
        if self.is_independent:
            raise GraphStructureError(
                f"{self.source}: {what} needs the network's wiring, but its layers were read "
                "as independent matrices (the wiring of this model is unknown); per-layer "
                "analyses (density, overlap, NNSTD per matrix) still work")

    @property
    def widths(self) -> list[int]:
        """Units in every unit set; for a chain ``[n_in[0], n_out[0], ..., n_out[-1]]``."""
        return self.set_sizes

    @property
    def n_units(self) -> int:
        """Number of units (nodes) in the whole network, over all unit sets."""
        return int(sum(self.widths))

    def offsets(self) -> np.ndarray:
        """First global node id of every unit set (for a chain: every unit layer)."""
        return np.concatenate([[0], np.cumsum(self.widths)[:-1]]).astype(np.int64)

    # ------------------------------------------------------------ connections
    @property
    def n_connections(self) -> list[int]:
        """Number of connections (stored entries: kernel elements for a conv) per layer."""
        return [int(w.nnz) for w in self.layers]

    @property
    def n_unit_connections(self) -> list[int]:
        """Number of connections of every layer's unit graph (unit pairs with a kept element)."""
        return [int(m.nnz) for m in self.unit_masks()]

    @property
    def possible(self) -> list[int]:
        """Possible connections per layer: ``n_out * (n_in / groups) * positions``."""
        return [int(w.shape[0]) * (int(w.shape[1]) // g.groups)
                for w, g in zip(self.layers, self.geometry)]

    @property
    def densities(self) -> list[float]:
        """Connections divided by possible connections, per layer."""
        return [w.nnz / p if p else 0.0 for w, p in zip(self.layers, self.possible)]

    def masks(self) -> list[sp.csr_matrix]:
        """Binary structure of every layer: a CSR matrix with a 1 for each connection."""
        return [structure.binary(w) for w in self.layers]

    def unit_masks(self) -> list[sp.csr_matrix]:
        """Binary structure of every layer's unit graph, ``(n_out, n_in)``."""
        return [structure.unit_structure(w, g.positions)
                for w, g in zip(self.layers, self.geometry)]

    def unit_graph(self, k: int, norm: str = "l2") -> sp.csr_matrix:
        """Layer ``k``'s unit graph: ``(n_out, n_in)`` with one connection per unit pair.

        Parameters
        ----------
        k
            Layer index.
        norm
            Weight of a unit connection from its block's kept elements (see
            :func:`topo.structure.unit_graph`): ``"l2"`` (default, the Frobenius norm of the
            kept slice: for a linear layer ``|w|``), ``"l1"``, ``"max"`` (of ``|w|``),
            ``"sum"`` (signed: for a linear layer ``w`` itself) or ``"count"``.

        Returns
        -------
        scipy.sparse.csr_matrix
            A connection where any element of the block is kept (even at weight 0).

        Raises
        ------
        ConfigError
            An unknown ``norm``.
        """
        if norm not in structure.UNIT_NORMS:
            raise ConfigError(f"unknown unit-graph norm {norm!r}; use one of "
                              f"{', '.join(structure.UNIT_NORMS)}")
        return structure.unit_graph(self.layers[k], self.geometry[k].positions, norm)

    def unit_graphs(self, norm: str | None = "l2") -> list[sp.csr_matrix]:
        """Every layer's unit graph (:meth:`unit_graph`).

        ``norm=None`` gives each connection its own weight where a unit pair has one element
        (linear layers: the signed weight, as stored) and the L2 norm of the block
        otherwise; the exports use it.
        """
        if norm is None:
            return [w if g.positions == 1 else self.unit_graph(k, "l2")
                    for k, (w, g) in enumerate(zip(self.layers, self.geometry))]
        return [self.unit_graph(k, norm) for k in range(self.n_layers)]

    def allowed_columns(self, k: int) -> tuple[np.ndarray, int]:
        """Where each output unit of layer ``k`` may have connections.

        Returns
        -------
        (numpy.ndarray, int)
            The first allowed column of every output unit and the number of allowed columns
            (all of them for ``groups = 1``; the unit's group's ``(C_in / groups) * positions``
            columns for a grouped conv).
        """
        w, g = self.layers[k], self.geometry[k]
        n_out, width = w.shape
        if g.groups == 1:
            return np.zeros(n_out, dtype=np.int64), int(width)
        per_group = width // g.groups
        group = np.arange(n_out, dtype=np.int64) // (n_out // g.groups)
        return group * per_group, int(per_group)

    def kernel(self, k: int) -> np.ndarray:
        """Layer ``k``'s weights as a dense array in PyTorch's layout.

        ``(n_out, n_in)`` for a linear layer, ``(C_out, C_in / groups, *kernel_shape)`` for a
        conv, ``(n_out, C, *spatial_shape)`` for a flatten layer; positions without a
        connection hold 0.
        """
        return self._dense(k, self.layers[k].toarray())

    def kernel_mask(self, k: int) -> np.ndarray:
        """Layer ``k``'s connections as a boolean array in :meth:`kernel`'s layout."""
        return self._dense(k, structure.binary(self.layers[k]).toarray().astype(bool))

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
    def architecture(self) -> dict[str, Any]:
        """Constructor keyword arguments that give another graph this one's architecture.

        ``{"geometry": [...]}`` plus ``reads``/``writes`` (residual streams) or
        ``independent=True``: ``LayeredGraph(layers, **g.architecture())`` builds new
        matrices on ``g``'s layer geometry and wiring.
        """
        args: dict[str, Any] = {"geometry": list(self.geometry)}
        if self.is_independent:
            args["independent"] = True
        elif not self.is_chain:
            args["reads"], args["writes"] = self.reads, self.writes
        return args

    def copy(self) -> LayeredGraph:
        """A deep copy (matrices, biases, geometry, wiring and metadata)."""
        return LayeredGraph(
            [w.copy() for w in self.layers],  # sparse input keeps every stored entry
            biases=[None if b is None else b.copy() for b in self.biases],
            names=list(self.names),
            input_shape=self.input_shape,
            metadata=dict(self.metadata),
            **self.architecture(),
        )

    def edges(self, norm: str | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """All unit connections as global ``(source, target, weight)`` arrays, layer by layer.

        Sources are units of the layer's read set, targets of its write set (global ids, see
        :meth:`offsets`); the weight is the unit graph's (:meth:`unit_graphs`: ``norm=None``
        keeps a linear layer's signed weights). Within a layer the order is the CSR order
        (by output unit, then input unit).
        """
        offsets = self.offsets()
        src, dst, values = [], [], []
        for k, m in enumerate(self.unit_graphs(norm)):
            coo = sp.coo_matrix(m)
            src.append(coo.col.astype(np.int64) + offsets[self.wiring.reads[k]])
            dst.append(coo.row.astype(np.int64) + offsets[self.wiring.writes[k]])
            values.append(coo.data.astype(np.float64))
        return np.concatenate(src), np.concatenate(dst), np.concatenate(values)

    def node_layers(self) -> np.ndarray:
        """Unit set (for a chain: unit layer, 0 = inputs) of every global node id."""
        return np.repeat(np.arange(len(self.widths)), self.widths)

    def node_units(self) -> np.ndarray:
        """Index of every global node within its unit set."""
        return np.concatenate([np.arange(n) for n in self.widths])

    def to_networkx(self, norm: str | None = None) -> networkx.DiGraph:
        """The unit graph of the network as a ``networkx.DiGraph``, built on demand.

        Global node ids (:meth:`offsets`); edges go input to output with ``weight`` (the unit
        graph's, :meth:`unit_graphs`) and ``layer`` (the index of the weight layer). Nodes
        carry ``layer`` (the unit layer, 0 = inputs) and ``unit`` (index within it) in a
        chain, ``set`` and ``unit`` otherwise. When a layer has several positions per unit,
        the graph attribute ``unit_weight`` names the norm. Two layers that read one set and
        write another together give a ``networkx.MultiDiGraph`` (one edge per layer).
        """
        import networkx as nx

        duplicate = len(set(zip(self.wiring.reads, self.wiring.writes))) < self.n_layers
        g = nx.MultiDiGraph() if duplicate else nx.DiGraph()
        node_key = "layer" if self.is_chain else "set"
        layer_of, unit_of = self.node_layers(), self.node_units()
        g.add_nodes_from(
            (int(i), {node_key: int(lay), "unit": int(u)})
            for i, (lay, u) in enumerate(zip(layer_of, unit_of))
        )
        src, dst, wts = self.edges(norm)
        edge_layer = np.repeat(np.arange(self.n_layers), self.n_unit_connections)
        g.add_edges_from(
            (int(s), int(t), {"weight": float(w), "layer": int(lay)})
            for s, t, w, lay in zip(src, dst, wts, edge_layer)
        )
        self._describe_units(g.graph, norm)
        return g

    def to_igraph(self, norm: str | None = None) -> igraph.Graph:
        """A directed ``igraph.Graph`` with :meth:`to_networkx`'s nodes, edges and attributes.

        Built from the edge list rather than a weighted adjacency matrix so that connections
        whose weight is exactly 0 are kept.
        """
        import igraph as ig

        src, dst, wts = self.edges(norm)
        g = ig.Graph(n=self.n_units, edges=np.column_stack([src, dst]).tolist(), directed=True)
        g.vs["layer" if self.is_chain else "set"] = self.node_layers().tolist()
        g.vs["unit"] = self.node_units().tolist()
        g.es["weight"] = wts.tolist()
        g.es["layer"] = np.repeat(np.arange(self.n_layers), self.n_unit_connections).tolist()
        attributes: dict[str, Any] = {}
        self._describe_units(attributes, norm)
        for key, value in attributes.items():
            g[key] = value
        return g

    # --------------------------------------------------------------- summary
    def summary(self, geometry: bool | None = None) -> pandas.DataFrame:
        """One row per layer, in forward order.

        Parameters
        ----------
        geometry
            Add the geometry and wiring columns; ``None`` (default): when some layer is not
            linear or the wiring is not a chain.

        Returns
        -------
        pandas.DataFrame
            Columns ``name``, ``n_in``, ``n_out`` (units), ``connections`` (elements),
            ``density``, ``inputs_without_outgoing`` (input units of the layer with no
            connection in it), ``outputs_without_incoming``, ``weight_min``,
            ``weight_mean``, ``weight_max`` (over connections; NaN for an empty layer) and
            ``nonfinite`` (count of NaN/inf weights). With geometry, after ``name``:
            ``kind``, ``kernel`` (e.g. ``3x3``; empty for linear), ``groups``, ``reads`` and
            ``writes`` (unit sets), and after ``n_out``: ``positions``, then after
            ``connections``: ``possible`` and, after ``density``, ``unit_connections``.
        """
        import pandas as pd

        return pd.DataFrame(self.summary_rows(geometry))

    def summary_rows(self, geometry: bool | None = None) -> list[dict[str, Any]]:
        """The rows of :meth:`summary` as plain dicts (Python ints, floats and strings), one
        per layer in forward order, without importing pandas (``topo info`` starts faster).

        Parameters
        ----------
        geometry
            As for :meth:`summary`.

        Returns
        -------
        list of dict
            The columns of :meth:`summary`, in its order.
        """
        if geometry is None:
            geometry = not (self.is_linear and self.is_chain)
        rows = []
        unit_masks = self.unit_masks()
        for k, (name, w) in enumerate(zip(self.names, self.layers)):
            data = w.data
            finite = data[np.isfinite(data)]
            without_outgoing, without_incoming = structure.isolated_units(unit_masks[k])
            geo = self.geometry[k]
            row: dict[str, Any] = {"name": name}
            if geometry:
                row.update(kind=geo.kind, kernel="x".join(map(str, geo.kernel_shape)),
                           groups=geo.groups, reads=self.wiring.reads[k],
                           writes=self.wiring.writes[k])
            row.update(n_in=self.n_in[k], n_out=int(w.shape[0]))
            if geometry:
                row["positions"] = geo.positions
            row["connections"] = int(w.nnz)
            if geometry:
                row["possible"] = self.possible[k]
            row["density"] = self.densities[k]
            if geometry:
                row["unit_connections"] = int(unit_masks[k].nnz)
            row.update({
                "inputs_without_outgoing": without_outgoing,
                "outputs_without_incoming": without_incoming,
                "weight_min": float(finite.min()) if finite.size else float("nan"),
                "weight_mean": float(finite.mean()) if finite.size else float("nan"),
                "weight_max": float(finite.max()) if finite.size else float("nan"),
                "nonfinite": int(data.size - finite.size),
            })
            rows.append(row)
        return rows

    def same_structure(self, other: LayeredGraph) -> bool:
        """True when both graphs have the same geometry, wiring and exactly the same
        connections."""
        if (self.widths != other.widths or self.geometry != other.geometry
                or self.wiring != other.wiring
                or [w.shape for w in self.layers] != [w.shape for w in other.layers]):
            return False
        for a, b in zip(self.masks(), other.masks()):
            if not (np.array_equal(a.indptr, b.indptr) and np.array_equal(a.indices, b.indices)):
                return False
        return True

    def equals(self, other: object, *, metadata: bool = False) -> bool:
        """True when ``other`` is the same network.

        Same names, geometry, wiring, input shape, connections, weights (NaN equal to NaN) and
        biases; with ``metadata=True`` also the same metadata (``source`` included). ``==``
        is ``equals`` without metadata, so a network read back from a file equals the one
        written.
        """
        if not isinstance(other, LayeredGraph):
            return False
        if (self.names != other.names or self.input_shape != other.input_shape
                or not self.same_structure(other)):
            return False
        for a, b in zip(self.layers, other.layers):
            if not np.array_equal(a.data, b.data, equal_nan=True):
                return False
        for a, b in zip(self.biases, other.biases):
            if (a is None) != (b is None) or (
                    a is not None and not np.array_equal(a, b, equal_nan=True)):
                return False
        return not metadata or self.metadata == other.metadata

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayeredGraph):
            return NotImplemented
        return self.equals(other)

    __hash__ = None  # type: ignore[assignment]  # mutable, compared by content

    def __repr__(self) -> str:
        if self.is_chain and self.is_linear:
            return (f"LayeredGraph({'-'.join(map(str, self.widths))}, "
                    f"connections={sum(self.n_connections)}, source={self.source!r})")
        wiring = ("independent" if self.is_independent else "chain" if self.is_chain
                  else "streams")
        return (f"LayeredGraph({self.n_layers} layers, sets "
                f"{'-'.join(map(str, self.widths))}, {wiring}, "
                f"connections={sum(self.n_connections)}, source={self.source!r})")

    # ---------------------------------------------------------------- helpers
    def _dense(self, k: int, flat: np.ndarray) -> np.ndarray:
        geo = self.geometry[k]
        n_out = flat.shape[0]
        if geo.is_linear:
            return flat
        if geo.groups == 1:
            return flat.reshape(n_out, -1, *geo.kernel_shape)
        starts, width = self.allowed_columns(k)
        cols = starts[:, None] + np.arange(width)[None, :]
        return flat[np.arange(n_out)[:, None], cols].reshape(n_out, -1, *geo.kernel_shape)

    def _describe_units(self, attributes: dict[str, Any], norm: str | None) -> None:
        if any(g.positions > 1 for g in self.geometry):
            attributes["unit_weight"] = (
                "l2 norm of each block of kept kernel elements (one-element blocks: the "
                "weight)" if norm is None else f"{norm} of each block of kept elements")



def conv_matrix(weight: Any, *, groups: int = 1, mask: Any = None) -> sp.csr_matrix:
    """A conv weight in PyTorch's layout as topo's layer matrix.

    Parameters
    ----------
    weight
        ``(C_out, C_in / groups, *kernel_shape)`` array (numpy, or anything ``numpy.asarray``
        reads).
    groups
        The conv's groups: output channel ``o`` of group ``o // (C_out / groups)`` reads the
        input channels of that group.
    mask
        Optional structure of the same shape (non-zero = connection); else the non-zero
        weights are the connections.

    Returns
    -------
    scipy.sparse.csr_matrix
        ``(C_out, C_in * prod(kernel_shape))``, column ``in_channel * positions + position``
        (PyTorch's ``weight.reshape(C_out, -1)`` for ``groups = 1``), no entry outside the
        groups.

    Raises
    ------
    GraphStructureError
        Fewer than 3 dimensions, a mask of another shape, or ``C_out`` not divisible by
        ``groups``.

    Examples
    --------
    >>> w = np.arange(1.0, 9.0).reshape(2, 1, 2, 2)  # depthwise: 2 channels, groups=2
    >>> conv_matrix(w, groups=2).toarray()
    array([[1., 2., 3., 4., 0., 0., 0., 0.],
           [0., 0., 0., 0., 5., 6., 7., 8.]])
    """
    arr = np.asarray(weight)
    if arr.ndim < 3:
        raise GraphStructureError(
            f"a conv weight has at least 3 dimensions (C_out, C_in/groups, *kernel), got "
            f"shape {arr.shape}")
    if mask is not None:
        mask = np.asarray(mask)
        if mask.shape != arr.shape:
            raise GraphStructureError(
                f"mask shape {mask.shape} differs from conv weight shape {arr.shape}")
        keep = mask != 0
    else:
        keep = arr != 0  # NaN compares unequal to 0: NaN weights stay connections
    n_out, per_group = arr.shape[0], arr.shape[1]
    positions = int(math.prod(arr.shape[2:]))
    if groups < 1 or n_out % groups:
        raise GraphStructureError(f"{n_out} output channels cannot form {groups} groups")
    flat_keep = keep.reshape(n_out, per_group * positions)
    rows, local = np.nonzero(flat_keep)
    values = arr.reshape(n_out, per_group * positions)[rows, local].astype(np.float64)
    group = rows // (n_out // groups)
    cols = group * per_group * positions + local
    return sp.csr_matrix((values, (rows, cols)),
                         shape=(n_out, per_group * groups * positions))


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


def _as_connection_matrix(weight: Any, mask: Any, name: str,
                          geometry: LayerGeometry | None = None) -> sp.csr_matrix:
    """CSR matrix whose stored entries are exactly the connections of one layer."""
    geometry = geometry or _LINEAR
    shape = getattr(weight, "shape", None)
    if (not geometry.is_linear and shape is not None and not sp.issparse(weight)
            and len(shape) == 2 + len(geometry.kernel_shape)):
        # PyTorch's layout: (C_out, C_in / groups, *kernel) or (n_out, C, *spatial)
        if tuple(shape[2:]) != geometry.kernel_shape:
            raise GraphStructureError(
                f"layer {name!r}: weight shape {tuple(shape)} does not end in its kernel "
                f"shape {geometry.kernel_shape}")
        try:
            return conv_matrix(weight, groups=geometry.groups, mask=mask)
        except GraphStructureError as exc:
            raise GraphStructureError(f"layer {name!r}: {exc}") from None
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


def _int_tuple(value: Any, what: str, minimum: int = 1) -> tuple[int, ...]:
    try:
        out = tuple(int(v) for v in value)
    except (TypeError, ValueError):
        raise GraphStructureError(f"{what} must be a sequence of integers, got {value!r}"
                                  ) from None
    if any(v < minimum for v in out) or any(
            isinstance(v, float) and not float(v).is_integer() for v in value):
        raise GraphStructureError(f"{what} must hold integers of at least {minimum}, "
                                  f"got {value!r}")
    return out


def _check_geometry(name: str, w: sp.csr_matrix, geo: LayerGeometry) -> None:
    """A layer's matrix must be whole units of ``positions`` columns, within its groups."""
    n_out, width = w.shape
    p = geo.positions
    if width % p:
        raise GraphStructureError(
            f"layer {name!r}: {geo.describe()} with {width} columns: not a whole number of "
            f"input units of {p} positions")
    if geo.groups == 1:
        return
    n_in = width // p
    if n_in % geo.groups or n_out % geo.groups:
        raise GraphStructureError(
            f"layer {name!r}: {n_in} input and {n_out} output channels cannot form "
            f"{geo.groups} groups")
    per_group = width // geo.groups
    rows = np.repeat(np.arange(n_out, dtype=np.int64), np.diff(w.indptr))
    group_of_row = rows // (n_out // geo.groups)
    outside = (w.indices // per_group) != group_of_row
    if outside.any():
        first = int(np.flatnonzero(outside)[0])
        raise GraphStructureError(
            f"layer {name!r}: groups={geo.groups} but {int(outside.sum())} connection(s) lie "
            f"outside the groups (output channel {int(rows[first])} reads input channel "
            f"{int(w.indices[first]) // p})")


def _make_wiring(names: list[str], n_in: list[int], n_out: list[int],
                 reads: Sequence[int] | None, writes: Sequence[int] | None,
                 independent: bool) -> Wiring:
    """Check the wiring against the layer widths and number the sets by first use."""
    n = len(names)
    if independent:
        if reads is not None or writes is not None:
            raise GraphStructureError("independent matrices have no reads/writes to give")
        if n == 1:  # one matrix alone is a chain
            return Wiring((0,), (1,), (n_in[0], n_out[0]))
        sizes = tuple(x for pair in zip(n_in, n_out) for x in pair)
        return Wiring(tuple(range(0, 2 * n, 2)), tuple(range(1, 2 * n, 2)), sizes, True)
    if reads is None and writes is None:
        for k in range(1, n):
            if n_in[k] != n_out[k - 1]:
                raise GraphStructureError(
                    f"layer {names[k]!r} takes {n_in[k]} inputs but layer {names[k - 1]!r} "
                    f"gives {n_out[k - 1]} outputs")
        return Wiring(tuple(range(n)), tuple(range(1, n + 1)), (n_in[0], *n_out))
    if reads is None or writes is None:
        raise GraphStructureError("give both reads and writes (or neither, for a chain)")
    if len(reads) != n or len(writes) != n:
        raise GraphStructureError(
            f"{len(reads)} reads and {len(writes)} writes for {n} layers")
    for value in (*reads, *writes):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise GraphStructureError(f"unit sets are integers, got {value!r}")
    r, w = [int(v) for v in reads], [int(v) for v in writes]
    sizes: dict[int, tuple[int, str]] = {}

    def fits(unit_set: int, size: int, k: int, verb: str) -> None:
        known = sizes.setdefault(unit_set, (size, f"layer {names[k]!r} {verb} it"))
        if known[0] != size:
            raise GraphStructureError(
                f"layer {names[k]!r} {verb} unit set {unit_set} with {size} units, but it has "
                f"{known[0]} ({known[1]})")

    written: set[int] = set()
    for k in range(n):
        if r[k] != r[0] and r[k] not in written:
            raise GraphStructureError(
                f"layer {names[k]!r} reads unit set {r[k]} before any layer writes it (only "
                f"the network input, set {r[0]} read by the first layer, is read first; "
                "layers must be in forward order)")
        fits(r[k], n_in[k], k, "reads")
        fits(w[k], n_out[k], k, "writes")
        written.add(w[k])
    for unit_set in sorted(written - set(r) - {w[-1]}):
        writer = names[w.index(unit_set)]
        raise GraphStructureError(
            f"unit set {unit_set} (written by layer {writer!r}) is read by no layer and is "
            f"not the network's output (the set the last layer, {names[-1]!r}, writes)")
    number: dict[int, int] = {}
    for value in (v for pair in zip(r, w) for v in pair):
        number.setdefault(value, len(number))
    order = sorted(number, key=number.get)
    return Wiring(tuple(number[v] for v in r), tuple(number[v] for v in w),
                  tuple(sizes[v][0] for v in order))


def _check_input_shape(shape: tuple[int, ...], n_in: int, geo: LayerGeometry) -> None:
    """The input shape must hold the first layer's inputs (channels first for a conv)."""
    if geo.kind == "conv":
        if not shape or shape[0] != n_in:
            raise GraphStructureError(
                f"input shape {shape} does not start with the {n_in} input channels of the "
                "first (conv) layer")
    elif geo.kind == "flatten":
        if math.prod(shape) != n_in * geo.positions:
            raise GraphStructureError(
                f"input shape {shape} does not hold {n_in} channels of "
                f"{'x'.join(map(str, geo.kernel_shape))}")
    elif math.prod(shape) != n_in:
        raise GraphStructureError(f"input shape {shape} does not hold {n_in} inputs")


_LINEAR = LayerGeometry()
