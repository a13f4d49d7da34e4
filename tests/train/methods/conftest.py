"""A context for calling a method on a hand-made network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.train.initialization import WeightInit
from topo.train.methods import Context
from topo.train.model import SparseMLP


def make_context(model: SparseMLP, *, optimizer=None, prunable=None, step: int = 0,
                 batch=None, train_data=None, seed: int = 0,
                 loss_fn=torch.nn.functional.mse_loss) -> Context:
    generator = torch.Generator().manual_seed(seed)
    return Context(model=model, optimizer=optimizer,
                   prunable=[True] * len(model.layers) if prunable is None else prunable,
                   step=step, rng=np.random.default_rng(seed), generator=generator,
                   init=WeightInit("he_uniform", model.widths, generator), loss_fn=loss_fn,
                   train_data=train_data, batch=batch)


@pytest.fixture
def context():
    return make_context
