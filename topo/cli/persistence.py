"""``topo persistence`` and ``topo interactions``: persistent homology of a checkpoint's weights.

:func:`persistence_file` and :func:`interactions_file` do each command's work (and are what
``topo demo`` calls); ``run_*`` print, with a ``wrote`` note for every file written (on stderr
under ``--json``).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topo.cli._options import add_snapshot_options

if TYPE_CHECKING:  # pragma: no cover
    import pandas

    from topo.graph import LayeredGraph
    from topo.persistence import NeuralPersistenceResult

ORDER = 40

# topo.interactions.METHODS and ORDERS, spelled out so that `topo --help` imports no scipy
# (tests/cli/test_persistence.py checks that they agree)
METHODS = ("ph", "nid", "ph2", "ph2n")
ORDERS = ("pairwise", "any")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "persistence", help="neural persistence of every layer of a checkpoint",
        description="0-dimensional persistent homology of every layer's weight filtration "
                    "(weights normalised by the largest |w| of the network) and neural "
                    "persistence (Rieck et al., ICLR 2019): per-layer total persistence, its "
                    "normalised value, and their mean.")
    p.add_argument("path", help="checkpoint file, NNSTD folder or run directory")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--csv", metavar="FILE", help="also write the per-layer table as CSV")
    p.add_argument("--plot", metavar="FIGURE",
                   help="also draw the per-layer persistence diagrams (.png, .svg or .pdf)")
    add_snapshot_options(p)
    p.set_defaults(func=run_persistence)

    p = sub.add_parser(
        "interactions", help="rank feature interactions read from a network's weights",
        description="Feature interactions from the weights of a trained network: 'ph' is "
                    "topo's persistence score, 'nid' Neural Interaction Detection (Tsang et "
                    "al., ICLR 2018), 'ph2' the persistence score of the squared weights, "
                    "'ph2n' ph2's pairwise strength as a share of the two features' own "
                    "persistence (pairwise only). "
                    "Features are 0-based input indices, strongest first. "
                    "Pairwise lists every pair (zero strengths included) unless --top cuts "
                    "it; --top applies after the pruning of any-order candidates.")
    p.add_argument("path", help="checkpoint file, NNSTD folder or run directory")
    p.add_argument("--method", choices=METHODS, default="ph",
                   help="scoring method (default: ph; ph2: ph on the squared weights; ph2n: "
                        "ph2 normalised by the features' own persistence, pairwise only)")
    p.add_argument("--order", choices=ORDERS, default="pairwise",
                   help="pairs only, or sets of any size (default: pairwise)")
    p.add_argument("--top", type=_positive_int, metavar="K",
                   help="keep only the K strongest interactions")
    p.add_argument("--keep-subsets", action="store_true",
                   help="with --order any: also list the candidate sets that are strict "
                        "subsets of a stronger one (pruned by default, as Tsang et al. 2018 "
                        "do; the command says how many were)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--csv", metavar="FILE", help="also write the ranked table as CSV")
    p.add_argument("--plot", metavar="FIGURE",
                   help="also draw the strongest interactions as bars (.png, .svg or .pdf)")
    add_snapshot_options(p)
    p.set_defaults(func=run_interactions)


def run_persistence(args: argparse.Namespace) -> int:
    from topo.cli._options import snapshot_choice, snapshot_lines
    from topo.cli._output import format_table, print_json, print_lines

    graph, result, written = persistence_file(args.path, csv=args.csv, plot=args.plot,
                                              choice=snapshot_choice(args))
    if args.json:
        print_json({**_source(graph), **result.to_dict()})
        print_lines(written, to_stderr=True)
        return 0
    print(args.path)
    for line in snapshot_lines(graph):
        print(line)
    print(format_table(result.to_frame()))
    print()
    print(f"mean normalized neural persistence: {result.mean_normalized:.4g}")
    print_lines(written)
    return 0


def persistence_file(path: str | Path, *, csv: str | Path | None = None,
                     plot: str | Path | None = None, choice: dict[str, Any] | None = None
                     ) -> tuple[LayeredGraph, NeuralPersistenceResult, list[str]]:
    """``topo persistence``'s work: check the outputs, read, compute, write.

    Returns the graph, its :class:`~topo.persistence.NeuralPersistenceResult` and the
    ``wrote ...`` notes (``csv``: the per-layer table; ``plot``: the persistence diagrams).
    ``choice`` (``epoch``, ``level``, ``best``) chooses the snapshot of a run or folder.
    """
    from topo.cli._output import check_outputs, write_csv
    from topo.io import load
    from topo.persistence import neural_persistence

    check_outputs(files=(csv,), figures=(plot,))
    graph = load(path, **(choice or {}))
    result = neural_persistence(graph)
    written = []
    if csv:
        written.append(f"wrote {write_csv(result.to_frame(), csv)}")
    if plot:
        from topo.cli._output import save_figure
        from topo.persistence import persistence_diagrams
        from topo.plot import plot_persistence_diagrams

        axes = plot_persistence_diagrams(persistence_diagrams(graph), names=graph.names)
        written.append(f"wrote {save_figure(axes.ravel()[0].figure, plot)}")
    return graph, result, written


def run_interactions(args: argparse.Namespace) -> int:
    from topo.cli._options import snapshot_choice
    from topo.cli._output import format_table, print_json, print_lines

    table, written = interactions_file(args.path, method=args.method, order=args.order,
                                       top=args.top, csv=args.csv, plot=args.plot,
                                       choice=snapshot_choice(args),
                                       keep_subsets=args.keep_subsets)
    if args.json:
        document: dict[str, Any] = {**table.attrs["source"], "method": args.method,
                                    "order": args.order, "interactions": [
            {"features": list(f), "strength": float(s)}
            for f, s in zip(table["features"], table["strength"])
        ]}
        if args.order == "any":
            document.update(candidates=table.attrs["candidates"], pruned=table.attrs["pruned"])
        if "auc" in table.attrs:
            document.update(true_interactions=table.attrs["truth"], auc=table.attrs["auc"])
        print_json(document)
        print_lines(written, to_stderr=True)
        return 0
    shown = table.assign(features=[",".join(map(str, f)) for f in table["features"]])
    print(f"{args.path}: {args.order} interactions by {args.method}")
    for line in table.attrs.get("snapshot_lines", []):
        print(line)
    print(format_table(shown))
    if args.order == "any":
        print(_pruning_line(table.attrs, len(table), args.top))
    if "auc" in table.attrs:
        print(f"pairwise AUC of the whole ranking against the run's true interactions "
              f"({len(table.attrs['truth'])} in run.json): {table.attrs['auc']:.4g}")
    print_lines(written)
    return 0


def interactions_file(path: str | Path, *, method: str = "ph", order: str = "pairwise",
                      top: int | None = None, csv: str | Path | None = None,
                      plot: str | Path | None = None, choice: dict[str, Any] | None = None,
                      keep_subsets: bool = False) -> tuple[pandas.DataFrame, list[str]]:
    """``topo interactions``'s work: check the outputs, read, rank, write.

    Returns the ranked table (:func:`topo.interaction_strengths`) and the ``wrote ...``
    notes (``csv``: the table, features as ``"i j"``; ``plot``: the strongest 20, features
    as pixel coordinates when the network records its input's shape). When the network
    comes from a run that knows its true interactions (a synthetic benchmark), they are
    ``table.attrs["truth"]``, highlighted in the figure, and for pairwise rankings the AUC
    of the whole ranking against them is ``table.attrs["auc"]``. ``choice`` (``epoch``,
    ``level``, ``best``) chooses the snapshot of a run or folder; which one was read is in
    ``table.attrs["snapshot_lines"]``.
    """
    from topo.cli._options import snapshot_lines
    from topo.cli._output import check_outputs, write_csv
    from topo.interactions import interaction_auc, interaction_strengths
    from topo.io import load

    check_outputs(files=(csv,), figures=(plot,))
    graph = load(path, **(choice or {}))
    truth = _true_interactions(path)
    table = interaction_strengths(graph, method=method, order=order,
                                  top=None if truth and order == "pairwise" else top,
                                  keep_subsets=keep_subsets)
    attrs: dict[str, Any] = {**table.attrs, "snapshot_lines": snapshot_lines(graph),
                             "source": _source(graph)}
    if truth:
        attrs["truth"] = truth
        if order == "pairwise":
            attrs["auc"] = interaction_auc(table, truth)
            table = table.head(top) if top is not None else table
    table.attrs.update(attrs)
    written = []
    if csv:
        written.append(f"wrote {write_csv(table, csv)}")
    if plot:
        from topo.cli._output import save_figure
        from topo.plot import plot_interactions

        figure = plot_interactions(table, top=min(len(table), 20) or 1, truth=truth,
                                   input_shape=graph.input_shape, auc=attrs.get("auc"),
                                   method=method).figure
        written.append(f"wrote {save_figure(figure, plot)}")
    return table, written


def _source(graph: LayeredGraph) -> dict[str, Any]:
    """The file a JSON document was computed from, and why that one for a run or folder."""
    out: dict[str, Any] = {"source": graph.source}
    if "snapshot_choice" in graph.metadata:
        out["snapshot_choice"] = graph.metadata["snapshot_choice"]
    return out


def _pruning_line(attrs: dict[str, Any], shown: int, top: int | None) -> str:
    """What the any-order ranking kept of its candidates, and why."""
    from topo.cli._output import count

    candidates, pruned = attrs.get("candidates", 0), attrs.get("pruned", 0)
    kept = candidates - pruned
    line = (f"{kept} of {count(candidates, 'candidate set')} kept"
            + (f", {shown} shown (--top {top})" if top is not None and shown < kept else ""))
    if pruned:
        line += (f"; {pruned} dropped as {'a strict subset' if pruned == 1 else 'strict subsets'}"
                 " of a stronger set (Tsang et al. 2018); --keep-subsets lists them too")
    return line


def _true_interactions(path: str | Path) -> list[tuple[int, ...]]:
    """The ground-truth interactions the run of ``path`` records (synthetic data), else []."""
    from topo.io.run import read_manifest, run_of

    run = run_of(path)
    if run is None:
        return []
    truth = read_manifest(run).get("interactions") or []
    return [tuple(int(f) for f in t) for t in truth]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
