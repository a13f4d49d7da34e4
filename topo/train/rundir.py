"""The run directory of a training run: manifest, metrics, snapshots and checkpoint.

:class:`RunWriter` is the snapshot/metrics callback of the loop: the loop hands it the
trainer after each epoch and it writes, in this order and each atomically, the snapshot
(:func:`topo.io.save_snapshot`), ``metrics.jsonl`` (rewritten whole, so it is never seen
half-written) and the checkpoint. File names come from :mod:`topo.io.run`.

Manifest fields (``run.json``): ``format``, ``version``, ``run_id``, ``status``
(``running``/``finished``), ``config`` (:meth:`TrainConfig.to_dict`), ``seed``, ``versions``,
``widths``, ``task``, ``input_shape``, ``interactions`` (synthetic data), ``started``,
``finished``, ``final_snapshot`` and ``best_snapshot`` (relative paths), ``best_epoch``,
``stopped_early``, ``stopped_epoch`` and, for IMP, ``levels`` and ``level_densities``.

Metrics (``metrics.jsonl``, one object per epoch; epoch 0 = initialisation, or the start of
an IMP level after pruning and rewinding): ``epoch``, ``level`` (IMP only), ``step``
(optimiser steps so far), ``loss`` (mean training loss of the epoch's mini-batches, without
the L1 term; at epoch 0 the loss of the whole training set), ``train_accuracy`` (over the
epoch's mini-batches) and ``test_accuracy``/``test_loss`` for classification, or
``train_mse``/``test_mse`` for regression, ``val_loss`` when there is validation data,
``wall_time`` (seconds this epoch took), and per layer ``density``, ``connections``,
``added`` and ``removed`` (connections added and removed that epoch; a position dropped and
regrown in the same update counts in both; IMP's and SNIP's pruning shows at epoch 0).

Snapshot metadata: ``run_id``, ``method``, ``dataset``, ``seed``, ``epoch``, ``step``,
``level`` (IMP), ``activation``, ``task`` and the epoch's ``test_accuracy``/``test_loss`` or
``test_mse`` and ``val_loss``. Layers are named ``layers.0``, ``layers.1``, ...

``best_snapshot`` is the snapshot with the lowest validation loss when early stopping is
on (the weights an early-stopped model should use; with IMP, that of the last level), and
the last snapshot otherwise. :func:`best_snapshot` reads it back.
"""

from __future__ import annotations

import hashlib
import json
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from topo.errors import ConfigError
from topo.io.atomic import atomic_write_text
from topo.io.run import MANIFEST_NAME, METRICS_NAME, SNAPSHOT_DIR, read_manifest, snapshot_name
from topo.train.checkpoint import (
    CHECKPOINT_DIR,
    checkpoint_path,
    load_checkpoint,
    restore_rng_states,
    rng_states,
    save_checkpoint,
)
from topo.train.config import TrainConfig

if TYPE_CHECKING:  # pragma: no cover
    from topo.graph import LayeredGraph
    from topo.train.loop import Trainer

__all__ = ["RunWriter", "run_id", "best_snapshot", "trainer_graph", "RUN_FORMAT"]

RUN_FORMAT = "topo.run"
# options that say where data lives, not what is computed: they may differ on resume
_LOCATION_FIELDS = ("data_root", "download")
# options added after the first release enter the id only when set, so that the ids of
# earlier runs stay what they were
_LATER_FIELDS = ("standardize",)


def run_id(config: TrainConfig) -> str:
    """A deterministic id of a configuration: ``method-dataset-sSEED-<8 hex digits>``.

    Derived from the configuration only (not the folder), so two runs with the same
    configuration write bitwise-identical snapshots.
    """
    payload = {k: v for k, v in config.to_dict().items()
               if k not in _LOCATION_FIELDS and not (k in _LATER_FIELDS and not v)}
    digest = hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:8]
    return f"{config.method}-{config.dataset}-s{config.seed}-{digest}"


