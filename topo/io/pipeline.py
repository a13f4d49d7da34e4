"""The reading pipeline every format that yields named tensors goes through.

1. **extract** (one module per format): the file's layer candidates (name, array as stored,
   the orientation that format's convention gives it, mask, bias), what the list order means
   (the file's own graph order, the order modules were defined in, or nothing), and every
   tensor that is not a layer, with the reason (kept here, arrays included, so that later
   readers of convolutional networks can use them);
2. **resolve the layer chain** (shared, :func:`resolve_chain`): the file's graph order where it
   has one; else the numbers in the names (``fc2`` before ``fc10``; numbers order layers that
   share a name pattern); else the unique chain of shapes. Names and shapes must agree, and
   where an orientation is not fixed by the format it is inferred from the chain and stated.
   Where several chains fit, the module order decides if the file records one, otherwise the
   file is refused with the candidates named. A different network than the file holds is the
   worst bug a reader can have; a clear refusal is always better;
3. **build** the :class:`~topo.graph.LayeredGraph` (:func:`build_graph`), with
   ``metadata["skipped"]`` listing what was not read and why (``[{"name", "shape", "why"}]``)
   and ``metadata["reading"]`` saying how the order and orientation were found.

Networks with convolutions (and any file whose own graph adds layer outputs) take a second
route at step 2: the layers, their wiring (the unit set each reads and writes) and their
geometry come from a :class:`NetworkPlan`: the file's own graph (ONNX nodes, a Keras model
config: :mod:`topo.io.flow`), the module names of a standard family (torchvision-style and
CIFAR ResNets, VGG, LeNet-5, Conv-2/4/6: :mod:`topo.io.families`), or, when neither says how
the layers are wired, *independent matrices* (every layer its own input and output set;
per-matrix analyses only), said in ``metadata["reading"]["wiring"]``. Normalisation layers
are listed as skipped with the unit set they normalise. A file of fully-connected layers
alone keeps the chain route above.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import GraphStructureError, UnreadableFileError
from topo.graph import LayeredGraph, LayerGeometry

__all__ = ["OUT_IN", "IN_OUT", "LayerCandidate", "Skipped", "Extraction", "Resolution",
           "NetworkPlan", "resolve_chain", "build_graph", "name_template", "independent_plan",
           "oriented"]

OUT_IN = "out_in"
"""Orientation ``(n_out, n_in)``: PyTorch's ``nn.Linear.weight``, ONNX Gemm with transB=1."""
IN_OUT = "in_out"
"""Orientation ``(n_in, n_out)``: Keras Dense kernels, ONNX MatMul weights, most numpy dumps."""

_ORIENTATION_WORDS = {OUT_IN: "(out, in)", IN_OUT: "(in, out)"}
_MAX_ORDERS_SHOWN = 2
_SEARCH_BUDGET = 200_000


@dataclass
class LayerCandidate:
    """A weight tensor that may be a layer, as the file stores it.

    ``kind`` is ``"linear"`` (a 2-D weight) or ``"conv"`` (a convolution kernel, always kept in
    PyTorch's layout ``(C_out, C_in / groups, *kernel)``: extractors of other layouts convert
    it). ``orientation`` (linear layers) is ``OUT_IN``, ``IN_OUT``, or ``None`` when the file
    does not fix it (the extraction's default then applies, or it is inferred). ``mask`` (same
    shape as ``weight``) gives the connections when the file has one; ``bias`` is the layer's
    bias vector. ``groups`` is a conv's groups when the file states it (``None``: from the
    width of the unit set it reads). Strides, padding and dilation are not recorded: no
    analysis uses them, and a network must read the same from every format, whether the
    file states them or not.
    """

    name: str
    weight: Any
    orientation: str | None = None
    mask: Any = None
    bias: Any = None
    note: str | None = None
    kind: str = "linear"
    groups: int | None = None

    @property
    def shape(self) -> tuple[int, int]:
        return (int(self.weight.shape[0]), int(self.weight.shape[1]))


