"""Properties over the whole family: one random MLP saved in every way topo reads gives the
same graph or a clear refusal, never a different graph; and mutated files of every format end
in a TopoError or a graph, never a traceback or a hang."""

from __future__ import annotations

import json
import os
import pickle
import random
import signal
import struct
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import mlp_files
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.numpy import save_file as save_numpy_safetensors

import topo
from topo.errors import TopoError


def torch_state(ws, bs, names):
    sd = OrderedDict()
    for n, w, b in zip(names, ws, bs):
        sd[f"{n}.weight"] = torch.from_numpy(w.copy())
        if b is not None:
            sd[f"{n}.bias"] = torch.from_numpy(b.copy())
    return sd


def sequential_of(ws, bs):
    mods = []
    for w, b in zip(ws, bs):
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=b is not None)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(w))
            if b is not None:
                lin.bias.copy_(torch.from_numpy(b))
        mods += [lin, torch.nn.ReLU()]
    return torch.nn.Sequential(*mods[:-1])


def write_every_way(folder: Path, ws, bs, masks):
    """Yield (way, path, expected masks) for one network."""
    names = [str(2 * k) for k in range(len(ws))]
    sd = torch_state(ws, bs, names)
    with_bias = all(b is not None for b in bs)

    def save(name, obj, **kw):
        torch.save(obj, folder / name, **kw)
        return folder / name

    yield "module order", save("m.pt", sd), None
    yield "sorted keys", save("sorted.pt", OrderedDict(sorted(sd.items()))), None
    yield "prefix", save("dp.pt", {f"module.{k}": v for k, v in sd.items()}), None
    yield "nested dict", save("ckpt.pth.tar", {"epoch": 2, "best": torch.tensor(1.0),
                                               "optimizer": {"state": {}},
                                               "state_dict": sd}), None
    yield "legacy", save("legacy.pt", sd, _use_new_zipfile_serialization=False), None
    save_numpy_safetensors({k: v.numpy() for k, v in sd.items()},
                           str(folder / "m.safetensors"))
    yield "safetensors", folder / "m.safetensors", None
    pruned = OrderedDict()
    for n, w, b, m in zip(names, ws, bs, masks):
        pruned[f"{n}.weight_orig"] = torch.from_numpy(w.copy())
        pruned[f"{n}.weight_mask"] = torch.from_numpy(m.astype(np.float32))
        if b is not None:
            pruned[f"{n}.bias"] = torch.from_numpy(b.copy())
    yield "prune", save("pruned.pt", pruned), masks
    param = OrderedDict()
    for n, w, b, m in zip(names, ws, bs, masks):
        param[f"{n}.parametrizations.weight.original"] = torch.from_numpy(w.copy())
        param[f"{n}.parametrizations.weight.0.mask"] = torch.from_numpy(m.astype(np.float32))
        if b is not None:
            param[f"{n}.bias"] = torch.from_numpy(b.copy())
    yield "parametrization", save("param.pt", param), masks
    yield "whole module", save("whole.pt", sequential_of(ws, bs)), None
    yield "list of arrays", save("list.pth", [w.copy() for w in ws]), None
    yield "keras", mlp_files.keras_h5(folder / "m.h5", ws, bs), None
    yield "keras 3", mlp_files.keras_h5(folder / "m3.h5", ws, bs, version=3), None
    yield "keras zip", mlp_files.keras_zip(folder / "m.keras", ws, bs), None
    yield "onnx gemm", mlp_files.write_onnx(folder / "m.onnx", ws, bs), None
    yield "onnx matmul", mlp_files.write_onnx(folder / "mm.onnx", ws, bs, op="matmul"), None
    yield "npz", mlp_files.npz(folder / "m.npz", ws, bs if with_bias else None), None
    yield "npy folder", mlp_files.npy_folder(folder / "npy", ws, masks), masks
    # an alias: the last layer repeats an earlier one of the same shape, saved by save_model
    same = [k for k in range(len(ws) - 1) if ws[k].shape == ws[-1].shape]
    if same:
        from safetensors.torch import save_model

        tied_ws = [*ws[:-1], ws[same[0]]]
        model = sequential_of(tied_ws, bs)
        model[2 * (len(ws) - 1)].weight = model[2 * same[0]].weight
        save_model(model, str(folder / "tied.safetensors"))
        yield "alias", folder / "tied.safetensors", ("weights", tied_ws)


