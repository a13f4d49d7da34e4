"""Whole runs on digits and synthetic data: the run directory, the methods' invariants,
reproducibility, resuming after SIGKILL, early stopping, and the command line."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from topo.cli import main as topo_main
from topo.errors import ConfigError
from topo.io import load
from topo.io.run import read_manifest, read_metrics, snapshot_paths
from topo.train import TrainConfig, train

SMALL = {"dataset": "digits", "arch": [64, 40, 30, 10], "batch_size": 64, "seed": 3}


def _content(path: Path) -> bytes:
    """A snapshot file's bytes: same seed, same machine must give the very same file."""
    return path.read_bytes()


def _stored(w):
    rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
    return rows, w.indices


def _connections(graph):
    return [set(zip(*_stored(w))) for w in graph.layers]


@pytest.fixture(scope="module")
def set_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "set"
    train(TrainConfig(method="set", epochs=4, **SMALL), out, progress=False)
    return out


def test_run_directory_layout_and_manifest(set_run):
    names = sorted(p.relative_to(set_run).as_posix() for p in set_run.rglob("*")
                   if p.is_file())
    assert names == ["checkpoint/state.ckpt", "metrics.jsonl", "run.json",
                     *[f"snapshots/epoch_{e:04d}.safetensors" for e in range(5)]]
    manifest = read_manifest(set_run)
    assert manifest["status"] == "finished"
    assert TrainConfig.from_dict(manifest["config"]) == TrainConfig(method="set", epochs=4,
                                                                    **SMALL)
    assert manifest["final_snapshot"] == "snapshots/epoch_0004.safetensors"
    assert manifest["best_snapshot"] == manifest["final_snapshot"]
    assert {"torch", "numpy", "python", "topo"} <= set(manifest["versions"])


def test_metrics_have_one_row_per_epoch_with_the_promised_fields(set_run):
    df = read_metrics(set_run)
    assert df["epoch"].tolist() == [0, 1, 2, 3, 4]
    for col in ("loss", "train_accuracy", "test_accuracy", "wall_time", "density_0",
                "density_2", "added_0", "removed_2", "step"):
        assert col in df.columns
    assert df["step"].tolist() == [0, 22, 44, 66, 88]   # ceil(1347 / 64) = 22 steps


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
        moved = len(old - new)
        assert moved == len(new - old)
        removed = df.loc[df["epoch"] == e, "removed_0"].item()
        assert df.loc[df["epoch"] == e, "added_0"].item() == removed
        # a position dropped and regrown at random in the same update counts in both
        # columns but does not show in the snapshot difference
        assert moved <= removed
        if e >= 2:
            # SET drops floor(zeta n_pos) + floor(zeta n_neg) (+ exact zeros): about zeta
            assert 0.29 * len(old) <= removed <= 0.31 * len(old)
            assert moved > 0   # the mask changes
        else:
            assert removed == 0   # no rewiring before the first epoch is trained
    # dense layers (ER density capped at 1) are never rewired
    assert df["added_1"].sum() == 0 and df["added_2"].sum() == 0


def test_regrown_connections_at_weight_zero_stay_connections(tmp_path):
    from topo.io import save_snapshot
    from topo.train.loop import build_trainer
    from topo.train.rundir import trainer_graph

    trainer = build_trainer(TrainConfig(method="set", epochs=2, set_regrow_zero=True,
                                        **SMALL))
    trainer.train_epoch()
    layer = trainer.model.layers[0]
    before = set(layer.flat.tolist())
    trainer.method.epoch_start(trainer, 2)   # SET's rewiring before epoch 2
    after = layer.flat.numpy()
    new = np.array(sorted(set(after.tolist()) - before))
    assert new.size > 0
    weights = layer.values.data.numpy()[np.searchsorted(after, new)]
    assert np.all(weights == 0.0)
    save_snapshot(trainer_graph(trainer), tmp_path / "s.safetensors")
    g = load(tmp_path / "s.safetensors")
    stored = set(zip(*_stored(g.layers[0])))
    rows, cols = np.divmod(new, 64)
    assert set(zip(rows.tolist(), cols.tolist())) <= stored
    assert g.n_connections[0] == len(before)


