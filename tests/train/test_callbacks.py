"""Callbacks one by one, driven by hand-made epochs."""

from __future__ import annotations

import json
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from topo.io import load
from topo.train import TrainConfig
from topo.train.callbacks import (
    Callback,
    CallbackList,
    Checkpointer,
    EarlyStopping,
    EpochEnd,
    Manifest,
    MetricsWriter,
    ProgressBar,
    SnapshotWriter,
)
from topo.train.checkpoint import load_checkpoint
from topo.train.data import load_dataset
from topo.train.methods import Method
from topo.train.model import SparseMLP
from topo.train.rundir import RunDirectory

from .conftest import tiny_layer


def _trainer(epochs: int = 5, level=None):
    """The parts of a trainer the callbacks read."""
    return SimpleNamespace(epoch=0, step=0, level=level, epochs=epochs, stop=False,
                           model=SparseMLP([tiny_layer()], "identity"), method=Method(),
                           state_dict=lambda: {"epoch": 7, "w": torch.ones(2)})


def _epochs(callback, trainer, val_losses):
    flags = []
    for e, val in enumerate(val_losses, start=1):
        trainer.epoch = e
        event = EpochEnd({"val_loss": val})
        callback.on_epoch_end(trainer, event)
        flags.append((event.improved, trainer.stop))
    return flags


def test_early_stopping_marks_improvements_and_stops_after_patience():
    trainer, stopping = _trainer(), EarlyStopping(patience=2)
    stopping.on_epoch_end(trainer, EpochEnd({"val_loss": 0.0}))   # epoch 0: not judged
    assert stopping.best is None
    flags = _epochs(stopping, trainer, [3.0, 2.0, 2.5, 2.0])
    # 2.0 ties the best: not an improvement; two epochs without one stop the level
    assert flags == [(True, False), (True, False), (False, False), (False, True)]
    assert stopping.best["epoch"] == 2 and stopping.best["val_loss"] == 2.0


def test_early_stopping_restores_its_best_weights_at_the_end_of_a_level():
    trainer, stopping = _trainer(), EarlyStopping(patience=5)
    _epochs(stopping, trainer, [1.0])
    layer = trainer.model.layers[0]
    layer.values.data = torch.tensor([9.0, 9.0, 9.0, 9.0])
    layer.bias.data.fill_(9.0)
    stopping.on_level_end(trainer)
    assert layer.values.data.tolist() == [1.0, 2.0, 3.0, 4.0]
    assert layer.bias.data.tolist() == [0.0, 0.0]
    assert stopping.best is None and stopping.bad_epochs == 0
    stopping.on_level_end(trainer)   # a level without a best epoch leaves the weights
    assert layer.values.data.tolist() == [1.0, 2.0, 3.0, 4.0]
    restored = EarlyStopping(patience=5)
    restored.load_state_dict({"best": None, "bad_epochs": 1})
    assert restored.state_dict() == {"best": None, "bad_epochs": 1}


def test_snapshots_are_written_when_due_improved_or_last(tmp_path):
    config = TrainConfig(method="static", dataset="digits", epochs=5, snapshot_every=2, seed=2)
    run_dir = RunDirectory(tmp_path, config)
    writer = SnapshotWriter(run_dir, config, "classification", (2, 2))
    trainer = _trainer(epochs=5)
    for e in range(6):
        trainer.epoch, trainer.step = e, 10 * e
        writer.on_epoch_end(trainer, EpochEnd({"test_accuracy": 0.5, "test_loss": 1.5,
                                               "loss": 9.0}, improved=e == 3))
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == [
        f"epoch_{e:04d}.safetensors" for e in (0, 2, 3, 4, 5)]
    assert writer.last == "snapshots/epoch_0005.safetensors"
    assert writer.best_of(None) == "snapshots/epoch_0003.safetensors"
    meta = load(tmp_path / "snapshots/epoch_0003.safetensors").metadata
    assert {k: meta[k] for k in ("run_id", "method", "dataset", "seed", "epoch", "step",
                                 "activation", "task", "test_accuracy", "test_loss")} == {
        "run_id": run_dir.run_id, "method": "static", "dataset": "digits", "seed": 2,
        "epoch": 3, "step": 30, "activation": "relu", "task": "classification",
        "test_accuracy": 0.5, "test_loss": 1.5}
    assert "loss" not in meta and "level" not in meta


def test_a_stopped_level_writes_its_last_epoch_in_its_level_folder(tmp_path):
    config = TrainConfig(method="imp", dataset="digits", epochs=9, snapshot_every=4)
    writer = SnapshotWriter(RunDirectory(tmp_path, config), config, "classification", None)
    trainer = _trainer(epochs=9, level=2)
    trainer.epoch, trainer.stop = 3, True
    writer.on_epoch_end(trainer, EpochEnd({}))
    assert writer.last == "snapshots/level_02/epoch_0003.safetensors"
    assert load(tmp_path / writer.last).metadata["level"] == 2
    other = SnapshotWriter(RunDirectory(tmp_path, config), config, "classification", None)
    other.load_state_dict(writer.state_dict())
    assert other.last == writer.last and other.best_of(2) is None


