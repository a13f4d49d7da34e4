"""The options of ssgd, ap, sipp, nodes and sketched-gn: run ids, the command line, and a
short sketched Gauss-Newton run."""

from __future__ import annotations

import json

import pytest

from topo.cli import main as topo_main
from topo.io.run import read_manifest, read_metrics
from topo.train import TrainConfig, train
from topo.train.rundir import run_id

EXAMPLE = TrainConfig(method="set", dataset="digits", arch=[64, 100, 100, 10], epochs=15,
                      epsilon=5.0, seed=0)


def test_new_options_at_their_defaults_leave_run_ids_as_they_were():
    # data/example-run's id (a run made before these options existed)
    assert run_id(EXAMPLE) == "set-digits-s0-e2bc8c9d"
    defaults = TrainConfig().to_dict()
    for name, value in [("validation", True), ("ssgd_eps", 1e-3), ("ssgd_form", "l1"),
                        ("ssgd_threshold", 0.01), ("ap_share", 0.05),
                        ("sipp_mode", "hybrid"), ("sipp_batch_size", 64),
                        ("gn_sketch_size", 100), ("gn_cg_tol", 1e-4), ("gn_cg_iters", 9)]:
        assert defaults[name] != value
        assert run_id(EXAMPLE.replace(**{name: value})) != "set-digits-s0-e2bc8c9d", name
    nodes = EXAMPLE.replace(method="nodes", node_sparsity=0.5)
    assert run_id(nodes) != run_id(nodes.replace(node_sparsity=0.25))
    assert run_id(nodes) != run_id(nodes.replace(node_sparsity=None, keep_units=[[0], [1]]))


@pytest.mark.parametrize("argv, field, value", [
    (["--method", "ssgd", "--ssgd-eps", "0.001", "--ssgd-form", "l1",
      "--ssgd-threshold", "0.02"], "ssgd_threshold", 0.02),
    (["--method", "ap", "--ap-share", "0.05", "--imp-levels", "1"], "ap_share", 0.05),
    (["--method", "sipp", "--sipp-mode", "hybrid", "--sipp-batch-size", "16",
      "--density", "0.5"], "sipp_mode", "hybrid"),
    (["--method", "nodes", "--node-sparsity", "0.25", "--validation"], "node_sparsity", 0.25),
])
def test_cli_flags_of_the_new_methods_reach_the_run(tmp_path, capsys, argv, field, value):
    out = tmp_path / "run"
    code = topo_main(["train", *argv, "--arch", "64-8-10", "--epochs", "1", "--out", str(out),
                      "--no-progress", "--json"])
    assert code == 0
    assert json.loads(capsys.readouterr().out)["status"] == "finished"
    assert read_manifest(out)["config"][field] == value


def test_cli_refuses_keep_units_which_only_the_search_sets(capsys):
    with pytest.raises(SystemExit):
        topo_main(["train", "--method", "nodes", "--keep-units", "1"])
    assert "unrecognized arguments" in capsys.readouterr().err


def test_sketched_gauss_newton_trains_a_two_layer_regression(tmp_path):
    config = TrainConfig(method="dense", dataset="synthetic-F1", n_samples=900,
                         arch=[10, 64, 1], batch_size=100, epochs=2, lr=1.0,
                         optimizer="sketched-gn", gn_cg_iters=20, seed=0)
    rows = read_metrics(train(config, tmp_path / "gn", progress=False))
    assert rows["test_mse"].iloc[-1] < 0.5 * rows["test_mse"].iloc[0]
    assert rows["step"].tolist() == [0, 3, 6]
