"""Shared fixtures of the training tests: one small configuration, one trained SET run (trained
once per session and shared by every test that only reads it), and tiny hand-made layers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from topo.train import TrainConfig, train

# 64-40-30-10 on digits, batch 64: 1347 training samples -> ceil(1347 / 64) = 22 steps an epoch
SMALL = {"dataset": "digits", "arch": [64, 40, 30, 10], "batch_size": 64, "seed": 3}
STEPS_PER_EPOCH = 22
SET_CONFIG = TrainConfig(method="set", epochs=4, **SMALL)


@pytest.fixture(scope="session")
def set_run(built_once) -> Path:
    """A finished 4-epoch SET run of :data:`SET_CONFIG`, trained once per session and shared
    by the xdist workers (read-only: copy it to change it)."""
    return built_once("set-run", lambda folder: train(SET_CONFIG, folder / "set",
                                                      progress=False)) / "set"


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Tests drive trainers of tiny networks directly, without ``train()``'s thread setting:
    one thread, as ``train()`` picks for networks this small (a second one only waits, and
    on a busy machine it waits long). The count is put back after each test."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def restore_torch_threads():
    """Tests that change torch's thread count leave it as they found it."""
    before = torch.get_num_threads()
    yield before
    torch.set_num_threads(before)


def tiny_layer(backend: str = "dense"):
    """A 4-input, 2-output layer with connections at flat positions 0, 2, 5, 7 (that is
    (0, 0), (0, 2), (1, 1), (1, 3)) of weights 1, 2, 3, 4."""
    from topo.train.model import SparseLinear

    return SparseLinear(4, 2, np.array([0, 2, 5, 7]), torch.tensor([1.0, 2.0, 3.0, 4.0]),
                        torch.zeros(2), backend=backend)


def snapshot_bytes(paths) -> list[bytes]:
    """The bytes of snapshot files: the same seed on the same machine must give the same."""
    return [Path(p).read_bytes() for p in paths]
