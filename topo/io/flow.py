"""Wiring from a data-flow graph: ONNX nodes, a Keras model config, a ``torch.fx`` trace.

Each format turns its graph into a list of :class:`Op` in topological order, every op naming
the values it reads and the value it writes:

- ``"layer"``: a layer candidate (conv, linear): its output is a new unit set it writes;
- ``"norm"``: a normalisation layer: the same units, listed with the set it normalises;
- ``"same"``: anything that keeps the units (activations, pooling, dropout, spatial
  padding or slicing, a constant shift or scale);
- ``"flatten"``: the units stay; a linear layer reading them reads each channel's positions
  (``n_in / channels`` of them, :func:`~topo.io.pipeline.linear_geometry`);
- ``"add"``: the sum of two or more values: their unit sets become one (a residual stream);
- ``"cut"``: a parameter-free op that changes the channels (CIFAR's option A zero-padding
  shortcut): its output belongs to no layer, so an addition of it contributes nothing;
- ``"transpose"``: ``perm`` (0, 2, 3, 1) puts channels last (TensorFlow's layout), (0, 3, 1, 2)
  puts them back; a flatten of a channels-last map reads ``(H, W, C)``;
- ``"ignore"``: an op whose output is not data (ONNX ``Shape``);
- ``"unsupported"``: anything else (concatenation, products of two values, ...).

Semantics checked (:func:`plan_from_flow`): topo's wiring gives a layer the *current* value
of the set it reads, the sum of what the layers before it wrote there (and the network input
for set 0). Every value a layer reads must be exactly that; a graph that reads an earlier
value of a stream after a later addition, adds one layer's output twice, or has several
outputs cannot be written as a wiring and is reported as such (:class:`UnsupportedFlow`).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from topo.errors import GraphStructureError
from topo.io.pipeline import (
    Extraction,
    NetworkPlan,
    conv_geometry,
    linear_geometry,
    oriented,
)

__all__ = ["Op", "UnsupportedFlow", "plan_from_flow"]

_INPUT = -1


class UnsupportedFlow(GraphStructureError):
    """The graph holds something topo's wiring cannot express (the message says what)."""


@dataclass
class Op:
    """One node of a data-flow graph (see the module docstring for the kinds)."""

    kind: str
    inputs: list[str]
    output: str
    name: str = ""
    what: str = ""
    layer: int | None = None
    module: str | None = None
    perm: tuple[int, ...] | None = None
    channels_last: bool = False  # a layer's output layout, or a flatten that reads (H, W, C)


@dataclass(frozen=True)
class _Value:
    unit_set: int
    contributions: frozenset
    flattened: bool = False
    channels_last: bool = False


@dataclass
class _Sets:
    parent: dict[int, int] = field(default_factory=dict)

    def new(self) -> int:
        k = len(self.parent)
        self.parent[k] = k
        return k

    def find(self, k: int) -> int:
        while self.parent[k] != k:
            self.parent[k] = self.parent[self.parent[k]]
            k = self.parent[k]
        return k

    def union(self, a: int, b: int) -> int:
        a, b = self.find(a), self.find(b)
        if a != b:
            self.parent[max(a, b)] = min(a, b)
        return min(a, b)


def plan_from_flow(ex: Extraction, ops: list[Op], inputs: list[str], outputs: list[str],
                   how: str) -> NetworkPlan:
    """The network plan of a data-flow graph over the candidates of ``ex``.

    Parameters
    ----------
    ex
        The extraction whose ``layers`` the ``"layer"`` ops index.
    ops
        The graph's ops in topological order.
    inputs, outputs
        The graph's data inputs and outputs (value names).
    how
        Where the graph comes from, for ``metadata["reading"]``.

    Raises
    ------
    UnsupportedFlow
        An op or a pattern the wiring cannot express (the message names it).
    GraphStructureError
        Widths that disagree (a conv reading a set of another width, a flatten whose
        positions are not whole, ...).
    """
    path = ex.path
    if len(inputs) != 1:
        raise UnsupportedFlow(f"{path}: the graph has {len(inputs)} data inputs "
                              f"({', '.join(inputs) or 'none'}); topo reads one")
    if len(outputs) != 1:
        raise UnsupportedFlow(f"{path}: the graph has {len(outputs)} outputs "
                              f"({', '.join(outputs)}); topo reads networks with one")
    sets = _Sets()
    values: dict[str, _Value] = {inputs[0]: _Value(sets.new(), frozenset([_INPUT]))}
    layers: list[tuple[int, _Value, int, Op]] = []  # (candidate, value read, set written, op)
    norms: list[tuple[str, int, frozenset]] = []
    notes: list[str] = []
    for op in ops:
        data = [values[v] for v in op.inputs if v in values]
        if not data:
            continue  # an op on constants or shapes only
        label = f"{op.what or op.kind} {op.name!r}" if op.name else op.what or op.kind
        if op.kind == "ignore":
            continue  # its output is a shape, not data (ONNX Shape, Size)
        if op.kind == "unsupported":
            raise UnsupportedFlow(f"{path}: {label} in the data flow: topo's wiring has "
                                  "layers, normalisations, pooling, flatten and additions only")
        if op.kind in ("layer", "norm", "same", "flatten", "cut", "transpose") \
                and len(data) != 1:
            raise UnsupportedFlow(f"{path}: {label} takes {len(data)} data inputs; topo reads "
                                  "it with one")
        if op.kind == "layer":
            written = sets.new()
            layers.append((op.layer, data[0], written, op))
            values[op.output] = _Value(written, frozenset([len(layers) - 1]),
                                       channels_last=op.channels_last)
        elif op.kind == "norm":
            norms.append((op.module or op.name, data[0].unit_set, data[0].contributions))
            values[op.output] = data[0]
        elif op.kind == "same":
            values[op.output] = data[0]
        elif op.kind == "flatten":
            values[op.output] = replace(data[0], flattened=True,
                                        channels_last=data[0].channels_last or op.channels_last)
        elif op.kind == "cut":
            values[op.output] = _Value(sets.new(), frozenset(), data[0].flattened,
                                       data[0].channels_last)
            notes.append(f"{label}: a parameter-free op that changes the channels (a "
                         "zero-padding shortcut); it has no weights, so it is no layer and "
                         "adds nothing to the unit set it joins")
        elif op.kind == "transpose":
            if op.perm == (0, 2, 3, 1):
                values[op.output] = replace(data[0], channels_last=True)
            elif op.perm == (0, 3, 1, 2):
                values[op.output] = replace(data[0], channels_last=False)
            else:
                raise UnsupportedFlow(f"{path}: {label} with perm {op.perm}: topo follows "
                                      "channels-first/last transposes only")
        elif op.kind == "add":
            total = data[0]
            for other in data[1:]:
                if total.contributions & other.contributions:
                    raise UnsupportedFlow(f"{path}: {label} adds a layer's output to a sum "
                                          "that already holds it")
                if other.flattened != total.flattened:
                    raise UnsupportedFlow(f"{path}: {label} adds a flattened value to a "
                                          "feature map")
                total = _Value(sets.union(total.unit_set, other.unit_set),
                               total.contributions | other.contributions, total.flattened,
                               total.channels_last)
            values[op.output] = total
        else:  # pragma: no cover - the formats only make the kinds above
            raise UnsupportedFlow(f"{path}: unknown op kind {op.kind!r}")
    if not layers:
        raise UnsupportedFlow(f"{path}: no layer in the data flow from the input")
    if outputs[0] not in values:
        raise UnsupportedFlow(f"{path}: the graph's output {outputs[0]!r} does not depend on "
                              "its input")
    return _plan(ex, sets, values, layers, norms, notes, outputs[0], how)


