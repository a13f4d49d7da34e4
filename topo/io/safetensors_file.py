"""Safetensors files: topo snapshots and the weights of other programs' models.

The header is checked before any tensor is read: every tensor's declared shape and dtype must
take exactly the bytes its offsets give, inside the file, so a header declaring a huge tensor
is refused without allocating it.

A file written by ``safetensors.torch.save_model`` leaves out tensors that share memory with
another (tied weights) and records each one left out in the header metadata as
``{"<removed name>": "<kept name>"}``; those aliases are restored, so the tied layer is read.
Safetensors stores tensors sorted by name, not in module order: the chain is resolved from the
numbers in the names and the shapes (:mod:`topo.io.pipeline`). The orientation is PyTorch's
``(out, in)`` for ``*.weight`` tensors unless only ``(in, out)`` fits the names, shapes and
biases (files from other frameworks); freely named arrays have it inferred.
"""

from __future__ import annotations

import json
import math
import struct
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import UnreadableFileError
from topo.io.limits import human_bytes
from topo.io.pipeline import OUT_IN, Extraction
from topo.io.snapshot import is_topo_snapshot_header
from topo.io.state_dict import extract_state_dict

__all__ = ["read_header", "read_tensors", "extract_safetensors"]

_ITEMSIZE = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2,
             "I8": 1, "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1,
             "F8_E5M2": 1}
_MAX_HEADER = 100_000_000


def read_header(path: Path) -> dict[str, Any]:
    """The parsed JSON header of a safetensors file, checked against the file's size.

    Raises
    ------
    UnreadableFileError
        Truncated file, damaged JSON, or a tensor whose declared shape, dtype and offsets
        disagree or reach past the end of the file.
    """
    size = path.stat().st_size
    with open(path, "rb") as fh:
        raw_n = fh.read(8)
        if len(raw_n) < 8:
            raise UnreadableFileError(f"{path}: truncated safetensors file ({size} bytes)")
        (n,) = struct.unpack("<Q", raw_n)
        if n > size - 8 or n > _MAX_HEADER:
            raise UnreadableFileError(
                f"{path}: truncated safetensors file (header says {n} bytes, file has {size})")
        raw = fh.read(n)
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise UnreadableFileError(f"{path}: damaged safetensors header") from None
    if not isinstance(header, dict):
        raise UnreadableFileError(f"{path}: damaged safetensors header")
    data_size = size - 8 - n
    for name, info in header.items():
        if name == "__metadata__":
            continue
        _check_entry(path, name, info, data_size)
    return header


def read_tensors(path: Path, header: dict[str, Any]) -> dict[str, np.ndarray]:
    """Every tensor of a checked safetensors file as numpy arrays (bfloat16 as float32)."""
    from safetensors import SafetensorError, safe_open

    names = [k for k in header if k != "__metadata__"]
    special = {k for k in names if header[k]["dtype"] in ("BF16", "F8_E4M3", "F8_E5M2")}
    tensors: dict[str, np.ndarray] = {}
    try:
        if len(special) < len(names):
            with safe_open(str(path), framework="numpy") as fh:
                for k in names:
                    if k not in special:
                        tensors[k] = fh.get_tensor(k)
    except (SafetensorError, OSError, ValueError, TypeError) as exc:
        raise UnreadableFileError(
            f"{path}: damaged safetensors file (truncated or corrupt?): "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
    if special:
        (n,) = struct.unpack("<Q", path.read_bytes()[:8])
        with open(path, "rb") as fh:
            for k in special:
                info = header[k]
                if info["dtype"] != "BF16":
                    raise UnreadableFileError(
                        f"{path}: tensor {k!r} has dtype {info['dtype']}, which topo does not "
                        "read")
                start, end = info["data_offsets"]
                fh.seek(8 + n + start)
                raw = np.frombuffer(fh.read(end - start), dtype="<u2")
                tensors[k] = (raw.astype(np.uint32) << 16).view(np.float32).reshape(
                    info["shape"])
    return {k: tensors[k] for k in names}


def extract_safetensors(path: Path, header: dict[str, Any],
                        tensors: dict[str, np.ndarray]) -> Extraction:
    """Layers of a (non-topo) safetensors file, with ``save_model`` aliases restored."""
    meta = header.get("__metadata__") or {}
    notes = []
    if isinstance(meta, dict):
        for removed, kept in meta.items():
            if removed not in tensors and isinstance(kept, str) and kept in tensors:
                tensors[removed] = tensors[kept]
                notes.append(f"{removed} is stored as an alias of {kept} (a tied weight "
                             "recorded by safetensors' save_model)")
    ex = extract_state_dict(tensors, path, "safetensors", order="none", orientation=OUT_IN)
    ex.notes.extend(notes)
    return ex


def is_snapshot(header: dict[str, Any]) -> bool:
    meta = header.get("__metadata__")
    return is_topo_snapshot_header(meta if isinstance(meta, dict) else None)


def _check_entry(path: Path, name: str, info: Any, data_size: int) -> None:
    try:
        dtype = info["dtype"]
        shape = [int(s) for s in info["shape"]]
        start, end = (int(x) for x in info["data_offsets"])
    except (KeyError, TypeError, ValueError):
        raise UnreadableFileError(
            f"{path}: damaged safetensors header (entry {name!r})") from None
    if dtype not in _ITEMSIZE or any(s < 0 for s in shape):
        raise UnreadableFileError(
            f"{path}: tensor {name!r} has dtype {dtype!r} and shape {shape}, which topo does "
            "not read")
    nbytes = math.prod(shape) * _ITEMSIZE[dtype]
    if not 0 <= start <= end <= data_size or end - start != nbytes:
        raise UnreadableFileError(
            f"{path}: tensor {name!r} declares shape {shape} ({human_bytes(nbytes)}) but the "
            f"file holds {human_bytes(max(min(end, data_size) - max(start, 0), 0))} for it "
            "(truncated or corrupt "
            "header); not read")
