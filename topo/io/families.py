"""Wiring from module names: the standard families of convolutional networks in PyTorch files.

A state_dict holds tensors, not the ``forward`` that wires them. For the families research
code uses every day the module names say it, and the shapes must agree with what the names
say. Families recognised (names after the ``module.``/``model.``/``_orig_mod.`` prefixes are
removed):

- **ResNet** (:func:`_resnet`): a stem conv (``conv1``, open_lth's ``conv``), blocks
  ``layer<stage>.<block>`` (torchvision, CIFAR ResNet-20/32/56/110) or ``blocks.<n>``
  (open_lth) with ``conv1``, ``conv2`` (BasicBlock) or ``conv1``..``conv3`` (Bottleneck),
  normalisations ``bn<k>``, a projection shortcut ``downsample.0``/``downsample.1``
  (torchvision) or ``shortcut.0``/``shortcut.1`` (option B), and the classifier ``fc`` or
  ``linear``. The stem writes the first residual stream; a block's convs form a chain from
  the stream it reads; its last conv adds into that stream (identity shortcut) or, with a
  projection shortcut, writes the next stream together with the shortcut conv, which reads
  the old one. A block that widens the stream without a shortcut conv is CIFAR's option A:
  a parameter-free identity that zero-pads the old channels into the wider stream. It
  carries no weight, so it is no layer and its connections are not counted; the wider
  stream is a new unit set written by the block's last conv, and nothing ties its channels
  to the old stream's (which of the new channels receive the old ones is not in the file:
  the common CIFAR code pads ``planes // 4`` channels on each side). Pre-activation blocks
  (``bn1`` normalising the block's input) are recognised by their normalisation widths.
- **open_lth's VGG** (``layers.<n>.conv``, ``layers.<n>.bn``, ``fc``): a chain.
- **Chains named by position** (:func:`_chain`): every name has at most two parts and says
  which group the layer belongs to and where: torchvision's VGG (``features.<n>``,
  ``classifier.<n>``), LeNet-5 (``conv1``, ``conv2``, ``fc1``, ``fc2``, ``fc3``, and the
  Sequential namings ``conv.<n>``/``fc.<n>``, ``layer1.0``/``fc``), Conv-2/4/6 of the
  lottery-ticket papers (``convs.<n>``, ``linear.<n>``, the linear layers possibly stored
  as 1x1 convs) and a bare ``nn.Sequential`` (``<n>.weight``). Convolutions come first, in
  the order of their names, then the fully-connected layers; the first of these reads the
  last conv's channels flattened, with ``n_in / channels`` positions each (it must be a
  whole number). Groups of the same kind are ordered as the modules were defined when the
  file records it, otherwise by the only order whose shapes chain (several: refused).
  Such names show no residual blocks; a model that adds layer outputs under names like
  these is read as the chain its names give, which the reading note says.

A conv's ``groups`` is the width of the unit set it reads divided by its kernel's
``C_in / groups`` (a depthwise conv: ``groups = C_in``), unless the file states it (a whole
pickled module); a width that no whole number of groups explains is refused.

When the names fit no family, the layers are read as independent matrices (per-matrix
analyses only), and the note says how to get the wiring (:func:`topo.io.from_module`).
When they fit a family but the shapes do not, the file is refused naming the family and the
layers that disagree; when they fit several families, it is refused naming them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from itertools import permutations

import numpy as np

from topo.errors import GraphStructureError
from topo.graph import LayeredGraph
from topo.io.pipeline import (
    Extraction,
    LayerCandidate,
    NetworkPlan,
    build_graph,
    conv_geometry,
    independent_plan,
    linear_geometry,
    oriented,
)
from topo.io.run import natural_key

__all__ = ["plan_from_names", "build_with_family", "FAMILIES"]

#: The families :func:`plan_from_names` recognises, in the order they are tried.
FAMILIES = ("ResNet", "open_lth VGG", "chain")

_LINEAR_WORDS = {"fc", "linear", "classifier", "dense", "head", "out", "output", "f",
                 "fc_model", "fcs", "linears", "lin", "mlp"}
_MAX_GROUP_ORDERS = 720


class _NoFit(Exception):
    """The names do not fit this family."""


@dataclass
class _Norm:
    module: str
    size: int


@dataclass
class _Builder:
    """Layers appended in forward order with their unit sets, checked as they come."""

    ex: Extraction
    family: str
    order: list[int] = field(default_factory=list)
    reads: list[int] = field(default_factory=list)
    writes: list[int] = field(default_factory=list)
    geometry: list = field(default_factory=list)
    widths: dict[int, int] = field(default_factory=dict)
    writer_of: dict[int, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    norms: dict[str, int] = field(default_factory=dict)
    norm_of: dict[str, str] = field(default_factory=dict)
    flattened: set[int] = field(default_factory=set)
    next_set: int = 1

    def new_set(self) -> int:
        self.next_set += 1
        return self.next_set - 1

    def where(self) -> str:
        return (f"{self.ex.path}: the module names fit the {self.family} family, but the "
                "shapes disagree")

    def add(self, i: int, reads: int, writes: int, *, as_linear: bool = False) -> None:
        c = self.ex.layers[i]
        width = self.widths.get(reads)
        if c.kind == "conv" and not as_linear:
            geo = conv_geometry(c, width, self.where())
            n_in = int(c.weight.shape[1]) * geo.groups
            if geo.groups > 1 and c.groups is None:
                self.notes.append(
                    f"{c.name}: groups = {geo.groups}, from the {n_in} channels it reads and "
                    f"its kernel's {int(c.weight.shape[1])} input channel(s) per group")
            n_out = int(c.weight.shape[0])
        else:
            w, _ = oriented(c, self.ex.orientation)
            n_out = int(w.shape[0])
            n_in_total = int(np.prod(w.shape[1:]))
            if width is None:
                width = n_in_total
            geo, note = linear_geometry(c, n_in_total, width, reads in self.flattened,
                                        self.where())
            if note:
                self.notes.append(note)
            n_in = width
        if width is None:
            self.widths[reads] = n_in
        elif n_in != width:  # pragma: no cover - the geometry checks above refuse first
            raise GraphStructureError(f"{self.where()}: {c.name!r} reads {n_in} of {width}")
        known = self.widths.get(writes)
        if known is not None and known != n_out:
            raise GraphStructureError(
                f"{self.where()}: {c.name!r} gives {n_out} outputs to the unit set that "
                f"{self.writer_of.get(writes, 'the input')} gives {known} (the residual "
                "addition needs equal widths)")
        self.widths[writes] = n_out
        self.writer_of.setdefault(writes, repr(c.name))
        self.order.append(i)
        self.reads.append(reads)
        self.writes.append(writes)
        self.geometry.append(geo)

    def norm(self, norm: _Norm, unit_set: int, what: str) -> None:
        width = self.widths.get(unit_set)
        if width != norm.size:
            raise GraphStructureError(
                f"{self.where()}: normalisation {norm.module!r} has {norm.size} channels while "
                f"{what} has {width}")
        self.norms[norm.module] = unit_set
        self.norm_of[norm.module] = what

    def plan(self, how: str, family: str) -> NetworkPlan:
        return NetworkPlan(self.order, self.reads, self.writes, self.geometry, how,
                           family=family, norms=self.norms, notes=self.notes,
                           norm_of=self.norm_of)


def build_with_family(ex: Extraction, *, dense_only: bool = False) -> LayeredGraph:
    """:func:`topo.io.pipeline.build_graph` of ``ex``, with the wiring of its module names
    (:func:`plan_from_names`) where it has convolutions and its file gave no graph.

    Raises
    ------
    GraphStructureError
        As :func:`plan_from_names` and :func:`topo.io.pipeline.build_graph`.
    """
    if not dense_only and ex.network is None and ex.has_convs:
        ex.network = plan_from_names(ex)
    return build_graph(ex, dense_only=dense_only)


def plan_from_names(ex: Extraction) -> NetworkPlan:
    """The network plan the module names of ``ex`` give (see the module docstring).

    Raises
    ------
    GraphStructureError
        The names fit a family but the shapes disagree, or they fit several families.
    """
    unread = [s for s in ex.skipped if s.kind == "conv"]
    if unread:
        return independent_plan(
            ex, f"{unread[0].name} is not read ({unread[0].why}), so the wiring of the other "
                "layers cannot be followed")
    norms = _norms(ex)
    fits: list[tuple[str, object]] = []
    for family in (_resnet, _open_lth_vgg, _chain):
        try:
            fits.append((family.__name__, family(ex, norms)))
        except _NoFit:
            continue
        except GraphStructureError as exc:
            fits.append((family.__name__, exc))
    plans = [p for _, p in fits if isinstance(p, NetworkPlan)]
    if len(plans) == 1:
        return plans[0]
    if len(plans) > 1:
        raise GraphStructureError(
            f"{ex.path}: the module names fit several families "
            f"({'; '.join(p.family or '?' for p in plans)}) and the shapes agree with each; "
            "the wiring cannot be told (read the model object with topo.io.from_module)")
    if fits:
        raise fits[0][1]  # type: ignore[misc]
    names = ", ".join(c.name for c in ex.layers[:6]) + (", ..." if len(ex.layers) > 6 else "")
    return independent_plan(
        ex, f"the module names ({names}) fit no family topo knows (ResNet, VGG, LeNet-5, "
            "Conv-2/4/6, nn.Sequential), so the wiring is unknown; read the model object with "
            "topo.io.from_module(model) for the whole network")


# ----------------------------------------------------------------------------------- ResNet
_STEM = re.compile(r"(conv1|conv)")
_BLOCK = re.compile(r"(?P<block>layer\d+\.\d+|blocks\.\d+)\.(?P<role>conv(?P<k>\d+)|"
                    r"(?P<sc>downsample|shortcut)\.(0|conv))")
_BLOCK_NORM = re.compile(r"(?P<block>layer\d+\.\d+|blocks\.\d+)\.(?P<role>bn(?P<k>\d+)|"
                         r"(?P<sc>downsample|shortcut)\.(1|bn))")
_HEAD = re.compile(r"(fc|linear)")


def _resnet(ex: Extraction, norms: dict[str, _Norm]) -> NetworkPlan:
    stem, head = None, None
    blocks: dict[str, dict] = {}
    for i, c in enumerate(ex.layers):
        if c.kind == "conv" and _STEM.fullmatch(c.name) and stem is None:
            stem = i
        elif c.kind == "linear" and _HEAD.fullmatch(c.name) and head is None:
            head = i
        elif (m := _BLOCK.fullmatch(c.name)) and c.kind == "conv":
            b = blocks.setdefault(m["block"], {"convs": {}, "shortcut": None})
            if m["sc"]:
                b["shortcut"] = i
                b["word"] = m["sc"]
            else:
                b["convs"][int(m["k"])] = i
        else:
            raise _NoFit
    if stem is None or head is None or not blocks:
        raise _NoFit
    stem_norm, block_norms = None, {}
    for module, norm in norms.items():
        if module in ("bn1", "bn") and stem_norm is None:
            stem_norm = norm
        elif (m := _BLOCK_NORM.fullmatch(module)) and m["block"] in blocks:
            key = "shortcut" if m["sc"] else int(m["k"])
            block_norms[(m["block"], key)] = norm
        else:
            raise _NoFit
    for b in blocks.values():
        if sorted(b["convs"]) not in ([1, 2], [1, 2, 3]):
            raise _NoFit
    open_lth = ex.layers[stem].name == "conv"
    words = {b.get("word") for b in blocks.values()} - {None}
    style = ("open_lth CIFAR" if open_lth else
             "torchvision-style" if words == {"downsample"} and ex.layers[head].name == "fc"
             else "CIFAR")
    kinds = {len(b["convs"]) for b in blocks.values()}
    block_kind = ("BasicBlock" if kinds == {2} else "Bottleneck" if kinds == {3} else
                  "BasicBlock and Bottleneck")
    depth = 2 + sum(len(b["convs"]) for b in blocks.values())
    family = f"{style} ResNet-{depth} ({block_kind})"
    bld = _Builder(ex, family)
    stream = bld.new_set()
    bld.add(stem, 0, stream)
    if stem_norm is not None:
        bld.norm(stem_norm, stream, f"the output of {ex.layers[stem].name!r}")
    option_a = []
    for name in sorted(blocks, key=natural_key):
        b = blocks[name]
        convs = [b["convs"][k] for k in sorted(b["convs"])]
        width_in = bld.widths[stream]
        entry, current = stream, stream
        outputs = []
        for i in convs[:-1]:
            out = bld.new_set()
            bld.add(i, current, out)
            outputs.append(out)
            current = out
        last = ex.layers[convs[-1]]
        c_out = int(last.weight.shape[0])
        if b["shortcut"] is not None:
            stream = bld.new_set()
            bld.add(convs[-1], current, stream)
            bld.add(b["shortcut"], entry, stream)
        elif c_out == width_in:
            bld.add(convs[-1], current, stream)
        elif c_out > width_in and "downsample" not in words:
            stream = bld.new_set()
            bld.add(convs[-1], current, stream)
            option_a.append(f"{name} ({width_in} -> {c_out})")
        else:
            raise GraphStructureError(
                f"{bld.where()}: block {name!r} changes the stream from {width_in} to {c_out} "
                f"channels without a {'downsample' if 'downsample' in words else 'shortcut'} "
                "conv")
        outputs.append(stream)
        _place_block_norms(bld, name, b, block_norms, entry, outputs)
    bld.add(head, stream, bld.new_set())
    if option_a:
        bld.notes.append(
            f"option A shortcuts in {', '.join(option_a)}: a parameter-free identity zero-pads "
            "the old stream's channels into the wider one; it has no weights, so it is no "
            "layer, and the wider stream is a new unit set written by the block's last conv "
            "(its channels are not tied to the old stream's)")
    shortcut = ("projection shortcuts (1x1 conv + BN)" if words else "identity shortcuts")
    how = (f"module names of the {family} family: a stem conv, "
           f"{len(blocks)} residual blocks with {shortcut}"
           f"{' and option A' if option_a and words else ''}, classifier "
           f"{ex.layers[head].name!r}; residual additions make each stage one unit set")
    return bld.plan(how, family)


def _layer_name(bld: _Builder, i: int) -> str:
    return bld.ex.layers[i].name


def _place_block_norms(bld: _Builder, name: str, b: dict, block_norms: dict,
                       entry: int, outputs: list[int]) -> None:
    """bn<k> normalises conv<k>'s output (or, in a pre-activation block, its input)."""
    ks = sorted(b["convs"])
    mine = {k: v for (blk, k), v in block_norms.items() if blk == name}
    if "shortcut" in mine:
        if b["shortcut"] is None:
            raise GraphStructureError(
                f"{bld.where()}: block {name!r} has a shortcut normalisation and no shortcut "
                "conv")
        bld.norm(mine.pop("shortcut"), outputs[-1],
                 f"the output of {_layer_name(bld, b['shortcut'])!r}")
    post = all(k in ks and bld.widths[outputs[ks.index(k)]] == n.size for k, n in mine.items())
    inputs = [entry] + outputs[:-1]
    pre = all(k in ks and bld.widths[inputs[ks.index(k)]] == n.size for k, n in mine.items())
    if not post and pre:
        bld.notes.append(f"{name}: pre-activation block (bn<k> normalises conv<k>'s input)")
    for k, n in mine.items():
        if k not in ks:
            raise GraphStructureError(
                f"{bld.where()}: block {name!r} has {n.module!r} but no conv{k}")
        target = outputs[ks.index(k)] if post or not pre else inputs[ks.index(k)]
        bld.norm(n, target, f"the output of '{name}.conv{k}'" if post or not pre
                 else f"the input of '{name}.conv{k}'")


