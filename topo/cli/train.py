"""``topo train``: train a sparse network and write a run directory with a snapshot per epoch.

Every field of :class:`topo.train.TrainConfig` is a flag (``--batch-size`` for
``batch_size``, ``--sparse-output/--no-sparse-output`` for booleans), generated from the
dataclass so the command and the Python API cannot drift apart. Only flags given on the
command line override the defaults, which is how ``--resume`` checks that it continues the
same run.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import sys
import warnings
from pathlib import Path

ORDER = 20

_HELP = {
    "dataset": "digits (default), synthetic-F1..F10, mnist, fashion-mnist, cifar10",
    "arch": "layer widths input to output, e.g. 64-100-100-10 (default: from the data, "
            "two hidden layers of 100)",
    "width": "CNNs: factor on every channel and hidden count (default 1, the published "
             "widths)",
    "epochs": "epochs (per level for imp; default 30)",
    "batch_size": "mini-batch size (default 32)",
    "lr": "learning rate (default 0.01)",
    "momentum": "SGD momentum (default 0.9)",
    "weight_decay": "L2 weight decay (default 0)",
    "l1": "L1 penalty coefficient on the weights (default 0)",
    "seed": "random seed of the training: batch order, regrowth (default 0); without "
            "--init-seed also of the start",
    "init_seed": "random seed of the start: data split, initial masks and weights (default: "
                 "--seed); runs sharing it start from the same network on the same data",
    "epsilon": "Erdos-Renyi epsilon of set/rigl/static without --density (default 20)",
    "density": "target density of the whole network in (0, 1] (connections over possible "
               "connections of all layers, layers kept dense included): set/rigl/static start "
               "at it (ERK), snip prunes to it, gmp reaches it, imp prunes until it is reached; "
               "default: ER with --epsilon for set/rigl/static, 0.1 of the pruned layers for "
               "snip/gmp, 5 levels for imp",
    "zeta": "SET: fraction rewired per epoch (default 0.3)",
    "set_regrow_zero": "SET: regrow connections at weight 0 instead of a fresh initial draw",
    "rigl_delta_t": "RigL: steps between mask updates (default 100)",
    "rigl_alpha": "RigL: initial drop fraction, cosine-decayed (default 0.3)",
    "rigl_end_fraction": "RigL: fraction of training after which the mask is frozen (0.75)",
    "rigl_reinit_regrown": "RigL: a connection dropped and regrown in one update restarts at "
                           "weight 0 without optimizer state (default: it is kept, as RigL's "
                           "code does)",
    "gmp_begin": "GMP: step at which pruning starts (default 0)",
    "gmp_end_fraction": "GMP: fraction of training at which the final density is reached "
                        "(0.75)",
    "gmp_delta_t": "GMP: steps between pruning steps (default 100)",
    "imp_rate": "IMP: fraction of the remaining weights pruned per level (default 0.2)",
    "imp_levels": "IMP: number of pruning levels (default: from --density, else 5)",
    "imp_rewind_step": "IMP: step whose weights survivors are rewound to (default 0)",
    "sparse_output": "make the output layer sparse too (default yes, as SET; imp: see "
                     "--prune-output)",
    "prune_output": "IMP: prune the output layer too (default no, as open_lth's LeNet)",
    "snapshot_every": "write a snapshot every N epochs (default 1)",
    "early_stopping_patience": "stop after N epochs without a lower validation loss",
    "n_samples": "synthetic data: number of samples (default 30000)",
    "main_effects": "NID's MLP-M (Tsang et al. 2018): add one univariate network per input "
                    "feature (1-10-10-10-output) beside the network; snapshots hold the "
                    "network only",
    "standardize": "scale features (and a regression target) by the training split's mean and "
                   "standard deviation first (Tsang et al. 2018)",
    "test_fraction": "digits: fraction held out for testing (default 0.25)",
    "threads": "torch threads (default: 1 for small networks, 2 otherwise)",
    "data_root": "folder with MNIST/Fashion-MNIST IDX files or CIFAR-10 batches",
    "download": "download missing MNIST/Fashion-MNIST/CIFAR-10 files into --data-root",
    "validation": "hold out a sixth of the training data for validation (val_loss) even "
                  "without early stopping",
    "ssgd_eps": "SSGD: epsilon of the reweighting (default 1e-4)",
    "ssgd_form": "SSGD: l2, w = (theta^2 + eps)^1/2 (default), or l1, w = |theta| + eps",
    "ssgd_threshold": "SSGD: prune |theta| below this after training (default: prune to "
                      "--density)",
    "ap_share": "AP: share of the surviving weights removed among the negative, least "
                "moved ones per level (default 0.02)",
    "sipp_mode": "SiPP: deterministic (default), randomized or hybrid",
    "sipp_batch_size": "SiPP: training samples the sensitivities are measured on "
                       "(default 128)",
    "node_sparsity": "nodes: fraction of each hidden layer's units removed",
    "gn_sketch_size": "sketched-gn: rows of the sketch (default 4 x batch size)",
    "gn_cg_tol": "sketched-gn: conjugate-gradient tolerance, relative (default 1e-6)",
    "gn_cg_iters": "sketched-gn: conjugate-gradient iteration limit (default 50)",
}

# fields of TrainConfig that are not flags: Python API only, or set by topo search
_NOT_FLAGS = ("extra", "keep_units")


# help of the fields whose values are the names of a registry: the names come from it
_CHOICE_HELP = {
    "method": "sparsity method: {choices} (default set; see below)",
    "model": "network: {choices} (default mlp; CNNs train on pictures: digits, mnist, "
             "fashion-mnist, cifar10)",
    "optimizer": "{choices} (default sgd)",
    "activation": "hidden activation: {choices} (default relu)",
    "init_sparsity": "{choices} for static/set/rigl (default er)",
    "weight_init": "{choices} (default he_uniform, sparse-aware fan-in)",
    "backend": "{choices} computation (default auto)",
}


def register(sub: argparse._SubParsersAction) -> None:
    from topo.train import registry

    helps = config_helps()
    p = sub.add_parser(
        "train", help="train a sparse network, writing a snapshot every epoch",
        description="Train a sparse MLP or CNN and write a run directory: run.json,\n"
                    "metrics.jsonl and snapshots/epoch_XXXX.safetensors.",
        epilog="methods:\n" + registry.METHODS.describe(),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", help="run directory (default runs/METHOD-DATASET-sSEED)")
    p.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint (a finished "
                        "run is left as it is; with a larger --epochs it trains on)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    add_config_arguments(p, helps)
    p.set_defaults(func=run_train)


def config_helps() -> dict[str, str]:
    """Help of every configuration flag (registry choices filled in)."""
    from topo.train import registry

    registries = {"method": registry.METHODS, "model": registry.MODELS,
                  "optimizer": registry.OPTIMIZERS, "activation": registry.ACTIVATIONS,
                  "init_sparsity": registry.INIT_SPARSITIES,
                  "weight_init": registry.WEIGHT_INITS, "backend": registry.BACKENDS}
    return {**_HELP, **{name: text.format(choices=registries[name].choices())
                        for name, text in _CHOICE_HELP.items()}}


def add_config_arguments(p: argparse.ArgumentParser, helps: dict[str, str],
                         skip: tuple[str, ...] = ()) -> None:
    """One flag per field of :class:`~topo.train.TrainConfig` (but ``skip``), default None
    so that only the flags given override the configuration's defaults."""
    from topo.train.config import TrainConfig

    for f in dataclasses.fields(TrainConfig):
        if f.name in _NOT_FLAGS or f.name in skip:
            continue
        flag = "--" + f.name.replace("_", "-")
        default = f.default
        kwargs = {"default": None, "help": helps.get(f.name)}
        if f.name == "arch":
            p.add_argument(flag, type=str, metavar="W-W-...", **kwargs)
        elif isinstance(default, bool):
            p.add_argument(flag, action=argparse.BooleanOptionalAction, **kwargs)
        elif f.name == "early_stopping_patience":
            p.add_argument(flag, "--early-stopping", type=int, metavar="N", **kwargs)
        elif isinstance(default, int) or f.name in ("imp_levels", "n_samples", "threads",
                                                     "gn_sketch_size", "init_seed"):
            p.add_argument(flag, type=int, **kwargs)
        elif isinstance(default, float) or f.name in ("density", "ssgd_threshold",
                                                       "node_sparsity"):
            p.add_argument(flag, type=float, **kwargs)
        else:
            p.add_argument(flag, type=str, **kwargs)


