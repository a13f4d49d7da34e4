"""Reading and writing networks: one front door, :func:`load`.

:func:`load` looks at what a path holds (never just at its extension) and picks the reader;
every reader of named tensors goes through one pipeline (:mod:`topo.io.pipeline`: extract ->
resolve the layer chain -> build), so the rules for layer order, orientation and what is
skipped are the same for every format.

==================  ============================================  ==========================
format name         what it is                                    read with
==================  ============================================  ==========================
``topo.snapshot``   a topo snapshot (:func:`save_snapshot`)       safetensors
``topo.run``        a run directory: its last snapshot            safetensors
``safetensors``     safetensors of another program's model        safetensors
``pytorch``         ``torch.save`` state_dicts, checkpoint        torch (``weights_only``),
                    dicts, Lightning ``.ckpt``                    else topo's unpickler
``pytorch-module``  a whole pickled ``nn.Module``                 topo's unpickler
``pickle``          a plain pickle of arrays                      topo's unpickler
``keras-hdf5``      Keras HDF5 (``.h5``; HDF5 ``.keras``)         h5py
``keras``           Keras 3 ``.keras`` zip                        h5py
``onnx``            ONNX model; ``onnx-gzip``: gzip of one         onnx
``numpy-npz``       ``.npz`` of several arrays                    numpy
``numpy-npy``       a folder of per-layer ``.npy`` (``masks/``)   numpy
``nnstd-npz``       a folder of ``weight_l{k}.npz`` (NNSTD)        scipy
==================  ============================================  ==========================

Nothing is ever executed from a file: pickles are opened with ``torch.load(weights_only=True)``
or topo's own unpickler that builds only tensors, arrays and inert stand-ins; numpy files
with ``allow_pickle=False``. Library warnings never reach stderr; every problem is one
:class:`~topo.errors.TopoError` naming the file.
"""

from __future__ import annotations

import json
import struct
import warnings
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topo.errors import UnreadableFileError
from topo.io.limits import ZIP_ERRORS
from topo.io.run import is_run_dir, snapshot_paths
from topo.io.snapshot import is_topo_snapshot_header, save_snapshot

if TYPE_CHECKING:
    from topo.graph import LayeredGraph
    from topo.io.export import export_graph
    from topo.io.fx import from_module
    from topo.io.sequence import GraphSequence, read_sequence

__all__ = ["load", "save_snapshot", "detect_format", "snapshot_paths", "FORMATS",
           "read_sequence", "GraphSequence", "export_graph", "from_module"]

FORMATS = ("topo.snapshot", "topo.run", "safetensors", "pytorch", "pytorch-module", "pickle",
           "keras-hdf5", "keras", "onnx", "onnx-gzip", "numpy-npz", "numpy-npy", "nnstd-npz")
"""Format names :func:`load` writes into ``graph.metadata["format"]``."""

_ZIP_MAGIC = b"PK\x03\x04"
_GZIP_MAGIC = b"\x1f\x8b"
_HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_NPY_MAGIC = b"\x93NUMPY"


def __getattr__(name: str) -> Any:
    # imported when first asked for: from_module needs torch.fx, the others the graph model
    # (SciPy), which writing a training run's files does not need
    if name == "from_module":
        from topo.io.fx import from_module

        return from_module
    if name == "export_graph":
        from topo.io.export import export_graph

        return export_graph
    if name in ("read_sequence", "GraphSequence"):
        from topo.io import sequence

        return getattr(sequence, name)
    raise AttributeError(f"module 'topo.io' has no attribute {name!r}")


