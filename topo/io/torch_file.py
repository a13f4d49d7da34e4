"""PyTorch files: state_dicts, checkpoint dicts, Lightning ``.ckpt``, whole pickled modules,
and pickled lists/dicts of numpy arrays.

A file is first opened with ``torch.load(..., weights_only=True)``, PyTorch's own loader for
files that hold only tensors and plain containers. When that refuses (a whole pickled module,
numpy arrays, a plain pickle), topo's own unpickler (:mod:`topo.io.safe_pickle`) reads it,
building tensors, arrays and inert stand-ins only: no code from the file ever runs, and
``torch.load(weights_only=False)`` is never called.

Finding the network in what was loaded:

- a whole module: its parameters and buffers in module order, with each module's class (so a
  ``BatchNorm1d`` or ``Conv2d`` is named as such in the skipped list);
- a mapping holding 2-D tensors: the state_dict itself;
- a checkpoint dict: the entry ``state_dict``, ``model_state_dict``, ``model``, ``net``, ...
  (the first present), else the only entry that holds tensors; EMA copies (``ema``,
  ``model_ema``, ...) only when asked with ``key``; optimizer state is skipped; a ``masks``
  entry beside the network gives the layers' structure; scalar entries (``epoch``,
  ``global_step``, ``best_acc1``, ...) go to the graph's metadata;
- a list or tuple of arrays: the layers in list order, a 1-D array after a weight its bias,
  the orientation inferred from the chain.
"""

from __future__ import annotations

import pickle
import re
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import UnreadableFileError, UnsafeFileError
from topo.io.pipeline import OUT_IN, Extraction, Skipped
from topo.io.safe_pickle import (
    ForeignObject,
    is_module,
    load_pickle,
    module_attributes,
    module_tensors,
)
from topo.io.state_dict import extract_named_arrays, extract_state_dict

__all__ = ["read_torch_file", "extract_checkpoint"]

_PREFERRED = ("state_dict", "model_state_dict", "model", "net", "network", "module",
              "model_state", "state", "weights", "params", "parameters")
_MASK_KEYS = ("masks", "mask")
_PROMOTED = ("epoch", "global_step", "step", "iteration")
_MAX_SEARCH_DEPTH = 4


def read_torch_file(path: Path, key: str | None = None) -> Extraction:
    """Extract the network of a PyTorch file (see the module docstring).

    Raises
    ------
    UnsafeFileError
        The pickle asks to call a system function (refused before anything ran).
    UnreadableFileError
        Truncated or corrupt file, no network in it, or several networks and no ``key``.
    """
    obj, fmt = _load(path)
    return extract_checkpoint(obj, path, fmt, key)


def extract_checkpoint(obj: Any, path: Path, fmt: str, key: str | None = None) -> Extraction:
    """Find the network in a loaded checkpoint object and extract its layers."""
    metadata: dict[str, Any] = {}
    skipped: list[Skipped] = []
    masks = None
    trail = []
    if key:
        obj = _follow_key(obj, key, path)
        trail.append(key)
    for _ in range(_MAX_SEARCH_DEPTH + 1):
        if is_module(obj):
            tensors, classes = module_tensors(obj)
            ex = extract_state_dict(tensors, path, "pytorch-module", order="module",
                                    orientation=OUT_IN, module_classes=classes, masks=masks,
                                    modules=module_attributes(obj))
            ex.notes.insert(0, f"a whole pickled module of class {obj.topo_class}, read "
                               "without running its code")
            return _finish(ex, metadata, skipped, trail)
        if isinstance(obj, ForeignObject):
            obj = obj.topo_dict()
        if isinstance(obj, (list, tuple)):
            arrays = {str(i): v for i, v in enumerate(obj) if _is_array(v)}
            if not any(np.ndim(v) == 2 for v in arrays.values()):
                break
            ex = extract_named_arrays(arrays, path, fmt, order="module", masks=masks,
                                      adjacent_biases=True)
            ex.notes.insert(0, f"a {type(obj).__name__} of {len(arrays)} arrays: layers in "
                               "list order")
            return _finish(ex, metadata, skipped, trail)
        if not isinstance(obj, Mapping):
            break
        _collect_metadata(obj, metadata)
        if any(_is_array(v) and np.ndim(v) >= 2 for v in obj.values()):
            arrays = {}
            for k, v in obj.items():
                if _is_array(v):
                    arrays[str(k)] = v
                else:
                    skipped.append(Skipped(str(k), None, "not a tensor"))
            ex = extract_state_dict(arrays, path, fmt, order="module", orientation=OUT_IN,
                                    masks=masks)
            return _finish(ex, metadata, skipped, trail)
        chosen, masks_here = _choose_entry(obj, path, skipped, trail)
        if masks_here is not None:
            masks = masks_here
        obj = obj[chosen]
        trail.append(str(chosen))
    where = f" (in entry {'/'.join(trail)!r})" if trail else ""
    raise UnreadableFileError(
        f"{path}: holds no network{where}: expected a state_dict (names -> tensors), a "
        "checkpoint dict holding one, a pickled module or a list of arrays")


# ---------------------------------------------------------------------------------- helpers
def _load(path: Path) -> tuple[Any, str]:
    """(object with numpy arrays for tensors, format name)."""
    first_error: BaseException | None = None
    try:
        import torch
    except ImportError:  # pragma: no cover - torch is a dependency
        torch = None
    if torch is not None:
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                obj = torch.load(path, map_location="cpu", weights_only=True)
            return _from_torch(obj), "pytorch"
        except Exception as exc:  # noqa: BLE001 - any failure: topo's own reader decides
            first_error = exc
    try:
        obj, container = load_pickle(path)
    except UnsafeFileError:
        raise
    except UnreadableFileError:
        if first_error is not None and not isinstance(first_error, pickle.UnpicklingError):
            raise UnreadableFileError(
                f"{path}: not a readable PyTorch file (truncated or corrupt?): "
                f"{_first_line(first_error)}") from None
        raise
    return obj, "pytorch" if container != "pickle" else "pickle"


