"""Bad input of every new format: one line naming the file, a non-zero exit, nothing written;
and no pickle route ever runs code from the file."""

from __future__ import annotations

import gzip
import io
import json
import os
import pickle
import struct
import zipfile
from pathlib import Path

import mlp_files
import numpy as np
import pytest
import torch

import topo
from topo.cli import main
from topo.errors import GraphStructureError, UnreadableFileError, UnsafeFileError

WS = [np.arange(12, dtype=np.float32).reshape(4, 3) + 1, np.ones((2, 4), np.float32)]
BS = [np.zeros(4, np.float32), np.ones(2, np.float32)]


def cut(path: Path, keep: float = 0.5) -> Path:
    data = path.read_bytes()
    out = path.with_name("cut_" + path.name)
    out.write_bytes(data[: int(len(data) * keep)])
    return out


# ------------------------------------------------------------------ truncated and corrupt
def make_files(tmp_path):
    sd = {"fc1.weight": torch.from_numpy(WS[0]), "fc2.weight": torch.from_numpy(WS[1])}
    torch.save(sd, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save([WS[0], WS[1]], tmp_path / "arrays.pth")
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump({"w1": WS[0].T.copy(), "w2": WS[1].T.copy()}, fh)
    return {
        "h5": mlp_files.keras_h5(tmp_path / "m.h5", WS, BS),
        "keras": mlp_files.keras_zip(tmp_path / "m.keras", WS, BS),
        "onnx": mlp_files.write_onnx(tmp_path / "m.onnx", WS, BS),
        "onnx.gz": mlp_files.write_onnx(tmp_path / "m.onnx.gz", WS, BS, gz=True),
        "npz": mlp_files.npz(tmp_path / "m.npz", WS, BS),
        "legacy": tmp_path / "legacy.pt",
        "arrays": tmp_path / "arrays.pth",
        "pickle": tmp_path / "plain.pkl",
    }


@pytest.mark.parametrize("kind", ["h5", "keras", "onnx", "onnx.gz", "npz", "legacy", "arrays",
                                  "pickle"])
@pytest.mark.parametrize("keep", [0.2, 0.6, 0.97])
def test_truncated_files_are_one_line_errors(tmp_path, kind, keep):
    path = make_files(tmp_path)[kind]
    assert topo.load(path).widths == [3, 4, 2]
    bad = cut(path, keep)
    with pytest.raises((UnreadableFileError, GraphStructureError)) as err:
        topo.load(bad)
    assert str(bad) in str(err.value) and "\n" not in str(err.value)


def test_corrupt_headers(tmp_path):
    files = make_files(tmp_path)
    h5 = bytearray(files["h5"].read_bytes())
    h5[8:40] = b"\xff" * 32  # the superblock
    (tmp_path / "bad.h5").write_bytes(bytes(h5))
    with pytest.raises(UnreadableFileError, match=r"bad.h5: damaged HDF5"):
        topo.load(tmp_path / "bad.h5")
    (tmp_path / "bad.onnx").write_bytes(b"\x08\x07\x12\xff\xff\xff\xff\x0f garbage")
    with pytest.raises(UnreadableFileError, match=r"bad.onnx: damaged ONNX model"):
        topo.load(tmp_path / "bad.onnx")
    (tmp_path / "bad.onnx.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"\x00" * 6 + b"\xff" * 20)
    with pytest.raises(UnreadableFileError, match=r"bad.onnx.gz: damaged gzip"):
        topo.load(tmp_path / "bad.onnx.gz")


def test_hdf5_and_onnx_without_dense_layers(tmp_path):
    import h5py
    from onnx import TensorProto, helper

    with h5py.File(tmp_path / "bn.h5", "w") as f:
        g = f.create_group("model_weights")
        g.attrs["layer_names"] = np.array([b"bn"])
        lg = g.create_group("bn")
        lg.create_dataset("bn/gamma:0", data=np.ones(3))
        lg.attrs["weight_names"] = np.array([b"bn/gamma:0"])
    with pytest.raises(UnreadableFileError, match=r"bn.h5: HDF5 file without Dense layers"):
        topo.load(tmp_path / "bn.h5")
    with h5py.File(tmp_path / "data.h5", "w") as f:
        f.create_dataset("x", data=np.ones(3))
    with pytest.raises(UnreadableFileError, match="HDF5 file without Keras layer names"):
        topo.load(tmp_path / "data.h5")
    node = helper.make_node("Conv", ["x", "W"], ["y"])
    graph = helper.make_graph(
        [node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 5, 5]),
                      helper.make_tensor_value_info("W", TensorProto.FLOAT, [2, 1, 3, 3])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 2, 3, 3])])
    (tmp_path / "conv.onnx").write_bytes(helper.make_model(graph).SerializeToString())
    # the conv's weight is an input of the graph, not a constant: no layer to read
    with pytest.raises(UnreadableFileError,
                       match=r"conv.onnx: ONNX graph without Conv, Gemm or MatMul layers of "
                             r"constant weights \(operators: Conv\)"):
        topo.load(tmp_path / "conv.onnx")


