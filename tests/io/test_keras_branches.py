"""Keras HDF5 weights files (no model config) with the rarer layer variables: separable and
depthwise convolutions, a depthwise mask, a Dense mask of the wrong shape, and variables topo
cannot interpret. The files are written here with h5py in Keras's layout (``layer_names``,
per layer ``weight_names``); expected kernels are Keras's layout rearranged by hand."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from topo.errors import UnreadableFileError  # noqa: E402
from topo.io import load  # noqa: E402

# depthwise kernel (kh, kw, C_in, multiplier) and pointwise kernel (1, 1, C_in, C_out)
DW = np.arange(1, 1 + 3 * 3 * 2, dtype=np.float32).reshape(3, 3, 2, 1)
PW = np.arange(1, 1 + 2 * 4, dtype=np.float32).reshape(1, 1, 2, 4)


def _h5(path: Path, layers: dict[str, dict[str, np.ndarray]]) -> Path:
    with h5py.File(path, "w") as f:
        f.attrs["layer_names"] = np.array([n.encode() for n in layers])
        for name, tensors in layers.items():
            g = f.create_group(name)
            for leaf, arr in tensors.items():
                g.create_dataset(f"{name}/{leaf}:0", data=arr)
            g.attrs["weight_names"] = np.array([f"{name}/{leaf}:0".encode() for leaf in tensors])
    return path


def test_a_separable_conv_is_its_depthwise_and_pointwise_layers(tmp_path):
    g = load(_h5(tmp_path / "w.h5", {"sep": {"depthwise_kernel": DW, "pointwise_kernel": PW,
                                             "bias": np.array([1, 2, 3, 4], np.float32)}}))
    assert g.names == ["sep/depthwise", "sep/pointwise"]
    assert [geo.describe() for geo in g.geometry] == ["conv 3x3 g2", "conv 1x1"]
    assert g.n_connections == [2 * 9, 2 * 4]
    depthwise = g.kernel(0)                    # (C_out = 2, 1, 3, 3): channel c reads c
    for c in range(2):
        np.testing.assert_array_equal(depthwise[c, 0], DW[:, :, c, 0])
    pointwise = g.kernel(1)                    # (4, 2, 1, 1)
    np.testing.assert_array_equal(pointwise[:, :, 0, 0], PW[0, 0].T)
    # the bias belongs to the pointwise layer
    assert g.biases[0] is None
    np.testing.assert_array_equal(g.biases[1], [1, 2, 3, 4])


def test_a_depthwise_mask_gives_the_connections(tmp_path):
    mask = (DW % 2).astype(np.float32)         # the odd entries: 9 of 18
    g = load(_h5(tmp_path / "w.h5", {"dw": {"depthwise_kernel": DW,
                                            "depthwise_mask": mask}}))
    assert g.names == ["dw"]
    assert g.n_connections == [9]
    kept = g.kernel_mask(0)
    for c in range(2):
        np.testing.assert_array_equal(kept[c, 0], DW[:, :, c, 0] % 2 == 1)


def test_a_dense_mask_of_another_shape_is_no_structure(tmp_path):
    g = load(_h5(tmp_path / "w.h5", {
        "d1": {"kernel": np.ones((3, 2), np.float32), "mask": np.ones((2, 3), np.float32)},
        "d2": {"kernel": np.array([[1.0], [0.0]], np.float32)}}))
    assert g.names == ["d1", "d2"]
    assert g.n_connections == [6, 1]           # the kernels' non-zeros
    assert g.metadata["skipped"] == [{"name": "d1/mask", "shape": [2, 3],
                                      "why": "a variable of d1 that is not its kernel or bias"}]


@pytest.mark.parametrize("tensors, shown", [
    ({"w": np.ones((3, 2), np.float32)}, "{'w': (3, 2)}"),
    ({"depthwise": np.ones((3, 2, 2), np.float32), "x": np.ones(2, np.float32)},
     "{'depthwise': (3, 2, 2), 'x': (2,)}"),
], ids=["no-kernel", "unknown-3d"])
def test_variables_topo_cannot_interpret_are_refused(tmp_path, tensors, shown):
    path = _h5(tmp_path / "w.h5", {"layer": tensors})
    with pytest.raises(UnreadableFileError) as err:
        load(path)
    assert str(err.value) == (f"{path}: Keras layer 'layer' (unknown class) has weights "
                              f"{shown} that topo cannot interpret")


def test_a_damaged_keras_zip_is_refused(tmp_path):
    path = tmp_path / "model.keras"
    path.write_bytes(b"PK\x03\x04" + b"\x00" * 40)
    with pytest.raises(UnreadableFileError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: ")
    assert "\n" not in str(err.value)
