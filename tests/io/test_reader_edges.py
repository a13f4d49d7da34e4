"""Less common layouts and damaged details of each reader, one behaviour per test."""

from __future__ import annotations

import io
import json
import struct
import zipfile
from collections import OrderedDict

import h5py
import mlp_files
import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy_safetensors

import topo
from topo.errors import GraphStructureError, UnreadableFileError
from topo.io.pipeline import IN_OUT, Extraction, LayerCandidate, name_template, resolve_chain

W0 = np.arange(1, 13, dtype=np.float32).reshape(4, 3)  # (out, in)
W1 = np.arange(1, 9, dtype=np.float32).reshape(2, 4)


# ------------------------------------------------------------------------------ pipeline
def test_name_template():
    assert name_template("net.10") == ("net.#", (10,))
    assert name_template("block2.fc1") == ("block#.fc#", (2, 1))
    assert name_template("head") == ("head", ())


def test_graph_order_that_does_not_chain_is_refused(tmp_path):
    ex = Extraction(tmp_path / "f", "keras-hdf5",
                    [LayerCandidate("a", W1.T, IN_OUT), LayerCandidate("b", W0.T, IN_OUT)],
                    order="graph", orientation=IN_OUT, firm=True)
    with pytest.raises(GraphStructureError, match="do not chain in the file's order: layer "
                                                  "'b' takes 3 inputs but layer 'a' gives 2"):
        resolve_chain(ex)


def test_a_bias_that_fits_no_orientation(tmp_path):
    ex = Extraction(tmp_path / "f", "numpy-npz",
                    [LayerCandidate("w1", W0, None, None, np.zeros(5))], orientation=None)
    with pytest.raises(GraphStructureError, match="'w1': its bias has 5 entries"):
        resolve_chain(ex)


def test_empty_extraction_and_too_many_orders(tmp_path):
    with pytest.raises(GraphStructureError, match="no fully-connected layers"):
        resolve_chain(Extraction(tmp_path / "f", "x", []))
    # eleven square layers and one that fits nowhere: every order fails late
    hopeless = [LayerCandidate(f"layer_{c}", np.eye(3)) for c in "abcdefghijk"]
    hopeless.append(LayerCandidate("odd", np.eye(5)))
    with pytest.raises(GraphStructureError, match="too many orders"):
        resolve_chain(Extraction(tmp_path / "f", "safetensors", hopeless, order="none"))
    square = [LayerCandidate(f"layer_{c}", np.eye(3)) for c in "abcdefghijkl"]
    res = resolve_chain(Extraction(tmp_path / "f", "pytorch", square, order="module"))
    assert res.order == list(range(12)) and "defined" in res.how_order


def test_names_that_contradict_every_chain(tmp_path):
    torch.save({"fc1.weight": torch.ones(4, 3), "fc2.weight": torch.ones(5, 5)},
               tmp_path / "bad.pt")
    with pytest.raises(GraphStructureError, match="in the order their numbers give: layer "
                                                  "'fc2' takes"):
        topo.load(tmp_path / "bad.pt")


def test_input_shape_kept_only_when_it_fits(tmp_path):
    from topo.io.pipeline import build_graph

    ex = Extraction(tmp_path / "f", "x", [LayerCandidate("a", W0)], input_shape=(3, 1))
    assert build_graph(ex).input_shape == (3, 1)
    ex.input_shape = (2, 2)
    assert build_graph(ex).input_shape is None


def test_sparse_weights_with_a_mask_elsewhere(tmp_path):
    import scipy.sparse as sp

    from topo.io.pipeline import build_graph

    ex = Extraction(tmp_path / "f", "x", [LayerCandidate("a", sp.csr_matrix(W0)),
                                           LayerCandidate("b", W1, mask=W1 > 4)])
    g = build_graph(ex)
    assert g.n_connections == [12, 4]


# ------------------------------------------------------------------------ PyTorch rules
class WithEmbedding(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 3)
        self.fc = torch.nn.Linear(3, 2)


class Box:
    def __init__(self):
        self.state_dict = OrderedDict([("fc.weight", W0), ("fc.note", "hello")])


