"""Data sets: digits, synthetic thirds, MNIST IDX files and CIFAR-10 batches (written here)."""

from __future__ import annotations

import gzip
import os
import pickle
import struct

import numpy as np
import pytest

from topo.errors import ConfigError, UnreadableFileError, UnsafeFileError
from topo.train.data import load_dataset, read_cifar10, read_idx


def test_digits_is_a_stratified_split_scaled_to_unit_range():
    data = load_dataset("digits", seed=0)
    assert data.task == "classification" and data.n_classes == 10
    assert data.input_shape == (8, 8)
    assert len(data.X_train) + len(data.X_test) == 1797
    assert data.X_train.shape[1] == 64
    assert data.X_train.min() >= 0.0 and data.X_train.max() <= 1.0
    # stratified: each class's share of the test set is within one sample of 25 %
    counts_all = np.bincount(np.concatenate([data.y_train, data.y_test]), minlength=10)
    counts_test = np.bincount(data.y_test, minlength=10)
    assert np.all(np.abs(counts_test - 0.25 * counts_all) <= 1)


def test_synthetic_data_is_split_in_equal_thirds_with_its_interactions():
    data = load_dataset("synthetic-F5", seed=1, n_samples=300)
    assert data.task == "regression" and data.n_outputs == 1
    assert len(data.X_train) == len(data.X_val) == len(data.X_test) == 100
    # Tsang et al. (2018), Table 1, F5: {1,2,3}, {4,5}, {6,7}, {8,9,10}, 0-based here
    assert sorted(data.interactions) == [(0, 1, 2), (3, 4), (5, 6), (7, 8, 9)]


def test_unknown_dataset_is_a_config_error():
    with pytest.raises(ConfigError, match="unknown dataset"):
        load_dataset("imagenet", seed=0)
    with pytest.raises(ConfigError, match="data-root"):
        load_dataset("mnist", seed=0)


def _idx_bytes(array: np.ndarray) -> bytes:
    header = bytes([0, 0, 0x08, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def _write_mnist(folder, compress: bool):
    rng = np.random.default_rng(0)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (6, 28, 28)),
        "train-labels-idx1-ubyte": np.array([0, 1, 2, 3, 4, 5]),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (2, 28, 28)),
        "t10k-labels-idx1-ubyte": np.array([7, 9]),
    }
    for name, arr in arrays.items():
        raw = _idx_bytes(arr)
        if compress:
            (folder / f"{name}.gz").write_bytes(gzip.compress(raw))
        else:
            (folder / name).write_bytes(raw)
    return arrays


@pytest.mark.parametrize("compress", [False, True])
def test_mnist_is_read_from_idx_files(tmp_path, compress):
    arrays = _write_mnist(tmp_path, compress)
    data = load_dataset("mnist", seed=0, root=tmp_path)
    assert data.input_shape == (28, 28)
    assert data.X_train.shape == (6, 784) and data.X_test.shape == (2, 784)
    np.testing.assert_allclose(data.X_train[3], arrays["train-images-idx3-ubyte"][3].ravel()
                               / 255.0, rtol=1e-6)
    assert data.y_test.tolist() == [7, 9]


def test_truncated_idx_file_names_the_file(tmp_path):
    raw = _idx_bytes(np.zeros((4, 28, 28)))
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(raw[:-10])
    with pytest.raises(UnreadableFileError, match="train-images-idx3-ubyte.*truncated"):
        read_idx(path)


def test_missing_mnist_file_suggests_download(tmp_path):
    with pytest.raises(UnreadableFileError, match="--download"):
        load_dataset("fashion-mnist", seed=0, root=tmp_path)


def _write_cifar(folder, n=3):
    base = folder / "cifar-10-batches-py"
    base.mkdir()
    rng = np.random.default_rng(1)
    batches = {}
    for name in [*(f"data_batch_{k}" for k in range(1, 6)), "test_batch"]:
        data = rng.integers(0, 256, (n, 3072)).astype(np.uint8)
        labels = rng.integers(0, 10, n).tolist()
        with open(base / name, "wb") as fh:
            pickle.dump({b"data": data, b"labels": labels, b"batch_label": b"x"}, fh,
                        protocol=2)
        batches[name] = (data, labels)
    return batches


def test_cifar10_batches_are_read_channel_last(tmp_path):
    batches = _write_cifar(tmp_path)
    data = load_dataset("cifar10", seed=0, root=tmp_path)
    assert data.input_shape == (32, 32, 3)
    assert data.X_train.shape == (15, 3072) and data.X_test.shape == (3, 3072)
    raw, labels = batches["data_batch_1"]
    # CIFAR rows are [R plane, G plane, B plane]; pixel (row 2, col 5), channel G
    expected = raw[0][1 * 1024 + 2 * 32 + 5] / 255.0
    picture = data.X_train[0].reshape(32, 32, 3)
    assert picture[2, 5, 1] == pytest.approx(expected)
    assert data.y_train[:3].tolist() == labels


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_cifar_pickle_with_code_is_refused(tmp_path):
    path = tmp_path / "data_batch_1"
    with open(path, "wb") as fh:
        pickle.dump({b"data": _Evil(), b"labels": [1]}, fh)
    with pytest.raises(UnsafeFileError, match="refusing"):
        read_cifar10(path)


def test_standardized_uses_the_training_split_only():
    from topo.train.data import Dataset, standardized

    x_train = np.array([[1.0, 5.0], [3.0, 5.0]], dtype=np.float32)  # column 1 is constant
    data = Dataset(name="t", X_train=x_train, y_train=np.array([0.0, 2.0], np.float32),
                   X_val=None, y_val=None, X_test=np.array([[5.0, 7.0]], np.float32),
                   y_test=np.array([4.0], np.float32), task="regression", n_classes=None,
                   input_shape=None)
    out = standardized(data)
    # train mean (2, 5), std (1, 0 -> 1); target mean 1, std 1
    np.testing.assert_allclose(out.X_train, [[-1.0, 0.0], [1.0, 0.0]])
    np.testing.assert_allclose(out.X_test, [[3.0, 2.0]])
    np.testing.assert_allclose(out.y_train, [-1.0, 1.0])
    np.testing.assert_allclose(out.y_test, [3.0])
    assert out.X_val is None


def test_standardize_option_keeps_the_ids_of_earlier_runs():
    import json
    from pathlib import Path

    from topo.train import TrainConfig
    from topo.train.rundir import run_id

    # data/example-run was made before the option existed
    manifest = json.loads((Path(__file__).resolve().parents[2] / "data" / "example-run"
                           / "run.json").read_text())
    config = TrainConfig.from_dict(manifest["config"])
    assert run_id(config) == manifest["run_id"]
    assert run_id(config.replace(standardize=True)) != manifest["run_id"]
