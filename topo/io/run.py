"""Run directories: where topo keeps the files of one training run.

::

    RUN/
      run.json                          manifest: config, seed, versions, status
      metrics.jsonl                     one JSON object per epoch
      snapshots/epoch_0000.safetensors  epoch 0 = initialisation, zero-padded so that
      snapshots/epoch_0001.safetensors  sorting the paths sorts time
      snapshots/level_01/epoch_0000...  iterative pruning: one folder per level

Every file name lives here, so readers and the training loop agree on them.
"""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

from topo.errors import UnreadableFileError

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = [
    "MANIFEST_NAME", "METRICS_NAME", "SNAPSHOT_DIR", "SNAPSHOT_SUFFIX",
    "snapshot_name", "is_run_dir", "read_manifest", "read_metrics", "snapshot_paths",
    "snapshot_epoch", "snapshot_level", "natural_key", "CHECKPOINT_SUFFIXES", "run_of",
]

MANIFEST_NAME = "run.json"
METRICS_NAME = "metrics.jsonl"
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_SUFFIX = ".safetensors"
# files a folder of checkpoints may hold (anything topo.load reads by content): PyTorch and
# safetensors checkpoints, Lightning's .ckpt, Keras (.h5, .keras) and ONNX models
CHECKPOINT_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".h5", ".keras",
                       ".onnx")
_EPOCH_RE = re.compile(r"epoch_(\d+)")
_LEVEL_RE = re.compile(r"level_(\d+)")


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

    path = Path(run) / METRICS_NAME
    if not path.is_file():
        return pd.DataFrame()
    rows = []
    lines = path.read_text(encoding="utf-8").splitlines()
    for n, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if n == len(lines):
                # a writer killed mid-line leaves at most its last line incomplete
                warnings.warn(f"{path}: ignoring incomplete last line {n}", stacklevel=2)
                break
            raise UnreadableFileError(f"{path}: line {n} is not valid JSON") from None
        flat = {}
        for key, value in row.items():
            if isinstance(value, list):
                flat.update({f"{key}_{i}": v for i, v in enumerate(value)})
            else:
                flat[key] = value
        rows.append(flat)
    return pd.DataFrame(rows)


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


def snapshot_paths(path: str | Path) -> list[Path]:
    """The snapshots of a run or a folder, in time order.

    - a run directory: every ``*.safetensors`` below ``snapshots/`` (levels in order);
    - a folder of checkpoint files (``CHECKPOINT_SUFFIXES``: PyTorch, safetensors, Lightning,
      Keras, ONNX): those files, in natural order of their names (``ckpt_2`` before
      ``ckpt_10``);
    - a folder of NNSTD folders (``epoch_XXX/weight_l0.npz``): those folders, same order.

    Raises
    ------
    UnreadableFileError
        The path is missing or holds no snapshots.
    """
    path = Path(path)
    if not path.exists():
        raise UnreadableFileError(f"{path}: no such file or folder")
    if not path.is_dir():
        raise UnreadableFileError(f"{path}: expected a run directory or a folder of snapshots")
    if is_run_dir(path):
        found = sorted((path / SNAPSHOT_DIR).rglob(f"*{SNAPSHOT_SUFFIX}"), key=natural_key)
    else:
        found = [p for p in path.iterdir()
                 if p.is_file() and p.suffix.lower() in CHECKPOINT_SUFFIXES]
        if not found:
            found = [p for p in path.iterdir() if (p / "weight_l0.npz").is_file()]
        found = sorted(found, key=natural_key)
    found = [p for p in found if not p.name.startswith(".")]
    if not found:
        raise UnreadableFileError(
            f"{path}: holds no snapshots (expected a topo run, checkpoint files "
            f"({', '.join(CHECKPOINT_SUFFIXES)}) or NNSTD folders)")
    return found


def natural_key(path: str | Path) -> list[tuple[int, int, str]]:
    """Sort key that orders the numbers inside names by value (``epoch_2`` < ``epoch_10``)."""
    return [(0, int(part), "") if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", str(path))]
