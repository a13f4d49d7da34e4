"""Fixtures shared by the whole suite.

Expensive results are made once per test session, also when pytest-xdist runs the suite in
several worker processes: the first worker that needs one builds it in the session's shared
temporary folder under a file lock, the others wait for it and reuse it. Tests must not
change these shared outputs (copy what you need to change into ``tmp_path``).

- ``repo_root``, ``example_run``: the checkout and its committed example run;
- ``shared_data``: ``<repo>/../shared`` (the published topologies and real checkpoints), or a
  skip when it is absent;
- ``trained_run``: a SET run on digits (64-100-100-10, 3 epochs, seed 0) made by topo's trainer;
- ``demo_output``: ``topo demo --epochs 3`` into a folder that held an earlier demo's run, and
  what it printed;
- ``built_once``: the same sharing for other expensive folders (``built_once(name, build)``).

Each test process does its numerical work on one thread, and the temporary folders are on a
RAM file system where the machine has one (:func:`pytest_configure` says why).

With -n the suite runs with ``--dist loadgroup``: tests go to the workers one at a time,
except that the tests sharing a module- or class-scoped fixture (or an explicit
``xdist_group`` mark) form one group run on one worker (:func:`pytest_collection_modifyitems`).
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:   # numpy is imported after pytest_configure has set its thread count
    import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED = REPO_ROOT.parent / "shared"

#: The architecture, epochs and seed of the trained run and of the demo's SET runs.
TRAINED_ARCH = [64, 100, 100, 10]
TRAINED_EPOCHS = 3


#: The thread counts of OpenMP (torch), OpenBLAS and MKL (numpy, scipy, torch).
THREAD_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")

#: Free space a RAM file system needs to hold the suite's temporary folders: a run writes about
#: 100 MB, and pytest keeps the folders of the last three runs.
RAM_TEMP_MIN_FREE = 1 << 30


def pytest_configure(config: pytest.Config) -> None:
    # figures render off-screen everywhere in the suite
    os.environ.setdefault("MPLBACKEND", "Agg")
    # One thread for torch's and the BLAS libraries' numerical work in each test process
    # (set before the workers start and before torch is imported, which reads it): with
    # pytest-xdist's two workers on two cores, a second thread per worker only contends for
    # a core that the other worker is using, and OpenMP's idle threads spin while they
    # wait. Results do not depend on it: train() sets its own thread count for the run
    # (topo.train.runner.torch_threads), and the tests of tests/train run with one thread.
    for variable in THREAD_VARIABLES:
        os.environ.setdefault(variable, "1")
    # tmp_path folders in memory where the machine has a RAM file system (Linux's /dev/shm)
    # and no other place was asked for: topo's atomic writes fsync every file they write, and
    # on a disk each fsync waits for it (milliseconds, thousands of times a run); on tmpfs
    # it returns at once. What the tests check is unchanged: the same files are written,
    # through the same temporary-file-then-rename path. Read by pytest when it first makes
    # the session's folder; pytest-xdist's workers inherit that folder from the controller.
    ram = _ram_temp_root()
    if ram is not None and config.option.basetemp is None:
        os.environ.setdefault("PYTEST_DEBUG_TEMPROOT", str(ram))


def _ram_temp_root() -> Path | None:
    """/dev/shm when it is a writable folder with :data:`RAM_TEMP_MIN_FREE` bytes free."""
    shm = Path("/dev/shm")
    try:
        stats = os.statvfs(shm)
    except OSError:
        return None
    free = stats.f_bavail * stats.f_frsize
    return shm if shm.is_dir() and os.access(shm, os.W_OK | os.X_OK) and \
        free >= RAM_TEMP_MIN_FREE else None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # The few end-to-end tests (marked slow) start first: with two workers, the long ones
    # then run beside the many short ones instead of being left for last.
    items.sort(key=lambda item: item.get_closest_marker("slow") is None)
    # With -n (--dist loadgroup), tests go to the workers one by one; the tests of one group
    # run on one worker: those sharing a module- or class-scoped fixture (a Jupyter kernel, a
    # Dask cluster, a trained search), so that it is set up once, and those marked
    # xdist_group (a library whose import takes seconds, joblib's worker processes).
    if getattr(config.option, "loadgroup", False):   # set in the workers by pytest-xdist
        for item in items:
            groups = sorted({*_fixture_groups(item), *(
                str(mark.args[0] if mark.args else mark.kwargs.get("name", "default"))
                for mark in item.iter_markers("xdist_group"))})
            if groups:
                _name_group(item, "+".join(groups))


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return REPO_ROOT


@pytest.fixture(scope="session")
def example_run() -> Path:
    """``data/example-run``: a 15-epoch SET run on digits committed with the repository."""
    return REPO_ROOT / "data" / "example-run"


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The shared read-only data beside the checkout; the test is skipped without it."""
    if not SHARED.is_dir():
        pytest.skip(f"shared data not available ({SHARED})")
    return SHARED


