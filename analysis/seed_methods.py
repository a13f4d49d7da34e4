"""The sparse-training methods of topo's sources side by side on digits: accuracy against
density for SET, RigL, GMP, IMP, Activate-while-Pruning (AP), SiPP, SSGD and random search in
node space, the dead neuron rate (DNR) of each network, and the NNSTD between the methods'
final topologies at equal density against its chance level.

How to run (from the repository root)::

    .venv/bin/python analysis/seed_methods.py --jobs 2

(20 minutes on the project's shared 2-core machine at a load average of 13 to 17 from other
jobs, 13 minutes at a lighter load; the committed tables record the time of their run).
``--dataset mnist --data-root DIR`` runs the same study on MNIST from local IDX files
(784-300-100-10); none were on the machine that made the committed results. Trained runs go
to ``--workdir`` (default ``/tmp/topo-seed-methods``); a finished run is not trained again,
so a second call only recomputes the tables; ``--replot`` draws the figure again from the
committed tables. The exact command is written into the header of
``analysis/results/seed_methods.md``.

Set-up: the 64-100-100-10 ReLU MLP of topo's digits default, SGD (lr 0.01, momentum 0.9,
batch 32), 15 epochs per training (per level for IMP and AP, per phase for SiPP), every layer
prunable, target overall densities 0.2, 0.1 and 0.05, seeds 0 and 1 (each seed is one
initialisation and data order shared by all methods):

- ``set``, ``rigl``: ERK initial masks at the target density, rewired as their papers say;
- ``gmp``: cubic schedule from dense to the target density, every layer alike;
- ``imp``: four levels of global magnitude pruning with rewinding to initialisation over
  every layer (``prune_output``), the rate per level ``1 - d^(1/4)`` so that the fourth
  level is at density ``d``;
- ``ap``: the same levels with 2 % of each level's share chosen by Activate-while-Pruning;
- ``sipp``: dense training, hybrid SiPP pruning to ``d`` on 128 samples, retraining;
- ``ssgd``: dense training with SSGD's scaled steps (ε = 1e-4, ℓ2 form), pruning to ``d``
  after the last step, no retraining;
- ``search`` / ``random nodes``: random search in node space at the node sparsity whose
  networks have density closest to ``d`` (8 candidates judged by validation loss after one
  epoch, the best trained fully) and 3 random configurations of the same node sparsity;
  these runs hold out a sixth of the training data for validation;
- ``dense``: the dense network, for reference.

Measures: final test accuracy, the overall density reached, the final DNR of the hidden units
(on the first 1024 training inputs, as every run records it), for IMP and AP the DNR at the
end of every level, and for every pair of methods at the same density and seed the NNSTD of
their final networks (mean over the sparse layers, ``NNSTDResult.sparse_distance``) beside
its Monte Carlo chance level (``topo.nnstd_chance``, 10 pairs of random networks with the
same per-layer connection counts).
"""

from __future__ import annotations

