"""``topo.train``'s public names, imported on first use."""

from __future__ import annotations

import pytest

import topo.train


def test_public_names_resolve_to_their_modules():
    from topo.train import callbacks, data, rundir, runner, trainer

    assert topo.train.train is runner.train and topo.train.build_trainer is runner.build_trainer
    assert topo.train.Trainer is trainer.Trainer and topo.train.Callback is callbacks.Callback
    assert topo.train.load_dataset is data.load_dataset
    assert topo.train.best_snapshot is rundir.best_snapshot
    assert set(topo.train.__all__) <= set(dir(topo.train))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="no attribute 'Optimiser'"):
        _ = topo.train.Optimiser
