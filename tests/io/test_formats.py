"""Every format of issue 10 read right: the failing cases as regression tests, then each
PyTorch variant, Keras, ONNX and numpy layout, against the network that was written."""

from __future__ import annotations

import gzip
import pickle
from collections import OrderedDict

import mlp_files
import numpy as np
import pytest
import torch
from safetensors.numpy import save_file as save_numpy_safetensors

import topo
from topo.errors import GraphStructureError, UnreadableFileError


def reference(widths, seed=0, bias=True):
    rng = np.random.default_rng(seed)
    ws = [rng.normal(size=(b, a)).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]
    bs = [rng.normal(size=b).astype(np.float32) if bias else None for b in widths[1:]]
    return ws, bs


def assert_graph(g, ws, bs=None, masks=None):
    assert g.widths == [ws[0].shape[1]] + [w.shape[0] for w in ws]
    for k, w in enumerate(ws):
        structure = (w != 0) if masks is None or masks[k] is None else (masks[k] != 0)
        np.testing.assert_array_equal(g.masks()[k].toarray() != 0, structure)
        np.testing.assert_allclose(g.layers[k].toarray(), np.where(structure, w, 0),
                                   rtol=1e-6, atol=1e-7)
        if bs is not None and bs[k] is not None:
            np.testing.assert_allclose(g.biases[k], bs[k], rtol=1e-6)


def sequential(widths, seed=0):
    torch.manual_seed(seed)
    mods = []
    for a, b in zip(widths[:-1], widths[1:]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*mods[:-1])


def weights_of(model):
    lin = [m for m in model.modules() if isinstance(m, torch.nn.Linear)]
    return ([m.weight.detach().numpy().copy() for m in lin],
            [m.bias.detach().numpy().copy() for m in lin])


# ------------------------------------------------------------- the failing cases (issue 10)
@pytest.mark.xdist_group("torch-dynamo")   # torch.optim imports torch._dynamo
def test_checkpoint_dict_with_a_metric_tensor_beside_the_state_dict(tmp_path):
    model = sequential([6, 4, 3])
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model(torch.ones(1, 6)).sum().backward()
    opt.step()
    torch.save({"epoch": 5, "state_dict": model.state_dict(), "optimizer": opt.state_dict(),
                "best_acc1": torch.tensor(71.3)}, tmp_path / "ckpt.pth.tar")
    g = topo.load(tmp_path / "ckpt.pth.tar")
    assert_graph(g, *weights_of(model))
    assert g.metadata["epoch"] == 5
    assert g.metadata["checkpoint"]["best_acc1"] == pytest.approx(71.3, rel=1e-6)
    assert {"name": "optimizer", "shape": None, "why": "optimizer state"} in \
        g.metadata["skipped"]


def test_sparsifier_prepared_model_reads_every_layer_and_says_the_mask_is_absent(tmp_path):
    from torch.ao.pruning import WeightNormSparsifier

    model = sequential([16, 12, 8, 4])
    sparsifier = WeightNormSparsifier(sparsity_level=0.5, sparse_block_shape=(1, 4),
                                      zeros_per_block=4)
    sparsifier.prepare(model, [{"tensor_fqn": "0.weight"}, {"tensor_fqn": "4.weight"}])
    sparsifier.step()
    originals = [model[0].parametrizations.weight.original.detach().numpy().copy(),
                 model[2].weight.detach().numpy().copy(),
                 model[4].parametrizations.weight.original.detach().numpy().copy()]
    torch.save(model.state_dict(), tmp_path / "sparsified.pt")
    g = topo.load(tmp_path / "sparsified.pt")
    assert g.widths == [16, 12, 8, 4]
    assert_graph(g, originals)  # without the mask, the connections are the non-zeros
    absent = [s for s in g.metadata["skipped"] if s["why"].startswith("mask absent")]
    assert [s["name"] for s in absent] == ["0.parametrizations.weight.0.mask",
                                           "4.parametrizations.weight.0.mask"]
    assert any("squash_mask" in n for n in g.metadata["reading"]["notes"])


