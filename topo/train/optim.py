"""Optimisers and loss penalties of the training core.

The optimisers are the entries of :data:`topo.train.registry.OPTIMIZERS`: each is a
function ``(params, config) -> torch.optim.Optimizer`` over the parameters of a network (every
layer's connection weights and bias, in layer order). A sparse layer's weights are one vector
of its connections only, so an optimiser never holds state for absent connections. An
optimiser of a new kind is one more function here and one registry entry; one that needs
more than the gradient (the Gauss-Newton step of ``sketched-gn``) also names its step rule
in :func:`step_rule`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from topo.train.model import SparseMLP
from topo.train.registry import OPTIMIZERS
from topo.train.steps import GradientStep, SketchedGaussNewtonStep, StepRule

__all__ = ["sgd", "adam", "ssgd", "SSGD", "affine_scaling", "sketched_gn", "step_rule",
           "optimizer_factory", "l1_penalty"]


def sgd(params: Sequence[torch.nn.Parameter], config: Any) -> torch.optim.Optimizer:
    """SGD with ``config.lr``, ``config.momentum`` and ``config.weight_decay``."""
    return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum,
                           weight_decay=config.weight_decay, foreach=False)


def adam(params: Sequence[torch.nn.Parameter], config: Any) -> torch.optim.Optimizer:
    """Adam (Kingma & Ba 2015) with ``config.lr``, ``config.weight_decay`` and default betas."""
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay,
                            foreach=False)


def ssgd(params: Sequence[torch.nn.Parameter], config: Any) -> torch.optim.Optimizer:
    """SSGD (:class:`SSGD`) with ``config.lr``, ``config.momentum``, ``config.weight_decay``,
    ``config.ssgd_eps`` and ``config.ssgd_form``; ``params`` alternate connection weights
    and bias, layer by layer (as :func:`optimizer_factory` passes them): the weights take
    the affine-scaled step, the biases the plain one."""
    groups = [{"params": [p], "scaled": i % 2 == 0} for i, p in enumerate(params)]
    return SSGD(groups, lr=config.lr, momentum=config.momentum,
                weight_decay=config.weight_decay, eps=config.ssgd_eps, form=config.ssgd_form)


class SSGD(torch.optim.SGD):
    """SGD whose step of every connection weight is scaled by its affine-scaling factor.

    For a parameter group marked ``scaled`` (one layer's connection weights θ), each step
    replaces the gradient ``g`` (plus ``weight_decay · θ``) by ``s ⊙ g`` with
    :func:`affine_scaling` ``s`` of the current θ, then takes torch's SGD step (momentum
    included) with it: without momentum, ``θᵢ ← θᵢ - lr sᵢ ∂L/∂θᵢ``. Other groups (the
    biases) take the plain SGD step.

    Parameters
    ----------
    params
        Parameter groups; a group with ``scaled=True`` gets the scaling.
    lr, momentum, weight_decay
        As for :class:`torch.optim.SGD` (weight decay enters the scaled gradient).
    eps, form
        The reweighting's ε and form (``"l2"`` or ``"l1"``, :func:`affine_scaling`).

    Notes
    -----
    Lee, Fedorov, Rao & Garudadri (2020), "SSGD: sparsity-promoting stochastic gradient
    descent algorithm for unbiased DNN pruning", ICASSP; the affine scaling transformation
    from Fedorov et al. (2018), "Re-weighted learning for sparsifying deep neural
    networks", arXiv 1802.01616. With θ = W q and W = diag(w), a gradient step on q is
    ``θ ← θ - lr W² ∂L/∂θ``: weights near 0 move slowly and end up prunable.

    Assumptions: the objective is the loss alone, without a diversity penalty (the
    "unbiased" form, in which the reweighting shapes the steps and no term pulls weights
    to 0; ``--l1`` still adds one if asked); the scaling is recomputed at every step from
    the current weights, normalised by its mean over the layer's connections so that the
    mean step size stays that of SGD; biases are not scaled; momentum accumulates the
    scaled gradient.
    """

    def __init__(self, params: Any, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, eps: float = 1e-4, form: str = "l2") -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=0.0, foreach=False)
        self.scaled_weight_decay, self.eps, self.form = weight_decay, eps, form
        for group in self.param_groups:
            group.setdefault("scaled", False)
            if not group["scaled"]:
                group["weight_decay"] = weight_decay

    @torch.no_grad()
    def step(self, closure: Callable[[], float] | None = None) -> float | None:
        for group in self.param_groups:
            if not group["scaled"]:
                continue
            for p in group["params"]:
                if p.grad is not None:
                    if self.scaled_weight_decay:
                        p.grad.add_(p, alpha=self.scaled_weight_decay)
                    p.grad.mul_(affine_scaling(p, self.eps, self.form))
        return super().step(closure)


def affine_scaling(theta: torch.Tensor, eps: float, form: str = "l2") -> torch.Tensor:
    """SSGD's affine-scaling factors of one layer's weights.

    ``wᵢ = (θᵢ² + ε)^½`` (``form="l2"``, reweighted ℓ2 of the log-sum diversity measure
    ``Σ log(θᵢ² + ε)``) or ``wᵢ = |θᵢ| + ε`` (``form="l1"``, reweighted ℓ1 of
    ``Σ log(|θᵢ| + ε)``); ``sᵢ = wᵢ² / mean(w²)``.

    Raises
    ------
    ValueError
        Unknown form.

    Notes
    -----
    Lee et al. (2020); Fedorov et al. (2018), arXiv 1802.01616. O(n).
    """
    if form == "l2":
        w2 = theta * theta + eps
    elif form == "l1":
        w2 = (theta.abs() + eps) ** 2
    else:
        raise ValueError(f"unknown SSGD form {form!r}")
    return w2 / w2.mean()


def sketched_gn(params: Sequence[torch.nn.Parameter], config: Any) -> torch.optim.Optimizer:
    """The optimiser of ``sketched-gn``: plain SGD with ``config.lr`` and no momentum, which
    applies the Gauss-Newton direction its step rule (:class:`~topo.train.steps.
    SketchedGaussNewtonStep`) puts in place of the gradient."""
    return torch.optim.SGD(params, lr=config.lr, momentum=0.0, weight_decay=0.0,
                           foreach=False)


def step_rule(config: Any) -> StepRule:
    """How a mini-batch becomes an update under ``config.optimizer``: the sketched
    Gauss-Newton step for ``sketched-gn``, backward pass and optimiser step otherwise."""
    if config.optimizer == "sketched-gn":
        return SketchedGaussNewtonStep(config.gn_sketch_size, config.gn_cg_tol,
                                       config.gn_cg_iters)
    return GradientStep()


def optimizer_factory(config: Any, name: str | None = None
                      ) -> Callable[[SparseMLP], torch.optim.Optimizer]:
    """``make(model)``: a fresh optimiser of ``name`` (default ``config.optimizer``) over
    ``model``'s parameters (values and bias of each layer, in layer order)."""
    make = OPTIMIZERS.load(name or config.optimizer)

    def build(model: SparseMLP) -> torch.optim.Optimizer:
        return make([p for layer in model.layers for p in (layer.values, layer.bias)], config)

    return build


def l1_penalty(coefficient: float) -> Callable[[SparseMLP], torch.Tensor]:
    """``coefficient · Σ|w|`` over the connection weights (biases excluded), a term added to
    the training objective (not to the reported loss)."""

    def penalty(model: SparseMLP) -> torch.Tensor:
        return coefficient * sum(layer.values.abs().sum() for layer in model.layers)

    return penalty
