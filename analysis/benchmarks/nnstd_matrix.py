"""Benchmark: NNSTD distance matrices (the 45 published pairs, and 200 snapshots of one run).

Run from the repository root (one command; a quiet machine gives the numbers that count)::

    .venv/bin/python analysis/benchmarks/nnstd_matrix.py [--snapshots 200] [--n-jobs 2]
    .venv/bin/python analysis/benchmarks/nnstd_matrix.py --scaling-only   # part 3 alone (3 rounds)

Writes ``analysis/results/nnstd_matrix.json``, ``analysis/results/nnstd_matrix.md`` and the
published-networks matrix ``analysis/results/nnstd_matrix_published_epoch190.csv``.

1. The ten SET networks published with Liu et al. (2020), 784-784-784-784-10, at epoch 190
   (``../shared/external/nnstd-set-topologies``; skipped when absent): all 45 pairs, every
   layer, with ``reference=True`` (the published algorithm), through
   :func:`topo.distance_matrix` in this process and with two worker processes. The
   published implementation needs about 45 CPU s per pair (README of the data), 2025 CPU s
   for the 45 pairs.
2. A 200-snapshot matrix (19,900 pairs): one 784-300-100-10 network (density about 5%) whose
   topology evolves as SET rewires it (every epoch 30% of each sparse layer's connections are
   removed at random and as many are grown at random empty positions; no training, the
   topology process only), written as topo snapshots to a temporary folder and compared from
   the files. Time and peak memory (this process, and the largest worker process).
3. Scaling (issue 15): a 100-snapshot matrix (4950 pairs) of the same process, timed with one
   worker (in process), two local workers (joblib) and a two-worker Dask ``LocalCluster``
   (one thread each); targets: two workers at least 1.8 times faster than one, Dask at least
   1.6 times. The three routes take turns for ``--repeats`` rounds (3 by default: single
   runs on this machine vary by about 10 %) and each route's fastest run counts; every run,
   with its CPU seconds per process and the other work on the machine, is in
   ``analysis/results/nnstd_matrix_scaling.json`` (table in ``.md``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp

import topo
from topo.graph import LayeredGraph
from topo.io.atomic import atomic_write_text
from topo.pairwise import distance_matrix

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"
PUBLISHED = ROOT.parent / "shared" / "external" / "nnstd-set-topologies"
PUBLISHED_CPU_S_PER_PAIR = 45.0
SERIES_WIDTHS = [784, 300, 100, 10]
SERIES_DENSITY = 0.05
SERIES_ZETA = 0.3


def rewired_series(n: int, rng: np.random.Generator) -> list[LayeredGraph]:
    """``n`` snapshots of SET's prune-and-regrow process on random masks (no training)."""
    masks = []
    for n_in, n_out in zip(SERIES_WIDTHS[:-1], SERIES_WIDTHS[1:]):
        dense_out = n_out == SERIES_WIDTHS[-1]
        masks.append(np.ones((n_out, n_in), bool) if dense_out
                     else rng.random((n_out, n_in)) < SERIES_DENSITY)
    series = []
    for _ in range(n):
        series.append(LayeredGraph([sp.csr_matrix(m.astype(np.float32)) for m in masks],
                                   names=[f"fc{k}" for k in range(len(masks))]))
        for k, m in enumerate(masks[:-1]):
            on = np.flatnonzero(m)
            off = np.flatnonzero(~m.ravel())
            drop = rng.choice(on, size=int(SERIES_ZETA * on.size), replace=False)
            grow = rng.choice(off, size=drop.size, replace=False)
            flat = m.ravel()
            flat[drop] = False
            flat[grow] = True
            masks[k] = flat.reshape(m.shape)
    return series


def peak_rss_mib() -> dict[str, float]:
    """Peak resident memory of this process and of its largest worker process (Linux)."""
    import psutil

    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    workers = [_vm_hwm_mib(p.pid) for p in psutil.Process().children(recursive=True)]
    return {"self": own, "largest_worker": max(workers, default=float("nan"))}


