"""Shared output helpers of the command line: JSON, tables, CSV and figure files."""

from __future__ import annotations

import json
import math
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from topo.errors import OutputError, TopoError

FIGURE_SUFFIXES = (".png", ".svg", ".pdf")


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from numpy/pandas values; NaN and infinity become ``null``."""
    import numpy as np

    if isinstance(value, dict):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [to_jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Path):
        return str(value)
    return value


def print_json(obj: Any) -> None:
    """Print ``obj`` as JSON on stdout."""
    json.dump(to_jsonable(obj), sys.stdout, indent=2, allow_nan=False)
    sys.stdout.write("\n")


def records(df: Any) -> list[dict[str, Any]]:
    """A DataFrame as a list of JSON-ready row objects."""
    return to_jsonable(df.to_dict(orient="records"))


def format_table(df: Any, digits: int = 4) -> str:
    """A DataFrame as an aligned text table (no index), floats to ``digits`` significant."""
    return df.to_string(index=False, float_format=lambda x: f"{x:.{digits}g}")


def check_output_path(path: str | Path) -> Path:
    """Fail early, before any work, when ``path`` cannot be written as a file.

    The path must not be a folder, and its nearest existing ancestor must be a folder this
    process may write in (missing folders below it are created when writing).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{path}: cannot write a file here, it is a folder")
    ancestor = path.absolute().parent
    while not ancestor.exists():
        ancestor = ancestor.parent
    if not ancestor.is_dir():
        raise OutputError(f"{path}: cannot write, {ancestor} is a file, not a folder")
    # Try it: permission bits do not bind root, and a read-only or virtual file system
    # (/proc) only shows itself when something is created there.
    try:
        fd, probe = tempfile.mkstemp(prefix=".topo-write-check.", dir=ancestor)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write in {ancestor} ({exc.strerror or exc})") from None
    return path


def check_figure_path(path: str | Path) -> Path:
    """Fail early, before any work, when a figure path has an unsupported suffix or cannot
    be written."""
    path = Path(path)
    if path.suffix.lower() not in FIGURE_SUFFIXES:
        raise TopoError(
            f"{path}: figure files must end in {', '.join(FIGURE_SUFFIXES)}")
    return check_output_path(path)


def check_outputs(*, files: tuple = (), figures: tuple = ()) -> None:
    """Check every given output path (``None`` entries are skipped) before any work."""
    for path in files:
        if path:
            check_output_path(path)
    for path in figures:
        if path:
            check_figure_path(path)


def save_figure(fig: Any, path: str | Path) -> Path:
    """Save a matplotlib figure atomically, the format chosen by the file's suffix."""
    from topo.io.atomic import atomic_path

    path = check_figure_path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lower().lstrip("."), bbox_inches="tight", dpi=150)
    import matplotlib.pyplot as plt

    plt.close(fig)
    return path


def write_csv(df: Any, path: str | Path) -> Path:
    """Write a DataFrame as CSV atomically."""
    from topo.io.atomic import atomic_write_text

    return atomic_write_text(path, df.to_csv(index=False))
