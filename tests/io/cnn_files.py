"""A small residual CNN written as Keras and ONNX files with h5py and onnx.helper only.

The network (PyTorch layout, 2 input channels on a 4x4 picture)::

    conv_a 3x3 (2 -> 4, bias) -> BatchNorm -> ReLU -> r
    conv_b 3x3 (4 -> 4; or depthwise, groups 4) on r; its output added to r  (stream)
    conv_c 1x1 (4 -> 3, bias) on the sum -> flatten (3 x 4x4) -> dense 48 -> 5

so topo must read reads = [0, 1, 1, 2], writes = [1, 1, 2, 3] with the dense layer a flatten
layer of 3 channels x 16 positions. :func:`reference` gives the weights (sparse: about half
of them exactly 0) and :func:`expected` the graph built directly from them.
"""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path

import h5py
import numpy as np

from topo.graph import LayeredGraph, LayerGeometry


def reference(seed: int = 0, depthwise: bool = False) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)

    def sparse(*shape):
        w = rng.normal(size=shape).astype(np.float32)
        return w * (rng.random(shape) < 0.5)

    return {"Wa": sparse(4, 2, 3, 3), "ba": rng.normal(size=4).astype(np.float32),
            "Wb": sparse(4, 1, 3, 3) if depthwise else sparse(4, 4, 3, 3),
            "Wc": sparse(3, 4, 1, 1), "bc": rng.normal(size=3).astype(np.float32),
            "Wd": sparse(5, 48), "bd": rng.normal(size=5).astype(np.float32),
            "bn": rng.random((4, 4)).astype(np.float32) + 0.5}


def expected(ref: dict[str, np.ndarray], names=("conv_a", "conv_b", "conv_c", "dense")
             ) -> LayeredGraph:
    groups = 4 if ref["Wb"].shape[1] == 1 else 1
    return LayeredGraph(
        [ref["Wa"], ref["Wb"], ref["Wc"], ref["Wd"]],
        biases=[ref["ba"], None, ref["bc"], ref["bd"]], names=list(names),
        geometry=[LayerGeometry.conv((3, 3)), LayerGeometry.conv((3, 3), groups=groups),
                  LayerGeometry.conv((1, 1)), LayerGeometry.flatten((4, 4))],
        reads=[0, 1, 1, 2], writes=[1, 1, 2, 3])


# ------------------------------------------------------------------------------- ONNX
def onnx_bytes(ref: dict[str, np.ndarray], *, extra_nodes=None) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    groups = 4 if ref["Wb"].shape[1] == 1 else 1
    inits = {"conv_a.weight": ref["Wa"], "conv_a.bias": ref["ba"], "conv_b.weight": ref["Wb"],
             "conv_c.weight": ref["Wc"], "conv_c.bias": ref["bc"], "dense.weight": ref["Wd"],
             "dense.bias": ref["bd"], "bn.weight": ref["bn"][0], "bn.bias": ref["bn"][1],
             "bn.running_mean": ref["bn"][2], "bn.running_var": ref["bn"][3]}
    nodes = [
        helper.make_node("Conv", ["x", "conv_a.weight", "conv_a.bias"], ["a"],
                         kernel_shape=[3, 3], pads=[1, 1, 1, 1]),
        helper.make_node("BatchNormalization", ["a", "bn.weight", "bn.bias",
                                                "bn.running_mean", "bn.running_var"], ["an"]),
        helper.make_node("Relu", ["an"], ["r"]),
        helper.make_node("Conv", ["r", "conv_b.weight"], ["b"], kernel_shape=[3, 3],
                         pads=[1, 1, 1, 1], group=groups),
        helper.make_node("Add", ["b", "r"], ["s"]),
        helper.make_node("Relu", ["s"], ["sr"]),
        helper.make_node("Conv", ["sr", "conv_c.weight", "conv_c.bias"], ["c"],
                         kernel_shape=[1, 1]),
        helper.make_node("Relu", ["c"], ["cr"]),
        helper.make_node("Flatten", ["cr"], ["f"], axis=1),
        helper.make_node("Gemm", ["f", "dense.weight", "dense.bias"], ["y"], transB=1),
    ]
    output = "y"
    for node in extra_nodes or []:
        nodes.append(node)
        output = node.output[0]
    graph = helper.make_graph(
        nodes, "cnn", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2, 4, 4])],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.ascontiguousarray(v), k)
                     for k, v in inits.items()])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]
                             ).SerializeToString()


# ------------------------------------------------------------------------------ Keras
def keras_kernels(ref: dict[str, np.ndarray]) -> dict[str, dict[str, np.ndarray]]:
    """Every layer's variables in Keras's layouts (channels last)."""
    depthwise = ref["Wb"].shape[1] == 1
    dense = ref["Wd"].reshape(5, 3, 16).transpose(2, 1, 0).reshape(48, 5)  # rows h, w, c
    conv_b = ({"depthwise_kernel": ref["Wb"].transpose(2, 3, 0, 1)} if depthwise else
              {"kernel": ref["Wb"].transpose(2, 3, 1, 0)})
    return {"conv_a": {"kernel": ref["Wa"].transpose(2, 3, 1, 0), "bias": ref["ba"]},
            "bn": dict(zip(["gamma", "beta", "moving_mean", "moving_variance"], ref["bn"])),
            "conv_b": conv_b,
            "conv_c": {"kernel": ref["Wc"].transpose(2, 3, 1, 0), "bias": ref["bc"]},
            "dense": {"kernel": np.ascontiguousarray(dense), "bias": ref["bd"]}}


