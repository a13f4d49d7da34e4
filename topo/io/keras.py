"""Keras files, read with h5py: HDF5 (``.h5``, and HDF5 saved as ``.keras``) and Keras 3 zips.

HDF5, Keras 2 and Keras 3's legacy writer, whole models and weights-only files: the layer
order is the ``layer_names`` attribute (the model's layer order; HDF5 lists groups
alphabetically, which is not the order), each layer's tensors are its ``weight_names``
attribute, and the layer classes come from the ``model_config`` attribute when the file has
one (else from the weight names: ``kernel``/``bias``, ``gamma``/``beta``/``moving_mean``...).

Keras 3 ``.keras`` zips hold ``config.json`` and ``model.weights.h5``, where a layer's
variables are ``layers/<snake_case class name, numbered>/vars/<i>`` in the model's layer
order; ``config.json`` gives the classes and that order.

Dense kernels are stored ``(in, out)`` (the convention is firm); a layer with a ``mask`` tensor
of the kernel's shape (a pruning wrapper) has it as its structure. Normalisation,
convolution, pooling-free layers with weights that are not dense (embeddings, recurrent
layers) are listed as skipped; a layer of an unknown class is read as dense only when it has
a 2-D ``kernel``.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import UnreadableFileError
from topo.io.limits import ZIP_ERRORS, read_zip_member
from topo.io.pipeline import IN_OUT, Extraction, LayerCandidate, Skipped

__all__ = ["read_keras_hdf5", "read_keras_zip", "HDF5_MAGIC"]

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"

_NORM = ("BatchNormalization", "LayerNormalization", "GroupNormalization",
         "UnitNormalization", "Normalization", "SyncBatchNormalization")
_DENSE = ("Dense", "QDense")


def read_keras_hdf5(path: Path, source: Any = None, *, fmt: str = "keras-hdf5") -> Extraction:
    """Extract the Dense layers of a Keras HDF5 file (``source``: a path or file object).

    Raises
    ------
    UnreadableFileError
        Damaged HDF5, an HDF5 file that is not a Keras model or weights file, or one without
        Dense layers.
    """
    import h5py

    try:
        with h5py.File(source if source is not None else path, "r") as f:
            return _read_h5(f, path, fmt)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UnreadableFileError(
            f"{path}: damaged HDF5 file (truncated or corrupt?): {_first_line(exc)}") from None


def read_keras_zip(path: Path) -> Extraction:
    """Extract the Dense layers of a Keras 3 ``.keras`` zip (``config.json`` +
    ``model.weights.h5``)."""
    import h5py

    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        raise UnreadableFileError(
            f"{path}: damaged .keras zip archive (truncated or corrupt?): {exc}") from None
    with zf:
        names = zf.namelist()
        try:
            config = json.loads(read_zip_member(zf, "config.json", path, ".keras archive"))
            meta = json.loads(read_zip_member(zf, "metadata.json", path, ".keras archive")) \
                if "metadata.json" in names else {}
        except (json.JSONDecodeError, UnicodeDecodeError):
            raise UnreadableFileError(f"{path}: .keras archive with a damaged config.json") \
                from None
        weights = read_zip_member(zf, "model.weights.h5", path, ".keras archive")
    try:
        with h5py.File(io.BytesIO(weights), "r") as f:
            ex = _read_v3(f, config, path)
    except (OSError, ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise UnreadableFileError(
            f"{path}: .keras archive with a damaged model.weights.h5: "
            f"{_first_line(exc)}") from None
    if isinstance(meta, dict) and meta.get("keras_version"):
        ex.metadata["keras_version"] = str(meta["keras_version"])
    return ex


# ------------------------------------------------------------------------------- HDF5
def _read_h5(f: Any, path: Path, fmt: str) -> Extraction:
    group = f.get("model_weights", f)
    names = _strings(group.attrs.get("layer_names"))
    if names is None:
        raise UnreadableFileError(
            f"{path}: HDF5 file without Keras layer names (not a Keras model or weights "
            f"file; top-level groups: {', '.join(list(f.keys())[:10]) or 'none'})")
    classes = {}
    config = _json_attr(f, "model_config")
    if config is not None:
        _collect_classes(config, classes)
    layers: list[LayerCandidate] = []
    skipped: list[Skipped] = []
    for layer_name in names:
        if layer_name not in group:
            raise UnreadableFileError(f"{path}: Keras layer {layer_name!r} has no weight group")
        lg = group[layer_name]
        weight_names = _strings(lg.attrs.get("weight_names")) or []
        owners: dict[str, dict[str, Any]] = {}
        for wn in weight_names:
            owner, _, leaf = wn.rpartition("/")
            leaf = leaf.split(":")[0]
            if wn not in lg:
                raise UnreadableFileError(
                    f"{path}: Keras weight {wn!r} of layer {layer_name!r} is missing")
            owners.setdefault(owner or layer_name, {})[leaf] = lg[wn]
        for owner, tensors in owners.items():
            short = owner.rpartition("/")[2]
            cls = classes.get(short) or (classes.get(layer_name) if len(owners) == 1 else None)
            _classify(short if len(owners) > 1 else layer_name, cls, tensors, layers,
                      skipped, path)
    for key in f:
        if key.startswith("optimizer"):
            skipped.append(Skipped(key, None, "optimizer state", None, "optimizer"))
    ex = _extraction(path, fmt, layers, skipped, "HDF5 file without Dense layers")
    for attr in ("keras_version", "backend"):
        value = f.attrs.get(attr, group.attrs.get(attr))
        if value is not None:
            ex.metadata[attr] = value.decode() if isinstance(value, bytes) else str(value)
    return ex


def _classify(name: str, cls: str | None, tensors: dict[str, Any],
              layers: list[LayerCandidate], skipped: list[Skipped], path: Path) -> None:
    """Sort one layer's named tensors into a Dense candidate or skipped entries."""
    arrays = {leaf: np.asarray(ds[()]) for leaf, ds in tensors.items()}
    kernel = arrays.get("kernel")
    why = None
    if cls in _NORM or (cls is None and ("gamma" in arrays or "moving_mean" in arrays)):
        why = f"normalisation layer ({cls or 'BatchNormalization'})"
    elif cls is not None and ("Conv" in cls or "Pool" in cls):
        why = f"convolution ({cls}): topo reads fully-connected layers"
    elif kernel is not None and kernel.ndim > 2:
        why = f"convolution ({cls or 'kernel of ' + str(kernel.ndim) + ' dimensions'}): " \
              "topo reads fully-connected layers"
    elif "recurrent_kernel" in arrays:
        why = f"recurrent layer ({cls or 'recurrent_kernel'})"
    elif "embeddings" in arrays:
        why = f"embedding table ({cls or 'Embedding'})"
    if why is not None:
        for leaf, arr in arrays.items():
            skipped.append(Skipped(f"{name}/{leaf}", arr.shape, why, arr,
                                   "norm" if "normal" in why else
                                   "conv" if "convolution" in why else "other"))
        return
    if kernel is None or kernel.ndim != 2:
        if any(a.ndim >= 2 for a in arrays.values()):
            raise UnreadableFileError(
                f"{path}: Keras layer {name!r} ({cls or 'unknown class'}) has weights "
                f"{ {k: a.shape for k, a in arrays.items()} } that topo cannot interpret")
        for leaf, arr in arrays.items():
            skipped.append(Skipped(f"{name}/{leaf}", arr.shape,
                                   f"not a layer weight ({cls or 'unknown layer'})", arr))
        return
    mask = arrays.get("mask")
    if mask is not None and mask.shape != kernel.shape:
        mask = None
    bias = arrays.get("bias")
    note = None
    if cls is not None and cls not in _DENSE:
        note = f"{name}: a layer of class {cls} with a 2-D kernel, read as a Dense layer"
    used = {"kernel", "bias"} | ({"mask"} if mask is not None else set())
    for leaf, arr in arrays.items():
        if leaf not in used:
            skipped.append(Skipped(f"{name}/{leaf}", arr.shape,
                                   f"a variable of {name} that is not its kernel or bias",
                                   arr))
    layers.append(LayerCandidate(name, kernel, IN_OUT, mask, bias, note))


