"""ONNX models (``.onnx``, and gzip of one), read with the ``onnx`` package.

Fully-connected layers are ``Gemm`` nodes whose ``B`` is a weight (an initializer or a
``Constant``), stored ``(out, in)`` with ``transB=1`` and ``(in, out)`` with ``transB=0``,
scaled by ``alpha`` (bias ``C`` by ``beta``), and ``MatMul`` nodes with a weight as second
operand (``(in, out)``), with the bias of an ``Add`` that follows. Layers are taken in the
graph's node order (ONNX nodes are topologically sorted) and must form a chain in the data
flow: each layer's input comes from the previous layer's output through nodes with one data
input (activations, ``Flatten``, ``Reshape``, ``Dropout``, ...). Older exporters also list
initializers as graph inputs; those are weights, not inputs. ``Conv`` and normalisation nodes
before the first layer are listed as skipped; a graph without fully-connected layers is
refused naming the operators it has.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import GraphStructureError, UnreadableFileError
from topo.io.pipeline import IN_OUT, OUT_IN, Extraction, LayerCandidate, Skipped

__all__ = ["read_onnx"]

_CONV_OPS = {"Conv", "ConvTranspose", "ConvInteger", "QLinearConv"}
_NORM_OPS = {"BatchNormalization", "LayerNormalization", "InstanceNormalization",
             "GroupNormalization", "LpNormalization"}


def read_onnx(path: Path, data: bytes, fmt: str = "onnx") -> Extraction:
    """Extract the fully-connected chain of a serialized ONNX model.

    Raises
    ------
    UnreadableFileError
        Damaged protobuf, weights in external files, no fully-connected layers.
    GraphStructureError
        Layers that do not form a chain in the data flow.
    """
    import onnx
    from google.protobuf.message import DecodeError
    from onnx import numpy_helper

    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise UnreadableFileError(
            f"{path}: damaged {_what(fmt)} (truncated or corrupt?): {_first_line(exc)}") \
            from None
    graph = model.graph
    if not graph.node:
        raise UnreadableFileError(f"{path}: {_what(fmt)} without a graph (no nodes)")
    consts: dict[str, np.ndarray] = {}
    try:
        for init in graph.initializer:
            if init.data_location == onnx.TensorProto.EXTERNAL:
                raise UnreadableFileError(
                    f"{path}: ONNX weights stored in external files ({init.name!r}); "
                    "topo reads self-contained models")
            consts[init.name] = numpy_helper.to_array(init)
        for node in graph.node:
            if node.op_type == "Constant" and node.output:
                for attr in node.attribute:
                    if attr.name == "value":
                        consts[node.output[0]] = numpy_helper.to_array(attr.t)
    except (ValueError, TypeError, KeyError) as exc:
        raise UnreadableFileError(
            f"{path}: damaged tensor in the {_what(fmt)}: {_first_line(exc)}") from None
    producer = {out: node for node in graph.node for out in node.output}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    layers: list[LayerCandidate] = []
    outputs: list[str] = []
    inputs: list[str] = []
    skipped: list[Skipped] = []
    for k, node in enumerate(graph.node):
        op = node.op_type
        if op in ("Gemm", "MatMul") and (len(node.input) < 2 or len(node.output) < 1):
            raise UnreadableFileError(
                f"{path}: damaged {_what(fmt)}: {op} node {node.name or k} lacks its inputs "
                "or output")
        if op == "Gemm":
            cand, a, out = _gemm(node, consts, path, k)
        elif op == "MatMul":
            cand, a, out = _matmul(node, consts, consumers, path, k)
        else:
            if op in _CONV_OPS | _NORM_OPS:
                why = (f"convolution (ONNX {op} node): topo reads fully-connected layers"
                       if op in _CONV_OPS else f"normalisation layer (ONNX {op} node)")
                for name in node.input[1:]:
                    if name in consts:
                        skipped.append(Skipped(name, consts[name].shape, why, consts[name],
                                               "conv" if op in _CONV_OPS else "norm"))
            continue
        if cand is None:
            continue
        layers.append(cand)
        inputs.append(a)
        outputs.append(out)
    if not layers:
        ops = sorted({n.op_type for n in graph.node})
        kind = "Conv nodes" if _CONV_OPS & set(ops) else "no Gemm or MatMul layers"
        raise UnreadableFileError(
            f"{path}: {_what(fmt).replace('model', 'graph')} with {kind} and no "
            "fully-connected layers "
            f"(operators: {', '.join(ops)})")
    for k in range(1, len(layers)):
        source = _trace_back(inputs[k], producer, consts)
        if source != outputs[k - 1]:
            raise GraphStructureError(
                f"{path}: the ONNX graph is not a chain of fully-connected layers: the input "
                f"of {layers[k].name!r} does not come from {layers[k - 1].name!r} alone "
                f"({'a branch or merge' if source is None else f'it comes from {source!r}'})")
    ex = Extraction(path, fmt, layers, order="graph", orientation=None, firm=True,
                    skipped=skipped)
    ex.metadata.update(
        onnx_ir_version=int(model.ir_version),
        onnx_opset=max((int(o.version) for o in model.opset_import if not o.domain),
                       default=None),
        producer=f"{model.producer_name} {model.producer_version}".strip() or None)
    return ex


def _gemm(node: Any, consts: dict, path: Path, k: int):
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if len(node.input) < 2 or node.input[1] not in consts:
        return None, None, None
    if node.input[0] in consts:
        raise GraphStructureError(f"{path}: ONNX Gemm node {k} multiplies two constants")
    if int(attrs.get("transA", 0)) != 0:
        raise GraphStructureError(
            f"{path}: ONNX Gemm node {node.name or k} has transA=1 (its data is transposed); "
            "not read")
    w = consts[node.input[1]].astype(np.float64, copy=False)
    if w.ndim != 2:
        raise GraphStructureError(f"{path}: ONNX Gemm weight {node.input[1]!r} is not 2-D")
    orientation = OUT_IN if int(attrs.get("transB", 0)) else IN_OUT
    alpha = float(attrs.get("alpha", 1.0))
    beta = float(attrs.get("beta", 1.0))
    if alpha != 1.0:
        w = w * alpha
    n_out = w.shape[0] if orientation == OUT_IN else w.shape[1]
    bias = None
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in consts:
            raise GraphStructureError(
                f"{path}: ONNX Gemm node {node.name or k} takes its bias from the data flow")
        c = np.asarray(consts[node.input[2]], dtype=np.float64) * beta
        bias = _bias_vector(c, n_out, path, node.input[2])
    return (LayerCandidate(_layer_name(node.input[1], node, k), w, orientation, None, bias),
            node.input[0], node.output[0])


def _matmul(node: Any, consts: dict, consumers: dict, path: Path, k: int):
    a, b = node.input[0], node.input[1]
    if b not in consts:
        if a in consts:
            raise GraphStructureError(
                f"{path}: ONNX MatMul node {node.name or k} has its weight as first operand; "
                "not read")
        return None, None, None
    w = consts[b].astype(np.float64, copy=False)
    if w.ndim != 2:
        raise GraphStructureError(f"{path}: ONNX MatMul weight {b!r} is not 2-D")
    out = node.output[0]
    bias = None
    users = consumers.get(out, [])
    if len(users) == 1 and users[0].op_type == "Add":
        other = [x for x in users[0].input if x != out]
        if len(other) == 1 and other[0] in consts:
            c = np.asarray(consts[other[0]], dtype=np.float64)
            if c.size == w.shape[1]:
                bias = c.reshape(-1)
                out = users[0].output[0]
    return LayerCandidate(_layer_name(b, node, k), w, IN_OUT, None, bias), a, out


def _bias_vector(c: np.ndarray, n_out: int, path: Path, name: str) -> np.ndarray:
    if c.size == n_out:
        return c.reshape(-1)
    if c.size == 1:
        return np.full(n_out, float(c.reshape(-1)[0]))
    raise GraphStructureError(
        f"{path}: ONNX bias {name!r} has shape {c.shape} for {n_out} outputs")


def _trace_back(name: str, producer: dict, consts: dict) -> str | None:
    """The nearest value upstream of ``name`` that a layer wrote, through one-input nodes."""
    seen = 0
    while name in producer and seen < 10_000:
        node = producer[name]
        if node.op_type in ("Gemm", "MatMul"):
            return name
        if node.op_type in _CONV_OPS:
            return None
        if node.op_type == "Add" and any(x in consts for x in node.input):
            data = [x for x in node.input if x not in consts]
            upstream = producer.get(data[0]) if len(data) == 1 else None
            if upstream is not None and upstream.op_type == "MatMul":
                return name  # MatMul + Add is one layer; its output is the Add's
        data = [x for x in node.input if x and x not in consts]
        if len(data) != 1:
            return None
        name = data[0]
        seen += 1
    return name


def _layer_name(weight_name: str, node: Any, k: int) -> str:
    for suffix in (".weight", "/weight", ".kernel", "/kernel"):
        if weight_name.endswith(suffix):
            return weight_name[: -len(suffix)]
    return weight_name or node.name or f"layer{k}"


def _what(fmt: str) -> str:
    return "gzip of an ONNX model" if fmt == "onnx-gzip" else "ONNX model"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
