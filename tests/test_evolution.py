"""Connectivity evolution of a run: `topology_evolution`, `input_connectivity`, `topo evolution`.

Expected values are worked out by hand on tiny networks or recomputed here from dense numpy
masks; stand-in runs are written with `save_snapshot` into the run-directory layout.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import topo.distance
from topo.cli import main
from topo.errors import IncompatibleGraphsError, TopoError, UnreadableFileError
from topo.evolution import input_connectivity, topology_evolution
from topo.graph import LayeredGraph
from topo.io import save_snapshot
from topo.io.run import MANIFEST_NAME, METRICS_NAME, snapshot_name


def _write_run(root: Path, masks_per_snapshot, epochs=None, metrics=None, seed=0) -> Path:
    """A run directory holding one snapshot per list of masks (random weights on them)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_NAME).write_text(json.dumps({"config": {"method": "stand-in"}}))
    epochs = list(range(len(masks_per_snapshot))) if epochs is None else epochs
    for epoch, masks in zip(epochs, masks_per_snapshot):
        weights = [np.where(m, rng.normal(size=m.shape), 0.0) for m in masks]
        graph = LayeredGraph(weights, masks=masks, names=[f"fc{k}" for k in range(len(masks))],
                             metadata={"epoch": epoch})
        save_snapshot(graph, root / snapshot_name(epoch))
    if metrics is not None:
        (root / METRICS_NAME).write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return root


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


def test_one_row_per_snapshot_and_layer_in_time_order(tmp_path):
    run = _write_run(tmp_path / "run", HAND, epochs=[0, 5])
    frame = topology_evolution(run)
    assert list(frame["epoch"]) == [0, 0, 5, 5]
    assert list(frame["layer"]) == [0, 1, 0, 1]
    assert list(frame["name"]) == ["fc0", "fc1", "fc0", "fc1"]


def test_added_removed_churn_and_jaccard_by_hand(tmp_path):
    frame = topology_evolution(_write_run(tmp_path / "run", HAND))
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


def test_nnstd_columns_by_hand(tmp_path):
    frame = topology_evolution(_write_run(tmp_path / "run", HAND))
    # Hidden units: {x0,x1} vs {x0} costs 1/2, {x2} vs {x1,x2} costs 1/2 (Jaccard distance);
    # the identity matching (cost 1) beats the swap (2/3 + 1); 1 / 2 units = 0.5.
    # The output keeps its place; after the identity matching both read {h0}: 0.
    assert _row(frame, 1, 0)["nnstd_to_first"] == pytest.approx(0.5)
    assert _row(frame, 1, 0)["nnstd_to_previous"] == pytest.approx(0.5)
    assert _row(frame, 1, 1)["nnstd_to_first"] == pytest.approx(0.0)
    assert _row(frame, 0, 0)["nnstd_to_first"] == 0.0
    assert np.isnan(_row(frame, 0, 0)["nnstd_to_previous"])


def test_ever_active_by_hand(tmp_path):
    frame = topology_evolution(_write_run(tmp_path / "run", HAND))
    # layer 0: 3 connections, then one new one: 4 of 6 possible were ever active
    assert _row(frame, 0, 0)["ever_active_rate"] == pytest.approx(3 / 6)
    assert _row(frame, 1, 0)["ever_active"] == 4
    assert _row(frame, 1, 0)["ever_active_rate"] == pytest.approx(4 / 6)


def test_degrees_and_units_off_every_path_by_hand(tmp_path):
    frame = topology_evolution(_write_run(tmp_path / "run", HAND))
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


def test_static_run_has_zero_churn_and_zero_nnstd_throughout(tmp_path):
    rng = np.random.default_rng(1)
    masks = [rng.random((20, 16)) < 0.3, rng.random((12, 20)) < 0.4, rng.random((4, 12)) < 1]
    run = _write_run(tmp_path / "static", [masks] * 6, seed=3)
    frame = topology_evolution(run)
    later = frame[frame["snapshot"] > 0]
    assert (later["added"] == 0).all() and (later["removed"] == 0).all()
    assert (later["churn"] == 0).all()
    assert (frame["nnstd_to_first"] == 0).all()
    assert (later["nnstd_to_previous"] == 0).all()
    assert (frame["jaccard_to_first"] == 1).all()
    expected = np.tile([m.mean() for m in masks], 6)
    np.testing.assert_allclose(frame["ever_active_rate"], expected)


