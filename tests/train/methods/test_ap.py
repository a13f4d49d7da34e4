"""ap: IMP whose levels remove part of their share among the negative, least-moved weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.errors import ConfigError
from topo.io.run import read_manifest, read_metrics
from topo.train import TrainConfig, train
from topo.train.methods import AP, IMP, LayerChange, ap_keep_masks, train_levels
from topo.train.model import SparseLinear, SparseMLP

from ..conftest import SMALL
from .conftest import make_context


def test_ap_removes_the_negative_weights_that_moved_least_after_the_magnitude_step():
    values = [np.array([3.0, -2.5, -0.1, 1.5, -1.0]), np.array([-2.0, 0.2, -4.0])]
    moved = [np.array([0.1, 0.05, 0.0, 0.2, 0.3]), np.array([0.01, 0.5, 2.0])]
    # 8 connections, keep 4, 2 chosen by AP: magnitude keeps the 6 largest |w|
    # (4, 3, 2.5, 2, 1.5, 1), dropping -0.1 and 0.2; among the kept negative weights
    # -2.5 (moved 0.05), -1 (0.3), -2 (0.01), -4 (2.0), the two that moved least go:
    # -2 and -2.5
    keep = ap_keep_masks(values, moved, n_keep=4, n_ap=2)
    assert keep[0].tolist() == [True, False, False, True, True]
    assert keep[1].tolist() == [False, False, True]


def test_without_enough_negative_weights_magnitude_removes_the_rest():
    values = [np.array([3.0, -0.5, 1.0, 2.0, 0.8])]
    moved = [np.array([1.0, 1.0, 0.0, 0.0, 0.0])]
    # keep 2 with n_ap 2: magnitude keeps 4 (3, 2, 1, 0.8), drops -0.5; no negative
    # weight is left for AP, so magnitude removes two more: 0.8 and 1
    keep = ap_keep_masks(values, moved, n_keep=2, n_ap=2)
    assert keep[0].tolist() == [True, False, False, True, False]


def test_ties_in_movement_go_to_the_earlier_connection():
    keep = ap_keep_masks([np.array([-1.0, -1.0, -1.0])], [np.zeros(3)], n_keep=2, n_ap=1)
    assert keep[0].tolist() == [False, True, True]


def test_with_no_ap_share_it_is_global_magnitude_pruning():
    rng = np.random.default_rng(0)
    values = [rng.normal(size=7), rng.normal(size=5)]
    keep = ap_keep_masks(values, [np.zeros(7), np.zeros(5)], n_keep=5, n_ap=0)
    order = np.argsort(-np.abs(np.concatenate(values)), kind="stable")[:5]
    expected = np.zeros(12, dtype=bool)
    expected[order] = True
    assert np.concatenate(keep).tolist() == expected.tolist()


def _model():
    l0 = SparseLinear(2, 2, np.arange(4), torch.tensor([1.0, -1.0, 2.0, -2.0]), torch.zeros(2))
    l1 = SparseLinear(2, 1, np.arange(2), torch.tensor([-3.0, 0.5]), torch.zeros(1))
    return SparseMLP([l0, l1], "identity")


def test_ap_measures_movement_from_the_level_start_and_rewinds():
    model = _model()
    ap = AP(rate=0.5, levels=2, share=1 / 6)
    ap.at_init(make_context(model))
    # "training": end values and movements from the start (1, -1, 2, -2 | -3, 0.5)
    ends = ([1.5, -1.05, 2.5, -3.0], [-5.0, 0.4])
    for layer, values in zip(model.layers, ends):
        layer.values.data = torch.tensor(values)
    changes = ap.next_level(make_context(model))
    # 6 connections, remove round(0.5 * 6) = 3, of which round(6 / 6) = 1 by AP:
    # magnitude keeps the 4 largest (5, 3, 2.5, 1.5), dropping -1.05 and 0.4; AP then
    # removes the kept negative that moved least: -3.0 (moved 1.0), not -5.0 (moved 2.0)
    assert changes == {0: LayerChange(0, 2), 1: LayerChange(0, 1)}
    assert model.layers[0].flat.tolist() == [0, 2] and model.layers[1].flat.tolist() == [0]
    # survivors rewound to their initial values, which start the next level
    assert model.layers[0].values.data.tolist() == [1.0, 2.0]
    assert ap.level_start[1]["values"].tolist() == [-3.0]


def test_imp_alone_would_keep_the_weight_ap_removes():
    model = _model()
    imp = IMP(rate=0.5, levels=2)
    imp.at_init(make_context(model))
    for layer, values in zip(model.layers, ([1.5, -1.05, 2.5, -3.0], [-5.0, 0.4])):
        layer.values.data = torch.tensor(values)
    imp.next_level(make_context(model))
    assert model.layers[0].flat.tolist() == [2, 3]


def test_ap_state_round_trip_and_fields():
    ap = AP(rate=0.2, levels=3, share=0.02)
    ap.at_init(make_context(_model()))
    other = AP(rate=0.2, levels=3, share=0.02)
    other.load_state_dict(ap.state_dict())
    assert other.level_start is ap.level_start and other.rewind_point is ap.rewind_point
    assert ap.describe()["ap_share"] == 0.02 and AP.driver is train_levels
    with pytest.raises(ValueError, match="share must lie in"):
        AP(rate=0.2, levels=1, share=0.2)
    with pytest.raises(RuntimeError, match="starting weights"):
        AP(rate=0.2, levels=1).prune(make_context(_model()), 3)


def test_ap_share_must_be_below_the_level_rate():
    with pytest.raises(ConfigError, match=r"ap_share \(0.25\) must be below imp_rate"):
        TrainConfig(method="ap", ap_share=0.25)
    with pytest.raises(ConfigError, match="ap_share must lie in"):
        TrainConfig(ap_share=0.0)
    assert TrainConfig(method="ap", density=0.5).n_imp_levels() == 4


def test_ap_levels_reach_the_densities_of_imp(tmp_path):
    config = TrainConfig(method="ap", epochs=1, imp_levels=2, **SMALL)
    out = train(config, tmp_path / "ap", progress=False)
    rows = read_metrics(out)
    # the output layer stays dense, as IMP's does (prune_output False)
    prunable = 64 * 40 + 40 * 30
    assert rows["connections_2"].tolist() == [30 * 10] * 6
    counts = rows[[f"connections_{k}" for k in range(2)]].sum(axis=1).tolist()
    # level 1 keeps round(0.8 * N); level 2 keeps round(0.8 * that)
    first = prunable - round(0.2 * prunable)
    assert counts == [prunable] * 2 + [first] * 2 + [first - round(0.2 * first)] * 2
    assert read_manifest(out)["ap_share"] == 0.02
    assert {"dnr_0", "dnr_1", "dnr_network"} <= set(rows.columns)


def test_ap_prunes_until_the_whole_network_reaches_density(tmp_path):
    # 64-40-30-10 with every layer pruned (prune_output): 4060 connections; density 0.7
    # at rate 0.2 takes 2 levels (0.8 > 0.7 >= 0.64): 4060 -> 3248 -> 2598
    config = TrainConfig(method="ap", epochs=1, density=0.7, prune_output=True, **SMALL)
    rows = read_metrics(train(config, tmp_path / "ap", progress=False))
    counts = rows[[f"connections_{k}" for k in range(3)]].sum(axis=1)
    assert counts.tolist() == [4060] * 2 + [3248] * 2 + [2598] * 2
    assert counts.iloc[-1] / 4060 <= 0.7 < counts.iloc[-3] / 4060
    with pytest.raises(ConfigError, match="main_effects with ap"):
        TrainConfig(method="ap", main_effects=True)
