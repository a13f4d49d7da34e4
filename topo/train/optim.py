"""Optimisers and loss penalties of the training core.

The optimisers are the entries of :data:`topo.train.registry.OPTIMIZERS`: each is a
function ``(params, config) -> Optimizer`` over the parameters of a network (every layer's
connection weights and bias, in layer order). A sparse layer's weights are one vector of its
connections only, so an optimiser never holds state for absent connections. An optimiser of
a new kind is one more function here and one registry entry; one that needs more than the
gradient (the Gauss-Newton step of ``sketched-gn``) also names its step rule in
:func:`step_rule`.

:class:`SGD` and :class:`Adam` compute exactly what ``torch.optim.SGD`` and
``torch.optim.Adam`` compute on their single-tensor path (``foreach=False``), operation for
operation, and keep the same per-parameter state (``momentum_buffer``; ``step``,
``exp_avg``, ``exp_avg_sq``), so checkpoints written with torch's optimisers resume
unchanged. They are topo's own because every ``torch.optim.Optimizer`` imports
``torch._dynamo`` (the compiler, several seconds) on construction and on its first step,
which made ``topo train`` wait that long before its first batch. A new optimiser may still
be a ``torch.optim.Optimizer``: the trainer and the methods use only what both offer
(:class:`Optimizer`).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch

from topo.train.model import SparseMLP
from topo.train.registry import OPTIMIZERS
from topo.train.steps import GradientStep, SketchedGaussNewtonStep, StepRule

__all__ = ["Optimizer", "SGD", "Adam", "SSGD", "sgd", "adam", "ssgd", "affine_scaling",
           "sketched_gn", "step_rule", "optimizer_factory", "l1_penalty"]


class Optimizer:
    """What the training core uses of an optimiser (a subset of ``torch.optim.Optimizer``).

    Attributes
    ----------
    param_groups
        One dict per group: ``"params"`` (the parameters, in order) and the
        hyper-parameters. :func:`~topo.train.methods.drop_and_grow` replaces a parameter
        in its group when a layer's connection set changes.
    state
        Per parameter (by identity), a dict of its state tensors; a missing entry means
        no state yet.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], **defaults: Any) -> None:
        self.defaults = defaults
        self.param_groups: list[dict[str, Any]] = [{"params": list(params), **defaults}]
        self.state: dict[torch.Tensor, dict[str, Any]] = {}

    def zero_grad(self, set_to_none: bool = True) -> None:
        """Forget every parameter's gradient (``set_to_none=False``: set it to 0)."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is None:
                    continue
                if set_to_none:
                    p.grad = None
                else:
                    p.grad.detach_()
                    p.grad.zero_()

    @torch.no_grad()
    def step(self) -> None:
        """Update every parameter that has a gradient."""
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self.state.setdefault(p, {})
                    self.update(p, p.grad, self.state[p], group)

    def update(self, param: torch.Tensor, grad: torch.Tensor, state: dict[str, Any],
               group: dict[str, Any]) -> None:
        """Change ``param`` in place by its gradient; ``state`` is its own (empty at first)."""
        raise NotImplementedError


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and L2 weight decay.

    Per parameter: ``g = ∇ + λ θ``; with momentum ``μ > 0``, ``b = g`` at the first step
    and ``b = μ b + g`` after, and ``g = b``; then ``θ = θ - lr g``. This is
    ``torch.optim.SGD`` without dampening or Nesterov, computed with the same operations in
    the same order (so bitwise equal); state ``momentum_buffer``.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float,
                 momentum: float = 0.0, weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, momentum=momentum, weight_decay=weight_decay)

    def update(self, param, grad, state, group) -> None:
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = grad.detach().clone()
                state["momentum_buffer"] = buf
            else:
                buf.mul_(momentum).add_(grad, alpha=1)
            grad = buf
        param.add_(grad, alpha=-group["lr"])


class Adam(Optimizer):
    """Adam with L2 weight decay added to the gradient (not decoupled).

    Per parameter, at step ``t``: ``g = ∇ + λ θ``; ``m = m + (1 - β1)(g - m)`` (a lerp);
    ``v = β2 v + (1 - β2) g²``; ``θ = θ - lr / (1 - β1^t) · m / (√v / √(1 - β2^t) + ε)``.
    This is ``torch.optim.Adam``'s single-tensor path (no amsgrad), operation for operation;
    state ``step`` (a float32 scalar tensor, as torch keeps it), ``exp_avg``,
    ``exp_avg_sq``.

    Notes
    -----
    Kingma & Ba (2015), "Adam: a method for stochastic optimization", ICLR, Algorithm 1.
    """

    def __init__(self, params: Iterable[torch.nn.Parameter], *, lr: float,
                 betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0) -> None:
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)

    def update(self, param, grad, state, group) -> None:
        if not state:
            state["step"] = torch.tensor(0.0, dtype=torch.float32)
            state["exp_avg"] = torch.zeros_like(param, memory_format=torch.preserve_format)
            state["exp_avg_sq"] = torch.zeros_like(param, memory_format=torch.preserve_format)
        beta1, beta2 = group["betas"]
        exp_avg, exp_avg_sq, step_t = state["exp_avg"], state["exp_avg_sq"], state["step"]
        step_t += 1
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = step_t.item()
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        step_size = group["lr"] / bias_correction1
        denom = (exp_avg_sq.sqrt() / bias_correction2 ** 0.5).add_(group["eps"])
        param.addcdiv_(exp_avg, denom, value=-step_size)


def sgd(params: Sequence[torch.nn.Parameter], config: Any) -> Optimizer:
    """SGD with ``config.lr``, ``config.momentum`` and ``config.weight_decay``."""
    return SGD(params, lr=config.lr, momentum=config.momentum,
               weight_decay=config.weight_decay)


def adam(params: Sequence[torch.nn.Parameter], config: Any) -> Optimizer:
    """Adam (Kingma & Ba 2015) with ``config.lr``, ``config.weight_decay`` and default betas."""
    return Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def ssgd(params: Sequence[torch.nn.Parameter], config: Any) -> Optimizer:
    """SSGD (:class:`SSGD`) with ``config.lr``, ``config.momentum``, ``config.weight_decay``,
    ``config.ssgd_eps`` and ``config.ssgd_form``; ``params`` alternate connection weights
    and bias, layer by layer (as :func:`optimizer_factory` passes them for a network without
    main-effect networks, which the configuration refuses with SSGD): the weights take the
    affine-scaled step, the biases the plain one."""
    groups = [{"params": [p], "scaled": i % 2 == 0} for i, p in enumerate(params)]
    return SSGD(groups, lr=config.lr, momentum=config.momentum,
                weight_decay=config.weight_decay, eps=config.ssgd_eps, form=config.ssgd_form)


class SSGD(SGD):
    """SGD whose step of every connection weight is scaled by its affine-scaling factor.

    For a parameter group marked ``scaled`` (one layer's connection weights θ), each step
    replaces the gradient ``g`` (plus ``weight_decay · θ``) by ``s ⊙ g`` with
    :func:`affine_scaling` ``s`` of the current θ, then takes :class:`SGD`'s step (momentum
    included) with it: without momentum, ``θᵢ ← θᵢ - lr sᵢ ∂L/∂θᵢ``. Other groups (the
    biases) take the plain SGD step.

    Parameters
    ----------
    params
        Parameter groups (dicts with ``"params"``); a group with ``scaled=True`` gets the
        scaling.
    lr, momentum, weight_decay
        As for :class:`SGD` (weight decay enters the scaled gradient).
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

    def __init__(self, params: Iterable[dict[str, Any]], *, lr: float, momentum: float = 0.0,
                 weight_decay: float = 0.0, eps: float = 1e-4, form: str = "l2") -> None:
        if form not in ("l1", "l2"):
            raise ValueError(f"unknown SSGD form {form!r}")
        self.defaults = {"lr": lr, "momentum": momentum, "weight_decay": weight_decay,
                         "scaled": False}
        self.param_groups = [{**self.defaults, **group, "params": list(group["params"])}
                             for group in params]
        self.state = {}
        self.eps, self.form = eps, form

    def update(self, param, grad, state, group) -> None:
        if not group["scaled"]:
            super().update(param, grad, state, group)
            return
        if group["weight_decay"] != 0:
            grad = grad.add(param, alpha=group["weight_decay"])
        grad = grad.mul(affine_scaling(param, self.eps, self.form))
        super().update(param, grad, state, {**group, "weight_decay": 0.0})


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


