"""A sparse multi-layer perceptron whose layers store only their connections.

Each :class:`SparseLinear` keeps the weights of its connections as one parameter vector
``values`` and their positions as sorted flat indices ``row * n_in + col`` (row-major, i.e.
CSR order). The connection set *is* the mask: a connection regrown at weight 0 is still a
connection. Because the optimiser sees only ``values``, changing the structure is a matter of
building a new vector and carrying the optimiser state of the surviving connections over
(:func:`topo.train.methods.drop_and_grow`), and nothing is ever computed for absent
connections' optimiser state.

Two computation paths give the same result up to floating-point rounding:

- ``dense``: scatter ``values`` into a zero ``(n_out, n_in)`` matrix and call a dense
  ``linear`` (fast for dense or moderately sparse layers, and for small layers);
- ``sparse``: a CSR product ``W @ x^T`` forward; backward ``W^T @ g`` for the input gradient
  and ``torch.sparse.sampled_addmm`` for the gradient of ``values`` (only at the connections).

``backend="auto"`` picks per layer: sparse when the layer has at least
:data:`SPARSE_MIN_SIZE` possible connections and density at most :data:`SPARSE_MAX_DENSITY`
(thresholds from ``analysis/benchmarks/train_epoch.py``; see ``analysis/results/``).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import nn

from topo.layer_arrays import LayerArrays
from topo.train.registry import ACTIVATIONS

if TYPE_CHECKING:  # pragma: no cover
    from topo.graph import LayeredGraph
    from topo.io.snapshot import SnapshotContent
    from topo.train.initialization import WeightInit

__all__ = ["SparseLinear", "SparseMLP", "SPARSE_MAX_DENSITY", "SPARSE_MIN_SIZE", "build_mlp",
           "dense_gradients", "LayerState"]

LayerState = dict[str, torch.Tensor]
"""A copy of one layer: ``flat`` (int64 positions), ``values`` and ``bias`` (float32)."""

SPARSE_MAX_DENSITY = 0.2
SPARSE_MIN_SIZE = 100_000


class SparseLinear(nn.Module):
    """A Linear layer holding only its connections.

    Parameters
    ----------
    n_in, n_out
        Input and output widths.
    flat
        Sorted unique flat indices ``row * n_in + col`` of the connections.
    values
        Weight of every connection, in the order of ``flat``.
    bias
        Bias vector (length ``n_out``), or None for a layer without bias (a conv followed
        by BatchNorm).
    backend
        ``auto``, ``dense`` or ``sparse`` (see the module docstring).
    positions
        Columns per input unit: 1 for a layer of neurons; ``H * W`` for a layer reading a
        flattened ``(C, H, W)`` feature map (its input units are the ``C`` channels,
        :class:`~topo.graph.LayerGeometry` kind ``flatten``).

    Attributes
    ----------
    in_width
        Columns of the layer's matrix (``n_in``).
    norm
        Normalisation applied to the layer's output (None for a linear layer; a
        :class:`~topo.train.cnn.SparseConv2d` may carry its BatchNorm).
    """

    def __init__(self, n_in: int, n_out: int, flat: np.ndarray, values: torch.Tensor,
                 bias: torch.Tensor | None, backend: str = "auto", positions: int = 1) -> None:
        super().__init__()
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.positions = int(positions)
        self.norm: nn.Module | None = None
        self.backend = backend
        self.values = nn.Parameter(torch.zeros(0))
        if bias is None:
            self.register_parameter("bias", None)
        else:
            self.bias = nn.Parameter(bias.detach().clone().float())
        self.register_buffer("flat", torch.zeros(0, dtype=torch.int64), persistent=False)
        self.set_structure(flat, values)

    # ------------------------------------------------------------- structure
    @property
    def n_connections(self) -> int:
        """Number of connections."""
        return int(self.flat.numel())

    @property
    def size(self) -> int:
        """Possible connections (positions of the flat index space): ``n_in n_out``."""
        return self.n_in * self.n_out

    @property
    def in_width(self) -> int:
        """Columns of the layer's matrix: input units times positions."""
        return self.n_in

    def parameter_list(self) -> list[nn.Parameter]:
        """The parameters an optimiser trains, in a fixed order: ``values``, the bias (when
        the layer has one), then its normalisation's weight and bias (when it has one)."""
        params = [self.values] + ([] if self.bias is None else [self.bias])
        if self.norm is not None:
            params += [p for p in (self.norm.weight, self.norm.bias) if p is not None]
        return params

    @property
    def density(self) -> float:
        """Connections / possible connections."""
        return self.n_connections / self.size

    def arrays(self) -> tuple[LayerArrays, np.ndarray | None]:
        """The layer as a snapshot holds it, without SciPy: its connections and weights as
        CSR arrays (:class:`~topo.layer_arrays.LayerArrays`; a weight of 0 stays a
        connection), and its bias as float64 (None without one)."""
        flat = self.flat.numpy()
        rows, cols = np.divmod(flat, self.n_in)
        indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=self.n_out))])
        weights = LayerArrays(indptr, cols, self.values.data.numpy().astype(np.float64),
                              (self.n_out, self.n_in))
        bias = None if self.bias is None else self.bias.data.numpy().astype(np.float64)
        return weights, bias

    def to_csr(self) -> tuple[Any, Any, np.ndarray | None]:
        """The layer as a snapshot holds it: its weights and its connection mask as
        (n_out, n_in) CSR matrices over the same connections (a weight of 0 stays a
        connection), and its bias as float64 (None without one)."""
        import scipy.sparse as sp

        arrays, bias = self.arrays()
        weights = arrays.to_csr()
        mask = sp.csr_matrix((np.ones(arrays.nnz, dtype=np.int8), arrays.indices, arrays.indptr),
                             shape=arrays.shape)
        return weights, mask, bias

    def set_structure(self, flat: np.ndarray | torch.Tensor, values: torch.Tensor) -> None:
        """Replace the connection set (sorted flat indices) and their weights in place.

        ``values`` becomes a new parameter object (autograd caches the shape of a leaf, so a
        parameter must not change size in place); an optimiser holding the old one must be
        told (:func:`topo.train.methods.drop_and_grow` does that).
        """
        if isinstance(flat, torch.Tensor):
            flat = flat.numpy()
        flat_t = torch.as_tensor(np.array(flat, dtype=np.int64, copy=True))
        self.flat = flat_t
        self.values = nn.Parameter(values.detach().float().contiguous().clone())
        rows = torch.div(flat_t, self.n_in, rounding_mode="floor")
        cols = flat_t - rows * self.n_in
        self._rows, self._cols = rows, cols
        self._full = self.n_connections == self.size
        self._use_sparse = self._choose_sparse()
        if self._use_sparse:
            counts = torch.bincount(rows, minlength=self.n_out)
            self._crow = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
            self._col = cols.contiguous()
            # transposed structure (CSR of W^T) and the permutation into it, for backward
            order = torch.argsort(cols * self.n_out + rows)
            self._perm_t = order
            counts_t = torch.bincount(cols, minlength=self.n_in)
            self._crow_t = torch.cat([torch.zeros(1, dtype=torch.int64), counts_t.cumsum(0)])
            self._col_t = rows[order].contiguous()

    def _choose_sparse(self) -> bool:
        if self.backend == "dense" or self._full:
            return False
        if self.backend == "sparse":
            return True
        return self.size >= SPARSE_MIN_SIZE and self.density <= SPARSE_MAX_DENSITY

    @property
    def uses_sparse(self) -> bool:
        """True when the forward/backward pass runs on the CSR path."""
        return self._use_sparse

    def dense_weight(self) -> torch.Tensor:
        """The ``(n_out, n_in)`` weight matrix with zeros at absent positions (differentiable)."""
        if self._full:
            return self.values.view(self.n_out, self.n_in)
        w = self.values.new_zeros(self.n_out * self.n_in)
        w = w.index_put((self.flat,), self.values)
        return w.view(self.n_out, self.n_in)

    def mask(self) -> np.ndarray:
        """Boolean ``(n_out, n_in)`` mask of the connections."""
        m = np.zeros(self.n_out * self.n_in, dtype=bool)
        m[self.flat.numpy()] = True
        return m.reshape(self.n_out, self.n_in)

    def forward(self, x: torch.Tensor, weight: torch.Tensor | None = None) -> torch.Tensor:
        """``x W^T + b``; ``weight`` replaces ``W`` by a given dense ``(n_out, n_in)`` matrix
        (what :func:`dense_gradients` differentiates)."""
        if weight is not None:
            return nn.functional.linear(x, weight, self.bias)
        if self._use_sparse:
            return _CSRLinear.apply(x, self.values, self.bias, self)
        return nn.functional.linear(x, self.dense_weight(), self.bias)

    def capture(self) -> LayerState:
        """A copy of the connections, their weights and the bias (None for a layer
        without), and of the normalisation's parameters and statistics (``norm``) when
        the layer has one."""
        state = {"flat": self.flat.clone(), "values": self.values.data.clone(),
                 "bias": None if self.bias is None else self.bias.data.clone()}
        if self.norm is not None:
            state["norm"] = {k: v.detach().clone() for k, v in self.norm.state_dict().items()}
        return state

    def restore(self, state: LayerState) -> None:
        """Put back what :meth:`capture` copied (a new ``values`` parameter, as
        :meth:`set_structure` makes)."""
        self.set_structure(state["flat"], state["values"])
        if self.bias is not None:
            self.bias.data = state["bias"].clone()
        if self.norm is not None:
            for key, value in self.norm.state_dict().items():
                value.copy_(state["norm"][key])


