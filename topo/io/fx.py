"""The network of a PyTorch model object, wired by tracing it with ``torch.fx``.

A state_dict says which tensors a model has, not how ``forward`` combines them; module
names say it for the standard families only (:mod:`topo.io.families`). A user who has the
model object in their own process can give it to :func:`from_module`: ``torch.fx`` traces
``forward`` symbolically (this runs the user's own code, in the user's process, on proxy
values, never code from a file) and the traced graph gives the wiring, as the data flow of
an ONNX file does (:mod:`topo.io.flow`). The weights, masks and biases are read from the
model's ``state_dict`` by the same rules as a saved file (``torch.nn.utils.prune``'s
``weight_orig``/``weight_mask``, parametrizations, ...).

What the trace may hold: ``nn.Conv1d/2d/3d`` and ``nn.Linear`` (the layers), normalisation
modules (listed with the unit set they normalise), activations, pooling, dropout,
``flatten``/``view``/``reshape``, additions of two values (residual streams; ``+``, ``+=``,
``torch.add``), spatial slicing and padding, and a zero-padding of the channels (CIFAR's
option A shortcut, which is no layer). Anything else (``torch.cat``, a product of two
values, a module called twice, functional convolutions, unknown leaf modules) is refused
with the node named.
"""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import GraphStructureError
from topo.graph import LayeredGraph
from topo.io.flow import Op, plan_from_flow
from topo.io.pipeline import OUT_IN, build_graph
from topo.io.state_dict import extract_state_dict

__all__ = ["from_module"]

_LAYER_CLASSES = ("Conv1d", "Conv2d", "Conv3d", "Linear")
_NORM_CLASSES = ("BatchNorm1d", "BatchNorm2d", "BatchNorm3d", "SyncBatchNorm", "LayerNorm",
                 "GroupNorm", "InstanceNorm1d", "InstanceNorm2d", "InstanceNorm3d",
                 "LocalResponseNorm")
_SAME_CLASSES = {
    "ReLU", "ReLU6", "LeakyReLU", "PReLU", "ELU", "SELU", "CELU", "GELU", "SiLU", "Mish",
    "Sigmoid", "Tanh", "Hardswish", "Hardsigmoid", "Hardtanh", "Softplus", "Softsign",
    "Softmax", "LogSoftmax", "Softmax2d", "Dropout", "Dropout1d", "Dropout2d", "Dropout3d",
    "AlphaDropout", "FeatureAlphaDropout", "Identity", "MaxPool1d", "MaxPool2d", "MaxPool3d",
    "AvgPool1d", "AvgPool2d", "AvgPool3d", "AdaptiveAvgPool1d", "AdaptiveAvgPool2d",
    "AdaptiveAvgPool3d", "AdaptiveMaxPool1d", "AdaptiveMaxPool2d", "AdaptiveMaxPool3d",
    "LPPool1d", "LPPool2d", "ZeroPad1d", "ZeroPad2d", "ZeroPad3d", "ConstantPad1d",
    "ConstantPad2d", "ConstantPad3d", "ReflectionPad1d", "ReflectionPad2d",
    "ReplicationPad1d", "ReplicationPad2d", "Upsample", "UpsamplingNearest2d",
    "UpsamplingBilinear2d",
}
_SAME_FUNCTIONS = {
    "relu", "relu_", "relu6", "leaky_relu", "gelu", "silu", "elu", "selu", "sigmoid", "tanh",
    "hardswish", "hardsigmoid", "hardtanh", "mish", "softplus", "softmax", "log_softmax",
    "dropout", "dropout1d", "dropout2d", "dropout3d", "max_pool1d", "max_pool2d",
    "max_pool3d", "avg_pool1d", "avg_pool2d", "avg_pool3d", "adaptive_avg_pool1d",
    "adaptive_avg_pool2d", "adaptive_avg_pool3d", "adaptive_max_pool1d",
    "adaptive_max_pool2d", "adaptive_max_pool3d", "interpolate", "contiguous", "clone",
    "detach", "float", "double", "half", "to", "type_as", "abs", "neg", "exp",
}
_FLATTEN_FUNCTIONS = {"flatten", "reshape", "view", "squeeze", "unsqueeze"}
_POOL_METHODS = {"mean", "amax", "sum", "max"}
_SIZE_METHODS = {"size", "dim", "numel", "shape"}


