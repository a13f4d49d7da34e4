"""Many-pair work for any pair function, on local processes (joblib) or a Dask cluster.

:func:`pairwise` evaluates a function on every pair ``i < j`` of a list of networks;
:func:`distance_matrix` is the NNSTD and overlap matrix built on it. The pairs are cut into
row-major blocks, one task per block, and each worker process reads (and prepares) every
network it needs once per call, keeping it for its later tasks of that call.

Workers receive *references*, not arrays: file paths (or any picklable keys) together with the
function that reads them (``loader``, e.g. :func:`topo.load`), so no weight matrix crosses a
process or network boundary and each worker reads the files itself. This module never opens a
file: the caller (``topo.io``, the command line, a user) passes the loader, or passes a
sequence that knows its own (:func:`topo.read_sequence` returns one, with ``sources`` and
``loader``). With ``scheduler=None`` joblib runs the tasks in local worker processes
(``loky``); with the address of a Dask distributed scheduler the same joblib code runs on that
cluster (joblib's ``dask`` backend with a :class:`distributed.Client`).
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import functools
import os
import platform
import threading
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from topo.distance import nnstd
from topo.errors import ConfigError, EmptyInputError
from topo.graph import LayeredGraph
from topo.layer_arrays import LayerArrays
from topo.overlap import pooled_jaccard
from topo.structure import fingerprint

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["pairwise", "distance_matrix", "nnstd_and_jaccard", "run_tasks", "pair_blocks",
           "effective_jobs"]

Task = tuple[Callable[..., Any], tuple[Any, ...]]

# The smallest block is 1 / (_SMALLEST_SHARE * workers) of all pairs (see pair_blocks).
_SMALLEST_SHARE = 64
_CLUSTER_WORKERS = 8
# networks a worker process keeps for the later tasks of one call (bytes of their layers)
_CACHE_BYTES = 512 * 2**20


def pairwise(
    items: Sequence[Any],
    pair_function: Callable[[LayeredGraph, LayeredGraph], Any],
    *,
    loader: Callable[[Any], LayeredGraph] | None = None,
    n_jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
    desc: str = "pairs",
    prepare: Callable[[LayeredGraph], Any] | None = None,
) -> tuple[np.ndarray, list[Any]]:
    """``pair_function(a, b)`` for every pair ``i < j`` of ``items``.

    Parameters
    ----------
    items
        The networks: LayeredGraphs, or references that ``loader`` turns into LayeredGraphs
        (file paths for :func:`topo.load`), or a sequence with ``sources`` and ``loader``
        attributes (what :func:`topo.read_sequence` returns), whose sources are then sent to
        the workers.
    pair_function
        A picklable function of two graphs (a module-level function, or a
        :func:`functools.partial` of one); its results must be picklable too.
    loader
        Reads one item; needed when the items are not LayeredGraphs.
    n_jobs
        Local worker processes (joblib's ``loky`` backend); 1 runs in this process, -1 uses
        every core. Ignored with ``scheduler``.
    scheduler
        Address of a Dask distributed scheduler (``"tcp://host:8786"``): the same joblib code
        then runs on that cluster. The workers must see the same file paths.
    progress
        Show a progress bar on stderr (tqdm), advanced by pairs.
    desc
        Label of the progress bar.
    prepare
        Per-network work done once per network in each task, not once per pair: the worker
        calls ``prepare(graph)`` after reading a network and passes what it returns to
        ``pair_function`` (a picklable module-level function).

    Returns
    -------
    (numpy.ndarray, list)
        The pairs as an ``(m, 2)`` array of ``(i, j)`` rows in row-major order, and
        ``pair_function``'s result for each, in the same order.

    Raises
    ------
    ConfigError
        Items that are not LayeredGraphs without a ``loader``, a bad ``n_jobs``, or a
        scheduler that cannot be reached.

    Notes
    -----
    The ``n (n - 1) / 2`` pairs are cut into contiguous row-major blocks, one per task: one
    block in this process, else blocks that shrink as the pairs run out, so that the workers
    finish together (:func:`pair_blocks`; cut for the cluster's thread count with a
    scheduler). A worker process reads and prepares each item it needs once per call and
    keeps it for the call's later tasks (up to 512 MiB of layers, least recently used dropped
    first; a new call starts afresh). While a task runs on glibc, the allocator keeps freed
    memory for the next pair instead of handing it back to the kernel after each one.
    """
    items, loader = _sources(items, loader)
    if n_jobs == 0 or n_jobs < -1:
        raise ConfigError(f"n_jobs must be a positive number of workers or -1, got {n_jobs}")
    with _connected(scheduler) as client:
        workers = _cluster_threads(client) if client is not None else None
        pairs_blocks = pair_blocks(len(items), n_jobs=n_jobs, scheduler=scheduler,
                                   workers=workers)
        # each task carries only the items its block needs
        # one token per call: a worker process keeps what it read for this call's later tasks
        token = uuid.uuid4().hex if len(pairs_blocks) > 1 else None
        tasks = [(_block_worker, ({int(i): items[i] for i in np.unique(block)}, loader, block,
                                  pair_function, prepare, token)) for block in pairs_blocks]
        results = _run(tasks, n_jobs=n_jobs, client=client, progress=progress,
                       total_items=[len(b) for b in pairs_blocks], desc=desc)
    pairs = (np.concatenate(pairs_blocks) if pairs_blocks
             else np.zeros((0, 2), dtype=np.int64))
    return pairs, [r for block_results in results for r in block_results]


def distance_matrix(
    networks: Sequence[Any],
    *,
    loader: Callable[[Any], LayeredGraph] | None = None,
    reference: bool = False,
    n_jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
    labels: Sequence[str] | None = None,
) -> tuple[pandas.DataFrame, pandas.DataFrame]:
    """NNSTD and connection overlap of every pair of networks.

    Parameters
    ----------
    networks
        LayeredGraphs, references with a ``loader`` (``distance_matrix(paths,
        loader=topo.load)``), or what :func:`topo.read_sequence` returns (its file paths go
        to the workers, its labels label the matrices).
    loader
        Reads one reference into a LayeredGraph, in the worker.
    reference
        Passed to :func:`topo.nnstd`.
    n_jobs, scheduler, progress
        As for :func:`pairwise`.
    labels
        Row/column labels; by default the sequence's labels, else the references as strings,
        else the graphs' sources (their positions when those repeat).

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        Square symmetric matrices labelled by ``labels``: the NNSTD distance (0 on the
        diagonal) and the pooled Jaccard index of the two connection sets (1 on the
        diagonal), the values of :func:`nnstd_and_jaccard`.

    Raises
    ------
    EmptyInputError
        No network given.
    ConfigError
        A label count that differs from the network count, or see :func:`pairwise`.
    TopoError
        Any error of the loader or of :func:`topo.nnstd` for a pair (the first one is raised).

    Notes
    -----
    ``O(n²)`` NNSTD evaluations in all; see :func:`pairwise` for how they are shared out.
    Each worker reads every network it needs once and reduces it once to its structure
    (weights dropped), a fingerprint of it (:func:`topo.structure.fingerprint`) and its
    connection positions as sorted keys (the pooled Jaccard index of a pair is then one merge
    per layer); two
    networks with the same structure are at NNSTD 0 with a Jaccard index of 1 and are not
    solved.
    """
    import pandas as pd

    default_labels = getattr(networks, "labels", None)
    items, loader = _sources(networks, loader)
    n = len(items)
    if n == 0:
        raise EmptyInputError("distance matrix: no networks given")
    if labels is None:
        labels = default_labels if default_labels is not None else _default_labels(items)
    labels = list(labels)
    if len(labels) != n:
        raise ConfigError(f"distance matrix: {len(labels)} labels for {n} networks")
    pairs, values = pairwise(items, functools.partial(_prepared_nnstd_and_jaccard,
                                                      reference=reference),
                             loader=loader, n_jobs=n_jobs, scheduler=scheduler,
                             progress=progress, desc="NNSTD pairs", prepare=_structure_only)
    dist = np.zeros((n, n))
    over = np.eye(n)
    if len(pairs):
        i, j = pairs[:, 0], pairs[:, 1]
        d, o = np.array(values, dtype=np.float64).reshape(-1, 2).T
        dist[i, j] = dist[j, i] = d
        over[i, j] = over[j, i] = o
    return (pd.DataFrame(dist, index=labels, columns=labels),
            pd.DataFrame(over, index=labels, columns=labels))


def nnstd_and_jaccard(a: LayeredGraph, b: LayeredGraph, *,
                      reference: bool = False) -> tuple[float, float]:
    """The pair function of :func:`distance_matrix`: NNSTD distance and pooled Jaccard index."""
    return nnstd(a, b, reference=reference).distance, pooled_jaccard(a, b)


class _Prepared(NamedTuple):
    """A network reduced once per task to what the matrix's pair function reads."""

    graph: LayeredGraph  # the structure (weights dropped)
    fingerprint: bytes  # of the structure (:func:`topo.structure.fingerprint`)
    positions: list[np.ndarray]  # per layer, the sorted keys ``row * 2**32 + column``


