"""Reading pickles without running code from them.

A pickle names the functions that rebuild its objects, and an ordinary unpickler calls them:
loading a pickle runs whatever it names. topo's unpickler calls nothing from the file. It
builds only:

- numpy arrays, from PyTorch tensor records (``torch._utils._rebuild_tensor_v2``, parameters,
  sparse COO/CSR tensors, every plain dtype including bfloat16) and from numpy's own array
  records (numeric dtypes only; ``object`` arrays are refused);
- plain containers (dict, list, tuple, set, ``OrderedDict``) and bytes/str;
- for every other global the pickle names, an inert stand-in class of the same name: creating
  it records its arguments and state and runs nothing, so a whole pickled ``nn.Module``
  becomes a tree of stand-ins whose ``_parameters``/``_buffers``/``_modules`` can be read.

A pickle that asks to call a function of the system (``builtins.open``, ``os.system``,
``subprocess``, ``eval``, ...) is refused with :class:`~topo.errors.UnsafeFileError` the moment
it asks; the call never happens. Three containers are read: PyTorch's zip format
(``torch.save``), its legacy format (``_use_new_zipfile_serialization=False``) and plain
pickles (``pickle.dump``). torch is not imported.
"""

from __future__ import annotations

import _compat_pickle
import io
import pickle
import struct
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import UnreadableFileError, UnsafeFileError
from topo.io.limits import MAX_DECOMPRESSED_BYTES, ZIP_ERRORS, human_bytes, read_zip_member

__all__ = ["ForeignObject", "load_pickle", "module_tensors", "module_attributes"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_MAX_DEPTH = 500

# Calling anything from these modules is what a malicious pickle does; the stand-in refuses.
_SYSTEM_MODULES = {
    "builtins", "__builtin__", "os", "posix", "nt", "subprocess", "sys", "shutil", "socket",
    "importlib", "runpy", "code", "codeop", "pty", "ctypes", "pickle", "_pickle", "marshal",
    "types", "io", "_io", "tempfile", "pathlib", "webbrowser", "multiprocessing", "signal",
    "asyncio", "urllib", "http", "ftplib", "smtplib", "requests", "timeit", "pdb", "platform",
    "shelve", "glob", "zipfile", "tarfile", "gc", "inspect", "operator", "functools",
    "commands", "popen2", "posixpath", "ntpath", "codecs", "_codecs", "threading", "_thread",
    "site", "sysconfig", "distutils", "setuptools", "pip", "ensurepip", "venv", "zipimport",
    "pkgutil", "imp", "linecache", "traceback", "weakref", "copyreg", "dill", "cloudpickle",
    "joblib", "yaml", "xmlrpc", "telnetlib", "uuid", "logging", "atexit", "select",
    "selectors", "mmap", "fcntl", "resource", "pwd", "grp", "getpass", "string",
}
_SYSTEM_QUALIFIED = ("torch.hub", "torch.serialization", "torch._C", "torch.ops",
                     "torch.jit", "torch.utils.cpp_extension", "torch.package",
                     "numpy.testing", "numpy.distutils", "numpy.f2py", "numpy.lib.npyio")


class ForeignObject:
    """An inert stand-in for an object of a class the pickle names but topo does not build.

    ``topo_class`` is the qualified class name from the file; the constructor arguments, the
    pickled state (an ``nn.Module``'s ``__dict__``) and any items set on it are recorded.
    """

    topo_module = ""
    topo_name = ""

    def __new__(cls, *args: Any, **kwargs: Any) -> ForeignObject:
        if _is_system(cls.topo_module):
            raise _RefusedCall(f"{cls.topo_module}.{cls.topo_name}")
        obj = object.__new__(cls)
        obj.topo_args = args
        obj.topo_state = None
        obj.topo_items = []
        return obj

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __setstate__(self, state: Any) -> None:
        self.topo_state = state

    def __setitem__(self, key: Any, value: Any) -> None:
        self.topo_items.append((key, value))

    def append(self, value: Any) -> None:
        self.topo_items.append(value)

    def extend(self, values: Any) -> None:
        self.topo_items.extend(values)

    @property
    def topo_class(self) -> str:
        return f"{self.topo_module}.{self.topo_name}"

    def topo_dict(self) -> dict[str, Any]:
        """The pickled state when it is a mapping (a module's ``__dict__``), else ``{}``."""
        state = self.topo_state
        if isinstance(state, tuple) and len(state) == 2 and isinstance(state[0], dict):
            state = state[0]
        return state if isinstance(state, dict) else {}

    def __repr__(self) -> str:
        return f"<stand-in for {self.topo_class}>"


class _RefusedCall(Exception):
    pass


def load_pickle(path: Path) -> tuple[Any, str]:
    """Unpickle ``path`` without running code; returns ``(object, container)``.

    ``container`` is ``"torch-zip"``, ``"torch-legacy"`` or ``"pickle"``. Tensors and numpy
    arrays come back as numpy arrays (2-D sparse tensors as SciPy CSR matrices).

    Raises
    ------
    UnsafeFileError
        The pickle asks to call a system function (nothing was called).
    UnreadableFileError
        Truncated or corrupt data, a tensor whose storage the file lacks, an unsupported
        record (quantized tensors, object arrays).
    """
    try:
        with open(path, "rb") as fh:
            head = fh.read(4)
        if head == b"PK\x03\x04":
            obj, kind = _load_torch_zip(path), "torch-zip"
        else:
            obj, kind = _load_stream(path)
        return _finalize(obj, path), kind
    except _RefusedCall as exc:
        raise UnsafeFileError(
            f"{path}: refused: the pickle would call {exc} when loaded; topo never runs code "
            "from a file (nothing was run)") from None
    except UnsafeFileError:
        raise
    except UnreadableFileError as exc:
        if str(exc).startswith(str(path)):
            raise
        raise UnreadableFileError(f"{path}: {exc}") from None
    except RecursionError:
        raise UnreadableFileError(f"{path}: the pickle nests objects too deeply") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, KeyError, IndexError,
            AttributeError, struct.error, zipfile.BadZipFile, OverflowError, MemoryError,
            UnicodeDecodeError, LookupError) as exc:
        raise UnreadableFileError(
            f"{path}: not a readable pickle (truncated or corrupt?): "
            f"{_first_line(exc)}") from None


