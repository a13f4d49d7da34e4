"""topo.load: every reader, the snapshot writer, and every kind of bad input."""

from __future__ import annotations

import os
import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import torch
from safetensors.numpy import save_file as save_numpy_safetensors
from safetensors.torch import save_file as save_torch_safetensors

import topo
from topo.errors import (
    ConfigError,
    GraphStructureError,
    OutputError,
    UnreadableFileError,
    UnsafeFileError,
)
from topo.graph import LayeredGraph

SHARED = Path(__file__).resolve().parents[3] / "shared" / "external" / "nnstd-set-topologies"


def mlp(widths, seed=0) -> torch.nn.Sequential:
    torch.manual_seed(seed)
    mods = []
    for a, b in zip(widths[:-1], widths[1:]):
        mods += [torch.nn.Linear(a, b), torch.nn.ReLU()]
    return torch.nn.Sequential(*mods[:-1])


# ------------------------------------------------------------------ topo snapshots
def test_snapshot_roundtrip_keeps_everything(tmp_path):
    w0 = np.array([[0.25, 0.0, -1.5], [0.0, 0.0, 0.0]])
    m0 = np.array([[1, 0, 1], [0, 1, 0]])  # (1, 1) is a connection of weight 0
    g = LayeredGraph([w0, np.array([[1.0, 2.0]])], masks=[m0, None],
                     biases=[np.array([0.5, -0.5]), None], names=["fc1", "out"],
                     input_shape=(3,), metadata={"epoch": 4, "method": "set"})
    path = topo.save_snapshot(g, tmp_path / "s.safetensors")
    back = topo.load(path)
    assert back.metadata["format"] == "topo.snapshot"
    assert back.metadata["epoch"] == 4 and back.metadata["method"] == "set"
    assert back.names == ["fc1", "out"] and back.input_shape == (3,)
    assert back.n_connections == [3, 2]
    assert back.same_structure(g)
    np.testing.assert_array_equal(back.layers[0].toarray(), w0)
    np.testing.assert_array_equal(back.biases[0], [0.5, -0.5])
    assert back.biases[1] is None


def test_snapshot_keeps_float64_precision(tmp_path):
    value = 1.0 + 2.0**-40  # not representable in float32
    g = LayeredGraph([np.array([[value, 1.0]])])
    back = topo.load(topo.save_snapshot(g, tmp_path / "s.safetensors"))
    assert back.layers[0].data[0] == value


def test_snapshot_write_leaves_no_temporary_file(tmp_path):
    topo.save_snapshot(LayeredGraph([np.eye(2)]), tmp_path / "s.safetensors")
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]


