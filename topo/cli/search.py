"""``topo search``: random search for sparse networks, a baseline for architecture search.

``topo search --space nodes`` samples sub-networks of a dense parent that keep random
subsets of its hidden units, selects the one with the lowest validation loss after a short
training budget, trains it fully beside random configurations of the same node sparsity and
the dense parent, and prints the comparison (:func:`topo.train.search.node_search`). Every
training flag of ``topo train`` (but ``--method``) sets up the parent.
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

ORDER = 21

_SKIP = ("method", "node_sparsity", "validation")


def register(sub: argparse._SubParsersAction) -> None:
    from topo.cli.train import add_config_arguments, config_helps

    p = sub.add_parser(
        "search", help="random search for sparse sub-networks (a baseline)",
        description="Random search in node space (Farahani 2024): sample sub-networks of a\n"
                    "dense parent keeping random hidden units, select the best by validation\n"
                    "loss after a short budget, train it fully and compare it with random\n"
                    "configurations of the same node sparsity and with the dense parent.\n"
                    "Writes one run per network and summary.csv.",
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--space", choices=["nodes"], required=True,
                   help="search space: nodes (subsets of hidden units)")
    p.add_argument("--candidates", type=int, default=10,
                   help="sub-networks sampled and judged (default 10)")
    p.add_argument("--node-sparsity", type=float, default=0.5,
                   help="fraction of each hidden layer's units removed (default 0.5)")
    p.add_argument("--selection-epochs", type=int, default=1,
                   help="selection budget: epochs each candidate trains before it is "
                        "judged; 0 judges at initialisation (default 1)")
    p.add_argument("--random", type=int, default=3, dest="n_random",
                   help="random configurations trained fully for comparison (default 3)")
    p.add_argument("--dense", action=argparse.BooleanOptionalAction, default=True,
                   help="also train the dense parent (default yes)")
    p.add_argument("--out", help="output folder (default runs/search-nodes-DATASET-sSEED)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_config_arguments(p, config_helps(), skip=_SKIP)
    p.set_defaults(func=run_search)


def run_search(args: argparse.Namespace) -> int:
    from topo.errors import ConfigError
    from topo.train.config import TrainConfig

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if f.name not in _SKIP and getattr(args, f.name, None) is not None}
    try:
        config = TrainConfig(**{**given, "method": "dense"})
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    out = Path(args.out) if args.out else Path("runs") / (
        f"search-nodes-{config.dataset}-s{config.seed}")

    from topo.train.search import node_search

    result = node_search(config, out, candidates=args.candidates,
                         node_sparsity=args.node_sparsity,
                         selection_epochs=args.selection_epochs, n_random=args.n_random,
                         dense=args.dense, progress=not args.no_progress)
    summary = result.comparison()
    if args.json:
        from topo.cli._output import print_json

        print_json({"out": str(result.path), "selected_candidate": result.selected, **summary,
                    "runs": result.table.to_dict(orient="records")})
        return 0
    table = result.table.copy()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    name = summary["metric"].replace("_", " ")
    line = f"selected candidate c{result.selected:03d}: {name} {summary['selected']:.4f}"
    if summary["random_n"]:
        spread = (f" ± {summary['random_std']:.4f}" if summary["random_std"] is not None
                  else "")
        line += (f"; random configurations {summary['random_mean']:.4f}{spread} "
                 f"(n={summary['random_n']})")
    if summary["dense"] is not None:
        line += f"; dense parent {summary['dense']:.4f}"
    print(line)
    print(f"runs and summary.csv in {result.path}")
    return 0