def test_safetensors_save_model_with_a_tied_weight_keeps_the_tied_layer(tmp_path):
    from safetensors.torch import save_model

    class Tied(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.fc2 = torch.nn.Linear(10, 6), torch.nn.Linear(6, 6)
            self.fc3, self.fc4 = torch.nn.Linear(6, 6), torch.nn.Linear(6, 2)
            self.fc3.weight = self.fc2.weight

    torch.manual_seed(0)
    model = Tied()
    save_model(model, str(tmp_path / "tied.safetensors"))
    g = topo.load(tmp_path / "tied.safetensors")
    assert g.widths == [10, 6, 6, 6, 2]
    assert g.names == ["fc1", "fc2", "fc3", "fc4"]
    np.testing.assert_allclose(g.layers[2].toarray(), model.fc2.weight.detach().numpy())
    assert any("alias" in n for n in g.metadata["reading"]["notes"])


def test_sorted_keys_fc1_to_fc12_read_in_number_order(tmp_path):
    widths = [7, 9, 5, 8, 6, 9, 4, 7, 5, 8, 6, 9, 3]
    ws, bs = reference(widths)
    sd = OrderedDict()
    for k, (w, b) in enumerate(zip(ws, bs)):
        sd[f"fc{k + 1}.weight"], sd[f"fc{k + 1}.bias"] = torch.from_numpy(w), torch.from_numpy(b)
    torch.save(OrderedDict(sorted(sd.items())), tmp_path / "sorted.pt")
    g = topo.load(tmp_path / "sorted.pt")
    assert g.names == [f"fc{k}" for k in range(1, 13)]
    assert_graph(g, ws, bs)
    save_numpy_safetensors({k: v.numpy() for k, v in sd.items()},
                           str(tmp_path / "same.safetensors"))
    assert_graph(topo.load(tmp_path / "same.safetensors"), ws, bs)


def test_in_out_weights_without_biases_follow_the_numbered_names(tmp_path):
    # stored (in, out): only the reversed chain fits PyTorch's (out, in), but the names
    # say fc1 comes first, so the weights are (in, out)
    ws, _ = reference([8, 5, 3])
    torch.save({"fc1.weight": torch.from_numpy(ws[0].T.copy()),
                "fc2.weight": torch.from_numpy(ws[1].T.copy())}, tmp_path / "in_out.pt")
    g = topo.load(tmp_path / "in_out.pt")
    assert_graph(g, ws)
    assert g.metadata["reading"]["orientation"].startswith("(in, out)")


def test_modules_defined_out_of_forward_order(tmp_path):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc3 = torch.nn.Linear(4, 4)
            self.fc1 = torch.nn.Linear(5, 4)
            self.fc2 = torch.nn.Linear(4, 4)

    torch.manual_seed(1)
    net = Net()
    torch.save(net.state_dict(), tmp_path / "shuffled.pt")
    g = topo.load(tmp_path / "shuffled.pt")
    assert g.names == ["fc1", "fc2", "fc3"]
    assert_graph(g, [net.fc1.weight.detach().numpy(), net.fc2.weight.detach().numpy(),
                     net.fc3.weight.detach().numpy()])


# ------------------------------------------------------------------------ PyTorch variants
def test_weight_norm_parametrization_combined_as_torch_does(tmp_path):
    from torch.nn.utils.parametrizations import weight_norm

    model = sequential([5, 4, 3])
    weight_norm(model[0])
    expected = model[0].weight.detach().numpy().copy()  # torch computes g v / ||v||
    torch.save(model.state_dict(), tmp_path / "wn.pt")
    g = topo.load(tmp_path / "wn.pt")
    np.testing.assert_allclose(g.layers[0].toarray(), expected, rtol=1e-5)
    assert g.widths == [5, 4, 3]


def test_old_weight_norm_hook_combined(tmp_path):
    model = sequential([5, 4, 3])
    with pytest.warns(FutureWarning):
        torch.nn.utils.weight_norm(model[2], dim=0)
    model(torch.ones(1, 5))
    expected = model[2].weight.detach().numpy().copy()
    torch.save(model.state_dict(), tmp_path / "wn_old.pt")
    g = topo.load(tmp_path / "wn_old.pt")
    np.testing.assert_allclose(g.layers[1].toarray(), expected, rtol=1e-5)


def test_spectral_norm_divides_by_the_saved_singular_value_estimate(tmp_path):
    from torch.nn.utils.parametrizations import spectral_norm

    model = sequential([6, 5, 2])
    spectral_norm(model[0])
    model(torch.ones(2, 6))  # a training step of the power iteration
    model.eval()
    expected = model[0].weight.detach().numpy().copy()
    torch.save(model.state_dict(), tmp_path / "sn.pt")
    g = topo.load(tmp_path / "sn.pt")
    np.testing.assert_allclose(g.layers[0].toarray(), expected, rtol=1e-5)


def test_saved_mask_buffer_of_a_parametrization_is_the_structure(tmp_path):
    import torch.nn.utils.parametrize as parametrize

    class Mask(torch.nn.Module):
        def __init__(self, mask):
            super().__init__()
            self.register_buffer("mask", mask)

        def forward(self, w):
            return w * self.mask

    model = sequential([4, 3, 2])
    mask = torch.tensor([[1, 0, 1, 0], [0, 0, 1, 1], [1, 1, 1, 1]], dtype=torch.float32)
    parametrize.register_parametrization(model[0], "weight", Mask(mask))
    torch.save(model.state_dict(), tmp_path / "masked.pt")
    g = topo.load(tmp_path / "masked.pt")
    assert g.n_connections[0] == 8
    np.testing.assert_array_equal(g.masks()[0].toarray(), mask.numpy())


def test_prune_buffers_and_a_masks_entry(tmp_path):
    from torch.nn.utils import prune

    model = sequential([6, 5, 3])
    prune.l1_unstructured(model[0], "weight", amount=0.4)
    torch.save(model.state_dict(), tmp_path / "pruned.pt")
    g = topo.load(tmp_path / "pruned.pt")
    assert g.n_connections[0] == 18
    plain = sequential([6, 5, 3])
    m2 = (torch.rand(3, 5) > 0.5).float()
    torch.save({"state_dict": plain.state_dict(), "masks": {"2.weight": m2}},
               tmp_path / "with_masks.pt")
    g = topo.load(tmp_path / "with_masks.pt")
    np.testing.assert_array_equal(g.masks()[1].toarray(), m2.numpy())
    assert g.n_connections[0] == 30


def test_a_mask_entry_that_matches_no_layer_is_refused(tmp_path):
    torch.save({"state_dict": sequential([3, 2]).state_dict(),
                "masks": {"fc9.weight": torch.ones(2, 3)}}, tmp_path / "bad_mask.pt")
    with pytest.raises(GraphStructureError, match="fc9.weight"):
        topo.load(tmp_path / "bad_mask.pt")


def test_ema_only_when_asked_and_several_networks_need_a_key(tmp_path):
    a, b = sequential([4, 3], seed=1), sequential([4, 3], seed=2)
    torch.save({"state_dict": a.state_dict(), "ema": b.state_dict()}, tmp_path / "ema.pt")
    g = topo.load(tmp_path / "ema.pt")
    assert_graph(g, *weights_of(a))
    assert any(s["name"] == "ema" and "EMA" in s["why"] for s in g.metadata["skipped"])
    assert_graph(topo.load(tmp_path / "ema.pt", key="ema"), *weights_of(b))
    torch.save({"generator": a.state_dict(), "critic": b.state_dict()}, tmp_path / "gan.pt")
    with pytest.raises(UnreadableFileError, match="generator, critic.*--key"):
        topo.load(tmp_path / "gan.pt")
    assert_graph(topo.load(tmp_path / "gan.pt", key="critic"), *weights_of(b))
    with pytest.raises(UnreadableFileError, match="no entry 'nope'"):
        topo.load(tmp_path / "gan.pt", key="nope")


def test_key_is_refused_for_formats_without_entries(tmp_path):
    ws, bs = reference([3, 2])
    path = mlp_files.keras_h5(tmp_path / "m.h5", ws, bs)
    with pytest.raises(UnreadableFileError, match="no entries"):
        topo.load(path, key="state_dict")


def test_lightning_checkpoint(tmp_path):
    model = sequential([5, 4, 2])
    sd = OrderedDict((f"model.{k}", v) for k, v in model.state_dict().items())
    torch.save({"epoch": 3, "global_step": 120, "pytorch-lightning_version": "2.2.0",
                "state_dict": sd, "optimizer_states": [{"state": {}}], "lr_schedulers": [],
                "callbacks": {}, "hyper_parameters": {"lr": 0.01}}, tmp_path / "e=3.ckpt")
    g = topo.load(tmp_path / "e=3.ckpt")
    assert g.names == ["0", "2"]
    assert (g.metadata["epoch"], g.metadata["global_step"]) == (3, 120)
    assert g.metadata["checkpoint"]["pytorch-lightning_version"] == "2.2.0"
    assert_graph(g, *weights_of(model))


def test_dataparallel_prefix_is_left_out_of_the_names(tmp_path):
    model = sequential([3, 4, 2])
    torch.save({f"module.{k}": v for k, v in model.state_dict().items()}, tmp_path / "dp.pt")
    g = topo.load(tmp_path / "dp.pt")
    assert g.names == ["0", "2"]


class Classifier(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.flatten = torch.nn.Flatten()
        self.norm = torch.nn.BatchNorm1d(6)
        self.stack = torch.nn.Sequential(torch.nn.Linear(6, 5), torch.nn.ReLU(),
                                         torch.nn.Linear(5, 3))


def test_whole_pickled_module_is_read_without_running_its_code(tmp_path):
    torch.manual_seed(0)
    model = Classifier()
    torch.save(model, tmp_path / "model.pth")
    g = topo.load(tmp_path / "model.pth")
    assert g.metadata["format"] == "pytorch-module"
    assert g.names == ["stack.0", "stack.2"]
    assert_graph(g, *weights_of(model))
    norm = [s for s in g.metadata["skipped"] if s["name"].startswith("norm.")]
    assert norm and all("BatchNorm1d" in s["why"] for s in norm)
    torch.save(model, tmp_path / "legacy.pth", _use_new_zipfile_serialization=False)
    assert_graph(topo.load(tmp_path / "legacy.pth"), *weights_of(model))


def test_pickled_lists_and_dicts_of_numpy_arrays(tmp_path):
    ws, bs = reference([10, 7, 4, 1])
    torch.save([w.copy() for w in ws], tmp_path / "F1.pth")  # NID style: (out, in), no biases
    g = topo.load(tmp_path / "F1.pth")
    assert_graph(g, ws)
    assert "inferred" in g.metadata["reading"]["orientation"]
    with open(tmp_path / "arrays.pkl", "wb") as fh:
        pickle.dump({"W1": ws[0].T.copy(), "b1": bs[0], "W2": ws[1].T.copy(), "b2": bs[1],
                     "W3": ws[2].T.copy(), "b3": bs[2]}, fh, protocol=4)
    g = topo.load(tmp_path / "arrays.pkl")
    assert g.metadata["format"] == "pickle"
    assert_graph(g, ws, bs)


def test_module_order_breaks_a_tie_and_says_so(tmp_path):
    # an autoencoder: encoder.* and decoder.* chain both ways round
    ws, bs = reference([9, 6, 3, 6, 9])
    names = ["encoder.0", "encoder.2", "decoder.0", "decoder.2"]
    sd = OrderedDict()
    for n, w, b in zip(names, ws, bs):
        sd[f"{n}.weight"], sd[f"{n}.bias"] = torch.from_numpy(w), torch.from_numpy(b)
    torch.save(sd, tmp_path / "ae.pt")
    g = topo.load(tmp_path / "ae.pt")
    assert g.names == names
    assert "defined" in g.metadata["reading"]["layer_order"]
    # safetensors keeps no module order: refused, naming both orders
    save_numpy_safetensors({k: v.numpy() for k, v in sd.items()},
                           str(tmp_path / "ae.safetensors"))
    with pytest.raises(GraphStructureError, match="more than one order") as err:
        topo.load(tmp_path / "ae.safetensors")
    assert "encoder.0, encoder.2, decoder.0, decoder.2 = 9-6-3-6-9" in str(err.value)
    assert "decoder.0, decoder.2, encoder.0, encoder.2 = 3-6-9-6-3" in str(err.value)


def test_conv_and_fc_read_whole_or_dense_only(tmp_path):
    torch.manual_seed(0)
    sd = OrderedDict(conv1=None)
    conv = torch.nn.Conv2d(1, 4, 3)
    fc1, fc2 = torch.nn.Linear(16, 8), torch.nn.Linear(8, 2)
    sd = OrderedDict([("conv1.weight", conv.weight), ("conv1.bias", conv.bias),
                      ("fc1.weight", fc1.weight), ("fc1.bias", fc1.bias),
                      ("fc2.weight", fc2.weight), ("fc2.bias", fc2.bias)])
    torch.save({k: v.detach() for k, v in sd.items()}, tmp_path / "cnn.pt")
    g = topo.load(tmp_path / "cnn.pt")  # the whole network: conv1, then fc1 on 4 x (2x2)
    assert g.widths == [1, 4, 8, 2] and g.kernel_shapes == [(3, 3), (2, 2), ()]
    g = topo.load(tmp_path / "cnn.pt", dense_only=True)
    assert g.widths == [16, 8, 2]
    assert [(s["name"], s["shape"]) for s in g.metadata["skipped"]] == [
        ("conv1", [4, 1, 3, 3]), ("conv1 bias", [4])]


# ------------------------------------------------------------------------------------ Keras
@pytest.mark.parametrize("version", [2, 3])
@pytest.mark.parametrize("weights_only", [False, True])
def test_keras_hdf5_in_layer_order_not_group_order(tmp_path, version, weights_only):
    ws, bs = reference([12, 7, 9, 4])
    path = mlp_files.keras_h5(tmp_path / "m.h5", ws, bs, version=version,
                              weights_only=weights_only, batchnorm=not weights_only)
    g = topo.load(path)
    assert g.metadata["format"] == "keras-hdf5"
    assert g.names == ["dense_9", "dense_10", "dense_11"]
    assert_graph(g, ws, bs)
    if not weights_only:
        whys = {s["name"]: s["why"] for s in g.metadata["skipped"]}
        assert whys["batch_normalization/gamma"].startswith("normalisation layer")
        assert whys["optimizer_weights"] == "optimizer state"


def test_keras_hdf5_saved_as_dot_keras_and_keras3_zip(tmp_path):
    ws, bs = reference([6, 5, 3])
    g = topo.load(mlp_files.keras_h5(tmp_path / "model.keras", ws, bs))
    assert g.metadata["format"] == "keras-hdf5"
    assert_graph(g, ws, bs)
    g = topo.load(mlp_files.keras_zip(tmp_path / "v3.keras", ws, bs))
    assert g.metadata["format"] == "keras"
    assert g.names == ["my_dense_0", "my_dense_1"]
    assert g.metadata["keras_version"] == "3.3.3"
    assert_graph(g, ws, bs)


def test_keras_pruning_wrapper_mask_is_the_structure(tmp_path):
    import h5py

    ws, bs = reference([5, 4])
    mask = (np.arange(20).reshape(5, 4) % 3 == 0).astype(np.float32)  # (in, out)
    with h5py.File(tmp_path / "pruned.h5", "w") as f:
        g = f.create_group("prune_low_magnitude_dense")
        for leaf, arr in (("kernel", ws[0].T), ("bias", bs[0]), ("mask", mask),
                          ("threshold", np.float32(0.1))):
            g.create_dataset(f"prune_low_magnitude_dense/{leaf}:0", data=arr)
        g.attrs["weight_names"] = np.array([f"prune_low_magnitude_dense/{x}:0".encode()
                                            for x in ("kernel", "bias", "mask", "threshold")])
        f.attrs["layer_names"] = np.array([b"prune_low_magnitude_dense"])
    graph = topo.load(tmp_path / "pruned.h5")
    np.testing.assert_array_equal(graph.masks()[0].toarray(), mask.T)


# ------------------------------------------------------------------------------------- ONNX
@pytest.mark.parametrize("kwargs", [dict(op="gemm", trans_b=True),
                                    dict(op="gemm", trans_b=False),
                                    dict(op="matmul"),
                                    dict(op="gemm", trans_b=True, inits_as_inputs=True)])
def test_onnx_chains_in_graph_order(tmp_path, kwargs):
    ws, bs = reference([11, 7, 7, 3])
    g = topo.load(mlp_files.write_onnx(tmp_path / "m.onnx", ws, bs, **kwargs))
    assert g.metadata["format"] == "onnx"
    assert g.names == ["fc1", "fc2", "fc3"]
    assert_graph(g, ws, bs)


def test_onnx_gzip_and_gemm_alpha_beta(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    ws, bs = reference([4, 3])
    g = topo.load(mlp_files.write_onnx(tmp_path / "m.onnx.gz", ws, bs, gz=True))
    assert g.metadata["format"] == "onnx-gzip"
    assert_graph(g, ws, bs)
    node = helper.make_node("Gemm", ["x", "W", "C"], ["y"], transB=1, alpha=2.0, beta=0.5)
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[numpy_helper.from_array(ws[0], "W"), numpy_helper.from_array(bs[0], "C")])
    (tmp_path / "scaled.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    g = topo.load(tmp_path / "scaled.onnx")
    np.testing.assert_allclose(g.layers[0].toarray(), 2.0 * ws[0], rtol=1e-6)
    np.testing.assert_allclose(g.biases[0], 0.5 * bs[0], rtol=1e-6)


def test_onnx_residual_addition_is_a_stream(tmp_path):
    from onnx import TensorProto, helper, numpy_helper

    w = np.eye(3, dtype=np.float32)
    nodes = [helper.make_node("Gemm", ["x", "W1"], ["h"], transB=1),
             helper.make_node("Gemm", ["h", "W2"], ["y1"], transB=1),
             helper.make_node("Add", ["y1", "h"], ["y2"]),
             helper.make_node("Gemm", ["y2", "W3"], ["y"], transB=1)]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3])],
        initializer=[numpy_helper.from_array(w, n) for n in ("W1", "W2", "W3")])
    (tmp_path / "res.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    # the graph adds W2's output to h: W1 and W2 write one unit set, which W3 reads
    g = topo.load(tmp_path / "res.onnx")
    assert g.reads == [0, 1, 1] and g.writes == [1, 1, 2]
    with pytest.raises(GraphStructureError, match="not a chain"):
        topo.load(tmp_path / "res.onnx", dense_only=True)


# ------------------------------------------------------------------------------------ numpy
def test_npz_orientation_inferred_and_stated(tmp_path):
    ws, bs = reference([9, 6, 4])
    g = topo.load(mlp_files.npz(tmp_path / "w.npz", ws))
    assert g.metadata["format"] == "numpy-npz"
    assert_graph(g, ws)
    assert g.metadata["reading"]["orientation"].startswith("(in, out), inferred")
    assert_graph(topo.load(mlp_files.npz(tmp_path / "wb.npz", ws, bs)), ws, bs)


def test_npz_where_both_orientations_fit_is_refused(tmp_path):
    ws, _ = reference([5, 5, 5])
    with pytest.raises(GraphStructureError, match="orientation.*cannot be told"):
        topo.load(mlp_files.npz(tmp_path / "square.npz", ws))


def test_npy_folder_with_parallel_masks(tmp_path):
    ws, _ = reference([8, 6, 3], bias=False)
    rng = np.random.default_rng(3)
    masks = [(rng.random(w.shape) < 0.4).astype(np.float64) for w in ws]
    folder = mlp_files.npy_folder(tmp_path / "final", ws, masks)
    for where in (folder, folder / "weights"):
        g = topo.load(where)
        assert g.metadata["format"] == "numpy-npy"
        assert_graph(g, ws, masks=masks)
    assert_graph(topo.load(mlp_files.npy_folder(tmp_path / "nomask", ws)), ws)


def test_gzip_of_something_other_than_onnx_says_what_it_holds(tmp_path):
    torch.save(sequential([2, 2]).state_dict(), tmp_path / "m.pt")
    (tmp_path / "m.pt.gz").write_bytes(gzip.compress((tmp_path / "m.pt").read_bytes()))
    with pytest.raises(UnreadableFileError, match="gzip of a PyTorch file"):
        topo.load(tmp_path / "m.pt.gz")
