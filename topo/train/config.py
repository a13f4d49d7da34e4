"""The hyper-parameters of one training run, as a dataclass that round-trips through JSON.

A :class:`TrainConfig` is everything that decides what a run computes: method, data,
architecture, optimisation, sparsity schedule and seed. It is stored under ``"config"`` in the
run manifest (``run.json``) and read back with :meth:`TrainConfig.from_dict`, which is how
``--resume`` knows it continues the same run. This module imports only the standard library
(names are checked against :mod:`topo.train.registry`, which does too), so the ``topo``
command can build and check a configuration without loading torch.

Defaults and where they come from
---------------------------------
- ``epsilon = 20``, ``zeta = 0.3``: SET (Mocanu et al., 2018), whose reference code also makes
  every layer sparse (``sparse_output = True``); Erdős–Rényi densities above 1 are capped, so
  small output layers (e.g. 100 -> 10 at ε = 20) end up dense anyway.
- ``rigl_delta_t = 100``, ``rigl_alpha = 0.3``, cosine decay, updates stop after 75 % of the
  training steps, new weights 0, a connection dropped and regrown in one update kept with its
  weight and optimiser state (``rigl_reinit_regrown = False``): RigL (Evci et al., 2020) and
  its code.
- ``gmp``: Zhu & Gupta (2017)'s cubic schedule from dense to ``density`` (default 0.1),
  pruning every ``gmp_delta_t = 100`` steps from ``gmp_begin = 0`` to 75 % of the steps.
- ``imp``: Frankle & Carbin (2019) / Frankle et al. (2020): ``imp_rate = 0.2`` of the
  remaining weights per level by global magnitude, rewinding to step ``imp_rewind_step = 0``;
  the output layer is not pruned (``prune_output = False``), as in open_lth's LeNet default
  (``pruning_layers_to_ignore='fc.weight'``, ``models/mnist_lenet.py``).
- ``snip``: Lee et al. (2019), one batch of ``batch_size`` samples, ``density`` default 0.1.
- ``weight_init = "he_uniform"`` with a sparse-aware fan-in (density · n_in), the
  initialisation that keeps activation variance for sparse layers (Evci et al., 2022,
  "Gradient flow in sparse neural networks"); regrown SET weights are drawn the same way.
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from typing import Any

from topo.errors import ConfigError
from topo.train.registry import (
    ACTIVATIONS,
    BACKENDS,
    INIT_SPARSITIES,
    METHODS,
    MODELS,
    OPTIMIZERS,
    WEIGHT_INITS,
)

__all__ = ["TrainConfig", "METHODS", "DATASETS", "OPTIMIZERS", "ACTIVATIONS", "INIT_SPARSITIES",
           "WEIGHT_INITS", "BACKENDS", "parse_arch", "DEFAULT_DENSITY"]

DATASETS = ("digits", *(f"synthetic-F{k}" for k in range(1, 11)), "mnist", "fashion-mnist",
            "cifar10")
DEFAULT_DENSITY = 0.1
CONFIG_VERSION = 1
SSGD_FORMS = ("l2", "l1")
SIPP_MODES = ("deterministic", "randomized", "hybrid")


#: methods and optimizers written for the layers of an MLP (their step rules and scores
#: assume weight and bias alternate per layer, without normalisation parameters)
_MLP_ONLY_METHODS = ("ssgd", "ap", "sipp", "nodes")
_MLP_ONLY_OPTIMIZERS = ("ssgd", "sketched-gn")


@dataclass
class TrainConfig:
    """Everything that determines a training run (see the module docstring for defaults).

    Parameters
    ----------
    method
        A name of :data:`~topo.train.registry.METHODS` (``dense``, ``static``, ``set``,
        ``rigl``, ``gmp``, ``imp``, ``snip``, ``ssgd``, ``ap``, ``sipp``, ``nodes``).
    dataset
        ``digits`` (default), ``synthetic-F1`` ... ``synthetic-F10``, ``mnist``,
        ``fashion-mnist`` or ``cifar10``.
    model
        ``mlp`` (default) or a CNN of :data:`~topo.train.registry.MODELS` (``lenet5``,
        ``conv4``, ``vgg-small``, ``resnet20``; :mod:`topo.train.cnn`), for data sets of
        pictures (digits, MNIST, Fashion-MNIST, CIFAR-10).
    width
        CNNs only: factor on every channel and hidden count of the model (1: the
        published widths; 0.25 gives a ResNet-20 with 4-8-16 channels).
    arch
        MLP only: layer widths input to output, e.g. ``[64, 100, 100, 10]``; ``None``
        infers input and output widths from the data with two hidden layers of 100. A list
        of hidden widths only (first/last not matching the data) is an error, not guessed.
    epochs, batch_size, lr, optimizer, momentum, weight_decay
        Optimisation; ``optimizer`` is a name of :data:`~topo.train.registry.OPTIMIZERS`.
        ``momentum`` is SGD's; Adam uses its default betas.
    l1
        Coefficient of an L1 penalty on the weights (connections only) added to the loss.
    activation
        Hidden-layer activation (:data:`~topo.train.registry.ACTIVATIONS`); the output
        layer is linear (softmax lives in the loss).
    seed
        Seeds the training's random choices: the order of the batches, regrowth positions
        and weights, the batches a method draws while training; and, unless ``init_seed``
        is given, what the run starts from too.
    init_seed
        Seeds what the run starts from: the data (the digits train/test split, synthetic
        draws, the validation hold-out), the initial masks and weights, and what a method
        decides at initialisation (SNIP's batch). ``None`` (the default) means ``seed``,
        with one random stream for both, so runs without it are what they always were. Runs
        that share ``init_seed`` start from the same network on the same data whatever their
        ``seed`` (Liu et al. 2020, Fig. 4: one initialisation, different training
        randomness).
    epsilon
        Erdős–Rényi ε: layer density ``min(1, ε (n_in + n_out) / (n_in n_out))``, for the
        methods that start sparse when no ``density`` is given.
    density
        Target density of the whole network: connections over the possible connections of
        all layers, the layers a method keeps dense included (they count in the budget, as
        in RigL's ERK; :func:`topo.train.sparsity.prunable_density`). ``static``, ``set``
        and ``rigl`` start at it (ERK; ``er`` solves its ε for it), ``snip`` prunes to it,
        ``gmp`` reaches it at the end of its schedule, ``imp`` prunes level by level until
        it is reached (it sets the number of levels when ``imp_levels`` is ``None``), and
        so does ``ap``; ``ssgd`` and ``sipp`` train dense and prune to it (``ssgd``: or
        below ``ssgd_threshold`` instead); ``nodes`` refuses it (its density follows from
        the hidden units it keeps: ``node_sparsity``, ``keep_units``);
        ``dense`` refuses a density below 1. A density the layers kept dense alone exceed
        is refused. ``None``: ER with ``epsilon`` (static, set, rigl), 0.1 of the pruned
        layers (snip, gmp, erk), ``imp_levels`` levels (imp).
    init_sparsity
        ``er``, ``erk`` or ``dense`` for the methods that start sparse (static/set/rigl);
        see :data:`~topo.train.registry.INIT_SPARSITIES`.
    weight_init
        Initial weight distribution (:data:`~topo.train.registry.WEIGHT_INITS`).
    zeta
        SET's rewired fraction per epoch.
    sparse_output
        Whether the output layer is sparse too (SET's reference: yes). IMP has its own
        ``prune_output``.
    prune_output
        IMP only: prune the output layer too (default no, as open_lth's LeNet).
    snapshot_every
        Write a snapshot every N epochs (epoch 0 and the last epoch are always written).
    early_stopping_patience
        Stop when the validation loss has not improved for this many epochs (``None``: off).
    n_samples
        Number of samples for synthetic data (split in thirds train/validation/test).
    backend
        ``auto`` (per layer by size and density), ``dense`` or ``sparse`` computation.
    threads
        Torch threads while training; ``None`` picks 1 for networks under
        200,000 connections (thread start-up costs more than it saves there) and 2 above.
    data_root, download
        Folder of MNIST/Fashion-MNIST/CIFAR-10 files, and whether to fetch missing ones.
    standardize
        Scale the features (and a regression target) by the training split's mean and
        standard deviation before training, as Tsang et al. (2018) do for the synthetic
        functions (:func:`topo.train.data.standardized`). Off by default.
    validation
        Hold out a sixth of the training split for validation (``val_loss`` in every row)
        even without early stopping (random search selects by it). Data sets with their
        own validation split (synthetic) keep it.
    ssgd_eps, ssgd_form, ssgd_threshold
        SSGD (:class:`~topo.train.optim.SSGD`): the reweighting's ε, its form (``l2``:
        ``w = (θ² + ε)^½``, ``l1``: ``w = |θ| + ε``) and the final pruning threshold on
        ``|θ|`` (``None``: prune to ``density``).
    ap_share
        Activate-while-Pruning: the share of the surviving weights each level removes among
        the negative weights that moved least (Liu et al. 2023: 2 %); below ``imp_rate``.
    sipp_mode, sipp_batch_size
        SiPP: ``deterministic``, ``randomized`` or ``hybrid``, and the number of training
        samples its sensitivities are measured on.
    node_sparsity, keep_units
        ``nodes``: the fraction of each hidden layer's units removed (drawn with the run's
        generator), or the kept units of every hidden layer given explicitly (what
        ``topo search --space nodes`` writes).
    gn_sketch_size, gn_cg_tol, gn_cg_iters
        ``sketched-gn``: rows of the sketch of the Jacobian (``None``: four times the batch's
        samples), the conjugate-gradient tolerance (residual relative to the right-hand
        side) and its iteration limit.
    main_effects
        Train NID's MLP-M (Tsang et al. 2018): beside the network, one dense univariate
        network per input feature (1-10-10-10-output, the same activation) whose outputs are
        added to the network's; the L1 penalty stays on the network's weights. The
        snapshots hold the network only and say so (:mod:`topo.train.main_effects`); the
        checkpoint holds the univariate networks too. Not with ``imp`` (its rewinding).
    extra
        Free-form JSON-serialisable notes kept with the configuration (e.g. how a caller
        preprocessed the data before handing it to the trainer). The trainer does not read
        them, but they are part of the run's identity (``run_id``, ``--resume`` checks).
    """

    method: str = "set"
    dataset: str = "digits"
    model: str = "mlp"
    width: float = 1.0
    arch: list[int] | None = None
    epochs: int = 30
    batch_size: int = 32
    lr: float = 0.01
    optimizer: str = "sgd"
    momentum: float = 0.9
    weight_decay: float = 0.0
    l1: float = 0.0
    activation: str = "relu"
    seed: int = 0
    init_seed: int | None = None
    epsilon: float = 20.0
    density: float | None = None
    init_sparsity: str = "er"
    weight_init: str = "he_uniform"
    zeta: float = 0.3
    set_regrow_zero: bool = False
    rigl_delta_t: int = 100
    rigl_alpha: float = 0.3
    rigl_end_fraction: float = 0.75
    rigl_reinit_regrown: bool = False
    gmp_begin: int = 0
    gmp_end_fraction: float = 0.75
    gmp_delta_t: int = 100
    imp_rate: float = 0.2
    imp_levels: int | None = None
    imp_rewind_step: int = 0
    prune_output: bool = False
    sparse_output: bool = True
    snapshot_every: int = 1
    early_stopping_patience: int | None = None
    n_samples: int | None = None
    test_fraction: float = 0.25
    backend: str = "auto"
    threads: int | None = None
    data_root: str | None = None
    download: bool = False
    standardize: bool = False
    # options added after the first release enter the run id only when they differ from
    # their default (topo.train.rundir.run_id)
    validation: bool = False
    main_effects: bool = False
    ssgd_eps: float = 1e-4
    ssgd_form: str = "l2"
    ssgd_threshold: float | None = None
    ap_share: float = 0.02
    sipp_mode: str = "deterministic"
    sipp_batch_size: int = 128
    node_sparsity: float | None = None
    keep_units: list[list[int]] | None = None
    gn_sketch_size: int | None = None
    gn_cg_tol: float = 1e-6
    gn_cg_iters: int = 50
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ------------------------------------------------------------------ checks
    def validate(self) -> None:
        """Raise :class:`ConfigError` naming the first invalid field."""
        METHODS.check(self.method)
        MODELS.check(self.model)
        if not float(self.width) > 0:
            raise ConfigError(f"width must be positive, got {self.width}")
        if self.model != "mlp":
            if self.arch is not None:
                raise ConfigError(f"arch sets the widths of an MLP; model {self.model} has "
                                  "its own layers (--width scales them)")
            if self.main_effects:
                raise ConfigError(f"main_effects (NID's MLP-M) is an MLP option, not for "
                                  f"model {self.model}")
            if self.method in _MLP_ONLY_METHODS:
                raise ConfigError(f"method {self.method} is implemented for MLPs only, not "
                                  f"for model {self.model} (CNNs train with dense, static, "
                                  "set, rigl, gmp, imp or snip)")
            if self.optimizer in _MLP_ONLY_OPTIMIZERS:
                raise ConfigError(f"optimizer {self.optimizer} is implemented for MLPs only, "
                                  f"not for model {self.model} (choose sgd or adam)")
            if self.dataset.startswith("synthetic-"):
                raise ConfigError(f"model {self.model} is a CNN for pictures; dataset "
                                  f"{self.dataset!r} has none (choose digits, mnist, "
                                  "fashion-mnist or cifar10)")
        elif self.width != 1.0:
            raise ConfigError("width scales a CNN's channels; an MLP's widths are --arch")
        if self.dataset not in DATASETS:
            raise ConfigError(f"unknown dataset {self.dataset!r}; choose one of digits, "
                              "synthetic-F1 ... synthetic-F10, mnist, fashion-mnist, cifar10")
        OPTIMIZERS.check(self.optimizer)
        ACTIVATIONS.check(self.activation)
        INIT_SPARSITIES.check(self.init_sparsity)
        WEIGHT_INITS.check(self.weight_init)
        BACKENDS.check(self.backend)
        if self.arch is not None:
            self.arch = parse_arch(self.arch)
        for name in ("seed", "init_seed"):
            value = getattr(self, name)
            if value is None and name == "init_seed":
                continue
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ConfigError(f"{name} must be a non-negative integer, got {value!r}")
        if self.density is not None and not (0.0 < float(self.density) <= 1.0):
            raise ConfigError(f"density must lie in (0, 1], got {self.density}")
        for name in ("epochs", "batch_size", "snapshot_every", "rigl_delta_t", "gmp_delta_t"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{name} must be a positive integer, got {value!r}")
        for name in ("lr", "epsilon"):
            if not float(getattr(self, name)) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        for name in ("momentum", "weight_decay", "l1"):
            if float(getattr(self, name)) < 0:
                raise ConfigError(f"{name} must not be negative, got {getattr(self, name)}")
        for name in ("zeta", "rigl_alpha", "imp_rate"):
            if not 0.0 < float(getattr(self, name)) < 1.0:
                raise ConfigError(f"{name} must lie in (0, 1), got {getattr(self, name)}")
        for name in ("rigl_end_fraction", "gmp_end_fraction", "test_fraction"):
            if not 0.0 < float(getattr(self, name)) <= 1.0:
                raise ConfigError(f"{name} must lie in (0, 1], got {getattr(self, name)}")
        if self.imp_levels is not None and self.imp_levels < 1:
            raise ConfigError(f"imp_levels must be at least 1, got {self.imp_levels}")
        if self.imp_rewind_step < 0 or self.gmp_begin < 0:
            raise ConfigError("imp_rewind_step and gmp_begin must not be negative")
        if self.early_stopping_patience is not None and self.early_stopping_patience < 1:
            raise ConfigError(
                f"early_stopping_patience must be at least 1, got {self.early_stopping_patience}")
        if self.threads is not None and self.threads < 1:
            raise ConfigError(f"threads must be at least 1, got {self.threads}")
        if self.n_samples is not None and self.n_samples < 3:
            raise ConfigError(f"n_samples must be at least 3, got {self.n_samples}")
        if self.main_effects and self.method in ("imp", "ap"):
            raise ConfigError(f"main_effects with {self.method} is not supported: it rewinds "
                              "the network between levels, and the univariate networks would "
                              "need rewinding too")
        if self.prune_output and self.method not in ("imp", "ap"):
            raise ConfigError(f"prune_output is IMP's option; {self.method} makes the output "
                              "layer sparse with sparse_output (--sparse-output)")
        if self.method in ("imp", "ap") and self.imp_levels is None \
                and self.density is not None and self.density >= 1.0:
            raise ConfigError(f"{self.method} needs a density below 1 (or imp_levels)")
        self._validate_method_options()

    def _validate_method_options(self) -> None:
        # ssgd
        if not float(self.ssgd_eps) > 0:
            raise ConfigError(f"ssgd_eps must be positive, got {self.ssgd_eps}")
        if self.ssgd_form not in SSGD_FORMS:
            raise ConfigError(f"unknown ssgd_form {self.ssgd_form!r}; choose one of "
                              f"{', '.join(SSGD_FORMS)}")
        if self.ssgd_threshold is not None and not float(self.ssgd_threshold) > 0:
            raise ConfigError(f"ssgd_threshold must be positive, got {self.ssgd_threshold}")
        if self.main_effects and "ssgd" in (self.method, self.optimizer):
            raise ConfigError("ssgd scales the steps of the network's connection weights; it "
                              "cannot train main-effect networks beside them")
        if self.method == "ssgd":
            if self.ssgd_threshold is not None and self.density is not None:
                raise ConfigError("ssgd prunes either to --density or below "
                                  "--ssgd-threshold, not both")
            if self.early_stopping_patience is not None:
                raise ConfigError("ssgd prunes after the last step of training; early "
                                  "stopping would skip the pruning")
            if self.optimizer not in ("sgd", "ssgd"):
                raise ConfigError(f"ssgd trains with its own affine-scaled SGD step; "
                                  f"optimizer {self.optimizer!r} cannot be used with it")
        # ap
        if not 0.0 < float(self.ap_share) < 1.0:
            raise ConfigError(f"ap_share must lie in (0, 1), got {self.ap_share}")
        if self.method == "ap" and not self.ap_share < self.imp_rate:
            raise ConfigError(f"ap_share ({self.ap_share}) must be below imp_rate "
                              f"({self.imp_rate}): AP removes it out of each level's share")
        # sipp
        if self.sipp_mode not in SIPP_MODES:
            raise ConfigError(f"unknown sipp_mode {self.sipp_mode!r}; choose one of "
                              f"{', '.join(SIPP_MODES)}")
        _positive_int("sipp_batch_size", self.sipp_batch_size)
        if self.method == "sipp" and self.density is not None and self.density >= 1.0:
            raise ConfigError("sipp needs a density below 1")
        # nodes
        if self.node_sparsity is not None and not 0.0 <= float(self.node_sparsity) < 1.0:
            raise ConfigError(f"node_sparsity must lie in [0, 1), got {self.node_sparsity}")
        if self.keep_units is not None:
            self.keep_units = _parse_keep_units(self.keep_units)
        if self.method == "nodes" and (self.node_sparsity is None) == (self.keep_units is None):
            raise ConfigError("nodes needs exactly one of node_sparsity and keep_units")
        if self.method == "nodes" and self.density is not None:
            raise ConfigError("nodes keeps whole hidden units of the dense parent, so its "
                              "density follows from them and cannot be set: give "
                              "node_sparsity (--node-sparsity) or keep_units instead of "
                              "density")
        # sketched-gn
        _positive_int("gn_cg_iters", self.gn_cg_iters)
        if self.gn_sketch_size is not None:
            _positive_int("gn_sketch_size", self.gn_sketch_size)
        if not float(self.gn_cg_tol) > 0:
            raise ConfigError(f"gn_cg_tol must be positive, got {self.gn_cg_tol}")
        if self.optimizer == "sketched-gn":
            self._validate_sketched_gn()

    def _validate_sketched_gn(self) -> None:
        if not self.dataset.startswith("synthetic-"):
            raise ConfigError(f"sketched-gn solves the least-squares Gauss-Newton system: it "
                              f"trains regression tasks (synthetic-F1..F10), not "
                              f"{self.dataset!r}")
        if self.arch is None or len(self.arch) != 3 or self.arch[-1] != 1:
            raise ConfigError("sketched-gn trains two-layer networks with one output "
                              "(Brand et al. 2021): give --arch IN-HIDDEN-1")
        if self.activation != "relu":
            raise ConfigError(f"sketched-gn needs relu units (Brand et al. 2021), not "
                              f"{self.activation!r}")
        if self.l1 > 0:
            raise ConfigError("sketched-gn solves the Gauss-Newton system of the squared "
                              "loss alone; it cannot add an l1 penalty")
        if self.main_effects:
            raise ConfigError("sketched-gn steps the first layer of a two-layer network; it "
                              "cannot train main-effect networks beside it")

    # ------------------------------------------------------------- derived
    def target_density(self) -> float:
        """The density the method aims for (``density``, or the method's default)."""
        if self.density is not None:
            return float(self.density)
        if self.method in ("imp", "ap"):
            return (1.0 - self.imp_rate) ** self.n_imp_levels()
        return DEFAULT_DENSITY

    def initialisation_seed(self) -> int:
        """The seed of the initial masks and weights: ``init_seed``, else ``seed``."""
        return self.seed if self.init_seed is None else int(self.init_seed)

    def n_imp_levels(self) -> int:
        """Number of pruning levels of IMP (level 0, dense training, not counted).

        ``imp_levels`` when given; else the fewest levels whose density
        ``(1 - imp_rate)^L`` is at most ``density``; else 5.
        """
        if self.imp_levels is not None:
            return int(self.imp_levels)
        if self.density is not None:
            return max(1, math.ceil(math.log(self.density) / math.log(1.0 - self.imp_rate)
                                    - 1e-9))
        return 5

    # ------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every field."""
        out = dataclasses.asdict(self)
        out["arch"] = None if self.arch is None else list(self.arch)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Build a config from :meth:`to_dict` output (unknown keys are an error)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ConfigError(f"unknown training option(s): {', '.join(unknown)}")
        return cls(**data)

    def replace(self, **changes: Any) -> TrainConfig:
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)


def _positive_int(name: str, value: Any) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _parse_keep_units(keep: Any) -> list[list[int]]:
    """``keep_units`` as lists of distinct non-negative unit indices, one list per hidden
    layer (checked against the widths when the network is built)."""
    try:
        if isinstance(keep, (str, bytes)) or any(isinstance(layer, (str, bytes))
                                                 for layer in keep):
            raise TypeError
        out = [sorted(int(u) for u in layer) for layer in keep]
    except (TypeError, ValueError):
        raise ConfigError(f"keep_units must be one list of unit indices per hidden layer, "
                          f"got {keep!r}") from None
    if not out or any(len(set(layer)) != len(layer) or any(u < 0 for u in layer)
                      for layer in out):
        raise ConfigError("keep_units must hold distinct non-negative unit indices per "
                          "hidden layer")
    return out


def parse_arch(arch: Any) -> list[int]:
    """Layer widths from ``"64-100-100-10"``, ``"64,100,10"`` or a list of integers.

    Raises
    ------
    ConfigError
        Fewer than two widths, a width that is not a positive integer, or an empty width
        between two separators (``"64--10"``).
    """
    if isinstance(arch, str):
        # one separator between two widths: "64--10" is a slip, not 64-10
        parts = re.split(r"\s*[-,]\s*|\s+", arch.strip())
        try:
            widths = [int(p) for p in parts]
        except ValueError:
            raise ConfigError(
                f"malformed architecture {arch!r}: expected widths like 64-100-100-10"
            ) from None
    else:
        try:
            widths = [int(w) for w in arch]
        except (TypeError, ValueError):
            raise ConfigError(f"malformed architecture {arch!r}: expected a list of widths"
                              ) from None
        if any(isinstance(w, float) and not float(w).is_integer() for w in arch):
            raise ConfigError(f"malformed architecture {arch!r}: widths must be integers")
    if len(widths) < 2 or any(w < 1 for w in widths):
        raise ConfigError(f"malformed architecture {arch!r}: need at least two positive widths "
                          "(input and output), e.g. 64-100-100-10")
    return widths
