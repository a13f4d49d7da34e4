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
    classes: dict[str, str] = {}
    configs: dict[str, dict] = {}
    config = _json_attr(f, "model_config")
    if config is not None:
        _collect_classes(config, classes, configs)
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
            name = short if len(owners) > 1 else layer_name
            _classify(name, cls, tensors, layers, skipped, path, configs.get(name))
    for key in f:
        if key.startswith("optimizer"):
            skipped.append(Skipped(key, None, "optimizer state", None, "optimizer"))
    ex = _extraction(path, fmt, layers, skipped, "HDF5 file without Dense layers or convolutions")
    _wire(ex, config)
    for attr in ("keras_version", "backend"):
        value = f.attrs.get(attr, group.attrs.get(attr))
        if value is not None:
            ex.metadata[attr] = value.decode() if isinstance(value, bytes) else str(value)
    return ex


def _classify(name: str, cls: str | None, tensors: dict[str, Any],
              layers: list[LayerCandidate], skipped: list[Skipped], path: Path,
              config: dict | None = None) -> None:
    """Sort one layer's named tensors into Dense or conv candidates or skipped entries."""
    arrays = {leaf: np.asarray(ds[()]) for leaf, ds in tensors.items()}
    kernel = arrays.get("kernel")
    why = None
    if cls in _NORM or (cls is None and ("gamma" in arrays or "moving_mean" in arrays)):
        why = f"normalisation layer ({cls or 'BatchNormalization'})"
        for leaf, arr in arrays.items():
            skipped.append(Skipped(f"{name}/{leaf}", arr.shape, why, arr, "norm", name))
        return
    if _is_conv(cls, arrays):
        _conv_candidates(name, cls, arrays, layers, skipped, path, config or {})
        return
    if cls is not None and "Conv" in cls:
        why = f"convolution ({cls}) that topo does not read"
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


_CONV_CLASSES = ("Conv1D", "Conv2D", "Conv3D", "Convolution1D", "Convolution2D",
                 "Convolution3D", "DepthwiseConv2D", "DepthwiseConv1D", "SeparableConv2D",
                 "SeparableConv1D", "SeparableConvolution2D", "SeparableConvolution1D")


def _is_conv(cls: str | None, arrays: dict[str, np.ndarray]) -> bool:
    if cls is not None:
        return cls in _CONV_CLASSES
    kernel = arrays.get("kernel")
    return (kernel is not None and 3 <= kernel.ndim <= 5) or "depthwise_kernel" in arrays


def _conv_candidates(name: str, cls: str | None, arrays: dict[str, np.ndarray],
                     layers: list[LayerCandidate], skipped: list[Skipped], path: Path,
                     config: dict) -> None:
    """A Keras conv's kernel ``(*kernel, C_in / groups, C_out)`` as PyTorch's layout
    ``(C_out, C_in / groups, *kernel)``; a depthwise kernel ``(*kernel, C_in, multiplier)``
    as ``(C_in * multiplier, 1, *kernel)`` with ``groups = C_in``; a separable conv as its
    depthwise and pointwise layers."""
    used = set()
    if "depthwise_kernel" in arrays:
        dw = arrays["depthwise_kernel"]
        n = dw.ndim - 2
        c_in, mult = dw.shape[-2], dw.shape[-1]
        weight = np.moveaxis(dw, (n, n + 1), (0, 1)).reshape(c_in * mult, 1, *dw.shape[:n])
        separable = "pointwise_kernel" in arrays
        dw_name = f"{name}/depthwise" if separable else name
        layers.append(LayerCandidate(
            dw_name, weight, None, _conv_mask(arrays, "depthwise_mask", dw, c_in * mult),
            None if separable else arrays.get("bias"), kind="conv", groups=int(c_in)))
        used |= {"depthwise_kernel", "depthwise_mask"} | (set() if separable else {"bias"})
        if separable:
            pw = arrays["pointwise_kernel"]
            layers.append(LayerCandidate(
                f"{name}/pointwise", _keras_kernel(pw), None, None, arrays.get("bias"),
                kind="conv", groups=1))
            used |= {"pointwise_kernel", "bias"}
    elif "kernel" in arrays and 3 <= arrays["kernel"].ndim <= 5:
        k = arrays["kernel"]
        mask = arrays.get("mask")
        layers.append(LayerCandidate(
            name, _keras_kernel(k), None,
            _keras_kernel(mask) if mask is not None and mask.shape == k.shape else None,
            arrays.get("bias"), kind="conv", groups=int(config.get("groups") or 1)))
        used |= {"kernel", "bias", "mask"}
    else:
        raise UnreadableFileError(
            f"{path}: Keras layer {name!r} ({cls or 'conv'}) has weights "
            f"{ {k: a.shape for k, a in arrays.items()} } that topo cannot interpret")
    for leaf, arr in arrays.items():
        if leaf not in used:
            skipped.append(Skipped(f"{name}/{leaf}", arr.shape,
                                   f"a variable of {name} that is not its kernel or bias", arr))