NO_BIASES = ("list of arrays", "npy folder")  # these layouts hold the weights only


def expectation(way, expected, ws, bs):
    """(weights, biases, masks) the file written that way holds."""
    exp_bs = [None] * len(bs) if way in NO_BIASES else bs
    if isinstance(expected, tuple):
        return expected[1], exp_bs, None
    return ws, exp_bs, expected


@st.composite
def networks(draw):
    widths = draw(st.lists(st.integers(1, 6), min_size=2, max_size=5))
    seed = draw(st.integers(0, 2**31 - 1))
    bias = draw(st.booleans())
    rng = np.random.default_rng(seed)
    ws = [(rng.normal(size=(b, a)) * (rng.random((b, a)) < 0.8)).astype(np.float32)
          for a, b in zip(widths[:-1], widths[1:])]
    ws = [w + (w == 0) * 0.5 * (rng.random(w.shape) < 0.5) for w in ws]
    bs = [rng.normal(size=b).astype(np.float32) if bias else None for b in widths[1:]]
    masks = [rng.random(w.shape) < 0.6 for w in ws]
    return ws, bs, masks


def same_graph(g, ws, bs, masks):
    if g.widths != [ws[0].shape[1]] + [w.shape[0] for w in ws]:
        return False
    for k, w in enumerate(ws):
        structure = (w != 0) if masks is None else masks[k]
        if not np.array_equal(g.masks()[k].toarray() != 0, structure):
            return False
        if not np.allclose(g.layers[k].toarray(), np.where(structure, w, 0), rtol=1e-5,
                           atol=1e-6):
            return False
        if bs[k] is not None and not np.allclose(g.biases[k], bs[k], rtol=1e-5):
            return False
    return True


@settings(max_examples=int(os.environ.get("TOPO_PROPERTY_EXAMPLES", "12")), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(net=networks())
def test_every_way_of_saving_gives_the_same_graph_or_a_clear_error(tmp_path_factory, net):
    ws, bs, masks = net
    # in the session's folder (a RAM file system where there is one: see tests/conftest.py)
    with tempfile.TemporaryDirectory(dir=tmp_path_factory.getbasetemp()) as tmp:
        for way, path, expected in write_every_way(Path(tmp), ws, bs, masks):
            exp_ws, exp_bs, exp_masks = expectation(way, expected, ws, bs)
            try:
                g = topo.load(path)
            except TopoError as exc:
                assert str(path) in str(exc) and "\n" not in str(exc), way
                continue
            assert same_graph(g, exp_ws, exp_bs, exp_masks), f"{way}: a different graph"


def test_the_property_reads_the_unambiguous_network_everywhere(tmp_path):
    # widths that chain only one way: every route must read it, none may refuse
    rng = np.random.default_rng(0)
    widths = [7, 5, 5, 5]
    ws = [rng.normal(size=(b, a)).astype(np.float32) for a, b in zip(widths[:-1], widths[1:])]
    bs = [rng.normal(size=b).astype(np.float32) for b in widths[1:]]
    masks = [rng.random(w.shape) < 0.6 for w in ws]
    ways = []
    for way, path, expected in write_every_way(tmp_path, ws, bs, masks):
        assert same_graph(topo.load(path), *expectation(way, expected, ws, bs)), way
        ways.append(way)
    assert len(ways) == 18


# ------------------------------------------------------------------------------ fuzzing
FUZZ_SECONDS = float(os.environ.get("TOPO_FUZZ_SECONDS", "10"))
FUZZ_SEED = int(os.environ.get("TOPO_FUZZ_SEED", "7"))


def _mutations(data: bytes, rng: random.Random, kind: str):
    for _ in range(6):
        yield data[: rng.randrange(1, len(data))]
    for _ in range(10):
        buf = bytearray(data)
        for _ in range(rng.randint(1, 8)):
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        yield bytes(buf)
    if kind == "safetensors":
        n = struct.unpack("<Q", data[:8])[0]
        header = json.loads(data[8:8 + n])
        for _ in range(4):
            key = rng.choice([k for k in header if k != "__metadata__"])
            header[key]["shape"] = [rng.choice([0, 1, 7, 10**9]) for _ in header[key]["shape"]]
            raw = json.dumps(header).encode()
            yield struct.pack("<Q", len(raw)) + raw + data[8 + n:]
    if kind == "npz-member":
        for shape in ((10**9, 10**9), (0, 3), (3,), (2, 2, 2)):
            head = mlp_files_npy_header(shape)
            yield head


def mlp_files_npy_header(shape) -> bytes:
    import io

    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, {"descr": "<f4", "fortran_order": False,
                                               "shape": shape})
    return buf.getvalue() + b"\0" * 64


