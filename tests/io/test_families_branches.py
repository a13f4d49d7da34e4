"""State dicts of plain convolutional networks read by their module names alone (no model
object, no graph in the file): a 1 x 1 conv named like a fully-connected layer, a
normalisation of the input, and the name-and-shape combinations refused with the layer
named. The files are written with the safetensors library; every weight is non-zero, so the
connections are the weights' sizes."""

from __future__ import annotations

import numpy as np
import pytest
from safetensors.numpy import save_file

from topo.errors import GraphStructureError
from topo.io import load


def _w(*shape: int) -> np.ndarray:
    return np.arange(1, 1 + int(np.prod(shape)), dtype=np.float32).reshape(shape)


def _file(tmp_path, tensors):
    path = tmp_path / "model.safetensors"
    save_file(tensors, str(path))
    return path


def test_a_one_by_one_conv_named_fc_is_a_fully_connected_layer(tmp_path):
    g = load(_file(tmp_path, {"conv1.weight": _w(4, 2, 3, 3), "fc.weight": _w(3, 4, 1, 1)}))
    assert g.names == ["conv1", "fc"]
    assert [geo.describe() for geo in g.geometry] == ["conv 3x3", "linear"]
    assert g.n_in == [2, 4] and g.n_out == [4, 3]
    assert g.n_connections == [4 * 2 * 9, 3 * 4]
    np.testing.assert_array_equal(g.layers[1].toarray(), _w(3, 4))


def test_a_normalisation_as_wide_as_the_input_normalises_the_input(tmp_path):
    g = load(_file(tmp_path, {"bn0.weight": np.ones(2, np.float32),
                              "bn0.bias": np.zeros(2, np.float32),
                              "conv1.weight": _w(4, 2, 3, 3), "fc.weight": _w(3, 4)}))
    assert g.names == ["conv1", "fc"]
    assert {s["name"]: s["why"] for s in g.metadata["skipped"]} == {
        "bn0.weight": "normalisation of unit set 0 (the network input): normalisation "
                      "weight; not a layer",
        "bn0.bias": "normalisation of unit set 0 (the network input): normalisation bias; "
                    "not a layer"}


@pytest.mark.parametrize("tensors, why", [
    ({"conv1.weight": _w(4, 2, 3, 3), "fc.weight": _w(3, 4, 3, 3)},
     "'fc' is named like a fully-connected layer and has a (3, 3) kernel"),
    ({"bn5.weight": np.ones(7, np.float32), "conv1.weight": _w(4, 2, 3, 3),
      "fc.weight": _w(3, 4)},
     "normalisation 'bn5' has 7 channels and no layer writes that many"),
    ({"features.0.weight": _w(4, 2), "features.1.weight": _w(3, 4, 1, 1)},
     "conv 'features.1' comes after a fully-connected layer"),
], ids=["fc-with-a-kernel", "norm-of-no-width", "conv-after-linear"])
def test_names_of_a_family_with_shapes_that_disagree_are_refused(tmp_path, tensors, why):
    path = _file(tmp_path, tensors)
    with pytest.raises(GraphStructureError) as err:
        load(path)
    message = str(err.value)
    assert message.startswith(f"{path}: the module names fit the ")
    assert message.endswith(f"but the shapes disagree: {why}")