# ------------------------------------------------------------------------- open_lth's VGG
_OLTH_VGG = re.compile(r"layers\.(\d+)\.conv")
_OLTH_VGG_NORM = re.compile(r"layers\.(\d+)\.bn")


def _open_lth_vgg(ex: Extraction, norms: dict[str, _Norm]) -> NetworkPlan:
    convs, head = [], None
    for i, c in enumerate(ex.layers):
        if c.kind == "conv" and (m := _OLTH_VGG.fullmatch(c.name)):
            convs.append((int(m[1]), i))
        elif c.kind == "linear" and c.name == "fc" and head is None:
            head = i
        else:
            raise _NoFit
    if not convs or head is None:
        raise _NoFit
    for module in norms:
        if not _OLTH_VGG_NORM.fullmatch(module):
            raise _NoFit
    convs.sort()
    family = f"open_lth VGG-{len(convs) + 1}"
    bld = _Builder(ex, family)
    current = 0
    set_of = {}
    for index, i in convs:
        out = bld.new_set()
        bld.add(i, current, out)
        set_of[index] = out
        current = out
    bld.flattened.add(current)
    bld.add(head, current, bld.new_set())
    for module, norm in norms.items():
        index = int(_OLTH_VGG_NORM.fullmatch(module)[1])
        if index not in set_of:
            raise GraphStructureError(f"{bld.where()}: {module!r} has no conv beside it")
        bld.norm(norm, set_of[index], f"the output of 'layers.{index}.conv'")
    return bld.plan(f"module names of the {family} family (layers.<n>.conv, fc): a chain in "
                    "the order of the numbers", family)


