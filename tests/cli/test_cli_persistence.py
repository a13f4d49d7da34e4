"""`topo persistence` and `topo interactions`: output schema, every reader's files, errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from safetensors.numpy import save_file as save_numpy_safetensors
from safetensors.torch import save_file as save_torch_safetensors

import topo
from topo.cli import main
from topo.graph import LayeredGraph

# The hand example of test_interactions: 3 features -> 2 -> 2 -> 1, largest |w| = 1.
W1 = np.array([[0.8, 0.4, 0.0], [0.0, 0.2, 0.6]])
W2 = np.array([[0.5, 0.0], [0.3, 0.9]])
W3 = np.array([[1.0, 0.2]])
# pairwise persistence scores worked out by hand (see test_interactions.py)
PH_PAIRS = [([0, 1], 0.2), ([1, 2], 0.04), ([0, 2], 0.0)]


def _hand_np() -> dict[str, float]:
    """Neural persistence of the hand network, layer by layer (all weights already in [0,1])."""
    # layer 1: edges 0.8, 0.4, 0.6, 0.2 on 5 units form a tree: persistences .2 .6 .4 .8 + 1
    l1 = math.sqrt(0.2 ** 2 + 0.6 ** 2 + 0.4 ** 2 + 0.8 ** 2 + 1.0)
    # layer 2: edges 0.9, 0.5, 0.3 on 4 units form a tree: .1 .5 .7 + 1
    l2 = math.sqrt(0.1 ** 2 + 0.5 ** 2 + 0.7 ** 2 + 1.0)
    # layer 3: edges 1.0, 0.2 on 3 units: 0 .8 + 1
    l3 = math.sqrt(0.8 ** 2 + 1.0)
    return {"fc1": l1 / 2.0, "fc2": l2 / math.sqrt(3), "fc3": l3 / math.sqrt(2)}


def _write_snapshot(folder: Path) -> Path:
    g = LayeredGraph([W1, W2, W3], names=["fc1", "fc2", "fc3"])
    return topo.save_snapshot(g, folder / "net.safetensors")


def _write_run(folder: Path) -> Path:
    run = folder / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    topo.save_snapshot(LayeredGraph([np.ones((2, 3)), np.ones((2, 2)), np.ones((1, 2))]),
                       run / "snapshots" / "epoch_0000.safetensors")
    topo.save_snapshot(LayeredGraph([W1, W2, W3]), run / "snapshots" / "epoch_0001.safetensors")
    return run


def _torch_model() -> torch.nn.Sequential:
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.ReLU(), torch.nn.Linear(2, 2),
                                torch.nn.ReLU(), torch.nn.Linear(2, 1))
    with torch.no_grad():
        for layer, w in zip(model[::2], (W1, W2, W3)):
            layer.weight.copy_(torch.tensor(w, dtype=torch.float32))
    return model


def _write_torch(folder: Path) -> Path:
    torch.save(_torch_model().state_dict(), folder / "net.pt")
    return folder / "net.pt"


def _write_torch_safetensors(folder: Path) -> Path:
    save_torch_safetensors(_torch_model().state_dict(), str(folder / "model.safetensors"))
    return folder / "model.safetensors"


def _write_nnstd(folder: Path) -> Path:
    net = folder / "nnstd"
    net.mkdir()
    for k, w in enumerate((W1, W2, W3)):
        keras = np.vstack([w.T, np.zeros((1, w.shape[0]))])  # (n_in + 1, n_out), bias row
        sp.save_npz(net / f"weight_l{k}.npz", sp.csr_matrix(keras))
    return net


WRITERS = {
    "topo.snapshot": _write_snapshot,
    "topo.run": _write_run,
    "pytorch": _write_torch,
    "safetensors": _write_torch_safetensors,
    "nnstd-npz": _write_nnstd,
}


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_persistence_json_on_every_reader(fmt, tmp_path, capsys):
    path = WRITERS[fmt](tmp_path)
    assert main(["persistence", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out) - {"snapshot_choice"} == {"source", "layers", "mean_normalized", "p",
                                              "scale"}
    expected = list(_hand_np().values())
    assert [list(layer) for layer in out["layers"]] == [
        ["name", "n_in", "n_out", "components", "total_persistence", "normalized"]] * 3
    assert [(r["n_in"], r["n_out"], r["components"]) for r in out["layers"]] == [
        (3, 2, 1), (2, 2, 1), (2, 1, 1)]
    assert out["p"] == 2.0 and out["scale"] == pytest.approx(1.0)
    assert out["source"].startswith(str(tmp_path))
    # float32 storage in some formats: compare to single precision
    np.testing.assert_allclose([layer["normalized"] for layer in out["layers"]], expected,
                               rtol=1e-6)
    assert out["mean_normalized"] == pytest.approx(np.mean(expected), rel=1e-6)


@pytest.mark.parametrize("fmt", sorted(WRITERS))
def test_interactions_json_on_every_reader(fmt, tmp_path, capsys):
    path = WRITERS[fmt](tmp_path)
    assert main(["interactions", str(path), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    got = [(row["features"], row["strength"]) for row in out["interactions"]]
    assert [f for f, _ in got] == [f for f, _ in PH_PAIRS]
    np.testing.assert_allclose([s for _, s in got], [s for _, s in PH_PAIRS], atol=1e-7)


def test_persistence_table_names_layers_and_mean(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    assert main(["persistence", str(path)]) == 0
    out = capsys.readouterr().out
    assert "fc1" in out and "fc3" in out and "total_persistence" in out
    assert f"{np.mean(list(_hand_np().values())):.4g}" in out


def test_persistence_writes_csv_and_figure(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    csv, png = tmp_path / "np.csv", tmp_path / "diagrams.png"
    assert main(["persistence", str(path), "--csv", str(csv), "--plot", str(png)]) == 0
    header = csv.read_text().splitlines()[0]
    assert header == "name,n_in,n_out,components,total_persistence,normalized"
    assert png.read_bytes()[:4] == b"\x89PNG"


def test_interactions_nid_any_order_with_top(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    assert main(["interactions", str(path), "--method", "nid", "--order", "any", "--top", "1",
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # NID any order: {0,1} at h0 with z0 * 0.4 = 0.56 * 0.4 beats {1,2} at h1 (0.18 * 0.2)
    assert out == {"source": str(path), "method": "nid", "order": "any",
                   "interactions": [{"features": [0, 1], "strength": pytest.approx(0.224)}],
                   "candidates": 2, "pruned": 0}


def test_interactions_ph2_squares_the_hand_scores(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    assert main(["interactions", str(path), "--method", "ph2", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # min(0.8, 0.4)^2 * 0.5^2 and min(0.2, 0.6)^2 * 0.2^2 (feed-forward reaches 0.5 and 0.2)
    np.testing.assert_allclose([row["strength"] for row in out["interactions"]],
                               [0.16 * 0.25, 0.04 * 0.04, 0.0], atol=1e-7)


def test_interactions_ph2n_normalises_the_ph2_scores(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    assert main(["interactions", str(path), "--method", "ph2n", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    # worked out by hand in test_interactions.test_hand_example_ph2n
    m = 0.216 / 3
    assert [row["features"] for row in out["interactions"]] == [[0, 1], [1, 2], [0, 2]]
    np.testing.assert_allclose([row["strength"] for row in out["interactions"]],
                               [0.04 / math.sqrt((0.16 + m) * (0.04 + m)),
                                0.0016 / math.sqrt((0.0016 + m) * (0.0144 + m)), 0.0],
                               rtol=1e-6)


def test_interactions_ph2n_any_order_is_a_one_line_error(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    assert main(["interactions", str(path), "--method", "ph2n", "--order", "any"]) == 1
    err = capsys.readouterr().err
    assert "pairs only" in err and len(err.strip().splitlines()) == 1


def test_interactions_table_and_csv(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    csv = tmp_path / "pairs.csv"
    assert main(["interactions", str(path), "--csv", str(csv), "--top", "2"]) == 0
    out = capsys.readouterr().out
    assert "0,1" in out and "1,2" in out and "0,2" not in out
    lines = csv.read_text().splitlines()
    assert lines[0] == "features,strength" and lines[1].startswith("0 1,")


def test_interactions_plot(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    svg = tmp_path / "bars.svg"
    assert main(["interactions", str(path), "--plot", str(svg)]) == 0
    assert svg.read_text().lstrip().startswith("<?xml")


def test_single_layer_network_is_an_error(tmp_path, capsys):
    path = topo.save_snapshot(LayeredGraph([np.ones((1, 3))], names=["only"]),
                              tmp_path / "one.safetensors")
    assert main(["interactions", str(path)]) == 1
    err = capsys.readouterr().err
    assert "first hidden layer" in err and len(err.strip().splitlines()) == 1


def test_nan_weights_are_an_error_for_both_commands(tmp_path, capsys):
    save_numpy_safetensors({"fc1.weight": np.array([[np.nan, 1.0]], dtype=np.float32),
                            "fc2.weight": np.array([[1.0]], dtype=np.float32)},
                           str(tmp_path / "nan.safetensors"))
    for command in ("persistence", "interactions"):
        assert main([command, str(tmp_path / "nan.safetensors")]) == 1
        err = capsys.readouterr().err
        assert "NaN" in err and "fc1" in err and "Traceback" not in err


def test_bad_figure_suffix_fails_before_work(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    assert main(["persistence", str(path), "--plot", str(tmp_path / "x.jpg")]) == 1
    assert "figure files must end in" in capsys.readouterr().err


def test_a_missing_file_is_a_one_line_error(tmp_path, capsys):
    missing = tmp_path / "missing.safetensors"
    assert main(["persistence", str(missing)]) == 1
    err = capsys.readouterr().err
    assert err == f"topo persistence: error: {missing}: no such file or folder\n"


def test_the_command_offers_exactly_the_methods_and_orders_of_the_api():
    from topo.cli import persistence as command
    from topo.interactions import METHODS, ORDERS

    assert command.METHODS == METHODS and command.ORDERS == ORDERS


def test_top_must_be_a_positive_integer(tmp_path, capsys):
    path = _write_snapshot(tmp_path)
    for top in ("0", "two"):
        with pytest.raises(SystemExit):
            main(["interactions", str(path), "--top", top])
        assert f"expected a positive integer, got '{top}'" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["persistence", "interactions"])
def test_bad_csv_path_fails_before_work_and_writes_no_figure(command, tmp_path, monkeypatch,
                                                             capsys):
    path = _write_snapshot(tmp_path)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")

    def no_work(*args, **kwargs):
        raise AssertionError("read the network before checking the outputs")

    monkeypatch.setattr("topo.io.load", no_work)
    fig = tmp_path / "fig.png"
    for csv in (blocker / "t.csv", tmp_path):
        assert main([command, str(path), "--csv", str(csv), "--plot", str(fig)]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(csv) in err
    assert not fig.exists()


def _synthetic_run(folder: Path, truth: list[list[int]]) -> Path:
    """A run directory of the hand network whose manifest records true interactions."""
    from topo.io.run import snapshot_name

    run = folder / "synth"
    (run / "snapshots").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"config": {"dataset": "synthetic-F1"},
                                              "interactions": truth}))
    g = LayeredGraph([W1, W2, W3], names=["fc1", "fc2", "fc3"], input_shape=(3, 1))
    topo.save_snapshot(g, run / snapshot_name(3))
    return run


@pytest.mark.xdist_group("scikit-learn")   # scikit-learn's import: on one worker of the suite
def test_interactions_of_a_run_with_true_interactions_give_their_auc(tmp_path, capsys, drawn):
    from sklearn.metrics import roc_auc_score

    run = _synthetic_run(tmp_path, [[1, 2]])
    figure = tmp_path / "i.png"
    assert main(["interactions", str(run), "--top", "1", "--plot", str(figure)]) == 0
    out = capsys.readouterr().out
    # ph ranks (0,1) 0.2 > (1,2) 0.06 > (0,2) 0: the true pair (1,2) beats one of two false
    expected = roc_auc_score([0, 1, 0], [0.2, 0.06, 0.0])
    assert expected == 0.5
    assert ("pairwise AUC of the whole ranking against the run's true interactions "
            "(1 in run.json): 0.5") in out
    ax = drawn["i.png"].axes[0]
    assert ax.get_title().endswith("(ph)\npairwise AUC against the true interactions: 0.500")
    # the input shape (3, 1) names features by (row, column)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["{(0, 0), (1, 0)}"]


def test_persistence_figure_draws_every_layers_deaths(tmp_path, capsys, drawn):
    snapshot = _write_snapshot(tmp_path)
    assert main(["persistence", str(snapshot), "--plot", str(tmp_path / "p.png")]) == 0
    axes = drawn["p.png"].axes
    assert [a.get_title().split("\n")[0] for a in axes] == ["layer 0: fc1", "layer 1: fc2",
                                                           "layer 2: fc3"]
    # layer 1 merges at 0.8, 0.6, 0.4, 0.2 (see _hand_np): four deaths above 0
    assert sum(p.get_height() for p in axes[0].patches) == 4


def test_any_order_says_what_it_pruned_and_keeps_subsets_on_request(tmp_path, capsys):
    g = LayeredGraph([np.array([[0.9, 0.8, 0.7]]), np.array([[1.0]])], names=["fc1", "fc2"])
    snapshot = topo.save_snapshot(g, tmp_path / "g.safetensors")
    assert main(["interactions", str(snapshot), "--order", "any", "--top", "10"]) == 0
    out = capsys.readouterr().out
    assert ("1 of 2 candidate sets kept; 1 dropped as a strict subset of a stronger set "
            "(Tsang et al. 2018); --keep-subsets lists them too") in out
    assert main(["interactions", str(snapshot), "--order", "any", "--keep-subsets",
                 "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert [row["features"] for row in document["interactions"]] == [[0, 1, 2], [0, 1]]
    assert (document["candidates"], document["pruned"]) == (2, 0)


def test_persistence_and_interactions_read_the_snapshot_asked_and_say_which(tmp_path, capsys,
                                                                            write_run):
    masks = [[np.ones((2, 3), bool), np.ones((1, 2), bool)]] * 4
    run = write_run(tmp_path / "run", masks)
    assert main(["persistence", str(run), "--epoch", "2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[:2] == [str(run), f"snapshot: {run}/snapshots/epoch_0002.safetensors "
                                   "(epoch 2, as asked)"]
    assert main(["interactions", str(run)]) == 0
    assert (f"snapshot: {run}/snapshots/epoch_0003.safetensors (the run's last snapshot, "
            "epoch_0003)") in capsys.readouterr().out
    assert main(["persistence", str(run), "--epoch", "9"]) == 1
    assert "no snapshot of epoch 9 (epochs 0-3)" in capsys.readouterr().err


def test_persistence_and_interactions_say_what_they_wrote(tmp_path, capsys):
    snapshot = _write_snapshot(tmp_path)
    table, figure = tmp_path / "p.csv", tmp_path / "p.png"
    assert main(["persistence", str(snapshot), "--csv", str(table), "--plot",
                 str(figure)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[-2:] == [f"wrote {table}", f"wrote {figure}"]
    assert main(["interactions", str(snapshot), "--json", "--csv", str(tmp_path / "i.csv")]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["source"] == str(snapshot)
    assert captured.err == f"wrote {tmp_path / 'i.csv'}\n"  # stdout stays JSON


def test_one_of_a_kind_is_not_plural(tmp_path, capsys):
    # one hidden unit, one feature pair: "strongest 1 interaction", "1 pair", "1 bar"
    from topo.plot import plot_barcode, plot_interactions, plot_persistence_diagram

    g = LayeredGraph([np.array([[0.8, 0.4]]), np.array([[1.0]])], names=["fc1", "fc2"])
    table = topo.interaction_strengths(g)
    assert plot_interactions(table).get_title() == "strongest 1 interaction"
    diagram = np.array([[1.0, 0.0]])
    assert [t.get_text() for t in plot_persistence_diagram(diagram).get_legend().get_texts()
            ] == ["1 pair"]
    assert plot_barcode(diagram).get_title() == "1 bar"
