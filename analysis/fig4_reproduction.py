"""Liu et al. (2020), Fig. 4: do SET networks started from (almost) one topology drift apart?

Run from the repository root (6.5 minutes wall on 2 cores shared at load average 9-11)::

    .venv/bin/python analysis/fig4_reproduction.py [--n-jobs 2] [--epochs 30]

Writes ``analysis/results/fig4_reproduction.csv``, ``.md`` and ``.png``.

The experiment of the paper (Section 4.2, Fig. 4): one sparse network, nine more each made by
changing 1 % of the connections of the previous one, all ten trained with SET; the NNSTD of
all 45 pairs, per layer, as training goes on, beside the test accuracy. Here:

1. The ten SET networks published with the paper (``../shared/external/nnstd-set-topologies``,
   784-784-784-784-10, 9 snapshot epochs; skipped when absent): all 45 pairs at every epoch,
   every layer, with the published algorithm (``topo.nnstd(..., reference=True)``), against
   the chance level of the same algorithm (``topo.nnstd_chance``: random networks with the
   same widths and connection counts), and the published test accuracy (``testacc.txt``).
2. topo's own SET runs on scikit-learn's digits (Fashion-MNIST too when its IDX files are in
   ``--fashion-root``): network 0 from ``TrainConfig(seed=0)``'s initialisation; network ``i``
   is network ``i - 1`` with 1 % of the connections of every sparse layer moved (removed at
   random, as many grown at random empty positions, with weights drawn from the layer's
   initial weights); each network trains with its own training seed ``i`` (data order and
   SET's regrowth), so only the initialisation is shared. NNSTD in topo's default mode (output
   units kept in place), all 45 pairs per snapshot epoch, against its chance level.

The network's NNSTD is reported per layer; the table holds the mean and standard deviation
over the 45 pairs, the chance level and its standard error, and the mean test accuracy.
"""

from __future__ import annotations

import argparse
import functools
import os
import time
from pathlib import Path

import numpy as np

import topo
from topo.errors import TopoError
from topo.io.atomic import atomic_write_text
from topo.pairwise import pairwise

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "analysis" / "results"
PUBLISHED = ROOT.parent / "shared" / "external" / "nnstd-set-topologies"
CHANGE = 0.01
SNAPSHOT_EPOCHS = (0, 1, 2, 5, 10, 20, 30)


def per_layer(a, b, *, reference: bool) -> list[float]:
    """The pair function: NNSTD per layer."""
    return topo.nnstd(a, b, reference=reference).per_layer.tolist()


def published_study(n_jobs: int, chance_samples: int) -> list[dict]:
    """Part 1: every published pair at every published epoch."""
    nets = sorted(p for p in PUBLISHED.glob("e5_s0_w*") if p.is_dir())
    epochs = sorted(int(p.name.split("_")[1]) for p in nets[0].glob("epoch_*"))
    # Only some published networks ship testacc.txt; the mean is over those that do.
    accuracy = np.array([np.loadtxt(n / "testacc.txt") for n in nets
                         if (n / "testacc.txt").is_file()])  # (networks with it, 200)
    print(f"published test accuracy from {len(accuracy)} of {len(nets)} networks", flush=True)
    rows = []
    for epoch in epochs:
        paths = [n / f"epoch_{epoch:03d}" for n in nets]
        _, values = pairwise(paths, functools.partial(per_layer, reference=True),
                             loader=topo.load, n_jobs=n_jobs)
        values = np.array(values)
        chance = topo.nnstd_chance(topo.load(paths[0]), topo.load(paths[1]),
                                   n_samples=chance_samples, reference=True)
        # testacc.txt line e (1-based) is read as the accuracy after epoch e.
        acc = (float(accuracy[:, epoch - 1].mean()) if epoch >= 1 and len(accuracy)
               else float("nan"))
        rows += _rows("published SET (784-784-784-784-10), reference NNSTD", epoch, values,
                      chance, acc)
        print(f"published epoch {epoch}: {values.mean(axis=0).round(3)}", flush=True)
    return rows


