"""`topo info` on convolutional and residual networks: kernels, units, both connection counts."""

from __future__ import annotations

import json

import numpy as np

import topo
from topo.cli import main
from topo.graph import LayeredGraph, LayerGeometry

CONV = LayerGeometry.conv


def lenet_like(tmp_path):
    # conv 1 -> 2 (3x3, 9 of 18 kept), conv 2 -> 2 (1x1, dense), flatten (2, 2, 2) -> 3
    c1 = np.zeros((2, 1, 3, 3))
    c1[0, 0, 0, :] = 1.0      # 3 kept: channel 0 <- input
    c1[1, 0, :, :2] = 2.0     # 6 kept: channel 1 <- input
    c2 = np.ones((2, 2, 1, 1))
    fc = np.zeros((3, 2, 2, 2))
    fc[:, 0] = 1.0            # the classifier reads channel 0 only: 3 x 4 elements
    g = LayeredGraph([c1, c2, fc], names=["conv1", "conv2", "fc"],
                     geometry=[CONV((3, 3)), CONV((1, 1)), LayerGeometry.flatten((2, 2))],
                     input_shape=(1, 4, 4))
    return topo.save_snapshot(g, tmp_path / "lenet.safetensors")


def test_info_table_shows_kernels_units_and_both_counts(tmp_path, capsys):
    assert main(["info", str(lenet_like(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "wiring: chain" in out
    header = next(line for line in out.splitlines() if line.lstrip().startswith("name"))
    for column in ("kind", "kernel", "n_in", "n_out", "positions", "connections", "possible",
                   "unit_connections"):
        assert column in header.split()
    conv1 = next(line for line in out.splitlines() if line.lstrip().startswith("conv1"))
    # conv 3x3, 1 input unit, 2 output units, 9 positions, 9 elements of 18, 2 unit pairs
    assert conv1.split()[:13] == ["conv1", "conv", "3x3", "1", "0", "1", "1", "2", "9", "9",
                                  "18", "0.5", "2"]
    fc = next(line for line in out.splitlines() if line.lstrip().startswith("fc "))
    assert fc.split()[1:3] == ["flatten", "2x2"] and fc.split()[9:13] == ["12", "24", "0.5",
                                                                           "3"]
    # 9 + 4 + 12 = 25 elements of 18 + 4 + 24 = 46; unit pairs 2 + 4 + 3 = 9
    assert "total: 25 connections of 46 possible" in out
    assert "9 unit-graph connections" in out


def test_info_json_of_streams(tmp_path, capsys):
    g = LayeredGraph([np.ones((2, 3)), np.ones((2, 2)), np.ones((1, 2))],
                     reads=[0, 1, 1], writes=[1, 1, 2], names=["a", "res", "out"])
    path = topo.save_snapshot(g, tmp_path / "r.safetensors")
    assert main(["info", str(path), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["wiring"]["reads"] == [0, 1, 1] and doc["wiring"]["writes"] == [1, 1, 2]
    assert doc["wiring"]["set_sizes"] == [3, 2, 1]
    assert doc["wiring"]["kind"].startswith("residual streams: unit set(s) 1")
    assert doc["totals"]["unit_connections"] == 6 + 4 + 2
    assert [layer["reads"] for layer in doc["layers"]] == [0, 1, 1]


def test_info_of_independent_matrices_says_so(tmp_path, capsys):
    g = LayeredGraph([np.ones((2, 3)), np.ones((4, 5))], independent=True)
    assert main(["info", str(topo.save_snapshot(g, tmp_path / "i.safetensors"))]) == 0
    out = capsys.readouterr().out
    assert "wiring: independent matrices (the wiring of this model is unknown" in out
    assert "unit sets: 3-2-5-4" in out


def test_export_counts_unit_graph_edges(tmp_path, capsys):
    out = tmp_path / "g.graphml"
    assert main(["export", str(lenet_like(tmp_path)), "-o", str(out)]) == 0
    # 1 + 2 + 2 + 3 units; unit pairs 2 + 4 + 3 (not the 25 kernel elements)
    assert "(graphml: 8 nodes, 9 edges)" in capsys.readouterr().out
