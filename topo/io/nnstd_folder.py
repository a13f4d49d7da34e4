"""Reader for the NNSTD reference layout: a folder of ``weight_l0.npz ... weight_lK.npz``.

Each file is a ``scipy.sparse.save_npz`` matrix of shape ``(n_in + 1, n_out)`` (rows are
inputs, columns are output units: the transpose of PyTorch's orientation). The last row is
the bias and is not a connection; a connection exists where the stored value is non-zero.
This is the input format of the implementation published with Liu et al., "Topological
Insights into Sparse Neural Networks" (ECML-PKDD 2020).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from topo.errors import GraphStructureError, UnreadableFileError
from topo.graph import LayeredGraph

__all__ = ["NNSTD_FORMAT", "is_nnstd_folder", "read_nnstd_folder"]

NNSTD_FORMAT = "nnstd-npz"
_LAYER_FILE = re.compile(r"weight_l(\d+)\.npz")


def is_nnstd_folder(path: Path) -> bool:
    """True when ``path`` is a folder holding ``weight_l0.npz``."""
    return path.is_dir() and (path / "weight_l0.npz").is_file()


def read_nnstd_folder(path: Path) -> LayeredGraph:
    """Read every ``weight_l{k}.npz`` of ``path`` (k = 0, 1, ... without gaps)."""
    found = {int(m.group(1)): p for p in path.iterdir()
             if (m := _LAYER_FILE.fullmatch(p.name))}
    count = len(found)
    if sorted(found) != list(range(count)):
        missing = sorted(set(range(max(found) + 1)) - set(found))
        raise UnreadableFileError(
            f"{path}: layer files are not numbered 0..{max(found)} "
            f"(missing weight_l{missing[0]}.npz)")
    layers, biases = [], []
    for k in range(count):
        file = found[k]
        try:
            m = sp.load_npz(file)
        except (OSError, ValueError, KeyError, zipfile.BadZipFile, EOFError) as exc:
            raise UnreadableFileError(
                f"{file}: not a readable scipy sparse .npz (truncated or corrupt?): "
                f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}") from None
        if m.ndim != 2 or m.shape[0] < 2:
            raise GraphStructureError(
                f"{file}: expected shape (n_in + 1, n_out) with a bias row, got {m.shape}")
        m = sp.csr_matrix(m, dtype=np.float64)
        bias = m[-1].toarray().ravel()
        w = m[:-1].T.tocsr()
        w.eliminate_zeros()  # in this layout a connection is a non-zero value
        w.sort_indices()
        layers.append(w)
        biases.append(bias)
    try:
        return LayeredGraph(layers, biases=biases, names=[f"l{k}" for k in range(count)],
                            metadata={"format": NNSTD_FORMAT, "source": str(path)})
    except GraphStructureError as exc:
        raise GraphStructureError(
            f"{path}: {exc} (each weight_l{{k}}.npz must have shape (n_in + 1, n_out), its "
            "last row being the bias)") from None