@dataclass
class Skipped:
    """A tensor (or entry) of the file that is not part of the layered graph, and why."""

    name: str
    shape: tuple[int, ...] | None
    why: str
    array: Any = field(default=None, repr=False)
    kind: str = "other"  # "conv", "norm", "optimizer", "buffer", "mask", "other"
    module: str | None = None  # the module (layer) it belongs to, for normalisation layers

    def record(self) -> dict[str, Any]:
        return {"name": self.name, "shape": None if self.shape is None else list(self.shape),
                "why": self.why}


@dataclass
class Extraction:
    """What a format-specific extractor found in a file.

    ``order`` says what the order of ``layers`` means: ``"graph"`` (the file's own graph order:
    ONNX nodes, a Keras model config; authoritative), ``"module"`` (the order modules were
    defined or arrays saved in: a tie-breaker only) or ``"none"``. ``orientation`` is the
    format's convention for candidates whose own ``orientation`` is ``None``; with
    ``firm=False`` the other orientation is used when only it fits names, shapes and biases,
    and with ``orientation=None`` it is inferred and refused where both fit.
    """

    path: Path
    format: str
    layers: list[LayerCandidate]
    order: str = "none"
    orientation: str | None = OUT_IN
    firm: bool = False
    skipped: list[Skipped] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    metadata: dict[str, Any] = field(default_factory=dict)
    input_shape: tuple[int, ...] | None = None
    network: NetworkPlan | None = None
    modules: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def has_convs(self) -> bool:
        """True when some layer candidate is a convolution."""
        return any(c.kind == "conv" for c in self.layers)


@dataclass
class NetworkPlan:
    """How the layer candidates of an extraction form a network.

    ``order`` lists candidate indices in forward order; ``reads``/``writes`` give each of
    those layers' unit sets (any integers, the network input being the set the first layer
    reads; renumbered by first use as :class:`~topo.graph.Wiring` does) and ``geometry`` its
    :class:`~topo.graph.LayerGeometry`. ``channels_last[k]`` marks a flatten layer whose
    weight reads an ``(H, W, C)``-ordered feature map (Keras, TensorFlow exports): its columns
    are reordered into topo's ``(C, H, W)`` order. ``independent`` builds independent
    matrices (reads/writes ignored). ``how`` says where the wiring came from; ``norms`` maps
    a normalisation module's name to the unit set it normalises and ``norm_of`` to what it
    normalises (``"the output of 'conv1'"``) where that is one layer's output or input;
    ``family`` names a recognised architecture family.
    """

    order: list[int]
    reads: list[int]
    writes: list[int]
    geometry: list[LayerGeometry]
    how: str
    channels_last: list[bool] = field(default_factory=list)
    independent: bool = False
    family: str | None = None
    norms: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_shape: tuple[int, ...] | None = None
    norm_of: dict[str, str] = field(default_factory=dict)


@dataclass
class Resolution:
    """The resolved chain: candidate indices input side first, and the orientation used."""

    order: list[int]
    orientation: str | None
    how_order: str
    how_orientation: str


def name_template(name: str) -> tuple[str, tuple[int, ...]]:
    """A layer name's pattern with its numbers taken out: ``"net.10"`` -> ``("net.#", (10,))``.

    Layers that share a pattern are ordered by their numbers (``layer2`` before ``layer10``);
    layers of different patterns (``encoder.0`` and ``decoder.0``) are not ordered by name.
    """
    numbers = tuple(int(n) for n in re.findall(r"\d+", name))
    return re.sub(r"\d+", "#", name), numbers


