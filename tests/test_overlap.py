"""Mask overlap, its chance level and the aligned overlap (the ITOP rate: test_evolution)."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from topo.distance import nnstd
from topo.errors import ConfigError, IncompatibleGraphsError, NotAGraphError
from topo.graph import LayeredGraph
from topo.overlap import (
    ALIGNED_COLUMNS,
    OVERLAP_COLUMNS,
    expected_random_jaccard,
    mask_overlap,
    overlap_records,
    pooled_jaccard,
)


def net(*masks) -> LayeredGraph:
    return LayeredGraph([np.asarray(m, dtype=float) for m in masks])


def random_masks(n_positions: int, count: int, trials: int, rng) -> np.ndarray:
    """``trials`` boolean masks, each with ``count`` of ``n_positions`` set uniformly."""
    order = np.argsort(rng.random((trials, n_positions)), axis=1)
    out = np.zeros((trials, n_positions), dtype=bool)
    np.put_along_axis(out, order[:, :count], True, axis=1)
    return out


def test_hand_computed_overlap_of_one_layer():
    a = net([[1, 1, 0], [0, 1, 0]])
    b = net([[1, 0, 1], [0, 1, 0]])
    row = mask_overlap(a, b).iloc[0]
    # A = {(0,0),(0,1),(1,1)}, B = {(0,0),(0,2),(1,1)}: 2 shared, 4 in the union
    assert (row.connections_a, row.connections_b) == (3, 3)
    assert (row.intersection, row.union, row.hamming) == (2, 4, 2)
    assert row.jaccard == pytest.approx(0.5)
    assert row.hamming_fraction == pytest.approx(2 / 6)
    assert row.density_a == pytest.approx(0.5) and row.density_b == pytest.approx(0.5)
    assert row.expected_intersection_random == pytest.approx(3 * 3 / 6)


def test_pooled_row_sums_the_layers():
    a = net([[1, 1, 0], [0, 1, 0]], [[1, 0]])
    b = net([[1, 0, 1], [0, 1, 0]], [[1, 1]])
    frame = mask_overlap(a, b)
    assert list(frame["layer"]) == ["0", "1", "all"]
    pooled = frame.iloc[-1]
    assert (pooled.intersection, pooled.union) == (3, 6)
    assert pooled.jaccard == pytest.approx(0.5)
    assert pooled.possible == 8
    assert pooled.density_a == pytest.approx(4 / 8)


def test_expected_jaccard_matches_monte_carlo_and_is_not_the_ratio_of_expectations():
    n, k_a, k_b = 12, 4, 5
    rng = np.random.default_rng(0)
    trials = 200_000
    x = random_masks(n, k_a, trials, rng)
    y = random_masks(n, k_b, trials, rng)
    inter = (x & y).sum(1)
    jaccard = inter / (k_a + k_b - inter)
    standard_error = jaccard.std() / np.sqrt(trials)
    exact = expected_random_jaccard(n, k_a, k_b)
    assert abs(exact - jaccard.mean()) < 4 * standard_error
    ratio = (k_a * k_b / n) / (k_a + k_b - k_a * k_b / n)  # E|A∩B| / E|A∪B|
    assert abs(exact - ratio) > 20 * standard_error


def test_pooled_chance_level_matches_monte_carlo():
    a = net(np.eye(4)[:, :3].T, [[1, 0, 1]])  # layer 0: 3 of 12, layer 1: 2 of 3
    b = net(np.arange(12).reshape(3, 4) % 3 == 0, [[1, 1, 0]])
    frame = mask_overlap(a, b)
    counts = [(int(frame.connections_a[k]), int(frame.connections_b[k])) for k in (0, 1)]
    rng = np.random.default_rng(1)
    trials = 200_000
    inter = np.zeros(trials)
    for (k_a, k_b), size in zip(counts, (12, 3)):
        inter += (random_masks(size, k_a, trials, rng)
                  & random_masks(size, k_b, trials, rng)).sum(1)
    total = sum(k_a + k_b for k_a, k_b in counts)
    jaccard = inter / (total - inter)
    standard_error = jaccard.std() / np.sqrt(trials)
    assert abs(frame.expected_jaccard_random.iloc[-1] - jaccard.mean()) < 4 * standard_error
    for k, ((k_a, k_b), size) in enumerate(zip(counts, (12, 3))):
        assert frame.expected_jaccard_random[k] == pytest.approx(
            expected_random_jaccard(size, k_a, k_b))


def test_aligned_overlap_undoes_a_relabelling_of_hidden_units():
    rng = np.random.default_rng(2)
    w0 = rng.random((8, 10)) < 0.4
    w1 = rng.random((3, 8)) < 0.5
    perm = rng.permutation(8)
    a = net(w0, w1)
    b = net(w0[perm], w1[:, perm])
    result = nnstd(a, b)
    frame = mask_overlap(a, b, result.matchings)
    assert (frame["aligned_jaccard"] == 1.0).all()
    assert (frame["aligned_hamming"] == 0).all()
    assert frame["jaccard"].iloc[0] < 1.0


def test_aligned_overlap_with_different_hidden_widths():
    # A hidden {0}, {1}; B hidden {0}, {1}, {2}: matching [0, 1], B's unit 2 has no partner
    a = net([[1, 0, 0], [0, 1, 0]], [[1, 1]])
    b = net(np.eye(3), [[1, 1, 1]])
    frame = mask_overlap(a, b, nnstd(a, b).matchings)
    assert list(frame["aligned_intersection"]) == [2, 2, 4]
    assert list(frame["aligned_union"]) == [3, 3, 6]
    assert np.isnan(frame["expected_jaccard_random"]).all()  # shapes differ
    assert list(frame["possible"]) == [9, 3, 12]


def test_empty_masks_overlap_completely():
    empty = LayeredGraph([sp.csr_matrix((2, 3))])
    row = mask_overlap(empty, LayeredGraph([sp.csr_matrix((2, 3))])).iloc[0]
    assert row.jaccard == 1.0 and row.hamming == 0 and row.expected_jaccard_random == 1.0


def test_bad_matchings_are_rejected():
    a = net(np.eye(3), [[1, 1, 1]])
    with pytest.raises(ConfigError, match="layer 'layer0': matching of length 3"):
        mask_overlap(a, a, [np.array([0, 0, 1]), None])
    with pytest.raises(ConfigError, match="1 matchings for 2 layers"):
        mask_overlap(a, a, [None])


def test_different_layer_counts_are_an_error():
    with pytest.raises(IncompatibleGraphsError):
        mask_overlap(net(np.eye(2)), net(np.eye(2), np.eye(2)))


@pytest.mark.parametrize("n, k_a, k_b", [(10, 3, 4), (50, 50, 20), (50, 0, 10), (7, 7, 7),
                                         (78_400, 4_000, 3_900), (614_656, 120_000, 130_000)])
def test_chance_level_agrees_with_scipy_stats_over_the_whole_support(n, k_a, k_b):
    from scipy.stats import hypergeom

    x = np.arange(max(0, k_a + k_b - n), min(k_a, k_b) + 1)
    total = k_a + k_b - x
    ratio = np.divide(x, total, out=np.ones(x.size), where=total > 0)
    expected = float(np.sum(hypergeom.pmf(x, n, k_a, k_b) * ratio))
    assert expected_random_jaccard(n, k_a, k_b) == pytest.approx(expected, rel=1e-9)


def test_chance_level_refuses_counts_that_do_not_fit():
    with pytest.raises(ConfigError, match="counts 5, 2 do not fit 4 positions"):
        expected_random_jaccard(4, 5, 2)


def test_chance_level_equals_the_expectation_over_scipy_stats_hypergeom():
    from scipy.stats import hypergeom

    n, k_a, k_b = 1_000, 120, 300
    x = np.arange(0, k_a + 1)
    expected = float(np.sum(hypergeom.pmf(x, n, k_a, k_b) * x / (k_a + k_b - x)))
    assert expected_random_jaccard(n, k_a, k_b) == pytest.approx(expected, rel=1e-12)


def test_overlap_takes_graphs_not_paths(tmp_path):
    a = net([[1, 1, 0], [0, 1, 0]], [[1, 0]])
    with pytest.raises(NotAGraphError, match=r"network a: got the path .*topo.load"):
        mask_overlap(str(tmp_path / "a.safetensors"), a)
    with pytest.raises(NotAGraphError, match="network b"):
        pooled_jaccard(a, tmp_path / "b.safetensors")


def test_columns_are_the_documented_vocabulary():
    a = net([[1, 1, 0], [0, 1, 0]], [[1, 0]])
    assert list(mask_overlap(a, a).columns) == list(OVERLAP_COLUMNS)
    aligned = mask_overlap(a, a, nnstd(a, a).matchings)
    assert list(aligned.columns) == [*OVERLAP_COLUMNS, *ALIGNED_COLUMNS]
    assert OVERLAP_COLUMNS[:8] == ("layer", "name", "possible", "connections_a",
                                   "connections_b", "intersection", "union", "jaccard")
    assert ALIGNED_COLUMNS == ("aligned_intersection", "aligned_union", "aligned_jaccard",
                               "aligned_hamming")
    records = overlap_records(a, a)
    assert [r["layer"] for r in records] == ["0", "1", "all"]


def test_pooled_jaccard_of_two_networks_by_hand():
    a = net([[1, 1, 0], [0, 1, 0]], [[1, 0]])
    b = net([[1, 0, 1], [0, 1, 0]], [[1, 1]])
    # A has 3 + 1 connections, B 3 + 2; shared: (0,0), (1,1) and the output's (0,0);
    # 3 of 4 + 5 - 3 = 6 distinct
    assert pooled_jaccard(a, b) == pytest.approx(3 / 6)
    with pytest.raises(IncompatibleGraphsError, match="2 layers against 1"):
        pooled_jaccard(a, net(np.eye(3)))


def test_aligned_overlap_can_be_below_the_raw_one_as_documented(shared_data):
    # mask_overlap's docstring: w0 vs w9 at epoch 190, layers 1 and 2
    import topo

    published = shared_data / "external" / "nnstd-set-topologies"
    a = topo.load(published / "e5_s0_w0" / "epoch_190")
    b = topo.load(published / "e5_s0_w9" / "epoch_190")
    frame = mask_overlap(a, b, nnstd(a, b, reference=True).matchings)
    assert frame["jaccard"][1:3].round(2).tolist() == [0.43, 0.46]
    assert frame["aligned_jaccard"][1:3].round(2).tolist() == [0.30, 0.30]


def test_pooled_chance_level_of_large_layers_convolves_their_laws():
    from scipy.stats import hypergeom

    # two 300 x 300 layers at density 1/2: each intersection law spreads over thousands of
    # values, and their sum's law is the convolution of the two
    rng = np.random.default_rng(9)
    masks = [rng.random((300, 300)) < 0.5 for _ in range(4)]
    a, b = net(masks[0], masks[1]), net(masks[2], masks[3])
    frame = mask_overlap(a, b)
    laws, starts, total = [], [], 0
    for ma, mb in ((masks[0], masks[2]), (masks[1], masks[3])):
        k_a, k_b = int(ma.sum()), int(mb.sum())
        law = hypergeom(90_000, k_a, k_b)
        # beyond 15 standard deviations the law adds nothing at double precision
        lo, hi = (int(v) for v in law.mean() + np.array([-15, 15]) * law.std())
        pmf = law.pmf(np.arange(lo, hi + 1))
        assert pmf.sum() == pytest.approx(1.0, abs=1e-12)
        laws.append(pmf)
        starts.append(lo)
        total += k_a + k_b
    law = np.convolve(*laws)  # direct, not by FFT
    x = sum(starts) + np.arange(law.size)
    expected = float(np.sum(law * x / (total - x)))
    assert frame["expected_jaccard_random"].iloc[-1] == pytest.approx(expected, rel=1e-9)


# ------------------------------------------------- the overlap-maximising alignment
def _best_shared_by_brute_force(ma: np.ndarray, mb: np.ndarray) -> int:
    """The most connections layer masks ``ma`` (n_a, n) and ``mb`` (n_b, n) share over every
    one-to-one matching of their rows, by enumerating the matchings."""
    import itertools

    n_a, n_b = ma.shape[0], mb.shape[0]
    best = 0
    if n_a <= n_b:
        for cols in itertools.permutations(range(n_b), n_a):
            best = max(best, int(sum((ma[i] & mb[c]).sum() for i, c in enumerate(cols))))
    else:
        for rows in itertools.permutations(range(n_a), n_b):
            best = max(best, int(sum((ma[r] & mb[j]).sum() for j, r in enumerate(rows))))
    return best


def _in_a_frame(mb: np.ndarray, col_map: np.ndarray, width: int) -> np.ndarray:
    """B's layer mask with its inputs re-indexed into A's frame."""
    out = np.zeros((mb.shape[0], width), dtype=bool)
    rows, cols = np.nonzero(mb)
    out[rows, col_map[cols]] = True
    return out


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), hidden_a=st.integers(2, 4), hidden_b=st.integers(2, 4),
       density=st.floats(0.2, 0.8), reference=st.booleans())
def test_overlap_matchings_maximise_each_layers_shared_connections(seed, hidden_a, hidden_b,
                                                                   density, reference):
    from topo.distance import matching_column_map
    from topo.overlap import overlap_matchings

    rng = np.random.default_rng(seed)
    widths_a, widths_b = [4, hidden_a, hidden_b, 3], [4, hidden_b, hidden_a, 3]
    if reference:
        widths_b = widths_a
    masks_a = [rng.random((widths_a[k + 1], widths_a[k])) < density for k in range(3)]
    masks_b = [rng.random((widths_b[k + 1], widths_b[k])) < density for k in range(3)]
    a, b = net(*masks_a), net(*masks_b)
    matchings = overlap_matchings(a, b, match_outputs=reference)
    assert (matchings[-1] is None) == (not reference)
    col_map = np.arange(4)
    for k, perm in enumerate(matchings):
        if perm is None:
            break
        width = max(masks_a[k].shape[1], int(col_map.max()) + 1)
        ma = np.zeros((masks_a[k].shape[0], width), dtype=bool)
        ma[:, :masks_a[k].shape[1]] = masks_a[k]
        mb = _in_a_frame(masks_b[k], col_map, width)
        matched = perm >= 0
        assert matched.sum() == min(ma.shape[0], mb.shape[0])
        assert len(set(perm[matched])) == matched.sum()
        shared = int(sum((ma[i] & mb[perm[i]]).sum() for i in np.flatnonzero(matched)))
        assert shared == _best_shared_by_brute_force(ma, mb)
        col_map = matching_column_map(perm, ma.shape[0], mb.shape[0])[0]


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), density=st.floats(0.1, 0.9))
def test_overlap_alignment_never_lowers_the_first_layers_overlap(seed, density):
    from topo.overlap import overlap_matchings

    rng = np.random.default_rng(seed)
    masks = [[rng.random((5, 6)) < density, rng.random((2, 5)) < density] for _ in range(2)]
    a, b = net(*masks[0]), net(*masks[1])
    table = mask_overlap(a, b, overlap_matchings(a, b))
    assert table["aligned_jaccard"].iloc[0] >= table["jaccard"].iloc[0]


def test_overlap_matchings_refuse_networks_of_different_depths():
    from topo.overlap import overlap_matchings

    with pytest.raises(IncompatibleGraphsError, match="2 layers against 1"):
        overlap_matchings(net(np.ones((2, 3)), np.ones((1, 2))), net(np.ones((1, 3))))


def test_a_count_of_one_layer_is_singular_in_errors():
    with pytest.raises(IncompatibleGraphsError, match=": 1 layer against 2$"):
        mask_overlap(net(np.ones((1, 3))), net(np.ones((2, 3)), np.ones((1, 2))))
