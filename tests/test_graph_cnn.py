"""The data model beyond chains of linear layers: geometry, unit graphs, wiring, equality.

Expected values are worked out by hand in the comments, or computed independently with plain
numpy on the PyTorch-layout kernels.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from topo import structure
from topo.errors import ConfigError, GraphStructureError
from topo.graph import LayeredGraph, LayerGeometry, Wiring, conv_matrix

CONV = LayerGeometry.conv


def two_layer_conv() -> LayeredGraph:
    """c1: conv 1 -> 2 channels, 2x2 kernel; c2: conv 2 -> 1 channel, 1x2 kernel.

    c1 (2, 1, 2, 2):  out 0 = [[1, 0], [0, 2]]   out 1 = [[0, 0], [3, 4]]
    c2 (1, 2, 1, 2):  out 0 reads in 0 at [0, -2] and in 1 at position 0 with weight exactly
                      0 (kept by the mask).
    """
    c1 = np.array([[[[1.0, 0.0], [0.0, 2.0]]], [[[0.0, 0.0], [3.0, 4.0]]]])
    c2 = np.array([[[[0.0, -2.0]], [[0.0, 0.0]]]])
    m2 = np.array([[[[0, 1]], [[1, 0]]]])
    return LayeredGraph([c1, c2], masks=[c1 != 0, m2], names=["c1", "c2"],
                        geometry=[CONV((2, 2)), CONV((1, 2))], input_shape=(1, 5, 5))


# ---------------------------------------------------------------------------- geometry
def test_geometry_positions_and_kinds():
    assert LayerGeometry().positions == 1
    assert CONV((3, 3)).positions == 9
    assert CONV((5,)).positions == 5
    assert LayerGeometry.flatten((4, 4)).positions == 16
    assert CONV((3, 3), groups=4).describe() == "conv 3x3 g4"


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "pool"}, "unknown layer kind"),
    ({"kind": "linear", "kernel_shape": (3,)}, "no kernel shape"),
    ({"kind": "conv"}, "needs a kernel shape"),
    ({"kind": "conv", "kernel_shape": (0, 3)}, "at least 1"),
    ({"kind": "conv", "kernel_shape": (3, 3), "groups": 0}, "positive integer"),
    ({"kind": "flatten", "kernel_shape": (2, 2), "groups": 2}, "no groups"),
])
def test_geometry_refuses_what_does_not_fit(kwargs, match):
    with pytest.raises(GraphStructureError, match=match):
        LayerGeometry(**kwargs)


def test_geometry_dict_round_trip_and_damage():
    geo = CONV((3, 1), groups=2, stride=(2, 1), padding=(1, 0))
    assert LayerGeometry.from_dict(geo.to_dict()) == geo
    assert geo.to_dict() == {"kind": "conv", "kernel_shape": [3, 1], "groups": 2,
                             "stride": [2, 1], "padding": [1, 0]}
    with pytest.raises(GraphStructureError, match="unknown layer geometry field"):
        LayerGeometry.from_dict({"kind": "conv", "kernel_shape": [3], "size": 2})
    with pytest.raises(GraphStructureError, match="must be a list"):
        LayerGeometry.from_dict({"kind": "conv", "kernel_shape": 3})


# ------------------------------------------------------------------------ conv layout
def test_conv_weight_is_stored_as_pytorch_reshape():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(5, 3, 3, 3)) * (rng.random((5, 3, 3, 3)) < 0.4)
    g = LayeredGraph([w], geometry=[CONV((3, 3))])
    np.testing.assert_array_equal(g.layers[0].toarray(), w.reshape(5, -1))
    assert g.n_in == [3] and g.n_out == [5] and g.positions == [9]
    assert g.possible == [5 * 3 * 9]
    assert g.n_connections == [int(np.count_nonzero(w))]
    np.testing.assert_array_equal(g.kernel(0), w)
    np.testing.assert_array_equal(g.kernel_mask(0), w != 0)


def test_grouped_conv_is_expanded_with_nothing_outside_its_groups():
    # 4 input and 4 output channels in 2 groups, 1x1 kernel: out 0, 1 read in 0, 1;
    # out 2, 3 read in 2, 3
    w = np.arange(1.0, 9.0).reshape(4, 2, 1, 1)
    g = LayeredGraph([w], geometry=[CONV((1, 1), groups=2)])
    assert g.layers[0].toarray().tolist() == [
        [1, 2, 0, 0], [3, 4, 0, 0], [0, 0, 5, 6], [0, 0, 7, 8]]
    assert g.possible == [8] and g.densities == [1.0]
    np.testing.assert_array_equal(g.kernel(0), w)
    starts, width = g.allowed_columns(0)
    assert starts.tolist() == [0, 0, 2, 2] and width == 2


def test_grouped_conv_connection_outside_a_group_is_refused():
    m = np.array([[1.0, 0, 0, 0], [0, 1.0, 0, 1.0], [0, 0, 1.0, 0], [0, 0, 0, 1.0]])
    with pytest.raises(GraphStructureError, match=r"outside the groups \(output channel 1 "
                                                  r"reads input channel 3\)"):
        LayeredGraph([m], geometry=[CONV((1, 1), groups=2)], names=["dw"])
    with pytest.raises(GraphStructureError, match="cannot form 3 groups"):
        LayeredGraph([np.ones((3, 4))], geometry=[CONV((1, 1), groups=3)])


def test_matrix_width_must_be_whole_units():
    with pytest.raises(GraphStructureError, match="not a whole number of input units of 9"):
        LayeredGraph([np.ones((2, 20))], geometry=[CONV((3, 3))], names=["c"])
    with pytest.raises(GraphStructureError, match="does not end in its kernel shape"):
        LayeredGraph([np.ones((2, 1, 3, 2))], geometry=[CONV((3, 3))], names=["c"])


def test_conv_matrix_keeps_masked_zero_weights():
    w = np.zeros((1, 1, 2, 2))
    m = np.array([[[[0, 1], [0, 0]]]])
    out = conv_matrix(w, mask=m)
    assert out.nnz == 1 and out.indices.tolist() == [1] and out.data.tolist() == [0.0]
    with pytest.raises(GraphStructureError, match="at least 3 dimensions"):
        conv_matrix(np.ones((2, 2)))


def test_flatten_layer_reads_channels_with_pixel_positions():
    # a linear layer on a flattened (2, 3, 3) map: 2 input units of 9 positions each
    w = np.ones((4, 2, 3, 3))
    g = LayeredGraph([w], geometry=[LayerGeometry.flatten((3, 3))], input_shape=(2, 3, 3))
    assert g.layers[0].shape == (4, 18) and g.n_in == [2]
    assert g.unit_graph(0, "count").toarray().tolist() == [[9, 9]] * 4


def test_input_shape_of_a_conv_network_is_channels_first():
    assert two_layer_conv().input_shape == (1, 5, 5)
    with pytest.raises(GraphStructureError, match="1 input channels"):
        LayeredGraph([np.ones((2, 4))], geometry=[CONV((2, 2))], input_shape=(3, 5, 5))


# -------------------------------------------------------------------------- unit graph
def test_unit_graph_of_two_layer_conv_by_hand():
    g = two_layer_conv()
    # c1: out 0 keeps (1, 2) -> l2 sqrt(5), l1 3, max 2, sum 3, count 2;
    #     out 1 keeps (3, 4) -> l2 5, l1 7, max 4, sum 7, count 2
    assert g.unit_graph(0).toarray() == pytest.approx(np.array([[5 ** 0.5], [5.0]]))
    assert g.unit_graph(0, "l1").toarray().tolist() == [[3.0], [7.0]]
    assert g.unit_graph(0, "max").toarray().tolist() == [[2.0], [4.0]]
    assert g.unit_graph(0, "sum").toarray().tolist() == [[3.0], [7.0]]
    assert g.unit_graph(0, "count").toarray().tolist() == [[2.0], [2.0]]
    # c2: in 0 keeps -2 -> l2 2, sum -2; in 1 keeps one element of weight 0: a connection
    u = g.unit_graph(1)
    assert u.nnz == 2 and u.toarray().tolist() == [[2.0, 0.0]]
    assert g.unit_graph(1, "sum").toarray().tolist() == [[-2.0, 0.0]]
    assert g.n_connections == [4, 2] and g.n_unit_connections == [2, 2]
    with pytest.raises(ConfigError, match="unknown unit-graph norm"):
        g.unit_graph(0, "l3")


def test_unit_graph_of_a_linear_layer_is_its_weights():
    w = np.array([[0.5, 0.0, -1.0], [0.0, 2.0, 0.0]])
    g = LayeredGraph([w])
    assert g.unit_graph(0).toarray().tolist() == np.abs(w).tolist()
    assert g.unit_graph(0, "sum").toarray().tolist() == w.tolist()
    assert g.unit_graphs(None)[0] is g.layers[0]


@settings(max_examples=40, deadline=None)
@given(c_out=st.integers(1, 4), c_in=st.integers(1, 4), kh=st.integers(1, 3),
       kw=st.integers(1, 3), seed=st.integers(0, 10_000))
def test_unit_graph_norms_match_numpy_on_the_kernel(c_out, c_in, kh, kw, seed):
    rng = np.random.default_rng(seed)
    keep = rng.random((c_out, c_in, kh, kw)) < 0.4
    w = rng.normal(size=keep.shape) * keep
    g = LayeredGraph([w], masks=[keep], geometry=[CONV((kh, kw))])
    axes = (2, 3)
    any_kept = keep.any(axis=axes)
    expected = {
        "l2": np.sqrt((w ** 2).sum(axis=axes)), "l1": np.abs(w).sum(axis=axes),
        "max": np.abs(w).max(axis=axes), "sum": w.sum(axis=axes),
        "count": keep.sum(axis=axes).astype(float),
    }
    for norm, value in expected.items():
        u = g.unit_graph(0, norm)
        np.testing.assert_array_equal(structure.binary(u).toarray() == 1, any_kept)
        np.testing.assert_allclose(u.toarray(), np.where(any_kept, value, 0.0), rtol=1e-12)


def test_block_reindexing_moves_whole_units():
    m = sp.csr_matrix(np.array([[1.0, 2.0, 0.0, 3.0]]))  # 2 input units of 2 positions
    moved = structure.reindex_blocks(m, 2, col_map=np.array([1, 0]), n_cols=2)
    assert moved.toarray().tolist() == [[0.0, 3.0, 1.0, 2.0]]
    wider = structure.reindex_blocks(m, 2, col_map=np.array([2, 0]), n_cols=3,
                                     row_map=np.array([1]), n_rows=2)
    assert wider.toarray().tolist() == [[0] * 6, [0.0, 3.0, 0.0, 0.0, 1.0, 2.0]]
    with pytest.raises(ValueError, match="2 input units"):
        structure.reindex_blocks(m, 2, col_map=np.array([0]))


# ------------------------------------------------------------------------------ wiring
def resnet_like(seed: int = 0, density: float = 0.5) -> LayeredGraph:
    """stem (3 -> 4, set 1), basic block on set 1, projection block into set 4 (8 ch),
    classifier.  Sets: 0 input (3), 1 stream (4), 2 block hidden (4), 3 projection hidden
    (8), 4 new stream (8), 5 classes (10)."""
    rng = np.random.default_rng(seed)

    def w(o, i, k=3):
        shape = (o, i, k, k)
        return rng.normal(size=shape) * (rng.random(shape) < density)

    return LayeredGraph(
        [w(4, 3), w(4, 4), w(4, 4), w(8, 4), w(8, 8), w(8, 4, 1), rng.normal(size=(10, 8))],
        names=["stem", "b.conv1", "b.conv2", "p.conv1", "p.conv2", "p.down", "fc"],
        geometry=[CONV((3, 3))] * 5 + [CONV((1, 1)), None],
        reads=[0, 1, 2, 1, 3, 1, 4], writes=[1, 2, 1, 3, 4, 4, 5])


def test_chain_is_the_default_wiring():
    g = two_layer_conv()
    assert g.is_chain and not g.is_independent
    assert g.reads == [0, 1] and g.writes == [1, 2] and g.set_sizes == [1, 2, 1]
    assert g.widths == [1, 2, 1] and g.output_set == 2


def test_resnet_like_wiring():
    g = resnet_like()
    assert not g.is_chain
    assert g.set_sizes == [3, 4, 4, 8, 8, 10]
    assert g.writers(1) == [0, 2] and g.readers(1) == [1, 3, 5]
    assert g.writers(4) == [4, 5] and g.output_set == 5
    assert g.n_units == 37 and g.offsets().tolist() == [0, 3, 7, 11, 19, 27]


def test_sets_are_numbered_by_first_use():
    g = LayeredGraph([np.ones((2, 3)), np.ones((2, 2))], reads=[7, 4], writes=[4, 4])
    assert g.reads == [0, 1] and g.writes == [1, 1]
    assert g.wiring == Wiring((0, 1), (1, 1), (3, 2))
    # an explicit chain is the chain
    h = LayeredGraph([np.ones((2, 3)), np.ones((1, 2))], reads=[0, 1], writes=[1, 2])
    assert h.is_chain


@pytest.mark.parametrize("reads, writes, match", [
    ([0, 2], [1, 3], "reads unit set 2 before any layer writes it"),
    ([0, 1], [2, 1], "reads unit set 1 before any layer writes it"),
    ([0, 1], [1, 0], "writes unit set 0 with 2 units, but it has 3"),
    ([0], [1], "1 reads and 1 writes for 2 layers"),
])
def test_wiring_errors_say_what_is_wrong(reads, writes, match):
    with pytest.raises(GraphStructureError, match=match):
        LayeredGraph([np.ones((2, 3)), np.ones((2, 2))], reads=reads, writes=writes,
                     names=["a", "b"])


def test_a_set_nobody_reads_is_refused():
    with pytest.raises(GraphStructureError, match=r"unit set 1 \(written by layer 'a'\) is read "
                                                  "by no layer and is not the network's output"):
        LayeredGraph([np.ones((2, 3)), np.ones((2, 3))], reads=[0, 0], writes=[1, 2],
                     names=["a", "b"])


def test_wiring_needs_both_lists_and_integers():
    with pytest.raises(GraphStructureError, match="give both reads and writes"):
        LayeredGraph([np.ones((2, 3))], reads=[0])
    with pytest.raises(GraphStructureError, match="integers"):
        LayeredGraph([np.ones((2, 3))], reads=[0.0], writes=[1])
    with pytest.raises(GraphStructureError, match="independent matrices have no"):
        LayeredGraph([np.ones((2, 3))], reads=[0], writes=[1], independent=True)


def test_independent_matrices():
    g = LayeredGraph([np.ones((2, 3)), np.ones((5, 7, 3, 3))],
                     geometry=[None, CONV((3, 3))], independent=True, names=["a", "b"])
    assert g.is_independent and not g.is_chain
    assert g.reads == [0, 2] and g.writes == [1, 3] and g.set_sizes == [3, 2, 7, 5]
    assert g.wiring.input_sets == [0, 2] and g.wiring.output_sets == [1, 3]
    with pytest.raises(GraphStructureError, match="independent matrices"):
        g.require_wiring("neural persistence of the network")
    # one matrix alone is a chain
    assert LayeredGraph([np.ones((2, 3))], independent=True).is_chain


def test_units_on_paths_follow_the_values_of_a_stream():
    # sets: 0 (2 inputs), 1 (stream of 2), 2 (2 hidden), 3 (1 output)
    # a: 0 -> 1 only s1[0] <- x[0];  b: 1 -> 2 s2[0] <- s1[0], s2[1] <- s1[1]
    # c: 2 -> 1 (residual) s1[1] <- s2[0];  d: 1 -> 3 out <- s1[1]
    a = np.array([[1, 0], [0, 0]])
    b = np.array([[1, 0], [0, 1]])
    c = np.array([[0, 0], [1, 0]])
    d = np.array([[0, 1]])
    on_in, on_out = structure.units_on_paths([sp.csr_matrix(m) for m in (a, b, c, d)],
                                             reads=[0, 1, 2, 1], writes=[1, 2, 1, 3])
    # the one path: x0 -a-> s1[0] -b-> s2[0] -c-> s1[1] -d-> out. b's unit 1 reads s1[1]
    # before c has written anything there, so it is on no path.
    assert [f.tolist() for f in on_in] == [[True, False], [True, False], [True, False],
                                           [False, True]]
    assert [f.tolist() for f in on_out] == [[True, False], [True, False], [False, True],
                                            [True]]


def test_units_on_paths_of_a_chain_are_unchanged():
    a = sp.csr_matrix(np.array([[1, 0, 0], [0, 0, 1]]))
    b = sp.csr_matrix(np.array([[1, 0]]))
    on_in, on_out = structure.units_on_paths([a, b])
    assert [f.tolist() for f in on_in] == [[True, False, False], [True, False]]
    assert [f.tolist() for f in on_out] == [[True, False], [True]]


# ------------------------------------------------------------ copies, equality, summary
def test_copy_keeps_geometry_and_wiring_and_equals():
    g = resnet_like()
    h = g.copy()
    assert h == g and h is not g and h.wiring == g.wiring and h.geometry == g.geometry
    h.layers[1].data[0] += 1.0
    assert h != g and h.same_structure(g)


def test_equality_sees_every_part():
    g = two_layer_conv()
    assert g == two_layer_conv()
    assert g.equals(two_layer_conv(), metadata=True)
    renamed = LayeredGraph(g.layers, names=["x", "y"], geometry=g.geometry,
                           input_shape=g.input_shape)
    assert renamed != g
    as_linear = LayeredGraph([np.ones((2, 4))])
    assert not as_linear.same_structure(LayeredGraph([np.ones((2, 4))],
                                                     geometry=[CONV((2, 2))]))
    tagged = g.copy()
    tagged.metadata["epoch"] = 3
    assert tagged == g and not tagged.equals(g, metadata=True)
    nan = LayeredGraph([np.array([[np.nan, 1.0]])])
    assert nan == LayeredGraph([np.array([[np.nan, 1.0]])])
    assert g != "c1" and (g == 1) is False
    with pytest.raises(TypeError):
        hash(g)


def test_summary_of_a_conv_network():
    s = two_layer_conv().summary()
    assert s.columns.tolist() == [
        "name", "kind", "kernel", "groups", "reads", "writes", "n_in", "n_out", "positions",
        "connections", "possible", "density", "unit_connections", "inputs_without_outgoing",
        "outputs_without_incoming", "weight_min", "weight_mean", "weight_max", "nonfinite"]
    assert s["kernel"].tolist() == ["2x2", "1x2"]
    assert s["n_in"].tolist() == [1, 2] and s["n_out"].tolist() == [2, 1]
    assert s["connections"].tolist() == [4, 2] and s["possible"].tolist() == [8, 4]
    assert s["unit_connections"].tolist() == [2, 2]
    assert s["density"].tolist() == [0.5, 0.5]


def test_summary_of_an_mlp_keeps_its_columns():
    s = LayeredGraph([np.ones((2, 3))]).summary()
    assert s.columns.tolist() == [
        "name", "n_in", "n_out", "connections", "density", "inputs_without_outgoing",
        "outputs_without_incoming", "weight_min", "weight_mean", "weight_max", "nonfinite"]


# ----------------------------------------------------------------------------- exports
def test_networkx_view_of_a_conv_network_is_its_unit_graph():
    g = two_layer_conv()
    nxg = g.to_networkx()
    assert nxg.number_of_nodes() == 4 and nxg.number_of_edges() == 4
    # node ids: input channel 0, c1's outputs 1-2, c2's output 3
    assert nxg[0][1]["weight"] == pytest.approx(5 ** 0.5) and nxg[0][2]["weight"] == 5.0
    assert nxg[1][3]["weight"] == 2.0 and nxg[2][3]["weight"] == 0.0
    assert nxg.nodes[3] == {"layer": 2, "unit": 0}
    assert "l2 norm" in nxg.graph["unit_weight"]
    ig = g.to_igraph()
    assert ig.vcount() == 4 and ig.ecount() == 4
    assert sorted(ig.es["weight"]) == pytest.approx(sorted([5 ** 0.5, 5.0, 2.0, 0.0]))


def test_networkx_view_of_streams_uses_sets():
    g = resnet_like()
    nxg = g.to_networkx()
    assert nxg.number_of_nodes() == 37
    assert nxg.number_of_edges() == sum(g.n_unit_connections)
    assert nxg.nodes[3] == {"set": 1, "unit": 0}
    # b.conv2 (layer 2) writes back into the stream: edges from set 2 to set 1
    edges = [(s, t) for s, t, lay in nxg.edges(data="layer") if lay == 2]
    assert all(7 <= s < 11 and 3 <= t < 7 for s, t in edges) and edges


def test_two_layers_between_the_same_sets_give_a_multigraph():
    g = LayeredGraph([np.eye(2), np.eye(2), np.ones((1, 2))], reads=[0, 0, 1],
                     writes=[1, 1, 2])
    nxg = g.to_networkx()
    assert nxg.is_multigraph() and nxg.number_of_edges() == 6


def test_require_chain_and_wiring_say_what_is_missing():
    streams = LayeredGraph([np.ones((2, 3)), np.ones((2, 2)), np.ones((1, 2))],
                           reads=[0, 1, 1], writes=[1, 1, 2])
    with pytest.raises(GraphStructureError, match="x is defined for a chain .* residual"):
        streams.require_chain("x")
    streams.require_wiring("x")
    independent = LayeredGraph([np.ones((2, 3)), np.ones((1, 4))], independent=True)
    with pytest.raises(GraphStructureError, match="x needs the network's wiring"):
        independent.require_chain("x")
    LayeredGraph([np.ones((2, 3))]).require_chain("x")