def _vm_hwm_mib(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def time_matrix(paths, **kwargs) -> tuple[float, tuple]:
    """Seconds and result of the matrix of ``paths`` (read by the workers: topo.read_sequence)."""
    t = time.perf_counter()
    out = distance_matrix(topo.read_sequence(paths), **kwargs)
    return time.perf_counter() - t, out


def cpu_by_process() -> dict[int, tuple[float, float]]:
    """``(user + system, system)`` CPU seconds used so far by this process (key 0) and by
    every process it started (workers; Dask's scheduler and nannies are threads of this
    process), by process id."""
    import psutil

    out = {}
    for p in [psutil.Process(), *psutil.Process().children(recursive=True)]:
        try:
            t = p.cpu_times()
        except psutil.Error:
            continue
        out[0 if p.pid == os.getpid() else p.pid] = (t.user + t.system, t.system)
    return out


def machine_cpu() -> tuple[float, float]:
    """Busy and stolen CPU seconds of the whole machine so far (``/proc/stat``; NaN elsewhere):
    busy minus this benchmark's own CPU is what other work took during a route."""
    try:
        fields = Path("/proc/stat").read_text().splitlines()[0].split()[1:]
    except OSError:
        return float("nan"), float("nan")
    ticks = [int(x) for x in fields]
    hz = os.sysconf("SC_CLK_TCK")
    idle = ticks[3] + ticks[4]  # idle, iowait
    steal = ticks[7] if len(ticks) > 7 else 0
    busy = sum(ticks[:8]) - idle - steal
    return busy / hz, steal / hz


def timed_route(paths, **kwargs) -> tuple[float, tuple, dict]:
    """:func:`time_matrix` with the CPU accounting of the route: the load average before and
    after, the CPU seconds of this process and of each worker process (user + system, and
    system alone), and the CPU seconds other work on the machine took meanwhile."""
    load = os.getloadavg()[0]
    cpu, machine = cpu_by_process(), machine_cpu()
    seconds, out = time_matrix(paths, **kwargs)
    cpu_after, machine_after = cpu_by_process(), machine_cpu()
    used = {pid: (t - cpu.get(pid, (0.0, 0.0))[0], s - cpu.get(pid, (0.0, 0.0))[1])
            for pid, (t, s) in cpu_after.items()}
    workers = sorted((t for pid, (t, _) in used.items() if pid and t > 0.5), reverse=True)
    total = sum(t for t, _ in used.values())
    busy = machine_after[0] - machine[0]
    return seconds, out, {
        "load_average_before": load, "load_average_after": os.getloadavg()[0],
        "cpu_seconds": total, "cpu_seconds_this_process": used[0][0],
        "cpu_seconds_workers": workers, "system_cpu_seconds": sum(s for _, s in used.values()),
        "cpu_seconds_other_work": busy - total,
        "cpu_seconds_stolen": machine_after[1] - machine[1]}


# other work on the machine slows every timing: recorded beside the results
LOAD = os.getloadavg()
QUIET_LOAD = 1.5
QUIET_OTHER = 0.05  # share of the CPUs that other work may take during a route


def scaling(n_snapshots: int = 100, repeats: int = 1) -> None:
    """Part 3: one worker, two workers, a two-worker Dask LocalCluster on the same files.

    With ``repeats`` > 1 the three routes run in turn that many times and each route's
    fastest run counts (every run is in the JSON)."""
    from distributed import Client, LocalCluster

    started = time.perf_counter()
    load_start = os.getloadavg()
    rng = np.random.default_rng(11)
    series = rewired_series(n_snapshots, rng)
    runs: dict[str, list] = {"1 worker": [], "2 workers": [], "Dask LocalCluster, 2 workers": []}
    with tempfile.TemporaryDirectory() as tmp:
        paths = [topo.save_snapshot(g, Path(tmp) / f"epoch_{i:04d}.safetensors")
                 for i, g in enumerate(series)]
        del series
        time_matrix(paths[:3])  # imports and first-call set-up
        time_matrix(paths[:4], n_jobs=2)  # start the loky workers (idle, they use no CPU)
        for _ in range(repeats):
            runs["1 worker"].append(timed_route(paths))
            runs["2 workers"].append(timed_route(paths, n_jobs=2))
            # the cluster lives for its own route only: even idle, its scheduler, nannies
            # and workers use CPU time that would slow the other routes
            with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                              dashboard_address=None) as cluster, Client(cluster):
                time_matrix(paths[:4], scheduler=cluster.scheduler_address)  # imports
                runs["Dask LocalCluster, 2 workers"].append(
                    timed_route(paths, scheduler=cluster.scheduler_address))
    base = runs["1 worker"][0][1][0].to_numpy()
    for name, route_runs in runs.items():
        for _, (dist, _), _ in route_runs:
            assert np.array_equal(dist.to_numpy(), base), name  # bit-identical matrices
    rows = {name: min(route_runs, key=lambda r: r[0]) for name, route_runs in runs.items()}
    one = rows["1 worker"][0]
    targets = {"2 workers": 1.8, "Dask LocalCluster, 2 workers": 1.6}
    # the load average lags and counts this benchmark's own workers: the machine was quiet
    # when it was at the start, and other work took little of the CPUs during every route
    other = max(acc["cpu_seconds_other_work"] / (t * (os.cpu_count() or 1))
                for rr in runs.values() for t, _, acc in rr)
    quiet = load_start[0] < QUIET_LOAD and other < QUIET_OTHER
    record = {"snapshots": n_snapshots, "pairs": n_snapshots * (n_snapshots - 1) // 2,
              "repeats": repeats,
              "rows": {name: {"seconds": t, "speed_up": one / t, **acc}
                       for name, (t, _, acc) in rows.items()},
              "all_runs": {name: [{"seconds": t, **acc} for t, _, acc in route_runs]
                           for name, route_runs in runs.items()},
              "quiet": quiet, "load_average_at_start": load_start,
              "largest_share_of_cpus_other_work": other,
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "libc": " ".join(platform.libc_ver()), "numpy": np.__version__,
                          "scipy": scipy.__version__},
              "seconds_whole_run": time.perf_counter() - started}
    md = [f"# NNSTD matrix scaling: {n_snapshots} snapshots of a 784-300-100-10 network "
          f"({record['pairs']} pairs)", "",
          "Made by `analysis/benchmarks/nnstd_matrix.py --scaling-only` (one command; "
          f"{os.cpu_count()} CPUs; wall time; "
          + (f"the fastest of {repeats} runs per route, the routes taking turns; "
             if repeats > 1 else "one run per route; ")
          + "every route gives the identical matrix). `cpu s` is the CPU time of this "
          "process and every process it started during the route (a route's overhead shows "
          "as more CPU seconds for the same work), split into this process and each worker; "
          "`other` is the CPU time the rest of the machine used meanwhile (from "
          "`/proc/stat`); the load average, taken before and after each route, counts the "
          "benchmark's own workers too. Whole "
          f"run: {record['seconds_whole_run']:.0f} s.", "",
          (f"Quiet machine: load average {load_start[0]:.2f} at the start (under "
           f"{QUIET_LOAD}), and other work took at most {100 * other:.1f} % of the CPUs "
           f"during a route (under {100 * QUIET_OTHER:.0f} %)." if quiet else
           f"**Not a valid measurement: load average {load_start[0]:.2f} at the start, and "
           f"other work took up to {100 * other:.0f} % of the CPUs during a route (a quiet "
           f"run needs under {QUIET_LOAD} and under {100 * QUIET_OTHER:.0f} %).**"), "",
          "| route | load avg before/after | seconds | cpu s | this process | workers | "
          "system | other | speed-up | target |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for name, (t, _, acc) in rows.items():
        target = targets.get(name)
        verdict = "" if target is None else (
            f">= {target}x: {'met' if one / t >= target else 'NOT met'}")
        workers = " + ".join(f"{w:.1f}" for w in acc["cpu_seconds_workers"]) or "-"
        md.append(f"| {name} | {acc['load_average_before']:.2f} / "
                  f"{acc['load_average_after']:.2f} | {t:.1f} | {acc['cpu_seconds']:.1f} | "
                  f"{acc['cpu_seconds_this_process']:.1f} | {workers} | "
                  f"{acc['system_cpu_seconds']:.1f} | {acc['cpu_seconds_other_work']:.1f} | "
                  f"{one / t:.2f} | {verdict} |")
    atomic_write_text(RESULTS / "nnstd_matrix_scaling.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(RESULTS / "nnstd_matrix_scaling.md", "\n".join(md) + "\n")
    print("\n".join(md))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--snapshots", type=int, default=200)
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--scaling-only", action="store_true",
                        help="only part 3 (1 and 2 workers, Dask), 100 snapshots")
    parser.add_argument("--repeats", type=int, default=3,
                        help="part 3: run the three routes in turn this many times and keep "
                             "each route's fastest run")
    args = parser.parse_args()
    if args.scaling_only:
        scaling(repeats=args.repeats)
        return
    record: dict = {"benchmark": "nnstd_matrix", "n_jobs": args.n_jobs,
                    "machine": {"cpus": os.cpu_count(), "load_average_at_start": LOAD,
                                "python": platform.python_version(),
                                "numpy": np.__version__, "scipy": scipy.__version__}}
    md = ["# NNSTD distance matrices", "",
          f"Made by `analysis/benchmarks/nnstd_matrix.py` (wall time, {os.cpu_count()} CPUs, "
          f"numpy {np.__version__}, scipy {scipy.__version__}; load average "
          f"{LOAD[0]:.1f} when started: other work shared the machine).", ""]

    if PUBLISHED.is_dir():
        paths = sorted(PUBLISHED.glob("e5_s0_w*/epoch_190"))
        labels = [p.parent.name[-2:] for p in paths]
        time_matrix(paths[:2], reference=True)  # warm-up
        t_serial, (dist, over) = time_matrix(paths, reference=True, labels=labels)
        # first call with workers: includes starting them (each imports topo and scipy)
        t_cold, _ = time_matrix(paths, reference=True, labels=labels, n_jobs=args.n_jobs)
        t_jobs, (dist_jobs, _) = time_matrix(paths, reference=True, labels=labels,
                                             n_jobs=args.n_jobs)
        assert np.array_equal(dist.to_numpy(), dist_jobs.to_numpy())
        frame = dist.copy()
        frame.insert(0, "label", frame.index)
        atomic_write_text(RESULTS / "nnstd_matrix_published_epoch190.csv",
                          frame.to_csv(index=False))
        n_pairs = len(paths) * (len(paths) - 1) // 2
        record["published_epoch190"] = {
            "networks": len(paths), "pairs": n_pairs, "layers": 4, "reference": True,
            "seconds_in_process": t_serial, f"seconds_{args.n_jobs}_jobs": t_jobs,
            f"seconds_{args.n_jobs}_jobs_cold": t_cold,
            "published_cpu_s": PUBLISHED_CPU_S_PER_PAIR * n_pairs,
            "w0_w9": float(dist.loc["w0", "w9"]),
            "mean_distance": float(dist.to_numpy()[np.triu_indices(len(paths), 1)].mean()),
            "mean_pooled_jaccard": float(over.to_numpy()[np.triu_indices(len(paths), 1)].mean()),
            "peak_rss_mib": peak_rss_mib(),
        }
        rss = record["published_epoch190"]["peak_rss_mib"]
        md += ["## The ten published SET networks, epoch 190, 45 pairs, all 4 layers", "",
               "| what | seconds |", "|---|---|",
               f"| `distance_matrix(..., reference=True)`, in process | {t_serial:.2f} |",
               f"| same, `n_jobs={args.n_jobs}`, workers already started | {t_jobs:.2f} |",
               f"| same, `n_jobs={args.n_jobs}`, first call (starts the workers) | "
               f"{t_cold:.2f} |",
               f"| published implementation (45 CPU s per pair) | "
               f"{PUBLISHED_CPU_S_PER_PAIR * n_pairs:.0f} CPU s |", "",
               f"- NNSTD w0 vs w9: {dist.loc['w0', 'w9']:.4f} (mean over layers); matrix in "
               "`nnstd_matrix_published_epoch190.csv`",
               f"- peak resident memory so far: {rss['self']:.0f} MiB (this process), "
               f"{rss['largest_worker']:.0f} MiB (largest worker)", ""]
    else:
        md += ["(published networks not available: section skipped)", ""]

    rng = np.random.default_rng(7)
    series = rewired_series(args.snapshots, rng)
    with tempfile.TemporaryDirectory() as tmp:
        paths = [topo.save_snapshot(g, Path(tmp) / f"epoch_{i:04d}.safetensors")
                 for i, g in enumerate(series)]
        del series
        t_series, (dist, over) = time_matrix(paths, n_jobs=args.n_jobs)
    n_pairs = args.snapshots * (args.snapshots - 1) // 2
    values = dist.to_numpy()
    record["rewired_series"] = {
        "snapshots": args.snapshots, "pairs": n_pairs, "widths": SERIES_WIDTHS,
        "density": SERIES_DENSITY, "zeta": SERIES_ZETA, "seconds": t_series,
        "ms_per_pair": 1000 * t_series / n_pairs,
        "nnstd_to_first_last": float(values[0, -1]),
        "nnstd_consecutive_mean": float(np.diag(values, 1).mean()),
        "peak_rss_mib": peak_rss_mib(),
    }
    rss = record["rewired_series"]["peak_rss_mib"]
    md += [f"## {args.snapshots} snapshots of one rewired 784-300-100-10 network "
           f"({n_pairs} pairs)", "",
           f"- `distance_matrix(paths, n_jobs={args.n_jobs})`: {t_series:.1f} s "
           f"({1000 * t_series / n_pairs:.2f} ms per pair)",
           f"- peak resident memory: {rss['self']:.0f} MiB (this process), "
           f"{rss['largest_worker']:.0f} MiB (largest worker)",
           f"- NNSTD between consecutive snapshots (mean): "
           f"{record['rewired_series']['nnstd_consecutive_mean']:.4f}; first to last: "
           f"{record['rewired_series']['nnstd_to_first_last']:.4f}", ""]
    atomic_write_text(RESULTS / "nnstd_matrix.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(RESULTS / "nnstd_matrix.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