def from_module(model: Any, *, masks: Any = None,
                input_shape: tuple[int, ...] | None = None) -> LayeredGraph:
    """The LayeredGraph of a PyTorch model object, wired by tracing it with ``torch.fx``.

    Parameters
    ----------
    model
        A ``torch.nn.Module`` made of convolutions, linear layers, normalisations,
        activations, pooling, flatten and additions (see the module docstring).
    masks
        Optional structure per layer: a mapping from a layer's module name (``"layer1.0.conv1"``)
        or weight name (``"layer1.0.conv1.weight"``) to a 0/1 tensor or array of the weight's
        shape; the connections are its non-zeros. Without it the connections are the
        weight's non-zeros, or the masks ``torch.nn.utils.prune`` keeps in the model.
    input_shape
        Optional shape of one input sample, channels first (e.g. ``(3, 32, 32)``).

    Returns
    -------
    LayeredGraph
        Layers in the order ``forward`` calls them, with geometry and wiring (residual
        additions make streams); ``metadata["format"]`` is ``"torch.fx"``, normalisation
        layers are listed in ``metadata["skipped"]`` with the unit set they normalise.

    Raises
    ------
    GraphStructureError
        ``torch.fx`` cannot trace the model, or the trace holds an operation the wiring
        cannot express (the message names the node), or the shapes do not fit together.
    ConfigError
        ``model`` is not a ``torch.nn.Module``.

    Examples
    --------
    >>> import torch
    >>> class Block(torch.nn.Module):
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.stem = torch.nn.Conv2d(3, 4, 3, padding=1)
    ...         self.conv = torch.nn.Conv2d(4, 4, 3, padding=1)
    ...         self.fc = torch.nn.Linear(4, 2)
    ...     def forward(self, x):
    ...         x = self.stem(x)
    ...         x = x + self.conv(torch.relu(x))
    ...         return self.fc(x.mean((2, 3)))
    >>> g = from_module(Block())
    >>> g.names, g.reads, g.writes
    (['stem', 'conv', 'fc'], [0, 1, 1], [1, 1, 2])
    """
    import torch
    import torch.fx

    from topo.errors import ConfigError
    from topo.io.torch_file import _to_numpy

    if not isinstance(model, torch.nn.Module):
        raise ConfigError(f"from_module takes a torch.nn.Module, got {type(model).__name__}")
    where = Path(f"<{type(model).__name__} model>")
    try:
        traced = torch.fx.symbolic_trace(model)
    except Exception as exc:  # noqa: BLE001 - any tracing failure is the same refusal
        raise GraphStructureError(
            f"{where}: torch.fx cannot trace the model ({_first_line(exc)}); topo needs a "
            "forward without data-dependent control flow") from None
    modules = dict(model.named_modules())
    classes = {name: f"{type(m).__module__}.{type(m).__name__}" for name, m in modules.items()}
    attrs = {name: {"groups": m.groups} for name, m in modules.items()
             if type(m).__name__ in _LAYER_CLASSES[:3]}
    state = {k: _to_numpy(v) for k, v in model.state_dict().items()}
    mask_arrays = None
    if masks is not None:
        mask_arrays = {str(k): _to_numpy(v) if isinstance(v, torch.Tensor) else np.asarray(v)
                       for k, v in dict(masks).items()}
    ex = extract_state_dict(state, where, "torch.fx", order="module", orientation=OUT_IN,
                            module_classes=classes, masks=mask_arrays, modules=attrs,
                            strip=False)
    ops, inputs, outputs = _ops(traced, modules, ex, where)
    ex.network = plan_from_flow(ex, ops, inputs, outputs,
                                "torch.fx trace of the model's forward (calls of Conv and "
                                "Linear modules; additions make residual streams)")
    if input_shape is not None:
        ex.network.input_shape = tuple(int(s) for s in input_shape)
    return build_graph(ex)