def test_failed_snapshot_write_leaves_old_file(tmp_path):
    path = topo.save_snapshot(LayeredGraph([np.eye(2)]), tmp_path / "s.safetensors")
    before = path.read_bytes()
    bad = LayeredGraph([np.eye(2)], metadata={"not_json": object()})
    with pytest.raises(ConfigError, match="JSON"):
        topo.save_snapshot(bad, path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["s.safetensors"]


# ------------------------------------------------------------------ PyTorch state_dicts
def test_torch_state_dict_plain(tmp_path):
    model = mlp([4, 3, 2])
    with torch.no_grad():
        model[0].weight[0, 0] = 0.0
    torch.save(model.state_dict(), tmp_path / "m.pt")
    g = topo.load(tmp_path / "m.pt")
    assert g.metadata["format"] == "pytorch"
    assert g.widths == [4, 3, 2]
    assert g.names == ["0", "2"]
    assert g.n_connections == [11, 6]  # structure from the non-zeros
    np.testing.assert_allclose(g.biases[1], model[2].bias.detach().numpy())


def test_torch_prune_buffers_give_structure_from_mask(tmp_path):
    from torch.nn.utils import prune

    model = mlp([6, 5, 3])
    prune.l1_unstructured(model[0], "weight", amount=0.4)  # 12 of 30 removed
    mask = model[0].weight_mask
    kept = mask.nonzero()[0]
    with torch.no_grad():
        model[0].weight_orig[kept[0], kept[1]] = 0.0  # a kept connection of weight 0
    torch.save(model.state_dict(), tmp_path / "pruned.pth")
    g = topo.load(tmp_path / "pruned.pth")
    assert g.n_connections == [int(mask.sum()), 15]
    assert int(mask.sum()) == 18
    assert g.layers[0][int(kept[0]), int(kept[1])] == 0.0


def test_torch_after_prune_remove_uses_nonzeros(tmp_path):
    from torch.nn.utils import prune

    model = mlp([6, 5, 3])
    prune.l1_unstructured(model[0], "weight", amount=0.4)
    prune.remove(model[0], "weight")
    torch.save(model.state_dict(), tmp_path / "removed.pt")
    g = topo.load(tmp_path / "removed.pt")
    assert g.n_connections[0] == int((model[0].weight != 0).sum()) == 18


def test_torch_nested_checkpoint_dict(tmp_path):
    model = mlp([3, 2])
    torch.save({"epoch": 3, "state_dict": model.state_dict()}, tmp_path / "ckpt.pt")
    assert topo.load(tmp_path / "ckpt.pt").widths == [3, 2]


def test_torch_legacy_format(tmp_path):
    model = mlp([3, 2])
    torch.save(model.state_dict(), tmp_path / "legacy.pt", _use_new_zipfile_serialization=False)
    assert topo.load(tmp_path / "legacy.pt").widths == [3, 2]


def test_safetensors_of_a_torch_model_in_module_order(tmp_path):
    widths = [5] + [4] * 11 + [2]  # 12 layers: keys 0, 2, ..., 22 must not sort as text
    model = mlp(widths)
    save_torch_safetensors(model.state_dict(), str(tmp_path / "m.safetensors"))
    g = topo.load(tmp_path / "m.safetensors")
    assert g.metadata["format"] == "safetensors"
    assert g.widths == widths
    np.testing.assert_allclose(g.layers[-1].toarray(), model[22].weight.detach().numpy())


def test_safetensors_with_masks(tmp_path):
    weight = np.array([[0.0, 1.0], [2.0, 0.0]], dtype=np.float32)
    mask = np.array([[1, 1], [0, 0]], dtype=np.uint8)
    save_numpy_safetensors({"fc.weight": weight, "fc.mask": mask}, str(tmp_path / "m.safetensors"))
    g = topo.load(tmp_path / "m.safetensors")
    assert g.n_connections == [2]  # (0, 0) kept at 0, (1, 0) dropped by the mask


# ------------------------------------------------------------------ NNSTD layout
def write_nnstd_folder(folder: Path, layers: list[np.ndarray], biases: list[np.ndarray]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, (w, b) in enumerate(zip(layers, biases)):
        keras = np.vstack([w.T, b[None, :]])  # (n_in + 1, n_out), last row = bias
        sp.save_npz(folder / f"weight_l{k}.npz", sp.csr_matrix(keras))
    return folder


def test_nnstd_folder_bias_row_is_not_a_connection(tmp_path):
    w0 = np.array([[1.0, 0.0, 2.0], [0.0, -1.0, 0.0]])  # (n_out=2, n_in=3)
    w1 = np.array([[3.0, 0.0]])
    folder = write_nnstd_folder(tmp_path / "net", [w0, w1], [np.array([9.0, 9.0]),
                                                               np.array([9.0])])
    g = topo.load(folder)
    assert g.metadata["format"] == "nnstd-npz"
    assert g.widths == [3, 2, 1]
    assert g.n_connections == [3, 1]
    np.testing.assert_array_equal(g.layers[0].toarray(), w0)
    np.testing.assert_array_equal(g.biases[0], [9.0, 9.0])


@pytest.mark.skipif(not SHARED.is_dir(), reason="shared NNSTD data not present")
def test_published_set_topology_reads():
    g = topo.load(SHARED / "e5_s0_w0" / "epoch_190")
    assert g.widths == [784, 784, 784, 784, 10]
    keras = sp.load_npz(SHARED / "e5_s0_w0" / "epoch_190" / "weight_l0.npz")
    assert g.n_connections[0] == int((keras[:-1] != 0).sum())
    assert g.n_connections[3] == 7840


# ------------------------------------------------------------------ run directories
def test_run_directory_reads_last_snapshot(tmp_path):
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    for epoch in (0, 1, 2):
        topo.save_snapshot(LayeredGraph([np.eye(2) * (epoch + 1)], metadata={"epoch": epoch}),
                           run / "snapshots" / f"epoch_{epoch:04d}.safetensors")
    assert [p.name for p in topo.snapshot_paths(run)][-1] == "epoch_0002.safetensors"
    assert topo.load(run).metadata["epoch"] == 2


# ------------------------------------------------------------------ bad input
def test_missing_path(tmp_path):
    with pytest.raises(UnreadableFileError, match="no such file"):
        topo.load(tmp_path / "nope.pt")


def test_folder_with_nothing_readable(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(UnreadableFileError, match="nothing readable"):
        topo.load(tmp_path)


def test_truncated_safetensors(tmp_path):
    path = topo.save_snapshot(LayeredGraph([np.ones((30, 40))]), tmp_path / "s.safetensors")
    data = path.read_bytes()
    cut = tmp_path / "cut.safetensors"
    cut.write_bytes(data[: len(data) - 100])
    with pytest.raises(UnreadableFileError, match="cut.safetensors"):
        topo.load(cut)
    header_cut = tmp_path / "header_cut.safetensors"
    header_cut.write_bytes(data[:20])
    with pytest.raises(UnreadableFileError, match="truncated"):
        topo.load(header_cut)


def test_corrupt_safetensors_header(tmp_path):
    path = tmp_path / "bad.safetensors"
    body = b"{not json at all}"
    path.write_bytes(len(body).to_bytes(8, "little") + body)
    with pytest.raises(UnreadableFileError, match="damaged safetensors header"):
        topo.load(path)


def test_truncated_torch_zip(tmp_path):
    torch.save(mlp([8, 8]).state_dict(), tmp_path / "m.pt")
    data = (tmp_path / "m.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    with pytest.raises(UnreadableFileError, match="cut.pt"):
        topo.load(tmp_path / "cut.pt")


def test_corrupt_npz_in_nnstd_folder(tmp_path):
    folder = write_nnstd_folder(tmp_path / "net", [np.ones((2, 3))], [np.zeros(2)])
    (folder / "weight_l0.npz").write_bytes(b"PK\x03\x04garbage")
    with pytest.raises(UnreadableFileError, match="weight_l0.npz"):
        topo.load(folder)


def test_nnstd_folder_with_gap(tmp_path):
    folder = write_nnstd_folder(tmp_path / "net", [np.ones((2, 3)), np.ones((1, 2))],
                                [np.zeros(2), np.zeros(1)])
    os.rename(folder / "weight_l1.npz", folder / "weight_l2.npz")
    with pytest.raises(UnreadableFileError, match="weight_l1.npz"):
        topo.load(folder)


class _CreatesFile:
    """A pickle payload that would create a file when unpickled."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __reduce__(self):
        return (open, (self.target, "w"))


def test_malicious_pickle_is_refused_and_runs_nothing(tmp_path):
    target = tmp_path / "pwned.txt"
    evil = tmp_path / "evil.pt"
    evil.write_bytes(pickle.dumps({"fc.weight": _CreatesFile(str(target))}, protocol=2))
    with pytest.raises(UnsafeFileError, match="evil.pt"):
        topo.load(evil)
    assert not target.exists()


def test_malicious_pickle_inside_torch_zip_is_refused(tmp_path):
    target = tmp_path / "pwned_zip.txt"
    evil = tmp_path / "evil_zip.pt"
    torch.save({"fc.weight": torch.ones(2, 2)}, evil)
    # replace the archive's data.pkl with the malicious payload
    with zipfile.ZipFile(evil) as zf:
        entries = {n: zf.read(n) for n in zf.namelist()}
    pkl_name = next(n for n in entries if n.endswith("data.pkl"))
    entries[pkl_name] = pickle.dumps({"fc.weight": _CreatesFile(str(target))}, protocol=2)
    with zipfile.ZipFile(evil, "w", zipfile.ZIP_STORED) as zf:
        for name, data in entries.items():
            zf.writestr(name, data)
    with pytest.raises(UnsafeFileError, match="refused"):
        topo.load(evil)
    assert not target.exists()


def test_conv_only_state_dict_is_its_conv_layer(tmp_path):
    conv = torch.nn.Conv2d(1, 2, 3)
    torch.save(conv.state_dict(), tmp_path / "conv.pt")
    g = topo.load(tmp_path / "conv.pt")
    assert g.n_layers == 1 and g.geometry[0].describe() == "conv 3x3"
    np.testing.assert_allclose(g.kernel(0), conv.weight.detach().numpy(), rtol=1e-6)



def test_widths_that_disagree(tmp_path):
    state = {"a.weight": torch.ones(3, 4), "b.weight": torch.ones(2, 5)}
    torch.save(state, tmp_path / "bad_widths.pt")
    with pytest.raises(GraphStructureError, match="bad_widths.pt"):
        topo.load(tmp_path / "bad_widths.pt")


def test_no_layers_in_state_dict(tmp_path):
    torch.save({"running_mean": torch.ones(3)}, tmp_path / "bn.pt")
    with pytest.raises(UnreadableFileError, match="holds no network.*2-D tensors"):
        topo.load(tmp_path / "bn.pt")


def test_unknown_bytes_and_empty_file(tmp_path):
    (tmp_path / "x.bin").write_bytes(b"hello world, not a checkpoint")
    with pytest.raises(UnreadableFileError, match="not a format topo reads"):
        topo.load(tmp_path / "x.bin")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(UnreadableFileError, match="empty"):
        topo.load(tmp_path / "empty.pt")


def test_nan_weights_load_and_are_flagged(tmp_path):
    w = np.array([[np.nan, 1.0], [0.5, np.inf]], dtype=np.float32)
    save_numpy_safetensors({"fc.weight": w}, str(tmp_path / "nan.safetensors"))
    g = topo.load(tmp_path / "nan.safetensors")
    assert g.nonfinite_layers() == ["fc"]


def test_written_files_get_normal_permissions(tmp_path):
    import stat

    path = topo.save_snapshot(LayeredGraph([np.eye(2)]), tmp_path / "s.safetensors")
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask


# ------------------------------------------------------------------ layer order, folders
def test_safetensors_layers_chained_by_shape_when_names_mislead(tmp_path):
    # natural name order would be head, net.0, net.2; only one order chains the widths
    state = {"net.0.weight": np.ones((6, 4), np.float32),
             "net.2.weight": np.ones((5, 6), np.float32),
             "head.weight": np.ones((2, 5), np.float32)}
    save_numpy_safetensors(state, str(tmp_path / "m.safetensors"))
    g = topo.load(tmp_path / "m.safetensors")
    assert g.names == ["net.0", "net.2", "head"]
    assert g.widths == [4, 6, 5, 2]


def test_safetensors_ambiguous_order_is_refused(tmp_path):
    state = {"input.weight": np.ones((8, 8), np.float32),
             "hidden.weight": np.full((8, 8), 2.0, np.float32),
             "output.weight": np.ones((2, 8), np.float32)}
    save_numpy_safetensors(state, str(tmp_path / "words.safetensors"))
    with pytest.raises(GraphStructureError, match="order cannot be recovered"):
        topo.load(tmp_path / "words.safetensors")


@pytest.mark.filterwarnings("ignore:Sparse CSR tensor support is in beta")
def test_torch_sparse_tensors_keep_their_entries(tmp_path):
    dense = torch.tensor([[0.0, 1.5, 0.0], [2.0, 0.0, 0.0]])
    # an explicitly stored zero (at row 1, column 2) is a connection
    coo = torch.sparse_coo_tensor(torch.tensor([[0, 1, 1], [1, 0, 2]]),
                                  torch.tensor([1.5, 2.0, 0.0]), (2, 3), check_invariants=True)
    torch.save({"a.weight": coo, "b.weight": torch.ones(1, 2).to_sparse_csr()},
               tmp_path / "sparse.pt")
    g = topo.load(tmp_path / "sparse.pt")
    assert g.widths == [3, 2, 1]
    assert g.n_connections == [3, 2]
    np.testing.assert_array_equal(g.layers[0].toarray(), dense.numpy())


def test_folder_of_checkpoints_in_natural_order(tmp_path):
    for epoch in (1, 2, 10, 9):
        torch.save({"fc.weight": torch.full((2, 2), float(epoch))},
                   tmp_path / f"model_epoch_{epoch}.pt")
    paths = topo.snapshot_paths(tmp_path)
    assert [p.name for p in paths] == [f"model_epoch_{e}.pt" for e in (1, 2, 9, 10)]


def test_training_checkpoint_is_not_taken_for_a_snapshot(tmp_path):
    path = tmp_path / "state.ckpt"
    save_numpy_safetensors({"x": np.ones(2, np.float32)}, str(path),
                           metadata={"format": "topo.train-checkpoint"})
    with pytest.raises(UnreadableFileError, match="training checkpoint"):
        topo.load(path)


def test_run_directory_reports_run_format(tmp_path):
    run = tmp_path / "run"
    (run / "snapshots").mkdir(parents=True)
    (run / "run.json").write_text("{}")
    topo.save_snapshot(LayeredGraph([np.eye(2)]), run / "snapshots" / "epoch_0000.safetensors")
    g = topo.load(run)
    assert g.metadata["format"] == "topo.run"
    assert g.metadata["snapshot"].endswith("epoch_0000.safetensors")


def test_metrics_with_incomplete_last_line(tmp_path):
    from topo.io.run import read_metrics

    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1, "loss": 0.5}\n{"epoch": 2, "lo')
    with pytest.warns(UserWarning, match="incomplete last line"):
        frame = read_metrics(tmp_path)
    assert frame["epoch"].tolist() == [1]
    (tmp_path / "metrics.jsonl").write_text('{"epoch": 1\n{"epoch": 2}\n')
    with pytest.raises(UnreadableFileError, match="line 1"):
        read_metrics(tmp_path)


def test_nnstd_folder_without_bias_row_explains_the_layout(tmp_path):
    folder = tmp_path / "net"
    folder.mkdir()
    sp.save_npz(folder / "weight_l0.npz", sp.csr_matrix(np.ones((3, 2))))  # no bias row
    sp.save_npz(folder / "weight_l1.npz", sp.csr_matrix(np.ones((2, 1))))
    with pytest.raises(GraphStructureError, match="last row being the bias"):
        topo.load(folder)


# ------------------------------------------------------------------ writing
def test_unwritable_snapshot_path_is_a_topo_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match="cannot write"):
        topo.save_snapshot(LayeredGraph([np.eye(2)]), tmp_path / "file" / "s.safetensors")
    with pytest.raises(OutputError, match="folder"):
        topo.save_snapshot(LayeredGraph([np.eye(2)]), tmp_path)


def test_snapshot_bytes_are_deterministic_across_processes(tmp_path):
    import subprocess
    import sys

    code = ("import sys, numpy as np, topo; from topo.graph import LayeredGraph; "
            "g = LayeredGraph([np.arange(6.0).reshape(2, 3), np.ones((1, 2))], "
            "metadata={'epoch': 1, 'method': 'set', 'seed': 0, 'run_id': 'x', 'step': 9}); "
            "topo.save_snapshot(g, sys.argv[1])")
    # this process and two fresh ones (each with its own hash seed)
    exec(code.replace("sys.argv[1]", "path"), {"path": tmp_path / "s0.safetensors"})
    for k in (1, 2):
        subprocess.run([sys.executable, "-c", code, str(tmp_path / f"s{k}.safetensors")],
                       check=True)
    outs = [(tmp_path / f"s{k}.safetensors").read_bytes() for k in range(3)]
    assert outs[0] == outs[1] == outs[2]


def test_snapshot_file_is_standard_safetensors(tmp_path):
    from safetensors.numpy import load_file

    g = LayeredGraph([np.array([[1.5, 0.0], [0.0, -2.0]])], biases=[np.array([0.25, 0.5])])
    tensors = load_file(str(topo.save_snapshot(g, tmp_path / "s.safetensors")))
    assert tensors["layer.0.weight"].tolist() == [1.5, -2.0]
    assert tensors["layer.0.indices"].tolist() == [0, 1]
    assert tensors["layer.0.indptr"].tolist() == [0, 1, 2]
    assert tensors["layer.0.bias"].tolist() == [0.25, 0.5]
