"""sipp: sensitivities by hand and against a loop over their definition, the three pruning
modes, and whole runs at the target density."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st

from topo.errors import ConfigError
from topo.io.run import read_manifest, read_metrics
from topo.train import TrainConfig, train
from topo.train.methods import SiPP, sipp_prune, sipp_sensitivities
from topo.train.methods.sipp import sipp_tails
from topo.train.model import SparseLinear, SparseMLP

from ..conftest import SMALL


def _network(w0, x_width, flat0=None):
    w0 = torch.as_tensor(w0, dtype=torch.float32)
    n_out, n_in = w0.shape
    flat0 = np.arange(n_out * n_in) if flat0 is None else np.asarray(flat0)
    l0 = SparseLinear(n_in, n_out, flat0, w0.reshape(-1)[torch.as_tensor(flat0)],
                      torch.zeros(n_out))
    l1 = SparseLinear(n_out, 1, np.arange(n_out), torch.ones(n_out), torch.zeros(1))
    return SparseMLP([l0, l1], "relu")


def test_sensitivities_of_a_two_unit_layer_by_hand():
    # unit 0: weights 2, 1, -1; unit 1: 0.5, -2, 3; inputs x1 = (1, 2, 1), x2 = (3, 0, 2)
    model = _network([[2.0, 1.0, -1.0], [0.5, -2.0, 3.0]], 3)
    x = torch.tensor([[1.0, 2.0, 1.0], [3.0, 0.0, 2.0]])
    s = sipp_sensitivities(model, x)[0]
    # unit 0, positive weights: x1 gives 2 and 2 (shares 1/2, 1/2), x2 gives 6 and 0
    # (1, 0); its one negative weight has share 1 whenever its input is positive
    # unit 1, positive weights 0.5 and 3: x1 gives 0.5 and 3 (1/7, 6/7), x2 1.5 and 6
    # (0.2, 0.8); negative weight -2: share 1 on x1, 0/0 = 0 on x2
    np.testing.assert_allclose(s, [1.0, 0.5, 1.0, 0.2, 1.0, 6 / 7], rtol=1e-6)


def test_negative_inputs_are_split_into_their_own_part():
    # one unit, weights 1, 2, 1; x1 = (-1, 3, -2), x2 = (2, -1, 1)
    model = _network([[1.0, 2.0, 1.0]], 3)
    x = torch.tensor([[-1.0, 3.0, -2.0], [2.0, -1.0, 1.0]])
    s = sipp_sensitivities(model, x)[0]
    # positive inputs: x1 (0, 3, 0) -> shares (0, 1, 0); x2 (2, 0, 1) -> (2/3, 0, 1/3)
    # negative inputs: x1 (1, 0, 2) -> (1/3, 0, 2/3); x2 (0, 1, 0) -> (0, 1, 0)
    np.testing.assert_allclose(s, [2 / 3, 1.0, 2 / 3], rtol=1e-6)


def test_absent_connections_take_no_share():
    # the 2-unit layer without the connection (1, 0): unit 1's positive part is 3 alone
    model = _network([[2.0, 1.0, -1.0], [0.5, -2.0, 3.0]], 3, flat0=[0, 1, 2, 4, 5])
    x = torch.tensor([[1.0, 2.0, 1.0], [3.0, 0.0, 2.0]])
    np.testing.assert_allclose(sipp_sensitivities(model, x)[0], [1.0, 0.5, 1.0, 1.0, 1.0],
                               rtol=1e-6)


def _loop_sensitivities(w, a):
    """The definition, one connection, input part and sample at a time."""
    n_out, n_in = w.shape
    s = np.zeros_like(w)
    for i in range(n_out):
        for j in range(n_in):
            if w[i, j] == 0:
                continue
            same = np.sign(w[i]) == np.sign(w[i, j])
            for part in (np.maximum(a, 0), np.maximum(-a, 0)):
                for x in part:
                    denom = sum(abs(w[i, k]) * x[k] for k in range(n_in) if same[k])
                    if denom > 0:
                        s[i, j] = max(s[i, j], abs(w[i, j]) * x[j] / denom)
    return s


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(1, 5), st.integers(1, 4), st.integers(0, 2**31 - 1))
@example(3, 5, 3, 16687)  # a hidden unit's pre-activation nearly cancels
def test_sensitivities_match_a_loop_over_the_definition(n_out, n_in, n_samples, seed):
    rng = np.random.default_rng(seed)
    w = rng.normal(size=(n_out, n_in)) * (rng.random((n_out, n_in)) < 0.8)
    x = rng.normal(size=(n_samples, n_in))
    model = _network(w, n_in)
    got = sipp_sensitivities(model, torch.as_tensor(x, dtype=torch.float32))
    w32 = model.layers[0].dense_weight().detach().double().numpy()
    np.testing.assert_allclose(got[0], _loop_sensitivities(w32, x.astype(np.float32)
                                                           .astype(np.float64)).ravel(),
                               rtol=1e-6, atol=1e-12)
    # the second layer's inputs are the hidden activations as the network computes them in
    # float32: a unit whose pre-activation nearly cancels has no common value to 1e-5 between
    # two float32 summation orders, so they are not recomputed here in another order
    with torch.no_grad():
        hidden = torch.relu(model.layers[0](torch.as_tensor(x, dtype=torch.float32)))
    hidden = hidden.double().numpy()
    np.testing.assert_allclose(hidden, np.maximum(x.astype(np.float32).astype(np.float64)
                                                  @ w32.T, 0), rtol=1e-3, atol=1e-5)
    np.testing.assert_allclose(got[1], _loop_sensitivities(np.ones((1, n_out)), hidden).ravel(),
                               rtol=1e-5, atol=1e-12)


def test_tails_sum_the_sensitivities_from_each_connection_on_within_its_part():
    values = np.array([1.0, -2.0, 3.0, 0.5, 2.0, -1.0])
    rows = np.array([0, 0, 1, 1, 1, 1])
    s = np.array([0.9, 0.1, 0.5, 0.7, 0.5, 0.4])
    # parts: (0,+) {0.9}, (0,-) {0.1}, (1,+) {0.5, 0.7, 0.5}, (1,-) {0.4}; in (1,+) the
    # order is 0.7, then the two 0.5 (the earlier first): tails 1.7, 1.0, 0.5
    np.testing.assert_allclose(sipp_tails(values, rows, s), [0.9, 0.1, 1.0, 1.7, 0.5, 0.4])


def test_deterministic_sipp_keeps_the_highest_tails_over_all_layers():
    values = [np.array([1.0, -2.0, 3.0, 0.5]), np.array([4.0, -1.0])]
    rows = [np.array([0, 0, 1, 1]), np.array([0, 0])]
    sens = [np.array([0.9, 0.1, 0.5, 0.7]), np.array([0.2, 0.6])]
    # tails: 0.9, 0.1, 0.5, 1.2 | 0.2, 0.6: keep 1.2, 0.9 and 0.6
    out = sipp_prune(values, rows, sens, 3, "deterministic", np.random.default_rng(0))
    assert [o.keep.tolist() for o in out] == [[True, False, False, True], [False, True]]
    assert out[0].values.tolist() == values[0].tolist()
    assert not any(o.randomized.any() for o in out)


def test_the_split_makes_the_largest_error_bound_small_not_the_kept_sensitivity_large():
    # part A: four connections of 0.3, part B: one of 0.8; two may stay. Keeping the most
    # sensitive (0.8 and a 0.3) leaves A a bound of 0.9; keeping two of A leaves 0.6 and
    # 0.8: the largest bound is smaller
    out = sipp_prune([np.ones(5)], [np.array([0, 0, 0, 0, 1])],
                     [np.array([0.3, 0.3, 0.3, 0.3, 0.8])], 2, "deterministic",
                     np.random.default_rng(0))[0]
    assert out.keep.tolist() == [True, True, False, False, False]


def _sequential(p, k, rng):
    """Draws i.i.d. from p until k distinct appeared: (counts, draws)."""
    counts = np.zeros(p.size, dtype=np.int64)
    while (counts > 0).sum() < k:
        counts[rng.choice(p.size, p=p)] += 1
    return counts, counts.sum()


def test_randomized_sipp_samples_until_the_budget_and_reweights_like_sequential_draws():
    s = np.array([0.5, 0.3, 0.15, 0.05])
    w = np.array([1.0, -1.0, 2.0, 4.0])   # all positive parts need the same sign: use |w|
    w = np.abs(w)
    trials = 4000
    values = [np.tile(w, trials)]
    rows = [np.repeat(np.arange(trials), 4)]
    out = sipp_prune(values, rows, [np.tile(s, trials)], 2 * trials, "randomized",
                     np.random.default_rng(1))[0]
    keep = out.keep.reshape(trials, 4)
    assert keep.sum(axis=1).tolist() == [2] * trials          # the budget, every unit
    # P(e kept) for the first two distinct of i.i.d. draws: sum over the partner f of
    # p_e p_f / (1 - p_e) + p_f p_e / (1 - p_f)
    p = s / s.sum()
    exact = [sum(p[e] * p[f] / (1 - p[e]) + p[f] * p[e] / (1 - p[f])
                 for f in range(4) if f != e) for e in range(4)]
    se = np.sqrt(np.array(exact) * (1 - np.array(exact)) / trials)
    assert np.all(np.abs(keep.mean(axis=0) - exact) < 5 * se)
    # reweighted values against a sequential sampler of the same rule
    rng = np.random.default_rng(2)
    seq = np.zeros((trials, 4))
    for t in range(trials):
        counts, m = _sequential(p, 2, rng)
        seq[t] = w * counts / (m * p)
    got = np.where(keep, out.values.reshape(trials, 4), 0.0)
    spread = np.sqrt(got.var(axis=0) / trials + seq.var(axis=0) / trials)
    assert np.all(np.abs(got.mean(axis=0) - seq.mean(axis=0)) < 5 * spread)


def test_a_part_that_can_keep_every_sensitive_connection_is_not_sampled():
    values = [np.array([1.0, 2.0, 3.0])]
    rows = [np.array([0, 0, 0])]
    # two connections of positive sensitivity and a budget of 2: kept as they are
    out = sipp_prune(values, rows, [np.array([0.6, 0.0, 0.5])], 2, "randomized",
                     np.random.default_rng(0))[0]
    assert out.keep.tolist() == [True, False, True] and out.values.tolist() == [1.0, 2.0, 3.0]
    assert out.randomized.tolist() == [False]


def test_hybrid_samples_where_the_randomized_bound_is_smaller():
    # unit 0: 100 connections, 50 of sensitivity 0.011 and 50 of 0.009 (S = 1); unit 1: one
    # dominant connection (0.9) and ten of 0.01 (S = 1). The 56 highest tails are unit 1's
    # first (1.0) and unit 0's first 55 (down to 0.414; unit 1's next is 0.1).
    # unit 0, budget 55: the dropped 45 sum to 0.405, the sampling bound is
    # sqrt(8 log 20 / 165) = 0.381: sampled. unit 1, budget 1: the dropped ten sum to 0.1,
    # the sampling bound is above 1: kept by sensitivity.
    s = np.concatenate([np.full(50, 0.011), np.full(50, 0.009), [0.9], np.full(10, 0.01)])
    w = np.ones(111)
    rows = np.concatenate([np.zeros(100, int), np.ones(11, int)])
    top = np.argsort(-sipp_tails(w, rows, s), kind="stable")[:56]
    assert np.bincount(rows[top], minlength=2).tolist() == [55, 1]
    out = sipp_prune([w], [rows], [s], 56, "hybrid", np.random.default_rng(0))[0]
    assert out.randomized.tolist() == [True, False]
    assert out.keep[:100].sum() == 55 and out.keep[100:].tolist() == [True] + [False] * 10
    assert out.values[100:].tolist() == [1.0] * 11
    assert not np.array_equal(out.keep[:100], np.arange(100) < 55)   # a sample, not the top
    det = sipp_prune([w], [rows], [s], 56, "deterministic", np.random.default_rng(0))[0]
    assert det.keep[:100].tolist() == [True] * 55 + [False] * 45


def test_unknown_modes_and_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="unknown SiPP mode 'sometimes'"):
        sipp_prune([np.ones(2)], [np.zeros(2, int)], [np.ones(2)], 1, "sometimes",
                   np.random.default_rng(0))
    with pytest.raises(ValueError, match="one entry per layer"):
        sipp_prune([np.ones(2)], [], [np.ones(2)], 1, "hybrid", np.random.default_rng(0))
    with pytest.raises(ValueError, match="unknown SiPP mode"):
        SiPP(0.1, mode="sometimes")
    with pytest.raises(ConfigError, match="unknown sipp_mode 'greedy'"):
        TrainConfig(method="sipp", sipp_mode="greedy")
    with pytest.raises(ConfigError, match="sipp needs a density below 1"):
        TrainConfig(method="sipp", density=1.0)


@pytest.mark.parametrize("mode", ["deterministic", "randomized", "hybrid"])
def test_sipp_runs_prune_once_to_the_target_density_and_retrain(tmp_path, mode):
    config = TrainConfig(method="sipp", sipp_mode=mode, density=0.2, epochs=1,
                         sipp_batch_size=32, **SMALL)
    out = train(config, tmp_path / mode, progress=False)
    rows = read_metrics(out)
    total = 64 * 40 + 40 * 30 + 30 * 10
    counts = rows[[f"connections_{k}" for k in range(3)]].sum(axis=1).tolist()
    assert rows["level"].tolist() == [0, 0, 1, 1]
    assert counts == [total, total, round(0.2 * total), round(0.2 * total)]
    assert read_manifest(out)["sipp_mode"] == mode


def test_sipp_density_is_the_whole_networks_with_the_output_layer_kept_dense(tmp_path):
    # 4060 connections, density 0.2: 812, of which the dense output layer holds 300
    config = TrainConfig(method="sipp", density=0.2, epochs=1, sipp_batch_size=32,
                         sparse_output=False, **SMALL)
    last = read_metrics(train(config, tmp_path / "sipp", progress=False)).iloc[-1]
    assert last["connections_2"] == 300
    assert sum(last[f"connections_{k}"] for k in range(3)) == 812
