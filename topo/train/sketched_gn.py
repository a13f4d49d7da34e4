"""The Gauss-Newton direction of a two-layer relu network, solved with a sketched preconditioner.

For the network ``f(x) = Σ_r a_r relu(w_r · x + b_r) + c`` trained in its first layer's
connection weights ``W`` on the squared loss, the Jacobian of the outputs of ``n`` samples
has one row per sample and one column per connection ``e = (r, j)``::

    J[i, e] = a_r · 1[w_r · x_i + b_r > 0] · x_ij.

The Gauss-Newton step is the minimum-norm solution of the linearised problem
``J Δ = f - y``: ``Δ = Jᵀ g`` with ``(J Jᵀ) g = f - y``. Brand, Peng, Song & Weinstein
(2021) solve the ``n × n`` system without forming ``J Jᵀ``: a sketch ``S Jᵀ`` (``s × n``,
``s`` a small multiple of ``n``) gives ``R`` from its QR decomposition, ``Rᵀ R`` is a
spectral approximation of ``J Jᵀ``, and conjugate gradient preconditioned with it needs
few iterations, each one product with ``J`` and one with ``Jᵀ``. Both products use the
structure above (``O(n (m d))`` for ``m`` hidden units and ``d`` inputs, dense or sparse
``W``), so nothing of size ``n × n`` beyond ``R`` and nothing of size ``n × (m d)`` is
ever formed.

Torch only (float64 inside), no randomness but the run's generator.
"""

from __future__ import annotations

import math
from typing import Any

import torch

__all__ = ["gauss_newton_direction", "jacobian_products", "count_sketch",
           "preconditioned_cg", "DAMPING"]

DAMPING = 1e-8
"""Default relative Levenberg-Marquardt damping of the Gauss-Newton system."""

_BLOCK = 4_000_000   # entries of one (samples x connections) block of the Jacobian


def gauss_newton_direction(x: torch.Tensor, flat: torch.Tensor, values: torch.Tensor,
                           bias: torch.Tensor, out_weight: torch.Tensor,
                           residual: torch.Tensor, *, n_in: int, sketch_size: int,
                           tol: float, max_iter: int, generator: torch.Generator,
                           damping: float = DAMPING) -> tuple[torch.Tensor, dict[str, Any]]:
    """The Gauss-Newton direction ``Δ = Jᵀ g``, ``(J Jᵀ + λ I) g = residual``, for the first
    layer.

    Parameters
    ----------
    x
        Inputs, ``(n, d)``.
    flat, values, bias
        The first layer: sorted flat positions ``r * d + j`` of its connections, their
        weights, and its bias (length ``m``).
    out_weight
        The output layer's weights ``a`` (length ``m``; 0 at absent connections).
    residual
        ``f(x) - y``, length ``n``.
    n_in
        ``d``.
    sketch_size
        Rows ``s`` of the CountSketch of ``Jᵀ`` (:func:`count_sketch`); at least ``n`` are
        used, so that ``R`` is square.
    tol, max_iter
        Stop conjugate gradient when ``‖r_k‖ <= tol ‖residual‖`` or after ``max_iter``
        iterations.
    generator
        Draws the sketch.
    damping
        ``λ = damping · mean(diag(J Jᵀ))``: a Levenberg-Marquardt term that keeps the
        system positive definite when ``J`` has dependent rows (more samples than
        connections, or a linear regime where no unit switches). Brand et al. assume
        ``J Jᵀ`` positive definite (overparametrised networks); there the default changes
        the solution by a relative ``~1e-8 / κ``.

    Returns
    -------
    torch.Tensor
        ``Δ``, one entry per connection (float64); 0 when ``J = 0`` (every unit dead).
    dict
        ``iterations`` and ``relative_residual`` of conjugate gradient, ``sketch_size``,
        ``damping`` (the absolute ``λ``).

    Notes
    -----
    Brand, Peng, Song & Weinstein (2021), "Training (overparametrized) neural networks in
    near-linear time", ITCS, Section 4: Gauss-Newton with the linear system solved by
    sketching for a preconditioner and an iterative solver. topo's sketch is a CountSketch
    (Clarkson & Woodruff 2013), an oblivious subspace embedding computed in ``O(nnz(J))``;
    the paper's analysis uses a fast subspace embedding of the same role. The relu
    derivative at exactly 0 is taken as 0. Cost per call: ``O(n m d)`` for the sketch and
    per CG iteration, ``O(s n²)`` for the QR decomposition.
    """
    x = x.double()
    w = values.double()
    a = out_weight.double()
    r = residual.double()
    m = bias.numel()
    rows = torch.div(flat, n_in, rounding_mode="floor")
    cols = flat - rows * n_in
    weight = torch.zeros(m * n_in, dtype=torch.float64)
    weight[flat] = w
    active = (x @ weight.view(m, n_in).t() + bias.double()) > 0    # (n, m)
    jv, jtu = jacobian_products(x, active, a, rows, cols)
    size = max(sketch_size, x.shape[0])
    # diag(J Jᵀ)_i = Σ_r a_r² active_ir Σ_(j into r) x_ij²
    mask = torch.zeros(m * n_in, dtype=torch.float64)
    mask[flat] = 1.0
    diag = ((x * x) @ mask.view(m, n_in).t() * active.double()) @ (a * a)
    lam = damping * float(diag.mean())
    if float(diag.max()) == 0.0:
        return torch.zeros(flat.numel(), dtype=torch.float64), {
            "iterations": 0, "relative_residual": 1.0, "sketch_size": size, "damping": 0.0}
    sketch = count_sketch(x, active, a, rows, cols, size, generator)
    g, info = preconditioned_cg(lambda v: jv(jtu(v)), r, sketch, tol, max_iter, shift=lam)
    info.update(sketch_size=size, damping=lam)
    return jtu(g), info


