"""The run directory of a training run: deciding whether to start or resume, and writing
its files (each atomically; names from :mod:`topo.io.run`).

Manifest fields (``run.json``): ``format``, ``version``, ``run_id``, ``status``
(``running``/``finished``), ``config`` (:meth:`TrainConfig.to_dict`), ``seed``,
``init_seed`` (the seed of the initial network: ``config.init_seed``, else ``seed``), ``method``,
``dataset``, ``widths``, ``task``, ``input_shape``, ``interactions`` (synthetic data),
``versions``, ``torch_threads``, ``backends``, ``started``, ``initial_density`` (the whole
network's when training starts, after a pruning at initialisation: connections over
possible connections of all layers), ``initial_densities`` and ``initial_connections`` (per
layer), ``target_density`` (the configuration's ``density``, the whole network's, or null),
and what the method adds (IMP and AP: ``levels``, ``level_densities``, the densities of the
layers they prune, AP's ``ap_share``; SiPP: ``levels``, ``level_densities``, ``sipp_mode``;
SSGD: ``optimizer_used``, ``prune_step`` and ``prune_density`` or ``prune_threshold``; nodes:
``keep_units``); once finished also ``finished``, ``final_snapshot`` and ``best_snapshot``
(relative paths), ``best_epoch``, ``stopped_early``, ``stopped_epoch``, ``final_density``
and ``final_densities``.

Metrics (``metrics.jsonl``, one object per epoch; epoch 0 = initialisation, or the start of an
IMP level after pruning and rewinding): ``epoch``, ``level`` (IMP only), ``step`` (optimiser
steps so far), ``loss`` (mean training loss of the epoch's mini-batches, each measured in the
forward pass of its optimiser step, without the L1 term; a batch whose step a mask update
replaced (RigL) does not count; at epoch 0 the loss of the whole training set),
``train_accuracy`` (over the same mini-batches) and ``test_loss``/``test_accuracy`` for
classification, or ``train_mse``/``test_mse`` for regression, ``val_loss`` when there is
validation data, ``wall_time`` (seconds this epoch took), and per layer ``density``,
``connections``, ``added`` and ``removed`` (connections added and removed that epoch; a
position SET drops and regrows in the same update counts in both, one RigL keeps in neither;
IMP's and SNIP's pruning shows at epoch 0), and the exact in-time over-parameterisation rate so
far, ``itop_rate`` per layer and ``itop_rate_network``
(:class:`~topo.train.callbacks.ITOPRate`; absent after a resume from a checkpoint that did not
keep it). For networks with relu hidden units also the dynamic dead neuron rate after the
epoch (:class:`~topo.train.callbacks.DeadNeuronRate`): ``dnr``, per hidden layer (``dnr_k``:
the units layer ``k`` writes; one entry fewer than the per-layer lists), and ``dnr_network``
(all hidden units), and the same over the units with a connection, ``dnr_connected`` and
``dnr_connected_network``, measured on the first 1024 training inputs.

Snapshot metadata: ``run_id``, ``method``, ``dataset``, ``seed``, ``init_seed`` (only when it
differs from ``seed``), ``epoch``, ``step``, ``activation``, ``task``, ``level`` (IMP),
``main_effects`` (with ``main_effects``: the univariate networks the graph does not hold,
:func:`topo.train.main_effects.describe`; also in the manifest) and the epoch's
``test_accuracy``/``test_mse``, ``test_loss`` and ``val_loss``. Layers are named
``layers.0``, ``layers.1``, ...

``best_snapshot`` is the snapshot with the lowest validation loss when early stopping is
on (the weights an early-stopped model should use; with IMP, that of the last level), and
the last snapshot otherwise. :func:`best_snapshot` reads it back.

The callbacks that write these files are in :mod:`topo.train.callbacks`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from topo.errors import ConfigError, UnreadableFileError
from topo.io.run import MANIFEST_NAME, METRICS_NAME, RUN_FORMAT, RunWriter, read_manifest
from topo.train.checkpoint import CHECKPOINT_DIR, checkpoint_path, load_checkpoint
from topo.train.config import TrainConfig

__all__ = ["RunDirectory", "RunStart", "run_id", "best_snapshot", "config_differences",
           "RUN_FORMAT"]

# options that say where data lives, not what is computed: they may differ on resume
_LOCATION_FIELDS = ("data_root", "download")
# options added after the first release enter the id only when they differ from their
# default, so that the ids of earlier runs stay what they were
_LATER_FIELDS = ("standardize", "init_seed", "rigl_reinit_regrown", "prune_output",
                 "main_effects", "validation",
                 "ssgd_eps", "ssgd_form", "ssgd_threshold",
                 "ap_share",
                 "sipp_mode", "sipp_batch_size",
                 "node_sparsity", "keep_units",
                 "gn_sketch_size", "gn_cg_tol", "gn_cg_iters", "model", "width")


def run_id(config: TrainConfig) -> str:
    """A deterministic id of a configuration: ``method-dataset-sSEED-<8 hex digits>``.

    Derived from the configuration only (not the folder), so two runs with the same
    configuration write bitwise-identical snapshots.
    """
    defaults = {f.name: f.default for f in dataclasses.fields(TrainConfig)}
    payload = {k: v for k, v in config.to_dict().items()
               if k not in _LOCATION_FIELDS
               and not (k in _LATER_FIELDS and v == defaults[k])}
    if payload.get("init_seed") == config.seed:   # the same run as without it
        del payload["init_seed"]
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]
    return f"{config.method}-{config.dataset}-s{config.seed}-{digest}"


def best_snapshot(run: str | Path) -> Path:
    """Path of the snapshot a finished run names as its best (see the module docstring).

    Raises
    ------
    UnreadableFileError
        Not a run directory, or the run has not finished.
    """
    manifest = read_manifest(run)
    rel = manifest.get("best_snapshot")
    if not rel:
        raise UnreadableFileError(f"{run}: the run has not finished (no best_snapshot yet)")
    return Path(run) / rel


def config_differences(a: TrainConfig, b: TrainConfig) -> list[str]:
    """``field: old vs new`` for every field that changes what a run computes."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{k}: {da[k]!r} vs {db[k]!r}" for k in da
            if k not in _LOCATION_FIELDS and da[k] != db.get(k)]


