"""Writers of result tables: JSON values, CSV files and aligned text tables.

Every command and script of topo writes its tables through these functions, so a value is
written the same way everywhere: NaN and infinity become JSON ``null`` (and empty CSV cells),
numpy and pandas scalars become plain numbers, a tuple of feature indices becomes ``"i j"`` in
a CSV cell, and every file is written atomically.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topo.io.atomic import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["to_jsonable", "json_text", "write_json", "records", "format_table", "csv_text",
           "write_csv", "row_records", "format_rows"]


def to_jsonable(value: Any) -> Any:
    """Plain JSON types from numpy/pandas values, recursively; NaN and infinity become ``None``.

    Examples
    --------
    >>> import numpy as np
    >>> to_jsonable({"a": np.float32(0.5), "b": [np.int64(2), float("nan")]})
    {'a': 0.5, 'b': [2, None]}
    """
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


def json_text(value: Any) -> str:
    """``value`` as indented JSON text (2 spaces) ending in a newline, via :func:`to_jsonable`."""
    return json.dumps(to_jsonable(value), indent=2, allow_nan=False) + "\n"


def write_json(value: Any, path: str | Path) -> Path:
    """Write ``value`` as JSON (:func:`json_text`) to ``path`` atomically."""
    return atomic_write_text(path, json_text(value))


def records(df: pandas.DataFrame) -> list[dict[str, Any]]:
    """A DataFrame as a list of JSON-ready row objects."""
    return to_jsonable(df.to_dict(orient="records"))


def _columns(rows: list[dict[str, Any]]) -> dict[str, list[Any]]:
    """The rows' columns (keys of the first row, in order), numpy scalars as Python values and
    the ints of a column that also holds floats as floats (as a DataFrame would hold them)."""
    import numpy as np

    columns: dict[str, list[Any]] = {}
    for key in (rows[0] if rows else {}):
        values = [r[key].item() if isinstance(r[key], np.generic) else r[key] for r in rows]
        numbers = [v for v in values if isinstance(v, (int, float)) and not isinstance(v, bool)]
        if any(isinstance(v, float) for v in numbers) and len(numbers) == len(values):
            values = [float(v) for v in values]
        columns[key] = values
    return columns


def row_records(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of plain dicts as JSON-ready row objects, the values :func:`records` gives for
    the DataFrame of the same rows (ints beside floats in a column become floats; NaN
    becomes ``None``)."""
    columns = _columns(rows)
    return [to_jsonable({k: v[i] for k, v in columns.items()}) for i in range(len(rows))]


def format_rows(rows: list[dict[str, Any]], digits: int = 4) -> str:
    """Rows of plain dicts as an aligned text table without pandas: a header line, then one
    line per row; every column right-aligned to its widest cell, two spaces between columns,
    floats to ``digits`` significant digits (``NaN`` for not-a-number)."""
    import math as _math

    def cell(v: Any) -> str:
        if isinstance(v, float):
            return "NaN" if _math.isnan(v) else f"{v:.{digits}g}"
        return str(v)

    columns = _columns(rows)
    cells = [[str(k)] + [cell(v) for v in values] for k, values in columns.items()]
    widths = [max(len(c) for c in col) for col in cells]
    return "\n".join("  ".join(col[i].rjust(w) for col, w in zip(cells, widths))
                     for i in range(len(rows) + 1))


def format_table(df: pandas.DataFrame, digits: int = 4) -> str:
    """A DataFrame as an aligned text table (no index), floats to ``digits`` significant."""
    return df.to_string(index=False, float_format=lambda x: f"{x:.{digits}g}")


def csv_text(df: pandas.DataFrame) -> str:
    """A DataFrame as CSV text without its index; tuple cells (feature sets) as ``"i j"``."""
    out = df
    tuple_columns = [c for c in df.columns
                     if df[c].dtype == object and df[c].map(lambda v: isinstance(v, tuple)).any()]
    if tuple_columns:
        out = df.assign(**{c: [" ".join(map(str, v)) if isinstance(v, tuple) else v
                               for v in df[c]] for c in tuple_columns})
    return out.to_csv(index=False)


def write_csv(df: pandas.DataFrame, path: str | Path) -> Path:
    """Write a DataFrame as CSV (:func:`csv_text`) to ``path`` atomically."""
    return atomic_write_text(path, csv_text(df))
