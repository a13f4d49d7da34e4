"""ONNX graphs with the rarer nodes exporters write between two layers: pads and slices
given as inputs, transposes, shape queries, constant scales, weights or biases computed in
the graph, and damaged models.

Each graph is two 1 x 1 convolutions (2 -> 3 -> 2 channels on a 4 x 4 input) with the node
under test between them, built here with ``onnx.helper``; what is expected (the chain, or the
independent matrices with the reason, or a one-line refusal) follows from the graph.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
from onnx import TensorProto, helper, numpy_helper  # noqa: E402

from topo.errors import GraphStructureError, UnreadableFileError  # noqa: E402
from topo.io import load  # noqa: E402

WA = np.arange(1, 7, dtype=np.float32).reshape(3, 2, 1, 1)    # conv a: 2 -> 3, all non-zero
WB = np.array([[1, 0, 2], [0, 3, 0]], dtype=np.float32).reshape(2, 3, 1, 1)  # 3 of 6


def _write(path: Path, middle: list, *, inits: dict | None = None, opset: int = 17,
           first: str = "a", last: str = "m", conv_b: list[str] | None = None,
           tail: list | None = None, dims: list | None = None) -> Path:
    """x -> Conv a -> ``middle`` nodes (reading ``first``, the last writing ``last``) ->
    Conv b -> y (or ``tail`` instead of Conv b, its last node writing y)."""
    inits = {"a.weight": WA, "b.weight": WB, **(inits or {})}
    nodes = [helper.make_node("Conv", ["x", "a.weight"], [first], kernel_shape=[1, 1]),
             *middle,
             *(tail if tail is not None else [
                 helper.make_node("Conv", conv_b or [last, "b.weight"], ["y"],
                                  kernel_shape=[1, 1])])]
    graph = helper.make_graph(
        nodes, "net",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, dims or [1, 2, 4, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
        initializer=[numpy_helper.from_array(np.asarray(v), k) for k, v in inits.items()])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])
    path.write_bytes(model.SerializeToString())
    return path


def _i64(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _assert_chain(g) -> None:
    assert g.names == ["a", "b"]
    assert g.reads == [0, 1] and g.writes == [1, 2]
    assert g.n_in == [2, 3] and g.n_out == [3, 2]
    assert g.n_connections == [6, 3]


def _assert_independent(g, why: str) -> None:
    assert g.names == ["a", "b"]
    assert g.is_independent
    assert g.n_connections == [6, 3]
    assert why in g.metadata["reading"]["wiring"]


# --------------------------------------------------------------------------- followed
@pytest.mark.parametrize("middle, inits, opset", [
    # pads as an input (opset 11 on): only H and W are padded
    ([helper.make_node("Pad", ["a", "pads"], ["m"])], {"pads": _i64(0, 0, 1, 1, 0, 0, 1, 1)},
     17),
    # pads with the axes they apply to (opset 18 on): axes 2 and 3
    ([helper.make_node("Pad", ["a", "pads", "", "axes"], ["m"])],
     {"pads": _i64(1, 1, 1, 1), "axes": _i64(2, 3)}, 18),
    # pads computed from constants (folded before reading): Concat of two halves
    ([helper.make_node("Concat", ["p0", "p1"], ["pads"], axis=0),
      helper.make_node("Pad", ["a", "pads"], ["m"])],
     {"p0": _i64(0, 0, 1, 1), "p1": _i64(0, 0, 1, 1)}, 17),
    # a spatial slice with starts, ends, axes and steps as inputs
    ([helper.make_node("Slice", ["a", "starts", "ends", "axes", "steps"], ["m"])],
     {"starts": _i64(0, 0), "ends": _i64(4, 4), "axes": _i64(2, 3), "steps": _i64(2, 2)}, 17),
    # a slice of every axis that leaves batch and channels whole (0 to the end, step 1)
    ([helper.make_node("Slice", ["a", "starts", "ends"], ["m"])],
     {"starts": _i64(0, 0, 1, 1), "ends": _i64(2**63 - 1, 2**63 - 1, 3, 3)}, 17),
    # a shape query beside the data, and a scale by a constant
    ([helper.make_node("Shape", ["a"], ["shape"]),
      helper.make_node("Mul", ["a", "two"], ["m"])], {"two": np.float32(2.0)}, 17),
    # channels last and back
    ([helper.make_node("Transpose", ["a"], ["t"], perm=[0, 2, 3, 1]),
      helper.make_node("Transpose", ["t"], ["m"], perm=[0, 3, 1, 2])], None, 17),
], ids=["pad-input", "pad-axes", "pad-folded", "slice-inputs", "slice-whole-channels",
        "shape-and-scale", "transposes"])
def test_unit_preserving_nodes_between_layers_keep_the_chain(tmp_path, middle, inits, opset):
    g = load(_write(tmp_path / "net.onnx", middle, inits=inits, opset=opset))
    _assert_chain(g)


def test_a_norm_named_by_its_gamma_is_listed_under_its_module(tmp_path):
    inits = {"bn/gamma": np.ones(3, np.float32), "bn/beta": np.zeros(3, np.float32),
             "bn/mean": np.zeros(3, np.float32), "bn/var": np.ones(3, np.float32)}
    middle = [helper.make_node("BatchNormalization",
                               ["a", "bn/gamma", "bn/beta", "bn/mean", "bn/var"], ["m"])]
    g = load(_write(tmp_path / "net.onnx", middle, inits=inits))
    _assert_chain(g)
    skipped = {s["name"] for s in g.metadata["skipped"]}
    assert skipped == {"bn/gamma", "bn/beta", "bn/mean", "bn/var"}


def test_a_norm_without_a_known_scale_name_is_listed_under_its_node(tmp_path):
    inits = {"s": np.ones(3, np.float32), "t": np.zeros(3, np.float32)}
    middle = [helper.make_node("InstanceNormalization", ["a", "s", "t"], ["m"], name="norm1")]
    g = load(_write(tmp_path / "net.onnx", middle, inits=inits))
    _assert_chain(g)
    assert {s["name"] for s in g.metadata["skipped"]} == {"s", "t"}


def test_matmul_and_its_bias_addition_after_a_conv_are_one_layer(tmp_path):
    w = np.zeros((48, 2), np.float32)                   # 3 channels x 4 x 4 positions -> 2
    w[[0, 17, 47], [0, 1, 1]] = [1.0, -2.0, 0.5]
    tail = [helper.make_node("Flatten", ["a"], ["f"]),
            helper.make_node("MatMul", ["f", "W"], ["mm"]),
            helper.make_node("Add", ["mm", "c"], ["y"])]
    g = load(_write(tmp_path / "net.onnx", [], inits={"W": w, "c": np.array([0.25, -1.0],
                                                                            np.float32)},
                    tail=tail))
    assert g.names == ["a", "W"]
    assert g.reads == [0, 1] and g.writes == [1, 2]
    assert g.n_in == [2, 3] and g.n_out == [3, 2]
    assert g.positions == [1, 16]
    assert g.n_connections == [6, 3]
    np.testing.assert_array_equal(g.biases[1], [0.25, -1.0])
    assert g.input_shape == (2, 4, 4)


def test_an_input_of_unknown_height_and_width_has_no_input_shape(tmp_path):
    g = load(_write(tmp_path / "net.onnx", [helper.make_node("Relu", ["a"], ["m"])],
                    dims=[1, 2, "height", "width"]))
    _assert_chain(g)
    assert g.input_shape is None


# --------------------------------------------------------------------------- not followed
@pytest.mark.parametrize("middle, inits, opset, why", [
    ([helper.make_node("Pad", ["a", "pads", "", "axes"], ["m"])],
     {"pads": _i64(1, 1), "axes": _i64(0)}, 18, "Pad of the channels"),
    ([helper.make_node("Slice", ["a", "starts", "ends", "axes"], ["m"])],
     {"starts": _i64(1), "ends": _i64(3), "axes": _i64(1)}, 17, "Slice of the channels"),
    # pads computed in the graph from the data: which axes is unknown
    ([helper.make_node("Shape", ["a"], ["pads"]),
      helper.make_node("Pad", ["a", "pads"], ["m"])], None, 17, "Pad of the channels"),
    ([helper.make_node("Slice", ["a", "starts", "ends"], ["m"])],
     {"starts": _i64(0)}, 17, "Slice of the channels"),
    ([helper.make_node("Transpose", ["a"], ["m"], perm=[0, 1, 3, 2])], None, 17,
     "with perm (0, 1, 3, 2)"),
    ([helper.make_node("ConvTranspose", ["a", "ct"], ["m"], kernel_shape=[1, 1])],
     {"ct": np.ones((3, 3, 1, 1), np.float32)}, 17, "ConvTranspose"),
    ([helper.make_node("Mul", ["a", "a"], ["m"])], None, 17, "Mul"),
], ids=["pad-batch-axis", "slice-channels", "pad-unknown", "slice-no-ends",
        "transpose-hw", "conv-transpose", "product"])
def test_a_node_the_wiring_cannot_follow_leaves_independent_matrices(tmp_path, middle, inits,
                                                                    opset, why):
    g = load(_write(tmp_path / "net.onnx", middle, inits=inits, opset=opset))
    _assert_independent(g, why)


@pytest.mark.parametrize("op", ["Gemm", "MatMul"])
def test_a_product_of_two_computed_values_is_no_layer(tmp_path, op):
    tail = [helper.make_node("Flatten", ["a"], ["f"]),
            helper.make_node(op, ["f", "f"], ["y"], name="prod")]
    g = load(_write(tmp_path / "net.onnx", [], tail=tail))
    assert g.names == ["a"]
    assert g.metadata["reading"]["wiring"].startswith(
        "independent matrices: the ONNX graph's wiring cannot be followed: "
        f"{op} of two computed values 'prod' in the data flow")


def test_a_conv_whose_weight_is_computed_is_no_layer(tmp_path):
    # conv b's weight is b.weight times a value computed from the data: no constant to read
    middle = [helper.make_node("Relu", ["a"], ["s"]),
              helper.make_node("Mul", ["b.weight", "s"], ["wb"])]
    path = _write(tmp_path / "net.onnx", middle, last="a", conv_b=["a", "wb"])
    g = load(path)
    assert g.names == ["a"]
    assert g.metadata["reading"]["wiring"].startswith(
        "independent matrices: the ONNX graph's wiring cannot be followed: Conv with a "
        "computed weight 'Conv_3' in the data flow")


def test_a_layer_reading_a_channel_padding_alone_is_refused(tmp_path):
    # the padded channels belong to no layer: conv b would read a set nothing writes
    middle = [helper.make_node("Pad", ["a", "pads"], ["m"])]
    path = _write(tmp_path / "net.onnx", middle, inits={"pads": _i64(0, 1, 0, 0, 0, 1, 0, 0),
                                                        "b.weight": np.ones((2, 5, 1, 1),
                                                                            np.float32)})
    with pytest.raises(GraphStructureError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: layer 'b' reads unit set 2 before any layer "
                                     "writes it")


# --------------------------------------------------------------------------- refused
def test_a_conv_bias_from_the_data_flow_is_refused(tmp_path):
    path = _write(tmp_path / "net.onnx", [helper.make_node("Relu", ["a"], ["m"])],
                  conv_b=["m", "b.weight", "a"])
    with pytest.raises(GraphStructureError,
                       match=rf"^{path}: ONNX Conv node Conv_2 takes its bias from the data "
                             r"flow$"):
        load(path)


def test_a_conv_weight_of_two_axes_is_refused(tmp_path):
    path = _write(tmp_path / "net.onnx", [helper.make_node("Relu", ["a"], ["m"])],
                  inits={"b.weight": WB.reshape(2, 3)})
    with pytest.raises(GraphStructureError,
                       match=rf"^{path}: ONNX Conv Conv_2: weight 'b.weight' has shape "
                             r"\(2, 3\)$"):
        load(path)


def test_a_gemm_without_its_weight_input_is_refused(tmp_path):
    middle = [helper.make_node("Flatten", ["a"], ["f"]),
              helper.make_node("Gemm", ["f"], ["m"], name="dense")]
    path = _write(tmp_path / "net.onnx", middle)
    with pytest.raises(UnreadableFileError,
                       match=rf"^{path}: damaged ONNX model: Gemm node dense lacks its inputs "
                             r"or output$"):
        load(path)


def test_weights_in_external_files_are_refused(tmp_path):
    path = _write(tmp_path / "net.onnx", [helper.make_node("Relu", ["a"], ["m"])])
    model = onnx.load(str(path))
    init = model.graph.initializer[0]
    init.data_location = TensorProto.EXTERNAL
    path.write_bytes(model.SerializeToString())
    with pytest.raises(UnreadableFileError,
                       match=rf"^{path}: ONNX weights stored in external files \('a.weight'\); "
                             r"topo reads self-contained models$"):
        load(path)


def test_a_damaged_weight_tensor_is_refused(tmp_path):
    path = _write(tmp_path / "net.onnx", [helper.make_node("Relu", ["a"], ["m"])])
    model = onnx.load(str(path))
    init = model.graph.initializer[0]
    init.raw_data = init.raw_data[:5]                  # 24 bytes declared, 5 stored
    path.write_bytes(model.SerializeToString())
    with pytest.raises(UnreadableFileError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: damaged tensor in the ONNX model: ")
    assert "\n" not in str(err.value)


def test_a_model_without_nodes_is_refused(tmp_path):
    graph = helper.make_graph(
        [], "empty", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])],
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 2])])
    path = tmp_path / "empty.onnx"
    path.write_bytes(helper.make_model(graph).SerializeToString())
    with pytest.raises(UnreadableFileError,
                       match=rf"^{path}: ONNX model without a graph \(no nodes\)$"):
        load(path)
