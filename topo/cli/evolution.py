"""``topo evolution``: how a run's topology changed over training, as a table and a figure.

:func:`evolution_files` does the command's work (and is what ``topo demo`` calls);
:func:`run_evolution` prints.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    import pandas

ORDER = 50

#: Columns of the default (readable) table; ``--json``/``--csv`` hold every column.
TABLE_COLUMNS = (
    "level", "epoch", "name", "connections", "density", "added", "removed", "churn",
    "nnstd_to_first", "nnstd_to_previous", "jaccard_to_previous", "itop_rate_snapshots",
    "itop_rate", "inputs_off_path", "neural_persistence", "loss", "test_accuracy",
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evolution", help="follow how a run's topology changed, snapshot by snapshot",
        description="One row per snapshot and layer: connections, connections added and "
                    "removed since the previous snapshot, churn (removed / previous "
                    "connections), NNSTD and Jaccard to the first and previous snapshot, the "
                    "in-time over-parameterisation rate (itop_rate: exact, as the run "
                    "recorded it; itop_rate_snapshots: a lower bound from the snapshots), "
                    "degree statistics, units off every input-to-output path, neural "
                    "persistence and the run's metrics (train_accuracy is the running mean "
                    "over the epoch's mini-batches as the weights changed, test_accuracy is "
                    "measured after the epoch).")
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
    from topo.cli._output import format_table, print_json, print_lines, records

    frame, written = evolution_files(args.run, persistence=not args.no_persistence,
                                     csv=args.csv, plot=args.plot, inputs_plot=args.inputs_plot)
    if args.json:
        print_json(records(frame))
    elif not args.csv:
        columns = [c for c in TABLE_COLUMNS if c in frame.columns]
        print(format_table(frame[columns]))
    print_lines(written, to_stderr=args.json)
    return 0


def evolution_files(run: str | Path, *, persistence: bool = True,
                    csv: str | Path | None = None, plot: str | Path | None = None,
                    inputs_plot: str | Path | None = None) -> tuple[pandas.DataFrame, list[str]]:
    """``topo evolution``'s work: check the outputs, read the run, compute, write.

    Returns the evolution table (:func:`topo.topology_evolution`) and the ``wrote ...``
    notes (``csv``: the whole table; ``plot``: the evolution panel; ``inputs_plot``: the
    input-connectivity maps).
    """
    from topo.cli._output import check_outputs, count
    from topo.evolution import topology_evolution
    from topo.io import read_sequence

    check_outputs(files=(csv,), figures=(plot, inputs_plot))
    sequence = read_sequence(run)
    frame = topology_evolution(sequence, persistence=persistence)
    written = []
    if csv:
        from topo.cli._output import write_csv

        written.append(f"wrote {write_csv(frame, csv)} ({count(len(frame), 'row')})")
    if plot:
        from topo.cli._output import save_figure
        from topo.plot import plot_evolution

        axes = plot_evolution(frame)
        written.append(f"wrote {save_figure(axes[0].figure, plot)}")
    if inputs_plot:
        from topo.cli._output import save_figure
        from topo.evolution import input_connectivity
        from topo.plot import plot_input_connectivity, snapshot_titles

        counts = input_connectivity(sequence)
        shape = sequence[0].graph.input_shape
        axes = plot_input_connectivity(counts, input_shape=shape,
                                       titles=snapshot_titles(frame))
        written.append(f"wrote {save_figure(axes[0].figure, inputs_plot)}")
    return frame, written
