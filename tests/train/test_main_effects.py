"""NID's MLP-M: univariate networks beside the main one (Tsang et al. 2018)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from topo.errors import ConfigError
from topo.io import load
from topo.io.run import read_manifest, snapshot_paths
from topo.train import TrainConfig, train
from topo.train.checkpoint import checkpoint_path, load_checkpoint
from topo.train.main_effects import MainEffects

F1 = {"dataset": "synthetic-F1", "arch": [10, 12, 6, 1], "n_samples": 300, "batch_size": 50,
      "optimizer": "adam", "lr": 0.01, "l1": 5e-5}


def test_the_summed_output_is_that_of_one_small_network_per_feature():
    """Each feature's network computed on its own in numpy: relu(x W1 + b1) ... W4, added."""
    generator = torch.Generator().manual_seed(0)
    nets = MainEffects(3, 2, torch.nn.ReLU(), generator)
    x = torch.randn(5, 3, generator=generator)
    want = np.zeros((5, 2))
    W = [w.detach().numpy() for w in nets.weights]
    b = [v.detach().numpy() for v in nets.biases]
    for i in range(3):
        h = x[:, [i]].numpy()
        for k in range(3):
            h = np.maximum(h @ W[k][i] + b[k][i], 0.0)
        want += h @ W[3][i]   # the output layer has no bias, as in the authors' code
    np.testing.assert_allclose(nets(x).detach().numpy(), want, rtol=1e-5, atol=1e-6)
    assert [tuple(w.shape) for w in nets.weights] == [(3, 1, 10), (3, 10, 10), (3, 10, 10),
                                                      (3, 10, 2)]
    # nn.Linear's default: U(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert float(nets.weights[1].detach().abs().max()) <= 1 / np.sqrt(10)
    assert float(nets.weights[0].detach().abs().max()) <= 1.0


def test_a_run_with_main_effects_snapshots_the_main_network_and_checkpoints_both(tmp_path):
    out = tmp_path / "mlpm"
    train(TrainConfig(method="dense", epochs=2, main_effects=True, **F1), out, progress=False)
    graph = load(snapshot_paths(out)[-1])
    assert graph.widths == [10, 12, 6, 1]   # the main network only
    described = graph.metadata["main_effects"]
    assert (described["networks"], described["widths"], described["in_graph"]) == (
        10, [1, 10, 10, 10, 1], False)
    assert read_manifest(out)["main_effects"] == described
    state, _ = load_checkpoint(checkpoint_path(out))
    assert [tuple(t.shape) for t in state["main_effects"]] == [
        (10, 1, 10), (10, 10, 10), (10, 10, 10), (10, 10, 1), (10, 10), (10, 10), (10, 10)]
    # the main network's output plus the univariate networks' is what was trained: the
    # snapshot alone does not reproduce the model
    from topo.train.runner import build_trainer

    trainer = build_trainer(TrainConfig(method="dense", epochs=2, main_effects=True, **F1))
    trainer.load_state_dict(state)
    x = torch.from_numpy(np.random.default_rng(0).normal(size=(4, 10)).astype(np.float32))
    with torch.no_grad():
        main = x.numpy()
        for k, (w, bias) in enumerate(zip(graph.layers, graph.biases)):
            main = main @ w.toarray().T + bias
            main = np.maximum(main, 0) if k < 2 else main
        uni = trainer.model.main_effects(x).numpy()
        np.testing.assert_allclose(trainer.model(x).numpy(), main + uni, rtol=1e-4, atol=1e-5)


def test_the_l1_penalty_stays_on_the_main_network():
    from topo.train.optim import l1_penalty
    from topo.train.runner import build_trainer

    model = build_trainer(TrainConfig(method="dense", epochs=1, main_effects=True, **F1)).model
    want = 5e-5 * sum(np.abs(layer.values.detach().numpy()).sum() for layer in model.layers)
    assert float(l1_penalty(5e-5)(model).detach()) == pytest.approx(want, rel=1e-6)


def test_main_effects_resume_bitwise_and_leave_runs_without_them_unchanged(tmp_path,
                                                                         monkeypatch):
    from topo.train.trainer import Trainer

    config = TrainConfig(method="set", epochs=3, main_effects=True, **F1)
    train(config, tmp_path / "ref", progress=False)
    real, calls = Trainer.train_epoch, {"n": 0}

    def interrupted(self):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(self)

    monkeypatch.setattr(Trainer, "train_epoch", interrupted)
    with pytest.raises(KeyboardInterrupt):
        train(config, tmp_path / "cut", progress=False)
    monkeypatch.setattr(Trainer, "train_epoch", real)
    train(config, tmp_path / "cut", resume=True, progress=False)
    assert [p.read_bytes() for p in snapshot_paths(tmp_path / "ref")] == [
        p.read_bytes() for p in snapshot_paths(tmp_path / "cut")]
    # the univariate networks draw after the main network: its initial weights are those of
    # the same run without them
    train(config.replace(main_effects=False, epochs=1), tmp_path / "plain", progress=False)
    a, b = (load(snapshot_paths(tmp_path / name)[0]) for name in ("ref", "plain"))
    assert all((wa != wb).nnz == 0 for wa, wb in zip(a.layers, b.layers))


def test_imp_with_main_effects_is_refused():
    with pytest.raises(ConfigError, match="main_effects with imp is not supported"):
        TrainConfig(method="imp", main_effects=True)
