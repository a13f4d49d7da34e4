# ---
# jupyter:
#   jupytext:
#     formats: py:percent
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # Persistence and interactions
#
# Two readings of a trained network's weights through persistent homology:
#
# - **neural persistence** (Rieck et al., 2019): the 0-dimensional persistence of each layer's
#   weight filtration, normalised to [0, 1]; in this run it grows in the hidden layers as
#   training makes a few strong connections stand out;
# - **feature interactions** (Tsang et al., 2018; Liu et al., 2020): pairs of inputs whose
#   strong weights meet in the same hidden units.

# %%
import os
import tempfile
from pathlib import Path

import topo

# Run as a script (`python notebooks/03_persistence_and_interactions.py`), this notebook
# prints its key results and saves its figures in a temporary folder (or in $TOPO_FIGURES
# when set); in Jupyter the tables and figures show inline and nothing is saved.
AS_SCRIPT = "__file__" in globals()
FIGURES = (Path(os.environ.get("TOPO_FIGURES") or tempfile.mkdtemp(prefix="topo-nb03-"))
           if AS_SCRIPT else None)


def find_example_run() -> Path:
    """data/example-run of the topo checkout: above this file, the current folder or the
    installed topo package."""
    starts = [Path.cwd(), Path(topo.__file__).resolve().parent]
    if AS_SCRIPT:
        starts.insert(0, Path(__file__).resolve().parent)
    for start in starts:
        for folder in (start, *start.parents):
            if (folder / "data" / "example-run" / "run.json").is_file():
                return folder / "data" / "example-run"
    raise FileNotFoundError(
        "data/example-run not found above this notebook, the current folder "
        f"({Path.cwd()}) or the topo package; run it from a topo checkout, or make the run "
        "with: topo train --method set --dataset digits --arch 64-100-100-10 --epochs 15 "
        "--epsilon 5 --seed 0 --out data/example-run")


def save(drawn, name: str) -> None:
    """As a script, save the figure of ``drawn`` (Axes, array of Axes or Figure) to FIGURES."""
    if FIGURES is None:
        return
    first = drawn.ravel()[0] if hasattr(drawn, "ravel") else drawn
    figure = getattr(first, "figure", first)
    FIGURES.mkdir(parents=True, exist_ok=True)
    figure.savefig(FIGURES / name, dpi=120, bbox_inches="tight")
    print(f"figure: {FIGURES / name}")


RUN = find_example_run()

# %%
from topo.plot import plot_interactions

snapshots = topo.snapshot_paths(RUN)
last = topo.load(snapshots[-1])

# %% [markdown]
# ## Neural persistence per layer, and over training

# %%
print(topo.neural_persistence(last).to_frame().to_string())

# %%
frame = topo.topology_evolution(RUN, nnstd=False)
curve = frame.pivot(index="epoch", columns="name", values="neural_persistence")
ax = curve.plot(marker="o", title="normalised neural persistence")
ax.set_ylabel("neural persistence")
save(ax, "neural_persistence.png")
print(curve.round(4).to_string())

# %% [markdown]
# ## Persistence diagrams
#
# One 0-dimensional diagram per layer: every point is a connected component born at
# filtration value 1 and dying at the normalised weight of the edge that merged it.

# %%
diagrams = topo.persistence_diagrams(last)
print("pairs per diagram:", [d.shape[0] for d in diagrams])

# %%
from topo.plot import plot_barcode, plot_persistence_diagrams

axes = plot_persistence_diagrams(diagrams, names=last.names)
save(axes, "persistence_diagrams.png")

# %%
ax = plot_barcode(diagrams[0], title=last.names[0])
save(ax, "barcode.png")

# %% [markdown]
# ## The strongest pixel-pair interactions

# %%
pairs = topo.interaction_strengths(last, method="ph", order="pairwise", top=15)
pairs["pixels"] = [f"({i // 8},{i % 8})-({j // 8},{j % 8})" for i, j in pairs["features"]]
print(pairs.to_string())

# %%
ax = plot_interactions(pairs[["pixels", "strength"]].rename(columns={"pixels": "pair"}))
save(ax, "interactions.png")
