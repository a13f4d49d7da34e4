"""NNSTD chance levels: the distance of two unrelated random networks of given sizes.

Run from the repository root::

    .venv/bin/python analysis/benchmarks/nnstd_chance_levels.py [--samples 20]

Writes ``analysis/results/nnstd_chance_levels.json`` and ``.md``.

Cases (:func:`topo.nnstd_chance`, default mode and ``reference=True``, connection counts kept,
and in-degree sequences kept):

- the ten published SET networks of Liu et al. (784-784-784-784-10, about 0.6 % dense hidden
  layers, dense output layer; ``../shared/external/nnstd-set-topologies``), pair w0 / w9 at
  epochs 0 and 190, beside their measured NNSTD (skipped when the data are absent);
- digits-sized SET networks (64-100-100-10) at epsilon = 5 and 20 (Erdős–Rényi densities of
  Mocanu et al. 2018);
- MNIST-sized SET networks (784-1000-1000-1000-10) at epsilon = 5 and 20.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

import topo
from topo.graph import LayeredGraph
from topo.io.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"
PUBLISHED = ROOT.parent / "shared" / "external" / "nnstd-set-topologies"


def set_network(widths: list[int], epsilon: float, rng: np.random.Generator) -> LayeredGraph:
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        p = min(1.0, epsilon * (n_in + n_out) / (n_in * n_out))
        rows, cols = np.nonzero(rng.random((n_out, n_in)) < p)
        layers.append(sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_out, n_in)))
    return LayeredGraph(layers)


def cases() -> list[tuple[str, LayeredGraph, LayeredGraph]]:
    out = []
    if PUBLISHED.is_dir():
        for epoch in (0, 190):
            a = topo.load(PUBLISHED / "e5_s0_w0" / f"epoch_{epoch:03d}")
            b = topo.load(PUBLISHED / "e5_s0_w9" / f"epoch_{epoch:03d}")
            out.append((f"published w0 vs w9, epoch {epoch}", a, b))
    rng = np.random.default_rng(0)
    for widths in ([64, 100, 100, 10], [784, 1000, 1000, 1000, 10]):
        for eps in (5, 20):
            name = f"{'-'.join(map(str, widths))} SET eps={eps}"
            out.append((name, set_network(widths, eps, rng), set_network(widths, eps, rng)))
    return out


def fmt(values, ses) -> str:
    return ", ".join(f"{v:.4f} ± {s:.4f}" for v, s in zip(values, ses))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=20)
    args = parser.parse_args()
    load = os.getloadavg()
    record: dict = {"benchmark": "nnstd_chance_levels", "n_samples": args.samples,
                    "machine": {"cpus": os.cpu_count(), "load_average_at_start": load,
                                "python": platform.python_version()},
                    "cases": []}
    md = ["# NNSTD chance levels", "",
          f"Made by `analysis/benchmarks/nnstd_chance_levels.py` ({args.samples} random pairs "
          f"per estimate, seed 0; load average {load[0]:.1f} when started). Values are "
          "mean ± standard error per layer (input side first); `sparse mean` leaves out "
          "layers that are dense in both networks (they always score 0).", "",
          "| pair | mode | NNSTD of the pair | chance (counts kept) | chance (in-degrees kept) "
          "| sparse mean: pair / chance | seconds |",
          "|---|---|---|---|---|---|---|"]
    for name, a, b in cases():
        for reference in (False, True):
            t = time.perf_counter()
            measured = topo.nnstd(a, b, reference=reference)
            counts = topo.nnstd_chance(a, b, n_samples=args.samples, seed=0,
                                       reference=reference)
            degrees = topo.nnstd_chance(a, b, n_samples=args.samples, seed=0, degrees=True,
                                        reference=reference)
            seconds = time.perf_counter() - t
            mode = "reference" if reference else "default"
            record["cases"].append({
                "pair": name, "mode": mode, "widths": a.widths, "densities": a.densities,
                "nnstd": measured.per_layer.tolist(),
                "nnstd_sparse_mean": measured.sparse_distance,
                "chance": counts.per_layer.tolist(), "chance_se": counts.per_layer_se.tolist(),
                "chance_sparse_mean": counts.sparse_distance,
                "chance_sparse_mean_se": counts.sparse_distance_se,
                "chance_degrees": degrees.per_layer.tolist(),
                "chance_degrees_se": degrees.per_layer_se.tolist(),
                "seconds": seconds,
            })
            md.append(f"| {name} | {mode} | {', '.join(f'{v:.4f}' for v in measured.per_layer)}"
                      f" | {fmt(counts.per_layer, counts.per_layer_se)}"
                      f" | {fmt(degrees.per_layer, degrees.per_layer_se)}"
                      f" | {measured.sparse_distance:.4f} / {counts.sparse_distance:.4f} ± "
                      f"{counts.sparse_distance_se:.4f} | {seconds:.1f} |")
            print(md[-1], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "nnstd_chance_levels.json", json.dumps(record, indent=2) + "\n")
    atomic_write_text(RESULTS / "nnstd_chance_levels.md", "\n".join(md) + "\n")


if __name__ == "__main__":
    main()
