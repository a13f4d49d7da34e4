"""Benchmark: NNSTD of one pair of SET networks, 784-n-n-n-10, widths 250 to 4000.

Run from the repository root (a quiet machine gives the numbers that count)::

    git worktree add /tmp/topo-previous <commit of the previous release>   # once
    env -u PYTHONDONTWRITEBYTECODE .venv/bin/python analysis/benchmarks/nnstd_pair.py \
        --previous /tmp/topo-previous

Writes ``analysis/results/nnstd_pair.json`` and ``analysis/results/nnstd_pair.md``.

For every width ``n`` in 250, 500, 1000, 2000, 4000 and epsilon in 5 and 20, two independent
Erdős–Rényi masks with SET's density ``epsilon (n_in + n_out) / (n_in n_out)`` per layer
(Mocanu et al. 2018; dense when that reaches 1) are compared with:

- ``topo.nnstd(a, b)``: this tree, default mode, solver chosen per layer, with the compiled
  kernels (``topo._nnstd_kernels``; the kernel path of each layer is recorded);
- the same call on the NumPy path (``topo.assignment.compiled_kernels(False)``, what an
  install without a C compiler runs), timed after this tree's repeats, and checked to give
  the same per-layer values and matchings;
- the floor of the previous release: :func:`scipy.optimize.linear_sum_assignment` alone on
  the three dense hidden-layer cost matrices (timed on precomputed costs);
- the previous release's ``topo.nnstd(a, b)``, run in a worker process from the checkout given
  by ``--previous`` (the same masks, passed as ``.npz`` files), measured in turn with this
  tree's so that other work on the machine slows both alike;
- peak memory of one ``topo.nnstd`` call in a fresh process: the peak of memory allocated
  through Python and numpy during the call (tracemalloc), and the maximum resident set size
  of the whole process (imports and the two networks included; solver memory outside Python
  counts there).

Each timing row records the load average when it started; the growth exponent is the slope
of log(time) against log(n) between consecutive widths and from 1000 to 4000. Targets (issue
15): the 1000-wide pair in at most 0.07 s at both epsilons, width 4000 in at most 2.5 s
(epsilon 5) and 5 s (epsilon 20), at most 1 GB of memory at width 4000.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy
import scipy.sparse as sp
from scipy.optimize import linear_sum_assignment

import topo
from topo.assignment import compiled_kernels, kernels_available
from topo.distance import jaccard_cost
from topo.graph import LayeredGraph
from topo.io.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"
WIDTHS = [250, 500, 1000, 2000, 4000]
EPSILONS = [5, 20]
TARGETS = {(1000, 5): 0.07, (1000, 20): 0.07, (4000, 5): 2.5, (4000, 20): 5.0}
MEMORY_TARGET_MIB = 1024.0

WORKER = r"""
import json, sys, time
import numpy as np, scipy.sparse as sp
sys.path.insert(0, sys.argv[1])
import topo
from topo.distance import nnstd
from topo.graph import LayeredGraph
assert topo.__file__.startswith(sys.argv[1]), topo.__file__
def load(prefix, n_layers):
    return LayeredGraph([sp.load_npz(f"{prefix}_{k}.npz") for k in range(n_layers)])
for line in sys.stdin:
    prefix, n_layers = line.split()
    a, b = load(prefix + "_a", int(n_layers)), load(prefix + "_b", int(n_layers))
    t = time.perf_counter()
    result = nnstd(a, b)
    out = {"seconds": time.perf_counter() - t, "per_layer": result.per_layer.tolist()}
    print(json.dumps(out), flush=True)
"""

MEMORY = r"""
import json, sys, tracemalloc
import numpy as np, scipy.sparse as sp
import topo
from topo.graph import LayeredGraph
def hwm_mib():
    # high-water mark of this process's resident set (getrusage's ru_maxrss would also count
    # the parent's before exec)
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
def load(prefix, n_layers):
    return LayeredGraph([sp.load_npz(f"{prefix}_{k}.npz") for k in range(n_layers)])
prefix, n_layers = sys.argv[1], int(sys.argv[2])
a, b = load(prefix + "_a", n_layers), load(prefix + "_b", n_layers)
small = LayeredGraph([w[:300, :300] for w in a.layers[:-1]] + [a.layers[-1][:, :300]])
topo.nnstd(small, small)  # imports and first-call set-up before the baseline
before = hwm_mib()
topo.nnstd(a, b)
after = hwm_mib()
tracemalloc.start()
topo.nnstd(a, b)
traced = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({"peak_growth_mib": after - before, "max_rss_mib": after,
                  "peak_traced_mib": traced / 2**20}))
