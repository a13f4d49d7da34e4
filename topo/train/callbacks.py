"""Callbacks: everything the training loop does besides training.

The trainer calls every callback, in list order, at five moments (:class:`Callback`). Those
``topo train`` uses, in the order it passes them:

========================== ================================================================
:class:`DeadNeuronRate`    adds the dynamic dead neuron rate of the hidden units to each row
:class:`EarlyStopping`     marks the epochs that improve the validation loss, stops a level
                           after ``patience`` epochs without, restores the best weights
                           before the next IMP level
:class:`ITOPRate`          the exact in-time over-parameterisation rate, per layer and for the
                           network, updated at every structural change, added to each row
:class:`ConnectivityWatch` warns when a structural change empties a layer or cuts outputs
                           off the inputs
:class:`SnapshotWriter`    a snapshot per due epoch (every N, the first, the last, improved)
:class:`MetricsWriter`     ``metrics.jsonl``
:class:`Checkpointer`      the resume checkpoint: ``trainer.state_dict()``, nothing else
:class:`ProgressBar`       a tqdm bar on stderr
:class:`Manifest`          ``run.json`` at the start and at the end
:class:`DensityReport`     (``topo train``) the density the network starts with, printed
========================== ================================================================

Order matters where one callback reads what an earlier one decided: the writers read
:attr:`EpochEnd.improved` and ``trainer.stop`` set by :class:`EarlyStopping`, and the
checkpoint must come after the snapshot and the metrics so that a resumed run never lacks
a file its checkpoint counts. A callback may add columns to :attr:`EpochEnd.row` for the
writers after it. A callback with state (``key`` not None) contributes
:meth:`~Callback.state_dict` to the trainer's, and so to the checkpoint.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from topo.io.run import is_run_dir, metrics_line, read_manifest, snapshot_epoch, snapshot_name
from topo.record import UnionTracker
from topo.train._text import count
from topo.train.checkpoint import save_checkpoint
from topo.train.rundir import RUN_FORMAT, RunDirectory

if TYPE_CHECKING:  # pragma: no cover
    from topo.train.config import TrainConfig
    from topo.train.data import Dataset
    from topo.train.methods import Changes
    from topo.train.trainer import Trainer

__all__ = ["EpochEnd", "Callback", "CallbackList", "EarlyStopping", "ITOPRate",
           "ConnectivityWatch", "SnapshotWriter", "MetricsWriter", "Checkpointer",
           "ProgressBar", "DensityReport", "Manifest", "DeadNeuronRate", "DNR_SAMPLES",
           "density_summary"]

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
        from topo.activity import dead_neuron_rate_of_layers

        content = trainer.model.snapshot_content()
        rate = dead_neuron_rate_of_layers(content.layers, content.biases, self.inputs,
                                          names=content.names)
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


class ITOPRate(Callback):
    """The in-time over-parameterisation (ITOP) rate, exactly: the fraction of a layer's
    possible connections that have been connections at some moment of training so far.

    The union of the connection sets is taken at the start of training and after every
    structural change (``on_mask_update``), so a connection grown and dropped between two
    snapshots counts, which a union of snapshots misses (that one is a lower bound). Each
    row gets ``itop_rate`` (per layer) and ``itop_rate_network``: the union's connections
    over the possible ones, summed over the layers the method may change (``prunable``;
    all layers when none is), as Liu et al.'s code counts the masked layers only. The
    rate never decreases; at epoch 0 it is the initial density. A run that starts dense
    (GMP, IMP, dense) has rate 1 throughout. The union is part of the checkpoint, so a
    resumed run reports what an uninterrupted one does; a run resumed from a checkpoint
    without it (written by an earlier topo) has no exact rate and gets no columns.

    Notes
    -----
    Liu, Yin, Mocanu & Pechenizkiy (2021), "Do we actually need dense
    over-parameterization? In-time over-parameterization in sparse training", ICML:
    ``R_s = ||Σ_t M_t||_0 / S``; their code (``fired_masks_update``) keeps the union per
    masked layer. The union is :class:`topo.record.UnionTracker`'s, the one
    :class:`topo.Recorder` keeps for a user's own loop: O(possible connections of the
    changed layers) per update, eight positions per operation; one bit per possible
    connection in the checkpoint.
    """

    key = "itop"

    def __init__(self) -> None:
        self.tracker = UnionTracker()
        self._restored: list[np.ndarray] | None = None   # a checkpoint's union, until used

    @property
    def ever(self) -> list[np.ndarray] | None:
        """Per layer, the flat boolean union of its connection sets so far (None: no exact
        rate for this run)."""
        return self.tracker.union if self.tracker.started else self._restored

    def on_train_start(self, trainer: Trainer) -> None:
        if self._restored is not None:
            self._resume(trainer)
        elif not self.tracker.started and trainer.step == 0:   # a fresh run
            self.tracker.observe(_flat_masks(trainer.model.layers))

    def on_mask_update(self, trainer: Trainer, changes: Changes) -> None:
        if self._restored is not None:
            self._resume(trainer)
        if not self.tracker.started:
            return
        layers = trainer.model.layers
        # layers the change leaves alone are passed as they were: no pass over them
        self.tracker.observe([_flat_mask(layer) if k in changes else self.tracker.previous[k]
                              for k, layer in enumerate(layers)])

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        if not self.tracker.started:
            return
        counts = np.array(self.tracker.counts(), dtype=np.int64)
        sizes = np.array(self.tracker.sizes(), dtype=np.int64)
        counted = np.asarray(trainer.prunable, dtype=bool)
        if not counted.any():
            counted[:] = True
        epoch.row["itop_rate"] = (counts / sizes).tolist()
        epoch.row["itop_rate_network"] = float(counts[counted].sum() / sizes[counted].sum())

    def _resume(self, trainer: Trainer) -> None:
        self.tracker.resume(self._restored, _flat_masks(trainer.model.layers))
        self._restored = None

    def state_dict(self) -> dict[str, Any]:
        import torch

        ever = self.ever
        if ever is None:
            return {"ever": None}
        return {"ever": [torch.from_numpy(np.packbits(u)) for u in ever],
                "sizes": [int(u.size) for u in ever]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.tracker = UnionTracker()
        if state.get("ever") is None:
            self._restored = None
            return
        self._restored = [np.unpackbits(packed.numpy(), count=size).astype(bool)
                          for packed, size in zip(state["ever"], state["sizes"], strict=True)]


class ConnectivityWatch(Callback):
    """Warns (:class:`~topo.train.sparsity.ConnectivityWarning`) when a structural change
    during training empties a layer, leaves output units without a path from the inputs, or
    cuts them all off, once for each (naming the epoch and step): the network trains on,
    but those outputs no longer depend on the input. Refusing a network that starts so is
    :func:`~topo.train.runner.train`'s."""

    def __init__(self) -> None:
        self.seen: set[str] = set()
        self.started = False

    def on_train_start(self, trainer: Trainer) -> None:
        self.started = True

    def on_mask_update(self, trainer: Trainer, changes: Changes) -> None:
        import warnings

        from topo.train.sparsity import ConnectivityWarning, connectivity

        if not self.started:   # pruning at initialisation: the runner checks its result
            return
        state = connectivity(trainer.model)
        kinds = [f"empty {k}" for k in state.empty_layers]
        kinds += ["disconnected"] if state.disconnected else (
            ["unreached"] if state.unreached_outputs else [])
        if set(kinds) <= self.seen:
            return
        self.seen.update(kinds)
        where = f"level {trainer.level}, " if trainer.level is not None else ""
        warnings.warn(f"{type(trainer.method).__name__} at {where}epoch {trainer.epoch}, "
                      f"step {trainer.step}: {'; '.join(state.problems)}",
                      ConnectivityWarning, stacklevel=2)


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
        content = trainer.model.snapshot_content(self.input_shape)
        content.metadata.update(self._metadata(trainer, epoch.row))
        self.run_dir.save_snapshot(content, name)
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
        if cfg.initialisation_seed() != cfg.seed:
            meta["init_seed"] = cfg.initialisation_seed()
        if cfg.main_effects:
            meta["main_effects"] = _main_effects(trainer)
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
        self.rows.append(metrics_line(epoch.row))
        self.run_dir.write_metrics(self.rows)

    def state_dict(self) -> dict[str, Any]:
        return {"rows": len(self.rows)}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.rows = self.run_dir.read_metrics()[:state["rows"]]


