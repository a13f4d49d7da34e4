"""Interaction detection on the synthetic benchmark of Tsang et al. (2018): NID against topo's
persistence score, on the same trained networks, for dense, SET and IMP training.

How to run (from the repository root)::

    .venv/bin/python analysis/interaction_benchmark.py --jobs 2

The exact command and seeds used for the committed results are written into the header of
``analysis/results/interaction_benchmark.md``. Trained runs go to ``--workdir`` (default
``/tmp/topo-interaction-benchmark``); a finished run is not trained again, so re-running the
script only scores. ``--score-only`` scores whatever runs have finished.

Set-up (the NID paper's, Tsang et al., ICLR 2018, section 5.1, and its published code's
defaults: Adam at learning rate 1e-2, L1 5e-5, batch 100, early stopping patience 5, at most 100
epochs, features and target standardised by the training split): an MLP 10-140-100-60-20-1 with
ReLU, 30,000 samples split equally into train / validation / test. The plain MLP of the paper,
not its "MLP-M" with main-effect subnetworks. Sparse networks:
SET (ERK initial density) and IMP (global magnitude pruning with rewinding to initialisation),
both at 10-20 % density. Each network is read from its run's best snapshot (lowest validation
loss) with ``topo.load``.

Scorers, all on the same networks: ``nid`` (Neural Interaction Detection), ``ph`` (topo's
persistence score), ``ph2`` (the persistence score of the squared weights) and ``ph2n`` (ph2's
pairwise strength as a share of the two features' own persistence); ``ph2`` and ``ph2n`` were
each chosen after comparing variants on the seed-0 networks only (the development split), and
the Markdown reports every scorer separately on the seed-0 networks and on the held-out seeds.
Metric: pairwise ROC AUC (``sklearn.metrics.roc_auc_score``): a pair of features is positive
when both lie inside one ground-truth interaction set of the function.
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
ARCH = [10, 140, 100, 60, 20, 1]
SCORERS = ("nid", "ph", "ph2", "ph2n")
AUC_COLUMNS = [f"auc_{s}" for s in SCORERS]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--functions", type=int, nargs="+", default=list(range(1, 11)))
    parser.add_argument("--methods", nargs="+", default=["dense", "set", "imp"],
                        choices=["dense", "set", "imp"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                        help="seeds of the dense runs")
    parser.add_argument("--sparse-seeds", type=int, nargs="+", default=[0, 1],
                        help="seeds of the SET and IMP runs")
    parser.add_argument("--epochs", type=int, default=100,
                        help="epoch cap per run (per IMP level)")
    parser.add_argument("--patience", type=int, default=5)
    parser.add_argument("--n-samples", type=int, default=30_000)
    parser.add_argument("--lr", type=float, default=1e-2)
    parser.add_argument("--l1", type=float, default=5e-5)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--density", type=float, default=0.15, help="SET target density")
    parser.add_argument("--imp-rate", type=float, default=0.6,
                        help="IMP pruning rate per level (0.6 twice: density 0.16)")
    parser.add_argument("--imp-levels", type=int, default=2)
    parser.add_argument("--jobs", type=int, default=2, help="parallel training processes")
    parser.add_argument("--workdir", default="/tmp/topo-interaction-benchmark")
    parser.add_argument("--score-only", action="store_true")
    parser.add_argument("--out", default=str(RESULTS / "interaction_benchmark"),
                        help="prefix of the .csv / .md / .png results")
    args = parser.parse_args(argv)

    jobs = _jobs(args)
    started = time.perf_counter()
    if not args.score_only:
        from joblib import Parallel, delayed

        todo = [j for j in jobs if not _finished(j["dir"])]
        print(f"training {len(todo)} of {len(jobs)} runs with {args.jobs} processes",
              file=sys.stderr)
        Parallel(n_jobs=args.jobs, verbose=5)(delayed(_train_one)(j) for j in todo)
    train_s = time.perf_counter() - started
    rows = [_score(j) for j in jobs if _finished(j["dir"])]
    if not rows:
        print("no finished runs to score", file=sys.stderr)
        return 1
    table = pd.DataFrame(rows)
    command = "analysis/interaction_benchmark.py " + " ".join(
        shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    _write(table, Path(args.out), command, args, train_s)
    return 0


# ----------------------------------------------------------------------------- jobs
def _jobs(args: argparse.Namespace) -> list[dict]:
    jobs = []
    for method in args.methods:
        seeds = args.seeds if method == "dense" else args.sparse_seeds
        for seed, k in itertools.product(seeds, args.functions):
            config = dict(
                method=method, dataset=f"synthetic-F{k}", arch=list(ARCH), optimizer="adam",
                lr=args.lr, l1=args.l1, batch_size=args.batch_size, epochs=args.epochs,
                early_stopping_patience=args.patience, n_samples=args.n_samples, seed=seed,
                snapshot_every=1, standardize=True,
            )
            if method == "set":
                config.update(init_sparsity="erk", density=args.density)
            if method == "imp":
                config.update(imp_rate=args.imp_rate, imp_levels=args.imp_levels)
            jobs.append({"method": method, "function": k, "seed": seed, "config": config,
                         "dir": str(Path(args.workdir) / f"{method}-F{k}-s{seed}")})
    # seed-major order, so that an interrupted benchmark still covers every function
    return sorted(jobs, key=lambda j: (j["seed"], ["dense", "set", "imp"].index(j["method"]),
                                       j["function"]))


def _finished(run_dir: str) -> bool:
    from topo.io.run import is_run_dir, read_manifest

    path = Path(run_dir)
    return is_run_dir(path) and read_manifest(path).get("status") == "finished"


def _train_one(job: dict) -> str:
    """Train one run with topo's training core (resumed where an earlier call stopped)."""
    from topo.train import TrainConfig, train

    train(TrainConfig(**job["config"]), job["dir"], resume=True, progress=False)
    return job["dir"]