def module_tensors(module: ForeignObject) -> tuple[dict[str, Any], dict[str, str]]:
    """A pickled ``nn.Module`` stand-in's tensors, named and ordered as its state_dict.

    Returns ``(tensors, classes)``: ``name -> array`` (parameters then persistent buffers of
    each module, children after, depth first), and ``module prefix -> class name``.
    """
    tensors: dict[str, Any] = {}
    classes: dict[str, str] = {}

    def walk(mod: Any, prefix: str, depth: int) -> None:
        if depth > _MAX_DEPTH or not isinstance(mod, ForeignObject):
            return
        classes[prefix.rstrip(".")] = mod.topo_class
        state = mod.topo_dict()
        for name, value in _items(state.get("_parameters")):
            if _is_array(value):
                tensors[prefix + name] = value
        hidden = state.get("_non_persistent_buffers_set") or set()
        for name, value in _items(state.get("_buffers")):
            if _is_array(value) and name not in hidden:
                tensors[prefix + name] = value
        for name, child in _items(state.get("_modules")):
            walk(child, f"{prefix}{name}.", depth + 1)

    walk(module, "", 0)
    return tensors, classes


def module_attributes(module: ForeignObject,
                      names: tuple[str, ...] = ("groups",)
                      ) -> dict[str, dict[str, Any]]:
    """Module prefix -> the plain attributes ``names`` each pickled module records (ints and
    tuples of ints; e.g. a conv's ``groups``), for the modules that have any."""
    out: dict[str, dict[str, Any]] = {}

    def plain(value: Any) -> bool:
        if isinstance(value, bool):
            return False
        if isinstance(value, int):
            return True
        return isinstance(value, tuple) and all(
            isinstance(v, int) and not isinstance(v, bool) for v in value)

    def walk(mod: Any, prefix: str, depth: int) -> None:
        if depth > _MAX_DEPTH or not isinstance(mod, ForeignObject):
            return
        state = mod.topo_dict()
        found = {k: state[k] for k in names if k in state and plain(state[k])}
        if found:
            out[prefix.rstrip(".")] = found
        for name, child in _items(state.get("_modules")):
            walk(child, f"{prefix}{name}.", depth + 1)

    walk(module, "", 0)
    return out


