"""Top-k (global and per layer) and growth among absent positions."""

from __future__ import annotations

import numpy as np
import pytest

from topo.train.methods.selection import grow_random, grow_top, keep_top


def test_global_top_k_keeps_the_largest_scores_across_layers():
    keep = keep_top([np.array([0.1, 5.0, 0.3]), np.array([0.2, 4.0])], 3)
    assert [k.tolist() for k in keep] == [[False, True, True], [False, True]]


def test_layerwise_top_k_keeps_a_count_per_layer():
    keep = keep_top([np.array([0.1, 5.0, 0.3]), np.array([0.2, 4.0])], [1, 2])
    assert [k.tolist() for k in keep] == [[False, True, False], [True, True]]


def test_ties_go_to_the_earlier_connection_layer_order_first():
    keep = keep_top([np.array([1.0, 2.0]), np.array([2.0, 1.0])], 2)
    # the two 2.0 tie: both kept; of the three scores 1.0 none
    assert [k.tolist() for k in keep] == [[False, True], [True, False]]
    keep = keep_top([np.array([1.0, 1.0, 1.0])], [2])
    assert keep[0].tolist() == [True, True, False]


def test_counts_are_clipped_and_must_match_the_layers():
    assert keep_top([np.array([3.0, 1.0])], 0)[0].tolist() == [False, False]
    assert keep_top([np.array([3.0, 1.0])], [5])[0].tolist() == [True, True]
    with pytest.raises(ValueError, match="2 counts for 1"):
        keep_top([np.array([3.0, 1.0])], [1, 1])


def test_grow_top_picks_highest_scores_among_absent_positions():
    scores = np.array([9.0, 1.0, 8.0, 3.0, 7.0, 0.0])
    # positions 0 and 2 are connections: the two best absent are 4 (7.0) and 3 (3.0)
    assert grow_top(scores, np.array([0, 2]), 2).tolist() == [3, 4]
    # asking for more than the 4 absent positions grows all of them
    assert grow_top(scores, np.array([0, 2]), 9).tolist() == [1, 3, 4, 5]
    assert grow_top(scores, np.arange(6), 1).tolist() == []


def test_grow_random_only_picks_absent_positions():
    rng = np.random.default_rng(0)
    grown = grow_random(rng, 100, np.arange(0, 100, 2), 30)
    assert grown.size == 30 and np.all(grown % 2 == 1) and np.unique(grown).size == 30
    assert np.all(np.diff(grown) > 0)
    assert grow_random(rng, 4, np.arange(4), 2).tolist() == []
