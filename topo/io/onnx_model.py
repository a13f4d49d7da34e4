"""ONNX models (``.onnx``, and gzip of one), read with the ``onnx`` package.

A graph with ``Conv`` nodes, or one that adds two computed values, is read as a network
(:mod:`topo.io.flow`): ``Conv`` nodes (weight ``(C_out, C_in / group, kh, kw)``, ``group``,
strides, pads) and the fully-connected layers below are the layers, in node order;
``BatchNormalization`` is listed with the unit set it normalises; activations, pooling,
``Dropout``, ``Flatten``/``Reshape`` (channels-first order, as PyTorch exports), transposes
between channels-first and channels-last, spatial ``Pad``/``Slice`` and operations with a
constant keep the units; an ``Add`` of two computed values makes a residual stream; a
``Pad`` of the channels (option A shortcuts) is no layer. A graph with other operators
(``Concat``, products of two values, ...) is read as independent matrices, said so.

Otherwise fully-connected layers are ``Gemm`` nodes whose ``B`` is a weight (an initializer or a
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


def read_onnx(path: Path, data: bytes, fmt: str = "onnx", *, network: bool = True
              ) -> Extraction:
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
    if network and _is_network(graph, consts):
        ex = _read_network(model, consts, consumers, path, fmt)
        _add_model_metadata(ex, model)
        return ex
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
    _add_model_metadata(ex, model)
    return ex


def _add_model_metadata(ex: Extraction, model: Any) -> None:
    ex.metadata.update(
        onnx_ir_version=int(model.ir_version),
        onnx_opset=max((int(o.version) for o in model.opset_import if not o.domain),
                       default=None),
        producer=f"{model.producer_name} {model.producer_version}".strip() or None)


# ------------------------------------------------------------------------ network route
def _is_network(graph: Any, consts: dict) -> bool:
    """Conv nodes, or an addition of two computed values (a residual stream)."""
    for node in graph.node:
        if node.op_type in _CONV_OPS:
            return True
        if node.op_type in ("Add", "Sum") and \
                sum(1 for x in node.input if x and x not in consts) >= 2:
            return True
    return False


def _read_network(model: Any, consts: dict, consumers: dict, path: Path,
                  fmt: str) -> Extraction:
    """Every Conv, Gemm and MatMul layer with the wiring of the graph's data flow."""
    from topo.io.flow import Op, UnsupportedFlow, plan_from_flow

    graph = model.graph
    consts = _fold_small_constants(graph, dict(consts))
    layers: list[LayerCandidate] = []
    skipped: list[Skipped] = []
    ops: list[Op] = []
    folded: set[int] = set()  # Add nodes that are a MatMul's bias
    for k, node in enumerate(graph.node):
        if k in folded:
            continue
        op_type = node.op_type
        label = node.name or f"{op_type}_{k}"
        data = [x for x in node.input if x and x not in consts]
        out = node.output[0] if node.output else f"{label}:out"
        if op_type in ("Gemm", "MatMul") and (len(node.input) < 2 or not node.output):
            raise UnreadableFileError(
                f"{path}: damaged {_what(fmt)}: {op_type} node {label} lacks its inputs or "
                "output")
        if op_type == "Conv":
            cand = _conv(node, consts, path, label)
            if cand is None:
                ops.append(Op("unsupported", data, out, label, "Conv with a computed weight"))
                continue
            layers.append(cand)
            ops.append(Op("layer", [node.input[0]], out, label, "Conv",
                          layer=len(layers) - 1))
        elif op_type == "Gemm":
            cand, a, out = _gemm(node, consts, path, k)
            if cand is None:
                ops.append(Op("unsupported", data, node.output[0], label,
                              "Gemm of two computed values"))
                continue
            layers.append(cand)
            ops.append(Op("layer", [a], out, label, "Gemm", layer=len(layers) - 1))
        elif op_type == "MatMul":
            cand, a, out = _matmul(node, consts, consumers, path, k)
            if cand is None:
                ops.append(Op("unsupported", data, node.output[0], label,
                              "MatMul of two computed values"))
                continue
            if out != node.output[0]:
                folded.update(j for j, n in enumerate(graph.node)
                              if n.output and n.output[0] == out)
            layers.append(cand)
            ops.append(Op("layer", [a], out, label, "MatMul", layer=len(layers) - 1))
        elif op_type in _NORM_OPS:
            module = _norm_name(node, label)
            for name in node.input[1:]:
                if name in consts:
                    skipped.append(Skipped(name, consts[name].shape,
                                           f"normalisation layer (ONNX {op_type} node)",
                                           consts[name], "norm", module))
            ops.append(Op("norm", data[:1], out, label, op_type, module=module))
        elif op_type in _CONV_OPS:
            ops.append(Op("unsupported", data, out, label, op_type))
        else:
            ops.append(_plain_op(node, data, out, label, consts))
    graph_inputs = [i.name for i in graph.input if i.name not in consts]
    graph_outputs = [o.name for o in graph.output]
    ex = Extraction(path, fmt, layers, order="graph", orientation=None, firm=True,
                    skipped=skipped)
    ex.metadata["conv_layout"] = "conv kernels (C_out, C_in/groups, kh, kw), as ONNX stores them"
    ex.input_shape = _input_shape(graph, graph_inputs)
    how = ("the ONNX graph's data flow (Conv, Gemm and MatMul layers; Add nodes of two "
           "computed values make residual streams)")
    if not layers:
        ops_seen = sorted({n.op_type for n in graph.node})
        raise UnreadableFileError(
            f"{path}: {_what(fmt).replace('model', 'graph')} without Conv, Gemm or MatMul "
            f"layers of constant weights (operators: {', '.join(ops_seen)})")
    try:
        ex.network = plan_from_flow(ex, ops, graph_inputs, graph_outputs, how)
    except UnsupportedFlow as exc:
        from topo.io.pipeline import independent_plan

        reason = str(exc)
        if reason.startswith(f"{path}: "):
            reason = reason[len(f"{path}: "):]
        ex.network = independent_plan(ex, f"the ONNX graph's wiring cannot be followed: "
                                          f"{reason}")
    return ex


