"""Training checkpoints: a trainer's ``state_dict()`` in one file, without pickle.

One file, ``RUN/checkpoint/state.ckpt``, in the safetensors layout written by topo's one
safetensors writer (:func:`topo.io.snapshot.safetensors_bytes`; tensors plus a JSON header,
no executable content) but deliberately *not* named ``*.safetensors``, so that only
snapshots carry that suffix inside a run folder. It is written atomically after each epoch's
snapshot and metrics, so a run killed at any moment resumes from the last complete epoch and
recomputes the lost part with the same random numbers.

What it holds is exactly :meth:`topo.train.trainer.Trainer.state_dict`: a nested structure of
dicts (string keys), lists, JSON values and tensors. The tensors are stored under their path
in the structure (``model.0.values``), the rest as JSON in the header (``state``), with each
tensor replaced by ``{"__tensor__": name, "shape": [...]}``.

Header fields: ``format`` (``topo.train-checkpoint``), ``version`` (``2``), ``run_id``,
``state``. Version 1 (topo 0.1.0 before the training core was split into callbacks) stored
named trainer attributes; :func:`load_checkpoint` converts it, so a run killed under that
version still resumes.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from topo.errors import UnreadableFileError
from topo.io.atomic import atomic_write_bytes
from topo.io.snapshot import safetensors_bytes

__all__ = ["CHECKPOINT_DIR", "CHECKPOINT_NAME", "CHECKPOINT_FORMAT", "CHECKPOINT_VERSION",
           "checkpoint_path", "save_checkpoint", "load_checkpoint", "generator_state",
           "restore_generators", "optimizer_state", "load_optimizer_state", "parameter_values",
           "load_parameter_values"]

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_NAME = "state.ckpt"
CHECKPOINT_FORMAT = "topo.train-checkpoint"
CHECKPOINT_VERSION = 2
_TENSOR = "__tensor__"


def checkpoint_path(run_dir: str | Path) -> Path:
    """Where the checkpoint of a run lives."""
    return Path(run_dir) / CHECKPOINT_DIR / CHECKPOINT_NAME


def save_checkpoint(path: str | Path, state: dict[str, Any], *, run_id: str) -> Path:
    """Write a state structure (see the module docstring) to ``path`` atomically.

    Raises
    ------
    TypeError
        A dict key that is not a string, or a value that is neither JSON nor a tensor.
    """
    tensors: dict[str, np.ndarray] = {}
    skeleton = _flatten(state, "", tensors)
    header = {"format": CHECKPOINT_FORMAT, "version": str(CHECKPOINT_VERSION),
              "run_id": run_id, "state": json.dumps(skeleton)}
    return atomic_write_bytes(path, safetensors_bytes(tensors, header))


def load_checkpoint(path: str | Path) -> tuple[dict[str, Any], str | None]:
    """The state structure and run id stored by :func:`save_checkpoint` (or by version 1).

    Raises
    ------
    UnreadableFileError
        Missing, damaged or foreign file, or a version this topo does not know.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFileError(f"{path}: no training checkpoint") from None
    try:
        tensors = load(raw)
        header_len = int.from_bytes(raw[:8], "little")
        meta = json.loads(raw[8:8 + header_len]).get("__metadata__", {})
        if meta.get("format") != CHECKPOINT_FORMAT:
            raise ValueError("not a topo training checkpoint")
        version = meta.get("version", "1")
        if version == "1":
            old = json.loads(meta["meta"])
            return _from_version_1(tensors, old), old.get("run_id")
        if version != str(CHECKPOINT_VERSION):
            raise ValueError(f"checkpoint version {version} is newer than this topo reads")
        return _unflatten(json.loads(meta["state"]), tensors), meta.get("run_id")
    except (SafetensorError, ValueError, KeyError, TypeError, json.JSONDecodeError) as exc:
        raise UnreadableFileError(f"{path}: damaged training checkpoint ({exc})") from None


def generator_state(generator: torch.Generator, rng: np.random.Generator) -> dict[str, Any]:
    """The states of the run's torch and numpy generators and of the global ones (torch,
    numpy, Python), for a checkpoint."""
    py_version, py_state, py_gauss = random.getstate()
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": generator.get_state(),
        "torch_global": torch.get_rng_state(),
        "numpy": _plain(rng.bit_generator.state),
        "numpy_global": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "python": [py_version, list(py_state), py_gauss],
    }