class Checkpointer(Callback):
    """Writes ``trainer.state_dict()`` as the run's checkpoint after every epoch;
    :attr:`saved` is the ``(level, epoch)`` of the last one this process wrote (None
    before)."""

    def __init__(self, run_dir: RunDirectory) -> None:
        self.run_dir = run_dir
        self.saved: tuple[int | None, int] | None = None

    def on_train_start(self, trainer: Trainer) -> None:
        if trainer.step > 0 or trainer.epoch > 0:   # resumed: the checkpoint holds this
            self.saved = (trainer.level, trainer.epoch)

    def on_epoch_end(self, trainer: Trainer, epoch: EpochEnd) -> None:
        save_checkpoint(self.run_dir.checkpoint, trainer.state_dict(),
                        run_id=self.run_dir.run_id)
        self.saved = (trainer.level, trainer.epoch)


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


class DensityReport(Callback):
    """Prints the network's density when training starts: overall (connections over
    possible connections of all layers, as ``topo info`` counts) and per layer, and the
    target when the configuration names one the run has not reached yet.

    Parameters
    ----------
    stream
        Where to print (``topo train``: stdout, or stderr with ``--json``).
    target
        The configuration's ``density`` (the whole network's), or None.
    """

    def __init__(self, stream: Any, target: float | None = None) -> None:
        self.stream, self.target = stream, target

    def on_train_start(self, trainer: Trainer) -> None:
        densities = density_summary(trainer.model)
        line = (f"density {densities['density']:.4g} overall "
                f"({densities['connections']} of "
                f"{count(densities['possible'], 'connection')}), "
                f"per layer {', '.join(f'{d:.4g}' for d in densities['densities'])}")
        if self.target is not None and abs(densities["density"] - self.target) > 5e-4:
            line += f"; target {self.target:.4g} overall"
        print(line, file=self.stream, flush=True)


