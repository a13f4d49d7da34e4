"""Sparse convolutional networks: LeNet-5, Conv-4, a small VGG and ResNet-20.

Every weight layer is sparse through the same machinery as the MLP's
(:class:`~topo.train.model.SparseLinear`): a conv layer (:class:`SparseConv2d`) keeps its
connections as sorted flat indices into its ``(C_out, C_in kh kw)`` matrix, PyTorch's
``weight.reshape(C_out, -1)``, so every kernel element is a connection (the layout of
:class:`topo.graph.LayeredGraph`, column ``in_channel * kh kw + position``). The methods
(SET, RigL, GMP, IMP, SNIP, static) drop and grow kernel elements exactly as they drop and
grow the connections of an MLP; the initial densities of convs follow RigL's ERK with the
kernel in the formula (:func:`topo.train.sparsity.kernel_densities`).

A conv followed by BatchNorm carries that BatchNorm (``layer.norm``): it is trained by the
same optimiser, kept in the checkpoint with its running statistics, rewound by IMP, and is
not a layer of the graph (topo's graphs list normalisations beside the layers, never as
layers). Its running statistics move only on training steps (RigL's gradient pass leaves
them where they were).

==============  ==========================================================================
name            architecture (``width`` scales every channel and hidden count)
==============  ==========================================================================
``lenet5``      LeNet-5 (LeCun et al. 1998): conv 6@5x5 (padding 2), max-pool 2, conv 16@5x5,
                max-pool 2, fc 120, fc 84, fc classes; layers ``conv1``, ``conv2``, ``fc1``,
                ``fc2``, ``fc3``. conv2 is unpadded when its input is at least 5x5 (MNIST:
                14x14 -> 10x10, as in the paper), else padded by 2 so that small pictures
                (digits, 8x8) fit. Max-pooling and the configured activation stand for
                the paper's trainable sub-sampling and scaled tanh, as in most modern code.
``conv4``       Conv-4 (Frankle & Carbin 2019, Fig. 2): conv 64, 64, max-pool, conv 128,
                128, max-pool (3x3, padding 1), fc 256, 256, classes; layers ``convs.0-3``,
                ``linear.0-2``.
``vgg-small``   a small VGG-style network (Simonyan & Zisserman 2015's design: 3x3 convs
                with BatchNorm, 2x2 max-pools), topo's configuration, not one of the
                published VGG-11/16/19: conv 64, 64, M, 128, 128, M, 256, 256, M, then one
                linear classifier on the flattened map; layers named as torchvision's VGG
                (``features.N``, ``classifier.0``).
``resnet20``    CIFAR ResNet-20 (He et al. 2016, Sec. 4.2): conv 16@3x3 + BN, three stages
                of three basic blocks (16, 32, 64 channels; stride 2 at the first block of
                stages 2 and 3), option A shortcuts (identity; where the stream widens, the
                input is sub-sampled by 2 and zero-padded with new channels, half before and
                half after the old ones: ``planes // 4`` each side at the paper's widths),
                global average pooling, fc classes; convs without bias; layers ``conv1``,
                ``layerS.B.conv1/conv2``, ``linear``.
==============  ==========================================================================

The input is the data set's flattened picture (:func:`topo.train.data.image_layout`):
``(C, H, W)`` channel-first, or height-width-channel (CIFAR-10 as topo stores it), turned
into ``(N, C, H, W)`` in :meth:`SparseCNN.forward`.

Graphs (:meth:`SparseCNN.to_graph`) carry each layer's geometry and the wiring: a chain
for LeNet-5, Conv-4 and the VGG; for ResNet-20 every stage is a residual stream that the
stem (or the widening block's conv2) writes and each block's conv2 adds into, as
:mod:`topo.graph` defines; an option A widening is a new stream with no layer for the
shortcut (it has no weights). Snapshots of these graphs are topo snapshot version 2.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from topo.errors import ConfigError
from topo.train.model import LayerState, SparseLinear, _CSRLinear
from topo.train.registry import ACTIVATIONS

if TYPE_CHECKING:  # pragma: no cover
    from topo.graph import LayeredGraph
    from topo.io.snapshot import SnapshotContent
    from topo.train.initialization import WeightInit

__all__ = ["SparseConv2d", "SparseCNN", "LayerSpec", "Architecture", "architecture",
           "build_cnn", "lenet5", "conv4", "vgg_small", "resnet20", "CNN_MODELS"]

CNN_MODELS = ("lenet5", "conv4", "vgg-small", "resnet20")


class SparseConv2d(SparseLinear):
    """A 2-D convolution holding only its kernel elements (connections).

    Parameters
    ----------
    in_channels, out_channels
        Input and output channels (the layer's units).
    kernel_size
        ``(kh, kw)``.
    flat
        Sorted unique flat indices into the ``(C_out, C_in kh kw)`` matrix (row-major):
        ``o * C_in kh kw + c * kh kw + i * kw + j`` for kernel element ``(i, j)`` from input
        channel ``c`` to output channel ``o``.
    values
        Weight of every connection, in the order of ``flat``.
    bias
        Bias per output channel, or None (a conv followed by BatchNorm).
    stride, padding
        As ``torch.nn.Conv2d`` (one number for both directions).
    norm
        Follow the conv by a BatchNorm of its output channels (torch's defaults: affine,
        eps 1e-5, momentum 0.1, weight 1, bias 0).
    backend
        ``dense`` (scatter into a zero kernel, ``conv2d``; ``auto`` too) or ``sparse``
        (im2col with ``unfold``, then the CSR product of :class:`SparseLinear`).

    Notes
    -----
    ``n_in`` is the width of the matrix (``C_in kh kw``) and ``positions`` is ``kh kw``, as
    for a :class:`SparseLinear` reading a flattened map; ``in_channels`` is the number of
    input units. ``size`` is ``C_out C_in kh kw``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: Sequence[int],
                 flat: np.ndarray, values: torch.Tensor, bias: torch.Tensor | None, *,
                 stride: int = 1, padding: int = 0, norm: bool = False,
                 backend: str = "auto") -> None:
        kh, kw = (int(k) for k in kernel_size)
        super().__init__(int(in_channels) * kh * kw, out_channels, flat, values, bias,
                         backend=backend, positions=kh * kw)
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size = (kh, kw)
        self.stride, self.padding = int(stride), int(padding)
        if norm:
            self.norm = nn.BatchNorm2d(self.out_channels)

    def _choose_sparse(self) -> bool:
        # the im2col path is chosen only when asked for: analysis/benchmarks/
        # train_epoch_cnn.py measures it slower than masked-dense conv2d at the sizes topo
        # trains (see analysis/results/)
        return self.backend == "sparse" and not self._full

    def kernel(self) -> torch.Tensor:
        """The ``(C_out, C_in, kh, kw)`` kernel with zeros at absent elements
        (differentiable)."""
        return self.dense_weight().view(self.out_channels, self.in_channels,
                                        *self.kernel_size)

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """The convolution (and its BatchNorm); ``weight`` replaces the kernel by a given
        dense ``(C_out, C_in kh kw)`` matrix (what
        :func:`~topo.train.model.dense_gradients` differentiates)."""
        if weight is None and self._use_sparse:
            y = self._sparse_forward(x)
        else:
            kernel = self.kernel() if weight is None else weight.view(
                self.out_channels, self.in_channels, *self.kernel_size)
            y = F.conv2d(x, kernel, self.bias, self.stride, self.padding)
        return y if self.norm is None else self.norm(y)

    def _sparse_forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, h, w = x.shape
        kh, kw = self.kernel_size
        ho = (h + 2 * self.padding - kh) // self.stride + 1
        wo = (w + 2 * self.padding - kw) // self.stride + 1
        cols = F.unfold(x, self.kernel_size, padding=self.padding, stride=self.stride)
        # (C_in kh kw, n ho wo) in one copy; its transposed view is the (rows, columns)
        # input _CSRLinear multiplies, whose own transpose is then already contiguous
        rows = cols.permute(1, 0, 2).reshape(self.n_in, n * ho * wo).t()
        bias = self.bias if self.bias is not None else rows.new_zeros(self.out_channels)
        y = _CSRLinear.apply(rows, self.values, bias, self)   # (n ho wo, C_out)
        return y.t().reshape(self.out_channels, n, ho, wo).permute(1, 0, 2, 3)


