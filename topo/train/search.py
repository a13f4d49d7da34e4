"""Random search in node space: a baseline for sparse architecture search (Farahani, 2024).

:func:`node_search` samples sub-networks of a dense parent by keeping random subsets of its
hidden units at a node sparsity (method ``nodes``, :class:`~topo.train.methods.
NodeSubnetwork`, with the parent's initial weights), trains each candidate for a selection
budget, selects the one with the lowest validation loss, trains it fully, and trains beside
it freshly drawn random configurations of the same node sparsity (no selection) and the
dense parent, all with the same seed, data split and order. Every training is a run
directory written by :func:`topo.train.train`; the comparison is a table.

Layout of the output folder::

    search.json            parameters, kept units of every network, the selected candidate
    summary.csv            one row per run (columns: :data:`SUMMARY_COLUMNS`)
    candidates/c000/ ...   the candidates' selection runs
    selected/              the selected candidate, trained fully
    random/r000/ ...       random configurations, trained fully
    dense/                 the dense parent, trained fully

Running the same search again into the same folder resumes it: finished runs are kept,
interrupted ones continue from their checkpoints.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import ConfigError
from topo.io.atomic import atomic_write_text
from topo.train.config import TrainConfig

__all__ = ["node_search", "NodeSearch", "SEARCH_NAME", "SUMMARY_NAME", "SUMMARY_COLUMNS",
           "SEARCH_STREAM"]

SEARCH_NAME = "search.json"
SUMMARY_NAME = "summary.csv"
SEARCH_FORMAT = "topo.search"
SEARCH_STREAM = 2403
"""Second word of the seed of the node sampler, ``PCG64([seed, SEARCH_STREAM])``: the
draws do not share a stream with the runs' own generators."""

SUMMARY_COLUMNS = ("kind", "index", "run", "units", "density", "selection_val_loss",
                   "val_loss", "test_loss", "test_metric", "mean_test_metric", "dnr_network")
"""``kind``: candidate, selected, random or dense; ``index``: the candidate's or random
configuration's number; ``run``: its folder (relative); ``units``: kept units per hidden
layer; ``density``: connections / possible connections of the network; ``selection_val_loss``:
validation loss after the selection budget (candidates and the selected one); the rest at
the run's last epoch (for candidates, after their selection training): ``val_loss``,
``test_loss``, ``test_metric`` (test accuracy, or test MSE for regression),
``mean_test_metric`` (its mean over epochs 1..E, a learning-curve summary: higher accuracy
or lower MSE means faster convergence) and ``dnr_network`` (dead neuron rate)."""


@dataclass
class NodeSearch:
    """The outcome of :func:`node_search`.

    Attributes
    ----------
    path
        The output folder.
    table
        :data:`SUMMARY_COLUMNS`, one row per run.
    selected
        Index of the selected candidate.
    metric
        ``test_accuracy`` or ``test_mse``: what ``test_metric`` holds.
    """

    path: Path
    table: Any
    selected: int
    metric: str

    def comparison(self) -> dict[str, Any]:
        """Final test metric of the selected network, of the random configurations (mean,
        standard deviation, count) and of the dense parent."""
        t = self.table
        rand = t.loc[t["kind"] == "random", "test_metric"].to_numpy(dtype=float)
        dense = t.loc[t["kind"] == "dense", "test_metric"].to_numpy(dtype=float)
        return {"metric": self.metric,
                "selected": float(t.loc[t["kind"] == "selected", "test_metric"].iloc[0]),
                "random_mean": float(rand.mean()) if rand.size else None,
                "random_std": float(rand.std(ddof=1)) if rand.size > 1 else None,
                "random_n": int(rand.size),
                "dense": float(dense[0]) if dense.size else None}


