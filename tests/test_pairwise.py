"""Task running through joblib, locally and on a real Dask distributed cluster."""

from __future__ import annotations

import operator

import numpy as np
import pytest

import topo
from topo.distance import distance_matrix
from topo.errors import ConfigError
from topo.graph import LayeredGraph
from topo.parallel import pair_blocks, run_tasks


def test_pair_blocks_cover_every_pair_once():
    for n, jobs in [(1, 1), (2, 1), (7, 2), (30, 3)]:
        blocks = pair_blocks(n, n_jobs=jobs)
        pairs = np.concatenate(blocks) if blocks else np.zeros((0, 2), dtype=int)
        want = {(i, j) for i in range(n) for j in range(i + 1, n)}
        assert {tuple(p) for p in pairs.tolist()} == want
        assert len(pairs) == len(want)


def test_run_tasks_keeps_task_order_in_processes():
    tasks = [(operator.mul, (i, 3)) for i in range(10)]
    assert run_tasks(tasks, n_jobs=2) == [3 * i for i in range(10)]
    assert run_tasks(tasks, n_jobs=1) == [3 * i for i in range(10)]


def test_run_tasks_rejects_zero_jobs():
    with pytest.raises(ConfigError, match="n_jobs"):
        run_tasks([(operator.neg, (1,))], n_jobs=0)


def test_progress_bar_counts_items(capsys):
    run_tasks([(operator.neg, (i,)) for i in range(3)], progress=True, total_items=[2, 2, 1],
              desc="pairs")
    assert "5/5" in capsys.readouterr().err


@pytest.fixture(scope="module")
def dask_scheduler():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False,
                                       dashboard_address=None)
    try:
        yield cluster.scheduler_address
    finally:
        cluster.close()


def worker_address() -> str:
    from distributed import get_worker

    return get_worker().address  # raises ValueError outside a Dask worker


def test_run_tasks_on_a_dask_cluster(dask_scheduler):
    tasks = [(operator.add, (i, 100)) for i in range(6)]
    assert run_tasks(tasks, scheduler=dask_scheduler) == [i + 100 for i in range(6)]
    from distributed import Client

    with Client(dask_scheduler) as client:
        workers = set(client.scheduler_info()["workers"])
    ran_on = run_tasks([(worker_address, ())] * 3, scheduler=dask_scheduler)
    assert set(ran_on) <= workers


def test_distance_matrix_on_a_dask_cluster_equals_local(dask_scheduler, tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i in range(4):
        layers = [np.where(rng.random((6, 10)) < 0.4, 1.0, 0.0),
                  np.where(rng.random((3, 6)) < 0.5, 1.0, 0.0)]
        paths.append(topo.save_snapshot(LayeredGraph(layers), tmp_path / f"n{i}.safetensors"))
    local = distance_matrix(paths)
    remote = distance_matrix(paths, scheduler=dask_scheduler)
    assert np.array_equal(local[0].to_numpy(), remote[0].to_numpy())
    assert np.array_equal(local[1].to_numpy(), remote[1].to_numpy())
    assert (local[0].to_numpy()[np.triu_indices(4, 1)] > 0).all()


def test_distances_command_on_a_dask_cluster(dask_scheduler, tmp_path, capsys):
    import json

    from topo.cli import main

    rng = np.random.default_rng(1)
    paths = []
    for i in range(3):
        layers = [np.where(rng.random((5, 8)) < 0.5, 1.0, 0.0),
                  np.where(rng.random((2, 5)) < 0.5, 1.0, 0.0)]
        paths.append(str(topo.save_snapshot(LayeredGraph(layers), tmp_path / f"m{i}.safetensors")))
    assert main(["distances", *paths, "--scheduler", dask_scheduler, "--json",
                 "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    local = distance_matrix(paths)[0].to_numpy()
    assert np.array_equal(np.array(out["nnstd"]), local)