def best_snapshot(run: str | Path) -> Path:
    """Path of the snapshot a finished run names as its best (see the module docstring).

    Raises
    ------
    UnreadableFileError
        Not a run directory, or the run has not finished.
    """
    from topo.errors import UnreadableFileError

    manifest = read_manifest(run)
    rel = manifest.get("best_snapshot")
    if not rel:
        raise UnreadableFileError(f"{run}: the run has not finished (no best_snapshot yet)")
    return Path(run) / rel


def trainer_graph(trainer: Trainer) -> LayeredGraph:
    """The trainer's current network as a LayeredGraph (the mask gives the structure)."""
    import scipy.sparse as sp

    from topo.graph import LayeredGraph

    layers, masks, biases = [], [], []
    for layer in trainer.model.layers:
        flat = layer.flat.numpy()
        rows, cols = np.divmod(flat, layer.n_in)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=layer.n_out))])
        shape = (layer.n_out, layer.n_in)
        values = layer.values.data.numpy().astype(np.float64)
        layers.append(sp.csr_matrix((values, cols, indptr), shape=shape))
        masks.append(sp.csr_matrix((np.ones(flat.size, dtype=np.int8), cols, indptr),
                                   shape=shape))
        biases.append(layer.bias.data.numpy().astype(np.float64))
    return LayeredGraph(layers, masks=masks, biases=biases,
                        names=[f"layers.{k}" for k in range(len(layers))],
                        input_shape=trainer.input_shape)


