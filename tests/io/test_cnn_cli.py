"""`topo info`, `topo compare` and `topo evolution` on files of the standard CNN families: a
CIFAR ResNet-20 (option A shortcuts), a VGG-style net with BatchNorm and a LeNet-5, each
pruned by magnitude in a test; the torchvision-style ResNet-18 is in test_cnn_families.py
(it shares that file's full-width model), the published LeNet-5 files in
test_real_checkpoints.py.

Expected values come from the torch modules (numpy counts of their weights), from the
permutation the test applies, or from the chance level's own samples; never from topo's
readers.
"""

from __future__ import annotations

import copy

import cnn_models as cm
import numpy as np
import pytest
import torch

FAMILIES = {
    "resnet20": (lambda: cm.CifarResNet(3, "A"), cm.cifar_wiring,
                 "CIFAR ResNet-20 (BasicBlock)"),
    "vgg": (lambda: cm.VGG(), lambda m: cm.chain_wiring(cm.layer_names(m)), "VGG-style"),
    "lenet5": (lambda: cm.LeNet5(), lambda m: cm.chain_wiring(cm.layer_names(m)), "LeNet-5"),
}


def hidden_perms(model, names, reads, writes, seed):
    """A random relabelling of every hidden unit set that keeps the model's function."""
    rng = np.random.default_rng(seed)
    if isinstance(model, cm.CifarResNet):
        return cm.option_a_perms(model, names, writes, rng)
    mods = dict(model.named_modules())
    sizes = {w: mods[n].weight.shape[0] for n, w in zip(names, writes)}
    return {s: rng.permutation(n) for s, n in sizes.items() if s != writes[-1]}


def counts(model, names, units_read):
    """Kernel elements and unit pairs (any element of the pair's block kept) of every named
    layer, by numpy; ``units_read[k]``: the input units of layer k (a flatten layer's
    channels)."""
    elements, pairs = [], []
    for w, n_in in zip(cm.kernels(model, names), units_read):
        elements.append(int(np.count_nonzero(w)))
        pairs.append(int(np.count_nonzero((w != 0).reshape(w.shape[0], n_in, -1).any(axis=2))))
    return elements, pairs


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
    """One dense model with distinct BatchNorm statistics, saved as a 3-snapshot magnitude
    pruning run (50 %, 80 %, 90 %), a channel-permuted copy of the 90 % net and an
    independently initialised net pruned to 90 %."""
    make, wiring, label = FAMILIES[request.param]
    folder = tmp_path_factory.mktemp(request.param)
    torch.manual_seed(0)
    dense = cm.randomise_norms(make(), seed=1)
    names, reads, writes = wiring(dense)
    set_sizes = _set_sizes(dense, names, reads, writes)
    units_read = [set_sizes[r] for r in cm.renumber(reads, writes)[0]]
    run = folder / "run"
    run.mkdir()
    levels = []
    for epoch, sparsity in enumerate((0.5, 0.8, 0.9), start=1):
        model = cm.prune_by_magnitude(copy.deepcopy(dense), sparsity)
        torch.save(model.state_dict(), run / f"epoch_{epoch}.pt")
        levels.append(counts(model, names, units_read))
    permuted = cm.permute_channels(copy.deepcopy(model), names, reads, writes,
                                   hidden_perms(model, names, reads, writes, seed=2))
    torch.save(permuted.state_dict(), folder / "permuted.pt")
    torch.manual_seed(3)
    other = cm.prune_by_magnitude(cm.randomise_norms(make(), seed=4), 0.9)
    torch.save(other.state_dict(), folder / "other.pt")
    return {"label": label, "names": names, "run": run, "final": run / "epoch_3.pt",
            "permuted": folder / "permuted.pt", "other": folder / "other.pt",
            "levels": levels, "set_sizes": set_sizes}


def _set_sizes(model, names, reads, writes):
    """Channels of every unit set, numbered by first use: the first layer's input channels,
    then what each layer writes."""
    reads, writes = cm.renumber(reads, writes)
    weights = cm.kernels(model, names)
    sizes = {0: weights[0].shape[1]}
    sizes.update((w, weight.shape[0]) for w, weight in zip(writes, weights))
    return [sizes[s] for s in range(len(sizes))]


def test_info_lists_every_layer_with_both_counts(family, cli_json):
    doc = cli_json("info", str(family["final"]))
    assert doc["metadata"]["family"] == family["label"]
    assert [layer["name"] for layer in doc["layers"]] == family["names"]
    assert doc["wiring"]["set_sizes"] == family["set_sizes"]
    elements, units = family["levels"][-1]
    assert [layer["connections"] for layer in doc["layers"]] == elements
    assert [layer["unit_connections"] for layer in doc["layers"]] == units
    assert doc["totals"]["connections"] == sum(elements)


def test_compare_with_a_channel_permuted_copy_is_zero(family, cli_json):
    doc = cli_json("compare", str(family["final"]), str(family["permuted"]),
                   "--chance-samples", "0")
    n = len(family["names"])
    assert [row["nnstd"] for row in doc["layers"]] == [0.0] * n
    assert [row["jaccard_aligned"] for row in doc["layers"]] == [1.0] * n
    # the files differ: the raw masks overlap less than the aligned ones
    assert any(row["jaccard"] < 1.0 for row in doc["layers"])


def test_compare_with_an_independent_net_is_near_the_chance_level(family, cli_json):
    doc = cli_json("compare", str(family["final"]), str(family["other"]),
                   "--chance-samples", "6")
    chance = doc["chance"]
    # one independent pair is one sample of what the chance level averages: within a few
    # sample deviations (the standard error times sqrt(n)) of it, and far from 0
    spread = chance["distance_chance_se"] * np.sqrt(chance["n_samples"])
    assert abs(doc["distance"] - chance["distance_chance"]) < 4 * spread + 1e-9
    assert doc["distance"] > 0.5


def test_evolution_follows_a_magnitude_pruning_run(family, cli_json):
    rows = cli_json("evolution", str(family["run"]), "--no-persistence")
    n = len(family["names"])
    assert len(rows) == 3 * n
    assert [r["epoch"] for r in rows] == [1] * n + [2] * n + [3] * n
    elements = [level[0] for level in family["levels"]]
    assert [r["connections"] for r in rows] == [c for level in elements for c in level]
    # nested masks: every later snapshot only removes connections
    later = rows[n:]
    assert [r["added"] for r in later] == [0] * 2 * n
    assert [r["removed"] for r in later] == [a - b for prev, cur in zip(elements, elements[1:])
                                            for a, b in zip(prev, cur)]
    assert [r["itop_rate_snapshots"] for r in rows[-n:]] == [r["density"] for r in rows[:n]]
