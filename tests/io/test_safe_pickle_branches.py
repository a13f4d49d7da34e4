"""Plain pickles of state dicts in the rarer layouts: protocol 2 (Python 2 names), numpy
arrays of every float width and byte order, and the numpy arrays topo refuses to rebuild.
The files are written with Python's own pickle; the expected weights are the arrays
pickled."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from topo.errors import UnreadableFileError
from topo.io import load


def test_a_protocol_2_pickle_with_python_2_names_is_read(tmp_path):
    w1 = np.array([[1.0, 0.0], [0.0, 2.0], [3.0, 0.0]])
    w2 = np.array([[1.0, -1.0, 0.0]])
    path = tmp_path / "model.pkl"
    # protocol 2 writes Python 2 module names: the set below is pickled as __builtin__.set
    data = pickle.dumps({"fc1.weight": w1, "fc2.weight": w2, "tags": {1, 2}}, protocol=2)
    assert b"__builtin__" in data
    path.write_bytes(data)
    g = load(path)
    assert g.metadata["format"] == "pickle"
    assert g.names == ["fc1", "fc2"]
    np.testing.assert_array_equal(g.layers[0].toarray(), w1)
    np.testing.assert_array_equal(g.layers[1].toarray(), w2)


@settings(max_examples=10, deadline=None)
@given(weight=hnp.arrays(
    dtype=hnp.floating_dtypes(sizes=(16, 32, 64), endianness="?"),
    shape=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    elements=st.floats(-100, 100, width=16).filter(lambda v: v != 0)),
    protocol=st.sampled_from([2, 3, 4]))
def test_weights_of_any_float_width_and_byte_order_are_read_as_pickled(tmp_path_factory,
                                                                      weight, protocol):
    path = tmp_path_factory.mktemp("pickle") / "model.pkl"
    path.write_bytes(pickle.dumps({"fc.weight": weight}, protocol=protocol))
    g = load(path)
    assert g.n_out == [weight.shape[0]] and g.n_in == [weight.shape[1]]
    np.testing.assert_array_equal(g.layers[0].toarray(), weight.astype(np.float64))


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("dtype", ["<f8", ">f4", "<f2", "<i4"])
def test_a_protocol_5_pickle_of_numpy_arrays_is_read(tmp_path, dtype, order):
    """numpy pickles arrays with protocol 5 (``pickle.HIGHEST_PROTOCOL``) as
    ``numpy._core.numeric._frombuffer`` with the raw bytes in band."""
    w = np.asarray(np.array([[1.0, 0.0, 4.0], [2.0, 3.0, 0.0]]), dtype=dtype, order=order)
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"fc.weight": w, "fc.bias": np.arange(2.0)}, protocol=5))
    g = load(path)
    np.testing.assert_array_equal(g.layers[0].toarray(), w.astype(np.float64))
    np.testing.assert_array_equal(g.biases[0], [0.0, 1.0])


class _ShortRecord:
    """Pickles as numpy's protocol-5 array record with 24 bytes for a 2x2 float64 array."""

    def __reduce__(self):
        from numpy._core.numeric import _frombuffer

        return _frombuffer, (bytearray(24), np.dtype("<f8"), (2, 2), "C")


def test_a_protocol_5_record_of_the_wrong_size_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"fc.weight": _ShortRecord()}, protocol=5))
    with pytest.raises(UnreadableFileError, match=r"shape \(2, 2\) with 24 bytes of data"):
        load(path)


@pytest.mark.parametrize("array, why", [
    (np.array([1, "a"], dtype=object), "a numpy array of Python objects is not read"),
    (np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")]), "numpy structured dtypes are not read"),
], ids=["objects", "structured"])
def test_numpy_arrays_that_are_not_plain_numbers_are_refused(tmp_path, array, why):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"fc.weight": np.eye(2), "extra": array}, protocol=4))
    with pytest.raises(UnreadableFileError, match=rf"^{path}: {why}$"):
        load(path)