def resolve_chain(ex: Extraction) -> Resolution:
    """Order and orient the layer candidates of ``ex`` into one chain (see module docstring).

    Raises
    ------
    GraphStructureError
        No order fits (the message shows the order the names or the file give and where the
        widths disagree), both orientations fit where the format does not fix one, or several
        orders fit and the file records no module order.
    """
    cands = ex.layers
    n = len(cands)
    if n == 0:
        raise GraphStructureError(f"{ex.path}: no fully-connected layers")
    options = _orientation_options(ex)
    graph_order = ex.order == "graph"
    preds = [set()] * n if graph_order else _name_predecessors([c.name for c in cands])
    found: dict[str | None, list[list[int]]] = {}
    module_fits: dict[str | None, bool] = {}
    for o in options:
        shapes = _oriented_shapes(cands, o)
        if shapes is None:
            found[o] = []
            module_fits[o] = False
            continue
        identity = list(range(n))
        module_fits[o] = _is_chain(shapes, identity) and _respects(identity, preds)
        if graph_order:
            found[o] = [identity] if module_fits[o] else []
        else:
            try:
                found[o] = _find_chains(shapes, preds, limit=_MAX_ORDERS_SHOWN,
                                        budget=_SEARCH_BUDGET)
            except _SearchExhausted:
                if not module_fits[o] or ex.order != "module":
                    raise GraphStructureError(
                        f"{ex.path}: the layer order cannot be recovered: {n} layers whose "
                        "shapes fit too many orders to search; name the layers by position "
                        "(layers.0, layers.1, ...)") from None
                found[o] = [list(range(n))] * _MAX_ORDERS_SHOWN
    fitting = [o for o in options if found[o]]
    if not fitting:
        _raise_no_chain(ex, options, preds)
    how_orientation = _orientation_reason(ex, options, fitting)
    orientation = fitting[0]
    chains = found[orientation]
    if graph_order:
        return Resolution(chains[0], orientation, "the file's graph order", how_orientation)
    if len(chains) == 1:
        numbered = any(preds[i] for i in range(n))
        how = ("the numbers in the layer names and the shapes" if numbered
               else "the only chain of shapes")
        return Resolution(chains[0], orientation, how, how_orientation)
    if ex.order == "module" and module_fits[orientation]:
        return Resolution(list(range(n)), orientation,
                          "the order the modules were defined in (names and shapes allow "
                          "several orders)", how_orientation)
    shown = "; ".join(_describe_order(cands, c, orientation) for c in chains)
    raise GraphStructureError(
        f"{ex.path}: the layer order cannot be recovered: names and shapes fit more than one "
        f"order ({shown}); "
        f"name the layers by position (layers.0, layers.1, ...) or save a format that records "
        "the order")


def build_graph(ex: Extraction, resolution: Resolution | None = None, *,
                dense_only: bool = False) -> LayeredGraph:
    """The LayeredGraph of ``ex``: resolve the chain (unless given) and build it.

    A network with convolutions, or one whose file gives a wiring, takes the network route
    (see the module docstring) with the plan in ``ex.network`` (for names-only formats,
    :func:`topo.io.families.build_with_family` sets it first); ``dense_only`` reads its
    fully-connected layers alone as a chain instead, the convolutions listed as skipped.

    ``metadata`` holds ``format``, ``source``, ``skipped`` (list of ``{name, shape, why}``),
    ``reading`` (how order and orientation were found, and any notes) and whatever the file
    says about itself (epoch, global_step, versions, ...).
    """
    if dense_only:
        ex = _dense_part(ex)
    if resolution is None and (ex.network is not None or ex.has_convs):
        if ex.network is None:
            # the module names' family is found a layer above (topo.io.families, which
            # builds on this module): a caller that skipped it gets no guessed wiring
            raise GraphStructureError(
                f"{ex.path}: convolutions without a network plan (read the file with "
                "topo.load, which finds the wiring)")
        return _build_network(ex, ex.network)
    if resolution is None:
        resolution = resolve_chain(ex)
    weights, masks, biases, names = [], [], [], []
    for i in resolution.order:
        c = ex.layers[i]
        o = c.orientation or resolution.orientation
        w = c.weight if o == OUT_IN else c.weight.T
        m = None if c.mask is None else (c.mask if o == OUT_IN else c.mask.T)
        weights.append(w)
        masks.append(m)
        biases.append(c.bias)
        names.append(c.name)
    notes = list(ex.notes) + [c.note for c in (ex.layers[i] for i in resolution.order) if c.note]
    reading = {"layer_order": resolution.how_order,
               "orientation": resolution.how_orientation}
    if notes:
        reading["notes"] = notes
    metadata = dict(ex.metadata)
    metadata.update(format=ex.format, source=str(ex.path),
                    skipped=[s.record() for s in ex.skipped], reading=reading)
    try:
        if any(m is not None for m in masks):
            masks = [m if m is not None else _nonzero(w) for w, m in zip(weights, masks)]
            return LayeredGraph(weights, masks=masks, biases=biases, names=names,
                                input_shape=_fitting_input_shape(ex, weights),
                                metadata=metadata)
        return LayeredGraph(weights, biases=biases, names=names,
                            input_shape=_fitting_input_shape(ex, weights), metadata=metadata)
    except GraphStructureError as exc:
        raise GraphStructureError(f"{ex.path}: {exc}") from None