def _structure_only(graph: LayeredGraph) -> _Prepared:
    """A network reduced to what NNSTD and the Jaccard index read: its structure (weights
    dropped), that structure's fingerprint, and each layer's connection positions as sorted
    integer keys (so that a pair's pooled Jaccard index is one merge per layer)."""
    masks = graph.masks()
    # canonical CSR (sorted, no duplicates): the keys are sorted and distinct
    positions = [(LayerArrays.of_matrix(m).rows().astype(np.int64) << 32)
                 | m.indices.astype(np.int64) for m in masks]
    return _Prepared(LayeredGraph(masks, names=list(graph.names),
                                  metadata={"source": graph.source}, **graph.architecture()),
                     fingerprint(masks), positions)


def _pooled_jaccard_of_positions(a: list[np.ndarray], b: list[np.ndarray]) -> float:
    """:func:`topo.overlap.pooled_jaccard` from the sorted position keys of two networks.

    A key holds a position's row and column, so two layers of different shapes share
    exactly the positions of their common grid that both hold, as there.
    """
    shared = total = 0
    for ka, kb in zip(a, b, strict=True):
        i = 0
        if ka.size and kb.size:
            pos = np.minimum(np.searchsorted(kb, ka), kb.size - 1)
            i = int(np.count_nonzero(kb[pos] == ka))
        shared += i
        total += ka.size + kb.size - i
    return shared / total if total else 1.0


