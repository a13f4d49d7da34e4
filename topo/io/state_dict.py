"""Readers for PyTorch weights: state_dict pickles (``.pt``/``.pth``) and safetensors files.

Key rules (shared by both containers), in the order the keys appear:

- a 2-D ``<prefix>.weight`` tensor is a layer with its non-zero entries as connections
  (the state after ``torch.nn.utils.prune.remove``);
- a ``<prefix>.weight_orig`` + ``<prefix>.weight_mask`` pair (``torch.nn.utils.prune``) is a
  layer whose connections are the mask's non-zeros, so a kept weight equal to 0 still counts;
  a ``<prefix>.weight`` + ``<prefix>.mask`` pair is read the same way;
- ``<prefix>.bias`` (or ``bias_orig`` times ``bias_mask``) is the layer's bias;
- 1-D ``*.weight`` tensors (normalisation layers) are not layers; a ``*.weight`` with more
  than two dimensions (a convolution) is an error naming the key.

``.pt`` files are opened only with ``torch.load(..., weights_only=True)``: a pickle that needs
anything beyond tensors and plain containers (a whole ``nn.Module``, custom classes, code) is
refused. There is no fallback to unsafe loading.
"""

from __future__ import annotations

import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import GraphStructureError, UnreadableFileError, UnsafeFileError
from topo.graph import LayeredGraph

__all__ = ["read_torch_file", "graph_from_state_dict"]

_NESTED_KEYS = ("state_dict", "model_state_dict", "model", "net", "network", "weights")


def read_torch_file(path: Path) -> LayeredGraph:
    """Read a PyTorch state_dict saved with ``torch.save`` (zip or legacy format).

    Raises
    ------
    UnsafeFileError
        The pickle needs globals beyond tensors (it would run code to load).
    UnreadableFileError
        The file is truncated or corrupt, or holds no state_dict.
    """
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        raise UnreadableFileError(f"{path}: reading PyTorch files needs torch installed") from None
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        detail = _unsafe_detail(str(exc))
        raise UnsafeFileError(
            f"{path}: refused to load: the pickle needs {detail} beyond tensors, and topo "
            "never runs code from a file (save model.state_dict() instead of the model)"
        ) from None
    except (RuntimeError, EOFError, ValueError, OSError, UnicodeDecodeError, KeyError,
            AttributeError, TypeError, IndexError) as exc:
        raise UnreadableFileError(
            f"{path}: not a readable PyTorch file (truncated or corrupt?): "
            f"{_first_line(exc)}") from None
    state = _find_state_dict(obj)
    if state is None:
        raise UnreadableFileError(
            f"{path}: holds no state_dict (expected a mapping of names to tensors)")
    arrays = {k: _to_numpy(v) for k, v in state.items() if isinstance(v, torch.Tensor)}
    return graph_from_state_dict(arrays, path, "pytorch")


def graph_from_state_dict(arrays: Mapping[str, Any], path: Path, fmt: str, *,
                          order_known: bool = True) -> LayeredGraph:
    """Build a LayeredGraph from named arrays following the key rules of this module.

    With ``order_known=False`` (safetensors, which stores tensors sorted by name, not in
    module order) the layers are chained by their shapes: a unique chain is used; where
    several orders fit, the natural order of the names is used only when every layer name
    carries its position as a number (``layers.0``, ``fc2``); otherwise the order cannot be
    recovered and an error says so.
    """
    keys = list(arrays)
    layers: list[tuple[str, np.ndarray, np.ndarray | None]] = []
    for key in keys:
        prefix, leaf = _split_key(key)
        if leaf not in ("weight", "weight_orig"):
            continue
        arr = arrays[key]
        if leaf == "weight" and _join(prefix, "weight_orig") in arrays:
            continue
        if arr.ndim < 2:
            continue
        if arr.ndim > 2:
            raise GraphStructureError(
                f"{path}: tensor {key!r} has shape {tuple(arr.shape)}; topo reads "
                "fully-connected (2-D) layers only")
        if leaf == "weight_orig":
            mask = arrays.get(_join(prefix, "weight_mask"))
            if mask is None:
                raise UnreadableFileError(f"{path}: {key!r} has no matching 'weight_mask'")
        else:
            mask = arrays.get(_join(prefix, "mask"))
        layers.append((prefix or key, arr, mask))
    if not layers:
        raise UnreadableFileError(
            f"{path}: no 2-D '*.weight' tensors found ({len(keys)} tensors in the file)")
    if not order_known:
        layers = _order_by_shapes(layers, path)
    biases = []
    for prefix, _, _ in layers:
        b = arrays.get(_join(prefix, "bias"))
        if b is None and _join(prefix, "bias_orig") in arrays:
            b = arrays[_join(prefix, "bias_orig")] * arrays.get(
                _join(prefix, "bias_mask"), np.ones(1))
        if b is not None and b.ndim != 1:
            b = None
        biases.append(b)
    names = [p for p, _, _ in layers]
    weights = [w for _, w, _ in layers]
    masks = [m for _, _, m in layers]
    try:
        if any(m is not None for m in masks):
            masks = [m if m is not None else (w != 0) for w, m in zip(weights, masks)]
            return LayeredGraph(weights, masks=masks, biases=biases, names=names,
                                metadata={"format": fmt, "source": str(path)})
        return LayeredGraph(weights, biases=biases, names=names,
                            metadata={"format": fmt, "source": str(path)})
    except GraphStructureError as exc:
        raise GraphStructureError(f"{path}: {exc}") from None


