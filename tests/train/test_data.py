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


def _regression(n_train: int, val: bool = False):
    from topo.train.data import Dataset

    X = np.arange(2 * n_train, dtype=np.float32).reshape(n_train, 2)
    y = np.arange(n_train, dtype=np.float32)
    return Dataset("t", X, y, X[:2] + 100 if val else None, y[:2] + 100 if val else None,
                   X[:1], y[:1], "regression", None, None)


def test_validation_split_holds_out_a_sixth_chosen_by_the_seed():
    from topo.train.data import VALIDATION_SEED_OFFSET, with_validation_split

    data = with_validation_split(_regression(12), seed=5)
    # the documented draw: a permutation from PCG64(seed + offset), the first 12 // 6 held out
    perm = np.random.Generator(np.random.PCG64(5 + VALIDATION_SEED_OFFSET)).permutation(12)
    assert VALIDATION_SEED_OFFSET == 7919   # every early-stopped run so far used it
    np.testing.assert_array_equal(data.y_val, perm[:2])
    np.testing.assert_array_equal(data.y_train, perm[2:])
    np.testing.assert_array_equal(data.X_val[:, 0], 2 * perm[:2])
    # two seeds, two different splits of the same data
    other = with_validation_split(_regression(12), seed=6)
    assert sorted(other.y_val.tolist()) != sorted(data.y_val.tolist())


def test_validation_split_keeps_at_least_one_sample_and_an_existing_split():
    from topo.train.data import with_validation_split

    assert len(with_validation_split(_regression(5), seed=0).X_val) == 1   # 5 // 6 = 0 -> 1
    given = _regression(12, val=True)
    assert with_validation_split(given, seed=0) is given


def test_standardized_scales_validation_with_training_statistics_and_keeps_labels():
    from dataclasses import replace

    from topo.train.data import standardized

    data = _regression(2, val=True)   # X_train [[0, 1], [2, 3]]: mean (1, 2), std (1, 1)
    out = standardized(data)
    np.testing.assert_allclose(out.X_val, [[99.0, 99.0], [101.0, 101.0]])
    np.testing.assert_allclose(out.y_val, [199.0, 201.0])   # y mean 0.5, std 0.5
    constant = standardized(replace(data, y_train=np.array([3.0, 3.0], np.float32)))
    np.testing.assert_allclose(constant.y_train, [0.0, 0.0])   # std 0: only centred
    labels = replace(data, task="classification", n_classes=3,
                     y_train=np.array([0, 2]), y_test=np.array([1]), y_val=np.array([2, 1]))
    out = standardized(labels)
    assert out.y_train.tolist() == [0, 2] and out.y_val.tolist() == [2, 1]


@pytest.mark.parametrize("raw, message", [
    (b"\x1f\x8b\x08\x00garbage", "damaged gzip file"),
    (b"\x00\x00\x07\x01", r"not an IDX file \(bad magic number\)"),   # type code 7
    (b"\x00\x00\x08\x03\x00\x00", "truncated IDX header"),   # 3 dimensions, 2 bytes of them
])
def test_damaged_idx_files_are_named(tmp_path, raw, message):
    (tmp_path / "x-idx1-ubyte").write_bytes(raw)
    with pytest.raises(UnreadableFileError, match=f"x-idx1-ubyte: {message}"):
        read_idx(tmp_path / "x-idx1-ubyte")
    with pytest.raises(UnreadableFileError, match="no such file"):
        read_idx(tmp_path / "missing")


def test_idx_files_of_the_other_types_and_names(tmp_path):
    # a 0-dimensional int32 file (type 0x0C, big-endian) under MNIST's dotted file name
    (tmp_path / "one.idx").write_bytes(bytes([0, 0, 0x0C, 0]) + struct.pack(">i", -7))
    assert read_idx(tmp_path / "one.idx").tolist() == -7
    _write_mnist(tmp_path, compress=False)
    for name in ("train-labels-idx1-ubyte", "t10k-images-idx3-ubyte"):
        (tmp_path / name).rename(tmp_path / name.replace("-idx", ".idx"))
    assert load_dataset("mnist", seed=0, root=tmp_path).X_test.shape == (2, 784)


def test_mnist_images_and_labels_must_agree(tmp_path):
    _write_mnist(tmp_path, compress=False)
    (tmp_path / "t10k-labels-idx1-ubyte").write_bytes(_idx_bytes(np.array([1, 2, 3])))
    with pytest.raises(UnreadableFileError, match="test images .* and labels .* do not match"):
        load_dataset("mnist", seed=0, root=tmp_path)