def test_metrics_rows_are_rewritten_whole_and_truncated_on_resume(tmp_path):
    run_dir = RunDirectory(tmp_path, TrainConfig())
    metrics = MetricsWriter(run_dir)
    for e in range(3):
        metrics.on_epoch_end(_trainer(), EpochEnd({"epoch": e, "loss": float("nan"),
                                                   "n": [np.int64(e)]}))
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    # a number JSON cannot hold is null; numpy scalars are plain numbers
    assert [json.loads(line) for line in lines] == [{"epoch": e, "loss": None, "n": [e]}
                                                    for e in range(3)]
    resumed = MetricsWriter(run_dir)
    resumed.load_state_dict({"rows": 2})   # the checkpoint counted two rows
    assert resumed.rows == lines[:2] and resumed.state_dict() == {"rows": 2}


def test_checkpointer_stores_the_trainer_state_under_the_run_id(tmp_path):
    run_dir = RunDirectory(tmp_path, TrainConfig())
    Checkpointer(run_dir).on_epoch_end(_trainer(), EpochEnd({}))
    state, stored_id = load_checkpoint(run_dir.checkpoint)
    assert stored_id == run_dir.run_id and state["epoch"] == 7
    assert torch.equal(state["w"], torch.ones(2))


def test_progress_bar_counts_epochs_of_every_level(capsys):
    bar = ProgressBar("imp digits")
    trainer = _trainer(epochs=3, level=0)
    trainer.method.levels = 1
    bar.on_train_start(trainer)
    assert bar.bar.total == 6
    for e in (0, 1, 2):
        trainer.epoch = e
        bar.on_epoch_end(trainer, EpochEnd({"loss": 0.5, "test_accuracy": 0.25,
                                            "test_mse": 1.0}))
    bar.on_level_end(trainer)   # stopped early after epoch 2 of 3: one epoch skipped
    assert bar.bar.n == 3
    trainer.epoch = 1
    bar.on_epoch_end(trainer, EpochEnd({"loss": 0.5, "test_mse": 1.0}))
    assert bar.bar.postfix == "loss=0.5000, mse=1"
    bar.close()
    assert "imp digits" in capsys.readouterr().err
    ProgressBar("unused").close()


def test_manifest_is_written_at_a_fresh_start_and_completed_at_the_end(tmp_path):
    config = TrainConfig(method="static", dataset="digits", epochs=5)
    run_dir = RunDirectory(tmp_path, config)
    data = load_dataset("digits", seed=0)
    snapshots = SnapshotWriter(run_dir, config, "classification", (8, 8))
    trainer = _trainer(epochs=5)
    manifest = Manifest(run_dir, config, data, snapshots, started="t0", fresh=True)
    manifest.on_train_start(trainer)
    written = json.loads((tmp_path / "run.json").read_text())
    assert written["status"] == "running" and written["started"] == "t0"
    # the density it starts with: tiny_layer has 4 of 8 connections
    assert (written["initial_density"], written["initial_connections"]) == (0.5, [4])
    # a resumed run says running again and keeps what the manifest held
    (tmp_path / "run.json").write_text(json.dumps({**written, "status": "interrupted"}))
    resumed = Manifest(run_dir, config, data, snapshots, started="t0", fresh=False)
    resumed.on_train_start(trainer)
    again = json.loads((tmp_path / "run.json").read_text())
    assert again["status"] == "running" and again["initial_density"] == 0.5
    assert written["widths"] == [4, 2] and written["input_shape"] == [8, 8]
    assert written["torch_threads"] == torch.get_num_threads()
    snapshots.last, snapshots.best = "snapshots/epoch_0004.safetensors", {
        "0": "snapshots/epoch_0002.safetensors"}
    trainer.epoch, trainer.stop = 4, True
    manifest.on_train_end(trainer)
    written = json.loads((tmp_path / "run.json").read_text())
    assert (written["status"], written["best_snapshot"], written["best_epoch"],
            written["final_snapshot"], written["stopped_early"], written["stopped_epoch"]) == (
        "finished", "snapshots/epoch_0002.safetensors", 2,
        "snapshots/epoch_0004.safetensors", True, 4)