class RunWriter:
    """Writes and resumes one run directory (see the module docstring)."""

    def __init__(self, path: Path, config: TrainConfig) -> None:
        self.path = Path(path)
        self.config = config
        self.run_id = run_id(config)
        self.rows: list[str] = []
        self.resuming = False
        self.started = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        self.last_snapshot: str | None = None
        self.best_snapshots: dict[int, str] = {}

    # ------------------------------------------------------------ before training
    def prepare(self, resume: bool) -> bool:
        """Check the folder; False when there is nothing to do (a finished run, resumed).

        Raises
        ------
        ConfigError
            The folder holds a different run, this run without ``resume``, or other files.
        """
        path = self.path
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{path}: output path exists and is not a folder")
        manifest_file = path / MANIFEST_NAME
        if manifest_file.is_file():
            manifest = read_manifest(path)
            stored = manifest.get("config", {})
            try:
                stored_config = TrainConfig.from_dict(stored)
            except (ConfigError, TypeError) as exc:
                raise ConfigError(f"{path}: holds a run whose configuration this topo cannot "
                                  f"read ({exc})") from None
            diff = config_differences(stored_config, self.config)
            if diff:
                raise ConfigError(
                    f"{path}: already holds a different run ({'; '.join(diff[:3])}); "
                    "choose another --out")
            if not resume:
                raise ConfigError(
                    f"{path}: already holds this run (status {manifest.get('status')!r}); "
                    "pass --resume to continue it, or choose another --out")
            if manifest.get("status") == "finished":
                return False
            self.resuming = checkpoint_path(path).is_file()
            self.started = manifest.get("started", self.started)
            return True
        if path.is_dir() and any(not p.name.startswith(".") for p in path.iterdir()):
            raise ConfigError(f"{path}: folder is not empty and holds no topo run; "
                              "choose an empty or new --out")
        return True

    def start(self, trainer: Trainer) -> None:
        """Resume from the checkpoint, or write the manifest and the epoch-0 snapshot."""
        _remove_temporary_files(self.path)
        if self.resuming:
            self._load(trainer)
            return
        for old in (self.path / METRICS_NAME, checkpoint_path(self.path)):
            old.unlink(missing_ok=True)
        self._write_manifest(trainer, status="running")
        self.epoch_done(trainer, trainer.evaluate_record(0.0))

    # ------------------------------------------------------------ per epoch
    def epoch_done(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """Write the snapshot (when due), the metrics row and the checkpoint of an epoch."""
        cfg = self.config
        epoch = trainer.epoch
        level = trainer.level if trainer.levels else None
        last = epoch == cfg.epochs or trainer.stopped_early
        improved = trainer.best is not None and trainer.best["epoch"] == epoch
        if epoch == 0 or last or epoch % cfg.snapshot_every == 0 or improved:
            name = snapshot_name(epoch, level)
            graph = trainer_graph(trainer)
            graph.metadata.update(self._snapshot_metadata(trainer, record))
            from topo.io import save_snapshot

            save_snapshot(graph, self.path / name)
            self.last_snapshot = name
            if improved:
                self.best_snapshots[trainer.level] = name
        self.rows.append(json.dumps(_jsonable(record), allow_nan=False))
        atomic_write_text(self.path / METRICS_NAME, "\n".join(self.rows) + "\n")
        self._save(trainer)

    def finish(self, trainer: Trainer) -> None:
        """Mark the run finished and name its final and best snapshots."""
        self._write_manifest(trainer, status="finished")

    # ------------------------------------------------------------ manifest
    def _write_manifest(self, trainer: Trainer, status: str) -> None:
        import scipy

        import topo

        cfg = self.config
        manifest: dict[str, Any] = {
            "format": RUN_FORMAT,
            "version": 1,
            "run_id": self.run_id,
            "status": status,
            "config": cfg.to_dict(),
            "seed": cfg.seed,
            "method": cfg.method,
            "dataset": cfg.dataset,
            "widths": trainer.widths,
            "task": trainer.task,
            "input_shape": list(trainer.input_shape) if trainer.input_shape else None,
            "interactions": [list(t) for t in trainer.interactions],
            "versions": {
                "topo": topo.__version__, "torch": torch.__version__,
                "numpy": np.__version__, "scipy": scipy.__version__,
                "python": platform.python_version(), "platform": platform.platform(),
            },
            "torch_threads": trainer.threads,
            "backends": ["sparse" if layer.uses_sparse else "dense"
                         for layer in trainer.model.layers],
            "started": self.started,
        }
        if trainer.levels:
            manifest["levels"] = trainer.levels
            manifest["level_densities"] = [
                (1.0 - cfg.imp_rate) ** lev for lev in range(trainer.levels + 1)]
        if status == "finished":
            manifest["finished"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
            manifest["final_snapshot"] = self.last_snapshot
            best = self.best_snapshots.get(trainer.level)
            manifest["best_snapshot"] = best or self.last_snapshot
            manifest["best_epoch"] = trainer.best["epoch"] if (
                best and trainer.best) else trainer.epoch
            manifest["stopped_early"] = trainer.stopped_early
            manifest["stopped_epoch"] = trainer.epoch
        atomic_write_text(self.path / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")

    def _snapshot_metadata(self, trainer: Trainer, record: dict[str, Any]) -> dict[str, Any]:
        cfg = self.config
        meta: dict[str, Any] = {
            "run_id": self.run_id, "method": cfg.method, "dataset": cfg.dataset,
            "seed": cfg.seed, "epoch": trainer.epoch, "step": trainer.step,
            "activation": cfg.activation, "task": trainer.task,
        }
        if trainer.levels:
            meta["level"] = trainer.level
        for key in ("test_accuracy", "test_mse", "test_loss", "val_loss"):
            if key in record:
                meta[key] = record[key]
        return meta

    # ------------------------------------------------------------ checkpoint
    def _save(self, trainer: Trainer) -> None:
        tensors: dict[str, torch.Tensor] = {}
        for k, layer in enumerate(trainer.model.layers):
            tensors[f"layer.{k}.flat"] = layer.flat
            tensors[f"layer.{k}.values"] = layer.values.data
            tensors[f"layer.{k}.bias"] = layer.bias.data
        params = [p for g in trainer.optimizer.param_groups for p in g["params"]]
        opt_keys: dict[str, list[str]] = {}
        for i, p in enumerate(params):
            state = trainer.optimizer.state.get(p, {})
            keys = []
            for key, value in state.items():
                if isinstance(value, torch.Tensor):
                    tensors[f"opt.{i}.{key}"] = value
                    keys.append(key)
            opt_keys[str(i)] = keys
        for prefix, state in (("best", trainer.best["state"] if trainer.best else None),
                              ("rewind", trainer.rewind_point)):
            if state is not None:
                for k, (flat, values, bias) in enumerate(state):
                    tensors[f"{prefix}.{k}.flat"] = torch.from_numpy(flat)
                    tensors[f"{prefix}.{k}.values"] = values
                    tensors[f"{prefix}.{k}.bias"] = bias
        rng_t, rng_meta = rng_states(trainer.torch_gen, trainer.np_rng)
        tensors.update(rng_t)
        meta = {
            "run_id": self.run_id, "epoch": trainer.epoch, "level": trainer.level,
            "step": trainer.step, "bad_epochs": trainer.bad_epochs,
            "stopped_early": trainer.stopped_early,
            "best": None if trainer.best is None else {
                "val_loss": trainer.best["val_loss"], "epoch": trainer.best["epoch"]},
            "has_rewind": trainer.rewind_point is not None,
            "opt_keys": opt_keys, "rng": rng_meta, "metrics_rows": len(self.rows),
            "last_snapshot": self.last_snapshot,
            "best_snapshots": {str(k): v for k, v in self.best_snapshots.items()},
        }
        save_checkpoint(checkpoint_path(self.path), tensors, meta)

    def _load(self, trainer: Trainer) -> None:
        tensors, meta = load_checkpoint(checkpoint_path(self.path))
        if meta.get("run_id") != self.run_id:
            raise ConfigError(f"{self.path}: its checkpoint belongs to another run")
        n_layers = len(trainer.model.layers)
        for k, layer in enumerate(trainer.model.layers):
            layer.set_structure(tensors[f"layer.{k}.flat"].numpy(),
                                tensors[f"layer.{k}.values"])
            layer.bias.data = tensors[f"layer.{k}.bias"].clone()
        trainer.reset_optimizer()
        params = [p for g in trainer.optimizer.param_groups for p in g["params"]]
        for i, p in enumerate(params):
            keys = meta["opt_keys"].get(str(i), [])
            if keys:
                trainer.optimizer.state[p] = {key: tensors[f"opt.{i}.{key}"].clone()
                                              for key in keys}

        def state(prefix: str):
            return [(tensors[f"{prefix}.{k}.flat"].numpy().copy(),
                     tensors[f"{prefix}.{k}.values"].clone(),
                     tensors[f"{prefix}.{k}.bias"].clone()) for k in range(n_layers)]

        trainer.best = None if meta["best"] is None else {**meta["best"], "state": state("best")}
        trainer.rewind_point = state("rewind") if meta["has_rewind"] else None
        trainer.epoch, trainer.level, trainer.step = meta["epoch"], meta["level"], meta["step"]
        trainer.bad_epochs, trainer.stopped_early = meta["bad_epochs"], meta["stopped_early"]
        restore_rng_states(tensors, meta["rng"], trainer.torch_gen, trainer.np_rng)
        metrics = self.path / METRICS_NAME
        lines = metrics.read_text(encoding="utf-8").splitlines() if metrics.is_file() else []
        self.rows = [line for line in lines if line.strip()][:meta["metrics_rows"]]
        self.last_snapshot = meta["last_snapshot"]
        self.best_snapshots = {int(k): v for k, v in meta["best_snapshots"].items()}


def config_differences(a: TrainConfig, b: TrainConfig) -> list[str]:
    """``field: old -> new`` for every field that changes what a run computes."""
    da, db = a.to_dict(), b.to_dict()
    return [f"{k}: {da[k]!r} vs {db[k]!r}" for k in da
            if k not in _LOCATION_FIELDS and da[k] != db.get(k)]


def _remove_temporary_files(path: Path) -> None:
    """Delete temporary files a killed writer left (``.name.XXXX.tmp``)."""
    for sub in (path, path / SNAPSHOT_DIR, path / CHECKPOINT_DIR):
        if sub.is_dir():
            for tmp in sub.rglob(".*.tmp"):
                tmp.unlink(missing_ok=True)


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
