"""topo's own snapshot format: one safetensors file per network state.

Layout (format ``topo.snapshot``). For layer ``k`` (in forward order):

- ``layer.{k}.indptr`` (int64, ``n_out + 1``) and ``layer.{k}.indices`` (int32) give the
  connections in CSR form, rows = output units, columns = the matrix columns (input units,
  or for a layer with several positions per unit ``in_unit * positions + position``);
- ``layer.{k}.weight`` (float32, or float64 when float32 would round a value) holds one
  weight per connection, in the same order; a connection may weigh exactly 0;
- ``layer.{k}.bias`` (optional) the bias vector.

The safetensors header's ``__metadata__`` holds ``format``, ``version``, ``shapes`` (the
matrix shapes ``[[n_out, n_in * positions], ...]``), ``names``, ``input_shape`` and
``metadata`` (JSON strings).

Version 1 is every chain of linear layers (every MLP): nothing else is written, so its bytes
are exactly those of topo 0.1's snapshots. Version 2 is written only when some layer is not
linear or the wiring is not a chain, and adds two JSON strings:

- ``geometry``: per layer ``{"kind", "kernel_shape", "groups"}`` and, when known,
  ``"stride"``, ``"padding"``, ``"dilation"`` (:meth:`topo.graph.LayerGeometry.to_dict`);
- ``wiring``: ``{"reads": [...], "writes": [...], "independent": bool}``, the unit set every
  layer reads and writes (:class:`topo.graph.Wiring`; set sizes follow from the layers).

Readers accept both versions.

Storing the connections sparsely keeps a snapshot proportional to the number of connections
(a 1%-dense layer is a hundred times smaller than its dense weight + mask pair), and a
safetensors file never holds executable content.
"""

from __future__ import annotations

import json
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from topo.errors import ConfigError, GraphStructureError, UnreadableFileError
from topo.io.atomic import atomic_write_bytes
from topo.layer_arrays import LayerArrays

if TYPE_CHECKING:
    from topo.graph import LayeredGraph

__all__ = ["SNAPSHOT_FORMAT", "SNAPSHOT_VERSION", "SNAPSHOT_VERSIONS", "SnapshotContent",
           "save_snapshot", "write_snapshot", "read_snapshot", "is_topo_snapshot_header"]

SNAPSHOT_FORMAT = "topo.snapshot"
SNAPSHOT_VERSION = 2
#: Versions :func:`read_snapshot` reads; MLPs are written as version 1.
SNAPSHOT_VERSIONS = ("1", "2")


@dataclass
class SnapshotContent:
    """What a snapshot stores, as plain arrays (no SciPy, no LayeredGraph needed).

    Training writes its snapshots from this (:meth:`topo.train.model.SparseMLP.
    snapshot_content`), so that the epoch-0 snapshot is written before SciPy is imported;
    :func:`save_snapshot` writes a LayeredGraph through the same fields.

    Attributes
    ----------
    layers
        Each layer's connections (:class:`~topo.layer_arrays.LayerArrays`), forward order.
    biases
        Each layer's bias, float64 of shape ``(n_out,)``, or None.
    names, input_shape, metadata
        As :class:`~topo.graph.LayeredGraph` has them (``metadata`` values JSON-serialisable;
        its ``source`` and ``format`` are not stored).
    geometry, wiring
        For a network that is not a chain of linear layers: per layer
        :meth:`topo.graph.LayerGeometry.to_dict` and :meth:`topo.graph.Wiring.to_dict`;
        None for a chain of linear layers (written as version 1).
    """

    layers: list[LayerArrays]
    biases: list[np.ndarray | None]
    names: list[str]
    input_shape: tuple[int, ...] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    geometry: list[dict[str, Any]] | None = None
    wiring: dict[str, Any] | None = None

    @classmethod
    def of_graph(cls, graph: LayeredGraph) -> SnapshotContent:
        """The content of ``graph`` (arrays shared, not copied)."""
        plain = graph.is_linear and graph.is_chain
        return cls([LayerArrays.of_matrix(w) for w in graph.layers], list(graph.biases),
                   list(graph.names), tuple(graph.input_shape) if graph.input_shape else None,
                   dict(graph.metadata),
                   None if plain else [g.to_dict() for g in graph.geometry],
                   None if plain else graph.wiring.to_dict())