@dataclass(frozen=True)
class LayerSpec:
    """One weight layer of an architecture, before its weights exist.

    ``kind`` is ``conv``, ``linear`` or ``flatten`` (a linear layer reading a flattened
    ``(n_in, *kernel)`` map); ``kernel`` is ``(kh, kw)`` for a conv, the map's ``(H, W)`` for
    flatten, ``()`` for linear. ``reads``/``writes`` are the unit sets of the wiring.
    """

    name: str
    kind: str
    n_in: int
    n_out: int
    kernel: tuple[int, ...] = ()
    stride: int = 1
    padding: int = 0
    bias: bool = True
    norm: bool = False
    reads: int = 0
    writes: int = 1

    @property
    def positions(self) -> int:
        """Columns per input unit."""
        return int(math.prod(self.kernel))

    @property
    def shape(self) -> tuple[int, ...]:
        """The dense weight shape (PyTorch's layout; a flatten layer as its matrix)."""
        if self.kind == "conv":
            return (self.n_out, self.n_in, *self.kernel)
        return (self.n_out, self.n_in * self.positions)

    @property
    def size(self) -> int:
        """Possible connections."""
        return int(math.prod(self.shape))

    @property
    def fans(self) -> tuple[int, int]:
        """Dense ``(fan_in, fan_out)``: a conv's ``(C_in kh kw, C_out kh kw)``, as torch's
        ``_calculate_fan_in_and_fan_out``; a (flatten) linear's ``(columns, n_out)``."""
        if self.kind == "conv":
            return self.n_in * self.positions, self.n_out * self.positions
        return self.n_in * self.positions, self.n_out