def own_runs(dataset: str, epochs: int, n_networks: int, data_root: str | None,
             n_jobs: int, chance_samples: int) -> list[dict]:
    """Part 2: ten SET networks from one initialisation, 1 % changed each, trained apart."""
    import torch

    from topo.train import TrainConfig

    torch.set_num_threads(1)  # small networks: threads only contend on 2 shared cores
    from topo.train.runner import build_trainer, load_training_data

    config = TrainConfig(method="set", dataset=dataset, epochs=epochs, seed=0,
                         data_root=data_root)
    data = load_training_data(config)
    start = build_trainer(config, data)
    start.initialise()
    rng = np.random.default_rng(2020)
    structures = [[(layer.flat.numpy().copy(), layer.values.detach().clone(),
                    layer.bias.detach().clone()) for layer in start.model.layers]]
    for _ in range(1, n_networks):
        structures.append([_moved(flat, values, layer.size, rng) + (bias,)
                           for (flat, values, bias), layer
                           in zip(structures[-1], start.model.layers)])
    graphs: dict[int, list] = {e: [] for e in SNAPSHOT_EPOCHS if e <= epochs}
    accuracy: dict[int, list] = {e: [] for e in graphs}
    for i, structure in enumerate(structures):
        trainer = build_trainer(TrainConfig(method="set", dataset=dataset, epochs=epochs,
                                            seed=i, data_root=data_root), data)
        trainer.initialise()
        with torch.no_grad():
            for layer, (flat, values, bias) in zip(trainer.model.layers, structure):
                layer.set_structure(flat, values)  # the shared initialisation, 1 % moved
                layer.bias.copy_(bias)
        trainer.reset_optimizer()
        for epoch in range(0, epochs + 1):
            if epoch > 0:
                trainer.train_epoch()
            if epoch in graphs:
                graphs[epoch].append(trainer.model.to_graph())
                _, acc = _test_accuracy(trainer)
                accuracy[epoch].append(acc)
        print(f"{dataset}: network {i} trained (test accuracy {accuracy[epochs][-1]:.3f})",
              flush=True)
    rows = []
    for epoch, nets in graphs.items():
        _, values = pairwise(nets, functools.partial(per_layer, reference=False),
                             n_jobs=n_jobs)
        values = np.array(values)
        chance = topo.nnstd_chance(nets[0], nets[1], n_samples=chance_samples)
        rows += _rows(f"topo SET on {dataset} ({'-'.join(map(str, nets[0].widths))}), "
                      "default NNSTD", epoch, values, chance, float(np.mean(accuracy[epoch])))
    return rows


def _test_accuracy(trainer) -> tuple[float, float]:
    from topo.train.trainer import evaluate

    return evaluate(trainer.model, *trainer.data.test, trainer.loss_fn)


def _moved(flat: np.ndarray, values, size: int, rng: np.random.Generator):
    """``CHANGE`` of a sparse layer's connections moved to random empty positions."""
    import torch

    n = flat.size
    k = int(round(CHANGE * n))
    if n == size or k == 0:
        return flat.copy(), values.clone()
    keep = np.ones(n, dtype=bool)
    keep[rng.choice(n, size=k, replace=False)] = False
    empty = np.setdiff1d(np.arange(size), flat)
    grown = rng.choice(empty, size=k, replace=False)
    new_values = values.numpy()[rng.integers(0, n, size=k)]
    flat_new = np.concatenate([flat[keep], grown])
    vals_new = np.concatenate([values.numpy()[keep], new_values])
    order = np.argsort(flat_new)
    return flat_new[order], torch.as_tensor(vals_new[order])


def _rows(study: str, epoch: int, values: np.ndarray, chance, accuracy: float) -> list[dict]:
    return [{"study": study, "epoch": epoch, "layer": k, "pairs": values.shape[0],
             "nnstd_mean": float(values[:, k].mean()), "nnstd_sd": float(values[:, k].std()),
             "nnstd_chance": float(chance.per_layer[k]),
             "nnstd_chance_se": float(chance.per_layer_se[k]),
             "dense": bool(chance.dense[k]), "test_accuracy": accuracy}
            for k in range(values.shape[1])]


