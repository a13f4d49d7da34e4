"""IMP: global magnitude pruning between levels, rewinding (at step 0 and later), the driver."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.errors import ConfigError
from topo.io import load
from topo.io.run import read_manifest, read_metrics, snapshot_paths
from topo.train import TrainConfig, train
from topo.train.methods import IMP, LayerChange, train_levels
from topo.train.model import SparseLinear, SparseMLP

from ..conftest import SMALL, STEPS_PER_EPOCH
from .conftest import make_context


def _model():
    l0 = SparseLinear(2, 2, np.arange(4), torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.ones(2))
    l1 = SparseLinear(2, 1, np.arange(2), torch.tensor([-5.0, 0.5]), torch.zeros(1))
    return SparseMLP([l0, l1], "identity")


def test_imp_prunes_the_smallest_fifth_globally_and_rewinds_survivors():
    model = _model()
    imp = IMP(rate=0.5, levels=2)
    imp.at_init(make_context(model))   # rewind point: these initial values
    # "training" moves every weight; magnitudes now 10, 0.1, 30, 40 and 0.2, 50
    for layer, values in zip(model.layers, ([10.0, -0.1, 30.0, 40.0], [0.2, 50.0])):
        layer.values.data = torch.tensor(values)
        layer.bias.data.fill_(9.0)
    changes = imp.next_level(make_context(model))
    # 6 remain, round(0.5 * 6) = 3 go: the smallest |w| over both layers, 0.1, 0.2 and 10
    assert changes == {0: LayerChange(0, 2), 1: LayerChange(0, 1)}
    assert model.layers[0].flat.tolist() == [2, 3] and model.layers[1].flat.tolist() == [1]
    # survivors and biases take their values at the rewind point
    assert model.layers[0].values.data.tolist() == [3.0, 4.0]
    assert model.layers[1].values.data.tolist() == [0.5]
    assert model.layers[0].bias.data.tolist() == [1.0, 1.0]


def test_imp_takes_its_rewind_point_at_the_rewind_step_only():
    model = _model()
    imp = IMP(rate=0.2, levels=1, rewind_step=3)
    assert imp.at_init(make_context(model)) == {} and imp.rewind_point is None
    imp.after_step(make_context(model, step=2))
    assert imp.rewind_point is None
    model.layers[0].values.data += 1.0
    imp.after_step(make_context(model, step=3))
    assert imp.rewind_point[0]["values"].tolist() == [2.0, 3.0, 4.0, 5.0]
    model.layers[0].values.data += 1.0
    imp.after_step(make_context(model, step=4))
    assert imp.rewind_point[0]["values"].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_imp_without_a_rewind_point_refuses_to_start_a_level():
    with pytest.raises(RuntimeError, match="rewind point"):
        IMP(rate=0.2, levels=1, rewind_step=5).next_level(make_context(_model()))


def test_imp_state_round_trip_and_manifest_fields():
    imp = IMP(rate=0.2, levels=2)
    imp.at_init(make_context(_model()))
    other = IMP(rate=0.2, levels=2)
    other.load_state_dict(imp.state_dict())
    assert other.rewind_point is imp.rewind_point
    assert imp.describe() == {"levels": 2, "level_densities": pytest.approx([1.0, 0.8, 0.64])}
    assert IMP.driver is train_levels and IMP.starts_dense


def test_imp_refuses_a_rewind_step_beyond_the_first_level():
    config = TrainConfig(method="imp", imp_rewind_step=45, imp_levels=1, epochs=2, **SMALL)
    with pytest.raises(ConfigError, match="imp_rewind_step 45 lies beyond the 44 steps"):
        IMP.from_config(config, total_steps=2 * STEPS_PER_EPOCH)
    assert IMP.from_config(config.replace(imp_rewind_step=44), 44).rewind_step == 44


@pytest.mark.parametrize("prune_output", [False, True])
def test_imp_levels_reach_their_densities(tmp_path, prune_output):
    """open_lth's LeNet default leaves the output layer (here 30 x 10) dense; with
    prune_output it is pruned with the rest."""
    out = tmp_path / "imp"
    train(TrainConfig(method="imp", epochs=2, imp_levels=3, prune_output=prune_output,
                      **SMALL), out, progress=False)
    rel = [p.relative_to(out).as_posix() for p in snapshot_paths(out)]
    assert rel == [f"snapshots/level_{lev:02d}/epoch_{e:04d}.safetensors"
                   for lev in range(4) for e in range(3)]
    output = 30 * 10
    expected = 64 * 40 + 40 * 30 + (output if prune_output else 0)   # the pruned layers
    first = expected
    for level in range(4):
        g = load(out / f"snapshots/level_{level:02d}/epoch_0002.safetensors")
        if prune_output:
            assert sum(g.n_connections) == expected
        else:
            assert g.n_connections[2] == output and sum(g.n_connections[:2]) == expected
        assert g.metadata["level"] == level
        expected -= int(round(0.2 * expected))   # prune 20 % of what remains
    df = read_metrics(out)
    assert df.groupby("level")["epoch"].apply(list).tolist() == [[0, 1, 2]] * 4
    # the pruning shows in the epoch-0 row of each level, the step count runs on
    start1 = df[(df["level"] == 1) & (df["epoch"] == 0)]
    assert start1["removed_0"].item() + start1["removed_1"].item() + start1[
        "removed_2"].item() == round(0.2 * first)
    assert start1["step"].item() == 2 * STEPS_PER_EPOCH
    manifest = read_manifest(out)
    assert manifest["levels"] == 3
    assert manifest["level_densities"] == pytest.approx([1, 0.8, 0.64, 0.512])
    assert manifest["final_snapshot"] == "snapshots/level_03/epoch_0002.safetensors"


def _survivor_values(graph, reference):
    """Per layer, the values ``reference`` has at the connections of ``graph``."""
    out = []
    for w, ref in zip(graph.layers, reference.layers):
        rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
        out.append(np.asarray(ref[rows, w.indices]).ravel())
    return out


@pytest.mark.parametrize("rewind_step, source", [
    (0, "level_00/epoch_0000"),                  # the lottery-ticket reset
    (STEPS_PER_EPOCH, "level_00/epoch_0001"),    # late rewinding: after epoch 1
])
def test_imp_rewinds_survivors_to_their_values_at_the_rewind_step(tmp_path, rewind_step,
                                                                  source):
    out = tmp_path / "imp"
    train(TrainConfig(method="imp", epochs=2, imp_levels=1, imp_rewind_step=rewind_step,
                      **SMALL), out, progress=False)
    reference = load(out / f"snapshots/{source}.safetensors")
    start1 = load(out / "snapshots/level_01/epoch_0000.safetensors")
    for values, w in zip(_survivor_values(start1, reference), start1.layers):
        np.testing.assert_array_equal(values, w.data)
    np.testing.assert_array_equal(start1.biases[0], reference.biases[0])
