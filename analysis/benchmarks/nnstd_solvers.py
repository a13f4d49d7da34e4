"""Benchmark: which assignment solver NNSTD should use (the measurement behind the choice).

Run from the repository root::

    .venv/bin/python analysis/benchmarks/nnstd_solvers.py [--repeats 7]

Writes ``analysis/results/nnstd_solvers.json`` and ``analysis/results/nnstd_solvers.md``.

Candidates, on the Jaccard cost matrices NNSTD builds (:func:`topo.distance.jaccard_cost`):

- ``lsa``: :func:`scipy.optimize.linear_sum_assignment` on the dense float64 cost (used);
- ``lsa_int``: the same on costs scaled to integers (scipy converts them back to float64, so
  any gain would have to come from the values; Jaccard costs are not integers, so the scaled
  problem is only approximately the same);
- ``lapjvsp``: :func:`scipy.sparse.csgraph.min_weight_full_bipartite_matching` on the sparse
  graph of unit pairs that share an input (cost < 1), made a full matching problem by giving
  every unit a private dummy partner at cost 1/2 (+1 shift) and joining dummies along the
  transposed edges at cost 0 (+1 shift). A pair that shares nothing costs 1 whether it is
  matched or not, so the optimum equals the dense one (checked below);
- ``rect`` vs ``padded``: a rectangular problem (hidden widths 1000 vs 800) solved directly,
  or padded to a square with cost-1 dummy columns.

Workloads: a 1000 x 1000 layer of two SET networks at epsilon = 20 (about 4% dense, 80% of the
unit pairs share an input) and layer 0 of the published 784-unit networks w0 vs w9 at epoch 190
(0.6% dense, 3% of the pairs share an input; skipped when the data are absent).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment
from scipy.sparse.csgraph import min_weight_full_bipartite_matching

import topo
from topo.distance import jaccard_cost
from topo.io.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"
PUBLISHED = ROOT.parent / "shared" / "external" / "nnstd-set-topologies"


def lsa(cost: np.ndarray) -> float:
    rows, cols = linear_sum_assignment(cost)
    return float(cost[rows, cols].sum())


def lsa_int(cost: np.ndarray) -> float:
    scaled = np.rint(cost * 1_000_000).astype(np.int64)
    rows, cols = linear_sum_assignment(scaled)
    return float(cost[rows, cols].sum())


def lapjvsp(cost: np.ndarray) -> float:
    n_a, n_b = cost.shape
    r, c = np.nonzero(cost < 1.0)
    rows = np.concatenate([r, np.arange(n_a), n_a + c, n_a + np.arange(n_b)])
    cols = np.concatenate([c, n_b + np.arange(n_a), n_b + r, np.arange(n_b)])
    data = np.concatenate([1.0 + cost[r, c], np.full(n_a, 1.5), np.full(r.size, 1.0),
                           np.full(n_b, 1.5)])
    graph = sp.csr_matrix((data, (rows, cols)), shape=(n_a + n_b, n_b + n_a))
    rr, cc = min_weight_full_bipartite_matching(graph)
    real = (rr < n_a) & (cc < n_b)
    return float(cost[rr[real], cc[real]].sum() + max(n_a, n_b) - real.sum())


def padded(cost: np.ndarray) -> float:
    n = max(cost.shape)
    square = np.ones((n, n))
    square[:cost.shape[0], :cost.shape[1]] = cost
    return lsa(square)


def rect(cost: np.ndarray) -> float:
    return lsa(cost) + abs(cost.shape[0] - cost.shape[1])


def er_mask(n_out: int, n_in: int, epsilon: float, rng) -> sp.csr_matrix:
    p = min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))
    return sp.csr_matrix(rng.random((n_out, n_in)) < p)


def measure(fn, cost, repeats) -> dict:
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        value = fn(cost)
        times.append(time.perf_counter() - t)
    return {"best_s": min(times), "median_s": statistics.median(times), "optimum": value}


# other work on the machine slows every timing: recorded beside the results
LOAD = os.getloadavg()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    workloads = {
        "set_eps20_1000x1000": jaccard_cost(er_mask(1000, 1000, 20, rng),
                                            er_mask(1000, 1000, 20, rng)),
    }
    if PUBLISHED.is_dir():
        a = topo.load(PUBLISHED / "e5_s0_w0" / "epoch_190")
        b = topo.load(PUBLISHED / "e5_s0_w9" / "epoch_190")
        workloads["published_784_layer0"] = jaccard_cost(a.masks()[0], b.masks()[0])
    record: dict = {"benchmark": "nnstd_solvers", "repeats": args.repeats,
                    "machine": {"cpus": os.cpu_count(), "load_average_at_start": LOAD,
                                "numpy": np.__version__, "scipy": scipy.__version__},
                    "workloads": {}}
    md = ["# Assignment solvers for NNSTD", "",
          f"Made by `analysis/benchmarks/nnstd_solvers.py` ({args.repeats} repeats, wall time, "
          f"{os.cpu_count()} CPUs, scipy {scipy.__version__}; load average {LOAD[0]:.1f} when "
          "started: other work shared the machine).", "",
          "| workload | pairs sharing an input | solver | best (ms) | median (ms) | optimum |",
          "|---|---|---|---|---|---|"]
    for name, cost in workloads.items():
        share = float((cost < 1).mean())
        entry = {"shape": list(cost.shape), "share_fraction": share}
        for solver in (lsa, lsa_int, lapjvsp):
            entry[solver.__name__] = measure(solver, cost, args.repeats)
        narrow = cost[:, : int(cost.shape[1] * 0.8)]
        entry["rect"] = measure(rect, narrow, args.repeats)
        entry["padded"] = measure(padded, narrow, args.repeats)
        record["workloads"][name] = entry
        for solver in ("lsa", "lsa_int", "lapjvsp", "rect", "padded"):
            m = entry[solver]
            shape = f" {cost.shape[0]}x{int(cost.shape[1] * 0.8)}" if solver in (
                "rect", "padded") else ""
            md.append(f"| {name}{shape} | {share:.1%} | {solver} | {1000 * m['best_s']:.1f} | "
                      f"{1000 * m['median_s']:.1f} | {m['optimum']:.9f} |")
        assert abs(entry["lapjvsp"]["optimum"] - entry["lsa"]["optimum"]) < 1e-9
        assert abs(entry["rect"]["optimum"] - entry["padded"]["optimum"]) < 1e-9
    md += ["", "`lapjvsp` and `rect`/`padded` reach the same optimum as `lsa` (asserted to 1e-9); "
           "`lsa_int` optimises a rounded cost (its optimum is reported on the true cost).", ""]
    atomic_write_text(RESULTS / "nnstd_solvers.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(RESULTS / "nnstd_solvers.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