def restore_generators(state: dict[str, Any], generator: torch.Generator,
                       rng: np.random.Generator) -> None:
    """Put back what :func:`generator_state` captured."""
    generator.set_state(state["torch"])
    torch.set_rng_state(state["torch_global"])
    rng.bit_generator.state = state["numpy"]
    kind, keys, pos, has_gauss, cached = state["numpy_global"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, py_state, gauss = state["python"]
    random.setstate((version, tuple(py_state), gauss))


def optimizer_state(optimizer: torch.optim.Optimizer) -> list[dict[str, Any]]:
    """The optimiser's per-parameter state, one dict per parameter in the order of its
    parameter groups (empty for a parameter without state)."""
    return [optimizer.state.get(p, {}) for g in optimizer.param_groups for p in g["params"]]


def load_optimizer_state(optimizer: torch.optim.Optimizer,
                         saved: Sequence[dict[str, Any]]) -> None:
    """Give a fresh optimiser the state :func:`optimizer_state` captured (copied).

    Raises
    ------
    ValueError
        When ``saved`` holds a different number of parameters than the optimiser.
    """
    params = [p for g in optimizer.param_groups for p in g["params"]]
    for p, state in zip(params, saved, strict=True):
        if state:
            optimizer.state[p] = {k: v.clone() if torch.is_tensor(v) else v
                                  for k, v in state.items()}


def parameter_values(params: Sequence[torch.Tensor]) -> list[torch.Tensor]:
    """Copies of the values of ``params``."""
    return [p.data.clone() for p in params]


def load_parameter_values(params: Sequence[torch.Tensor],
                          saved: Sequence[torch.Tensor]) -> None:
    """Copy what :func:`parameter_values` captured back into ``params``, in place."""
    for p, value in zip(params, saved, strict=True):
        p.data.copy_(value)


def _flatten(value: Any, name: str, tensors: dict[str, np.ndarray]) -> Any:
    if isinstance(value, torch.Tensor):
        array = value.detach().cpu().contiguous().numpy()
        tensors[name] = array
        return {_TENSOR: name, "shape": list(array.shape)}
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise TypeError(f"checkpoint state: key {key!r} under {name!r} is not a string")
            out[key] = _flatten(item, f"{name}.{key}" if name else key, tensors)
        return out
    if isinstance(value, (list, tuple)):
        return [_flatten(item, f"{name}.{i}", tensors) for i, item in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"checkpoint state: {name!r} holds a {type(value).__name__}")


def _unflatten(value: Any, tensors: dict[str, torch.Tensor]) -> Any:
    if isinstance(value, dict):
        if _TENSOR in value:
            return tensors[value[_TENSOR]].reshape(value["shape"])
        return {key: _unflatten(item, tensors) for key, item in value.items()}
    if isinstance(value, list):
        return [_unflatten(item, tensors) for item in value]
    return value


def _plain(state: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out[key] = _plain(value)
        elif isinstance(value, np.ndarray):
            out[key] = value.tolist()
        else:
            out[key] = value
    return out


def _from_version_1(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    """The version-2 state of a version-1 checkpoint (named trainer attributes)."""
    n_layers = sum(1 for key in tensors if key.startswith("layer.") and key.endswith(".flat"))

    def layers(prefix: str) -> list[dict[str, torch.Tensor]]:
        return [{part: tensors[f"{prefix}.{k}.{part}"] for part in ("flat", "values", "bias")}
                for k in range(n_layers)]

    rng = meta["rng"]
    best = meta["best"]
    return {
        "epoch": meta["epoch"], "step": meta["step"], "level": meta["level"],
        "stop": meta["stopped_early"],
        "model": layers("layer"),
        "optimizer": [{key: tensors[f"opt.{i}.{key}"] for key in meta["opt_keys"][str(i)]}
                      for i in range(len(meta["opt_keys"]))],
        "generators": {"torch": tensors["rng.torch"],
                       "torch_global": tensors["rng.torch_global"],
                       "numpy": rng["numpy"], "numpy_global": rng["numpy_global"],
                       "python": rng["python"]},
        "method": {"rewind_point": layers("rewind") if meta["has_rewind"] else None},
        "callbacks": {
            "early_stopping": {
                "best": None if best is None else {**best, "weights": layers("best")},
                "bad_epochs": meta["bad_epochs"]},
            "snapshots": {"last": meta["last_snapshot"], "best": meta["best_snapshots"]},
            "metrics": {"rows": meta["metrics_rows"]},
        },
    }
