"""Benchmark: which assignment path NNSTD should take for a layer (the measurement behind
``topo.assignment.choose_solver``).

Run from the repository root (a quiet machine gives the numbers that count)::

    .venv/bin/python analysis/benchmarks/nnstd_solvers.py [--repeats 3]

Writes ``analysis/results/nnstd_solvers.json`` and ``analysis/results/nnstd_solvers.md``.

For square layers of ``n`` units reading ``n`` inputs, two independent Erdős–Rényi masks with
SET's density ``epsilon (n_in + n_out) / (n_in n_out)`` (Mocanu et al. 2018), one layer's
cost is built and solved by every path, each checked to reach the same optimum:

- ``sparse``: the similarity graph (pairs sharing an input) and LAPMOD (lapx) on it;
- ``dense``: the dense Jaccard matrix and lapx's LAPJV (``lapjvr``);
- ``scipy``: the dense matrix and :func:`scipy.optimize.linear_sum_assignment` (up to
  n = 2000; SciPy takes tens of seconds beyond).

Times include building the cost and the canonical choice among optima (the optimal face,
whose cost also depends on the path). ``density`` is the fraction of unit pairs that share an
input and ``bound`` the cheap upper bound the automatic choice reads
(:func:`topo.assignment.similarity_density_bound`). The load average is recorded per row.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp

from topo.assignment import (
    canonical_optimum,
    choose_solver,
    layer_cost,
    similarity_density_bound,
    solve_layer,
)
from topo.io.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"
CASES = [(n, eps) for n in (250, 500, 1000, 2000) for eps in (2, 5, 10, 20, 40)] + [
    (4000, 5), (4000, 20)]


def er_mask(n_out: int, n_in: int, epsilon: float, rng) -> sp.csr_matrix:
    p = min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))
    return sp.csr_matrix((rng.random((n_out, n_in)) < p).astype(np.int8))


def run(path: str, ma, mb, repeats: int) -> tuple[float, float]:
    n_cols = ma.shape[1]
    col_map = np.arange(n_cols)
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        cost = layer_cost(ma, mb, col_map, n_cols, dense=path != "sparse")
        col_of = solve_layer(cost, path)
        perm, _ = canonical_optimum(cost, col_of, lambda: (np.zeros(ma.shape[0], np.uint64),
                                                           np.zeros(mb.shape[0], np.uint64)))
        times.append(time.perf_counter() - t)
    n_a = ma.shape[0]
    real = np.flatnonzero(perm >= 0)
    optimum = float(cost.lookup(real, perm[real]).sum()) + (max(n_a, mb.shape[0]) - real.size)
    return min(times), optimum


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    rows = []
    md = ["# Assignment paths for one NNSTD layer", "",
          f"Made by `analysis/benchmarks/nnstd_solvers.py` (best of {args.repeats}, wall time "
          f"including the cost and the optimal face, {os.cpu_count()} CPUs shared with other "
          f"work, scipy {scipy.__version__}). Every path reaches the same optimum (checked to "
          "1e-9).", "",
          "| n | eps | density | bound | sparse (s) | dense (s) | scipy (s) | fastest | auto "
          "| load avg |",
          "|---|---|---|---|---|---|---|---|---|---|"]
    for n, eps in CASES:
        ma, mb = er_mask(n, n, eps, rng), er_mask(n, n, eps, rng)
        load = os.getloadavg()[0]
        sparse_cost = layer_cost(ma, mb, np.arange(n), n, dense=False)
        density = sparse_cost.rows.size / (n * n)
        bound = similarity_density_bound(ma, mb, np.arange(n), n)
        row = {"n": n, "epsilon": eps, "density": density, "bound": bound, "load_average": load}
        optima = {}
        for path in ("sparse", "dense", "scipy"):
            if path == "scipy" and n > 2000:
                continue
            reps = args.repeats if n <= 1000 else 1
            row[f"{path}_s"], optima[path] = run(path, ma, mb, reps)
        values = list(optima.values())
        assert max(values) - min(values) < 1e-9, optima
        timed = {p: row[f"{p}_s"] for p in ("sparse", "dense", "scipy") if f"{p}_s" in row}
        row["fastest"] = min(timed, key=timed.get)
        row["auto"] = choose_solver(n, n, bound)
        rows.append(row)
        md.append(f"| {n} | {eps} | {density:.3f} | {bound:.3f} | {row['sparse_s']:.4f} "
                  f"| {row['dense_s']:.4f} | {row.get('scipy_s', float('nan')):.4f} "
                  f"| {row['fastest']} | {row['auto']} | {load:.1f} |")
        print(md[-1], flush=True)
    md += ["", "`auto` is the path `topo.nnstd` takes by default "
           "(`topo.assignment.choose_solver`).", ""]
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "nnstd_solvers.json",
                      json.dumps({"benchmark": "nnstd_solvers", "rows": rows}, indent=2) + "\n")
    atomic_write_text(RESULTS / "nnstd_solvers.md", "\n".join(md))


if __name__ == "__main__":
    main()
