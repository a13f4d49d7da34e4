"""
Compare the first and the last snapshot of a run
================================================

NNSTD (Liu et al., 2020) per layer beside its chance level, and the overlap of the two
connection sets raw and after matching hidden units, for the initial and the final network of
the example run (15 epochs of SET on digits).
"""

import topo
from topo.examples import example_run
from topo.plot import plot_comparison

run = topo.read_sequence(example_run())
_, first, _ = run[0]
_, last, _ = run[-1]
comparison = topo.compare(first, last, chance_samples=5)
print(comparison.to_frame().round(3).to_string())

# %%
# The columns drawn are the ones ``topo compare --plot`` draws.
ax = plot_comparison(comparison)
