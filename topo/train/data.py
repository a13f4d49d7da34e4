"""Data sets for training, read with numpy only (no torchvision; nothing downloads in tests).

================== ================================================================ ========
name               source                                                           task
================== ================================================================ ========
``digits``         scikit-learn's built-in 8x8 digits (1797 samples), pixels / 16,  classif.
                   stratified train/test split (``test_fraction``, default 25 %)
``synthetic-F1``   Tsang et al. (ICLR 2018) test functions F1..F10 from             regress.
... ``-F10``       :mod:`topo.train.synthetic`; split in equal thirds train /
                   validation / test as in the paper; ``n_samples`` default 30000
``mnist``          the four IDX files of MNIST in ``root`` (``*-ubyte`` or          classif.
``fashion-mnist``  ``*-ubyte.gz``), pixels / 255, the official 60000/10000 split
``cifar10``        ``cifar-10-batches-py`` (data_batch_1..5, test_batch) in         classif.
                   ``root``, read with a restricted unpickler, pixels / 255
================== ================================================================ ========

Input shapes: digits ``(8, 8)``, MNIST/Fashion-MNIST ``(28, 28)``, CIFAR-10 ``(32, 32, 3)``:
CIFAR's channel-first rows are transposed to height-width-channel before flattening, so a
flattened input is a picture in the layout matplotlib shows directly. Synthetic data has no
input shape.

``download=True`` fetches missing MNIST / Fashion-MNIST / CIFAR-10 files into ``root`` (users
with internet only); without it a missing file is a clear :class:`UnreadableFileError`.
"""

from __future__ import annotations

import functools
import gzip
import io
import math
import pickle
import struct
import tarfile
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from topo.errors import ConfigError, UnreadableFileError, UnsafeFileError
from topo.train._text import count
from topo.train.config import DATASETS

__all__ = ["Dataset", "load_dataset", "image_layout", "standardized", "with_validation_split",
           "DATASETS",
           "read_idx", "read_cifar10", "stratified_split", "VALIDATION_SEED_OFFSET",
           "VALIDATION_SHARE"]

DEFAULT_SYNTHETIC_SAMPLES = 30000

VALIDATION_SHARE = 6
""":func:`with_validation_split` holds out ``len(train) // VALIDATION_SHARE`` samples (a
sixth, at least one)."""

VALIDATION_SEED_OFFSET = 7919
"""Added to the run's seed to seed the permutation of :func:`with_validation_split`. The
split must be fixed by the seed yet not be drawn from the run's own generators (seeded with
the seed itself), whose streams decide masks, weights and batch order: an offset gives it a
stream of its own. The value (the 1000th prime) has no meaning beyond that, but every
early-stopped run so far used it, so changing it changes their results."""

_IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
_URLS = {
    "mnist": "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "fashion-mnist": "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "cifar10": "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
}
_IDX_DTYPES = {0x08: np.uint8, 0x09: np.int8, 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4",
               0x0E: ">f8"}


@dataclass
class Dataset:
    """Arrays of one data set, split into train / validation (optional) / test.

    ``X_*`` are float32 arrays of shape ``(n, n_features)``; ``y_*`` are int64 class labels
    (classification) or float32 targets of shape ``(n,)`` (regression).
    """

    name: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray | None
    y_val: np.ndarray | None
    X_test: np.ndarray
    y_test: np.ndarray
    task: str
    n_classes: int | None
    input_shape: tuple[int, ...] | None
    interactions: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def n_features(self) -> int:
        """Number of input features."""
        return int(self.X_train.shape[1])

    @property
    def n_outputs(self) -> int:
        """Output width a network needs: classes, or 1 for regression."""
        return int(self.n_classes) if self.task == "classification" else 1


def image_layout(data: Dataset) -> tuple[tuple[int, int, int], bool]:
    """The picture shape ``(C, H, W)`` of a data set's flattened samples, and whether they
    are stored channels-last (``H W C``, CIFAR-10 here) rather than channel-first.

    An input shape of two numbers is a one-channel picture (digits 8x8, MNIST 28x28); of
    three, height-width-channel (as this module stores CIFAR-10).

    Raises
    ------
    ConfigError
        The data set has no picture shape (synthetic data).
    """
    shape = data.input_shape
    if shape is None or len(shape) not in (2, 3):
        raise ConfigError(f"dataset {data.name!r} has no pictures for a CNN (input shape "
                          f"{shape}); choose digits, mnist, fashion-mnist or cifar10")
    if len(shape) == 2:
        return (1, int(shape[0]), int(shape[1])), False
    return (int(shape[2]), int(shape[0]), int(shape[1])), True


