"""``topo info`` and ``topo export``: what a checkpoint holds, and its graph as a file."""

from __future__ import annotations

import argparse

from topo.cli._options import add_snapshot_options

ORDER = 10


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "info", help="show the format and the layer table of a checkpoint",
        description="Read a checkpoint (topo snapshot or run, PyTorch state_dict, checkpoint "
                    "dict, Lightning .ckpt or whole pickled module, safetensors, Keras .h5 or "
                    ".keras, ONNX, numpy .npz or .npy folder, NNSTD folder) and print its "
                    "layers, how their order and orientation were found, and what was "
                    "skipped and why.")
    p.add_argument("path", help="file or folder to read (a run or a folder of checkpoints: "
                                "one of its snapshots, the last by default)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    _add_key_option(p)
    add_snapshot_options(p)
    p.set_defaults(func=run_info)

    p = sub.add_parser(
        "export", help="write a checkpoint's graph as GraphML, GEXF or an edge list",
        description="Write the layered graph with global node ids (inputs first), in the "
                    "format the output file's suffix names (.graphml, .gexf, .edgelist or "
                    ".edges) unless --format says otherwise. GraphML and GEXF nodes carry "
                    "their layer, layer name, unit index and bias; edges their weight and "
                    "layer. The edge list has one 'source target weight' line per connection "
                    "and '#' comments naming the layers.")
    p.add_argument("path", help="file or folder to read")
    # the choices spelled out so that `topo --help` imports nothing of topo.io
    p.add_argument("--format", choices=["graphml", "gexf", "edgelist"], default=None,
                   help="graphml, gexf or edgelist (default: from the suffix of --out; an "
                        "unknown suffix is refused)")
    p.add_argument("-o", "--out", required=True,
                   help="output file (.graphml, .gexf, .edgelist or .edges)")
    _add_key_option(p)
    add_snapshot_options(p)
    p.set_defaults(func=run_export)


def _value(value: object) -> str:
    """A metadata value as a reader wants it: floats to 4 significant digits."""
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _add_key_option(p: argparse.ArgumentParser) -> None:
    p.add_argument("--key", default=None, metavar="ENTRY",
                   help="the entry of a PyTorch/pickle checkpoint that holds the network, "
                        "e.g. 'ema' or 'model/state_dict' (default: found automatically)")


def run_info(args: argparse.Namespace) -> int:
    from topo.cli._options import snapshot_choice, snapshot_lines
    from topo.cli._output import count, print_json
    from topo.io import load
    from topo.io.tables import format_rows, row_records

    graph = load(args.path, key=args.key, **snapshot_choice(args))
    table = graph.summary_rows()   # plain rows: info never imports pandas
    plain = graph.is_linear and graph.is_chain
    totals = {
        "units": graph.n_units,
        "connections": int(sum(row["connections"] for row in table)),
        "possible": int(sum(graph.possible)),
    }
    totals["density"] = totals["connections"] / totals["possible"] if totals["possible"] else 0.0
    if not plain:
        totals["unit_connections"] = int(sum(graph.n_unit_connections))
    bad = graph.nonfinite_layers()
    skipped = list(graph.metadata.get("skipped") or [])
    if args.json:
        document = {
            "path": str(args.path),
            "format": graph.metadata.get("format"),
            "widths": graph.widths,
            "input_shape": list(graph.input_shape) if graph.input_shape else None,
            "layers": row_records(table),
            "totals": totals,
            "nonfinite_layers": bad,
            "skipped": skipped,
            "metadata": {k: v for k, v in graph.metadata.items()
                         if k not in ("source", "skipped")},
        }
        if not plain:
            document["wiring"] = {"kind": _wiring_kind(graph), **graph.wiring.to_dict(),
                                  "set_sizes": graph.set_sizes}
        print_json(document)
        return 0
    print(f"{args.path}")
    for line in snapshot_lines(graph):
        print(line)
    print(f"format: {graph.metadata.get('format')}    "
          f"{'widths' if graph.is_chain else 'unit sets'}: "
          f"{'-'.join(map(str, graph.widths))}"
          + (f"    input shape: {graph.input_shape}" if graph.input_shape else ""))
    if not plain:
        print(f"wiring: {_wiring_kind(graph)}")
    extra = {k: v for k, v in graph.metadata.items()
             if k in ("run_id", "method", "epoch", "level", "step", "global_step", "seed",
                      "test_accuracy")}
    if extra:
        print("  ".join(f"{k}: {_value(v)}" for k, v in extra.items()))
    reading = graph.metadata.get("reading")
    if isinstance(reading, dict):
        print(f"layer order: {reading.get('layer_order')}")
        print(f"orientation: {reading.get('orientation')}")
        for note in reading.get("notes") or []:
            print(f"note: {note}")
    print()
    print(format_rows(table))
    print()
    print(f"total: {count(totals['connections'], 'connection')} of {totals['possible']} "
          f"possible (density {totals['density']:.4g}), {count(totals['units'], 'unit')}"
          + ("" if plain else
             f"; {count(totals['unit_connections'], 'unit-graph connection')}"))
    if bad:
        print(f"warning: NaN or infinite weights in {', '.join(bad)}")
    if skipped:
        print()
        print(f"skipped ({len(skipped)}, not part of the graph):")
        rows = [(s["name"], "-" if s["shape"] is None else
                 "x".join(map(str, s["shape"])) or "scalar", s["why"]) for s in skipped]
        rows.insert(0, ("name", "shape", "why"))
        w0 = max(len(r[0]) for r in rows)
        w1 = max(len(r[1]) for r in rows)
        for name, shape, why in rows:
            print(f"{name:<{w0}}  {shape:<{w1}}  {why}")
    return 0


def _wiring_kind(graph) -> str:
    """One line on how the layers are wired."""
    if graph.is_independent:
        return ("independent matrices (the wiring of this model is unknown: per-layer "
                "analyses only)")
    if graph.is_chain:
        return "chain (each layer reads what the previous one writes)"
    streams = sorted({s for s in graph.writes if len(graph.writers(s)) > 1
                      or s in graph.reads[:max(graph.writers(s))]})
    if not streams:  # pragma: no cover - a valid non-chain wiring always adds into a set
        return "not a chain (columns reads/writes)"
    return (f"residual streams: unit set(s) {', '.join(map(str, streams))} written by several "
            "layers (columns reads/writes)")


def run_export(args: argparse.Namespace) -> int:
    from topo.cli._options import snapshot_choice, snapshot_lines
    from topo.cli._output import check_output_path, count
    from topo.io import export_graph, load
    from topo.io.export import export_format

    fmt = export_format(args.out, args.format)
    check_output_path(args.out)
    graph = load(args.path, key=args.key, **snapshot_choice(args))
    out = export_graph(graph, args.out, fmt)
    for line in snapshot_lines(graph):
        print(line)
    print(f"wrote {out} ({fmt}: {count(graph.n_units, 'node')}, "
          f"{count(sum(graph.n_unit_connections), 'edge')})")
    return 0
