"""``train()``: assemble a run from its configuration and drive it.

:func:`build_trainer` turns a :class:`~topo.train.config.TrainConfig` into a
:class:`~topo.train.trainer.Trainer` (data, network, method, optimiser; every name looked up
in :mod:`topo.train.registry`); :func:`train` adds the run directory's callbacks, resumes
or starts, and runs the method's driver (IMP's levels) or the trainer's ``fit``, with torch's
thread count set for the run and restored afterwards (:func:`torch_threads`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch

from topo.errors import ConfigError
from topo.train.callbacks import (
    Callback,
    Checkpointer,
    DeadNeuronRate,
    EarlyStopping,
    Manifest,
    MetricsWriter,
    ProgressBar,
    SnapshotWriter,
)
from topo.train.config import TrainConfig
from topo.train.data import Dataset, load_dataset, standardized, with_validation_split
from topo.train.initialization import WeightInit
from topo.train.model import SparseMLP, build_mlp
from topo.train.optim import l1_penalty, optimizer_factory, step_rule
from topo.train.registry import METHODS
from topo.train.rundir import RunDirectory
from topo.train.sparsity import initial_densities
from topo.train.trainer import Trainer, TrainingData, loss_function

__all__ = ["train", "build_trainer", "load_training_data", "resolve_arch", "torch_threads",
           "default_threads", "DEFAULT_HIDDEN", "SMALL_NETWORK"]

DEFAULT_HIDDEN = (100, 100)
SMALL_NETWORK = 200_000
"""Networks with fewer connections train with one torch thread by default: thread start-up
costs more than it saves there (``analysis/benchmarks/train_epoch.py``)."""


def train(config: TrainConfig, out_dir: str | Path, *, resume: bool = False,
          progress: bool = True, callbacks: Iterable[Callback] = ()) -> Path:
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
    callbacks
        More callbacks, called after the run directory's own (they see each epoch's row
        after it is written).

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
        Data files missing or damaged, or a damaged checkpoint.

    Notes
    -----
    Layout and file names: :mod:`topo.io.run`; the files' fields: :mod:`topo.train.rundir`;
    the checkpoint: :mod:`topo.train.checkpoint`.
    """
    config.validate()
    run_dir = RunDirectory(out_dir, config)
    start = run_dir.prepare(resume)
    if start.finished:
        return run_dir.path
    data = load_training_data(config)
    snapshots = SnapshotWriter(run_dir, config, data.task, data.input_shape)
    own: list[Callback] = [DeadNeuronRate()]
    if config.early_stopping_patience is not None:
        own.append(EarlyStopping(config.early_stopping_patience))
    own += [snapshots, MetricsWriter(run_dir), Checkpointer(run_dir)]
    if progress:
        own.append(ProgressBar(f"{config.method} {config.dataset}"))
    own.append(Manifest(run_dir, config, data, snapshots, started=start.started,
                        fresh=start.state is None))
    trainer = build_trainer(config, data, callbacks=[*own, *callbacks])
    run_dir.clean(fresh=start.state is None)
    with torch_threads(config.threads or default_threads(trainer.model)):
        try:
            if start.state is None:
                trainer.initialise()
            else:
                trainer.load_state_dict(start.state)
            trainer.callbacks.on_train_start(trainer)
            if start.state is None:
                trainer.report_initial()
            (trainer.method.driver or Trainer.fit)(trainer)
            trainer.callbacks.on_train_end(trainer)
        finally:
            trainer.callbacks.close()
    return run_dir.path


def build_trainer(config: TrainConfig, data: Dataset | None = None, *,
                  callbacks: Iterable[Callback] = ()) -> Trainer:
    """A fresh :class:`Trainer` for ``config``: data split, network initialised, method and
    optimiser built (the method's action at initialisation is :meth:`Trainer.initialise`).

    ``data`` defaults to :func:`load_training_data`; with early stopping (or
    ``validation``) and no validation split, a sixth of the training data is held out
    (:func:`with_validation_split`).

    Raises
    ------
    ConfigError
        The architecture does not fit the data, or the method refuses the configuration.
    """
    if data is None:
        data = load_training_data(config)
    if config.early_stopping_patience is not None or config.validation:
        data = with_validation_split(data, config.seed)
    widths = resolve_arch(config.arch, data)
    n_layers = len(widths) - 1
    prunable = [config.sparse_output or k < n_layers - 1 for k in range(n_layers)]
    method_class = METHODS.load(config.method)
    total_steps = math.ceil(len(data.X_train) / config.batch_size) * config.epochs
    method = method_class.from_config(config, total_steps)
    densities = [1.0] * n_layers if method_class.starts_dense else initial_densities(
        config.init_sparsity, widths, prunable, epsilon=config.epsilon,
        density=config.target_density())
    generator = torch.Generator().manual_seed(config.seed)
    rng = np.random.Generator(np.random.PCG64(config.seed))
    init = WeightInit(config.weight_init, widths, generator)
    model = build_mlp(widths, densities, config.activation, config.backend, init, rng)
    return Trainer(model, method, TrainingData.from_dataset(data),
                   optimizer=optimizer_factory(config, method_class.optimizer),
                   loss_fn=loss_function(data.task),
                   batch_size=config.batch_size, epochs=config.epochs, generator=generator,
                   rng=rng, init=init, prunable=prunable,
                   penalty=l1_penalty(config.l1) if config.l1 > 0 else None,
                   level=0 if method.levels else None, callbacks=callbacks,
                   step_rule=step_rule(config))


def load_training_data(config: TrainConfig) -> Dataset:
    """The configuration's data set, standardised when ``config.standardize`` says so."""
    data = load_dataset(config.dataset, seed=config.seed, n_samples=config.n_samples,
                        root=config.data_root, download=config.download,
                        test_fraction=config.test_fraction)
    return standardized(data) if config.standardize else data


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


def default_threads(model: SparseMLP) -> int:
    """1 thread below :data:`SMALL_NETWORK` connections, 2 from there."""
    n_connections = sum(layer.n_connections for layer in model.layers)
    return 1 if n_connections < SMALL_NETWORK else 2


@contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``torch.set_num_threads(n)``; the previous count is restored on
    leaving it, also after an exception."""
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)
