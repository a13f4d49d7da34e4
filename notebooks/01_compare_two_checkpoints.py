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
# # Compare two checkpoints
#
# How different are the topologies of two sparse networks? This notebook reads two snapshots
# of the example SET run in `data/` (its initialisation and its last epoch), and compares them
# layer by layer with
#
# - **NNSTD** (Liu et al., 2020): hidden units are matched by their incoming connections,
#   so two networks that differ only by a permutation of hidden units are at distance 0;
# - the **Jaccard index** of the connection sets, raw and after that matching, against the
#   Jaccard index two random masks with the same densities would have by chance.
#
# The same table comes from the command line:
#
#     topo compare data/example-run/snapshots/epoch_0000.safetensors data/example-run \
#         --plot compare.png

# %%
from pathlib import Path

import topo
from topo.examples import example_run, script_figures

# The example run in data/, found from wherever this notebook's kernel was started. Run as a
# plain script, the notebook prints its key results and saves its figures in $TOPO_FIGURES
# when that is set (else nowhere); in Jupyter they show inline and nothing is saved.
AS_SCRIPT = "__file__" in globals()
RUN = example_run(*([Path(__file__).parent] if AS_SCRIPT else []))
save = script_figures("topo-nb01", enabled=AS_SCRIPT)

# %%
from topo.plot import plot_comparison

# the run's snapshots in time order, each read when it is used
snapshots = topo.read_sequence(RUN)
first, last = snapshots[0].graph, snapshots[-1].graph
print(first)
print(last)

# %% [markdown]
# Each network is a `LayeredGraph`: one sparse matrix per layer whose stored entries are the
# connections. `summary()` gives one row per layer.

# %%
print(last.summary().to_string())

# %% [markdown]
# ## NNSTD, layer by layer

# %%
result = topo.nnstd(first, last)
print(result.to_frame().to_string())
print(f"NNSTD distance: {result.distance:.4f}")

# %% [markdown]
# ## Overlap of the connection sets
#
# `mask_overlap` with the NNSTD matchings also gives the Jaccard index after aligning the
# hidden units (`aligned_jaccard`) and the chance level (`expected_jaccard_random`).

# %%
overlap = topo.mask_overlap(first, last, result.matchings)
print(overlap[["layer", "name", "intersection", "jaccard", "aligned_jaccard",
               "expected_jaccard_random"]].to_string())

# %% [markdown]
# ## Both at once: the table of `topo compare`
#
# `topo.compare` puts NNSTD beside the raw, aligned and chance Jaccard index, with the column
# names of `topo compare`'s table, `--csv` and `--json` (`jaccard_aligned` is the overlap
# table's `aligned_jaccard`, `jaccard_chance` its `expected_jaccard_random`).

# %%
comparison = topo.compare(first, last)
print(comparison.to_frame().to_string())
ax = plot_comparison(comparison)
save(ax, "comparison.png")

# %% [markdown]
# ## Many checkpoints at once
#
# `distance_matrix` computes every pair (in parallel with `n_jobs`); the clustered heatmap
# puts similar topologies next to each other (every third snapshot here).

# %%
from topo.plot import plot_distance_matrix

every_third = snapshots[::3]  # still nothing read: the workers read the files
nnstd_matrix, overlap_matrix = topo.distance_matrix(every_third)
print(nnstd_matrix.round(3).to_string())
ax = plot_distance_matrix(nnstd_matrix, metric="NNSTD")
save(ax, "distance_matrix.png")