def jacobian_products(x: torch.Tensor, active: torch.Tensor, a: torch.Tensor,
                      rows: torch.Tensor, cols: torch.Tensor):
    """``(J v, Jᵀ u)`` as two functions, for ``J[i, e] = a_r 1[active_ir] x_ij``.

    ``J v``: scatter ``v`` into an ``m × d`` matrix ``V`` and return
    ``((X Vᵀ) ⊙ active) a``; ``Jᵀ u``: ``((active ⊙ u aᵀ)ᵀ X)`` read at the connections.
    Both ``O(n m d)``.
    """
    n, d = x.shape
    m = a.numel()
    flat = rows * d + cols
    mask = active.double()

    def jv(v: torch.Tensor) -> torch.Tensor:
        dense = torch.zeros(m * d, dtype=torch.float64)
        dense[flat] = v
        return ((x @ dense.view(m, d).t()) * mask) @ a

    def jtu(u: torch.Tensor) -> torch.Tensor:
        g = (mask * u[:, None] * a[None, :]).t() @ x            # (m, d)
        return g.reshape(-1)[flat]

    return jv, jtu


def count_sketch(x: torch.Tensor, active: torch.Tensor, a: torch.Tensor, rows: torch.Tensor,
                 cols: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """``S Jᵀ`` for a CountSketch ``S`` (``size`` rows): every connection ``e`` is hashed to
    one row ``h(e)`` with a random sign ``σ_e``, and ``(S Jᵀ)[t] = Σ_{h(e)=t} σ_e J[:, e]``.

    ``h`` and ``σ`` are drawn from ``generator``; ``J`` is built block by block (never
    whole). Returns a ``(size, n)`` float64 tensor. O(n · nnz).

    Notes
    -----
    Clarkson & Woodruff (2013), "Low rank approximation and regression in input sparsity
    time", STOC.
    """
    nnz = rows.numel()
    n = x.shape[0]
    hashes = torch.randint(size, (nnz,), generator=generator)
    signs = torch.randint(2, (nnz,), generator=generator).double() * 2.0 - 1.0
    out = torch.zeros(size, n, dtype=torch.float64)
    block = max(1, _BLOCK // max(1, n))
    mask = active.double()
    for begin in range(0, nnz, block):
        r, c = rows[begin:begin + block], cols[begin:begin + block]
        columns = mask[:, r] * (a[r] * signs[begin:begin + block])[None, :] * x[:, c]
        out.index_add_(0, hashes[begin:begin + block], columns.t())
    return out


def preconditioned_cg(matvec, rhs: torch.Tensor, sketch: torch.Tensor, tol: float,
                      max_iter: int, shift: float = 0.0) -> tuple[torch.Tensor, dict[str, Any]]:
    """Solve ``(M + shift I) g = rhs`` by conjugate gradient preconditioned with
    ``(Rᵀ R)⁻¹``.

    ``M`` is symmetric positive semi-definite, given by ``matvec``; ``sketch ≈ Jᵀ`` up to a
    near-isometry where ``M = J Jᵀ``, and ``R`` is the triangular factor of the QR
    decomposition of ``sketch`` stacked on ``sqrt(shift) I``, so that
    ``Rᵀ R ≈ M + shift I``. When ``R`` is still singular (no shift and a sketch that lost
    rank), a diagonal entry below ``1e-10`` times the largest is raised to that floor.
    Starts from 0; stops when ``‖rhs - (M + shift I) g‖ <= tol ‖rhs‖`` or after
    ``max_iter`` iterations.

    Returns the solution and ``{"iterations", "relative_residual"}``.

    Notes
    -----
    Sketch-and-precondition: Rokhlin & Tygert (2008); Avron, Maymounkov & Toledo (2010),
    "Blendenpik"; as used by Brand et al. (2021).
    """
    norm = float(torch.linalg.vector_norm(rhs))
    g = torch.zeros_like(rhs)
    if norm == 0.0:
        return g, {"iterations": 0, "relative_residual": 0.0}
    n = rhs.numel()
    if shift > 0.0:
        sketch = torch.cat([sketch, math.sqrt(shift) * torch.eye(n, dtype=sketch.dtype)])
    R = torch.linalg.qr(sketch, mode="r").R
    diag = R.diagonal().abs()
    floor = 1e-10 * float(diag.max()) if float(diag.max()) > 0 else 1.0
    small = diag < floor
    if small.any():
        R = R.clone()
        idx = torch.nonzero(small).reshape(-1)
        R[idx, idx] = floor

    def operator(v: torch.Tensor) -> torch.Tensor:
        return matvec(v) + shift * v

    def precondition(v: torch.Tensor) -> torch.Tensor:
        y = torch.linalg.solve_triangular(R.t(), v[:, None], upper=False)
        return torch.linalg.solve_triangular(R, y, upper=True)[:, 0]

    res = rhs.clone()
    z = precondition(res)
    p = z.clone()
    rz = float(res @ z)
    iterations = 0
    rel = 1.0
    while iterations < max_iter:
        q = operator(p)
        pq = float(p @ q)
        if pq <= 0.0:
            break
        alpha = rz / pq
        g += alpha * p
        res -= alpha * q
        iterations += 1
        rel = float(torch.linalg.vector_norm(res)) / norm
        if rel <= tol:
            break
        z = precondition(res)
        rz_next = float(res @ z)
        p = z + (rz_next / rz) * p
        rz = rz_next
    return g, {"iterations": iterations, "relative_residual": rel}
