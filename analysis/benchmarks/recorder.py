"""What topo.Recorder costs a training loop: update() and snapshot() on ~1M-connection models.

Run from the repository root::

    .venv/bin/python analysis/benchmarks/recorder.py [--repeats 30]

Writes ``analysis/results/recorder.json`` and ``.md``.

Models: MLPs 784-w-w-10 whose hidden width w makes about one million connections at overall
densities 0.5, 0.2, 0.1 and 0.05 (2, 5, 10 and 20 million possible connections), with their
sparsity in each of the recorder's routes:

- ``prune``: ``torch.nn.utils.prune`` buffers (float masks);
- ``masks``: a dict of boolean masks kept by the training code;
- ``zeros``: plain weights with zeros.

Timed (median over ``--repeats`` calls, one process, after a warm-up call; wall-clock time
and the process's CPU time):

- ``update`` with the structure unchanged (a call after an optimizer step: every call);
- ``update`` after RigL-like drop-and-grow of 1 % of every layer's connections;
- ``snapshot`` in total, its writes (the snapshot file, ``metrics.jsonl`` and
  ``updates.jsonl``, each atomic with fsync), and the rest ("beyond the write": reading the
  module, the graph, the metrics row). The target: under 50 ms beyond the write, and under
  5 ms per ``update``, for a 1M-connection model.

The numbers depend on the machine's memory bandwidth and load; the load average and the CPU
count are recorded with them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn.utils import prune

import topo
from topo.io.atomic import atomic_write_text
from topo.io.run import RunWriter

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"
CONNECTIONS = 1_000_000
DENSITIES = (0.5, 0.2, 0.1, 0.05)
ROUTES = ("prune", "masks", "zeros")


def hidden_width(density: float) -> int:
    """w with density * (784 w + w^2 + 10 w) closest to CONNECTIONS."""
    target = CONNECTIONS / density
    return int(round((-794 + np.sqrt(794 ** 2 + 4 * target)) / 2))


def model_for(route: str, density: float, seed: int = 0):
    torch.manual_seed(seed)
    w = hidden_width(density)
    model = nn.Sequential(nn.Linear(784, w), nn.ReLU(), nn.Linear(w, w), nn.ReLU(),
                          nn.Linear(w, 10))
    layers = [m for m in model if isinstance(m, nn.Linear)]
    masks = {}
    g = torch.Generator().manual_seed(seed)
    for k, layer in enumerate(layers):
        keep = torch.rand(layer.weight.shape, generator=g) < density
        if route == "prune":
            prune.custom_from_mask(layer, "weight", keep.float())
        elif route == "masks":
            masks[str(2 * k)] = keep
        else:
            with torch.no_grad():
                layer.weight.mul_(keep)
    return model, layers, masks


def rewire(route: str, layers, masks, g: torch.Generator) -> None:
    """Drop 1 % of each layer's connections and grow as many elsewhere (in place)."""
    for k, layer in enumerate(layers):
        if route == "prune":
            mask = layer.weight_mask
        elif route == "masks":
            mask = masks[str(2 * k)]
        else:
            mask = layer.weight.data
        flat = mask.view(-1)
        on = torch.nonzero(flat).flatten()
        off = torch.nonzero(flat == 0).flatten()
        n = max(1, on.numel() // 100)
        drop = on[torch.randperm(on.numel(), generator=g)[:n]]
        grow = off[torch.randperm(off.numel(), generator=g)[:n]]
        with torch.no_grad():
            flat[drop] = 0
            flat[grow] = 1 if route != "zeros" else 0.01


def median_ms(values: list[float]) -> float:
    return float(np.median(values) * 1e3)


class Clock:
    """Wall time and this process's CPU time (all its threads) of what runs between
    :meth:`start` and :meth:`stop`. On a loaded machine the wall time includes the time the
    process waited for a CPU; its CPU time does not (cache and memory contention remain)."""

    def __init__(self) -> None:
        self.wall: list[float] = []
        self.cpu: list[float] = []

    def start(self) -> None:
        self._wall, self._cpu = time.perf_counter(), time.process_time()

    def stop(self) -> None:
        self.wall.append(time.perf_counter() - self._wall)
        self.cpu.append(time.process_time() - self._cpu)


def bench(route: str, density: float, repeats: int, folder: Path) -> dict:
    model, layers, masks = model_for(route, density)
    rec = topo.Recorder(model, folder / f"{route}-{density}", masks=masks or None)
    connections = sum(int(c) for c in rec.graph().n_connections)
    positions = sum(a * b for a, b in zip(rec.widths[:-1], rec.widths[1:]))
    rec.update()
    unchanged = Clock()
    for _ in range(repeats):
        unchanged.start()
        rec.update()
        unchanged.stop()
    g = torch.Generator().manual_seed(1)
    changed = Clock()
    for _ in range(max(5, repeats // 3)):
        rewire(route, layers, masks, g)
        changed.start()
        rec.update()
        changed.stop()
    writes = Clock()   # summed over the writes of one snapshot call
    timed = RunWriter.save_snapshot, RunWriter.write_metrics, RunWriter.write_updates

    def timing(method):
        def wrapper(self, *args, **kwargs):
            wall, cpu = time.perf_counter(), time.process_time()
            try:
                return method(self, *args, **kwargs)
            finally:
                writes.wall[-1] += time.perf_counter() - wall
                writes.cpu[-1] += time.process_time() - cpu
        return wrapper

    RunWriter.save_snapshot, RunWriter.write_metrics, RunWriter.write_updates = (
        timing(m) for m in timed)
    totals = Clock()
    try:
        for epoch in range(max(5, repeats // 3)):
            writes.wall.append(0.0)
            writes.cpu.append(0.0)
            totals.start()
            rec.snapshot(epoch=epoch, metrics={"loss": 1.0})
            totals.stop()
    finally:
        RunWriter.save_snapshot, RunWriter.write_metrics, RunWriter.write_updates = timed
    rec.close()
    beyond = [t - w for t, w in zip(totals.wall, writes.wall)]
    beyond_cpu = [t - w for t, w in zip(totals.cpu, writes.cpu)]
    return {
        "route": route, "density": density, "widths": rec.widths,
        "connections": connections, "positions": positions,
        "update_unchanged_ms": median_ms(unchanged.wall),
        "update_unchanged_cpu_ms": median_ms(unchanged.cpu),
        "update_after_rewiring_ms": median_ms(changed.wall),
        "update_after_rewiring_cpu_ms": median_ms(changed.cpu),
        "snapshot_total_ms": median_ms(totals.wall),
        "snapshot_writes_ms": median_ms(writes.wall),
        "snapshot_beyond_write_ms": median_ms(beyond),
        "snapshot_beyond_write_cpu_ms": median_ms(beyond_cpu),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    results = []
    load_at_start = os.getloadavg()
    with tempfile.TemporaryDirectory() as tmp:
        for density in DENSITIES:
            for route in ROUTES:
                row = bench(route, density, args.repeats, Path(tmp))
                results.append(row)
                print(json.dumps(row))
    machine = {
        "python": platform.python_version(), "torch": torch.__version__,
        "numpy": np.__version__, "platform": platform.platform(),
        "cpus": os.cpu_count(), "torch_threads": torch.get_num_threads(),
        "load_average_at_start": load_at_start, "load_average": os.getloadavg(),
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "recorder.json",
                      json.dumps({"machine": machine, "results": results}, indent=2) + "\n")
    lines = [
        "# topo.Recorder: cost per call on ~1M-connection models",
        "",
        "`analysis/benchmarks/recorder.py`; medians in milliseconds on "
        f"{machine['cpus']} CPUs (1-minute load average {load_at_start[0]:.1f} at the start, "
        f"{machine['load_average'][0]:.1f} at the end), torch {machine['torch']} with "
        f"{machine['torch_threads']} threads.",
        "",
        "Wall-clock medians; in brackets the process's CPU time (all threads), which leaves "
        "out the time spent waiting for a CPU on a loaded machine.",
        "",
        "| density | possible | connections | route | update (unchanged) | update (1 % "
        "rewired) | snapshot total | its writes | beyond the write |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r['density']} | {r['positions'] / 1e6:.1f} M | {r['connections']:,} | "
            f"{r['route']} | {r['update_unchanged_ms']:.1f} "
            f"({r['update_unchanged_cpu_ms']:.1f}) | {r['update_after_rewiring_ms']:.1f} "
            f"({r['update_after_rewiring_cpu_ms']:.1f}) | {r['snapshot_total_ms']:.1f} | "
            f"{r['snapshot_writes_ms']:.1f} | {r['snapshot_beyond_write_ms']:.1f} "
            f"({r['snapshot_beyond_write_cpu_ms']:.1f}) |")
    atomic_write_text(RESULTS / "recorder.md", "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