def _dense_part(ex: Extraction) -> Extraction:
    """``ex`` with its convolutions moved to the skipped list and no network plan."""
    from dataclasses import replace

    convs = [c for c in ex.layers if c.kind == "conv"]
    if not convs and ex.network is None:
        return ex
    skipped = list(ex.skipped)
    for c in convs:
        why = (f"convolution with kernel {tuple(np.shape(c.weight))}: not read "
               "(dense_only reads the fully-connected layers alone)")
        skipped.append(Skipped(c.name, tuple(np.shape(c.weight)), why, c.weight, "conv"))
        if c.bias is not None:
            skipped.append(Skipped(f"{c.name} bias", tuple(np.shape(c.bias)),
                                   f"bias of {c.name}: {why}", c.bias, "conv"))
    layers = [c for c in ex.layers if c.kind != "conv"]
    if not layers:
        raise UnreadableFileError(f"{ex.path}: no fully-connected layers (dense_only)")
    return replace(ex, layers=layers, skipped=skipped, network=None)


def independent_plan(ex: Extraction, why: str) -> NetworkPlan:
    """Independent matrices: every layer of ``ex`` in the extraction's order, reading and
    writing its own unit sets, because ``why`` (the wiring is unknown)."""
    geometry = []
    for c in ex.layers:
        if c.kind == "conv":
            groups = c.groups or 1
            geometry.append(_conv_geometry(c, groups))
        else:
            geometry.append(LayerGeometry.linear())
    n = len(ex.layers)
    return NetworkPlan(list(range(n)), list(range(0, 2 * n, 2)), list(range(1, 2 * n, 2)),
                       geometry, f"independent matrices: {why}", independent=True)


def oriented(c: LayerCandidate, default: str | None) -> tuple[Any, Any]:
    """A candidate's weight and mask in PyTorch's layout: ``(n_out, n_in)`` for a linear
    layer (transposed when stored ``(in, out)``), the conv layout as extracted."""
    if c.kind == "conv" or (c.orientation or default or OUT_IN) == OUT_IN:
        return c.weight, c.mask
    return c.weight.T, None if c.mask is None else c.mask.T


