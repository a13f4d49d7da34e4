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
# # Topology evolution of a training run
#
# SET (Mocanu et al., 2018) removes a fraction ζ of each sparse layer's connections after every
# epoch and regrows as many at random. `topology_evolution` follows what that did to the
# topology, snapshot by snapshot: churn, NNSTD and Jaccard index to the first and previous
# snapshot, the in-time over-parameterisation rate (Liu et al., 2021), dead units, and the
# run's own accuracy. The command line gives the same table and figure:
# `topo evolution data/example-run --plot evolution.png`.

# %%
from pathlib import Path

import topo
from topo.examples import example_run, script_figures

# The example run in data/, found from wherever this notebook's kernel was started. Run as a
# plain script, the notebook prints its key results and saves its figures in $TOPO_FIGURES
# when that is set (else nowhere); in Jupyter they show inline and nothing is saved.
AS_SCRIPT = "__file__" in globals()
RUN = example_run(*([Path(__file__).parent] if AS_SCRIPT else []))
save = script_figures("topo-nb02", enabled=AS_SCRIPT)

# %%
import numpy as np

from topo.plot import plot_embedding, plot_evolution, plot_input_connectivity

snapshots = topo.read_sequence(RUN)  # read one at a time, with each epoch's metrics
frame = topo.topology_evolution(snapshots)
print(frame[["epoch", "name", "connections", "density", "added", "removed", "churn",
             "nnstd_to_first", "nnstd_to_previous", "itop_rate_snapshots",
             "test_accuracy"]].head(9).to_string())

# %% [markdown]
# ## The evolution panel
#
# One line per layer. SET rewires between epochs from epoch 2 on, so epoch 1 shows no change.
# After that every sparse layer loses a little less than ζ = 0.3 of its connections between
# snapshots (regrowth can land on just-freed positions, which then count as kept), a dense
# layer would lose none, and the fraction of positions ever used keeps growing: SET explores
# far more connections than it holds at any time.

# %%
axes = plot_evolution(frame)
save(axes, "evolution.png")

# %%
sparse = frame[(frame["snapshot"] > 0) & (frame["density"] < 1)]
print(sparse.groupby("name")["churn"].agg(["mean", "min", "max"]).to_string())

# %% [markdown]
# ## Input connectivity
#
# The outgoing connections of every pixel of the 8 x 8 digits, over the epochs. SET's MNIST
# figure shows the uninformative border pixels losing their connections over hundreds of
# epochs. The mechanism: SET drops the weights nearest to zero, and a pixel that is always
# blank gets no gradient, so its weights never grow while the others do, and its connections
# are dropped first and regrown elsewhere. With 8 x 8 digits and a few epochs the maps change
# much less than MNIST's; the cell after the maps compares the three pixels that are constant
# over the whole data set with the others.

# %%
counts = topo.input_connectivity(snapshots)
epochs = frame.drop_duplicates("snapshot")["epoch"].tolist()
axes = plot_input_connectivity(counts, input_shape=(8, 8), epochs=epochs)
save(axes, "input_connectivity.png")

# %%
from sklearn.datasets import load_digits

constant = load_digits().data.std(axis=0) == 0
print("constant pixels:", np.flatnonzero(constant))
print("mean outgoing connections of constant pixels, first and last snapshot:",
      counts[[0, -1]][:, constant].mean(axis=1))
print("mean outgoing connections of the other pixels, first and last snapshot:",
      counts[[0, -1]][:, ~constant].mean(axis=1))

# %% [markdown]
# ## The run as a trajectory
#
# The NNSTD matrix of every other snapshot, embedded in the plane by multidimensional scaling.
# The title gives Kruskal's stress of the fit: once SET has rewired most connections, the
# snapshots are nearly equally far from one another, which no planar picture can show, and
# a stress of 0.2 or more (a poor fit) comes with a warning.

# %%
every_other = snapshots[::2]
matrix, _ = topo.distance_matrix(every_other,
                                 labels=[f"example-run/{label}" for label in every_other.labels])
ax = plot_embedding(matrix, metric="NNSTD")
print(f"Kruskal stress-1 of the embedding: {ax.stress_:.3f}")
save(ax, "embedding.png")