def _keras_kernel(k: np.ndarray) -> np.ndarray:
    n = k.ndim - 2
    return np.ascontiguousarray(np.transpose(k, (n + 1, n, *range(n))))


def _conv_mask(arrays: dict, leaf: str, kernel: np.ndarray, c_out: int) -> np.ndarray | None:
    mask = arrays.get(leaf)
    if mask is None or mask.shape != kernel.shape:
        return None
    n = mask.ndim - 2
    return np.moveaxis(mask, (n, n + 1), (0, 1)).reshape(c_out, 1, *mask.shape[:n])


def _collect_classes(config: Any, classes: dict[str, str],
                     configs: dict[str, dict] | None = None) -> None:
    """Layer name -> class name (and -> its config) for every layer in a (possibly nested)
    model config."""
    if isinstance(config, dict):
        cfg = config.get("config")
        cls = config.get("class_name")
        if isinstance(cfg, dict) and isinstance(cls, str):
            name = cfg.get("name") or config.get("name")
            if isinstance(name, str):
                classes.setdefault(name, cls)
                if configs is not None:
                    configs.setdefault(name, cfg)
            layers = cfg.get("layers")
            if isinstance(layers, list):
                for layer in layers:
                    _collect_classes(layer, classes, configs)
            inner = cfg.get("layer")
            if isinstance(inner, dict):
                _collect_classes(inner, classes, configs)


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
    ex = _extraction(path, "keras", layers, skipped,
                     ".keras archive without Dense layers or convolutions")
    _wire(ex, config)
    return ex


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
        _classify(name, cls, {k: _Array(a) for k, a in named.items()}, layers, skipped, path,
                  lcfg)


def _name_v3_vars(cls: str, arrays: list[np.ndarray]) -> dict[str, np.ndarray] | None:
    if cls in _NORM:
        return {f"{['gamma', 'beta', 'moving_mean', 'moving_variance'][k]}" if k < 4 else
                str(k): a for k, a in enumerate(arrays)}
    if not arrays:
        return {}
    if cls.startswith("Separable"):
        names = ["depthwise_kernel", "pointwise_kernel", "bias"] + [
            str(k) for k in range(3, len(arrays))]
        return dict(zip(names, arrays))
    if cls.startswith("Depthwise"):
        names = ["depthwise_kernel", "bias"] + [str(k) for k in range(2, len(arrays))]
        return dict(zip(names, arrays))
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


# ------------------------------------------------------------------------------ wiring
_SAME = {
    "InputLayer", "Activation", "ReLU", "LeakyReLU", "PReLU", "ELU", "ThresholdedReLU",
    "Softmax", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D",
    "GaussianNoise", "GaussianDropout", "AlphaDropout", "ActivityRegularization",
    "MaxPooling1D", "MaxPooling2D", "MaxPooling3D", "AveragePooling1D", "AveragePooling2D",
    "AveragePooling3D", "MaxPool1D", "MaxPool2D", "MaxPool3D", "AvgPool1D", "AvgPool2D",
    "AvgPool3D", "ZeroPadding1D", "ZeroPadding2D", "ZeroPadding3D", "Cropping1D",
    "Cropping2D", "Cropping3D", "UpSampling1D", "UpSampling2D", "UpSampling3D", "Rescaling",
    "Identity",
}
_GLOBAL_POOL = {"GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D",
                "GlobalMaxPooling1D", "GlobalMaxPooling2D", "GlobalMaxPooling3D",
                "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalAvgPool3D", "GlobalMaxPool1D",
                "GlobalMaxPool2D", "GlobalMaxPool3D"}
