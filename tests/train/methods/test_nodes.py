"""nodes: sub-networks of the dense parent that keep some hidden units; the node sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from topo.errors import ConfigError
from topo.io import load
from topo.io.run import read_manifest, snapshot_paths
from topo.train import TrainConfig, train
from topo.train.methods import LayerChange, NodeSubnetwork, node_structure, sample_units
from topo.train.model import SparseLinear, SparseMLP

from ..conftest import SMALL
from .conftest import make_context


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=4), st.floats(0.0, 0.99),
       st.integers(0, 2**31 - 1))
def test_the_sampler_removes_the_node_sparsity_of_every_hidden_layer(widths, sparsity, seed):
    kept = sample_units(widths, sparsity, np.random.default_rng(seed))
    for n, k in zip(widths, kept):
        assert k.size == max(1, n - round(sparsity * n))
        assert np.all(np.diff(k) > 0) and k.min() >= 0 and k.max() < n


def test_every_unit_is_equally_likely_to_be_kept():
    rng = np.random.default_rng(0)
    counts = np.zeros(10)
    for _ in range(3000):
        counts[sample_units([10], 0.7, rng)[0]] += 1
    # 3 of 10 kept: each unit with probability 0.3, standard error sqrt(.3 .7 / 3000)
    assert np.all(np.abs(counts / 3000 - 0.3) < 5 * np.sqrt(0.21 / 3000))


def test_the_sampler_refuses_a_sparsity_outside_its_range():
    with pytest.raises(ValueError, match=r"node_sparsity must lie in \[0, 1\), got 1.0"):
        sample_units([4], 1.0, np.random.default_rng(0))


def test_node_structure_by_hand():
    # 2 inputs, hidden 3 (keep 0, 2), hidden 2 (keep 1), 1 output
    structure = node_structure([2, 3, 2, 1], [np.array([0, 2]), np.array([1])])
    assert structure[0].tolist() == [0, 1, 4, 5]        # rows 0 and 2, both inputs
    assert structure[1].tolist() == [3, 5]              # row 1, columns 0 and 2
    assert structure[2].tolist() == [1]                 # the output reads unit 1


def _dense(widths):
    torch.manual_seed(0)
    layers = [SparseLinear(a, b, np.arange(a * b), torch.randn(a * b), torch.zeros(b))
              for a, b in zip(widths[:-1], widths[1:])]
    return SparseMLP(layers, "relu")


def test_at_init_removes_the_connections_of_removed_units_and_keeps_the_rest():
    model = _dense([2, 3, 2, 1])
    before = [layer.values.data.clone() for layer in model.layers]
    changes = NodeSubnetwork(keep_units=[[0, 2], [1]]).at_init(make_context(model))
    assert changes == {0: LayerChange(0, 2), 1: LayerChange(0, 4), 2: LayerChange(0, 1)}
    assert model.layers[1].flat.tolist() == [3, 5]
    # the kept connections keep the parent's initial weights
    assert model.layers[1].values.data.tolist() == before[1][[3, 5]].tolist()


def test_drawn_units_come_from_the_run_generator_and_are_recorded():
    model = _dense([2, 10, 1])
    method = NodeSubnetwork(node_sparsity=0.6)
    method.at_init(make_context(model, seed=4))
    expected = sample_units([10], 0.6, np.random.default_rng(4))[0].tolist()
    assert method.keep_units == [expected] and method.describe() == {"keep_units": [expected]}
    assert model.layers[0].n_connections == 2 * 4
    other = NodeSubnetwork(node_sparsity=0.6)
    other.load_state_dict(method.state_dict())
    assert other.keep_units == [expected]


@pytest.mark.parametrize("keep", [[[0, 3]], [[0], [0], [0]], [[]]])
def test_kept_units_that_do_not_fit_the_widths_are_refused(keep):
    model = _dense([2, 3, 1])
    with pytest.raises(ConfigError, match="do not fit the hidden widths"):
        NodeSubnetwork(keep_units=keep).at_init(make_context(model))


@pytest.mark.parametrize("changes, message", [
    ({}, "exactly one of node_sparsity and keep_units"),
    ({"node_sparsity": 0.5, "keep_units": [[0]]}, "exactly one"),
    ({"node_sparsity": 1.0}, r"node_sparsity must lie in \[0, 1\)"),
    ({"keep_units": [[0, 0]]}, "distinct non-negative"),
    ({"keep_units": "12"}, "one list of unit indices per hidden layer"),
    ({"node_sparsity": 0.5, "density": 0.3}, "its density follows from them"),
])
def test_node_configurations_are_checked(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(method="nodes", **changes)
    with pytest.raises(ValueError, match="exactly one"):
        NodeSubnetwork()


def test_a_nodes_run_is_the_dense_parent_restricted_to_its_units(tmp_path):
    dense = train(TrainConfig(method="dense", epochs=1, **SMALL), tmp_path / "d",
                  progress=False)
    keep = [list(range(0, 40, 2)), list(range(15))]
    run = train(TrainConfig(method="nodes", keep_units=keep, epochs=1, **SMALL),
                tmp_path / "n", progress=False)
    parent = load(snapshot_paths(dense)[0])
    child = load(snapshot_paths(run)[0])
    for k, (p, c) in enumerate(zip(parent.layers, child.layers)):
        expected = node_structure([64, 40, 30, 10], [np.array(u) for u in keep])[k]
        rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
        assert (rows * c.shape[1] + c.indices).tolist() == expected.tolist()
        np.testing.assert_array_equal(c.data, p.toarray().ravel()[expected])
    assert read_manifest(run)["keep_units"] == keep
