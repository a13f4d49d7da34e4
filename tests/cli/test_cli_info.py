"""`topo info` and `topo export`: output conventions and error behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
from safetensors.numpy import save_file

import topo
from topo.cli import main
from topo.graph import LayeredGraph


@pytest.fixture
def snapshot(tmp_path) -> Path:
    g = LayeredGraph([np.array([[1.0, 0.0, 2.0], [0.0, 0.0, -1.0]]), np.array([[0.5, 0.5]])],
                     names=["fc1", "fc2"], metadata={"epoch": 3})
    return topo.save_snapshot(g, tmp_path / "snap.safetensors")


def test_info_json_schema(snapshot, capsys):
    assert main(["info", str(snapshot), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["format"] == "topo.snapshot"
    assert [layer["name"] for layer in out["layers"]] == ["fc1", "fc2"]
    first = out["layers"][0]
    assert (first["n_in"], first["n_out"], first["connections"]) == (3, 2, 3)
    assert isinstance(first["connections"], int)
    assert first["density"] == pytest.approx(0.5)
    assert out["totals"]["connections"] == 5


def test_info_table(snapshot, capsys):
    assert main(["info", str(snapshot)]) == 0
    out = capsys.readouterr().out
    assert "topo.snapshot" in out and "fc1" in out and "5 connections" in out


def test_info_reports_nonfinite_weights(tmp_path, capsys):
    save_file({"fc.weight": np.array([[np.nan, 1.0]], dtype=np.float32)},
              str(tmp_path / "nan.safetensors"))
    assert main(["info", str(tmp_path / "nan.safetensors")]) == 0
    assert "NaN or infinite" in capsys.readouterr().out


def test_export_edgelist(snapshot, tmp_path, capsys):
    out = tmp_path / "edges.txt"
    assert main(["export", str(snapshot), "--format", "edgelist", "-o", str(out)]) == 0
    rows = [ln.split() for ln in out.read_text().splitlines() if not ln.startswith("#")]
    assert len(rows) == 5
    assert "wrote" in capsys.readouterr().out


def test_errors_are_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{oops")
    proc = subprocess.run([sys.executable, "-m", "topo", "info", str(bad)],
                          capture_output=True, text=True)
    assert proc.returncode != 0
    assert proc.stdout == ""
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and str(bad) in lines[0]
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("name, read", [
    ("g.gexf", lambda p: nx.read_gexf(p)),
    ("g.graphml", lambda p: nx.read_graphml(p)),
    ("g.edgelist", lambda p: nx.read_edgelist(p, data=[("weight", float)],
                                              create_using=nx.DiGraph)),
])
def test_export_writes_the_format_its_file_name_says(snapshot, tmp_path, capsys, name, read):
    out = tmp_path / name
    assert main(["export", str(snapshot), "-o", str(out)]) == 0
    assert read(out).number_of_edges() == 5
    fmt = name.split(".")[1]
    assert f"({fmt}: " in capsys.readouterr().out


def test_export_refuses_a_file_name_without_a_format_and_writes_nothing(snapshot, tmp_path,
                                                                      capsys):
    out = tmp_path / "out"
    out.mkdir()
    assert main(["export", str(snapshot), "-o", str(out / "g.xml")]) == 1
    err = capsys.readouterr().err
    assert "cannot tell the export format from the suffix '.xml'" in err
    assert not any(out.iterdir())
    assert main(["export", str(snapshot), "--format", "gexf", "-o", str(out / "g.xml")]) == 0
    assert nx.read_gexf(out / "g.xml").number_of_edges() == 5


def test_export_help_explains_the_format_option(help_text):
    assert "--format {graphml,gexf,edgelist} graphml, gexf or edgelist (default: from the " \
           "suffix of --out" in help_text("export")


def test_export_to_bad_format_writes_nothing(snapshot, tmp_path):
    with pytest.raises(SystemExit):
        main(["export", str(snapshot), "--format", "dot", "-o", str(tmp_path / "x.dot")])
    assert not (tmp_path / "x.dot").exists()


# start-up, end to end: the command in a fresh interpreter (as tests/train/test_startup.py);
# `make test-slow` runs it, and CI runs both
@pytest.mark.slow
def test_info_on_safetensors_does_not_import_torch(snapshot):
    code = ("import sys; from topo.cli import main; main(['info', sys.argv[1]]); "
            "print(sorted(m for m in ('torch', 'pandas') if m in sys.modules))")
    proc = subprocess.run([sys.executable, "-c", code, str(snapshot)],
                          capture_output=True, text=True, check=True)
    # neither torch nor pandas (0.3 s of start-up): info prints its table from plain rows
    assert proc.stdout.strip().splitlines()[-1] == "[]"


def test_info_rows_are_the_summary_frame(snapshot, capsys):
    """The plain rows info prints and writes are what LayeredGraph.summary (pandas) holds."""
    from topo.io import load
    from topo.io.tables import records, row_records

    graph = load(snapshot)
    assert row_records(graph.summary_rows()) == records(graph.summary())
    assert main(["info", str(snapshot), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["layers"] == records(graph.summary())


def test_format_rows_aligns_columns_by_hand():
    from topo.io.tables import format_rows, row_records

    rows = [{"name": "fc1", "n": 8, "x": 0.5}, {"name": "layer2", "n": 123, "x": float("nan")},
            {"name": "c", "n": 1, "x": 2}]
    assert format_rows(rows) == ("  name    n    x\n"
                                 "   fc1    8  0.5\n"
                                 "layer2  123  NaN\n"
                                 "     c    1    2")
    # an int beside floats in a column is a float, as a DataFrame holds it
    assert row_records(rows)[2] == {"name": "c", "n": 1, "x": 2.0}
    assert isinstance(row_records(rows)[2]["x"], float)
    assert row_records(rows)[1]["x"] is None


def test_help_lists_commands():
    proc = subprocess.run([sys.executable, "-m", "topo", "--help"], capture_output=True,
                          text=True, check=True)
    assert "info" in proc.stdout and "export" in proc.stdout


def test_export_to_a_folder_is_one_line_error(snapshot, tmp_path, capsys):
    assert main(["export", str(snapshot), "--format", "edgelist", "-o", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "it is a folder" in err[0]


def test_output_check_tries_to_write(tmp_path):
    from topo.cli._output import check_output_path
    from topo.errors import OutputError

    target = tmp_path / "new" / "deeper" / "x.csv"
    assert check_output_path(target) == target
    assert not (tmp_path / "new").exists()
    assert list(tmp_path.iterdir()) == []
    if Path("/proc").is_dir():
        with pytest.raises(OutputError, match="cannot write"):
            check_output_path("/proc/x.png")


# ------------------------------------------------------------------ foreign formats
def test_info_json_lists_what_was_skipped(tmp_path, capsys):
    import torch

    conv, bn, fc = torch.nn.Conv2d(1, 2, 3), torch.nn.BatchNorm2d(2), torch.nn.Linear(8, 3)
    torch.save({"conv.weight": conv.weight.detach(), "conv.bias": conv.bias.detach(),
                "bn.weight": bn.weight.detach(), "bn.bias": bn.bias.detach(),
                "fc.weight": fc.weight.detach(), "fc.bias": fc.bias.detach()},
               tmp_path / "cnn.pt")
    assert main(["info", str(tmp_path / "cnn.pt"), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["widths"] == [1, 2, 3]  # conv 1 -> 2 channels, fc reads 2 x 4 positions
    assert [(s["name"], s["shape"]) for s in out["skipped"]] == [("bn.weight", [2]),
                                                                 ("bn.bias", [2])]
    assert out["skipped"][0]["why"] == ("normalisation of unit set 1 (the output of 'conv'): "
                                        "normalisation weight; not a layer")
    assert "skipped" not in out["metadata"]
    assert main(["info", str(tmp_path / "cnn.pt")]) == 0
    table = capsys.readouterr().out
    assert "skipped (2, not part of the graph):" in table
    assert "bn.weight  2" in table


def test_info_key_option_and_checkpoint_metadata(tmp_path, capsys):
    import torch

    a, b = torch.nn.Linear(4, 3), torch.nn.Linear(5, 2)
    torch.save({"epoch": 7, "global_step": 70, "state_dict": a.state_dict(),
                "ema": b.state_dict()}, tmp_path / "ckpt.pt")
    assert main(["info", str(tmp_path / "ckpt.pt")]) == 0
    out = capsys.readouterr().out
    assert "widths: 4-3" in out and "epoch: 7" in out and "global_step: 70" in out
    assert main(["info", str(tmp_path / "ckpt.pt"), "--key", "ema", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["widths"] == [5, 2]
    assert main(["info", str(tmp_path / "ckpt.pt"), "--key", "nothing"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no entry 'nothing'" in err[0]


# start-up, end to end: the command in a fresh interpreter (as tests/train/test_startup.py);
# `make test-slow` runs it, and CI runs both
@pytest.mark.slow
def test_info_on_keras_onnx_npz_does_not_import_torch(tmp_path):
    import sys as _sys

    _sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "io"))
    import mlp_files

    ws = [np.arange(12.0, dtype=np.float32).reshape(4, 3), np.ones((2, 4), np.float32)]
    bs = [np.zeros(4, np.float32), np.zeros(2, np.float32)]
    files = [mlp_files.keras_h5(tmp_path / "m.h5", ws, bs),
             mlp_files.keras_zip(tmp_path / "m.keras", ws, bs),
             mlp_files.write_onnx(tmp_path / "m.onnx", ws, bs),
             mlp_files.write_onnx(tmp_path / "m.onnx.gz", ws, bs, gz=True),
             mlp_files.npz(tmp_path / "m.npz", ws, bs)]
    code = ("import sys; from topo.cli import main\n"
            "for p in sys.argv[1:]:\n"
            "    assert main(['info', p]) == 0, p\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch')")
    proc = subprocess.run([sys.executable, "-c", code, *map(str, files)],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "no torch"
    assert proc.stderr == ""


def test_info_reads_a_folder_of_checkpoints_as_its_last_and_says_so(tmp_path, capsys):
    folder = tmp_path / "ckpts"
    folder.mkdir()
    g = LayeredGraph([np.array([[1.0, 0.0, 2.0], [0.0, 0.0, -1.0]]), np.array([[0.5, 0.5]])],
                     names=["fc1", "fc2"])
    for epoch in (1, 2, 10):
        topo.save_snapshot(g, folder / f"ckpt_epoch_{epoch}.safetensors")
    assert main(["info", str(folder)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1] == (f"snapshot: {folder}/ckpt_epoch_10.safetensors (the last of 3 "
                        "checkpoints by the epochs their names say, "
                        "ckpt_epoch_10.safetensors)")
    assert main(["info", str(folder), "--epoch", "2", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)["metadata"]
    assert meta["snapshot"] == str(folder / "ckpt_epoch_2.safetensors")
    assert meta["snapshot_choice"] == "epoch 2, as asked"


def test_info_of_an_early_stopped_run_names_its_best_snapshot(tmp_path, capsys, write_run):
    from topo.io.run import snapshot_name

    ones = [np.ones((2, 3), bool), np.ones((1, 2), bool)]
    run = write_run(tmp_path / "run", [ones] * 5)
    (run / "run.json").write_text(json.dumps({
        "config": {"early_stopping_patience": 2}, "status": "finished",
        "best_snapshot": snapshot_name(2), "stopped_early": True, "stopped_epoch": 4}))
    assert main(["info", str(run)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1:3] == [
        f"snapshot: {run}/snapshots/epoch_0004.safetensors (the run's last snapshot, "
        "epoch_0004)",
        "note: the run stopped early at epoch 4; its best snapshot (lowest validation loss) "
        "is epoch_0002: --best reads it"]
    assert main(["info", str(run), "--best"]) == 0
    assert (f"snapshot: {run}/snapshots/epoch_0002.safetensors (the run's best snapshot, "
            "epoch_0002: lowest validation loss)") in capsys.readouterr().out


def test_info_rounds_metadata_floats_and_counts_in_the_right_number(tmp_path, capsys):
    g = LayeredGraph([np.array([[1.0, 0.0]]), np.array([[0.5]])], names=["fc1", "fc2"],
                     metadata={"epoch": 3, "test_accuracy": 0.9044444444444445})
    snap = topo.save_snapshot(g, tmp_path / "one.safetensors")
    assert main(["info", str(snap)]) == 0
    out = capsys.readouterr().out
    assert "test_accuracy: 0.9044" in out and "0.90444" not in out
    assert "total: 2 connections of 3 possible (density 0.6667), 4 units" in out
    single = topo.save_snapshot(LayeredGraph([np.array([[1.0, 0.0]])]), tmp_path / "s.safetensors")
    assert main(["export", str(single), "-o", str(tmp_path / "s.edgelist")]) == 0
    assert "(edgelist: 3 nodes, 1 edge)" in capsys.readouterr().out
    assert main(["info", str(single)]) == 0
    assert "total: 1 connection of 2 possible" in capsys.readouterr().out


def _checkpoints(folder, names, epochs=None):
    """Tiny topo snapshots under ``names``, the k-th with k + 1 connections (and, when
    given, the epoch its metadata says)."""
    folder.mkdir()
    for k, name in enumerate(names):
        meta = {} if epochs is None else {"epoch": epochs[k]}
        weights = np.diag((np.arange(5) <= k).astype(float))
        topo.save_snapshot(LayeredGraph([weights], names=["fc"], metadata=meta),
                           folder / name)
    return folder


@pytest.mark.parametrize("names, epochs, last", [
    # name order and time order differ: the step comes first in the names
    (["step_100_epoch_2.safetensors", "step_50_epoch_3.safetensors"], None,
     "step_50_epoch_3.safetensors"),
    # names without numbers, epochs in the files
    (["final.safetensors", "last.safetensors"], [10, 9], "final.safetensors"),
    # numbers in the names that are not the epoch the files say
    (["ckpt_10.safetensors", "ckpt_9.safetensors"], [1, 2], "ckpt_9.safetensors"),
    # lexicographic and numeric order differ
    ([f"ckpt_epoch_{e}.safetensors" for e in (1, 2, 10, 9)], None, "ckpt_epoch_10.safetensors"),
])
def test_info_and_evolution_agree_on_a_folder_s_last_checkpoint(tmp_path, capsys, names,
                                                                 epochs, last):
    folder = _checkpoints(tmp_path / "ckpts", names, epochs)
    connections_of_last = names.index(last) + 1  # the files differ by their connections
    assert main(["evolution", str(folder), "--json", "--no-persistence"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert rows[-1]["connections"] == connections_of_last
    assert main(["info", str(folder), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["metadata"]["snapshot"] == str(folder / last)
    assert document["totals"]["connections"] == connections_of_last
    assert main(["info", str(folder)]) == 0
    assert f"snapshot: {folder / last} (the last of {len(names)} checkpoints by the epochs" \
        in capsys.readouterr().out


def test_info_refuses_a_folder_whose_order_evolution_refuses(tmp_path, capsys):
    folder = _checkpoints(tmp_path / "ckpts", ["model-v9.safetensors", "model-v10.safetensors",
                                               "model.safetensors"])
    assert main(["evolution", str(folder)]) != 0
    evolution_error = capsys.readouterr().err
    assert main(["info", str(folder)]) != 0
    info_error = capsys.readouterr().err
    assert "model.safetensors" in info_error and "place in time is unknown" in info_error
    assert info_error.split(": ", 1)[1] == evolution_error.split(": ", 1)[1]  # after the command


def test_info_chooses_a_folder_s_epoch_by_the_epochs_evolution_reads(tmp_path, capsys):
    # the epochs are in the files, not in their names
    folder = _checkpoints(tmp_path / "ckpts", ["final.safetensors", "last.safetensors"], [10, 9])
    assert main(["info", str(folder), "--epoch", "9", "--json"]) == 0
    meta = json.loads(capsys.readouterr().out)["metadata"]
    assert (meta["snapshot"], meta["snapshot_choice"]) == (str(folder / "last.safetensors"),
                                                           "epoch 9, as asked")
    assert main(["info", str(folder), "--epoch", "3"]) != 0
    assert "no checkpoints of epoch 3 (epochs 9-10)" in capsys.readouterr().err
