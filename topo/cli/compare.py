"""``topo compare`` and ``topo distances``: topology distance and overlap of networks.

:func:`compare_files` and :func:`distances_files` do each command's work (read, compute with
the API, write the requested files) and are what ``topo demo`` calls too; ``run_*`` print.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topo.cli._options import add_snapshot_options

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from topo.comparison import Comparison
    from topo.graph import LayeredGraph
    from topo.io.sequence import GraphSequence

ORDER = 30


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="NNSTD and connection overlap of two networks, layer by layer",
        description="Compare two networks (any files topo info reads): per layer the NNSTD "
                    "topology distance (Liu et al. 2020) beside its chance level (the NNSTD of "
                    "random networks with the same widths and connection counts), the Jaccard "
                    "index of the connection "
                    "sets raw and after matching hidden units, the Jaccard index expected of "
                    "two random masks with the same densities, and both densities. The 'all' "
                    "row averages NNSTD over the layers but pools the Jaccard indices and "
                    "densities over every layer's connections. The aligned Jaccard index can "
                    "be below the raw one: NNSTD's matching makes matched units' incoming "
                    "sets alike, it does not maximise the overlap (--align overlap does, "
                    "layer by layer).")
    p.add_argument("a", help="first network (file or folder)")
    p.add_argument("b", help="second network (file or folder)")
    p.add_argument("--reference", action="store_true",
                   help="the published algorithm exactly (output layer matched too, equal "
                        "widths needed)")
    # topo.comparison.ALIGNMENTS, spelled out so that `topo --help` imports no analysis
    p.add_argument("--align", choices=("nnstd", "overlap"), default="nnstd",
                   help="how hidden units are matched for the aligned Jaccard index: 'nnstd' "
                        "(default) by NNSTD's matchings, which make matched units' incoming "
                        "sets alike and can leave the aligned index below the raw one; "
                        "'overlap' by the matching with the most shared connections, layer "
                        "by layer given the previous layer's matching")
    p.add_argument("--chance-samples", type=int, default=None, metavar="N",
                   help="random network pairs for the NNSTD chance level (default 10; "
                        "0 skips it)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--csv", metavar="OUT",
                   help="also write the table (one row per layer and the 'all' row) as CSV "
                        "to OUT")
    p.add_argument("--plot", metavar="OUT", help="save a bar chart (.png, .svg or .pdf)")
    add_snapshot_options(p, both=True)
    p.set_defaults(func=run_compare)

    p = sub.add_parser(
        "distances", help="NNSTD and overlap matrices over many networks",
        description="The NNSTD distance and the pooled Jaccard index of every pair of "
                    "networks. PATH may be snapshot files, NNSTD folders, folders of "
                    "snapshots or run directories (their snapshots are used). Runs in local "
                    "processes with --n-jobs, or on a Dask cluster with --scheduler.")
    p.add_argument("paths", nargs="+", metavar="PATH", help="networks, folders or runs")
    p.add_argument("--reference", action="store_true",
                   help="the published NNSTD algorithm exactly (output layer matched too)")
    p.add_argument("--n-jobs", type=int, default=1, metavar="N",
                   help="local worker processes (-1: every core; default 1)")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="address of a Dask distributed scheduler, e.g. tcp://host:8786 "
                        "(workers must see the same paths)")
    p.add_argument("--out", metavar="CSV",
                   help="write the NNSTD matrix to this CSV file and the overlap matrix "
                        "beside it (NAME_overlap.csv)")
    p.add_argument("--plot", metavar="OUT",
                   help="save a clustered heatmap of the NNSTD matrix (.png, .svg or .pdf)")
    p.add_argument("--embedding", metavar="OUT",
                   help="save a 2-D map of the networks from the NNSTD matrix (metric MDS) "
                        "with each run's trajectory (.png, .svg or .pdf); the figure states "
                        "Kruskal's stress of the fit and a poor fit (0.2 or more) is warned "
                        "about")
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=run_distances)


def run_compare(args: argparse.Namespace) -> int:
    from topo.cli._options import snapshot_choice, snapshot_lines
    from topo.cli._output import format_table, print_json, print_lines

    a, b, comparison, written = compare_files(args.a, args.b, reference=args.reference,
                                              align=args.align, csv=args.csv, plot=args.plot,
                                              choice=snapshot_choice(args),
                                              chance_samples=args.chance_samples)
    if args.json:
        chosen = {side: {"path": g.metadata["snapshot"], "choice": g.metadata["snapshot_choice"]}
                  for side, g in (("a", a), ("b", b)) if "snapshot_choice" in g.metadata}
        print_json({"a": str(args.a), "b": str(args.b),
                    **({"snapshots": chosen} if chosen else {}), **comparison.to_dict()})
        print_lines(written, to_stderr=True)
        return 0
    print(f"A: {args.a}  ({a.metadata.get('format')}, {'-'.join(map(str, a.widths))})")
    print_lines(snapshot_lines(a, prefix="   "))
    print(f"B: {args.b}  ({b.metadata.get('format')}, {'-'.join(map(str, b.widths))})")
    print_lines(snapshot_lines(b, prefix="   "))
    print()
    print(format_table(comparison.to_frame()))
    print()
    print("all: NNSTD and its chance level are means over the layers; the Jaccard indices "
          "and densities pool every layer's connections")
    if args.align == "nnstd":
        print("jaccard_aligned: hidden units matched by NNSTD (alike incoming sets, not the "
              "most overlap: it can be below jaccard; --align overlap maximises it)")
    else:
        print("jaccard_aligned: hidden units matched for the most shared connections, layer "
              "by layer given the previous layer's matching")
    print()
    mode = ("published algorithm, output layer matched" if args.reference
            else "output units kept in place")
    print(f"NNSTD distance: {comparison.distance:.4g} ({mode})")
    print(comparison.summary_line())
    print_lines(written)
    return 0


def compare_files(a: str | Path, b: str | Path, *, reference: bool = False,
                  align: str = "nnstd", csv: str | Path | None = None,
                  plot: str | Path | None = None, choice: dict[str, Any] | None = None,
                  chance_samples: int | None = None
                  ) -> tuple[LayeredGraph, LayeredGraph, Comparison, list[str]]:
    """``topo compare``'s work: check the outputs, read both networks, compare, write.

    Returns the two graphs, the :class:`~topo.comparison.Comparison` and the ``wrote ...``
    notes of the files written (``csv``: the comparison table; ``plot``: its bar chart).
    ``choice`` (``epoch``, ``level``, ``best``) chooses the snapshot of each of ``a`` and
    ``b`` that is a run or a folder of checkpoints (:func:`topo.io.load`).
    """
    from topo.cli._output import check_outputs
    from topo.comparison import CHANCE_SAMPLES, compare
    from topo.errors import ConfigError
    from topo.io import load

    if chance_samples is None:
        chance_samples = CHANCE_SAMPLES
    if chance_samples < 0 or chance_samples == 1:
        raise ConfigError(f"--chance-samples must be 0 (skip) or at least 2, got {chance_samples}")
    check_outputs(files=(csv,), figures=(plot,))
    choice = choice or {}
    # the choice applies to the runs and folders among a and b; with none, it is refused
    collections = [_is_collection(p) for p in (a, b)]
    graph_a, graph_b = (load(p, **(choice if is_one or not any(collections) else {}))
                        for p, is_one in zip((a, b), collections))
    comparison = compare(graph_a, graph_b, reference=reference, align=align,
                         chance_samples=chance_samples)
    written = []
    # pandas only for the outputs that need a DataFrame: --json alone starts without it
    if csv:
        from topo.cli._output import write_csv

        written.append(f"wrote {write_csv(comparison.to_frame(), csv)}")
    if plot:
        from topo.cli._output import save_figure
        from topo.plot import plot_comparison

        written.append(f"wrote {save_figure(plot_comparison(comparison).figure, plot)}")
    return graph_a, graph_b, comparison, written


def run_distances(args: argparse.Namespace) -> int:
    from topo.cli._output import count, format_table, print_json, print_lines

    progress = sys.stderr.isatty() if args.progress is None else args.progress
    sequence, dist, over, written = distances_files(
        args.paths, reference=args.reference, n_jobs=args.n_jobs, scheduler=args.scheduler,
        progress=progress, out=args.out, plot=args.plot, embedding=args.embedding)
    for note in written:
        if note.startswith("warning: "):
            print(f"topo distances: {note}", file=sys.stderr)
    written = [note for note in written if not note.startswith("warning: ")]
    if args.json:
        print_json({
            "labels": sequence.labels,
            "paths": [str(p) for p in sequence.sources],
            "mode": "reference" if args.reference else "default",
            "nnstd": dist.to_numpy(),
            "overlap": over.to_numpy(),
        })
        print_lines(written, to_stderr=True)
        return 0
    n = len(sequence)
    print(f"NNSTD distance ({count(n, 'network')}, {count(n * (n - 1) // 2, 'pair')})")
    print(format_table(_labelled(dist), digits=3))
    print()
    print("Jaccard index of the connection sets (all layers pooled)")
    print(format_table(_labelled(over), digits=3))
    if written:
        print()
    print_lines(written)
    return 0


def distances_files(paths: Sequence[str | Path], *, reference: bool = False, n_jobs: int = 1,
                    scheduler: str | None = None, progress: bool = False,
                    out: str | Path | None = None, plot: str | Path | None = None,
                    embedding: str | Path | None = None
                    ) -> tuple[GraphSequence, pandas.DataFrame, pandas.DataFrame, list[str]]:
    """``topo distances``'s work: check the outputs, expand the paths, compute, write.

    Returns the networks (a :class:`~topo.io.sequence.GraphSequence` whose labels label the
    matrices), the NNSTD and pooled-Jaccard matrices and the ``wrote ...`` notes (``out``: the
    NNSTD matrix as CSV and the overlap matrix beside it, ``NAME_overlap.csv``; ``plot``: the
    clustered heatmap; ``embedding``: the MDS map with each run's trajectory, and a
    ``warning: ...`` note when its fit is poor).
    """
    from topo.cli._output import check_outputs, write_csv
    from topo.errors import EmptyInputError
    from topo.io import read_sequence
    from topo.pairwise import distance_matrix

    if out:
        out_path = Path(out)
        overlap_out = out_path.with_name(f"{out_path.stem}_overlap{out_path.suffix or '.csv'}")
        check_outputs(files=(out_path, overlap_out))
    check_outputs(figures=(plot, embedding))
    sequence = read_sequence(list(paths))
    if len(sequence) < 2:
        raise EmptyInputError(f"{paths[0]}: a distance matrix needs at least two networks, "
                              f"found {len(sequence)}")
    dist, over = distance_matrix(sequence, reference=reference, n_jobs=n_jobs,
                                 scheduler=scheduler, progress=progress)
    metric = "NNSTD (published algorithm)" if reference else "NNSTD"
    written = []
    if out:
        write_csv(_labelled(dist), out)
        write_csv(_labelled(over), overlap_out)
        written.append(f"wrote {out} and {overlap_out}")
    if plot:
        from topo.cli._output import save_figure
        from topo.plot import plot_distance_matrix

        save_figure(plot_distance_matrix(dist, metric=metric).figure, plot)
        written.append(f"wrote {plot}")
    if embedding:
        import warnings

        from topo.cli._output import save_figure
        from topo.plot import EmbeddingWarning, plot_embedding

        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EmbeddingWarning)
            ax = plot_embedding(dist, runs=_run_names(sequence), metric=metric)
        save_figure(ax.figure, embedding)
        written.append(f"wrote {embedding} (Kruskal stress-1 {ax.stress_:.3f})")
        written += [f"warning: {w.message}" for w in caught
                    if issubclass(w.category, EmbeddingWarning)]
    return sequence, dist, over, written


def _is_collection(path: str | Path) -> bool:
    """Whether ``path`` is a run or a folder of checkpoints (whose snapshot a choice picks)."""
    from topo.io.run import is_run_dir
    from topo.io.sequence import is_checkpoint_folder

    return is_run_dir(Path(path)) or is_checkpoint_folder(path)


def _run_names(sequence: GraphSequence) -> list[str] | None:
    """Every snapshot's run for the embedding's trajectories: the run folder's name when all
    come from one run, else None (the run part of each label, which is unique)."""
    runs = set(sequence.runs)
    if len(runs) == 1 and None not in runs:
        return [next(iter(runs)).name] * len(sequence)
    return None


def _labelled(matrix: pandas.DataFrame) -> pandas.DataFrame:
    """A labelled square matrix with its labels as a first ``label`` column (for CSV)."""
    frame = matrix.copy()
    frame.insert(0, "label", frame.index)
    return frame.reset_index(drop=True)
