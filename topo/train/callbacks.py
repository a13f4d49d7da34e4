"""Callbacks: everything the training loop does besides training.

The trainer calls every callback, in list order, at five moments (:class:`Callback`). Those
``topo train`` uses, in the order it passes them:

==================== =================================================================
:class:`DeadNeuronRate` adds the dynamic dead neuron rate of the hidden units to each row
:class:`EarlyStopping`  marks the epochs that improve the validation loss, stops a level
                        after ``patience`` epochs without, restores the best weights
                        before the next IMP level
:class:`SnapshotWriter` a snapshot per due epoch (every N, the first, the last, improved)
:class:`MetricsWriter`  ``metrics.jsonl``
:class:`Checkpointer`   the resume checkpoint: ``trainer.state_dict()``, nothing else
:class:`ProgressBar`    a tqdm bar on stderr
:class:`Manifest`       ``run.json`` at the start and at the end
==================== =================================================================

Order matters where one callback reads what an earlier one decided: the writers read
:attr:`EpochEnd.improved` and ``trainer.stop`` set by :class:`EarlyStopping`, and the
checkpoint must come after the snapshot and the metrics so that a resumed run never lacks
a file its checkpoint counts. A callback may add columns to :attr:`EpochEnd.row` for the
writers after it. A callback with state (``key`` not None) contributes
:meth:`~Callback.state_dict` to the trainer's, and so to the checkpoint.
"""

from __future__ import annotations

import json
import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from topo.io.run import snapshot_epoch, snapshot_name
from topo.train.checkpoint import save_checkpoint
from topo.train.rundir import RUN_FORMAT, RunDirectory

if TYPE_CHECKING:  # pragma: no cover
    from topo.train.config import TrainConfig
    from topo.train.data import Dataset
    from topo.train.methods import Changes
    from topo.train.trainer import Trainer

__all__ = ["EpochEnd", "Callback", "CallbackList", "EarlyStopping", "SnapshotWriter",
           "MetricsWriter", "Checkpointer", "ProgressBar", "Manifest", "DeadNeuronRate",
           "DNR_SAMPLES"]

DNR_SAMPLES = 1024
"""Training samples (the first, in the training split's order) the dead neuron rate is
measured on."""


@dataclass
class EpochEnd:
    """What the callbacks receive at the end of an epoch (and at each epoch 0).

    Attributes
    ----------
    row
        The epoch's metrics row (see :mod:`topo.train.rundir`).
    improved
        True when the epoch set a new best validation loss (:class:`EarlyStopping`).
    """

    row: dict[str, Any]
    improved: bool = False


