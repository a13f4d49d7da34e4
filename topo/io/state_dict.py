"""Extraction of layers from named tensors: PyTorch's key rules, and plain named arrays.

PyTorch key rules (state_dicts, safetensors of PyTorch models, whole pickled modules):

- a 2-D ``<prefix>.weight`` is a layer with its non-zero entries as connections (the state
  after ``torch.nn.utils.prune.remove``), stored ``(out, in)``;
- ``<prefix>.weight_orig`` + ``<prefix>.weight_mask`` (``torch.nn.utils.prune``), and
  ``<prefix>.weight`` + ``<prefix>.mask``: the connections are the mask's non-zeros, so a kept
  weight equal to 0 still counts;
- parametrizations (``torch.nn.utils.parametrize``): ``<prefix>.parametrizations.weight.original``
  is the weight the parametrization transforms; saved mask buffers
  (``parametrizations.weight.<k>.mask``) give the connections. ``weight_norm``'s
  ``original0`` (g) and ``original1`` (v) are combined as it defines, w = g * v / ||v|| (the
  norm over every dimension but the first), and spectral_norm's ``original`` is divided by
  its largest singular value estimate u^T W v from the saved ``_u``/``_v`` vectors. A
  parametrization whose state is not in the file -- ``torch.ao.pruning``'s sparsifier never
  saves its ``FakeSparsity`` mask -- is read as its original weight and said so;
- the old ``weight_norm`` hook's ``weight_g``/``weight_v`` are combined the same way;
- ``<prefix>.bias`` (or ``bias_orig`` times ``bias_mask``) is the layer's bias;
- a 3-, 4- or 5-D ``<prefix>.weight`` is a convolution kernel ``(C_out, C_in / groups,
  *kernel)`` (PyTorch's layout; a whole pickled module's ``groups`` is kept); transposed
  convolutions (known from a pickled module's class) are listed as skipped;
- 1-D weights (normalisation layers) and running statistics are not layers; they are listed
  as skipped with the reason and the module they belong to.

``module.`` (DataParallel), ``_orig_mod.`` (``torch.compile``) and ``model.`` (Lightning)
prefixes shared by every key are removed from the layer names.

Named arrays that follow none of these rules (``w1``/``b1``, ``W_0``, a list of arrays) are
layers with no fixed orientation: every 2-D array is a layer, a 1-D array whose name matches
a weight's (``b1`` for ``w1``, ``fc1_bias`` for ``fc1``) is its bias, and the orientation is
inferred from the chain.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import GraphStructureError, UnreadableFileError
from topo.io.pipeline import OUT_IN, Extraction, LayerCandidate, Skipped

__all__ = ["extract_state_dict", "extract_named_arrays", "follows_torch_rules"]

_PREFIXES = ("module.", "_orig_mod.", "model.")
_PARAM = ".parametrizations."
_NORM_LEAVES = {"running_mean", "running_var", "num_batches_tracked"}
# module classes (whole pickled modules) whose weights are not fully-connected layers
_NOT_LINEAR = {
    "Embedding": "an embedding table (a lookup, not a connection layer)",
    "EmbeddingBag": "an embedding table (a lookup, not a connection layer)",
    "LSTM": "a recurrent layer", "GRU": "a recurrent layer", "RNN": "a recurrent layer",
    "MultiheadAttention": "an attention layer", "Bilinear": "a bilinear layer",
    "PReLU": "an activation's parameter",
}


def follows_torch_rules(arrays: Mapping[str, Any]) -> bool:
    """True when some key names a module's weight (``*.weight``, prune or parametrization)."""
    for key in arrays:
        leaf = key.rpartition(".")[2]
        if leaf in ("weight", "weight_orig", "weight_v") or _PARAM + "weight." in f".{key}":
            return True
    return False