@pytest.fixture(scope="session")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SET run on digits (64-100-100-10, ER ε = 20, ζ = 0.3, 3 epochs, seed 0)."""

    def build(folder: Path) -> None:
        from topo.train import TrainConfig, train

        train(TrainConfig(method="set", dataset="digits", arch=TRAINED_ARCH,
                          epochs=TRAINED_EPOCHS, seed=0), folder / "set", progress=False)

    return _once(tmp_path_factory, "trained-run", build) / "set"


@pytest.fixture(scope="session")
def demo_output(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """``topo demo --epochs 3``: its output folder and what it printed on stdout.

    Before the demo, ``runs/set-s0`` holds an earlier demo's run with a stale
    ``snapshots/epoch_0099.safetensors``, which the demo must replace.
    """

    def build(folder: Path) -> None:
        from topo.cli import main

        out = folder / "demo"
        earlier = out / "runs" / "set-s0"
        (earlier / "snapshots").mkdir(parents=True)
        (earlier / "run.json").write_text('{"status": "finished"}')
        (earlier / "snapshots" / "epoch_0099.safetensors").write_bytes(b"old")
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            status = main(["demo", "--out", str(out), "--epochs", str(TRAINED_EPOCHS)])
        assert status == 0, printed.getvalue()
        (folder / "printed.txt").write_text(printed.getvalue())

    folder = _once(tmp_path_factory, "demo-output", build)
    return folder / "demo", (folder / "printed.txt").read_text()


@pytest.fixture(scope="session")
def built_once(tmp_path_factory: pytest.TempPathFactory) -> Callable[..., Path]:
    """``built_once(name, build)``: the folder ``name`` filled by ``build(folder)`` once per
    test session and shared by every xdist worker (read-only: copy it to change it)."""
    return lambda name, build: _once(tmp_path_factory, name, build)


@pytest.fixture
def write_run() -> Callable[..., Path]:
    """``write_run(root, masks_per_snapshot, epochs=None, metrics=None, seed=0)``: a run
    directory with one topo snapshot per list of boolean masks (random weights on them),
    names ``fc0, fc1, ...``, and the given ``metrics.jsonl`` rows."""
    return _write_run


# --------------------------------------------------------------------------- helpers
def _write_run(root: Path, masks_per_snapshot: list[list[np.ndarray]], epochs: Any = None,
               metrics: list[dict[str, Any]] | None = None, seed: int = 0) -> Path:
    import numpy as np

    from topo.graph import LayeredGraph
    from topo.io import save_snapshot
    from topo.io.run import MANIFEST_NAME, METRICS_NAME, snapshot_name

    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    (root / MANIFEST_NAME).write_text(json.dumps({"config": {"method": "stand-in"}}))
    epochs = list(range(len(masks_per_snapshot))) if epochs is None else epochs
    for epoch, masks in zip(epochs, masks_per_snapshot):
        weights = [np.where(m, rng.normal(size=m.shape), 0.0) for m in masks]
        graph = LayeredGraph(weights, masks=masks, names=[f"fc{k}" for k in range(len(masks))],
                             metadata={"epoch": epoch})
        save_snapshot(graph, root / snapshot_name(epoch))
    if metrics is not None:
        (root / METRICS_NAME).write_text("".join(json.dumps(m) + "\n" for m in metrics))
    return root


def _fixture_groups(item: pytest.Item) -> list[str]:
    """The module- and class-scoped fixtures (and their parameters) that ``item`` uses."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return []
    params = getattr(getattr(item, "callspec", None), "params", {})
    groups = []
    for name in getattr(item, "fixturenames", ()):
        definitions = info.name2fixturedefs.get(name)
        if definitions and definitions[-1].scope in ("module", "class", "package"):
            group = f"{item.path.name}:{name}"
            if name in params:
                # no brackets: pytest-xdist reads the group after the last "@" only when no
                # "]" follows it (a "]" there is taken for a parameter's id holding an "@")
                group += "=" + str(params[name]).translate({ord("["): "(", ord("]"): ")"})
            groups.append(group)
    return sorted(groups)


def _name_group(item: pytest.Item, group: str) -> None:
    """Append ``@group`` to the test's node id, which is how pytest-xdist's loadgroup
    scheduler sees groups. pytest-xdist 3.8 writes ``item._nodeid``, which pytest 9.2 no
    longer reads (the id is ``item._id``), so its own xdist_group marks are lost: done here."""
    nodeid = item.nodeid if "@" not in item.nodeid.rpartition("]")[2] else \
        item.nodeid.rpartition("@")[0]
    nodeid = f"{nodeid}@{group}"
    if hasattr(item, "_id"):
        from _pytest.nodeid import NodeId

        item._id = NodeId.parse(nodeid)
    else:
        item._nodeid = nodeid


def _once(factory: pytest.TempPathFactory, name: str, build: Callable[[Path], None]) -> Path:
    """A folder ``name`` made by ``build`` once per test session, shared by xdist workers."""
    base = factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the session's folder, above each worker's own
    folder = base / name
    done = base / f"{name}.done"
    with _locked(base / f"{name}.lock"):
        if not done.exists():
            shutil.rmtree(folder, ignore_errors=True)  # what a failed build left
            folder.mkdir(parents=True)
            build(folder)
            done.touch()
    return folder


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
