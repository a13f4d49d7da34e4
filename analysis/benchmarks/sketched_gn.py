"""Benchmark: sketched Gauss-Newton against SGD and Adam on a two-layer regression task.

How to run (from the repository root; 2 cores: a few minutes on a quiet machine)::

    .venv/bin/python analysis/benchmarks/sketched_gn.py

Writes ``analysis/results/sketched_gn.csv`` and ``analysis/results/sketched_gn.md``.

The task (Brand, Peng, Song & Weinstein 2021's setting): ``n = 512`` samples with ``d = 10``
standard normal features, targets from a random two-layer ReLU teacher of width 10
(standardised), and a student ``f(x) = Σ_r a_r relu(w_r · x)`` of width ``m`` whose output
weights ``a_r = ±1/√m`` and biases stay fixed while the first layer ``W`` (``m d``
parameters, He-uniform initialisation) is trained, full batch, on the mean squared error.
Every optimiser trains the same parameters from the same initialisation:

- ``sketched-gn``: topo's :class:`~topo.train.steps.SketchedGaussNewtonStep` with the full
  step (lr 1), a CountSketch of ``4n`` rows, conjugate gradient to a relative residual of
  1e-6 or 50 iterations;
- ``exact-gn``: the same step with ``J`` formed and ``(J Jᵀ + λI) g = r`` solved by
  Cholesky (the dense baseline the sketch avoids; ``O(n² m d + n³)``);
- ``sgd`` (momentum 0.9) and ``adam``: each with the best learning rate of a small grid
  (1e-3 ... 1, chosen by the fewest iterations to the target, then the lowest final loss;
  once a rate has reached the target, the others run at most as many iterations, which
  cannot change the choice).

Measured per width ``m`` in 64, 256, 1024, 4096: the time of one iteration (median of the
iterations of a 20-iteration run after a warm-up iteration, 5 for ``exact-gn``; 1 torch
thread), and the number of iterations (and seconds) each optimiser needs to bring the
training MSE to 1e-3 of its initial value, within 50 iterations for the Gauss-Newton steps
and 3000 for SGD and Adam. The
machine is shared, so times vary; the load average is written next to the table.
"""

from __future__ import annotations

import os
import statistics
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "analysis" / "results"
N, D, TEACHER = 512, 10, 10
WIDTHS = (64, 256, 1024, 4096)
TARGET = 1e-3
MAX_GN, MAX_FIRST_ORDER = 50, 3000
LR_GRID = (1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0)


