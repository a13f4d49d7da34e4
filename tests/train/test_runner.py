"""Whole runs on digits and synthetic data: the run directory, the methods' invariants,
reproducibility, resuming after SIGKILL and after an interruption, early stopping, thread
settings and the command line."""

from __future__ import annotations

import json
import os
import signal
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from topo.cli import main as topo_main
from topo.errors import ConfigError
from topo.io import load
from topo.io.run import read_manifest, read_metrics, snapshot_paths
from topo.train import TrainConfig, train
from topo.train.runner import default_threads, resolve_arch, torch_threads

from .conftest import (
    SET_CONFIG,
    SMALL,
    STEPS_PER_EPOCH,
    die_half_way,
    die_in_step,
    run_until_killed,
    snapshot_bytes,
)


def _stored(w):
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
    return rows, w.indices


def _connections(graph):
    return [set(zip(*_stored(w))) for w in graph.layers]


def test_run_directory_layout_and_manifest(set_run):
    names = sorted(p.relative_to(set_run).as_posix() for p in set_run.rglob("*")
                   if p.is_file())
    assert names == ["checkpoint/state.ckpt", "metrics.jsonl", "run.json",
                     *[f"snapshots/epoch_{e:04d}.safetensors" for e in range(5)]]
    manifest = read_manifest(set_run)
    assert manifest["status"] == "finished"
    assert TrainConfig.from_dict(manifest["config"]) == SET_CONFIG
    assert manifest["final_snapshot"] == "snapshots/epoch_0004.safetensors"
    assert manifest["best_snapshot"] == manifest["final_snapshot"]
    assert manifest["best_epoch"] == 4 and manifest["stopped_early"] is False
    assert manifest["torch_threads"] == 1   # 4060 connections: a small network
    assert {"torch", "numpy", "python", "topo"} <= set(manifest["versions"])
    assert "levels" not in manifest


def test_metrics_have_one_row_per_epoch_with_the_promised_fields(set_run):
    df = read_metrics(set_run)
    assert df["epoch"].tolist() == [0, 1, 2, 3, 4]
    for col in ("loss", "train_accuracy", "test_accuracy", "wall_time", "density_0",
                "density_2", "added_0", "removed_2", "step"):
        assert col in df.columns
    assert "level" not in df.columns
    assert df["step"].tolist() == [STEPS_PER_EPOCH * e for e in range(5)]


def test_snapshots_carry_metadata_and_topo_info_reads_every_one(set_run, capsys):
    df = read_metrics(set_run)
    for path in snapshot_paths(set_run):
        g = load(path)
        epoch = int(path.stem.split("_")[1])
        assert g.metadata["epoch"] == epoch and g.metadata["method"] == "set"
        assert g.metadata["seed"] == 3 and g.input_shape == (8, 8)
        assert g.metadata["test_accuracy"] == pytest.approx(
            df.loc[df["epoch"] == epoch, "test_accuracy"].item())
        assert topo_main(["info", str(path)]) == 0
    assert "layers.0" in capsys.readouterr().out


def test_set_keeps_connection_counts_while_rewiring_about_zeta(set_run):
    graphs = [load(p) for p in snapshot_paths(set_run)]
    df = read_metrics(set_run)
    # ER at eps=20: 64-40 -> 20*104/2560 = 0.8125, 40-30 -> 20*70/1200 > 1, 30-10 > 1
    assert graphs[0].n_connections == [round(0.8125 * 2560), 1200, 300]
    for before, after, e in zip(graphs, graphs[1:], range(1, 5)):
        assert after.n_connections == before.n_connections
        old, new = _connections(before)[0], _connections(after)[0]
        removed = df.loc[df["epoch"] == e, "removed_0"].item()
        assert df.loc[df["epoch"] == e, "added_0"].item() == removed
        # a position dropped and regrown at random in the same update counts in both
        # columns but does not show in the snapshot difference
        assert len(old - new) == len(new - old) <= removed
    # no rewiring before the first epoch is trained; about zeta = 0.3 from epoch 2 on
    assert df.loc[df["epoch"] == 1, "removed_0"].item() == 0
    for e in (2, 3, 4):
        assert 0.29 * 2080 <= df.loc[df["epoch"] == e, "removed_0"].item() <= 0.31 * 2080
        assert _connections(graphs[e - 1])[0] != _connections(graphs[e])[0]
    # dense layers (ER density capped at 1) are never rewired
    assert df["added_1"].sum() == 0 and df["added_2"].sum() == 0