class _CSRLinear(torch.autograd.Function):
    """``y = x W^T + b`` with ``W`` in CSR form; gradients only at the connections.

    The product is computed feature-major, ``y^T = W x^T``, which is the layout the CSR
    kernels want, and ``y`` is returned as a transposed view of the contiguous ``y^T``.
    Element-wise activations keep that layout, so the next CSR layer's ``x^T`` is already
    contiguous and no activation matrix is copied between sparse layers.
    """

    @staticmethod
    def forward(ctx, x: torch.Tensor, values: torch.Tensor, bias: torch.Tensor,
                layer: SparseLinear):
        w = _csr(layer._crow, layer._col, values, (layer.n_out, layer.in_width))
        xt = x.t().contiguous()
        yt = torch.sparse.mm(w, xt)
        yt.add_(bias.unsqueeze(1))
        ctx.save_for_backward(xt, values)
        ctx.layer = layer
        return yt.t()

    @staticmethod
    def backward(ctx, grad_out: torch.Tensor):
        xt, values = ctx.saved_tensors
        layer = ctx.layer
        grad_x = grad_values = grad_bias = None
        gt = grad_out.t().contiguous()
        if ctx.needs_input_grad[0]:
            wt = _csr(layer._crow_t, layer._col_t, values[layer._perm_t],
                      (layer.in_width, layer.n_out))
            grad_x = torch.sparse.mm(wt, gt).t()
        if ctx.needs_input_grad[1]:
            pattern = _csr(layer._crow, layer._col, torch.zeros_like(values),
                           (layer.n_out, layer.in_width))
            grad_values = torch.sparse.sampled_addmm(pattern, gt, xt.t(), beta=0.0).values()
        if ctx.needs_input_grad[2]:
            grad_bias = gt.sum(1)
        return grad_x, grad_values, grad_bias, None


