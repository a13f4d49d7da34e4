"""LayeredGraph and LayerGeometry given unusual or wrong arguments in the Python API: each
wrong argument is refused with a message naming what is wrong; the unusual ones give the
values worked out by hand here."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from topo.errors import GraphStructureError
from topo.graph import LayeredGraph, LayerGeometry, conv_matrix


# --------------------------------------------------------------------------- geometry
@pytest.mark.parametrize("geometry, text", [
    (LayerGeometry(), "linear"),
    (LayerGeometry.conv((3, 3)), "conv 3x3"),
    (LayerGeometry.conv((3,), groups=4), "conv 3 g4"),
    (LayerGeometry.flatten((2, 5)), "flatten 2x5"),
])
def test_describe_names_the_kind_kernel_and_groups(geometry, text):
    assert geometry.describe() == text


@pytest.mark.parametrize("fields, message", [
    ([["kind", "conv"]], r"a layer geometry must be a mapping, got \[\['kind', 'conv'\]\]"),
    ({"kind": "conv", "kernel": [3, 3]}, r"unknown layer geometry field\(s\) kernel"),
    ({"kind": "conv", "kernel_shape": 3}, r"layer geometry kernel_shape must be a list, got 3"),
    ({"kind": "conv", "kernel_shape": ["a", 3]},
     r"kernel shape must be a sequence of integers, got \('a', 3\)"),
    ({"kind": "conv", "kernel_shape": [2.5, 3]},
     r"kernel shape must hold integers of at least 1, got \(2.5, 3\)"),
    ({"kind": "conv", "kernel_shape": [3, 3], "stride": [-1, 1]},
     r"stride must hold integers of at least 0, got \(-1, 1\)"),
    ({"kind": "conv", "kernel_shape": [3], "groups": True},
     r"groups must be a positive integer, got True"),
    ({"kind": "pool", "kernel_shape": [2]}, r"unknown layer kind 'pool'"),
    ({"kind": "linear", "kernel_shape": [2]}, r"a linear layer has no kernel shape"),
    ({"kind": "flatten"}, r"a flatten layer needs a kernel shape"),
    ({"kind": "flatten", "kernel_shape": [2], "groups": 2}, r"a flatten layer has no groups"),
])
def test_a_damaged_geometry_mapping_is_refused(fields, message):
    with pytest.raises(GraphStructureError, match=f"^{message}"):
        LayerGeometry.from_dict(fields)


def test_a_geometry_mapping_round_trips_with_its_optional_fields():
    fields = {"kind": "conv", "kernel_shape": [3, 1], "groups": 2, "stride": [2, 1],
              "padding": [1, 0], "dilation": [1, 1]}
    geo = LayerGeometry.from_dict(fields)
    assert (geo.kernel_shape, geo.groups, geo.stride, geo.padding, geo.dilation) == (
        (3, 1), 2, (2, 1), (1, 0), (1, 1))
    assert geo.to_dict() == fields


# --------------------------------------------------------------------------- constructor
def test_a_geometry_list_of_the_wrong_length_is_refused():
    with pytest.raises(GraphStructureError, match=r"^1 layer geometries for 2 layers$"):
        LayeredGraph([np.eye(2), np.eye(2)], geometry=[LayerGeometry()])


def test_a_geometry_that_is_not_a_layer_geometry_is_refused():
    with pytest.raises(GraphStructureError,
                       match=r"^layer 'layer0': geometry must be a LayerGeometry, got dict$"):
        LayeredGraph([np.eye(2)], geometry=[{"kind": "linear"}])


def test_a_conv_weight_whose_mask_differs_in_shape_is_refused_naming_the_layer():
    w = np.ones((2, 1, 3, 3))
    with pytest.raises(GraphStructureError,
                       match=r"^layer 'c': mask shape \(2, 1, 3, 2\) differs from conv "
                             r"weight shape \(2, 1, 3, 3\)$"):
        LayeredGraph([w], masks=[np.ones((2, 1, 3, 2))], names=["c"],
                     geometry=[LayerGeometry.conv((3, 3))])


def test_conv_matrix_refuses_groups_that_do_not_divide_the_outputs():
    with pytest.raises(GraphStructureError, match=r"^3 output channels cannot form 2 groups$"):
        conv_matrix(np.ones((3, 1, 2)), groups=2)


def test_a_conv_mask_gives_the_connections_even_where_the_weight_is_zero():
    w = np.zeros((2, 1, 2))                   # 2 channels out, 1 in, kernel 2
    w[1, 0, 1] = 3.0
    mask = np.array([[[1, 0]], [[0, 1]]])
    m = conv_matrix(w, mask=mask)
    assert m.shape == (2, 2)
    assert m.nnz == 2                         # (0, 0) weighs 0 but is a connection
    np.testing.assert_array_equal(m.toarray(), [[0.0, 0.0], [0.0, 3.0]])
    np.testing.assert_array_equal(m.indices, [0, 1])
    np.testing.assert_array_equal(m.indptr, [0, 1, 2])


def test_an_input_shape_that_does_not_fit_a_flatten_layer_is_refused():
    with pytest.raises(GraphStructureError,
                       match=r"^input shape \(2, 3, 3\) does not hold 2 channels of 2x2$"):
        LayeredGraph([np.ones((1, 8))], geometry=[LayerGeometry.flatten((2, 2))],
                     input_shape=(2, 3, 3))


def test_an_input_shape_that_fits_a_flatten_layer_is_kept():
    g = LayeredGraph([np.ones((1, 8))], geometry=[LayerGeometry.flatten((2, 2))],
                     input_shape=(2, 2, 2))
    assert g.input_shape == (2, 2, 2)
    assert g.n_in == [2] and g.positions == [4]


# --------------------------------------------------------------------------- queries
def test_unit_graphs_without_norm_keep_linear_layers_and_sum_conv_positions():
    w = np.zeros((1, 2, 2))                   # conv: 1 channel out, 2 in, kernel 2
    w[0, 0] = [3.0, -4.0]
    g = LayeredGraph([w, np.array([[2.0]])], geometry=[LayerGeometry.conv((2,)), None])
    conv_units, linear = g.unit_graphs(norm=None)
    # a conv's unit graph is the l2 norm over its kernel positions: |(3, -4)| = 5
    np.testing.assert_array_equal(conv_units.toarray(), [[5.0, 0.0]])
    assert linear is g.layers[1]


def test_architecture_of_independent_matrices_builds_independent_matrices():
    g = LayeredGraph([np.eye(2), np.ones((3, 4))], independent=True)
    again = LayeredGraph([np.ones((2, 2)), np.eye(4)[:3]], **g.architecture())
    assert again.is_independent
    assert again.n_in == [2, 4]


def test_summary_rows_of_a_conv_list_its_geometry_and_wiring():
    g = LayeredGraph([np.ones((2, 1, 3))], geometry=[LayerGeometry.conv((3,))])
    (row,) = g.summary_rows()
    assert (row["kind"], row["kernel"], row["groups"], row["reads"], row["writes"]) == (
        "conv", "3", 1, 0, 1)
    assert (row["positions"], row["connections"], row["possible"], row["unit_connections"]
            ) == (3, 6, 6, 2)


def test_a_graph_never_equals_something_else():
    g = LayeredGraph([np.eye(2)])
    assert not g.equals("layer0")
    assert g != [np.eye(2)]
    assert g.__eq__(np.eye(2)) is NotImplemented


@pytest.mark.parametrize("biases", [[np.array([1.0, 2.0])], [None]])
def test_graphs_differing_in_a_bias_are_not_equal(biases):
    a = LayeredGraph([np.eye(2)], biases=[np.array([1.0, 3.0])])
    b = LayeredGraph([np.eye(2)], biases=biases)
    assert a != b and not a.equals(b)


def test_graphs_differing_in_metadata_only_are_equal_unless_metadata_counts():
    a = LayeredGraph([sp.csr_matrix(np.eye(2))], metadata={"epoch": 1})
    b = LayeredGraph([sp.csr_matrix(np.eye(2))], metadata={"epoch": 2})
    assert a == b
    assert not a.equals(b, metadata=True)
    assert a.equals(a.copy(), metadata=True)


def test_repr_of_a_conv_chain_counts_layers_and_sets():
    g = LayeredGraph([np.ones((2, 1, 2)), np.array([[1.0, 0.0]])],
                     geometry=[LayerGeometry.conv((2,)), None])
    # the conv has 2 x 1 x 2 = 4 connections, the linear layer 1
    assert repr(g) == ("LayeredGraph(2 layers, sets 1-2-1, chain, connections=5, "
                       "source='<in-memory graph>')")


def test_repr_of_independent_matrices():
    g = LayeredGraph([np.ones((2, 1)), np.ones((1, 2))], independent=True)
    assert repr(g) == ("LayeredGraph(2 layers, sets 1-2-2-1, independent, connections=4, "
                       "source='<in-memory graph>')")


def test_repr_of_residual_streams():
    # both layers read the input and add into one set of 2 units
    g = LayeredGraph([np.ones((2, 1)), np.ones((2, 1))], reads=[0, 0], writes=[1, 1])
    assert repr(g) == ("LayeredGraph(2 layers, sets 1-2, streams, connections=4, "
                       "source='<in-memory graph>')")


def test_summary_rows_without_geometry_leave_its_columns_out():
    g = LayeredGraph([np.ones((2, 1, 3))], geometry=[LayerGeometry.conv((3,))])
    (row,) = g.summary_rows(geometry=False)
    assert list(row)[:5] == ["name", "n_in", "n_out", "connections", "density"]
    assert not {"kind", "kernel", "positions", "possible", "unit_connections"} & set(row)
    assert row["density"] == 1.0
