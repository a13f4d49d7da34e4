"""Whole runs on digits and synthetic data: the run directory, the methods' invariants,
reproducibility, resuming after SIGKILL and after an interruption, early stopping, thread
settings and the command line."""

from __future__ import annotations

import json
import os
import signal
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

from .conftest import SET_CONFIG, SMALL, STEPS_PER_EPOCH, snapshot_bytes


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
def _die_half_way(module, nth: int) -> None:
    """Make ``module``'s ``nth`` atomic write stop half-way: SIGKILL with only its temporary
    file written (100 bytes)."""
    from topo.io.atomic import atomic_path

    real, count = module.atomic_write_bytes, [0]

    def write(path, data):
        count[0] += 1
        if count[0] == nth:
            with atomic_path(path) as tmp:
                tmp.write_bytes(data[:100])
                os.kill(os.getpid(), signal.SIGKILL)
        return real(path, data)

    module.atomic_write_bytes = write


def _die_in_step(nth: int) -> None:
    """SIGKILL from inside the ``nth`` optimiser step."""
    real, count = torch.optim.SGD.step, [0]

    def step(self, *args, **kwargs):
        count[0] += 1
        if count[0] == nth:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(self, *args, **kwargs)

    torch.optim.SGD.step = step


def _train_and_die(out: Path, mode: str) -> None:
    """Train SET_CONFIG into ``out`` in a forked child that is SIGKILLed as ``mode`` says.

    The child shares everything this process has imported, so it costs no start-up; it
    leaves only through SIGKILL or ``os._exit`` (never back into pytest).
    """
    import topo.io.snapshot
    import topo.train.checkpoint

    pid = os.fork()
    if pid == 0:   # pragma: no cover - the child process
        code = 3
        try:
            if mode == "mid-epoch":
                _die_in_step(50)                             # step 50: inside epoch 3
            elif mode == "mid-snapshot":
                _die_half_way(topo.io.snapshot, 3)           # the 3rd snapshot
            else:
                _die_half_way(topo.train.checkpoint, 2)      # the 2nd checkpoint
            train(SET_CONFIG, out, progress=False)
        finally:
            os._exit(code)
    deadline = time.monotonic() + 120
    while (waited := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    if waited[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail(f"the {mode} child did not end within 120 s")
    assert os.WIFSIGNALED(waited[1]) and os.WTERMSIG(waited[1]) == signal.SIGKILL


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
    monkeypatch.setattr(Trainer, "train_epoch", real_epoch)
    train(config, out, resume=True, progress=False)
    ref_paths, out_paths = snapshot_paths(reference), snapshot_paths(out)
    assert [p.relative_to(reference) for p in ref_paths] == [
        p.relative_to(out) for p in out_paths]
    assert snapshot_bytes(ref_paths) == snapshot_bytes(out_paths)
    ref_manifest, out_manifest = read_manifest(reference), read_manifest(out)
    for key in ("best_snapshot", "final_snapshot", "stopped_early", "best_epoch"):
        assert ref_manifest[key] == out_manifest[key]


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