def is_module(obj: Any) -> bool:
    """True for a stand-in of a pickled ``nn.Module`` (its state has ``_modules``)."""
    return isinstance(obj, ForeignObject) and (
        "_modules" in obj.topo_dict() or "_parameters" in obj.topo_dict())


# ------------------------------------------------------------------------- containers
def _load_torch_zip(path: Path) -> Any:
    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        raise UnreadableFileError(
            f"{path}: damaged zip archive (truncated or corrupt?): {_first_line(exc)}") from None
    with zf:
        names = zf.namelist()
        pkl = next((n for n in names if n.endswith("data.pkl")), None)
        if pkl is None:
            raise UnreadableFileError(f"{path}: a zip archive without data.pkl (not torch.save)")
        root = pkl[: -len("data.pkl")]
        order = b"little"
        if root + "byteorder" in names:
            order = read_zip_member(zf, root + "byteorder", path, "PyTorch file").strip()
        data = read_zip_member(zf, pkl, path, "PyTorch file")
        storages: dict[str, np.ndarray] = {}

        def load_storage(stype: _StorageType, key: str, numel: int) -> np.ndarray:
            if key not in storages:
                member = f"{root}data/{key}"
                if member not in names:
                    raise UnreadableFileError(f"{path}: tensor storage {member!r} is missing")
                raw = read_zip_member(zf, member, path, "PyTorch file")
                storages[key] = stype.decode(raw, numel, path, big=order == b"big")
            return storages[key]

        unpickler = _Unpickler(io.BytesIO(data), path)
        unpickler.storage_loader = load_storage
        return unpickler.load()


def _load_stream(path: Path) -> tuple[Any, str]:
    size = path.stat().st_size
    with open(path, "rb") as fh:
        first = _Unpickler(fh, path).load()
        if not (isinstance(first, int) and first == _LEGACY_MAGIC):
            return first, "pickle"
        _Unpickler(fh, path).load()  # protocol version
        _Unpickler(fh, path).load()  # system info
        start = fh.tell()
        pending: dict[str, tuple[_StorageType, int]] = {}

        def note_storage(stype: _StorageType, key: str, numel: int) -> None:
            pending[key] = (stype, numel)
            return None

        scan = _Unpickler(fh, path)
        scan.storage_loader = note_storage
        scan.load()
        keys = _Unpickler(fh, path).load()
        if not isinstance(keys, list):
            raise UnreadableFileError(f"{path}: damaged legacy PyTorch file (storage keys)")
        storages: dict[str, np.ndarray] = {}
        for key in keys:
            if key not in pending:
                raise UnreadableFileError(f"{path}: damaged legacy PyTorch file (storage {key})")
            stype, numel = pending[key]
            (count,) = struct.unpack("<q", _read_exact(fh, 8, path))
            nbytes = count * stype.itemsize
            if count < 0 or nbytes > size - fh.tell() or nbytes > MAX_DECOMPRESSED_BYTES:
                raise UnreadableFileError(
                    f"{path}: truncated legacy PyTorch file (storage {key} declares "
                    f"{human_bytes(max(nbytes, 0))})")
            storages[key] = stype.decode(_read_exact(fh, nbytes, path), count, path)
        fh.seek(start)
        main = _Unpickler(fh, path)
        main.storage_loader = lambda stype, key, numel: storages[key]
        return main.load(), "torch-legacy"