def extract_state_dict(arrays: Mapping[str, Any], path: Path, fmt: str, *, order: str,
                       orientation: str | None = OUT_IN,
                       module_classes: Mapping[str, str] | None = None,
                       masks: Mapping[str, Any] | None = None,
                       modules: Mapping[str, Mapping[str, Any]] | None = None,
                       strip: bool = True) -> Extraction:
    """Layers of a PyTorch-style state_dict (see the module docstring for the rules).

    Parameters
    ----------
    arrays
        Name -> numpy array (or SciPy sparse matrix for sparse tensors), in file order.
    order
        What the order of ``arrays`` means for the layers: ``"module"`` (a state_dict) or
        ``"none"`` (safetensors, which sorts its keys).
    orientation
        The convention of the container for ``*.weight`` tensors (``(out, in)``).
    module_classes
        Module prefix -> class name, when the file says (a whole pickled module).
    masks
        A separate mapping of masks (a checkpoint's ``masks`` entry), keyed by layer or
        weight name; each is used as its layer's structure.
    modules
        Module prefix -> attributes the file states (a whole pickled module: a conv's
        ``groups``).
    strip
        Remove the prefixes shared by every key (``module.``, ``model.``, ...) from the
        names (not when the caller maps names back to modules itself).
    """
    if not follows_torch_rules(arrays):
        return extract_named_arrays(arrays, path, fmt, order=order, masks=masks)
    arrays, stripped = _strip_prefixes(arrays) if strip else (dict(arrays), "")
    classes = dict(module_classes or {})
    if stripped:
        classes = {k[len(stripped):] if k.startswith(stripped) else k: v
                   for k, v in classes.items()}
    used: set[str] = set()
    layers: list[LayerCandidate] = []
    skipped: list[Skipped] = []
    notes: list[str] = []
    modules = dict(modules or {})
    if stripped:
        modules = {k[len(stripped):] if k.startswith(stripped) else k: v
                   for k, v in modules.items()}
    for prefix in _layer_prefixes(arrays):
        found = _weight_of(prefix, arrays, path)
        if found is None:
            continue
        weight, mask, keys, note, absent = found
        bias, bias_keys = _bias_of(prefix, arrays)
        name = prefix or "weight"
        cls = classes.get(prefix)
        why = _why_not_a_layer(weight, cls, prefix, arrays)
        used.update(keys)
        used.update(bias_keys)
        if why is not None:
            kind = "conv" if np.ndim(weight) > 2 or "convolution" in why else \
                "norm" if "normalisation" in why else "other"
            module = prefix if kind == "norm" else None
            skipped.append(Skipped(keys[0], tuple(np.shape(weight)), why, weight, kind,
                                   module))
            for k in bias_keys:
                skipped.append(Skipped(k, tuple(np.shape(arrays[k])), f"bias of {name}: {why}",
                                       arrays[k], kind, module))
            for leaf in sorted(_NORM_LEAVES):
                k = _join(prefix, leaf)
                if k in arrays and kind == "norm":
                    used.add(k)
                    skipped.append(Skipped(k, tuple(np.shape(arrays[k])),
                                           f"statistics of {name}: {why}", arrays[k], kind,
                                           module))
            continue
        if absent is not None:
            skipped.append(absent)
        if np.ndim(weight) > 2:
            attrs = modules.get(prefix) or {}
            layers.append(LayerCandidate(
                name, weight, None, mask, bias, note, kind="conv",
                groups=_int_or_none(attrs.get("groups"))))
            continue
        layers.append(LayerCandidate(name, weight, None, mask, bias, note))
    if stripped:
        notes.append(f"the prefix {stripped!r} shared by every key is left out of the names")
    _apply_mask_entry(layers, masks, path)
    for key, arr in arrays.items():
        if key in used:
            continue
        skipped.append(_skip_reason(key, arr, arrays, classes))
    if not layers:
        raise UnreadableFileError(
            f"{path}: no fully-connected layers in this {fmt} file "
            f"({len(arrays)} tensors{_skipped_summary(skipped)})")
    return Extraction(path, fmt, layers, order=order, orientation=orientation,
                      skipped=skipped, notes=notes)


