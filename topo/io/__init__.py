"""Reading and writing networks: one front door, :func:`load`.

:func:`load` looks at what a path holds (never just at its extension) and picks the reader:

========================  ====================================================================
format name               what it is
========================  ====================================================================
``topo.snapshot``         a safetensors file written by :func:`save_snapshot` / ``topo train``
``safetensors``           safetensors of a PyTorch model (key rules as for state_dicts)
``pytorch``               a ``torch.save`` state_dict (``.pt``/``.pth``), ``weights_only=True``
``nnstd-npz``             a folder of ``weight_l{k}.npz`` (the NNSTD reference layout)
``topo.run``              a run directory: its last snapshot
========================  ====================================================================

Nothing is ever executed from a file: safetensors and ``.npz`` (``allow_pickle=False``) hold
plain arrays, and PyTorch pickles are opened with ``weights_only=True`` only.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

from topo.errors import UnreadableFileError
from topo.graph import LayeredGraph
from topo.io.export import export_graph
from topo.io.nnstd_folder import is_nnstd_folder, read_nnstd_folder
from topo.io.run import is_run_dir, natural_key, snapshot_paths
from topo.io.sequence import GraphSequence, read_sequence
from topo.io.snapshot import is_topo_snapshot_header, read_snapshot, save_snapshot

__all__ = ["load", "save_snapshot", "detect_format", "snapshot_paths", "read_sequence",
           "GraphSequence", "export_graph"]

_ZIP_MAGIC = b"PK\x03\x04"


def load(path: str | Path) -> LayeredGraph:
    """Read a network from ``path``, whatever topo-readable format it is in.

    Parameters
    ----------
    path
        A topo snapshot, a safetensors file of a PyTorch model, a PyTorch state_dict file,
        an NNSTD reference folder, or a run directory (its last snapshot is read).

    Returns
    -------
    LayeredGraph
        With ``metadata["format"]`` naming the reader and ``metadata["source"]`` the path.

    Raises
    ------
    UnreadableFileError
        Missing path, a folder with nothing readable, a truncated or corrupt file.
    UnsafeFileError
        A pickle whose loading would need more than tensors.
    GraphStructureError
        Layers that are not 2-D or whose widths disagree.
    """
    path = Path(path)
    fmt = detect_format(path)
    if fmt == "topo.run":
        snaps = snapshot_paths(path)
        graph = load(snaps[-1])
        graph.metadata.update(format="topo.run", run=str(path), snapshot=str(snaps[-1]))
        return graph
    if fmt == "nnstd-npz":
        return read_nnstd_folder(path)
    if fmt in ("topo.snapshot", "safetensors"):
        return _read_safetensors(path)
    from topo.io.state_dict import read_torch_file

    return read_torch_file(path)


def detect_format(path: str | Path) -> str:
    """Name of the format at ``path`` (see the module table), by looking at its content.

    Raises
    ------
    UnreadableFileError
        The path is missing or holds nothing topo can read.
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableFileError(f"{path}: no such file or folder")
    if path.is_dir():
        if is_run_dir(path):
            return "topo.run"
        if is_nnstd_folder(path):
            return "nnstd-npz"
        raise UnreadableFileError(
            f"{path}: nothing readable in this folder (expected a topo run with run.json, "
            "or an NNSTD folder with weight_l0.npz)")
    try:
        with open(path, "rb") as fh:
            head = fh.read(9)
    except OSError as exc:
        raise UnreadableFileError(f"{path}: cannot read ({exc.strerror})") from None
    if len(head) >= 9 and head[8:9] == b"{":
        header = _safetensors_header(path)
        if header and header.get("format") == "topo.train-checkpoint":
            raise UnreadableFileError(
                f"{path}: a topo training checkpoint (what --resume reads), not a snapshot; "
                "read the run folder or a file in its snapshots/ instead")
        return "topo.snapshot" if is_topo_snapshot_header(header) else "safetensors"
    if head.startswith(_ZIP_MAGIC):
        try:
            with zipfile.ZipFile(path) as zf:
                names = zf.namelist()
        except (zipfile.BadZipFile, OSError, EOFError):
            raise UnreadableFileError(
                f"{path}: damaged zip archive (truncated or corrupt?)") from None
        if any(n.endswith("data.pkl") for n in names):
            return "pytorch"
        if any(n.endswith(".npy") for n in names):
            raise UnreadableFileError(
                f"{path}: a lone .npz file; pass the folder holding weight_l0.npz ... "
                "(NNSTD layout) instead")
        raise UnreadableFileError(f"{path}: a zip archive that is not a PyTorch file")
    if head[:1] == b"\x80":
        return "pytorch"  # legacy torch.save / plain pickle, opened with weights_only=True
    if not head:
        raise UnreadableFileError(f"{path}: empty file")
    raise UnreadableFileError(
        f"{path}: not a format topo reads (topo snapshot, safetensors, PyTorch state_dict, "
        "NNSTD folder or run directory)")


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


def _read_safetensors(path: Path) -> LayeredGraph:
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="numpy") as fh:
            header = fh.metadata()
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        if "bf16" in str(exc).lower() or "bfloat16" in str(exc).lower():
            tensors, header = _read_safetensors_with_torch(path)
        else:
            raise UnreadableFileError(
                f"{path}: damaged safetensors file (truncated or corrupt?): "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if is_topo_snapshot_header(header):
        return read_snapshot(path, header, tensors)
    from topo.io.state_dict import graph_from_state_dict

    # safetensors does not keep the order in which tensors were saved: order the keys
    # naturally (layers.2 before layers.10), which is the module order of common models.
    ordered = {k: tensors[k] for k in sorted(tensors, key=natural_key)}
    return graph_from_state_dict(ordered, path, "safetensors", order_known=False)


def _read_safetensors_with_torch(path: Path):
    import numpy as np
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as fh:
        header = fh.metadata()
        tensors = {k: fh.get_tensor(k).float().numpy().astype(np.float32) for k in fh.keys()}  # noqa: SIM118
    return tensors, header