def _csr(crow: torch.Tensor, col: torch.Tensor, values: torch.Tensor,
         shape: tuple[int, int]) -> torch.Tensor:
    # torch warns that CSR support is "beta" on every construction; the two operations used
    # here (CSR @ dense, sampled_addmm) are checked against the dense path by the tests.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
        return torch.sparse_csr_tensor(crow, col, values, shape, check_invariants=False)


class SparseMLP(nn.Module):
    """A stack of :class:`SparseLinear` layers with an activation between them.

    The output layer is linear (no activation); the loss adds softmax or nothing.
    ``activation`` is a name of :data:`~topo.train.registry.ACTIVATIONS`. ``main_effects``
    (None unless set: :class:`~topo.train.main_effects.MainEffects`) adds the output of
    one univariate network per input feature (NID's MLP-M); the layers stay the network
    the methods change and the snapshots hold.
    """

    def __init__(self, layers: list[SparseLinear], activation: str = "relu") -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.activation_name = activation
        self.act = ACTIVATIONS.load(activation, nn)()
        self.main_effects: nn.Module | None = None

    @property
    def widths(self) -> list[int]:
        """Unit counts input to output."""
        return [self.layers[0].n_in, *(lay.n_out for lay in self.layers)]

    def forward(self, x: torch.Tensor,
                weights: Sequence[torch.Tensor] | None = None) -> torch.Tensor:
        """The network's output; ``weights`` (one dense matrix per layer) replace the
        layers' own weights."""
        last = len(self.layers) - 1
        inputs = x
        for k, layer in enumerate(self.layers):
            x = layer(x, None if weights is None else weights[k])
            if k < last:
                x = self.act(x)
        if self.main_effects is not None:
            x = x + self.main_effects(inputs)
        return x

    def parameter_list(self) -> list[nn.Parameter]:
        """The parameters an optimiser trains: each layer's (:meth:`SparseLinear.
        parameter_list`), in layer order, then those of the main-effect networks."""
        params = [p for layer in self.layers for p in layer.parameter_list()]
        if self.main_effects is not None:
            params += self.main_effects.parameter_list()
        return params

    def capture(self) -> list[LayerState]:
        """A copy of every layer (:meth:`SparseLinear.capture`)."""
        return [layer.capture() for layer in self.layers]

    def restore(self, state: Sequence[LayerState]) -> None:
        """Put back what :meth:`capture` copied (optimiser state is not touched)."""
        for layer, layer_state in zip(self.layers, state, strict=True):
            layer.restore(layer_state)

    def snapshot_content(self, input_shape: Sequence[int] | None = None) -> SnapshotContent:
        """What a snapshot of the network stores (the content of :meth:`to_graph`), built
        without SciPy so that a run's first snapshot does not import it."""
        from topo.io.snapshot import SnapshotContent

        layers, biases = (list(parts) for parts in zip(*(layer.arrays() for layer in self.layers)))
        return SnapshotContent(layers, biases, [f"layers.{k}" for k in range(len(layers))],
                               tuple(int(n) for n in input_shape) if input_shape else None)

    def to_graph(self, input_shape: Sequence[int] | None = None) -> LayeredGraph:
        """The network as a :class:`~topo.graph.LayeredGraph`; its structure comes from the
        connection set, so a connection of weight 0 is kept. Layers are named
        ``layers.0``, ``layers.1``, ..."""
        from topo.graph import LayeredGraph

        layers, masks, biases = (list(parts) for parts in
                                 zip(*(layer.to_csr() for layer in self.layers)))
        return LayeredGraph(layers, masks=masks, biases=biases,
                            names=[f"layers.{k}" for k in range(len(layers))],
                            input_shape=input_shape)