class Callback:
    """Base class: every hook does nothing.

    ``key`` names the callback's state in a checkpoint; ``None`` (the default) means it has
    none.
    """

    key: ClassVar[str | None] = None

    def on_train_start(self, trainer: Trainer) -> None:
        """Before training, after initialisation or a resume (before the epoch-0 report of a
        fresh run)."""

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        """After every epoch's evaluation, and after each epoch 0."""

    def on_mask_update(self, trainer: Trainer, changes: Changes) -> None:
        """After every structural change a method made (``changes`` per layer)."""

    def on_level_end(self, trainer: Trainer) -> None:
        """Before the next level of a multi-level method (IMP) starts."""

    def on_train_end(self, trainer: Trainer) -> None:
        """After the last epoch of the last level."""

    def close(self) -> None:
        """At the very end, also when training failed or was interrupted."""

    def state_dict(self) -> dict[str, Any]:
        """The callback's state for a checkpoint (tensors allowed)."""
        return {}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put back what :meth:`state_dict` returned."""


class CallbackList:
    """Callbacks called in order; their states keyed by :attr:`Callback.key`."""

    def __init__(self, callbacks: Iterable[Callback] = ()) -> None:
        self.callbacks = list(callbacks)
        keys = [c.key for c in self.callbacks if c.key is not None]
        if len(keys) != len(set(keys)):
            raise ValueError(f"two callbacks share a state key: {sorted(keys)}")

    def __iter__(self):
        return iter(self.callbacks)

    def on_train_start(self, trainer: Trainer) -> None:
        for c in self.callbacks:
            c.on_train_start(trainer)

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        for c in self.callbacks:
            c.on_epoch_end(trainer, epoch)

    def on_mask_update(self, trainer: Trainer, changes: Changes) -> None:
        for c in self.callbacks:
            c.on_mask_update(trainer, changes)

    def on_level_end(self, trainer: Trainer) -> None:
        for c in self.callbacks:
            c.on_level_end(trainer)

    def on_train_end(self, trainer: Trainer) -> None:
        for c in self.callbacks:
            c.on_train_end(trainer)

    def close(self) -> None:
        for c in self.callbacks:
            c.close()

    def state_dict(self) -> dict[str, Any]:
        return {c.key: c.state_dict() for c in self.callbacks if c.key is not None}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for c in self.callbacks:
            if c.key is not None and c.key in state:
                c.load_state_dict(state[c.key])


class DeadNeuronRate(Callback):
    """Adds the dynamic dead neuron rate (DNR) of the hidden units to every row.

    Measured by :func:`topo.activity.dead_neuron_rate` on the network as it is at the end
    of the epoch (after any pruning), on a fixed evaluation batch: the first ``n_samples``
    training inputs. Columns: ``dnr`` (a list, one rate per hidden layer: ``dnr_k`` for
    the units layer ``k`` writes) and ``dnr_network`` (all hidden units together), over
    every unit as Liu et al. count them; ``dnr_connected`` and ``dnr_connected_network``,
    the same over the units that have a connection. Recorded for networks with relu hidden
    units and at least one hidden layer; rows of other networks are left as they are.

    Notes
    -----
    Liu, Ghosh, Tan & Motani (2023), "AP: selective activation for de-sparsifying pruned
    neural networks", TMLR (the rate and why pruning changes it).
    """

    def __init__(self, n_samples: int = DNR_SAMPLES) -> None:
        self.n_samples = n_samples
        self.inputs: np.ndarray | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        model = trainer.model
        if model.activation_name == "relu" and len(model.layers) > 1:
            self.inputs = trainer.data.train[0][:self.n_samples].numpy()

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        if self.inputs is None:
            return
        from topo.activity import dead_neuron_rate

        rate = dead_neuron_rate(trainer.model.to_graph(), self.inputs, activation="relu")
        epoch.row["dnr"] = rate.rates.tolist()
        epoch.row["dnr_network"] = rate.network
        epoch.row["dnr_connected"] = rate.connected_rates.tolist()
        epoch.row["dnr_connected_network"] = rate.connected_network


class EarlyStopping(Callback):
    """Stop a level when the validation loss has not improved for ``patience`` epochs.

    Marks each epoch that lowers the best validation loss (:attr:`EpochEnd.improved`) and
    keeps a copy of its weights; at the end of a level (IMP) puts them back, so the next
    level prunes the best network of this one, and starts the next level afresh. Epoch-0
    reports are not judged. Needs validation data (``val_loss`` in the row).
    """

    key = "early_stopping"

    def __init__(self, patience: int) -> None:
        self.patience = patience
        self.best: dict[str, Any] | None = None
        self.bad_epochs = 0

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        if trainer.epoch == 0:
            return
        val = epoch.row["val_loss"]
        if self.best is None or val < self.best["val_loss"]:
            self.best = {"val_loss": val, "epoch": trainer.epoch,
                         "weights": trainer.model.capture()}
            self.bad_epochs = 0
            epoch.improved = True
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= self.patience:
                trainer.stop = True

    def on_level_end(self, trainer: Trainer) -> None:
        if self.best is not None:
            trainer.model.restore(self.best["weights"])
        self.best, self.bad_epochs = None, 0

    def state_dict(self) -> dict[str, Any]:
        return {"best": self.best, "bad_epochs": self.bad_epochs}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.best, self.bad_epochs = state["best"], state["bad_epochs"]


class SnapshotWriter(Callback):
    """Writes a snapshot at epoch 0, every ``every`` epochs, at the last epoch of a level
    and at every improved epoch; remembers the last and, per level, the best.

    Parameters
    ----------
    run_dir
        Where to write.
    config
        The run's configuration (``snapshot_every``, ``epochs`` and the metadata fields).
    task, input_shape
        Of the data set, for the snapshot metadata.
    """

    key = "snapshots"
    _METRICS = ("test_accuracy", "test_mse", "test_loss", "val_loss")

    def __init__(self, run_dir: RunDirectory, config: TrainConfig, task: str,
                 input_shape: tuple[int, ...] | None) -> None:
        self.run_dir, self.config = run_dir, config
        self.task, self.input_shape = task, input_shape
        self.last: str | None = None
        self.best: dict[str, str] = {}

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        e = trainer.epoch
        last = e == trainer.epochs or trainer.stop
        if not (e == 0 or last or e % self.config.snapshot_every == 0 or epoch.improved):
            return
        name = snapshot_name(e, trainer.level)
        graph = trainer.model.to_graph(self.input_shape)
        graph.metadata.update(self._metadata(trainer, epoch.row))
        self.run_dir.save_snapshot(graph, name)
        self.last = name
        if epoch.improved:
            self.best[str(trainer.level or 0)] = name

    def best_of(self, level: int | None) -> str | None:
        """The best snapshot of ``level`` (None: no epoch improved in it)."""
        return self.best.get(str(level or 0))

    def _metadata(self, trainer: Trainer, row: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        meta: dict[str, Any] = {
            "run_id": self.run_dir.run_id, "method": cfg.method, "dataset": cfg.dataset,
            "seed": cfg.seed, "epoch": trainer.epoch, "step": trainer.step,
            "activation": cfg.activation, "task": self.task,
        }
        if trainer.level is not None:
            meta["level"] = trainer.level
        meta.update({key: row[key] for key in self._METRICS if key in row})
        return meta

    def state_dict(self) -> dict[str, Any]:
        return {"last": self.last, "best": dict(self.best)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.last, self.best = state["last"], dict(state["best"])


class MetricsWriter(Callback):
    """Appends each row to ``metrics.jsonl`` (rewritten whole, so never seen half-written);
    on resume, keeps the rows the checkpoint counts."""

    key = "metrics"

    def __init__(self, run_dir: RunDirectory) -> None:
        self.run_dir = run_dir
        self.rows: list[str] = []

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        self.rows.append(json.dumps(_jsonable(epoch.row), allow_nan=False))
        self.run_dir.write_metrics(self.rows)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": len(self.rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = self.run_dir.read_metrics()[:state["rows"]]


class Checkpointer(Callback):
    """Writes ``trainer.state_dict()`` as the run's checkpoint after every epoch."""

    def __init__(self, run_dir: RunDirectory) -> None:
        self.run_dir = run_dir

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        save_checkpoint(self.run_dir.checkpoint, trainer.state_dict(),
                        run_id=self.run_dir.run_id)


