"""``topo demo``: the whole tour on scikit-learn's digits, in under a minute on two cores.

Trains two SET runs (seeds 0 and 1) and a dense run, then compares the two SET networks,
follows the topology evolution of the first run, builds the NNSTD distance matrix of both SET
runs' snapshots with its clustered heatmap and MDS embedding, and reads neural persistence
and feature interactions from the trained networks. Every result is a file under ``--out``;
the demo prints where each one went and the command that makes it by hand (and says so
where the command line makes only part of it). Each step calls the function that does that
command's work (``compare_files``, ``evolution_files``, ...), so the printed commands make
the same files.
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
DEMO_RUNS = (("set-s0", "set", 0), ("set-s1", "set", 1), ("dense-s0", "dense", 0))
DEMO_TOP_PAIRS = 20

#: Every file the tour writes under --out (figures by their suffix), checked before training.
DEMO_FILES = (
    "compare.csv", "compare.png", "evolution.csv", "evolution.png", "input_connectivity.png",
    "distances.csv", "distances_overlap.csv", "distance_matrix.png", "embedding.png",
    "persistence.csv", "persistence_diagrams.png", "interactions.csv", "interactions.png",
)


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
    _check_outputs(out)
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

    def begin(self, title: str, command: str | None = None, note: str | None = None) -> float:
        self.step += 1
        print(f"\n[{self.step}] {title}")
        if command:
            print(f"    $ {command}")
        if note:
            print(f"    ({note})")
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
    for name, method, seed in DEMO_RUNS:
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
    from topo.cli.compare import compare_files

    figure, table_path = out / "compare.png", out / "compare.csv"
    started = tour.begin("compare the two SET networks (NNSTD, overlap)",
                         f"topo compare {a} {b} --csv {table_path} --plot {figure}")
    _, _, comparison, _ = compare_files(a, b, csv=table_path, plot=figure)
    tour.wrote(table_path, "per-layer NNSTD and Jaccard")
    tour.wrote(figure, "bar chart")
    tour.done(started, f"NNSTD {comparison.distance:.3f}")


def _evolution(tour: _Tour, run: Path, out: Path) -> None:
    from topo.cli.evolution import evolution_files

    table_path, figure, inputs = (out / "evolution.csv", out / "evolution.png",
                                  out / "input_connectivity.png")
    started = tour.begin("topology evolution of set-s0",
                         f"topo evolution {run} --csv {table_path} --plot {figure} "
                         f"--inputs-plot {inputs}")
    frame, _ = evolution_files(run, csv=table_path, plot=figure, inputs_plot=inputs)
    tour.wrote(table_path, f"{_count(len(frame), 'row')}: one per snapshot and layer")
    tour.wrote(figure, "evolution panel")
    tour.wrote(inputs, "outgoing connections per pixel over epochs")
    sparse = frame[(frame["snapshot"] > 0) & (frame["density"] < 1)]
    note = (f"mean churn of sparse layers {sparse['churn'].mean():.3f}" if len(sparse)
            else "")
    tour.done(started, note)


def _distances(tour: _Tour, runs: list[Path], out: Path) -> None:
    from topo.cli.compare import distances_files
    from topo.io import read_sequence

    paths = []
    for run in runs:
        snaps = read_sequence(run).sources
        keep = snaps[::DEMO_EMBED_EVERY]
        if keep[-1] != snaps[-1]:
            keep.append(snaps[-1])
        paths += keep
    table_path, heatmap, embedding = (out / "distances.csv", out / "distance_matrix.png",
                                      out / "embedding.png")
    overlap_path = out / "distances_overlap.csv"
    # the exact snapshots, two per line, as a shell command split over lines
    listed = " \\\n        ".join(" ".join(str(p) for p in paths[i:i + 2])
                                   for i in range(0, len(paths), 2))
    started = tour.begin(
        f"NNSTD distance matrix of {len(paths)} snapshots of the two SET runs "
        f"(every {DEMO_EMBED_EVERY}rd snapshot of each and its last)",
        f"topo distances \\\n        {listed} \\\n        --n-jobs 2 --out {table_path} "
        f"--plot {heatmap} --embedding {embedding}")
    _, dist, _, notes = distances_files(paths, n_jobs=2, out=table_path, plot=heatmap,
                                        embedding=embedding)
    tour.wrote(table_path, f"{len(paths)} x {len(paths)} NNSTD matrix")
    tour.wrote(overlap_path, "pooled Jaccard index of every pair")
    tour.wrote(heatmap, "heatmap ordered by hierarchical clustering")
    fit = next(n for n in notes if n.startswith(f"wrote {embedding} (")).split(" (", 1)[1]
    tour.wrote(embedding, f"MDS embedding with each run's trajectory; {fit.rstrip(')')}")
    for note in notes:
        if note.startswith("warning: "):
            print(f"    {note}")
    tour.done(started)


def _persistence(tour: _Tour, final: dict[str, Path], out: Path) -> None:
    import pandas as pd

    from topo.cli._output import write_csv
    from topo.cli.persistence import persistence_file

    table_path, figure = out / "persistence.csv", out / "persistence_diagrams.png"
    started = tour.begin(
        "neural persistence of the three trained networks",
        f"topo persistence {final['set-s0']} --plot {figure}",
        f"run `topo persistence FILE --csv OUT` once per network for the tables; "
        f"{table_path.name} stacks the three with a run column")
    frames = []
    for name, path in final.items():
        _, result, _ = persistence_file(path, plot=figure if name == "set-s0" else None)
        frame = result.to_frame()
        frame.insert(0, "run", name)
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    write_csv(table, table_path)
    tour.wrote(table_path, "per-layer neural persistence of each run")
    tour.wrote(figure, "each layer's persistence of set-s0 (histograms of its deaths)")
    means = table.groupby("run", sort=False)["normalized"].mean()
    tour.done(started, "mean normalised: " + ", ".join(f"{k} {v:.3f}"
                                                      for k, v in means.items()))


def _interactions(tour: _Tour, snapshot: Path, out: Path) -> None:
    from topo.cli.persistence import interactions_file

    table_path, figure = out / "interactions.csv", out / "interactions.png"
    started = tour.begin(f"strongest pixel-pair interactions of {snapshot.parent.parent.name}",
                         f"topo interactions {snapshot} --top {DEMO_TOP_PAIRS} "
                         f"--csv {table_path} --plot {figure}")
    table, _ = interactions_file(snapshot, top=DEMO_TOP_PAIRS, csv=table_path, plot=figure)
    tour.wrote(table_path, f"the strongest {_count(len(table), 'pair')}")
    tour.wrote(figure, f"the same {_count(len(table), 'pair')} with their strengths")
    tour.done(started)


def _count(n: int, noun: str) -> str:
    from topo.cli._output import count

    return count(n, noun)


def _check_outputs(out: Path) -> None:
    """Fail before any training when a result of the tour could not be written."""
    from topo.cli._output import check_figure_path, check_output_path
    from topo.errors import OutputError

    if out.exists() and not out.is_dir():
        raise OutputError(f"{out}: is a file; --out needs a folder (new or existing)")
    for name in DEMO_FILES:
        (check_figure_path if name.endswith(".png") else check_output_path)(out / name)
    for name, _, _ in DEMO_RUNS:
        run = out / "runs" / name
        _check_replaceable(run)
        check_output_path(run / "run.json")


def _check_replaceable(path: Path) -> None:
    """Only an earlier topo run (or nothing, or an empty folder) may be at a run's path."""
    from topo.errors import OutputError
    from topo.io.run import is_run_dir

    if path.exists() and not path.is_dir():
        raise OutputError(f"{path}: exists and is a file; choose another --out")
    if path.is_dir() and not is_run_dir(path) and any(path.iterdir()):
        raise OutputError(f"{path}: exists and is not a topo run; choose another --out")


def _clear_run(path: Path) -> None:
    """Remove an earlier demo run at ``path`` (only a topo run directory is removed)."""
    import shutil

    from topo.io.run import is_run_dir

    _check_replaceable(path)
    if is_run_dir(path):
        shutil.rmtree(path)


def _last_snapshot(run: Path) -> Path:
    from topo.io.run import snapshot_paths

    return snapshot_paths(run)[-1]


def _accuracy_note(run: Path) -> str:
    from topo.io.run import read_metrics

    metrics = read_metrics(run)
    if "test_accuracy" in metrics.columns and len(metrics):
        return f"test accuracy {metrics['test_accuracy'].iloc[-1]:.3f}"
    return ""
