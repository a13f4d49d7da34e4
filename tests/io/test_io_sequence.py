"""Runs, folders and lists of files as lazily read sequences of (label, graph, metadata)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

import topo
from topo.errors import ConfigError, EmptyInputError, UnreadableFileError
from topo.graph import LayeredGraph
from topo.io.run import MANIFEST_NAME, METRICS_NAME, snapshot_name
from topo.io.sequence import GraphSequence, expand_paths, read_sequence, short_labels

ONES = [np.ones((2, 3), bool), np.ones((1, 2), bool)]


def counting_loader(calls: list[str]):
    def load(path):
        calls.append(Path(path).name)
        return topo.load(path)

    return load


def test_a_run_is_its_snapshots_in_time_order_read_only_when_used(tmp_path, write_run):
    run = write_run(tmp_path / "run", [ONES] * 12, epochs=list(range(12)))
    calls: list[str] = []
    seq = read_sequence(run, loader=counting_loader(calls))
    assert len(seq) == 12 and calls == []
    assert seq.labels[:3] == ["epoch_0000", "epoch_0001", "epoch_0002"]
    assert [p.name for p in seq.sources][-2:] == ["epoch_0010.safetensors",
                                                 "epoch_0011.safetensors"]
    label, graph, metadata = seq[-1]
    assert calls == ["epoch_0011.safetensors"]
    assert label == "epoch_0011" and graph.widths == [3, 2, 1]
    assert metadata["epoch"] == 11 and metadata["path"] == str(seq.sources[-1])
    tail = seq[10:]
    assert isinstance(tail, GraphSequence) and tail.labels == ["epoch_0010", "epoch_0011"]
    assert calls == ["epoch_0011.safetensors"]
    assert [g.metadata["epoch"] for g in tail.graphs()] == [10, 11]
    assert repr(tail) == "GraphSequence(2 snapshots: epoch_0010, epoch_0011)"


def test_each_entry_carries_its_epochs_metrics_row_the_last_one_written(tmp_path, write_run):
    metrics = [{"epoch": 0, "step": 0, "loss": 2.0, "density": [0.5, 1.0]},
               {"epoch": 1, "step": 10, "loss": 9.9},
               {"epoch": 1, "step": 12, "loss": 1.0}]  # epoch 1 again, after a resume
    run = write_run(tmp_path / "run", [ONES, ONES], metrics=metrics)
    first, second = read_sequence(run)
    assert first.metadata["metrics"]["density_0"] == 0.5
    assert first.metadata["step"] == 0
    assert second.metadata["metrics"]["loss"] == 1.0 and second.metadata["step"] == 12
    assert np.isnan(second.metadata["metrics"]["density_1"])  # not recorded that epoch
    assert read_sequence(run).metrics()["loss"].tolist() == [2.0, 9.9, 1.0]


def test_pruning_levels_come_from_their_folders_and_join_metrics_by_level(tmp_path):
    run = tmp_path / "imp"
    run.mkdir()
    (run / MANIFEST_NAME).write_text("{}")
    for level in (0, 1):
        for epoch in (0, 1):
            graph = LayeredGraph([np.ones((2, 3)), np.ones((1, 2))])  # no epoch metadata
            topo.save_snapshot(graph, run / snapshot_name(epoch, level))
    (run / METRICS_NAME).write_text("".join(
        json.dumps({"level": lv, "epoch": e, "test_accuracy": lv + e / 10}) + "\n"
        for lv in (0, 1) for e in (0, 1)))
    entries = list(read_sequence(run))
    assert [(e.metadata["level"], e.metadata["epoch"]) for e in entries] == [
        (0, 0), (0, 1), (1, 0), (1, 1)]
    assert [e.metadata["metrics"]["test_accuracy"] for e in entries] == [0, 0.1, 1, 1.1]
    assert [e.label for e in entries] == ["level_00/epoch_0000", "level_00/epoch_0001",
                                          "level_01/epoch_0000", "level_01/epoch_0001"]


def test_snapshots_without_levels_join_metrics_by_epoch(tmp_path, write_run):
    run = write_run(tmp_path / "run", [ONES], metrics=[
        {"level": 0, "epoch": 0, "loss": 1.0}, {"level": 1, "epoch": 0, "loss": 0.5}])
    (entry,) = read_sequence(run)
    assert "level" not in entry.metadata and entry.metadata["metrics"]["loss"] == 0.5


def test_a_folder_of_files_takes_epochs_from_names_and_has_no_metrics(tmp_path):
    folder = tmp_path / "ckpts"
    folder.mkdir()
    for name in ("epoch_10.safetensors", "epoch_2.safetensors", ".epoch_5.safetensors.tmp"):
        topo.save_snapshot(LayeredGraph([np.eye(2)]), folder / name)
    seq = read_sequence(folder)
    assert seq.labels == ["epoch_2", "epoch_10"]
    assert [e.metadata["epoch"] for e in seq] == [2, 10]
    assert all("metrics" not in e.metadata for e in seq)
    assert seq.metrics() is None


def test_a_list_expands_runs_and_folders_and_keeps_files_and_nnstd_folders(tmp_path, write_run):
    run = write_run(tmp_path / "run_a", [ONES, ONES], metrics=[{"epoch": 1, "loss": 3.0}])
    loose = topo.save_snapshot(LayeredGraph([np.eye(2)]), tmp_path / "loose.safetensors")
    npz = tmp_path / "npz_net"
    npz.mkdir()
    sp.save_npz(npz / "weight_l0.npz", sp.csr_matrix(np.ones((4, 2))))
    seq = read_sequence([run, loose, npz])
    assert [p.name for p in seq.sources] == ["epoch_0000.safetensors",
                                             "epoch_0001.safetensors", "loose.safetensors",
                                             "npz_net"]
    assert seq.runs == [run, run, None, None]
    assert seq.labels == ["epoch_0000", "epoch_0001", "loose", "npz_net"]
    assert seq[1].metadata["metrics"]["loss"] == 3.0 and "metrics" not in seq[2].metadata
    assert seq.metrics() is None  # not one run
    assert expand_paths([loose, run]) == [loose, *seq.sources[:2]]


def test_missing_empty_and_damaged_inputs_are_clear_errors(tmp_path, write_run):
    with pytest.raises(UnreadableFileError, match="nope: no such file or folder"):
        read_sequence(tmp_path / "nope")
    with pytest.raises(UnreadableFileError, match="nope.pt: no such file or folder"):
        read_sequence([tmp_path / "nope.pt"])
    with pytest.raises(EmptyInputError, match="no snapshots given"):
        read_sequence([])
    (tmp_path / "empty").mkdir()
    with pytest.raises(UnreadableFileError, match="empty: holds no snapshots"):
        read_sequence(tmp_path / "empty")
    single = topo.save_snapshot(LayeredGraph([np.eye(2)]), tmp_path / "one.safetensors")
    with pytest.raises(UnreadableFileError, match="expected a run directory or a folder"):
        read_sequence(single)
    run = write_run(tmp_path / "run", [ONES, ONES])
    damaged = run / snapshot_name(1)
    damaged.write_bytes(damaged.read_bytes()[:60])  # truncated by a crash
    seq = read_sequence(run)
    assert seq[0].graph.widths == [3, 2, 1]  # the sound snapshot still reads
    with pytest.raises(UnreadableFileError, match="epoch_0001.safetensors"):
        seq[1]


def test_labels_and_runs_must_fit_the_sources(tmp_path):
    with pytest.raises(ConfigError, match="2 snapshots with 1 labels"):
        GraphSequence([tmp_path / "a", tmp_path / "b"], labels=["a"], loader=topo.load)


def test_the_default_loader_is_topo_load(tmp_path):
    assert GraphSequence([tmp_path / "x.safetensors"]).loader is topo.load


def test_short_labels_are_unique_suffixes():
    paths = [Path("runs/set_1/snapshots/epoch_0001.safetensors"),
             Path("runs/set_2/snapshots/epoch_0001.safetensors"),
             Path("runs/set_2/snapshots/epoch_0002.safetensors")]
    assert short_labels(paths) == ["set_1/epoch_0001", "set_2/epoch_0001", "set_2/epoch_0002"]
    assert short_labels([Path("a/x.pt"), Path("b/y.pt")]) == ["x", "y"]
    assert short_labels([]) == []


def test_short_labels_of_pruning_levels_name_their_run_beside_another_run():
    imp = [Path(f"runs/imp/snapshots/level_0{lv}/epoch_000{e}.safetensors")
           for lv in (0, 1) for e in (0, 1)]
    sgd = [Path(f"runs/set/snapshots/epoch_000{e}.safetensors") for e in (0, 1)]
    assert short_labels(imp) == ["level_00/epoch_0000", "level_00/epoch_0001",
                                 "level_01/epoch_0000", "level_01/epoch_0001"]
    assert short_labels(imp[:2] + sgd) == ["imp/level_00/epoch_0000", "imp/level_00/epoch_0001",
                                           "set/epoch_0000", "set/epoch_0001"]


def test_short_labels_keep_the_suffix_of_files_that_differ_only_by_it():
    assert short_labels([Path("in/tiny.pt"), Path("in/tiny.safetensors")]) == [
        "tiny.pt", "tiny.safetensors"]
    assert short_labels([Path("in/tiny.pt"), Path("in/tiny.safetensors"),
                         Path("in/other.pt")]) == ["tiny.pt", "tiny.safetensors", "other"]


def test_short_labels_number_only_true_repeats():
    paths = [Path("runs/a/x.pt"), Path("runs/b/y.pt"), Path("runs/a/x.pt")]
    assert short_labels(paths) == ["x", "y", "x#2"]
    assert short_labels([Path("a/x.pt"), Path("./a/x.pt"), Path("a/z.pt")]) == [
        "x", "x#2", "z"]


def test_short_labels_fall_back_to_the_full_path_when_no_suffix_is_unique(tmp_path):
    # x/e.pt and x/snapshots/e.pt: "snapshots" is not part of a label, so both read x/e
    a, b = tmp_path / "x" / "e.pt", tmp_path / "x" / "snapshots" / "e.pt"
    assert short_labels([a, b]) == [str(a), str(b)]


# ------------------------------------------------- which snapshot stands for a run or folder
def _early_stopped_run(root: Path, write_run) -> Path:
    """Epochs 0-5; stopped early at 5, its best (lowest validation loss) epoch 2."""
    run = write_run(root, [ONES] * 6)
    manifest = {"config": {"early_stopping_patience": 3}, "status": "finished",
                "final_snapshot": snapshot_name(5), "best_snapshot": snapshot_name(2),
                "best_epoch": 2, "stopped_early": True, "stopped_epoch": 5}
    (run / MANIFEST_NAME).write_text(json.dumps(manifest))
    return run


def _level_run(root: Path) -> Path:
    root.mkdir(parents=True)
    (root / MANIFEST_NAME).write_text(json.dumps({"config": {}, "status": "running"}))
    for level in (0, 1):
        for epoch in (0, 1, 2):
            graph = LayeredGraph([m.astype(float) for m in ONES], masks=ONES,
                                 metadata={"epoch": epoch, "level": level})
            topo.save_snapshot(graph, root / snapshot_name(epoch, level))
    return root


def test_a_run_means_its_last_snapshot_and_says_so_and_names_an_early_stops_best(tmp_path,
                                                                             write_run):
    from topo.io.sequence import choose_snapshot

    run = _early_stopped_run(tmp_path / "run", write_run)
    last = choose_snapshot(run)
    assert last.path == run / snapshot_name(5)
    assert last.why == "the run's last snapshot, epoch_0005"
    assert last.note == ("the run stopped early at epoch 5; its best snapshot (lowest "
                         "validation loss) is epoch_0002: --best reads it")
    best = choose_snapshot(run, best=True)
    assert best.path == run / snapshot_name(2)
    assert best.why == "the run's best snapshot, epoch_0002: lowest validation loss"
    third = choose_snapshot(run, epoch=3)
    assert (third.path, third.why) == (run / snapshot_name(3), "epoch 3, as asked")
    graph = topo.load(run, best=True)
    assert graph.metadata["snapshot"] == str(run / snapshot_name(2))
    assert graph.metadata["snapshot_choice"].startswith("the run's best snapshot")
    assert graph.metadata["epoch"] == 2 and graph.metadata["format"] == "topo.run"


def test_choosing_in_a_run_with_pruning_levels(tmp_path):
    from topo.io.sequence import choose_snapshot

    run = _level_run(tmp_path / "imp")
    assert choose_snapshot(run).path == run / snapshot_name(2, 1)
    assert choose_snapshot(run, level=0).path == run / snapshot_name(2, 0)
    assert choose_snapshot(run, level=0).why == "the last snapshot of level 0, level_00/epoch_0002"
    chosen = choose_snapshot(run, epoch=1, level=1)
    assert (chosen.path, chosen.why) == (run / snapshot_name(1, 1), "level 1, epoch 1, as asked")
    with pytest.raises(ConfigError, match="epoch 1 is in levels 0, 1; name one with --level"):
        choose_snapshot(run, epoch=1)
    with pytest.raises(ConfigError, match=r"no level 7 \(the run has levels 0-1\)"):
        choose_snapshot(run, level=7)
    with pytest.raises(ConfigError, match=r"no snapshot of epoch 9 in level 0 \(epochs 0-2\)"):
        choose_snapshot(run, epoch=9, level=0)
    with pytest.raises(ConfigError, match="records no best snapshot \\(status 'running'"):
        choose_snapshot(run, best=True)
    with pytest.raises(ConfigError, match="the best snapshot or an epoch/level, not both"):
        choose_snapshot(run, best=True, epoch=1)


def test_a_folder_of_checkpoints_is_read_as_its_last_file_and_a_file_chooses_nothing(tmp_path):
    from topo.io.sequence import choose_snapshot

    folder = tmp_path / "ckpts"
    folder.mkdir()
    graph = LayeredGraph([m.astype(float) for m in ONES], masks=ONES)
    for epoch in (2, 10, 1):
        topo.save_snapshot(graph, folder / f"epoch_{epoch}.safetensors")
    chosen = choose_snapshot(folder)
    assert chosen.path == folder / "epoch_10.safetensors"
    assert chosen.why == ("the last of 3 checkpoints by the epochs their names say, "
                          "epoch_10.safetensors")
    assert choose_snapshot(folder, epoch=2).path == folder / "epoch_2.safetensors"
    loaded = topo.load(folder)
    assert loaded.metadata["snapshot"] == str(folder / "epoch_10.safetensors")
    assert loaded.metadata["folder"] == str(folder)
    with pytest.raises(ConfigError, match=r"no checkpoints of epoch 5 \(epochs 1-2, 10\)"):
        choose_snapshot(folder, epoch=5)
    with pytest.raises(ConfigError, match="records no best snapshot"):
        topo.load(folder, best=True)
    single = folder / "epoch_1.safetensors"
    assert choose_snapshot(single) is None
    with pytest.raises(ConfigError, match="one network, not a run or a folder"):
        topo.load(single, epoch=1)