_FOLD_LIMIT = 4096
_RANDOM_OPS = {"RandomNormal", "RandomNormalLike", "RandomUniform", "RandomUniformLike",
               "Multinomial", "Bernoulli"}


def _fold_small_constants(graph: Any, consts: dict) -> dict:
    """Values computed from small constants alone (pads and slice bounds that exporters
    build with Reshape/Slice/Concat of constants), evaluated with onnx's reference
    evaluator; anything it cannot evaluate stays unknown."""
    from onnx.reference import ReferenceEvaluator

    for node in graph.node:
        inputs = [x for x in node.input if x]
        if not inputs or node.op_type in _RANDOM_OPS or node.domain not in ("", "ai.onnx") \
                or not all(x in consts and np.size(consts[x]) <= _FOLD_LIMIT for x in inputs):
            continue
        if all(o in consts for o in node.output):
            continue
        try:
            results = ReferenceEvaluator(node).run(None, {x: consts[x] for x in inputs})
        except Exception:  # noqa: BLE001 - an op the evaluator cannot run stays unknown
            continue
        for name, value in zip(node.output, results):
            if name and isinstance(value, np.ndarray):
                consts[name] = value
    return consts


_SAME_OPS = {
    "Relu", "LeakyRelu", "PRelu", "Sigmoid", "Tanh", "Elu", "Selu", "Celu", "Softplus",
    "Softsign", "HardSigmoid", "HardSwish", "Clip", "Mish", "ThresholdedRelu", "Gelu",
    "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool", "LpPool",
    "GlobalLpPool", "Dropout", "Identity", "Softmax", "LogSoftmax", "Cast", "Resize",
    "Upsample", "LRN", "MaxRoundingPool", "Abs", "Neg", "Sqrt", "Exp", "Log", "Floor",
    "Ceil", "Round", "Sign", "Erf",
}
_FLATTEN_OPS = {"Flatten", "Reshape", "Squeeze", "Unsqueeze"}
_ELEMENTWISE = {"Add", "Sub", "Mul", "Div", "Sum", "Pow", "Max", "Min"}


