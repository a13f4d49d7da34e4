"""NNSTD's assignment paths: sparse (LAPMOD), dense (LAPJV) and SciPy agree exactly.

The canonical choice among optimal matchings must not depend on which optimal matching a
solver returns; the optimal face is checked against all optimal matchings found by brute
force over every permutation of tiny layers.
"""

from __future__ import annotations

import itertools
from unittest import mock

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import topo
from topo import assignment
from topo.assignment import (
    Preference,
    canonical_matching,
    canonical_optimum,
    choose_solver,
    core_pairs,
    dense_cost_wanted,
    layer_cost,
    optimal_face,
    similarity_density_bound,
    solve_layer,
)
from topo.distance import jaccard_cost
from topo.errors import ConfigError
from topo.graph import LayeredGraph


def er_network(widths, density, rng, empty=0.0) -> LayeredGraph:
    layers = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        m = rng.random((n_out, n_in)) < density
        m[rng.random(n_out) < empty] = False
        layers.append(m.astype(float))
    return LayeredGraph(layers)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(density=st.sampled_from([0.01, 0.03, 0.08, 0.2, 0.5, 0.9, 1.0]),
       widths=st.lists(st.integers(1, 40), min_size=3, max_size=5),
       empty=st.sampled_from([0.0, 0.3]), seed=st.integers(0, 2**32 - 1))
def test_sparse_dense_and_scipy_paths_give_identical_nnstd(density, widths, empty, seed):
    rng = np.random.default_rng(seed)
    a = er_network(widths, density, rng, empty)
    hidden = [w + int(rng.integers(-2, 3)) for w in widths[1:-1]]
    b = er_network([widths[0], *[max(1, h) for h in hidden], widths[-1]], density, rng, empty)
    results = {s: topo.nnstd(a, b, solver=s) for s in ("core", "sparse", "dense", "scipy")}
    base = results["scipy"]
    for name in ("core", "sparse", "dense"):
        r = results[name]
        assert r.per_layer == pytest.approx(base.per_layer, abs=1e-12), name
        assert r.matched_cost == pytest.approx(base.matched_cost, abs=1e-9), name
        assert r.solvers[:-1] == [name] * (len(widths) - 2)


def test_paths_agree_on_random_set_networks_of_several_densities():
    rng = np.random.default_rng(7)
    for eps in (1, 3, 10, 40):
        widths = [100, 120, 90, 10]
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            p = min(1.0, eps * (n_in + n_out) / (n_in * n_out))
            layers.append((rng.random((n_out, n_in)) < p).astype(float))
        a = LayeredGraph(layers)
        b = LayeredGraph([(rng.random(w.shape) < w.mean()).astype(float) for w in layers])
        values = [topo.nnstd(a, b, solver=s).per_layer
                  for s in ("core", "sparse", "dense", "scipy")]
        for v in values[:3]:
            assert v == pytest.approx(values[3], abs=1e-12)


def brute_optima(c: np.ndarray) -> tuple[float, list[tuple[int, ...]]]:
    """Optimal cost and every optimal permutation of a small square cost matrix."""
    n = c.shape[0]
    totals = {p: sum(c[i, p[i]] for i in range(n)) for p in itertools.permutations(range(n))}
    best = min(totals.values())
    return best, [p for p, t in totals.items() if t <= best + 1e-12]


@st.composite
def small_layer(draw):
    n_a = draw(st.integers(1, 6))
    n_b = draw(st.integers(1, 6))
    m = draw(st.integers(1, 6))
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    dens = draw(st.sampled_from([0.1, 0.3, 0.6, 1.0]))
    ma = rng.random((n_a, m)) < dens
    mb = rng.random((n_b, m)) < dens
    if draw(st.booleans()):  # duplicate rows make tied units
        ma[rng.integers(0, n_a, n_a)] = ma[rng.integers(0, n_a)]
    return sp.csr_matrix(ma.astype(np.int8)), sp.csr_matrix(mb.astype(np.int8))


def padded(ma: sp.csr_matrix, mb: sp.csr_matrix) -> np.ndarray:
    n = max(ma.shape[0], mb.shape[0])
    full = np.ones((n, n))
    full[:ma.shape[0], :mb.shape[0]] = jaccard_cost(ma, mb)
    return full