def _order_by_shapes(layers: list, path: Path) -> list:
    """Layers ordered so that each one's inputs are the previous one's outputs."""
    shapes = [arr.shape for _, arr, _ in layers]
    chains = _find_chains(shapes, limit=2)
    natural = list(range(len(layers)))
    if len(chains) == 1:
        return [layers[i] for i in chains[0]]
    if len(chains) > 1:
        numbered = all(re.search(r"\d", prefix) for prefix, _, _ in layers)
        if numbered and _is_chain(shapes, natural):
            return layers
        raise GraphStructureError(
            f"{path}: the layer order cannot be recovered: safetensors stores tensors sorted "
            f"by name and the shapes of {', '.join(p for p, _, _ in layers)} fit several "
            "orders; name the layers by position (layers.0, layers.1, ...) or save a PyTorch "
            "state_dict")
    return layers  # no chain fits: LayeredGraph reports the mismatch in name order


def _is_chain(shapes: list, order: list[int]) -> bool:
    return all(shapes[a][0] == shapes[b][1] for a, b in zip(order[:-1], order[1:]))


def _find_chains(shapes: list, limit: int, budget: int = 100_000) -> list[list[int]]:
    """Up to ``limit`` orders of all layers in which consecutive widths agree (DFS)."""
    n = len(shapes)
    found: list[list[int]] = []
    steps = 0

    def extend(order: list[int], used: set[int]) -> None:
        nonlocal steps
        if len(found) >= limit or steps > budget:
            return
        if len(order) == n:
            found.append(list(order))
            return
        for j in range(n):
            steps += 1
            if j not in used and (not order or shapes[order[-1]][0] == shapes[j][1]):
                order.append(j)
                used.add(j)
                extend(order, used)
                order.pop()
                used.discard(j)

    extend([], set())
    return found


def _split_key(key: str) -> tuple[str, str]:
    prefix, _, leaf = key.rpartition(".")
    return prefix, leaf


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _find_state_dict(obj: Any) -> Mapping[str, Any] | None:
    import torch

    if isinstance(obj, Mapping):
        if any(isinstance(v, torch.Tensor) for v in obj.values()):
            return obj
        for key in _NESTED_KEYS:
            inner = obj.get(key)
            if isinstance(inner, Mapping):
                found = _find_state_dict(inner)
                if found is not None:
                    return found
    return None


def _to_numpy(t: Any) -> Any:
    """A dense tensor as a numpy array; a sparse tensor as a SciPy CSR matrix whose stored
    entries (the tensor's specified elements) are the connections."""
    import scipy.sparse as sp
    import torch

    t = t.detach().cpu()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    if t.layout == torch.strided:
        return t.numpy()
    if t.dim() != 2:
        return t.to_dense().numpy()
    if t.layout == torch.sparse_coo:
        t = t.coalesce()
        rows, cols = t.indices().numpy()
        return sp.csr_matrix((t.values().numpy(), (rows, cols)), shape=tuple(t.shape))
    if t.layout == torch.sparse_csr:
        return sp.csr_matrix((t.values().numpy(), t.col_indices().numpy(),
                              t.crow_indices().numpy()), shape=tuple(t.shape))
    return t.to_dense().numpy()


def _unsafe_detail(message: str) -> str:
    m = re.search(r"GLOBAL ([\w.]+)", message)
    return f"the global {m.group(1)!r}" if m else "objects"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