def _collect_classes(config: Any, classes: dict[str, str]) -> None:
    """Layer name -> class name for every layer in a (possibly nested) model config."""
    if isinstance(config, dict):
        cfg = config.get("config")
        cls = config.get("class_name")
        if isinstance(cfg, dict) and isinstance(cls, str):
            name = cfg.get("name") or config.get("name")
            if isinstance(name, str):
                classes.setdefault(name, cls)
            layers = cfg.get("layers")
            if isinstance(layers, list):
                for layer in layers:
                    _collect_classes(layer, classes)
            inner = cfg.get("layer")
            if isinstance(inner, dict):
                _collect_classes(inner, classes)


# --------------------------------------------------------------------------- Keras 3 zip
def _read_v3(f: Any, config: Any, path: Path) -> Extraction:
    layers: list[LayerCandidate] = []
    skipped: list[Skipped] = []
    root = "layers" if "layers" in f else "_layer_checkpoint_dependencies" \
        if "_layer_checkpoint_dependencies" in f else None
    if root is None or not isinstance(config, dict):
        raise UnreadableFileError(f"{path}: .keras archive without a model's layers")
    _walk_v3(f[root], config, layers, skipped, path)
    if "optimizer" in f:
        skipped.append(Skipped("optimizer", None, "optimizer state", None, "optimizer"))
    return _extraction(path, "keras", layers, skipped, ".keras archive without Dense layers")