def conv_geometry(c: LayerCandidate, n_units: int | None, where: str) -> LayerGeometry:
    """The geometry of conv candidate ``c`` reading a unit set of ``n_units`` channels.

    ``groups`` is the file's when it states it (checked against the width), else the
    width divided by the kernel's ``C_in / groups`` (1 when they are equal).

    Raises
    ------
    GraphStructureError
        The width is not a whole number of the kernel's input channels, or the output
        channels cannot form those groups (a grouped conv that cannot be resolved).
    """
    c_out, per_group = int(c.weight.shape[0]), int(c.weight.shape[1])
    if n_units is None:
        return _conv_geometry(c, c.groups or 1)
    if c.groups is not None:
        if per_group * c.groups != n_units:
            raise GraphStructureError(
                f"{where}: conv {c.name!r} has kernel {tuple(c.weight.shape)} with groups="
                f"{c.groups}, so it reads {per_group * c.groups} channels, but the unit set it "
                f"reads has {n_units}")
        return _conv_geometry(c, c.groups)
    if n_units % per_group:
        raise GraphStructureError(
            f"{where}: conv {c.name!r} has kernel {tuple(c.weight.shape)} ({per_group} input "
            f"channels per group) but reads a unit set of {n_units} channels, which is not a "
            "whole number of groups")
    groups = n_units // per_group
    if c_out % groups:
        raise GraphStructureError(
            f"{where}: conv {c.name!r} reads {n_units} channels with {per_group} per group, "
            f"so it would have {groups} groups, but its {c_out} output channels cannot form "
            f"{groups} groups (a grouped conv that cannot be resolved)")
    return _conv_geometry(c, groups)


def linear_geometry(c: LayerCandidate, n_in: int, n_units: int, flattened: bool,
                    where: str) -> tuple[LayerGeometry, str | None]:
    """The geometry of a linear layer with ``n_in`` inputs reading a set of ``n_units`` units.

    ``n_in == n_units``: linear. Reading a flattened feature map (``flattened``) of
    ``n_units`` channels: a flatten layer with ``n_in / n_units`` positions per channel, its
    spatial shape square when that number is a square (noted), else one number. Returns the
    geometry and a note (or None).

    Raises
    ------
    GraphStructureError
        ``n_in`` is not ``n_units`` times a whole number of positions.
    """
    if n_in == n_units:
        return LayerGeometry.linear(), None
    if flattened and n_units > 0 and n_in % n_units == 0:
        positions = n_in // n_units
        side = math.isqrt(positions)
        if side * side == positions:
            shape: tuple[int, ...] = (side, side)
            how = f"{side}x{side}, taken square"
        else:
            shape, how = (positions,), "its height and width not told apart"
        note = (f"{c.name} reads the {n_units} channels of a flattened feature map: "
                f"{n_in} inputs = {n_units} channels x {positions} positions ({how}; only "
                f"H*W = {positions} follows from the shapes and it fixes the connections)")
        return LayerGeometry.flatten(shape), note
    if flattened:
        raise GraphStructureError(
            f"{where}: layer {c.name!r} takes {n_in} inputs, which is not a whole number of "
            f"positions of the {n_units} channels it reads (H*W would be "
            f"{n_in / n_units:.4g})")
    raise GraphStructureError(
        f"{where}: layer {c.name!r} takes {n_in} inputs but the unit set it reads has "
        f"{n_units} units")


# ---------------------------------------------------------------------------------- helpers
def _conv_geometry(c: LayerCandidate, groups: int) -> LayerGeometry:
    return LayerGeometry.conv(tuple(int(s) for s in c.weight.shape[2:]), groups=groups)


