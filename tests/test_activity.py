"""The dynamic dead neuron rate (DNR) and the forward pass it reads."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from topo.activity import dead_neuron_rate, preactivations
from topo.errors import ConfigError, GraphStructureError, NonFiniteWeightsError, NotAGraphError
from topo.graph import LayeredGraph, LayerGeometry

X = np.array([[1.0, 2.0], [3.0, 0.5], [0.2, 0.1]])   # positive inputs


def test_a_network_whose_hidden_units_are_all_active_has_rate_0():
    # positive weights on positive inputs: every pre-activation is positive
    g = LayeredGraph([np.ones((3, 2)), np.ones((2, 3)), np.ones((1, 2))])
    rate = dead_neuron_rate(g, X)
    assert rate.rates.tolist() == [0.0, 0.0] and rate.network == 0.0


def test_a_network_whose_hidden_units_are_all_dead_has_rate_1():
    g = LayeredGraph([-np.ones((3, 2)), np.ones((2, 3)), np.ones((1, 2))],
                     biases=[np.zeros(3), -np.ones(2), None])
    rate = dead_neuron_rate(g, X)
    # layer 0 is negative everywhere; layer 1 then sees zeros and a bias of -1
    assert rate.rates.tolist() == [1.0, 1.0] and rate.network == 1.0
    assert [u.tolist() for u in rate.unit_rates] == [[1.0] * 3, [1.0] * 2]


def test_hand_computed_rates_per_layer_and_for_the_network():
    # unit 0: x0 - x1; unit 1: x1 - 1 (bias); unit 2: x0 + x1
    w0 = np.array([[1.0, -1.0], [0.0, 1.0], [1.0, 1.0]])
    g = LayeredGraph([sp.csr_matrix(w0), np.array([[1.0, -1.0, 0.5]])],
                     biases=[np.array([0.0, -1.0, 0.0]), None])
    rate = dead_neuron_rate(g, X)
    # unit 0: -1, 2.5, 0.1 -> dead once; unit 1: 1, -0.5, -0.9 -> dead twice; unit 2 never
    assert rate.unit_rates[0].tolist() == pytest.approx([1 / 3, 2 / 3, 0.0])
    assert rate.rates.tolist() == pytest.approx([3 / 9])
    assert rate.network == pytest.approx(3 / 9)
    assert rate.connected_network == pytest.approx(3 / 9)     # every unit is connected
    frame = rate.to_frame()
    assert frame.to_dict("list") == {"layer": ["layer0"], "units": [3], "isolated_units": [0],
                                     "dnr": [pytest.approx(1 / 3)],
                                     "dnr_connected": [pytest.approx(1 / 3)],
                                     "dead_units": [0]}


def test_network_rate_pools_the_layers_by_their_units():
    # layer 0: 2 units, both dead; layer 1: 4 units, all alive (bias 1)
    g = LayeredGraph([-np.ones((2, 2)), np.ones((4, 2)), np.ones((1, 4))],
                     biases=[None, np.ones(4), None])
    rate = dead_neuron_rate(g, X)
    assert rate.rates.tolist() == [1.0, 0.0]
    assert rate.network == pytest.approx(2 / 6)   # not the mean of the layer rates


def test_a_pre_activation_of_exactly_zero_counts_as_dead():
    g = LayeredGraph([np.array([[1.0, -1.0]]), np.array([[1.0]])])
    assert dead_neuron_rate(g, np.array([[2.0, 2.0]])).rates.tolist() == [1.0]


def test_units_without_any_connection_count_in_the_rate_and_not_in_the_connected_rate():
    # hidden unit 1 has no input and no output connection: it outputs relu(0) = 0 always
    w0 = sp.csr_matrix(np.array([[1.0, 1.0], [0.0, 0.0], [-1.0, -1.0]]))
    w1 = sp.csr_matrix(np.array([[1.0, 0.0, 1.0]]))
    rate = dead_neuron_rate(LayeredGraph([w0, w1]), X)
    assert rate.unit_rates[0].tolist() == [0.0, 1.0, 1.0]
    assert rate.rates.tolist() == pytest.approx([2 / 3])
    assert rate.connected_rates.tolist() == [0.5] and rate.connected_network == 0.5
    assert rate.connected[0].tolist() == [True, False, True]
    assert rate.to_frame()["isolated_units"].tolist() == [1]


def test_a_layer_without_connected_units_has_no_connected_rate():
    w0 = sp.csr_matrix((2, 2))
    rate = dead_neuron_rate(LayeredGraph([w0, sp.csr_matrix((1, 2))]), X)
    assert rate.rates.tolist() == [1.0] and np.isnan(rate.connected_rates[0])
    assert np.isnan(rate.connected_network)


def test_a_unit_with_outputs_but_no_inputs_outputs_its_bias():
    w0 = sp.csr_matrix(np.array([[0.0, 0.0], [1.0, 1.0]]))
    w0.eliminate_zeros()
    g = LayeredGraph([w0, np.array([[1.0, 1.0]])], biases=[np.array([-0.5, 0.0]), None])
    assert dead_neuron_rate(g, X).unit_rates[0].tolist() == [1.0, 0.0]


def test_a_connection_of_weight_zero_is_still_a_connection():
    # the stored zero keeps unit 1 in the network (structure from the mask, not the values)
    w0 = sp.csr_matrix((np.array([1.0, 0.0]), np.array([0, 1]), np.array([0, 1, 2])),
                       shape=(2, 2))
    w1 = sp.csr_matrix((np.array([1.0]), np.array([0]), np.array([0, 1])), shape=(1, 2))
    rate = dead_neuron_rate(LayeredGraph([w0, w1]), X)
    assert rate.unit_rates[0].tolist() == [0.0, 1.0]


def test_preactivations_match_a_dense_forward_pass():
    rng = np.random.default_rng(0)
    ws = [rng.normal(size=(5, 4)) * (rng.random((5, 4)) < 0.5),
          rng.normal(size=(3, 5)), rng.normal(size=(2, 3))]
    bs = [rng.normal(size=5), rng.normal(size=3), rng.normal(size=2)]
    x = rng.normal(size=(7, 4))
    h, expected = x, []
    for w, b in zip(ws, bs):
        z = h @ w.T + b
        expected.append(z)
        h = np.maximum(z, 0)
    got = preactivations(LayeredGraph([sp.csr_matrix(w) for w in ws], biases=bs), x)
    for a, b in zip(got, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


@settings(max_examples=30, deadline=None)
@given(st.integers(1, 6), st.integers(1, 6), st.integers(1, 5), st.floats(0.0, 1.0),
       st.integers(0, 2**31 - 1))
def test_rates_are_shares_of_dead_pairs_for_any_sparse_network(n, width, samples, density,
                                                                seed):
    rng = np.random.default_rng(seed)
    w0 = sp.random(width, n, density=density, random_state=rng, format="csr",
                   data_rvs=lambda k: rng.normal(size=k))
    w1 = sp.random(2, width, density=1.0, random_state=rng, format="csr")
    b0 = rng.normal(size=width)
    x = rng.normal(size=(samples, n))
    rate = dead_neuron_rate(LayeredGraph([w0, w1], biases=[b0, None]), x)
    dead = (x @ w0.toarray().T + b0) <= 0   # every hidden unit has output connections
    assert rate.rates[0] == pytest.approx(dead.mean())
    np.testing.assert_allclose(rate.unit_rates[0], dead.mean(axis=0))
    assert 0.0 <= rate.network <= 1.0 and rate.n_inputs == samples


def test_inputs_shaped_like_pictures_are_flattened():
    g = LayeredGraph([np.ones((2, 4)), np.ones((1, 2))], input_shape=(2, 2))
    assert dead_neuron_rate(g, np.ones((3, 2, 2))).rates.tolist() == [0.0]


@pytest.mark.parametrize("inputs, message", [
    (np.ones((3, 5)), r"inputs of shape \(3, 5\) do not fit the network: it needs \(N, 2\)"),
    (np.ones((0, 2)), "N >= 1"),
    (np.ones(2), "inputs of shape"),
    (np.array([[np.nan, 1.0]]), "NaN or infinity"),
])
def test_inputs_that_do_not_fit_are_refused(inputs, message):
    g = LayeredGraph([np.ones((2, 2)), np.ones((1, 2))])
    with pytest.raises(ConfigError, match=message):
        dead_neuron_rate(g, inputs)


def test_other_activations_single_layers_and_non_finite_weights_are_refused():
    two = [np.ones((2, 2)), np.ones((1, 2))]
    with pytest.raises(ConfigError, match="defined for relu units; this network's hidden "
                                          "activation is 'tanh'"):
        dead_neuron_rate(LayeredGraph(two, metadata={"activation": "tanh"}), X)
    with pytest.raises(ConfigError, match="'sigmoid'"):
        dead_neuron_rate(LayeredGraph(two), X, activation="sigmoid")
    assert dead_neuron_rate(LayeredGraph(two, metadata={"activation": "tanh"}), X,
                            activation="relu").network == 0.0
    with pytest.raises(GraphStructureError, match="single layer"):
        dead_neuron_rate(LayeredGraph([np.ones((2, 2))]), X)
    with pytest.raises(NonFiniteWeightsError, match="finite"):
        dead_neuron_rate(LayeredGraph([np.array([[np.inf, 1.0]]), np.ones((1, 1))]), X)
    with pytest.raises(NotAGraphError, match="topo.load"):
        dead_neuron_rate("run/snapshots/epoch_0001.safetensors", X)


def test_a_network_with_convolutions_is_refused_naming_the_layer():
    # a conv unit's activation is a feature map, which the rate does not define
    conv = LayerGeometry.conv((2,))
    g = LayeredGraph([np.array([[1.0, 1.0], [1.0, 0.0]]), np.array([[1.0, 0.0, 0.0, 1.0]])],
                     geometry=[conv, conv], names=["c1", "c2"])
    with pytest.raises(GraphStructureError, match="convolution 'c1'"):
        dead_neuron_rate(g, np.ones((3, 2)))
