"""Convolutional networks in files that carry their own graph: ONNX (nodes) and Keras (the
model config's inbound nodes), written with onnx.helper and h5py (:mod:`cnn_files`).

The expected graph is built directly from the reference weights in PyTorch's layout; the
files store them in their own layouts (Keras: kernels (kh, kw, C_in, C_out), Dense rows in
(H, W, C) order after a channels-last Flatten).
"""

from __future__ import annotations

import subprocess
import sys

import cnn_files
import numpy as np
import pytest
from onnx import helper

import topo
from topo.cli import main


def assert_same_network(g, want):
    assert g.names == want.names
    assert (g.reads, g.writes, g.geometry) == (want.reads, want.writes, want.geometry)
    for k in range(want.n_layers):
        np.testing.assert_allclose(g.layers[k].toarray(), want.layers[k].toarray(), rtol=1e-6)
        assert g.layers[k].nnz == want.layers[k].nnz
        if want.biases[k] is None:
            assert g.biases[k] is None
        else:
            np.testing.assert_allclose(g.biases[k], want.biases[k], rtol=1e-6)


@pytest.mark.parametrize("depthwise", [False, True])
def test_onnx_residual_cnn(tmp_path, depthwise):
    ref = cnn_files.reference(1, depthwise)
    (tmp_path / "cnn.onnx").write_bytes(cnn_files.onnx_bytes(ref))
    g = topo.load(tmp_path / "cnn.onnx")
    assert_same_network(g, cnn_files.expected(ref))
    assert g.input_shape == (2, 4, 4)
    assert g.metadata["reading"]["wiring"].startswith("the ONNX graph's data flow")
    whys = {s["name"]: s["why"] for s in g.metadata["skipped"]}
    assert whys["bn.running_mean"] == ("normalisation of unit set 1 (the output of 'conv_a'): "
                                       "BatchNormalization running_mean; not a layer")


@pytest.mark.parametrize("depthwise", [False, True])
def test_keras2_functional_residual_cnn(tmp_path, depthwise):
    ref = cnn_files.reference(2, depthwise)
    g = topo.load(cnn_files.keras_h5(tmp_path / "cnn.h5", ref))
    assert_same_network(g, cnn_files.expected(ref))
    assert g.input_shape == (2, 4, 4)  # (4, 4, 2) channels last in the config
    assert g.metadata["reading"]["wiring"].startswith(
        "the Keras model config (Functional: each layer's inbound nodes")
    whys = {s["name"]: s["why"] for s in g.metadata["skipped"]}
    assert whys["bn/gamma"] == ("normalisation of unit set 1 (the output of 'conv_a'): "
                                "BatchNormalization gamma; not a layer")


@pytest.mark.parametrize("depthwise", [False, True])
def test_keras3_zip_functional_residual_cnn(tmp_path, depthwise):
    ref = cnn_files.reference(3, depthwise)
    g = topo.load(cnn_files.keras_zip(tmp_path / "cnn.keras", ref))
    assert g.metadata["format"] == "keras"
    assert_same_network(g, cnn_files.expected(ref))


def test_channels_last_dense_rows_are_reordered_by_hand(tmp_path):
    # one element checked against the file's own layout: Dense row (h, w, c) = h*12 + w*3 + c
    ref = cnn_files.reference(4)
    g = topo.load(cnn_files.keras_h5(tmp_path / "cnn.h5", ref))
    kernel = cnn_files.keras_kernels(ref)["dense"]["kernel"]
    h, w, c, o = 2, 1, 2, 3
    assert g.layers[3][o, c * 16 + h * 4 + w] == pytest.approx(kernel[h * 12 + w * 3 + c, o])
    assert g.kernel(3)[o, c, h, w] == pytest.approx(kernel[h * 12 + w * 3 + c, o])


def test_the_three_files_read_as_one_network(tmp_path):
    ref = cnn_files.reference(5)
    (tmp_path / "a.onnx").write_bytes(cnn_files.onnx_bytes(ref))
    a = topo.load(tmp_path / "a.onnx")
    b = topo.load(cnn_files.keras_h5(tmp_path / "b.h5", ref))
    c = topo.load(cnn_files.keras_zip(tmp_path / "c.keras", ref))
    assert a == b == c