import argparse
import itertools
import shlex
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "analysis" / "results"
ARCH = [64, 100, 100, 10]
METHODS = ("set", "rigl", "gmp", "imp", "ap", "sipp", "ssgd", "search", "random nodes")
LEVELS = 4


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--densities", type=float, nargs="+", default=[0.2, 0.1, 0.05])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--dataset", default="digits", choices=["digits", "mnist"])
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--arch", default=None, help="widths (default 64-100-100-10 on "
                                                     "digits, 784-300-100-10 on MNIST)")
    parser.add_argument("--chance-samples", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/topo-seed-methods"))
    parser.add_argument("--prefix", default="seed_methods",
                        help="name of the results under analysis/results/")
    parser.add_argument("--replot", action="store_true",
                        help="only draw the figure again from the committed tables")
    args = parser.parse_args(argv)
    if args.replot:
        prefix = RESULTS / args.prefix
        _figure(pd.read_csv(f"{prefix}.csv"), pd.read_csv(f"{prefix}_levels.csv"),
                pd.read_csv(f"{prefix}_nnstd.csv"), args, Path(f"{prefix}.png"))
        return 0
    command = "python analysis/seed_methods.py " + shlex.join(argv or sys.argv[1:])
    arch = ([int(w) for w in args.arch.split("-")] if args.arch
            else ARCH if args.dataset == "digits" else [784, 300, 100, 10])

    from joblib import Parallel, delayed

    start = time.perf_counter()
    jobs = _jobs(args, arch)
    outcomes = Parallel(n_jobs=args.jobs)(delayed(_run)(job) for job in jobs)
    train_time = time.perf_counter() - start
    runs = pd.DataFrame([row for rows, _ in outcomes for row in rows])
    levels = pd.DataFrame([row for _, rows in outcomes for row in rows])
    pairs = [(d, s, a, b) for d in args.densities for s in args.seeds
             for a, b in itertools.combinations(METHODS, 2)]
    snapshot = runs.set_index(["target", "seed", "method"])["snapshot"]
    distances = Parallel(n_jobs=args.jobs)(
        delayed(_distance)(snapshot[(d, s, a)], snapshot[(d, s, b)], args.chance_samples)
        for d, s, a, b in pairs)
    nnstd = pd.DataFrame([{"target": d, "seed": s, "a": a, "b": b, **dist}
                          for (d, s, a, b), dist in zip(pairs, distances)])
    total = time.perf_counter() - start
    _write(runs, levels, nnstd, args, command, train_time, total)
    return 0


# ----------------------------------------------------------------------------- the runs
def node_sparsity_for(density: float, arch: list[int]) -> float:
    """The node sparsity (same fraction of every hidden layer) whose sub-networks have the
    overall density closest to ``density``, with units counted as the sampler rounds them."""
    best = None
    total = sum(a * b for a, b in zip(arch[:-1], arch[1:]))
    for k in range(1, arch[1] + 1):
        s = 1.0 - k / arch[1]
        kept = [arch[0], *[n - int(round(s * n)) for n in arch[1:-1]], arch[-1]]
        d = sum(a * b for a, b in zip(kept[:-1], kept[1:])) / total
        if best is None or abs(d - density) < best[0]:
            best = (abs(d - density), s)
    return best[1]


def _jobs(args: argparse.Namespace, arch: list[int]) -> list[dict]:
    from topo.train import TrainConfig

    base = {"dataset": args.dataset, "arch": arch, "epochs": args.epochs,
            "snapshot_every": args.epochs, "threads": 1, "data_root": args.data_root}
    jobs = []
    for seed in args.seeds:
        cfg = TrainConfig(method="dense", seed=seed, **base)
        jobs.append({"kind": "run", "method": "dense", "target": 1.0, "seed": seed,
                     "config": cfg, "out": args.workdir / f"dense-s{seed}"})
        for d in args.densities:
            rate = 1.0 - d ** (1.0 / LEVELS)
            configs = {
                "set": dict(method="set", init_sparsity="erk", density=d),
                "rigl": dict(method="rigl", init_sparsity="erk", density=d),
                "gmp": dict(method="gmp", density=d),
                "imp": dict(method="imp", imp_levels=LEVELS, imp_rate=rate, prune_output=True),
                "ap": dict(method="ap", imp_levels=LEVELS, imp_rate=rate, ap_share=0.02,
                           prune_output=True),
                "sipp": dict(method="sipp", density=d, sipp_mode="hybrid"),
                "ssgd": dict(method="ssgd", density=d),
            }
            for method, kw in configs.items():
                jobs.append({"kind": "run", "method": method, "target": d, "seed": seed,
                             "config": TrainConfig(seed=seed, **base, **kw),
                             "out": args.workdir / f"{method}-d{d}-s{seed}"})
            jobs.append({"kind": "search", "method": "search", "target": d, "seed": seed,
                         "config": TrainConfig(method="dense", seed=seed, **base),
                         "node_sparsity": node_sparsity_for(d, arch),
                         "out": args.workdir / f"search-d{d}-s{seed}"})
    # the searches are the longest jobs: start them first
    return sorted(jobs, key=lambda j: j["kind"] != "search")


def _run(job: dict) -> tuple[list[dict], list[dict]]:
    """Train (or find finished) one job; its result rows and per-level rows."""
    from topo.io.run import read_metrics

    if job["kind"] == "search":
        from topo.train.search import node_search

        result = node_search(job["config"], job["out"], candidates=8,
                             node_sparsity=job["node_sparsity"], selection_epochs=1,
                             n_random=3, dense=False)
        rows = []
        for _, r in result.table.iterrows():
            if r["kind"] not in ("selected", "random"):
                continue
            method = "search" if r["kind"] == "selected" else "random nodes"
            if method == "random nodes" and r["index"] > 0:
                rows.append(_row(job, "random nodes (more)", job["out"] / r["run"]))
            else:
                rows.append(_row(job, method, job["out"] / r["run"]))
        return rows, []
    from topo.train import train

    out = train(job["config"], job["out"], resume=True, progress=False)
    levels = []
    if job["method"] in ("imp", "ap"):
        m = read_metrics(out)
        ends = m.groupby("level").tail(1)
        for _, r in ends.iterrows():
            levels.append({"method": job["method"], "target": job["target"],
                           "seed": job["seed"], "level": int(r["level"]),
                           "density": _density(r, job["config"].arch),
                           **{k: r[k] for k in r.index if k.startswith("dnr")},
                           "test_accuracy": r["test_accuracy"]})
    return [_row(job, job["method"], out)], levels


def _row(job: dict, method: str, run: Path) -> dict:
    from topo.io.run import read_metrics, snapshot_paths

    m = read_metrics(run)
    last = m.iloc[-1]
    return {"method": method, "target": job["target"], "seed": job["seed"],
            "density": _density(last, job["config"].arch),
            "test_accuracy": float(last["test_accuracy"]),
            "dnr_network": float(last["dnr_network"]),
            "dnr_connected_network": float(last["dnr_connected_network"]),
            "snapshot": str(snapshot_paths(run)[-1]), "run": str(run)}


def _density(row: pd.Series, arch: list[int]) -> float:
    """Connections of the network over its possible connections."""
    connections = sum(row[k] for k in row.index if k.startswith("connections_"))
    return float(connections / sum(a * b for a, b in zip(arch[:-1], arch[1:])))


def _distance(path_a: str, path_b: str, samples: int) -> dict:
    import topo

    a, b = topo.load(path_a), topo.load(path_b)
    result = topo.nnstd(a, b)
    chance = topo.nnstd_chance(a, b, n_samples=samples, seed=0)
    return {"nnstd": result.sparse_distance, "chance": chance.sparse_distance,
            "chance_se": chance.sparse_distance_se,
            **{f"nnstd_{k}": v for k, v in enumerate(result.per_layer)},
            **{f"chance_{k}": v for k, v in enumerate(chance.per_layer)}}


# ----------------------------------------------------------------------------- results
def _write(runs: pd.DataFrame, levels: pd.DataFrame, nnstd: pd.DataFrame,
           args: argparse.Namespace, command: str, train_time: float, total: float) -> None:
    prefix = RESULTS / args.prefix
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs.drop(columns=["snapshot", "run"]).to_csv(f"{prefix}.csv", index=False,
                                                  float_format="%.6g")
    levels.to_csv(f"{prefix}_levels.csv", index=False, float_format="%.6g")
    nnstd.to_csv(f"{prefix}_nnstd.csv", index=False, float_format="%.6g")
    _figure(runs, levels, nnstd, args, Path(f"{prefix}.png"))
    Path(f"{prefix}.md").write_text(_markdown(runs, levels, nnstd, args, command, train_time,
                                              total), encoding="utf-8")


def _mean_sd(values: pd.Series) -> str:
    v = values.to_numpy(dtype=float)
    return f"{v.mean():.3f} ± {v.std(ddof=1):.3f}" if v.size > 1 else f"{v.mean():.3f}"


def _markdown(runs, levels, nnstd, args, command, train_time, total) -> str:
    targets = sorted(args.densities, reverse=True)
    sparse = runs[runs["method"] != "dense"]
    out = [f"# Seed methods on {args.dataset}", "",
           f"Command: `{command}`  ", f"Seeds {args.seeds}; {args.epochs} epochs per training; "
           f"wall time {total / 60:.1f} min ({train_time / 60:.1f} min training) with "
           f"{args.jobs} jobs.", "",
           "## Test accuracy (mean ± sd over seeds) by target density", "",
           "| method | " + " | ".join(f"d = {d}" for d in targets) + " |",
           "|---|" + "---|" * len(targets)]
    order = [*METHODS, "random nodes (more)"]
    for method in order:
        cells = []
        for d in targets:
            r = sparse[(sparse["method"] == method) & (sparse["target"] == d)]
            cells.append(f"{_mean_sd(r['test_accuracy'])} ({r['density'].mean():.3f})"
                         if len(r) else "")
        out.append(f"| {method} | " + " | ".join(cells) + " |")
    dense = runs[runs["method"] == "dense"]
    out += ["", f"Dense: {_mean_sd(dense['test_accuracy'])}. In brackets: the overall density "
            "reached. `random nodes` is the first random configuration of each search, "
            "`random nodes (more)` the other two.", "",
            "## Dead neuron rate of the final networks (mean over seeds)", "",
            "Over all hidden units (Liu et al.'s count), and in brackets over the units that "
            "still have a connection.", "",
            "| method | " + " | ".join(f"d = {d}" for d in targets) + " |",
            "|---|" + "---|" * len(targets)]
    for method in order:
        cells = []
        for d in targets:
            r = sparse[(sparse["method"] == method) & (sparse["target"] == d)]
            cells.append(f"{r['dnr_network'].mean():.3f} ({r['dnr_connected_network'].mean():.3f})"
                         if len(r) else "")
        out.append(f"| {method} | " + " | ".join(cells) + " |")
    out += ["", f"Dense: {dense['dnr_network'].mean():.3f}.", "",
            "## Dead neuron rate over the levels of IMP and AP (end of each level, mean over "
            "seeds)", "",
            "All hidden units; in brackets the units with a connection.", "",
            "| target | level | density | IMP DNR | AP DNR | IMP accuracy | AP accuracy |",
            "|---|---|---|---|---|---|---|"]
    g = levels.groupby(["target", "level", "method"]).mean(numeric_only=True)
    for d in targets:
        for level in range(LEVELS + 1):
            imp, ap = g.loc[(d, level, "imp")], g.loc[(d, level, "ap")]
            out.append(f"| {d} | {level} | {imp['density']:.3f} | {imp['dnr_network']:.3f} "
                       f"({imp['dnr_connected_network']:.3f}) | {ap['dnr_network']:.3f} "
                       f"({ap['dnr_connected_network']:.3f}) | {imp['test_accuracy']:.3f} | "
                       f"{ap['test_accuracy']:.3f} |")
    out += ["", "## NNSTD between the methods' final networks at equal density", "",
            "Mean over the sparse layers and over seeds; chance: the same for random networks "
            "with the same per-layer connection counts. Rows: pairs, sorted by NNSTD / chance. "
            "The node-space networks connect every kept unit to every kept unit of the next "
            "layer, so two of them with the same unit counts are the same topology up to "
            "neuron order: NNSTD 0 by construction.",
            ""]
    for d in targets:
        t = nnstd[nnstd["target"] == d].groupby(["a", "b"]).mean(numeric_only=True)
        t = t.assign(ratio=t["nnstd"] / t["chance"]).sort_values("ratio")
        out += [f"### d = {d}", "", "| pair | NNSTD | chance (± se) | NNSTD / chance |",
                "|---|---|---|---|"]
        for (a, b), r in t.iterrows():
            out.append(f"| {a} – {b} | {r['nnstd']:.3f} | {r['chance']:.3f} ± "
                       f"{r['chance_se']:.3f} | {r['ratio']:.3f} |")
        out.append("")
    return "\n".join(out) + "\n"


def _figure(runs, levels, nnstd, args, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(20, 4.6))
    g = runs[runs["method"] != "dense"].groupby(["method", "target"]).mean(numeric_only=True)
    dense = runs[runs["method"] == "dense"].mean(numeric_only=True)
    for method in METHODS:
        if method not in g.index.get_level_values(0):
            continue
        r = g.loc[method].sort_index()
        axes[0].plot(r["density"], r["test_accuracy"], "o-", label=method)
        axes[1].plot(r["density"], r["dnr_network"], "o-", label=method)
    axes[0].set_title("(a) final test accuracy")
    axes[1].set_title("(b) dead neuron rate, all hidden units\n(units a method removed count "
                      "as dead)", fontsize=9)
    axes[2].set_title("(c) dead neuron rate at the end of each\nIMP / AP level (all units)",
                      fontsize=9)
    for ax, key, name in ((axes[0], "test_accuracy", "test accuracy"),
                          (axes[1], "dnr_network", "dead neuron rate")):
        ax.axhline(dense[key], color="k", ls=":", label="dense")
        ax.set_xscale("log")
        ax.set_xlabel("overall density")
        ax.set_ylabel(name)
    axes[0].legend(fontsize=7)
    lv = levels.groupby(["method", "target", "level"]).mean(numeric_only=True)
    for method, style in (("imp", "o-"), ("ap", "s--")):
        for d in sorted(args.densities):
            r = lv.loc[(method, d)]
            axes[2].plot(r["density"], r["dnr_network"], style, label=f"{method} → {d}")
    axes[2].set_xscale("log")
    axes[2].invert_xaxis()
    axes[2].set_xlabel("density (end of each level)")
    axes[2].set_ylabel("dead neuron rate")
    axes[2].legend(fontsize=7)
    mid = sorted(args.densities)[len(args.densities) // 2]
    t = nnstd[nnstd["target"] == mid].groupby(["a", "b"]).mean(numeric_only=True)
    names = list(METHODS)
    mat = np.full((len(names), len(names)), np.nan)
    for (a, b), r in t.iterrows():
        i, j = names.index(a), names.index(b)
        mat[i, j] = mat[j, i] = r["nnstd"] / r["chance"]
    im = axes[3].imshow(mat, vmin=0.5, vmax=1.05, cmap="viridis")
    axes[3].set_xticks(range(len(names)), names, rotation=60, fontsize=7)
    axes[3].set_yticks(range(len(names)), names, fontsize=7)
    axes[3].set_title(f"(d) NNSTD / chance level at density {mid}")
    fig.colorbar(im, ax=axes[3])
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    raise SystemExit(main())
