"""SIGTERM during :func:`topo.train.train` in the process itself (not a child): the run
stops as after Ctrl-C, at a known epoch, and the process's own SIGTERM handler is back."""

from __future__ import annotations

import os
import signal
import threading

import pytest

from topo.io.run import read_manifest, read_metrics
from topo.train import TrainConfig, train
from topo.train.callbacks import Callback
from topo.train.runner import Terminated


class _TermAfterEpoch(Callback):
    """Sends this process SIGTERM at the end of one epoch (after every callback of topo's
    own, so that epoch's checkpoint is written)."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_epoch_end(self, trainer, epoch) -> None:
        if epoch.row["epoch"] == self.epoch:
            os.kill(os.getpid(), signal.SIGTERM)


def test_sigterm_stops_the_run_as_interrupted_and_restores_the_handler(tmp_path):
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can be set in the main thread only")
    seen: list[int] = []

    def mine(signum, frame):
        seen.append(signum)

    before = signal.signal(signal.SIGTERM, mine)
    try:
        config = TrainConfig(method="set", dataset="synthetic-F1", arch=[10, 4, 1], epochs=2,
                             n_samples=60, seed=0)
        with pytest.raises(Terminated, match="SIGTERM"):
            train(config, tmp_path / "run", progress=False, callbacks=[_TermAfterEpoch(1)])
        # the handler of the process is its own again: a SIGTERM now reaches it
        assert signal.getsignal(signal.SIGTERM) is mine
        os.kill(os.getpid(), signal.SIGTERM)
        assert seen == [signal.SIGTERM]
    finally:
        signal.signal(signal.SIGTERM, before)
    manifest = read_manifest(tmp_path / "run")
    assert manifest["status"] == "interrupted"
    assert manifest["interrupted_by"] == "SIGTERM"
    assert manifest["resumes_after_epoch"] == 1
    # epoch 0 (before training) and epoch 1 were written, epoch 2 never ran
    assert list(read_metrics(tmp_path / "run")["epoch"]) == [0, 1]
