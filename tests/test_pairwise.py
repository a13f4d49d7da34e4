"""Many-pair work (topo.pairwise): any pair function, joblib workers, a real Dask cluster,
and the NNSTD / overlap distance matrix built on it."""

from __future__ import annotations

import functools
import json
import operator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import topo
from topo.distance import nnstd
from topo.errors import ConfigError, EmptyInputError
from topo.graph import LayeredGraph
from topo.overlap import pooled_jaccard
from topo.pairwise import distance_matrix, pair_blocks, pairwise, run_tasks


def random_net(widths, density, seed) -> LayeredGraph:
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        mask = rng.random((n_out, n_in)) < density
        layers.append(np.where(mask, rng.normal(size=mask.shape) + 3.0, 0.0))
    return LayeredGraph(layers)


def permute_hidden(g: LayeredGraph, seed: int) -> LayeredGraph:
    """``g`` with the units of its one hidden layer relabelled."""
    perm = np.random.default_rng(seed).permutation(g.n_out[0])
    w0, w1 = (w.toarray() for w in g.layers)
    return LayeredGraph([w0[perm], w1[:, perm]])


def connection_set(g: LayeredGraph) -> set[tuple[int, int, int]]:
    return {(k, r, c) for k, w in enumerate(g.layers) for r, c in zip(*w.nonzero())}


def record_pair(a: LayeredGraph, b: LayeredGraph, *, tag: str) -> tuple[str, int, int]:
    """A picklable pair function: which networks it saw (by their widths)."""
    return tag, a.n_out[0], b.n_out[0]


@pytest.fixture
def snapshot_files(tmp_path) -> list[Path]:
    base = random_net([12, 9, 4], 0.4, seed=30)
    nets = [base, permute_hidden(base, seed=31), random_net([12, 9, 4], 0.4, seed=32),
            random_net([12, 7, 4], 0.4, seed=33)]
    return [topo.save_snapshot(g, tmp_path / f"net{i}.safetensors") for i, g in enumerate(nets)]


# ------------------------------------------------------------------------ the runner
def test_pair_blocks_cover_every_pair_once():
    for n, jobs in [(1, 1), (2, 1), (7, 2), (30, 3)]:
        blocks = pair_blocks(n, n_jobs=jobs)
        pairs = np.concatenate(blocks) if blocks else np.zeros((0, 2), dtype=int)
        want = {(i, j) for i in range(n) for j in range(i + 1, n)}
        assert {tuple(p) for p in pairs.tolist()} == want
        assert len(pairs) == len(want)
    assert len(pair_blocks(30, n_jobs=1)) == 1  # in this process: one task
    assert pair_blocks(0, n_jobs=2) == [] and pair_blocks(1, n_jobs=2) == []


def test_blocks_shrink_as_the_pairs_run_out():
    # 4950 pairs, 2 workers: each block is a quarter of what is left (rounded up), and none
    # below 4950 / 128 -> 39 pairs: 1238 = ceil(4950 / 4), 928 = ceil(3712 / 4), ...
    sizes = [len(b) for b in pair_blocks(100, n_jobs=2)]
    assert sizes == [1238, 928, 696, 522, 392, 294, 220, 165, 124, 93, 70, 52, 39, 39, 39, 39]
    # the same rule for a cluster's thread count: 6 pairs, 3 threads
    assert [len(b) for b in pair_blocks(4, scheduler="tcp://x:1", workers=3)] == [1, 1, 1, 1,
                                                                                 1, 1]
    assert [len(b) for b in pair_blocks(5, n_jobs=2)] == [3, 2, 2, 1, 1, 1]
    with pytest.raises(ConfigError, match="without workers"):
        pair_blocks(5, scheduler="tcp://x:1", workers=0)


@pytest.mark.xdist_group("process-pool")   # joblib's worker processes start once
def test_run_tasks_keeps_task_order_in_processes():
    tasks = [(operator.mul, (i, 3)) for i in range(10)]
    assert run_tasks(tasks, n_jobs=2) == [3 * i for i in range(10)]
    assert run_tasks(tasks, n_jobs=1) == [3 * i for i in range(10)]


def test_bad_numbers_of_workers_are_refused():
    for jobs in (0, -2):
        with pytest.raises(ConfigError, match="n_jobs"):
            run_tasks([(operator.neg, (1,))], n_jobs=jobs)
        with pytest.raises(ConfigError, match="n_jobs"):
            pair_blocks(4, n_jobs=jobs)


