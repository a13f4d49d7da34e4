"""Shared fixtures of the training tests: one small configuration, one trained SET run (trained
once per session and shared by every test that only reads it), and tiny hand-made layers."""

from __future__ import annotations

import os
import signal
import time
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


# ------------------------------------------------------------- runs killed on purpose
def die_half_way(module, nth: int) -> None:
    """Make ``module``'s ``nth`` atomic write stop half-way: SIGKILL with only its temporary
    file written (100 bytes)."""
    from topo.io.atomic import atomic_path

    real, count = module.atomic_write_bytes, [0]

    def write(path, data):
        count[0] += 1
        if count[0] == nth:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data[:100])
                os.kill(os.getpid(), signal.SIGKILL)
        return real(path, data)

    module.atomic_write_bytes = write


def die_in_step(nth: int) -> None:
    """SIGKILL from inside the ``nth`` optimiser step."""
    from topo.train.optim import SGD

    real, count = SGD.step, [0]

    def step(self, *args, **kwargs):
        count[0] += 1
        if count[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, *args, **kwargs)

    SGD.step = step


def run_until_killed(child, what: str = "the child") -> None:
    """Run ``child()`` in a forked process and check that SIGKILL ended it (within 120 s).

    The child shares everything this process has imported, so it costs no start-up; it
    leaves only through SIGKILL or ``os._exit`` (never back into pytest).
    """
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child process
        try:
            child()
        finally:
            os._exit(3)
    deadline = time.monotonic() + 120
    while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if waited[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail(f"{what} did not end within 120 s")
    assert os.WIFSIGNALED(waited[1]) and os.WTERMSIG(waited[1]) == signal.SIGKILL