def _plain_op(node: Any, data: list[str], out: str, label: str, consts: dict) -> Any:
    """The flow op of a node that is not a layer or normalisation."""
    from onnx import helper

    from topo.io.flow import Op

    op_type = node.op_type
    if op_type in ("Shape", "Size"):
        return Op("ignore", data, out, label, op_type)
    if op_type in _SAME_OPS:
        return Op("same", data[:1], out, label, op_type)
    if op_type in _FLATTEN_OPS:
        return Op("flatten", data[:1], out, label, op_type)
    if op_type == "Transpose":
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        perm = tuple(int(p) for p in attrs.get("perm", ()))
        return Op("transpose", data[:1], out, label, op_type, perm=perm)
    if op_type in ("Add", "Sum") and len(data) >= 2:
        return Op("add", data, out, label, op_type)
    if op_type in _ELEMENTWISE and len(data) == 1:
        return Op("same", data, out, label, f"{op_type} by a constant")
    if op_type in ("Pad", "Slice"):
        axes = _touched_axes(node, consts)
        if axes is not None and not axes & {0, 1}:
            return Op("same", data[:1], out, label, f"{op_type} of the spatial axes")
        if op_type == "Pad" and axes == {1}:
            return Op("cut", data[:1], out, label, "Pad of the channels")
        return Op("unsupported", data, out, label, f"{op_type} of the channels")
    return Op("unsupported", data, out, label, op_type)


def _touched_axes(node: Any, consts: dict) -> set[int] | None:
    """Axes a Pad or Slice changes (None when the node does not say)."""
    from onnx import helper

    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if node.op_type == "Pad":
        pads = attrs.get("pads")
        if pads is None and len(node.input) > 1 and node.input[1] in consts:
            pads = consts[node.input[1]].tolist()
        if pads is None:
            return None
        half = len(pads) // 2
        axes = {a for a in range(half) if pads[a] or pads[a + half]}
        if len(node.input) > 3 and node.input[3] in consts:
            listed = [int(a) for a in consts[node.input[3]].reshape(-1)]
            axes = {listed[a] for a in axes if a < len(listed)}
        return axes
    starts, ends = attrs.get("starts"), attrs.get("ends")
    axes_in, steps = attrs.get("axes"), None
    if starts is None:
        got = [consts.get(x) if x else None for x in list(node.input[1:5]) + [""] * 4][:4]
        if got[0] is None or got[1] is None:
            return None
        starts, ends = got[0].reshape(-1).tolist(), got[1].reshape(-1).tolist()
        axes_in = None if got[2] is None else got[2].reshape(-1).tolist()
        steps = None if got[3] is None else got[3].reshape(-1).tolist()
    if axes_in is None:
        axes_in = list(range(len(starts)))
    steps = steps or [1] * len(starts)
    # a slice from 0 to the end with step 1 leaves its axis as it is
    return {int(a) for a, b, e, st in zip(axes_in, starts, ends, steps)
            if not (b == 0 and e >= 2**31 - 1 and st == 1)}


def _conv(node: Any, consts: dict, path: Path, label: str) -> LayerCandidate | None:
    from onnx import helper

    if len(node.input) < 2 or node.input[1] not in consts:
        return None
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    w = np.asarray(consts[node.input[1]], dtype=np.float64)
    if w.ndim < 3:
        raise GraphStructureError(f"{path}: ONNX Conv {label}: weight {node.input[1]!r} has "
                                  f"shape {w.shape}")
    bias = None
    if len(node.input) > 2 and node.input[2]:
        if node.input[2] not in consts:
            raise GraphStructureError(
                f"{path}: ONNX Conv node {label} takes its bias from the data flow")
        bias = _bias_vector(np.asarray(consts[node.input[2]], dtype=np.float64),
                            w.shape[0], path, node.input[2])
    return LayerCandidate(_layer_name(node.input[1], node, 0), w, None, None, bias,
                          kind="conv", groups=int(attrs.get("group", 1)))


def _norm_name(node: Any, label: str) -> str:
    scale = node.input[1] if len(node.input) > 1 else ""
    for suffix in (".weight", "/gamma", ".scale", "/scale"):
        if scale.endswith(suffix):
            return scale[: -len(suffix)]
    return label


def _input_shape(graph: Any, names: list[str]) -> tuple[int, ...] | None:
    for value in graph.input:
        if names and value.name == names[0]:
            dims = value.type.tensor_type.shape.dim
            sizes = [d.dim_value if d.HasField("dim_value") else None for d in dims]
            if len(sizes) >= 2 and all(s for s in sizes[1:]):
                return tuple(int(s) for s in sizes[1:])
    return None


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
