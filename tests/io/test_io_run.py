"""Run directories (topo.io.run): file names, manifest and metrics reading, snapshot order."""

from __future__ import annotations

import pytest

from topo.errors import UnreadableFileError
from topo.io.run import (
    natural_key,
    read_manifest,
    read_metrics,
    snapshot_epoch,
    snapshot_level,
    snapshot_name,
    snapshot_paths,
)


def test_snapshot_names_sort_in_time_order_and_carry_epoch_and_level():
    assert snapshot_name(3) == "snapshots/epoch_0003.safetensors"
    assert snapshot_name(12, level=2) == "snapshots/level_02/epoch_0012.safetensors"
    assert snapshot_epoch(snapshot_name(12, level=2)) == 12
    assert snapshot_level(snapshot_name(12, level=2)) == 2
    assert snapshot_level(snapshot_name(12)) is None and snapshot_epoch("final.pt") is None
    names = ["ckpt_10.pt", "ckpt_2.pt", "ckpt_1.pt"]
    assert sorted(names, key=natural_key) == ["ckpt_1.pt", "ckpt_2.pt", "ckpt_10.pt"]


def test_manifest_missing_or_damaged_is_named(tmp_path):
    with pytest.raises(UnreadableFileError, match="not a topo run"):
        read_manifest(tmp_path)
    (tmp_path / "run.json").write_text("{ not json")
    with pytest.raises(UnreadableFileError, match="run.json: damaged run manifest"):
        read_manifest(tmp_path)


def test_metrics_spread_lists_and_refuse_a_damaged_middle_line(tmp_path):
    assert read_metrics(tmp_path).empty
    (tmp_path / "metrics.jsonl").write_text(
        '{"epoch": 0, "density": [0.5, 1.0]}\n\n{"epoch": 1, "density": [0.4, 1.0]}\n')
    frame = read_metrics(tmp_path)
    assert frame.columns.tolist() == ["epoch", "density_0", "density_1"]
    assert frame["density_0"].tolist() == [0.5, 0.4]
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 0}\n{"epo\n{"epoch": 2}\n')
    with pytest.raises(UnreadableFileError, match="metrics.jsonl: line 2 is not valid JSON"):
        read_metrics(tmp_path)


def test_snapshot_paths_of_a_file_or_a_missing_path(tmp_path):
    (tmp_path / "x.pt").write_bytes(b"")
    with pytest.raises(UnreadableFileError, match="expected a run directory"):
        snapshot_paths(tmp_path / "x.pt")
    with pytest.raises(UnreadableFileError, match="no such file or folder"):
        snapshot_paths(tmp_path / "missing")
