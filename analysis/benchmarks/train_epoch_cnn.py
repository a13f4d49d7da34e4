"""Benchmark: one SET epoch of a 90 %-sparse CIFAR ResNet-20, masked-dense vs im2col + CSR.

How to run (from the repository root, a few minutes on 2 cores)::

    .venv/bin/python analysis/benchmarks/train_epoch_cnn.py            # 1,280 samples
    .venv/bin/python analysis/benchmarks/train_epoch_cnn.py --samples 50000   # all of CIFAR

Writes ``analysis/results/train_epoch_cnn.csv`` and ``analysis/results/train_epoch_cnn.md``.

What is measured: ResNet-20 (He et al. 2016, option A shortcuts, 0.27M weights) on random
CIFAR-sized pictures (32x32x3, 10 random classes), batch 128, SGD with momentum, torch with
2 threads; sparsity ERK at overall density 10 % (the output layer sparse too, as topo's
default). Each backend runs in a fresh subprocess: ``dense`` (each conv's kernel scattered
into a dense tensor, ``conv2d``; what ``auto`` uses for convs) and ``sparse`` (``unfold``
im2col, CSR product forward, CSR-transpose input gradient and ``sampled_addmm`` weight
gradient, the MLP's sparse kernels). Reported: the wall time of a whole epoch over
``--samples`` training pictures that starts with SET's rewiring and ends with the evaluation
on 1,000 test pictures, after a warm-up of 3 steps, the minimum and median of two epochs,
the time per training sample, that time scaled to CIFAR-10's 50,000 training pictures, and
the peak resident memory. The load average at the end is recorded beside the table: the
machine is shared and the times move with it.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"
N_TEST = 1_000
REPEATS = 2
BATCH = 128


def child(backend: str, samples: int, threads: int) -> None:
    """Run SET epochs of ResNet-20 in this process and print one JSON line."""
    import resource

    import numpy as np

    from topo.train.config import TrainConfig
    from topo.train.data import Dataset
    from topo.train.runner import build_trainer, torch_threads

    rng = np.random.default_rng(0)
    X = rng.random((samples + N_TEST, 32 * 32 * 3), dtype=np.float32)
    y = rng.integers(0, 10, samples + N_TEST)
    data = Dataset("random", X[:samples], y[:samples], None, None, X[samples:], y[samples:],
                   "classification", 10, (32, 32, 3))
    config = TrainConfig(method="set", model="resnet20", dataset="cifar10", epochs=2,
                         batch_size=BATCH, lr=0.01, backend=backend, threads=threads,
                         init_sparsity="erk", density=0.1)
    trainer = build_trainer(config, data)
    with torch_threads(threads):
        warm, times = _time_epochs(trainer)
    layers = trainer.model.layers
    best = min(times)
    print(json.dumps({
        "backend": backend, "threads": threads, "samples": samples,
        "paths": "".join("S" if lay.uses_sparse else "D" for lay in layers),
        "overall_density": sum(lay.n_connections for lay in layers)
        / sum(lay.size for lay in layers),
        "warmup_3_steps_s": warm, "epoch_min_s": best,
        "epoch_median_s": sorted(times)[len(times) // 2],
        "epochs_s": " ".join(f"{t:.2f}" for t in times),
        "ms_per_sample": 1000 * best / samples,
        "cifar_epoch_estimate_s": best / samples * 50_000,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }))


def _time_epochs(trainer) -> tuple[float, list[float]]:
    X_train, y_train = trainer.data.train
    start = time.perf_counter()
    for b in range(3):
        idx = slice(b * BATCH, (b + 1) * BATCH)
        loss = trainer.loss_fn(trainer.model(X_train[idx]), y_train[idx])
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
    warm = time.perf_counter() - start
    times = []
    for _ in range(REPEATS):
        trainer.epoch = 1   # each timed epoch is epoch 2: it starts with SET's rewiring
        start = time.perf_counter()
        trainer.train_epoch()
        times.append(time.perf_counter() - start)
    return warm, times


def main(samples: int) -> None:
    rows = []
    for backend in ("dense", "sparse"):
        out = subprocess.run(
            [sys.executable, __file__, "--child", backend, str(samples), "2"],
            capture_output=True, text=True, check=True, cwd=ROOT,
            env={**os.environ, "OMP_NUM_THREADS": "2"})
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(row, flush=True)
        rows.append(row)
        _write(rows, samples)   # after each backend: a stopped run keeps what it measured


def _write(rows: list[dict], samples: int) -> None:
    import pandas as pd

    RESULTS.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(rows).to_csv(RESULTS / "train_epoch_cnn.csv", index=False)
    load = os.getloadavg()
    lines = [
        f"# One SET epoch of ResNet-20 at 10 % density (ERK), {samples:,} CIFAR-sized "
        "pictures, batch 128, 2 threads",
        "",
        f"Made by `analysis/benchmarks/train_epoch_cnn.py` on {time.strftime('%Y-%m-%d')} "
        f"({os.cpu_count()} CPUs, load average {load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at "
        "the end; other jobs shared the machine, so compare the minima). epoch: SET rewiring "
        f"+ {-(-samples // BATCH)} training steps + evaluation on {N_TEST:,} pictures; the "
        "CIFAR-10 column scales the minimum to 50,000 training pictures. paths: D = "
        "masked-dense conv2d, S = im2col + CSR, per layer (20 layers).",
        "",
        "| backend | paths | density | epoch min (s) | epoch median (s) | epochs (s) "
        "| ms / sample | CIFAR-10 epoch (s, scaled) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['backend']} | {r['paths']} | {r['overall_density']:.3f} | "
                     f"{r['epoch_min_s']:.2f} | {r['epoch_median_s']:.2f} | {r['epochs_s']} | "
                     f"{r['ms_per_sample']:.2f} | {r['cifar_epoch_estimate_s']:.0f} | "
                     f"{r['peak_rss_mb']:.0f} |")
    if len(rows) < 2:
        lines += ["", "(the sparse backend has not finished yet)"]
        (RESULTS / "train_epoch_cnn.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
        return
    dense, sparse = rows
    faster = "masked-dense" if dense["epoch_min_s"] <= sparse["epoch_min_s"] else "im2col + CSR"
    ratio = max(dense["epoch_min_s"], sparse["epoch_min_s"]) / min(dense["epoch_min_s"],
                                                                    sparse["epoch_min_s"])
    lines += ["", f"Faster here: {faster}, by a factor {ratio:.2f} (minimum epoch times)."]
    (RESULTS / "train_epoch_cnn.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    else:
        parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
        parser.add_argument("--samples", type=int, default=1_280,
                            help="training pictures per epoch (default 1,280, ten steps; "
                                 "CIFAR-10 has 50,000)")
        main(parser.parse_args().samples)