def build_mlp(widths: Sequence[int], densities: Sequence[float], activation: str,
              backend: str, init: WeightInit, rng: np.random.Generator) -> SparseMLP:
    """A sparse MLP with random masks of the given densities and initial weights.

    Layer by layer, input side first: the mask (``round(density n_in n_out)`` positions
    drawn with ``rng``, :func:`topo.train.sparsity.random_structure`), then its weights
    (``init``, at the mask's actual density); biases start at 0.
    """
    from topo.train.sparsity import random_structure

    layers = []
    for k, d in enumerate(densities):
        n_in, n_out = widths[k], widths[k + 1]
        flat = random_structure(n_in, n_out, d, rng)
        values = init.draw(k, flat.size, flat.size / (n_in * n_out))
        layers.append(SparseLinear(n_in, n_out, flat, values, torch.zeros(n_out),
                                   backend=backend))
    return SparseMLP(layers, activation)


def dense_gradients(model: SparseMLP, x: torch.Tensor, y: torch.Tensor,
                    loss_fn: Callable[..., torch.Tensor]) -> list[np.ndarray]:
    """``∂L/∂W`` of the batch at every position (absent ones too), flat row-major per layer.

    The network is evaluated with dense weight matrices equal to the sparse ones (zeros at
    absent positions), so the gradient at an absent position is what it would receive if it
    were a connection of weight 0 (RigL's grow criterion, Evci et al. 2020). The layers'
    own parameters and their ``.grad`` are left untouched.
    """
    weights = [layer.dense_weight().detach().clone().requires_grad_(True)
               for layer in model.layers]
    # a normalisation's running statistics are the training steps' own: this extra pass
    # must not move them (nor count as one of its batches)
    norms = [layer.norm for layer in model.layers if isinstance(layer.norm, nn.Module)]
    kept = [[b.clone() for b in n.buffers()] for n in norms]
    loss = loss_fn(model(x, weights), y)
    grads = torch.autograd.grad(loss, weights)
    with torch.no_grad():   # after the backward pass, which reads them
        for norm, saved in zip(norms, kept):
            for buffer, value in zip(norm.buffers(), saved):
                buffer.copy_(value)
    return [g.reshape(-1).numpy().astype(np.float64) for g in grads]
