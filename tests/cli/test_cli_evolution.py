"""`topo evolution`: table, JSON, CSV and figures of a run, and its errors before any work."""

from __future__ import annotations

import json

import numpy as np
import pytest

from topo.cli import main

# 3-2-1 network at two snapshots (tests/test_evolution.py works out its values by hand):
#   snapshot 0: h0 <- {x0, x1}, h1 <- {x2}; output <- {h0}
#   snapshot 1: h0 <- {x0},     h1 <- {x1, x2}; output <- {h0}
HAND = [
    [np.array([[1, 1, 0], [0, 0, 1]], bool), np.array([[1, 0]], bool)],
    [np.array([[1, 0, 0], [0, 1, 1]], bool), np.array([[1, 0]], bool)],
]


def one_line_error(capsys, *words: str) -> None:
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err, err
    for word in words:
        assert word in err


def test_json_rows_carry_the_documented_keys(tmp_path, capsys, write_run):
    run = write_run(tmp_path / "run", HAND)
    assert main(["evolution", str(run), "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert len(rows) == 4
    for key in ("epoch", "layer", "connections", "density", "added", "removed", "churn",
                "nnstd_to_first", "nnstd_to_previous", "itop_rate_snapshots"):
        assert key in rows[0]
    assert rows[0]["churn"] is None and rows[2]["churn"] == pytest.approx(1 / 3)


def test_table_csv_and_figures(tmp_path, capsys, write_run):
    run = write_run(tmp_path / "run", HAND)
    csv, fig, inputs = tmp_path / "evo.csv", tmp_path / "evo.png", tmp_path / "inputs.svg"
    assert main(["evolution", str(run), "--csv", str(csv), "--plot", str(fig),
                 "--inputs-plot", str(inputs)]) == 0
    assert capsys.readouterr().out.splitlines() == [
        f"wrote {csv} (4 rows)", f"wrote {fig}", f"wrote {inputs}"]
    assert csv.read_text().splitlines()[0].startswith("snapshot,epoch,layer")
    assert fig.read_bytes()[:4] == b"\x89PNG"
    assert b"<svg" in inputs.read_bytes()[:500]
    assert main(["evolution", str(run), "--no-persistence"]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header == ["epoch", "name", "connections", "density", "added", "removed", "churn",
                      "nnstd_to_first", "nnstd_to_previous", "jaccard_to_previous",
                      "itop_rate_snapshots", "inputs_off_path"]


def test_json_with_a_csv_is_refused_by_the_parser(tmp_path, capsys, write_run):
    run = write_run(tmp_path / "run", HAND)
    with pytest.raises(SystemExit):
        main(["evolution", str(run), "--json", "--csv", str(tmp_path / "e.csv")])
    assert "not allowed with argument" in capsys.readouterr().err


def test_json_with_a_figure_says_wrote_on_stderr(tmp_path, capsys, write_run):
    run = write_run(tmp_path / "run", HAND)
    fig = tmp_path / "inputs.svg"
    assert main(["evolution", str(run), "--json", "--inputs-plot", str(fig)]) == 0
    captured = capsys.readouterr()
    assert len(json.loads(captured.out)) == 4
    assert captured.err == f"wrote {fig}\n"


def test_a_bad_figure_suffix_is_refused_before_any_work(tmp_path, capsys):
    assert main(["evolution", str(tmp_path / "missing"), "--plot",
                 str(tmp_path / "evo.txt")]) == 1
    one_line_error(capsys, "evo.txt", "figure files must end in")


def test_a_missing_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["evolution", str(tmp_path / "nope")]) == 1
    one_line_error(capsys, "topo evolution: error:", "nope: no such file or folder")


def test_a_file_is_not_a_run(tmp_path, capsys):
    (tmp_path / "one.safetensors").write_bytes(b"")
    assert main(["evolution", str(tmp_path / "one.safetensors")]) == 1
    one_line_error(capsys, "expected a run directory or a folder of snapshots")


def test_a_bad_csv_path_fails_before_any_work_and_writes_no_figure(tmp_path, capsys,
                                                                    write_run):
    run = write_run(tmp_path / "run", HAND)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")
    fig = tmp_path / "evo.png"
    for csv in (blocker / "e.csv", tmp_path):  # parent is a file; the path is a folder
        assert main(["evolution", str(run), "--csv", str(csv), "--plot", str(fig)]) == 1
        one_line_error(capsys, str(csv))
    assert not fig.exists()


def test_outputs_are_checked_before_the_run_is_read(tmp_path, monkeypatch, capsys, write_run):
    run = write_run(tmp_path / "run", HAND)
    blocker = tmp_path / "blocker"
    blocker.write_text("a file, not a folder")

    def no_work(*args, **kwargs):
        raise AssertionError("computed before checking the outputs")

    monkeypatch.setattr("topo.evolution.topology_evolution", no_work)
    csv = tmp_path / "e.csv"
    assert main(["evolution", str(run), "--csv", str(csv),
                 "--inputs-plot", str(blocker / "in.png")]) == 1
    assert main(["evolution", str(run), "--csv", str(blocker / "e.csv")]) == 1
    assert "blocker" in capsys.readouterr().err
    assert not csv.exists()


def _level_run(root):
    """A run with two pruning levels of two snapshots each (epochs restart at 0)."""
    import topo
    from topo.graph import LayeredGraph
    from topo.io.run import snapshot_name

    masks = [[np.array([[1, 1, 0], [0, 1, 1]], bool), np.array([[1, 1]], bool)]] * 2 + HAND
    root.mkdir(parents=True)
    (root / "run.json").write_text(json.dumps({"config": {"method": "stand-in"}}))
    for m, (level, epoch) in zip(masks, [(0, 0), (0, 1), (1, 0), (1, 1)]):
        graph = LayeredGraph([a.astype(float) for a in m], masks=m, names=["fc0", "fc1"],
                             metadata={"epoch": epoch, "level": level})
        topo.save_snapshot(graph, root / snapshot_name(epoch, level))
    return root


def test_figures_of_pruning_levels_name_the_level_of_each_snapshot(tmp_path, drawn, capsys):
    run = _level_run(tmp_path / "imp")
    assert main(["evolution", str(run), "--plot", str(tmp_path / "e.png"),
                 "--inputs-plot", str(tmp_path / "i.png")]) == 0
    maps = [a for a in drawn["i.png"].axes if a.images]
    assert [a.get_title() for a in maps] == ["level 0 · epoch 0", "level 0 · epoch 1",
                                             "level 1 · epoch 0", "level 1 · epoch 1"]
    panel = drawn["e.png"].axes[0]
    assert [t.get_text() for t in panel.get_xticklabels()] == ["L0\n75%", "L1\n50%"]  # 6/8, 4/8


def test_a_table_of_one_row_says_row(tmp_path, capsys, write_run):
    run = write_run(tmp_path / "run", [[np.array([[1, 0, 1]], bool)]])
    csv = tmp_path / "e.csv"
    assert main(["evolution", str(run), "--csv", str(csv)]) == 0
    assert capsys.readouterr().out == f"wrote {csv} (1 row)\n"


def test_the_figure_of_a_run_in_levels_breaks_every_line_at_a_rewind(tmp_path, capsys,
                                                                      monkeypatch):
    import topo
    import topo.cli._output as output
    from topo.graph import LayeredGraph
    from topo.io.run import METRICS_NAME, snapshot_name

    run = tmp_path / "imp"
    run.mkdir()
    (run / "run.json").write_text(json.dumps({"config": {"method": "imp"}}))
    rows = []
    for level in (0, 1):
        for epoch, masks in enumerate(HAND):
            weights = [m.astype(float) for m in masks]
            topo.save_snapshot(LayeredGraph(weights, masks=masks, names=["fc0", "fc1"],
                                            metadata={"epoch": epoch, "level": level}),
                               run / snapshot_name(epoch, level))
            rows.append({"level": level, "epoch": epoch, "test_accuracy": 0.1 + 0.8 * epoch})
    (run / METRICS_NAME).write_text("".join(json.dumps(r) + "\n" for r in rows))
    drawn = []  # the figure as drawn, kept instead of written (rendering is not tested here)
    monkeypatch.setattr(output, "save_figure", lambda fig, path: drawn.append(fig) or path)
    assert main(["evolution", str(run), "--plot", str(tmp_path / "e.png"),
                 "--no-persistence"]) == 0
    (figure,) = drawn
    lines = [line for ax in figure.axes for line in ax.lines if line.get_linestyle() != ":"]
    assert len(lines) == 11  # five panels of two layers, and the test accuracy
    for line in lines:
        # snapshots 0, 1 are level 0 and 2, 3 level 1: the line breaks between 1 and 2
        np.testing.assert_array_equal(line.get_xdata(), [0, 1, np.nan, 2, 3])
    np.testing.assert_allclose(lines[-1].get_ydata(), [0.1, 0.9, np.nan, 0.1, 0.9])
