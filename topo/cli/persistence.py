"""``topo persistence`` and ``topo interactions``: persistent homology of a checkpoint's weights."""

from __future__ import annotations

import argparse

ORDER = 40


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
    p.add_argument("--method", choices=["ph", "nid", "ph2", "ph2n"], default="ph",
                   help="scoring method (default: ph; ph2: ph on the squared weights; ph2n: "
                        "ph2 normalised by the features' own persistence, pairwise only)")
    p.add_argument("--order", choices=["pairwise", "any"], default="pairwise",
                   help="pairs only, or sets of any size (default: pairwise)")
    p.add_argument("--top", type=_positive_int, metavar="K",
                   help="keep only the K strongest interactions")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.add_argument("--csv", metavar="FILE", help="also write the ranked table as CSV")
    p.add_argument("--plot", metavar="FIGURE",
                   help="also draw the strongest interactions as bars (.png, .svg or .pdf)")
    p.set_defaults(func=run_interactions)


def run_persistence(args: argparse.Namespace) -> int:
    from topo.cli._output import check_outputs, format_table, print_json, write_csv
    from topo.io import load
    from topo.persistence import neural_persistence

    check_outputs(files=(args.csv,), figures=(args.plot,))
    graph = load(args.path)
    result = neural_persistence(graph)
    table = result.to_frame()
    if args.csv:
        write_csv(table, args.csv)
    if args.plot:
        from topo.cli._output import save_figure
        from topo.persistence import persistence_diagrams
        from topo.plot import plot_persistence_diagrams

        axes = plot_persistence_diagrams(persistence_diagrams(graph), names=graph.names)
        save_figure(axes.ravel()[0].figure, args.plot)
    if args.json:
        print_json(result.to_dict())
        return 0
    print(args.path)
    print(format_table(table))
    print()
    print(f"mean normalized neural persistence: {result.mean_normalized:.4g}")
    return 0


def run_interactions(args: argparse.Namespace) -> int:
    from topo.cli._output import check_outputs, format_table, print_json, write_csv
    from topo.interactions import interaction_strengths
    from topo.io import load

    check_outputs(files=(args.csv,), figures=(args.plot,))
    graph = load(args.path)
    table = interaction_strengths(graph, method=args.method, order=args.order, top=args.top)
    if args.csv:
        out = table.assign(features=[" ".join(map(str, f)) for f in table["features"]])
        write_csv(out, args.csv)
    if args.plot:
        from topo.cli._output import save_figure
        from topo.plot import plot_interactions

        save_figure(plot_interactions(table, top=min(len(table), 20) or 1).figure, args.plot)
    if args.json:
        print_json({"interactions": [
            {"features": list(f), "strength": float(s)}
            for f, s in zip(table["features"], table["strength"])
        ]})
        return 0
    shown = table.assign(features=[",".join(map(str, f)) for f in table["features"]])
    print(f"{args.path}: {args.order} interactions by {args.method}")
    print(format_table(shown))
    return 0


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value
