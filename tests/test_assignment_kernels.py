"""NNSTD's compiled kernels (topo/_nnstd_kernels.c) against the NumPy path they replace.

The compiled module is optional: without it topo takes the NumPy path (LAPMOD, Bellman-Ford
rounds, SciPy products), so every result must be the same either way. Expected values come
from that independent path, from SciPy's dense solver, or from the definition of an optimal
dual (feasible on every pair, tight on the matching).
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy.optimize import linear_sum_assignment

import topo
import topo.distance
from topo import assignment
from topo.assignment import LayerCost, compiled_kernels, kernels_available, layer_cost
from topo.graph import LayeredGraph

pytestmark = pytest.mark.skipif(not kernels_available(),
                                reason="topo._nnstd_kernels was not built (no C compiler)")
FAST = settings(max_examples=20, deadline=None,
                suppress_health_check=[HealthCheck.too_slow])
# whole networks: fewer examples (400 passed when this was written; CI runs these counts)
NETWORKS = settings(max_examples=6, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


def network(widths, density, rng, ties=0.0, empty=0.0) -> LayeredGraph:
    """An ER network; a share ``ties`` of each layer's units copy another unit's inputs (tied
    optima), a share ``empty`` have no inputs."""
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        mask = rng.random((n_out, n_in)) < density
        copies = rng.random(n_out) < ties
        mask[copies] = mask[rng.integers(0, n_out, int(copies.sum()))]
        mask[rng.random(n_out) < empty] = False
        rows, cols = np.nonzero(mask)
        layers.append(sp.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(n_out, n_in)))
    return LayeredGraph(layers)


def same_result(x, y) -> bool:
    return (np.array_equal(x.per_layer, y.per_layer) and x.tied_units == y.tied_units
            and all((m is None and k is None) or np.array_equal(m, k)
                    for m, k in zip(x.matchings, y.matchings)))


@NETWORKS
@given(seed=st.integers(0, 2**32 - 1), density=st.sampled_from([0.02, 0.1, 0.4, 1.0]),
       ties=st.sampled_from([0.0, 0.5]), empty=st.sampled_from([0.0, 0.2]),
       widths=st.sampled_from([[20, 30, 25, 4], [15, 12, 18, 3], [24, 32, 28, 5]]),
       first_core=st.booleans(), lapmod=st.booleans(), sparse_cost=st.booleans())
def test_compiled_and_numpy_paths_give_identical_nnstd(seed, density, ties, empty, widths,
                                                       first_core, lapmod, sparse_cost):
    rng = np.random.default_rng(seed)
    a = network(widths, density, rng, ties, empty)
    b = network(widths, density, rng, ties, empty)
    # sparse_cost: the cost as a similarity graph (else a dense matrix, as small layers get)
    with mock.patch.object(topo.distance, "dense_cost_wanted",
                           lambda *args: not sparse_cost):
        with compiled_kernels(False):
            expected = topo.nnstd(a, b, solver="core")
        # first_core: solve on a core of the cheapest pairs first (certified or grown, warm
        # restarts); lapmod: the wide-layer route (LAPMOD with the compiled potentials,
        # taken for similarity graphs)
        with mock.patch.object(assignment, "_KERNEL_WORTH", 0 if first_core else 40), \
                mock.patch.object(assignment, "_KERNEL_SOLVER_MAX", 0 if lapmod else 10**9):
            got = topo.nnstd(a, b, solver="core")
    assert same_result(got, expected)
    assert expected.kernels[:-1] == ["numpy"] * (len(widths) - 2)
    path = "lapmod" if lapmod and sparse_cost else "compiled"
    assert got.kernels[:-1] == [path] * (len(widths) - 2)


def test_default_run_records_the_compiled_path_and_matches_numpy():
    rng = np.random.default_rng(5)
    a = network([100, 200, 150, 10], 0.05, rng, ties=0.1, empty=0.05)
    b = network([100, 200, 150, 10], 0.05, rng, ties=0.1, empty=0.05)
    got = topo.nnstd(a, b)
    with compiled_kernels(False):
        expected = topo.nnstd(a, b)
    assert got.solvers == expected.solvers == ["core", "core", "in place"]
    assert got.kernels == ["compiled", "compiled", ""]
    assert expected.kernels == ["numpy", "numpy", ""]
    assert same_result(got, expected)
    assert topo.nnstd(a, b, reference=True).kernels == ["", "", ""]


def padded(n_a, n_b, rows, cols, values) -> np.ndarray:
    full = np.ones((max(n_a, n_b),) * 2)
    full[rows, cols] = values
    return full


@st.composite
def sparse_problem(draw):
    n_a, n_b = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    mask = np.array(draw(st.lists(st.booleans(), min_size=n_a * n_b, max_size=n_a * n_b)),
                    dtype=bool).reshape(n_a, n_b)
    # degenerate costs (many ties), 0 and 1 included
    levels = np.array([0.0, 0.25, 0.5, 0.5, 0.75, 1.0, 18 / 19, 17 / 18])
    picks = draw(st.lists(st.integers(0, levels.size - 1), min_size=n_a * n_b,
                          max_size=n_a * n_b))
    rows, cols = np.nonzero(mask)
    values = levels[np.array(picks, dtype=np.int64).reshape(n_a, n_b)[rows, cols]]
    return LayerCost(n_a, n_b, rows.astype(np.int64), cols.astype(np.int64), values)


def assert_optimal_dual(core, col_of, u, v):
    full = padded(core.n_a, core.n_b, core.rows, core.cols, core.values)
    n = full.shape[0]
    best = full[linear_sum_assignment(full)].sum()
    assert sorted(col_of.tolist()) == list(range(n))
    assert full[np.arange(n), col_of].sum() == pytest.approx(best, abs=1e-12)
    reduced = full - u[:, None] - v[None, :]
    assert reduced.min() >= -1e-12
    assert np.abs(reduced[np.arange(n), col_of]).max() <= 1e-12


@FAST
@given(problem=sparse_problem(), share=st.floats(0.0, 1.0))
def test_solver_returns_an_optimal_matching_and_dual_cold_and_warm(problem, share):
    kernels = assignment._kernels()
    col_of, u, v = assignment._solve_with_dual(kernels, problem)
    assert_optimal_dual(problem, col_of, u, v)
    assert assignment._dual_certifies(problem, col_of, u, v)
    # warm: first solved with some of the pairs listed, then with all of them
    keep = np.arange(problem.rows.size) < share * problem.rows.size
    part = LayerCost(problem.n_a, problem.n_b, problem.rows[keep], problem.cols[keep],
                     problem.values[keep])
    first = assignment._solve_with_dual(kernels, part)
    assert_optimal_dual(part, *first)
    assert_optimal_dual(problem, *assignment._solve_with_dual(kernels, problem, first))


@FAST
@given(seed=st.integers(0, 2**32 - 1), shape=st.tuples(*[st.integers(0, 12)] * 4),
       density=st.floats(0.0, 1.0), dense=st.booleans())
def test_compiled_cost_is_bit_identical_to_numpy(seed, shape, density, dense):
    n_a, n_b, m_a, m_b = shape
    rng = np.random.default_rng(seed)
    n_cols = max(m_a, m_b) + int(rng.integers(0, 3))
    ma = sp.csr_matrix((rng.random((n_a, m_a)) < density).astype(np.int8))
    mb = sp.csr_matrix((rng.random((n_b, m_b)) < density).astype(np.int8))
    col_map = rng.permutation(n_cols)[:m_b]
    got = layer_cost(ma, mb, col_map, n_cols, dense=dense)
    with compiled_kernels(False):
        expected = layer_cost(ma, mb, col_map, n_cols, dense=dense)
    if dense:
        assert got.dense.tobytes() == expected.dense.tobytes()
    else:
        for x, y in ((got.rows, expected.rows), (got.cols, expected.cols),
                     (got.values, expected.values)):
            assert x.dtype == y.dtype and x.tobytes() == y.tobytes()


def test_compiled_cost_declines_inputs_it_does_not_handle():
    ma = sp.csr_matrix(np.array([[1, 1, 0]], dtype=np.int8))
    mb = sp.csr_matrix(np.array([[1, 0, 1]], dtype=np.int8))
    kernels = assignment._kernels()
    # two of B's inputs on one column of A's frame
    assert assignment._compiled_cost(kernels, ma, mb, np.array([0, 1, 0]), 3, False) is None
    # a structure with a duplicate entry (not canonical CSR)
    dup = sp.csr_matrix((np.ones(2), np.array([0, 0]), np.array([0, 2])), shape=(1, 3))
    assert assignment._compiled_cost(kernels, dup, mb, np.arange(3), 3, True) is None
    # layer_cost then takes the NumPy path: the same cost as without the kernels
    for dense in (True, False):
        got = layer_cost(ma, mb, np.array([0, 1, 0]), 3, dense=dense)
        with compiled_kernels(False):
            expected = layer_cost(ma, mb, np.array([0, 1, 0]), 3, dense=dense)
        assert np.array_equal(got.lookup([0], [0]), expected.lookup([0], [0]))
    # a handled case by hand: B's inputs 0 and 2 sit on A's columns 2 and 0, so B reads
    # {0, 2} against A's {0, 1}: one shared of three, cost 2/3
    got = layer_cost(ma, mb, np.array([2, 1, 0]), 3, dense=True)
    assert got.dense.tolist() == [[2 / 3]]


def test_potentials_equal_the_bellman_ford_rounds():
    rng = np.random.default_rng(11)
    for _ in range(20):
        n = int(rng.integers(2, 60))
        q = -rng.random(n)  # a feasible potential: no negative cycle
        m = int(rng.integers(0, 4 * n))
        k = np.sort(rng.integers(0, n, m))
        head = rng.integers(0, n, m)
        slack = np.where(rng.random(m) < 0.5, 0.0, rng.random(m))
        w = q[head] - q[k] + slack
        keep = head != k
        k, head, w = k[keep], head[keep], w[keep]
        hub_w = q.max() - q + rng.random(n) * (rng.random(n) < 0.5)
        keep_hub = rng.random(n) < 0.7
        start = np.zeros(n)
        expected = assignment._bellman_ford(n, k, head, w, hub_w, keep_hub, start)
        got = assignment._potentials(n, k, head, w, hub_w, keep_hub, start)
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-11)


def test_a_dual_that_fails_its_check_falls_back_to_lapmod():
    rng = np.random.default_rng(2)
    a = network([60, 150, 140, 5], 0.08, rng, ties=0.2)
    b = network([60, 150, 140, 5], 0.08, rng, ties=0.2)
    with compiled_kernels(False):
        expected = topo.nnstd(a, b)
    solve = assignment._solve_with_dual

    def wrong(kernels, core, warm=None):
        col_of, u, v = solve(kernels, core, warm)
        return col_of, u, v + 1e-6  # infeasible for the pairs that were tight

    with mock.patch.object(assignment, "_solve_with_dual", wrong):
        got = topo.nnstd(a, b)
    assert got.kernels[:2] == ["lapmod (compiled dual not verified)"] * 2
    assert same_result(got, expected)


def test_without_the_module_every_layer_takes_the_numpy_path():
    rng = np.random.default_rng(4)
    a = network([60, 150, 5], 0.05, rng)
    b = network([60, 150, 5], 0.05, rng)
    with mock.patch.object(assignment, "_KERNELS", None):
        assert not assignment.kernels_available()
        got = topo.nnstd(a, b)
    assert got.kernels == ["numpy", ""]
    assert same_result(got, topo.nnstd(a, b))
