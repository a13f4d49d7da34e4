"""Training checkpoints: everything needed to resume a run bitwise identically, without pickle.

One file, ``RUN/checkpoint/state.ckpt``, in the safetensors layout (tensors plus a JSON
header; no executable content) but deliberately *not* named ``*.safetensors``, so that only
snapshots carry that suffix inside a run folder. It is written atomically after each epoch's
snapshot and metrics, so a run killed at any moment resumes from the last complete epoch and
recomputes the lost part with the same random numbers.

Held: per layer the connection indices, weights and bias; the optimiser state of every
parameter; the best weights so far (early stopping) and the IMP rewind point; the states of
the torch generator (data order, initial and regrown weights), the numpy generator (masks,
regrowth positions), torch's and Python's global generators; epoch, level, step and the
early-stopping counters.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from topo.errors import UnreadableFileError
from topo.io.atomic import atomic_write_bytes

__all__ = ["CHECKPOINT_DIR", "CHECKPOINT_NAME", "checkpoint_path", "save_checkpoint",
           "load_checkpoint"]

CHECKPOINT_DIR = "checkpoint"
CHECKPOINT_NAME = "state.ckpt"
_FORMAT = "topo.train-checkpoint"


def checkpoint_path(run_dir: str | Path) -> Path:
    """Where the checkpoint of a run lives."""
    return Path(run_dir) / CHECKPOINT_DIR / CHECKPOINT_NAME


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor],
                    meta: dict[str, Any]) -> Path:
    """Write tensors and a JSON-serialisable dict to ``path`` atomically."""
    from safetensors.torch import save

    blob = save({k: v.detach().contiguous() for k, v in tensors.items()},
                metadata={"format": _FORMAT, "meta": json.dumps(meta)})
    return atomic_write_bytes(path, blob)


def load_checkpoint(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Tensors and the JSON dict stored by :func:`save_checkpoint`.

    Raises
    ------
    UnreadableFileError
        Missing or damaged checkpoint.
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
        header = json.loads(raw[8:8 + header_len])
        meta_hdr = header.get("__metadata__", {})
        if meta_hdr.get("format") != _FORMAT:
            raise ValueError("not a topo training checkpoint")
        meta = json.loads(meta_hdr["meta"])
    except (SafetensorError, ValueError, KeyError, json.JSONDecodeError) as exc:
        raise UnreadableFileError(f"{path}: damaged training checkpoint ({exc})") from None
    return tensors, meta


def rng_states(torch_gen: torch.Generator, np_rng: np.random.Generator
               ) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The states of the run's and the global generators, as tensors and JSON."""
    tensors = {"rng.torch": torch_gen.get_state(), "rng.torch_global": torch.get_rng_state()}
    py_version, py_state, py_gauss = random.getstate()
    meta = {
        "numpy": _jsonable_bitgen_state(np_rng.bit_generator.state),
        "numpy_global": _jsonable_legacy(np.random.get_state()),
        "python": [py_version, list(py_state), py_gauss],
    }
    return tensors, meta


def restore_rng_states(tensors: dict[str, torch.Tensor], meta: dict[str, Any],
                       torch_gen: torch.Generator, np_rng: np.random.Generator) -> None:
    """Put back what :func:`rng_states` saved."""
    torch_gen.set_state(tensors["rng.torch"])
    torch.set_rng_state(tensors["rng.torch_global"])
    np_rng.bit_generator.state = meta["numpy"]
    kind, keys, pos, has_gauss, cached = meta["numpy_global"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    version, state, gauss = meta["python"]
    random.setstate((version, tuple(state), gauss))


def _jsonable_bitgen_state(state: dict[str, Any]) -> dict[str, Any]:
    out = {}
    for key, value in state.items():
        if isinstance(value, dict):
            out[key] = _jsonable_bitgen_state(value)
        elif isinstance(value, np.ndarray):
            out[key] = value.tolist()
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out


def _jsonable_legacy(state: tuple) -> list[Any]:
    kind, keys, pos, has_gauss, cached = state
    return [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)]