def test_same_seed_gives_bitwise_identical_snapshots(set_run, tmp_path):
    train(SET_CONFIG, tmp_path / "again", progress=False)
    assert snapshot_bytes(snapshot_paths(set_run)) == snapshot_bytes(
        snapshot_paths(tmp_path / "again"))


def test_snip_and_gmp_reach_the_target_density(tmp_path):
    train(TrainConfig(method="snip", epochs=1, density=0.3, **SMALL), tmp_path / "snip",
          progress=False)
    g = load(tmp_path / "snip")
    assert sum(g.n_connections) == round(0.3 * (64 * 40 + 40 * 30 + 30 * 10))
    # SNIP's pruning shows at epoch 0, and the mask stays
    df = read_metrics(tmp_path / "snip")
    assert df.loc[0, ["removed_0", "removed_1", "removed_2"]].sum() == 4060 - 1218
    assert _connections(load(snapshot_paths(tmp_path / "snip")[0])) == _connections(g)
    train(TrainConfig(method="gmp", epochs=3, density=0.3, gmp_delta_t=10, **SMALL),
          tmp_path / "gmp", progress=False)
    g = load(tmp_path / "gmp")
    assert g.n_connections == [round(0.3 * 2560), round(0.3 * 1200), round(0.3 * 300)]


def test_rigl_keeps_counts_and_stops_updating_after_three_quarters(tmp_path):
    out = tmp_path / "rigl"
    train(TrainConfig(method="rigl", epochs=4, rigl_delta_t=5, **SMALL), out,
          progress=False)
    df = read_metrics(out)
    graphs = [load(p) for p in snapshot_paths(out)]
    assert all(g.n_connections == graphs[0].n_connections for g in graphs)
    assert df.loc[df["epoch"] == 1, "added_0"].item() > 0
    # 88 steps in all, T_end = 66: epoch 4 (steps 66..88) has no update
    assert df.loc[df["epoch"] == 4, "added_0"].item() == 0


def test_regression_with_l1_adam_and_early_stopping_names_its_best_snapshot(tmp_path):
    out = tmp_path / "f1"
    config = TrainConfig(method="dense", dataset="synthetic-F1", arch=[10, 16, 8, 1],
                         optimizer="adam", lr=0.05, l1=1e-3, epochs=30, batch_size=50,
                         n_samples=600, early_stopping_patience=1)
    train(config, out, progress=False)
    manifest = read_manifest(out)
    df = read_metrics(out).set_index("epoch")
    best_epoch = int(df.loc[1:, "val_loss"].idxmin())
    last = int(df.index.max())
    # patience 1 on this run: the validation loss rises once and the run stops there
    assert manifest["stopped_early"] and last == best_epoch + 1 < 30
    assert manifest["best_snapshot"] == f"snapshots/epoch_{best_epoch:04d}.safetensors"
    assert manifest["best_epoch"] == best_epoch
    assert manifest["final_snapshot"] == f"snapshots/epoch_{last:04d}.safetensors"
    from topo.train import best_snapshot

    assert best_snapshot(out) == out / manifest["best_snapshot"]
    assert {"train_mse", "test_mse", "val_loss"} <= set(df.columns)
    assert manifest["interactions"][0] == [0, 1, 2]
    g = load(out / manifest["best_snapshot"])
    assert "test_mse" in g.metadata and g.input_shape is None


def test_early_stopping_on_digits_holds_out_a_sixth(tmp_path):
    out = tmp_path / "es"
    train(TrainConfig(method="static", epochs=1, early_stopping_patience=3, **SMALL), out,
          progress=False)
    # 1347 training samples, 1347 // 6 = 224 held out: ceil(1123 / 64) = 18 steps
    assert read_metrics(out)["step"].tolist() == [0, 18]
    assert "val_loss" in read_metrics(out).columns


