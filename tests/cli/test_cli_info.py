"""`topo info` and `topo export`: output conventions and error behaviour."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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


def test_export_to_bad_format_writes_nothing(snapshot, tmp_path):
    with pytest.raises(SystemExit):
        main(["export", str(snapshot), "--format", "dot", "-o", str(tmp_path / "x.dot")])
    assert not (tmp_path / "x.dot").exists()


def test_info_on_safetensors_does_not_import_torch(snapshot):
    code = ("import sys; from topo.cli import main; main(['info', sys.argv[1]]); "
            "print('torch imported' if 'torch' in sys.modules else 'no torch')")
    proc = subprocess.run([sys.executable, "-c", code, str(snapshot)],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "no torch"


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
    assert out["skipped"][0]["why"] == ("normalisation of unit set 1 (written by conv): "
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
