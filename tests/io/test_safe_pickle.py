"""topo's unpickler against torch's own loader (an independent decoder of the same bytes),
and its refusals of records it does not build."""

from __future__ import annotations

import io
import pickle
import struct
import zipfile
from collections import OrderedDict

import numpy as np
import pytest
import scipy.sparse as sp
import torch

from topo.errors import UnreadableFileError, UnsafeFileError
from topo.io.safe_pickle import ForeignObject, is_module, load_pickle, module_tensors


def tensors_to_numpy(obj):
    if isinstance(obj, torch.Tensor):
        if obj.layout != torch.strided:
            return obj
        return obj.detach().float().numpy() if obj.dtype == torch.bfloat16 else \
            obj.detach().numpy()
    if isinstance(obj, dict):
        return {k: tensors_to_numpy(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return type(obj)(tensors_to_numpy(v) for v in obj)
    return obj


@pytest.mark.parametrize("legacy", [False, True])
def test_tensors_match_torch_load(tmp_path, legacy):
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    obj = OrderedDict(
        f32=base, f64=base.double(), f16=base.half(), bf16=base.bfloat16(),
        i64=torch.arange(5), i32=torch.arange(5, dtype=torch.int32),
        i16=torch.arange(5, dtype=torch.int16), i8=torch.arange(5, dtype=torch.int8),
        u8=torch.arange(5, dtype=torch.uint8), b=torch.tensor([True, False]),
        transposed=base.t(), strided=base[:, ::2], offset=base[1:3, 2:], empty=base[:0],
        scalar=torch.tensor(3.5), param=torch.nn.Parameter(base.clone()),
        nested=[base[0], (base[1], {"x": base[2]})], number=7, text="x", none=None,
        array=np.arange(6.0).reshape(2, 3), npscalar=np.float32(2.5),
        fortran=np.asfortranarray(np.arange(6.0).reshape(2, 3)), aset={1, 2},
        fset=frozenset({3}), big_endian=np.arange(4, dtype=">i4"))
    path = tmp_path / "t.pt"
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    expected = tensors_to_numpy(torch.load(path, weights_only=False))
    got, container = load_pickle(path)
    assert container == ("torch-legacy" if legacy else "torch-zip")
    assert list(got) == list(expected)
    for key in ("f32", "f64", "f16", "bf16", "i64", "i32", "i16", "i8", "u8", "b",
                "transposed", "strided", "offset", "empty", "scalar", "param", "array",
                "fortran", "big_endian"):
        np.testing.assert_array_equal(np.asarray(got[key], dtype=np.asarray(
            expected[key]).dtype), expected[key], err_msg=key)
    np.testing.assert_array_equal(got["nested"][1][1]["x"], expected["nested"][1][1]["x"])
    assert got["npscalar"] == 2.5 and got["aset"] == {1, 2} and got["fset"] == {3}
    assert (got["number"], got["text"], got["none"]) == (7, "x", None)


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_sparse_tensors(tmp_path):
    coo = torch.sparse_coo_tensor(torch.tensor([[0, 1, 1], [1, 0, 2]]),
                                  torch.tensor([1.5, 2.0, 0.0]), (2, 3))
    csr = torch.tensor([[0.0, 1.0], [2.0, 0.0]]).to_sparse_csr()
    coo3 = torch.sparse_coo_tensor(torch.tensor([[0], [1], [0]]), torch.tensor([4.0]),
                                   (1, 2, 1))
    torch.save({"coo": coo, "csr": csr, "coo3": coo3}, tmp_path / "s.pt")
    got, _ = load_pickle(tmp_path / "s.pt")
    assert sp.issparse(got["coo"]) and got["coo"].nnz == 3  # the stored zero is kept
    np.testing.assert_array_equal(got["coo"].toarray(), coo.to_dense().numpy())
    np.testing.assert_array_equal(got["csr"].toarray(), [[0.0, 1.0], [2.0, 0.0]])
    np.testing.assert_array_equal(got["coo3"], coo3.to_dense().numpy())


def test_whole_module_stand_ins(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4),
                                torch.nn.Linear(4, 2, bias=False))
    torch.save(model, tmp_path / "m.pt")
    got, _ = load_pickle(tmp_path / "m.pt")
    assert is_module(got) and isinstance(got, ForeignObject)
    assert got.topo_class == "torch.nn.modules.container.Sequential"
    assert "stand-in for torch.nn.modules.container.Sequential" in repr(got)
    tensors, classes = module_tensors(got)
    assert list(tensors) == list(model.state_dict())
    for k, v in model.state_dict().items():
        np.testing.assert_array_equal(tensors[k], v.numpy())
    assert classes["1"] == "torch.nn.modules.batchnorm.BatchNorm1d"


class Recorded:
    """A class whose pickle uses SETITEMS, APPENDS and a (state, slotstate) BUILD."""

    def __reduce__(self):
        return (Recorded, (), ({"a": 1}, {"b": 2}), iter([1, 2]), iter([("k", 3)]))


def test_foreign_objects_record_items_and_state(tmp_path):
    path = tmp_path / "r.pkl"
    path.write_bytes(pickle.dumps({"obj": Recorded(), "w": np.ones((2, 2))}, protocol=4))
    got, container = load_pickle(path)
    obj = got["obj"]
    assert container == "pickle"
    assert obj.topo_items == [1, 2, ("k", 3)]
    assert obj.topo_dict() == {"a": 1}
    assert not is_module(obj)


def write_pickle(path, payload: bytes):
    path.write_bytes(payload)
    return path


class _PidPickler(pickle.Pickler):
    def __init__(self, fh, pid):
        super().__init__(fh, protocol=2)
        self.pid = pid

    def persistent_id(self, obj):
        return self.pid if isinstance(obj, Marker) else None


class Marker:
    pass


def pickled_with_pid(pid) -> bytes:
    buf = io.BytesIO()
    _PidPickler(buf, pid).dump({"w": Marker()})
    return buf.getvalue()


def torch_zip_with(tmp_path, data_pkl: bytes, extra=None):
    path = tmp_path / "crafted.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("archive/data.pkl", data_pkl)
        for name, data in (extra or {}).items():
            zf.writestr(name, data)
    return path


def test_crafted_records_are_refused(tmp_path):
    with pytest.raises(UnreadableFileError, match="persistent reference outside"):
        load_pickle(write_pickle(tmp_path / "p.pkl", pickled_with_pid(("storage",))))
    cases = [
        (("weird", 1), "unknown persistent reference"),
        (("storage", "not a type", "0", "cpu", 4), "storage reference of unknown type"),
    ]
    for pid, message in cases:
        with pytest.raises(UnreadableFileError, match=message):
            load_pickle(torch_zip_with(tmp_path, pickled_with_pid(pid)))
    with pytest.raises(UnreadableFileError, match="without data.pkl"):
        path = tmp_path / "nopkl.pt"
        with zipfile.ZipFile(path, "w") as zf:
            zf.writestr("archive/other", b"x")
        load_pickle(path)


def test_storage_records_checked_against_the_data(tmp_path):
    torch.save({"w": torch.ones(2, 3)}, tmp_path / "ok.pt")
    with zipfile.ZipFile(tmp_path / "ok.pt") as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    data_name = next(n for n in entries if "/data/" in n and not n.endswith(".pkl"))
    short = dict(entries)
    short[data_name] = entries[data_name][:8]
    for name, variant, message in (("short.pt", short, "holds 8 bytes"),
                                   ("missing.pt", {k: v for k, v in entries.items()
                                                   if k != data_name}, "is missing")):
        with zipfile.ZipFile(tmp_path / name, "w") as zf:
            for n, d in variant.items():
                zf.writestr(n, d)
        with pytest.raises(UnreadableFileError, match=message):
            load_pickle(tmp_path / name)


def test_unsupported_records(tmp_path):
    q = torch.quantize_per_tensor(torch.ones(2), 0.1, 0, torch.qint8)
    torch.save({"q": q}, tmp_path / "q.pt")
    with pytest.raises(UnreadableFileError, match="q.pt: .*QInt8Storage"):
        load_pickle(tmp_path / "q.pt")
    torch.save({"c": torch.ones(2, dtype=torch.complex64)}, tmp_path / "c.pt")
    with pytest.raises(UnreadableFileError, match="ComplexFloatStorage"):
        load_pickle(tmp_path / "c.pt")
    (tmp_path / "sub.pkl").write_bytes(pickle.dumps(np.arange(3).view(np.recarray)))
    with pytest.raises(UnreadableFileError, match="sub.pkl: a numpy array subclass"):
        load_pickle(tmp_path / "sub.pkl")
    structured = np.zeros(2, dtype=[("a", "<f4"), ("b", "<i4")])
    (tmp_path / "st.pkl").write_bytes(pickle.dumps(structured))
    with pytest.raises(UnreadableFileError, match="structured"):
        load_pickle(tmp_path / "st.pkl")


def test_deep_nesting_and_garbage(tmp_path):
    deep: list = []
    cur = deep
    for _ in range(600):
        cur.append([])
        cur = cur[0]
    import sys

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(10_000)
    try:
        (tmp_path / "deep.pkl").write_bytes(pickle.dumps(deep))
    finally:
        sys.setrecursionlimit(limit)
    with pytest.raises(UnreadableFileError, match="deep.pkl: .*nests"):
        load_pickle(tmp_path / "deep.pkl")
    (tmp_path / "junk.pkl").write_bytes(b"\x80\x02}q\x00(X\x01\x00\x00")
    with pytest.raises(UnreadableFileError, match="junk.pkl: not a readable pickle"):
        load_pickle(tmp_path / "junk.pkl")


class CallsPartial:
    def __reduce__(self):
        import functools

        return (functools.partial, (print, "x"))


def test_a_call_into_the_standard_library_is_refused(tmp_path):
    (tmp_path / "partial.pkl").write_bytes(pickle.dumps({"f": CallsPartial()}))
    with pytest.raises(UnsafeFileError, match="functools.partial"):
        load_pickle(tmp_path / "partial.pkl")


# ------------------------------------------------------- hand-assembled pickle records
def g(module: str, name: str) -> bytes:
    return b"c" + f"{module}\n{name}\n".encode()


def s(text: str) -> bytes:
    raw = text.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def i(n: int) -> bytes:
    return b"J" + struct.pack("<i", n)


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(fn: bytes, *args: bytes) -> bytes:
    return fn + tup(*args) + b"R"


def assembled(tmp_path, body: bytes, name="crafted.pkl", storages=None):
    data = b"\x80\x02" + body + b"."
    if storages is None:
        return write_pickle(tmp_path / name, data)
    return torch_zip_with(tmp_path, data, {f"archive/data/{k}": v for k, v in storages.items()})


def storage(key="0", numel=4, view=None) -> bytes:
    items = [s("storage"), g("torch", "FloatStorage"), s(key), s("cpu"), i(numel)]
    if view is not None:
        items.append(view)
    return tup(*items) + b"Q"


def tensor(store: bytes, offset=0, size=(2,), stride=(1,)) -> bytes:
    return call(g("torch._utils", "_rebuild_tensor_v2"), store, i(offset),
                tup(*map(i, size)), tup(*map(i, stride)), b"\x89", b"N")


FLOATS = np.arange(4, dtype="<f4").tobytes()


def test_assembled_records_that_are_read(tmp_path):
    cases = {
        "storage view": (tensor(storage(view=tup(s("0"), i(1), i(2)))), [1.0, 2.0]),
        "parameter through a tensor subclass": (
            call(g("torch._tensor", "_rebuild_from_type_v2"),
                 g("torch._utils", "_rebuild_parameter"), g("torch.nn", "Parameter"),
                 tup(tensor(storage()), b"\x88", b"N"), b"N"), [0.0, 1.0]),
    }
    for label, (body, expected) in cases.items():
        got, _ = load_pickle(assembled(tmp_path, body, storages={"0": FLOATS}))
        np.testing.assert_array_equal(got, expected, err_msg=label)
    got, _ = load_pickle(assembled(tmp_path, tup(g("torch", "float32"), g("torch", "strided"))))
    assert got == ("float32", "strided")
    thing = call(g("copyreg", "_reconstructor"), g("mymodels", "Thing"), g("builtins", "object"),
                 b"}" + s("a") + i(1) + b"s")
    got, _ = load_pickle(assembled(tmp_path, thing))
    assert isinstance(got, ForeignObject) and got.topo_dict() == {"a": 1}
    appended = call(g("mymodels", "Bag"), ) + s("x") + b"a"
    got, _ = load_pickle(assembled(tmp_path, appended))
    assert got.topo_items == ["x"]


@pytest.mark.parametrize("body, message", [
    (call(g("torch._tensor", "_rebuild_from_type_v2"), g("mymodels", "f"), b"N", b")", b"N"),
     "UnsafeFileError"),
    (call(g("copyreg", "_reconstructor"), g("collections", "OrderedDict"), b"N", b"N"),
     "_reconstructor of a built-in"),
    (call(g("torch", "FloatStorage"), i(3)), "built outside a storage reference"),
    (call(g("torch._utils", "_rebuild_tensor_v2"), i(1), i(0), b")", b")"),
     "a tensor without a storage"),
    (call(g("torch._utils", "_rebuild_sparse_tensor"), g("torch", "float32"), b")"),
     "layout 'float32' are not read"),
    (call(g("torch._utils", "_rebuild_qtensor"), i(1)), "quantized or meta"),
    (call(g("_codecs", "encode"), s("x"), s("rot13")), "encoding bytes in an unusual way"),
    (call(g("numpy.core.multiarray", "scalar"), call(g("numpy", "dtype"), s("f8")), s("x")),
     "numpy scalar that is not plain data"),
    (call(g("numpy.core.multiarray", "_reconstruct"), g("numpy", "ndarray"), tup(i(0)),
          s("b")), "array record without data"),
    (call(g("numpy.core.multiarray", "_reconstruct"), g("numpy", "ndarray"), tup(i(0)), s("b"))
     + tup(i(1), tup(i(3)), call(g("numpy", "dtype"), s("f4")), b"\x89",
           b"B" + struct.pack("<I", 5) + b"12345") + b"b", "shape (3,) with 5 bytes"),
    (call(g("numpy.core.multiarray", "_reconstruct"), g("numpy", "ndarray"), tup(i(0)), s("b"))
     + tup(i(1), tup(i(1)), call(g("numpy", "dtype"), s("f4")), b"\x89", b"]") + b"b",
     "Python objects"),
    (call(g("numpy", "dtype"), s("f4")) + tup(i(3), s("<"), b"N", tup(s("a")), b"N") + b"b",
     "structured"),
])
def test_assembled_records_that_are_refused(tmp_path, body, message):
    path = assembled(tmp_path, body)
    with pytest.raises((UnreadableFileError, UnsafeFileError)) as err:
        load_pickle(path)
    assert message in str(err.value) or message == type(err.value).__name__
    assert str(path) in str(err.value)


@pytest.mark.parametrize("body, message", [
    (tensor(storage(), size=(2, 2), stride=(1,)), "invalid layout"),
    (tensor(storage(), offset=3, size=(2,)), "reaches past its storage"),
    (tensor(storage(numel=3)), "holds 16 bytes, its record says 3 x 4"),
    (call(g("torch._utils", "_rebuild_sparse_tensor"), g("torch", "sparse_coo"),
          tup(tensor(storage()), tensor(storage()), tup(i(10**6), i(10**6), i(10**6)))),
     "too large"),
])
def test_tensor_records_checked_against_their_storage(tmp_path, body, message):
    with pytest.raises(UnreadableFileError, match=message):
        load_pickle(assembled(tmp_path, body, storages={"0": FLOATS}))


def test_legacy_files_with_damaged_storage_section(tmp_path):
    torch.save({"w": torch.ones(3)}, tmp_path / "ok.pt", _use_new_zipfile_serialization=False)
    data = (tmp_path / "ok.pt").read_bytes()
    (tmp_path / "short.pt").write_bytes(data[:-4])
    with pytest.raises(UnreadableFileError, match="short.pt: truncated"):
        load_pickle(tmp_path / "short.pt")
    magic = b"".join(pickle.dumps(x, protocol=2) for x in (0x1950A86A20F9469CFC6C, 1001, {}))
    main = b"\x80\x02" + tensor(storage()) + b"."
    for keys, message in ((pickle.dumps("nope", protocol=2), "storage keys"),
                          (pickle.dumps(["9"], protocol=2), "storage 9")):
        (tmp_path / "bad.pt").write_bytes(magic + main + keys)
        with pytest.raises(UnreadableFileError, match=message):
            load_pickle(tmp_path / "bad.pt")
    (tmp_path / "cut.pt").write_bytes(magic + main + pickle.dumps(["0"], protocol=2)
                                      + struct.pack("<q", 4) + b"\0" * 6)
    with pytest.raises(UnreadableFileError, match="cut.pt: truncated legacy"):
        load_pickle(tmp_path / "cut.pt")


def test_damaged_zip_container(tmp_path):
    (tmp_path / "z.pt").write_bytes(b"PK\x03\x04" + b"\0" * 40)
    with pytest.raises(UnreadableFileError, match="z.pt: damaged zip archive"):
        load_pickle(tmp_path / "z.pt")
