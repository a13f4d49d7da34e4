"""Speed of neural persistence and of the pairwise interaction scores on a large sparse network.

How to run (from the repository root, on an otherwise idle machine)::

    .venv/bin/python analysis/benchmarks/persistence_speed.py

Builds a random 4 %-sparse 784-1000-1000-1000-10 network (every layer an Erdos-Renyi mask of
density 0.04, standard normal weights, seed 0) directly as a LayeredGraph, and times, with a
warm-up call and then ``--repeats`` calls (median and minimum reported):

- ``neural_persistence`` (all four layers; target <= 0.03 s),
- ``interaction_matrix`` for ``nid``, ``ph``, ``ph2`` and ``ph2n`` (the p x p pairwise scores;
  target <= 0.1 s),
- ``interaction_strengths`` pairwise for ``nid``, ``ph`` and ``ph2n`` (the same plus the ranked
  table of all 306,936 pairs as Python tuples),
- ``interaction_strengths`` any order for ``ph`` (no target; reported for information),

and two straightforward baselines, measured once each and checked to give the same numbers:
neural persistence with ``networkx.maximum_spanning_tree`` per layer, and NID's pairwise
matrix by dense broadcasting over all hidden units and feature pairs
(``sum_h z_h min(|W1[h, i]|, |W1[h, j]|)`` for every pair, in blocks of feature ``i``).

Reference points quoted in the issue, not re-measured here: the published C++ neural
persistence takes about 2.4 s and the published NID code about 7.6 s (pairwise) on such a
network. Results go to ``analysis/results/persistence_speed.csv`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

ROOT = Path(__file__).resolve().parents[2]
WIDTHS = [784, 1000, 1000, 1000, 10]
DENSITY = 0.04


def build_network(seed: int = 0):
    """The random 4 %-sparse 784-1000-1000-1000-10 network as a LayeredGraph."""
    from topo.graph import LayeredGraph

    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(WIDTHS[:-1], WIDTHS[1:]):
        mask = rng.random((n_out, n_in)) < DENSITY
        rows, cols = np.nonzero(mask)
        layers.append(sp.csr_matrix((rng.standard_normal(rows.size), (rows, cols)),
                                    shape=(n_out, n_in)))
    return LayeredGraph(layers)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--any-repeats", type=int, default=1)
    parser.add_argument("--out", default=str(ROOT / "analysis" / "results" / "persistence_speed"))
    args = parser.parse_args(argv)

    from topo.interactions import interaction_matrix, interaction_strengths
    from topo.persistence import neural_persistence

    graph = build_network()
    cases = [
        ("neural_persistence", lambda: neural_persistence(graph), 0.03, args.repeats),
        ("interaction_matrix nid", lambda: interaction_matrix(graph, method="nid"), 0.1,
         args.repeats),
        ("interaction_matrix ph", lambda: interaction_matrix(graph, method="ph"), 0.1,
         args.repeats),
        ("interaction_matrix ph2", lambda: interaction_matrix(graph, method="ph2"), 0.1,
         args.repeats),
        ("interaction_matrix ph2n", lambda: interaction_matrix(graph, method="ph2n"), 0.1,
         args.repeats),
        ("interaction_strengths pairwise nid (table)",
         lambda: interaction_strengths(graph, method="nid"), None, args.repeats),
        ("interaction_strengths pairwise ph (table)",
         lambda: interaction_strengths(graph, method="ph"), None, args.repeats),
        ("interaction_strengths pairwise ph2n (table)",
         lambda: interaction_strengths(graph, method="ph2n"), None, args.repeats),
        ("interaction_strengths any-order ph",
         lambda: interaction_strengths(graph, method="ph", order="any"), None,
         args.any_repeats),
    ]
    rows = []
    for name, fn, target, repeats in cases:
        fn()  # warm-up: imports and first-touch allocations
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        rows.append({"operation": name, "repeats": repeats,
                     "median_s": statistics.median(times), "min_s": min(times),
                     "target_s": target,
                     "meets_target": None if target is None else
                     bool(statistics.median(times) <= target)})
        print(f"{name}: median {rows[-1]['median_s']:.4f} s, min {rows[-1]['min_s']:.4f} s",
              flush=True)
    rows += _baselines(graph)
    table = pd.DataFrame(rows)
    out = Path(args.out)
    from topo.io.atomic import atomic_write_text

    atomic_write_text(out.with_suffix(".csv"), table.to_csv(index=False))
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    machine = (f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs "
               f"(load average {load} at the end: other work was sharing them), "
               f"Python {platform.python_version()}, numpy {np.__version__}, "
               f"scipy {__import__('scipy').__version__}")
    lines = [
        "# Speed of neural persistence and pairwise interaction scores",
        "",
        "Command: `.venv/bin/python analysis/benchmarks/persistence_speed.py"
        + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:])) + "`",
        "",
        f"Network: random {DENSITY:.0%}-sparse {'-'.join(map(str, WIDTHS))} "
        f"({sum(graph.n_connections)} connections, seed 0). Machine: {machine}.",
        "",
        "| operation | repeats | median (s) | min (s) | target (s) | meets target |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['operation']} | {r['repeats']} | {r['median_s']:.4f} | "
                     f"{r['min_s']:.4f} | {'' if r['target_s'] is None else r['target_s']} | "
                     f"{'' if r['meets_target'] is None else r['meets_target']} |")
    lines += ["", "Reference (from the issue, not re-measured): published C++ neural "
              "persistence about 2.4 s, published NID code about 7.6 s pairwise, on such a "
              "network.", ""]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines))
    return 0


def _baselines(graph) -> list[dict]:
    """Time the networkx and dense-numpy baselines once and check they agree with topo."""
    import networkx as nx

    from topo.interactions import interaction_matrix, unit_importance
    from topo.persistence import neural_persistence, normalized_abs_weights

    layers, _ = normalized_abs_weights(graph)
    start = time.perf_counter()
    totals = []
    for a in layers:
        coo = a.tocoo()
        g = nx.Graph()
        n_out, n_in = a.shape
        g.add_nodes_from(range(n_in + n_out))
        g.add_weighted_edges_from(zip(coo.col.tolist(), (coo.row + n_in).tolist(),
                                      coo.data.tolist()))
        tree = nx.maximum_spanning_tree(g)
        deaths = np.array([w for _, _, w in tree.edges(data="weight")])
        components = n_in + n_out - deaths.size
        totals.append(np.sqrt(np.sum((1 - deaths) ** 2) + components))
    nx_time = time.perf_counter() - start
    np.testing.assert_allclose(totals, neural_persistence(graph).total_persistence)

    a1 = np.abs(graph.layers[0].toarray())
    start = time.perf_counter()
    z = unit_importance(graph, method="nid")
    p = a1.shape[1]
    dense = np.zeros((p, p))
    for i in range(p):  # one block of pairs (i, j > i) at a time
        dense[i, i + 1:] = np.minimum(a1[:, i:i + 1], a1[:, i + 1:]).T @ z
    dense_time = time.perf_counter() - start
    np.testing.assert_allclose(np.triu(interaction_matrix(graph, method="nid"), 1), dense,
                               rtol=1e-9, atol=1e-12)
    timed = (("baseline: networkx maximum_spanning_tree neural persistence", nx_time),
             ("baseline: NID pairwise by dense broadcasting", dense_time))
    for name, value in timed:
        print(f"{name}: {value:.4f} s", flush=True)
    return [{"operation": name, "repeats": 1, "median_s": value, "min_s": value,
             "target_s": None, "meets_target": None} for name, value in timed]


if __name__ == "__main__":
    raise SystemExit(main())