def test_layer_norm_embedding_and_bare_linear(tmp_path):
    torch.save({"ln.weight": torch.ones(3), "ln.bias": torch.zeros(3),
                "weight": torch.from_numpy(W0), "bias": torch.zeros(4),
                "pos": torch.ones(2, 2), "lone.bias": torch.ones(2), "buf": torch.ones(3)},
               tmp_path / "mix.pt")
    g = topo.load(tmp_path / "mix.pt")
    assert g.names == ["weight"]
    whys = {s["name"]: s["why"] for s in g.metadata["skipped"]}
    assert whys["ln.weight"].startswith("normalisation layer (1-D weight")
    assert whys["pos"].startswith("a 2-D tensor not named like a layer weight")
    assert whys["lone.bias"] == "a bias whose module has no weight"
    assert whys["buf"] == "a buffer, not a layer weight"

    torch.save(WithEmbedding(), tmp_path / "emb.pt")
    g = topo.load(tmp_path / "emb.pt")
    assert g.names == ["fc"]
    assert "embedding table" in g.metadata["skipped"][0]["why"]


def test_prune_without_its_mask_and_pruned_bias(tmp_path):
    torch.save({"fc.weight_orig": torch.ones(2, 3)}, tmp_path / "orig.pt")
    with pytest.raises(UnreadableFileError, match="no matching 'weight_mask'"):
        topo.load(tmp_path / "orig.pt")
    torch.save({"fc.weight": torch.ones(2, 3), "fc.bias_orig": torch.tensor([1.0, 2.0]),
                "fc.bias_mask": torch.tensor([1.0, 0.0])}, tmp_path / "bias.pt")
    np.testing.assert_array_equal(topo.load(tmp_path / "bias.pt").biases[0], [1.0, 0.0])


def test_damaged_parametrizations(tmp_path):
    base = "fc.parametrizations.weight"
    torch.save({f"{base}.original0": torch.ones(2, 1)}, tmp_path / "half.pt")
    with pytest.raises(UnreadableFileError, match="original0 without original1"):
        topo.load(tmp_path / "half.pt")
    torch.save({f"{base}.original0": torch.ones(3, 2), f"{base}.original1": torch.ones(2, 3, 1)},
               tmp_path / "g.pt")
    with pytest.raises(UnreadableFileError, match="does not fit v"):
        topo.load(tmp_path / "g.pt")
    torch.save({f"{base}.original": torch.ones(2, 3), f"{base}.0._u": torch.zeros(2),
                f"{base}.0._v": torch.zeros(3)}, tmp_path / "sn.pt")
    with pytest.raises(UnreadableFileError, match="singular value estimate 0"):
        topo.load(tmp_path / "sn.pt")
    torch.save({f"{base}.original": torch.ones(2, 3), f"{base}.0.mask": torch.ones(3, 2)},
               tmp_path / "mask.pt")
    with pytest.raises(GraphStructureError, match="mask of 'fc' has shape"):
        topo.load(tmp_path / "mask.pt")


def test_weight_norm_over_all_dimensions_and_a_parametrized_bias(tmp_path):
    v = torch.tensor([[3.0, 0.0], [0.0, 4.0]])
    torch.save({"fc.parametrizations.weight.original0": torch.tensor(10.0),
                "fc.parametrizations.weight.original1": v,
                "fc.parametrizations.bias.original": torch.tensor([1.0, 2.0])},
               tmp_path / "wn.pt")
    g = topo.load(tmp_path / "wn.pt")
    np.testing.assert_allclose(g.layers[0].toarray(), [[6.0, 0.0], [0.0, 8.0]])
    np.testing.assert_array_equal(g.biases[0], [1.0, 2.0])


def test_named_arrays_pair_biases_and_masks_by_name(tmp_path):
    np.savez(tmp_path / "m.npz", fc1=W0.T, fc1_bias=np.zeros(4), fc1_mask=(W0.T > 6),
             fc2=W1.T, stray=np.ones(7), odd_mask=np.ones((9, 9)), conv=np.ones((2, 2, 2)))
    g = topo.load(tmp_path / "m.npz")
    assert g.n_connections == [6, 8]
    whys = {s["name"]: s["why"] for s in g.metadata["skipped"]}
    assert whys["stray"] == "a 1-D array that pairs with no weight"
    assert whys["odd_mask"] == "a mask that pairs with no weight of its shape"
    assert whys["conv"].startswith("an array of more than two dimensions")
    np.savez(tmp_path / "none.npz", b=np.ones(3))
    with pytest.raises(UnreadableFileError, match="no 2-D weight arrays"):
        topo.load(tmp_path / "none.npz")


