"""Convolutional networks of the standard families read from PyTorch files (state_dict, whole
pickled module, safetensors, Lightning checkpoint) as whole networks with their wiring.

Expected values come from the torch modules themselves: the wiring written out by hand for
each family (:mod:`cnn_models`), every layer's matrix built with numpy from the module's
weight (``weight.reshape(C_out, -1)``, zero outside the groups), never from topo's readers.
"""

from __future__ import annotations

import copy
from collections import OrderedDict

import cnn_models as cm
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from torch import nn

import topo
from topo.errors import GraphStructureError


def save(model: nn.Module, path, how: str):
    """Write ``model`` the way ``how`` says; returns the path."""
    sd = OrderedDict((k, v.detach().clone()) for k, v in model.state_dict().items())
    if how == "state_dict":
        torch.save(sd, path)
    elif how == "module":
        torch.save(model, path)
    elif how == "safetensors":
        save_file({k: v.contiguous() for k, v in sd.items()}, str(path))
    elif how == "lightning":
        torch.save({"epoch": 3, "global_step": 120,
                    "state_dict": OrderedDict((f"model.{k}", v) for k, v in sd.items()),
                    "optimizer_states": [], "lr_schedulers": []}, path)
    elif how == "dataparallel":
        torch.save(OrderedDict((f"module.{k}", v) for k, v in sd.items()), path)
    return path


def assert_reads_as(g, model: nn.Module, names, reads, writes, groups=None):
    """``g`` has the layers ``names`` with the hand-written wiring and, layer by layer, the
    matrix numpy builds from the module's weight."""
    assert g.names == names
    r, w = cm.renumber(reads, writes)
    assert g.reads == r and g.writes == w
    mods = dict(model.named_modules())
    for k, name in enumerate(names):
        m = mods[name]
        weight = m.weight.detach().numpy().astype(np.float64)
        geo = g.geometry[k]
        if isinstance(m, nn.Conv2d):
            assert (geo.kind, geo.kernel_shape, geo.groups) == ("conv", m.kernel_size,
                                                                m.groups)
            expected = cm.expected_matrix(weight, m.groups)
        else:
            assert geo.kind in ("linear", "flatten")
            expected = weight
        np.testing.assert_allclose(g.layers[k].toarray(), expected, rtol=1e-6)
        assert g.layers[k].nnz == np.count_nonzero(weight)
        if m.bias is not None:
            np.testing.assert_allclose(g.biases[k], m.bias.detach().numpy(), rtol=1e-6)


def model_cases():
    torch.manual_seed(0)
    return {
        "resnet18-narrow": (cm.resnet18(width=8), cm.resnet_wiring),
        "resnet-bottleneck": (cm.resnet_bottleneck(width=4), cm.resnet_wiring),
        "cifar-resnet20-A": (cm.CifarResNet(3, "A"), cm.cifar_wiring),
        "cifar-resnet20-B": (cm.CifarResNet(3, "B", width=8), cm.cifar_wiring),
        "preact-resnet": (cm.PreActResNet(), lambda m: cm.preact_wiring()),
        "vgg": (cm.VGG(), lambda m: cm.chain_wiring(cm.layer_names(m))),
        "lenet5": (cm.LeNet5(), lambda m: cm.chain_wiring(cm.layer_names(m))),
        "conv6": (cm.ConvN(6), lambda m: cm.chain_wiring(cm.layer_names(m))),
    }


CASES = model_cases()
FAMILIES = {"resnet18-narrow": "torchvision-style ResNet-18 (BasicBlock)",
            "resnet-bottleneck": "torchvision-style ResNet-17 (Bottleneck)",
            "cifar-resnet20-A": "CIFAR ResNet-20 (BasicBlock)",
            "cifar-resnet20-B": "CIFAR ResNet-20 (BasicBlock)",
            "preact-resnet": "CIFAR ResNet-10 (BasicBlock)",
            "vgg": "VGG-style", "lenet5": "LeNet-5", "conv6": "Conv-6"}