def task(seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(N, D, generator=g)
    w = torch.randn(TEACHER, D, generator=g)
    a = torch.randn(TEACHER, generator=g)
    y = torch.relu(x @ w.t()) @ a
    return x, (y - y.mean()) / y.std()


def student(m: int, seed: int = 1):
    from topo.train.model import SparseLinear, SparseMLP

    g = torch.Generator().manual_seed(seed)
    bound = (6.0 / D) ** 0.5
    w = (torch.rand(m * D, generator=g) * 2 - 1) * bound
    a = (torch.randint(2, (m,), generator=g).float() * 2 - 1) / m ** 0.5
    hidden = SparseLinear(D, m, np.arange(m * D), w, torch.zeros(m))
    out = SparseLinear(m, 1, np.arange(m), a, torch.zeros(1))
    return SparseMLP([hidden, out], "relu")


def mse(out, y, reduction="mean"):
    return torch.nn.functional.mse_loss(out.reshape(-1), y, reduction=reduction)


def optimiser(name: str, model, lr: float):
    params = [model.layers[0].values]
    for p in (model.layers[0].bias, *model.layers[1].parameters()):
        p.requires_grad_(False)
    if name == "adam":
        return torch.optim.Adam(params, lr=lr)
    momentum = 0.9 if name == "sgd" else 0.0
    return torch.optim.SGD(params, lr=lr, momentum=momentum)


class ExactGaussNewton:
    """The Gauss-Newton step with ``J`` formed and the damped system solved directly."""

    def __call__(self, model, optimizer, x, y, loss_fn, penalty, generator):
        hidden, out_layer = model.layers
        with torch.no_grad():
            out = model(x)
            loss = loss_fn(out, y)
            r = (out.reshape(-1) - y).double()
            xd = x.double()
            active = (xd @ hidden.dense_weight().double().t() + hidden.bias.double()) > 0
            a = out_layer.dense_weight()[0].double()
            J = (active.double() * a)[:, :, None] * xd[:, None, :]   # (n, m, d)
            J = J.reshape(len(x), -1)[:, hidden.flat]
            K = J @ J.t()
            lam = 1e-8 * float(K.diagonal().mean())
            g = torch.cholesky_solve(r[:, None], torch.linalg.cholesky(
                K + lam * torch.eye(len(x), dtype=torch.float64)))[:, 0]
            direction = J.t() @ g
        optimizer.zero_grad(set_to_none=True)
        hidden.values.grad = direction.float()
        optimizer.step()
        return out, loss


def run(name: str, m: int, lr: float, iterations: int, x, y, stop: bool = True) -> dict:
    """``iterations`` steps of ``name`` (fewer when ``stop`` and the target is reached or
    the loss is no longer finite): losses, step times, iterations to the target."""
    from topo.train.steps import GradientStep, SketchedGaussNewtonStep

    model = student(m)
    opt = optimiser(name, model, lr)
    rule = {"sketched-gn": SketchedGaussNewtonStep(4 * N, 1e-6, 50),
            "exact-gn": ExactGaussNewton()}.get(name, GradientStep())
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        initial = float(mse(model(x), y))
    losses, times = [initial], []
    reached = None
    for it in range(1, iterations + 1):
        start = time.perf_counter()
        rule(model, opt, x, y, mse, None, generator)
        times.append(time.perf_counter() - start)
        with torch.no_grad():
            loss = float(mse(model(x), y))
        losses.append(loss)
        if reached is None and loss <= TARGET * initial:
            reached = it
            if stop:
                break
        if not np.isfinite(loss):
            break
    return {"losses": losses, "times": times, "reached": reached,
            "cg_iterations": getattr(rule, "last", {}).get("iterations")}


def main() -> int:
    torch.set_num_threads(1)
    x, y = task()
    rows = []
    for m in WIDTHS:
        for name in ("sketched-gn", "exact-gn", "sgd", "adam"):
            # time per iteration: the iterations after one warm-up
            lr = 1.0 if name.endswith("gn") else 1e-2
            timing = run(name, m, lr, 6 if name == "exact-gn" else 21, x, y, stop=False)
            per_iter = statistics.median(timing["times"][1:])
            if name.endswith("gn"):
                best = run(name, m, 1.0, MAX_GN, x, y)
                best_lr = 1.0
            else:
                best, best_lr, best_key = None, None, None
                # largest rate first; a rate that has not reached the target within the
                # best count so far cannot win, so later runs stop there
                for lr in sorted(LR_GRID, reverse=True):
                    limit = best["reached"] if best and best["reached"] else MAX_FIRST_ORDER
                    r = run(name, m, lr, limit, x, y)
                    key = (r["reached"] or 10**9, r["losses"][-1] if np.isfinite(
                        r["losses"][-1]) else np.inf)
                    if best is None or key < best_key:
                        best, best_key, best_lr = r, key, lr
            reached = best["reached"]
            rows.append({
                "width": m, "parameters": m * D, "optimizer": name, "lr": best_lr,
                "seconds_per_iteration": per_iter,
                "iterations_to_target": reached,
                "seconds_to_target": (sum(best["times"][:reached]) if reached else None),
                "final_relative_mse": best["losses"][-1] / best["losses"][0],
                "iterations_run": len(best["times"]),
                "cg_iterations_last": best["cg_iterations"],
            })
            print(rows[-1], flush=True)
    table = pd.DataFrame(rows)
    RESULTS.mkdir(parents=True, exist_ok=True)
    table.to_csv(RESULTS / "sketched_gn.csv", index=False, float_format="%.6g")
    (RESULTS / "sketched_gn.md").write_text(_markdown(table), encoding="utf-8")
    return 0


def _markdown(table: pd.DataFrame) -> str:
    load = "/".join(f"{v:.1f}" for v in os.getloadavg())
    lines = [
        "# Sketched Gauss-Newton against SGD and Adam: two-layer ReLU regression", "",
        f"Made by `analysis/benchmarks/sketched_gn.py` on {time.strftime('%Y-%m-%d')} "
        f"({os.cpu_count()} CPUs, load average {load} at the end; 1 torch thread). "
        f"n = {N} samples, d = {D} inputs, first layer trained (m·d parameters), full batch; "
        f"target: training MSE at {TARGET:g} of its initial value.", "",
        "| width m | parameters | optimizer | lr | s / iteration | iterations to target | "
        "s to target | final MSE / initial | iterations run | CG iterations (last step) |",
        "|---|---|---|---|---|---|---|---|---|---|"]
    for _, r in table.iterrows():
        it = "not reached" if pd.isna(r["iterations_to_target"]) else \
            f"{int(r['iterations_to_target'])}"
        sec = "" if pd.isna(r["seconds_to_target"]) else f"{r['seconds_to_target']:.3f}"
        cg = "" if pd.isna(r["cg_iterations_last"]) else int(r["cg_iterations_last"])
        lines.append(f"| {r['width']} | {r['parameters']} | {r['optimizer']} | {r['lr']:g} | "
                     f"{r['seconds_per_iteration']:.4f} | {it} | {sec} | "
                     f"{r['final_relative_mse']:.2e} | {r['iterations_run']} | {cg} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