def figure(frame, path: Path) -> None:
    from topo.plot import pyplot

    plt = pyplot()
    studies = list(dict.fromkeys(frame["study"]))
    fig, axes = plt.subplots(1, len(studies), figsize=(6.2 * len(studies), 4.2), squeeze=False)
    for ax, study in zip(axes[0], studies):
        part = frame[frame["study"] == study]
        for k, layer in part.groupby("layer"):
            if layer["dense"].all():
                continue
            line = ax.errorbar(layer["epoch"], layer["nnstd_mean"], yerr=layer["nnstd_sd"],
                               marker="o", ms=3, capsize=2, label=f"layer {k}")
            ax.plot(layer["epoch"], layer["nnstd_chance"], ls="--",
                    color=line[0].get_color(), lw=1)
        ax.set_xlabel("epoch")
        ax.set_ylabel("NNSTD (mean ± sd over 45 pairs); dashed: chance level")
        ax.set_ylim(0, 1)
        ax.set_title(study, fontsize=8)
        acc = part.drop_duplicates("epoch")
        twin = ax.twinx()
        twin.plot(acc["epoch"], acc["test_accuracy"], color="0.3", marker="s", ms=3,
                  label="test accuracy")
        twin.set_ylabel("mean test accuracy")
        twin.set_ylim(0, 1)
        ax.legend(loc="lower right", fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n-jobs", type=int, default=2)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--chance-samples", type=int, default=6)
    parser.add_argument("--fashion-root", default=None,
                        help="folder with Fashion-MNIST's IDX files (skipped when absent)")
    args = parser.parse_args()
    import pandas as pd

    started = time.perf_counter()
    rows = []
    if PUBLISHED.is_dir():
        rows += published_study(args.n_jobs, args.chance_samples)
    else:
        print(f"published networks not found in {PUBLISHED}: part 1 skipped")
    rows += own_runs("digits", args.epochs, 10, None, args.n_jobs, args.chance_samples)
    try:
        rows += own_runs("fashion-mnist", min(args.epochs, 10), 10, args.fashion_root,
                         args.n_jobs, args.chance_samples)
    except TopoError as exc:
        print(f"Fashion-MNIST skipped: {str(exc).splitlines()[0]}")
    frame = pd.DataFrame(rows)
    seconds = time.perf_counter() - started
    RESULTS.mkdir(parents=True, exist_ok=True)
    atomic_write_text(RESULTS / "fig4_reproduction.csv", frame.to_csv(index=False))
    figure(frame, RESULTS / "fig4_reproduction.png")
    md = ["# Liu et al. (2020) Fig. 4, reproduced", "",
          f"Made by `analysis/fig4_reproduction.py` in {seconds:.0f} s on {os.cpu_count()} "
          f"CPUs (load average {os.getloadavg()[0]:.1f} at the end). NNSTD per layer: mean "
          "and standard deviation over the 45 pairs of ten networks, beside its chance level "
          "(random networks of the same widths and connection counts, ± standard error) and "
          "the mean test accuracy. Figure: `fig4_reproduction.png`.", "",
          "| study | epoch | layer | NNSTD mean ± sd | chance ± se | test accuracy |",
          "|---|---|---|---|---|---|"]
    for r in rows:
        md.append(f"| {r['study']} | {r['epoch']} | {r['layer']}{' (dense)' if r['dense'] else ''} "
                  f"| {r['nnstd_mean']:.3f} ± {r['nnstd_sd']:.3f} "
                  f"| {r['nnstd_chance']:.3f} ± {r['nnstd_chance_se']:.3f} "
                  f"| {r['test_accuracy']:.3f} |")
    atomic_write_text(RESULTS / "fig4_reproduction.md", "\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
