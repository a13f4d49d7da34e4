"""LayeredGraph: construction rules, summary and conversions (exports: tests/io)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from topo.errors import GraphStructureError, NonFiniteWeightsError, NotAGraphError
from topo.graph import LayeredGraph, require_graph


def small_graph() -> LayeredGraph:
    # 3 inputs -> 2 hidden -> 1 output.
    # layer 0 (2x3): h0 <- x0 (0.5), x2 (-1.0); h1 <- x2 (kept at exactly 0 by the mask)
    w0 = np.array([[0.5, 0.0, -1.0], [0.0, 0.0, 0.0]])
    m0 = np.array([[1, 0, 1], [0, 0, 1]])
    w1 = np.array([[2.0, 0.0]])
    return LayeredGraph([w0, w1], masks=[m0, w1 != 0],
                        biases=[np.zeros(2), np.array([0.1])], names=["fc1", "fc2"])


def test_mask_defines_connections_even_for_zero_weights():
    g = small_graph()
    assert g.n_connections == [3, 1]
    layer = g.layers[0]
    stored = set(zip(np.repeat(np.arange(2), np.diff(layer.indptr)).tolist(),
                     layer.indices.tolist()))
    assert stored == {(0, 0), (0, 2), (1, 2)}
    assert layer[1, 2] == 0.0


def test_dense_array_without_mask_uses_nonzeros():
    g = LayeredGraph([np.array([[0.0, 3.0], [0.0, 0.0]])])
    assert g.n_connections == [1]


def test_sparse_input_keeps_explicit_zeros():
    w = sp.csr_matrix((np.array([0.0, 1.5]), (np.array([0, 1]), np.array([1, 0]))), shape=(2, 2))
    g = LayeredGraph([w])
    assert g.n_connections == [2]


def test_widths_and_offsets():
    g = small_graph()
    assert g.widths == [3, 2, 1]
    assert g.n_in == [3, 2] and g.n_out == [2, 1]
    assert g.offsets().tolist() == [0, 3, 5]
    assert g.n_units == 6


def test_consecutive_widths_must_agree():
    with pytest.raises(GraphStructureError, match="takes 3 inputs"):
        LayeredGraph([np.ones((2, 4)), np.ones((1, 3))], names=["a", "b"])


def test_layers_must_be_2d():
    with pytest.raises(GraphStructureError, match="2-D"):
        LayeredGraph([np.ones((2, 3, 3))])


def test_mask_shape_must_match():
    with pytest.raises(GraphStructureError, match="mask shape"):
        LayeredGraph([np.ones((2, 3))], masks=[np.ones((3, 2))])


def test_bias_length_checked():
    with pytest.raises(GraphStructureError, match="bias"):
        LayeredGraph([np.ones((2, 3))], biases=[np.ones(3)])


def test_input_shape_must_hold_inputs():
    with pytest.raises(GraphStructureError, match="input shape"):
        LayeredGraph([np.ones((2, 6))], input_shape=(2, 2))
    assert LayeredGraph([np.ones((2, 6))], input_shape=(2, 3)).input_shape == (2, 3)


def test_empty_layer_list_rejected():
    with pytest.raises(GraphStructureError):
        LayeredGraph([])


def test_summary_hand_computed():
    s = small_graph().summary()
    assert s["name"].tolist() == ["fc1", "fc2"]
    assert s["connections"].tolist() == [3, 1]
    assert s["density"].tolist() == pytest.approx([3 / 6, 1 / 2])
    # x1 has no outgoing connection in layer 0; h1 has no outgoing one in layer 1
    assert s["inputs_without_outgoing"].tolist() == [1, 1]
    assert s["outputs_without_incoming"].tolist() == [0, 0]
    assert s.loc[0, "weight_min"] == -1.0
    assert s.loc[0, "weight_max"] == 0.5
    assert s.loc[0, "weight_mean"] == pytest.approx((0.5 - 1.0 + 0.0) / 3)


def test_nonfinite_reported_and_refused_on_demand():
    g = LayeredGraph([np.array([[np.nan, 1.0]]), np.array([[1.0]])], names=["a", "b"])
    assert g.nonfinite_layers() == ["a"]
    assert g.summary()["nonfinite"].tolist() == [1, 0]
    with pytest.raises(NonFiniteWeightsError, match="'a'"):
        g.require_finite("neural persistence")


def test_edges_use_global_ids():
    src, dst, w = small_graph().edges()
    triples = sorted(zip(src.tolist(), dst.tolist(), w.tolist()))
    assert triples == [(0, 3, 0.5), (2, 3, -1.0), (2, 4, 0.0), (3, 5, 2.0)]


def test_to_networkx_keeps_counts_and_weights():
    g = small_graph()
    nxg = g.to_networkx()
    assert nxg.number_of_nodes() == 6
    assert nxg.number_of_edges() == 4
    assert nxg[2][4]["weight"] == 0.0
    assert nxg.nodes[5] == {"layer": 2, "unit": 0}


def test_to_igraph_keeps_zero_weight_connections():
    g = small_graph()
    ig = g.to_igraph()
    assert ig.vcount() == 6 and ig.ecount() == 4
    eid = ig.get_eid(2, 4)
    assert ig.es[eid]["weight"] == 0.0
    assert sorted(ig.es["weight"]) == [-1.0, 0.0, 0.5, 2.0]


def test_copy_and_same_structure():
    g = small_graph()
    h = g.copy()
    h.layers[0].data[:] = 7.0
    assert g.same_structure(h)
    assert g.layers[0].data[0] == 0.5
    other = LayeredGraph([np.array([[1.0, 0, 0], [0, 1.0, 0]]), np.array([[1.0, 1.0]])])
    assert not g.same_structure(other)


def test_empty_layers_are_allowed_and_copy():
    empty = sp.csr_matrix((3, 4))
    g = LayeredGraph([empty, np.ones((2, 3))], masks=[np.zeros((3, 4)), np.ones((2, 3))])
    assert g.n_connections == [0, 6]
    assert g.copy().n_connections == [0, 6]
    assert LayeredGraph([sp.csr_matrix((3, 4))], masks=[sp.csr_matrix((3, 4))]).n_connections == [0]


def test_same_structure_sees_one_moved_connection_and_other_widths():
    g = small_graph()
    moved = LayeredGraph([np.array([[1.0, 0, 1.0], [1.0, 0, 0]]), np.array([[1.0, 1.0]])])
    assert not g.same_structure(moved)  # h1 <- x0 instead of x2
    assert not g.same_structure(LayeredGraph([np.ones((2, 4)), np.ones((1, 2))]))


def test_require_graph_says_how_to_read_a_path():
    g = small_graph()
    assert require_graph(g) is g
    with pytest.raises(NotAGraphError, match=r"topo.load\(path\)") as info:
        require_graph("runs/a.safetensors", "network a")
    assert "network a" in str(info.value) and "runs/a.safetensors" in str(info.value)
    with pytest.raises(TypeError, match="expected a LayeredGraph, got ndarray"):
        require_graph(np.eye(2))


def test_counts_of_names_masks_and_biases_must_fit_the_layers():
    with pytest.raises(GraphStructureError, match="1 layer names for 2 layers"):
        LayeredGraph([np.eye(2), np.eye(2)], names=["a"])
    with pytest.raises(GraphStructureError, match="1 masks for 2 layers"):
        LayeredGraph([np.eye(2), np.eye(2)], masks=[np.eye(2)])
    with pytest.raises(GraphStructureError, match="3 biases for 2 layers"):
        LayeredGraph([np.eye(2), np.eye(2)], biases=[None, None, None])
    with pytest.raises(GraphStructureError, match=r"shape \(0, 2\)"):
        LayeredGraph([np.zeros((0, 2))])
    with pytest.raises(GraphStructureError, match="weights and mask must be 2-D"):
        LayeredGraph([np.ones(3)], masks=[np.ones(3)])
    with pytest.raises(GraphStructureError, match="weights must be 2-D"):
        LayeredGraph([sp.coo_array(np.ones(3))])


def test_densities_and_finiteness():
    g = small_graph()
    assert g.densities == [3 / 6, 1 / 2]
    assert g.is_finite()
    bad = LayeredGraph([np.array([[np.inf, 1.0]])])
    assert not bad.is_finite() and bad.nonfinite_layers() == ["layer0"]
