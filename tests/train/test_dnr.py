"""The dead neuron rate the trainer records: every epoch, per hidden layer and for the
network, on the first training inputs, as the analysis function computes it."""

from __future__ import annotations

import pytest

from topo.activity import dead_neuron_rate
from topo.io import load
from topo.io.run import read_metrics, snapshot_paths
from topo.train import TrainConfig, train
from topo.train.callbacks import DNR_SAMPLES
from topo.train.data import with_validation_split
from topo.train.runner import load_training_data

from .conftest import SET_CONFIG, SMALL


def test_every_row_holds_the_rate_of_its_snapshot_on_the_first_training_inputs(set_run):
    rows = read_metrics(set_run)
    inputs = load_training_data(SET_CONFIG).X_train[:DNR_SAMPLES]
    assert len(inputs) == DNR_SAMPLES
    for path, (_, row) in zip(snapshot_paths(set_run), rows.iterrows()):
        rate = dead_neuron_rate(load(path), inputs)
        assert [row["dnr_0"], row["dnr_1"]] == pytest.approx(rate.rates.tolist(), abs=1e-12)
        assert row["dnr_network"] == pytest.approx(rate.network, abs=1e-12)
        assert [row["dnr_connected_0"], row["dnr_connected_1"]] == pytest.approx(
            rate.connected_rates.tolist(), abs=1e-12)
        assert row["dnr_connected_network"] == pytest.approx(rate.connected_network,
                                                             abs=1e-12)
    assert "dnr_2" not in rows.columns        # the output layer has no relu units


def test_networks_without_relu_units_get_no_rate(tmp_path):
    run = train(TrainConfig(method="static", epochs=1, activation="tanh", **SMALL),
                tmp_path / "tanh", progress=False)
    assert not any(c.startswith("dnr") for c in read_metrics(run).columns)


def test_the_rate_is_measured_on_the_training_split_left_after_validation(tmp_path):
    config = TrainConfig(method="static", epochs=1, validation=True, **SMALL)
    run = train(config, tmp_path / "val", progress=False)
    rows = read_metrics(run)
    assert "val_loss" in rows.columns
    data = load_training_data(config)
    # 1347 training samples, a sixth (224) held out: the first 1024 of the 1123 left
    kept = with_validation_split(data, config.seed).X_train
    assert len(kept) == 1123
    inputs = kept[:DNR_SAMPLES]
    rate = dead_neuron_rate(load(snapshot_paths(run)[-1]), inputs)
    assert rows["dnr_network"].iloc[-1] == pytest.approx(rate.network, abs=1e-12)


def test_the_evolution_table_carries_the_rate_of_every_snapshot(set_run):
    import topo

    table = topo.topology_evolution(topo.read_sequence(set_run), nnstd=False,
                                    persistence=False)
    rows = read_metrics(set_run).set_index("epoch")
    for column in ("dnr_0", "dnr_1", "dnr_network", "dnr_connected_network"):
        expected = rows.loc[table["epoch"], column].to_numpy()
        assert table[column].to_numpy() == pytest.approx(expected, abs=0)
