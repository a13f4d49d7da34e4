"""TopologyCallback on a process other than global rank 0, and the trainer metrics it keeps;
the hooks are called directly with stand-ins for Lightning's trainer."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

torch = pytest.importorskip("torch")

# Lightning is imported by the tests, not at collection, and on the one worker of the suite
# that runs the other tests importing it (tests/test_integrations_lightning.py)
pytestmark = pytest.mark.xdist_group("torch-dynamo")


@pytest.fixture
def lightning():
    """topo.integrations.lightning (its tests skip where Lightning is not installed)."""
    pytest.importorskip("lightning.pytorch")
    import topo.integrations.lightning as module

    return module


def test_a_process_other_than_rank_zero_records_nothing(lightning, tmp_path):
    callback = lightning.TopologyCallback(tmp_path / "run")
    trainer = SimpleNamespace(is_global_zero=False, current_epoch=0, global_step=0,
                              callback_metrics={})
    module = torch.nn.Linear(3, 2)
    callback.on_train_start(trainer, module)
    callback.on_train_batch_end(trainer, module, None, None, 0)
    callback.on_train_epoch_end(trainer, module)
    callback.on_exception(trainer, module, RuntimeError("stop"))
    callback.on_train_end(trainer, module)
    assert callback.recorder is None
    assert not (tmp_path / "run").exists()


def test_only_single_numbers_are_kept_and_topo_names_are_prefixed(lightning):
    metrics = {"train_loss": torch.tensor(0.5), "val_acc": 0.75, "steps": 3,
               "epoch": torch.tensor(2.0),                # a name topo writes itself
               "per_class": torch.tensor([0.1, 0.2]),    # not one number
               "flag": True, "note": "text"}
    assert lightning.scalar_metrics(metrics) == {"train_loss": 0.5, "val_acc": 0.75, "steps": 3.0,
                                       "lightning_epoch": 2.0}