def load(path: str | Path, *, key: str | None = None, epoch: int | None = None,
         level: int | None = None, best: bool = False,
         dense_only: bool = False) -> LayeredGraph:
    """Read a network from ``path``, whatever topo-readable format it is in.

    Parameters
    ----------
    path
        A file or folder of any format in the module table, or a folder of checkpoints (as
        :func:`read_sequence` lists it): a run directory or a folder of checkpoints is read
        as one of its snapshots, the last unless ``epoch``, ``level`` or ``best`` choose
        another (:func:`topo.io.sequence.choose_snapshot`).
    key
        For PyTorch and pickle checkpoints: the entry holding the network, e.g. ``"ema"``
        or ``"model/state_dict"`` (``/`` goes one level deeper). By default the network is
        found by the rules of :mod:`topo.io.torch_file`.
    epoch, level, best
        Which snapshot of a run or folder to read (see above); refused for one network.
    dense_only
        Read the fully-connected layers alone, as a chain, with the convolutions listed as
        skipped (the reading of topo 0.1); by default a network with convolutions is read
        whole, with its wiring (:mod:`topo.io.pipeline`).

    Returns
    -------
    LayeredGraph
        With ``metadata["format"]`` naming the reader, ``metadata["source"]`` the path,
        ``metadata["skipped"]`` what was not read and why (``[{"name", "shape", "why"}]``),
        ``metadata["reading"]`` how the layer order, orientation and wiring were found, and
        what the file says about itself (``epoch``, ``global_step``, versions, ...). Read from
        a run or a folder, also ``metadata["snapshot"]`` (the file read),
        ``"snapshot_choice"`` (which one it is and why) and ``"snapshot_note"`` (e.g. that an
        early-stopped run's best snapshot is another one).

    Raises
    ------
    UnreadableFileError
        Missing path, nothing readable, a truncated or corrupt file, no layers.
    UnsafeFileError
        A pickle that asks to run code (nothing is run).
    GraphStructureError
        Layers whose widths do not chain, whose order or orientation the file does not
        determine, or whose module names fit a family the shapes disagree with (the
        candidates are named).
    """
    from topo.io.sequence import choose_snapshot

    path = Path(path)
    choice = choose_snapshot(path, epoch=epoch, level=level, best=best)
    if choice is not None:
        graph = load(choice.path, key=key, dense_only=dense_only)
        if is_run_dir(path):
            graph.metadata.update(format="topo.run", run=str(path))
        else:
            graph.metadata["folder"] = str(path)
        graph.metadata.update(snapshot=str(choice.path), snapshot_choice=choice.why)
        if choice.note:
            graph.metadata["snapshot_note"] = choice.note
        return graph
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return _load(path, key, dense_only)


def _load(path: Path, key: str | None, dense_only: bool = False) -> LayeredGraph:
    from functools import partial

    from topo.io.families import build_with_family

    build_graph = partial(build_with_family, dense_only=dense_only)

    fmt = detect_format(path)
    if key is not None and fmt != "pytorch":
        raise UnreadableFileError(
            f"{path}: key={key!r} chooses an entry of a PyTorch or pickle checkpoint; this "
            f"{fmt} file has no entries to choose from")
    if fmt == "nnstd-npz":
        from topo.io.nnstd_folder import read_nnstd_folder

        return read_nnstd_folder(path)
    if fmt in ("topo.snapshot", "safetensors"):
        from topo.io.safetensors_file import (
            extract_safetensors,
            is_snapshot,
            read_header,
            read_tensors,
        )

        header = read_header(path)
        tensors = read_tensors(path, header)
        if is_snapshot(header):
            from topo.io.snapshot import read_snapshot

            return read_snapshot(path, header["__metadata__"], tensors)
        return build_graph(extract_safetensors(path, header, tensors))
    if fmt == "pytorch":
        from topo.io.torch_file import read_torch_file

        return build_graph(read_torch_file(path, key))
    if fmt == "keras-hdf5":
        from topo.io.keras import read_keras_hdf5

        return build_graph(read_keras_hdf5(path))
    if fmt == "keras":
        from topo.io.keras import read_keras_zip

        return build_graph(read_keras_zip(path))
    if fmt in ("onnx", "onnx-gzip"):
        from topo.io.limits import gunzip_bounded, read_file_bounded
        from topo.io.onnx_model import read_onnx

        data = (gunzip_bounded(path, "gzip of an ONNX model") if fmt == "onnx-gzip"
                else read_file_bounded(path, "ONNX model"))
        return build_graph(read_onnx(path, data, fmt, network=not dense_only))
    if fmt == "numpy-npz":
        from topo.io.numpy_files import read_npz

        return build_graph(read_npz(path))
    from topo.io.numpy_files import read_npy_folder

    return build_graph(read_npy_folder(path))


