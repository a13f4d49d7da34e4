"""``dense`` and ``static``: networks whose structure never changes."""

from __future__ import annotations

from topo.train.methods.base import Method

__all__ = ["Dense", "Static"]


class Dense(Method):
    """``dense``: every connection, never changed."""

    starts_dense = True


class Static(Method):
    """``static``: a random mask (``init_sparsity``: ER or ERK) fixed for the whole run.

    Notes
    -----
    The sparse baseline of Mocanu et al. (2018) and Evci et al. (2020).
    """
