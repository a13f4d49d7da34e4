"""Training sparse networks and writing every epoch as a snapshot.

``from topo.train import TrainConfig, train``::

    run = train(TrainConfig(method="set", dataset="digits", arch=[64, 100, 100, 10]),
                "runs/set-s0")

Modules: :mod:`~topo.train.config` (hyper-parameters), :mod:`~topo.train.data` (data sets),
:mod:`~topo.train.model` (sparse MLP, dense and CSR paths), :mod:`~topo.train.methods`
(dense, static, SET, RigL, GMP, IMP, SNIP behind one drop-and-grow interface),
:mod:`~topo.train.loop` (the loop), :mod:`~topo.train.rundir` (run directory writer) and
:mod:`~topo.train.checkpoint` (resumable state without pickle). Torch is imported only when
training starts, so ``TrainConfig`` is cheap to import.
"""

from __future__ import annotations

import importlib
from typing import Any

from topo.train.config import TrainConfig

__all__ = ["TrainConfig", "train", "load_dataset", "best_snapshot"]

_LAZY = {
    "train": "topo.train.loop",
    "load_dataset": "topo.train.data",
    "best_snapshot": "topo.train.rundir",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'topo.train' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
