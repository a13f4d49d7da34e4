"""Optimisers and loss penalties of the training core.

The optimisers are the entries of :data:`topo.train.registry.OPTIMIZERS`: each is a
function ``(params, config) -> Optimizer`` over the parameters of a network (every layer's
connection weights and bias, in layer order). A sparse layer's weights are one vector of its
connections only, so an optimiser never holds state for absent connections. An optimiser of
a new kind is one more function here and one registry entry.

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

__all__ = ["Optimizer", "SGD", "Adam", "sgd", "adam", "optimizer_factory", "l1_penalty"]


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


def optimizer_factory(config: Any) -> Callable[[SparseMLP], Optimizer]:
    """``make(model)``: a fresh optimiser of ``config.optimizer`` over ``model``'s
    parameters (``model.parameter_list()``: values and bias of each layer, and its
    normalisation's weight and bias, in layer order; then those of its main-effect networks,
    if it has them)."""
    make = OPTIMIZERS.load(config.optimizer, sys.modules[__name__])

    def build(model: SparseMLP) -> Optimizer:
        return make(model.parameter_list(), config)

    return build


def l1_penalty(coefficient: float) -> Callable[[SparseMLP], torch.Tensor]:
    """``coefficient · Σ|w|`` over the connection weights (biases excluded), a term added to
    the training objective (not to the reported loss)."""

    def penalty(model: SparseMLP) -> torch.Tensor:
        return coefficient * sum(layer.values.abs().sum() for layer in model.layers)

    return penalty
