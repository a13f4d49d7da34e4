"""Sparse CNNs in the training core: the conv layer against torch's conv2d, the
architectures against their papers' counts, ERK with the kernel, the wiring of the graphs
they write, every method on a conv network, and exact resumption after SIGKILL."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from topo import load
from topo.errors import ConfigError
from topo.io.run import read_manifest, read_metrics, snapshot_paths
from topo.train import TrainConfig, train
from topo.train.cnn import SparseConv2d, architecture
from topo.train.sparsity import connectivity, kernel_densities

from .conftest import die_in_step, run_until_killed

# a ResNet-20 with 4-8-16 channels and a LeNet-5 with 2-4 channels, 30-24-10 hidden: tiny
TINY_RESNET = {"model": "resnet20", "width": 0.25, "dataset": "digits", "batch_size": 128,
               "seed": 5}
TINY_LENET = {"model": "lenet5", "width": 0.3, "dataset": "digits", "batch_size": 128,
              "seed": 5}


def _conv(backend: str, bias: bool = True) -> SparseConv2d:
    rng = np.random.default_rng(0)
    flat = np.sort(rng.choice(4 * 3 * 9, size=50, replace=False))
    values = torch.from_numpy(rng.normal(size=50).astype(np.float32))
    b = torch.arange(4, dtype=torch.float32) if bias else None
    return SparseConv2d(3, 4, (3, 3), flat, values, b, stride=2, padding=1, backend=backend)


@pytest.mark.parametrize("backend", ["dense", "sparse"])
def test_sparse_conv_computes_torch_conv2d_of_its_masked_kernel(backend):
    layer = _conv(backend)
    kernel = np.zeros(4 * 27, dtype=np.float32)
    kernel[layer.flat.numpy()] = layer.values.data.numpy()
    weight = torch.from_numpy(kernel.reshape(4, 3, 3, 3)).requires_grad_(True)
    x = torch.randn(5, 3, 7, 7, generator=torch.Generator().manual_seed(1))
    expected = F.conv2d(x, weight, torch.arange(4.0), stride=2, padding=1)
    out = layer(x)
    assert layer.uses_sparse == (backend == "sparse")
    torch.testing.assert_close(out, expected, rtol=1e-5, atol=1e-5)
    # gradients of the connections: torch's kernel gradient read at their positions
    grad_out = torch.randn_like(expected)
    (expected * grad_out).sum().backward()
    (out * grad_out).sum().backward()
    torch.testing.assert_close(layer.values.grad,
                               weight.grad.reshape(-1)[layer.flat], rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(layer.bias.grad, grad_out.sum((0, 2, 3)), rtol=1e-4, atol=1e-4)


def test_conv_flat_index_is_pytorchs_weight_reshape():
    # element (o=1, c=2, i=0, j=2) of a (2, 3, 3, 3) kernel: 1*27 + 2*9 + 0*3 + 2 = 47
    layer = SparseConv2d(3, 2, (3, 3), np.array([47]), torch.tensor([5.0]), None)
    assert layer.kernel()[1, 2, 0, 2] == 5.0 and layer.kernel().abs().sum() == 5.0
    assert layer.size == 54 and layer.parameter_list() == [layer.values]


def test_erk_puts_the_kernel_in_the_formula():
    # raw densities sum(shape)/prod(shape): (4,2,3,3) -> 12/72 = 1/6, (8,4,3,3) -> 18/288 =
    # 1/16; density 0.1 of 360 = 36 connections = eps (12 + 18) -> eps = 1.2
    shapes = [(4, 2, 3, 3), (8, 4, 3, 3)]
    assert kernel_densities("erk", shapes, [True, True], epsilon=1.0, density=0.1) == \
        pytest.approx([0.2, 0.075])
    # ER is kernel-blind: (2+4)/8 = 0.75, (4+8)/32 = 0.375; eps (54 + 108) = 36
    assert kernel_densities("er", shapes, [True, True], epsilon=1.0, density=0.1) == \
        pytest.approx([1 / 6, 1 / 12])
    # ER with epsilon and no density: min(1, eps (c_in + c_out) / (c_in c_out))
    assert kernel_densities("er", shapes, [True, True], epsilon=0.5, density=None) == \
        pytest.approx([0.375, 0.1875])


def test_resnet20_has_the_papers_layers_and_weights():
    arch = architecture("resnet20", (3, 32, 32), 10)
    convs = [s for s in arch.specs if s.kind == "conv"]
    assert len(arch.specs) == 20 and len(convs) == 19
    # 3*16*9 + 6*16*16*9 + (16*32*9 + 5*32*32*9) + (32*64*9 + 5*64*64*9) + 64*10: the
    # 0.27M parameters of He et al. (2016), Table 6 (BatchNorm aside)
    assert sum(arch.sizes) == 432 + 13824 + 50688 + 202752 + 640
    assert [s.stride for s in convs].count(2) == 2 and not any(s.bias for s in convs)
    # option A: where the stream widens, planes // 4 new channels on each side
    assert [c[3] for c in arch.carries] == [8, 16]


def test_lenet5_on_mnist_is_lecuns():
    arch = architecture("lenet5", (1, 28, 28), 10)
    assert [s.shape for s in arch.specs] == [(6, 1, 5, 5), (16, 6, 5, 5), (120, 400),
                                             (84, 120), (10, 84)]
    assert arch.specs[2].kernel == (5, 5)   # 16 channels of 5x5 flattened


def test_a_picture_too_small_is_refused():
    with pytest.raises(ConfigError, match="needs larger pictures"):
        architecture("conv4", (1, 3, 3), 10)


def test_connectivity_follows_option_a_shortcuts():
    # set 0 (2 units) -> layer 0 -> set 1 (2) -> layer 1 (empty) -> set 2 (4), into which an
    # identity carries set 1 at offset 1: units 1 and 2 of set 2 are reached, 0 and 3 not
    from types import SimpleNamespace

    def lay(n_in, n_out, flat):
        return SimpleNamespace(n_in=n_in, n_out=n_out, flat=np.array(flat, dtype=np.int64),
                               positions=1)

    net = SimpleNamespace(layers=[lay(2, 2, [0, 3]), lay(2, 4, [])], reads=[0, 1],
                          writes=[1, 2], carries=[(1, 1, 2, 1)])
    state = connectivity(net)
    assert state.empty_layers == [1] and state.unreached_outputs == [0, 3]


def test_cnn_configuration_refusals():
    with pytest.raises(ConfigError, match="arch sets the widths of an MLP"):
        TrainConfig(model="lenet5", arch=[64, 10])
    with pytest.raises(ConfigError, match="has none"):
        TrainConfig(model="resnet20", dataset="synthetic-F1")
    with pytest.raises(ConfigError, match="width scales a CNN"):
        TrainConfig(width=0.5)
    with pytest.raises(ConfigError, match="unknown model"):
        TrainConfig(model="resnet18")
    for method in ("ssgd", "ap", "sipp", "nodes"):
        with pytest.raises(ConfigError, match=f"method {method} is implemented for MLPs only"):
            TrainConfig(model="lenet5", method=method)
    for optimizer in ("ssgd", "sketched-gn"):
        with pytest.raises(ConfigError, match=f"optimizer {optimizer} is implemented for MLPs"):
            TrainConfig(model="lenet5", optimizer=optimizer)


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory) -> Path:
    """Two epochs of RigL on a tiny ResNet-20 (updates every 4 steps)."""
    out = tmp_path_factory.mktemp("cnn") / "rigl"
    train(TrainConfig(method="rigl", epochs=2, density=0.3, rigl_delta_t=4, **TINY_RESNET),
          out, progress=False)
    return out


@pytest.mark.slow
def test_resnet_snapshot_holds_geometry_and_residual_wiring(resnet_run):
    graph = load(snapshot_paths(resnet_run)[-1])
    assert graph.input_shape == (1, 8, 8) and not graph.is_chain
    assert graph.names[:3] == ["conv1", "layer1.0.conv1", "layer1.0.conv2"]
    assert graph.geometry[1].kernel_shape == (3, 3) and graph.geometry[-1].kind == "linear"
    # stem writes the stream; block 1.0 reads it, its conv2 adds back into it; 2.0 widens
    assert graph.reads[:4] == [0, 1, 2, 1] and graph.writes[:4] == [1, 2, 1, 3]
    assert graph.writers(graph.writes[0]) == [0, 2, 4, 6]
    w8 = graph.names.index("layer2.0.conv2")
    assert graph.writers(graph.writes[w8]) == [w8, w8 + 2, w8 + 4]
    manifest = read_manifest(resnet_run)
    assert manifest["final_density"] == pytest.approx(0.3, abs=2e-3)
    rows = read_metrics(resnet_run)
    assert len(rows) == 3


@pytest.mark.slow
def test_resnet_snapshot_weights_are_the_models_kernels(resnet_run, tmp_path):
    from topo.train.checkpoint import checkpoint_path, load_checkpoint

    state, _ = load_checkpoint(checkpoint_path(resnet_run))
    graph = load(snapshot_paths(resnet_run)[-1])
    for k, layer_state in enumerate(state["model"]):
        matrix = graph.layers[k].tocoo()
        width = graph.layers[k].shape[1]
        flat = np.sort(matrix.row.astype(np.int64) * width + matrix.col)
        np.testing.assert_array_equal(flat, layer_state["flat"].numpy())
        order = np.argsort(matrix.row.astype(np.int64) * width + matrix.col)
        np.testing.assert_array_equal(matrix.data[order].astype(np.float32),
                                      layer_state["values"].numpy())
    # BatchNorm statistics travel in the checkpoint, not in the graph
    assert "running_mean" in state["model"][0]["norm"]


@pytest.mark.parametrize("method, extra", [
    ("static", {"density": 0.3, "init_sparsity": "erk"}),
    ("set", {"density": 0.3}),
    ("gmp", {"density": 0.3, "gmp_delta_t": 3}),
    ("snip", {"density": 0.3}),
    ("imp", {"imp_levels": 1}),
    ("dense", {}),
])
def test_every_method_trains_a_conv_network(tmp_path, method, extra):
    out = train(TrainConfig(method=method, epochs=1, **TINY_LENET, **extra), tmp_path / "r",
                progress=False)
    manifest = read_manifest(out)
    assert manifest["status"] == "finished"
    graph = load(snapshot_paths(out)[-1])
    assert [g.kind for g in graph.geometry] == ["conv", "conv", "flatten", "linear", "linear"]
    expected = {"static": 0.3, "set": 0.3, "gmp": 0.3, "snip": 0.3, "dense": 1.0,
                "imp": None}[method]
    if expected is not None:
        assert manifest["final_density"] == pytest.approx(expected, abs=2e-3)
    else:   # one IMP level prunes 20 % of every layer but the output layer
        sizes = graph.possible
        kept = sum(graph.n_connections[:-1])
        assert kept == sum(sizes[:-1]) - round(0.2 * sum(sizes[:-1]))


# ----------------------------------------------------------------- resuming after SIGKILL
@pytest.mark.slow
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
def test_sigkilled_cnn_run_resumes_to_identical_snapshots(resnet_run, tmp_path):
    """RigL on a ResNet with BatchNorm, killed inside an optimiser step of epoch 2 (11
    steps an epoch, an update every 4 replacing a step: 9 optimiser steps in epoch 1),
    resumes to the bytes of the uninterrupted run."""
    config = TrainConfig(method="rigl", epochs=2, density=0.3, rigl_delta_t=4, **TINY_RESNET)
    out = tmp_path / "killed"
    def child() -> None:
        die_in_step(13)
        train(config, out, progress=False)

    run_until_killed(child)
    rows = (out / "metrics.jsonl").read_text().splitlines()
    assert len(rows) == 2 and json.loads(rows[-1])["epoch"] == 1
    train(config, out, resume=True, progress=False)
    names = [p.name for p in snapshot_paths(out)]
    assert names == [p.name for p in snapshot_paths(resnet_run)] and len(names) == 3
    for a, b in zip(snapshot_paths(out), snapshot_paths(resnet_run)):
        assert a.read_bytes() == b.read_bytes()
    assert read_metrics(out).drop(columns="wall_time").equals(
        read_metrics(resnet_run).drop(columns="wall_time"))


def test_cifar_pictures_reach_the_convs_channel_first(tmp_path):
    """topo stores CIFAR-10 height-width-channel; the CNN must see CIFAR's own
    channel-first pictures: its output on the stored rows equals its output on the raw
    rows (channel-first, as the batches hold them) read without the transposition."""
    import pickle

    from topo.train.data import image_layout, load_dataset
    from topo.train.initialization import WeightInit

    base = tmp_path / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(1)
    raw = {}
    for name in [*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]:
        raw[name] = rng.integers(0, 256, (3, 3072)).astype(np.uint8)
        with open(base / name, "wb") as fh:
            pickle.dump({b"data": raw[name], b"labels": [1, 2, 3]}, fh, protocol=2)
    data = load_dataset("cifar10", seed=0, root=tmp_path)
    shape, channels_last = image_layout(data)
    assert shape == (3, 32, 32) and channels_last
    arch = architecture("lenet5", shape, 10, 0.3)
    init = WeightInit("he_uniform", None, torch.Generator().manual_seed(0), fans=arch.fans)
    net = arch.build([1.0] * 5, "relu", "dense", init, np.random.default_rng(0),
                     channels_last=True)
    stored = net(torch.from_numpy(data.X_train[:3]))
    net.channels_last = False
    direct = net(torch.from_numpy((raw["data_batch_1"] / 255.0).astype(np.float32)))
    torch.testing.assert_close(stored, direct)
    assert image_layout(load_dataset("digits", seed=0))[0] == (1, 8, 8)
