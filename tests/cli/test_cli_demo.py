"""`topo demo`: the whole tour writes every result it announces, and the commands it prints
make the same tables (small setting: 3 epochs, one run of the demo for the whole session)."""

from __future__ import annotations

import re
import shlex

import numpy as np
import pandas as pd
import pytest

from topo.cli import main

EXPECTED = [
    "runs/set-s0", "runs/set-s1", "runs/dense-s0", "compare.csv", "compare.png",
    "evolution.csv", "evolution.png", "input_connectivity.png", "distances.csv",
    "distances_overlap.csv", "distance_matrix.png", "embedding.png", "persistence.csv",
    "persistence_diagrams.png", "interactions.csv", "interactions.png",
]
#: the tables a printed command makes, and the option that names each
TABLES = {"compare": ("--csv", "compare.csv"), "evolution": ("--csv", "evolution.csv"),
          "distances": ("--out", "distances.csv"),
          "interactions": ("--csv", "interactions.csv")}


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


@pytest.mark.slow
def test_demo_writes_and_announces_every_result(demo_output):
    out, printed = demo_output
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
    assert distances.shape == (4, 4)  # epochs 0 and 3 of both SET runs
    assert list(distances.index) == ["set-s0/epoch_0000", "set-s0/epoch_0003",
                                     "set-s1/epoch_0000", "set-s1/epoch_0003"]
    np.testing.assert_allclose(np.diag(distances.to_numpy()), 0)
    runs = pd.read_csv(out / "persistence.csv")["run"].tolist()
    assert runs == ["set-s0"] * 3 + ["set-s1"] * 3 + ["dense-s0"] * 3


@pytest.mark.slow
def test_demo_replaced_the_run_of_an_earlier_demo(demo_output):
    out, _ = demo_output  # the fixture left an earlier demo's run with epoch_0099 there
    snapshots = sorted(p.name for p in (out / "runs" / "set-s0" / "snapshots").iterdir())
    assert snapshots == [f"epoch_{e:04d}.safetensors" for e in range(4)]


@pytest.mark.slow
def test_demo_commands_reproduce_the_tables_it_wrote(demo_output, tmp_path, capsys):
    out, printed = demo_output
    commands = printed_commands(printed)
    assert [c[1] for c in commands] == ["train"] * 3 + [
        "compare", "evolution", "distances", "persistence", "interactions"]
    distances = commands[5]
    assert distances[distances.index("--embedding") + 1] == str(out / "embedding.png")
    assert re.search(r"embedding\.png  \(MDS embedding with each run's trajectory; Kruskal "
                     r"stress-1 \d\.\d{3}\)", printed)
    for command in commands[3:]:
        args = _tables_only(command[1:])
        # the same command with its tables in a fresh folder (the demo's stay as written)
        args = [str(tmp_path / a[len(str(out)) + 1:]) if a.startswith(str(out / "")) and
                not a.startswith(str(out / "runs")) else a for a in args]
        assert main(args) == 0, command
    capsys.readouterr()
    for name in ("compare.csv", "evolution.csv", "distances.csv", "distances_overlap.csv",
                 "interactions.csv"):
        assert (tmp_path / name).read_text() == (out / name).read_text(), name
    assert len(pd.read_csv(out / "interactions.csv")) == 20


def _tables_only(args: list[str]) -> list[str]:
    """``args`` without the figure options, and in this process: only tables are compared
    (the figures are checked above; worker processes give the same matrix, test_pairwise)."""
    out: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
        elif arg in ("--plot", "--inputs-plot", "--embedding"):
            skip = True
        elif arg == "--n-jobs":
            out += [arg, "1"]
            skip = True
        else:
            out.append(arg)
    return out


def test_demo_out_that_is_a_file_is_a_one_line_error(tmp_path, capsys):
    existing = tmp_path / "results.txt"
    existing.write_text("mine")
    assert main(["demo", "--out", str(existing), "--epochs", "1"]) == 1
    err = capsys.readouterr().err
    assert err == (f"topo demo: error: {existing}: is a file; --out needs a folder "
                   "(new or existing)\n")
    assert existing.read_text() == "mine"


def test_demo_checks_every_output_before_training(tmp_path, capsys):
    out = tmp_path / "demo"
    (out / "runs" / "dense-s0").mkdir(parents=True)  # the third run's folder is not a run
    (out / "runs" / "dense-s0" / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 1
    assert "dense-s0: exists and is not a topo run" in capsys.readouterr().err
    assert not (out / "runs" / "set-s0").exists()
    (out / "runs" / "dense-s0" / "notes.txt").unlink()
    (out / "compare.png").mkdir()  # a folder where a figure goes
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 1
    assert "compare.png: cannot write a file here" in capsys.readouterr().err
    assert not (out / "runs" / "set-s0").exists()
    (out / "compare.png").rmdir()
    (out / "runs" / "set-s1").write_text("a file where a run goes")
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 1
    assert "set-s1: exists and is a file" in capsys.readouterr().err


def test_demo_refuses_to_overwrite_a_folder_that_is_not_a_run(tmp_path, capsys):
    out = tmp_path / "demo"
    (out / "runs" / "set-s0").mkdir(parents=True)
    (out / "runs" / "set-s0" / "notes.txt").write_text("mine")
    assert main(["demo", "--out", str(out), "--epochs", "1"]) == 1
    assert "not a topo run" in capsys.readouterr().err
    assert (out / "runs" / "set-s0" / "notes.txt").read_text() == "mine"


def test_demo_needs_at_least_one_epoch(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path / "d"), "--epochs", "0"]) == 1
    assert "--epochs must be at least 1, got 0" in capsys.readouterr().err