def _from_torch(obj: Any, depth: int = 0) -> Any:
    import torch

    if depth > 50:
        return obj
    if isinstance(obj, torch.Tensor):
        return _to_numpy(obj)
    if isinstance(obj, Mapping):
        return {k: _from_torch(v, depth + 1) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_from_torch(v, depth + 1) for v in obj]
    if isinstance(obj, tuple):
        return tuple(_from_torch(v, depth + 1) for v in obj)
    return obj


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


def _follow_key(obj: Any, key: str, path: Path) -> Any:
    for part in key.split("/"):
        if is_module(obj):
            children = dict(obj.topo_dict().get("_modules") or {})
            if part in children:
                obj = children[part]
                continue
            available = list(children)
        else:
            if isinstance(obj, ForeignObject):
                obj = obj.topo_dict()
            if isinstance(obj, Mapping) and part in obj:
                obj = obj[part]
                continue
            if isinstance(obj, (list, tuple)) and part.isdigit() and int(part) < len(obj):
                obj = obj[int(part)]
                continue
            available = list(obj) if isinstance(obj, Mapping) else []
        raise UnreadableFileError(
            f"{path}: no entry {part!r} for key {key!r} (entries: "
            f"{', '.join(map(str, available[:20])) or 'none'})")
    return obj


def _choose_entry(obj: Mapping, path: Path, skipped: list[Skipped],
                  trail: list[str]) -> tuple[Any, Any]:
    """The entry of a checkpoint dict that holds the network, and a ``masks`` entry if any."""
    masks = None
    holders = []
    for k, v in obj.items():
        name = str(k)
        if name.lower() in _MASK_KEYS and isinstance(v, Mapping) and v and all(
                _is_array(m) for m in v.values()):
            masks = {str(a): b for a, b in v.items()}
            continue
        if not _holds_network(v):
            continue
        if _is_optimizer(name):
            skipped.append(Skipped(name, None, "optimizer state", None, "optimizer"))
        elif _is_ema(name):
            skipped.append(Skipped(name, None, "an EMA copy of the weights (read it with "
                                               f"key={name!r}, --key {name})", None, "other"))
        else:
            holders.append(name)
    if not holders:
        where = f" in {'/'.join(trail)!r}" if trail else ""
        entries = ", ".join(map(str, list(obj)[:20]))
        raise UnreadableFileError(
            f"{path}: holds no network{where}: no entry holds 2-D tensors "
            f"(entries: {entries or 'none'}); expected a state_dict or a checkpoint dict "
            "holding one")
    preferred = [k for k in _PREFERRED if k in holders]
    if preferred:
        chosen = preferred[0]
    elif len(holders) == 1:
        chosen = holders[0]
    else:
        raise UnreadableFileError(
            f"{path}: several entries hold networks ({', '.join(holders)}); choose one with "
            "--key (topo.load(path, key=...))")
    for name in holders:
        if name != chosen:
            skipped.append(Skipped(name, None, f"another entry holding tensors (read it "
                                               f"with --key {name})", None, "other"))
    return chosen, masks


def _holds_network(v: Any, depth: int = 0) -> bool:
    if depth > _MAX_SEARCH_DEPTH:
        return False
    if is_module(v):
        return True
    if isinstance(v, ForeignObject):
        v = v.topo_dict()
    if isinstance(v, Mapping):
        return any((_is_array(x) and np.ndim(x) >= 2) or _holds_network(x, depth + 1)
                   for x in v.values())
    if isinstance(v, (list, tuple)):
        return any(_is_array(x) and np.ndim(x) == 2 for x in v)
    return False


def _is_optimizer(name: str) -> bool:
    low = name.lower()
    return any(w in low for w in ("optim", "scheduler", "scaler")) or low in ("opt",)


def _is_ema(name: str) -> bool:
    return re.search(r"(^|[^a-z])ema([^a-z]|$)", name.lower()) is not None


def _collect_metadata(obj: Mapping, metadata: dict[str, Any]) -> None:
    info = metadata.setdefault("checkpoint", {})
    for k, v in obj.items():
        value = _scalar(v)
        if value is not None and isinstance(k, str):
            info.setdefault(k, value)
            if k in _PROMOTED and isinstance(value, int) and not isinstance(value, bool):
                metadata.setdefault(k, value)


def _scalar(v: Any) -> Any:
    if isinstance(v, bool):
        return v
    if isinstance(v, (int, float, str)):
        return v if not isinstance(v, str) or len(v) <= 200 else None
    if isinstance(v, np.generic):
        return v.item()
    if isinstance(v, np.ndarray) and v.ndim == 0 and v.dtype.kind in "biuf":
        return v.item()
    if isinstance(v, np.ndarray) and v.size == 1 and v.dtype.kind in "biuf" and v.ndim <= 1:
        return v.reshape(()).item()
    return None


def _finish(ex: Extraction, metadata: dict[str, Any], skipped: list[Skipped],
            trail: list[str]) -> Extraction:
    if not metadata.get("checkpoint"):
        metadata.pop("checkpoint", None)
    ex.metadata.update(metadata)
    ex.skipped = skipped + ex.skipped
    if trail:
        ex.notes.insert(0, f"the network is the entry {'/'.join(trail)!r} of the file")
        ex.metadata["key"] = "/".join(trail)
    return ex


def _is_array(x: Any) -> bool:
    import scipy.sparse as sp

    return isinstance(x, np.ndarray) or sp.issparse(x)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
