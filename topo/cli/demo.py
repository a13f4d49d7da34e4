"""``topo demo``: the whole tour on scikit-learn's digits, in under a minute on two cores.

Trains two SET runs (seeds 0 and 1) and a dense run, then compares the two SET networks,
follows the topology evolution of the first run, builds the NNSTD distance matrix of both SET
runs' snapshots with its clustered heatmap and MDS embedding, and reads neural persistence
and feature interactions from the trained networks. Every result is a file under ``--out``;
the demo prints where each one went and the command that makes it by hand.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ORDER = 90

DEMO_ARCH = (64, 100, 100, 10)
DEMO_EPOCHS = 30
DEMO_EMBED_EVERY = 3


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo", help="train small runs on digits and write every analysis (under a minute)",
        description="The full tour: two SET runs (seeds 0, 1) and a dense run on "
                    "scikit-learn's digits, then compare, evolution, a distance matrix with "
                    "its embedding, persistence and interactions. Writes everything under "
                    "--out and prints where each result went.")
    p.add_argument("--out", default="demo-output", help="output folder (default: demo-output)")
    # A smaller setting for tests; hidden from --help.
    p.add_argument("--epochs", type=int, default=DEMO_EPOCHS, help=argparse.SUPPRESS)
    p.set_defaults(func=run_demo)


def run_demo(args: argparse.Namespace) -> int:
    from topo.errors import ConfigError

    if args.epochs < 1:
        raise ConfigError(f"--epochs must be at least 1, got {args.epochs}")
    out = Path(args.out)
    tour = _Tour(out)
    start = time.perf_counter()
    print(f"topo demo: writing to {out}/")
    runs = _train_runs(tour, out / "runs", args.epochs)
    final = {name: _last_snapshot(path) for name, path in runs.items()}
    _compare(tour, final["set-s0"], final["set-s1"], out)
    _evolution(tour, runs["set-s0"], out)
    _distances(tour, [runs["set-s0"], runs["set-s1"]], out)
    _persistence(tour, final, out)
    _interactions(tour, final["dense-s0"], out)
    print()
    print(f"done in {time.perf_counter() - start:.0f} s; results:")
    for path, what in tour.written:
        print(f"  {path}  {what}")
    return 0


class _Tour:
    """Numbered steps with their timing, and the list of files they wrote."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.step = 0
        self.written: list[tuple[Path, str]] = []

    def begin(self, title: str, command: str | None = None) -> float:
        self.step += 1
        print(f"\n[{self.step}] {title}")
        if command:
            print(f"    $ {command}")
        sys.stdout.flush()
        return time.perf_counter()

    def wrote(self, path: Path, what: str) -> None:
        self.written.append((path, what))
        print(f"    -> {path}  ({what})")

    def done(self, started: float, note: str = "") -> None:
        print(f"    {note}{'; ' if note else ''}{time.perf_counter() - started:.1f} s")
        sys.stdout.flush()


def _train_runs(tour: _Tour, root: Path, epochs: int) -> dict[str, Path]:
    from topo.train import TrainConfig, train

    arch = "-".join(map(str, DEMO_ARCH))
    runs = {}
    for name, method, seed in (("set-s0", "set", 0), ("set-s1", "set", 1),
                               ("dense-s0", "dense", 0)):
        path = root / name
        _clear_run(path)
        started = tour.begin(
            f"train {method} (seed {seed}) on digits",
            f"topo train --method {method} --dataset digits --arch {arch} "
            f"--epochs {epochs} --seed {seed} --out {path}")
        config = TrainConfig(method=method, dataset="digits", arch=list(DEMO_ARCH),
                             epochs=epochs, seed=seed)
        train(config, path, progress=sys.stderr.isatty())
        runs[name] = path
        tour.wrote(path, f"{method} run: run.json, metrics.jsonl, snapshots/")
        tour.done(started, _accuracy_note(path))
    return runs


def _compare(tour: _Tour, a: Path, b: Path, out: Path) -> None:
    from topo.cli._output import save_figure, write_csv
    from topo.cli.compare import comparison_table
    from topo.distance import nnstd
    from topo.io import load
    from topo.overlap import mask_overlap
    from topo.plot import plot_comparison

    figure, table_path = out / "compare.png", out / "compare.csv"
    started = tour.begin("compare the two SET networks (NNSTD, overlap)",
                         f"topo compare {a} {b} --plot {figure}")
    ga, gb = load(a), load(b)
    result = nnstd(ga, gb)
    overlap = mask_overlap(ga, gb, result.matchings)
    table = comparison_table(result, overlap)
    write_csv(table, table_path)
    tour.wrote(table_path, "per-layer NNSTD and Jaccard")
    save_figure(plot_comparison(table).figure, figure)
    tour.wrote(figure, "bar chart")
    tour.done(started, f"NNSTD {result.distance:.3f}")