def _prepared_nnstd_and_jaccard(a: _Prepared, b: _Prepared, *, reference: bool = False
                                ) -> tuple[float, float]:
    """:func:`nnstd_and_jaccard` on prepared networks; equal structures are not solved."""
    if a.fingerprint == b.fingerprint:
        return 0.0, 1.0
    return (nnstd(a.graph, b.graph, reference=reference).distance,
            _pooled_jaccard_of_positions(a.positions, b.positions))


def run_tasks(
    tasks: Sequence[Task],
    *,
    n_jobs: int = 1,
    scheduler: str | None = None,
    progress: bool = False,
    total_items: Sequence[int] | None = None,
    desc: str | None = None,
) -> list[Any]:
    """Run ``func(*args)`` for every ``(func, args)`` task; results in task order.

    Parameters
    ----------
    tasks
        ``(function, arguments)`` pairs. Functions must be importable module-level functions
        and arguments picklable (paths, not arrays of weights, for large work).
    n_jobs
        Worker processes on this machine (joblib ``loky``); 1 runs in this process, -1 uses
        every core. Ignored with ``scheduler``.
    scheduler
        Address of a running Dask distributed scheduler, e.g. ``"tcp://10.0.0.5:8786"``.
    progress
        Show a tqdm progress bar on stderr, advanced as tasks finish.
    total_items
        Size of every task for the progress bar (e.g. pairs per task); 1 each by default.
    desc
        Label of the progress bar.

    Returns
    -------
    list
        The return value of every task, in the order of ``tasks``.

    Raises
    ------
    ConfigError
        ``n_jobs`` is 0 or below -1, or the scheduler address cannot be reached.
    """
    if n_jobs == 0 or n_jobs < -1:
        raise ConfigError(f"n_jobs must be a positive number of workers or -1, got {n_jobs}")
    with _connected(scheduler) as client:
        return _run(tasks, n_jobs=n_jobs, client=client, progress=progress,
                    total_items=total_items, desc=desc)