def test_progress_bar_counts_items(capsys):
    run_tasks([(operator.neg, (i,)) for i in range(3)], progress=True, total_items=[2, 2, 1],
              desc="pairs")
    assert "5/5" in capsys.readouterr().err


@pytest.mark.xdist_group("process-pool")   # joblib's worker processes start once
def test_pairwise_runs_any_pair_function_on_graphs_or_on_loaded_references(snapshot_files):
    graphs = [topo.load(p) for p in snapshot_files]
    pairs, results = pairwise(graphs, functools.partial(record_pair, tag="g"))
    assert pairs.tolist() == [[0, 1], [0, 2], [0, 3], [1, 2], [1, 3], [2, 3]]
    assert results[2] == ("g", 9, 7) and results[5] == ("g", 9, 7)
    loaded = pairwise(snapshot_files, functools.partial(record_pair, tag="p"), loader=topo.load,
                      n_jobs=2)
    assert loaded[1] == [("p", a, b) for _, a, b in results]


def test_references_need_a_loader(snapshot_files):
    with pytest.raises(ConfigError, match="without a loader"):
        pairwise(snapshot_files, functools.partial(record_pair, tag="x"))


# ------------------------------------------------------------------- distance matrix
def test_distance_matrix_holds_every_pair(snapshot_files):
    dist, over = distance_matrix(snapshot_files, loader=topo.load, labels=["a", "b", "c", "d"])
    graphs = [topo.load(p) for p in snapshot_files]
    assert list(dist.index) == ["a", "b", "c", "d"] and list(dist.columns) == list(dist.index)
    assert np.array_equal(dist.to_numpy(), dist.to_numpy().T)
    assert np.array_equal(np.diag(dist.to_numpy()), np.zeros(4))
    assert dist.loc["a", "b"] == pytest.approx(0.0, abs=1e-15)  # relabelled hidden units
    for i, j in [(0, 2), (1, 3), (2, 3)]:
        assert dist.iloc[i, j] == pytest.approx(nnstd(graphs[i], graphs[j]).distance)
    # pooled Jaccard of the raw connection sets, from set arithmetic
    for i, j in [(0, 1), (0, 2), (2, 3)]:
        sa, sb = connection_set(graphs[i]), connection_set(graphs[j])
        assert over.iloc[i, j] == pytest.approx(len(sa & sb) / len(sa | sb))
    assert np.array_equal(np.diag(over.to_numpy()), np.ones(4))


@pytest.mark.xdist_group("process-pool")   # joblib's worker processes start once
def test_a_sequence_gives_its_paths_loader_and_labels_to_the_matrix(snapshot_files):
    sequence = topo.read_sequence(snapshot_files)
    dist, _ = distance_matrix(sequence, n_jobs=2)
    assert list(dist.index) == ["net0", "net1", "net2", "net3"]
    in_memory, _ = distance_matrix([topo.load(p) for p in snapshot_files])
    assert np.array_equal(dist.to_numpy(), in_memory.to_numpy())
    assert list(in_memory.index) == [str(p) for p in snapshot_files]  # the graphs' sources
    unnamed, _ = distance_matrix([random_net([4, 3, 2], 0.5, seed=s) for s in range(3)])
    assert list(unnamed.index) == ["0", "1", "2"]


@pytest.mark.xdist_group("process-pool")   # joblib's worker processes start once
def test_workers_receive_paths_not_arrays(snapshot_files, monkeypatch):
    import topo.pairwise

    seen = []
    real = topo.pairwise._run

    def spy(tasks, **kwargs):
        seen.extend(args for _, args in tasks)
        return real(tasks, **kwargs)

    monkeypatch.setattr(topo.pairwise, "_run", spy)
    distance_matrix(topo.read_sequence(snapshot_files), n_jobs=2)
    assert len(seen) == 5  # blocks of 2, 1, 1, 1 and 1 of the 6 pairs
    tokens = set()
    for items, loader, pairs, _, _, token in seen:
        tokens.add(token)
        assert all(isinstance(p, Path) for p in items.values())
        assert set(items) == set(pairs.ravel().tolist())  # only what the block needs
        assert loader is topo.load
        assert pairs.dtype.kind == "i" and pairs.shape[1] == 2
    assert len(tokens) == 1 and None not in tokens  # one call: workers keep what they read