def _score(job: dict) -> dict:
    from sklearn.metrics import roc_auc_score

    import topo
    from topo.interactions import interaction_strengths
    from topo.io.run import read_manifest, read_metrics
    from topo.train import best_snapshot
    from topo.train.synthetic import ground_truth

    run = Path(job["dir"])
    snapshot = best_snapshot(run)
    graph = topo.load(snapshot)
    truth = ground_truth(job["function"])
    manifest = read_manifest(run)
    row = {
        "training": job["method"], "function": f"F{job['function']}", "seed": job["seed"],
        "density": sum(graph.n_connections) / sum(a * b for a, b in
                                                  zip(graph.n_in, graph.n_out)),
        "test_mse": graph.metadata.get("test_mse", np.nan),
        "best_epoch": manifest.get("best_epoch"),
        "epochs_run": int(len(read_metrics(run))),
        "train_s": float(read_metrics(run).get("wall_time", pd.Series(dtype=float)).sum()),
        "snapshot": str(snapshot.relative_to(run)),
    }
    for scorer in SCORERS:
        table = interaction_strengths(graph, method=scorer, order="pairwise")
        labels = [any(set(pair) <= set(t) for t in truth) for pair in table["features"]]
        row[f"auc_{scorer}"] = float(roc_auc_score(labels, table["strength"]))
    return row