def sketched_gn(params: Sequence[torch.nn.Parameter], config: Any) -> Optimizer:
    """The optimiser of ``sketched-gn``: plain :class:`SGD` with ``config.lr`` and no
    momentum, which applies the Gauss-Newton direction its step rule
    (:class:`~topo.train.steps.SketchedGaussNewtonStep`) puts in place of the gradient."""
    return SGD(params, lr=config.lr, momentum=0.0, weight_decay=0.0)


def step_rule(config: Any) -> StepRule:
    """How a mini-batch becomes an update under ``config.optimizer``: the sketched
    Gauss-Newton step for ``sketched-gn``, backward pass and optimiser step otherwise."""
    if config.optimizer == "sketched-gn":
        return SketchedGaussNewtonStep(config.gn_sketch_size, config.gn_cg_tol,
                                       config.gn_cg_iters)
    return GradientStep()


def optimizer_factory(config: Any, name: str | None = None
                      ) -> Callable[[SparseMLP], Optimizer]:
    """``make(model)``: a fresh optimiser of ``name`` (default ``config.optimizer``) over
    ``model``'s parameters (``model.parameter_list()``: values and bias of each layer, and its
    normalisation's weight and bias, in layer order; then those of its main-effect networks,
    if it has them)."""
    make = OPTIMIZERS.load(name or config.optimizer, sys.modules[__name__])

    def build(model: SparseMLP) -> Optimizer:
        return make(model.parameter_list(), config)

    return build


def l1_penalty(coefficient: float) -> Callable[[SparseMLP], torch.Tensor]:
    """``coefficient · Σ|w|`` over the connection weights (biases excluded), a term added to
    the training objective (not to the reported loss)."""

    def penalty(model: SparseMLP) -> torch.Tensor:
        return coefficient * sum(layer.values.abs().sum() for layer in model.layers)

    return penalty
