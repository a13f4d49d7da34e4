"""SIGKILL at any moment, then --resume: the new methods (ssgd, ap, sipp, nodes and the
sketched Gauss-Newton step) end with the bytes of an uninterrupted run (the machinery of
test_runner's SIGKILL test, for any configuration)."""

from __future__ import annotations

import os

import pytest

from topo.io import load
from topo.io.run import read_manifest, read_metrics, snapshot_paths
from topo.train import TrainConfig, train

from .conftest import SMALL, die_half_way, die_in_step, run_until_killed, snapshot_bytes

CASES = {
    # 22 steps an epoch; IMP-like levels keep counting steps
    "ssgd": (TrainConfig(method="ssgd", epochs=2, density=0.3, **SMALL), "mid-epoch", 30),
    "ap": (TrainConfig(method="ap", epochs=2, imp_levels=1, **SMALL), "mid-epoch", 50),
    "sipp": (TrainConfig(method="sipp", epochs=2, density=0.3, sipp_mode="randomized",
                         sipp_batch_size=32, **SMALL), "mid-epoch", 50),
    "nodes": (TrainConfig(method="nodes", epochs=2, node_sparsity=0.5, **SMALL),
              "mid-snapshot", 2),
    # 200 training samples in batches of 50: 4 Gauss-Newton steps an epoch
    "sketched-gn": (TrainConfig(method="set", dataset="synthetic-F1", n_samples=600,
                                arch=[10, 32, 1], batch_size=50, epochs=3, lr=0.5,
                                optimizer="sketched-gn", seed=1), "mid-epoch", 6),
}


def _train_and_die(config: TrainConfig, out, mode: str, nth: int) -> None:
    """Train ``config`` into ``out`` in a forked child SIGKILLed at its ``nth`` optimiser
    step (``mid-epoch``) or half-way through its ``nth`` snapshot (``mid-snapshot``)."""
    import topo.io.snapshot

    def child() -> None:
        if mode == "mid-epoch":
            die_in_step(nth)
        else:
            die_half_way(topo.io.snapshot, nth)
        train(config, out, progress=False)

    run_until_killed(child)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("name", list(CASES))
def test_sigkilled_runs_of_the_new_methods_resume_to_identical_bytes(tmp_path, name):
    config, mode, nth = CASES[name]
    reference = train(config, tmp_path / "reference", progress=False)
    out = tmp_path / "killed"
    _train_and_die(config, out, mode, nth)
    assert read_manifest(out)["status"] == "running"
    for path in snapshot_paths(out):
        load(path)
    train(config, out, resume=True, progress=False)
    ref_paths, out_paths = snapshot_paths(reference), snapshot_paths(out)
    assert [p.relative_to(reference) for p in ref_paths] == [
        p.relative_to(out) for p in out_paths]
    assert snapshot_bytes(ref_paths) == snapshot_bytes(out_paths)
    assert read_metrics(reference).drop(columns="wall_time").equals(
        read_metrics(out).drop(columns="wall_time"))
    assert read_manifest(out)["status"] == "finished"