def _walk_v3(group: Any, config: dict, layers: list[LayerCandidate],
             skipped: list[Skipped], path: Path) -> None:
    cfg = config.get("config") if isinstance(config.get("config"), dict) else {}
    members = cfg.get("layers") if isinstance(cfg.get("layers"), list) else []
    used: dict[str, int] = {}
    for layer in members:
        if not isinstance(layer, dict):
            continue
        cls = str(layer.get("class_name", ""))
        lcfg = layer.get("config") if isinstance(layer.get("config"), dict) else {}
        name = str(lcfg.get("name") or layer.get("name") or cls)
        if cls == "InputLayer":
            continue
        snake = _snake_case(cls)
        if snake in used:
            used[snake] += 1
            snake = f"{snake}_{used[snake]}"
        else:
            used[snake] = 0
        if snake not in group:
            continue  # a layer without variables
        sub = group[snake]
        if isinstance(lcfg.get("layers"), list) and "layers" in sub:
            _walk_v3(sub["layers"], layer, layers, skipped, path)
            continue
        if "vars" not in sub:
            continue
        v = sub["vars"]
        arrays = [np.asarray(v[k][()]) for k in sorted(v, key=lambda s: int(s)
                                                        if s.isdigit() else 10**9)]
        named = _name_v3_vars(cls, arrays)
        if named is None:
            raise UnreadableFileError(
                f"{path}: Keras layer {name!r} ({cls}) has variables "
                f"{[a.shape for a in arrays]} that topo cannot interpret")
        _classify(name, cls, {k: _Array(a) for k, a in named.items()}, layers, skipped, path)


def _name_v3_vars(cls: str, arrays: list[np.ndarray]) -> dict[str, np.ndarray] | None:
    if cls in _NORM:
        return {f"{['gamma', 'beta', 'moving_mean', 'moving_variance'][k]}" if k < 4 else
                str(k): a for k, a in enumerate(arrays)}
    if not arrays:
        return {}
    if cls in _DENSE or "Dense" in cls or "Conv" in cls:
        names = ["kernel", "bias"] + [str(k) for k in range(2, len(arrays))]
        return dict(zip(names, arrays))
    if all(a.ndim < 2 for a in arrays):
        return {str(k): a for k, a in enumerate(arrays)}
    if cls == "Embedding":
        return {"embeddings": arrays[0], **{str(k): a for k, a in enumerate(arrays[1:], 1)}}
    return None


class _Array:
    """An in-memory array with the ``ds[()]`` access of an h5py dataset."""

    def __init__(self, arr: np.ndarray) -> None:
        self.arr = arr

    def __getitem__(self, key: Any) -> np.ndarray:
        return self.arr


def _snake_case(name: str) -> str:
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


# ----------------------------------------------------------------------------- helpers
def _extraction(path: Path, fmt: str, layers: list[LayerCandidate], skipped: list[Skipped],
                empty: str) -> Extraction:
    if not layers:
        kinds = sorted({s.why.split(" (")[0].split(":")[0] for s in skipped})
        raise UnreadableFileError(
            f"{path}: {empty}"
            f"{' (it holds: ' + ', '.join(kinds) + ')' if kinds else ''}")
    return Extraction(path, fmt, layers, order="graph", orientation=IN_OUT, firm=True,
                      skipped=skipped)


def _strings(value: Any) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, (bytes, str)):
        value = [value]
    out = []
    for v in np.asarray(value).ravel().tolist():
        out.append(v.decode("utf-8") if isinstance(v, bytes) else str(v))
    return out


def _json_attr(f: Any, name: str) -> Any:
    raw = f.attrs.get(name)
    if raw is None:
        return None
    try:
        return json.loads(raw.decode("utf-8") if isinstance(raw, bytes) else str(raw))
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
