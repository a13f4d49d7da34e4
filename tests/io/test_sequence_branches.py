"""Folders of checkpoints and runs in the rarer layouts: snapshots that know only their
step, a folder of one checkpoint, epochs stored as whole floats, a run whose recorded best
snapshot is gone, and a snapshot whose metadata is damaged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from topo.errors import UnreadableFileError
from topo.graph import LayeredGraph
from topo.io import load, read_sequence, save_snapshot
from topo.io.sequence import choose_snapshot


def test_snapshots_that_know_only_their_step_are_ordered_by_step(tmp_path):
    for name, step in [("a", 30), ("b", 10), ("c", 20)]:
        save_snapshot(LayeredGraph([np.eye(2) * step], metadata={"step": step}),
                      tmp_path / f"{name}.safetensors")
    seq = read_sequence(tmp_path)
    assert [Path(s).name for s in seq.sources] == ["b.safetensors", "c.safetensors",
                                                   "a.safetensors"]
    assert [t.step for t in seq.times] == [10, 20, 30]
    assert [t.epoch for t in seq.times] == [None, None, None]


def test_a_folder_of_one_checkpoint_is_read_as_it_with_its_whole_float_epoch(tmp_path):
    save_snapshot(LayeredGraph([np.eye(2)], metadata={"epoch": 4.0}),
                  tmp_path / "only.safetensors")
    assert [t.epoch for t in read_sequence(tmp_path).times] == [4]
    choice = choose_snapshot(tmp_path)
    assert choice.path == tmp_path / "only.safetensors"
    assert choice.why == "the folder's one checkpoint, only.safetensors"
    g = load(tmp_path)
    assert g.metadata["snapshot_choice"] == "the folder's one checkpoint, only.safetensors"
    assert g.metadata["folder"] == str(tmp_path)


def test_a_run_whose_best_snapshot_is_missing_is_refused(tmp_path, write_run):
    run = write_run(tmp_path / "run", [[np.eye(2, dtype=bool)]] * 2, epochs=[1, 3])
    manifest = json.loads((run / "run.json").read_text())
    manifest.update(status="finished", best_snapshot="snapshots/epoch_0002.safetensors")
    (run / "run.json").write_text(json.dumps(manifest))
    with pytest.raises(UnreadableFileError,
                       match=rf"^{run}: its best snapshot snapshots/epoch_0002.safetensors is "
                             r"missing$"):
        choose_snapshot(run, best=True)


def test_a_snapshot_with_damaged_metadata_in_a_folder_is_refused(tmp_path):
    save_snapshot(LayeredGraph([np.eye(2)], metadata={"epoch": 1}), tmp_path / "a.safetensors")
    damaged = tmp_path / "b.safetensors"
    save_file({"layer.0.indptr": np.array([0, 1, 2], dtype=np.int64),
               "layer.0.indices": np.array([0, 1], dtype=np.int32),
               "layer.0.weight": np.array([1.0, 1.0], dtype=np.float32)}, str(damaged),
              metadata={"format": "topo.snapshot", "version": "1", "shapes": "[[2, 2]]",
                        "metadata": "{not json"})
    with pytest.raises(UnreadableFileError, match=rf"^{damaged}: damaged topo snapshot header"):
        read_sequence(tmp_path)
