"""``topo info`` and ``topo export``: what a checkpoint holds, and its graph as a file."""

from __future__ import annotations

import argparse

ORDER = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info", help="show the format and the layer table of a checkpoint",
        description="Read a checkpoint (topo snapshot, run directory, PyTorch state_dict, "
                    "safetensors, NNSTD folder) and print its layers.")
    p.add_argument("path", help="file or folder to read")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=run_info)

    p = sub.add_parser(
        "export", help="write a checkpoint's graph as GraphML, GEXF or an edge list",
        description="Write the layered graph with global node ids (inputs first). The edge "
                    "list has one 'source target weight' line per connection and '#' comments.")
    p.add_argument("path", help="file or folder to read")
    p.add_argument("--format", choices=["graphml", "gexf", "edgelist"], default="graphml")
    p.add_argument("-o", "--out", required=True, help="output file")
    p.set_defaults(func=run_export)


def run_info(args: argparse.Namespace) -> int:
    from topo.cli._output import format_table, print_json, records
    from topo.io import load

    graph = load(args.path)
    table = graph.summary()
    totals = {
        "units": graph.n_units,
        "connections": int(table["connections"].sum()),
        "possible": int((table["n_in"] * table["n_out"]).sum()),
    }
    totals["density"] = totals["connections"] / totals["possible"] if totals["possible"] else 0.0
    bad = graph.nonfinite_layers()
    if args.json:
        print_json({
            "path": str(args.path),
            "format": graph.metadata.get("format"),
            "widths": graph.widths,
            "input_shape": list(graph.input_shape) if graph.input_shape else None,
            "layers": records(table),
            "totals": totals,
            "nonfinite_layers": bad,
            "metadata": {k: v for k, v in graph.metadata.items() if k not in ("source",)},
        })
        return 0
    print(f"{args.path}")
    print(f"format: {graph.metadata.get('format')}    widths: "
          f"{'-'.join(map(str, graph.widths))}"
          + (f"    input shape: {graph.input_shape}" if graph.input_shape else ""))
    extra = {k: v for k, v in graph.metadata.items()
             if k in ("run_id", "method", "epoch", "level", "step", "seed", "test_accuracy")}
    if extra:
        print("  ".join(f"{k}: {v}" for k, v in extra.items()))
    print()
    print(format_table(table))
    print()
    print(f"total: {totals['connections']} connections of {totals['possible']} possible "
          f"(density {totals['density']:.4g}), {totals['units']} units")
    if bad:
        print(f"warning: NaN or infinite weights in {', '.join(bad)}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from topo.cli._output import check_output_path
    from topo.io import export_graph, load

    check_output_path(args.out)
    graph = load(args.path)
    out = export_graph(graph, args.out, args.format)
    print(f"wrote {out} ({args.format}: {graph.n_units} nodes, "
          f"{sum(graph.n_connections)} edges)")
    return 0