# ------------------------------------------------------------- declared sizes and bombs
def test_safetensors_header_declaring_a_huge_tensor(tmp_path):
    import json

    header = json.dumps({"fc.weight": {"dtype": "F32", "shape": [1_000_000, 1_000_000],
                                       "data_offsets": [0, 16]}}).encode()
    path = tmp_path / "huge.safetensors"
    path.write_bytes(struct.pack("<Q", len(header)) + header + b"\0" * 16)
    with pytest.raises(UnreadableFileError, match=r"huge.safetensors: tensor 'fc.weight' "
                                                  r"declares shape .*3.64 TiB"):
        topo.load(path)


def npy_header(shape, dtype="<f4") -> bytes:
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue()


def test_npz_and_npy_headers_declaring_huge_arrays(tmp_path):
    with zipfile.ZipFile(tmp_path / "huge.npz", "w") as zf:
        zf.writestr("w1.npy", npy_header((1_000_000, 1_000_000)) + b"\0" * 16)
        zf.writestr("w2.npy", npy_header((2, 3)) + b"\0" * 24)
    with pytest.raises(UnreadableFileError, match=r"huge.npz: array 'w1' declares shape"):
        topo.load(tmp_path / "huge.npz")
    (tmp_path / "net").mkdir()
    (tmp_path / "net" / "layer0.npy").write_bytes(npy_header((10**7, 10**6)) + b"\0" * 8)
    with pytest.raises(UnreadableFileError, match=r"layer0.npy: array 'layer0' declares"):
        topo.load(tmp_path / "net")
    with zipfile.ZipFile(tmp_path / "objects.npz", "w") as zf:
        zf.writestr("w1.npy", npy_header((2,), "|O") + b"\0" * 16)
    with pytest.raises(UnreadableFileError, match="Python objects"):
        topo.load(tmp_path / "objects.npz")


def test_gzip_bomb_is_refused_without_expanding_it(tmp_path, monkeypatch):
    import topo.io.limits as limits

    monkeypatch.setattr(limits, "MAX_DECOMPRESSED_BYTES", 1 << 20)
    bomb = tmp_path / "bomb.onnx.gz"
    bomb.write_bytes(gzip.compress(b"\x08" + b"\0" * (64 << 20), compresslevel=9))
    assert bomb.stat().st_size < 200_000
    with pytest.raises(UnreadableFileError, match=r"bomb.onnx.gz: gzip expands beyond 1 MiB"):
        topo.load(bomb)


def test_concatenated_gzip_members_are_one_stream(tmp_path):
    data = mlp_files.onnx_model(WS, BS)
    half = len(data) // 2
    path = tmp_path / "two.onnx.gz"
    path.write_bytes(gzip.compress(data[:half]) + gzip.compress(data[half:]))
    assert topo.load(path).widths == [3, 4, 2]


def test_zip_member_declaring_more_than_the_limit(tmp_path, monkeypatch):
    import topo.io.limits as limits

    path = mlp_files.keras_zip(tmp_path / "m.keras", WS, BS)
    monkeypatch.setattr(limits, "MAX_DECOMPRESSED_BYTES", 1000)
    with pytest.raises(UnreadableFileError, match=r"m.keras: .keras archive: member "
                                                  "'model.weights.h5' declares"):
        topo.load(path)