def test_identical_structures_reuse_distances_without_solving(tmp_path, monkeypatch):
    rng = np.random.default_rng(2)
    a = [rng.random((10, 8)) < 0.4, rng.random((3, 10)) < 0.5]
    b = [rng.random((10, 8)) < 0.4, rng.random((3, 10)) < 0.5]
    calls = []

    def counting_nnstd(x, y, **kwargs):
        calls.append((x.metadata["epoch"], y.metadata["epoch"]))
        return real(x, y, **kwargs)

    real = topo.distance.nnstd
    monkeypatch.setattr(topo.distance, "nnstd", counting_nnstd)
    frame = topology_evolution(_write_run(tmp_path / "run", [a, a, b, b, a]))
    # snapshot 1 repeats 0: nothing to solve. Snapshot 2 is new: one solve from structure a
    # serves both "to first" (0) and "to previous" (1, also a). Snapshot 3 repeats 2.
    # Snapshot 4 is a again (0 to first) and needs one solve from b (its predecessor 3).
    assert calls == [(0, 2), (3, 4)]
    expected_to_first = [real(*_graphs(tmp_path / "run", 0, 2)).per_layer]
    np.testing.assert_allclose(_layer_values(frame, 3, "nnstd_to_first"), expected_to_first[0])
    np.testing.assert_allclose(_layer_values(frame, 3, "nnstd_to_previous"), [0, 0])
    np.testing.assert_allclose(_layer_values(frame, 4, "nnstd_to_first"), [0, 0])


def test_over_parameterisation_rate_never_decreases_and_matches_union(tmp_path):
    rng = np.random.default_rng(4)
    shapes = [(30, 20), (5, 30)]
    snapshots = []
    masks = [rng.random(s) < 0.2 for s in shapes]
    for _ in range(8):
        snapshots.append([m.copy() for m in masks])
        masks = [_rewire(m, 0.3, rng) for m in masks]
    frame = topology_evolution(_write_run(tmp_path / "run", snapshots), nnstd=False)
    for k in range(len(shapes)):
        rates = frame.loc[frame["layer"] == k, "ever_active_rate"].to_numpy()
        assert np.all(np.diff(rates) >= 0)
        union = np.logical_or.accumulate(np.array([s[k] for s in snapshots]), axis=0)
        np.testing.assert_allclose(rates, union.reshape(8, -1).mean(axis=1))


def test_churn_equals_the_rewired_fraction_when_regrowth_avoids_freed_positions(tmp_path):
    rng = np.random.default_rng(5)
    masks = [rng.random((40, 30)) < 0.25]
    snapshots = [masks]
    for _ in range(4):
        snapshots.append([_rewire(snapshots[-1][0], 0.2, rng)])
    frame = topology_evolution(_write_run(tmp_path / "run", snapshots), nnstd=False)
    n = snapshots[0][0].sum()
    later = frame[frame["snapshot"] > 0]
    np.testing.assert_allclose(later["churn"], round(0.2 * n) / n)
    assert (later["added"] == later["removed"]).all()


def test_metrics_are_joined_by_epoch_and_per_layer_lists_by_layer(tmp_path):
    metrics = [
        {"epoch": 0, "loss": 2.3, "test_accuracy": 0.1, "removed": [0, 0]},
        {"epoch": 1, "loss": 1.1, "test_accuracy": 0.6, "removed": [1, 0]},
    ]
    frame = topology_evolution(_write_run(tmp_path / "run", HAND, metrics=metrics))
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
    frame = topology_evolution(run)
    per_snapshot = frame[frame["layer"] == 0]
    assert list(zip(per_snapshot["level"], per_snapshot["epoch"])) == [(0, 0), (0, 1), (1, 0),
                                                                       (1, 1)]
    np.testing.assert_allclose(per_snapshot["test_accuracy"], [0.5, 0.6, 0.75, 0.85])
    # pruning 2 of 6 connections at the start of level 1: churn 2/6, none after
    np.testing.assert_allclose(per_snapshot["churn"].iloc[1:], [0, 2 / 6, 0])


