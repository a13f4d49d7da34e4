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
from pathlib import Path

import topo
from topo.examples import example_run, script_figures

# The example run in data/, found from wherever this notebook's kernel was started. Run as a
# plain script, the notebook prints its key results and saves its figures in $TOPO_FIGURES
# when that is set (else nowhere); in Jupyter they show inline and nothing is saved.
AS_SCRIPT = "__file__" in globals()
RUN = example_run(*([Path(__file__).parent] if AS_SCRIPT else []))
save = script_figures("topo-nb03", enabled=AS_SCRIPT)

# %%
from topo.plot import plot_interactions

snapshots = topo.read_sequence(RUN)
last = snapshots[-1].graph

# %% [markdown]
# ## Neural persistence per layer, and over training

# %%
print(topo.neural_persistence(last).to_frame().to_string())

# %%
from topo.plot import layer_label

frame = topo.topology_evolution(snapshots, nnstd=False)
frame["layer_label"] = [layer_label(k, n) for k, n in zip(frame["layer"], frame["name"])]
curve = frame.pivot(index="epoch", columns="layer_label", values="neural_persistence")
ax = curve.plot(marker="o", title="neural persistence of each layer over training")
ax.set_ylabel("normalised neural persistence")
ax.legend(title=None)
save(ax, "neural_persistence.png")
print(curve.round(4).to_string())

# %% [markdown]
# ## Persistence diagrams
#
# One 0-dimensional diagram per layer: every point is a connected component born at
# filtration value 1 and dying at the normalised weight of the edge that merged it. With
# every birth at 1 a diagram would be one vertical line of overplotted points, so each
# layer's deaths are drawn as a histogram (persistence = 1 - death).

# %%
diagrams = topo.persistence_diagrams(last)
print("pairs per diagram:", [d.shape[0] for d in diagrams])

# %%
from topo.plot import plot_barcode, plot_persistence_diagrams

axes = plot_persistence_diagrams(diagrams, names=last.names)
save(axes, "persistence_diagrams.png")

# %%
ax = plot_barcode(diagrams[0], title=layer_label(0, last.names[0]))
save(ax, "barcode.png")

# %% [markdown]
# ## The strongest pixel-pair interactions

# %%
pairs = topo.interaction_strengths(last, method="ph", order="pairwise", top=15)
pairs["pixels"] = [f"({i // 8},{i % 8})-({j // 8},{j % 8})" for i, j in pairs["features"]]
print(pairs.to_string())

# %% [markdown]
# The figure names each pixel by its (row, column) in the 8 x 8 picture, which the snapshot
# records as its input shape, and writes every strength beside its dot: the strongest pairs
# are close together, so the axis spans their values rather than starting at 0.

# %%
ax = plot_interactions(pairs, input_shape=last.input_shape, method="ph")
save(ax, "interactions.png")