def _run(tasks: Sequence[Task], *, n_jobs: int, client: Any, progress: bool,
         total_items: Sequence[int] | None, desc: str | None) -> list[Any]:
    """:func:`run_tasks` on local processes, or on a connected Dask ``client``."""
    import joblib

    sizes = list(total_items) if total_items is not None else [1] * len(tasks)
    calls = (joblib.delayed(func)(*args) for func, args in tasks)
    bar = _progress_bar(sum(sizes), desc) if progress else None
    try:
        if client is not None:
            with joblib.parallel_config(backend="dask", client=client):
                return _collect(joblib.Parallel(n_jobs=-1, return_as="generator"),
                                calls, sizes, bar)
        jobs = effective_jobs(n_jobs)
        parallel = joblib.Parallel(n_jobs=min(jobs, max(len(tasks), 1)),
                                   return_as="generator")
        return _collect(parallel, calls, sizes, bar)
    finally:
        if bar is not None:
            bar.close()


def pair_blocks(n: int, *, n_jobs: int = 1, scheduler: str | None = None,
                workers: int | None = None) -> list[np.ndarray]:
    """The pairs ``i < j`` of ``n`` items, row-major, cut into contiguous blocks (one per task).

    Parameters
    ----------
    n
        Number of items.
    n_jobs, scheduler
        As for :func:`pairwise`: one block when running in this process.
    workers
        How many tasks run at once (a cluster's threads); by default ``n_jobs``'s worker
        count, or 8 with a ``scheduler``.

    Returns
    -------
    list of numpy.ndarray
        Arrays of shape ``(m, 2)`` whose rows are ``(i, j)``; together every pair once, in
        row-major order.

    Notes
    -----
    Blocks shrink as the pairs run out (guided self-scheduling, Polychronopoulos and Kuck
    1987): each is ``1 / (2 w)`` of the pairs left for ``w`` workers, and none is smaller than
    ``1 / (64 w)`` of all pairs. Early blocks are large (few tasks, each reading its networks
    once), and the last ones are small, so that workers that ran at different speeds (other
    work on the machine, pairs of different cost) still finish together. That is about
    ``2 w ln 32 + 2 w`` blocks whatever ``n`` (15-17 for two workers).
    """
    i, j = np.triu_indices(n, k=1)
    pairs = np.column_stack([i, j]).astype(np.int64)
    if workers is None:
        # a cluster's size is not known before connecting: cut for a few workers
        workers = _CLUSTER_WORKERS if scheduler else effective_jobs(n_jobs)
    if workers < 1:
        raise ConfigError(f"a cluster without workers cannot run pairs (workers={workers})")
    total = len(pairs)
    if total == 0:
        return []
    if workers == 1 and not scheduler:
        return [pairs]
    smallest = -(-total // (_SMALLEST_SHARE * workers))
    sizes = []
    left = total
    while left:
        size = min(left, max(smallest, -(-left // (2 * workers))))
        sizes.append(size)
        left -= size
    return np.split(pairs, np.cumsum(sizes)[:-1])


def effective_jobs(n_jobs: int) -> int:
    """Number of local workers that ``n_jobs`` means (-1: every core)."""
    if n_jobs == -1:
        return max(1, os.cpu_count() or 1)
    if n_jobs < 1:
        raise ConfigError(f"n_jobs must be a positive number of workers or -1, got {n_jobs}")
    return n_jobs


# --------------------------------------------------------------------------- helpers
def _sources(items: Sequence[Any], loader: Callable[[Any], LayeredGraph] | None
             ) -> tuple[list[Any], Callable[[Any], LayeredGraph] | None]:
    """The references to send to workers and the loader that reads them."""
    sources = getattr(items, "sources", None)
    if sources is not None and getattr(items, "loader", None) is not None:
        return list(sources), loader if loader is not None else items.loader
    items = list(items)
    if loader is None:
        bad = next((x for x in items if not isinstance(x, LayeredGraph)), None)
        if bad is not None:
            raise ConfigError(
                f"got {type(bad).__name__} {str(bad)!r} without a loader: pass LayeredGraphs, "
                "loader=topo.load with paths, or topo.read_sequence(paths)")
    return items, loader


def _default_labels(items: list[Any]) -> list[str]:
    if not all(isinstance(x, LayeredGraph) for x in items):
        return [str(x) for x in items]
    sources = [x.source for x in items]
    return sources if len(set(sources)) == len(sources) else [str(k) for k in range(len(items))]


def _block_worker(items: dict[int, Any], loader: Callable[[Any], LayeredGraph] | None,
                  pairs: np.ndarray, pair_function: Callable[[Any, Any], Any],
                  prepare: Callable[[LayeredGraph], Any] | None = None,
                  token: str | None = None) -> list[Any]:
    """``pair_function`` on ``pairs`` of ``items`` (one task); each item read and prepared
    once per worker process for the call ``token`` (once per task without one)."""
    cache = _worker_cache(token)

    def get(i: int) -> Any:
        hit = cache.get(i)
        if hit is None:
            item = items[i]
            graph = item if isinstance(item, LayeredGraph) else loader(item)
            hit = prepare(graph) if prepare is not None else graph
            cache.put(i, hit, _nbytes(graph))
        return hit

    with _steady_allocator():
        return [pair_function(get(int(i)), get(int(j))) for i, j in pairs]


# glibc's mallopt parameters (malloc.h) and the values a task runs under: the ceiling that
# glibc's own dynamic thresholds reach (DEFAULT_MMAP_THRESHOLD_MAX on 64-bit, trim at twice it)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_DEFAULT_MMAP_THRESHOLD = 128 * 1024
_TASK_MMAP_THRESHOLD = 32 * 2**20
_TASK_TRIM_THRESHOLD = 64 * 2**20
_ALLOCATOR_LOCK = threading.Lock()
_ALLOCATOR_USERS = [0]


@functools.cache
def _glibc() -> Any:
    """This process's C library when it is glibc (with ``mallopt``), else None."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    libc = ctypes.CDLL(None)
    return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None


@contextlib.contextmanager
def _steady_allocator() -> Iterator[None]:
    """Let glibc reuse freed memory during a task instead of returning it to the kernel.

    Each pair allocates and frees the same few arrays of 0.1-3 MB. With glibc's starting
    thresholds (or Dask's ``MALLOC_TRIM_THRESHOLD_=65536``, which fixes them) every such
    array is a fresh ``mmap`` or heap growth followed by ``munmap`` or a trim, and each of its
    pages is faulted in and zeroed again: 10-25 % more CPU time for the same pairs, measured
    in fresh worker processes (``analysis/benchmarks/nnstd_matrix.py``). During a task the
    thresholds are held at the ceiling glibc's dynamic adjustment reaches by itself (arrays
    up to 32 MiB from the heap, up to 64 MiB kept free at its top); afterwards thresholds
    given by the environment (``MALLOC_TRIM_THRESHOLD_``, ``MALLOC_MMAP_THRESHOLD_``, as Dask's
    nanny sets) are restored, others stay at that ceiling, and free memory is returned
    (``malloc_trim``). Results do not depend on it; other C libraries are left alone.
    """
    libc = _glibc()
    if libc is None:
        yield
        return
    with _ALLOCATOR_LOCK:
        _ALLOCATOR_USERS[0] += 1
        if _ALLOCATOR_USERS[0] == 1:
            libc.mallopt(_M_MMAP_THRESHOLD, _TASK_MMAP_THRESHOLD)
            libc.mallopt(_M_TRIM_THRESHOLD, _TASK_TRIM_THRESHOLD)
    try:
        yield
    finally:
        with _ALLOCATOR_LOCK:
            _ALLOCATOR_USERS[0] -= 1
            if _ALLOCATOR_USERS[0] == 0:
                _restore_allocator(libc)


def _restore_allocator(libc: Any) -> None:
    """Thresholds the environment asked for back in force; free memory returned."""
    trim = _env_bytes("MALLOC_TRIM_THRESHOLD_")
    mmap = _env_bytes("MALLOC_MMAP_THRESHOLD_")
    if trim is not None or mmap is not None:
        # glibc fixed its thresholds at start-up: back to those values
        libc.mallopt(_M_MMAP_THRESHOLD, mmap if mmap is not None else _DEFAULT_MMAP_THRESHOLD)
        if trim is not None:
            libc.mallopt(_M_TRIM_THRESHOLD, trim)
    libc.malloc_trim(0)


def _env_bytes(name: str) -> int | None:
    value = os.environ.get(name, "")
    return int(value) if value.isdigit() else None


class _Cache:
    """Prepared items of one call, least recently used dropped beyond ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self.limit, self.size = limit, 0
        self.items: collections.OrderedDict[int, tuple[Any, int]] = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, i: int) -> Any:
        with self.lock:
            hit = self.items.get(i)
            if hit is None:
                return None
            self.items.move_to_end(i)
            return hit[0]

    def put(self, i: int, value: Any, size: int) -> None:
        with self.lock:
            if i in self.items:
                return
            self.items[i] = (value, size)
            self.size += size
            while self.size > self.limit and len(self.items) > 1:
                _, (_, dropped) = self.items.popitem(last=False)
                self.size -= dropped


# the cache of the latest call seen by this (worker) process: (token, cache)
_WORKER_CACHE: list[tuple[str, _Cache]] = []
_WORKER_CACHE_LOCK = threading.Lock()


def _worker_cache(token: str | None) -> _Cache:
    """This process's cache for the call ``token``; a new call's token drops the last one."""
    if token is None:
        return _Cache(_CACHE_BYTES)
    with _WORKER_CACHE_LOCK:
        if not _WORKER_CACHE or _WORKER_CACHE[0][0] != token:
            _WORKER_CACHE[:] = [(token, _Cache(_CACHE_BYTES))]
        return _WORKER_CACHE[0][1]


def _nbytes(graph: LayeredGraph) -> int:
    """Memory of a network's layers (its prepared form is about as large)."""
    return int(sum(w.data.nbytes + w.indices.nbytes + w.indptr.nbytes
                   if hasattr(w, "indptr") else getattr(w, "nbytes", 0) for w in graph.layers))


def _collect(parallel: Any, calls: Any, sizes: list[int], bar: Any) -> list[Any]:
    results = []
    for size, result in zip(sizes, parallel(calls)):
        results.append(result)
        if bar is not None:
            bar.update(size)
    return results


def _connect(address: str) -> Any:
    try:
        from distributed import Client
    except ImportError:  # pragma: no cover - dask[distributed] is a dependency
        raise ConfigError("--scheduler needs dask.distributed, which is not installed") from None
    try:
        return Client(address, timeout="10s", set_as_default=False)
    except (OSError, TimeoutError, ValueError) as exc:
        raise ConfigError(
            f"cannot reach the Dask scheduler at {address!r}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None


@contextlib.contextmanager
def _connected(scheduler: str | None) -> Iterator[Any]:
    """A Dask client of ``scheduler`` for the block (None without a scheduler)."""
    if not scheduler:
        yield None
        return
    client = _connect(scheduler)
    try:
        yield client
    finally:
        client.close()


def _cluster_threads(client: Any) -> int | None:
    """How many tasks a cluster runs at once (its workers' threads); None without workers
    yet (then blocks are cut for a few)."""
    threads = sum(client.nthreads().values())
    return threads if threads > 0 else None


def _progress_bar(total: int, desc: str | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="pair" if desc and "pair" in desc else "it")
