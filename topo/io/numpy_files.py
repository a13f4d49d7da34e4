"""numpy dumps: ``.npz`` archives of several arrays, and folders of per-layer ``.npy`` files.

Always ``allow_pickle=False``. Every array's header (shape, dtype) is checked against the
bytes the file holds before it is read, so a header declaring a huge array is refused without
allocating it.

numpy has no orientation convention: Keras users save kernels ``(in, out)``, PyTorch users
``(out, in)``. The orientation is inferred from the chain (names in natural order, shapes,
biases) and stated in the graph's metadata; where both orientations fit, the file is refused.

A folder of per-layer weights (``layer0.npy``, ``layer1.npy``, ...) may come with a parallel
``masks/`` folder of the same file names (the lottery-ticket layout: ``weights/`` and
``masks/`` side by side); each mask gives its layer's connections. Pass the folder holding
``weights/`` and ``masks/``, or the ``weights/`` folder itself.
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from topo.errors import UnreadableFileError
from topo.io.limits import MAX_DECOMPRESSED_BYTES, ZIP_ERRORS, human_bytes
from topo.io.pipeline import Extraction
from topo.io.run import natural_key
from topo.io.state_dict import extract_state_dict

__all__ = ["read_npz", "read_npy_folder", "is_npy_folder"]

_SCIPY_SPARSE_MEMBERS = {"data.npy", "indices.npy", "indptr.npy", "format.npy", "shape.npy"}


def is_npy_folder(path: Path) -> bool:
    """True for a folder of ``.npy`` files, or one holding a ``weights/`` folder of them."""
    return path.is_dir() and (any(path.glob("*.npy")) or any((path / "weights").glob("*.npy")))


def read_npz(path: Path) -> Extraction:
    """Extract the layers of an ``.npz`` archive (arrays in the order they were saved).

    Raises
    ------
    UnreadableFileError
        Damaged archive, an array whose header disagrees with its data, object arrays, or a
        scipy.sparse matrix file (an NNSTD layer file: read its folder instead).
    """
    try:
        zf = zipfile.ZipFile(path)
    except ZIP_ERRORS as exc:
        raise UnreadableFileError(
            f"{path}: damaged .npz archive (truncated or corrupt?): {exc}") from None
    arrays: dict[str, Any] = {}
    with zf:
        members = [i for i in zf.infolist() if i.filename.endswith(".npy")]
        if {i.filename for i in members} == _SCIPY_SPARSE_MEMBERS:
            raise UnreadableFileError(
                f"{path}: a lone scipy.sparse .npz matrix (NNSTD layer file); pass the folder "
                "holding weight_l0.npz ... instead")
        for info in members:
            name = info.filename[: -len(".npy")]
            try:
                with zf.open(info) as fh:
                    arrays[name] = _read_npy(fh, info.file_size, path, name)
            except ZIP_ERRORS as exc:
                raise UnreadableFileError(
                    f"{path}: damaged array {name!r} in the .npz archive: "
                    f"{_first_line(exc)}") from None
    if not arrays:
        raise UnreadableFileError(f"{path}: a zip archive without .npy arrays")
    return extract_state_dict(arrays, path, "numpy-npz", order="module", orientation=None)


def read_npy_folder(path: Path) -> Extraction:
    """Extract the layers of a folder of per-layer ``.npy`` files (natural name order), with
    masks from a parallel ``masks/`` folder when there is one."""
    weights_dir = path / "weights" if (path / "weights").is_dir() else path
    masks_dir = None
    for candidate in (path / "masks", weights_dir.parent / "masks"):
        if weights_dir.name == "weights" and candidate.is_dir() and candidate != weights_dir:
            masks_dir = candidate
            break
    files = sorted(weights_dir.glob("*.npy"), key=natural_key)
    arrays = {f.stem: _load_npy(f) for f in files}
    masks = None
    notes = []
    if masks_dir is not None:
        masks = {}
        for f in sorted(masks_dir.glob("*.npy"), key=natural_key):
            if f.stem not in arrays:
                raise UnreadableFileError(
                    f"{f}: a mask without a weight file of the same name in {weights_dir}")
            masks[f.stem] = _load_npy(f)
        notes.append(f"masks from {masks_dir}")
    ex = extract_state_dict(arrays, path, "numpy-npy", order="module", orientation=None,
                            masks=None)
    if masks:
        by_name = {c.name: c for c in ex.layers}
        for name, mask in masks.items():
            cand = by_name.get(name)
            if cand is None or mask.shape != cand.shape:
                raise UnreadableFileError(
                    f"{masks_dir / (name + '.npy')}: mask of shape {mask.shape} does not "
                    f"match the weight {name!r}"
                    f"{'' if cand is None else f' of shape {cand.shape}'}")
            cand.mask = mask
    ex.notes.extend(notes)
    return ex


def _load_npy(path: Path) -> np.ndarray:
    size = path.stat().st_size
    try:
        with open(path, "rb") as fh:
            return _read_npy(fh, size, path, path.stem)
    except (OSError, ValueError, EOFError) as exc:
        raise UnreadableFileError(f"{path}: damaged .npy file: {_first_line(exc)}") from None


def _read_npy(fh: Any, size: int, path: Path, name: str) -> np.ndarray:
    """Read one ``.npy`` stream after checking its header against the ``size`` bytes it has."""
    fmt = np.lib.format
    version = fmt.read_magic(fh)
    if version == (1, 0):
        shape, fortran, dtype = fmt.read_array_header_1_0(fh)
    elif version in ((2, 0), (3, 0)):
        shape, fortran, dtype = fmt.read_array_header_2_0(fh)
    else:  # pragma: no cover - read_magic accepts only these
        raise ValueError(f"npy format version {version}")
    if dtype.hasobject:
        raise UnreadableFileError(
            f"{path}: array {name!r} holds Python objects (it needs pickle, which topo never "
            "runs)")
    nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize if shape else dtype.itemsize
    header_len = fh.tell()
    if nbytes > size - header_len or nbytes > MAX_DECOMPRESSED_BYTES:
        raise UnreadableFileError(
            f"{path}: array {name!r} declares shape {tuple(shape)} ({human_bytes(nbytes)}) but "
            f"the file holds {human_bytes(max(size - header_len, 0))} for it (truncated or "
            "corrupt); not read")
    data = fh.read(nbytes)
    if len(data) != nbytes:
        raise UnreadableFileError(f"{path}: array {name!r} is truncated")
    arr = np.frombuffer(data, dtype=dtype)
    order = "F" if fortran else "C"
    return np.array(arr.reshape(shape, order=order))


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:200] if text else type(exc).__name__