# --------------------------------------------------------------------- chains by position
def _chain(ex: Extraction, norms: dict[str, _Norm]) -> NetworkPlan:
    parts = [_split(c.name) for c in ex.layers]
    if any(p is None for p in parts) or any(_split(m) is None for m in norms):
        raise _NoFit
    groups: dict[str, list[int]] = {}
    for i, (group, _) in enumerate(parts):
        groups.setdefault(group, []).append(i)
    rank = {}
    for group, members in groups.items():
        kinds = {ex.layers[i].kind for i in members}
        linear_named = group.lower() in _LINEAR_WORDS
        # convs first, then a group holding both (one Sequential), then linear groups
        rank[group] = (2 if kinds == {"linear"} or linear_named else
                       0 if kinds == {"conv"} else 1)
    if not any(ex.layers[i].kind == "conv" and rank[g] < 2
               for g, members in groups.items() for i in members):
        raise _NoFit  # fully-connected layers alone are not a conv network
    for g in groups:
        groups[g].sort(key=lambda i: natural_key(ex.layers[i].name))
    first_seen = {g: min(groups[g]) for g in groups}
    family, label = _chain_family(ex, groups, rank)
    orders = _group_orders(groups, rank, first_seen)
    results, errors = [], []
    for group_order in orders:
        seq = [i for g in group_order for i in groups[g]]
        try:
            results.append((group_order, _chain_plan(ex, seq, norms, family, label)))
        except GraphStructureError as exc:
            errors.append(exc)
    if not results:
        raise errors[0]
    if len(results) == 1:
        plan = results[0][1]
        if len(orders) > 1:
            plan.notes.append("the order of the name groups "
                              f"({', '.join(results[0][0])}) is the only one whose shapes "
                              "chain")
        return plan
    if ex.order == "module" and results[0][0] == orders[0]:
        plan = results[0][1]
        plan.notes.append("the name groups are in the order the modules were defined in "
                          f"({', '.join(orders[0])}); the shapes allow other orders too")
        return plan
    shown = "; ".join(", ".join(order) for order, _ in results[:3])
    raise GraphStructureError(
        f"{ex.path}: the module names fit the {family} family, but the order of their "
        f"groups is not in the file and the shapes fit more than one ({shown}); save the "
        "state_dict with torch.save (which keeps the module order) or read the model "
        "object with topo.io.from_module")