def test_list_of_tensors_with_biases_after_their_weights(tmp_path):
    torch.save([torch.from_numpy(W0), torch.zeros(4), torch.from_numpy(W1), torch.ones(2)],
               tmp_path / "list.pt")
    g = topo.load(tmp_path / "list.pt")
    assert g.widths == [3, 4, 2]
    np.testing.assert_array_equal(g.biases[1], [1.0, 1.0])
    torch.save([1, 2, 3], tmp_path / "ints.pt")
    with pytest.raises(UnreadableFileError, match="holds no network"):
        topo.load(tmp_path / "ints.pt")


def test_keys_into_lists_and_modules(tmp_path):
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Sequential(
        torch.nn.Linear(4, 2)))
    torch.save({"models": [model.state_dict()]}, tmp_path / "list.pt")
    assert topo.load(tmp_path / "list.pt", key="models/0").widths == [3, 4, 2]
    torch.save(model, tmp_path / "whole.pt")
    assert topo.load(tmp_path / "whole.pt", key="1").widths == [4, 2]
    with pytest.raises(UnreadableFileError, match="no entry '7'.*entries: 0, 1"):
        topo.load(tmp_path / "whole.pt", key="7")


def test_checkpoint_dict_without_a_network(tmp_path):
    torch.save({"epoch": 1, "config": {"lr": 0.1}}, tmp_path / "cfg.pt")
    with pytest.raises(UnreadableFileError, match="holds no network.*entries: epoch, config"):
        topo.load(tmp_path / "cfg.pt")


def test_object_holding_a_state_dict_and_skipped_non_tensors(tmp_path):
    import pickle

    (tmp_path / "box.pkl").write_bytes(pickle.dumps(Box()))
    g = topo.load(tmp_path / "box.pkl")
    assert g.widths == [3, 4]
    assert {"name": "fc.note", "shape": None, "why": "not a tensor"} in g.metadata["skipped"]


# ---------------------------------------------------------------------------- safetensors
def test_bfloat16_safetensors_without_torch(tmp_path):
    from safetensors.torch import save_file

    save_file({"fc.weight": torch.from_numpy(W0).bfloat16(),
               "fc.bias": torch.zeros(4, dtype=torch.bfloat16)}, str(tmp_path / "bf.safetensors"))
    g = topo.load(tmp_path / "bf.safetensors")
    np.testing.assert_array_equal(g.layers[0].toarray(), W0)  # small integers are exact
    save_file({"x.weight": torch.ones(2, 2, dtype=torch.float8_e4m3fn)},
              str(tmp_path / "f8.safetensors"))
    with pytest.raises(UnreadableFileError, match="dtype F8_E4M3"):
        topo.load(tmp_path / "f8.safetensors")


@pytest.mark.parametrize("header, message", [
    (b'{"a": 1}', "damaged safetensors header .entry 'a'"),
    (json.dumps({"a": {"dtype": "F32"}}).encode(), "damaged safetensors header .entry 'a'"),
    (json.dumps({"a": {"dtype": "C64", "shape": [1], "data_offsets": [0, 8]}}).encode(),
     "dtype 'C64'"),
])
def test_damaged_safetensors_headers(tmp_path, header, message):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header)
    with pytest.raises(UnreadableFileError, match=message):
        topo.load(path)


def test_safetensors_data_damaged_after_the_header(tmp_path, monkeypatch):
    save_numpy_safetensors({"fc.weight": W0}, str(tmp_path / "m.safetensors"))
    from safetensors import SafetensorError

    import topo.io.safetensors_file as st

    class Broken:
        def __init__(self, *a, **k):
            raise SafetensorError("boom")

    monkeypatch.setattr("safetensors.safe_open", Broken)
    with pytest.raises(UnreadableFileError, match="damaged safetensors file.*boom"):
        st.read_tensors(tmp_path / "m.safetensors", st.read_header(tmp_path / "m.safetensors"))