def save_snapshot(graph: LayeredGraph, path: str | Path) -> Path:
    """Write ``graph`` to ``path`` as a topo snapshot, atomically.

    Parameters
    ----------
    graph
        The network to store; its connections, weights, biases, names, input shape,
        metadata (values must be JSON-serialisable), layer geometry and wiring are kept
        (version 1 for a chain of linear layers, else version 2).
    path
        Target file, conventionally ending in ``.safetensors``. Written to a temporary file
        beside it and renamed, so no reader ever sees half a snapshot.

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ConfigError
        Metadata that cannot be stored as JSON.
    """
    return write_snapshot(SnapshotContent.of_graph(graph), path)


def write_snapshot(content: SnapshotContent, path: str | Path) -> Path:
    """Write a snapshot's content to ``path``, atomically (the bytes :func:`save_snapshot`
    writes for the graph with that content).

    Raises
    ------
    ConfigError
        Metadata that cannot be stored as JSON.
    """
    return atomic_write_bytes(path, snapshot_bytes(content))


def snapshot_bytes(content: SnapshotContent) -> bytes:
    """The bytes of a snapshot file holding ``content``."""
    tensors: dict[str, np.ndarray] = {}
    for k, w in enumerate(content.layers):
        data = w.data
        as32 = data.astype(np.float32)
        lossless = np.array_equal(as32.astype(np.float64), data, equal_nan=True)
        tensors[f"layer.{k}.indptr"] = np.ascontiguousarray(w.indptr, dtype=np.int64)
        tensors[f"layer.{k}.indices"] = np.ascontiguousarray(w.indices, dtype=np.int32)
        tensors[f"layer.{k}.weight"] = np.ascontiguousarray(as32 if lossless else data)
        b = content.biases[k]
        if b is not None:
            b32 = b.astype(np.float32)
            exact = np.array_equal(b32.astype(np.float64), b, equal_nan=True)
            tensors[f"layer.{k}.bias"] = np.ascontiguousarray(b32 if exact else b)
    meta = dict(content.metadata)
    meta.pop("source", None)
    meta.pop("format", None)
    plain = content.geometry is None and content.wiring is None
    header = {
        "format": SNAPSHOT_FORMAT,
        "version": "1" if plain else str(SNAPSHOT_VERSION),
        "shapes": json.dumps([list(w.shape) for w in content.layers]),
        "names": json.dumps(list(content.names)),
        "input_shape": json.dumps(list(content.input_shape) if content.input_shape else None),
        "metadata": _dump_metadata(meta),
    }
    if not plain:
        header["geometry"] = json.dumps(content.geometry)
        header["wiring"] = json.dumps(content.wiring)
    return safetensors_bytes(tensors, header)


def safetensors_bytes(tensors: dict[str, np.ndarray], metadata: dict[str, str]) -> bytes:
    """Serialise arrays in the safetensors layout, deterministically.

    The layout is an 8-byte little-endian header length, a JSON header (per tensor its
    ``dtype``, ``shape`` and ``data_offsets``; ``__metadata__`` a str-to-str mapping), padded
    with spaces to a multiple of 8 bytes, then the raw little-endian tensor bytes. Keys are
    written sorted and tensors stored in name order, so the same content always gives the same
    bytes (the safetensors library orders its header differently in every process).
    """
    header: dict[str, object] = {"__metadata__": dict(sorted(metadata.items()))}
    chunks, offset = [], 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        code = _SAFETENSORS_DTYPES.get(arr.dtype.newbyteorder("<").str.lstrip("<|"))
        if code is None:
            raise TypeError(f"tensor {name!r}: dtype {arr.dtype} cannot be stored")
        data = arr.astype(arr.dtype.newbyteorder("<"), copy=False).tobytes()
        header[name] = {"dtype": code, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(data)]}
        chunks.append(data)
        offset += len(data)
    raw = json.dumps(header, separators=(",", ":"), sort_keys=True).encode("utf-8")
    raw += b" " * (-len(raw) % 8)
    return struct.pack("<Q", len(raw)) + raw + b"".join(chunks)