def test_same_seed_gives_bitwise_identical_snapshots(set_run, tmp_path):
    again = tmp_path / "again"
    train(TrainConfig(method="set", epochs=4, **SMALL), again, progress=False)
    for a, b in zip(snapshot_paths(set_run), snapshot_paths(again)):
        assert _content(a) == _content(b)


def test_imp_levels_reach_their_densities(tmp_path):
    out = tmp_path / "imp"
    train(TrainConfig(method="imp", epochs=2, imp_levels=3, **SMALL), out, progress=False)
    paths = snapshot_paths(out)
    rel = [p.relative_to(out).as_posix() for p in paths]
    assert rel == [f"snapshots/level_{lev:02d}/epoch_{e:04d}.safetensors"
                   for lev in range(4) for e in range(3)]
    total = 64 * 40 + 40 * 30 + 30 * 10
    expected = total
    for level in range(4):
        counts = sum(load(out / f"snapshots/level_{level:02d}/epoch_0002.safetensors")
                     .n_connections)
        assert counts == expected
        expected -= int(round(0.2 * expected))   # prune 20 % of what remains
    df = read_metrics(out)
    assert df.groupby("level")["epoch"].apply(list).tolist() == [[0, 1, 2]] * 4


def test_imp_rewinds_survivors_to_their_initial_values(tmp_path):
    out = tmp_path / "imp"
    train(TrainConfig(method="imp", epochs=1, imp_levels=1, **SMALL), out, progress=False)
    init = load(out / "snapshots/level_00/epoch_0000.safetensors")
    start1 = load(out / "snapshots/level_01/epoch_0000.safetensors")
    for w0, w1 in zip(init.layers, start1.layers):
        rows, cols = _stored(w1)
        np.testing.assert_array_equal(np.asarray(w0[rows, cols]).ravel(), w1.data)


def test_snip_and_gmp_reach_the_target_density(tmp_path):
    train(TrainConfig(method="snip", epochs=1, density=0.3, **SMALL), tmp_path / "snip",
          progress=False)
    g = load(tmp_path / "snip")
    total = 64 * 40 + 40 * 30 + 30 * 10
    assert sum(g.n_connections) == round(0.3 * total)
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
    assert manifest["best_snapshot"] == f"snapshots/epoch_{best_epoch:04d}.safetensors"
    assert (out / manifest["best_snapshot"]).is_file()
    from topo.train import best_snapshot

    assert best_snapshot(out) == out / manifest["best_snapshot"]
    last = int(df.index.max())
    assert manifest["stopped_early"] == (last < 30)
    if manifest["stopped_early"]:
        assert last - best_epoch == 1   # patience 1: one epoch without improvement
        assert manifest["final_snapshot"] == f"snapshots/epoch_{last:04d}.safetensors"
    assert {"train_mse", "test_mse", "val_loss"} <= set(df.columns)
    assert manifest["interactions"][0] == [0, 1, 2]
    g = load(out / manifest["best_snapshot"])
    assert "test_mse" in g.metadata and g.input_shape is None


def test_folder_with_a_different_run_is_refused(set_run):
    with pytest.raises(ConfigError, match="different run"):
        train(TrainConfig(method="dense", epochs=4, **SMALL), set_run, progress=False)
    with pytest.raises(ConfigError, match="--resume"):
        train(TrainConfig(method="set", epochs=4, **SMALL), set_run, progress=False)


def test_resume_of_a_finished_run_changes_nothing(set_run):
    before = {p: p.stat().st_mtime_ns for p in set_run.rglob("*") if p.is_file()}
    train(TrainConfig(method="set", epochs=4, **SMALL), set_run, resume=True, progress=False)
    assert before == {p: p.stat().st_mtime_ns for p in set_run.rglob("*") if p.is_file()}


def test_non_empty_folder_without_a_run_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty"):
        train(TrainConfig(method="set", epochs=1, **SMALL), tmp_path, progress=False)


_KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    from topo.train import TrainConfig, train
    from topo.train import loop
    import topo.io.snapshot as snap

    mode, out = sys.argv[1], sys.argv[2]
    config = TrainConfig.from_dict({config!r})
    if mode == "mid-epoch":   # SIGKILL from inside an optimiser step
        real_step = loop.torch.optim.SGD.step
        def step(self, *a, **k):
            step.n += 1
            if step.n == {kill_step}:
                os.kill(os.getpid(), signal.SIGKILL)
            return real_step(self, *a, **k)
        step.n = 0
        loop.torch.optim.SGD.step = step
    else:   # SIGKILL while the 3rd snapshot file is half-way written
        from topo.io.atomic import atomic_path
        real_write = snap.atomic_write_bytes
        count = [0]
        def dying_write(path, data):
            count[0] += 1
            if count[0] == 3:
                with atomic_path(path) as tmp:
                    tmp.write_bytes(data[:100])
                    os.kill(os.getpid(), signal.SIGKILL)
            return real_write(path, data)
        snap.atomic_write_bytes = dying_write
    train(config, out, progress=False)
""")


@pytest.mark.parametrize("mode", ["mid-epoch", "mid-snapshot"])
def test_sigkilled_run_resumes_to_identical_snapshots(tmp_path, mode):
    config = TrainConfig(method="set", epochs=4, **SMALL)
    reference = tmp_path / "reference"
    train(config, reference, progress=False)
    out = tmp_path / "killed"
    # 22 steps per epoch: step 50 is in the middle of epoch 3
    script = _KILL_SCRIPT.format(config=config.to_dict(), kill_step=50)
    proc = subprocess.run([sys.executable, "-c", script, mode, str(out)],
                          capture_output=True, text=True)
    assert proc.returncode == -9, proc.stderr
    # nothing half-written is visible: every listed snapshot reads, metrics parse
    for path in snapshot_paths(out):
        load(path)
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert read_manifest(out)["status"] == "running"
    assert len(rows) < 5
    train(config, out, resume=True, progress=False)
    assert [p.name for p in snapshot_paths(out)] == [p.name for p in
                                                     snapshot_paths(reference)]
    for a, b in zip(snapshot_paths(reference), snapshot_paths(out)):
        assert _content(a) == _content(b), a.name
    assert not list(out.rglob(".*.tmp"))
    ref_rows = read_metrics(reference).drop(columns="wall_time")
    new_rows = read_metrics(out).drop(columns="wall_time")
    assert ref_rows.equals(new_rows)
    assert read_manifest(out)["status"] == "finished"


def test_cli_trains_and_reports(tmp_path, capsys):
    out = tmp_path / "cli"
    code = topo_main(["train", "--method", "static", "--arch", "64-20-10", "--epochs", "2",
                      "--seed", "1", "--out", str(out), "--no-progress", "--json"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["status"] == "finished" and summary["widths"] == [64, 20, 10]
    assert summary["final_snapshot"] == "snapshots/epoch_0002.safetensors"
    assert Path(summary["run"]) == out


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
    from topo.train import loop

    config = TrainConfig(method=method, epochs=3, **SMALL, **extra)
    reference = tmp_path / "reference"
    train(config, reference, progress=False)
    real_epoch = loop.Trainer.train_epoch
    calls = {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == interrupt_at:
            raise KeyboardInterrupt
        return real_epoch(self)

    monkeypatch.setattr(loop.Trainer, "train_epoch", interrupted)
    out = tmp_path / "interrupted"
    with pytest.raises(KeyboardInterrupt):
        train(config, out, progress=False)
    monkeypatch.setattr(loop.Trainer, "train_epoch", real_epoch)
    train(config, out, resume=True, progress=False)
    ref_paths, out_paths = snapshot_paths(reference), snapshot_paths(out)
    assert [p.relative_to(reference) for p in ref_paths] == [
        p.relative_to(out) for p in out_paths]
    for a, b in zip(ref_paths, out_paths):
        assert _content(a) == _content(b), a.name
    ref_manifest, out_manifest = read_manifest(reference), read_manifest(out)
    for key in ("best_snapshot", "final_snapshot", "stopped_early"):
        assert ref_manifest[key] == out_manifest[key]
