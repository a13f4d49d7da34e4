"""Every name a user can choose in a training configuration, in one place.

Each registry maps the names accepted by :class:`~topo.train.config.TrainConfig` and by
``topo train`` to what they mean, with a one-line summary. The configuration checks names
against it, the command line builds its help from it, error messages list its names, and the
trainer looks implementations up in it; no other list of these names exists.

This module imports only the standard library and imports no implementation: the module that
implements a kind of name passes itself to :meth:`Registry.load` (``METHODS.load(name,
methods)``), so checking a configuration never loads torch and the registry sits below every
module that uses it (no import cycle).

To add a method: write its class (see :mod:`topo.train.methods`) and add one :class:`Entry`
to :data:`METHODS`; the configuration, the command line and ``--help`` follow.
"""

from __future__ import annotations

import textwrap
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from topo.errors import ConfigError

__all__ = ["Entry", "Registry", "METHODS", "OPTIMIZERS", "ACTIVATIONS", "WEIGHT_INITS",
           "INIT_SPARSITIES", "BACKENDS", "MODELS"]


@dataclass(frozen=True)
class Entry:
    """One registered name.

    Parameters
    ----------
    name
        What the user types (``--method set``).
    target
        Attribute of the registry's module that implements it (``None`` for a plain
        choice that code reads as a value, like a backend).
    summary
        One line for ``--help`` and the documentation, with the source paper.
    """

    name: str
    target: str | None
    summary: str


class Registry(Mapping[str, Entry]):
    """An ordered mapping from names to :class:`Entry`, with checking and lazy lookup.

    Parameters
    ----------
    kind
        What the names are, as the configuration field calls it (``"method"``); used in
        error messages.
    entries
        The entries, in the order ``--help`` lists them.
    """

    def __init__(self, kind: str, entries: Sequence[Entry]) -> None:
        self.kind = kind
        self._entries = {e.name: e for e in entries}
        if len(self._entries) != len(entries):
            raise ValueError(f"{kind} registry: duplicate names")

    def __getitem__(self, name: str) -> Entry:
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    @property
    def names(self) -> tuple[str, ...]:
        """The registered names, in order."""
        return tuple(self._entries)

    def check(self, name: Any) -> str:
        """``name`` if registered.

        Raises
        ------
        ConfigError
            ``unknown <kind> 'x'; choose one of a, b, c``.
        """
        if name not in self._entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; choose one of "
                              f"{', '.join(self._entries)}")
        return name

    def load(self, name: str, module: ModuleType | Any) -> Any:
        """The implementation registered under ``name``, looked up in ``module``.

        Parameters
        ----------
        name
            A registered name.
        module
            The module (or namespace) holding the targets, passed by the caller that
            implements this kind of name (``topo.train.methods`` for :data:`METHODS`,
            ``torch.nn`` for :data:`ACTIVATIONS`).

        Raises
        ------
        ConfigError
            Unknown name, or a plain choice with no implementation.
        """
        entry = self._entries[self.check(name)]
        if entry.target is None:
            raise ConfigError(f"{self.kind} {name!r} is a plain choice with no implementation")
        return getattr(module, entry.target)

    def choices(self) -> str:
        """The names as prose: ``a, b or c``."""
        names = list(self._entries)
        return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"

    def describe(self, width: int = 79) -> str:
        """Each name with its summary, wrapped to ``width`` columns (for ``--help`` and
        docs)."""
        name_width = max(len(n) for n in self._entries)
        indent = " " * (name_width + 4)
        return "\n".join(
            textwrap.fill(e.summary, width, initial_indent=f"  {e.name:<{name_width}}  ",
                          subsequent_indent=indent)
            for e in self._entries.values())



