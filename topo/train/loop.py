"""The training loop: one short loop, with the run directory and schedules kept outside it.

:func:`train` prepares the run directory, builds a :class:`Trainer` and drives it level by
level (one level unless the method is IMP) and epoch by epoch. Writing files is the job of
:class:`topo.train.rundir.RunWriter` (snapshots, metrics, manifest, checkpoint); structural
changes are the job of the method (:mod:`topo.train.methods`). The loop only trains,
evaluates and calls them.

Per epoch, in order: the method's epoch hook (SET rewires here), the mini-batch steps (RigL
and GMP act between steps), evaluation, then snapshot, metrics and checkpoint, each written
atomically. Reproducibility: every random number comes from the run's own torch and numpy
generators (seeded with ``config.seed``) whose states are checkpointed, and torch runs with
a number of threads fixed by the configuration (1 for networks under 200,000 connections,
2 above), so the same seed on the same machine gives bitwise-identical weights, masks and
metadata in every snapshot, resumed or not.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from topo.errors import ConfigError
from topo.train.config import TrainConfig
from topo.train.data import Dataset, load_dataset, standardized
from topo.train.methods import (
    IMP,
    LayerChange,
    Method,
    er_densities,
    erk_densities,
    make_method,
    random_structure,
)
from topo.train.model import SparseLinear, SparseMLP, draw_weights

__all__ = ["train", "Trainer", "build_trainer"]

DEFAULT_HIDDEN = (100, 100)
_EVAL_BATCH = 8192
SMALL_NETWORK = 200_000


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          progress: bool = True) -> Path:
    """Train a network as ``config`` says and write its run directory.

    Parameters
    ----------
    config
        The run's hyper-parameters.
    out_dir
        The run directory to create (or to resume).
    resume
        Continue the run in ``out_dir`` from its last checkpoint (its configuration must
        match); a finished run is left as it is. A missing or empty folder starts a new run.
    progress
        Show a progress bar (epoch, loss, accuracy) on stderr.

    Returns
    -------
    Path
        ``out_dir``.

    Raises
    ------
    ConfigError
        Invalid configuration, an architecture that does not fit the data, or ``out_dir``
        holding a different run (or this run without ``resume``).
    UnreadableFileError
        Data files missing or damaged.

    Notes
    -----
    Layout and file names: :mod:`topo.io.run`. The checkpoint:
    :mod:`topo.train.checkpoint`.
    """
    from topo.train.rundir import RunWriter

    config.validate()
    writer = RunWriter(Path(out_dir), config)
    if not writer.prepare(resume):
        return writer.path
    threads = torch.get_num_threads()
    try:
        trainer = build_trainer(config)
        writer.start(trainer)
        trainer.run(writer, progress=progress)
        writer.finish(trainer)
    finally:
        torch.set_num_threads(threads)
    return writer.path


def build_trainer(config: TrainConfig, data: Dataset | None = None) -> Trainer:
    """A fresh :class:`Trainer` (data loaded, network initialised, method applied at init)."""
    if data is None:
        data = load_dataset(config.dataset, seed=config.seed, n_samples=config.n_samples,
                            root=config.data_root, download=config.download,
                            test_fraction=config.test_fraction)
        if config.standardize:
            data = standardized(data)
    return Trainer(config, data)


class Trainer:
    """The state of one run: data, network, optimiser, generators, counters.

    Parameters
    ----------
    config
        The run's configuration.
    data
        The data set (see :func:`topo.train.data.load_dataset`).
    """

    def __init__(self, config: TrainConfig, data: Dataset) -> None:
        self.config = config
        self.method: Method = make_method(config.method)
        self.widths = resolve_arch(config.arch, data)
        self.task = data.task
        self.input_shape = data.input_shape
        self.interactions = data.interactions
        self.torch_gen = torch.Generator().manual_seed(config.seed)
        self.np_rng = np.random.Generator(np.random.PCG64(config.seed))
        self._set_data(data)
        n_layers = len(self.widths) - 1
        self.prunable = [config.sparse_output or k < n_layers - 1 for k in range(n_layers)]
        self.densities = self._initial_densities()
        self.model = self._build_model()
        n_connections = sum(layer.n_connections for layer in self.model.layers)
        self.threads = config.threads or (1 if n_connections < SMALL_NETWORK else 2)
        torch.set_num_threads(self.threads)
        self.loss_fn = (torch.nn.functional.cross_entropy if self.task == "classification"
                        else _mse)
        self.optimizer = self._make_optimizer()
        self.levels = config.n_imp_levels() if isinstance(self.method, IMP) else 0
        self.level = 0
        self.epoch = 0
        self.step = 0
        self.steps_per_epoch = -(-self.n_train // config.batch_size)
        self.total_steps = self.steps_per_epoch * config.epochs
        self.changes = [LayerChange() for _ in range(n_layers)]
        self.rewind_point: list[tuple[np.ndarray, torch.Tensor, torch.Tensor]] | None = None
        self.best: dict[str, Any] | None = None
        self.bad_epochs = 0
        self.stopped_early = False
        if isinstance(self.method, IMP) and config.imp_rewind_step == 0:
            self.rewind_point = self.capture()
        self.method.after_init(self)

    # ------------------------------------------------------------------ set-up
    def _set_data(self, data: Dataset) -> None:
        cfg = self.config
        X_val, y_val = data.X_val, data.y_val
        X_train, y_train = data.X_train, data.y_train
        if cfg.early_stopping_patience is not None and X_val is None:
            # hold out a sixth of the training data for the validation loss
            perm = np.random.Generator(np.random.PCG64(cfg.seed + 7919)).permutation(
                len(X_train))
            n_val = max(1, len(X_train) // 6)
            X_val, y_val = X_train[perm[:n_val]], y_train[perm[:n_val]]
            X_train, y_train = X_train[perm[n_val:]], y_train[perm[n_val:]]
        self.X_train = torch.from_numpy(np.ascontiguousarray(X_train, dtype=np.float32))
        self.y_train = _targets(y_train, self.task)
        self.X_test = torch.from_numpy(np.ascontiguousarray(data.X_test, dtype=np.float32))
        self.y_test = _targets(data.y_test, self.task)
        self.X_val = None if X_val is None else torch.from_numpy(
            np.ascontiguousarray(X_val, dtype=np.float32))
        self.y_val = None if y_val is None else _targets(y_val, self.task)
        self.n_train = len(self.X_train)

    def _initial_densities(self) -> list[float]:
        cfg = self.config
        n_layers = len(self.widths) - 1
        if self.method.starts_dense or cfg.init_sparsity == "dense":
            return [1.0] * n_layers
        if cfg.init_sparsity == "er":
            return er_densities(self.widths, cfg.epsilon, self.prunable)
        return erk_densities(self.widths, cfg.target_density(), self.prunable)

    def _build_model(self) -> SparseMLP:
        layers = []
        for k, d in enumerate(self.densities):
            n_in, n_out = self.widths[k], self.widths[k + 1]
            flat = random_structure(n_in, n_out, d, self.np_rng)
            values = self.draw_weights(k, flat.size, flat.size / (n_in * n_out))
            layers.append(SparseLinear(n_in, n_out, flat, values, torch.zeros(n_out),
                                       backend=self.config.backend))
        return SparseMLP(layers, self.config.activation)

    def draw_weights(self, k: int, n: int, density: float) -> torch.Tensor:
        """``n`` weights for layer ``k`` from the initial distribution (sparse-aware fans)."""
        n_in, n_out = self.widths[k], self.widths[k + 1]
        return draw_weights(n, self.config.weight_init, density * n_in, density * n_out,
                            self.torch_gen)

    def _make_optimizer(self) -> torch.optim.Optimizer:
        cfg = self.config
        params = [p for layer in self.model.layers for p in (layer.values, layer.bias)]
        if cfg.optimizer == "sgd":
            return torch.optim.SGD(params, lr=cfg.lr, momentum=cfg.momentum,
                                   weight_decay=cfg.weight_decay, foreach=False)
        return torch.optim.Adam(params, lr=cfg.lr, weight_decay=cfg.weight_decay,
                                foreach=False)

    def reset_optimizer(self) -> None:
        """A fresh optimiser (IMP starts every level with one, as open_lth does)."""
        self.optimizer = self._make_optimizer()

    # ------------------------------------------------------------------ hooks' helpers
    def record_change(self, k: int, change: LayerChange) -> None:
        """Add a structural change of layer ``k`` to this epoch's counts."""
        self.changes[k].added += change.added
        self.changes[k].removed += change.removed

    def snip_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """One batch of ``batch_size`` training samples drawn with the run's generator."""
        idx = torch.randperm(self.n_train, generator=self.torch_gen)[:self.config.batch_size]
        return self.X_train[idx], self.y_train[idx]

    def capture(self) -> list[tuple[np.ndarray, torch.Tensor, torch.Tensor]]:
        """A copy of every layer's connections, weights and bias."""
        return [(layer.flat.numpy().copy(), layer.values.data.clone(), layer.bias.data.clone())
                for layer in self.model.layers]

    def restore(self, state: list[tuple[np.ndarray, torch.Tensor, torch.Tensor]]) -> None:
        """Put back what :meth:`capture` copied (optimiser state is not touched)."""
        for layer, (flat, values, bias) in zip(self.model.layers, state):
            layer.set_structure(flat, values.clone())
            layer.bias.data = bias.clone()

    def rewind(self) -> None:
        """IMP: surviving connections and biases take their values at the rewind point."""
        assert self.rewind_point is not None
        for layer, (flat, values, bias) in zip(self.model.layers, self.rewind_point):
            now = layer.flat.numpy()
            pos = np.searchsorted(flat, now)
            layer.set_structure(now, values[torch.as_tensor(pos)].clone())
            layer.bias.data = bias.clone()

    # ------------------------------------------------------------------ the loop
    def run(self, writer, *, progress: bool = True) -> None:
        """Train every remaining level and epoch, handing each epoch's results to ``writer``."""
        from tqdm.auto import tqdm

        cfg = self.config
        total = (self.levels + 1) * cfg.epochs
        done = self.level * cfg.epochs + self.epoch
        bar = tqdm(total=total, initial=done, disable=not progress, unit="epoch",
                   desc=f"{cfg.method} {cfg.dataset}", leave=True)
        try:
            while True:
                while self.epoch < cfg.epochs and not self.stopped_early:
                    record = self.train_epoch()
                    writer.epoch_done(self, record)
                    bar.update(1)
                    bar.set_postfix(self._postfix(record), refresh=False)
                if self.level >= self.levels:
                    break
                if self.stopped_early:
                    bar.update(cfg.epochs - self.epoch)
                self.next_level()
                writer.epoch_done(self, self.evaluate_record(0.0))
        finally:
            bar.close()

    def next_level(self) -> None:
        """IMP: restore the best weights if early-stopped, prune, rewind, reset the optimiser."""
        if self.config.early_stopping_patience is not None and self.best is not None:
            self.restore(self.best["state"])
        self.level += 1
        self.epoch = 0
        self.best = None
        self.bad_epochs = 0
        self.stopped_early = False
        self.changes = [LayerChange() for _ in self.model.layers]
        self.method.prune_level(self)
        self.rewind()
        self.reset_optimizer()

    def train_epoch(self) -> dict[str, Any]:
        """One epoch: method hook, mini-batch steps, evaluation. Returns the metrics row."""
        cfg = self.config
        start = time.perf_counter()
        self.epoch += 1
        self.changes = [LayerChange() for _ in self.model.layers]
        self.method.epoch_start(self, self.epoch)
        self.model.train()
        perm = torch.randperm(self.n_train, generator=self.torch_gen)
        loss_sum = torch.zeros((), dtype=torch.float64)
        correct = torch.zeros((), dtype=torch.int64)
        classification = self.task == "classification"
        for begin in range(0, self.n_train, cfg.batch_size):
            idx = perm[begin:begin + cfg.batch_size]
            x, y = self.X_train[idx], self.y_train[idx]
            if self.method.replaces_step(self, self.step):
                self.method.update(self, x, y)
                self.step += 1
                continue
            out = self.model(x)
            loss = self.loss_fn(out, y)
            objective = loss + cfg.l1 * sum(layer.values.abs().sum()
                                            for layer in self.model.layers) \
                if cfg.l1 > 0 else loss
            self.optimizer.zero_grad(set_to_none=True)
            objective.backward()
            self.optimizer.step()
            self.step += 1
            with torch.no_grad():
                loss_sum += loss.detach().double() * len(idx)
                if classification:
                    correct += (out.argmax(1) == y).sum()
            if self.step == cfg.imp_rewind_step and self.level == 0 \
                    and isinstance(self.method, IMP):
                self.rewind_point = self.capture()
            self.method.after_step(self, self.step)
        record = {"loss": float(loss_sum) / self.n_train}
        if classification:
            record["train_accuracy"] = int(correct) / self.n_train
        else:
            record["train_mse"] = record["loss"]
        record.update(self.evaluate())
        self._early_stopping(record)
        record["wall_time"] = time.perf_counter() - start
        return self._complete(record)

    def evaluate_record(self, wall_time: float) -> dict[str, Any]:
        """The metrics row of an epoch 0 (initialisation, or the start of an IMP level)."""
        start = time.perf_counter()
        loss, acc = self._evaluate(self.X_train, self.y_train)
        record = {"loss": loss}
        if self.task == "classification":
            record["train_accuracy"] = acc
        else:
            record["train_mse"] = loss
        record.update(self.evaluate())
        record["wall_time"] = wall_time + time.perf_counter() - start
        return self._complete(record)

    def evaluate(self) -> dict[str, float]:
        """Test metric (and validation loss when there is validation data)."""
        out = {}
        loss, acc = self._evaluate(self.X_test, self.y_test)
        if self.task == "classification":
            out["test_loss"] = loss
            out["test_accuracy"] = acc
        else:
            out["test_mse"] = loss
        if self.X_val is not None:
            out["val_loss"] = self._evaluate(self.X_val, self.y_val)[0]
        return out

    @torch.no_grad()
    def _evaluate(self, X: torch.Tensor, y: torch.Tensor) -> tuple[float, float | None]:
        self.model.eval()
        loss_sum = 0.0
        correct = 0
        for begin in range(0, len(X), _EVAL_BATCH):
            out = self.model(X[begin:begin + _EVAL_BATCH])
            target = y[begin:begin + _EVAL_BATCH]
            loss_sum += float(self.loss_fn(out, target, reduction="sum"))
            if self.task == "classification":
                correct += int((out.argmax(1) == target).sum())
        self.model.train()
        acc = correct / len(X) if self.task == "classification" else None
        return loss_sum / len(X), acc

    def _early_stopping(self, record: dict[str, Any]) -> None:
        patience = self.config.early_stopping_patience
        if patience is None:
            return
        val = record["val_loss"]
        if self.best is None or val < self.best["val_loss"]:
            self.best = {"val_loss": val, "epoch": self.epoch, "state": self.capture()}
            self.bad_epochs = 0
        else:
            self.bad_epochs += 1
            if self.bad_epochs >= patience:
                self.stopped_early = True

    def _complete(self, record: dict[str, Any]) -> dict[str, Any]:
        row = {"epoch": self.epoch}
        if self.levels:
            row["level"] = self.level
        row["step"] = self.step
        row.update(record)
        row["density"] = [layer.density for layer in self.model.layers]
        row["connections"] = [layer.n_connections for layer in self.model.layers]
        row["added"] = [c.added for c in self.changes]
        row["removed"] = [c.removed for c in self.changes]
        return row

    @staticmethod
    def _postfix(record: dict[str, Any]) -> dict[str, str]:
        out = {"loss": f"{record['loss']:.4f}"}
        if "test_accuracy" in record:
            out["acc"] = f"{record['test_accuracy']:.4f}"
        if "test_mse" in record:
            out["mse"] = f"{record['test_mse']:.4g}"
        return out