def extract_named_arrays(arrays: Mapping[str, Any], path: Path, fmt: str, *, order: str,
                         masks: Mapping[str, Any] | None = None,
                         adjacent_biases: bool = False) -> Extraction:
    """Layers from arrays named freely (``w1``, ``W_0``, list indices); no fixed orientation.

    Every 2-D array is a layer. A 1-D array is a layer's bias when its name matches the
    weight's with the weight word replaced by a bias word (``b1``/``w1``, ``bias_0``/
    ``weight_0``, ``fc1_bias``/``fc1``), or, with ``adjacent_biases`` (a list), when it comes
    right after the weight. 2-D arrays named ``mask``... pair the same way with weights.
    """
    layers: list[LayerCandidate] = []
    skipped: list[Skipped] = []
    by_stem: dict[str, LayerCandidate] = {}
    weights = [k for k, a in arrays.items() if np.ndim(a) == 2 and _role(k)[0] != "mask"]
    for key in weights:
        cand = LayerCandidate(key, arrays[key])
        layers.append(cand)
        by_stem.setdefault(_role(key)[1], cand)
    previous: LayerCandidate | None = None
    keys = list(arrays)
    for key in keys:
        arr = arrays[key]
        role, stem = _role(key)
        if np.ndim(arr) == 2 and role != "mask":
            previous = next(c for c in layers if c.name == key)
            continue
        target = by_stem.get(stem)
        if np.ndim(arr) == 1 and role == "bias" and target is not None and target.bias is None:
            target.bias = arr
        elif np.ndim(arr) == 1 and adjacent_biases and previous is not None \
                and previous.bias is None and arr.shape[0] in previous.shape:
            previous.bias = arr
        elif np.ndim(arr) == 2 and role == "mask" and target is not None \
                and np.shape(arr) == target.shape:
            target.mask = arr
        else:
            why = ("an array of more than two dimensions (convolution or other): topo reads "
                   "fully-connected layers" if np.ndim(arr) > 2 else
                   "a mask that pairs with no weight of its shape" if role == "mask" else
                   "a 1-D array that pairs with no weight" if np.ndim(arr) == 1 else
                   "not an array of a layer")
            skipped.append(Skipped(key, tuple(np.shape(arr)), why, arr,
                                   "conv" if np.ndim(arr) > 2 else "other"))
        if np.ndim(arr) != 2:
            previous = None if not (adjacent_biases and np.ndim(arr) == 1) else previous
    _apply_mask_entry(layers, masks, path)
    if not layers:
        raise UnreadableFileError(
            f"{path}: no 2-D weight arrays in this {fmt} file "
            f"({len(arrays)} arrays{_skipped_summary(skipped)})")
    return Extraction(path, fmt, layers, order=order, orientation=None, skipped=skipped)


