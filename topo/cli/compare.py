"""``topo compare`` and ``topo distances``: topology distance and overlap of networks."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from topo.distance import NNSTDResult

ORDER = 30

_FILE_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare", help="NNSTD and connection overlap of two networks, layer by layer",
        description="Compare two networks (any files topo info reads): per layer the NNSTD "
                    "topology distance (Liu et al. 2020), the Jaccard index of the connection "
                    "sets raw and after matching hidden units, the Jaccard index expected of "
                    "two random masks with the same densities, and both densities.")
    p.add_argument("a", help="first network (file or folder)")
    p.add_argument("b", help="second network (file or folder)")
    p.add_argument("--reference", action="store_true",
                   help="the published algorithm exactly (output layer matched too, equal "
                        "widths needed)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--csv", metavar="OUT",
                   help="also write the table (one row per layer and the pooled 'all' row) "
                        "as CSV to OUT")
    p.add_argument("--plot", metavar="OUT", help="save a bar chart (.png, .svg or .pdf)")
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
    p.add_argument("--json", action="store_true", help="print JSON instead of tables")
    p.add_argument("--progress", action=argparse.BooleanOptionalAction, default=None,
                   help="progress bar on stderr (default: when stderr is a terminal)")
    p.set_defaults(func=run_distances)


def run_compare(args: argparse.Namespace) -> int:
    from topo.cli._output import check_outputs, print_json
    from topo.distance import nnstd
    from topo.io import load
    from topo.overlap import overlap_records

    check_outputs(files=(args.csv,), figures=(args.plot,))
    a, b = load(args.a), load(args.b)
    result = nnstd(a, b, reference=args.reference)
    overlap = overlap_records(a, b, result.matchings)
    rows = _comparison_rows(result, overlap)
    written = []
    # pandas only for the outputs that need a DataFrame: --json alone starts without it
    if args.csv:
        from topo.cli._output import write_csv

        written.append(f"wrote {write_csv(_frame(rows), args.csv)}")
    if args.plot:
        from topo.cli._output import save_figure
        from topo.plot import plot_comparison

        ax = plot_comparison(_frame(rows))
        written.append(f"wrote {save_figure(ax.figure, args.plot)}")
    if args.json:
        print_json({
            "a": str(args.a),
            "b": str(args.b),
            "mode": "reference" if args.reference else "default",
            "nnstd": {"per_layer": result.per_layer, "distance": result.distance},
            "overlap": {"per_layer": _per_layer(overlap), "all": overlap[-1]},
            "layers": _per_layer(rows),
        })
        for line in written:
            print(line, file=sys.stderr)
        return 0
    from topo.cli._output import format_table

    print(f"A: {args.a}  ({a.metadata.get('format')}, {'-'.join(map(str, a.widths))})")
    print(f"B: {args.b}  ({b.metadata.get('format')}, {'-'.join(map(str, b.widths))})")
    print()
    print(format_table(_frame(rows)))
    print()
    mode = ("published algorithm, output layer matched" if args.reference
            else "output units kept in place")
    print(f"NNSTD distance: {result.distance:.4g} ({mode})")
    for line in written:
        print(line)
    return 0


def run_distances(args: argparse.Namespace) -> int:
    from topo.cli._output import check_outputs, format_table, print_json, write_csv
    from topo.distance import distance_matrix

    if args.out:
        out = Path(args.out)
        overlap_out = out.with_name(f"{out.stem}_overlap{out.suffix or '.csv'}")
        check_outputs(files=(out, overlap_out))
    check_outputs(figures=(args.plot,))
    paths = expand_paths(args.paths)
    if len(paths) < 2:
        from topo.errors import TopoError

        raise TopoError(f"{args.paths[0]}: a distance matrix needs at least two networks, "
                        f"found {len(paths)}")
    labels = short_labels(paths)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    dist, over = distance_matrix(paths, reference=args.reference, n_jobs=args.n_jobs,
                                 scheduler=args.scheduler, progress=progress, labels=labels)
    written = []
    if args.out:
        write_csv(_labelled(dist), out)
        write_csv(_labelled(over), overlap_out)
        written.append(f"wrote {args.out} and {overlap_out}")
    if args.plot:
        from topo.cli._output import save_figure
        from topo.plot import plot_distance_matrix

        ax = plot_distance_matrix(dist)
        save_figure(ax.figure, args.plot)
        written.append(f"wrote {args.plot}")
    if args.json:
        print_json({
            "labels": labels,
            "paths": [str(p) for p in paths],
            "mode": "reference" if args.reference else "default",
            "nnstd": dist.to_numpy(),
            "overlap": over.to_numpy(),
        })
        for line in written:
            print(line, file=sys.stderr)
        return 0
    print(f"NNSTD distance ({len(paths)} networks, {len(paths) * (len(paths) - 1) // 2} "
          "pairs)")
    print(format_table(_labelled(dist), digits=3))
    print()
    print("Jaccard index of the connection sets (all layers pooled)")
    print(format_table(_labelled(over), digits=3))
    if written:
        print()
    for line in written:
        print(line)
    return 0


def comparison_table(result: NNSTDResult, overlap: pandas.DataFrame) -> pandas.DataFrame:
    """The ``topo compare`` table: one row per layer and a pooled ``all`` row.

    Columns: ``layer``, ``name``, ``nnstd`` (the network distance on the pooled row),
    ``jaccard``, ``jaccard_aligned`` (after re-indexing B's hidden units by the NNSTD
    matchings), ``jaccard_chance`` (``E[J]`` of two random masks with the same counts),
    ``density_a``, ``density_b``.
    """
    return _frame(_comparison_rows(result, overlap.to_dict(orient="records")))


def expand_paths(paths: list[str]) -> list[Path]:
    """Networks named by the command line: files and network folders as given, run
    directories and folders of snapshots expanded to their snapshots (time order)."""
    from topo.errors import UnreadableFileError
    from topo.io import snapshot_paths
    from topo.io.nnstd_folder import is_nnstd_folder
    from topo.io.run import is_run_dir

    out: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UnreadableFileError(f"{path}: no such file or folder")
        if is_run_dir(path) or (path.is_dir() and not is_nnstd_folder(path)):
            out.extend(snapshot_paths(path))
        else:
            out.append(path)
    return out


def short_labels(paths: list[Path]) -> list[str]:
    """Shortest unique trailing parts of the paths (suffix and ``snapshots/`` dropped).

    ``runs/set_1/snapshots/epoch_0010.safetensors`` becomes ``epoch_0010`` when that is
    unique, else ``set_1/epoch_0010``, and so on. Files that differ only by their suffix
    (``in/tiny.pt``, ``in/tiny.safetensors``) keep it. A path given more than once gets the
    same label with ``#2``, ``#3`` on its repeats; it does not lengthen the other labels.
    """
    keys = [os.path.abspath(p) for p in paths]
    distinct = list(dict.fromkeys(keys))
    given = {key: Path(p) for key, p in zip(reversed(keys), reversed(paths))}
    chains = [_label_chain(given[key], keep_suffix=False) for key in distinct]
    full = ["/".join(reversed(c)) for c in chains]
    for i, key in enumerate(distinct):
        if full.count(full[i]) > 1:  # only the suffix tells these apart
            chains[i] = _label_chain(given[key], keep_suffix=True)
    depth = max(len(c) for c in chains)
    for k in range(1, depth + 1):
        labels = ["/".join(reversed(c[:k])) for c in chains]
        if len(set(labels)) == len(labels):
            break
    labels = [label if labels.count(label) == 1 else key  # e.g. x/e.pt, x/snapshots/e.pt
              for label, key in zip(labels, distinct)]
    label_of = dict(zip(distinct, labels))
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        out.append(label_of[key] if seen[key] == 1 else f"{label_of[key]}#{seen[key]}")
    return out


def _labelled(matrix: pandas.DataFrame) -> pandas.DataFrame:
    frame = matrix.copy()
    frame.insert(0, "label", frame.index)
    return frame.reset_index(drop=True)


def _comparison_rows(result: NNSTDResult, overlap: list[dict]) -> list[dict]:
    """Rows of :func:`comparison_table` from the rows of :func:`topo.overlap.overlap_records`."""
    nnstd_values = [*result.per_layer, result.distance]
    return [{
        "layer": row["layer"],
        "name": row["name"],
        "nnstd": float(value),
        "jaccard": row["jaccard"],
        "jaccard_aligned": row["aligned_jaccard"],
        "jaccard_chance": row["expected_jaccard_random"],
        "density_a": row["density_a"],
        "density_b": row["density_b"],
    } for row, value in zip(overlap, nnstd_values)]


def _per_layer(rows: list[dict]) -> list[dict]:
    """The per-layer rows (pooled row dropped) with ``layer`` as an integer, for JSON."""
    from topo.cli._output import to_jsonable

    return [to_jsonable({**row, "layer": int(row["layer"])}) for row in rows
            if row["layer"] != "all"]


def _frame(rows: list[dict]) -> pandas.DataFrame:
    import pandas as pd

    return pd.DataFrame(rows)


def _label_chain(path: Path, keep_suffix: bool) -> list[str]:
    """The file name, then its folders upwards (``snapshots`` and the root left out)."""
    name = path.name
    if not keep_suffix and path.suffix.lower() in _FILE_SUFFIXES:
        name = path.stem
    parts = Path(os.path.abspath(path)).parent.parts
    return [name] + [q for q in reversed(parts) if q not in ("snapshots", os.sep)]
