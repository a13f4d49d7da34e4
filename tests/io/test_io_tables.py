"""topo.io.tables: one way to write a value, whatever writes it."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from topo.io.tables import (
    csv_text,
    format_table,
    json_text,
    records,
    to_jsonable,
    write_csv,
    write_json,
)


def test_to_jsonable_turns_numpy_and_paths_into_plain_values():
    value = {1: np.float32(0.5), "a": (np.int64(3), np.array([1.5, np.inf])),
             "p": Path("x/y"), "n": None, "nan": np.nan}
    assert to_jsonable(value) == {"1": 0.5, "a": [3, [1.5, None]], "p": "x/y", "n": None,
                                  "nan": None}
    assert type(to_jsonable(np.int64(3))) is int


def test_json_text_is_indented_strict_json_with_a_final_newline():
    text = json_text({"b": [1.0, float("nan")]})
    assert text == '{\n  "b": [\n    1.0,\n    null\n  ]\n}\n'
    assert json.loads(text) == {"b": [1.0, None]}


def test_records_and_format_table():
    frame = pd.DataFrame({"name": ["a", "b"], "x": [0.123456, np.nan], "n": [1, 2]})
    assert records(frame) == [{"name": "a", "x": 0.123456, "n": 1},
                              {"name": "b", "x": None, "n": 2}]
    assert format_table(frame, digits=2).splitlines() == [
        "name    x  n", "   a 0.12  1", "   b  NaN  2"]


def test_csv_writes_feature_tuples_as_space_separated_indices():
    frame = pd.DataFrame({"features": pd.Series([(0, 5), (1, 2, 3)], dtype=object),
                          "strength": [0.5, 0.25], "label": ["x", "y"]})
    assert csv_text(frame) == "features,strength,label\n0 5,0.5,x\n1 2 3,0.25,y\n"
    assert frame["features"].tolist() == [(0, 5), (1, 2, 3)]  # the table is not changed


def test_writers_write_files_atomically(tmp_path):
    csv = write_csv(pd.DataFrame({"a": [1]}), tmp_path / "t.csv")
    assert csv.read_text() == "a\n1\n"
    out = write_json({"x": np.float64(2.0)}, tmp_path / "t.json")
    assert json.loads(out.read_text()) == {"x": 2.0}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.csv", "t.json"]


def test_json_refuses_what_json_cannot_hold():
    with pytest.raises(TypeError):
        json_text({"x": object()})