def _read_exact(fh: Any, n: int, path: Path) -> bytes:
    data = fh.read(n)
    if len(data) != n:
        raise UnreadableFileError(f"{path}: truncated file (ends inside a tensor's data)")
    return data


# --------------------------------------------------------------------------- unpickler
class _Unpickler(pickle.Unpickler):
    def __init__(self, file: Any, path: Path) -> None:
        super().__init__(file, encoding="latin1")
        self.path = path
        self.storage_loader = None

    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (protocol 2 pickles): the same translation pickle itself makes
        if (module, name) in _compat_pickle.NAME_MAPPING:
            module, name = _compat_pickle.NAME_MAPPING[(module, name)]
        elif module in _compat_pickle.IMPORT_MAPPING:
            module = _compat_pickle.IMPORT_MAPPING[module]
        safe = _SAFE_GLOBALS.get((module, name))
        if safe is not None:
            return safe
        if module == "torch" and name.endswith("Storage"):
            return _StorageType.named(name)
        if module == "torch" and name in _TORCH_MARKERS:
            return _TORCH_MARKERS[name]
        return _foreign_class(module, name)

    def persistent_load(self, pid: Any) -> Any:
        if not (isinstance(pid, tuple) and pid and self.storage_loader is not None):
            raise pickle.UnpicklingError("a persistent reference outside a PyTorch file")
        kind = pid[0].decode("ascii") if isinstance(pid[0], bytes) else pid[0]
        if kind == "module":
            return pid[1]
        if kind != "storage" or len(pid) < 5:
            raise pickle.UnpicklingError(f"unknown persistent reference {kind!r}")
        stype, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(stype, _StorageType) or not isinstance(numel, int):
            raise pickle.UnpicklingError("a storage reference of unknown type")
        base = self.storage_loader(stype, key, numel)
        view = pid[5] if len(pid) > 5 else None
        if base is not None and view is not None:
            _, offset, view_size = view
            base = base[offset: offset + view_size]
        return _StorageRef(base, stype)


class _StorageType:
    _DTYPES = {
        "FloatStorage": "<f4", "DoubleStorage": "<f8", "HalfStorage": "<f2",
        "BFloat16Storage": "bf16", "LongStorage": "<i8", "IntStorage": "<i4",
        "ShortStorage": "<i2", "CharStorage": "i1", "ByteStorage": "u1", "BoolStorage": "?",
        "UntypedStorage": "u1",
    }
    _cache: dict[str, _StorageType] = {}

    def __init__(self, name: str) -> None:
        if name not in self._DTYPES:
            raise UnreadableFileError(f"tensors of storage type torch.{name} are not read")
        self.name = name
        code = self._DTYPES[name]
        self.bf16 = code == "bf16"
        self.dtype = np.dtype("<u2" if self.bf16 else code)
        self.itemsize = self.dtype.itemsize

    @classmethod
    def named(cls, name: str) -> _StorageType:
        if name not in cls._cache:
            cls._cache[name] = cls(name)
        return cls._cache[name]

    def decode(self, raw: bytes, numel: int, path: Path, big: bool = False) -> np.ndarray:
        if len(raw) != numel * self.itemsize:
            raise UnreadableFileError(
                f"{path}: a tensor storage holds {len(raw)} bytes, its record says "
                f"{numel} x {self.itemsize}")
        dtype = self.dtype.newbyteorder(">") if big else self.dtype
        arr = np.frombuffer(raw, dtype=dtype).astype(self.dtype.newbyteorder("="))
        if self.bf16:
            arr = (arr.astype(np.uint32) << 16).view(np.float32)
        return arr

    def __call__(self, *args: Any) -> Any:  # a storage class called by the pickle: refuse
        raise pickle.UnpicklingError(f"torch.{self.name} built outside a storage reference")