def test_unknown_synthetic_function_and_cifar_without_root_are_config_errors():
    with pytest.raises(ConfigError, match="synthetic-F1 ... synthetic-F10"):
        load_dataset("synthetic-F11", seed=0)
    with pytest.raises(ConfigError, match="--data-root"):
        load_dataset("cifar10", seed=0)


@pytest.mark.parametrize("content, message", [
    ([1, 2], "must hold a dict"),
    ({b"data": b"\x00" * 3072}, "lacks 'data' or 'labels'"),
    ({"data": b"\x00" * 3000, "labels": [1]}, "3000 bytes of pixels for 1 label$"),
])
def test_damaged_cifar_batches_are_named(tmp_path, content, message):
    path = tmp_path / "test_batch"
    path.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(UnreadableFileError, match=message):
        read_cifar10(path)


def test_cifar_batch_that_is_not_a_pickle_or_missing(tmp_path):
    (tmp_path / "b").write_bytes(b"not a pickle")
    with pytest.raises(UnreadableFileError, match="damaged CIFAR-10 batch"):
        read_cifar10(tmp_path / "b")
    with pytest.raises(UnreadableFileError, match="pass --download"):
        read_cifar10(tmp_path / "missing")


def test_cifar_batches_directly_in_the_root_folder(tmp_path):
    _write_cifar(tmp_path, n=2)
    for path in (tmp_path / "cifar-10-batches-py").iterdir():
        path.rename(tmp_path / path.name)
    (tmp_path / "cifar-10-batches-py").rmdir()
    data = load_dataset("cifar10", seed=0, root=tmp_path)
    assert data.X_train.shape == (10, 3072) and data.y_test.shape == (2,)


def test_download_fetches_before_reading(tmp_path, monkeypatch):
    from topo.train import data as data_module

    fetched = []
    monkeypatch.setattr(data_module, "_download_idx",
                        lambda name, folder: (fetched.append(name), _write_mnist(folder, True)))
    monkeypatch.setattr(data_module, "_download_cifar",
                        lambda folder: (fetched.append("cifar10"), _write_cifar(folder, n=1)))
    (tmp_path / "m").mkdir()
    assert load_dataset("mnist", seed=0, root=tmp_path / "m", download=True).X_test.shape == (
        2, 784)
    (tmp_path / "c").mkdir()
    assert load_dataset("cifar10", seed=0, root=tmp_path / "c", download=True).X_test.shape == (
        1, 3072)
    assert fetched == ["mnist", "cifar10"]


# ----------------------------------------------------------------- digits without scikit-learn
@pytest.mark.xdist_group("scikit-learn")   # scikit-learn's import: on one worker of the suite
@pytest.mark.parametrize("fraction", [0.25, 0.1, 0.5, 1 / 3, 0.9])
def test_the_digits_split_is_scikit_learns_bit_for_bit(fraction):
    """topo splits digits without importing scikit-learn (seconds of start-up); the split must
    stay the one ``train_test_split(stratify=y)`` draws, or every digits run would change."""
    from sklearn.model_selection import train_test_split

    from topo.train.data import _digits_arrays, stratified_split

    X, y = _digits_arrays()
    for seed in (0, 1, 7, 123, 2**31 - 1):
        idx = np.arange(len(y))
        want_train, want_test = train_test_split(idx, test_size=fraction, stratify=y,
                                                 random_state=seed)
        train, test = stratified_split(y, fraction, seed)
        np.testing.assert_array_equal(train, want_train)
        np.testing.assert_array_equal(test, want_test)


@pytest.mark.xdist_group("scikit-learn")   # scikit-learn's import: on one worker of the suite
def test_stratified_split_matches_scikit_learn_on_skewed_labels_with_ties():
    from sklearn.model_selection import train_test_split

    from topo.train.data import stratified_split

    # equal remainders in several classes: the ties are broken with the random draws
    y = np.repeat(np.arange(7), [2, 3, 3, 5, 8, 13, 2])
    for seed in range(30):
        want = train_test_split(np.arange(y.size), test_size=0.3, stratify=y,
                                random_state=seed)
        got = stratified_split(y, 0.3, seed)
        for a, b in zip(got, want):
            np.testing.assert_array_equal(a, b)
    with pytest.raises(ConfigError, match="at least one sample of every class"):
        stratified_split(y, 0.05, 0)


@pytest.mark.xdist_group("scikit-learn")   # scikit-learn's import: on one worker of the suite
def test_digits_arrays_are_load_digits_scaled():
    from sklearn.datasets import load_digits

    from topo.train.data import _digits_arrays

    X, y = _digits_arrays()
    reference = load_digits()
    np.testing.assert_array_equal(X, (reference.data / 16.0).astype(np.float32))
    np.testing.assert_array_equal(y, reference.target)
    assert X.dtype == np.float32 and y.dtype == np.int64
