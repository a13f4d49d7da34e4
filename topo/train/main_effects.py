"""Main-effect networks: NID's MLP-M (Tsang, Cheng & Liu 2018).

MLP-M is the main multilayer perceptron plus one small univariate network per input
feature, ``x_i -> 10 -> 10 -> 10 -> output`` with the hidden activation of the main network,
whose outputs are added to the main network's output. The univariate networks take up each
feature's main effect, so that the main network's weights are left to model interactions:
NID reads interactions from the main network only, and only its weights carry the L1
penalty. Sizes and regularisation follow the authors' code (``multilayer_perceptron.py``:
``main_effect_net_units=[10, 10, 10]``, no bias on each univariate output layer, the L1
term over the weights of ``interaction_mlp`` only; the ICLR 2018 demo notebook: hidden
sizes 10, L1 5e-5 over the main network's weights). Initial weights and biases are
``nn.Linear``'s default, U(-1/sqrt(fan_in), 1/sqrt(fan_in)), as the authors' PyTorch code
builds them, drawn from the run's initialisation generator.

In topo the main network is the :class:`~topo.train.model.SparseMLP` whose layers the
sparsity methods change and whose snapshots are written; :class:`MainEffects` is attached to
it (``model.main_effects``), trained with it by the same optimiser, kept in the checkpoint,
and described, not stored, in the snapshots' metadata (:func:`describe`). The univariate
networks are computed together as batched matrix products over the features.

References
----------
M. Tsang, D. Cheng, Y. Liu, "Detecting Statistical Interactions from Neural Network
Weights", ICLR 2018 (MLP-M; github.com/mtsang/neural-interaction-detection).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

__all__ = ["MainEffects", "HIDDEN", "describe"]

HIDDEN = (10, 10, 10)
"""Hidden widths of every univariate network (Tsang et al. 2018)."""


class MainEffects(nn.Module):
    """One dense univariate network per input feature; :meth:`forward` is their summed output.

    Parameters
    ----------
    n_features, n_outputs
        Input features (one network each) and outputs (those of the main network).
    activation
        The hidden activation module (the main network's).
    generator
        Draws the initial weights and biases.
    hidden
        Hidden widths of each network (default :data:`HIDDEN`).

    Attributes
    ----------
    weights
        Per layer, a ``(n_features, fan_in, fan_out)`` parameter: network ``i`` maps by
        ``weights[k][i]``.
    biases
        Per hidden layer, a ``(n_features, fan_out)`` parameter (the output layers have none).
    """

    def __init__(self, n_features: int, n_outputs: int, activation: nn.Module,
                 generator: torch.Generator, hidden: Sequence[int] = HIDDEN) -> None:
        super().__init__()
        self.n_features, self.n_outputs = int(n_features), int(n_outputs)
        self.widths = [1, *hidden, self.n_outputs]
        self.act = activation
        self.weights = nn.ParameterList()
        self.biases = nn.ParameterList()
        for k, (fan_in, fan_out) in enumerate(zip(self.widths, self.widths[1:])):
            bound = 1.0 / math.sqrt(fan_in)
            self.weights.append(nn.Parameter(
                _uniform((n_features, fan_in, fan_out), bound, generator)))
            if k < len(self.widths) - 2:
                self.biases.append(nn.Parameter(_uniform((n_features, fan_out), bound,
                                                         generator)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Σ_i g_i(x[:, i])`` for a batch ``x`` of shape ``(batch, n_features)``; shape
        ``(batch, n_outputs)``."""
        h = x.t().unsqueeze(2)                      # (features, batch, 1)
        for weight, bias in zip(self.weights, self.biases):
            h = self.act(torch.baddbmm(bias.unsqueeze(1), h, weight))
        return torch.bmm(h, self.weights[-1]).sum(0)

    def parameter_list(self) -> list[nn.Parameter]:
        """Every parameter, in a fixed order (weights then biases, layer by layer)."""
        return [*self.weights, *self.biases]


def describe(n_features: int, n_outputs: int, hidden: Sequence[int] = HIDDEN
             ) -> dict[str, Any]:
    """What a snapshot's metadata says of the univariate networks it does not hold."""
    return {"networks": int(n_features), "widths": [1, *map(int, hidden), int(n_outputs)],
            "in_graph": False,
            "model": "MLP-M (Tsang et al. 2018): the graph is the main network; one "
                     "univariate network per input feature adds its output to the graph's"}


def _uniform(shape: tuple[int, ...], bound: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(shape, generator=generator) * 2.0 - 1.0) * bound