class _StorageRef:
    def __init__(self, base: np.ndarray | None, stype: _StorageType) -> None:
        self.base = base
        self.stype = stype


class _LazyTensor:
    """A tensor record; becomes a numpy array when the storages are read (_finalize)."""

    def __init__(self, storage: Any, offset: Any, size: Any, stride: Any) -> None:
        if not isinstance(storage, _StorageRef):
            raise pickle.UnpicklingError("a tensor without a storage")
        self.storage, self.offset = storage, int(offset)
        self.size = tuple(int(s) for s in size)
        self.stride = tuple(int(s) for s in stride)

    def array(self, path: Path) -> np.ndarray:
        base = self.storage.base
        if base is None:
            raise UnreadableFileError(f"{path}: a tensor's storage was not read")
        if len(self.size) != len(self.stride) or self.offset < 0 or any(
                s < 0 for s in self.size) or any(s < 0 for s in self.stride):
            raise UnreadableFileError(f"{path}: a tensor record with an invalid layout")
        if 0 in self.size:
            return np.zeros(self.size, dtype=base.dtype)
        last = self.offset + sum((n - 1) * s for n, s in zip(self.size, self.stride))
        if last >= base.size:
            raise UnreadableFileError(
                f"{path}: a tensor of shape {self.size} reaches past its storage "
                f"({base.size} elements)")
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size,
            strides=tuple(s * base.itemsize for s in self.stride), writeable=False)
        return np.array(view)


class _LazySparse:
    def __init__(self, layout: str, data: Any) -> None:
        self.layout, self.data = layout, data


class _NDArrayBuilder:
    def __init__(self, shape: Any = (0,), dtype: Any = None) -> None:
        self.array: np.ndarray | None = None

    def __setstate__(self, state: Any) -> None:
        _, shape, dtype, fortran, raw = state
        dtype = dtype.dtype() if isinstance(dtype, _DTypeBuilder) else np.dtype(dtype)
        if dtype.hasobject or not isinstance(raw, (bytes, bytearray)):
            raise UnreadableFileError("a numpy array of Python objects (not read: it would "
                                      "need unpickling arbitrary objects)")
        shape = tuple(int(s) for s in shape)
        count = int(np.prod(shape)) if shape else 1
        if len(raw) != count * dtype.itemsize:
            raise UnreadableFileError(
                f"a numpy array of shape {shape} with {len(raw)} bytes of data")
        arr = np.frombuffer(bytes(raw), dtype=dtype).reshape(shape, order="F" if fortran
                                                              else "C")
        self.array = np.array(arr)


class _DTypeBuilder:
    def __init__(self, name: Any, align: Any = False, copy: Any = True) -> None:
        self.name = str(name)
        self.order = "="
        if self.name.startswith("O") or self.name == "object":
            raise UnreadableFileError("a numpy array of Python objects is not read")
        if self.name.startswith("V"):
            raise UnreadableFileError("numpy structured dtypes are not read")

    def __setstate__(self, state: Any) -> None:
        if isinstance(state, tuple) and len(state) > 1 and state[1] in ("<", ">", "|", "="):
            self.order = state[1]
        if isinstance(state, tuple) and len(state) > 3 and state[3] is not None:
            raise UnreadableFileError("numpy structured dtypes are not read")

    def dtype(self) -> np.dtype:
        dt = np.dtype(self.name)
        return dt.newbyteorder(self.order) if self.order in "<>" else dt


def _np_reconstruct(cls: Any, shape: Any, dtype: Any) -> _NDArrayBuilder:
    if cls is not _NDARRAY:
        raise UnreadableFileError("a numpy array subclass is not read")
    return _NDArrayBuilder()