# ---------------------------------------------------------------------------------- Keras
def test_keras_layer_kinds_by_weight_names(tmp_path):
    with h5py.File(tmp_path / "w.h5", "w") as f:
        f.attrs["layer_names"] = "dense_a"  # a single name stored as a string
        g = f.create_group("dense_a")
        g.create_dataset("dense_a/kernel:0", data=W0.T)
        g.attrs["weight_names"] = [b"dense_a/kernel:0"]
    assert topo.load(tmp_path / "w.h5").widths == [3, 4]
    kinds = {"rnn": {"kernel": np.ones((3, 8)), "recurrent_kernel": np.ones((2, 8))},
             "emb": {"embeddings": np.ones((10, 3))},
             "conv": {"kernel": np.ones((3, 3, 1, 2))},
             "odd": {"scale": np.ones(3)}}
    with h5py.File(tmp_path / "k.h5", "w") as f:
        names = ["rnn", "emb", "conv", "odd", "dense"]
        f.attrs["layer_names"] = np.array([n.encode() for n in names])
        kinds["dense"] = {"kernel": W0.T, "bias": np.zeros(4), "extra": np.ones(2)}
        for name in names:
            g = f.create_group(name)
            g.attrs["weight_names"] = np.array([f"{name}/{leaf}:0".encode()
                                                for leaf in kinds[name]])
            for leaf, arr in kinds[name].items():
                g.create_dataset(f"{name}/{leaf}:0", data=arr)
        f.attrs["model_config"] = "{not json"
    g = topo.load(tmp_path / "k.h5")
    # a weights-only file with a conv: no config says how the layers are wired
    assert g.is_independent and g.names == ["conv", "dense"]
    assert g.set_sizes == [1, 2, 3, 4]
    assert g.metadata["reading"]["wiring"].startswith("independent matrices: the file has no "
                                                      "model config")
    whys = {s["name"]: s["why"] for s in g.metadata["skipped"]}
    assert whys["rnn/kernel"].startswith("recurrent layer")
    assert whys["emb/embeddings"].startswith("embedding table")
    assert whys["odd/scale"].startswith("not a layer weight")
    assert whys["dense/extra"].startswith("a variable of dense")
    dense = topo.load(tmp_path / "k.h5", dense_only=True)
    assert dense.widths == [3, 4]
    whys = {s["name"]: s["why"] for s in dense.metadata["skipped"]}
    assert whys["conv"].startswith("convolution with kernel (2, 1, 3, 3): not read")