def _build_network(ex: Extraction, plan: NetworkPlan) -> LayeredGraph:
    """The LayeredGraph of a network plan: convs in their layout, flatten layers reordered
    from ``(H, W, C)`` where the plan says so, normalisation layers listed with their set."""
    weights, masks, biases, names = [], [], [], []
    channels_last = plan.channels_last or [False] * len(plan.order)
    for pos, i in enumerate(plan.order):
        c = ex.layers[i]
        geo = plan.geometry[pos]
        w, m = oriented(c, ex.orientation)
        if geo.kind != "conv" and np.ndim(w) > 2:  # a 1x1 conv used as a linear layer
            w = np.asarray(w).reshape(w.shape[0], -1)
            m = None if m is None else np.asarray(m).reshape(m.shape[0], -1)
        if geo.kind == "flatten" and channels_last[pos]:
            w, m = _channels_first(w, geo.positions), (
                None if m is None else _channels_first(m, geo.positions))
        weights.append(w)
        masks.append(m)
        biases.append(c.bias)
        names.append(c.name)
    reads, writes = _renumber(plan.reads, plan.writes)
    skipped = [_placed(s, plan, reads, writes, names) for s in ex.skipped]
    used = set(plan.order)
    skipped += [Skipped(c.name, tuple(np.shape(c.weight)),
                        "a layer the network's graph never uses") for i, c in
                enumerate(ex.layers) if i not in used]
    notes = list(ex.notes) + list(plan.notes) + [
        ex.layers[i].note for i in plan.order if ex.layers[i].note]
    reading = {"layer_order": plan.how, "orientation": _network_orientation(ex),
               "wiring": plan.how}
    if notes:
        reading["notes"] = notes
    metadata = dict(ex.metadata)
    metadata.update(format=ex.format, source=str(ex.path),
                    skipped=[s.record() for s in skipped], reading=reading)
    if plan.family:
        metadata["family"] = plan.family
    wiring: dict[str, Any] = ({"independent": True} if plan.independent else
                              {"reads": reads, "writes": writes})
    input_shape = plan.input_shape or ex.input_shape
    if input_shape is not None and not _holds_input(input_shape, weights[0], plan.geometry[0]):
        input_shape = None
    try:
        if any(m is not None for m in masks):
            masks = [m if m is not None else _nonzero(w) for w, m in zip(weights, masks)]
        else:
            masks = None
        return LayeredGraph(weights, masks=masks, biases=biases, names=names,
                            geometry=plan.geometry, input_shape=input_shape,
                            metadata=metadata, **wiring)
    except GraphStructureError as exc:
        raise GraphStructureError(f"{ex.path}: {exc}") from None


def _holds_input(shape: tuple[int, ...], weight: Any, geo: LayerGeometry) -> bool:
    """The input shape fits the first layer (channels first for a conv)."""
    if geo.kind == "conv":
        return bool(shape) and shape[0] == int(weight.shape[1]) * geo.groups
    return math.prod(shape) == int(np.prod(np.shape(weight)[1:]))


def _channels_first(w: Any, positions: int) -> Any:
    """Columns ``position * C + channel`` (an ``(H, W, C)`` flatten) reordered to
    ``channel * positions + position`` (topo's and PyTorch's ``(C, H, W)``)."""
    arr = np.asarray(w)
    n_out, width = arr.shape
    channels = width // positions
    return arr.reshape(n_out, positions, channels).transpose(0, 2, 1).reshape(n_out, width)


def _renumber(reads: list[int], writes: list[int]) -> tuple[list[int], list[int]]:
    """Unit sets numbered by first use, as :class:`~topo.graph.Wiring` numbers them."""
    number: dict[int, int] = {}
    for value in (v for pair in zip(reads, writes) for v in pair):
        number.setdefault(value, len(number))
    return [number[v] for v in reads], [number[v] for v in writes]


def _placed(s: Skipped, plan: NetworkPlan, reads: list[int], writes: list[int],
            names: list[str]) -> Skipped:
    """A normalisation layer's entry, saying which unit set it normalises."""
    if s.kind != "norm" or s.module is None or s.module not in plan.norms \
            or plan.independent:
        return s
    number: dict[int, int] = {}
    for value in (v for pair in zip(plan.reads, plan.writes) for v in pair):
        number.setdefault(value, len(number))
    unit_set = number.get(plan.norms[s.module])
    if unit_set is None:
        return s
    writers = [names[k] for k, w in enumerate(writes) if w == unit_set]
    by = (f" ({plan.norm_of[s.module]})" if s.module in plan.norm_of else
          f" (written by {', '.join(writers)})" if writers else " (the network input)")
    found = re.search(r"\((?:ONNX )?([A-Za-z][A-Za-z0-9]*)", s.why)
    cls = found[1] if found and "Norm" in found[1] else "normalisation"
    leaf = re.split(r"[./]", s.name)[-1]
    return Skipped(s.name, s.shape, f"normalisation of unit set {unit_set}{by}: {cls} "
                   f"{leaf}; not a layer", s.array, s.kind, s.module)


