"""A sparse multi-layer perceptron whose layers store only their connections.

Each :class:`SparseLinear` keeps the weights of its connections as one parameter vector
``values`` and their positions as sorted flat indices ``row * n_in + col`` (row-major, i.e.
CSR order). The connection set *is* the mask: a connection regrown at weight 0 is still a
connection. Because the optimiser sees only ``values``, changing the structure is a matter of
building a new vector and carrying the optimiser state of the surviving connections over
(:func:`topo.train.methods.apply_structure`), and nothing is ever computed for absent
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

import math
import warnings

import numpy as np
import torch
from torch import nn

__all__ = ["SparseLinear", "SparseMLP", "SPARSE_MAX_DENSITY", "SPARSE_MIN_SIZE",
           "activation_module"]

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
        Bias vector (length ``n_out``).
    backend
        ``auto``, ``dense`` or ``sparse`` (see the module docstring).
    """

    def __init__(self, n_in: int, n_out: int, flat: np.ndarray, values: torch.Tensor,
                 bias: torch.Tensor, backend: str = "auto") -> None:
        super().__init__()
        self.n_in, self.n_out = int(n_in), int(n_out)
        self.backend = backend
        self.values = nn.Parameter(torch.zeros(0))
        self.bias = nn.Parameter(bias.detach().clone().float())
        self.register_buffer("flat", torch.zeros(0, dtype=torch.int64), persistent=False)
        self.set_structure(flat, values)

    # ------------------------------------------------------------- structure
    @property
    def n_connections(self) -> int:
        """Number of connections."""
        return int(self.flat.numel())

    @property
    def density(self) -> float:
        """Connections / possible connections."""
        return self.n_connections / (self.n_in * self.n_out)

    def set_structure(self, flat: np.ndarray | torch.Tensor, values: torch.Tensor) -> None:
        """Replace the connection set (sorted flat indices) and their weights in place.

        ``values`` becomes a new parameter object (autograd caches the shape of a leaf, so a
        parameter must not change size in place); an optimiser holding the old one must be
        told (:func:`topo.train.methods.drop_and_grow` does that).
        """
        flat_t = torch.as_tensor(np.array(flat, dtype=np.int64, copy=True))
        self.flat = flat_t
        self.values = nn.Parameter(values.detach().float().contiguous().clone())
        rows = torch.div(flat_t, self.n_in, rounding_mode="floor")
        cols = flat_t - rows * self.n_in
        self._rows, self._cols = rows, cols
        self._full = self.n_connections == self.n_in * self.n_out
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
        size = self.n_in * self.n_out
        return size >= SPARSE_MIN_SIZE and self.density <= SPARSE_MAX_DENSITY

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self._use_sparse:
            return _CSRLinear.apply(x, self.values, self.bias, self)
        return nn.functional.linear(x, self.dense_weight(), self.bias)


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
        w = _csr(layer._crow, layer._col, values, (layer.n_out, layer.n_in))
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
                      (layer.n_in, layer.n_out))
            grad_x = torch.sparse.mm(wt, gt).t()
        if ctx.needs_input_grad[1]:
            pattern = _csr(layer._crow, layer._col, torch.zeros_like(values),
                           (layer.n_out, layer.n_in))
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
    """

    def __init__(self, layers: list[SparseLinear], activation: str = "relu") -> None:
        super().__init__()
        self.layers = nn.ModuleList(layers)
        self.activation_name = activation
        self.act = activation_module(activation)

    @property
    def widths(self) -> list[int]:
        """Unit counts input to output."""
        return [self.layers[0].n_in, *(lay.n_out for lay in self.layers)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for k, layer in enumerate(self.layers):
            x = layer(x)
            if k < last:
                x = self.act(x)
        return x


def activation_module(name: str) -> nn.Module:
    """The torch module of an activation name (see ``topo.train.config.ACTIVATIONS``)."""
    return {
        "relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid,
        "leaky_relu": nn.LeakyReLU, "elu": nn.ELU, "gelu": nn.GELU, "identity": nn.Identity,
    }[name]()


def init_bound(kind: str, fan_in: float, fan_out: float) -> tuple[str, float]:
    """Distribution (``uniform``/``normal``) and its bound/std for a weight initialisation.

    ``fan_in``/``fan_out`` are the effective (sparse-aware) fans: density times the width.
    """
    fan_in = max(fan_in, 1.0)
    fan_out = max(fan_out, 1.0)
    if kind == "he_uniform":
        return "uniform", math.sqrt(6.0 / fan_in)
    if kind == "he_normal":
        return "normal", math.sqrt(2.0 / fan_in)
    if kind == "xavier_uniform":
        return "uniform", math.sqrt(6.0 / (fan_in + fan_out))
    return "uniform", 1.0 / math.sqrt(fan_in)  # torch_default: kaiming_uniform(a=sqrt(5))


def draw_weights(n: int, kind: str, fan_in: float, fan_out: float,
                 generator: torch.Generator) -> torch.Tensor:
    """``n`` initial weights from the named distribution, drawn with ``generator``."""
    dist, scale = init_bound(kind, fan_in, fan_out)
    if dist == "uniform":
        return (torch.rand(n, generator=generator) * 2.0 - 1.0) * scale
    return torch.randn(n, generator=generator) * scale
