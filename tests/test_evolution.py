"""Connectivity evolution of a sequence of snapshots: `topology_evolution`,
`input_connectivity`, `ever_active_rate` (the command: tests/cli/test_cli_evolution.py).

Expected values are worked out by hand on tiny networks or recomputed here from dense numpy
masks; stand-in runs are written with `save_snapshot` into the run-directory layout
(the `write_run` fixture) and read back with `topo.read_sequence`.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

import topo.distance
from topo.errors import (
    EmptyInputError,
    IncompatibleGraphsError,
    NotAGraphError,
    UnreadableFileError,
)
from topo.evolution import (
    EVOLUTION_COLUMNS,
    ever_active_rate,
    input_connectivity,
    topology_evolution,
)
from topo.graph import LayeredGraph
from topo.io import read_sequence, save_snapshot
from topo.io.run import MANIFEST_NAME, METRICS_NAME, snapshot_name


def evolution(run, **kwargs):
    """The evolution table of a run directory, read as topo.read_sequence reads it."""
    return topology_evolution(read_sequence(run), **kwargs)


# A 3-2-1 network at two snapshots, used for the hand-worked expectations below.
#   snapshot 0: hidden h0 <- {x0, x1}, h1 <- {x2};   output <- {h0}
#   snapshot 1: hidden h0 <- {x0},     h1 <- {x1, x2}; output <- {h0}
HAND = [
    [np.array([[1, 1, 0], [0, 0, 1]], bool), np.array([[1, 0]], bool)],
    [np.array([[1, 0, 0], [0, 1, 1]], bool), np.array([[1, 0]], bool)],
]


def _row(frame, snapshot, layer):
    rows = frame[(frame["snapshot"] == snapshot) & (frame["layer"] == layer)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_one_row_per_snapshot_and_layer_in_time_order(tmp_path, write_run):
    run = write_run(tmp_path / "run", HAND, epochs=[0, 5])
    frame = evolution(run)
    assert list(frame["epoch"]) == [0, 0, 5, 5]
    assert list(frame["layer"]) == [0, 1, 0, 1]
    assert list(frame["name"]) == ["fc0", "fc1", "fc0", "fc1"]


def test_added_removed_churn_and_jaccard_by_hand(tmp_path, write_run):
    frame = evolution(write_run(tmp_path / "run", HAND))
    first = _row(frame, 0, 0)
    assert (first["added"], first["removed"]) == (0, 0)
    assert np.isnan(first["churn"]) and np.isnan(first["jaccard_to_previous"])
    row = _row(frame, 1, 0)
    # kept {(h0,x0), (h1,x2)}, added (h1,x1), removed (h0,x1)
    assert (row["connections"], row["added"], row["removed"]) == (3, 1, 1)
    assert row["churn"] == pytest.approx(1 / 3)
    assert row["jaccard_to_previous"] == pytest.approx(2 / 4)
    assert row["jaccard_to_first"] == pytest.approx(2 / 4)
    assert row["density"] == pytest.approx(3 / 6)
    out = _row(frame, 1, 1)
    assert (out["added"], out["removed"], out["churn"]) == (0, 0, 0.0)
    assert out["jaccard_to_previous"] == 1.0


def test_nnstd_columns_by_hand(tmp_path, write_run):
    frame = evolution(write_run(tmp_path / "run", HAND))
    # Hidden units: {x0,x1} vs {x0} costs 1/2, {x2} vs {x1,x2} costs 1/2 (Jaccard distance);
    # the identity matching (cost 1) beats the swap (2/3 + 1); 1 / 2 units = 0.5.
    # The output keeps its place; after the identity matching both read {h0}: 0.
    assert _row(frame, 1, 0)["nnstd_to_first"] == pytest.approx(0.5)
    assert _row(frame, 1, 0)["nnstd_to_previous"] == pytest.approx(0.5)
    assert _row(frame, 1, 1)["nnstd_to_first"] == pytest.approx(0.0)
    assert _row(frame, 0, 0)["nnstd_to_first"] == 0.0
    assert np.isnan(_row(frame, 0, 0)["nnstd_to_previous"])


def test_ever_active_by_hand(tmp_path, write_run):
    frame = evolution(write_run(tmp_path / "run", HAND))
    # layer 0: 3 connections, then one new one: 4 of 6 possible were ever active
    assert _row(frame, 0, 0)["itop_rate_snapshots"] == pytest.approx(3 / 6)
    assert _row(frame, 1, 0)["ever_active_snapshots"] == 4
    assert _row(frame, 1, 0)["itop_rate_snapshots"] == pytest.approx(4 / 6)


def test_the_exact_itop_rate_a_run_recorded_is_used_beside_the_snapshot_lower_bound(
        tmp_path, write_run):
    """The run says (metrics) that 5 of layer 0's 6 positions were connections at some
    moment, one of them between the two snapshots: the snapshots show only 4."""
    metrics = [{"epoch": 0, "itop_rate": [3 / 6, 1 / 2], "itop_rate_network": 4 / 8,
                "loss": 1.0},
               {"epoch": 1, "itop_rate": [5 / 6, 1 / 2], "itop_rate_network": 6 / 8,
                "loss": 0.5}]
    frame = evolution(write_run(tmp_path / "run", HAND, metrics=metrics))
    row = _row(frame, 1, 0)
    assert (row["itop_rate_snapshots"], row["itop_rate"], row["itop_rate_network"]) == (
        pytest.approx(4 / 6), pytest.approx(5 / 6), pytest.approx(6 / 8))
    assert _row(frame, 1, 1)["itop_rate"] == pytest.approx(1 / 2)
    columns = list(frame.columns)
    assert columns[columns.index("itop_rate_snapshots") + 1:][:2] == ["itop_rate",
                                                                     "itop_rate_network"]
    assert not any(c.startswith("run_itop") for c in columns)   # not repeated as metrics
    # without the run's metrics joined, the exact rate is still the run's own
    assert _row(evolution(write_run(tmp_path / "again", HAND, metrics=metrics),
                          metrics=False), 1, 0)["itop_rate"] == pytest.approx(5 / 6)


def test_a_run_that_did_not_record_the_itop_rate_has_only_the_lower_bound(tmp_path,
                                                                        write_run):
    frame = evolution(write_run(tmp_path / "run", HAND,
                                metrics=[{"epoch": 0, "loss": 1.0}, {"epoch": 1, "loss": 0.5}]))
    assert "itop_rate_snapshots" in frame.columns
    assert "itop_rate" not in frame.columns and "itop_rate_network" not in frame.columns


def test_degrees_and_units_off_every_path_by_hand(tmp_path, write_run):
    frame = evolution(write_run(tmp_path / "run", HAND))
    row = _row(frame, 0, 0)
    # hidden in-degrees (2, 1); input out-degrees (1, 1, 1)
    assert (row["in_degree_mean"], row["in_degree_std"]) == (1.5, 0.5)
    assert (row["in_degree_min"], row["in_degree_max"]) == (1, 2)
    assert (row["out_degree_mean"], row["out_degree_max"]) == (1.0, 1)
    # h1 feeds nothing, so x2 (only into h1) and h1 are on no input-to-output path
    assert (row["inputs_off_path"], row["outputs_off_path"]) == (1, 1)
    assert (row["inputs_without_outgoing"], row["outputs_without_incoming"]) == (0, 0)
    last = _row(frame, 0, 1)
    assert (last["inputs_without_outgoing"], last["inputs_off_path"]) == (1, 1)
    assert last["outputs_off_path"] == 0
    # snapshot 1: x1 and x2 feed only h1, which still feeds nothing
    assert _row(frame, 1, 0)["inputs_off_path"] == 2


def test_static_run_has_zero_churn_and_zero_nnstd_throughout(tmp_path, write_run):
    rng = np.random.default_rng(1)
    masks = [rng.random((20, 16)) < 0.3, rng.random((12, 20)) < 0.4, rng.random((4, 12)) < 1]
    run = write_run(tmp_path / "static", [masks] * 6, seed=3)
    frame = evolution(run)
    later = frame[frame["snapshot"] > 0]
    assert (later["added"] == 0).all() and (later["removed"] == 0).all()
    assert (later["churn"] == 0).all()
    assert (frame["nnstd_to_first"] == 0).all()
    assert (later["nnstd_to_previous"] == 0).all()
    assert (frame["jaccard_to_first"] == 1).all()
    expected = np.tile([m.mean() for m in masks], 6)
    np.testing.assert_allclose(frame["itop_rate_snapshots"], expected)


def test_identical_structures_reuse_distances_without_solving(tmp_path, monkeypatch, write_run):
    rng = np.random.default_rng(2)
    a = [rng.random((10, 8)) < 0.4, rng.random((3, 10)) < 0.5]
    b = [rng.random((10, 8)) < 0.4, rng.random((3, 10)) < 0.5]
    calls = []

    def counting_nnstd(x, y, **kwargs):
        calls.append((x.metadata["epoch"], y.metadata["epoch"]))
        return real(x, y, **kwargs)

    real = topo.distance.nnstd
    monkeypatch.setattr(topo.distance, "nnstd", counting_nnstd)
    frame = evolution(write_run(tmp_path / "run", [a, a, b, b, a]))
    # snapshot 1 repeats 0: nothing to solve. Snapshot 2 is new: one solve from structure a
    # serves both "to first" (0) and "to previous" (1, also a). Snapshot 3 repeats 2.
    # Snapshot 4 is a again (0 to first) and needs one solve from b (its predecessor 3).
    assert calls == [(0, 2), (3, 4)]
    expected_to_first = [real(*_graphs(tmp_path / "run", 0, 2)).per_layer]
    np.testing.assert_allclose(_layer_values(frame, 3, "nnstd_to_first"), expected_to_first[0])
    np.testing.assert_allclose(_layer_values(frame, 3, "nnstd_to_previous"), [0, 0])
    np.testing.assert_allclose(_layer_values(frame, 4, "nnstd_to_first"), [0, 0])


def test_over_parameterisation_rate_never_decreases_and_matches_union(tmp_path, write_run):
    rng = np.random.default_rng(4)
    shapes = [(30, 20), (5, 30)]
    snapshots = []
    masks = [rng.random(s) < 0.2 for s in shapes]
    for _ in range(8):
        snapshots.append([m.copy() for m in masks])
        masks = [_rewire(m, 0.3, rng) for m in masks]
    frame = evolution(write_run(tmp_path / "run", snapshots), nnstd=False)
    for k in range(len(shapes)):
        rates = frame.loc[frame["layer"] == k, "itop_rate_snapshots"].to_numpy()
        assert np.all(np.diff(rates) >= 0)
        union = np.logical_or.accumulate(np.array([s[k] for s in snapshots]), axis=0)
        np.testing.assert_allclose(rates, union.reshape(8, -1).mean(axis=1))


def test_churn_equals_the_rewired_fraction_when_regrowth_avoids_freed_positions(
        tmp_path, write_run):
    rng = np.random.default_rng(5)
    masks = [rng.random((40, 30)) < 0.25]
    snapshots = [masks]
    for _ in range(4):
        snapshots.append([_rewire(snapshots[-1][0], 0.2, rng)])
    frame = evolution(write_run(tmp_path / "run", snapshots), nnstd=False)
    n = snapshots[0][0].sum()
    later = frame[frame["snapshot"] > 0]
    np.testing.assert_allclose(later["churn"], round(0.2 * n) / n)
    assert (later["added"] == later["removed"]).all()


def test_metrics_are_joined_by_epoch_and_per_layer_lists_by_layer(tmp_path, write_run):
    metrics = [
        {"epoch": 0, "loss": 2.3, "test_accuracy": 0.1, "removed": [0, 0]},
        {"epoch": 1, "loss": 1.1, "test_accuracy": 0.6, "removed": [1, 0]},
    ]
    frame = evolution(write_run(tmp_path / "run", HAND, metrics=metrics))
    assert list(frame["test_accuracy"]) == [0.1, 0.1, 0.6, 0.6]
    assert list(frame["loss"]) == [2.3, 2.3, 1.1, 1.1]
    assert list(frame["run_removed"]) == [0, 0, 1, 0]
    assert list(frame["removed"]) == [0, 0, 1, 0]


def test_pruning_levels_are_kept_in_order_and_metrics_joined_by_level_and_epoch(tmp_path):
    run = tmp_path / "imp"
    run.mkdir()
    (run / MANIFEST_NAME).write_text("{}")
    dense = [np.ones((2, 3), bool), np.ones((1, 2), bool)]
    pruned = [np.array([[1, 1, 0], [0, 1, 1]], bool), np.ones((1, 2), bool)]
    for level, masks in ((0, dense), (1, pruned)):
        for epoch in (0, 1):
            graph = LayeredGraph([m.astype(float) for m in masks], metadata={"epoch": epoch})
            save_snapshot(graph, run / snapshot_name(epoch, level))
    (run / METRICS_NAME).write_text("".join(
        json.dumps({"level": lv, "epoch": e, "test_accuracy": 0.5 + lv / 4 + e / 10}) + "\n"
        for lv in (0, 1) for e in (0, 1)))
    frame = evolution(run)
    per_snapshot = frame[frame["layer"] == 0]
    assert list(zip(per_snapshot["level"], per_snapshot["epoch"])) == [(0, 0), (0, 1), (1, 0),
                                                                       (1, 1)]
    np.testing.assert_allclose(per_snapshot["test_accuracy"], [0.5, 0.6, 0.75, 0.85])
    # pruning 2 of 6 connections at the start of level 1: churn 2/6, none after
    np.testing.assert_allclose(per_snapshot["churn"].iloc[1:], [0, 2 / 6, 0])


def test_metrics_named_like_a_column_are_kept_beside_it_and_missing_rows_are_nan(write_run,
                                                                                tmp_path):
    metrics = [{"epoch": 1, "density": 0.9, "note": "second"}]  # nothing for epoch 0
    frame = evolution(write_run(tmp_path / "run", HAND, metrics=metrics))
    assert list(frame.columns[-2:]) == ["run_density", "note"]
    assert list(frame["density"]) == [3 / 6, 1 / 2, 3 / 6, 1 / 2]  # the table's own column
    assert np.isnan(frame["run_density"].iloc[0]) and frame["run_density"].iloc[2] == 0.9
    assert frame["note"].tolist()[2:] == ["second", "second"]
    without = evolution(write_run(tmp_path / "run", HAND, metrics=metrics), metrics=False)
    assert "note" not in without.columns


def test_accepts_graphs_and_entries_with_their_metadata():
    graphs = [LayeredGraph([m.astype(float) for m in masks]) for masks in HAND]
    from_graphs = topology_evolution(graphs)
    assert list(from_graphs["epoch"]) == [0, 0, 1, 1]  # positions: no epoch known
    assert list(from_graphs["removed"]) == [0, 0, 1, 0]
    entries = [("start", graphs[0], {"epoch": 10, "metrics": {"epoch": 10, "loss": 2.0}}),
               ("end", graphs[1], {"epoch": 20, "level": 3})]
    frame = topology_evolution(iter(entries))  # any iterable, read once
    assert list(frame["epoch"]) == [10, 10, 20, 20]
    assert frame["level"].isna().tolist() == [True, True, False, False]
    assert frame["level"].tolist()[2:] == [3, 3]
    assert frame["loss"].tolist()[:2] == [2.0, 2.0] and np.isnan(frame["loss"].iloc[2])
    single = topology_evolution(graphs[1])
    assert list(single["connections"]) == [3, 1]


def test_paths_and_other_objects_are_refused_with_a_pointer_to_read_sequence(tmp_path):
    with pytest.raises(NotAGraphError, match=r"topo.read_sequence\(path\)"):
        topology_evolution(tmp_path / "run")
    with pytest.raises(NotAGraphError, match=r"snapshot: got the path"):
        topology_evolution([str(tmp_path / "epoch_0000.safetensors")])
    with pytest.raises(NotAGraphError, match="snapshot x: expected a LayeredGraph"):
        input_connectivity([("x", np.eye(2), {})])


def test_snapshots_with_other_widths_are_refused_naming_the_file(tmp_path, write_run):
    run = write_run(tmp_path / "run", [HAND[0]])
    save_snapshot(LayeredGraph([np.ones((4, 3)), np.ones((1, 4))]),
                  run / snapshot_name(1))
    with pytest.raises(IncompatibleGraphsError, match="epoch_0001.safetensors: widths 3-4-1"):
        evolution(run)


def test_a_damaged_snapshot_is_named_when_the_sequence_reaches_it(tmp_path, write_run):
    run = write_run(tmp_path / "run", [HAND[0], HAND[1], HAND[0]])
    damaged = run / snapshot_name(2)
    damaged.write_bytes(damaged.read_bytes()[:100])
    with pytest.raises(UnreadableFileError, match="epoch_0002.safetensors"):
        evolution(run)
    with pytest.raises(UnreadableFileError, match="epoch_0002.safetensors"):
        input_connectivity(read_sequence(run))


def test_no_snapshots_is_an_error():
    for analysis in (topology_evolution, input_connectivity, ever_active_rate):
        with pytest.raises(EmptyInputError, match="snapshot"):
            analysis([])


def test_input_connectivity_counts_outgoing_connections_per_input(tmp_path, write_run):
    masks = [
        [np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool), np.ones((1, 2), bool)],
        [np.array([[1, 0, 0, 1], [0, 0, 1, 1]], bool), np.ones((1, 2), bool)],
    ]
    counts = input_connectivity(read_sequence(write_run(tmp_path / "run", masks)))
    np.testing.assert_array_equal(counts, [[2, 1, 0, 0], [1, 0, 1, 2]])
    assert counts.dtype.kind == "i"
    with pytest.raises(IncompatibleGraphsError, match="5 inputs, the first snapshot has 4"):
        input_connectivity([LayeredGraph([np.eye(4)]), LayeredGraph([np.ones((4, 5))])])


def test_ever_active_rate_counts_the_union_over_time():
    snapshots = [
        LayeredGraph([np.array([[1.0, 0, 0], [0, 0, 0]]), np.array([[1.0, 0]])]),
        LayeredGraph([np.array([[0, 1.0, 0], [0, 0, 0]]), np.array([[1.0, 0]])]),
        LayeredGraph([np.array([[1.0, 0, 0], [0, 0, 1.0]]), np.array([[0, 1.0]])]),
    ]
    rate = ever_active_rate(iter(snapshots))
    np.testing.assert_allclose(rate, [[1 / 6, 1 / 2], [2 / 6, 1 / 2], [3 / 6, 2 / 2]])
    with pytest.raises(IncompatibleGraphsError, match="shapes"):
        ever_active_rate([LayeredGraph([np.eye(3)]), LayeredGraph([np.ones((2, 3))])])


def test_columns_are_the_documented_ones_in_order(tmp_path, write_run):
    frame = evolution(write_run(tmp_path / "run", HAND), persistence=False)
    assert tuple(frame.columns) == EVOLUTION_COLUMNS
    assert EVOLUTION_COLUMNS[:4] == ("snapshot", "epoch", "layer", "name")
    without_nnstd = evolution(write_run(tmp_path / "run", HAND), nnstd=False)
    assert "nnstd_to_first" not in without_nnstd.columns
    assert without_nnstd.columns[-1] == "neural_persistence"


# The hand network of tests/cli/test_cli_persistence.py: 3 features -> 2 -> 2 -> 1, largest |w|
# = 1; its normalised neural persistence per layer, worked out by hand from spanning trees.
W1 = np.array([[0.8, 0.4, 0.0], [0.0, 0.2, 0.6]])
W2 = np.array([[0.5, 0.0], [0.3, 0.9]])
W3 = np.array([[1.0, 0.2]])
HAND_NP = [math.sqrt(0.2 ** 2 + 0.6 ** 2 + 0.4 ** 2 + 0.8 ** 2 + 1.0) / 2.0,
           math.sqrt(0.1 ** 2 + 0.5 ** 2 + 0.7 ** 2 + 1.0) / math.sqrt(3),
           math.sqrt(0.8 ** 2 + 1.0) / math.sqrt(2)]


def test_neural_persistence_column_by_hand_and_nan_for_nonfinite_weights():
    hand = LayeredGraph([W1, W2, W3])
    doubled = LayeredGraph([2 * W1, 2 * W2, 2 * W3])  # normalised weights are the same
    broken = LayeredGraph([W1, np.array([[0.5, 0.0], [np.nan, 0.9]]), W3])
    frame = topology_evolution([hand, doubled, broken])
    values = frame["neural_persistence"].to_numpy().reshape(3, 3)
    np.testing.assert_allclose(values[0], HAND_NP)
    np.testing.assert_allclose(values[1], HAND_NP)
    assert np.isnan(values[2]).all()


# ----------------------------------------------------------- runs of the real trainer
@pytest.mark.slow
def test_set_churn_is_a_little_below_zeta_on_sparse_layers_and_zero_on_dense(trained_run):
    from topo.io.run import read_metrics

    zeta = 0.3  # TrainConfig's default, SET's
    frame = evolution(trained_run, persistence=False)
    # ER with ε = 20: 64x100 and 100x100 are sparse, 100 -> 10 is capped dense.
    density = frame[frame["snapshot"] == 0].set_index("layer")["density"]
    assert density[0] < 1 and density[1] < 1 and density[2] == 1
    rewired = frame[frame["epoch"] >= 2]  # SET rewires between epochs, from epoch 2 on
    assert len(rewired) == 2 * 3
    dense = rewired[rewired["layer"] == 2]
    assert (dense["churn"] == 0).all() and (dense["nnstd_to_previous"] == 0).all()
    for _, row in rewired[rewired["layer"] < 2].iterrows():
        # ζ n connections are dropped and as many regrown uniformly among the N - n + ζ n
        # free positions; the ζ n just freed ones are hit ζ n / (N - n + ζ n) of the time,
        # and those come back: expected churn ζ (1 - ζ n / (N - n + ζ n)).
        n, possible = row["connections"], row["possible"]
        expected = zeta * (1 - zeta * n / (possible - n + zeta * n))
        assert row["churn"] < zeta
        assert row["churn"] == pytest.approx(expected, abs=0.02)
        assert row["added"] == row["removed"]
        assert row["removed"] <= row["run_removed"]  # the trainer counts regrown-in-place
    epoch1 = frame[frame["epoch"] == 1]
    assert (epoch1["churn"] == 0).all()
    for k in range(3):
        assert np.all(np.diff(frame.loc[frame["layer"] == k, "itop_rate_snapshots"]) >= 0)
    # the run's metrics are joined by epoch
    metrics = read_metrics(trained_run).set_index("epoch")
    for _, row in frame.iterrows():
        assert row["test_accuracy"] == metrics.loc[row["epoch"], "test_accuracy"]
        assert row["connections"] == metrics.loc[row["epoch"], f"connections_{row['layer']}"]


# ----------------------------------------------------------------------------- helpers
def _rewire(mask: np.ndarray, zeta: float, rng) -> np.ndarray:
    """Drop round(zeta * n) random connections, grow as many at positions free before."""
    out = mask.copy()
    on, off = np.flatnonzero(mask), np.flatnonzero(~mask)
    n = int(round(zeta * on.size))
    out.flat[rng.choice(on, n, replace=False)] = False
    out.flat[rng.choice(off, n, replace=False)] = True
    return out


def _graphs(run, *epochs):
    from topo.io import load

    return [load(run / snapshot_name(e)) for e in epochs]


def _layer_values(frame, snapshot, column):
    return frame.loc[frame["snapshot"] == snapshot, column].to_numpy()
