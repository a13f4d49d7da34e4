"""Per-layer analyses on conv layers, residual streams and independent matrices:
evolution (ITOP rate, churn, degrees and dead units on units), overlap of grouped convs,
neural persistence on the unit graph, and the refusals of interaction detection.

Every expected value is worked out by hand in the comments.
"""

from __future__ import annotations

import numpy as np
import pytest

import topo
from topo.errors import GraphStructureError, IncompatibleGraphsError
from topo.graph import LayeredGraph, LayerGeometry
from topo.persistence import network_persistence_diagram, persistence_diagrams

CONV = LayerGeometry.conv


def conv_net(c1_rows: list[list[int]], kernel=(2, 2)) -> LayeredGraph:
    """c1: conv 1 -> 2 channels (4 positions: columns 0-3); c2: conv 2 -> 1 channel, 1x2
    kernel, keeping (ch0, p1) and (ch1, p0) (columns 1 and 2)."""
    c1 = np.zeros((2, 4))
    for row, cols in enumerate(c1_rows):
        c1[row, cols] = 1.0
    c2 = np.array([[0.0, 1.0, 1.0, 0.0]])
    return LayeredGraph([c1, c2], names=["c1", "c2"],
                        geometry=[CONV(kernel), CONV((1, 2))])


SNAPSHOTS = [[[0, 3], [2, 3]], [[0, 1], [2, 3]], [[0, 1], []]]


def test_evolution_counts_elements_and_units():
    graphs = [conv_net(rows) for rows in SNAPSHOTS]
    table = topo.topology_evolution(graphs, persistence=False)
    c1 = table[table["layer"] == 0].reset_index(drop=True)
    c2 = table[table["layer"] == 1].reset_index(drop=True)
    assert c1["n_in"].tolist() == [1] * 3 and c1["n_out"].tolist() == [2] * 3
    assert c1["possible"].tolist() == [8] * 3
    # 4, 4, 2 elements; snapshot 1 swaps out0's element 3 for 1 (1 added, 1 removed of 4);
    # snapshot 2 removes out1's two elements (2 of 4)
    assert c1["connections"].tolist() == [4, 4, 2]
    assert c1["added"].tolist() == [0, 1, 0] and c1["removed"].tolist() == [0, 1, 2]
    assert c1["churn"].tolist()[1:] == [0.25, 0.5]
    # ever active: {0, 3, 2 + 4, 3 + 4}, then element 1 too: 4, 5, 5 of 8
    assert c1["ever_active_snapshots"].tolist() == [4, 5, 5]
    assert c1["itop_rate_snapshots"].tolist() == [0.5, 0.625, 0.625]
    # units: in snapshot 2 channel 1 of c1 has no element left
    assert c1["outputs_without_incoming"].tolist() == [0, 0, 1]
    assert c1["in_degree_mean"].tolist() == [1.0, 1.0, 0.5]
    assert c1["out_degree_max"].tolist() == [2, 2, 1]
    # ... so c2's input channel 1 and c1's output channel 1 lie on no path
    assert c1["outputs_off_path"].tolist() == [0, 0, 1]
    assert c2["inputs_off_path"].tolist() == [0, 0, 1]
    assert c2["nnstd_to_previous"].tolist()[1:] == [0.0, 0.0]
    np.testing.assert_array_equal(
        topo.ever_active_rate(graphs), [[0.5, 0.5], [0.625, 0.5], [0.625, 0.5]])
    # per input channel: 4, 4 and 2 elements leave it
    assert topo.input_connectivity(graphs).tolist() == [[4], [4], [2]]


def test_evolution_refuses_a_change_of_kernel():
    same_shapes = conv_net(SNAPSHOTS[0], kernel=(4,))
    with pytest.raises(IncompatibleGraphsError, match="layer kinds or kernel shapes differ"):
        topo.topology_evolution([conv_net(SNAPSHOTS[0]), same_shapes], persistence=False)


def test_evolution_of_independent_matrices_counts_each_alone():
    g = LayeredGraph([np.array([[1.0, 0.0]]), np.array([[0.0, 1.0, 1.0]])],
                     independent=True)
    table = topo.topology_evolution([g, g], persistence=False)
    # each matrix alone: an input without connections is off path, nothing else
    assert table["inputs_off_path"].tolist() == [1, 1, 1, 1]
    assert table["outputs_off_path"].tolist() == [0, 0, 0, 0]


def test_overlap_of_a_depthwise_conv_counts_positions_inside_groups():
    # depthwise 3x3 on 2 channels: 2 * 9 = 18 possible positions (not 2 * 2 * 9)
    a = np.zeros((2, 1, 3, 3))
    a[0, 0, 0, 0] = a[1, 0, 1, 1] = 1.0
    b = np.zeros((2, 1, 3, 3))
    b[0, 0, 0, 0] = b[1, 0, 2, 2] = 1.0
    ga = LayeredGraph([a], geometry=[CONV((3, 3), groups=2)])
    gb = LayeredGraph([b], geometry=[CONV((3, 3), groups=2)])
    row = topo.mask_overlap(ga, gb).iloc[0]
    assert row["possible"] == 18 and row["density_a"] == pytest.approx(2 / 18)
    # E[|A & B|] = 2 * 2 / 18; E[J] over N = 18, K = 2, 2: P(1) = 2 * 16 / C(18, 2),
    # P(2) = 1 / C(18, 2) -> (32 / 153) / 3 + (1 / 153) * 1
    assert row["expected_intersection_random"] == pytest.approx(4 / 18)
    assert row["expected_jaccard_random"] == pytest.approx(32 / 153 / 3 + 1 / 153)
    assert row["jaccard"] == pytest.approx(1 / 3)


