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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import GraphStructureError
from topo.graph import LayeredGraph

__all__ = ["OUT_IN", "IN_OUT", "LayerCandidate", "Skipped", "Extraction", "Resolution",
           "resolve_chain", "build_graph", "name_template"]

OUT_IN = "out_in"
"""Orientation ``(n_out, n_in)``: PyTorch's ``nn.Linear.weight``, ONNX Gemm with transB=1."""
IN_OUT = "in_out"
"""Orientation ``(n_in, n_out)``: Keras Dense kernels, ONNX MatMul weights, most numpy dumps."""

_ORIENTATION_WORDS = {OUT_IN: "(out, in)", IN_OUT: "(in, out)"}
_MAX_ORDERS_SHOWN = 2
_SEARCH_BUDGET = 200_000


@dataclass
class LayerCandidate:
    """A weight matrix that may be a fully-connected layer, as the file stores it.

    ``orientation`` is ``OUT_IN``, ``IN_OUT``, or ``None`` when the file does not fix it (the
    extraction's default then applies, or it is inferred). ``mask`` (same shape as ``weight``)
    gives the connections when the file has one; ``bias`` is the layer's bias vector.
    """

    name: str
    weight: Any
    orientation: str | None = None
    mask: Any = None
    bias: Any = None
    note: str | None = None

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


def build_graph(ex: Extraction, resolution: Resolution | None = None) -> LayeredGraph:
    """The LayeredGraph of ``ex``: resolve the chain (unless given) and build it.

    ``metadata`` holds ``format``, ``source``, ``skipped`` (list of ``{name, shape, why}``),
    ``reading`` (how order and orientation were found, and any notes) and whatever the file
    says about itself (epoch, global_step, versions, ...).
    """
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


# ---------------------------------------------------------------------------------- helpers
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