@dataclass
class Architecture:
    """A CNN's layers, wiring and shortcuts, before its weights exist.

    Attributes
    ----------
    model
        Its name (a CNN entry of :data:`~topo.train.registry.MODELS`).
    specs
        The weight layers in forward order.
    input_shape
        ``(C, H, W)`` of one picture.
    carries
        Option A shortcuts: ``(layer, from_set, to_set, offset)``: when ``layer`` adds its
        output into ``to_set``, the units of ``from_set`` are added into ``to_set`` from
        unit ``offset`` on (zero padding around them).
    chain
        Whether the wiring is the plain chain (layer k reads set k, writes k + 1).
    """

    model: str
    specs: list[LayerSpec]
    input_shape: tuple[int, int, int]
    carries: list[tuple[int, int, int, int]] = field(default_factory=list)
    chain: bool = True

    @property
    def shapes(self) -> list[tuple[int, ...]]:
        """Dense weight shape per layer (:func:`~topo.train.sparsity.kernel_densities`)."""
        return [s.shape for s in self.specs]

    @property
    def sizes(self) -> list[int]:
        """Possible connections per layer."""
        return [s.size for s in self.specs]

    @property
    def fans(self) -> list[tuple[int, int]]:
        """Dense fans per layer (:class:`~topo.train.initialization.WeightInit`)."""
        return [s.fans for s in self.specs]

    def build(self, densities: Sequence[float], activation: str, backend: str,
              init: WeightInit, rng: np.random.Generator,
              channels_last: bool = False) -> SparseCNN:
        """The network with random masks of the given densities and initial weights.

        Layer by layer in forward order: the mask (``round(density size)`` positions drawn
        with ``rng``, :func:`~topo.train.sparsity.random_structure`), then its weights
        (``init`` at the mask's actual density); biases start at 0, BatchNorm at weight 1
        and bias 0. The same order of draws as :func:`~topo.train.model.build_mlp`.
        """
        from topo.train.sparsity import random_structure

        layers: list[SparseLinear] = []
        for k, (spec, d) in enumerate(zip(self.specs, densities, strict=True)):
            width = spec.n_in * spec.positions
            flat = random_structure(width, spec.n_out, d, rng)
            values = init.draw(k, flat.size, flat.size / spec.size)
            bias = torch.zeros(spec.n_out) if spec.bias else None
            if spec.kind == "conv":
                layers.append(SparseConv2d(spec.n_in, spec.n_out, spec.kernel, flat, values,
                                           bias, stride=spec.stride, padding=spec.padding,
                                           norm=spec.norm, backend=backend))
            else:
                layers.append(SparseLinear(width, spec.n_out, flat, values, bias,
                                           backend=backend, positions=spec.positions))
        return SparseCNN(self, layers, activation, channels_last)


