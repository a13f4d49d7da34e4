"""Run directories: where topo keeps the files of one training run.

::

    RUN/
      run.json                          manifest: config, seed, versions, status
      metrics.jsonl                     one JSON object per epoch
      updates.jsonl                     (topo.Recorder) one JSON object per structural update
      snapshots/epoch_0000.safetensors  epoch 0 = initialisation, zero-padded so that
      snapshots/epoch_0001.safetensors  sorting the paths sorts time
      snapshots/level_01/epoch_0000...  iterative pruning: one folder per level

Every file name lives here, so readers, the training loop and :class:`topo.Recorder` agree
on them; :class:`RunWriter` writes them (each file atomically). A folder of another
program's checkpoints is read as a run too: :func:`snapshot_paths` lists its checkpoint files
(or those a glob pattern selects) and :func:`name_times` reads the epoch and step that their
names give (``checkpoint_12.pth.tar``, ``epoch=3-step=100.ckpt``, ``model_e10.pt``).
"""

from __future__ import annotations

import json
import math
import re
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topo.errors import ConfigError, UnreadableFileError
from topo.io.atomic import atomic_write_text

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = [
    "MANIFEST_NAME", "METRICS_NAME", "UPDATES_NAME", "SNAPSHOT_DIR", "SNAPSHOT_SUFFIX",
    "RUN_FORMAT", "snapshot_name", "is_run_dir", "read_manifest", "read_metrics",
    "read_updates", "flat_metrics", "snapshot_paths", "snapshot_epoch", "snapshot_level",
    "natural_key", "CHECKPOINT_SUFFIXES", "checkpoint_stem", "name_times", "metrics_line",
    "RunWriter", "run_of",
]

MANIFEST_NAME = "run.json"
METRICS_NAME = "metrics.jsonl"
UPDATES_NAME = "updates.jsonl"
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_SUFFIX = ".safetensors"
RUN_FORMAT = "topo.run"
#: Suffixes of the files a folder of checkpoints is read for (``topo.load`` then reads each
#: by its content); a glob pattern selects any other files. ``.pth.tar`` ends in ``.tar``.
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".tar", ".pkl",
                       ".pickle", ".h5", ".hdf5", ".keras", ".onnx", ".npz")
_DOUBLE_SUFFIXES = (".pth.tar", ".pt.tar", ".onnx.gz")
_EPOCH_RE = re.compile(r"epoch_(\d+)")
_LEVEL_RE = re.compile(r"level_(\d+)")
# an epoch or a step named in a file name: epoch=3, epoch_0012, ep5, e10; step=100, iter_20
_NAMED_EPOCH_RE = re.compile(r"(?<![a-z])(?:epoch|ep|e)[=_\-]?(\d+)", re.IGNORECASE)
_NAMED_STEP_RE = re.compile(r"(?<![a-z])(?:global_step|step|iteration|iter)[=_\-]?(\d+)",
                            re.IGNORECASE)


def snapshot_name(epoch: int, level: int | None = None) -> str:
    """Relative path of a snapshot inside a run directory."""
    name = f"epoch_{epoch:04d}{SNAPSHOT_SUFFIX}"
    if level is None:
        return f"{SNAPSHOT_DIR}/{name}"
    return f"{SNAPSHOT_DIR}/level_{level:02d}/{name}"


def is_run_dir(path: Path) -> bool:
    """True when ``path`` is a folder with a run manifest."""
    return path.is_dir() and (path / MANIFEST_NAME).is_file()


def read_manifest(run: str | Path) -> dict[str, Any]:
    """The parsed ``run.json`` of a run directory."""
    path = Path(run) / MANIFEST_NAME
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UnreadableFileError(f"{run}: not a topo run (no {MANIFEST_NAME})") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UnreadableFileError(f"{path}: damaged run manifest ({exc})") from None


def read_metrics(run: str | Path) -> pandas.DataFrame:
    """Per-epoch metrics of a run as a DataFrame (empty when none were written yet).

    Nested per-layer lists (e.g. ``density``) become columns ``density_0``, ``density_1``...
    """
    import pandas as pd

    return pd.DataFrame([flat_metrics(row) for row in _json_lines(Path(run) / METRICS_NAME)])


def _json_lines(path: Path) -> list[dict[str, Any]]:
    """The rows of a JSON-lines file of a run (none when it does not exist); an incomplete
    last line is left out with a warning (a writer killed mid-line leaves at most its last
    line incomplete), an invalid line elsewhere is refused."""
    if not path.is_file():
        return []
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError:
            if n == len(lines):
                warnings.warn(f"{path}: ignoring incomplete last line {n}", stacklevel=3)
                break
            raise UnreadableFileError(f"{path}: line {n} is not valid JSON") from None
    return rows


def flat_metrics(row: dict[str, Any]) -> dict[str, Any]:
    """A metrics row with its per-layer lists spread as ``name_0``, ``name_1``, ..."""
    flat: dict[str, Any] = {}
    for key, value in row.items():
        if isinstance(value, list):
            flat.update({f"{key}_{i}": v for i, v in enumerate(value)})
        else:
            flat[key] = value
    return flat


