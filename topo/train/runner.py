"""``train()``: assemble a run from its configuration and drive it.

:func:`build_trainer` turns a :class:`~topo.train.config.TrainConfig` into a
:class:`~topo.train.trainer.Trainer` (data, network, method, optimiser; every name looked up
in :mod:`topo.train.registry`); :func:`train` adds the run directory's callbacks, resumes
or starts, and runs the method's driver (IMP's levels) or the trainer's ``fit``, with torch's
thread count set for the run and restored afterwards (:func:`torch_threads`).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch

from topo.errors import ConfigError
from topo.train import methods
from topo.train._text import count
from topo.train.callbacks import (
    Callback,
    Checkpointer,
    ConnectivityWatch,
    DeadNeuronRate,
    EarlyStopping,
    ITOPRate,
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
from topo.train.sparsity import (
    ConnectivityWarning,
    connectivity,
    initial_densities,
    kernel_densities,
    prunable_density,
)
from topo.train.trainer import Trainer, TrainingData, loss_function

if TYPE_CHECKING:  # pragma: no cover
    from topo.train.cnn import Architecture

__all__ = ["train", "build_trainer", "load_training_data", "resolve_arch", "torch_threads",
           "default_threads", "random_generators", "method_config", "starting_densities",
           "check_connectivity", "Terminated",
           "DEFAULT_HIDDEN", "SMALL_NETWORK"]

DEFAULT_HIDDEN = (100, 100)
SMALL_NETWORK = 200_000
"""Networks with fewer connections train with one torch thread by default: thread start-up
costs more than it saves there (``analysis/benchmarks/train_epoch.py``)."""
_DEFAULTS = {f.name: f.default for f in dataclasses.fields(TrainConfig)}


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
        match); a finished run is left as it is, unless ``config.epochs`` is larger: then
        it trains on to that many epochs (not for a run in levels or one that stopped early;
        a method whose schedule depends on the number of epochs, RigL's and GMP's, follows
        the longer schedule from there, so the result differs from a run that had that many
        epochs from the start; ``run.json`` lists the extensions). A missing or empty folder
        starts a new run.
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
    KeyboardInterrupt
        Ctrl-C, or SIGTERM (:class:`Terminated`), during training: ``run.json`` says
        ``interrupted`` and ``--resume`` continues from the last complete epoch.

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
    checkpointer = Checkpointer(run_dir)
    manifest = Manifest(run_dir, config, data, snapshots, started=start.started,
                        fresh=start.state is None, extended_from=start.extended_from)
    # the dead neuron rate is defined here for MLPs (topo.activity refuses convolutions)
    own: list[Callback] = [DeadNeuronRate()] if config.model == "mlp" else []
    if config.early_stopping_patience is not None:
        own.append(EarlyStopping(config.early_stopping_patience))
    own += [ITOPRate(), ConnectivityWatch(), snapshots, MetricsWriter(run_dir), checkpointer]
    if progress:
        own.append(ProgressBar(f"{config.method} {config.dataset}"))
    own.append(manifest)
    trainer = build_trainer(config, data, callbacks=[*own, *callbacks])
    run_dir.clean(fresh=start.state is None)
    with torch_threads(config.threads or default_threads(trainer.model)), \
            _sigterm_interrupts():
        try:
            if start.state is None:
                trainer.initialise()
                check_connectivity(trainer, config)
            else:
                trainer.load_state_dict(start.state)
            trainer.callbacks.on_train_start(trainer)
            if start.state is None:
                trainer.report_initial()
            (trainer.method.driver or Trainer.fit)(trainer)
            trainer.callbacks.on_train_end(trainer)
        except KeyboardInterrupt as exc:
            manifest.interrupted(trainer, "SIGTERM" if isinstance(exc, Terminated)
                                 else "SIGINT", checkpointer.saved)
            raise
        finally:
            trainer.callbacks.close()
    return run_dir.path


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives during :func:`train`: the run stops
    as after Ctrl-C (``run.json`` says ``interrupted``, the checkpoint holds the last
    complete epoch) instead of dying without a word."""


