"""``topo train``: what it prints when a run is interrupted, warns, or ends unusually.

The training itself is replaced by a stand-in that writes the files a run would hold (or
raises what an interrupted run raises), so each test says exactly what the run directory
holds and checks the lines and the exit status a user sees.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

import topo.train
from topo.cli import main
from topo.train.runner import Terminated
from topo.train.sparsity import ConnectivityWarning


def _stand_in(monkeypatch, body) -> None:
    def train(config, out, *, resume=False, progress=True, callbacks=()):
        return body(Path(out))

    monkeypatch.setattr(topo.train, "train", train)


def _write_run(out: Path, manifest: dict, rows: list[dict]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    (out / "run.json").write_text(json.dumps(manifest))
    (out / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return out


def test_ctrl_c_before_the_run_directory_exists(monkeypatch, tmp_path, capsys):
    def body(out):
        raise KeyboardInterrupt

    _stand_in(monkeypatch, body)
    status = main(["train", "--out", str(tmp_path / "run"), "--no-progress"])
    assert status == 130  # 128 + SIGINT
    assert capsys.readouterr().err == ("topo train: interrupted by SIGINT before training "
                                       "started\n")


@pytest.mark.parametrize("epoch, holds", [(2, "epoch 2"), (None, "no epoch yet")])
def test_sigterm_after_the_run_started_says_how_to_resume(monkeypatch, tmp_path, capsys,
                                                          epoch, holds):
    out = tmp_path / "run"

    def body(out):
        manifest = {"status": "interrupted"}
        if epoch is not None:
            manifest["resumes_after_epoch"] = epoch
        _write_run(out, manifest, [])
        raise Terminated("SIGTERM")

    _stand_in(monkeypatch, body)
    status = main(["train", "--out", str(out), "--no-progress"])
    assert status == 143  # 128 + SIGTERM
    assert capsys.readouterr().err == (
        f"topo train: interrupted by SIGTERM; {out}/run.json says interrupted, its checkpoint "
        f"holds {holds}; continue with: topo train --out {out} --resume\n")


def test_connectivity_warnings_are_lines_and_other_warnings_pass_through(monkeypatch, tmp_path,
                                                                        capsys):
    def body(out):
        warnings.warn("layer fc1 is empty", ConnectivityWarning, stacklevel=1)
        warnings.warn("layer fc1 is empty", ConnectivityWarning, stacklevel=1)
        warnings.warn("something else", FutureWarning, stacklevel=1)
        raise KeyboardInterrupt

    _stand_in(monkeypatch, body)
    # another warning goes to the handler that was there before (here pytest's)
    with pytest.warns(FutureWarning, match="^something else$"):
        main(["train", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    # every connectivity warning is shown, each time, as one line
    assert err.count("topo train: warning: layer fc1 is empty\n") == 2
    assert "something else" not in err


def test_a_run_without_metrics_prints_its_place_and_best_snapshot(monkeypatch, tmp_path,
                                                                   capsys):
    out = tmp_path / "run"

    def body(out):
        return _write_run(out, {"status": "finished", "widths": [64, 10],
                                "final_snapshot": "snapshots/epoch_0003.safetensors",
                                "best_snapshot": "snapshots/epoch_0002.safetensors"}, [])

    _stand_in(monkeypatch, body)
    assert main(["train", "--out", str(out), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{out}: set on digits, widths 64-10, status finished",
        f"final snapshot: {out}/snapshots/epoch_0003.safetensors",
        f"best snapshot (lowest validation loss): {out}/snapshots/epoch_0002.safetensors",
    ]


def test_a_regression_run_prints_its_test_mse_and_level(monkeypatch, tmp_path, capsys):
    out = tmp_path / "run"

    def body(out):
        return _write_run(out, {"status": "finished", "widths": [4, 3, 1],
                                "final_snapshot": None, "best_snapshot": None},
                          [{"epoch": 1, "level": 0, "test_mse": 0.5, "density": [1.0, 1.0]},
                           {"epoch": 2, "level": 1, "test_mse": 0.25, "density": [0.5, 0.75]}])

    _stand_in(monkeypatch, body)
    assert main(["train", "--out", str(out), "--no-progress"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines == [
        f"{out}: set on digits, widths 4-3-1, status finished",
        "test MSE 0.2500 after epoch 2 (level 1); density per layer 0.5, 0.75",
        "",
    ]


def test_json_summary_of_a_run(monkeypatch, tmp_path, capsys):
    out = tmp_path / "run"

    def body(out):
        return _write_run(out, {"status": "finished", "run_id": "r1", "widths": [4, 2],
                                "final_snapshot": "snapshots/epoch_0001.safetensors",
                                "final_density": 0.5},
                          [{"epoch": 1, "loss": 0.75, "test_accuracy": 0.5,
                            "density": [0.5]}])

    _stand_in(monkeypatch, body)
    assert main(["train", "--out", str(out), "--no-progress", "--json", "--method", "rigl",
                 "--dataset", "digits"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary == {"run": str(out), "run_id": "r1", "status": "finished",
                       "method": "rigl", "dataset": "digits", "widths": [4, 2], "epochs": 1,
                       "final_snapshot": "snapshots/epoch_0001.safetensors",
                       "best_snapshot": None, "loss": 0.75, "test_accuracy": 0.5,
                       "density": [0.5], "overall_density": 0.5}