def run_of(path: str | Path) -> Path | None:
    """The run directory that ``path`` is (a run) or lies in (a file under its
    ``snapshots/``), else None."""
    path = Path(path)
    if is_run_dir(path):
        return path
    for parent in path.absolute().parents:
        if parent.name == SNAPSHOT_DIR:
            return parent.parent if is_run_dir(parent.parent) else None
    return None


def snapshot_epoch(path: str | Path) -> int | None:
    """The epoch encoded in a snapshot's name (``epoch_0012...`` gives 12), else None."""
    m = _EPOCH_RE.search(Path(path).name)
    return int(m.group(1)) if m else None


def snapshot_level(path: str | Path) -> int | None:
    """The pruning level of a snapshot inside ``level_XX/``, else None."""
    m = _LEVEL_RE.fullmatch(Path(path).parent.name)
    return int(m.group(1)) if m else None


def snapshot_paths(path: str | Path, glob: str | None = None) -> list[Path]:
    """The snapshots of a run or a folder, in the order of their names.

    - a run directory: every ``*.safetensors`` below ``snapshots/`` (levels in order);
    - a folder of checkpoint files (suffixes in :data:`CHECKPOINT_SUFFIXES`: ``.pt``,
      ``.pth.tar``, ``.ckpt``, ``.safetensors``, ``.h5``, ``.onnx``, ``.npz``, ...): those
      files, in natural order of their names (``ckpt_2`` before ``ckpt_10``);
    - a folder of NNSTD folders (``epoch_XXX/weight_l0.npz``): those folders, same order.

    Parameters
    ----------
    path
        The run or folder.
    glob
        A pattern (``pathlib`` glob, e.g. ``"checkpoint_*.pth.tar"`` or ``"**/*.ckpt"``)
        selecting the files instead, whatever their suffix: relative to the folder, or for a
        run to its ``snapshots/`` folder at any depth.

    Raises
    ------
    UnreadableFileError
        The path is missing or holds no snapshots (or none that ``glob`` matches).
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableFileError(f"{path}: no such file or folder")
    if not path.is_dir():
        raise UnreadableFileError(f"{path}: expected a run directory or a folder of snapshots")
    if glob is not None:
        base = path / SNAPSHOT_DIR if is_run_dir(path) else path
        found = base.rglob(glob) if is_run_dir(path) else base.glob(glob)
        found = sorted((p for p in found if p.is_file() or _is_network_folder(p)),
                       key=natural_key)
    elif is_run_dir(path):
        found = sorted((path / SNAPSHOT_DIR).rglob(f"*{SNAPSHOT_SUFFIX}"), key=natural_key)
    else:
        found = [p for p in path.iterdir()
                 if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES]
        if not found:
            found = [p for p in path.iterdir() if (p / "weight_l0.npz").is_file()]
        found = sorted(found, key=natural_key)
    found = [p for p in found if not p.name.startswith(".")]
    if not found and glob is not None:
        raise UnreadableFileError(f"{path}: no file matches {glob!r}")
    if not found:
        raise UnreadableFileError(
            f"{path}: holds no snapshots (expected a topo run, checkpoint files "
            f"({', '.join(CHECKPOINT_SUFFIXES)}) or NNSTD folders; select other files with "
            "a glob pattern)")
    return found


def checkpoint_stem(path: str | Path) -> str:
    """A checkpoint's file name without its suffix (``checkpoint_3.pth.tar`` gives
    ``checkpoint_3``); names with another suffix are returned whole."""
    name = Path(path).name
    low = name.lower()
    for suffix in _DOUBLE_SUFFIXES + CHECKPOINT_SUFFIXES:
        if low.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def name_times(paths: Sequence[str | Path]) -> list[tuple[int | None, int | None]]:
    """The ``(epoch, step)`` that each file's name gives (None where it gives none).

    Rules, on the name without its suffix (:func:`checkpoint_stem`):

    - a number after ``epoch``, ``ep`` or ``e`` (``epoch=3``, ``epoch_0012``, ``model_e10``)
      is the epoch; one after ``step``, ``global_step``, ``iter`` or ``iteration`` the step;
    - a name that says its step but not its epoch gives no epoch (``model_0_step_2``: the
      other number is not a time);
    - otherwise, a name with a single number gives it as the epoch (``checkpoint_7``);
    - a name with several numbers and no such word gives the one number that varies among
      the files with the same name pattern (``run2_ckpt_1`` ... ``run2_ckpt_9``); if none or
      several vary, no epoch.

    Examples
    --------
    >>> name_times(["epoch=3-step=100.ckpt", "checkpoint_12.pth.tar", "model_e10.pt",
    ...             "final.pt", "model_0_step_2.keras"])
    [(3, 100), (12, None), (10, None), (None, None), (None, 2)]
    """
    out: list[tuple[int | None, int | None]] = []
    unnamed: dict[str, list[tuple[int, list[int]]]] = {}  # pattern -> (file, its numbers)
    for i, path in enumerate(paths):
        stem = checkpoint_stem(path)
        step_match = _NAMED_STEP_RE.search(stem)
        step = int(step_match.group(1)) if step_match else None
        if step_match:
            stem = stem[:step_match.start()] + "#" + stem[step_match.end():]
        epoch_match = _NAMED_EPOCH_RE.search(stem)
        numbers = [int(n) for n in re.findall(r"\d+", stem)]
        if epoch_match:
            out.append((int(epoch_match.group(1)), step))
        elif step_match:
            # a name that says its step and no epoch: another number in it (a model's index,
            # ``model_0_step_2``) is not a time
            out.append((None, step))
        elif len(numbers) == 1:
            out.append((numbers[0], step))
        else:
            out.append((None, step))
            if numbers:
                unnamed.setdefault(re.sub(r"\d+", "#", stem), []).append((i, numbers))
    for members in unnamed.values():
        varying = [k for k in range(len(members[0][1]))
                   if len({numbers[k] for _, numbers in members}) > 1]
        if len(members) > 1 and len(varying) == 1:
            for i, numbers in members:
                out[i] = (numbers[varying[0]], out[i][1])
    return out


def _is_network_folder(path: Path) -> bool:
    return path.is_dir() and ((path / "weight_l0.npz").is_file()
                              or any(q.suffix == ".npy" for q in path.iterdir()))


def natural_key(path: str | Path) -> list[tuple[int, int, str]]:
    """Sort key that orders the numbers inside names by value (``epoch_2`` < ``epoch_10``)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(path))]