@pytest.fixture(scope="module")
def pruned():
    out = {}
    for name, (model, wiring) in CASES.items():
        cm.randomise_norms(model)
        out[name] = (cm.prune_by_magnitude(model, 0.9), wiring)
    return out


# ------------------------------------------------------------------------ ResNet-18, full
@pytest.fixture(scope="module")
def resnet18_file(tmp_path_factory):
    torch.manual_seed(1)
    model = cm.prune_by_magnitude(cm.randomise_norms(cm.resnet18(width=64)), 0.9)
    return model, save(model, tmp_path_factory.mktemp("r18") / "resnet18.pt", "state_dict")


def test_torchvision_resnet18_state_dict_reads_whole(resnet18_file):
    model, path = resnet18_file
    g = topo.load(path)
    names, reads, writes = cm.resnet_wiring(model)
    assert_reads_as(g, model, names, reads, writes)
    # 1 stem + 16 block convs + 3 downsample convs + fc; 4 streams of 64..512 channels
    assert g.n_layers == 21 and g.set_sizes[:2] == [3, 64]
    assert g.metadata["family"] == "torchvision-style ResNet-18 (BasicBlock)"
    assert g.densities == pytest.approx([0.1] * 21, abs=2e-3)
    streams = [s for s in range(len(g.set_sizes)) if len(g.writers(s)) > 1]
    assert [g.set_sizes[s] for s in streams] == [64, 128, 256, 512]
    whys = {s["name"]: s["why"] for s in g.metadata["skipped"]}
    bns = [n for n, m in model.named_modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(whys) == 5 * len(bns)  # weight, bias, running mean and variance, count
    assert whys["layer2.0.downsample.1.weight"] == (
        "normalisation of unit set 5 (the output of 'layer2.0.downsample.0'): BatchNorm "
        "weight; not a layer")
    assert whys["bn1.running_var"].startswith("normalisation of unit set 1 (the output of "
                                              "'conv1')")


# --------------------------------------------------------------- every family, every way
@pytest.mark.parametrize("how", ["state_dict", "module", "safetensors", "lightning",
                                 "dataparallel"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_family_reads_whole_from_every_container(tmp_path, pruned, case, how):
    model, wiring = pruned[case]
    g = topo.load(save(model, tmp_path / f"{case}.bin", how))
    names, reads, writes = wiring(model)
    assert_reads_as(g, model, names, reads, writes)
    assert g.metadata["family"] == FAMILIES[case]
    assert all(s["why"].startswith("normalisation of unit set ")
               for s in g.metadata["skipped"] if "bn" in s["name"] or "features" in s["name"]
               or "downsample.1" in s["name"] or "shortcut.1" in s["name"])
    if how == "lightning":
        assert (g.metadata["epoch"], g.metadata["global_step"]) == (3, 120)


def test_option_a_widening_is_a_new_stream_without_a_layer(pruned, tmp_path):
    model, _ = pruned["cifar-resnet20-A"]
    g = topo.load(save(model, tmp_path / "a.pt", "state_dict"))
    # layer2.0.conv2 alone writes the 32-channel stream; nothing reads set 1 into it
    k = g.names.index("layer2.0.conv2")
    assert g.writers(g.writes[k]) == [k, k + 2, k + 4]  # and layer2.1/2.2's conv2
    assert g.set_sizes[g.writes[k]] == 32
    notes = " ".join(g.metadata["reading"]["notes"])
    assert "option A shortcuts in layer2.0 (16 -> 32), layer3.0 (32 -> 64)" in notes


def test_preactivation_norms_are_placed_on_the_block_input(pruned, tmp_path):
    model, _ = pruned["preact-resnet"]
    g = topo.load(save(model, tmp_path / "p.pt", "state_dict"))
    whys = {s["name"]: s["why"] for s in g.metadata["skipped"]}
    assert whys["layer2.0.bn1.weight"].startswith("normalisation of unit set 1 (the input of "
                                                  "'layer2.0.conv1')")
    assert whys["layer2.0.bn2.weight"].startswith("normalisation of unit set 4 (the input of "
                                                  "'layer2.0.conv2')")


def test_grouped_convs_from_the_widths_or_the_pickled_module(tmp_path):
    torch.manual_seed(2)
    model = cm.prune_by_magnitude(cm.resnet18(width=8, groups=2), 0.5)
    names, reads, writes = cm.resnet_wiring(model)
    for how in ("state_dict", "module"):
        g = topo.load(save(model, tmp_path / f"g.{how}", how))
        assert_reads_as(g, model, names, reads, writes)
        assert [geo.groups for geo in g.geometry].count(2) == 8  # every block's conv2
    notes = topo.load(tmp_path / "g.state_dict").metadata["reading"]["notes"]
    assert "layer1.0.conv2: groups = 2, from the 8 channels it reads and its kernel's 4 " \
           "input channel(s) per group" in notes


def test_depthwise_separable_sequential(tmp_path):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Conv2d(3, 8, 3), nn.ReLU(), nn.Conv2d(8, 8, 3, groups=8),
                          nn.Conv2d(8, 16, 1), nn.ReLU(), nn.AdaptiveAvgPool2d(3),
                          nn.Flatten(), nn.Linear(16 * 9, 5))
    g = topo.load(save(model, tmp_path / "dw.pt", "state_dict"))
    assert_reads_as(g, model, *cm.chain_wiring(["0", "2", "3", "7"]))
    assert g.metadata["family"] == "nn.Sequential"
    assert [geo.describe() for geo in g.geometry] == ["conv 3x3", "conv 3x3 g8", "conv 1x1",
                                                      "flatten 3x3"]
    assert g.possible[1] == 8 * 1 * 9  # a depthwise conv may connect each channel to itself


def test_open_lth_resnet_names(pruned, tmp_path):
    model, _ = pruned["cifar-resnet20-B"]
    renamed = OrderedDict()
    blocks = [f"layer{s}.{j}" for s in (1, 2, 3) for j in range(3)]
    for key, value in model.state_dict().items():
        for n, block in enumerate(blocks):
            key = key.replace(block + ".", f"blocks.{n}.") if key.startswith(block + ".") \
                else key
        key = {"conv1.weight": "conv.weight", "linear.weight": "fc.weight",
               "linear.bias": "fc.bias"}.get(key, key)
        key = "bn." + key[4:] if key.startswith("bn1.") else key
        renamed[key] = value
    torch.save(renamed, tmp_path / "olth.pt")
    g = topo.load(tmp_path / "olth.pt")
    names, reads, writes = cm.cifar_wiring(model)
    assert cm.renumber(reads, writes) == (g.reads, g.writes)
    assert g.names[:3] == ["conv", "blocks.0.conv1", "blocks.0.conv2"]
    assert g.metadata["family"] == "open_lth CIFAR ResNet-20 (BasicBlock)"


def test_open_lth_vgg_names(tmp_path):
    torch.manual_seed(4)
    sd = OrderedDict()
    widths = [3, 8, 8, 16]
    for k in range(3):
        conv, bn = nn.Conv2d(widths[k], widths[k + 1], 3), nn.BatchNorm2d(widths[k + 1])
        sd.update({f"layers.{k}.conv.{n}": t for n, t in conv.state_dict().items()})
        sd.update({f"layers.{k}.bn.{n}": t for n, t in bn.state_dict().items()})
    fc = nn.Linear(16, 10)
    sd.update({f"fc.{n}": t for n, t in fc.state_dict().items()})
    torch.save(sd, tmp_path / "vgg.pt")
    g = topo.load(tmp_path / "vgg.pt")
    assert g.names == ["layers.0.conv", "layers.1.conv", "layers.2.conv", "fc"]
    assert g.is_chain and g.set_sizes == [3, 8, 8, 16, 10]
    assert g.metadata["family"] == "open_lth VGG-4"


def test_safetensors_order_of_name_groups_from_the_shapes(tmp_path):
    # names sort 'classifier' before 'features'; the convs still come first
    torch.manual_seed(5)
    model = cm.VGG(plan=(4, "M", 6), hidden=5, batch_norm=False, pool=1)
    g = topo.load(save(model, tmp_path / "v.safetensors", "safetensors"))
    assert g.names == ["features.0", "features.3", "classifier.0", "classifier.3",
                       "classifier.6"]


def test_unknown_names_are_independent_matrices(tmp_path):
    torch.manual_seed(6)
    sd = OrderedDict([("stage1.block0.conv_a.weight", torch.randn(4, 3, 3, 3)),
                      ("stage1.block0.conv_b.weight", torch.randn(4, 4, 3, 3)),
                      ("head.proj.weight", torch.randn(2, 4))])
    torch.save(sd, tmp_path / "odd.pt")
    g = topo.load(tmp_path / "odd.pt")
    assert g.is_independent and g.names == [k[:-7] for k in sd]
    assert g.set_sizes == [3, 4, 4, 4, 4, 2]
    assert g.metadata["reading"]["wiring"].startswith(
        "independent matrices: the module names (stage1.block0.conv_a, stage1.block0.conv_b, "
        "head.proj) fit no family topo knows")
    assert "topo.io.from_module(model)" in g.metadata["reading"]["wiring"]
    for k, key in enumerate(sd):
        np.testing.assert_allclose(g.layers[k].toarray(), sd[key].numpy().reshape(
            sd[key].shape[0], -1), rtol=1e-6)


def test_dense_only_keeps_the_fully_connected_chain(pruned, tmp_path):
    model, _ = pruned["lenet5"]
    g = topo.load(save(model, tmp_path / "l.pt", "state_dict"), dense_only=True)
    assert g.names == ["fc1", "fc2", "fc3"] and g.widths == [400, 120, 84, 10]
    assert {s["name"] for s in g.metadata["skipped"]} == {"conv1", "conv1 bias", "conv2",
                                                          "conv2 bias"}


def test_prune_masks_of_a_conv_are_its_connections(tmp_path):
    from torch.nn.utils import prune

    torch.manual_seed(7)
    model = cm.LeNet5()
    prune.l1_unstructured(model.conv2, "weight", amount=0.5)
    with torch.no_grad():
        model.conv2.weight_orig[0, 0, 0, 0] = 0.0  # a kept connection of weight exactly 0
        model.conv2.weight_mask[0, 0, 0, 0] = 1.0
    g = topo.load(save(model, tmp_path / "p.pt", "state_dict"))
    mask = model.conv2.weight_mask.numpy()
    assert g.layers[1].nnz == int(mask.sum())
    np.testing.assert_array_equal(g.kernel_mask(1), mask != 0)


# -------------------------------------------------------------------- permuted channels
def _hidden_perms(model, names, writes, rng):
    if isinstance(model, cm.CifarResNet):
        return cm.option_a_perms(model, names, writes, rng)
    mods = dict(model.named_modules())
    sizes = {w: mods[n].weight.shape[0] for n, w in zip(names, writes)}
    return {s: rng.permutation(n) for s, n in sizes.items() if s != writes[-1]}


@st.composite
def small_family(draw):
    kind = draw(st.sampled_from(["cifar", "torchvision", "bottleneck", "preact", "vgg",
                                 "lenet", "conv"]))
    seed = draw(st.integers(0, 2**16))
    torch.manual_seed(seed)
    if kind == "cifar":
        model = cm.CifarResNet(draw(st.integers(1, 2)), draw(st.sampled_from("AB")),
                               width=draw(st.sampled_from([4, 8])))
        wiring = cm.cifar_wiring
    elif kind in ("torchvision", "bottleneck"):
        make = cm.resnet18 if kind == "torchvision" else cm.resnet_bottleneck
        model, wiring = make(width=draw(st.sampled_from([2, 4]))), cm.resnet_wiring
    elif kind == "preact":
        model, wiring = cm.PreActResNet(width=draw(st.sampled_from([2, 4]))), \
            (lambda m: cm.preact_wiring())
    else:
        model = {"vgg": lambda: cm.VGG(plan=(draw(st.integers(2, 5)), "M", 6), hidden=7),
                 "lenet": cm.LeNet5,
                 "conv": lambda: cm.ConvN(draw(st.sampled_from([2, 4])), width=3, side=8,
                                          hidden=5)}[kind]()
        wiring = lambda m: cm.chain_wiring(cm.layer_names(m))  # noqa: E731
    cm.randomise_norms(model, seed)
    cm.prune_by_magnitude(model, draw(st.sampled_from([0.5, 0.9])))
    return model, wiring, seed


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.data_too_large])
@given(family=small_family(), how=st.sampled_from(["state_dict", "safetensors", "module"]))
def test_consistently_permuted_channels_read_as_the_permuted_graph(tmp_path_factory, family,
                                                                    how):
    model, wiring, seed = family
    folder = tmp_path_factory.mktemp("perm")
    names, reads, writes = wiring(model)
    g0 = topo.load(save(model, folder / "a.bin", how))
    x = torch.randn(2, *model_input_shape(model))
    model.eval()
    before = model(x)
    perms = _hidden_perms(model, names, writes, np.random.default_rng(seed))
    cm.permute_channels(model, names, reads, writes, perms)
    torch.testing.assert_close(model(x), before, atol=1e-4, rtol=1e-4)  # the same function
    g1 = topo.load(save(model, folder / "b.bin", how))
    assert (g1.names, g1.reads, g1.writes, g1.geometry) == (g0.names, g0.reads, g0.writes,
                                                            g0.geometry)
    for k, (r, w) in enumerate(zip(reads, writes)):
        kernel = g0.kernel(k)
        if w in perms:
            kernel = kernel[perms[w]]
        if r in perms:
            kernel = kernel[:, perms[r]] if kernel.ndim > 2 else kernel.reshape(
                kernel.shape[0], len(perms[r]), -1)[:, perms[r]].reshape(kernel.shape)
        np.testing.assert_allclose(g1.kernel(k), kernel, rtol=1e-6)
        np.testing.assert_array_equal(g1.kernel_mask(k), kernel != 0)
    whys0 = [s["why"] for s in g0.metadata["skipped"]]
    assert [s["why"] for s in g1.metadata["skipped"]] == whys0


