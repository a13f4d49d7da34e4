"""Snapshot format version 2 (geometry and wiring) beside version 1 (every MLP, unchanged)."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import networkx as nx
import numpy as np
import pytest

import topo
from topo.errors import GraphStructureError, UnreadableFileError
from topo.graph import LayeredGraph, LayerGeometry
from topo.io.snapshot import safetensors_bytes

DATA = Path(__file__).resolve().parent / "data"
CONV = LayerGeometry.conv


def header_of(path: Path) -> dict[str, str]:
    raw = path.read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    return json.loads(raw[8:8 + n])["__metadata__"]


def resnet_like() -> LayeredGraph:
    rng = np.random.default_rng(3)

    def w(o, i, k=3):
        shape = (o, i, k, k)
        return rng.normal(size=shape) * (rng.random(shape) < 0.5)

    return LayeredGraph(
        [w(4, 3), w(4, 4), w(4, 4), w(8, 4), w(8, 8), w(8, 4, 1), rng.normal(size=(10, 8))],
        names=["stem", "b.conv1", "b.conv2", "p.conv1", "p.conv2", "p.down", "fc"],
        geometry=[CONV((3, 3), stride=(1, 1), padding=(1, 1))] * 5 + [CONV((1, 1)), None],
        reads=[0, 1, 2, 1, 3, 1, 4], writes=[1, 2, 1, 3, 4, 4, 5],
        biases=[None] * 6 + [np.arange(10.0)], input_shape=(3, 8, 8),
        metadata={"epoch": 4, "method": "rigl"})


def test_mlp_snapshot_bytes_are_those_of_topo_0_1(tmp_path):
    # mlp_topo_0_1.safetensors was written by topo 0.1's save_snapshot (before this format
    # had a version 2): explicit zero weights, a float64 layer, a missing bias, input shape
    original = DATA / "mlp_topo_0_1.safetensors"
    graph = topo.load(original)
    again = topo.save_snapshot(graph, tmp_path / "again.safetensors")
    assert again.read_bytes() == original.read_bytes()
    assert header_of(again)["version"] == "1"
    assert set(header_of(again)) == {"format", "version", "shapes", "names", "input_shape",
                                     "metadata"}


def test_resnet_like_round_trip(tmp_path):
    g = resnet_like()
    path = topo.save_snapshot(g, tmp_path / "r.safetensors")
    header = header_of(path)
    assert header["version"] == "2"
    assert json.loads(header["wiring"]) == {"reads": [0, 1, 2, 1, 3, 1, 4],
                                            "writes": [1, 2, 1, 3, 4, 4, 5],
                                            "independent": False}
    geometry = json.loads(header["geometry"])
    assert geometry[0] == {"kind": "conv", "kernel_shape": [3, 3], "groups": 1,
                           "stride": [1, 1], "padding": [1, 1]}
    assert geometry[5] == {"kind": "conv", "kernel_shape": [1, 1], "groups": 1}
    assert geometry[6] == {"kind": "linear", "kernel_shape": [], "groups": 1}
    assert json.loads(header["shapes"])[1] == [4, 36]
    back = topo.load(path)
    assert back == g
    assert back.metadata["epoch"] == 4 and back.metadata["format"] == "topo.snapshot"
    # equal content gives equal bytes
    assert topo.save_snapshot(back, tmp_path / "s.safetensors").read_bytes() == \
        path.read_bytes()


def test_independent_and_grouped_layers_round_trip(tmp_path):
    dw = np.arange(1.0, 19.0).reshape(2, 1, 3, 3)
    mask = np.ones_like(dw)
    dw[0, 0, 1, 1] = 0.0  # a connection at weight 0
    g = LayeredGraph([dw, np.ones((3, 5))], masks=[mask, np.ones((3, 5))],
                     geometry=[CONV((3, 3), groups=2), None], independent=True,
                     names=["dw", "fc"])
    back = topo.load(topo.save_snapshot(g, tmp_path / "i.safetensors"))
    assert back == g and back.is_independent and back.n_connections == [18, 15]
    np.testing.assert_array_equal(back.kernel(0), dw)


def test_a_chain_of_conv_layers_is_version_2(tmp_path):
    g = LayeredGraph([np.ones((2, 1, 2, 2))], geometry=[CONV((2, 2))])
    path = topo.save_snapshot(g, tmp_path / "c.safetensors")
    assert header_of(path)["version"] == "2"
    assert json.loads(header_of(path)["wiring"])["reads"] == [0]
    assert topo.load(path) == g


def _write(tmp_path: Path, header_update: dict[str, str], drop: tuple[str, ...] = ()) -> Path:
    good = topo.save_snapshot(resnet_like(), tmp_path / "good.safetensors")
    header = {k: v for k, v in header_of(good).items() if k not in drop}
    header.update(header_update)
    back = topo.load(good)
    tensors = {}
    for k, w in enumerate(back.layers):
        tensors[f"layer.{k}.indptr"] = w.indptr.astype(np.int64)
        tensors[f"layer.{k}.indices"] = w.indices.astype(np.int32)
        tensors[f"layer.{k}.weight"] = w.data
    path = tmp_path / "bad.safetensors"
    path.write_bytes(safetensors_bytes(tensors, header))
    return path


def test_damaged_version_2_headers_are_refused(tmp_path):
    with pytest.raises(UnreadableFileError, match="bad.safetensors: damaged topo snapshot"):
        topo.load(_write(tmp_path, {}, drop=("geometry",)))
    with pytest.raises(UnreadableFileError, match="unknown layer kind 'pool'"):
        topo.load(_write(tmp_path, {"geometry": json.dumps(
            [{"kind": "pool", "kernel_shape": [2]}] * 7)}))
    with pytest.raises(UnreadableFileError, match="'reads' and 'writes'"):
        topo.load(_write(tmp_path, {"wiring": json.dumps({"reads": 3})}))
    with pytest.raises(GraphStructureError, match="bad.safetensors: layer 'b.conv1' reads "
                                                  "unit set 2 before any layer writes it"):
        topo.load(_write(tmp_path, {"wiring": json.dumps(
            {"reads": [0, 2, 2, 1, 3, 1, 4], "writes": [1, 2, 1, 3, 4, 4, 5]})}))
    with pytest.raises(UnreadableFileError, match="version '3' is not supported"):
        topo.load(_write(tmp_path, {"version": "3"}))


def test_graphml_of_a_resnet_like_network(tmp_path):
    g = resnet_like()
    path = topo.export_graph(g, tmp_path / "r.graphml")
    back = nx.read_graphml(path)
    assert back.number_of_nodes() == g.n_units
    assert back.number_of_edges() == sum(g.n_unit_connections)
    assert "l2 norm" in back.graph["unit_weight"]
    # the stem's edge from input channel 0 to stream channel 0 weighs the L2 norm of its
    # kept kernel elements
    kernel = g.kernel(0)[0, 0]
    assert back["0"]["3"]["weight"] == pytest.approx(float(np.sqrt((kernel ** 2).sum())))


def test_edge_list_of_streams_names_the_sets(tmp_path):
    path = topo.export_graph(resnet_like(), tmp_path / "r.txt", "edgelist")
    text = path.read_text()
    assert "# unit sets: 3-4-4-8-8-10" in text
    assert "# layer 2 b.conv2: reads set 2 (7..10) -> writes set 1 (3..6)" in text
    assert "l2 norm" in text
    rows = np.loadtxt(path, comments="#")
    assert rows.shape == (sum(resnet_like().n_unit_connections), 3)