def test_keras_custom_class_and_uninterpretable_layers(tmp_path):
    ws, bs = [W0, W1], [np.zeros(4, np.float32), np.zeros(2, np.float32)]
    path = mlp_files.keras_h5(tmp_path / "c.h5", ws, bs, classes=["MaskedDense", "Dense"])
    g = topo.load(path)
    assert any("class MaskedDense" in n for n in g.metadata["reading"]["notes"])
    with h5py.File(tmp_path / "u.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"weird"])
        g = f.create_group("weird")
        g.create_dataset("weird/table:0", data=np.ones((2, 2)))
        g.attrs["weight_names"] = np.array([b"weird/table:0"])
    with pytest.raises(UnreadableFileError, match="'weird' .* cannot interpret"):
        topo.load(tmp_path / "u.h5")
    with h5py.File(tmp_path / "missing.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"gone"])
    with pytest.raises(UnreadableFileError, match="'gone' has no weight group"):
        topo.load(tmp_path / "missing.h5")
    with h5py.File(tmp_path / "nowt.h5", "w") as f:
        f.attrs["layer_names"] = np.array([b"d"])
        f.create_group("d").attrs["weight_names"] = np.array([b"d/kernel:0"])
    with pytest.raises(UnreadableFileError, match="weight 'd/kernel:0' of layer 'd' is missing"):
        topo.load(tmp_path / "nowt.h5")


def keras3_zip(path, layers, weights, config_extra=None):
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for group, arrays in weights.items():
            v = f.create_group(group)
            for k, a in enumerate(arrays):
                v.create_dataset(str(k), data=a)
    config = {"class_name": "Functional", "config": {"name": "m", "layers": layers}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("config.json", json.dumps(config) if config_extra is None else config_extra)
        zf.writestr("model.weights.h5", buf.getvalue())
    return path


def test_keras3_zip_nested_models_and_layer_kinds(tmp_path):
    inner = {"class_name": "Sequential", "config": {"name": "inner", "layers": [
        {"class_name": "Dense", "config": {"name": "d2"}}]}}
    layers = [{"class_name": "BatchNormalization", "config": {"name": "bn"}},
              {"class_name": "Dropout", "config": {"name": "drop"}},
              {"class_name": "Dense", "config": {"name": "d1"}},
              {"class_name": "Activation", "config": {"name": "act"}},
              {"class_name": "Rescaling", "config": {"name": "scale"}},
              inner]
    weights = {"layers/batch_normalization/vars": [np.ones(3)] * 4,
               "layers/dense/vars": [W0.T, np.zeros(4)],
               "layers/activation": [],
               "layers/rescaling/vars": [np.ones(1)],
               "layers/sequential/layers/dense/vars": [W1.T, np.zeros(2)]}
    g = topo.load(keras3_zip(tmp_path / "n.keras", layers, weights))
    assert g.names == ["d1", "d2"] and g.widths == [3, 4, 2]
    names = [s["name"] for s in g.metadata["skipped"]]
    assert "bn/moving_variance" in names and "scale/0" in names
    bad = keras3_zip(tmp_path / "bad.keras", [{"class_name": "Mystery",
                                               "config": {"name": "m"}}],
                     {"layers/mystery/vars": [np.ones((2, 2))]})
    with pytest.raises(UnreadableFileError, match="'m' .Mystery. has variables"):
        topo.load(bad)
    emb = keras3_zip(tmp_path / "emb.keras", [{"class_name": "Embedding",
                                               "config": {"name": "e"}},
                                              {"class_name": "Dense", "config": {"name": "d"}}],
                     {"layers/embedding/vars": [np.ones((9, 3))],
                      "layers/dense/vars": [W0.T]})
    assert topo.load(emb).names == ["d"]
    with pytest.raises(UnreadableFileError, match="damaged config.json"):
        topo.load(keras3_zip(tmp_path / "cfg.keras", [], {}, config_extra="{oops"))
    with pytest.raises(UnreadableFileError, match="without a model's layers"):
        topo.load(keras3_zip(tmp_path / "empty.keras", [], {"optimizer/vars": [np.ones(1)]}))


def test_keras3_zip_with_a_damaged_weights_file(tmp_path):
    with zipfile.ZipFile(tmp_path / "d.keras", "w") as zf:
        zf.writestr("config.json", "{}")
        zf.writestr("model.weights.h5", b"\x89HDF\r\n\x1a\n" + b"\0" * 50)
    with pytest.raises(UnreadableFileError, match="damaged model.weights.h5"):
        topo.load(tmp_path / "d.keras")


# ----------------------------------------------------------------------------------- ONNX
def onnx_graph(tmp_path, nodes, inits, name="g.onnx", external=False):
    from onnx import TensorProto, helper, numpy_helper

    tensors = [numpy_helper.from_array(np.asarray(a, np.float32), n) for n, a in inits.items()]
    if external:
        tensors[0].data_location = TensorProto.EXTERNAL
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2])], initializer=tensors)
    path = tmp_path / name
    path.write_bytes(helper.make_model(graph).SerializeToString())
    return path