_MERGE_ADD = {"Add", "Average"}
_WRAPPERS = {"PruneLowMagnitude", "QuantizeWrapper", "QuantizeWrapperV2"}


def _wire(ex: Extraction, config: Any) -> None:
    """Give ``ex`` a network plan when it holds convs or adds layer outputs: the model
    config's connections (a Functional model's inbound nodes, a Sequential model's layer
    order); without a config, independent matrices."""
    from topo.io.flow import UnsupportedFlow, plan_from_flow
    from topo.io.pipeline import independent_plan

    members = _config_layers(config)
    merges = any(str(m.get("class_name")) in _MERGE_ADD | {"Concatenate", "Multiply",
                                                          "Subtract"} for m in members)
    if not ex.has_convs and not merges:
        return  # fully-connected layers in a chain: the chain route
    ex.metadata["conv_layout"] = (
        "Conv kernels stored (*kernel, C_in/groups, C_out) (depthwise: (*kernel, C_in, "
        "multiplier)), the Keras convention, read as (C_out, C_in/groups, *kernel)")
    if config is None or not members:
        ex.network = independent_plan(
            ex, "the file has no model config (a weights-only file), so the wiring of its "
                "layers is unknown")
        return
    try:
        ops, inputs, outputs, kind, input_shape = _flow_ops(ex, config, members)
        how = (f"the Keras model config ({kind}: "
               + ("the layers in the order they are listed)" if kind == "Sequential" else
                  "each layer's inbound nodes; Add layers make residual streams)"))
        ex.network = plan_from_flow(ex, ops, inputs, outputs, how)
        ex.network.input_shape = input_shape
    except UnsupportedFlow as exc:
        reason = str(exc)
        if reason.startswith(f"{ex.path}: "):
            reason = reason[len(f"{ex.path}: "):]
        ex.network = independent_plan(
            ex, f"the Keras model config's wiring cannot be followed: {reason}")


def _config_layers(config: Any) -> list[dict]:
    if not isinstance(config, dict) or not isinstance(config.get("config"), dict):
        return []
    layers = config["config"].get("layers")
    return [m for m in layers if isinstance(m, dict)] if isinstance(layers, list) else []