def _np_frombuffer(buf: Any, dtype: Any, shape: Any, order: Any) -> np.ndarray:
    """numpy's protocol-5 array record: the raw buffer (in-band bytes), dtype, shape and
    memory order ``"C"`` or ``"F"``."""
    dt = dtype.dtype() if isinstance(dtype, _DTypeBuilder) else np.dtype(dtype)
    if dt.hasobject or not isinstance(buf, (bytes, bytearray)) or order not in ("C", "F"):
        raise UnreadableFileError("a numpy array record that is not plain data")
    shape = tuple(int(s) for s in shape)
    count = int(np.prod(shape)) if shape else 1
    if len(buf) != count * dt.itemsize:
        raise UnreadableFileError(f"a numpy array of shape {shape} with {len(buf)} bytes of "
                                  "data")
    return np.array(np.frombuffer(bytes(buf), dtype=dt).reshape(shape, order=order))


def _np_scalar(dtype: Any, data: Any = None) -> Any:
    dt = dtype.dtype() if isinstance(dtype, _DTypeBuilder) else np.dtype(dtype)
    if dt.hasobject or not isinstance(data, (bytes, bytearray)) or len(data) != dt.itemsize:
        raise UnreadableFileError("a numpy scalar that is not plain data")
    return np.frombuffer(bytes(data), dtype=dt)[0]


def _codecs_encode(text: Any, encoding: str = "utf-8") -> bytes:
    if not isinstance(text, str) or encoding.lower().replace("-", "") not in ("latin1",
                                                                            "utf8"):
        raise UnreadableFileError("a pickle encoding bytes in an unusual way")
    return text.encode(encoding)


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *rest: Any) -> Any:
    return _LazyTensor(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *rest: Any) -> Any:
    return data


def _rebuild_from_type(func: Any, new_type: Any, args: Any, state: Any) -> Any:
    if func not in (_rebuild_tensor, _rebuild_parameter):
        raise _RefusedCall(getattr(func, "topo_class", repr(func)))
    return func(*args)


def _rebuild_sparse(layout: Any, data: Any) -> Any:
    if layout not in ("sparse_coo", "sparse_csr") or not isinstance(data, tuple):
        raise UnreadableFileError(f"sparse tensors of layout {layout!r} are not read")
    return _LazySparse(layout, data)


def _get_layout(name: Any) -> str:
    return str(name).removeprefix("torch.")


def _rebuild_unsupported(*args: Any) -> Any:
    raise UnreadableFileError("quantized or meta tensors are not read")


def _reconstructor(cls: Any, base: Any, state: Any = None) -> Any:
    if isinstance(cls, type) and issubclass(cls, ForeignObject):
        obj = cls()
        obj.topo_state = state
        return obj
    raise pickle.UnpicklingError("copyreg._reconstructor of a built-in type")


def _set(items: Any = ()) -> set:
    return set(items)


def _frozenset(items: Any = ()) -> frozenset:
    return frozenset(items)


class _NDArrayMarker:
    pass


