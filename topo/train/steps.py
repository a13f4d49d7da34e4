"""Step rules: how the trainer turns one mini-batch into an update of the network.

The trainer calls its step rule once per mini-batch (unless the method replaces the step by
a mask update) and records the loss it returns. One rule exists so far:

- :class:`GradientStep` (every optimiser): forward pass, loss (plus the penalty, if any),
  backward pass, ``optimizer.step()``.

A new rule is a class with the call signature of :class:`StepRule`, chosen for a
configuration by :func:`topo.train.optim.step_rule`. A rule keeps no state of its own: any
randomness comes from the run's torch generator, which the checkpoint holds, so a resumed
run repeats the same steps.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from topo.train.model import SparseMLP

__all__ = ["StepRule", "GradientStep"]


class StepRule:
    """One update from one mini-batch.

    Parameters (of the call)
    ------------------------
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

    Returns
    -------
    (torch.Tensor, torch.Tensor)
        The network's output on ``x`` and the batch loss, both before the update (what the
        epoch's training metrics sum).
    """

    def __call__(self, model: SparseMLP, optimizer: torch.optim.Optimizer, x: torch.Tensor,
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

