"""`topo evolution` and `topo distances` on folders of other programs' checkpoints, the
TensorBoard event files of `topo evolution --tensorboard`, and the progress bars."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from topo.cli import main

# a 3-2-1 network at two snapshots (as in test_cli_evolution.py):
#   snapshot 0: h0 <- {x0, x1}, h1 <- {x2}; output <- {h0}
#   snapshot 1: h0 <- {x0},     h1 <- {x1, x2}; output <- {h0}
HAND = [
    [np.array([[1, 1, 0], [0, 0, 1]], bool), np.array([[1, 0]], bool)],
    [np.array([[1, 0, 0], [0, 1, 1]], bool), np.array([[1, 0]], bool)],
]


def hand_state_dict(k: int, prefix: str = "") -> dict[str, torch.Tensor]:
    """Snapshot k of HAND as a state_dict: weights 1 .. n on the connections."""
    out = {}
    for j, mask in enumerate(HAND[k]):
        w = np.zeros(mask.shape, dtype=np.float32)
        w[mask] = np.arange(1, mask.sum() + 1)
        out[f"{prefix}fc{j}.weight"] = torch.from_numpy(w)
    return out


def evolution_json(capsys, *args: str) -> list[dict]:
    assert main(["evolution", *args, "--json", "--no-persistence"]) == 0
    return json.loads(capsys.readouterr().out)


def test_a_folder_of_checkpoint_dicts_shows_their_own_epochs(tmp_path, capsys):
    for n, epoch in ((1, 10), (2, 25)):
        torch.save({"epoch": epoch, "state_dict": hand_state_dict(n - 1), "arch": "mlp"},
                   tmp_path / f"checkpoint_{n}.pth.tar")
    rows = evolution_json(capsys, str(tmp_path))
    assert [(r["epoch"], r["epoch_source"], r["name"]) for r in rows] == [
        (10, "metadata", "fc0"), (10, "metadata", "fc1"),
        (25, "metadata", "fc0"), (25, "metadata", "fc1")]
    # HAND: one of fc0's three connections moved between the snapshots
    assert [r["added"] for r in rows] == [0, 0, 1, 0]
    assert rows[2]["churn"] == pytest.approx(1 / 3)


def test_lightning_checkpoints_show_epoch_and_global_step(tmp_path, capsys):
    for k in (0, 1):
        torch.save({"epoch": k, "global_step": 50 * (k + 1),
                    "state_dict": hand_state_dict(k, prefix="model."),
                    "optimizer_states": [], "pytorch-lightning_version": "2.6.0"},
                   tmp_path / f"epoch={k}-step={50 * (k + 1)}.ckpt")
    rows = evolution_json(capsys, str(tmp_path))
    assert [(r["epoch"], r["step"]) for r in rows] == [(0, 50), (0, 50), (1, 100), (1, 100)]
    assert main(["evolution", str(tmp_path), "--no-persistence"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[:4] == ["epoch", "step", "epoch_source", "name"]


def test_numbers_in_names_give_epochs_and_files_without_are_labelled(tmp_path, capsys):
    for k, name in enumerate(("model_e3.pt", "model_e7.pt")):
        torch.save(hand_state_dict(k), tmp_path / name)
    rows = evolution_json(capsys, str(tmp_path))
    assert [(r["epoch"], r["epoch_source"]) for r in rows[::2]] == [(3, "name"), (7, "name")]
    other = tmp_path / "other"
    other.mkdir()
    for k, name in enumerate(("start.pt", "trained.pt")):
        torch.save(hand_state_dict(k), other / name)
    rows = evolution_json(capsys, str(other))
    assert [(r["epoch"], r["epoch_source"]) for r in rows[::2]] == [(0, "order"), (1, "order")]


def test_glob_selects_the_files_of_evolution_and_distances(tmp_path, capsys):
    for k in (0, 1):
        torch.save({"epoch": k, "state_dict": hand_state_dict(k)}, tmp_path / f"ckpt_{k}.pt")
    torch.save(hand_state_dict(0), tmp_path / "unrelated.pt")   # no epoch: would be refused
    assert main(["evolution", str(tmp_path), "--no-persistence"]) == 1
    assert "unrelated.pt" in capsys.readouterr().err
    rows = evolution_json(capsys, str(tmp_path), "--glob", "ckpt_*")
    assert [r["epoch"] for r in rows[::2]] == [0, 1]
    assert main(["distances", str(tmp_path), "--glob", "ckpt_*", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["labels"] == ["ckpt_0", "ckpt_1"]


def scalars(logdir: Path) -> dict[str, list[tuple[int, float]]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (events,) = logdir.glob("events.out.tfevents.*")
    acc = EventAccumulator(str(events))
    acc.Reload()
    return {tag: [(e.step, e.value) for e in acc.Scalars(tag)] for tag in acc.Tags()["scalars"]}


def test_tensorboard_events_hold_every_column_per_layer(tmp_path, capsys, write_run):
    run = write_run(tmp_path / "run", HAND, epochs=[0, 5], metrics=[
        {"epoch": 0, "step": 0, "loss": 2.5, "density": [0.5, 0.5],
         "itop_rate": [0.5, 0.5], "itop_rate_network": 0.5},
        {"epoch": 5, "step": 40, "loss": 1.25, "density": [0.5, 0.5],
         "itop_rate": [5 / 6, 0.5], "itop_rate_network": 0.75}])
    logdir = tmp_path / "tb"
    assert main(["evolution", str(run), "--tensorboard", str(logdir)]) == 0
    (event_file,) = logdir.glob("events.out.tfevents.*")
    assert capsys.readouterr().out.splitlines()[-1] == f"wrote {event_file}"
    found = scalars(logdir)
    # by hand: fc0 holds 3 of 6 possible connections at both snapshots; one moved
    assert found["topo/connections/fc0"] == [(0, 3.0), (5, 3.0)]
    assert found["topo/density/fc1"] == [(0, 0.5), (5, 0.5)]
    assert found["topo/added/fc0"] == [(0, 0.0), (5, 1.0)]
    assert found["topo/churn/fc0"] == [(5, pytest.approx(1 / 3))]   # none at the first
    assert found["topo/ever_active_snapshots/fc0"] == [(0, 3.0), (5, 4.0)]
    assert found["topo/itop_rate_snapshots/fc0"] == [(0, 0.5), (5, pytest.approx(4 / 6))]
    # the exact ITOP rate the run recorded (between snapshots too), as recorded
    assert found["topo/itop_rate/fc0"] == [(0, 0.5), (5, pytest.approx(5 / 6))]
    assert found["topo/itop_rate_network"] == [(0, 0.5), (5, 0.75)]
    assert "topo/itop_rate_network/fc0" not in found
    assert found["topo/jaccard_to_previous/fc0"] == [(5, pytest.approx(2 / 4))]
    # the run's metrics: a scalar once per snapshot, a per-layer list per layer
    assert found["topo/loss"] == [(0, 2.5), (5, 1.25)]
    assert found["topo/run_density/fc0"] == [(0, 0.5), (5, 0.5)]
    assert "topo/loss/fc0" not in found and "topo/epoch/fc0" not in found
    assert {"topo/nnstd_to_first/fc0", "topo/neural_persistence/fc1",
            "topo/in_degree_mean/fc0", "topo/outputs_off_path/fc1"} <= set(found)


def test_tensorboard_steps_can_be_optimizer_steps(tmp_path, capsys, write_run):
    run = write_run(tmp_path / "run", HAND, metrics=[{"epoch": 0, "step": 0},
                                                     {"epoch": 1, "step": 40}])
    assert main(["evolution", str(run), "--no-persistence", "--tensorboard",
                 str(tmp_path / "tb"), "--tensorboard-step", "step"]) == 0
    assert scalars(tmp_path / "tb")["topo/connections/fc0"] == [(0, 3.0), (40, 3.0)]


def test_tensorboard_step_needs_a_step_for_every_snapshot(tmp_path, capsys, write_run):
    run = write_run(tmp_path / "run", HAND)
    assert main(["evolution", str(run), "--tensorboard", str(tmp_path / "tb"),
                 "--tensorboard-step", "step"]) == 1
    assert "not every snapshot has a step" in capsys.readouterr().err
    assert not list((tmp_path / "tb").rglob("events*"))


def test_a_missing_tensorboard_package_names_the_extra(tmp_path, capsys, write_run,
                                                       monkeypatch):
    run = write_run(tmp_path / "run", HAND)
    for name in [n for n in sys.modules if n.split(".")[0] == "tensorboard"] + ["tensorboard"]:
        monkeypatch.setitem(sys.modules, name, None)   # importing it fails
    assert main(["evolution", str(run), "--tensorboard", str(tmp_path / "tb")]) == 1
    err = capsys.readouterr().err
    assert "pip install 'topo[tensorboard]'" in err and len(err.splitlines()) == 1


# end to end: `python -m topo` in a fresh interpreter, where TensorBoard's first import would
# print; `make test-slow` runs it, and CI runs both
@pytest.mark.slow
def test_the_command_writes_events_without_tensorflow_noise(tmp_path, write_run):
    run = write_run(tmp_path / "run", HAND)
    done = subprocess.run([sys.executable, "-m", "topo", "evolution", str(run),
                           "--no-persistence", "--tensorboard", str(tmp_path / "tb")],
                          capture_output=True, text=True, check=False)
    assert done.returncode == 0 and done.stderr == ""
    assert "tensorflow" not in done.stdout.lower()


def test_progress_bars_show_only_when_asked_or_on_a_terminal(tmp_path, capsys, write_run):
    run = write_run(tmp_path / "run", HAND)
    assert main(["evolution", str(run), "--no-persistence"]) == 0
    assert capsys.readouterr().err == ""   # stderr is not a terminal here
    assert main(["evolution", str(run), "--no-persistence", "--progress"]) == 0
    assert "snapshots" in capsys.readouterr().err
    assert main(["distances", str(run), "--progress"]) == 0
    assert "pairs" in capsys.readouterr().err
    assert main(["distances", str(run), "--no-progress"]) == 0
    assert capsys.readouterr().err == ""