def run_train(args: argparse.Namespace) -> int:
    from topo.errors import ConfigError
    from topo.train.config import TrainConfig

    given = {f.name: getattr(args, f.name) for f in dataclasses.fields(TrainConfig)
             if f.name not in _NOT_FLAGS and getattr(args, f.name, None) is not None}
    out = Path(args.out) if args.out else Path("runs") / (
        f"{given.get('method', 'set')}-{given.get('dataset', 'digits')}"
        f"-s{given.get('seed', 0)}")
    _refuse_flags(given)
    if args.resume and not (out / "run.json").is_file():
        raise ConfigError(f"{out}: nothing to resume (no run.json); leave out --resume to "
                          "start a new run there")
    if args.resume:
        from topo.io.run import read_manifest

        stored = read_manifest(out).get("config", {})
        try:
            config = TrainConfig.from_dict({**stored, **given})
        except TypeError as exc:
            raise ConfigError(f"{out}: unreadable stored configuration ({exc})") from None
    else:
        try:
            config = TrainConfig(**given)
        except TypeError as exc:
            raise ConfigError(str(exc)) from None

    from topo.io.run import read_manifest, read_metrics
    from topo.train import train
    from topo.train.callbacks import DensityReport

    report = DensityReport(sys.stderr if args.json else sys.stdout, config.density)
    try:
        with _warnings_as_lines():
            run = train(config, out, resume=args.resume, progress=not args.no_progress,
                        callbacks=[report])
    except KeyboardInterrupt as exc:
        return _interrupted(out, exc)
    manifest = read_manifest(run)
    metrics = read_metrics(run)
    last = metrics.iloc[-1].to_dict() if len(metrics) else {}
    summary = {
        "run": str(run),
        "run_id": manifest.get("run_id"),
        "status": manifest.get("status"),
        "method": config.method,
        "dataset": config.dataset,
        "widths": manifest.get("widths"),
        "epochs": int(last.get("epoch", 0)),
        "final_snapshot": manifest.get("final_snapshot"),
        "best_snapshot": manifest.get("best_snapshot"),
    }
    for key in ("level", "loss", "train_accuracy", "test_accuracy", "train_mse", "test_mse",
                "val_loss"):
        if key in last:
            summary[key] = last[key]
    summary["density"] = [last[k] for k in sorted(last, key=_layer_key)
                          if k.startswith("density_")]
    summary["overall_density"] = manifest.get("final_density")
    if args.json:
        from topo.cli._output import print_json

        print_json(summary)
        return 0
    metric = ("test accuracy", summary.get("test_accuracy")) if "test_accuracy" in summary \
        else ("test MSE", summary.get("test_mse"))
    print(f"{run}: {config.method} on {config.dataset}, "
          f"widths {'-'.join(map(str, summary['widths'] or []))}, status {summary['status']}")
    if metric[1] is not None:
        print(f"{metric[0]} {metric[1]:.4f} after epoch {summary['epochs']}"
              + (f" (level {int(summary['level'])})" if "level" in summary else "")
              + "; density per layer "
              + ", ".join(f"{d:.4g}" for d in summary["density"])
              + (f", overall {summary['overall_density']:.4g}"
                 if summary["overall_density"] is not None else ""))
    print(f"final snapshot: {run / summary['final_snapshot']}" if summary["final_snapshot"]
          else "", file=sys.stdout)
    if summary["best_snapshot"] and summary["best_snapshot"] != summary["final_snapshot"]:
        print(f"best snapshot (lowest validation loss): {run / summary['best_snapshot']}")
    return 0