def _plan(ex: Extraction, sets: _Sets, values: dict[str, _Value], layers: list,
          norms: list, notes: list[str], output: str, how: str) -> NetworkPlan:
    path = ex.path
    input_set = sets.find(0)
    reads = [sets.find(v.unit_set) for _, v, _, _ in layers]
    writes = [sets.find(w) for _, _, w, _ in layers]
    for pos, (i, v, _, _op) in enumerate(layers):
        expected = {q for q in range(pos) if writes[q] == reads[pos]}
        if reads[pos] == input_set:
            expected.add(_INPUT)
        if set(v.contributions) != expected:
            name = ex.layers[i].name
            if not v.contributions and reads[pos] != input_set:
                raise UnsupportedFlow(f"{path}: layer {name!r} reads only a parameter-free "
                                      "op's output")
            raise UnsupportedFlow(
                f"{path}: layer {name!r} reads a value of a residual stream other than its "
                "sum so far (an earlier value after a later addition, or part of a sum); "
                "topo's wiring gives every reader of a stream its current value")
    out = values[output]
    last = len(layers) - 1
    if sets.find(out.unit_set) != writes[last] or set(out.contributions) != {
            q for q in range(len(layers)) if writes[q] == writes[last]}:
        raise UnsupportedFlow(f"{path}: the graph's output is not the sum of what its last "
                              f"layer {ex.layers[layers[last][0]].name!r} and the layers "
                              "adding into it write")
    geometry, channels_last = [], []
    widths: dict[int, int] = {}
    where = f"{path}: in the file's graph"
    for pos, (i, v, _, _op) in enumerate(layers):
        c = ex.layers[i]
        r, w = reads[pos], writes[pos]
        width = widths.get(r)
        if c.kind == "conv":
            if v.flattened:
                raise UnsupportedFlow(f"{path}: conv {c.name!r} reads a flattened value")
            geo = conv_geometry(c, width, where)
            n_in = int(c.weight.shape[1]) * geo.groups
            n_out = int(c.weight.shape[0])
            channels_last.append(False)
        else:
            weight, _ = oriented(c, ex.orientation)
            n_out, n_in_total = int(weight.shape[0]), int(weight.shape[1])
            if width is None:
                width = n_in_total
            geo, note = linear_geometry(c, n_in_total, width, v.flattened, where)
            if note:
                notes.append(note)
            n_in = width
            channels_last.append(geo.kind == "flatten" and v.channels_last)
        widths.setdefault(r, n_in)
        if widths.setdefault(w, n_out) != n_out:
            raise GraphStructureError(
                f"{where}, layer {c.name!r} adds {n_out} outputs into a unit set of "
                f"{widths[w]}")
        geometry.append(geo)
    placed = {module: sets.find(s) for module, s, _ in norms}
    norm_of = {}
    for module, _, contributions in norms:
        if len(contributions) == 1 and _INPUT not in contributions:
            (pos,) = contributions
            norm_of[module] = f"the output of {ex.layers[layers[pos][0]].name!r}"
        elif contributions == {_INPUT}:
            norm_of[module] = "the network input"
    return NetworkPlan([i for i, _, _, _ in layers], reads, writes, geometry, how,
                       channels_last=channels_last, norms=placed, notes=notes,
                       norm_of=norm_of)
