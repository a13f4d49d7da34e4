"""TensorBoard event files of evolution tables, written with the ``tensorboard`` package's own
event writer (no TensorFlow needed; ``pip install 'topo[tensorboard]'``).

Every numeric column of an evolution table (:func:`topo.topology_evolution`) becomes scalars:

- a per-layer column (connections, density, churn, NNSTD, the ITOP rate of the snapshots and
  the exact ``itop_rate`` a run recorded, degrees, neural persistence, and the run's
  per-layer metrics) is the tag ``topo/<column>/<layer name>``;
- a column with one value per snapshot (the run's scalar metrics: ``loss``,
  ``test_accuracy``, ``itop_rate_network``, ...) is the tag ``topo/<column>``;

at the global step of the snapshot's epoch (its position in the sequence when the table has
pruning levels, whose epochs repeat, or when asked). Columns that only identify a row
(``snapshot``, ``epoch``, ``level``, ``step``, ``layer``, ``name``, ``n_in``, ``n_out``,
``possible``) and missing values (the churn of the first snapshot) are not written.
TensorBoard shows each ``topo/<column>`` as one card per layer.

:func:`write_evolution_events` writes a whole table as one event file, atomically (into a
temporary folder, then moved into the log folder); :class:`EventWriter` appends as a run
goes (what :class:`topo.Recorder` uses).
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topo.errors import ConfigError, OutputError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["write_evolution_events", "evolution_scalars", "network_columns", "EventWriter",
           "require_tensorboard", "TAG_PREFIX", "STEP_CHOICES"]

TAG_PREFIX = "topo"
#: What the global step of a snapshot's scalars is: its ``epoch``, its optimizer ``step``
#: (when every snapshot has one) or its position in the sequence (``snapshot``).
STEP_CHOICES = ("epoch", "step", "snapshot")
_ID_COLUMNS = frozenset({"snapshot", "epoch", "level", "step", "epoch_source", "layer", "name",
                         "n_in", "n_out", "possible"})
_EXTRA = "tensorboard"


def evolution_scalars(frame: pandas.DataFrame, *, network_columns: Iterable[str] = (),
                      step: str = "epoch") -> Iterator[tuple[str, int, float]]:
    """The ``(tag, global step, value)`` scalars of an evolution table (module docstring).

    Parameters
    ----------
    frame
        An evolution table.
    network_columns
        Columns that hold one value per snapshot (the run's scalar metrics), written once per
        snapshot without a layer name; every other numeric column is per layer.
    step
        One of :data:`STEP_CHOICES`; with ``"epoch"``, a table with pruning levels uses the
        snapshot position (epochs repeat across levels).

    Raises
    ------
    ConfigError
        An unknown ``step``, or ``"step"`` for a table without a step for every snapshot.
    """
    import pandas as pd

    if step not in STEP_CHOICES:
        raise ConfigError(f"TensorBoard step {step!r}: choose one of {', '.join(STEP_CHOICES)}")
    network = set(network_columns)
    if step == "epoch" and "level" in frame.columns:
        step = "snapshot"
    if step == "step" and ("step" not in frame.columns or frame["step"].isna().any()):
        raise ConfigError("TensorBoard step 'step': not every snapshot has a step; use "
                          "'epoch' or 'snapshot'")
    columns = [c for c in frame.columns
               if c not in _ID_COLUMNS and pd.api.types.is_numeric_dtype(frame[c])
               and not pd.api.types.is_bool_dtype(frame[c])]
    for _, rows in frame.groupby("snapshot", sort=True):
        x = int(rows[step].iloc[0])
        for column in columns:
            if column in network:
                value = rows[column].iloc[0]
                if _finite(value):
                    yield f"{TAG_PREFIX}/{column}", x, float(value)
                continue
            for name, value in zip(rows["name"], rows[column]):
                if _finite(value):
                    yield f"{TAG_PREFIX}/{column}/{name}", x, float(value)


def network_columns(frame: pandas.DataFrame, metric_keys: Iterable[str]) -> list[str]:
    """The columns of an evolution table that hold the run's scalar metrics (one value per
    snapshot), given the keys of its metrics rows (per-layer lists spread as ``name_0``,
    ``name_1``, ...).

    The same rule as the table's join of the metrics: a metric given for every layer is a
    per-layer ``run_<name>`` column; any other is a scalar, named ``run_<name>`` when the
    table has a column of its own name.
    """
    n_layers = int(frame["layer"].max()) + 1 if len(frame) else 0
    keys = set(metric_keys)
    per_layer = {k.rsplit("_", 1)[0] for k in keys
                 if k.rsplit("_", 1)[-1].isdigit()
                 and all(f"{k.rsplit('_', 1)[0]}_{j}" in keys for j in range(n_layers))}
    scalars = [k for k in keys if k not in ("epoch", "level") and not any(
        k.startswith(f"{b}_") and k.rsplit("_", 1)[-1].isdigit() for b in per_layer)]
    out = []
    for key in scalars:
        renamed = f"run_{key}"
        if renamed in frame.columns and key not in per_layer:
            out.append(renamed)
        elif key in frame.columns:
            out.append(key)
    return sorted(out)


def write_evolution_events(frame: pandas.DataFrame, logdir: str | Path, *,
                           network_columns: Iterable[str] = (), step: str = "epoch") -> Path:
    """Write an evolution table's scalars (:func:`evolution_scalars`) as one TensorBoard event
    file in ``logdir``; returns the file's path.

    The file is written in a temporary folder inside ``logdir`` and moved in when complete,
    so TensorBoard never reads half of it and a failure leaves nothing behind.

    Raises
    ------
    ConfigError
        The ``tensorboard`` package is not installed (the message names the extra), or a bad
        ``step``.
    OutputError
        ``logdir`` cannot be written.
    """
    scalars = list(evolution_scalars(frame, network_columns=network_columns, step=step))
    logdir = Path(logdir)
    try:
        logdir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".topo-events.", suffix=".tmp", dir=logdir))
    except OSError as exc:
        raise OutputError(f"{logdir}: cannot write ({exc.strerror or exc})") from None
    try:
        writer = EventWriter(staging)
        writer.add_scalars(scalars)
        written = writer.close()
        target = logdir / written.name
        os.replace(written, target)
        return target
    except OSError as exc:
        raise OutputError(f"{logdir}: cannot write ({exc.strerror or exc})") from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)


class EventWriter:
    """Scalars appended to one TensorBoard event file in ``logdir`` (made if missing).

    Raises
    ------
    ConfigError
        The ``tensorboard`` package is not installed (the message names the extra).
    """

    def __init__(self, logdir: str | Path) -> None:
        modules = _tensorboard()
        self._event, self._summary = modules["Event"], modules["Summary"]
        self.logdir = Path(logdir)
        try:
            self.logdir.mkdir(parents=True, exist_ok=True)
            self._writer = modules["EventFileWriter"](str(self.logdir))
        except OSError as exc:
            raise OutputError(f"{logdir}: cannot write ({exc.strerror or exc})") from None
        self.path = Path(self._writer._file_name)
        self._closed = False

    def add_scalars(self, scalars: Iterable[tuple[str, int, float]]) -> None:
        """Append ``(tag, global step, value)`` scalars, one event per global step."""
        by_step: dict[int, list[Any]] = {}
        for tag, x, value in scalars:
            by_step.setdefault(x, []).append(self._summary.Value(tag=tag, simple_value=value))
        now = time.time()
        for x, values in by_step.items():
            self._writer.add_event(self._event(wall_time=now, step=x,
                                               summary=self._summary(value=values)))

    def flush(self) -> None:
        """Write what is queued to the file."""
        if not self._closed:
            self._writer.flush()

    def close(self) -> Path:
        """Flush and close the file; returns its path."""
        if not self._closed:
            self._writer.close()
            self._closed = True
        return self.path


def require_tensorboard() -> None:
    """Check that the ``tensorboard`` package can be imported (a :class:`ConfigError` naming
    the extra otherwise), before any work that ends in writing events."""
    _tensorboard()


def _finite(value: Any) -> bool:
    try:
        return value is not None and math.isfinite(float(value))
    except (TypeError, ValueError):
        return False


def _tensorboard() -> dict[str, Any]:
    """The event writer and protocol buffers of the ``tensorboard`` package."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            from tensorboard.compat.proto.event_pb2 import Event
            from tensorboard.compat.proto.summary_pb2 import Summary
            from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:
        raise ConfigError(
            "writing TensorBoard event files needs the tensorboard package: "
            f"pip install 'topo[{_EXTRA}]' (or pip install tensorboard)") from None
    return {"Event": Event, "Summary": Summary, "EventFileWriter": EventFileWriter}
