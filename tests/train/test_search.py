"""Random search in node space: candidates, selection by validation loss, the comparison
runs, resuming, refusals and the command line."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from topo.cli import main as topo_main
from topo.errors import ConfigError
from topo.io import load
from topo.io.run import read_manifest, read_metrics, snapshot_paths
from topo.train import TrainConfig
from topo.train.methods import sample_units
from topo.train.search import SEARCH_STREAM, SUMMARY_COLUMNS, node_search

from .conftest import SMALL

PARENT = TrainConfig(method="dense", epochs=2, **SMALL)
ARGS = {"candidates": 3, "node_sparsity": 0.5, "selection_epochs": 1, "n_random": 2}


@pytest.fixture(scope="module")
def search(tmp_path_factory):
    out = tmp_path_factory.mktemp("search") / "nodes"
    return node_search(PARENT, out, **ARGS)


def test_every_network_is_a_run_and_the_summary_lists_them(search):
    out = search.path
    table = pd.read_csv(out / "summary.csv")
    assert list(table.columns) == list(SUMMARY_COLUMNS)
    assert table["kind"].tolist() == ["candidate"] * 3 + ["selected", "random", "random",
                                                          "dense"]
    for run in table["run"]:
        assert read_manifest(out / run)["status"] == "finished"
    assert json.loads((out / "search.json").read_text())["status"] == "finished"


def test_candidates_are_the_sampler_draws_and_keep_half_of_each_hidden_layer(search):
    rng = np.random.Generator(np.random.PCG64([SMALL["seed"], SEARCH_STREAM]))
    draws = [[k.tolist() for k in sample_units([40, 30], 0.5, rng)] for _ in range(5)]
    record = json.loads((search.path / "search.json").read_text())
    assert record["keep_units"] == {"candidates": draws[:3], "random": draws[3:]}
    for i in range(3):
        manifest = read_manifest(search.path / f"candidates/c{i:03d}")
        assert manifest["keep_units"] == draws[i]
        assert manifest["config"]["epochs"] == 1 and manifest["config"]["validation"]
    assert set(search.table["units"][:6]) == {"20-15"}
    # connections of a 64-20-15-10 sub-network of 64-40-30-10
    expected = (64 * 20 + 20 * 15 + 15 * 10) / (64 * 40 + 40 * 30 + 30 * 10)
    assert search.table["density"][:6].tolist() == pytest.approx([expected] * 6)


def test_the_selected_candidate_has_the_lowest_validation_loss(search):
    losses = [float(read_metrics(search.path / f"candidates/c{i:03d}")
                    .set_index("epoch").loc[1, "val_loss"]) for i in range(3)]
    assert search.selected == int(np.argmin(losses))
    selected = read_manifest(search.path / "selected")
    draws = json.loads((search.path / "search.json").read_text())["keep_units"]
    assert selected["keep_units"] == draws["candidates"][search.selected]
    assert selected["config"]["epochs"] == 2
    row = search.table[search.table["kind"] == "selected"].iloc[0]
    assert row["selection_val_loss"] == pytest.approx(min(losses))


def test_all_networks_start_from_the_dense_parent_initialisation(search):
    parent = load(snapshot_paths(search.path / "dense")[0])
    child = load(snapshot_paths(search.path / "random/r000")[0])
    for p, c in zip(parent.layers, child.layers):
        rows = np.repeat(np.arange(c.shape[0]), np.diff(c.indptr))
        np.testing.assert_array_equal(c.data, p.toarray()[rows, c.indices])


def test_the_comparison_summarises_the_final_test_accuracies(search):
    t = search.table
    summary = search.comparison()
    random = t.loc[t["kind"] == "random", "test_metric"]
    assert summary == {
        "metric": "test_accuracy",
        "selected": t.loc[t["kind"] == "selected", "test_metric"].iloc[0],
        "random_mean": pytest.approx(random.mean()),
        "random_std": pytest.approx(random.std(ddof=1)), "random_n": 2,
        "dense": t.loc[t["kind"] == "dense", "test_metric"].iloc[0]}
    last = read_metrics(search.path / "dense").iloc[-1]
    assert summary["dense"] == last["test_accuracy"]


def test_running_the_search_again_resumes_and_a_different_one_is_refused(search):
    before = (search.path / "selected" / "metrics.jsonl").stat().st_mtime_ns
    again = node_search(PARENT, search.path, **ARGS)
    assert (search.path / "selected" / "metrics.jsonl").stat().st_mtime_ns == before
    assert again.table.equals(search.table)
    with pytest.raises(ConfigError, match="holds a different search"):
        node_search(PARENT, search.path, **{**ARGS, "n_random": 1})


@pytest.mark.parametrize("args, message", [
    ({"candidates": 0}, "candidates >= 1"),
    ({"node_sparsity": 1.0}, r"node_sparsity must lie in \[0, 1\)"),
])
def test_invalid_searches_are_refused(tmp_path, args, message):
    with pytest.raises(ConfigError, match=message):
        node_search(PARENT, tmp_path / "s", **{**ARGS, **args})


def test_a_density_for_the_search_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="--density does not apply"):
        node_search(PARENT.replace(density=0.3), tmp_path / "s", **ARGS)
    assert not (tmp_path / "s").exists()


def test_the_parent_configuration_may_name_any_method(tmp_path):
    # the method of the configuration handed in is ignored: the parent is dense
    nodes = TrainConfig(method="nodes", node_sparsity=0.3, epochs=1, **SMALL)
    result = node_search(nodes, tmp_path / "s", candidates=1, n_random=0, dense=False,
                         selection_epochs=0)
    assert result.table["kind"].tolist() == ["candidate", "selected"]
    assert json.loads((tmp_path / "s" / "search.json").read_text())["config"]["method"] == \
        "dense"


def test_a_network_without_hidden_layers_or_a_foreign_folder_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="at least one hidden layer"):
        node_search(PARENT.replace(arch=[64, 10]), tmp_path / "s", **ARGS)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="holds no topo search"):
        node_search(PARENT, tmp_path / "busy", **ARGS)


def test_cli_search_prints_the_comparison(tmp_path, capsys):
    out = tmp_path / "cli"
    argv = ["search", "--space", "nodes", "--candidates", "2", "--random", "1",
            "--selection-epochs", "0", "--no-dense", "--arch", "64-40-30-10", "--epochs", "1",
            "--batch-size", "64", "--seed", "3", "--out", str(out), "--no-progress"]
    assert topo_main(argv) == 0
    text = capsys.readouterr().out
    assert "selected candidate c00" in text and "random configurations" in text
    assert "dense parent" not in text and (out / "summary.csv").is_file()
    # judged at initialisation: the candidates' epoch-0 validation loss
    table = pd.read_csv(out / "summary.csv")
    losses = [float(read_metrics(out / f"candidates/c{i:03d}").set_index("epoch")
                    .loc[0, "val_loss"]) for i in range(2)]
    assert table["selection_val_loss"][:2].tolist() == pytest.approx(losses)
    assert topo_main(argv + ["--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["selected_candidate"] == int(np.argmin(losses)) and record["dense"] is None