def read_updates(run: str | Path) -> pandas.DataFrame:
    """The structural updates a :class:`topo.Recorder` saw, one row per update that changed
    the structure (empty when none were written).

    Columns: ``update`` (its number among all ``update()`` calls, from 1), ``step``,
    ``after_epoch`` (the epoch of the last row written before it; None before the first), and
    per layer ``connections_k`` (after the update), ``added_k``, ``removed_k`` and ``churn_k``
    (removed / connections before the update; NaN after an empty layer).
    """
    import pandas as pd

    rows = []
    for row in _json_lines(Path(run) / UPDATES_NAME):
        flat = {}
        for key, value in row.items():
            if isinstance(value, list):
                flat.update({f"{key}_{i}": (math.nan if v is None else v)
                             for i, v in enumerate(value)})
            else:
                flat[key] = value
        rows.append(flat)
    return pd.DataFrame(rows)


def metrics_line(row: dict[str, Any]) -> str:
    """One metrics row as the JSON line topo writes: numpy scalars as numbers, NaN and
    infinity as ``null``.

    Raises
    ------
    ConfigError
        A value that is not a number, a string, a boolean, None, or a list or dict of them.
    """
    try:
        return json.dumps(_jsonable(row), allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"a metrics row cannot be stored as JSON: {exc}") from None


class RunWriter:
    """Writes the files of one run directory, each atomically (a temporary file beside the
    target, then a rename), so that a reader never sees half a file.

    Used by :class:`topo.Recorder` and by ``topo train`` (:mod:`topo.train.rundir`), so that
    both write runs that every topo command reads alike.

    Parameters
    ----------
    path
        The run directory (made when the first file is written).
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def save_snapshot(self, graph: Any, name: str) -> Path:
        """Write ``graph`` (a LayeredGraph, or a :class:`topo.io.snapshot.SnapshotContent`)
        as the snapshot ``name`` (relative to the run, :func:`snapshot_name`)."""
        from topo.io.snapshot import SnapshotContent, save_snapshot, write_snapshot

        if isinstance(graph, SnapshotContent):
            return write_snapshot(graph, self.path / name)
        return save_snapshot(graph, self.path / name)

    def write_metrics(self, rows: list[str]) -> None:
        """Rewrite ``metrics.jsonl`` whole with these JSON lines (:func:`metrics_line`)."""
        atomic_write_text(self.path / METRICS_NAME, "\n".join(rows) + "\n")

    def read_metrics(self) -> list[str]:
        """The non-empty lines of ``metrics.jsonl`` (none when it is missing)."""
        path = self.path / METRICS_NAME
        lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
        return [line for line in lines if line.strip()]

    def write_updates(self, rows: list[str]) -> None:
        """Rewrite ``updates.jsonl`` whole with these JSON lines."""
        atomic_write_text(self.path / UPDATES_NAME,
                          "".join(row + "\n" for row in rows))

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        """Rewrite ``run.json``."""
        atomic_write_text(self.path / MANIFEST_NAME, json.dumps(manifest, indent=2) + "\n")

    def clean_temporary(self, *folders: Path) -> None:
        """Delete the temporary files a killed writer left (``.name.XXXX.tmp``) in the run,
        its snapshots and the given folders."""
        for sub in (self.path, self.path / SNAPSHOT_DIR, *folders):
            if sub.is_dir():
                for tmp in sub.rglob(".*.tmp"):
                    tmp.unlink(missing_ok=True)


def _jsonable(value: Any) -> Any:
    import numpy as np

    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value