def test_accepts_a_list_of_graphs_and_a_list_of_paths(tmp_path):
    run = _write_run(tmp_path / "run", HAND)
    graphs = [LayeredGraph([m.astype(float) for m in masks]) for masks in HAND]
    from_graphs = topology_evolution(graphs)
    from_paths = topology_evolution(sorted((run / "snapshots").glob("*.safetensors")))
    assert list(from_graphs["epoch"]) == [0, 0, 1, 1]
    np.testing.assert_array_equal(from_graphs["removed"], from_paths["removed"])


def test_snapshots_with_other_widths_are_refused_naming_the_file(tmp_path):
    run = _write_run(tmp_path / "run", [HAND[0]])
    save_snapshot(LayeredGraph([np.ones((4, 3)), np.ones((1, 4))]),
                  run / snapshot_name(1))
    with pytest.raises(IncompatibleGraphsError, match="epoch_0001"):
        topology_evolution(run)


def test_no_snapshots_is_an_error(tmp_path):
    with pytest.raises(TopoError):
        topology_evolution([])
    with pytest.raises(UnreadableFileError):
        topology_evolution(tmp_path / "missing")


def test_input_connectivity_counts_outgoing_connections_per_input(tmp_path):
    masks = [
        [np.array([[1, 1, 0, 0], [1, 0, 0, 0]], bool), np.ones((1, 2), bool)],
        [np.array([[1, 0, 0, 1], [0, 0, 1, 1]], bool), np.ones((1, 2), bool)],
    ]
    counts = input_connectivity(_write_run(tmp_path / "run", masks))
    np.testing.assert_array_equal(counts, [[2, 1, 0, 0], [1, 0, 1, 2]])
    assert counts.dtype.kind == "i"