def test_permuted_resnet20_is_at_nnstd_zero(pruned, tmp_path):
    model, _ = pruned["cifar-resnet20-B"]
    names, reads, writes = cm.cifar_wiring(model)
    g0 = topo.load(save(model, tmp_path / "a.pt", "state_dict"))
    permuted = cm.permute_channels(copy.deepcopy(model), names, reads, writes,
                                   _hidden_perms(model, names, writes,
                                                 np.random.default_rng(0)))
    g1 = topo.load(save(permuted, tmp_path / "b.pt", "state_dict"))
    assert not all((a != b).nnz == 0 for a, b in zip(g0.layers, g1.layers))
    assert topo.nnstd(g0, g1).distance == 0.0


def model_input_shape(model) -> tuple[int, int, int]:
    if isinstance(model, cm.LeNet5):
        return (1, 32, 32)
    if isinstance(model, cm.ConvN):
        return (3, model.side, model.side)
    return (3, 32, 32)


# ------------------------------------------------------------------------- refusals
def test_resnet_names_with_channels_that_do_not_chain(pruned, tmp_path):
    model, _ = pruned["cifar-resnet20-B"]
    sd = OrderedDict(model.state_dict())
    sd["layer1.1.conv1.weight"] = torch.ones(8, 5, 3, 3)  # reads 8 channels: 5 fit no groups
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(GraphStructureError, match=r"bad.pt: the module names fit the CIFAR "
                                                  r"ResNet-20 \(BasicBlock\) family, but the "
                                                  r"shapes disagree: conv 'layer1.1.conv1' has "
                                                  r"kernel \(8, 5, 3, 3\)"):
        topo.load(tmp_path / "bad.pt")


