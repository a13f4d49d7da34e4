"""Initial weights of sparse layers, drawn with the run's own generator.

Every initialisation takes *effective* fans: a layer of density ``d`` gives each output unit
about ``d n_in`` inputs, so its fan-in is ``d n_in`` (and its fan-out ``d n_out``). Scaling by
the effective fan-in keeps the variance of the pre-activations what the dense rule intends
(Evci et al. 2022, "Gradient flow in sparse neural networks and how lottery tickets win",
AAAI). Fans below 1 are raised to 1.

The names below are the entries of :data:`topo.train.registry.WEIGHT_INITS`.

========================  ==========================================  =========================
name                      distribution                                source
========================  ==========================================  =========================
``he_uniform``            U(-b, b), b = sqrt(6 / fan_in)              He et al. 2015
``he_normal``             N(0, s^2), s = sqrt(2 / fan_in)             He et al. 2015
``xavier_uniform``        U(-b, b), b = sqrt(6 / (fan_in + fan_out))  Glorot & Bengio 2010
``torch_default``         U(-b, b), b = 1 / sqrt(fan_in)              torch's ``nn.Linear``
========================  ==========================================  =========================
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence

import torch

from topo.train.registry import WEIGHT_INITS

__all__ = ["WeightInit", "he_uniform", "he_normal", "xavier_uniform", "torch_default"]


class WeightInit:
    """Draws initial weights for the layers of one network (and for regrown connections).

    Parameters
    ----------
    kind
        A name of :data:`~topo.train.registry.WEIGHT_INITS`.
    widths
        Unit counts input to output.
    generator
        The run's torch generator; every draw advances it.
    fans
        Per layer, its dense ``(fan_in, fan_out)``, for layers that are not a chain of
        linear layers: a conv's ``(C_in kh kw, C_out kh kw)`` (PyTorch's
        ``_calculate_fan_in_and_fan_out``); ``None``: ``(widths[k], widths[k + 1])``.
    """

    def __init__(self, kind: str, widths: Sequence[int] | None, generator: torch.Generator,
                 fans: Sequence[tuple[int, int]] | None = None) -> None:
        self.kind = kind
        self.widths = None if widths is None else list(widths)
        if fans is not None:
            self.fans = list(fans)
        elif widths is not None:
            self.fans = [(widths[k], widths[k + 1]) for k in range(len(widths) - 1)]
        else:
            raise ValueError("give widths or fans")
        self.generator = generator
        self._draw = WEIGHT_INITS.load(kind, sys.modules[__name__])

    def draw(self, k: int, n: int, density: float) -> torch.Tensor:
        """``n`` weights for layer ``k`` at ``density`` (sparse-aware fans), float32."""
        n_in, n_out = self.fans[k]
        return self._draw(n, max(density * n_in, 1.0), max(density * n_out, 1.0),
                          self.generator)


def he_uniform(n: int, fan_in: float, fan_out: float,
               generator: torch.Generator) -> torch.Tensor:
    """``n`` draws of U(-b, b), ``b = sqrt(6 / fan_in)`` (He et al. 2015, uniform form)."""
    return _uniform(n, math.sqrt(6.0 / fan_in), generator)


def he_normal(n: int, fan_in: float, fan_out: float,
              generator: torch.Generator) -> torch.Tensor:
    """``n`` draws of N(0, 2 / fan_in) (He et al. 2015)."""
    return torch.randn(n, generator=generator) * math.sqrt(2.0 / fan_in)


def xavier_uniform(n: int, fan_in: float, fan_out: float,
                   generator: torch.Generator) -> torch.Tensor:
    """``n`` draws of U(-b, b), ``b = sqrt(6 / (fan_in + fan_out))`` (Glorot & Bengio 2010)."""
    return _uniform(n, math.sqrt(6.0 / (fan_in + fan_out)), generator)


def torch_default(n: int, fan_in: float, fan_out: float,
                  generator: torch.Generator) -> torch.Tensor:
    """``n`` draws of U(-b, b), ``b = 1 / sqrt(fan_in)``: what ``nn.Linear`` draws
    (``kaiming_uniform_`` with ``a = sqrt(5)``)."""
    return _uniform(n, 1.0 / math.sqrt(fan_in), generator)


def _uniform(n: int, bound: float, generator: torch.Generator) -> torch.Tensor:
    return (torch.rand(n, generator=generator) * 2.0 - 1.0) * bound