def node_search(config: TrainConfig, out_dir: str | Path, *, candidates: int = 10,
                node_sparsity: float = 0.5, selection_epochs: int = 1, n_random: int = 3,
                dense: bool = True, progress: bool = False) -> NodeSearch:
    """Random search over sub-networks that keep some hidden units of a dense parent.

    Parameters
    ----------
    config
        The parent's training configuration (data, widths, optimiser, epochs, seed, ...);
        its ``method`` is ignored. Every run holds out a validation split
        (``validation=True``).
    out_dir
        Output folder (see the module docstring); created, or resumed when it holds this
        search.
    candidates
        Sub-networks sampled and judged (at least 1).
    node_sparsity
        Fraction of each hidden layer's units removed, in ``[0, 1)``
        (:func:`~topo.train.methods.sample_units`).
    selection_epochs
        The selection budget: candidates are judged by their validation loss after this
        many epochs of training (0: at initialisation). Each candidate's run trains
        ``max(1, selection_epochs)`` epochs.
    n_random
        Random configurations (fresh draws, not selected) trained fully beside the
        selected one.
    dense
        Also train the dense parent.
    progress
        Progress bars.

    Returns
    -------
    NodeSearch
        The summary table and the selected candidate.

    Raises
    ------
    ConfigError
        Invalid parameters, a network without hidden layers, or ``out_dir`` holding a
        different search or other files.

    Notes
    -----
    Farahani (2024), "Random search as a baseline for sparse neural network architecture
    search", arXiv 2403.08265. Assumed where the paper leaves it open: every hidden layer
    loses the same fraction of its units, drawn uniformly and independently per layer; the
    candidates keep the parent's initial weights; selection is by the lowest validation
    loss (ties: the earlier candidate); the random configurations are further draws from
    the same sampler.
    """
    import pandas as pd

    from topo.train.methods import sample_units
    from topo.train.runner import load_training_data, resolve_arch

    if candidates < 1 or n_random < 0 or selection_epochs < 0:
        raise ConfigError("a node search needs candidates >= 1, n_random >= 0 and "
                          "selection_epochs >= 0")
    if not 0.0 <= node_sparsity < 1.0:
        raise ConfigError(f"node_sparsity must lie in [0, 1), got {node_sparsity}")
    if config.density is not None:
        raise ConfigError("a node search keeps whole hidden units of the dense parent: its "
                          "networks' density follows from the node sparsity "
                          "(--node-sparsity), so --density does not apply")
    base = config.replace(method="dense", validation=True, node_sparsity=None,
                          keep_units=None)
    widths = resolve_arch(base.arch, load_training_data(base))
    if len(widths) < 3:
        raise ConfigError("a node search needs at least one hidden layer")
    base = base.replace(arch=widths)
    rng = np.random.Generator(np.random.PCG64([config.seed, SEARCH_STREAM]))
    draws = [[k.tolist() for k in sample_units(widths[1:-1], node_sparsity, rng)]
             for _ in range(candidates + n_random)]
    params = {"format": SEARCH_FORMAT, "version": 1, "space": "nodes",
              "config": base.to_dict(), "candidates": candidates,
              "node_sparsity": node_sparsity, "selection_epochs": selection_epochs,
              "n_random": n_random, "dense": dense}
    out = Path(out_dir)
    _prepare(out, params)
    atomic_write_text(out / SEARCH_NAME, json.dumps({**params, "status": "running"},
                                                    indent=2) + "\n")

    def run(folder: str, cfg: TrainConfig) -> Path:
        from topo.train import train

        return train(cfg, out / folder, resume=True, progress=progress)

    rows = []
    for i, keep in enumerate(draws[:candidates]):
        cfg = base.replace(method="nodes", keep_units=keep, epochs=max(1, selection_epochs))
        path = run(f"candidates/c{i:03d}", cfg)
        rows.append(_row("candidate", i, path, out, keep, widths, selection_epochs))
    scores = [r["selection_val_loss"] for r in rows]
    selected = int(np.argmin(scores))
    keep = draws[selected]
    path = run("selected", base.replace(method="nodes", keep_units=keep))
    rows.append({**_row("selected", selected, path, out, keep, widths),
                 "selection_val_loss": scores[selected]})
    for j, keep in enumerate(draws[candidates:]):
        path = run(f"random/r{j:03d}", base.replace(method="nodes", keep_units=keep))
        rows.append(_row("random", j, path, out, keep, widths))
    if dense:
        path = run("dense", base.replace(method="dense"))
        rows.append(_row("dense", 0, path, out, [list(range(n)) for n in widths[1:-1]],
                         widths))
    table = pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))
    atomic_write_text(out / SUMMARY_NAME, table.to_csv(index=False))
    record = {**params, "status": "finished", "selected": selected,
              "keep_units": {"candidates": draws[:candidates], "random": draws[candidates:]}}
    atomic_write_text(out / SEARCH_NAME, json.dumps(record, indent=2) + "\n")
    metric = "test_mse" if base.dataset.startswith("synthetic-") else "test_accuracy"
    return NodeSearch(out, table, selected, metric)


def _prepare(out: Path, params: dict[str, Any]) -> None:
    """Refuse a folder that holds anything but this search."""
    if out.exists() and not out.is_dir():
        raise ConfigError(f"{out}: output path exists and is not a folder")
    stored = out / SEARCH_NAME
    if stored.is_file():
        try:
            old = json.loads(stored.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError) as exc:
            raise ConfigError(f"{stored}: unreadable search record ({exc})") from None
        if {k: old.get(k) for k in params} != params:
            raise ConfigError(f"{out}: holds a different search; choose another --out")
    elif out.is_dir() and any(not p.name.startswith(".") for p in out.iterdir()):
        raise ConfigError(f"{out}: folder is not empty and holds no topo search; choose an "
                          "empty or new --out")


def _row(kind: str, index: int, path: Path, out: Path, keep: list[list[int]],
         widths: list[int], selection_epochs: int | None = None) -> dict[str, Any]:
    """The summary row of one run; ``selection_epochs``: read the validation loss of that
    epoch as the selection score (candidates)."""
    from topo.io.run import read_metrics

    m = read_metrics(path)
    metric = "test_mse" if "test_mse" in m.columns else "test_accuracy"
    last = m.iloc[-1]
    conn = sum(float(last[c]) for c in m.columns if c.startswith("connections_"))
    possible = sum(a * b for a, b in zip(widths[:-1], widths[1:]))
    selection = None
    if selection_epochs is not None:
        selection = float(m.loc[m["epoch"] == selection_epochs, "val_loss"].iloc[0])
    dnr = last.get("dnr_network")
    return {"kind": kind, "index": index, "run": path.relative_to(out).as_posix(),
            "units": "-".join(str(len(k)) for k in keep), "density": conn / possible,
            "selection_val_loss": selection, "val_loss": float(last["val_loss"]),
            "test_loss": float(last["test_loss"]) if "test_loss" in m.columns else None,
            "test_metric": float(last[metric]),
            "mean_test_metric": float(m.loc[m["epoch"] > 0, metric].mean()),
            "dnr_network": None if dnr is None or dnr != dnr else float(dnr)}