def test_overlap_refuses_different_kernels():
    ga = LayeredGraph([np.ones((2, 9))], geometry=[CONV((3, 3))])
    gb = LayeredGraph([np.ones((2, 9))], geometry=[CONV((9,))])
    with pytest.raises(IncompatibleGraphsError, match="conv 3x3 in one network and conv 9"):
        topo.mask_overlap(ga, gb)


def test_neural_persistence_on_the_unit_graph_by_hand():
    # c1 (1 -> 2, 2x2): out 0 keeps (1, 2), out 1 keeps (3, 4): unit weights sqrt(5), 5;
    # c2 (2 -> 1, 1x2): in 0 keeps -2, in 1 keeps one element at weight exactly 0: 2, 0.
    # Normalised by 5: c1 (1/sqrt(5), 1), c2 (0.4, 0).
    c1 = np.array([[1.0, 0.0, 0.0, 2.0], [0.0, 0.0, 3.0, 4.0]])
    c2 = np.array([[0.0, -2.0, 0.0, 0.0]])
    g = LayeredGraph([c1, c2], masks=[c1 != 0, np.array([[0, 1, 1, 0]])],
                     geometry=[CONV((2, 2)), CONV((1, 2))])
    r = topo.neural_persistence(g)
    assert r.n_in.tolist() == [1, 2] and r.n_out.tolist() == [2, 1]
    assert r.scale == 5.0 and r.norm == "l2"
    # c1: both edges merge (deaths 1 and 1/sqrt(5)), one component survives:
    # sqrt(0^2 + (1 - 1/sqrt(5))^2 + 1); c2: deaths 0.4 and 0: sqrt(0.6^2 + 1^2 + 1)
    expected = [np.sqrt((1 - 5 ** -0.5) ** 2 + 1), np.sqrt(0.36 + 2)]
    assert r.total_persistence.tolist() == pytest.approx(expected)
    assert r.normalized.tolist() == pytest.approx([e / np.sqrt(2) for e in expected])
    diagrams = persistence_diagrams(g)
    assert diagrams[0][:, 1].tolist() == pytest.approx([1.0, 5 ** -0.5, 0.0])
    # the L1 norm instead: c1 (3, 7), c2 (2, 0), scale 7
    l1 = topo.neural_persistence(g, norm="l1")
    assert l1.scale == 7.0
    assert l1.total_persistence[0] == pytest.approx(np.sqrt((1 - 3 / 7) ** 2 + 1))


def test_network_diagram_joins_a_stream_once():
    # sets: 0 inputs (2), 1 stream (2), 2 hidden (1), 3 output (1)
    # a: s1[0] <- x0 (4); b: h <- s1[1] (2); c: s1[0] <- h (1); d: out <- s1[0] (0.5)
    g = LayeredGraph([np.array([[4.0, 0.0], [0.0, 0.0]]), np.array([[0.0, 2.0]]),
                      np.array([[1.0], [0.0]]), np.array([[0.5, 0.0]])],
                     reads=[0, 1, 2, 1], writes=[1, 2, 1, 3])
    diagram = network_persistence_diagram(g)
    # 6 units; all four edges (1, 0.5, 0.25, 0.125) merge; x1 and the rest stay 2 parts
    assert diagram[:, 1].tolist() == [1.0, 0.5, 0.25, 0.125, 0.0, 0.0]
    independent = LayeredGraph(g.layers, independent=True)
    with pytest.raises(GraphStructureError, match="independent matrices"):
        network_persistence_diagram(independent)
    # per matrix it still works
    assert topo.neural_persistence(independent).normalized.shape == (4,)


def test_an_mlp_persistence_is_unchanged_by_the_unit_graph():
    w = np.array([[0.3, -1.5, 0.0], [2.0, 0.0, -0.1]])
    as_mlp = topo.neural_persistence(LayeredGraph([w, np.array([[1.0, -1.0]])]))
    as_1x1 = topo.neural_persistence(LayeredGraph(
        [w, np.array([[1.0, -1.0]])], geometry=[CONV((1, 1)), CONV((1, 1))]))
    assert as_1x1.total_persistence.tolist() == as_mlp.total_persistence.tolist()


@pytest.mark.parametrize("graph, match", [
    (LayeredGraph([np.ones((2, 1, 2, 2)), np.ones((1, 2))], geometry=[CONV((2, 2)), None]),
     "layer\\(s\\) 'layer0' are conv layers"),
    (LayeredGraph([np.ones((2, 3)), np.ones((2, 2)), np.ones((1, 2))], reads=[0, 1, 1],
                  writes=[1, 1, 2]), "has residual streams"),
    (LayeredGraph([np.ones((2, 3)), np.ones((1, 2))], independent=True),
     "independent matrices"),
])
def test_interactions_refuse_what_they_do_not_define(graph, match):
    with pytest.raises(GraphStructureError, match=match):
        topo.interaction_strengths(graph)