def test_onnx_refusals(tmp_path):
    from onnx import helper

    cases = [
        ([helper.make_node("Gemm", ["x", "W"], ["y"], transA=1)], {"W": W0}, "transA=1"),
        ([helper.make_node("Gemm", ["W", "x"], ["y"])], {"W": W0, "x": W0}, "two constants"),
        ([helper.make_node("Gemm", ["x", "W", "c"], ["y"], transB=1)], {"W": W0},
         "bias from the data flow"),
        ([helper.make_node("Gemm", ["x", "W", "C"], ["y"], transB=1)],
         {"W": W0, "C": np.ones(3)}, "bias 'C' has shape"),
        ([helper.make_node("Gemm", ["x", "W"], ["y"])], {"W": np.ones((2, 2, 2))}, "not 2-D"),
        ([helper.make_node("MatMul", ["W", "x"], ["y"])], {"W": W0}, "first operand"),
        ([helper.make_node("MatMul", ["x", "W"], ["y"])], {"W": np.ones((2, 2, 2))},
         "not 2-D"),
        ([helper.make_node("Gemm", ["x"], ["y"])], {}, "lacks its inputs"),
    ]
    for k, (nodes, inits, message) in enumerate(cases):
        with pytest.raises((UnreadableFileError, GraphStructureError), match=message):
            topo.load(onnx_graph(tmp_path, nodes, inits, name=f"c{k}.onnx"))
    ext = onnx_graph(tmp_path, [helper.make_node("Gemm", ["x", "W"], ["y"])], {"W": W0.T},
                     name="ext.onnx", external=True)
    with pytest.raises(UnreadableFileError, match="external files"):
        topo.load(ext)


def test_onnx_details(tmp_path):
    from onnx import helper

    const = helper.make_node("Constant", [], ["W2"], value=helper.make_tensor(
        "W2", 1, [4, 2], W1.T.flatten().tolist()))
    nodes = [helper.make_node("Gemm", ["x", "W", "c"], ["h"], transB=1),
             helper.make_node("BatchNormalization", ["h", "s", "b", "m", "v"], ["n"]),
             helper.make_node("Sigmoid", ["n"], ["a"]), const,
             helper.make_node("MatMul", ["a", "W2"], ["y"]),
             helper.make_node("MatMul", ["y", "dyn"], ["z"])]
    inits = {"W": W0, "c": [0.5], "s": np.ones(4), "b": np.ones(4), "m": np.ones(4),
             "v": np.ones(4)}
    g = topo.load(onnx_graph(tmp_path, nodes, inits))
    assert g.widths == [3, 4, 2]
    np.testing.assert_array_equal(g.biases[0], [0.5] * 4)  # a scalar bias broadcast
    assert g.names == ["W", "W2"]
    assert any(s["why"].startswith("normalisation layer (ONNX BatchNormalization")
               for s in g.metadata["skipped"])
    (tmp_path / "empty.onnx").write_bytes(b"\x08\x07")
    with pytest.raises(UnreadableFileError, match="without a graph"):
        topo.load(tmp_path / "empty.onnx")


def test_onnx_conv_between_layers_breaks_the_chain(tmp_path):
    from onnx import helper

    nodes = [helper.make_node("Gemm", ["x", "W"], ["h"], transB=1),
             helper.make_node("Conv", ["h", "K"], ["c"]),
             helper.make_node("Gemm", ["c", "W2"], ["y"], transB=1)]
    path = onnx_graph(tmp_path, nodes, {"W": W0, "K": np.ones((1, 1, 1, 1)), "W2": W1})
    with pytest.raises(GraphStructureError, match="conv 'K' has kernel \\(1, 1, 1, 1\\) "
                                                  "with groups=1, so it reads 1 channels, but "
                                                  "the unit set it reads has 4"):
        topo.load(path)
    with pytest.raises(GraphStructureError, match="'W2' does not come from 'W'.*branch"):
        topo.load(path, dense_only=True)


# ---------------------------------------------------------------------------------- numpy
def test_npz_edge_cases(tmp_path):
    import scipy.sparse as sp

    sp.save_npz(tmp_path / "weight_l0.npz", sp.csr_matrix(np.eye(2)))
    with pytest.raises(UnreadableFileError, match="lone scipy.sparse .npz"):
        topo.load(tmp_path / "weight_l0.npz")
    with zipfile.ZipFile(tmp_path / "noarrays.npz", "w") as zf:
        zf.writestr("a.npy", b"")
    with pytest.raises(UnreadableFileError, match="damaged array 'a'"):
        topo.load(tmp_path / "noarrays.npz")
    buf = io.BytesIO()
    np.save(buf, np.asfortranarray(W0.T))
    with zipfile.ZipFile(tmp_path / "fortran.npz", "w") as zf:
        zf.writestr("w1.npy", buf.getvalue())
        zf.writestr("w2.npy", _npy(W1.T))
    np.testing.assert_array_equal(topo.load(tmp_path / "fortran.npz").layers[0].toarray(), W0)
    (tmp_path / "lone.npy").write_bytes(_npy(W0))
    with pytest.raises(UnreadableFileError, match="a lone .npy array"):
        topo.load(tmp_path / "lone.npy")