"""


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


def hidden_costs(a: LayeredGraph, b: LayeredGraph) -> list[np.ndarray]:
    """The three hidden-layer cost matrices of the pair, re-indexed as nnstd does."""
    result = topo.nnstd(a, b)
    costs = []
    col_map = np.arange(a.n_in[0])
    for k in range(3):
        costs.append(jaccard_cost(a.masks()[k], b.masks()[k], col_map, len(col_map)))
        col_map = np.argsort(result.matchings[k])
    return costs


def repeats_for(n: int) -> int:
    return 9 if n <= 1000 else 3 if n <= 2000 else 1


def save_pair(a: LayeredGraph, b: LayeredGraph, prefix: str) -> None:
    for name, g in (("a", a), ("b", b)):
        for k, w in enumerate(g.layers):
            sp.save_npz(f"{prefix}_{name}_{k}.npz", w)


def slope(t0: float, t1: float, n0: int, n1: int) -> float:
    return float(np.log(t1 / t0) / np.log(n1 / n0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--previous", type=Path, default=None,
                        help="checkout of the previous release (a git worktree)")
    parser.add_argument("--widths", type=int, nargs="*", default=WIDTHS)
    parser.add_argument("--no-floor-above", type=int, default=2000,
                        help="skip the dense SciPy floor for wider layers (at 4000 it alone "
                        "takes over a minute)")
    args = parser.parse_args()
    if not kernels_available():
        print("warning: topo._nnstd_kernels is not built (run `make install`); this tree is "
              "measured on its NumPy path", file=sys.stderr)
    previous_commit = None
    worker = None
    if args.previous is not None:
        previous_commit = subprocess.run(["git", "-C", str(args.previous), "rev-parse", "HEAD"],
                                         capture_output=True, text=True).stdout.strip()
        worker = subprocess.Popen([sys.executable, "-c", WORKER, str(args.previous.resolve())],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                  cwd=tempfile.gettempdir())
    rows = []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for eps in EPSILONS:
            for n in args.widths:
                rng = np.random.default_rng(2020 + n + eps)
                widths = [784, n, n, n, 10]
                a, b = set_network(widths, eps, rng), set_network(widths, eps, rng)
                prefix = f"{tmp}/pair_{n}_{eps}"
                save_pair(a, b, prefix)
                topo.nnstd(a, b)  # warm-up
                row = {"n": n, "epsilon": eps, "densities": a.densities,
                       "load_average": os.getloadavg()[0]}
                times, cpu, previous, numpy_times = [], [], [], []
                with compiled_kernels(False):
                    numpy_result = topo.nnstd(a, b)  # warm-up
                for _ in range(repeats_for(n)):
                    t, c = time.perf_counter(), time.process_time()
                    result = topo.nnstd(a, b)
                    times.append(time.perf_counter() - t)
                    cpu.append(time.process_time() - c)
                    if worker is not None:
                        worker.stdin.write(f"{prefix} {a.n_layers}\n")
                        worker.stdin.flush()
                        previous.append(json.loads(worker.stdout.readline()))
                with compiled_kernels(False):
                    for _ in range(repeats_for(n)):
                        t = time.perf_counter()
                        numpy_result = topo.nnstd(a, b)
                        numpy_times.append(time.perf_counter() - t)
                row.update({
                    "topo_best_s": min(times), "topo_median_s": statistics.median(times),
                    "topo_cpu_best_s": min(cpu),
                    "per_layer": result.per_layer.tolist(), "solvers": result.solvers,
                    "kernels": result.kernels, "numpy_path_best_s": min(numpy_times),
                    "same_as_numpy_path": bool(
                        np.array_equal(result.per_layer, numpy_result.per_layer)
                        and all((x is None and y is None) or np.array_equal(x, y)
                                for x, y in zip(result.matchings, numpy_result.matchings))),
                    "tied_units": result.tied_units, "tie_labels": result.tie_labels,
                    "load_average_after": os.getloadavg()[0],
                })
                if previous:
                    row["previous_best_s"] = min(p["seconds"] for p in previous)
                    row["previous_median_s"] = statistics.median(p["seconds"] for p in previous)
                    row["previous_per_layer"] = previous[0]["per_layer"]
                if n <= args.no_floor_above:
                    costs = hidden_costs(a, b)
                    floor = []
                    for _ in range(repeats_for(n)):
                        t = time.perf_counter()
                        for c in costs:
                            linear_sum_assignment(c)
                        floor.append(time.perf_counter() - t)
                    row["scipy_floor_best_s"] = min(floor)
                    del costs
                mem = subprocess.run([sys.executable, "-c", MEMORY, prefix, str(a.n_layers)],
                                     capture_output=True, text=True, check=True)
                row.update(json.loads(mem.stdout))
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items()
                                  if k not in ("densities", "per_layer", "previous_per_layer")}),
                      flush=True)
    if worker is not None:
        worker.stdin.close()
        worker.wait()
    write(rows, previous_commit, time.perf_counter() - started)


def write(rows: list[dict], previous_commit: str | None, seconds: float) -> None:
    growth = {}
    for eps in EPSILONS:
        mine = {r["n"]: r for r in rows if r["epsilon"] == eps}
        ns = sorted(mine)
        for key in ("topo_best_s", "previous_best_s", "scipy_floor_best_s"):
            pts = [(n, mine[n][key]) for n in ns if key in mine[n]]
            if len(pts) >= 2:
                growth[f"eps{eps}_{key}"] = {
                    f"{n0}-{n1}": slope(t0, t1, n0, n1)
                    for (n0, t0), (n1, t1) in zip(pts[:-1], pts[1:])}
                if 1000 in mine and 4000 in mine and key in mine[1000] and key in mine[4000]:
                    growth[f"eps{eps}_{key}"]["1000-4000"] = slope(
                        mine[1000][key], mine[4000][key], 1000, 4000)
    record = {"benchmark": "nnstd_pair", "rows": rows, "growth_exponents": growth,
              "previous_release_commit": previous_commit,
              "compiled_kernels": kernels_available(),
              "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                          "numpy": np.__version__, "scipy": scipy.__version__,
                          "processor": platform.processor() or platform.machine()}}
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "nnstd_pair.json", json.dumps(record, indent=2) + "\n")
    md = ["# NNSTD, one pair of 784-n-n-n-10 SET networks", "",
          "Made by `analysis/benchmarks/nnstd_pair.py` (wall time, best of 9 repeats up to "
          "width 1000, 3 at 2000, 1 at 4000; "
          f"{os.cpu_count()} CPUs shared with other work: the load average of each row says "
          "how much). Previous release: "
          f"{previous_commit or 'not measured'}; its time and this tree's were taken in turn. "
          f"Whole run: {seconds:.0f} s. `topo cpu` is the process CPU time of the best "
          "repeat (less inflated than wall time when other work shares the CPUs). "
          f"Compiled kernels built: {'yes' if kernels_available() else 'NO'}. `NumPy path` "
          "is the same call without them (an install without a C compiler); `same` says "
          "whether its per-layer values and matchings equal the compiled run's. `kernels`: "
          "per hidden layer, `compiled` (topo's solver with its dual), `lapmod` (LAPMOD with "
          "the compiled potentials; wide sparse layers), see "
          "`topo.assignment.KERNEL_PATHS`.",
          "",
          "| n | eps | load avg | topo (s) | topo cpu (s) | NumPy path (s) | same "
          "| previous release (s) "
          "| SciPy floor (s) | peak traced / max RSS (MiB) | target | solvers | kernels "
          "| tied units |",
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        target = TARGETS.get((r["n"], r["epsilon"]))
        verdict = "" if target is None else (
            f"<= {target} s: {'met' if r['topo_best_s'] <= target else 'NOT met'}")
        if r["n"] == 4000:
            verdict += (f"; <= 1 GB: "
                        f"{'met' if r['max_rss_mib'] <= MEMORY_TARGET_MIB else 'NOT met'}")
        md.append(
            f"| {r['n']} | {r['epsilon']} | {r['load_average']:.1f} | {r['topo_best_s']:.3f} "
            f"| {r['topo_cpu_best_s']:.3f} | {r['numpy_path_best_s']:.3f} "
            f"| {'yes' if r['same_as_numpy_path'] else 'NO'} "
            f"| {r.get('previous_best_s', float('nan')):.3f} "
            f"| {r.get('scipy_floor_best_s', float('nan')):.3f} "
            f"| {r['peak_traced_mib']:.0f} / {r['max_rss_mib']:.0f} | {verdict} "
            f"| {'/'.join(r['solvers'][:3])} | {'/'.join(r['kernels'][:3])} "
            f"| {sum(r['tied_units'])} |")
    md += ["", "Growth exponents (slope of log time against log n):", ""]
    for key, val in growth.items():
        md.append(f"- {key}: " + ", ".join(f"{k}: {v:.2f}" for k, v in val.items()))
    md += ["", "`previous release` keeps the solver's matching among ties, so its values "
           "from layer 1 on may differ from this tree's canonical choice (same layer-0 value; "
           "see the JSON for both).", ""]
    atomic_write_text(RESULTS / "nnstd_pair.md", "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
