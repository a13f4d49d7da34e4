"""topo.compare: NNSTD and overlap side by side, one vocabulary for API, CLI and plots."""

from __future__ import annotations

import json

import numpy as np
import pytest

import topo
from topo.cli import main
from topo.comparison import COMPARISON_COLUMNS, Comparison, compare
from topo.errors import NotAGraphError
from topo.graph import LayeredGraph
from topo.io.tables import to_jsonable

# A: hidden h0 <- {x0, x1}, h1 <- {x2}; output <- {h0, h1}. B: the same with h0, h1 swapped.
A = LayeredGraph([np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), np.ones((1, 2))],
                 names=["fc1", "fc2"])
B = LayeredGraph([np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), np.ones((1, 2))],
                 names=["fc1", "fc2"])


def test_a_relabelled_copy_by_hand():
    comparison = compare(A, B)
    assert isinstance(comparison, Comparison) and not comparison.reference
    table = comparison.to_frame()
    assert list(table.columns) == list(COMPARISON_COLUMNS)
    assert table["layer"].tolist() == ["0", "1", "all"]
    assert table["name"].tolist() == ["fc1", "fc2", "all"]
    assert table["nnstd"].tolist() == [0.0, 0.0, 0.0]
    # in place: layer 0 shares nothing, the output layer everything; pooled 2 of 8 distinct
    assert table["jaccard"].tolist() == [0.0, 1.0, 0.25]
    assert table["jaccard_aligned"].tolist() == [1.0, 1.0, 1.0]
    # chance: 3 of 6 positions each, E[|A ∩ B| / |A ∪ B|] over the hypergeometric law
    # x = 0..3 with P = (1, 9, 9, 1) / 20 and J = x / (6 - x): 0, 1/5, 1/2, 1
    assert table["jaccard_chance"].iloc[0] == pytest.approx((9 / 5 + 9 / 2 + 1) / 20)
    assert table["density_a"].tolist() == [3 / 6, 2 / 2, 5 / 8]  # 3 + 2 of 6 + 2


def test_vocabulary_is_the_one_of_the_cli_table_csv_and_json(tmp_path, capsys):
    a = topo.save_snapshot(A, tmp_path / "a.safetensors")
    b = topo.save_snapshot(B, tmp_path / "b.safetensors")
    assert COMPARISON_COLUMNS == ("layer", "name", "nnstd", "nnstd_chance", "nnstd_chance_se",
                                  "jaccard", "jaccard_aligned", "jaccard_chance", "density_a",
                                  "density_b")
    assert main(["compare", str(a), str(b), "--json", "--csv", str(tmp_path / "c.csv")]) == 0
    printed = json.loads(capsys.readouterr().out)
    api = to_jsonable(compare(A, B).to_dict())
    assert printed == {"a": str(a), "b": str(b), **api}
    assert list(printed["layers"][0])[:len(COMPARISON_COLUMNS)] == list(COMPARISON_COLUMNS)
    header = (tmp_path / "c.csv").read_text().splitlines()[0]
    assert header == ",".join(COMPARISON_COLUMNS)


def test_to_dict_has_integer_layers_and_the_all_row_apart():
    document = compare(A, B, reference=True).to_dict()
    assert list(document) == ["mode", "alignment", "distance", "sparse_distance", "chance",
                              "layers", "all", "all_row"]
    assert document["mode"] == "reference" and document["alignment"] == "nnstd"
    assert [row["layer"] for row in document["layers"]] == [0, 1]
    assert document["all"]["layer"] == "all"
    assert [row["nnstd"] for row in document["layers"]] == [0.0, 0.0]
    assert document["distance"] == 0.0 and document["sparse_distance"] == 0.0
    assert [row["dense"] for row in document["layers"]] == [False, True]
    # 2 of 8 distinct positions shared in place; all 5 + 5 after matching
    assert (document["all"]["intersection"], document["all"]["union"]) == (2, 8)
    assert (document["all"]["intersection_aligned"], document["all"]["union_aligned"]) == (5, 5)
    # the chance level of the same mode, with the API's names; per layer in the rows
    chance = document["chance"]
    assert set(chance) == {"distance_chance", "distance_chance_se", "sparse_distance_chance",
                           "sparse_distance_chance_se", "n_samples", "seed"}
    assert chance["n_samples"] == 10
    assert all(row["nnstd_chance"] is not None for row in document["layers"])
    assert "chance" not in compare(A, B, chance_samples=0).to_dict()
    assert compare(A, B).overlap_frame()["aligned_jaccard"].tolist() == [1.0, 1.0, 1.0]


def test_an_unknown_alignment_is_refused():
    from topo.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown alignment 'best'; choose one of nnstd, "
                                          "overlap"):
        compare(A, B, align="best")


def test_overlap_alignment_of_a_relabelled_copy_is_the_copy():
    table = compare(A, B, align="overlap").to_frame()
    assert table["jaccard_aligned"].tolist() == [1.0, 1.0, 1.0]
    assert compare(A, B, align="overlap").alignment == "overlap"


def test_compare_takes_graphs():
    with pytest.raises(NotAGraphError, match="network b: got the path"):
        compare(A, "b.safetensors")
