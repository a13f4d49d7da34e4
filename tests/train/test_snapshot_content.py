"""Training writes snapshots and the dead neuron rate from plain arrays (no SciPy before the
first batch): for every MLP, the file is byte for byte the one the LayeredGraph path writes,
and the rate is the one the graph path computes."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from topo.activity import dead_neuron_rate, dead_neuron_rate_of_layers
from topo.io.snapshot import SnapshotContent, save_snapshot, snapshot_bytes, write_snapshot
from topo.train.model import SparseLinear, SparseMLP


@st.composite
def mlps(draw):
    widths = draw(st.lists(st.integers(1, 7), min_size=2, max_size=4))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        # every density from empty to full: below and above the dense-product threshold
        k = int(rng.integers(0, n_in * n_out + 1))
        flat = np.sort(rng.choice(n_in * n_out, k, replace=False))
        values = rng.normal(size=k).astype(np.float32)
        values[rng.random(k) < 0.2] = 0.0    # a weight of 0 is still a connection
        bias = (torch.from_numpy(rng.normal(size=n_out).astype(np.float32))
                if draw(st.booleans()) else None)
        layers.append(SparseLinear(n_in, n_out, flat, torch.from_numpy(values), bias))
    return SparseMLP(layers), widths, rng


@settings(max_examples=25, deadline=None)
@given(mlps(), st.booleans())
def test_the_content_gives_the_bytes_of_the_graph(case, with_shape):
    model, widths, _ = case
    shape = (widths[0], 1) if with_shape else None
    content = model.snapshot_content(shape)
    assert snapshot_bytes(content) == snapshot_bytes(SnapshotContent.of_graph(
        model.to_graph(shape)))


def test_written_files_hold_those_bytes(tmp_path):
    l0 = SparseLinear(3, 2, np.array([0, 4, 5]), torch.tensor([0.0, 1.5, -1.0]),
                      torch.tensor([0.25, 0.0]))
    model = SparseMLP([l0, SparseLinear(2, 1, np.array([1]), torch.tensor([2.0]), None)])
    a = save_snapshot(model.to_graph((3,)), tmp_path / "a.safetensors").read_bytes()
    b = write_snapshot(model.snapshot_content((3,)), tmp_path / "b.safetensors").read_bytes()
    assert a == b == snapshot_bytes(model.snapshot_content((3,)))


@settings(max_examples=25, deadline=None)
@given(mlps())
def test_the_rate_of_the_arrays_is_the_rate_of_the_graph(case):
    model, widths, rng = case
    assume(len(widths) >= 3)   # a hidden layer (a single layer is refused, below)
    inputs = rng.normal(size=(11, widths[0]))
    content = model.snapshot_content()
    got = dead_neuron_rate_of_layers(content.layers, content.biases, inputs,
                                     names=content.names)
    want = dead_neuron_rate(model.to_graph(), inputs, activation="relu")
    np.testing.assert_array_equal(got.rates, want.rates)
    np.testing.assert_array_equal(got.connected_rates, want.connected_rates)
    assert got.layers == want.layers
    for g, w in zip(got.unit_rates, want.unit_rates):
        np.testing.assert_array_equal(g, w)
    for g, w in zip(got.connected, want.connected):
        np.testing.assert_array_equal(g, w)


def test_the_rate_of_arrays_by_hand():
    # hidden unit 0: relu(x - 1) dead on x = 0.5 only; hidden unit 1: no inputs, bias -1,
    # dead on both inputs, and connected only through its output connection
    l0 = SparseLinear(1, 2, np.array([0]), torch.tensor([1.0]), torch.tensor([-1.0, -1.0]))
    l1 = SparseLinear(2, 1, np.array([0, 1]), torch.tensor([1.0, 1.0]), None)
    content = SparseMLP([l0, l1]).snapshot_content()
    rate = dead_neuron_rate_of_layers(content.layers, content.biases,
                                      np.array([[0.5], [3.0]]))
    assert rate.rates.tolist() == [0.75]
    assert [c.tolist() for c in rate.connected] == [[True, True]]
    assert rate.layers == ["layer0"]


def test_a_single_layer_is_refused():
    import pytest

    from topo.errors import GraphStructureError

    content = SparseMLP([SparseLinear(2, 1, np.array([0]), torch.tensor([1.0]), None)]
                        ).snapshot_content()
    with pytest.raises(GraphStructureError, match="needs hidden units"):
        dead_neuron_rate_of_layers(content.layers, content.biases, np.ones((1, 2)))