def test_flatten_positions_must_be_whole(pruned, tmp_path):
    model, _ = pruned["lenet5"]
    sd = OrderedDict(model.state_dict())
    sd["fc1.weight"] = torch.ones(120, 399)
    torch.save(sd, tmp_path / "flat.pt")
    with pytest.raises(GraphStructureError, match=r"flat.pt: the module names fit the LeNet-5 "
                                                  r"family, but the shapes disagree: layer "
                                                  r"'fc1' takes 399 inputs, "
                                                  r"which is not a whole number of positions "
                                                  r"of the 16 channels"):
        topo.load(tmp_path / "flat.pt")


def test_norm_of_the_wrong_width_is_refused(pruned, tmp_path):
    model, _ = pruned["resnet18-narrow"]
    sd = OrderedDict(model.state_dict())
    sd["layer3.0.bn2.weight"] = torch.ones(7)
    torch.save(sd, tmp_path / "bn.pt")
    with pytest.raises(GraphStructureError, match=r"normalisation 'layer3.0.bn2' has 7 "
                                                  r"channels while the output of "
                                                  r"'layer3.0.conv2' has 32"):
        topo.load(tmp_path / "bn.pt")


def test_name_groups_whose_order_the_shapes_do_not_fix(tmp_path):
    sd = {"features.0.weight": torch.ones(4, 4, 3, 3), "extra.0.weight": torch.ones(4, 4, 1, 1),
          "classifier.weight": torch.ones(2, 4)}
    save_file(sd, str(tmp_path / "amb.safetensors"))
    with pytest.raises(GraphStructureError,
                       match=r"amb.safetensors: the module names fit the plain CNN \(2 conv, 1 "
                             r"fully-connected\) family, but the order of their groups is not "
                             r"in the file and the shapes fit more than one \(extra, features, "
                             r"classifier; features, extra, classifier\)"):
        topo.load(tmp_path / "amb.safetensors")
    torch.save(OrderedDict(sd), tmp_path / "amb.pt")  # the module order decides
    assert topo.load(tmp_path / "amb.pt").names == ["features.0", "extra.0", "classifier"]