def density_summary(model: Any) -> dict[str, Any]:
    """``densities`` and ``connections`` per layer, ``density`` overall, ``possible``."""
    layers = model.layers
    connections = [layer.n_connections for layer in layers]
    possible = sum(layer.size for layer in layers)
    return {"density": sum(connections) / possible, "densities": [layer.density
                                                                  for layer in layers],
            "connections": sum(connections), "layer_connections": connections,
            "possible": possible}


class Manifest(Callback):
    """Writes ``run.json``: status ``running`` when a run starts or resumes, ``finished``
    with its final and best snapshots at the end, ``interrupted`` when SIGINT or SIGTERM
    stopped it (:meth:`interrupted`; fields in :mod:`topo.train.rundir`). It keeps the
    density the network started with (part of the checkpoint, for a resumed run) and the
    history of ``--epochs`` extensions.

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
        Whether the run starts afresh.
    extended_from
        The epochs of the run this one extends (``--resume --epochs N``), else None.
    """

    key = "manifest"

    def __init__(self, run_dir: RunDirectory, config: TrainConfig, data: Dataset,
                 snapshots: SnapshotWriter, *, started: str, fresh: bool,
                 extended_from: int | None = None) -> None:
        self.run_dir, self.config, self.data = run_dir, config, data
        self.snapshots, self.started, self.fresh = snapshots, started, fresh
        self.extended_from = extended_from
        self.initial: dict[str, Any] | None = None
        self.extended: list[dict[str, Any]] = []

    def on_train_start(self, trainer: Trainer) -> None:
        if self.fresh:
            self.initial = _initial_fields(trainer.model)
        elif is_run_dir(self.run_dir.path):
            stored = read_manifest(self.run_dir.path)
            if self.initial is None:   # a checkpoint written before topo kept it
                self.initial = {k: stored[k] for k in _INITIAL if k in stored} or None
            self.extended = list(stored.get("extended", []))
        if self.extended_from is not None:
            self.extended.append({"from_epochs": self.extended_from,
                                  "to_epochs": self.config.epochs, "at": _now()})
        self.run_dir.write_manifest(self._manifest(trainer, "running"))

    def on_train_end(self, trainer: Trainer) -> None:
        self.run_dir.write_manifest(self._manifest(trainer, "finished"))

    def interrupted(self, trainer: Trainer, signal_name: str,
                    checkpointed: tuple[int | None, int] | None) -> None:
        """Mark the run ``interrupted`` (by ``signal_name``), naming the level and epoch its
        checkpoint holds (``None``: none yet), if the run has a manifest already."""
        if not is_run_dir(self.run_dir.path):
            return
        manifest = self._manifest(trainer, "interrupted")
        manifest.update({"interrupted": _now(), "interrupted_by": signal_name,
                         "resumes_after_epoch": None if checkpointed is None
                         else checkpointed[1]})
        if checkpointed is not None and checkpointed[0] is not None:
            manifest["resumes_after_level"] = checkpointed[0]
        self.run_dir.write_manifest(manifest)

    def state_dict(self) -> dict[str, Any]:
        return {"initial": self.initial}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.initial = state.get("initial")

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
            "init_seed": cfg.initialisation_seed(),
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
            **({"extended": self.extended} if self.extended else {}),
            **(self.initial or {}),
            "target_density": cfg.density,
            **({"main_effects": _main_effects(trainer)} if cfg.main_effects else {}),
            **trainer.method.describe(),
        }
        if status == "finished":
            best = self.snapshots.best_of(trainer.level)
            manifest["finished"] = _now()
            manifest["final_snapshot"] = self.snapshots.last
            manifest["best_snapshot"] = best or self.snapshots.last
            manifest["best_epoch"] = snapshot_epoch(best) if best else trainer.epoch
            manifest["stopped_early"] = trainer.stop
            manifest["stopped_epoch"] = trainer.epoch
            final = density_summary(trainer.model)
            manifest["final_density"] = final["density"]
            manifest["final_densities"] = final["densities"]
        return manifest


_INITIAL = ("initial_density", "initial_densities", "initial_connections")


def _main_effects(trainer: Trainer) -> dict[str, Any]:
    from topo.train.main_effects import describe

    widths = trainer.model.widths
    return describe(widths[0], widths[-1])


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def _initial_fields(model: Any) -> dict[str, Any]:
    summary = density_summary(model)
    return {"initial_density": summary["density"], "initial_densities": summary["densities"],
            "initial_connections": summary["layer_connections"]}


def _flat_mask(layer: Any) -> np.ndarray:
    """A sparse layer's connections as a flat boolean array over its ``n_out * n_in``
    positions."""
    mask = np.zeros(layer.size, dtype=bool)
    mask[layer.flat.numpy()] = True
    return mask


def _flat_masks(layers: Iterable[Any]) -> list[np.ndarray]:
    return [_flat_mask(layer) for layer in layers]
