"""Step rules: how the trainer turns one mini-batch into an update of the network.

The trainer calls its step rule once per mini-batch (unless the method replaces the step by
a mask update) and records the loss it returns. Two rules exist:

- :class:`GradientStep` (every optimiser but one): forward pass, loss (plus the penalty, if
  any), backward pass, ``optimizer.step()``;
- :class:`SketchedGaussNewtonStep` (``--optimizer sketched-gn``): the Gauss-Newton direction
  of the squared loss, solved by preconditioned conjugate gradient with a sketched
  preconditioner (:mod:`topo.train.sketched_gn`), applied by the optimiser as if it were
  the gradient.

A new rule is a class with the call signature of :class:`StepRule`, chosen for a
configuration by :func:`topo.train.optim.step_rule`. A rule keeps no state that a later step
depends on (diagnostics of the last step at most): any randomness comes from the run's
torch generator, which the checkpoint holds, so a resumed run repeats the same steps.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch

from topo.train.model import SparseMLP

if TYPE_CHECKING:
    from topo.train.optim import Optimizer

__all__ = ["StepRule", "GradientStep", "SketchedGaussNewtonStep"]


class StepRule:
    """One update from one mini-batch.

    Notes
    -----
    A rule is called as ``rule(model, optimizer, x, y, loss_fn, penalty, generator)``:

    model
        The network (in training mode).
    optimizer
        The run's optimiser; the rule calls its ``step()``.
    x, y
        The mini-batch.
    loss_fn
        ``loss_fn(output, y)``, mean over the batch.
    penalty
        ``penalty(model)`` added to the objective (not to the returned loss), or None.
    generator
        The run's torch generator, for a rule that draws random numbers.

    and returns ``(output, loss)``, two tensors: the network's output on ``x`` and the batch
    loss, both before the update (what the epoch's training metrics sum).
    """

    def __call__(self, model: SparseMLP, optimizer: Optimizer, x: torch.Tensor,
                 y: torch.Tensor, loss_fn: Callable[..., torch.Tensor],
                 penalty: Callable[[SparseMLP], torch.Tensor] | None,
                 generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError


class GradientStep(StepRule):
    """Backpropagate the objective and let the optimiser step."""

    def __call__(self, model, optimizer, x, y, loss_fn, penalty, generator):
        out = model(x)
        loss = loss_fn(out, y)
        objective = loss + penalty(model) if penalty else loss
        optimizer.zero_grad(set_to_none=True)
        objective.backward()
        optimizer.step()
        return out, loss


class SketchedGaussNewtonStep(StepRule):
    """A Gauss-Newton step of the squared loss for a two-layer relu network with one output.

    With residuals ``r = f(x) - y`` of the batch and the Jacobian ``J`` of the outputs with
    respect to the first layer's connection weights, the direction is the minimum-norm
    solution ``Δ = Jᵀ g`` of ``J Δ = r``, where ``(J Jᵀ) g = r`` is solved by conjugate
    gradient preconditioned with a sketch of ``Jᵀ``
    (:func:`topo.train.sketched_gn.gauss_newton_direction`). The optimiser (plain SGD
    with the run's ``lr``) then takes ``W ← W - lr Δ``; ``lr = 1`` is the full step of
    Brand et al. (2021). As in their analysis only the first layer is trained: the output
    weights and both biases keep their initial values.

    Parameters
    ----------
    sketch_size
        Rows of the sketch; ``None``: four times the batch's samples.
    cg_tol, cg_iters
        Conjugate-gradient tolerance (residual norm relative to ``‖r‖``) and iteration
        limit.

    Attributes
    ----------
    last
        Diagnostics of the last step (conjugate-gradient iterations and relative residual,
        sketch rows, damping); not part of the run's state.

    Notes
    -----
    Brand, Peng, Song & Weinstein (2021), "Training (overparametrized) neural networks in
    near-linear time", ITCS, Section 4 (the Gauss-Newton iteration and its sketched
    solver).
    """

    def __init__(self, sketch_size: int | None, cg_tol: float, cg_iters: int) -> None:
        self.sketch_size, self.cg_tol, self.cg_iters = sketch_size, cg_tol, cg_iters
        self.last: dict[str, Any] = {}

    def __call__(self, model, optimizer, x, y, loss_fn, penalty, generator):
        from topo.train.sketched_gn import gauss_newton_direction

        hidden, output = model.layers
        with torch.no_grad():
            out = model(x)
            loss = loss_fn(out, y)
            residual = out.reshape(-1) - y.reshape(-1)
            sketch = self.sketch_size or 4 * len(x)
            direction, info = gauss_newton_direction(
                x, hidden.flat, hidden.values, hidden.bias, output.dense_weight()[0],
                residual, n_in=hidden.n_in, sketch_size=sketch, tol=self.cg_tol,
                max_iter=self.cg_iters, generator=generator)
        self.last = info
        optimizer.zero_grad(set_to_none=True)
        hidden.values.grad = direction.to(hidden.values.dtype)
        optimizer.step()
        return out, loss