class _Hang(Exception):
    pass


def _alarm(signum, frame):
    raise _Hang


def test_fuzzed_files_of_every_format_end_cleanly(tmp_path, capfd):
    rng = np.random.default_rng(1)
    ws = [rng.normal(size=(4, 6)).astype(np.float32), rng.normal(size=(3, 4)).astype(np.float32)]
    bs = [np.zeros(4, np.float32), np.zeros(3, np.float32)]
    sd = torch_state(ws, bs, ["fc1", "fc2"])
    torch.save(sd, tmp_path / "m.pt")
    torch.save(sd, tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    torch.save(sequential_of(ws, bs), tmp_path / "whole.pt")
    with open(tmp_path / "plain.pkl", "wb") as fh:
        pickle.dump([w.copy() for w in ws], fh)
    save_numpy_safetensors({k: v.numpy() for k, v in sd.items()},
                           str(tmp_path / "m.safetensors"))
    sources = {
        "pytorch": tmp_path / "m.pt", "legacy": tmp_path / "legacy.pt",
        "whole": tmp_path / "whole.pt", "pickle": tmp_path / "plain.pkl",
        "safetensors": tmp_path / "m.safetensors",
        "h5": mlp_files.keras_h5(tmp_path / "m.h5", ws, bs),
        "keras": mlp_files.keras_zip(tmp_path / "m.keras", ws, bs),
        "onnx": mlp_files.write_onnx(tmp_path / "m.onnx", ws, bs),
        "onnx.gz": mlp_files.write_onnx(tmp_path / "m.onnx.gz", ws, bs, gz=True),
        "npz": mlp_files.npz(tmp_path / "m.npz", ws, bs),
    }
    generator = random.Random(FUZZ_SEED)
    deadline = time.monotonic() + FUZZ_SECONDS
    tried = 0
    previous = signal.signal(signal.SIGALRM, _alarm)
    try:
        for kind, source in sources.items():
            data = source.read_bytes()
            for k, mutated in enumerate(_mutations(data, generator, kind)):
                if time.monotonic() > deadline:
                    break
                path = tmp_path / f"fuzz_{kind}_{k}{''.join(source.suffixes)}"
                path.write_bytes(mutated)
                signal.alarm(5)
                try:
                    topo.load(path)
                except TopoError as exc:
                    assert "\n" not in str(exc), (kind, k, str(exc))
                except _Hang:
                    pytest.fail(f"{kind} mutation {k}: no answer within 5 s")
                finally:
                    signal.alarm(0)
                tried += 1
    finally:
        signal.signal(signal.SIGALRM, previous)
    assert tried >= 50
    assert capfd.readouterr().err == ""