# ----------------------------------------------------------------------------- results
def _write(table: pd.DataFrame, out: Path, command: str, args: argparse.Namespace,
           train_s: float) -> None:
    from topo.io.atomic import atomic_write_text
    from topo.io.export import save_figure
    from topo.io.tables import write_csv

    out.parent.mkdir(parents=True, exist_ok=True)
    write_csv(table, out.with_suffix(".csv"))
    by_function = (table.groupby(["training", "function"], sort=False)[
        AUC_COLUMNS].mean().unstack(0))
    order = [f"F{k}" for k in range(1, 11) if f"F{k}" in by_function.index]
    by_function = by_function.loc[order]
    summary = table.groupby("training", sort=False).agg(
        runs=("seed", "size"), seeds=("seed", lambda s: " ".join(map(str, sorted(set(s))))),
        density=("density", "mean"), test_mse=("test_mse", "mean"),
        **{c: (c, "mean") for c in AUC_COLUMNS})
    dev = table[table["seed"] == 0].groupby("training", sort=False).agg(
        runs=("seed", "size"), **{c: (c, "mean") for c in AUC_COLUMNS})
    unseen = table[table["seed"] != 0].groupby("training", sort=False).agg(
        runs=("seed", "size"), **{c: (c, "mean") for c in AUC_COLUMNS})
    lines = [
        "# Interaction detection on the synthetic benchmark (Tsang et al., 2018)",
        "",
        f"Command: `.venv/bin/python {command}`",
        "",
        f"Dense seeds: {args.seeds}; SET/IMP seeds: {args.sparse_seeds}; functions: "
        f"{args.functions}. Arch {ARCH}, ReLU, Adam lr {args.lr}, L1 {args.l1}, batch "
        f"{args.batch_size}, at most {args.epochs} epochs (per IMP level), early stopping "
        f"patience {args.patience}, {args.n_samples} samples split in thirds. SET: ERK "
        f"density {args.density}; IMP: {args.imp_levels} levels at rate {args.imp_rate}. "
        f"Training time summed over the runs (per-epoch wall times of the run directories, "
        f"{args.jobs} runs at a time on this machine): {table['train_s'].sum():.0f} s; this "
        f"invocation trained for {train_s:.0f} s (0 when every run was already in "
        f"`{args.workdir}`).",
        "",
        "Pairwise ROC AUC (a pair is positive when it lies inside a ground-truth set), mean "
        "over seeds; `nid` = Neural Interaction Detection, `ph` = topo's persistence score, "
        "on the same networks; `ph2` = the persistence score of the squared weights; `ph2n` = "
        "ph2's pairwise strength divided by the geometric mean of the two features' own "
        "persistence at their shared units, plus one average feature's total "
        "(`topo.interactions`, pairwise only). "
        "`test_mse` is on the standardised target (1.0 = predicting the mean).",
        "",
        "## Mean over functions",
        "",
        _markdown(summary.reset_index()),
        "",
        "Targets of the issue (mean pairwise AUC of the persistence score >= NID's and >= "
        "0.95): " + "; ".join(
            f"{t}: ph {r.auc_ph:.3f} {'>=' if r.auc_ph >= r.auc_nid else '<'} nid "
            f"{r.auc_nid:.3f}, ph2 {r.auc_ph2:.3f}, ph2n {r.auc_ph2n:.3f}, 0.95 "
            f"{'reached' if max(r.auc_ph, r.auc_ph2, r.auc_ph2n) >= 0.95 else 'not reached'}"
            for t, r in summary.iterrows()) + ".",
        "",
        "## Development split (seed 0) and held-out seeds",
        "",
        "ph2 and ph2n were each chosen by comparing variants on the seed-0 networks only "
        "(10 dense, 10 SET, 10 IMP). ph2: squaring the first-layer weights (min^2 x reach) "
        "was picked on seed 0; ph2, the same with the reach squared too (the filtration of "
        "w^2), was first scored together with the other seeds, where the two differ by at most "
        "0.003 in mean AUC. ph2n: about 190 variants were compared on seed 0 (per-unit "
        "normalisation of the incoming weights, powers 1-3 of the weights and of the reach, "
        "max-product and NID-style reach, weighting top-k sets by k, restricting to units of "
        "high reach, merges in deeper layers, null models of chance co-occurrence, and "
        "normalising by the features' own persistence). The held-out seeds were looked at "
        "twice: once for the unshrunk share (no pseudo-count, first-layer totals without the "
        "mask condition), which gained on dense and IMP but lost 0.036 on SET there "
        "(0.920 / 0.851 / 0.906 for dense / SET / IMP), the same pattern as on seed 0; and once "
        "for ph2n as defined, fixed on seed 0 before that second look. "
        "Means over seed 0 (development):",
        "",
        _markdown(dev.reset_index()) if len(dev) else "(no seed-0 runs)",
        "",
        "Means over the seeds other than 0 (held out):",
        "",
        _markdown(unseen.reset_index()) if len(unseen) else "(no runs with other seeds)",
        "",
        "## Per function",
        "",
        _markdown(by_function.swaplevel(axis=1).sort_index(axis=1).reset_index()),
        "",
        f"Per run: `{out.with_suffix('.csv').name}`; figure: `{out.with_suffix('.png').name}`.",
        "",
    ]
    atomic_write_text(out.with_suffix(".md"), "\n".join(lines))
    save_figure(_figure(table), out.with_suffix(".png"))
    print("\n".join(lines))


def _markdown(frame: pd.DataFrame) -> str:
    columns = [" ".join(map(str, c)).strip() if isinstance(c, tuple) else str(c)
               for c in frame.columns]
    rows = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for values in frame.itertuples(index=False):
        rows.append("| " + " | ".join(
            f"{v:.3f}" if isinstance(v, float) else str(v) for v in values) + " |")
    return "\n".join(rows)


def _figure(table: pd.DataFrame):
    from topo.plot import pyplot

    plt = pyplot()
    trainings = list(dict.fromkeys(table["training"]))
    fig, axes = plt.subplots(1, len(trainings), figsize=(4.6 * len(trainings), 3.4),
                             squeeze=False, sharey=True)
    for ax, training in zip(axes[0], trainings):
        part = table[table["training"] == training]
        means = part.groupby("function", sort=False)[AUC_COLUMNS].mean()
        means = means.loc[[f for f in (f"F{k}" for k in range(1, 11)) if f in means.index]]
        x = np.arange(len(means))
        width = 0.8 / len(SCORERS)
        for n, scorer in enumerate(SCORERS):
            column = f"auc_{scorer}"
            ax.bar(x + (n - (len(SCORERS) - 1) / 2) * width, means[column], width,
                   label=f"{scorer} (mean {means[column].mean():.3f})")
        ax.set_xticks(x, means.index, fontsize=8)
        ax.set_ylim(0.4, 1.02)
        ax.axhline(0.95, color="0.5", lw=0.8, ls="--")
        ax.set_title(f"{training} networks ({part['seed'].nunique()} seed(s))", fontsize=9)
        ax.legend(fontsize=7, loc="lower left")
    axes[0][0].set_ylabel("pairwise ROC AUC")
    fig.tight_layout()
    return fig


if __name__ == "__main__":
    raise SystemExit(main())