def resolve_arch(arch: list[int] | None, data: Dataset) -> list[int]:
    """Widths of the network: ``arch`` checked against the data, or inferred from it.

    Raises
    ------
    ConfigError
        The first or last width does not match the data's features or outputs.
    """
    n_in, n_out = data.n_features, data.n_outputs
    if arch is None:
        return [n_in, *DEFAULT_HIDDEN, n_out]
    if arch[0] != n_in or arch[-1] != n_out:
        example = "-".join(map(str, [n_in, *(arch[1:-1] or DEFAULT_HIDDEN), n_out]))
        raise ConfigError(
            f"architecture {'-'.join(map(str, arch))} does not fit dataset {data.name!r}: "
            f"it needs {n_in} inputs and {n_out} outputs (e.g. {example})")
    return list(arch)


def _targets(y: np.ndarray, task: str) -> torch.Tensor:
    if task == "classification":
        return torch.from_numpy(np.ascontiguousarray(y, dtype=np.int64))
    return torch.from_numpy(np.ascontiguousarray(y, dtype=np.float32)).reshape(-1)


def _mse(out: torch.Tensor, y: torch.Tensor, reduction: str = "mean") -> torch.Tensor:
    return torch.nn.functional.mse_loss(out.reshape(-1), y, reduction=reduction)
