"""Checkpoints: any trainer state round-trips exactly; damaged or foreign files are refused;
a checkpoint of the first format (topo 0.1.0) still resumes."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from topo.errors import UnreadableFileError
from topo.io import load
from topo.io.snapshot import safetensors_bytes
from topo.train.checkpoint import (
    CHECKPOINT_FORMAT,
    generator_state,
    load_checkpoint,
    restore_generators,
    save_checkpoint,
)

V1_RUN = Path(__file__).parent / "data" / "v1-interrupted-imp"


def test_a_nested_state_round_trips_exactly(tmp_path):
    state = {
        "epoch": 3, "val": 0.1 + 0.2, "none": None, "flag": True, "name": "x",
        "big": 2 ** 100, "numpy_scalar": np.float64(1.5),
        "layers": [{"flat": torch.tensor([0, 5, 7]), "values": torch.tensor([0.5, -1.25, 3.0])}],
        "scalar": torch.tensor(4.0),   # Adam's step is a 0-d tensor
        "bytes": torch.tensor([0, 255, 7], dtype=torch.uint8),
        "empty": torch.zeros(0), "nested": [[1, 2], {"a": [None]}], "tuple": (1, 2),
    }
    path = save_checkpoint(tmp_path / "state.ckpt", state, run_id="run-1")
    loaded, run_id = load_checkpoint(path)
    assert run_id == "run-1"
    assert loaded["epoch"] == 3 and loaded["val"] == 0.1 + 0.2 and loaded["none"] is None
    assert loaded["flag"] is True and loaded["big"] == 2 ** 100
    assert loaded["numpy_scalar"] == 1.5 and loaded["nested"] == [[1, 2], {"a": [None]}]
    assert loaded["tuple"] == [1, 2]
    for key, value in (("scalar", state["scalar"]), ("bytes", state["bytes"]),
                       ("empty", state["empty"])):
        assert loaded[key].dtype == value.dtype and loaded[key].shape == value.shape
        assert torch.equal(loaded[key], value)
    for key in ("flat", "values"):
        assert torch.equal(loaded["layers"][0][key], state["layers"][0][key])
    # the file is topo's safetensors layout: tensors named by their place in the state
    header = json.loads(path.read_bytes()[8:8 + int.from_bytes(path.read_bytes()[:8],
                                                                 "little")])
    assert "layers.0.values" in header and header["__metadata__"]["format"] == CHECKPOINT_FORMAT


@pytest.mark.parametrize("state, message", [
    ({1: "x"}, "not a string"),
    ({"f": object()}, "holds a object"),
])
def test_states_that_cannot_be_stored_are_refused(tmp_path, state, message):
    with pytest.raises(TypeError, match=message):
        save_checkpoint(tmp_path / "s.ckpt", state, run_id="r")
    assert not (tmp_path / "s.ckpt").exists()


def test_missing_damaged_foreign_and_newer_files_are_refused(tmp_path):
    with pytest.raises(UnreadableFileError, match="no training checkpoint"):
        load_checkpoint(tmp_path / "none.ckpt")
    good = save_checkpoint(tmp_path / "good.ckpt", {"w": torch.ones(3)}, run_id="r")
    (tmp_path / "cut.ckpt").write_bytes(good.read_bytes()[:-5])
    with pytest.raises(UnreadableFileError, match="damaged training checkpoint"):
        load_checkpoint(tmp_path / "cut.ckpt")
    (tmp_path / "snap.ckpt").write_bytes(safetensors_bytes({"w": np.ones(2)},
                                                           {"format": "topo.snapshot"}))
    with pytest.raises(UnreadableFileError, match="not a topo training checkpoint"):
        load_checkpoint(tmp_path / "snap.ckpt")
    (tmp_path / "new.ckpt").write_bytes(safetensors_bytes(
        {"w": np.ones(2)}, {"format": CHECKPOINT_FORMAT, "version": "3", "state": "{}"}))
    with pytest.raises(UnreadableFileError, match="version 3 is newer"):
        load_checkpoint(tmp_path / "new.ckpt")


@pytest.mark.parametrize("bit_generator", [np.random.PCG64, np.random.MT19937])
def test_generator_states_restore_every_stream(tmp_path, bit_generator):
    generator, rng = torch.Generator().manual_seed(1), np.random.Generator(bit_generator(2))
    state = generator_state(generator, rng)
    save_checkpoint(tmp_path / "g.ckpt", state, run_id="r")
    after = (torch.rand(3, generator=generator), rng.random(3), torch.rand(3),
             np.random.random(3), random.random())
    generator2 = torch.Generator().manual_seed(99)
    rng2 = np.random.Generator(bit_generator(99))
    restore_generators(load_checkpoint(tmp_path / "g.ckpt")[0], generator2, rng2)
    again = (torch.rand(3, generator=generator2), rng2.random(3), torch.rand(3),
             np.random.random(3), random.random())
    assert torch.equal(after[0], again[0]) and torch.equal(after[2], again[2])
    np.testing.assert_array_equal(after[1], again[1])
    np.testing.assert_array_equal(after[3], again[3])
    assert after[4] == again[4]


def test_a_first_format_checkpoint_reads_as_the_same_trainer_state():
    """The fixture: an IMP run (64-6-10, Adam, early stopping) of topo 0.1.0 interrupted after
    epoch 1 of level 1; its snapshot of that epoch holds the checkpoint's weights."""
    state, run_id = load_checkpoint(V1_RUN / "checkpoint" / "state.ckpt")
    assert run_id == json.loads((V1_RUN / "run.json").read_text())["run_id"]
    assert (state["epoch"], state["level"], state["step"], state["stop"]) == (1, 1, 54, False)
    snapshot = load(V1_RUN / "snapshots" / "level_01" / "epoch_0001.safetensors")
    for layer, w, b in zip(state["model"], snapshot.layers, snapshot.biases):
        rows = np.repeat(np.arange(w.shape[0]), np.diff(w.indptr))
        np.testing.assert_array_equal(layer["flat"].numpy(), rows * w.shape[1] + w.indices)
        np.testing.assert_array_equal(layer["values"].numpy(), w.data)
        np.testing.assert_array_equal(layer["bias"].numpy(), b)
    # Adam's state of the 4 parameters after the 18 steps of level 1 (1123 samples / 64)
    assert [s["step"].item() for s in state["optimizer"]] == [18.0] * 4
    assert state["optimizer"][0]["exp_avg"].shape == state["model"][0]["values"].shape
    assert len(state["method"]["rewind_point"]) == 2
    best = state["callbacks"]["early_stopping"]["best"]
    assert best["epoch"] == 1 and torch.equal(best["weights"][1]["values"],
                                              state["model"][1]["values"])
    assert state["callbacks"]["metrics"] == {"rows": 5}
    assert state["callbacks"]["snapshots"]["last"] == "snapshots/level_01/epoch_0001.safetensors"


def test_a_first_format_run_resumes_to_its_end(tmp_path):
    from topo.io.run import read_manifest, read_metrics
    from topo.train import TrainConfig, train

    run = tmp_path / "run"
    shutil.copytree(V1_RUN, run)
    config = TrainConfig.from_dict(read_manifest(run)["config"])
    train(config, run, resume=True, progress=False)
    manifest = read_manifest(run)
    assert manifest["status"] == "finished"
    assert manifest["final_snapshot"] == "snapshots/level_01/epoch_0002.safetensors"
    df = read_metrics(run)
    assert list(zip(df["level"], df["epoch"])) == [(0, 0), (0, 1), (0, 2), (1, 0), (1, 1),
                                                   (1, 2)]
    assert df["step"].tolist()[-1] == 72   # 54 + 18
    assert load(run / manifest["final_snapshot"]).metadata["level"] == 1