def test_distance_matrix_needs_networks_and_fitting_labels(snapshot_files):
    with pytest.raises(EmptyInputError, match="no networks"):
        distance_matrix([])
    with pytest.raises(ConfigError, match="1 labels for 4 networks"):
        distance_matrix(snapshot_files, loader=topo.load, labels=["a"])


# ---------------------------------------------------------------- on a Dask cluster
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


def test_distance_matrix_on_a_dask_cluster_equals_local(dask_scheduler, snapshot_files,
                                                       monkeypatch):
    from topo import pairwise as pw

    cut_for = []
    real = pw.pair_blocks

    def spy(n, **kwargs):
        cut_for.append(kwargs["workers"])
        return real(n, **kwargs)

    local = distance_matrix(snapshot_files, loader=topo.load)
    monkeypatch.setattr(pw, "pair_blocks", spy)
    remote = distance_matrix(snapshot_files, loader=topo.load, scheduler=dask_scheduler)
    assert cut_for == [2]  # blocks cut for the cluster's two threads
    assert np.array_equal(local[0].to_numpy(), remote[0].to_numpy())
    assert np.array_equal(local[1].to_numpy(), remote[1].to_numpy())


def test_distances_command_on_a_dask_cluster(dask_scheduler, snapshot_files, capsys):
    from topo.cli import main

    paths = [str(p) for p in snapshot_files[:3]]
    assert main(["distances", *paths, "--scheduler", dask_scheduler, "--json",
                 "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    local = distance_matrix(paths, loader=topo.load)[0].to_numpy()
    assert np.array_equal(np.array(out["nnstd"]), local)


def test_an_unreachable_scheduler_is_a_config_error(monkeypatch):
    distributed = pytest.importorskip("distributed")

    def refused(address, **kwargs):  # what Client raises after its timeout, without the wait
        raise OSError(f"Timed out trying to connect to {address} after 10 s\nmore detail")

    monkeypatch.setattr(distributed, "Client", refused)
    with pytest.raises(ConfigError, match=r"cannot reach the Dask scheduler at "
                                          r"'tcp://127.0.0.1:9': Timed out trying to connect"):
        run_tasks([(operator.neg, (1,))], scheduler="tcp://127.0.0.1:9")


def test_one_network_is_a_one_by_one_matrix():
    dist, over = distance_matrix([random_net([4, 3, 2], 0.5, seed=1)], labels=["only"])
    assert dist.to_numpy().tolist() == [[0.0]] and over.to_numpy().tolist() == [[1.0]]


def test_distance_matrix_reads_and_prepares_each_network_once_per_task_and_skips_equal_ones():
    from unittest import mock

    from topo import pairwise as pw

    rng = np.random.default_rng(5)
    base = [(rng.random((8, 6)) < 0.4).astype(float), (rng.random((3, 8)) < 0.5).astype(float)]
    other = [(rng.random((8, 6)) < 0.4).astype(float), (rng.random((3, 8)) < 0.5).astype(float)]
    # the same structure with other weights: at NNSTD 0, Jaccard 1, and not solved
    reweighted = [w * 3.0 for w in base]
    graphs = [LayeredGraph(base), LayeredGraph(other), LayeredGraph(reweighted)]
    reads: list[int] = []

    def loader(i):
        reads.append(i)
        return graphs[i]

    calls = []
    real = pw.nnstd

    def counting(a, b, **kw):
        calls.append(1)
        return real(a, b, **kw)

    with mock.patch.object(pw, "nnstd", counting):
        dist, over = distance_matrix([0, 1, 2], loader=loader)
    assert sorted(reads) == [0, 1, 2]  # one task in process: each file read once
    assert len(calls) == 2  # (0, 1) and (1, 2); (0, 2) share the structure
    assert dist.iloc[0, 2] == 0.0 and over.iloc[0, 2] == 1.0
    assert dist.iloc[0, 1] == pytest.approx(topo.nnstd(graphs[0], graphs[1]).distance)
    assert dist.iloc[1, 2] == dist.iloc[0, 1]


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(1, 9), st.integers(1, 9), st.integers(1, 9),
       st.floats(0.0, 1.0))
def test_prepared_pooled_jaccard_is_the_overlap_modules_on_any_shapes(seed, n_in, h_a, h_b,
                                                                       density):
    # the matrix's per-network keys give topo.pooled_jaccard's value exactly, hidden widths
    # differing included (only the common grid can hold a shared position)
    from topo import pairwise as pw

    rng = np.random.default_rng(seed)

    def net(hidden):
        return LayeredGraph([(rng.random((hidden, n_in)) < density).astype(float),
                             (rng.random((3, hidden)) < density).astype(float)])

    a, b = net(h_a), net(h_b)
    got = pw._pooled_jaccard_of_positions(pw._structure_only(a).positions,
                                          pw._structure_only(b).positions)
    assert got == pooled_jaccard(a, b)


def test_a_worker_reads_each_network_once_per_call_across_its_tasks(monkeypatch):
    # two tasks of one call in one process: the second reuses what the first read and
    # prepared; another call reads again; beyond the memory bound the oldest is dropped
    from topo import pairwise as pw

    graphs = {i: random_net([6, 5, 3], 0.5, seed=40 + i) for i in range(4)}
    reads: list[int] = []

    def loader(i):
        reads.append(i)
        return graphs[i]

    block_1 = np.array([[0, 1], [0, 2]])
    block_2 = np.array([[1, 2], [1, 3]])
    fn = functools.partial(record_pair, tag="t")
    pw._block_worker({0: 0, 1: 1, 2: 2}, loader, block_1, fn, None, "call-1")
    pw._block_worker({1: 1, 2: 2, 3: 3}, loader, block_2, fn, None, "call-1")
    assert sorted(reads) == [0, 1, 2, 3]
    pw._block_worker({0: 0, 1: 1, 2: 2}, loader, block_1, fn, None, "call-2")
    assert sorted(reads) == [0, 0, 1, 1, 2, 2, 3]
    reads.clear()
    pw._block_worker({0: 0, 1: 1, 2: 2}, loader, block_1, fn, None, None)  # no call token
    pw._block_worker({0: 0, 1: 1, 2: 2}, loader, block_1, fn, None, None)
    assert reads == [0, 1, 2] * 2
    reads.clear()
    monkeypatch.setattr(pw, "_CACHE_BYTES", 1)  # room for one network only
    pw._block_worker({0: 0, 1: 1, 2: 2}, loader, block_1, fn, None, "call-3")
    assert reads == [0, 1, 0, 2]


# ------------------------------------------------------------ the allocator during a task
class RecordingLibc:
    """Stands in for glibc: records what is asked of the allocator."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, param: int, value: int) -> int:
        self.calls.append(("mallopt", param, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's malloc.h


@pytest.mark.parametrize("environ, restored", [
    ({}, []),  # glibc's dynamic thresholds: left at their ceiling
    ({"MALLOC_TRIM_THRESHOLD_": "65536"},  # Dask's nanny: fixed thresholds come back
     [("mallopt", M_MMAP_THRESHOLD, 128 * 1024), ("mallopt", M_TRIM_THRESHOLD, 65536)]),
    ({"MALLOC_MMAP_THRESHOLD_": "1000000"}, [("mallopt", M_MMAP_THRESHOLD, 1_000_000)]),
])
def test_a_task_holds_the_allocator_steady_and_gives_back_what_the_environment_set(
        monkeypatch, environ, restored):
    from topo import pairwise as pw

    libc = RecordingLibc()
    monkeypatch.setattr(pw, "_glibc", lambda: libc)
    for name in ("MALLOC_TRIM_THRESHOLD_", "MALLOC_MMAP_THRESHOLD_"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    held = [("mallopt", M_MMAP_THRESHOLD, 32 * 2**20), ("mallopt", M_TRIM_THRESHOLD, 64 * 2**20)]
    with pw._steady_allocator():
        with pw._steady_allocator():  # a second task in another thread of the same worker
            assert libc.calls == held
        assert libc.calls == held  # the first task is still running
    assert libc.calls == held + restored + [("malloc_trim", 0)]
    libc.calls.clear()
    pw._block_worker({0: 0, 1: 1}, lambda i: random_net([4, 3, 2], 0.5, seed=i),
                     np.array([[0, 1]]), functools.partial(record_pair, tag="t"))
    assert libc.calls == held + restored + [("malloc_trim", 0)]


def test_inside_a_task_a_freed_array_is_reused_without_page_faults():
    import platform
    import resource

    from topo import pairwise as pw

    if pw._glibc() is None:
        pytest.skip(f"the allocator is only tuned on glibc ({platform.libc_ver()})")
    pages = 8 * 2**20 // resource.getpagesize()
    with pw._steady_allocator():
        first = np.empty(2**20)  # 8 MiB: the size of a pair's largest arrays and more
        first.fill(1.0)
        del first
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        again = np.empty(2**20)
        again.fill(1.0)
        faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before
        del again
    assert faults < pages // 10