def _chain_plan(ex: Extraction, seq: list[int], norms: dict[str, _Norm], family: str,
                label: str) -> NetworkPlan:
    bld = _Builder(ex, family)
    current = 0
    written: dict[int, int] = {}
    flat = False
    for i in seq:
        c = ex.layers[i]
        as_linear = False
        if c.kind == "conv" and _linear_named(c):
            if any(s != 1 for s in c.weight.shape[2:]):
                raise GraphStructureError(
                    f"{bld.where()}: {c.name!r} is named like a fully-connected layer and has "
                    f"a {tuple(c.weight.shape[2:])} kernel")
            as_linear = True
        if (c.kind == "linear" or as_linear) and not flat:
            bld.flattened.add(current)
            flat = True
        elif c.kind == "conv" and not as_linear and flat:
            raise GraphStructureError(
                f"{bld.where()}: conv {c.name!r} comes after a fully-connected layer")
        out = bld.new_set()
        bld.add(i, current, out, as_linear=as_linear)
        written[i] = out
        current = out
    _place_chain_norms(bld, ex, seq, norms, written)
    n_conv = sum(1 for g in bld.geometry if g.kind == "conv")
    n_lin = len(seq) - n_conv
    how = (f"module names of the {label}: a chain of {n_conv} conv and {n_lin} "
           f"fully-connected layers in the order of their names ({ex.layers[seq[0]].name} "
           f"... {ex.layers[seq[-1]].name}); the names show no residual blocks (a model that "
           "adds layer outputs must be read with topo.io.from_module(model))")
    return bld.plan(how, family)