def detect_format(path: str | Path) -> str:
    """Name of the format at ``path`` (see :data:`FORMATS`), by looking at its content.

    Raises
    ------
    UnreadableFileError
        The path is missing or holds nothing topo can read (the message says what it is).
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableFileError(f"{path}: no such file or folder")
    if path.is_dir():
        from topo.io.nnstd_folder import is_nnstd_folder
        from topo.io.numpy_files import is_npy_folder

        if is_run_dir(path):
            return "topo.run"
        if is_nnstd_folder(path):
            return "nnstd-npz"
        if is_npy_folder(path):
            return "numpy-npy"
        raise UnreadableFileError(
            f"{path}: nothing readable in this folder (expected a topo run with run.json, "
            "an NNSTD folder with weight_l0.npz, per-layer .npy files, or checkpoint files)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot read ({exc.strerror})") from None
    if not head:
        raise UnreadableFileError(f"{path}: empty file")
    if len(head) >= 9 and head[8:9] == b"{":
        header = _safetensors_header(path)
        if header and header.get("format") == "topo.train-checkpoint":
            raise UnreadableFileError(
                f"{path}: a topo training checkpoint (what --resume reads), not a snapshot; "
                "read the run folder or a file in its snapshots/ instead")
        return "topo.snapshot" if is_topo_snapshot_header(header) else "safetensors"
    if head.startswith(_ZIP_MAGIC):
        return _zip_format(path)
    if head.startswith(_HDF5_MAGIC):
        return "keras-hdf5"
    if head.startswith(_GZIP_MAGIC):
        return _gzip_format(path)
    if head[:1] == b"\x80":
        return "pytorch"  # legacy torch.save or a plain pickle: read without running code
    if head.startswith(_NPY_MAGIC):
        raise UnreadableFileError(
            f"{path}: a lone .npy array; pass the folder of per-layer .npy files (one array "
            "cannot tell its orientation or its place in a network)")
    if head[:1] == b"\x08":
        return "onnx"  # protobuf field 1 (ir_version): an ONNX ModelProto
    raise UnreadableFileError(
        f"{path}: not a format topo reads (topo snapshot, safetensors, PyTorch, Keras HDF5 or "
        ".keras, ONNX, numpy .npz/.npy, NNSTD folder or run directory)")


def _zip_format(path: Path) -> str:
    try:
        with zipfile.ZipFile(path) as zf:
            names = zf.namelist()
    except ZIP_ERRORS:
        raise UnreadableFileError(
            f"{path}: damaged zip archive (truncated or corrupt?)") from None
    if any(n.endswith("data.pkl") for n in names):
        return "pytorch"
    if "config.json" in names and "model.weights.h5" in names:
        return "keras"
    if any(n.endswith(".npy") for n in names):
        return "numpy-npz"
    raise UnreadableFileError(
        f"{path}: a zip archive that is neither a PyTorch file, a .keras model nor an .npz "
        f"(it holds {', '.join(names[:5]) or 'nothing'})")


def _gzip_format(path: Path) -> str:
    from topo.io.limits import gunzip_bounded

    inner = gunzip_bounded(path)
    if inner[:1] == b"\x08":
        return "onnx-gzip"
    kind = ("a PyTorch file" if inner[:1] == b"\x80" or inner.startswith(_ZIP_MAGIC) else
            "an HDF5 file" if inner.startswith(_HDF5_MAGIC) else
            "a numpy array" if inner.startswith(_NPY_MAGIC) else "unknown content")
    raise UnreadableFileError(
        f"{path}: gzip of {kind}; topo reads gzip only around ONNX models (decompress it "
        "first)")


def _safetensors_header(path: Path) -> dict[str, str] | None:
    """The ``__metadata__`` of a safetensors file, after checking its header is sound."""
    size = path.stat().st_size
    with open(path, "rb") as fh:
        (n,) = struct.unpack("<Q", fh.read(8))
        if n > size - 8 or n > 100_000_000:
            raise UnreadableFileError(
                f"{path}: truncated safetensors file (header says {n} bytes, file has {size})")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnreadableFileError(f"{path}: damaged safetensors header") from None
    if not isinstance(header, dict):
        raise UnreadableFileError(f"{path}: damaged safetensors header")
    meta = header.get("__metadata__")
    return meta if isinstance(meta, dict) else None