def _ops(traced: Any, modules: dict[str, Any], ex: Any, where: Path):
    """The flow ops of a traced graph."""
    import torch

    layer_index = {c.name: i for i, c in enumerate(ex.layers)}
    ops: list[Op] = []
    inputs: list[str] = []
    outputs: list[str] = []
    called: set[str] = set()
    for node in traced.graph.nodes:
        name = node.name
        data = [a.name for a in _nodes(node.args) + _nodes(node.kwargs)]
        if node.op == "placeholder":
            inputs.append(name)
            continue
        if node.op == "output":
            outputs.extend(a.name for a in _nodes(node.args))
            continue
        if node.op == "get_attr":
            continue  # a parameter or buffer used directly: not data
        if node.op == "call_module":
            target = str(node.target)
            module = modules.get(target)
            cls = type(module).__name__
            if target in called and cls in _LAYER_CLASSES:
                ops.append(Op("unsupported", data, name, target,
                              f"{cls} called a second time (a shared layer)"))
                continue
            called.add(target)
            if cls in _LAYER_CLASSES and target in layer_index:
                ops.append(Op("layer", data[:1] if len(data) == 1 else data, name, target, cls,
                              layer=layer_index[target]))
            elif cls in _NORM_CLASSES:
                ops.append(Op("norm", data, name, target, cls, module=target))
            elif cls in _SAME_CLASSES:
                ops.append(Op("same", data, name, target, cls))
            elif cls == "Flatten":
                ops.append(Op("flatten", data, name, target, cls))
            else:
                ops.append(Op("unsupported", data, name, target, f"module {cls}"))
            continue
        fn = node.target
        fname = fn if isinstance(fn, str) else getattr(fn, "__name__", str(fn))
        if node.op == "call_method" and fname in _SIZE_METHODS:
            ops.append(Op("ignore", data, name, name, f".{fname}()"))
        elif fn in (operator.add, operator.iadd, torch.add) or fname in ("add", "add_",
                                                                         "__iadd__"):
            kind = "add" if len(data) >= 2 else "same"
            ops.append(Op(kind, data, name, name, "add"))
        elif fn in (operator.sub, operator.mul, operator.truediv, operator.isub,
                    operator.imul) or fname in ("mul", "sub", "div", "mul_", "sub_", "div_"):
            kind = "same" if len(data) == 1 else "unsupported"
            ops.append(Op(kind, data, name, name, f"{fname} of two values"))
        elif fname == "getitem":
            ops.append(_getitem(node, data, name))
        elif fname == "pad":
            ops.append(_pad(node, data, name))
        elif fname in _FLATTEN_FUNCTIONS:
            ops.append(Op("flatten", data[:1], name, name, fname))
        elif fname == "permute":
            perm = tuple(int(p) for p in (node.args[1:] if len(node.args) > 2
                                          else node.args[1]))
            ops.append(Op("transpose", data[:1], name, name, fname, perm=perm))
        elif fname in _POOL_METHODS:
            ops.append(_reduce(node, data, name, fname))
        elif fname in _SAME_FUNCTIONS:
            ops.append(Op("same", data[:1], name, name, fname))
        else:
            ops.append(Op("unsupported", data, name, name, f"function {fname}"))
    return ops, inputs, outputs


def _nodes(args: Any) -> list[Any]:
    import torch.fx

    out = []
    if isinstance(args, torch.fx.Node):
        return [args]
    if isinstance(args, (list, tuple)):
        for a in args:
            out.extend(_nodes(a))
    elif isinstance(args, dict):
        for a in args.values():
            out.extend(_nodes(a))
    return out


def _getitem(node: Any, data: list[str], name: str) -> Op:
    """``x[:, :, ::2, ::2]`` keeps the channels; any other index of a tensor is refused
    (an index of a ``size()`` tuple is no data and never reaches the flow)."""
    index = node.args[1] if len(node.args) > 1 else None
    if isinstance(index, tuple) and len(index) >= 2 and all(
            isinstance(i, slice) and i == slice(None) for i in index[:2]):
        return Op("same", data[:1], name, name, "spatial slice")
    return Op("unsupported", data[:1], name, name, f"index {index!r}")


def _pad(node: Any, data: list[str], name: str) -> Op:
    pads = node.args[1] if len(node.args) > 1 else node.kwargs.get("pad")
    if isinstance(pads, (list, tuple)) and all(isinstance(p, int) for p in pads):
        if len(pads) <= 4 or not any(pads[4:]):
            return Op("same", data[:1], name, name, "spatial padding")
        if len(pads) == 6:
            return Op("cut", data[:1], name, name, "zero-padding of the channels")
    return Op("unsupported", data[:1], name, name, f"pad {pads!r}")


def _reduce(node: Any, data: list[str], name: str, fname: str) -> Op:
    """``x.mean((2, 3))`` (global pooling) keeps the channels; a reduction over the
    channels does not."""
    dims = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim")
    dims = (dims,) if isinstance(dims, int) else dims
    if isinstance(dims, (list, tuple)) and dims and all(isinstance(d, int) and d >= 2
                                                        for d in dims):
        return Op("flatten", data[:1], name, name, f"{fname} over the spatial axes")
    return Op("unsupported", data[:1], name, name, f"{fname} over {dims!r}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
