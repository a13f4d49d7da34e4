"""
How a SET run rewired its connections
=====================================

One row per snapshot and layer: connections added and removed, NNSTD to the first and the
previous snapshot, the fraction of positions ever used, and the run's accuracy.
"""

import topo
from topo.examples import example_run
from topo.plot import plot_evolution

run = topo.read_sequence(example_run())
frame = topo.topology_evolution(run, persistence=False)
columns = ["epoch", "layer", "connections", "added", "removed", "itop_rate_snapshots"]
print(frame[columns].head(8).to_string())

# %%
axes = plot_evolution(frame)

# %%
# Input connectivity
# ------------------
# Each pixel's number of outgoing connections over the epochs, in the digits' 8 x 8 shape.
from topo.plot import plot_input_connectivity  # noqa: E402

counts = topo.input_connectivity(run)
axes = plot_input_connectivity(counts, input_shape=(8, 8))