def _flow_ops(ex: Extraction, config: dict, members: list[dict]):
    """(ops, inputs, outputs, kind, input shape) of a Keras model config."""
    from topo.io.flow import Op, UnsupportedFlow

    by_name: dict[str, list[int]] = {}
    for i, c in enumerate(ex.layers):
        by_name.setdefault(c.name.split("/")[0], []).append(i)
    functional = any(m.get("inbound_nodes") for m in members)
    ops: list[Op] = []
    inputs: list[str] = []
    input_shape = None
    previous = None
    layout: dict[str, bool] = {}  # value -> channels last
    for m in members:
        cls = str(m.get("class_name", ""))
        cfg = m.get("config") if isinstance(m.get("config"), dict) else {}
        name = str(cfg.get("name") or m.get("name") or cls)
        if cls in _WRAPPERS and isinstance(cfg.get("layer"), dict):
            cls = str(cfg["layer"].get("class_name", cls))
            cfg = {**cfg["layer"].get("config", {}), "name": name}
        out = f"{name}:0"
        if functional:
            sources = _inbound(m, path=ex.path, name=name)
        else:
            sources = [previous] if previous is not None else []
        if cls == "InputLayer" or (not functional and previous is None):
            shape = cfg.get("batch_input_shape") or cfg.get("batch_shape")
            if isinstance(shape, list) and len(shape) >= 2 and all(
                    isinstance(d, int) for d in shape[1:]):
                input_shape = tuple(shape[1:])
            if cls == "InputLayer":
                inputs.append(out)
                layout[out] = False
                previous = out
                continue
            inputs.append("input:0")
            sources = ["input:0"]
            layout["input:0"] = False
        if cls in ("Sequential", "Functional", "Model") or isinstance(cfg.get("layers"), list):
            raise UnsupportedFlow(f"{ex.path}: a nested model {name!r} in the model config")
        last = any(layout.get(v, False) for v in sources)
        data_format = cfg.get("data_format")
        if name in by_name and cls not in _NORM:
            chain_in = sources
            for i in by_name[name]:
                if len(chain_in) != 1:
                    raise UnsupportedFlow(
                        f"{ex.path}: layer {name!r} takes {len(chain_in)} inputs")
                value = f"{ex.layers[i].name}:0"
                conv = ex.layers[i].kind == "conv"
                ops.append(Op("layer", chain_in, value, name, cls, layer=i,
                              channels_last=conv and data_format != "channels_first"))
                layout[value] = conv and data_format != "channels_first"
                chain_in = [value]
            ops.append(Op("same", chain_in, out, name, cls))
            layout[out] = layout[chain_in[0]]
        elif cls in _NORM:
            ops.append(Op("norm", sources, out, name, cls, module=name))
            layout[out] = last
        elif cls in _SAME or (cls == "Layer" and not cfg):
            ops.append(Op("same", sources, out, name, cls))
            layout[out] = last
        elif cls == "Flatten" or (cls == "Reshape" and len(cfg.get("target_shape") or []) == 1):
            hwc = last or data_format == "channels_first"
            ops.append(Op("flatten", sources, out, name, cls, channels_last=hwc))
            layout[out] = hwc
        elif cls in _GLOBAL_POOL:
            ops.append(Op("flatten", sources, out, name, cls))
            layout[out] = False
        elif cls in _MERGE_ADD:
            ops.append(Op("add", sources, out, name, cls))
            layout[out] = last
        else:
            ops.append(Op("unsupported", sources, out, name, f"Keras layer {cls}"))
        previous = out
    if functional:
        outputs = [f"{e[0]}:0" for e in _history_entries(config["config"].get("output_layers"))]
    else:
        outputs = [previous] if previous is not None else []
    if input_shape is not None and ex.has_convs and len(input_shape) >= 2:
        input_shape = (input_shape[-1], *input_shape[:-1])  # (H, W, C) -> (C, H, W)
    return ops, inputs, outputs, "Functional" if functional else "Sequential", input_shape


def _inbound(member: dict, *, path: Path, name: str) -> list[str]:
    """The values a Functional model's layer reads (``<layer>:0``)."""
    from topo.io.flow import UnsupportedFlow

    nodes = member.get("inbound_nodes") or []
    if len(nodes) > 1:
        raise UnsupportedFlow(f"{path}: layer {name!r} is called {len(nodes)} times (a "
                              "shared layer)")
    if not nodes:
        return []
    out = []
    for entry in _history_entries(nodes[0]):
        if entry[1] != 0 or entry[2] != 0:
            raise UnsupportedFlow(f"{path}: layer {name!r} reads output {entry[1:3]} of "
                                  f"{entry[0]!r} (a shared layer or several outputs)")
        out.append(f"{entry[0]}:0")
    return out


def _history_entries(node: Any) -> list[tuple[str, int, int]]:
    """``(layer, node index, tensor index)`` of every input a Keras node lists: Keras 2's
    ``[[name, node, tensor, kwargs], ...]``, Keras 3's ``{"args": [keras tensors]}`` with
    ``keras_history``, and ``output_layers`` lists."""
    found: list[tuple[str, int, int]] = []

    def visit(x: Any) -> None:
        if isinstance(x, dict):
            cfg = x.get("config")
            if isinstance(cfg, dict) and isinstance(cfg.get("keras_history"), list):
                h = cfg["keras_history"]
                found.append((str(h[0]), int(h[1]), int(h[2])))
                return
            for key in ("args", "kwargs"):
                if key in x:
                    visit(x[key] if key == "args" else [])
            return
        if isinstance(x, list):
            if len(x) >= 3 and isinstance(x[0], str) and isinstance(x[1], int) \
                    and isinstance(x[2], int):
                found.append((x[0], x[1], x[2]))
                return
            for item in x:
                visit(item)

    visit(node)
    return found


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