class SparseCNN(nn.Module):
    """A sparse CNN: its :class:`SparseConv2d` and :class:`~topo.train.model.SparseLinear`
    layers in forward order (``layers``), the wiring between them, and the parameter-free
    operations of its architecture (activations, pooling, shortcuts).

    It offers what the training core uses of :class:`~topo.train.model.SparseMLP`:
    ``layers``, ``forward(x, weights=None)``, ``capture``/``restore``, ``parameter_list``,
    ``to_graph``, ``widths``, ``main_effects`` (always None); and ``reads``, ``writes``,
    ``carries`` for :func:`~topo.train.sparsity.connectivity`. Build one with
    :func:`build_cnn` or :meth:`Architecture.build`.
    """

    def __init__(self, arch: Architecture, layers: list[SparseLinear], activation: str,
                 channels_last: bool = False) -> None:
        super().__init__()
        self.arch = arch
        self.layers = nn.ModuleList(layers)
        self.activation_name = activation
        # the activation class by its registered name, in torch.nn (as SparseMLP's)
        self.act = ACTIVATIONS.load(activation, nn)()
        self.channels_last = channels_last
        self.main_effects: nn.Module | None = None
        self.names = [s.name for s in arch.specs]
        if arch.chain:
            self.reads, self.writes = list(range(len(layers))), list(range(1, len(layers) + 1))
        else:
            self.reads = [s.reads for s in arch.specs]
            self.writes = [s.writes for s in arch.specs]
        self.carries = list(arch.carries)

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one picture."""
        return self.arch.input_shape

    @property
    def widths(self) -> list[int]:
        """Units of every unit set in order of first use: the input channels, then what
        each layer writes (a residual stream once)."""
        sizes = {self.reads[0]: self.input_shape[0]}
        for k, layer in enumerate(self.layers):
            sizes.setdefault(self.writes[k], layer.n_out)
        return [sizes[s] for s in sorted(sizes)]

    def parameter_list(self) -> list[nn.Parameter]:
        """Every trained parameter, layer by layer (:meth:`SparseLinear.parameter_list`)."""
        return [p for layer in self.layers for p in layer.parameter_list()]

    def capture(self) -> list[LayerState]:
        """A copy of every layer (with its BatchNorm's parameters and statistics)."""
        return [layer.capture() for layer in self.layers]

    def restore(self, state: Sequence[LayerState]) -> None:
        """Put back what :meth:`capture` copied (optimiser state is not touched)."""
        for layer, layer_state in zip(self.layers, state, strict=True):
            layer.restore(layer_state)

    def forward(self, x: torch.Tensor,
                weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """Class scores of flattened pictures ``x`` (``(N, C H W)``, or ``(N, H W C)``
        when the data is channels-last); ``weights`` (one dense matrix per layer) replace
        the layers' own."""
        c, h, w = self.input_shape
        if self.channels_last:
            x = x.reshape(-1, h, w, c).permute(0, 3, 1, 2)
        else:
            x = x.reshape(-1, c, h, w)
        return _FORWARDS[self.arch.model](self, x, weights)

    def layer(self, k: int, x: torch.Tensor,
              weights: Sequence[torch.Tensor] | None) -> torch.Tensor:
        """Layer ``k`` applied to ``x`` (with ``weights[k]`` when given)."""
        return self.layers[k](x, None if weights is None else weights[k])

    def snapshot_content(self, input_shape: Sequence[int] | None = None) -> SnapshotContent:
        """What a snapshot of the network stores: the content of :meth:`to_graph`."""
        from topo.io.snapshot import SnapshotContent

        return SnapshotContent.of_graph(self.to_graph(input_shape))

    def to_graph(self, input_shape: Sequence[int] | None = None) -> LayeredGraph:
        """The network as a :class:`~topo.graph.LayeredGraph` with each layer's geometry
        (conv kernel, stride and padding; flatten map) and, for a residual network, its
        wiring. The structure comes from the connection sets (a connection of weight 0 is
        kept); conv biases absent from the model are absent from the graph; the input shape
        is the model's ``(C, H, W)`` (``input_shape`` is ignored: the data set's shape is
        the flattened picture's). BatchNorm is not a layer of the graph."""
        from topo.graph import LayeredGraph, LayerGeometry

        mats, masks, biases, geometry = [], [], [], []
        for spec, layer in zip(self.arch.specs, self.layers):
            weights, mask, bias = layer.to_csr()
            mats.append(weights)
            masks.append(mask)
            biases.append(bias)
            if spec.kind == "conv":
                geometry.append(LayerGeometry.conv(spec.kernel, stride=(spec.stride,) * 2,
                                                   padding=(spec.padding,) * 2))
            elif spec.kind == "flatten":
                geometry.append(LayerGeometry.flatten(spec.kernel))
            else:
                geometry.append(LayerGeometry.linear())
        chain = self.arch.chain
        return LayeredGraph(mats, masks=masks, biases=biases, names=self.names,
                            input_shape=self.input_shape, geometry=geometry,
                            reads=None if chain else self.reads,
                            writes=None if chain else self.writes)


# ------------------------------------------------------------------------ architectures
def architecture(model: str, input_shape: Sequence[int], n_classes: int,
                 width: float = 1.0) -> Architecture:
    """The layers and wiring of ``model`` for pictures of ``input_shape`` ``(C, H, W)``.

    Raises
    ------
    ConfigError
        Unknown model, or pictures too small for its pooling.
    """
    builders = {"lenet5": lenet5, "conv4": conv4, "vgg-small": vgg_small,
                "resnet20": resnet20}
    if model not in builders:
        raise ConfigError(f"unknown CNN model {model!r}; choose one of "
                          f"{', '.join(CNN_MODELS)}")
    c, h, w = (int(s) for s in input_shape)
    return builders[model]((c, h, w), int(n_classes), float(width))


def build_cnn(model: str, input_shape: Sequence[int], n_classes: int,
              densities: Sequence[float] | None, activation: str, backend: str,
              init: WeightInit, rng: np.random.Generator, *, width: float = 1.0,
              channels_last: bool = False) -> SparseCNN:
    """:func:`architecture` then :meth:`Architecture.build` (``densities`` None: dense)."""
    arch = architecture(model, input_shape, n_classes, width)
    if densities is None:
        densities = [1.0] * len(arch.specs)
    return arch.build(densities, activation, backend, init, rng, channels_last)


def _scaled(n: int, width: float) -> int:
    return max(1, int(round(n * width)))


def _conv_out(size: int, kernel: int, stride: int, padding: int) -> int:
    return (size + 2 * padding - kernel) // stride + 1


def _pooled(model: str, spatial: tuple[int, int], input_shape: tuple[int, ...]
            ) -> tuple[int, int]:
    out = (spatial[0] // 2, spatial[1] // 2)
    if min(out) < 1:
        raise ConfigError(f"model {model} needs larger pictures than "
                          f"{'x'.join(map(str, input_shape[1:]))}: a 2x2 max-pool would get "
                          f"a {spatial[0]}x{spatial[1]} map")
    return out


def lenet5(input_shape: tuple[int, int, int], n_classes: int,
           width: float = 1.0) -> Architecture:
    """LeNet-5 (LeCun, Bottou, Bengio & Haffner 1998, "Gradient-based learning applied to
    document recognition", Proc. IEEE, Sec. II-B); see the module table."""
    c, h, w = input_shape
    c1, c2 = _scaled(6, width), _scaled(16, width)
    f1, f2 = _scaled(120, width), _scaled(84, width)
    spatial = _pooled("lenet5", (h, w), input_shape)   # conv1 keeps the size (padding 2)
    pad2 = 0 if min(spatial) >= 5 else 2
    spatial = (_conv_out(spatial[0], 5, 1, pad2), _conv_out(spatial[1], 5, 1, pad2))
    spatial = _pooled("lenet5", spatial, input_shape)
    specs = [LayerSpec("conv1", "conv", c, c1, (5, 5), padding=2),
             LayerSpec("conv2", "conv", c1, c2, (5, 5), padding=pad2),
             LayerSpec("fc1", "flatten", c2, f1, spatial),
             LayerSpec("fc2", "linear", f1, f2),
             LayerSpec("fc3", "linear", f2, n_classes)]
    return Architecture("lenet5", specs, input_shape)


def conv4(input_shape: tuple[int, int, int], n_classes: int,
          width: float = 1.0) -> Architecture:
    """Conv-4 (Frankle & Carbin 2019, "The lottery ticket hypothesis", ICLR, Fig. 2)."""
    c, h, w = input_shape
    a, b, f = _scaled(64, width), _scaled(128, width), _scaled(256, width)
    spatial = _pooled("conv4", (h, w), input_shape)
    spatial = _pooled("conv4", spatial, input_shape)
    specs = [LayerSpec("convs.0", "conv", c, a, (3, 3), padding=1),
             LayerSpec("convs.1", "conv", a, a, (3, 3), padding=1),
             LayerSpec("convs.2", "conv", a, b, (3, 3), padding=1),
             LayerSpec("convs.3", "conv", b, b, (3, 3), padding=1),
             LayerSpec("linear.0", "flatten", b, f, spatial),
             LayerSpec("linear.1", "linear", f, f),
             LayerSpec("linear.2", "linear", f, n_classes)]
    return Architecture("conv4", specs, input_shape)


_VGG_SMALL = (64, 64, "M", 128, 128, "M", 256, 256, "M")


def vgg_small(input_shape: tuple[int, int, int], n_classes: int,
              width: float = 1.0) -> Architecture:
    """topo's small VGG-style network (see the module table); the VGG design is Simonyan &
    Zisserman (2015), "Very deep convolutional networks for large-scale image recognition",
    ICLR, with BatchNorm after every conv (Ioffe & Szegedy 2015)."""
    c, h, w = input_shape
    spatial = (h, w)
    specs, index, channels = [], 0, c
    for item in _VGG_SMALL:
        if isinstance(item, str):   # "M", the table's only string: a max-pool
            spatial = _pooled("vgg-small", spatial, input_shape)
            index += 1
            continue
        out = _scaled(item, width)
        specs.append(LayerSpec(f"features.{index}", "conv", channels, out, (3, 3), padding=1,
                               bias=False, norm=True))
        channels, index = out, index + 3   # conv, BatchNorm, activation
    specs.append(LayerSpec("classifier.0", "flatten", channels, n_classes, spatial))
    return Architecture("vgg-small", specs, input_shape)


def resnet20(input_shape: tuple[int, int, int], n_classes: int,
             width: float = 1.0) -> Architecture:
    """CIFAR ResNet-20 with option A shortcuts (He, Zhang, Ren & Sun 2016, "Deep residual
    learning for image recognition", CVPR, Sec. 4.2); see the module table."""
    c, h, w = input_shape
    base = _scaled(16, width)
    specs = [LayerSpec("conv1", "conv", c, base, (3, 3), padding=1, bias=False, norm=True,
                       reads=0, writes=1)]
    carries = []
    stream, next_set, channels = 1, 2, base
    spatial = (h, w)
    for stage, planes in enumerate((base, 2 * base, 4 * base), start=1):
        for block in range(3):
            stride = 2 if stage > 1 and block == 0 else 1
            spatial = (_conv_out(spatial[0], 3, stride, 1), _conv_out(spatial[1], 3, stride, 1))
            name = f"layer{stage}.{block}"
            inner = next_set
            specs.append(LayerSpec(f"{name}.conv1", "conv", channels, planes, (3, 3), stride,
                                   1, bias=False, norm=True, reads=stream, writes=inner))
            target = stream
            if stride != 1 or channels != planes:
                target = inner + 1
                carries.append((len(specs), stream, target, (planes - channels) // 2))
            specs.append(LayerSpec(f"{name}.conv2", "conv", planes, planes, (3, 3), 1, 1,
                                   bias=False, norm=True, reads=inner, writes=target))
            next_set = inner + 1 if target == stream else target + 1
            stream, channels = target, planes
    specs.append(LayerSpec("linear", "linear", channels, n_classes, reads=stream,
                           writes=next_set))
    return Architecture("resnet20", specs, input_shape, carries, chain=False)


# ------------------------------------------------------------------------ forward passes
def _lenet5_forward(net: SparseCNN, x: torch.Tensor, weights) -> torch.Tensor:
    x = F.max_pool2d(net.act(net.layer(0, x, weights)), 2)
    x = F.max_pool2d(net.act(net.layer(1, x, weights)), 2)
    x = net.act(net.layer(2, x.flatten(1), weights))
    x = net.act(net.layer(3, x, weights))
    return net.layer(4, x, weights)


def _conv4_forward(net: SparseCNN, x: torch.Tensor, weights) -> torch.Tensor:
    x = net.act(net.layer(0, x, weights))
    x = F.max_pool2d(net.act(net.layer(1, x, weights)), 2)
    x = net.act(net.layer(2, x, weights))
    x = F.max_pool2d(net.act(net.layer(3, x, weights)), 2)
    x = net.act(net.layer(4, x.flatten(1), weights))
    x = net.act(net.layer(5, x, weights))
    return net.layer(6, x, weights)


def _vgg_small_forward(net: SparseCNN, x: torch.Tensor, weights) -> torch.Tensor:
    k = 0
    for item in _VGG_SMALL:
        if item == "M":
            x = F.max_pool2d(x, 2)
        else:
            x = net.act(net.layer(k, x, weights))
            k += 1
    return net.layer(k, x.flatten(1), weights)


def _resnet20_forward(net: SparseCNN, x: torch.Tensor, weights) -> torch.Tensor:
    out = net.act(net.layer(0, x, weights))
    carries = {k: (offset, dst) for k, _src, dst, offset in net.carries}
    specs = net.arch.specs
    for k in range(1, len(net.layers) - 1, 2):
        h = net.act(net.layer(k, out, weights))
        h = net.layer(k + 1, h, weights)
        shortcut = out
        if k + 1 in carries:
            offset = carries[k + 1][0]
            if specs[k].stride != 1:
                shortcut = shortcut[:, :, ::specs[k].stride, ::specs[k].stride]
            extra = specs[k + 1].n_out - shortcut.shape[1]
            shortcut = F.pad(shortcut, (0, 0, 0, 0, offset, extra - offset))
        out = net.act(h + shortcut)
    out = F.adaptive_avg_pool2d(out, 1).flatten(1)
    return net.layer(len(net.layers) - 1, out, weights)


_FORWARDS = {"lenet5": _lenet5_forward, "conv4": _conv4_forward,
             "vgg-small": _vgg_small_forward, "resnet20": _resnet20_forward}
