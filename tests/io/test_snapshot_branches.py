"""Snapshots and safetensors files that are damaged, unusual or carry unusual metadata.

The damaged files are written here byte by byte (or with the safetensors library), never
with topo's own writer, so each test says exactly what the file holds; what a user sees is
one error naming the file and what is wrong with it.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from topo.errors import ConfigError, GraphStructureError, UnreadableFileError
from topo.graph import LayeredGraph
from topo.io import load, save_snapshot
from topo.io.snapshot import safetensors_bytes


def _raw_safetensors(path: Path, header: object, data: bytes = b"") -> Path:
    raw = json.dumps(header).encode() if not isinstance(header, bytes) else header
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + data)
    return path


def _snapshot_tensors() -> dict[str, np.ndarray]:
    """One 2 x 3 layer with the connections (0, 0) = 0.5, (1, 2) = -1.0."""
    return {"layer.0.indptr": np.array([0, 1, 2], dtype=np.int64),
            "layer.0.indices": np.array([0, 2], dtype=np.int32),
            "layer.0.weight": np.array([0.5, -1.0], dtype=np.float32)}


def _snapshot_header(**extra: str) -> dict[str, str]:
    return {"format": "topo.snapshot", "version": "1", "shapes": "[[2, 3]]", **extra}


# --------------------------------------------------------------------------- snapshots
def test_a_hand_written_snapshot_is_read(tmp_path):
    path = tmp_path / "s.safetensors"
    save_file(_snapshot_tensors(), str(path), metadata=_snapshot_header())
    g = load(path)
    np.testing.assert_array_equal(g.layers[0].toarray(), [[0.5, 0, 0], [0, 0, -1.0]])
    assert g.names == ["layer0"]
    assert g.biases == [None]
    assert g.metadata["format"] == "topo.snapshot"


@pytest.mark.parametrize("missing", ["layer.0.indptr", "layer.0.indices", "layer.0.weight"])
def test_a_snapshot_without_one_of_its_tensors_is_refused(tmp_path, missing):
    tensors = _snapshot_tensors()
    del tensors[missing]
    path = tmp_path / "s.safetensors"
    save_file(tensors, str(path), metadata=_snapshot_header())
    with pytest.raises(UnreadableFileError,
                       match=rf"^{path}: topo snapshot lacks tensor '{missing}'$"):
        load(path)


@pytest.mark.parametrize("damage", [
    {"layer.0.indices": np.array([0, 3], dtype=np.int32)},         # column 3 of 3 columns
    {"layer.0.indices": np.array([-1, 2], dtype=np.int32)},        # a negative column
    {"layer.0.indptr": np.array([0, 2], dtype=np.int64)},          # one row pointer short
    {"layer.0.indptr": np.array([0, 2, 1], dtype=np.int64)},       # rows going backwards
    {"layer.0.indptr": np.array([0, 1, 3], dtype=np.int64)},       # three connections of two
    {"layer.0.weight": np.array([0.5], dtype=np.float32)},         # a weight missing
], ids=["column-past-end", "negative-column", "short-indptr", "decreasing-indptr",
        "indptr-past-end", "weight-missing"])
def test_a_snapshot_layer_inconsistent_with_its_shape_is_refused(tmp_path, damage):
    path = tmp_path / "s.safetensors"
    save_file({**_snapshot_tensors(), **damage}, str(path), metadata=_snapshot_header())
    with pytest.raises(UnreadableFileError,
                       match=rf"^{path}: layer 0 of the topo snapshot is inconsistent with "
                             r"its shape 2x3$"):
        load(path)


@pytest.mark.parametrize("geometry, wiring, why", [
    ('{"kind": "linear"}', '{"reads": [0], "writes": [1]}',
     "geometry must be a list and wiring a mapping"),
    ('[{"kind": "linear"}]', '[[0], [1]]', "geometry must be a list and wiring a mapping"),
    ('[{"kind": "linear"}]', '{"reads": [0]}', "wiring needs the lists 'reads' and 'writes'"),
    ('[{"kind": "linear"}]', '{"reads": 0, "writes": 1}',
     "wiring needs the lists 'reads' and 'writes'"),
])
def test_a_version_2_snapshot_with_damaged_structure_is_refused(tmp_path, geometry, wiring,
                                                                why):
    path = tmp_path / "s.safetensors"
    header = _snapshot_header(version="2", geometry=geometry, wiring=wiring)
    save_file(_snapshot_tensors(), str(path), metadata=header)
    with pytest.raises(UnreadableFileError) as err:
        load(path)
    assert str(err.value) == f"{path}: damaged topo snapshot header ({why})"


def test_a_version_2_snapshot_of_independent_matrices_is_read(tmp_path):
    tensors = _snapshot_tensors()
    tensors.update({"layer.1.indptr": np.array([0, 1], dtype=np.int64),
                    "layer.1.indices": np.array([4], dtype=np.int32),
                    "layer.1.weight": np.array([2.0], dtype=np.float32)})
    path = tmp_path / "s.safetensors"
    # widths 3 -> 2 and 5 -> 1 do not chain: only independent matrices fit
    header = _snapshot_header(version="2", shapes="[[2, 3], [1, 5]]",
                              geometry='[{"kind": "linear"}, {"kind": "linear"}]',
                              wiring='{"independent": true}')
    save_file(tensors, str(path), metadata=header)
    g = load(path)
    assert g.is_independent
    assert g.n_in == [3, 5] and g.n_out == [2, 1]
    assert g.n_connections == [2, 1]


def test_a_version_2_snapshot_whose_wiring_disagrees_with_its_widths_names_the_file(tmp_path):
    path = tmp_path / "s.safetensors"
    header = _snapshot_header(version="2", geometry='[{"kind": "linear"}]',
                              wiring='{"reads": [0], "writes": [0]}')
    save_file(_snapshot_tensors(), str(path), metadata=header)
    with pytest.raises(GraphStructureError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: ")
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- metadata
def test_numpy_values_and_paths_in_metadata_are_stored_as_json(tmp_path):
    g = LayeredGraph([np.eye(2)], metadata={
        "accuracy": np.float32(0.75), "epoch": np.int64(3), "per_layer": np.array([1, 2]),
        "data": Path("runs") / "a"})
    path = save_snapshot(g, tmp_path / "s.safetensors")
    back = load(path).metadata
    assert back["accuracy"] == 0.75 and type(back["accuracy"]) is float
    assert back["epoch"] == 3 and type(back["epoch"]) is int
    assert back["per_layer"] == [1, 2]
    assert back["data"] == str(Path("runs") / "a")


def test_metadata_that_is_not_json_is_refused_and_nothing_is_written(tmp_path):
    g = LayeredGraph([np.eye(2)], metadata={"callback": object})
    path = tmp_path / "s.safetensors"
    with pytest.raises(ConfigError, match=r"^snapshot metadata cannot be stored as JSON: "
                                          r"metadata value <class 'object'> is not "
                                          r"JSON-serialisable$"):
        save_snapshot(g, path)
    assert list(tmp_path.iterdir()) == []


def test_a_dtype_safetensors_cannot_hold_is_refused():
    with pytest.raises(TypeError, match=r"tensor 'w': dtype complex128 cannot be stored"):
        safetensors_bytes({"w": np.zeros(2, dtype=complex)}, {})


def test_snapshot_bytes_follow_the_safetensors_layout():
    # an independent reading of the layout: 8-byte length, JSON header, raw little-endian data
    data = safetensors_bytes({"b": np.array([1, 2], dtype=np.int16),
                              "a": np.array([True])}, {"k": "v"})
    (n,) = struct.unpack("<Q", data[:8])
    assert n % 8 == 0
    header = json.loads(data[8:8 + n])
    assert header == {"__metadata__": {"k": "v"},
                      "a": {"dtype": "BOOL", "shape": [1], "data_offsets": [0, 1]},
                      "b": {"dtype": "I16", "shape": [2], "data_offsets": [1, 5]}}
    assert data[8 + n:] == b"\x01" + b"\x01\x00\x02\x00"


# --------------------------------------------------------------------------- safetensors
def test_a_file_shorter_than_the_length_field_is_refused(tmp_path):
    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x10\x00\x00")
    with pytest.raises(UnreadableFileError):
        load(path)


def test_a_header_longer_than_the_file_is_refused(tmp_path):
    from topo.io.safetensors_file import read_header

    path = tmp_path / "w.safetensors"
    path.write_bytes(struct.pack("<Q", 1000) + b'{"a": 1}')
    with pytest.raises(UnreadableFileError,
                       match=rf"^{path}: truncated safetensors file \(header says 1000 bytes, "
                             r"file has 16\)$"):
        read_header(path)


def test_a_file_shorter_than_eight_bytes_is_truncated(tmp_path):
    from topo.io.safetensors_file import read_header

    path = tmp_path / "w.safetensors"
    path.write_bytes(b"\x01\x02")
    with pytest.raises(UnreadableFileError,
                       match=rf"^{path}: truncated safetensors file \(2 bytes\)$"):
        read_header(path)


@pytest.mark.parametrize("raw", [b'{"a": ', b"\xff\xfe{}", b"[1, 2]"],
                         ids=["cut-json", "not-utf8", "not-a-mapping"])
def test_a_damaged_header_is_refused(tmp_path, raw):
    from topo.io.safetensors_file import read_header

    path = _raw_safetensors(tmp_path / "w.safetensors", raw)
    with pytest.raises(UnreadableFileError, match=rf"^{path}: damaged safetensors header$"):
        read_header(path)


def test_bfloat16_is_read_beside_other_dtypes(tmp_path):
    # bfloat16 is the upper half of a float32: 1.5 is 0x3FC0, -2.0 is 0xC000
    header = {"fc.weight": {"dtype": "BF16", "shape": [1, 2], "data_offsets": [0, 4]},
              "fc.bias": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}
    data = struct.pack("<HH", 0x3FC0, 0xC000) + struct.pack("<f", 0.25)
    path = _raw_safetensors(tmp_path / "w.safetensors", header, data)
    g = load(path)
    np.testing.assert_array_equal(g.layers[0].toarray(), [[1.5, -2.0]])
    np.testing.assert_array_equal(g.biases[0], [0.25])


def test_a_tied_weight_alias_is_restored_and_other_metadata_is_ignored(tmp_path):
    path = tmp_path / "w.safetensors"
    save_file({"fc1.weight": np.array([[1.0, 0.0], [0.0, 2.0]], dtype=np.float32)},
              str(path),
              metadata={"fc2.weight": "fc1.weight",     # an alias save_model records
                        "fc1.weight": "fc2.weight",     # a present tensor: no alias
                        "author": "someone"})           # not a tensor name
    g = load(path)
    assert g.names == ["fc1", "fc2"]
    np.testing.assert_array_equal(g.layers[1].toarray(), [[1.0, 0.0], [0.0, 2.0]])


def test_metadata_that_is_not_a_mapping_is_refused(tmp_path):
    header = {"__metadata__": ["not", "a", "mapping"],
              "fc.weight": {"dtype": "F32", "shape": [1, 2], "data_offsets": [0, 8]}}
    path = _raw_safetensors(tmp_path / "w.safetensors", header, struct.pack("<ff", 3.0, 0.0))
    with pytest.raises(UnreadableFileError) as err:
        load(path)
    assert str(err.value).startswith(f"{path}: damaged safetensors file (truncated or corrupt?)")
    assert "\n" not in str(err.value)


def test_a_file_of_bfloat16_tensors_alone_is_read(tmp_path):
    header = {"__metadata__": {"note": "bf16"},
              "fc.weight": {"dtype": "BF16", "shape": [2, 1], "data_offsets": [0, 4]}}
    data = struct.pack("<HH", 0x4000, 0x0000)          # 2.0 and 0.0
    path = _raw_safetensors(tmp_path / "w.safetensors", header, data)
    g = load(path)
    np.testing.assert_array_equal(g.layers[0].toarray(), [[2.0], [0.0]])
    assert g.n_connections == [1]


def test_an_eight_bit_float_tensor_is_refused_by_name(tmp_path):
    header = {"fc.weight": {"dtype": "F8_E4M3", "shape": [1, 2], "data_offsets": [0, 2]}}
    path = _raw_safetensors(tmp_path / "w.safetensors", header, b"\x01\x02")
    with pytest.raises(UnreadableFileError,
                       match=rf"^{path}: tensor 'fc.weight' has dtype F8_E4M3, which topo "
                             r"does not read$"):
        load(path)
