"""Training sparse networks and writing every epoch as a snapshot.

``from topo.train import TrainConfig, train``::

    run = train(TrainConfig(method="set", dataset="digits", arch=[64, 100, 100, 10]),
                "runs/set-s0")

Modules, from the configuration down to the loop:

- :mod:`~topo.train.config` (hyper-parameters) and :mod:`~topo.train.registry` (every name a
  configuration may use: methods, optimisers, activations, weight initialisations);
- :mod:`~topo.train.data` and :mod:`~topo.train.synthetic` (data sets);
- :mod:`~topo.train.model` (sparse MLP, dense and CSR paths), :mod:`~topo.train.sparsity`
  (ER/ERK densities, random masks), :mod:`~topo.train.initialization` (initial weights),
  :mod:`~topo.train.optim` (optimisers, L1 penalty);
- :mod:`~topo.train.methods` (dense, static, SET, RigL, GMP, IMP, SNIP, SSGD, AP, SiPP,
  node sub-networks: drop and grow rules plus a schedule, or a pruner);
- :mod:`~topo.train.trainer` (the loop), :mod:`~topo.train.steps` (how a mini-batch becomes
  an update: the gradient step, or :mod:`~topo.train.sketched_gn`'s Gauss-Newton step),
  :mod:`~topo.train.callbacks` (dead neuron rate, snapshots, metrics, checkpoint, early
  stopping, progress, manifest), :mod:`~topo.train.rundir` (the run directory),
  :mod:`~topo.train.checkpoint` (resumable state without pickle);
- :mod:`~topo.train.runner` (:func:`train`, :func:`build_trainer`), and
  :mod:`~topo.train.search` (random search in node space over many runs).

Torch is imported only when training starts, so ``TrainConfig`` is cheap to import.

Where new things go: a sparsity method is a :class:`~topo.train.methods.MaskUpdater` (drop and
grow rules, a schedule) or a :class:`~topo.train.methods.Pruner` (a saliency, one top-k) plus
an entry in :data:`~topo.train.registry.METHODS`; a method that trains in rounds names a
driver (IMP's :func:`~topo.train.methods.train_levels`, which AP and SiPP reuse); an
optimiser is a function in :mod:`~topo.train.optim` plus an entry in
:data:`~topo.train.registry.OPTIMIZERS`, and one that needs more than the gradient also a
step rule (:mod:`~topo.train.steps`, chosen by :func:`~topo.train.optim.step_rule`); anything
measured or written during training (a per-update statistic, a per-epoch metric, a file) is
a :class:`~topo.train.callbacks.Callback`: ``on_mask_update`` sees every structural change,
``on_epoch_end`` may add columns to the row before the writers store it. A layer kind other
than :class:`~topo.train.model.SparseLinear` offers the same connection-set interface
(``flat``, ``values``, ``bias``, ``size``, ``set_structure``, ``capture``/``restore``,
``forward(x, weight=None)``) and every method works on it unchanged.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

from topo.train.config import TrainConfig

__all__ = ["TrainConfig", "train", "build_trainer", "Trainer", "Callback", "load_dataset",
           "best_snapshot"]

_RUNNER = ("train", "build_trainer")


def __getattr__(name: str) -> Any:
    # torch-heavy names are imported on first use (plain imports, nothing dynamic)
    module: ModuleType
    if name in _RUNNER:
        from topo.train import runner as module
    elif name == "Trainer":
        from topo.train import trainer as module
    elif name == "Callback":
        from topo.train import callbacks as module
    elif name == "load_dataset":
        from topo.train import data as module
    elif name == "best_snapshot":
        from topo.train import rundir as module
    else:
        raise AttributeError(f"module 'topo.train' has no attribute {name!r}")
    value = getattr(module, name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
