"""Sparse-structure primitives: hand cases and, over random families, Python set arithmetic."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from topo import structure

# A 2 x 3 layer with an explicit zero (a connection of weight 0) at (0, 0):
#   output 0 <- inputs 0, 2; output 1 <- nothing; input 1 feeds nothing.
W = sp.csr_matrix((np.array([0.0, 2.5]), np.array([0, 2]), np.array([0, 2, 2])), shape=(2, 3))


def connections(m) -> set[tuple[int, int]]:
    """The stored entries of a matrix as a set of (row, column) pairs, by hand."""
    coo = sp.coo_matrix(m)
    return set(zip(coo.row.tolist(), coo.col.tolist()))


def test_binary_keeps_explicit_zeros_as_connections():
    b = structure.binary(W)
    assert b.dtype == np.int8
    np.testing.assert_array_equal(b.toarray(), [[1, 0, 1], [0, 0, 0]])
    b.data[:] = 5
    assert W.data.tolist() == [0.0, 2.5]  # a copy, not a view


def test_binary_of_unsorted_duplicated_coo_and_dense_input():
    coo = sp.coo_matrix((np.array([1.0, 1.0, 3.0]), (np.array([1, 1, 0]), np.array([2, 2, 0]))),
                        shape=(2, 3))
    b = structure.binary(coo)
    assert b.nnz == 2 and b.data.tolist() == [1, 1]
    np.testing.assert_array_equal(structure.binary(np.array([[0.0, 3.0], [1.0, 0.0]])).toarray(),
                                  [[0, 1], [1, 0]])


def test_size_density_degrees_and_isolated_units_by_hand():
    assert structure.size(W) == 6
    assert structure.density(W) == pytest.approx(2 / 6)
    np.testing.assert_array_equal(structure.in_degrees(W), [2, 0])
    np.testing.assert_array_equal(structure.out_degrees(W), [1, 0, 1])
    assert structure.isolated_units(W) == (1, 1)
    assert structure.density(sp.csr_matrix((0, 3))) == 0.0


def test_jaccard_by_hand():
    a = np.array([[1, 1, 0], [0, 0, 1]])
    b = np.array([[1, 0, 0], [0, 1, 1]])
    # shared {(0,0), (1,2)}, distinct {(0,0), (0,1), (1,1), (1,2)}
    assert structure.intersection_count(sp.csr_matrix(a), sp.csr_matrix(b)) == 2
    assert structure.jaccard(sp.csr_matrix(a), sp.csr_matrix(b)) == pytest.approx(0.5)
    assert structure.jaccard_index(0, 0, 0) == 1.0
    np.testing.assert_array_equal(structure.union(sp.csr_matrix(a), sp.csr_matrix(b)).toarray(),
                                  [[1, 1, 0], [0, 1, 1]])


def test_layers_of_different_shapes_share_only_the_common_grid():
    a = sp.csr_matrix(np.ones((2, 3)))
    b = sp.csr_matrix(np.ones((3, 2)))
    assert structure.intersection_count(a, b) == 4  # the 2 x 2 corner


def test_pooled_jaccard_sums_over_layers_by_hand():
    a = [sp.csr_matrix(np.array([[1, 1]])), sp.csr_matrix(np.array([[1]]))]
    b = [sp.csr_matrix(np.array([[1, 0]])), sp.csr_matrix(np.array([[0]]))]
    # shared 1 of 3 distinct
    assert structure.pooled_jaccard(a, b) == pytest.approx(1 / 3)
    empty = [sp.csr_matrix((2, 2))]
    assert structure.pooled_jaccard(empty, empty) == 1.0
    with pytest.raises(ValueError):
        structure.pooled_jaccard(a, b[:1])


def test_units_on_paths_by_hand():
    # x0 -> h0 -> out; x1 -> h1 (h1 feeds nothing); x2 feeds nothing
    first = sp.csr_matrix(np.array([[1, 0, 0], [0, 1, 0]]))
    second = sp.csr_matrix(np.array([[1, 0]]))
    inputs, outputs = structure.units_on_paths([first, second])
    np.testing.assert_array_equal(inputs[0], [True, False, False])
    np.testing.assert_array_equal(outputs[0], [True, False])
    np.testing.assert_array_equal(inputs[1], [True, False])
    np.testing.assert_array_equal(outputs[1], [True])


def test_fingerprint_ignores_weights_but_not_connections_or_shapes():
    a = sp.csr_matrix(np.array([[1.0, 0.0], [2.0, 3.0]]))
    same_structure = sp.csr_matrix(np.array([[7.0, 0.0], [-1.0, 0.5]]))
    moved = sp.csr_matrix(np.array([[0.0, 1.0], [2.0, 3.0]]))
    assert structure.fingerprint([a]) == structure.fingerprint([same_structure])
    assert structure.fingerprint([a]) != structure.fingerprint([moved])
    assert structure.fingerprint([sp.csr_matrix((2, 3))]) != \
        structure.fingerprint([sp.csr_matrix((3, 2))])


masks = st.integers(1, 6).flatmap(lambda rows: st.integers(1, 6).flatmap(
    lambda cols: st.tuples(
        st.lists(st.lists(st.booleans(), min_size=cols, max_size=cols), min_size=rows,
                 max_size=rows),
        st.lists(st.lists(st.booleans(), min_size=cols, max_size=cols), min_size=rows,
                 max_size=rows))))


@settings(max_examples=60, deadline=None)
@given(masks)
def test_set_operations_agree_with_python_sets(pair):
    a, b = (np.array(m, dtype=bool) for m in pair)
    # weights of exactly 0 on some connections: the structure comes from the stored entries
    wa = sp.csr_matrix((np.zeros(a.sum()), np.nonzero(a)), shape=a.shape)
    wb = sp.csr_matrix((np.arange(b.sum(), dtype=float), np.nonzero(b)), shape=b.shape)
    sa, sb = connections(wa), connections(wb)
    assert structure.intersection_count(wa, wb) == len(sa & sb)
    assert connections(structure.union(wa, wb)) == sa | sb
    expected = len(sa & sb) / len(sa | sb) if sa | sb else 1.0
    assert structure.jaccard(wa, wb) == pytest.approx(expected)
    np.testing.assert_array_equal(structure.in_degrees(wa), a.sum(axis=1))
    np.testing.assert_array_equal(structure.out_degrees(wa), a.sum(axis=0))
    assert structure.isolated_units(wa) == (int((a.sum(axis=0) == 0).sum()),
                                            int((a.sum(axis=1) == 0).sum()))
