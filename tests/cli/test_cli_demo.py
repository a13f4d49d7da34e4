"""`topo demo`: the whole tour writes every result it announces (small setting)."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys

import numpy as np
import pandas as pd

from topo.cli import main

EXPECTED = [
    "runs/set-s0", "runs/set-s1", "runs/dense-s0", "compare.csv", "compare.png",
    "evolution.csv", "evolution.png", "input_connectivity.png", "distances.csv",
    "distances_overlap.csv", "distance_matrix.png", "embedding.png", "persistence.csv",
    "persistence_diagrams.png", "interactions.csv", "interactions.png",
]


def printed_commands(printed: str) -> list[list[str]]:
    """The ``$ topo ...`` commands the demo printed, continuation lines joined."""
    commands, current = [], None
    for line in printed.splitlines():
        text = line.strip()
        if current is None and text.startswith("$ "):
            current = text[2:]
        elif current is not None:
            current += " " + text
        else:
            continue
        if current.endswith("\\"):
            current = current[:-1]
        else:
            commands.append(shlex.split(current))
            current = None
    return commands


def test_demo_writes_and_announces_every_result(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "3"]) == 0
    printed = capsys.readouterr().out
    for name in EXPECTED:
        path = out / name
        assert path.exists(), name
        assert f"-> {path}" in printed, name
    for figure in [n for n in EXPECTED if n.endswith(".png")]:
        assert (out / figure).read_bytes()[:4] == b"\x89PNG"
    steps = re.findall(r"^\[(\d+)\]", printed, flags=re.MULTILINE)
    assert steps == [str(k) for k in range(1, 9)]

    evolution = pd.read_csv(out / "evolution.csv")
    assert sorted(evolution["epoch"].unique()) == [0, 1, 2, 3]
    distances = pd.read_csv(out / "distances.csv", index_col="label")
    assert distances.shape[0] == distances.shape[1]
    np.testing.assert_allclose(np.diag(distances.to_numpy()), 0)
    runs = set(pd.read_csv(out / "persistence.csv")["run"])
    assert runs == {"set-s0", "set-s1", "dense-s0"}


def test_demo_commands_reproduce_the_tables_it_wrote(tmp_path, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--epochs", "3"]) == 0
    commands = printed_commands(capsys.readouterr().out)
    assert [c[1] for c in commands] == ["train"] * 3 + [
        "compare", "evolution", "distances", "persistence", "interactions"]
    tables = ["compare.csv", "evolution.csv", "distances.csv", "distances_overlap.csv",
              "interactions.csv"]
    written = {name: (out / name).read_text() for name in tables}
    for name in tables:
        (out / name).unlink()
    for command in commands[3:]:
        assert main(command[1:]) == 0, command
    capsys.readouterr()
    for name in tables:
        assert (out / name).read_text() == written[name], name
    interactions = pd.read_csv(out / "interactions.csv")
    assert len(interactions) == 20


def test_demo_out_that_is_a_file_is_a_one_line_error(tmp_path):
    existing = tmp_path / "results.txt"
    existing.write_text("mine")
    proc = subprocess.run([sys.executable, "-m", "topo", "demo", "--out", str(existing),
                           "--epochs", "1"], capture_output=True, text=True)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    assert "results.txt" in proc.stderr and existing.read_text() == "mine"


def test_demo_checks_every_output_before_training(tmp_path, capsys):
    out = tmp_path / "demo"
    (out / "runs" / "dense-s0").mkdir(parents=True)  # the third run's folder is not a run
    (out / "runs" / "dense-s0" / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 1
    assert "dense-s0" in capsys.readouterr().err
    assert not (out / "runs" / "set-s0").exists()
    (out / "runs" / "dense-s0" / "notes.txt").unlink()
    (out / "compare.png").mkdir()  # a folder where a figure goes
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 1
    assert "compare.png" in capsys.readouterr().err
    assert not (out / "runs" / "set-s0").exists()


def test_demo_replaces_the_runs_of_an_earlier_demo(tmp_path, capsys):
    out = tmp_path / "demo"
    earlier = out / "runs" / "set-s0"
    (earlier / "snapshots").mkdir(parents=True)
    (earlier / "run.json").write_text('{"status": "finished"}')
    (earlier / "snapshots" / "epoch_0099.safetensors").write_bytes(b"old")
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 0
    assert "done in" in capsys.readouterr().out
    assert not (earlier / "snapshots" / "epoch_0099.safetensors").exists()
    assert (earlier / "snapshots" / "epoch_0001.safetensors").exists()


def test_demo_refuses_to_overwrite_a_folder_that_is_not_a_run(tmp_path, capsys):
    out = tmp_path / "demo"
    (out / "runs" / "set-s0").mkdir(parents=True)
    (out / "runs" / "set-s0" / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 1
    assert "not a topo run" in capsys.readouterr().err
    assert (out / "runs" / "set-s0" / "notes.txt").read_text() == "mine"
