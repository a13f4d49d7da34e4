"""Many independent tasks through joblib, on local processes or on a Dask cluster.

The analyses that compare many networks (distance matrices over hundreds of snapshots) cut
their work into tasks whose arguments are small (file paths and index arrays) and hand them
to :func:`run_tasks`. With ``scheduler=None`` joblib runs them in local worker processes;
with the address of a Dask distributed scheduler the same joblib code runs on that cluster
(joblib's ``dask`` backend with a :class:`distributed.Client`).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from topo.errors import ConfigError

__all__ = ["run_tasks", "pair_blocks", "effective_jobs"]

Task = tuple[Callable[..., Any], tuple[Any, ...]]

# Tasks per worker: more than one keeps workers busy when pairs differ in cost, few enough
# that each task still reads each file once for many pairs.
_TASKS_PER_WORKER = 4
_CLUSTER_WORKERS = 8


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
    import joblib

    if n_jobs == 0 or n_jobs < -1:
        raise ConfigError(f"n_jobs must be a positive number of workers or -1, got {n_jobs}")
    sizes = list(total_items) if total_items is not None else [1] * len(tasks)
    calls = (joblib.delayed(func)(*args) for func, args in tasks)
    bar = _progress_bar(sum(sizes), desc) if progress else None
    try:
        if scheduler:
            client = _connect(scheduler)
            try:
                with joblib.parallel_config(backend="dask", client=client):
                    results = _collect(joblib.Parallel(n_jobs=-1, return_as="generator"),
                                       calls, sizes, bar)
            finally:
                client.close()
        else:
            jobs = effective_jobs(n_jobs)
            parallel = joblib.Parallel(n_jobs=min(jobs, max(len(tasks), 1)),
                                       return_as="generator")
            results = _collect(parallel, calls, sizes, bar)
    finally:
        if bar is not None:
            bar.close()
    return results


def pair_blocks(n: int, *, n_jobs: int = 1, scheduler: str | None = None) -> list[np.ndarray]:
    """The pairs ``i < j`` of ``n`` items, row-major, cut into contiguous blocks (one per task).

    Returns
    -------
    list of numpy.ndarray
        Arrays of shape ``(m, 2)`` whose rows are ``(i, j)``; together every pair once. One
        block when running in this process, a few per worker otherwise.
    """
    i, j = np.triu_indices(n, k=1)
    pairs = np.column_stack([i, j]).astype(np.int64)
    # a cluster's size is not known before connecting: cut for a few dozen workers
    workers = _CLUSTER_WORKERS if scheduler else effective_jobs(n_jobs)
    n_blocks = 1 if workers == 1 and not scheduler else workers * _TASKS_PER_WORKER
    n_blocks = max(1, min(n_blocks, len(pairs)))
    return list(np.array_split(pairs, n_blocks))


def effective_jobs(n_jobs: int) -> int:
    """Number of local workers that ``n_jobs`` means (-1: every core)."""
    if n_jobs == -1:
        return max(1, os.cpu_count() or 1)
    if n_jobs < 1:
        raise ConfigError(f"n_jobs must be a positive number of workers or -1, got {n_jobs}")
    return n_jobs


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


def _progress_bar(total: int, desc: str | None) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, unit="pair" if desc and "pair" in desc else "it")