# ---------------------------------------------------------------------------------- helpers
def _strip_prefixes(arrays: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    stripped = ""
    arrays = dict(arrays)
    changed = True
    while changed and arrays:
        changed = False
        for p in _PREFIXES:
            if all(k.startswith(p) for k in arrays):
                arrays = {k[len(p):]: v for k, v in arrays.items()}
                stripped += p
                changed = True
    return arrays, stripped


def _layer_prefixes(arrays: Mapping[str, Any]) -> list[str]:
    """Module prefixes that hold a weight, in the order their keys first appear."""
    seen: dict[str, None] = {}
    for key in arrays:
        at = key.find("parametrizations.weight.")
        if at == 0 or (at > 0 and key[at - 1] == "."):
            seen.setdefault(key[:at].rstrip("."), None)
            continue
        prefix, _, leaf = key.rpartition(".")
        if leaf in ("weight", "weight_orig", "weight_v"):
            seen.setdefault(prefix, None)
    return list(seen)


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _weight_of(prefix: str, arrays: Mapping[str, Any], path: Path):
    """(weight, mask, keys used, note, absent-mask record) of the module at ``prefix``."""
    j = lambda leaf: _join(prefix, leaf)  # noqa: E731
    if j("parametrizations.weight.original") in arrays or \
            j("parametrizations.weight.original0") in arrays:
        return _parametrized(prefix, arrays, path)
    if j("weight_orig") in arrays:
        if j("weight_mask") not in arrays:
            raise UnreadableFileError(
                f"{path}: {j('weight_orig')!r} has no matching 'weight_mask' "
                "(torch.nn.utils.prune keeps both)")
        return (arrays[j("weight_orig")], arrays[j("weight_mask")],
                [j("weight_orig"), j("weight_mask")], None, None)
    if j("weight_v") in arrays and j("weight_g") in arrays:
        w = _weight_norm(arrays[j("weight_g")], arrays[j("weight_v")], path, prefix)
        return (w, None, [j("weight_g"), j("weight_v")],
                f"{prefix}: weight_norm's weight_g and weight_v combined, w = g v / ||v||",
                None)
    if j("weight") not in arrays:
        return None
    keys = [j("weight")]
    mask = None
    for leaf in ("mask", "weight_mask"):
        if j(leaf) in arrays and np.shape(arrays[j(leaf)]) == np.shape(arrays[j("weight")]):
            mask = arrays[j(leaf)]
            keys.append(j(leaf))
            break
    return arrays[j("weight")], mask, keys, None, None


def _parametrized(prefix: str, arrays: Mapping[str, Any], path: Path):
    base = _join(prefix, "parametrizations.weight")
    keys = [k for k in arrays if k.startswith(base + ".")]
    if base + ".original0" in arrays:
        if base + ".original1" not in arrays:
            raise UnreadableFileError(f"{path}: {base}.original0 without original1")
        g, v = arrays[base + ".original0"], arrays[base + ".original1"]
        w = _weight_norm(g, v, path, prefix)
        note = (f"{prefix or 'weight'}: weight_norm parametrization, original0 (g) and "
                "original1 (v) combined as w = g v / ||v||")
    else:
        w = np.asarray(arrays[base + ".original"], dtype=np.float64)
        note = None
        u, v = _find_leaf(arrays, base, "_u"), _find_leaf(arrays, base, "_v")
        if u is not None and v is not None and w.ndim >= 2:
            sigma = float(np.asarray(u) @ w.reshape(w.shape[0], -1) @ np.asarray(v))
            if sigma == 0 or not np.isfinite(sigma):
                raise UnreadableFileError(
                    f"{path}: spectral_norm of {prefix!r} has singular value estimate {sigma}")
            w = w / sigma
            note = (f"{prefix or 'weight'}: spectral_norm parametrization, original divided "
                    f"by sigma = u^T W v = {sigma:.6g}")
    mask = _find_leaf(arrays, base, "mask")
    absent = None
    if mask is not None:
        if np.shape(mask) != np.shape(w):
            raise GraphStructureError(
                f"{path}: the mask of {prefix!r} has shape {np.shape(mask)}, its weight "
                f"{np.shape(w)}")
        w = np.where(np.asarray(mask) != 0, w, 0.0)
    elif note is None:
        nnz = int(np.count_nonzero(w))
        size = int(np.size(w))
        note = (f"{prefix or 'weight'}: a parametrization whose state is not in the file "
                "(torch.ao.pruning's sparsifier never saves its FakeSparsity mask): read as "
                f"parametrizations.weight.original, whose non-zero entries ({nnz} of {size}) "
                "are taken as the connections; call sparsifier.squash_mask() before saving "
                "to keep the pruned structure")
        absent = Skipped(base + ".0.mask", None,
                         "mask absent: the parametrization's mask is not saved in the "
                         f"state_dict; connections of {prefix or 'weight'} are the non-zero "
                         f"entries of its original weight ({nnz} of {size})", None, "mask")
    return w, mask, keys, note, absent


def _find_leaf(arrays: Mapping[str, Any], base: str, leaf: str) -> Any:
    pattern = re.compile(re.escape(base) + r"\.\d+\." + re.escape(leaf))
    for key, value in arrays.items():
        if pattern.fullmatch(key):
            return value
    return None


def _weight_norm(g: Any, v: Any, path: Path, prefix: str) -> np.ndarray:
    g = np.asarray(g, dtype=np.float64)
    v = np.asarray(v, dtype=np.float64)
    if g.size == 1:
        axes = tuple(range(v.ndim))
    elif g.ndim == v.ndim:
        axes = tuple(k for k in range(v.ndim) if g.shape[k] == 1)
    else:
        raise UnreadableFileError(
            f"{path}: weight_norm of {prefix!r}: g {g.shape} does not fit v {v.shape}")
    norm = np.sqrt(np.sum(v * v, axis=axes, keepdims=True))
    with np.errstate(divide="ignore", invalid="ignore"):
        w = g.reshape(norm.shape) * v / norm
    return np.where(v == 0, 0.0, w)


def _bias_of(prefix: str, arrays: Mapping[str, Any]) -> tuple[Any, list[str]]:
    j = lambda leaf: _join(prefix, leaf)  # noqa: E731
    if j("parametrizations.bias.original") in arrays:
        return arrays[j("parametrizations.bias.original")], [
            k for k in arrays if k.startswith(j("parametrizations.bias."))]
    if j("bias_orig") in arrays:
        b = np.asarray(arrays[j("bias_orig")], dtype=np.float64)
        keys = [j("bias_orig")]
        if j("bias_mask") in arrays:
            b = b * np.asarray(arrays[j("bias_mask")])
            keys.append(j("bias_mask"))
        return b, keys
    if j("bias") in arrays and np.ndim(arrays[j("bias")]) == 1:
        return arrays[j("bias")], [j("bias")]
    return None, []


def _why_not_a_layer(weight: Any, cls: str | None, prefix: str,
                     arrays: Mapping[str, Any]) -> str | None:
    short = (cls or "").rpartition(".")[2]
    ndim = np.ndim(weight)
    if short.startswith("ConvTranspose") or short.startswith("LazyConvTranspose"):
        return (f"transposed convolution ({short}) with kernel {tuple(np.shape(weight))}: "
                "topo does not read transposed convolutions")
    if ndim > 5:
        return (f"a weight of {ndim} dimensions{f' ({short})' if short else ''}: not a "
                "convolution topo reads")
    if ndim > 2:
        return None
    if ndim < 2 or "Norm" in short:
        if _join(prefix, "running_mean") in arrays or "BatchNorm" in short:
            return f"normalisation layer ({short or 'BatchNorm'}: running statistics)"
        return f"normalisation layer ({short or '1-D weight, e.g. LayerNorm'})"
    if short in _NOT_LINEAR:
        return f"{_NOT_LINEAR[short]} ({short})"
    return None


def _int_or_none(value: Any) -> int | None:
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) and value >= 1:
        return int(value)
    return None