def _network_orientation(ex: Extraction) -> str:
    kinds = {c.kind for c in ex.layers}
    linear = {c.orientation or ex.orientation for c in ex.layers if c.kind == "linear"}
    parts = []
    if "linear" in kinds:
        if linear == {IN_OUT}:
            parts.append(f"weights stored (in, out) by the {ex.format} convention, read as "
                         "(out, in)")
        else:
            parts.append("(out, in)")
    if "conv" in kinds:
        parts.append(ex.metadata.get("conv_layout") or
                     "conv kernels (C_out, C_in/groups, kh, kw), PyTorch's layout")
    return "; ".join(parts)


def _nonzero(w: Any) -> Any:
    import scipy.sparse as sp

    if sp.issparse(w):
        s = sp.csr_matrix(w, copy=True)
        s.data = np.ones_like(s.data)
        return s
    return np.asarray(w) != 0


def _fitting_input_shape(ex: Extraction, weights: list) -> tuple[int, ...] | None:
    if ex.input_shape is None:
        return None
    return ex.input_shape if int(np.prod(ex.input_shape)) == int(weights[0].shape[1]) else None


def _orientation_options(ex: Extraction) -> list[str | None]:
    if all(c.orientation is not None for c in ex.layers):
        return [None]  # every candidate carries its own orientation (ONNX)
    if ex.orientation is None:
        return [OUT_IN, IN_OUT]
    if ex.firm:
        return [ex.orientation]
    return [ex.orientation, IN_OUT if ex.orientation == OUT_IN else OUT_IN]


def _orientation_reason(ex: Extraction, options: list, fitting: list) -> str:
    chosen = fitting[0]
    if chosen is None:
        kinds = {c.orientation for c in ex.layers}
        if len(kinds) == 1:
            return f"{_ORIENTATION_WORDS[kinds.pop()]}, as the {ex.format} file stores it"
        return "per layer, as the file's nodes store each weight"
    words = _ORIENTATION_WORDS[chosen]
    if ex.orientation is None:
        if len(fitting) > 1:
            raise GraphStructureError(
                f"{ex.path}: the orientation of the weights cannot be told: stored as "
                f"(out, in) the chain is {_widths_text(ex, OUT_IN)}, stored as (in, out) it "
                f"is {_widths_text(ex, IN_OUT)}; {ex.format} does not say which")
        return f"{words}, inferred: only this orientation chains the layers"
    if ex.firm:
        return f"{words}, the {ex.format} convention"
    if chosen == ex.orientation:
        return f"{words}, the {ex.format} convention"
    return (f"{words}: not the {ex.format} convention {_ORIENTATION_WORDS[ex.orientation]}, "
            "but the only orientation that chains the layers in the order their names and "
            "biases give")


def _widths_text(ex: Extraction, o: str) -> str:
    shapes = _oriented_shapes(ex.layers, o)
    preds = _name_predecessors([c.name for c in ex.layers])
    try:
        chains = _find_chains(shapes, preds, limit=1, budget=_SEARCH_BUDGET) if shapes else []
    except _SearchExhausted:  # pragma: no cover - the first search would have failed first
        chains = []
    return _describe_order(ex.layers, chains[0], o) if chains else "none"


def _oriented_shapes(cands: list[LayerCandidate], o: str | None) -> list | None:
    """(n_out, n_in) per candidate under orientation ``o``; None when a bias rules it out."""
    shapes = []
    for c in cands:
        a, b = c.shape
        eff = c.orientation or o
        n_out, n_in = (a, b) if eff == OUT_IN else (b, a)
        if c.bias is not None and int(np.asarray(c.bias).size) != n_out:
            return None
        shapes.append((n_out, n_in))
    return shapes