def _config_layers(ref, version: int, merge: str = "Add") -> list[dict]:
    depthwise = ref["Wb"].shape[1] == 1

    def tensor(name):
        if version == 2:
            return [name, 0, 0, {}]
        return {"class_name": "__keras_tensor__",
                "config": {"shape": [None, 4, 4, 4], "dtype": "float32",
                           "keras_history": [name, 0, 0]}}

    def node(*names):
        if version == 2:
            return [[tensor(n) for n in names]]
        args = [tensor(names[0])] if len(names) == 1 else [[tensor(n) for n in names]]
        return [{"args": args, "kwargs": {}}]

    def layer(cls, name, inputs, **cfg):
        out = {"class_name": cls, "config": {"name": name, **cfg}, "name": name,
               "inbound_nodes": node(*inputs) if inputs else []}
        if version == 3:
            out["module"] = "keras.layers"
        return out

    shape_key = "batch_input_shape" if version == 2 else "batch_shape"
    return [
        layer("InputLayer", "input_1", [], **{shape_key: [None, 4, 4, 2]}),
        layer("Conv2D", "conv_a", ["input_1"], filters=4, kernel_size=[3, 3], padding="same",
              data_format="channels_last", groups=1),
        layer("BatchNormalization", "bn", ["conv_a"]),
        layer("Activation", "relu", ["bn"], activation="relu"),
        layer("DepthwiseConv2D" if depthwise else "Conv2D", "conv_b", ["relu"],
              kernel_size=[3, 3], padding="same", use_bias=False),
        layer(merge, "add", ["conv_b", "relu"]),
        layer("Activation", "relu_1", ["add"], activation="relu"),
        layer("Conv2D", "conv_c", ["relu_1"], filters=3, kernel_size=[1, 1]),
        layer("Flatten", "flatten", ["conv_c"], data_format="channels_last"),
        layer("Dense", "dense", ["flatten"], units=5),
    ]


def keras_h5(path: Path, ref: dict[str, np.ndarray], *, merge: str = "Add") -> Path:
    """A Keras 2 HDF5 whole model of the Functional network."""
    kernels = keras_kernels(ref)
    config = {"class_name": "Functional", "config": {
        "name": "model", "layers": _config_layers(ref, 2, merge),
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}}
    names = ["input_1", "conv_a", "bn", "relu", "conv_b", "add", "relu_1", "conv_c",
             "flatten", "dense"]
    with h5py.File(path, "w") as f:
        f.attrs["keras_version"] = "2.12.0"
        f.attrs["backend"] = "tensorflow"
        f.attrs["model_config"] = json.dumps(config)
        root = f.create_group("model_weights")
        root.attrs["layer_names"] = np.array([n.encode() for n in names])
        for name in names:
            g = root.create_group(name)
            tensors = kernels.get(name, {})
            for leaf, arr in tensors.items():
                g.create_dataset(f"{name}/{leaf}:0", data=arr)
            g.attrs["weight_names"] = (np.array([f"{name}/{leaf}:0".encode()
                                                 for leaf in tensors])
                                       if tensors else np.array([], dtype=np.float64))
    return path


def keras_zip(path: Path, ref: dict[str, np.ndarray]) -> Path:
    """A Keras 3 ``.keras`` zip of the Functional network."""
    kernels = keras_kernels(ref)
    depthwise = ref["Wb"].shape[1] == 1
    groups = {"conv_a": "conv2d", "bn": "batch_normalization",
              "conv_b": "depthwise_conv2d" if depthwise else "conv2d_1",
              "conv_c": "conv2d_1" if depthwise else "conv2d_2", "dense": "dense"}
    canonical = ["kernel", "depthwise_kernel", "bias", "gamma", "beta", "moving_mean",
                 "moving_variance"]  # the order Keras 3 keeps each layer's variables in
    buf = io.BytesIO()
    with h5py.File(buf, "w") as f:
        for name, group in groups.items():
            v = f.create_group(f"layers/{group}/vars")
            leaves = [leaf for leaf in canonical if leaf in kernels[name]]
            for i, leaf in enumerate(leaves):
                v.create_dataset(str(i), data=kernels[name][leaf])
    config = {"module": "keras", "class_name": "Functional", "config": {
        "name": "functional", "layers": _config_layers(ref, 3),
        "input_layers": [["input_1", 0, 0]], "output_layers": [["dense", 0, 0]]}}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("metadata.json", json.dumps({"keras_version": "3.3.3"}))
        zf.writestr("config.json", json.dumps(config))
        zf.writestr("model.weights.h5", buf.getvalue())
    return path
