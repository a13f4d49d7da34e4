"""Benchmark: one SET epoch of a 784-1000-1000-1000-10 MLP, masked-dense vs true-sparse.

How to run (from the repository root, about 3-4 minutes on 2 cores)::

    .venv/bin/python analysis/benchmarks/train_epoch.py

Writes ``analysis/results/train_epoch.csv`` and ``analysis/results/train_epoch.md``.

What is measured: 60,000 random 784-feature samples with random labels of 10 classes,
batch 128, SGD with momentum, ReLU, torch with 2 threads. Sparsity is Erdős–Rényi at ε = 20
(SET's setting: densities 4.5 %, 4 %, 4 % and a dense 1000 -> 10 layer, which ER caps at 1)
and ERK at overall densities 1 %, 2 %, 5 %, 10 %, 20 % and 30 % (the last two bracket the
trainer's automatic switch to the dense path above 20 %). For each, the ``dense`` backend
(weights scattered into a dense matrix, dense ``linear``) and the ``sparse`` backend (CSR
forward, CSR-transpose input gradient, ``torch.sparse.sampled_addmm`` weight gradient) run
in a fresh subprocess with 2 threads, and so does ``auto`` (the trainer's own choice per
layer) for ε = 20, with 2 threads and with 1 (on a shared, busy machine one thread is often
faster: two threads wait for each other when the cores are taken).
Reported: the wall time of a whole epoch that starts with SET's rewiring (as every epoch
after the first does) and ends with the evaluation on 10,000 test samples, after a warm-up
of 20 steps, run three times: the minimum (the cost of the code, least disturbed by other
processes on a shared machine) and the median; and the peak resident memory of the process
(data included: the 70,000 samples alone take 220 MB).

The machine is shared, so times vary; the script runs every configuration once and records
the load average next to the table.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"
ARCH = [784, 1000, 1000, 1000, 10]
N_TRAIN, N_TEST = 60_000, 10_000
REPEATS = 3


def child(backend: str, density: float | None, threads: int) -> None:
    """Run two SET epochs in this process and print one JSON line of measurements."""
    import resource

    import numpy as np

    from topo.train.config import TrainConfig
    from topo.train.data import Dataset
    from topo.train.runner import build_trainer, torch_threads

    rng = np.random.default_rng(0)
    X = rng.random((N_TRAIN + N_TEST, ARCH[0]), dtype=np.float32)
    y = rng.integers(0, 10, N_TRAIN + N_TEST)
    data = Dataset("random", X[:N_TRAIN], y[:N_TRAIN], None, None, X[N_TRAIN:], y[N_TRAIN:],
                   "classification", 10, (28, 28))
    rss_data = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    kw = {"init_sparsity": "er", "epsilon": 20.0} if density is None else {
        "init_sparsity": "erk", "density": density}
    config = TrainConfig(method="set", dataset="digits", arch=ARCH, epochs=2, batch_size=128,
                         lr=0.01, backend=backend, threads=threads, **kw)
    trainer = build_trainer(config, data)
    with torch_threads(threads):
        warm, times = _time_epochs(trainer)
    layers = trainer.model.layers
    print(json.dumps({
        "sparsity": "ER eps=20" if density is None else f"ERK {density:.0%}",
        "backend": backend,
        "paths": "/".join("S" if lay.uses_sparse else "D" for lay in layers),
        "layer_densities": "/".join(f"{lay.density:.3f}" for lay in layers),
        "overall_density": sum(lay.n_connections for lay in layers)
        / sum(lay.n_in * lay.n_out for lay in layers),
        "warmup_20_steps_s": warm, "epoch_min_s": min(times),
        "epoch_median_s": sorted(times)[len(times) // 2],
        "epochs_s": " ".join(f"{t:.2f}" for t in times),
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_after_data_mb": rss_data,
        "threads": threads,
    }))


def _time_epochs(trainer) -> tuple[float, list[float]]:
    """Warm up (thread pools, allocator) on 20 batches, then time whole epochs; setting the
    epoch counter to 1 makes each epoch 2, which starts with SET's rewiring."""
    X_train, y_train = trainer.data.train
    warm_start = time.perf_counter()
    for b in range(20):
        idx = slice(b * 128, (b + 1) * 128)
        loss = trainer.loss_fn(trainer.model(X_train[idx]), y_train[idx])
        trainer.optimizer.zero_grad()
        loss.backward()
        trainer.optimizer.step()
    warm = time.perf_counter() - warm_start
    times = []
    for _ in range(REPEATS):
        trainer.epoch = 1
        start = time.perf_counter()
        trainer.train_epoch()
        times.append(time.perf_counter() - start)
    return warm, times


def main() -> None:
    import pandas as pd

    cases = [(None, "dense", 2), (None, "sparse", 2), (None, "auto", 2), (None, "auto", 1)]
    # 1-10 %: the densities; 20 % and 30 %: where the auto threshold (20 %) sits
    for d in (0.01, 0.02, 0.05, 0.10, 0.20, 0.30):
        cases += [(d, "dense", 2), (d, "sparse", 2)]
    rows = []
    for density, backend, threads in cases:
        out = subprocess.run(
            [sys.executable, __file__, "--child", backend, str(density), str(threads)],
            capture_output=True, text=True, check=True, cwd=ROOT,
            env={**os.environ, "OMP_NUM_THREADS": "2"})
        row = json.loads(out.stdout.strip().splitlines()[-1])
        print(row, flush=True)
        rows.append(row)
    df = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    df.to_csv(RESULTS / "train_epoch.csv", index=False)
    load = os.getloadavg()
    lines = [
        "# One SET epoch of 784-1000-1000-1000-10, 60,000 samples, batch 128, 2 threads",
        "",
        f"Made by `analysis/benchmarks/train_epoch.py` on {time.strftime('%Y-%m-%d')} "
        f"({os.cpu_count()} CPUs, load average during the run "
        f"{load[0]:.1f}/{load[1]:.1f}/{load[2]:.1f} at the end; other jobs shared the "
        "machine, so the minimum of three epochs is the figure to compare). epoch: SET "
        "rewiring + 469 training steps + evaluation on 10,000 samples. paths: D = "
        "masked-dense, S = CSR, per layer.",
        "",
        "| sparsity | backend | threads | paths | layer densities | epoch min (s) "
        "| epoch median (s) | epochs (s) | peak RSS (MB) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        lines.append(f"| {r['sparsity']} | {r['backend']} | {r['threads']} | {r['paths']} | "
                     f"{r['layer_densities']} | {r['epoch_min_s']:.2f} | "
                     f"{r['epoch_median_s']:.2f} | {r['epochs_s']} | "
                     f"{r['peak_rss_mb']:.0f} |")
    (RESULTS / "train_epoch.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], None if sys.argv[3] == "None" else float(sys.argv[3]),
              int(sys.argv[4]))
    else:
        main()
