"""The run directory: run ids, the start-or-resume decision, cleaning, best snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from topo.errors import ConfigError, UnreadableFileError
from topo.train import TrainConfig
from topo.train.checkpoint import save_checkpoint
from topo.train.rundir import RunDirectory, best_snapshot, config_differences, run_id

EXAMPLE_RUN = Path(__file__).resolve().parents[2] / "data" / "example-run"


def test_run_id_of_the_committed_example_run():
    # data/example-run/run.json: made before `standardize` existed, its id must not change
    config = TrainConfig(method="set", dataset="digits", arch=[64, 100, 100, 10], epochs=15,
                         epsilon=5.0, seed=0)
    assert run_id(config) == "set-digits-s0-e2bc8c9d"
    assert run_id(config.replace(standardize=True)) != "set-digits-s0-e2bc8c9d"
    # where the data lives is not part of the run
    assert run_id(config.replace(data_root="/elsewhere")) == "set-digits-s0-e2bc8c9d"


def test_config_differences_name_the_fields():
    a = TrainConfig(method="set", epochs=3)
    assert config_differences(a, a.replace(epochs=4, data_root="/x")) == ["epochs: 3 vs 4"]


def _manifest(path: Path, config: TrainConfig, status: str, **more) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "run.json").write_text(json.dumps({"run_id": run_id(config), "status": status,
                                               "config": config.to_dict(),
                                               "started": "then", **more}))


CONFIG = TrainConfig(method="set", epochs=2, seed=4)


def test_new_or_empty_folder_starts_afresh(tmp_path):
    start = RunDirectory(tmp_path / "new", CONFIG).prepare(resume=False)
    assert not start.finished and start.state is None and start.started.endswith("Z")
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / ".hidden").write_text("")
    assert RunDirectory(tmp_path / "empty", CONFIG).prepare(resume=True).state is None


@pytest.mark.parametrize("setup, resume, message", [
    (lambda p: p.write_text("x"), False, "exists and is not a folder"),
    (lambda p: (p.mkdir(), (p / "notes.txt").write_text("x")), False, "not empty"),
    (lambda p: _manifest(p, CONFIG.replace(seed=5), "running"), True, "different run"),
    (lambda p: _manifest(p, CONFIG, "running"), False, "pass --resume"),
    (lambda p: (_manifest(p, CONFIG, "running"),
                (p / "run.json").write_text(json.dumps({"config": {"warp": 1}}))),
     True, "cannot read"),
])
def test_folders_that_hold_something_else_are_refused(tmp_path, setup, resume, message):
    path = tmp_path / "run"
    setup(path)
    with pytest.raises(ConfigError, match=message):
        RunDirectory(path, CONFIG).prepare(resume)


def test_resume_finished_running_without_checkpoint_and_with_one(tmp_path):
    finished = tmp_path / "finished"
    _manifest(finished, CONFIG, "finished")
    start = RunDirectory(finished, CONFIG).prepare(resume=True)
    assert start.finished and start.started == "then"
    running = tmp_path / "running"
    _manifest(running, CONFIG, "running")
    start = RunDirectory(running, CONFIG).prepare(resume=True)
    assert not start.finished and start.state is None and start.started == "then"
    save_checkpoint(RunDirectory(running, CONFIG).checkpoint, {"epoch": 1},
                    run_id=run_id(CONFIG))
    assert RunDirectory(running, CONFIG).prepare(resume=True).state == {"epoch": 1}
    save_checkpoint(RunDirectory(running, CONFIG).checkpoint, {"epoch": 1}, run_id="other")
    with pytest.raises(ConfigError, match="belongs to another run"):
        RunDirectory(running, CONFIG).prepare(resume=True)


def test_clean_removes_temporary_files_and_for_a_fresh_start_old_metrics(tmp_path):
    run_dir = RunDirectory(tmp_path, CONFIG)
    for rel in ("snapshots/.epoch_0001.safetensors.ab12.tmp", ".run.json.x.tmp",
                "checkpoint/.state.ckpt.y.tmp", "metrics.jsonl", "checkpoint/state.ckpt",
                "snapshots/epoch_0000.safetensors"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_text("x")
    run_dir.clean(fresh=False)
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*")
                  if p.is_file())
    assert left == ["checkpoint/state.ckpt", "metrics.jsonl",
                    "snapshots/epoch_0000.safetensors"]
    run_dir.clean(fresh=True)
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == ["epoch_0000.safetensors"]


def test_metrics_lines_are_written_and_read_back(tmp_path):
    run_dir = RunDirectory(tmp_path, CONFIG)
    assert run_dir.read_metrics() == []
    run_dir.write_metrics(['{"epoch": 0}', '{"epoch": 1}'])
    assert (tmp_path / "metrics.jsonl").read_text() == '{"epoch": 0}\n{"epoch": 1}\n'
    assert run_dir.read_metrics() == ['{"epoch": 0}', '{"epoch": 1}']


def test_best_snapshot_of_a_finished_run_only(tmp_path):
    assert best_snapshot(EXAMPLE_RUN) == EXAMPLE_RUN / "snapshots/epoch_0015.safetensors"
    _manifest(tmp_path / "r", CONFIG, "running")
    with pytest.raises(UnreadableFileError, match="has not finished"):
        best_snapshot(tmp_path / "r")
