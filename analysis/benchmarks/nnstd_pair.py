"""Benchmark: NNSTD of one pair of 784-1000-1000-1000-10 SET networks (epsilon = 20).

Run from the repository root::

    .venv/bin/python analysis/benchmarks/nnstd_pair.py [--repeats 15]

Writes ``analysis/results/nnstd_pair.json`` and ``analysis/results/nnstd_pair.md``.

What is measured, on two independent Erdős–Rényi masks with the SET density
``epsilon (n_in + n_out) / (n_in n_out)`` per layer (Mocanu et al. 2018; the output layer is
dense at epsilon = 20):

- ``topo.nnstd(a, b)`` (default mode) and ``topo.nnstd(a, b, reference=True)``: best and median
  wall time over ``--repeats`` calls, and the peak of Python-tracked memory (tracemalloc) of one
  call;
- the floor: :func:`scipy.optimize.linear_sum_assignment` alone on the three 1000 x 1000 cost
  matrices of the same pair (timed on precomputed costs);
- the cost-matrix construction alone (sparse product and Jaccard arithmetic).

The published implementation's figure (about 120-130 CPU s for this pair on a 2-core machine) is
quoted from the project's issue 4; it compares units pair by pair in Python.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

from topo.distance import jaccard_cost, nnstd
from topo.graph import LayeredGraph
from topo.io.atomic import atomic_write_text

RESULTS = Path(__file__).resolve().parents[1] / "results"
WIDTHS = [784, 1000, 1000, 1000, 10]
EPSILON = 20
PUBLISHED_CPU_S = (120.0, 130.0)


def set_network(widths: list[int], epsilon: float, rng: np.random.Generator) -> LayeredGraph:
    """Random sparse MLP with SET's Erdős–Rényi density per layer (dense when p >= 1)."""
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        p = min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))
        mask = rng.random((n_out, n_in)) < p
        rows, cols = np.nonzero(mask)
        layers.append(sp.csr_matrix((rng.normal(size=rows.size), (rows, cols)),
                                    shape=(n_out, n_in)))
    return LayeredGraph(layers, names=[f"fc{k}" for k in range(len(layers))])


def timed_interleaved(fns: dict, repeats: int) -> dict[str, list[float]]:
    """Wall times of every function, called in turn in each round, so that other work on the
    machine slows all of them alike and their ratios stay meaningful."""
    out: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            out[name].append(time.perf_counter() - t)
    return out


def peak_mib(fn) -> float:
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return peak / 2**20


def cost_matrices(a: LayeredGraph, b: LayeredGraph) -> list[np.ndarray]:
    """The three hidden-layer costs of the pair, re-indexed as nnstd does."""
    result = nnstd(a, b)
    costs = []
    col_map = np.arange(a.n_in[0])
    for k in range(3):
        costs.append(jaccard_cost(a.masks()[k], b.masks()[k], col_map, len(col_map)))
        col_map = np.argsort(result.matchings[k])
    return costs


# other work on the machine slows every timing: recorded beside the results
LOAD = os.getloadavg()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    rng = np.random.default_rng(2020)
    a, b = set_network(WIDTHS, EPSILON, rng), set_network(WIDTHS, EPSILON, rng)
    nnstd(a, b)  # warm-up (imports, caches)

    costs = cost_matrices(a, b)
    masks_a, masks_b = a.masks(), b.masks()
    times = timed_interleaved({
        "default": lambda: nnstd(a, b),
        "reference": lambda: nnstd(a, b, reference=True),
        "lsa": lambda: [linear_sum_assignment(c) for c in costs],
        "build": lambda: [jaccard_cost(masks_a[k], masks_b[k]) for k in range(3)],
    }, args.repeats)
    default_t, reference_t = times["default"], times["reference"]
    lsa_t, build_t = times["lsa"], times["build"]
    ratios = [d / f for d, f in zip(default_t, lsa_t)]
    value = nnstd(a, b)
    record = {
        "benchmark": "nnstd_pair",
        "widths": WIDTHS,
        "epsilon": EPSILON,
        "densities": a.densities,
        "connections": [a.n_connections, b.n_connections],
        "nnstd_default_per_layer": value.per_layer.tolist(),
        "nnstd_reference_per_layer": nnstd(a, b, reference=True).per_layer.tolist(),
        "repeats": args.repeats,
        "default_s": {"best": min(default_t), "median": statistics.median(default_t)},
        "reference_s": {"best": min(reference_t), "median": statistics.median(reference_t)},
        "lsa_three_1000x1000_s": {"best": min(lsa_t), "median": statistics.median(lsa_t)},
        "cost_build_three_layers_s": {"best": min(build_t),
                                      "median": statistics.median(build_t)},
        "peak_traced_mib_default": peak_mib(lambda: nnstd(a, b)),
        "published_cpu_s": PUBLISHED_CPU_S,
        "speedup_vs_published_median": statistics.mean(PUBLISHED_CPU_S)
        / statistics.median(reference_t),
        "ratio_to_lsa_floor_median": statistics.median(ratios),
        "machine": {"cpus": os.cpu_count(), "load_average_at_start": LOAD,
                    "python": platform.python_version(),
                    "numpy": np.__version__, "scipy": scipy.__version__,
                    "processor": platform.processor() or platform.machine()},
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "nnstd_pair.json", json.dumps(record, indent=2) + "\n")
    md = [
        "# NNSTD, one pair of 784-1000-1000-1000-10 SET networks (epsilon = 20)",
        "",
        f"Made by `analysis/benchmarks/nnstd_pair.py` ({args.repeats} repeats, wall time, "
        f"{record['machine']['cpus']} CPUs, numpy {np.__version__}, scipy {scipy.__version__}; "
        f"load average {LOAD[0]:.1f} when started: other work shared the machine).",
        "",
        "| what | best (s) | median (s) |",
        "|---|---|---|",
        f"| `topo.nnstd(a, b)` (default) | {min(default_t):.3f} | "
        f"{statistics.median(default_t):.3f} |",
        f"| `topo.nnstd(a, b, reference=True)` | {min(reference_t):.3f} | "
        f"{statistics.median(reference_t):.3f} |",
        f"| `linear_sum_assignment` alone, three 1000x1000 costs | {min(lsa_t):.3f} | "
        f"{statistics.median(lsa_t):.3f} |",
        f"| cost construction alone, three layers | {min(build_t):.3f} | "
        f"{statistics.median(build_t):.3f} |",
        f"| published implementation (issue 4) | {PUBLISHED_CPU_S[0]:.0f}-"
        f"{PUBLISHED_CPU_S[1]:.0f} CPU s | |",
        "",
        f"- default / solver floor (median of the per-round ratios): "
        f"{record['ratio_to_lsa_floor_median']:.2f}x",
        f"- speed-up over the published implementation (reference mode, median): "
        f"{record['speedup_vs_published_median']:.0f}x",
        f"- peak Python-tracked memory of one call: {record['peak_traced_mib_default']:.1f} MiB",
        f"- NNSTD per layer (default): "
        f"{', '.join(f'{v:.4f}' for v in record['nnstd_default_per_layer'])}",
        f"- NNSTD per layer (reference): "
        f"{', '.join(f'{v:.4f}' for v in record['nnstd_reference_per_layer'])}",
        "",
    ]
    atomic_write_text(RESULTS / "nnstd_pair.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
