"""``dense`` and ``static``: networks whose structure never changes."""

from __future__ import annotations

from typing import Any

from topo.errors import ConfigError
from topo.train.methods.base import Method

__all__ = ["Dense", "Static"]


class Dense(Method):
    """``dense``: every connection, never changed (a density below 1 is refused)."""

    starts_dense = True

    @classmethod
    def from_config(cls, config: Any, total_steps: int) -> Dense:
        if config.density is not None and config.density < 1.0:
            raise ConfigError(f"dense trains every connection: density {config.density:g} "
                              "cannot be met (static keeps a random sparse mask fixed)")
        return cls()


class Static(Method):
    """``static``: a random mask (``init_sparsity``: ER or ERK) fixed for the whole run.

    Notes
    -----
    The sparse baseline of Mocanu et al. (2018) and Evci et al. (2020).
    """