def _skip_reason(key: str, arr: Any, arrays: Mapping[str, Any],
                 classes: Mapping[str, str]) -> Skipped:
    prefix, _, leaf = key.rpartition(".")
    shape = tuple(np.shape(arr))
    if leaf in _NORM_LEAVES:
        return Skipped(key, shape, "normalisation layer statistics", arr, "norm",
                       prefix or None)
    if leaf == "bias":
        return Skipped(key, shape, "a bias whose module has no weight", arr, "other")
    if np.ndim(arr) == 2:
        return Skipped(key, shape, "a 2-D tensor not named like a layer weight ('*.weight')",
                       arr, "other")
    return Skipped(key, shape, "a buffer, not a layer weight", arr, "buffer")


def _apply_mask_entry(layers: list[LayerCandidate], masks: Mapping[str, Any] | None,
                      path: Path) -> None:
    if not masks:
        return
    by_name = {c.name: c for c in layers}
    for key, mask in masks.items():
        name = key
        for suffix in (".weight_mask", ".weight", ".mask"):
            if name.endswith(suffix):
                name = name[: -len(suffix)]
                break
        for p in _PREFIXES:
            if name not in by_name and name.startswith(p):
                name = name[len(p):]
        cand = by_name.get(name) or by_name.get(key)
        if cand is None or np.shape(mask) != np.shape(cand.weight):
            raise GraphStructureError(
                f"{path}: the mask {key!r} (shape {tuple(np.shape(mask))}) matches no layer "
                f"weight of that name and shape ({', '.join(by_name)})")
        cand.mask = mask


_WEIGHT_WORDS = {"w", "weight", "weights", "kernel", "kernels"}
_BIAS_WORDS = {"b", "bias", "biases"}
_MASK_WORDS = {"mask", "masks"}


def _role(name: str) -> tuple[str, str]:
    """('weight' | 'bias' | 'mask' | '', stem) of a free array name: the stem is the name
    without its role word, so that ``w1``/``b1`` and ``fc1``/``fc1_bias`` pair."""
    tokens = re.findall(r"[A-Za-z]+|\d+|[^A-Za-z\d]+", name)
    role = ""
    kept = []
    for tok in tokens:
        low = tok.lower()
        if not role and low in _WEIGHT_WORDS | _BIAS_WORDS | _MASK_WORDS:
            role = ("weight" if low in _WEIGHT_WORDS else
                    "bias" if low in _BIAS_WORDS else "mask")
            continue
        kept.append(tok)
    stem = re.sub(r"[^A-Za-z\d]+", "_", "".join(kept)).strip("_")
    return role, stem


def _skipped_summary(skipped: list[Skipped]) -> str:
    if not skipped:
        return ""
    kinds: dict[str, int] = {}
    for s in skipped:
        label = s.why.split(":")[0].split(" (")[0]
        kinds[label] = kinds.get(label, 0) + 1
    return "; skipped: " + ", ".join(f"{n} {k}" for k, n in kinds.items())