def test_onnx_concat_is_read_as_independent_matrices(tmp_path):
    ref = cnn_files.reference(6)
    extra = [helper.make_node("Concat", ["y", "y"], ["z"], axis=1)]
    (tmp_path / "cat.onnx").write_bytes(cnn_files.onnx_bytes(ref, extra_nodes=extra))
    g = topo.load(tmp_path / "cat.onnx")
    assert g.is_independent and g.n_layers == 4
    # the Concat node has no name: it is called by its operator and index (node 10 of 11)
    assert g.metadata["reading"]["wiring"] == (
        "independent matrices: the ONNX graph's wiring cannot be followed: Concat 'Concat_10' "
        "in the data flow: topo's wiring has layers, normalisations, pooling, flatten and "
        "additions only")


def test_keras_concatenate_is_read_as_independent_matrices(tmp_path):
    ref = cnn_files.reference(7)
    g = topo.load(cnn_files.keras_h5(tmp_path / "cat.h5", ref, merge="Concatenate"))
    assert g.is_independent
    assert "Keras layer Concatenate 'add' in the data flow" in g.metadata["reading"]["wiring"]


def test_onnx_channel_padding_is_no_layer(tmp_path):
    # an option A shortcut: y = conv(x) + pad(x) with the channels padded 2 -> 4
    from onnx import TensorProto, numpy_helper

    w = np.arange(36.0, dtype=np.float32).reshape(4, 1, 3, 3)
    nodes = [helper.make_node("Conv", ["x", "W"], ["c"], kernel_shape=[3, 3],
                              pads=[1, 1, 1, 1], group=2),
             helper.make_node("Pad", ["x", "pads"], ["p"]),
             helper.make_node("Add", ["c", "p"], ["y"])]
    graph = helper.make_graph(
        nodes, "a", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(w, "W"),
                     numpy_helper.from_array(np.array([0, 1, 0, 0, 0, 1, 0, 0]), "pads")])
    (tmp_path / "pad.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    g = topo.load(tmp_path / "pad.onnx")
    assert g.names == ["W"] and g.set_sizes == [2, 4] and g.geometry[0].groups == 2
    assert any("a zero-padding shortcut" in n for n in g.metadata["reading"]["notes"])


# start-up, end to end: the command in a fresh interpreter (as tests/train/test_startup.py);
# `make test-slow` runs it, and CI runs both
@pytest.mark.slow
def test_info_on_cnn_keras_and_onnx_does_not_import_torch(tmp_path):
    ref = cnn_files.reference(8)
    (tmp_path / "a.onnx").write_bytes(cnn_files.onnx_bytes(ref))
    files = [tmp_path / "a.onnx", cnn_files.keras_h5(tmp_path / "b.h5", ref),
             cnn_files.keras_zip(tmp_path / "c.keras", ref)]
    code = ("import sys; from topo.cli import main\n"
            "for p in sys.argv[1:]:\n"
            "    assert main(['info', p]) == 0, p\n"
            "print('torch imported' if 'torch' in sys.modules else 'no torch')")
    proc = subprocess.run([sys.executable, "-c", code, *map(str, files)],
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip().splitlines()[-1] == "no torch"
    assert "wiring: residual streams: unit set(s) 1" in proc.stdout
    assert proc.stderr == ""


def test_info_table_of_an_onnx_cnn(tmp_path, capsys):
    ref = cnn_files.reference(9)
    (tmp_path / "a.onnx").write_bytes(cnn_files.onnx_bytes(ref))
    assert main(["info", str(tmp_path / "a.onnx")]) == 0
    out = capsys.readouterr().out
    dense = next(line for line in out.splitlines() if line.lstrip().startswith("dense "))
    assert dense.split()[1:3] == ["flatten", "4x4"]
    assert "normalisation of unit set 1 (the output of 'conv_a')" in out
