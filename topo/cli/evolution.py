"""``topo evolution``: how a run's topology changed over training, as a table and a figure."""

from __future__ import annotations

import argparse
import sys

ORDER = 50

#: Columns of the default (readable) table; ``--json``/``--csv`` hold every column.
TABLE_COLUMNS = (
    "level", "epoch", "name", "connections", "density", "added", "removed", "churn",
    "nnstd_to_first", "nnstd_to_previous", "jaccard_to_previous", "ever_active_rate",
    "inputs_off_path", "neural_persistence", "loss", "test_accuracy",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evolution", help="follow how a run's topology changed, snapshot by snapshot",
        description="One row per snapshot and layer: connections, connections added and "
                    "removed since the previous snapshot, churn (removed / previous "
                    "connections), NNSTD and Jaccard to the first and previous snapshot, the "
                    "in-time over-parameterisation rate, degree statistics, units off every "
                    "input-to-output path, neural persistence and the run's metrics.")
    p.add_argument("run", help="run directory, folder of snapshots")
    out = p.add_mutually_exclusive_group()
    out.add_argument("--json", action="store_true",
                     help="print the full table as a JSON list of row objects")
    out.add_argument("--csv", metavar="OUT", help="write the full table as CSV to OUT")
    p.add_argument("--plot", metavar="OUT",
                   help="write the evolution panel figure (.png, .svg or .pdf)")
    p.add_argument("--inputs-plot", metavar="OUT",
                   help="write maps of each input's outgoing connections over the snapshots "
                        "(.png, .svg or .pdf)")
    p.add_argument("--no-persistence", action="store_true",
                   help="skip neural persistence (faster on wide layers)")
    p.set_defaults(func=run_evolution)


def run_evolution(args: argparse.Namespace) -> int:
    from topo.cli._output import check_outputs, format_table, print_json, records
    from topo.evolution import topology_evolution

    check_outputs(files=(args.csv,), figures=(args.plot, args.inputs_plot))
    frame = topology_evolution(args.run, persistence=not args.no_persistence)
    written = []
    if args.csv:
        from topo.cli._output import write_csv

        written.append(f"wrote {write_csv(frame, args.csv)} ({len(frame)} rows)")
    if args.plot:
        from topo.cli._output import save_figure
        from topo.plot import plot_evolution

        axes = plot_evolution(frame)
        written.append(f"wrote {save_figure(axes[0].figure, args.plot)}")
    if args.inputs_plot:
        from topo.cli._output import save_figure
        from topo.evolution import input_connectivity
        from topo.io import load
        from topo.io.run import snapshot_paths
        from topo.plot import plot_input_connectivity

        counts = input_connectivity(args.run)
        shape = load(snapshot_paths(args.run)[0]).input_shape
        epochs = frame.drop_duplicates("snapshot")["epoch"].tolist()
        axes = plot_input_connectivity(counts, input_shape=shape, epochs=epochs)
        written.append(f"wrote {save_figure(axes[0].figure, args.inputs_plot)}")
    if args.json:
        print_json(records(frame))
    elif not args.csv:
        columns = [c for c in TABLE_COLUMNS if c in frame.columns]
        print(format_table(frame[columns]))
    for line in written:
        print(line, file=sys.stderr if args.json else sys.stdout)
    return 0