# ------------------------------------------------------------------ code-running pickles
class Payload:
    """Would create ``target`` when unpickled by an ordinary unpickler."""

    def __init__(self, target: Path, how: str = "open") -> None:
        self.target, self.how = str(target), how

    def __reduce__(self):
        if self.how == "open":
            return (open, (self.target, "w"))
        if self.how == "system":
            return (os.system, (f"touch {self.target}",))
        return (eval, (f"open({self.target!r}, 'w')",))


class Holder(torch.nn.Module):
    def __init__(self, payload):
        super().__init__()
        self.fc = torch.nn.Linear(3, 2)
        self.extra = {"deep": [1, (2, payload)]}


def payload_files(tmp_path: Path, target: Path, how: str) -> dict[str, Path]:
    p = Payload(target, how)
    out = {}
    out["plain"] = tmp_path / "plain.pkl"
    out["plain"].write_bytes(pickle.dumps({"fc.weight": p}, protocol=2))
    out["zip"] = tmp_path / "zip.pt"
    torch.save({"fc.weight": torch.ones(2, 3), "x": p}, out["zip"])
    out["legacy"] = tmp_path / "legacy.pt"
    torch.save({"fc.weight": torch.ones(2, 3), "x": p}, out["legacy"],
               _use_new_zipfile_serialization=False)
    out["module"] = tmp_path / "module.pt"
    torch.save(Holder(p), out["module"])
    out["numpy_objects"] = tmp_path / "objects.pkl"
    out["numpy_objects"].write_bytes(pickle.dumps(np.array([p, 1], dtype=object)))
    out["legacy_module"] = tmp_path / "legacy_module.pt"
    torch.save(Holder(p), out["legacy_module"], _use_new_zipfile_serialization=False)
    return out


@pytest.mark.parametrize("how", ["open", "system", "eval"])
def test_no_pickle_route_runs_code(tmp_path, how):
    target = tmp_path / "marker"
    files = payload_files(tmp_path, target, how)
    for route, path in files.items():
        # an object array is refused for its dtype before its elements are built
        expected = UnreadableFileError if route == "numpy_objects" else UnsafeFileError
        with pytest.raises(expected, match=f"{path.name}: ") as err:
            topo.load(path)
        assert "\n" not in str(err.value), route
        assert not target.exists(), route
    (tmp_path / "out.txt").unlink(missing_ok=True)
    assert main(["export", str(files["module"]), "-o", str(tmp_path / "out.txt")]) == 1
    assert not target.exists() and not (tmp_path / "out.txt").exists()


def test_whole_module_and_pickles_never_call_torch_load_unsafely(tmp_path, monkeypatch):
    real = torch.load

    def guarded(*args, **kwargs):
        assert kwargs.get("weights_only") is True
        return real(*args, **kwargs)

    monkeypatch.setattr(torch, "load", guarded)
    torch.save(torch.nn.Sequential(torch.nn.Linear(3, 2)), tmp_path / "whole.pt")
    assert topo.load(tmp_path / "whole.pt").widths == [3, 2]


# ---------------------------------------------------------------------------- the CLI
@pytest.mark.parametrize("kind", ["h5", "onnx", "npz", "legacy"])
def test_cli_errors_are_one_line_and_write_nothing(tmp_path, capsys, kind):
    bad = cut(make_files(tmp_path)[kind], 0.5)
    out = tmp_path / "out.graphml"
    assert main(["export", str(bad), "-o", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and str(bad) in err[0]
    assert not out.exists()


def test_a_truncated_safetensors_tensor_is_reported_with_the_bytes_the_file_holds(
        tmp_path, example_run):
    raw = (example_run / "snapshots" / "epoch_0003.safetensors").read_bytes()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8:8 + n])
    name, entry = min(((k, v) for k, v in header.items() if k != "__metadata__"),
                      key=lambda kv: kv[1]["data_offsets"][0])
    start, end = entry["data_offsets"]
    cut = 8 + n + start + 100                      # 100 bytes of the first tensor kept
    assert end - start > 100
    path = tmp_path / "cut.safetensors"
    path.write_bytes(raw[:cut])
    with pytest.raises(UnreadableFileError,
                       match=rf"'{name}' declares .* but the file holds 100 bytes for it"):
        topo.load(path)