def test_cli_json_rows_carry_the_documented_keys(tmp_path, capsys):
    run = _write_run(tmp_path / "run", HAND)
    assert main(["evolution", str(run), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4
    for key in ("epoch", "layer", "connections", "density", "added", "removed", "churn",
                "nnstd_to_first", "nnstd_to_previous", "ever_active_rate"):
        assert key in rows[0]
    assert rows[0]["churn"] is None and rows[2]["churn"] == pytest.approx(1 / 3)


def test_cli_table_csv_and_figures(tmp_path, capsys):
    run = _write_run(tmp_path / "run", HAND)
    csv, fig, inputs = tmp_path / "evo.csv", tmp_path / "evo.png", tmp_path / "inputs.svg"
    assert main(["evolution", str(run), "--csv", str(csv), "--plot", str(fig),
                 "--inputs-plot", str(inputs)]) == 0
    out = capsys.readouterr().out
    assert f"wrote {csv}" in out and f"wrote {fig}" in out
    assert csv.read_text().splitlines()[0].startswith("snapshot,epoch,layer")
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in inputs.read_bytes()[:500]
    assert main(["evolution", str(run)]) == 0
    table = capsys.readouterr().out
    assert "churn" in table and "fc0" in table


def test_cli_refuses_a_bad_figure_suffix_before_any_work(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "topo", "evolution", str(tmp_path / "missing"), "--plot",
         str(tmp_path / "evo.txt")], capture_output=True, text=True)
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "evo.txt" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_missing_run_is_one_line_error(tmp_path):
    result = subprocess.run([sys.executable, "-m", "topo", "evolution", str(tmp_path / "nope")],
                            capture_output=True, text=True)
    assert result.returncode == 1
    assert "nope" in result.stderr and "Traceback" not in result.stderr


# ----------------------------------------------------------- runs of the real trainer
ARCH = [64, 100, 100, 10]


def test_static_training_run_never_changes_its_topology(tmp_path):
    from topo.train import TrainConfig, train

    run = train(TrainConfig(method="static", dataset="digits", arch=ARCH, epochs=2, seed=0),
                tmp_path / "static", progress=False)
    frame = topology_evolution(run, persistence=False)
    assert sorted(frame["epoch"].unique()) == [0, 1, 2]
    later = frame[frame["snapshot"] > 0]
    assert (later["churn"] == 0).all()
    assert (frame["nnstd_to_first"] == 0).all()
    assert (later["nnstd_to_previous"] == 0).all()
    first_rates = frame.loc[frame["snapshot"] == 0, "ever_active_rate"].to_numpy()
    for snapshot in range(3):
        np.testing.assert_array_equal(_layer_values(frame, snapshot, "ever_active_rate"),
                                      first_rates)


def test_set_churn_is_a_little_below_zeta_on_sparse_layers_and_zero_on_dense(tmp_path):
    from topo.io.run import read_metrics
    from topo.train import TrainConfig, train

    zeta = 0.3  # TrainConfig's default, SET's
    run = train(TrainConfig(method="set", dataset="digits", arch=ARCH, epochs=3, seed=0,
                            zeta=zeta), tmp_path / "set", progress=False)
    frame = topology_evolution(run, persistence=False)
    # ER with ε = 20: 64x100 and 100x100 are sparse, 100 -> 10 is capped dense.
    density = frame[frame["snapshot"] == 0].set_index("layer")["density"]
    assert density[0] < 1 and density[1] < 1 and density[2] == 1
    rewired = frame[frame["epoch"] >= 2]  # SET rewires between epochs, from epoch 2 on
    assert len(rewired) == 2 * 3
    for _, row in rewired.iterrows():
        if row["layer"] == 2:
            assert row["churn"] == 0 and row["nnstd_to_previous"] == 0
            continue
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
        assert np.all(np.diff(frame.loc[frame["layer"] == k, "ever_active_rate"]) >= 0)
    # the run's metrics are joined by epoch
    metrics = read_metrics(run).set_index("epoch")
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


def _graphs(run: Path, *epochs):
    from topo.io import load

    return [load(run / snapshot_name(e)) for e in epochs]


def _layer_values(frame, snapshot, column):
    return frame.loc[frame["snapshot"] == snapshot, column].to_numpy()


def test_neural_persistence_column_is_the_layers_normalised_value(tmp_path):
    from topo.io import load
    from topo.persistence import neural_persistence

    run = _write_run(tmp_path / "run", HAND)
    frame = topology_evolution(run)
    for snapshot, epoch in enumerate((0, 1)):
        expected = neural_persistence(load(run / snapshot_name(epoch))).normalized
        np.testing.assert_allclose(_layer_values(frame, snapshot, "neural_persistence"),
                                   expected)
    assert "neural_persistence" not in topology_evolution(run, persistence=False).columns


def test_ever_active_rate_agrees_with_the_overlap_module(tmp_path):
    from topo.io import load
    from topo.overlap import ever_active_rate

    rng = np.random.default_rng(6)
    snapshots = [[rng.random((6, 5)) < 0.5, rng.random((2, 6)) < 0.5] for _ in range(5)]
    run = _write_run(tmp_path / "run", snapshots)
    frame = topology_evolution(run, nnstd=False, persistence=False)
    expected = ever_active_rate(load(run / snapshot_name(e)) for e in range(5))
    np.testing.assert_allclose(frame["ever_active_rate"].to_numpy().reshape(5, 2), expected)


def test_cli_bad_csv_path_fails_before_any_work_and_writes_no_figure(tmp_path):
    run = _write_run(tmp_path / "run", HAND)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    fig = tmp_path / "evo.png"
    for csv in (blocker / "e.csv", tmp_path):  # parent is a file; the path is a folder
        result = subprocess.run(
            [sys.executable, "-m", "topo", "evolution", str(run), "--csv", str(csv),
             "--plot", str(fig)], capture_output=True, text=True)
        assert result.returncode == 1
        assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
        assert str(csv) in result.stderr
    assert not fig.exists()


def test_cli_checks_outputs_before_reading_the_run(tmp_path, monkeypatch, capsys):
    run = _write_run(tmp_path / "run", HAND)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")

    def no_work(*args, **kwargs):
        raise AssertionError("computed before checking the outputs")

    monkeypatch.setattr("topo.evolution.topology_evolution", no_work)
    csv = tmp_path / "e.csv"
    assert main(["evolution", str(run), "--csv", str(csv),
                 "--inputs-plot", str(blocker / "in.png")]) == 1
    assert main(["evolution", str(run), "--csv", str(blocker / "e.csv")]) == 1
    assert "blocker" in capsys.readouterr().err
    assert not csv.exists()