def standardized(data: Dataset) -> Dataset:
    """The data set with features (and a regression target) scaled to zero mean and unit
    standard deviation, using the mean and deviation of the training split only.

    This is the preprocessing of Tsang et al. (ICLR 2018, "Detecting Statistical Interactions
    from Neural Network Weights") for the synthetic functions. A feature that is constant in
    the training split (a blank pixel) is only centred.
    """
    mx = data.X_train.mean(axis=0)
    sx = data.X_train.std(axis=0)
    sx = np.where(sx > 0, sx, np.ones_like(sx))
    changes = {"X_train": (data.X_train - mx) / sx, "X_test": (data.X_test - mx) / sx}
    if data.X_val is not None:
        changes["X_val"] = (data.X_val - mx) / sx
    if data.task == "regression":
        my, sy = data.y_train.mean(), data.y_train.std()
        sy = sy if sy > 0 else np.ones_like(sy)
        changes.update(y_train=(data.y_train - my) / sy, y_test=(data.y_test - my) / sy)
        if data.y_val is not None:
            changes["y_val"] = (data.y_val - my) / sy
    return replace(data, **changes)


def with_validation_split(data: Dataset, seed: int) -> Dataset:
    """The data set with a sixth of its training split held out for validation.

    Data sets that already have a validation split (the synthetic ones) are returned
    unchanged. The held-out samples are the first ``max(1, n // VALIDATION_SHARE)`` of a
    random permutation drawn with ``PCG64(seed + VALIDATION_SEED_OFFSET)``; the rest, in
    permutation order, are the new training split. Early stopping needs the validation
    loss this gives.
    """
    if data.X_val is not None:
        return data
    perm = np.random.Generator(np.random.PCG64(seed + VALIDATION_SEED_OFFSET)).permutation(
        len(data.X_train))
    n_val = max(1, len(data.X_train) // VALIDATION_SHARE)
    held, kept = perm[:n_val], perm[n_val:]
    return replace(data, X_train=data.X_train[kept], y_train=data.y_train[kept],
                   X_val=data.X_train[held], y_val=data.y_train[held])


def load_dataset(name: str, *, seed: int, n_samples: int | None = None,
                 root: str | Path | None = None, download: bool = False,
                 test_fraction: float = 0.25) -> Dataset:
    """Load a data set by name (see the module table).

    Parameters
    ----------
    name
        One of :data:`DATASETS`.
    seed
        Seeds the digits split and the synthetic draws.
    n_samples
        Synthetic data only: number of samples before the three-way split (default 30000).
    root
        Folder with the MNIST / Fashion-MNIST IDX files or CIFAR-10's ``cifar-10-batches-py``.
    download
        Fetch missing files into ``root`` (needs internet).
    test_fraction
        Digits only: fraction held out for testing (stratified).

    Returns
    -------
    Dataset

    Raises
    ------
    ConfigError
        Unknown data set name, or a file-based data set without ``root``.
    UnreadableFileError
        A required file is missing or damaged.
    """
    if name == "digits":
        return _digits(seed, test_fraction)
    if name.startswith("synthetic-"):
        if name not in DATASETS:
            raise ConfigError(f"unknown dataset {name!r}; synthetic data sets are "
                              "synthetic-F1 ... synthetic-F10")
        return _synthetic(name, seed, n_samples or DEFAULT_SYNTHETIC_SAMPLES)
    if name in ("mnist", "fashion-mnist"):
        folder = _require_root(name, root)
        if download:
            _download_idx(name, folder)
        return _idx_dataset(name, folder)
    if name == "cifar10":
        folder = _require_root(name, root)
        if download:
            _download_cifar(folder)
        return _cifar_dataset(folder)
    raise ConfigError(f"unknown dataset {name!r}; choose one of digits, synthetic-F1 ... "
                      "synthetic-F10, mnist, fashion-mnist, cifar10")


# --------------------------------------------------------------------- digits / synthetic
def _digits(seed: int, test_fraction: float) -> Dataset:
    X, y = _digits_arrays()
    train, test = stratified_split(y, test_fraction, seed)
    return Dataset("digits", X[train], y[train], None, None, X[test], y[test], "classification",
                   10, (8, 8))


def stratified_split(y: np.ndarray, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Train and test indices of a stratified random split: scikit-learn's
    ``train_test_split(..., test_size=test_fraction, stratify=y, random_state=seed)``.

    The same algorithm and the same random draws as scikit-learn's
    ``StratifiedShuffleSplit`` (``ceil(test_fraction n)`` test samples; per class, counts from
    ``_approximate_mode`` with ties broken at random, a permutation of the class's samples;
    then both index sets permuted, all with ``RandomState(seed)``), so the split equals
    scikit-learn's bit for bit (the tests check it against scikit-learn). It is written
    out here because importing ``sklearn.model_selection`` costs seconds (scipy.stats,
    pandas) before the first training step.

    Raises
    ------
    ConfigError
        Fewer training or test samples than classes, or a class with fewer than 2 samples.

    Notes
    -----
    O(n log n) for n samples.
    """
    n = len(y)
    n_test = math.ceil(test_fraction * n)
    n_train = n - n_test
    classes, y_index, counts = np.unique(y, return_inverse=True, return_counts=True)
    if counts.min() < 2 or n_train < classes.size or n_test < classes.size:
        classes_text = count(classes.size, "class", "classes")
        raise ConfigError(f"test_fraction {test_fraction} leaves {n_train} training and "
                          f"{count(n_test, 'test sample')} for {classes_text}: each split "
                          "needs at least one sample of every class")
    by_class = np.split(np.argsort(y_index, kind="stable"), np.cumsum(counts)[:-1])
    rng = np.random.RandomState(seed)
    n_train_per_class = _approximate_mode(counts, n_train, rng)
    n_test_per_class = _approximate_mode(counts - n_train_per_class, n_test, rng)
    train: list[np.ndarray] = []
    test: list[np.ndarray] = []
    for members, a, b in zip(by_class, n_train_per_class, n_test_per_class):
        shuffled = members.take(rng.permutation(members.size), mode="clip")
        train.extend(shuffled[:a])
        test.extend(shuffled[a:a + b])
    return rng.permutation(train), rng.permutation(test)


def _approximate_mode(counts: np.ndarray, n_draws: int,
                      rng: np.random.RandomState) -> np.ndarray:
    """scikit-learn's ``_approximate_mode``: per class its share of ``n_draws``, floored,
    the rest given to the largest remainders (ties drawn at random)."""
    continuous = counts / counts.sum() * n_draws
    floored = np.floor(continuous)
    need = int(n_draws - floored.sum())
    if need > 0:
        remainder = continuous - floored
        for value in np.sort(np.unique(remainder))[::-1]:
            (ties,) = np.where(remainder == value)
            add_now = min(len(ties), need)
            floored[rng.choice(ties, size=add_now, replace=False)] += 1
            need -= add_now
            if need == 0:
                break
    return floored.astype(int)


@functools.lru_cache(maxsize=1)
def _digits_arrays() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's digits as pixels / 16 and labels, read once per process (read-only).

    The file scikit-learn ships (``sklearn/datasets/data/digits.csv.gz``) is read directly,
    as ``load_digits`` reads it, without importing scikit-learn (seconds of start-up);
    ``load_digits`` is the fallback when the file is not where it should be.
    """
    data = _read_digits_file()
    if data is None:
        from sklearn.datasets import load_digits

        bunch = load_digits()
        features, target = bunch.data, bunch.target
    else:
        features, target = data[:, :-1], data[:, -1].astype(int)
    X = (features / 16.0).astype(np.float32)
    y = target.astype(np.int64)
    X.flags.writeable = y.flags.writeable = False
    return X, y


def _read_digits_file() -> np.ndarray | None:
    """scikit-learn's ``digits.csv.gz``, found on ``sys.path`` as the import system finds
    the installed package (which is not imported); None when it is not there."""
    import sys

    for entry in sys.path:
        path = Path(entry or ".") / "sklearn" / "datasets" / "data" / "digits.csv.gz"
        if path.is_file():
            with gzip.open(path, mode="rt", encoding="utf-8") as handle:
                return np.loadtxt(handle, delimiter=",")
    return None


def _synthetic(name: str, seed: int, n_samples: int) -> Dataset:
    from topo.train.synthetic import generate

    X, y, interactions = generate(name, n_samples, seed)
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y, dtype=np.float32).reshape(-1)
    third = n_samples // 3
    a, b = third, 2 * third
    return Dataset(name, X[:a], y[:a], X[a:b], y[a:b], X[b:], y[b:], "regression", None, None,
                   [tuple(int(i) for i in t) for t in interactions])


# --------------------------------------------------------------------- IDX (MNIST)
def read_idx(path: str | Path) -> np.ndarray:
    """Read one IDX file (optionally gzip-compressed) into a numpy array.

    Raises
    ------
    UnreadableFileError
        Missing file, unknown type code, or fewer bytes than the header promises.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFileError(f"{path}: no such file") from None
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise UnreadableFileError(f"{path}: damaged gzip file ({exc})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise UnreadableFileError(f"{path}: not an IDX file (bad magic number)")
    ndim = raw[3]
    if len(raw) < 4 + 4 * ndim:
        raise UnreadableFileError(f"{path}: truncated IDX header")
    shape = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    dtype = np.dtype(_IDX_DTYPES[raw[2]])
    count = int(np.prod(shape)) if shape else 1
    offset = 4 + 4 * ndim
    if len(raw) - offset < count * dtype.itemsize:
        raise UnreadableFileError(
            f"{path}: truncated IDX file ({len(raw) - offset} data bytes for shape {shape})")
    return np.frombuffer(raw, dtype=dtype, count=count, offset=offset).reshape(shape)


def _idx_dataset(name: str, folder: Path) -> Dataset:
    arrays = {key: read_idx(_find_idx(folder, base, name)) for key, base in _IDX_FILES.items()}
    X_tr, X_te = arrays["train_images"], arrays["test_images"]
    y_tr, y_te = arrays["train_labels"], arrays["test_labels"]
    for X, y, what in ((X_tr, y_tr, "train"), (X_te, y_te, "test")):
        if X.ndim != 3 or y.ndim != 1 or X.shape[0] != y.shape[0]:
            raise UnreadableFileError(
                f"{folder}: {name} {what} images {X.shape} and labels {y.shape} do not match")
    shape = tuple(int(s) for s in X_tr.shape[1:])
    return Dataset(
        name,
        (X_tr.reshape(len(X_tr), -1) / 255.0).astype(np.float32), y_tr.astype(np.int64),
        None, None,
        (X_te.reshape(len(X_te), -1) / 255.0).astype(np.float32), y_te.astype(np.int64),
        "classification", 10, shape)


def _find_idx(folder: Path, base: str, name: str) -> Path:
    for candidate in (base, base + ".gz", base.replace("-idx", ".idx"),
                      base.replace("-idx", ".idx") + ".gz"):
        if (folder / candidate).is_file():
            return folder / candidate
    raise UnreadableFileError(
        f"{folder}: {name} file {base}[.gz] is missing (pass --download to fetch it)")


# --------------------------------------------------------------------- CIFAR-10
class _ArrayOnlyUnpickler(pickle.Unpickler):
    """Builds plain containers, numbers, strings and numpy arrays; anything else is refused.

    CIFAR-10's python batches are pickled dicts whose ``data`` is a numpy ``uint8`` array;
    rebuilding an array needs exactly the numpy globals below, which only allocate memory,
    and protocol-2 pickles written by Python 3 store bytes through ``_codecs.encode`` (a
    string-to-bytes conversion). Any other global (a class or function that could run code)
    is refused.
    """

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
    }

    def find_class(self, module: str, name: str):
        if (module, name) in self._ALLOWED:
            if module == "_codecs":
                import codecs

                return codecs.encode
            if name == "_reconstruct":
                from numpy.core.multiarray import _reconstruct  # noqa: PLC0415

                return _reconstruct
            return getattr(np, name)
        raise UnsafeFileError(f"refusing to load {module}.{name} from a CIFAR batch: only "
                              "plain containers and arrays are allowed")


def read_cifar10(path: str | Path) -> tuple[np.ndarray, np.ndarray]:
    """Read one CIFAR-10 python batch: images ``(n, 32, 32, 3)`` uint8 and labels int64.

    Raises
    ------
    UnreadableFileError
        Missing or damaged file.
    UnsafeFileError
        The pickle asks for any class or function.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise UnreadableFileError(
            f"{path}: no such file (pass --download to fetch CIFAR-10)") from None
    try:
        obj = _ArrayOnlyUnpickler(io.BytesIO(raw), encoding="bytes").load()
    except UnsafeFileError as exc:
        raise UnsafeFileError(f"{path}: {exc}") from None
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means a damaged file
        raise UnreadableFileError(f"{path}: damaged CIFAR-10 batch ({exc})") from None
    if not isinstance(obj, dict):
        raise UnreadableFileError(f"{path}: a CIFAR-10 batch must hold a dict")
    data = obj.get(b"data", obj.get("data"))
    labels = obj.get(b"labels", obj.get("labels"))
    if data is None or labels is None:
        raise UnreadableFileError(f"{path}: CIFAR-10 batch lacks 'data' or 'labels'")
    arr = np.frombuffer(data, dtype=np.uint8) if isinstance(data, bytes) else np.asarray(
        data, dtype=np.uint8)
    labels = np.asarray(labels, dtype=np.int64)
    if arr.size != labels.size * 3072:
        raise UnreadableFileError(
            f"{path}: CIFAR-10 batch has {count(arr.size, 'byte')} of pixels for "
            f"{count(labels.size, 'label')}")
    images = arr.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return images, labels


def _cifar_dataset(folder: Path) -> Dataset:
    base = folder / "cifar-10-batches-py"
    if not base.is_dir():
        base = folder
    parts = [read_cifar10(base / f"data_batch_{k}") for k in range(1, 6)]
    X_te, y_te = read_cifar10(base / "test_batch")
    X_tr = np.concatenate([p[0] for p in parts])
    y_tr = np.concatenate([p[1] for p in parts])
    return Dataset(
        "cifar10",
        (X_tr.reshape(len(X_tr), -1) / 255.0).astype(np.float32), y_tr,
        None, None,
        (X_te.reshape(len(X_te), -1) / 255.0).astype(np.float32), y_te,
        "classification", 10, (32, 32, 3))


# --------------------------------------------------------------------- helpers
def _require_root(name: str, root: str | Path | None) -> Path:
    if root is None:
        raise ConfigError(f"dataset {name!r} is read from a folder: pass --data-root FOLDER "
                          "(and --download to fetch the files)")
    return Path(root)


def _download_idx(name: str, folder: Path) -> None:  # pragma: no cover - needs internet
    from topo.io.atomic import atomic_write_bytes

    for base in _IDX_FILES.values():
        try:
            _find_idx(folder, base, name)
            continue
        except UnreadableFileError:
            pass
        atomic_write_bytes(folder / f"{base}.gz", _fetch(_URLS[name] + base + ".gz"))


def _download_cifar(folder: Path) -> None:  # pragma: no cover - needs internet
    if (folder / "cifar-10-batches-py" / "test_batch").is_file():
        return
    blob = _fetch(_URLS["cifar10"])
    with tarfile.open(fileobj=io.BytesIO(blob), mode="r:gz") as tar:
        members = [m for m in tar.getmembers()
                   if m.isfile() and m.name.startswith("cifar-10-batches-py/")
                   and ".." not in Path(m.name).parts]
        from topo.io.atomic import atomic_write_bytes

        for m in members:
            fh = tar.extractfile(m)
            if fh is not None:
                atomic_write_bytes(folder / m.name, fh.read())


def _fetch(url: str) -> bytes:  # pragma: no cover - needs internet
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=60) as resp:
            return resp.read()
    except OSError as exc:
        raise UnreadableFileError(f"{url}: download failed ({exc})") from None