def _name_predecessors(names: list[str]) -> list[set[int]]:
    """For each layer, the layers its name says come before it (same pattern, lower numbers)."""
    groups: dict[str, list[tuple[tuple[int, ...], int]]] = {}
    for i, name in enumerate(names):
        template, numbers = name_template(name)
        if numbers:
            groups.setdefault(template, []).append((numbers, i))
    preds: list[set[int]] = [set() for _ in names]
    for members in groups.values():
        members.sort()
        for k in range(1, len(members)):
            # the previous one suffices: the search then enforces the whole order
            if members[k][0] != members[k - 1][0]:
                preds[members[k][1]].add(members[k - 1][1])
    return preds


def _respects(order: list[int], preds: list[set[int]]) -> bool:
    pos = {j: k for k, j in enumerate(order)}
    return all(pos[p] < pos[j] for j in order for p in preds[j])


def _is_chain(shapes: list, order: list[int]) -> bool:
    return all(shapes[a][0] == shapes[b][1] for a, b in zip(order[:-1], order[1:]))


def _find_chains(shapes: list, preds: list[set[int]], limit: int,
                 budget: int) -> list[list[int]]:
    """Up to ``limit`` orders of all layers whose widths chain and that respect ``preds``."""
    n = len(shapes)
    found: list[list[int]] = []
    steps = 0
    order: list[int] = []
    used = [False] * n

    def extend() -> None:
        nonlocal steps
        if len(found) >= limit or steps > budget:
            return
        if len(order) == n:
            found.append(list(order))
            return
        for j in range(n):
            steps += 1
            if used[j] or any(not used[p] for p in preds[j]):
                continue
            if order and shapes[order[-1]][0] != shapes[j][1]:
                continue
            used[j] = True
            order.append(j)
            extend()
            order.pop()
            used[j] = False

    extend()
    if steps > budget and len(found) < limit:
        raise _SearchExhausted
    return found


class _SearchExhausted(Exception):
    """The chain search ran out of budget: too many orders to tell whether one is unique."""


def _describe_order(cands: list[LayerCandidate], order: list[int], o: str | None) -> str:
    shapes = _oriented_shapes(cands, o) or [c.shape for c in cands]
    widths = [shapes[order[0]][1]] + [shapes[i][0] for i in order]
    return (", ".join(cands[i].name for i in order) + " = " + "-".join(map(str, widths)))


def _raise_no_chain(ex: Extraction, options: list, preds: list[set[int]]) -> None:
    cands = ex.layers
    n = len(cands)
    usable = [(o, s) for o in options if (s := _oriented_shapes(cands, o)) is not None]
    if not usable:
        bad = next((c for c in cands if c.bias is not None
                    and int(np.asarray(c.bias).size) != c.shape[0]), cands[0])
        raise GraphStructureError(
            f"{ex.path}: layer {bad.name!r}: its bias has {np.asarray(bad.bias).size} entries, "
            f"which fits no orientation of its weight {bad.shape} together with the other "
            "layers")
    o, shapes = usable[0]
    # show the order the file or the names give, and where it breaks
    if ex.order == "graph" or not any(preds):
        order = list(range(n))
        source = "in the file's order" if ex.order != "none" else "in name order"
    else:
        order = sorted(range(n), key=lambda i: (name_template(cands[i].name)[1], i))
        source = "in the order their numbers give"
    for a, b in zip(order[:-1], order[1:]):
        if shapes[a][0] != shapes[b][1]:
            hint = ""
            if ex.orientation is not None and len(_orientation_options(ex)) == 1 \
                    and o is not None:
                hint = f" (weights read as {_ORIENTATION_WORDS[o]}, the {ex.format} convention)"
            raise GraphStructureError(
                f"{ex.path}: the layers do not chain {source}: layer {cands[b].name!r} takes "
                f"{shapes[b][1]} inputs but layer {cands[a].name!r} gives {shapes[a][0]} "
                f"outputs{hint}, and no other order of these layers agrees with their names")
    raise GraphStructureError(  # pragma: no cover - the search would have found this order
        f"{ex.path}: the layers do not form a chain")