def _evolution(tour: _Tour, run: Path, out: Path) -> None:
    from topo.cli._output import save_figure, write_csv
    from topo.evolution import input_connectivity, topology_evolution
    from topo.io import load
    from topo.io.run import snapshot_paths
    from topo.plot import plot_evolution, plot_input_connectivity

    table_path, figure, inputs = (out / "evolution.csv", out / "evolution.png",
                                  out / "input_connectivity.png")
    started = tour.begin("topology evolution of set-s0",
                         f"topo evolution {run} --csv {table_path} --plot {figure} "
                         f"--inputs-plot {inputs}")
    frame = topology_evolution(run)
    write_csv(frame, table_path)
    tour.wrote(table_path, f"{len(frame)} rows: one per snapshot and layer")
    save_figure(plot_evolution(frame)[0].figure, figure)
    tour.wrote(figure, "evolution panel")
    counts = input_connectivity(run)
    shape = load(snapshot_paths(run)[0]).input_shape or (8, 8)
    epochs = frame.drop_duplicates("snapshot")["epoch"].tolist()
    save_figure(plot_input_connectivity(counts, input_shape=shape, epochs=epochs)[0].figure,
                inputs)
    tour.wrote(inputs, "outgoing connections per pixel over epochs")
    sparse = frame[(frame["snapshot"] > 0) & (frame["density"] < 1)]
    note = (f"mean churn of sparse layers {sparse['churn'].mean():.3f}" if len(sparse)
            else "")
    tour.done(started, note)


def _distances(tour: _Tour, runs: list[Path], out: Path) -> None:
    from topo.cli._output import save_figure, write_csv
    from topo.distance import distance_matrix
    from topo.io.run import snapshot_paths
    from topo.plot import plot_distance_matrix, plot_embedding

    paths, labels, run_names = [], [], []
    for run in runs:
        snaps = snapshot_paths(run)
        keep = snaps[::DEMO_EMBED_EVERY]
        if keep[-1] != snaps[-1]:
            keep.append(snaps[-1])
        paths += keep
        labels += [f"{run.name}/{p.stem}" for p in keep]
        run_names += [run.name] * len(keep)
    table_path, heatmap, embedding = (out / "distances.csv", out / "distance_matrix.png",
                                      out / "embedding.png")
    started = tour.begin(
        f"NNSTD distance matrix of {len(paths)} snapshots of the two SET runs "
        f"(every {DEMO_EMBED_EVERY}rd epoch and the last)",
        f"topo distances {' '.join(str(r) for r in runs)} --n-jobs 2 --out {table_path} "
        f"--plot {heatmap}")
    dist, _ = distance_matrix(paths, labels=labels, n_jobs=2)
    labelled = dist.copy()
    labelled.insert(0, "label", labelled.index)
    write_csv(labelled, table_path)
    tour.wrote(table_path, f"{len(paths)} x {len(paths)} NNSTD matrix")
    save_figure(plot_distance_matrix(dist).figure, heatmap)
    tour.wrote(heatmap, "heatmap ordered by hierarchical clustering")
    save_figure(plot_embedding(dist, runs=run_names).figure, embedding)
    tour.wrote(embedding, "MDS embedding with each run's trajectory")
    tour.done(started)


def _persistence(tour: _Tour, final: dict[str, Path], out: Path) -> None:
    import pandas as pd

    from topo.cli._output import save_figure, write_csv
    from topo.io import load
    from topo.persistence import neural_persistence, persistence_diagrams
    from topo.plot import plot_persistence_diagrams

    table_path, figure = out / "persistence.csv", out / "persistence_diagrams.png"
    started = tour.begin("neural persistence of the three trained networks",
                         f"topo persistence {final['set-s0']} --csv {table_path} "
                         f"--plot {figure}")
    frames, graphs = [], {}
    for name, path in final.items():
        graphs[name] = load(path)
        frame = neural_persistence(graphs[name]).to_frame()
        frame.insert(0, "run", name)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    write_csv(table, table_path)
    tour.wrote(table_path, "per-layer neural persistence of each run")
    set0 = graphs["set-s0"]
    axes = plot_persistence_diagrams(persistence_diagrams(set0), names=set0.names)
    save_figure(axes[0].figure, figure)
    tour.wrote(figure, "persistence diagrams of set-s0")
    means = table.groupby("run", sort=False)["normalized"].mean()
    tour.done(started, "mean normalised: " + ", ".join(f"{k} {v:.3f}"
                                                      for k, v in means.items()))


def _interactions(tour: _Tour, snapshot: Path, out: Path) -> None:
    from topo.cli._output import save_figure, write_csv
    from topo.interactions import interaction_strengths
    from topo.io import load
    from topo.plot import plot_interactions

    table_path, figure = out / "interactions.csv", out / "interactions.png"
    started = tour.begin(f"strongest pixel-pair interactions of {snapshot.parent.parent.name}",
                         f"topo interactions {snapshot} --top 20 --csv {table_path} "
                         f"--plot {figure}")
    table = interaction_strengths(load(snapshot), order="pairwise", top=20)
    write_csv(table, table_path)
    tour.wrote(table_path, f"{len(table)} strongest pairs")
    save_figure(plot_interactions(table).figure, figure)
    tour.wrote(figure, "interaction bar chart")
    tour.done(started)


def _clear_run(path: Path) -> None:
    """Remove an earlier demo run at ``path`` (only a topo run directory is removed)."""
    import shutil

    from topo.errors import TopoError
    from topo.io.run import is_run_dir

    if is_run_dir(path):
        shutil.rmtree(path)
    elif path.exists() and any(path.iterdir()):
        raise TopoError(f"{path}: exists and is not a topo run; choose another --out")


def _last_snapshot(run: Path) -> Path:
    from topo.io.run import snapshot_paths

    return snapshot_paths(run)[-1]


def _accuracy_note(run: Path) -> str:
    from topo.io.run import read_metrics

    metrics = read_metrics(run)
    if "test_accuracy" in metrics.columns and len(metrics):
        return f"test accuracy {metrics['test_accuracy'].iloc[-1]:.3f}"
    return ""