@dataclass
class RunStart:
    """How a run starts: ``finished`` (nothing to do), from ``state`` (a checkpoint's trainer
    state), or afresh (``state`` None); ``started`` is the run's start time;
    ``extended_from`` the number of epochs of a run that ``--epochs`` extends (else None)."""

    finished: bool
    state: dict[str, Any] | None
    started: str
    extended_from: int | None = None


class RunDirectory(RunWriter):
    """One run folder: the checks before training and the atomic writes during it (those of
    :class:`topo.io.run.RunWriter`, the writer :class:`topo.Recorder` uses too).

    Parameters
    ----------
    path
        The folder.
    config
        The run's configuration (its :func:`run_id` names the run).
    """

    def __init__(self, path: str | Path, config: TrainConfig) -> None:
        super().__init__(path)
        self.config = config
        self.run_id = run_id(config)
        self.checkpoint = checkpoint_path(self.path)

    def prepare(self, resume: bool) -> RunStart:
        """Check the folder and say how the run starts; nothing is written.

        Raises
        ------
        ConfigError
            The folder holds a different run, this run without ``resume``, or other files;
            or its checkpoint belongs to another run.
        UnreadableFileError
            A damaged checkpoint.
        """
        path = self.path
        now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{path}: output path exists and is not a folder")
        if (path / MANIFEST_NAME).is_file():
            manifest = read_manifest(path)
            try:
                stored = TrainConfig.from_dict(manifest.get("config", {}))
            except (ConfigError, TypeError) as exc:
                raise ConfigError(f"{path}: holds a run whose configuration this topo cannot "
                                  f"read ({exc})") from None
            diff = config_differences(stored, self.config)
            extended_from = None
            if resume and [d.split(":")[0] for d in diff] == ["epochs"]:
                extended_from = self._check_extension(manifest, stored.epochs)
            elif diff:
                raise ConfigError(
                    f"{path}: already holds a different run ({'; '.join(diff[:3])}); "
                    "choose another --out")
            if not resume:
                raise ConfigError(
                    f"{path}: already holds this run (status {manifest.get('status')!r}); "
                    "pass --resume to continue it, or choose another --out")
            # the run keeps its id when its configuration grows (an extended run)
            self.run_id = manifest.get("run_id", self.run_id)
            started = manifest.get("started", now)
            if manifest.get("status") == "finished" and extended_from is None:
                return RunStart(True, None, started)
            if not self.checkpoint.is_file():
                if extended_from is not None:
                    raise ConfigError(f"{path}: no checkpoint to continue the run from")
                return RunStart(False, None, started)
            state, stored_id = load_checkpoint(self.checkpoint)
            if stored_id != self.run_id:
                raise ConfigError(f"{path}: its checkpoint belongs to another run")
            return RunStart(False, state, started, extended_from)
        if path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir()):
            raise ConfigError(f"{path}: folder is not empty and holds no topo run; "
                              "choose an empty or new --out")
        return RunStart(False, None, now)

    def _check_extension(self, manifest: dict[str, Any], epochs: int) -> int:
        """``epochs`` of the stored run when the new configuration may extend it.

        Raises
        ------
        ConfigError
            Fewer epochs than the run has, a run that stopped early, or one that trains in
            levels (every level has ``epochs``).
        """
        path, new = self.path, self.config.epochs
        if new < epochs:
            raise ConfigError(f"{path}: the run has {epochs} epochs; --epochs can extend it "
                              f"(more than {epochs}), not shorten it to {new}")
        if manifest.get("stopped_early"):
            raise ConfigError(f"{path}: the run stopped early at epoch "
                              f"{manifest.get('stopped_epoch')}; it cannot be extended")
        if manifest.get("levels"):
            raise ConfigError(f"{path}: {self.config.method} trains every level for "
                              "--epochs; a run in levels cannot be extended")
        return epochs

    def clean(self, fresh: bool) -> None:
        """Delete temporary files a killed writer left (``.name.XXXX.tmp``) and, for a run
        that starts afresh, the metrics and checkpoint of an earlier attempt."""
        self.clean_temporary(self.path / CHECKPOINT_DIR)
        if fresh:
            for old in (self.path / METRICS_NAME, self.checkpoint):
                old.unlink(missing_ok=True)