def test_callback_list_calls_in_order_and_keys_states():
    calls = []

    class Probe(Callback):
        def __init__(self, key):
            self.key = key

        def on_train_start(self, trainer):
            calls.append((self.key, "start"))

        def on_mask_update(self, trainer, changes):
            calls.append((self.key, "mask"))

        def state_dict(self):
            return {"k": self.key}

        def load_state_dict(self, state):
            calls.append((self.key, "load", state))

    plain = Callback()
    callbacks = CallbackList([Probe("a"), plain, Probe("b")])
    assert list(callbacks)[1] is plain and plain.state_dict() == {}
    callbacks.on_train_start(None)
    callbacks.on_mask_update(None, {})
    callbacks.on_level_end(None)
    callbacks.on_train_end(None)
    assert callbacks.state_dict() == {"a": {"k": "a"}, "b": {"k": "b"}}
    callbacks.load_state_dict({"b": {"k": 1}})   # a callback the file does not know starts anew
    assert calls == [("a", "start"), ("b", "start"), ("a", "mask"), ("b", "mask"),
                     ("b", "load", {"k": 1})]
    with pytest.raises(ValueError, match="share a state key"):
        CallbackList([Probe("a"), Probe("a")])


def test_itop_rate_is_the_union_of_every_connection_set_since_the_start():
    """4-input, 2-output layer (8 positions) beside a 2-position one that is not prunable."""
    from topo.train.callbacks import ITOPRate
    from topo.train.methods import LayerChange
    from topo.train.model import SparseLinear

    fixed = SparseLinear(2, 1, np.array([0]), torch.tensor([1.0]), torch.zeros(1))
    trainer = _trainer()
    trainer.model = SparseMLP([tiny_layer(), fixed], "identity")
    trainer.prunable = [True, False]
    itop = ITOPRate()
    itop.on_mask_update(trainer, {0: LayerChange(1, 1)})   # before the start: not training yet
    itop.on_train_start(trainer)
    layer = trainer.model.layers[0]
    rows = []
    for flat in ([0, 2, 5, 7], [1, 2, 5, 7], [1, 3, 5, 6], [0, 2, 5, 7]):
        layer.set_structure(np.array(flat), torch.ones(4))
        itop.on_mask_update(trainer, {0: LayerChange(1, 1)})
        event = EpochEnd({})
        itop.on_epoch_end(trainer, event)
        rows.append(event.row)
    # ever connected: {0,2,5,7}, then +1, then +3,6, then nothing new: 4, 5, 7, 7 of 8
    assert [r["itop_rate"] for r in rows] == [[4 / 8, 1 / 2], [5 / 8, 1 / 2],
                                              [7 / 8, 1 / 2], [7 / 8, 1 / 2]]
    # the network rate counts the layers the method may change (Liu et al.'s masked layers)
    assert [r["itop_rate_network"] for r in rows] == [4 / 8, 5 / 8, 7 / 8, 7 / 8]
    # the union survives a checkpoint round trip (packed bits)
    resumed = ITOPRate()
    resumed.load_state_dict(itop.state_dict())
    assert [e.tolist() for e in resumed.ever] == [[True, True, True, True, False, True, True,
                                                   True], [True, False]]


def test_itop_rate_of_a_run_resumed_without_its_union_is_not_made_up():
    from topo.train.callbacks import ITOPRate

    trainer = _trainer()
    trainer.prunable, trainer.step = [True], 40   # a resumed run: training went on before
    itop = ITOPRate()
    itop.load_state_dict({"ever": None})
    itop.on_train_start(trainer)
    event = EpochEnd({})
    itop.on_epoch_end(trainer, event)
    assert event.row == {} and itop.state_dict() == {"ever": None}


def test_a_change_that_cuts_the_network_off_its_input_warns_once_per_kind():
    from topo.train.callbacks import ConnectivityWatch
    from topo.train.methods import LayerChange
    from topo.train.sparsity import ConnectivityWarning

    trainer = _trainer()
    trainer.epoch, trainer.step = 2, 17
    watch = ConnectivityWatch()
    layer = trainer.model.layers[0]   # 4 inputs, 2 outputs, connections 0, 2, 5, 7
    watch.on_mask_update(trainer, {0: LayerChange(0, 1)})   # initialisation: not watched
    watch.on_train_start(trainer)
    layer.set_structure(np.array([0, 2]), torch.ones(2))   # output 1 lost its inputs
    with pytest.warns(ConnectivityWarning, match=r"^Method at epoch 2, step 17: output unit 1 "
                                                 r"of 2 is reached by no input$"):
        watch.on_mask_update(trainer, {0: LayerChange(0, 2)})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        watch.on_mask_update(trainer, {0: LayerChange(0, 0)})   # the same problem: quiet
    layer.set_structure(np.zeros(0, dtype=np.int64), torch.zeros(0))
    with pytest.warns(ConnectivityWarning, match="layer 0 has no connection; no input unit"):
        watch.on_mask_update(trainer, {0: LayerChange(0, 2)})
