"""Shared structure primitives given non-canonical matrices, maps into a smaller or larger
frame, and arguments that do not fit; expected matrices are written out by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp

from topo.structure import reindex_blocks, unit_graph


def test_unit_graph_of_a_non_canonical_matrix_sums_duplicates_first():
    # row 0 stores column 1 (4.0), then column 0 twice (1.0 + 2.0): one unit of 2 positions
    m = sp.csr_matrix((np.array([4.0, 1.0, 2.0]), np.array([1, 0, 0]), np.array([0, 3])),
                      shape=(1, 2))
    assert not m.has_canonical_format
    np.testing.assert_array_equal(unit_graph(m, 2).toarray(), [[5.0]])   # |(3, 4)|
    np.testing.assert_array_equal(unit_graph(m, 2, "count").toarray(), [[2.0]])
    assert not m.has_canonical_format                                    # left as given


@pytest.mark.parametrize("positions", [2, 0])
def test_unit_graph_refuses_a_width_that_is_not_whole_units(positions):
    with pytest.raises(ValueError, match=rf"^3 columns are not a whole number of "
                                         rf"{positions}-position units$"):
        unit_graph(sp.csr_matrix(np.ones((1, 3))), positions)


def test_unit_graph_refuses_an_unknown_norm():
    with pytest.raises(ValueError, match=r"^unknown unit-graph norm 'mean'; use one of l2, l1, "
                                         r"max, sum, count$"):
        unit_graph(sp.csr_matrix(np.ones((1, 2))), 1, "mean")


def test_reindex_blocks_moves_whole_blocks_into_a_larger_frame():
    # 2 outputs, 2 input units of 2 positions
    m = sp.csr_matrix(np.array([[1.0, 2.0, 0.0, 3.0],
                                [0.0, 0.0, 4.0, 0.0]]))
    out = reindex_blocks(m, 2, col_map=np.array([2, 0]), n_cols=3,
                         row_map=np.array([1, 0]), n_rows=3)
    np.testing.assert_array_equal(out.toarray(), [[4.0, 0.0, 0.0, 0.0, 0.0, 0.0],
                                                  [0.0, 3.0, 0.0, 0.0, 1.0, 2.0],
                                                  [0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    assert out.has_sorted_indices


@pytest.mark.parametrize("kwargs, message", [
    ({"col_map": np.array([0])}, "column map of length 1 for 2 input units"),
    ({"row_map": np.array([0, 1, 2])}, "row map of length 3 for 2 output units"),
])
def test_reindex_blocks_refuses_maps_that_do_not_fit(kwargs, message):
    with pytest.raises(ValueError, match=f"^{message}$"):
        reindex_blocks(sp.csr_matrix(np.ones((2, 4))), 2, **kwargs)
