"""Writers of one MLP in the layouts other programs use, for the reader tests.

Each writer takes the reference network as PyTorch-oriented weights ``ws[k]`` of shape
``(n_out, n_in)`` and biases ``bs[k]`` (or None) and writes them the way that program does,
using only the file format's own library (h5py for Keras, onnx.helper for ONNX), so the
expected graph is always ``LayeredGraph(ws, biases=bs)``.
"""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np


def keras_h5(path: Path, ws, bs, *, names=None, version: int = 2, weights_only: bool = False,
             batchnorm: bool = False, classes=None) -> Path:
    """A Keras HDF5 file: Keras 2 (``name/kernel:0`` under ``model_weights/name/name``) or
    Keras 3's legacy writer (``model/name/kernel``), whole model or weights only."""
    names = names or [f"dense_{9 + k}" for k in range(len(ws))]  # dense_10 < dense_9 as text
    classes = classes or ["Dense"] * len(ws)
    layer_names, groups = [], []
    config_layers = [{"class_name": "InputLayer", "config": {"name": "input_1"}}]
    if batchnorm:
        n_in = ws[0].shape[1]
        rng = np.random.default_rng(0)
        groups.append(("batch_normalization", {
            "gamma": rng.normal(size=n_in), "beta": rng.normal(size=n_in),
            "moving_mean": rng.normal(size=n_in), "moving_variance": rng.random(n_in)}))
        config_layers.append({"class_name": "BatchNormalization",
                              "config": {"name": "batch_normalization"}})
    for k, (w, b) in enumerate(zip(ws, bs)):
        tensors = {"kernel": np.ascontiguousarray(w.T)}
        if b is not None:
            tensors["bias"] = b
        groups.append((names[k], tensors))
        config_layers.append({"class_name": classes[k], "config": {"name": names[k]}})
        if k == 0:
            config_layers.append({"class_name": "Dropout", "config": {"name": "dropout"}})
            groups.append(("dropout", {}))
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.7.0" if version == 2 else "3.13.2"
        f.attrs["backend"] = "tensorflow"
        if weights_only:
            root = f
        else:
            f.attrs["model_config"] = json.dumps({"class_name": "Sequential", "config": {
                "name": "seq", "layers": config_layers}})
            root = f.create_group("model_weights")
        for name, tensors in groups:
            layer_names.append(name)
            g = root.create_group(name)
            wnames = []
            for leaf, arr in tensors.items():
                wn = f"{name}/{leaf}:0" if version == 2 else f"seq/{name}/{leaf}"
                g.create_dataset(wn, data=arr)
                wnames.append(wn)
            if version == 2:
                g.attrs["weight_names"] = np.array([w.encode() for w in wnames]) if wnames \
                    else np.array([], dtype=np.float64)
            else:
                g.attrs.create("weight_names", wnames, dtype=h5py.string_dtype())
        if version == 2:
            root.attrs["layer_names"] = np.array([n.encode() for n in layer_names])
        else:
            root.attrs.create("layer_names", layer_names, dtype=h5py.string_dtype())
        if not weights_only:
            opt = f.create_group("optimizer_weights")
            opt.create_dataset("Adam/iter:0", data=np.int64(3))
    return path


def keras_zip(path: Path, ws, bs) -> Path:
    """A Keras 3 ``.keras`` zip: config.json, metadata.json and model.weights.h5 with
    ``layers/<snake_case class>[_k]/vars/<i>``."""
    layers = [{"module": "keras.layers", "class_name": "InputLayer",
               "config": {"name": "input_layer"}}]
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for k, (w, b) in enumerate(zip(ws, bs)):
            group = "dense" if k == 0 else f"dense_{k}"
            layers.append({"module": "keras.layers", "class_name": "Dense",
                           "config": {"name": f"my_dense_{k}", "units": int(w.shape[0])}})
            v = f.create_group(f"layers/{group}/vars")
            v.create_dataset("0", data=np.ascontiguousarray(w.T))
            if b is not None:
                v.create_dataset("1", data=b)
        f.create_group("optimizer/vars").create_dataset("0", data=np.int64(1))
    config = {"module": "keras", "class_name": "Sequential",
              "config": {"name": "sequential", "layers": layers}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.3.3"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", buf.getvalue())
    return path


def onnx_model(ws, bs, *, op: str = "gemm", trans_b: bool = True, inits_as_inputs: bool = False,
               names=None) -> bytes:
    """An ONNX MLP: Gemm nodes (``transB`` as asked) or MatMul + Add, ReLU between."""
    from onnx import TensorProto, helper, numpy_helper

    names = names or [f"fc{k + 1}" for k in range(len(ws))]
    nodes, inits = [], []
    x = "input"
    for k, (w, b) in enumerate(zip(ws, bs)):
        wname, bname, out = f"{names[k]}.weight", f"{names[k]}.bias", f"h{k}"
        if op == "gemm":
            stored = w if trans_b else w.T
            inits.append(numpy_helper.from_array(np.ascontiguousarray(stored, np.float32),
                                                 wname))
            inputs = [x, wname]
            if b is not None:
                inits.append(numpy_helper.from_array(b.astype(np.float32), bname))
                inputs.append(bname)
            nodes.append(helper.make_node("Gemm", inputs, [out], transB=int(trans_b)))
        else:
            inits.append(numpy_helper.from_array(np.ascontiguousarray(w.T, np.float32),
                                                 wname))
            mm = out if b is None else f"mm{k}"
            nodes.append(helper.make_node("MatMul", [x, wname], [mm]))
            if b is not None:
                inits.append(numpy_helper.from_array(b.astype(np.float32), bname))
                nodes.append(helper.make_node("Add", [mm, bname], [out]))
        x = out
        if k < len(ws) - 1:
            nodes.append(helper.make_node("Relu", [x], [f"r{k}"]))
            x = f"r{k}"
    inputs = [helper.make_tensor_value_info("input", TensorProto.FLOAT, [1, ws[0].shape[1]])]
    if inits_as_inputs:
        inputs += [helper.make_tensor_value_info(i.name, TensorProto.FLOAT, list(i.dims))
                   for i in inits]
    graph = helper.make_graph(
        nodes, "mlp", inputs,
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, [1, ws[-1].shape[0]])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    return model.SerializeToString()


def write_onnx(path: Path, ws, bs, *, gz: bool = False, **kwargs) -> Path:
    data = onnx_model(ws, bs, **kwargs)
    path.write_bytes(gzip.compress(data) if gz else data)
    return path


def npz(path: Path, ws, bs=None, *, names=None) -> Path:
    """``np.savez`` of kernels stored (in, out): ``w1``, ``w2``, ... (``b1``... if given)."""
    arrays = {}
    for k, w in enumerate(ws):
        arrays[(names or [f"w{i + 1}" for i in range(len(ws))])[k]] = np.ascontiguousarray(w.T)
        if bs is not None and bs[k] is not None:
            arrays[f"b{k + 1}"] = bs[k]
    np.savez(path, **arrays)
    return path


def npy_folder(path: Path, ws, masks=None) -> Path:
    """The lottery-ticket layout: weights/layer{k}.npy (in, out) and masks/layer{k}.npy."""
    (path / "weights").mkdir(parents=True)
    for k, w in enumerate(ws):
        np.save(path / "weights" / f"layer{k}.npy", np.ascontiguousarray(w.T, np.float32))
    if masks is not None:
        (path / "masks").mkdir()
        for k, m in enumerate(masks):
            np.save(path / "masks" / f"layer{k}.npy", np.ascontiguousarray(m.T, np.float64))
    return path
