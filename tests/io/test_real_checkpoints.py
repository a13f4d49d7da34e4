"""Files other people published (../shared/external/real-checkpoints): read with the widths
its README gives, read there with independent code (numpy, h5py, onnx, torch)."""

from __future__ import annotations

from pathlib import Path

import pytest

import topo

REAL = Path(__file__).resolve().parents[3] / "shared" / "external" / "real-checkpoints"
pytestmark = pytest.mark.skipif(not REAL.is_dir(), reason="real checkpoints not present")

# file -> (format, widths from the README, connections where the README counts them)
EXPECTED = {
    "citak-mlp/model.pt": ("pytorch", [784, 128, 64, 32, 10], None),
    "citak-mlp/model_mnist_MLP_1.h5": ("keras-hdf5", [784, 128, 64, 10], None),
    "yjs-mlp/mnist_mlp.h5": ("keras-hdf5", [784, 256, 128, 64, 10], None),
    # LeNet-5 read whole: 1 -> 6 -> 16 channels (5x5 kernels), Dense 400 = 16 x 5x5 -> 120
    "jbourds-lottery-tickets/model_0/trained_model_0_step_0.keras":
        ("keras-hdf5", [1, 6, 16, 120, 84, 10], [150, 2400, 48000, 10080, 840]),
    "jbourds-lottery-tickets/model_0/trained_model_0_step_2.keras":
        ("keras-hdf5", [1, 6, 16, 120, 84, 10], None),
    "jbourds-lottery-tickets/model_0/final": ("numpy-npy", [784, 300, 100, 10],
                                              [211_679, 26_999, 899]),
    "arandom-mlp/model_weights.pth": ("pytorch", [784, 512, 512, 10], None),
    "arandom-mlp/model.pth": ("pytorch-module", [784, 512, 512, 10], None),
    "dstrunin-mlp/mnist_mlp.onnx": ("onnx", [784, 512, 256, 10], None),
    "vnncomp-fc/mnist-net_256x2.onnx.gz": ("onnx-gzip", [784, 256, 256, 10], None),
    "rfa-kukumunga/weights.npz": ("numpy-npz", [784, 30, 10], None),
    "p-pinn/poisson_model.pth": ("pytorch", [2, 100, 100, 100, 100, 100, 1], None),
    "p-pinn/heat_model.pth": ("pytorch", [2, 100, 100, 100, 100, 100, 1], None),
    "p-pinn/pruned_model.pth": ("pytorch", [2, 100, 100, 100, 100, 100, 1], 11_055),
    # conv1 (8,1,3,3), conv2 (16,8,3,3), fc1 400 = 16 x 5x5 -> 200, fc2 200 -> 2
    "casper-mi-challenge/mnist_model.pt": ("pytorch", [1, 8, 16, 200, 2], None),
    "nid-levitskaya/F1.pth": ("pytorch", [10, 140, 100, 60, 20, 1], None),
    "mnist-tinygrad/model.safetensors": ("safetensors", [784, 128, 10], None),
    "connect4-burn/model.safetensors": ("safetensors", [42, 128, 64, 7], None),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_real_checkpoint_widths(name):
    fmt, widths, connections = EXPECTED[name]
    g = topo.load(REAL / name)
    assert g.metadata["format"] == fmt
    assert g.widths == widths
    if isinstance(connections, list):
        assert g.n_connections == connections
    elif connections is not None:
        assert sum(g.n_connections) == connections


def test_every_weight_file_in_the_folder_is_in_the_table():
    files = {str(p.relative_to(REAL)) for p in REAL.rglob("*")
             if p.is_file() and p.name != "README.md" and "final" not in p.parts}
    assert files == {n for n in EXPECTED if not n.endswith("final")}


def test_whole_module_pickle_equals_its_state_dict():
    a = topo.load(REAL / "arandom-mlp" / "model.pth")
    b = topo.load(REAL / "arandom-mlp" / "model_weights.pth")
    assert a.names == b.names
    for x, y in zip(a.layers, b.layers):
        assert (x != y).nnz == 0


def test_the_cnns_read_dense_only_as_before():
    lenet = topo.load(REAL / "jbourds-lottery-tickets/model_0/trained_model_0_step_0.keras",
                      dense_only=True)
    assert lenet.widths == [400, 120, 84, 10]
    conv = [s for s in lenet.metadata["skipped"] if s["name"].startswith("conv2d")]
    assert [s["shape"] for s in conv if "bias" not in s["name"]] == [[6, 1, 5, 5],
                                                                     [16, 6, 5, 5]]
    assert all("convolution with kernel" in s["why"] for s in conv)
    casper = topo.load(REAL / "casper-mi-challenge/mnist_model.pt", dense_only=True)
    assert casper.widths == [400, 200, 2]
    assert [s["name"] for s in casper.metadata["skipped"]] == [
        "conv1", "conv1 bias", "conv2", "conv2 bias"]


def test_lenet5_lottery_tickets_through_the_command_line(tmp_path, cli_json):
    import h5py
    import numpy as np

    folder = REAL / "jbourds-lottery-tickets" / "model_0"
    steps = [folder / f"trained_model_0_step_{s}.keras" for s in (0, 2)]

    info = cli_json("info", str(steps[0]))
    assert [row["kind"] for row in info["layers"]] == ["conv", "conv", "flatten", "linear",
                                                        "linear"]
    assert [row["kernel"] for row in info["layers"]][:3] == ["5x5"] * 3
    # every kernel is dense: C_out x C_in unit pairs (16 x 120 for the flattened map)
    assert [row["unit_connections"] for row in info["layers"]] == [6, 96, 1920, 10080, 840]
    with h5py.File(steps[0]) as f:
        kernel = f["model_weights/conv2d_277/conv2d_277/kernel:0"][()]
    assert info["layers"][1]["weight_min"] == pytest.approx(float(kernel.min()))
    assert info["layers"][1]["weight_max"] == pytest.approx(float(kernel.max()))

    compare = cli_json("compare", str(steps[0]), str(steps[1]), "--chance-samples", "2")
    assert [row["nnstd"] for row in compare["layers"]] == [0.0] * 5
    assert [row["dense"] for row in compare["layers"]] == [True] * 5
    assert [row["jaccard"] for row in compare["layers"]] == [1.0] * 5

    run = tmp_path / "run"
    run.mkdir()
    for step in steps:
        (run / step.name).symlink_to(step)
    rows = cli_json("evolution", str(run))
    assert [r["snapshot"] for r in rows] == [0] * 5 + [1] * 5
    assert [r["connections"] for r in rows] == [150, 2400, 48000, 10080, 840] * 2
    assert [r["added"] + r["removed"] for r in rows] == [0] * 10
    assert all(np.isfinite(r["neural_persistence"]) for r in rows)