def _place_chain_norms(bld: _Builder, ex: Extraction, seq: list[int],
                       norms: dict[str, _Norm], written: dict[int, int]) -> None:
    """A norm in a Sequential normalises what the layer before it in that Sequential
    writes; a norm named ``<word><k>`` the output of the layer numbered ``k`` of its width."""
    for module, norm in norms.items():
        group, index = _split(module)
        same = [i for i in seq if _split(ex.layers[i].name)[0] == group
                and _split(ex.layers[i].name)[1] < index]
        if same and index != ():
            i = max(same, key=lambda j: _split(ex.layers[j].name)[1])
            bld.norm(norm, written[i], f"the output of {ex.layers[i].name!r}")
            continue
        numbered = [i for i in seq if _split(ex.layers[i].name)[1] == index and index != ()
                    and bld.widths[written[i]] == norm.size]
        fitting = [i for i in seq if bld.widths[written[i]] == norm.size]
        chosen = numbered if len(numbered) == 1 else fitting
        if len(chosen) == 1:
            bld.norm(norm, written[chosen[0]], f"the output of {ex.layers[chosen[0]].name!r}")
        elif not fitting and norm.size == bld.widths.get(0):
            bld.norm(norm, 0, "the network input")
        elif not fitting:
            raise GraphStructureError(
                f"{bld.where()}: normalisation {module!r} has {norm.size} channels and no "
                "layer writes that many")
        # several sets of its width and no name to tell them apart: listed unplaced