# ------------------------------------------------------------ the command line on ResNet-18
@pytest.mark.slow
def test_cli_info_compare_evolution_on_resnet18(resnet18_file, tmp_path, cli_json):
    model, path = resnet18_file
    names, reads, writes = cm.resnet_wiring(model)
    run = tmp_path / "run"
    run.mkdir()
    (run / "epoch_1.pt").symlink_to(path)
    permuted = cm.permute_channels(copy.deepcopy(model), names, reads, writes,
                                   _hidden_perms(model, names, writes,
                                                 np.random.default_rng(5)))
    save(permuted, run / "epoch_2.pt", "state_dict")

    weights = cm.kernels(model, names)
    elements = [int(np.count_nonzero(w)) for w in weights]
    pairs = [int(np.count_nonzero((w != 0).reshape(w.shape[0], w.shape[1], -1).any(axis=2)))
             for w in weights]
    info = cli_json("info", str(path))
    assert info["metadata"]["family"] == "torchvision-style ResNet-18 (BasicBlock)"
    assert [row["name"] for row in info["layers"]] == names
    assert [row["connections"] for row in info["layers"]] == elements
    assert [row["unit_connections"] for row in info["layers"]] == pairs
    assert [row["kernel"] for row in info["layers"]][:2] == ["7x7", "3x3"]

    compare = cli_json("compare", str(path), str(run / "epoch_2.pt"), "--chance-samples", "0")
    assert [row["nnstd"] for row in compare["layers"]] == [0.0] * 21
    assert [row["jaccard_aligned"] for row in compare["layers"]] == [1.0] * 21
    assert all(row["jaccard"] < 0.5 for row in compare["layers"][:-1])  # stem .. last conv

    rows = cli_json("evolution", str(run), "--no-persistence")
    assert [r["epoch"] for r in rows] == [1] * 21 + [2] * 21
    assert [r["connections"] for r in rows] == elements * 2
    assert [r["nnstd_to_previous"] for r in rows[21:]] == [0.0] * 21
