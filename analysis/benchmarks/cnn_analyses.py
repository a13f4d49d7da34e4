"""Analyses of sparse convolutional and residual networks: time per call, and chance levels.

Run from the repository root::

    .venv/bin/python analysis/benchmarks/cnn_analyses.py [--repeats 3] [--samples 10]

Writes ``analysis/results/cnn_analyses.json`` and ``.md``.

Networks (random weights, every kernel element kept with probability ``density``; the
wiring of the real architectures: a stem writing the first stream, basic blocks adding back
into it, projection shortcuts writing the next stream with the block's second conv):

- CIFAR ResNet-20 (16/32/64 channels, 3x3 kernels, 1x1 projection shortcuts, 10 classes);
- torchvision-style ResNet-18 (7x7 stem, 64/128/256/512 channels, 1000 classes);

at 10 % density (90 % sparsity). Per network: the best of ``repeats`` wall times of
``topo.nnstd`` of two independent draws, ``topo.mask_overlap`` with its matchings,
``topo.neural_persistence`` and ``topo.topology_evolution`` of the two as a sequence, and
the NNSTD chance level (``samples`` pairs) with its standard error beside the measured
distance of the two draws, which is one sample of what the chance level averages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

import topo
from topo.graph import LayeredGraph, LayerGeometry
from topo.io.atomic import atomic_write_text

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"


def resnet(stem: tuple[int, int], stages: list[int], blocks: int, n_classes: int,
           density: float, rng: np.random.Generator) -> LayeredGraph:
    """A residual network of basic blocks with the given stem (channels, kernel) and stages."""
    layers, geometry, reads, writes, names = [], [], [], [], []
    counter = [1]

    def new_set() -> int:
        counter[0] += 1
        return counter[0]

    def conv(n_out: int, n_in: int, k: int, r: int, w: int, name: str) -> None:
        shape = (n_out, n_in, k, k)
        layers.append((rng.random(shape) < density) * rng.normal(size=shape))
        geometry.append(LayerGeometry.conv((k, k)))
        reads.append(r)
        writes.append(w)
        names.append(name)

    channels, kernel = stem
    conv(channels, 3, kernel, 0, 1, "conv1")
    stream = 1
    for s, width in enumerate(stages):
        for b in range(blocks):
            hidden = new_set()
            prefix = f"layer{s + 1}.{b}"
            if width != channels:
                target = new_set()
                conv(width, channels, 3, stream, hidden, f"{prefix}.conv1")
                conv(width, width, 3, hidden, target, f"{prefix}.conv2")
                conv(width, channels, 1, stream, target, f"{prefix}.downsample.0")
                stream, channels = target, width
            else:
                conv(width, width, 3, stream, hidden, f"{prefix}.conv1")
                conv(width, width, 3, hidden, stream, f"{prefix}.conv2")
    layers.append((rng.random((n_classes, channels)) < density) * rng.normal(
        size=(n_classes, channels)))
    geometry.append(LayerGeometry.linear())
    reads.append(stream)
    writes.append(new_set())
    names.append("fc")
    return LayeredGraph(layers, names=names, geometry=geometry, reads=reads, writes=writes)


NETWORKS = {
    "ResNet-20 (CIFAR)": dict(stem=(16, 3), stages=[16, 32, 64], blocks=3, n_classes=10),
    "ResNet-18 (torchvision)": dict(stem=(64, 7), stages=[64, 128, 256, 512], blocks=2,
                                    n_classes=1000),
}


def best_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--density", type=float, default=0.1)
    args = parser.parse_args()
    rows = []
    for name, spec in NETWORKS.items():
        rng = np.random.default_rng(0)
        a = resnet(**spec, density=args.density, rng=rng)
        b = resnet(**spec, density=args.density, rng=rng)
        result = topo.nnstd(a, b)
        row = {
            "network": name,
            "layers": a.n_layers,
            "connections": int(sum(a.n_connections)),
            "unit_connections": int(sum(a.n_unit_connections)),
            "nnstd_s": best_time(lambda a=a, b=b: topo.nnstd(a, b), args.repeats),
            "overlap_s": best_time(
                lambda a=a, b=b, m=result.matchings: topo.mask_overlap(a, b, m), args.repeats),
            "persistence_s": best_time(lambda a=a: topo.neural_persistence(a), args.repeats),
            "evolution_s": best_time(lambda a=a, b=b: topo.topology_evolution([a, b]),
                                     args.repeats),
            "nnstd": result.distance,
        }
        chance = topo.nnstd_chance(a, b, n_samples=args.samples, seed=1)
        row["nnstd_chance"] = chance.distance
        row["nnstd_chance_se"] = chance.distance_se
        rows.append(row)
        print(row, flush=True)
    meta = {"machine": platform.machine(), "cpus": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__,
            "density": args.density, "repeats": args.repeats, "samples": args.samples}
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "cnn_analyses.json",
                      json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    lines = [
        "# Analyses of sparse residual networks",
        "",
        f"Density {args.density:g} (every kernel element kept independently), random weights, "
        f"two independent draws per network; best of {args.repeats} runs, "
        f"{meta['cpus']} CPUs. `analysis/benchmarks/cnn_analyses.py`.",
        "",
        "| network | layers | kernel elements | unit-graph connections | NNSTD s | overlap s "
        "| neural persistence s | evolution (2 snapshots) s | NNSTD | chance level |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        chance = f"{r['nnstd_chance']:.4f} ± {r['nnstd_chance_se']:.4f}"
        lines.append(
            f"| {r['network']} | {r['layers']} | {r['connections']} | {r['unit_connections']} "
            f"| {r['nnstd_s']:.3f} | {r['overlap_s']:.3f} | {r['persistence_s']:.3f} "
            f"| {r['evolution_s']:.3f} | {r['nnstd']:.4f} | {chance} |")
    atomic_write_text(RESULTS / "cnn_analyses.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