def test_folder_with_a_different_run_is_refused(set_run):
    with pytest.raises(ConfigError, match="different run"):
        train(SET_CONFIG.replace(method="dense"), set_run, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        train(SET_CONFIG, set_run, progress=False)


def test_resume_of_a_finished_run_changes_nothing(set_run):
    before = {p: p.stat().st_mtime_ns for p in set_run.rglob("*") if p.is_file()}
    assert train(SET_CONFIG, set_run, resume=True, progress=False) == set_run
    assert before == {p: p.stat().st_mtime_ns for p in set_run.rglob("*") if p.is_file()}


def test_an_architecture_that_does_not_fit_writes_nothing(tmp_path):
    with pytest.raises(ConfigError, match="needs 64 inputs and 10 outputs"):
        train(TrainConfig(method="set", epochs=1, arch=[60, 10]), tmp_path / "x",
              progress=False)
    assert not (tmp_path / "x").exists()


def test_resolve_arch_infers_two_hidden_layers_of_100():
    from topo.train.data import load_dataset

    data = load_dataset("synthetic-F2", seed=0, n_samples=30)
    assert resolve_arch(None, data) == [10, 100, 100, 1]
    with pytest.raises(ConfigError, match=r"e\.g\. 10-100-100-1"):
        resolve_arch([64, 10], data)


def test_thread_count_is_set_for_the_block_and_restored(restore_torch_threads):
    torch.set_num_threads(2)
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == 2
    with pytest.raises(KeyboardInterrupt), torch_threads(1):
        raise KeyboardInterrupt
    assert torch.get_num_threads() == 2


def test_training_leaves_the_thread_count_as_it_was(tmp_path, restore_torch_threads):
    torch.set_num_threads(2)
    train(TrainConfig(method="static", epochs=1, threads=1, **SMALL), tmp_path / "t",
          progress=False)
    assert torch.get_num_threads() == 2
    assert read_manifest(tmp_path / "t")["torch_threads"] == 1


def test_default_threads_follow_the_network_size():
    from types import SimpleNamespace

    def model(n):
        return SimpleNamespace(layers=[SimpleNamespace(n_connections=n)])

    assert default_threads(model(199_999)) == 1 and default_threads(model(200_000)) == 2


# ----------------------------------------------------------------- resuming
def _train_and_die(out: Path, mode: str) -> None:
    """Train SET_CONFIG into ``out`` in a forked child that is SIGKILLed as ``mode``
    says."""
    import topo.io.snapshot
    import topo.train.checkpoint

    def child() -> None:
        if mode == "mid-epoch":
            die_in_step(50)                              # step 50: inside epoch 3
        elif mode == "mid-snapshot":
            die_half_way(topo.io.snapshot, 3)            # the 3rd snapshot
        else:
            die_half_way(topo.train.checkpoint, 2)       # the 2nd checkpoint
        train(SET_CONFIG, out, progress=False)

    run_until_killed(child, f"the {mode} child")


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("mode", ["mid-epoch", "mid-snapshot", "mid-checkpoint"])
def test_sigkilled_run_resumes_to_identical_snapshots(set_run, tmp_path, mode):
    out = tmp_path / mode
    _train_and_die(out, mode)
    # nothing half-written is visible: every listed snapshot reads, metrics parse
    for path in snapshot_paths(out):
        load(path)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert read_manifest(out)["status"] == "running" and len(rows) < 5
    temporary = list(out.rglob(".*.tmp"))   # what a writer killed half-way left
    assert len(temporary) == (0 if mode == "mid-epoch" else 1)
    train(SET_CONFIG, out, resume=True, progress=False)
    assert not list(out.rglob(".*.tmp"))
    assert [p.name for p in snapshot_paths(out)] == [p.name for p in snapshot_paths(set_run)]
    assert snapshot_bytes(snapshot_paths(out)) == snapshot_bytes(snapshot_paths(set_run))
    ref_rows = read_metrics(set_run).drop(columns="wall_time")
    assert ref_rows.equals(read_metrics(out).drop(columns="wall_time"))
    assert read_manifest(out)["status"] == "finished"


@pytest.mark.parametrize("method, extra, interrupt_at", [
    # IMP: 3 epochs per level, so the 5th epoch is the 2nd of level 1
    ("imp", {"imp_levels": 2, "optimizer": "adam", "lr": 0.003,
             "early_stopping_patience": 2}, 5),
    ("rigl", {"rigl_delta_t": 7, "optimizer": "adam", "lr": 0.003}, 3),
    ("gmp", {"gmp_delta_t": 9, "density": 0.3, "l1": 1e-4}, 2),
])
def test_interrupted_run_resumes_to_identical_snapshots(tmp_path, monkeypatch, method, extra,
                                                        interrupt_at):
    """Interrupted inside an epoch (here by an exception, in-process; the SIGKILL test above
    does it for real), the run resumes to what an uninterrupted run writes: optimiser state
    (Adam), IMP's rewind point and level, early stopping and RigL's schedule included."""
    from topo.train.trainer import Trainer

    config = TrainConfig(method=method, epochs=3, **SMALL, **extra)
    reference = tmp_path / "reference"
    train(config, reference, progress=False)
    real_epoch = Trainer.train_epoch
    calls = {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        return real_epoch(self)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(config, out, progress=False)
    stopped = read_manifest(out)
    assert (stopped["status"], stopped["interrupted_by"]) == ("interrupted", "SIGINT")
    last = read_metrics(out).iloc[-1]   # the last row the checkpoint counts
    assert stopped["resumes_after_epoch"] == last["epoch"]
    assert stopped.get("resumes_after_level") == last.get("level")
    monkeypatch.setattr(Trainer, "train_epoch", real_epoch)
    train(config, out, resume=True, progress=False)
    ref_paths, out_paths = snapshot_paths(reference), snapshot_paths(out)
    assert [p.relative_to(reference) for p in ref_paths] == [
        p.relative_to(out) for p in out_paths]
    assert snapshot_bytes(ref_paths) == snapshot_bytes(out_paths)
    ref_manifest, out_manifest = read_manifest(reference), read_manifest(out)
    for key in ("best_snapshot", "final_snapshot", "stopped_early", "best_epoch"):
        assert ref_manifest[key] == out_manifest[key]
    # every row, the exact ITOP rate (its union is in the checkpoint) included
    assert "itop_rate_network" in read_metrics(out).columns
    assert read_metrics(reference).drop(columns="wall_time").equals(
        read_metrics(out).drop(columns="wall_time"))


def test_resume_without_a_checkpoint_starts_again(tmp_path):
    out = tmp_path / "run"
    config = TrainConfig(method="static", epochs=1, **SMALL)
    train(config, out, progress=False)
    manifest = json.loads((out / "run.json").read_text())
    (out / "run.json").write_text(json.dumps({**manifest, "status": "running"}))
    (out / "checkpoint" / "state.ckpt").unlink()
    before = (out / "snapshots" / "epoch_0001.safetensors").read_bytes()
    train(config, out, resume=True, progress=False)
    assert (out / "snapshots" / "epoch_0001.safetensors").read_bytes() == before
    assert len(read_metrics(out)) == 2 and read_manifest(out)["status"] == "finished"


# ----------------------------------------------------------------- the command line
def test_cli_trains_and_reports(tmp_path, capsys):
    out = tmp_path / "cli"
    code = topo_main(["train", "--method", "static", "--arch", "64-20-10", "--epochs", "2",
                      "--seed", "1", "--out", str(out), "--no-progress", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and summary["widths"] == [64, 20, 10]
    assert summary["final_snapshot"] == "snapshots/epoch_0002.safetensors"
    assert Path(summary["run"]) == out
    # --resume of the finished run changes nothing and reports the same
    assert topo_main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    assert "status finished" in capsys.readouterr().out


def test_cli_progress_bar_goes_to_stderr(tmp_path, capsys):
    out = tmp_path / "bar"
    assert topo_main(["train", "--method", "imp", "--imp-levels", "1", "--arch", "64-8-10",
                      "--epochs", "1", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "imp digits" in captured.err and "(level 1)" in captured.out


@pytest.mark.parametrize("argv, message", [
    (["--method", "lottery"], "unknown method"),
    (["--dataset", "imagenet"], "unknown dataset"),
    (["--arch", "64-x-10"], "malformed architecture"),
    (["--density", "0"], "density must lie in"),
    (["--arch", "60-10"], "needs 64 inputs and 10 outputs"),
])
def test_cli_errors_are_one_line_without_traceback(tmp_path, capsys, argv, message):
    code = topo_main(["train", *argv, "--out", str(tmp_path / "x"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 1
    assert message in err and "Traceback" not in err and err.count("\n") == 1


# ----------------------------------------------------------------- seeds
def _layer_arrays(path):
    g = load(path)
    return [(w.indptr.tolist(), w.indices.tolist(), w.data.tolist()) for w in g.layers]


def test_runs_sharing_init_seed_start_from_one_network_and_train_apart(tmp_path):
    """Liu et al. (2020) Fig. 4: one initialisation, different training randomness."""
    runs = {}
    for seed in (1, 2):
        out = tmp_path / f"s{seed}"
        train(TrainConfig(method="set", epochs=2, init_seed=5, **{**SMALL, "seed": seed}),
              out, progress=False)
        runs[seed] = snapshot_paths(out)
    first = [_layer_arrays(paths[0]) for paths in runs.values()]
    last = [_layer_arrays(paths[-1]) for paths in runs.values()]
    assert first[0] == first[1]   # masks and weights of epoch 0
    assert [m[:2] for m in last[0]] != [m[:2] for m in last[1]]   # rewired apart
    meta = load(runs[1][0]).metadata
    assert (meta["seed"], meta["init_seed"]) == (1, 5)
    assert read_manifest(tmp_path / "s2")["init_seed"] == 5
    # and a run seeded 5 throughout starts there too
    train(TrainConfig(method="set", epochs=1, **{**SMALL, "seed": 5}), tmp_path / "s5",
          progress=False)
    assert _layer_arrays(snapshot_paths(tmp_path / "s5")[0]) == first[0]


def test_init_seed_equal_to_seed_is_the_run_without_it(tmp_path):
    config = TrainConfig(method="static", epochs=1, **SMALL)
    train(config, tmp_path / "plain", progress=False)
    train(config.replace(init_seed=SMALL["seed"]), tmp_path / "same", progress=False)
    assert snapshot_bytes(snapshot_paths(tmp_path / "plain")) == snapshot_bytes(
        snapshot_paths(tmp_path / "same"))
    assert "init_seed" not in load(snapshot_paths(tmp_path / "same")[0]).metadata


def test_snip_prunes_with_the_initialisation_seed(tmp_path):
    masks = []
    for seed in (1, 2):
        out = tmp_path / f"snip{seed}"
        train(TrainConfig(method="snip", epochs=1, density=0.2, init_seed=9,
                          **{**SMALL, "seed": seed}), out, progress=False)
        masks.append([m[:2] for m in _layer_arrays(snapshot_paths(out)[0])])
    assert masks[0] == masks[1]


@pytest.mark.parametrize("value", [-1, 1.5, True, "3"])
def test_seeds_must_be_non_negative_integers(value):
    with pytest.raises(ConfigError, match="init_seed must be a non-negative integer"):
        TrainConfig(init_seed=value)


# ----------------------------------------------------------------- the ITOP rate
def _mask_union(paths):
    union = None
    for path in paths:
        masks = [set(zip(*_stored(w))) for w in load(path).masks()]
        union = masks if union is None else [u | m for u, m in zip(union, masks)]
    return union


def test_itop_rate_of_set_is_the_union_of_its_per_epoch_masks(set_run):
    """SET rewires only before an epoch, so with a snapshot every epoch the union of the
    snapshots' masks is the exact rate: an independent computation from the files."""
    df = read_metrics(set_run)
    paths = snapshot_paths(set_run)
    sizes = [64 * 40, 40 * 30, 30 * 10]
    for e in range(5):
        union = _mask_union(paths[:e + 1])
        row = df.loc[df["epoch"] == e]
        for k in range(3):
            assert row[f"itop_rate_{k}"].item() == len(union[k]) / sizes[k]
        assert row["itop_rate_network"].item() == sum(map(len, union)) / sum(sizes)
    assert df["itop_rate_0"].is_monotonic_increasing and df["itop_rate_0"].iloc[-1] > 0.9


def test_itop_rate_does_not_depend_on_snapshot_frequency(set_run, tmp_path):
    """With a snapshot every other epoch the rate stays exact; the union of the written
    snapshots misses what was grown and dropped between them (a lower bound)."""
    out = tmp_path / "every2"
    train(SET_CONFIG.replace(snapshot_every=2), out, progress=False)
    columns = [c for c in read_metrics(set_run).columns if c.startswith("itop_rate")]
    assert len(columns) == 4
    assert read_metrics(out)[columns].equals(read_metrics(set_run)[columns])
    assert [p.name for p in snapshot_paths(out)] == [f"epoch_{e:04d}.safetensors"
                                                      for e in (0, 2, 4)]
    lower = len(_mask_union(snapshot_paths(out))[0]) / (64 * 40)
    assert lower < read_metrics(out)["itop_rate_0"].iloc[-1]
    # topo evolution shows both, each under its own name
    from topo import read_sequence, topology_evolution

    frame = topology_evolution(read_sequence(out), nnstd=False, persistence=False)
    last = frame[(frame["epoch"] == 4) & (frame["layer"] == 0)].iloc[0]
    assert last["itop_rate_snapshots"] == lower
    assert last["itop_rate"] == read_metrics(out)["itop_rate_0"].iloc[-1]
    assert last["itop_rate_network"] == read_metrics(out)["itop_rate_network"].iloc[-1]


def test_itop_rate_of_rigl_counts_every_update_between_epochs(tmp_path):
    from topo.train.callbacks import Callback

    class MaskLog(Callback):
        """An independent record: the set of (row, col) of every layer after each update."""

        def __init__(self):
            self.union, self.rows = None, []

        def _record(self, trainer):
            masks = [set(zip(*np.nonzero(layer.mask()))) for layer in trainer.model.layers]
            self.union = masks if self.union is None else [
                u | m for u, m in zip(self.union, masks)]

        def on_train_start(self, trainer):
            self._record(trainer)

        def on_mask_update(self, trainer, changes):
            self._record(trainer)

        def on_epoch_end(self, trainer, epoch):
            self.rows.append([len(u) for u in self.union])

    log = MaskLog()
    out = tmp_path / "rigl"
    train(TrainConfig(method="rigl", epochs=3, rigl_delta_t=4, **SMALL), out,
          progress=False, callbacks=[log])
    df = read_metrics(out)
    sizes = [64 * 40, 40 * 30, 30 * 10]
    for e, counts in enumerate(log.rows):
        assert [df.loc[e, f"itop_rate_{k}"] for k in range(3)] == [
            c / s for c, s in zip(counts, sizes)]
    # five updates an epoch: the union of the four snapshots misses connections
    assert len(_mask_union(snapshot_paths(out))[0]) < log.rows[-1][0]


# ----------------------------------------------------------------- density
def test_rigl_at_density_five_percent_has_five_percent_of_all_connections():
    """64-100-100-10 (17400 possible): 0.05 of them is 870. ERK shapes (n_in + n_out) /
    (n_in n_out) times sizes are 164, 200 and 110, so eps = 870 / 474 and the layers get
    round(164 eps) = 301, round(200 eps) = 367 and round(110 eps) = 202 connections."""
    from topo.train.runner import build_trainer

    trainer = build_trainer(TrainConfig(method="rigl", density=0.05, epochs=1))
    assert [layer.n_connections for layer in trainer.model.layers] == [301, 367, 202]


def test_the_command_line_prints_the_density_it_starts_and_ends_with(tmp_path, capsys):
    out = tmp_path / "rigl"
    assert topo_main(["train", "--method", "rigl", "--density", "0.05", "--epochs", "1",
                      "--rigl-delta-t", "10", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == ("density 0.05 overall (870 of 17400 connections), per layer 0.04703, "
                          "0.0367, 0.202")
    assert printed[2].endswith("density per layer 0.04703, 0.0367, 0.202, overall 0.05")
    manifest = read_manifest(out)
    assert manifest["initial_density"] == 870 / 17400 == manifest["final_density"]
    assert manifest["initial_connections"] == [301, 367, 202]
    assert manifest["target_density"] == 0.05


@pytest.mark.parametrize("method, extra", [
    ("static", {}), ("set", {"init_sparsity": "erk"}), ("snip", {}),
])
def test_methods_that_start_sparse_start_at_the_density_of_all_layers(method, extra):
    """The output layer (30 x 10 = 300 of 4060) kept dense counts in the budget: 0.2 of 4060
    is 812 connections, 512 of them in the first two layers."""
    from topo.train.runner import build_trainer

    config = TrainConfig(method=method, density=0.2, sparse_output=False, epochs=1, **SMALL,
                         **extra)
    trainer = build_trainer(config)
    trainer.initialise()   # SNIP prunes here
    counts = [layer.n_connections for layer in trainer.model.layers]
    assert counts[2] == 300 and abs(sum(counts) - 812) <= 1   # ERK rounds per layer


def test_gmp_and_imp_end_at_the_density_of_all_layers(tmp_path):
    train(TrainConfig(method="gmp", epochs=2, density=0.2, gmp_delta_t=5, sparse_output=False,
                      **SMALL), tmp_path / "gmp", progress=False)
    g = load(tmp_path / "gmp")
    # each of the two pruned layers keeps round(512 / 3760 * size) of its weights
    assert g.n_connections == [round(512 / 3760 * 2560), round(512 / 3760 * 1200), 300]
    # imp: the fewest levels with 0.8^L of the 3760 pruned weights plus the dense 300 at most
    # 0.4 of 4060 (1624): 0.8^4 * 3760 + 300 = 1840 is more, 0.8^5 * 3760 + 300 = 1532 not
    train(TrainConfig(method="imp", epochs=1, density=0.4, **SMALL), tmp_path / "imp",
          progress=False)
    assert read_manifest(tmp_path / "imp")["levels"] == 5
    assert sum(load(tmp_path / "imp").n_connections) <= 1624


@pytest.mark.parametrize("config, message", [
    ({"method": "dense", "density": 0.5}, "dense trains every connection"),
    ({"method": "static", "init_sparsity": "dense", "density": 0.5},
     "init_sparsity dense starts every layer dense"),
    ({"method": "set", "density": 0.5, "epsilon": 5.0}, "give epsilon or density, not both"),
    ({"method": "gmp", "epsilon": 5.0}, "gmp starts dense: epsilon does not apply"),
    ({"method": "snip", "init_sparsity": "erk"}, "snip starts dense: init_sparsity"),
    ({"method": "rigl", "density": 0.05, "sparse_output": False},
     "density 0.05 cannot be met: the layer kept dense \\(2\\) holds 300 of"),
])
def test_a_density_a_method_cannot_honour_is_refused_before_anything_is_written(
        tmp_path, config, message):
    with pytest.raises(ConfigError, match=message):
        train(TrainConfig(epochs=1, **{**SMALL, **config}), tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()


@pytest.mark.parametrize("argv, message", [
    (["--epsilon", "20", "--density", "0.1"], "give --epsilon or --density, not both"),
    (["--method", "imp", "--sparse-output"], "--sparse-output does not apply"),
])
def test_cli_refuses_flags_given_together_that_cannot_both_apply(tmp_path, capsys, argv,
                                                                 message):
    assert topo_main(["train", *argv, "--out", str(tmp_path / "x"), "--no-progress"]) == 1
    assert message in capsys.readouterr().err and not (tmp_path / "x").exists()


# ----------------------------------------------------------------- connectivity
def test_snip_that_empties_a_layer_is_refused_before_anything_is_written(tmp_path):
    """SNIP at 0.001 keeps 17 of 17400 connections, none in layer 1: the output could not
    depend on the input, and the run used to train at chance without a word."""
    with pytest.raises(ConfigError, match=r"snip at density 0.000977 leaves a network whose "
                                          r"output cannot depend on its input \(layer 1 has no "
                                          r"connection; no input unit reaches any output"):
        train(TrainConfig(method="snip", density=0.001, epochs=1), tmp_path / "snip",
              progress=False)
    assert not (tmp_path / "snip").exists()


def test_the_command_line_shows_a_pruning_that_cuts_outputs_off_as_one_line(tmp_path, capsys):
    out = tmp_path / "gmp"
    assert topo_main(["train", "--method", "gmp", "--density", "0.002", "--gmp-delta-t", "3",
                      "--arch", "64-40-30-10", "--batch-size", "64", "--epochs", "1",
                      "--out", str(out), "--no-progress"]) == 0
    err = capsys.readouterr().err.splitlines()
    assert err and all(line.startswith("topo train: warning: GMP at epoch 1, step ")
                       for line in err)
    assert any("reached by no input" in line for line in err)


def test_messages_count_in_the_right_number():
    from topo.train._text import count
    from topo.train.data import load_dataset

    assert (count(1, "layer"), count(2, "layer"), count(1, "class", "classes"),
            count(0, "class", "classes")) == ("1 layer", "2 layers", "1 class", "0 classes")
    data = load_dataset("synthetic-F2", seed=0, n_samples=30)
    with pytest.raises(ConfigError, match="it needs 10 inputs and 1 output "):
        resolve_arch([64, 10], data)


# ----------------------------------------------------------------- resume, extend, signals
def test_resume_of_a_folder_without_a_run_is_refused(tmp_path, capsys):
    code = topo_main(["train", "--out", str(tmp_path / "typo"), "--resume", "--no-progress"])
    assert code == 1 and not (tmp_path / "typo").exists()
    assert "typo: nothing to resume (no run.json)" in capsys.readouterr().err


def test_a_finished_run_extended_with_more_epochs_continues_exactly(set_run, tmp_path):
    """SET's schedule does not depend on the number of epochs: 2 epochs extended to 4 are
    the 4-epoch run (weights, masks and every metrics row), under the run's first id."""
    out = tmp_path / "extend"
    train(SET_CONFIG.replace(epochs=2), out, progress=False)
    first_id = read_manifest(out)["run_id"]
    train(SET_CONFIG, out, resume=True, progress=False)
    manifest = read_manifest(out)
    assert manifest["status"] == "finished" and manifest["run_id"] == first_id
    assert [(e["from_epochs"], e["to_epochs"]) for e in manifest["extended"]] == [(2, 4)]
    assert TrainConfig.from_dict(manifest["config"]).epochs == 4
    assert [p.name for p in snapshot_paths(out)] == [p.name for p in snapshot_paths(set_run)]
    assert _layer_arrays(snapshot_paths(out)[-1]) == _layer_arrays(snapshot_paths(set_run)[-1])
    assert load(snapshot_paths(out)[-1]).metadata["run_id"] == first_id
    assert read_metrics(out).drop(columns="wall_time").equals(
        read_metrics(set_run).drop(columns="wall_time"))
    # the command line: more epochs extend, fewer are refused
    assert topo_main(["train", "--out", str(out), "--resume", "--epochs", "5",
                      "--no-progress"]) == 0
    assert len(read_metrics(out)) == 6
    with pytest.raises(ConfigError, match="the run has 5 epochs; --epochs can extend it"):
        train(SET_CONFIG.replace(epochs=3), out, resume=True, progress=False)


@pytest.mark.parametrize("config, message", [
    (TrainConfig(method="imp", imp_levels=1, epochs=1, **SMALL), "a run in levels"),
    (TrainConfig(method="dense", dataset="synthetic-F1", arch=[10, 4, 1], n_samples=60,
                 epochs=40, lr=0.5, early_stopping_patience=1), "stopped early at epoch"),
])
def test_runs_that_cannot_be_extended_say_why(tmp_path, config, message):
    train(config, tmp_path / "run", progress=False)
    with pytest.raises(ConfigError, match=message):
        train(config.replace(epochs=config.epochs + 50), tmp_path / "run", resume=True,
              progress=False)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.parametrize("signal_name, status", [("SIGINT", 130), ("SIGTERM", 143)])
def test_a_signalled_run_says_interrupted_and_how_to_continue(tmp_path, signal_name, status):
    """A real signal to a child running ``topo train``: run.json says ``interrupted`` (not
    ``running``), stderr says so in one line, the exit status is 128 + the signal."""
    out, err = tmp_path / "run", tmp_path / "stderr.txt"
    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child process
        code = 3
        try:
            with open(err, "w", buffering=1) as sys.stderr, open(os.devnull, "w") as sys.stdout:
                signal.signal(signal.SIGINT, signal.default_int_handler)
                code = topo_main(["train", "--arch", "64-40-30-10", "--batch-size", "64",
                                  "--epochs", "1000", "--out", str(out), "--no-progress"])
        finally:
            os._exit(code)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (
            (out / "metrics.jsonl").is_file()
            and len((out / "metrics.jsonl").read_text().splitlines()) >= 3):
        time.sleep(0.02)
    os.kill(pid, getattr(signal, signal_name))
    _, wait_status = os.waitpid(pid, 0)
    assert os.WIFEXITED(wait_status) and os.WEXITSTATUS(wait_status) == status
    manifest = read_manifest(out)
    assert (manifest["status"], manifest["interrupted_by"]) == ("interrupted", signal_name)
    # the signal may fall between an epoch's metrics row and its checkpoint
    epoch = manifest["resumes_after_epoch"]
    assert epoch >= 1 and len(read_metrics(out)) in (epoch + 1, epoch + 2)
    assert err.read_text().splitlines() == [
        f"topo train: interrupted by {signal_name}; {out}/run.json says interrupted, its "
        f"checkpoint holds epoch {epoch}; continue with: topo train --out {out} --resume"]