@settings(max_examples=60, deadline=None)
@given(layer=small_layer())
def test_face_holds_exactly_the_pairs_of_optimal_matchings(layer):
    ma, mb = layer
    c = padded(ma, mb)
    _, optima = brute_optima(c)
    in_some_optimum = {(i, p[i]) for p in optima for i in range(len(p))}
    cost = layer_cost(ma, mb, np.arange(ma.shape[1]), ma.shape[1], dense=True)
    starts = optima[:: max(1, len(optima) // 4)]
    # both ways to the face: the full exchange matrix (small layers) and the pruned
    # exchanges with the hub (large layers)
    for start, small in itertools.product(starts, (384, 0)):
        col_of = np.array(start)
        with mock.patch.object(assignment, "_SMALL", small), \
                mock.patch.object(assignment, "_SMALL_DENSE", small):
            face = optimal_face(cost, col_of)
        label = face.label
        n = c.shape[0]
        node_of_col = np.argsort(col_of)
        face_pairs = {(k, int(col_of[k])) for k in range(n)}
        face_pairs |= {(int(k), int(col_of[h])) for k, h in zip(face.tight_k, face.tight_l)
                       if label[k] == label[h]}
        if face.hub_label >= 0:
            rows = [k for k in face.hub_rows if label[k] == face.hub_label]
            cols = [int(col_of[h]) for h in face.hub_cols if label[h] == face.hub_label]
            face_pairs |= {(int(i), j) for i in rows for j in cols if c[i, j] >= 1.0}
        assert face_pairs == in_some_optimum
        del node_of_col


@settings(max_examples=30, deadline=None)
@given(layer=small_layer(), data=st.data())
def test_canonical_choice_is_the_same_from_every_optimal_matching(layer, data):
    ma, mb = layer
    c = padded(ma, mb)
    best, optima = brute_optima(c)
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    colour_a = rng.integers(0, 3, ma.shape[0]).astype(np.uint64)
    colour_b = rng.integers(0, 3, mb.shape[0]).astype(np.uint64)
    starts = optima[:: max(1, len(optima) // 6)]
    chosen = set()
    for dense, small in itertools.product((True, False), (384, 0)):
        cost = layer_cost(ma, mb, np.arange(ma.shape[1]), ma.shape[1], dense=dense)
        with mock.patch.object(assignment, "_SMALL", small), \
                mock.patch.object(assignment, "_SMALL_DENSE", small):
            preference = Preference(None, lambda: (colour_a, colour_b))
            chosen |= {tuple(canonical_optimum(cost, np.array(p), preference)[0])
                       for p in starts}
        # the core path: solved on a few of the cheapest pairs, certified or enlarged
        for cap, compiled in itertools.product((0.0, 0.5), (True, False)):
            preference = Preference(None, lambda: (colour_a, colour_b))
            chosen.add(tuple(canonical_matching_at(cost, cap, preference, compiled)))
    assert len(chosen) == 1
    perm = np.array(chosen.pop())
    total = sum(c[i, j] for i, j in enumerate(perm) if j >= 0)
    assert total + abs(ma.shape[0] - mb.shape[0]) == pytest.approx(best, abs=1e-12)


def test_sparse_cost_is_the_dense_cost_on_the_pairs_sharing_an_input():
    rng = np.random.default_rng(3)
    dense_a = rng.random((30, 50)) < 0.1
    dense_b = rng.random((25, 40)) < 0.1
    dense_a[[3, 7]] = False
    dense_b[[0, 4, 9]] = False
    ma = sp.csr_matrix(dense_a.astype(np.int8))
    mb = sp.csr_matrix(dense_b.astype(np.int8))
    col_map = rng.permutation(60)[:40]
    full = jaccard_cost(ma, mb, col_map, 60)
    sparse = layer_cost(ma, mb, col_map, 60, dense=False)
    expect_r, expect_c = np.nonzero(full < 1.0)
    assert np.array_equal(sparse.rows, expect_r) and np.array_equal(sparse.cols, expect_c)
    assert np.array_equal(sparse.values, full[expect_r, expect_c])  # bit for bit
    # two units without inputs cost 0, and are in the similarity graph
    assert sparse.lookup(np.array([3]), np.array([4]))[0] == 0.0
    i, j = np.nonzero(full >= 1.0)
    assert np.array_equal(sparse.lookup(i, j), np.ones(i.size))


def canonical_matching_at(cost, cap, preference, compiled=True):
    """The core path with a given first core (every pair costing at most ``cap``), by the
    compiled solver (when built) or by the NumPy path."""
    with mock.patch.object(assignment, "core_cap", lambda c, *args: cap), \
            mock.patch.object(assignment, "_KERNEL_WORTH", 0), \
            assignment.compiled_kernels(compiled):
        return canonical_matching(cost, "core", preference)[0]


def test_solver_choice_rule():
    assert choose_solver(1000, 1000, 0.05) == "core"
    assert choose_solver(50, 40, 0.01) == "dense"  # small layers: dense is cheap
    assert not dense_cost_wanted(1000, 1000, 0.05)
    assert dense_cost_wanted(1000, 1000, 0.8)
    assert dense_cost_wanted(500, 400, 0.2)
    assert not dense_cost_wanted(500, 400, 0.05)
    assert not dense_cost_wanted(4000, 4000, 0.4)  # the sparse cost gains with width
    ma = sp.csr_matrix(np.eye(4, dtype=np.int8))
    # each input is read by one unit of A and one of B: at most 4 sharing pairs of 16
    assert similarity_density_bound(ma, ma, np.arange(4), 4) == pytest.approx(0.25)


def test_auto_path_is_recorded_and_unknown_solver_refused():
    rng = np.random.default_rng(0)
    a = er_network([300, 400, 10], 0.01, rng)
    b = er_network([300, 400, 10], 0.01, rng)
    result = topo.nnstd(a, b)
    assert result.solvers == ["core", "in place"]
    assert "solver" in result.to_frame().columns
    with pytest.raises(ConfigError, match="unknown NNSTD solver"):
        topo.nnstd(a, b, solver="hungarian")
    with pytest.raises(ConfigError, match="reference=True uses SciPy"):
        topo.nnstd(a, b, solver="sparse", reference=True)


def test_solve_layer_rectangular_paths_reach_the_same_optimum():
    rng = np.random.default_rng(5)
    for n_a, n_b in ((7, 5), (4, 7)):
        ma = sp.csr_matrix((rng.random((n_a, 12)) < 0.3).astype(np.int8))
        mb = sp.csr_matrix((rng.random((n_b, 12)) < 0.3).astype(np.int8))
        c = padded(ma, mb)
        best, _ = brute_optima(c)
        n = max(n_a, n_b)
        for path, dense in (("sparse", False), ("dense", True), ("scipy", True)):
            cost = layer_cost(ma, mb, np.arange(12), 12, dense=dense)
            col_of = solve_layer(cost, path)
            assert sorted(col_of) == list(range(n))
            assert sum(c[i, col_of[i]] for i in range(n)) == pytest.approx(best, abs=1e-12)


def test_paths_agree_on_layers_wider_than_the_small_face_path():
    # over 384 units: the face comes from the pruned exchanges and the hub node
    rng = np.random.default_rng(11)
    for eps in (2, 10):
        widths = [300, 450, 420, 10]
        layers = []
        for n_in, n_out in zip(widths[:-1], widths[1:]):
            p = min(1.0, eps * (n_in + n_out) / (n_in * n_out))
            layers.append((rng.random((n_out, n_in)) < p).astype(float))
        a = LayeredGraph(layers)
        b = LayeredGraph([(rng.random(w.shape) < w.mean()).astype(float) for w in layers])
        results = [topo.nnstd(a, b, solver=s) for s in ("core", "sparse", "dense", "scipy")]
        if eps == 2:  # sparse enough that many optimal matchings tie
            assert sum(results[0].tied_units) > 100
        for r in results[:3]:
            assert r.per_layer == pytest.approx(results[3].per_layer, abs=1e-12)
            assert r.matchings[0].tolist() == results[3].matchings[0].tolist()


def test_core_pairs_keep_the_cheap_pairs_and_the_extra_ones():
    rng = np.random.default_rng(2)
    ma = sp.csr_matrix((rng.random((20, 30)) < 0.2).astype(np.int8))
    mb = sp.csr_matrix((rng.random((18, 30)) < 0.2).astype(np.int8))
    full = jaccard_cost(ma, mb)
    for dense in (True, False):
        cost = layer_cost(ma, mb, np.arange(30), 30, dense=dense)
        # two pairs that share an input but cost more than the cap
        dear = np.argwhere((full > 0.8) & (full < 1.0))[:2]
        core = core_pairs(cost, 0.8, (dear[:, 0], dear[:, 1]))
        expect = {(int(i), int(j)) for i, j in zip(*np.nonzero(full <= 0.8))}
        expect |= {(int(i), int(j)) for i, j in dear}
        assert set(zip(core.rows.tolist(), core.cols.tolist())) == expect
        assert np.array_equal(core.values, full[core.rows, core.cols])