@contextmanager
def _sigterm_interrupts() -> Iterator[None]:
    """SIGTERM raises :class:`Terminated` inside the block (main thread only; the handler
    before it is restored on leaving)."""
    import signal
    import threading

    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        raise Terminated(signal.Signals(signum).name)

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def check_connectivity(trainer: Trainer, config: TrainConfig) -> None:
    """Refuse a network that starts with an empty layer or without any path from an input
    to an output (its output would not depend on its input: it would train at chance);
    warn when only some output units are cut off.

    Raises
    ------
    ConfigError
        Naming the method, the density and what is cut off.
    """
    import warnings

    state = connectivity(trainer.model)
    if not state.problems:
        return
    density = sum(layer.n_connections for layer in trainer.model.layers) / sum(
        layer.size for layer in trainer.model.layers)
    problems = "; ".join(state.problems)
    if state.empty_layers or state.disconnected:
        raise ConfigError(f"{config.method} at density {density:.4g} leaves a network whose "
                          f"output cannot depend on its input ({problems}); choose a higher "
                          "--density")
    warnings.warn(f"{config.method} at density {density:.4g} starts with {problems}",
                  ConnectivityWarning, stacklevel=2)


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
        data = with_validation_split(data, config.initialisation_seed())
    arch = None
    if config.model == "mlp":
        widths = resolve_arch(config.arch, data)
        n_layers = len(widths) - 1
    else:
        from topo.train.cnn import architecture
        from topo.train.data import image_layout

        picture, channels_last = image_layout(data)
        arch = architecture(config.model, picture, data.n_outputs, config.width)
        widths, n_layers = None, len(arch.specs)
    method_class = METHODS.load(config.method, methods)
    prunable = method_class.prunable_layers(config, n_layers)
    total_steps = math.ceil(len(data.X_train) / config.batch_size) * config.epochs
    method = method_class.from_config(method_config(config, widths, prunable, arch),
                                      total_steps)
    densities = starting_densities(config, method_class, widths, prunable, arch)
    generator, rng = random_generators(config.seed)
    # one stream for initialisation and training unless init_seed names another
    init_generator, init_rng = (
        (generator, rng) if config.initialisation_seed() == config.seed
        else random_generators(config.initialisation_seed()))
    fans = None if arch is None else arch.fans
    if arch is None:
        model = build_mlp(widths, densities, config.activation, config.backend,
                          WeightInit(config.weight_init, widths, init_generator), init_rng)
    else:
        model = arch.build(densities, config.activation, config.backend,
                           WeightInit(config.weight_init, None, init_generator, fans=fans),
                           init_rng, channels_last)
    if config.main_effects:
        from topo.train.main_effects import MainEffects

        model.main_effects = MainEffects(widths[0], widths[-1], model.act, init_generator)
    return Trainer(model, method, TrainingData.from_dataset(data),
                   optimizer=optimizer_factory(config, method_class.optimizer),
                   loss_fn=loss_function(data.task),
                   batch_size=config.batch_size, epochs=config.epochs, generator=generator,
                   rng=rng, init=WeightInit(config.weight_init, widths, generator, fans=fans),
                   prunable=prunable,
                   penalty=l1_penalty(config.l1) if config.l1 > 0 else None,
                   level=0 if method.levels else None, callbacks=callbacks,
                   step_rule=step_rule(config),
                   init_generators=(init_generator, init_rng))


def method_config(config: TrainConfig, widths: Sequence[int] | None,
                  prunable: Sequence[bool], arch: Architecture | None = None) -> TrainConfig:
    """The configuration a method is built from: a given ``density`` (the whole network's)
    becomes the density of the layers the method may change (:func:`prunable_density`),
    so that every method meets it with the other layers dense. Without ``density`` a
    method's default applies to the layers it changes (the same thing when it may change
    them all, the default ``sparse_output``). A CNN's layers are given by ``arch``
    (``widths`` None).

    Raises
    ------
    ConfigError
        The density cannot be met with the layers kept dense.
    """
    if config.density is None:
        return config
    sizes = None if arch is None else arch.sizes
    return config.replace(density=prunable_density(config.density, widths, prunable,
                                                   sizes=sizes))


def starting_densities(config: TrainConfig, method_class: type,
                       widths: Sequence[int] | None, prunable: Sequence[bool],
                       arch: Architecture | None = None) -> list[float]:
    """Per-layer densities the network starts with: 1 for a method that starts dense, else
    the ``init_sparsity`` densities (ERK to ``density`` when given, ER with ``epsilon``
    otherwise; see :func:`~topo.train.sparsity.initial_densities`, and for a CNN given by
    ``arch`` the kernel-aware :func:`~topo.train.sparsity.kernel_densities`).

    Raises
    ------
    ConfigError
        A flag the method cannot honour (``epsilon`` or ``init_sparsity`` for a method that
        starts dense; ``epsilon`` beside ``density``), or a density that cannot be met.
    """
    n_layers = len(widths) - 1 if arch is None else len(arch.specs)
    if method_class.starts_dense:
        for name in ("epsilon", "init_sparsity"):
            if getattr(config, name) != _DEFAULTS[name]:
                raise ConfigError(f"{config.method} starts dense: {name} does not apply "
                                  "(--density sets its target)")
        return [1.0] * n_layers
    if config.density is not None and config.epsilon != _DEFAULTS["epsilon"]:
        raise ConfigError(f"give epsilon or density, not both: with density "
                          f"{config.density:g} the Erdos-Renyi scale is solved for it")
    density = config.density
    if density is None and config.init_sparsity == "erk":
        density = config.target_density()
    if arch is not None:
        return kernel_densities(config.init_sparsity, arch.shapes, prunable,
                                epsilon=config.epsilon, density=density)
    return initial_densities(config.init_sparsity, widths, prunable, epsilon=config.epsilon,
                             density=density)


def random_generators(seed: int) -> tuple[torch.Generator, np.random.Generator]:
    """A run's torch and numpy generators seeded with ``seed`` (PCG64 for numpy)."""
    return torch.Generator().manual_seed(seed), np.random.Generator(np.random.PCG64(seed))


def load_training_data(config: TrainConfig) -> Dataset:
    """The configuration's data set, standardised when ``config.standardize`` says so.

    Its random parts (the digits split, synthetic draws) follow the initialisation's seed
    (:meth:`~topo.train.config.TrainConfig.initialisation_seed`): runs that share
    ``init_seed`` share their data as well as their initial network."""
    data = load_dataset(config.dataset, seed=config.initialisation_seed(),
                        n_samples=config.n_samples,
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
            f"it needs {count(n_in, 'input')} and {count(n_out, 'output')} (e.g. {example})")
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