_SAFETENSORS_DTYPES = {
    "f8": "F64", "f4": "F32", "f2": "F16", "i8": "I64", "i4": "I32", "i2": "I16", "i1": "I8",
    "u8": "U64", "u4": "U32", "u2": "U16", "u1": "U8", "b1": "BOOL",
}


def is_topo_snapshot_header(metadata: dict[str, str] | None) -> bool:
    """True when a safetensors ``__metadata__`` dict marks a topo snapshot."""
    return bool(metadata) and metadata.get("format") == SNAPSHOT_FORMAT


def read_snapshot(path: Path, header: dict[str, str], tensors: dict[str, np.ndarray]
                  ) -> LayeredGraph:
    """Build the LayeredGraph of a topo snapshot from its header and tensors."""
    import scipy.sparse as sp

    from topo.graph import LayeredGraph
    version = header.get("version")
    if version not in SNAPSHOT_VERSIONS:
        raise UnreadableFileError(
            f"{path}: topo snapshot version {version!r} is not supported (this topo reads "
            f"versions {', '.join(SNAPSHOT_VERSIONS)})")
    try:
        shapes = json.loads(header["shapes"])
        names = json.loads(header.get("names", "null"))
        input_shape = json.loads(header.get("input_shape", "null"))
        metadata = json.loads(header.get("metadata", "{}"))
        structure = _read_structure(header) if version == "2" else {}
    except (KeyError, json.JSONDecodeError, GraphStructureError) as exc:
        raise UnreadableFileError(f"{path}: damaged topo snapshot header ({exc})") from None
    layers, biases = [], []
    for k, shape in enumerate(shapes):
        try:
            indptr = tensors[f"layer.{k}.indptr"]
            indices = tensors[f"layer.{k}.indices"]
            weight = tensors[f"layer.{k}.weight"]
        except KeyError as exc:
            raise UnreadableFileError(f"{path}: topo snapshot lacks tensor {exc}") from None
        n_out, n_in = (int(s) for s in shape)
        if (indptr.shape != (n_out + 1,) or indices.shape != weight.shape
                or indptr[-1] != indices.size or (indices.size and (
                    indices.min() < 0 or indices.max() >= n_in))
                or np.any(np.diff(indptr) < 0)):
            raise UnreadableFileError(
                f"{path}: layer {k} of the topo snapshot is inconsistent with its shape "
                f"{n_out}x{n_in}")
        layers.append(sp.csr_matrix(
            (weight.astype(np.float64), indices.astype(np.int32), indptr.astype(np.int64)),
            shape=(n_out, n_in)))
        biases.append(tensors.get(f"layer.{k}.bias"))
    metadata.update(format=SNAPSHOT_FORMAT, source=str(path))
    try:
        return LayeredGraph(layers, biases=biases, names=names, input_shape=input_shape,
                            metadata=metadata, **structure)
    except GraphStructureError as exc:
        raise GraphStructureError(f"{path}: {exc}") from None


def _read_structure(header: dict[str, str]) -> dict[str, Any]:
    """Constructor arguments of a version 2 header's geometry and wiring."""
    from topo.graph import LayerGeometry

    geometry = json.loads(header["geometry"])
    wiring = json.loads(header["wiring"])
    if not isinstance(geometry, list) or not isinstance(wiring, dict):
        raise GraphStructureError("geometry must be a list and wiring a mapping")
    out: dict[str, Any] = {"geometry": [LayerGeometry.from_dict(g) for g in geometry]}
    if wiring.get("independent"):
        out["independent"] = True
    else:
        reads, writes = wiring.get("reads"), wiring.get("writes")
        if not isinstance(reads, list) or not isinstance(writes, list):
            raise GraphStructureError("wiring needs the lists 'reads' and 'writes'")
        out["reads"], out["writes"] = reads, writes
    return out


def _dump_metadata(meta: dict[str, Any]) -> str:
    try:
        return json.dumps(meta, default=_json_default)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"snapshot metadata cannot be stored as JSON: {exc}") from None


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"metadata value {value!r} is not JSON-serialisable")
