"""Optimisers and loss penalties of the training core.

The optimisers are the entries of :data:`topo.train.registry.OPTIMIZERS`: each is a
function ``(params, config) -> torch.optim.Optimizer`` over the parameters of a network (every
layer's connection weights and bias, in layer order). A sparse layer's weights are one vector
of its connections only, so an optimiser never holds state for absent connections. An
optimiser of a new kind is one more function here and one registry entry.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from topo.train.model import SparseMLP
from topo.train.registry import OPTIMIZERS

__all__ = ["sgd", "adam", "optimizer_factory", "l1_penalty"]


def sgd(params: Sequence[torch.nn.Parameter], config: Any) -> torch.optim.Optimizer:
    """SGD with ``config.lr``, ``config.momentum`` and ``config.weight_decay``."""
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, foreach=False)


def adam(params: Sequence[torch.nn.Parameter], config: Any) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015) with ``config.lr``, ``config.weight_decay`` and default betas."""
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay,
                            foreach=False)


def optimizer_factory(config: Any) -> Callable[[SparseMLP], torch.optim.Optimizer]:
    """``make(model)``: a fresh optimiser of ``config.optimizer`` over ``model``'s
    parameters (values and bias of each layer, in layer order)."""
    make = OPTIMIZERS.load(config.optimizer)

    def build(model: SparseMLP) -> torch.optim.Optimizer:
        return make([p for layer in model.layers for p in (layer.values, layer.bias)], config)

    return build


def l1_penalty(coefficient: float) -> Callable[[SparseMLP], torch.Tensor]:
    """``coefficient · Σ|w|`` over the connection weights (biases excluded), a term added to
    the training objective (not to the reported loss)."""

    def penalty(model: SparseMLP) -> torch.Tensor:
        return coefficient * sum(layer.values.abs().sum() for layer in model.layers)

    return penalty