_NDARRAY = _NDArrayMarker
_SAFE_GLOBALS: dict[tuple[str, str], Any] = {
    ("collections", "OrderedDict"): OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("torch._tensor", "_rebuild_from_type_v2"): _rebuild_from_type,
    ("torch._utils", "_rebuild_sparse_tensor"): _rebuild_sparse,
    ("torch.serialization", "_get_layout"): _get_layout,
    ("torch._utils", "_rebuild_qtensor"): _rebuild_unsupported,
    ("torch._utils", "_rebuild_meta_tensor_no_storage"): _rebuild_unsupported,
    ("torch._utils", "_rebuild_wrapper_subclass"): _rebuild_unsupported,
    ("torch", "Size"): tuple,
    ("numpy", "ndarray"): _NDARRAY,
    ("numpy", "dtype"): _DTypeBuilder,
    ("numpy.core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _np_reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _np_frombuffer,
    ("numpy.core.multiarray", "scalar"): _np_scalar,
    ("numpy._core.multiarray", "scalar"): _np_scalar,
    ("_codecs", "encode"): _codecs_encode,
    ("builtins", "set"): _set,
    ("builtins", "frozenset"): _frozenset,
    ("copyreg", "_reconstructor"): _reconstructor,
}
_TORCH_MARKERS = {name: name for name in (
    "sparse_coo", "sparse_csr", "strided", "float32", "float64", "float16", "bfloat16",
    "int64", "int32", "int16", "int8", "uint8", "bool", "complex64", "complex128")}

_classes: dict[tuple[str, str], type] = {}


def _foreign_class(module: str, name: str) -> type:
    key = (module, name)
    if key not in _classes:
        _classes[key] = type(f"Foreign_{name}"[:100], (ForeignObject,),
                             {"topo_module": module, "topo_name": name})
    return _classes[key]


def _is_system(module: str) -> bool:
    top = module.split(".")[0]
    return top in _SYSTEM_MODULES or any(
        module == q or module.startswith(q + ".") for q in _SYSTEM_QUALIFIED)


# ----------------------------------------------------------------------------- finalize
def _finalize(obj: Any, path: Path) -> Any:
    """Replace tensor records and array builders by numpy arrays, everywhere in ``obj``."""
    memo: dict[int, Any] = {}

    def conv(x: Any, depth: int) -> Any:
        if depth > _MAX_DEPTH:
            raise UnreadableFileError(f"{path}: the pickle nests objects too deeply")
        if isinstance(x, (str, bytes, int, float, bool, type(None), np.ndarray, np.generic)):
            return x
        key = id(x)
        if key in memo:
            return memo[key]
        if isinstance(x, _LazyTensor):
            memo[key] = x.array(path)
        elif isinstance(x, _NDArrayBuilder):
            if x.array is None:
                raise UnreadableFileError(f"{path}: a numpy array record without data")
            memo[key] = x.array
        elif isinstance(x, _LazySparse):
            memo[key] = _sparse_array(x, path, lambda v: conv(v, depth + 1))
        elif isinstance(x, dict):
            memo[key] = x
            for k in list(x):
                x[k] = conv(x[k], depth + 1)
        elif isinstance(x, list):
            memo[key] = x
            x[:] = [conv(v, depth + 1) for v in x]
        elif isinstance(x, tuple):
            memo[key] = tuple(conv(v, depth + 1) for v in x)
        elif isinstance(x, ForeignObject):
            memo[key] = x
            x.topo_state = conv(x.topo_state, depth + 1)
            x.topo_args = conv(x.topo_args, depth + 1)
            x.topo_items = [conv(v, depth + 1) for v in x.topo_items]
        else:
            memo[key] = x
        return memo[key]

    return conv(obj, 0)


def _sparse_array(x: _LazySparse, path: Path, conv: Any) -> Any:
    import scipy.sparse as sp

    parts = [conv(v) for v in x.data]
    try:
        if x.layout == "sparse_coo":
            indices, values, size = parts[0], parts[1], tuple(int(n) for n in parts[2])
            if len(size) != 2:
                if int(np.prod(size)) * values.itemsize > MAX_DECOMPRESSED_BYTES:
                    raise ValueError(f"declared shape {size} too large")
                dense = np.zeros(size, dtype=values.dtype)
                np.add.at(dense, tuple(np.asarray(indices)), values)
                return dense
            m = sp.coo_matrix((values, (indices[0], indices[1])), shape=size).tocsr()
            m.sum_duplicates()
            return m
        crow, col, values, size = parts[0], parts[1], parts[2], tuple(parts[3])
        return sp.csr_matrix((values, col, crow), shape=size)
    except (ValueError, TypeError, IndexError) as exc:
        raise UnreadableFileError(f"{path}: a damaged sparse tensor ({exc})") from None


def _items(mapping: Any) -> list[tuple[str, Any]]:
    if isinstance(mapping, dict):
        return [(str(k), v) for k, v in mapping.items()]
    if isinstance(mapping, ForeignObject):
        return [(str(k), v) for k, v in mapping.topo_items if isinstance(k, str)]
    return []


def _is_array(x: Any) -> bool:
    import scipy.sparse as sp

    return isinstance(x, np.ndarray) or sp.issparse(x)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