def _chain_family(ex: Extraction, groups: dict[str, list[int]],
                  rank: dict[str, int]) -> tuple[str, str]:
    n_conv = sum(1 for m in groups.values() for i in m
                 if ex.layers[i].kind == "conv" and not _linear_named(ex.layers[i]))
    n_lin = sum(len(m) for m in groups.values()) - n_conv
    names = set(groups)
    if names <= {"features", "classifier"}:
        family = f"VGG-{n_conv + n_lin}" if n_conv + n_lin in (11, 13, 16, 19) else "VGG-style"
        return family, f"{family} family (features.<n>, classifier.<n>)"
    if names <= {"convs", "linear"} and n_conv in (2, 4, 6):
        return f"Conv-{n_conv}", f"Conv-{n_conv} family (convs.<n>, linear.<n>)"
    if names == {""}:
        return "nn.Sequential", "nn.Sequential family (<n>.weight)"
    if n_conv == 2 and n_lin == 3:
        return "LeNet-5", "LeNet-5 family (conv, conv, fc, fc, fc)"
    family = f"plain CNN ({n_conv} conv, {n_lin} fully-connected)"
    return family, f"{family} family (conv<k>/fc<k>-style names)"


def _group_orders(groups: dict[str, list[int]], rank: dict[str, int],
                  first_seen: dict[str, int]) -> list[list[str]]:
    """Orders of the groups, convs first: every order within a rank, the order the modules
    were defined in (or the names, for files that keep no order) first."""
    out: list[list[str]] = [[]]
    for r in (0, 1, 2):
        members = sorted((g for g in groups if rank[g] == r),
                         key=lambda g: (first_seen[g], natural_key(g)))
        options = [list(p) for p, _ in zip(permutations(members), range(_MAX_GROUP_ORDERS))]
        out = [a + b for a in out for b in options]
    return out


def _linear_named(c: LayerCandidate) -> bool:
    return _split(c.name)[0].lower() in _LINEAR_WORDS


def _split(name: str) -> tuple[str, tuple[int, ...]] | None:
    """(group, index) of a name with at most two parts: ``features.3`` -> ("features",
    (3,)), ``conv2`` -> ("conv", (2,)), ``fc`` -> ("fc", ()), ``3`` -> ("", (3,)),
    ``layer1.0`` -> ("layer", (1, 0)); None for deeper names or other shapes."""
    parts = name.split(".")
    if len(parts) > 2:
        return None
    m = re.fullmatch(r"([A-Za-z_]*?)_?(\d*)", parts[0])
    if m is None:
        return None
    group, numbers = m[1], [int(m[2])] if m[2] else []
    if len(parts) == 2:
        if not parts[1].isdigit():
            return None
        numbers.append(int(parts[1]))
    return group, tuple(numbers)


def _norms(ex: Extraction) -> dict[str, _Norm]:
    out: dict[str, _Norm] = {}
    for s in ex.skipped:
        if s.kind == "norm" and s.module is not None and s.shape and len(s.shape) == 1:
            out.setdefault(s.module, _Norm(s.module, int(s.shape[0])))
    return out
