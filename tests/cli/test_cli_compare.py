"""`topo compare` and `topo distances` on every reader's files, and their errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

import topo
from topo.cli import main
from topo.graph import LayeredGraph

WIDTHS = [12, 8, 3]


def weights(seed: int, widths=WIDTHS) -> list[np.ndarray]:
    """Dense (n_out, n_in) weights with random non-zero values on a random mask."""
    rng = np.random.default_rng(seed)
    out = []
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        mask = rng.random((n_out, n_in)) < 0.4
        out.append(np.where(mask, rng.uniform(0.5, 1.5, mask.shape), 0.0).astype(np.float32))
    return out


def write_topo(ws, path: Path) -> Path:
    return topo.save_snapshot(LayeredGraph(ws), path)


def write_torch(ws, path: Path) -> Path:
    import torch

    state = {}
    for k, w in enumerate(ws):
        state[f"fc{k}.weight"] = torch.from_numpy(w)
        state[f"fc{k}.bias"] = torch.zeros(w.shape[0])
    torch.save(state, path)
    return path


def write_safetensors(ws, path: Path) -> Path:
    from safetensors.numpy import save_file

    tensors = {}
    for k, w in enumerate(ws):
        tensors[f"fc{k}.weight"] = w
        tensors[f"fc{k}.bias"] = np.zeros(w.shape[0], dtype=np.float32)
    save_file(tensors, str(path))
    return path


def write_nnstd_folder(ws, path: Path) -> Path:
    path.mkdir()
    for k, w in enumerate(ws):
        keras = np.vstack([w.T, np.full((1, w.shape[0]), 0.1, dtype=np.float32)])
        sp.save_npz(path / f"weight_l{k}.npz", sp.csr_matrix(keras))
    return path


WRITERS = {
    "topo.snapshot": (write_topo, "a.safetensors"),
    "pytorch": (write_torch, "a.pt"),
    "safetensors": (write_safetensors, "a_st.safetensors"),
    "nnstd-npz": (write_nnstd_folder, "a_npz"),
}


def independent_layer_nnstd(wa: np.ndarray, wb: np.ndarray) -> float:
    """Output layer in place: mean Jaccard distance of unit i of A and unit i of B."""
    sa, sb = wa != 0, wb != 0
    inter = (sa & sb).sum(1)
    union = (sa | sb).sum(1)
    return float(np.mean(np.where(union > 0, 1 - inter / np.maximum(union, 1), 0.0)))


@pytest.mark.parametrize("fmt", list(WRITERS))
def test_compare_reads_every_format(fmt, tmp_path, capsys):
    writer, name = WRITERS[fmt]
    a = writer(weights(0), tmp_path / name)
    b = write_topo(weights(0), tmp_path / "same.safetensors")
    assert main(["compare", str(a), str(b), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["nnstd"] for row in out["layers"]] == [0.0, 0.0]
    assert out["distance"] == 0.0
    assert [row["jaccard"] for row in out["layers"]] == [1.0, 1.0]
    assert topo.detect_format(a) == fmt


def test_compare_json_layout(tmp_path, capsys):
    wa, wb = weights(1), weights(2)
    a = write_topo(wa, tmp_path / "a.safetensors")
    b = write_torch(wb, tmp_path / "b.pt")
    assert main(["compare", str(a), str(b), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert list(out) == ["a", "b", "mode", "alignment", "distance", "sparse_distance",
                         "chance", "layers", "all", "all_row"]
    per_layer = [row["nnstd"] for row in out["layers"]]
    assert len(per_layer) == 2
    assert out["distance"] == pytest.approx(np.mean(per_layer)) == out["all"]["nnstd"]
    assert [row["layer"] for row in out["layers"]] == [0, 1]  # integers, as in evolution
    first = out["layers"][0]
    assert {"nnstd", "jaccard", "jaccard_aligned", "jaccard_chance", "density_a",
            "density_b"} <= set(first)
    sa, sb = wa[0] != 0, wb[0] != 0
    assert first["jaccard"] == pytest.approx((sa & sb).sum() / (sa | sb).sum())
    assert first["density_a"] == pytest.approx(sa.mean())
    assert out["all"]["connections_a"] == sum(int((w != 0).sum()) for w in wa)


def test_compare_keeps_output_units_in_place_unless_reference(tmp_path, capsys):
    # B = A with its two last output units swapped: only --reference matches them back
    wa = weights(3)
    wb = [wa[0].copy(), wa[1][[0, 2, 1]]]
    a = write_topo(wa, tmp_path / "a.safetensors")
    b = write_topo(wb, tmp_path / "b.safetensors")
    assert main(["compare", str(a), str(b), "--json"]) == 0
    default = [row["nnstd"] for row in json.loads(capsys.readouterr().out)["layers"]]
    assert default[1] == pytest.approx(independent_layer_nnstd(wa[1], wb[1]))
    assert default[1] > 0
    assert main(["compare", str(a), str(b), "--json", "--reference"]) == 0
    assert [row["nnstd"] for row in json.loads(capsys.readouterr().out)["layers"]] == [0.0,
                                                                                       0.0]


def test_compare_table_and_plot(tmp_path, capsys):
    a = write_topo(weights(4), tmp_path / "a.safetensors")
    b = write_topo(weights(5), tmp_path / "b.safetensors")
    fig = tmp_path / "cmp.png"
    assert main(["compare", str(a), str(b), "--plot", str(fig)]) == 0
    out = capsys.readouterr().out
    assert "jaccard_aligned" in out and "NNSTD distance" in out and "all" in out
    assert fig.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_incompatible_inputs_is_one_line_error(tmp_path, capsys):
    a = write_topo(weights(6), tmp_path / "a.safetensors")
    b = write_topo(weights(7, widths=[10, 8, 3]), tmp_path / "b.safetensors")
    assert main(["compare", str(a), str(b)]) == 1
    err = capsys.readouterr().err
    assert err == (f"topo compare: error: {a} vs {b}: 12 inputs against 10; the input "
                   "layers must match\n")


# start-up, end to end: the command in a fresh interpreter (as tests/train/test_startup.py);
# `make test-slow` runs it, and CI runs both
@pytest.mark.slow
def test_compare_imports_neither_torch_nor_pandas_before_it_runs(tmp_path):
    a = write_topo(weights(0), tmp_path / "a.safetensors")
    b = write_nnstd_folder(weights(1), tmp_path / "b_npz")
    code = ("import sys, topo.cli.compare; assert 'pandas' not in sys.modules; "
            "from topo.cli import main; "
            f"main(['compare', {str(a)!r}, {str(b)!r}, '--json']); "
            "print(*[m in sys.modules for m in ('torch', 'pandas', 'scipy.stats')], "
            "file=sys.stderr)")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    # --json needs no DataFrame, and the chance level (mask_overlap's hypergeometric
    # expectation) no scipy.stats
    assert proc.stderr.split() == ["False", "False", "False"]


def test_compare_json_with_plot_says_wrote_on_stderr(tmp_path, capsys):
    a = write_topo(weights(4), tmp_path / "a.safetensors")
    b = write_topo(weights(5), tmp_path / "b.safetensors")
    fig = tmp_path / "cmp.svg"
    assert main(["compare", str(a), str(b), "--json", "--plot", str(fig)]) == 0
    captured = capsys.readouterr()
    json.loads(captured.out)  # stdout stays pure JSON
    assert captured.err.strip() == f"wrote {fig}"
    assert b"<svg" in fig.read_bytes()[:500]


def test_compare_csv_holds_the_printed_table(tmp_path, capsys):
    wa, wb = weights(1), weights(2)
    a = write_topo(wa, tmp_path / "a.safetensors")
    b = write_topo(wb, tmp_path / "b.safetensors")
    out = tmp_path / "cmp.csv"
    assert main(["compare", str(a), str(b), "--csv", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    table = pd.read_csv(out)
    assert list(table["layer"]) == ["0", "1", "all"]
    assert list(table.columns) == ["layer", "name", "nnstd", "nnstd_chance", "nnstd_chance_se",
                                   "jaccard", "jaccard_aligned", "jaccard_chance", "density_a",
                                   "density_b"]
    sa, sb = wa[0] != 0, wb[0] != 0
    assert table["jaccard"][0] == pytest.approx((sa & sb).sum() / (sa | sb).sum())
    assert table["nnstd"][2] == pytest.approx(topo.nnstd(topo.load(a), topo.load(b)).distance)


def test_compare_bad_output_paths_fail_before_any_work(tmp_path, monkeypatch, capsys):
    a = write_topo(weights(4), tmp_path / "a.safetensors")
    b = write_topo(weights(5), tmp_path / "b.safetensors")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")

    def no_work(*args, **kwargs):
        raise AssertionError("computed before checking the outputs")

    monkeypatch.setattr("topo.io.load", no_work)
    good_csv = tmp_path / "cmp.csv"
    for args in (["--plot", str(blocker / "x.png")],
                 ["--csv", str(good_csv), "--plot", str(blocker / "x.png")],
                 ["--csv", str(blocker / "x.csv"), "--plot", str(tmp_path / "x.png")],
                 ["--csv", str(tmp_path)]):
        assert main(["compare", str(a), str(b), *args]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and str(tmp_path) in err
    assert not good_csv.exists() and not (tmp_path / "x.png").exists()


def make_run(path: Path, seeds) -> Path:
    (path / "snapshots").mkdir(parents=True)
    (path / "run.json").write_text(json.dumps({"status": "done"}))
    for epoch, seed in enumerate(seeds):
        write_topo(weights(seed), path / "snapshots" / f"epoch_{epoch:04d}.safetensors")
    return path


def test_distances_over_runs_and_mixed_files(tmp_path, capsys):
    run = make_run(tmp_path / "run_a", [10, 11, 12])
    extra = write_nnstd_folder(weights(13), tmp_path / "npz_net")
    out_csv = tmp_path / "matrix.csv"
    assert main(["distances", str(run), str(extra), "--out", str(out_csv),
                 "--json", "--no-progress"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["labels"] == ["epoch_0000", "epoch_0001", "epoch_0002", "npz_net"]
    matrix = np.array(out["nnstd"])
    assert matrix.shape == (4, 4) and np.array_equal(matrix, matrix.T)
    assert np.array_equal(np.diag(matrix), np.zeros(4))
    csv = pd.read_csv(out_csv)
    assert list(csv["label"]) == out["labels"]
    assert np.allclose(csv[out["labels"]].to_numpy(), matrix)
    overlap = pd.read_csv(tmp_path / "matrix_overlap.csv")
    assert np.allclose(overlap[out["labels"]].to_numpy(), np.array(out["overlap"]))
    # one entry, independently: output layer kept in place, hidden layer matched
    g0 = topo.load(run / "snapshots" / "epoch_0000.safetensors")
    g1 = topo.load(run / "snapshots" / "epoch_0001.safetensors")
    assert matrix[0, 1] == pytest.approx(topo.nnstd(g0, g1).distance)


@pytest.mark.xdist_group("process-pool")   # joblib's worker processes start once
def test_distances_table_plot_and_jobs(tmp_path, capsys):
    folder = tmp_path / "snaps"
    folder.mkdir()
    for i in range(4):
        write_topo(weights(20 + i), folder / f"epoch_{i:04d}.safetensors")
    fig = tmp_path / "heat.svg"
    assert main(["distances", str(folder), "--n-jobs", "2", "--plot", str(fig)]) == 0
    out = capsys.readouterr().out
    assert "NNSTD distance (4 networks, 6 pairs)" in out and "epoch_0003" in out
    assert fig.read_text().lstrip().startswith("<?xml")


def test_distances_needs_two_networks(tmp_path, capsys):
    a = write_topo(weights(0), tmp_path / "a.safetensors")
    assert main(["distances", str(a)]) == 1
    assert "at least two" in capsys.readouterr().err


def test_distances_missing_path_is_a_clear_error(tmp_path, capsys):
    a = write_topo(weights(0), tmp_path / "a.safetensors")
    assert main(["distances", str(a), str(tmp_path / "nope.pt")]) == 1
    assert "nope.pt: no such file" in capsys.readouterr().err


def test_distances_bad_output_paths_fail_before_any_work(tmp_path, monkeypatch, capsys):
    a = write_topo(weights(0), tmp_path / "a.safetensors")
    b = write_topo(weights(1), tmp_path / "b.safetensors")
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    (tmp_path / "m_overlap.csv").mkdir()  # where --out m.csv puts the overlap matrix

    def no_work(*args, **kwargs):
        raise AssertionError("computed before checking the outputs")

    monkeypatch.setattr("topo.pairwise.distance_matrix", no_work)
    csv, fig = tmp_path / "d.csv", tmp_path / "d.png"
    for args in (["--out", str(csv), "--plot", str(blocker / "x.png")],
                 ["--out", str(blocker / "d.csv"), "--plot", str(fig)],
                 ["--out", str(tmp_path / "m.csv"), "--plot", str(fig)],
                 ["--out", str(tmp_path), "--plot", str(fig)]):
        assert main(["distances", str(a), str(b), "--no-progress", *args]) == 1
        err = capsys.readouterr().err
        assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert not csv.exists() and not fig.exists()
    assert not (tmp_path / "d_overlap.csv").exists()


def test_distances_labels_tell_same_stem_files_apart(tmp_path, capsys):
    folder = tmp_path / "in"
    folder.mkdir()
    write_torch(weights(0), folder / "tiny.pt")
    write_safetensors(weights(1), folder / "tiny.safetensors")
    assert main(["distances", str(folder / "tiny.pt"), str(folder / "tiny.safetensors"),
                 "--json", "--no-progress"]) == 0
    assert json.loads(capsys.readouterr().out)["labels"] == ["tiny.pt", "tiny.safetensors"]


def test_compare_different_hidden_widths_and_single_layer(tmp_path, capsys):
    a = write_topo(weights(8, widths=[12, 8, 3]), tmp_path / "a.safetensors")
    b = write_topo(weights(9, widths=[12, 5, 3]), tmp_path / "b.safetensors")
    assert main(["compare", str(a), str(b), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert [row["jaccard_chance"] for row in out["layers"]] == [None, None]  # shapes differ
    assert 0 < out["layers"][0]["nnstd"] <= 1
    one_a = write_topo(weights(10, widths=[6, 2]), tmp_path / "one_a.safetensors")
    one_b = write_topo(weights(11, widths=[6, 2]), tmp_path / "one_b.safetensors")
    assert main(["compare", str(one_a), str(one_b), "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    wa, wb = weights(10, widths=[6, 2])[0], weights(11, widths=[6, 2])[0]
    assert [row["nnstd"] for row in single["layers"]] == [
        pytest.approx(independent_layer_nnstd(wa, wb))]


@pytest.mark.xdist_group("process-pool")   # joblib's worker processes start once
def test_distances_incompatible_networks_in_workers_is_one_line_error(tmp_path, capsys):
    a = write_topo(weights(0), tmp_path / "a.safetensors")
    b = write_topo(weights(1), tmp_path / "b.safetensors")
    c = write_topo(weights(2, widths=[10, 8, 3]), tmp_path / "c.safetensors")
    # the error happens in a worker process and comes back as the same TopoError
    assert main(["distances", str(a), str(b), str(c), "--n-jobs", "2", "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err
    assert "c.safetensors" in err and "12 inputs against 10" in err


def test_distance_heatmap_names_nnstd_and_runs_of_pruning_levels(tmp_path, write_run, drawn,
                                                                   capsys):
    import shutil

    from topo.io.run import snapshot_name

    masks = [[np.array([[1, 1, 0], [0, 0, 1]], bool), np.array([[1, 0]], bool)],
             [np.array([[1, 0, 0], [0, 1, 1]], bool), np.array([[1, 0]], bool)]]
    plain = write_run(tmp_path / "set", masks)
    imp = tmp_path / "imp"
    for level in (0, 1):
        (imp / "snapshots" / f"level_0{level}").mkdir(parents=True)
        shutil.copy(plain / snapshot_name(level), imp / snapshot_name(0, level))
    shutil.copy(plain / "run.json", imp / "run.json")
    assert main(["distances", str(imp), str(plain), "--plot", str(tmp_path / "d.png")]) == 0
    ax = drawn["d.png"].axes[0]
    assert ax.get_title().startswith("NNSTD between snapshots")
    assert drawn["d.png"].axes[1].get_ylabel() == "NNSTD"
    assert sorted(t.get_text() for t in ax.get_xticklabels()) == [
        "imp/level_00/epoch_0000", "imp/level_01/epoch_0000", "set/epoch_0000",
        "set/epoch_0001"]


@pytest.mark.xdist_group("scikit-learn")   # the embedding is sklearn MDS: imported on one worker
def test_distances_embedding_states_its_fit_and_warns_when_poor(tmp_path, write_run, drawn,
                                                              capsys):
    rng = np.random.default_rng(0)
    # eight unrelated random masks: every pair at about the same NNSTD
    masks = [[rng.random((12, 10)) < 0.3, np.ones((2, 12), bool)] for _ in range(8)]
    run = write_run(tmp_path / "random", masks)
    out = tmp_path / "map.png"
    assert main(["distances", str(run), "--embedding", str(out)]) == 0
    captured = capsys.readouterr()
    ax = drawn["map.png"].axes[0]
    stress = ax.stress_
    assert stress >= 0.2
    assert f"wrote {out} (Kruskal stress-1 {stress:.3f})" in captured.out
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(
        f"topo distances: warning: the MDS embedding fits poorly (Kruskal stress-1 "
        f"{stress:.2f}")
    assert ax.get_title().startswith("snapshots embedded by NNSTD (metric MDS)\n")
    assert [t.get_text() for t in ax.get_legend().get_texts()][0] == "random"


def test_compare_json_speaks_one_vocabulary_and_names_its_aggregates(tmp_path, capsys):
    from topo.comparison import COMPARISON_COLUMNS, DETAIL_COLUMNS

    a = write_topo(weights(1), tmp_path / "a.safetensors")
    b = write_topo(weights(2), tmp_path / "b.safetensors")
    assert main(["compare", str(a), str(b), "--json"]) == 0
    printed = capsys.readouterr().out
    out = json.loads(printed)
    for legacy in ("aligned_jaccard", "expected_jaccard_random", "aligned_intersection",
                   "expected_intersection_random", "per_layer"):
        assert legacy not in printed
    columns = [*COMPARISON_COLUMNS, *DETAIL_COLUMNS, "dense"]
    assert [list(row) for row in out["layers"]] == [columns, columns]
    assert list(out["all"]) == columns and out["all"]["layer"] == "all"
    assert out["all_row"]["nnstd"] == "mean of the layers' NNSTD (the network distance)"
    assert out["all_row"]["jaccard"] == "pooled: every layer's connections together"
    assert out["alignment"] == "nnstd"
    # the pooled Jaccard index is the summed intersections over the summed unions
    assert out["all"]["jaccard"] == pytest.approx(
        sum(r["intersection"] for r in out["layers"]) / sum(r["union"] for r in out["layers"]))


def test_compare_table_says_how_the_all_row_aggregates_and_what_aligned_means(tmp_path,
                                                                             capsys):
    a = write_topo(weights(1), tmp_path / "a.safetensors")
    b = write_topo(weights(2), tmp_path / "b.safetensors")
    assert main(["compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert ("all: NNSTD and its chance level are means over the layers; the Jaccard indices "
            "and densities pool every layer's connections") in out
    assert "jaccard_aligned: hidden units matched by NNSTD" in out
    assert "it can be below jaccard; --align overlap maximises it" in out
    assert main(["compare", str(a), str(b), "--align", "overlap", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["alignment"] == "overlap"


def test_compare_help_says_aligned_can_fall_below_raw(help_text):
    text = help_text("compare")
    assert "The aligned Jaccard index can be below the raw one" in text
    assert "--align {nnstd,overlap}" in text


def test_compare_figure_names_the_all_row_and_the_alignment(tmp_path, capsys, drawn):
    a = write_topo(weights(1), tmp_path / "a.safetensors")
    b = write_topo(weights(2), tmp_path / "b.safetensors")
    assert main(["compare", str(a), str(b), "--align", "overlap", "--plot",
                 str(tmp_path / "c.png")]) == 0
    ax = drawn["c.png"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()][-1] == (
        "all layers\nNNSTD: mean\nJaccard: pooled")
    assert "Jaccard (aligned for overlap)" in [t.get_text()
                                                for t in ax.get_legend().get_texts()]


def test_compare_reads_the_asked_epoch_of_each_run_and_says_which(tmp_path, write_run, capsys):
    masks = [[np.array([[1, 1, 0], [0, 0, 1]], bool), np.array([[1, 0]], bool)],
             [np.array([[1, 0, 0], [0, 1, 1]], bool), np.array([[1, 0]], bool)]]
    run = write_run(tmp_path / "run", masks)
    single = run / "snapshots" / "epoch_0001.safetensors"
    assert main(["compare", str(run), str(single), "--epoch", "0", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["snapshots"] == {"a": {"path": str(run / "snapshots" / "epoch_0000.safetensors"),
                                      "choice": "epoch 0, as asked"}}
    # epoch 0: (0,0) (0,1) (1,2); epoch 1: (0,0) (1,1) (1,2): 2 shared of 4
    assert out["layers"][0]["jaccard"] == pytest.approx(2 / 4)
    assert main(["compare", str(run), str(single)]) == 0
    text = capsys.readouterr().out
    assert (f"   snapshot: {run}/snapshots/epoch_0001.safetensors (the run's last snapshot, "
            "epoch_0001)") in text
    assert main(["compare", str(single), str(single), "--best"]) == 1
    assert "one network, not a run or a folder of checkpoints" in capsys.readouterr().err


def test_counts_of_one_are_singular(tmp_path, capsys):
    a = write_topo(weights(1), tmp_path / "a.safetensors")
    b = write_topo(weights(2), tmp_path / "b.safetensors")
    assert main(["distances", str(a), str(b)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "NNSTD distance (2 networks, 1 pair)"
    one = write_topo(weights(10, widths=[6, 2]), tmp_path / "one.safetensors")
    two = write_topo(weights(11, widths=[6, 4, 2]), tmp_path / "two.safetensors")
    assert main(["compare", str(one), str(two)]) == 1
    assert ": 1 layer against 2; NNSTD compares networks with the same number of layers" \
        in capsys.readouterr().err


def test_compare_shows_the_nnstd_chance_level_beside_nnstd(tmp_path, capsys):
    a = write_topo(weights(1), tmp_path / "a.safetensors")
    b = write_topo(weights(2), tmp_path / "b.safetensors")
    assert main(["compare", str(a), str(b), "--json", "--chance-samples", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    chance = out["chance"]
    # the same estimate as the API's, row by row, under the table's column names
    g_a, g_b = topo.load(a), topo.load(b)
    expect = topo.nnstd_chance(g_a, g_b, n_samples=4, seed=0)
    assert [row["nnstd_chance"] for row in out["layers"]] == pytest.approx(
        expect.per_layer.tolist())
    assert [row["nnstd_chance_se"] for row in out["layers"]] == pytest.approx(
        expect.per_layer_se.tolist())
    assert chance["sparse_distance_chance"] == pytest.approx(expect.sparse_distance)
    assert chance["n_samples"] == 4
    assert main(["compare", str(a), str(b), "--chance-samples", "4"]) == 0
    text = capsys.readouterr().out
    assert "nnstd_chance" in text and "nnstd_chance_se" in text
    assert (f"Mean over sparse layers: {out['sparse_distance']:.4g} vs chance level "
            f"{expect.sparse_distance:.4g}") in text


def test_compare_chance_samples_zero_skips_it_and_one_is_refused(tmp_path, capsys):
    a = write_topo(weights(1), tmp_path / "a.safetensors")
    b = write_topo(weights(2), tmp_path / "b.safetensors")
    out = tmp_path / "t.csv"
    assert main(["compare", str(a), str(b), "--json", "--chance-samples", "0"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert "chance" not in doc
    assert [row["nnstd_chance"] for row in doc["layers"]] == [None, None]
    assert main(["compare", str(a), str(b), "--chance-samples", "0", "--csv", str(out)]) == 0
    assert out.read_text().splitlines()[0].split(",")[2:5] == ["nnstd", "nnstd_chance",
                                                               "nnstd_chance_se"]
    capsys.readouterr()
    assert main(["compare", str(a), str(b), "--chance-samples", "1"]) == 1
    assert "--chance-samples must be 0 (skip) or at least 2" in capsys.readouterr().err
