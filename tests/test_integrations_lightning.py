"""topo.integrations.lightning: a real Lightning Trainer (CPU) with Lightning's own pruning
callback, recorded by TopologyCallback, against Lightning's own checkpoints of the same run."""

from __future__ import annotations

import importlib
import json
import sys

import numpy as np
import pytest

import topo
from topo.cli import main
from topo.io.run import read_manifest, read_metrics

# Lightning (and torch) are imported by the tests that use them, not at collection; the tests
# of this file run on one xdist worker, so only that worker imports Lightning.
pytestmark = pytest.mark.xdist_group("torch-dynamo")


@pytest.fixture
def pl():
    return pytest.importorskip("lightning.pytorch")   # installed with topo's dev extra


def tiny_module(pl):
    """A 12-16-4 Lightning module class (its weights drawn with seed 0)."""
    import torch
    from torch import nn

    class TinyModule(pl.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.model = nn.Sequential(nn.Linear(12, 16), nn.ReLU(), nn.Linear(16, 4))

        def forward(self, x):
            return self.model(x)

        def training_step(self, batch, batch_idx):
            x, y = batch
            loss = nn.functional.cross_entropy(self(x), y)
            self.log("train_loss", loss, on_epoch=True, on_step=False)
            return loss

        def configure_optimizers(self):
            return torch.optim.SGD(self.parameters(), lr=0.1)

    return TinyModule


def loader():
    import torch

    g = torch.Generator().manual_seed(0)
    data = torch.utils.data.TensorDataset(torch.randn(64, 12, generator=g),
                                          torch.randint(0, 4, (64,), generator=g))
    return torch.utils.data.DataLoader(data, batch_size=16)


@pytest.mark.slow
def test_the_callback_records_what_lightning_checkpoints_hold(pl, tmp_path, capsys):
    from lightning.pytorch.callbacks import ModelCheckpoint, ModelPruning

    from topo.integrations.lightning import TopologyCallback

    module = tiny_module(pl)()
    trainer = pl.Trainer(
        max_epochs=3, accelerator="cpu", logger=False, enable_progress_bar=False,
        enable_model_summary=False, default_root_dir=tmp_path,
        callbacks=[ModelPruning("l1_unstructured", amount=0.25, parameter_names=["weight"],
                                use_global_unstructured=False, make_pruning_permanent=False,
                                verbose=0),
                   TopologyCallback(tmp_path / "run", metadata={"framework": "lightning"}),
                   ModelCheckpoint(dirpath=tmp_path / "ckpts", save_top_k=-1,
                                   every_n_epochs=1)])
    trainer.fit(module, loader())

    manifest = read_manifest(tmp_path / "run")
    assert manifest["status"] == "finished"
    assert manifest["recorder"]["layers"] == ["0", "2"]   # "model." left out, as in a ckpt
    metrics = read_metrics(tmp_path / "run")
    assert metrics["epoch"].tolist() == [0, 1, 2, 3]
    assert metrics["step"].tolist() == [0, 4, 8, 12]   # 4 batches an epoch
    assert metrics["train_loss"].iloc[1:].notna().all()
    # pruning 25 % of what is left each epoch: 192 -> 144 -> 108 -> 81 in the first layer
    assert metrics["connections_0"].tolist() == [192, 144, 108, 81]

    # each recorded epoch is what Lightning's checkpoint of that epoch holds
    ckpts = topo.read_sequence(tmp_path / "ckpts")
    assert [(e.metadata["epoch"], e.metadata["step"]) for e in ckpts] == [
        (0, 4), (1, 8), (2, 12)]
    recorded = topo.read_sequence(tmp_path / "run")
    for entry in ckpts:
        mine = recorded[entry.metadata["epoch"] + 1].graph
        for a, b in zip(mine.layers, entry.graph.layers):
            np.testing.assert_array_equal(a.toarray(), b.toarray())
            np.testing.assert_array_equal(a.indices, b.indices)
    assert main(["evolution", str(tmp_path / "ckpts"), "--json", "--no-persistence"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(r["epoch"], r["step"], r["epoch_source"]) for r in rows[::2]] == [
        (0, 4, "metadata"), (1, 8, "metadata"), (2, 12, "metadata")]


def test_an_exception_in_training_marks_the_run_interrupted(pl, tmp_path):
    from topo.integrations.lightning import TopologyCallback

    class Failing(tiny_module(pl)):
        def training_step(self, batch, batch_idx):
            if self.current_epoch == 1:
                raise RuntimeError("diverged")
            return super().training_step(batch, batch_idx)

    trainer = pl.Trainer(max_epochs=3, accelerator="cpu", logger=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False, default_root_dir=tmp_path,
                         callbacks=[TopologyCallback(tmp_path / "run")])
    with pytest.raises(RuntimeError, match="diverged"):
        trainer.fit(Failing(), loader())
    assert read_manifest(tmp_path / "run")["status"] == "interrupted"
    assert read_metrics(tmp_path / "run")["epoch"].tolist() == [0, 1]


def test_without_lightning_the_import_names_the_extra(monkeypatch):
    for name in [n for n in sys.modules
                 if n.split(".")[0] in ("lightning", "pytorch_lightning")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "lightning", None)
    monkeypatch.setitem(sys.modules, "pytorch_lightning", None)
    monkeypatch.delitem(sys.modules, "topo.integrations.lightning", raising=False)
    with pytest.raises(ImportError, match=r"pip install 'topo\[lightning\]'"):
        importlib.import_module("topo.integrations.lightning")
