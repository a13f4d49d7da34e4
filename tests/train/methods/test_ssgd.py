"""ssgd: dense training with SSGD's scaled steps, global magnitude pruning after the last step."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.errors import ConfigError
from topo.io.run import read_manifest, read_metrics
from topo.train import TrainConfig, train
from topo.train.methods import LayerChange, SSGDPruning
from topo.train.model import SparseLinear, SparseMLP

from ..conftest import SMALL, STEPS_PER_EPOCH
from .conftest import make_context


def _model():
    l0 = SparseLinear(2, 2, np.arange(4), torch.tensor([0.5, -0.05, 2.0, -0.3]), torch.ones(2))
    l1 = SparseLinear(2, 1, np.arange(2), torch.tensor([-0.01, 1.0]), torch.zeros(1))
    return SparseMLP([l0, l1], "identity")


def test_ssgd_prunes_the_smallest_magnitudes_globally_after_the_last_step_only():
    model = _model()
    method = SSGDPruning(total_steps=10, density=0.5)
    assert method.after_step(make_context(model, step=9)) == {}
    assert model.layers[0].n_connections == 4
    changes = method.after_step(make_context(model, step=10))
    # 6 connections, keep 3: |w| = 0.5, 0.05, 2, 0.3 | 0.01, 1 -> keep 2, 1, 0.5
    assert changes == {0: LayerChange(0, 2), 1: LayerChange(0, 1)}
    assert model.layers[0].flat.tolist() == [0, 2] and model.layers[1].flat.tolist() == [1]
    assert model.layers[0].values.data.tolist() == [0.5, 2.0]


def test_ssgd_threshold_removes_every_weight_below_it():
    model = _model()
    changes = SSGDPruning(total_steps=3, threshold=0.3).after_step(
        make_context(model, step=3))
    # |w| < 0.3: 0.05 and 0.01 go; 0.3 itself stays
    assert changes == {0: LayerChange(0, 1), 1: LayerChange(0, 1)}
    assert model.layers[0].flat.tolist() == [0, 2, 3]


def test_ssgd_leaves_layers_that_are_not_prunable_alone():
    model = _model()
    SSGDPruning(total_steps=1, density=0.5).after_step(
        make_context(model, step=1, prunable=[True, False]))
    # 4 prunable connections, keep 2: 2.0 and 0.5
    assert model.layers[0].flat.tolist() == [0, 2] and model.layers[1].n_connections == 2


def test_ssgd_needs_exactly_one_pruning_rule():
    with pytest.raises(ValueError, match="exactly one"):
        SSGDPruning(5)
    with pytest.raises(ValueError, match="exactly one"):
        SSGDPruning(5, density=0.1, threshold=0.1)
    config = TrainConfig(method="ssgd", ssgd_threshold=0.02)
    assert SSGDPruning.from_config(config, 7).threshold == 0.02
    assert SSGDPruning.from_config(TrainConfig(method="ssgd"), 7).density == 0.1
    assert SSGDPruning.optimizer == "ssgd"


@pytest.mark.parametrize("changes, message", [
    ({"density": 0.2, "ssgd_threshold": 0.1}, "either to --density or below"),
    ({"early_stopping_patience": 2}, "early stopping would skip the pruning"),
    ({"optimizer": "adam"}, "optimizer 'adam' cannot be used"),
    ({"ssgd_form": "l0"}, "unknown ssgd_form 'l0'; choose one of l2, l1"),
    ({"ssgd_eps": 0.0}, "ssgd_eps must be positive"),
    ({"ssgd_threshold": -1.0}, "ssgd_threshold must be positive"),
])
def test_ssgd_configurations_it_cannot_honour_are_refused(changes, message):
    with pytest.raises(ConfigError, match=message):
        TrainConfig(method="ssgd", **changes)


def test_an_ssgd_run_trains_with_scaled_steps_and_ends_at_its_density(tmp_path):
    config = TrainConfig(method="ssgd", epochs=2, density=0.2, **SMALL)
    out = train(config, tmp_path / "ssgd", progress=False)
    rows = read_metrics(out)
    connections = rows[[f"connections_{k}" for k in range(3)]].to_numpy()
    total = 64 * 40 + 40 * 30 + 30 * 10
    assert connections[:-1].sum(axis=1).tolist() == [total] * 2     # dense until the end
    assert connections[-1].sum() == round(0.2 * total)
    assert rows["step"].iloc[-1] == 2 * STEPS_PER_EPOCH
    manifest = read_manifest(out)
    assert manifest["optimizer_used"] == "ssgd" and manifest["prune_density"] == 0.2


def test_ssgd_density_is_the_whole_networks_with_the_output_layer_kept_dense(tmp_path):
    # 64-40-30-10 has 4060 connections; density 0.2 is 812 of them; with the 300 of the
    # dense output layer counted, the other two layers keep 512
    config = TrainConfig(method="ssgd", epochs=1, density=0.2, sparse_output=False, **SMALL)
    rows = read_metrics(train(config, tmp_path / "ssgd", progress=False))
    last = rows.iloc[-1]
    assert [last[f"connections_{k}"] for k in range(3)][2] == 300
    assert sum(last[f"connections_{k}"] for k in range(3)) == 812