def _interrupted(out: Path, exc: KeyboardInterrupt) -> int:
    """Say where an interrupted run stands and how to continue it; the exit status is
    128 + the signal's number, as a shell reports a process the signal ended."""
    import signal

    from topo.io.run import is_run_dir, read_manifest

    name = "SIGTERM" if type(exc).__name__ == "Terminated" else "SIGINT"
    message = f"topo train: interrupted by {name}"
    if is_run_dir(out):
        epoch = read_manifest(out).get("resumes_after_epoch")
        message += (f"; {out}/run.json says interrupted, its checkpoint holds "
                    f"{'no epoch yet' if epoch is None else f'epoch {epoch}'}; continue with: "
                    f"topo train --out {out} --resume")
    else:
        message += " before training started"
    print(message, file=sys.stderr)
    return 128 + int(getattr(signal, name))


@contextlib.contextmanager
def _warnings_as_lines():
    """topo's training warnings as ``topo train: warning: ...`` lines on stderr, each time."""
    from topo.train.sparsity import ConnectivityWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always", ConnectivityWarning)
        shown = warnings.showwarning

        def show(message, category, filename, lineno, file=None, line=None):
            if issubclass(category, ConnectivityWarning):
                print(f"topo train: warning: {message}", file=sys.stderr, flush=True)
            else:
                shown(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield


def _refuse_flags(given: dict) -> None:
    """Flags given together that cannot both be honoured (a default value given explicitly
    included, which the configuration cannot tell from the default)."""
    from topo.errors import ConfigError

    if "epsilon" in given and "density" in given:
        raise ConfigError("give --epsilon or --density, not both: with --density the "
                          "Erdos-Renyi scale is solved for it")
    if given.get("method") == "imp" and "sparse_output" in given:
        raise ConfigError("imp keeps the output layer dense unless --prune-output; "
                          "--sparse-output does not apply to it")


def _layer_key(name: str) -> tuple[str, int]:
    head, _, tail = name.rpartition("_")
    return (head, int(tail)) if tail.isdigit() else (name, -1)