def _npy(arr) -> bytes:
    buf = io.BytesIO()
    np.save(buf, arr)
    return buf.getvalue()


def test_npy_folder_mask_problems(tmp_path):
    folder = mlp_files.npy_folder(tmp_path / "a", [W0, W1])
    (folder / "masks").mkdir()
    np.save(folder / "masks" / "layer9.npy", np.ones((3, 4)))
    with pytest.raises(UnreadableFileError, match="layer9.npy: a mask without a weight"):
        topo.load(folder)
    (folder / "masks" / "layer9.npy").unlink()
    np.save(folder / "masks" / "layer0.npy", np.ones((2, 2)))
    with pytest.raises(UnreadableFileError, match="does not match the weight 'layer0'"):
        topo.load(folder)
    (folder / "masks" / "layer0.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(UnreadableFileError, match="layer0.npy: damaged .npy"):
        topo.load(folder)


# --------------------------------------------------------------------------- detection
def test_detection_messages(tmp_path):
    with zipfile.ZipFile(tmp_path / "other.zip", "w") as zf:
        zf.writestr("readme.txt", "hi")
    with pytest.raises(UnreadableFileError, match="neither a PyTorch file.*readme.txt"):
        topo.load(tmp_path / "other.zip")
    (tmp_path / "junk.bin").write_bytes(b"\x1f\x8b" + b"\0" * 30)
    with pytest.raises(UnreadableFileError, match="junk.bin: damaged gzip"):
        topo.load(tmp_path / "junk.bin")
    import gzip

    (tmp_path / "arr.gz").write_bytes(gzip.compress(_npy(W0)))
    with pytest.raises(UnreadableFileError, match="gzip of a numpy array"):
        topo.load(tmp_path / "arr.gz")
    (tmp_path / "text.gz").write_bytes(gzip.compress(b"hello"))
    with pytest.raises(UnreadableFileError, match="gzip of unknown content"):
        topo.load(tmp_path / "text.gz")
    (tmp_path / "h5.gz").write_bytes(gzip.compress(b"\x89HDF\r\n\x1a\n"))
    with pytest.raises(UnreadableFileError, match="gzip of an HDF5 file"):
        topo.load(tmp_path / "h5.gz")
    (tmp_path / "tiny.safetensors").write_bytes(b"\x02\0\0\0\0\0\0\0{}")
    with pytest.raises(UnreadableFileError, match="no 2-D weight arrays"):
        topo.load(tmp_path / "tiny.safetensors")


# ----------------------------------------------------------------- finding the network
def test_half_precision_and_tuples_through_torch_load(tmp_path):
    torch.save(({"fc.weight": torch.from_numpy(W0).half()},), tmp_path / "tuple.pt")
    g = topo.load(tmp_path / "tuple.pt", key="0")
    np.testing.assert_array_equal(g.layers[0].toarray(), W0)


def test_the_only_entry_holding_a_network_and_another_one_listed(tmp_path):
    a = torch.nn.Linear(3, 2).state_dict()
    torch.save({"generator": a, "info": {"epoch": 2}}, tmp_path / "one.pt")
    g = topo.load(tmp_path / "one.pt")
    assert g.metadata["key"] == "generator"
    torch.save({"model": a, "teacher": a}, tmp_path / "two.pt")
    g = topo.load(tmp_path / "two.pt")
    assert {"name": "teacher", "shape": None,
            "why": "another entry holding tensors (read it with --key teacher)"} in \
        g.metadata["skipped"]


def test_a_module_inside_a_checkpoint_dict(tmp_path):
    torch.save({"model": torch.nn.Sequential(torch.nn.Linear(3, 2)), "epoch": np.int64(4),
                "note": "x" * 300, "acc": np.array([0.5])}, tmp_path / "m.pt")
    g = topo.load(tmp_path / "m.pt")
    assert g.widths == [3, 2]
    assert g.metadata["checkpoint"] == {"epoch": 4, "acc": 0.5}
