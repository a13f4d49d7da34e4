"""Property: any LayeredGraph survives a snapshot round trip and every graph conversion."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import topo
from topo.graph import LayeredGraph


@st.composite
def layered_graphs(draw) -> LayeredGraph:
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    seed = draw(st.integers(0, 2**31 - 1))
    density = draw(st.floats(0.0, 1.0))
    rng = np.random.default_rng(seed)
    layers, masks = [], []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        mask = rng.random((n_out, n_in)) < density
        weight = rng.normal(size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.8)
        layers.append(weight)
        masks.append(mask)
    return LayeredGraph(layers, masks=masks)


@settings(max_examples=40, deadline=None)
@given(layered_graphs())
def test_snapshot_roundtrip(tmp_path_factory, graph):
    # in the session's folder (a RAM file system where there is one: see tests/conftest.py)
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as tmp:
        back = topo.load(topo.save_snapshot(graph, Path(tmp) / "g.safetensors"))
    assert back.same_structure(graph)
    for a, b in zip(graph.layers, back.layers):
        np.testing.assert_array_equal(a.indptr, b.indptr)
        np.testing.assert_array_equal(a.indices, b.indices)
        np.testing.assert_array_equal(a.data, b.data)


@settings(max_examples=40, deadline=None)
@given(layered_graphs())
def test_conversions_keep_counts_and_weights(graph):
    nxg = graph.to_networkx()
    ig = graph.to_igraph()
    total = sum(graph.n_connections)
    assert nxg.number_of_nodes() == ig.vcount() == graph.n_units
    assert nxg.number_of_edges() == ig.ecount() == total
    src, dst, w = graph.edges()
    assert sorted(d["weight"] for _, _, d in nxg.edges(data=True)) == sorted(w.tolist())
    assert sorted(ig.es["weight"]) == sorted(w.tolist())
    layer_of = graph.node_layers()
    assert np.all(layer_of[dst] == layer_of[src] + 1)