class ProgressBar(Callback):
    """A tqdm bar over all epochs of all levels, with the loss and test metric."""

    def __init__(self, description: str) -> None:
        self.description = description
        self.bar = None

    def on_train_start(self, trainer: Trainer) -> None:
        from tqdm.auto import tqdm

        epochs = trainer.epochs
        self.bar = tqdm(total=(trainer.method.levels + 1) * epochs,
                        initial=(trainer.level or 0) * epochs + trainer.epoch, unit="epoch",
                        desc=self.description, leave=True)

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        if trainer.epoch == 0:
            return
        row = epoch.row
        postfix = {"loss": f"{row['loss']:.4f}"}
        if "test_accuracy" in row:
            postfix["acc"] = f"{row['test_accuracy']:.4f}"
        if "test_mse" in row:
            postfix["mse"] = f"{row['test_mse']:.4g}"
        self.bar.update(1)
        self.bar.set_postfix(postfix, refresh=False)

    def on_level_end(self, trainer: Trainer) -> None:
        self.bar.update(trainer.epochs - trainer.epoch)   # epochs an early stop skipped

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class Manifest(Callback):
    """Writes ``run.json``: status ``running`` when a run starts afresh, ``finished`` with
    its final and best snapshots at the end (fields in :mod:`topo.train.rundir`).

    Parameters
    ----------
    run_dir, config
        The run.
    data
        Its data set (task, input shape, interactions).
    snapshots
        The run's :class:`SnapshotWriter` (final and best snapshot).
    started
        Start time of the run (kept across resumes).
    fresh
        Whether the run starts afresh (a resumed run keeps its manifest until the end).
    """

    def __init__(self, run_dir: RunDirectory, config: TrainConfig, data: Dataset,
                 snapshots: SnapshotWriter, *, started: str, fresh: bool) -> None:
        self.run_dir, self.config, self.data = run_dir, config, data
        self.snapshots, self.started, self.fresh = snapshots, started, fresh

    def on_train_start(self, trainer: Trainer) -> None:
        if self.fresh:
            self.run_dir.write_manifest(self._manifest(trainer, "running"))

    def on_train_end(self, trainer: Trainer) -> None:
        self.run_dir.write_manifest(self._manifest(trainer, "finished"))

    def _manifest(self, trainer: Trainer, status: str) -> dict[str, Any]:
        import scipy
        import torch

        import topo

        cfg, data = self.config, self.data
        manifest: dict[str, Any] = {
            "format": RUN_FORMAT,
            "version": 1,
            "run_id": self.run_dir.run_id,
            "status": status,
            "config": cfg.to_dict(),
            "seed": cfg.seed,
            "method": cfg.method,
            "dataset": cfg.dataset,
            "widths": trainer.model.widths,
            "task": data.task,
            "input_shape": list(data.input_shape) if data.input_shape else None,
            "interactions": [list(t) for t in data.interactions],
            "versions": {
                "topo": topo.__version__, "torch": torch.__version__,
                "numpy": np.__version__, "scipy": scipy.__version__,
                "python": platform.python_version(), "platform": platform.platform(),
            },
            "torch_threads": torch.get_num_threads(),
            "backends": ["sparse" if layer.uses_sparse else "dense"
                         for layer in trainer.model.layers],
            "started": self.started,
            **trainer.method.describe(),
        }
        if status == "finished":
            best = self.snapshots.best_of(trainer.level)
            manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            manifest["final_snapshot"] = self.snapshots.last
            manifest["best_snapshot"] = best or self.snapshots.last
            manifest["best_epoch"] = snapshot_epoch(best) if best else trainer.epoch
            manifest["stopped_early"] = trainer.stop
            manifest["stopped_epoch"] = trainer.epoch
        return manifest


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return None
    return value
