"""
Neural persistence and feature interactions
===========================================

Neural persistence (Rieck et al., 2019) of every layer of the final network, its persistence
diagrams, and the pixel pairs with the strongest interaction scores.
"""

import topo
from topo.examples import example_run
from topo.plot import plot_interactions, plot_persistence_diagrams

graph = topo.load(example_run())
print(topo.neural_persistence(graph))

# %%
diagrams = topo.persistence_diagrams(graph)
axes = plot_persistence_diagrams(diagrams)

# %%
scores = topo.interaction_strengths(graph, method="nid")
print(scores.head(5).to_string())
ax = plot_interactions(scores, top=10)