METHODS = Registry("method", [
    Entry("dense", "Dense", "every connection, never changed"),
    Entry("static", "Static", "a random ER/ERK mask, never changed (Mocanu et al. 2018)"),
    Entry("set", "SET", "SET: drop the smallest weights of each sign, regrow at random, "
                        "every epoch (Mocanu et al. 2018)"),
    Entry("rigl", "RigL", "RigL: drop by magnitude, grow where the gradient is largest, "
                          "every rigl_delta_t steps (Evci et al. 2020)"),
    Entry("gmp", "GMP", "gradual magnitude pruning from dense, cubic schedule "
                        "(Zhu & Gupta 2017)"),
    Entry("imp", "IMP", "iterative magnitude pruning with rewinding, lottery tickets "
                        "(Frankle & Carbin 2019; Frankle et al. 2020)"),
    Entry("snip", "SNIP", "prune at initialisation by |gradient x weight| "
                          "(Lee et al. 2019)"),
    Entry("ssgd", "SSGDPruning", "train dense with SSGD's affine-scaled steps, then prune "
                                 "the smallest weights (Lee et al. 2020)"),
    Entry("ap", "AP", "IMP with Activate-while-Pruning: part of each level's share among "
                      "the negative weights that moved least (Liu et al. 2023)"),
    Entry("sipp", "SiPP", "train, prune by data-informed sensitivity (deterministic, "
                          "randomized or hybrid), retrain (Baykal et al. 2022)"),
    Entry("nodes", "NodeSubnetwork", "a sub-network of the dense parent keeping some "
                                     "hidden units, never changed: random search in node "
                                     "space (Farahani 2024)"),
])

OPTIMIZERS = Registry("optimizer", [
    Entry("sgd", "sgd", "SGD with momentum and weight decay"),
    Entry("adam", "adam", "Adam with its default betas (Kingma & Ba 2015)"),
    Entry("ssgd", "ssgd", "SGD with SSGD's affine scaling of each weight's step "
                          "(Lee et al. 2020)"),
    Entry("sketched-gn", "sketched_gn", "Gauss-Newton steps solved by conjugate gradient "
                                        "with a sketched preconditioner, two-layer relu "
                                        "regression (Brand et al. 2021)"),
])

ACTIVATIONS = Registry("activation", [
    Entry("relu", "ReLU", "max(0, x)"),
    Entry("tanh", "Tanh", "tanh(x)"),
    Entry("sigmoid", "Sigmoid", "1 / (1 + exp(-x))"),
    Entry("leaky_relu", "LeakyReLU", "max(0, x) + 0.01 min(0, x)"),
    Entry("elu", "ELU", "x for x > 0, exp(x) - 1 otherwise"),
    Entry("gelu", "GELU", "x Phi(x) (Hendrycks & Gimpel 2016)"),
    Entry("identity", "Identity", "x (a linear network)"),
])

WEIGHT_INITS = Registry("weight_init", [
    Entry("he_uniform", "he_uniform", "U(-b, b), b = sqrt(6 / fan_in), sparse-aware fan-in "
                                      "(He et al. 2015; Evci et al. 2022)"),
    Entry("he_normal", "he_normal", "N(0, 2 / fan_in), sparse-aware fan-in"),
    Entry("xavier_uniform", "xavier_uniform", "U(-b, b), b = sqrt(6 / (fan_in + fan_out)) "
                                              "(Glorot & Bengio 2010)"),
    Entry("torch_default", "torch_default", "U(-b, b), b = 1 / sqrt(fan_in), torch's Linear "
                                            "default"),
])

INIT_SPARSITIES = Registry("init_sparsity", [
    Entry("er", None, "Erdos-Renyi: layer density eps (n_in + n_out) / (n_in n_out) "
                      "(Mocanu et al. 2018)"),
    Entry("erk", None, "the Erdos-Renyi shape scaled to the target density (Evci et al. "
                       "2020)"),
    Entry("dense", None, "start dense"),
])

BACKENDS = Registry("backend", [
    Entry("auto", None, "per layer: CSR for large sparse linear layers, masked-dense "
                        "otherwise (convs: masked-dense)"),
    Entry("dense", None, "masked-dense computation"),
    Entry("sparse", None, "CSR computation (convs: im2col, then CSR)"),
])

MODELS = Registry("model", [
    Entry("mlp", None, "a sparse multi-layer perceptron of --arch widths (the default)"),
    Entry("lenet5", "lenet5", "LeNet-5: two 5x5 convs with max-pooling, fc 120-84 "
                              "(LeCun et al. 1998)"),
    Entry("conv4", "conv4", "Conv-4: 3x3 convs 64-64-128-128 with max-pooling, fc 256-256 "
                            "(Frankle & Carbin 2019)"),
    Entry("vgg-small", "vgg_small", "a small VGG-style net: 3x3 convs with BatchNorm "
                                    "64-64-M-128-128-M-256-256-M, linear classifier "
                                    "(topo's configuration of Simonyan & Zisserman's design)"),
    Entry("resnet20", "resnet20", "CIFAR ResNet-20 with option A shortcuts (He et al. 2016)"),
])
"""Networks of ``topo train --model``; the CNNs are built by
:func:`topo.train.cnn.architecture` (a target names its builder there)."""
