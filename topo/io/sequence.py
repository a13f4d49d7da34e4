"""Runs, folders of snapshots and lists of files as ordered, lazily read sequences of graphs.

:func:`read_sequence` turns what a user names on the command line or in a notebook (a run
directory, a folder of checkpoints, a list of files, folders and runs) into a
:class:`GraphSequence`: the snapshot files in time order, each read only when its entry is
used, as ``(label, graph, metadata)`` entries that the analyses of sequences
(:func:`topo.topology_evolution`, :func:`topo.input_connectivity`,
:func:`topo.distance_matrix`) take. This is the one place where a run is expanded into its
snapshots and where a snapshot's epoch, pruning level, step and metrics row are found.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from topo.errors import ConfigError, EmptyInputError, UnreadableFileError
from topo.graph import LayeredGraph
from topo.io.nnstd_folder import is_nnstd_folder
from topo.io.run import (
    SNAPSHOT_DIR,
    is_run_dir,
    read_manifest,
    read_metrics,
    snapshot_epoch,
    snapshot_level,
    snapshot_paths,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["SequenceEntry", "GraphSequence", "read_sequence", "expand_paths", "short_labels",
           "SnapshotChoice", "choose_snapshot", "is_checkpoint_folder"]

Loader = Callable[[str | Path], LayeredGraph]

# suffixes left out of labels (a checkpoint's stem names it well enough)
_LABEL_SUFFIXES = (".safetensors", ".pt", ".pth", ".bin", ".ckpt", ".h5", ".keras", ".onnx")


class SequenceEntry(NamedTuple):
    """One snapshot of a sequence.

    Attributes
    ----------
    label
        A short unique name (see :func:`short_labels`).
    graph
        The network, read when the entry was made.
    metadata
        ``path`` (the file), and where known ``epoch`` (the snapshot's own, else a number
        ``epoch_N`` in its file name), ``level`` (a pruning level: the snapshot's own, else a
        ``level_XX`` folder), ``step`` and ``metrics`` (the run's metrics row of that
        snapshot, per-layer lists spread as ``name_0``, ``name_1``, ...).
    """

    label: str
    graph: LayeredGraph
    metadata: dict[str, Any]


class GraphSequence(Sequence[SequenceEntry]):
    """Snapshot files in time order, read one at a time as :class:`SequenceEntry` objects.

    Indexing reads one file (``seq[-1].graph`` is the last network); iterating reads them in
    order, one at a time, so a run with hundreds of snapshots is never held in memory at once;
    a slice is a shorter sequence that has read nothing.

    Parameters
    ----------
    sources
        The files (or NNSTD folders), in time order.
    labels
        One label per source; :func:`short_labels` of the sources by default.
    runs
        The run directory each source belongs to (``None`` for a loose file): its metrics
        join the entries.
    loader
        Reads one source; :func:`topo.load` by default. Sent, with the sources, to the
        worker processes of :func:`topo.distance_matrix`, so it must be picklable.
    """

    def __init__(self, sources: Sequence[str | Path], *, labels: Sequence[str] | None = None,
                 runs: Sequence[Path | None] | None = None, loader: Loader | None = None
                 ) -> None:
        self.sources: list[Path] = [Path(s) for s in sources]
        self.labels: list[str] = (list(labels) if labels is not None
                                  else short_labels(self.sources))
        self.runs: list[Path | None] = (list(runs) if runs is not None
                                        else [None] * len(self.sources))
        if len(self.labels) != len(self.sources) or len(self.runs) != len(self.sources):
            raise ConfigError(f"{len(self.sources)} snapshots with {len(self.labels)} labels "
                              f"and {len(self.runs)} run folders")
        self.loader: Loader = loader if loader is not None else _default_loader()
        # per run: whether its metrics have levels, and its rows by (level, epoch)
        self._metrics: dict[Path, tuple[bool, dict[tuple[Any, Any], dict[str, Any]]]] = {}

    def __len__(self) -> int:
        return len(self.sources)

    @overload
    def __getitem__(self, index: int) -> SequenceEntry: ...

    @overload
    def __getitem__(self, index: slice) -> GraphSequence: ...

    def __getitem__(self, index: int | slice) -> SequenceEntry | GraphSequence:
        if isinstance(index, slice):
            return GraphSequence(self.sources[index], labels=self.labels[index],
                                 runs=self.runs[index], loader=self.loader)
        source = self.sources[index]
        graph = self.loader(source)
        return SequenceEntry(self.labels[index], graph,
                             self._metadata(source, self.runs[index], graph))

    def __iter__(self) -> Iterator[SequenceEntry]:
        for index in range(len(self)):
            yield self[index]

    def graphs(self) -> Iterator[LayeredGraph]:
        """The networks alone, read one at a time."""
        for entry in self:
            yield entry.graph

    def metrics(self) -> pandas.DataFrame | None:
        """The per-epoch metrics of the run when every snapshot comes from one run, else None."""
        runs = set(self.runs)
        if len(runs) != 1 or None in runs:
            return None
        return read_metrics(next(iter(runs)))

    def __repr__(self) -> str:
        shown = ", ".join(self.labels[:3]) + (", ..." if len(self) > 3 else "")
        return f"GraphSequence({len(self)} snapshots: {shown})"

    # ------------------------------------------------------------------ metadata
    def _metadata(self, source: Path, run: Path | None, graph: LayeredGraph) -> dict[str, Any]:
        meta: dict[str, Any] = {"path": str(source)}
        epoch = graph.metadata.get("epoch")
        if epoch is None:
            epoch = snapshot_epoch(source)
        level = graph.metadata.get("level")
        if level is None:
            level = snapshot_level(source)
        if epoch is not None:
            meta["epoch"] = int(epoch)
        if level is not None:
            meta["level"] = int(level)
        row = self._metrics_row(run, meta.get("level"), meta.get("epoch"))
        step = graph.metadata.get("step")
        if step is None and row is not None:
            step = row.get("step")
        if step is not None and step == step:  # NaN: unknown
            meta["step"] = int(step)
        if row is not None:
            meta["metrics"] = dict(row)
        return meta

    def _metrics_row(self, run: Path | None, level: int | None, epoch: int | None
                     ) -> dict[str, Any] | None:
        """The run's metrics row of a snapshot, the last one written for its epoch (and its
        level, when both the snapshot and the metrics have levels)."""
        if run is None or epoch is None:
            return None
        if run not in self._metrics:
            table = read_metrics(run)
            with_level = "level" in table.columns
            rows: dict[tuple[Any, Any], dict[str, Any]] = {}
            if "epoch" in table.columns:
                for row in table.to_dict(orient="records"):
                    rows[(None, row["epoch"])] = row  # a snapshot without a level: by epoch
                    if with_level:
                        rows[(row["level"], row["epoch"])] = row
            self._metrics[run] = (with_level, rows)
        with_level, rows = self._metrics[run]
        return rows.get((level if with_level else None, epoch))


def read_sequence(source: str | Path | Iterable[str | Path], *,
                  labels: Sequence[str] | None = None, loader: Loader | None = None
                  ) -> GraphSequence:
    """The snapshots named by ``source``, in time order, as a lazily read sequence.

    Parameters
    ----------
    source
        A run directory (its snapshots, levels in order, with its metrics), a folder of
        checkpoint files (``.safetensors``, ``.pt``, ``.pth``, ``.bin``, ``.ckpt``, Keras
        ``.h5``/``.keras``, ``.onnx``, in natural order of their names: ``ckpt_2`` before
        ``ckpt_10``) or of NNSTD folders, or a list of any of
        these and of single files (see :func:`expand_paths`).
    labels
        One label per snapshot; :func:`short_labels` by default.
    loader
        Reads one file; :func:`topo.load` by default.

    Returns
    -------
    GraphSequence
        Nothing is read yet, apart from the folder listings.

    Raises
    ------
    UnreadableFileError
        A missing path, a single path that is a file rather than a run or a folder, or a
        folder without snapshots.
    EmptyInputError
        An empty list.

    Examples
    --------
    >>> from topo.examples import example_run
    >>> seq = read_sequence(example_run())
    >>> len(seq), seq.labels[:2]
    (16, ['epoch_0000', 'epoch_0001'])
    >>> label, graph, metadata = seq[-1]
    >>> metadata["epoch"], round(metadata["metrics"]["test_accuracy"], 3)
    (15, 0.904)
    """
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        paths = snapshot_paths(path)
        runs: list[Path | None] = [path if is_run_dir(path) else None] * len(paths)
    else:
        paths, runs = _expand(list(source))
        if not paths:
            raise EmptyInputError("no snapshots given (an empty list)")
    return GraphSequence(paths, labels=labels, runs=runs, loader=loader)


class SnapshotChoice(NamedTuple):
    """The one snapshot of a run or a folder of checkpoints that a command reads.

    Attributes
    ----------
    path
        The file (or NNSTD folder) read.
    why
        Which snapshot it is and why it was chosen, for the user: ``"the run's last
        snapshot, epoch_0030"``, ``"epoch 12, as asked"``, ...
    note
        A second thing the user should know, or ``""``: e.g. that the run stopped early
        and its best snapshot is another one.
    """

    path: Path
    why: str
    note: str = ""


def choose_snapshot(path: str | Path, *, epoch: int | None = None, level: int | None = None,
                    best: bool = False) -> SnapshotChoice | None:
    """Which snapshot of a run directory or a folder of checkpoints stands for it.

    Commands that read one network read a run directory or a folder of checkpoints (as
    :func:`read_sequence` lists it) as one of its snapshots, and say which:

    - by default the last one (for a run that stopped early, :attr:`SnapshotChoice.note`
      names its best snapshot too);
    - ``best``: the run's best snapshot as its ``run.json`` records it (``best_snapshot``:
      the lowest validation loss with early stopping, else the last);
    - ``epoch`` (and ``level`` for a run with pruning levels): that epoch's snapshot;
      ``level`` alone: the last snapshot of that level.

    Parameters
    ----------
    path
        A run directory, a folder of checkpoints, or a single network (a file, an NNSTD
        folder or a folder of ``.npy`` layers).
    epoch, level, best
        The choice, as above.

    Returns
    -------
    SnapshotChoice or None
        None for a single network asked nothing (there is nothing to choose).

    Raises
    ------
    ConfigError
        A choice for a single network, ``best`` with ``epoch`` or ``level``, ``best`` for
        a folder of checkpoints or a run that records no best snapshot, an ``epoch`` or
        ``level`` the run does not hold, or an epoch that several levels hold without
        ``level``.
    UnreadableFileError
        A missing path, or a folder without snapshots.
    """
    path = Path(path)
    asked = epoch is not None or level is not None or best
    if best and (epoch is not None or level is not None):
        raise ConfigError(f"{path}: choose the best snapshot or an epoch/level, not both")
    if is_run_dir(path):
        return _choose_in_run(path, epoch, level, best)
    if is_checkpoint_folder(path):
        return _choose_in_folder(path, epoch, level, best)
    if not path.exists():
        raise UnreadableFileError(f"{path}: no such file or folder")
    if asked:
        raise ConfigError(
            f"{path}: one network, not a run or a folder of checkpoints: there is no "
            "snapshot to choose (--best, --epoch and --level choose among a run's snapshots)")
    return None


def is_checkpoint_folder(path: str | Path) -> bool:
    """True for a folder of checkpoint files or of NNSTD folders (not a run directory, nor
    itself one network: an NNSTD folder or a folder of per-layer ``.npy`` files)."""
    from topo.io.numpy_files import is_npy_folder

    path = Path(path)
    if not path.is_dir() or is_run_dir(path) or is_nnstd_folder(path) or is_npy_folder(path):
        return False
    try:
        snapshot_paths(path)
    except UnreadableFileError:
        return False
    return True


def expand_paths(paths: Iterable[str | Path]) -> list[Path]:
    """Networks named by a list of paths: files and NNSTD folders as given, run directories
    and folders of snapshots expanded to their snapshots (time order).

    Raises
    ------
    UnreadableFileError
        A path that does not exist, or a folder without snapshots.
    """
    return _expand(list(paths))[0]


def short_labels(paths: Sequence[str | Path]) -> list[str]:
    """Shortest unique trailing parts of the paths (suffix and ``snapshots/`` dropped).

    ``runs/set_1/snapshots/epoch_0010.safetensors`` becomes ``epoch_0010`` when that is
    unique, else ``set_1/epoch_0010``, and so on. A label that would begin at a pruning
    level's folder (``level_05/epoch_0005``) also names the run (``imp/level_05/epoch_0005``)
    unless every snapshot comes from the levels of one run. Files that differ only by their suffix
    (``in/tiny.pt``, ``in/tiny.safetensors``) keep it. A path given more than once gets the
    same label with ``#2``, ``#3`` on its repeats; it does not lengthen the other labels.

    Examples
    --------
    >>> short_labels(["runs/a/snapshots/epoch_0001.safetensors",
    ...               "runs/b/snapshots/epoch_0001.safetensors"])
    ['a/epoch_0001', 'b/epoch_0001']
    """
    if not paths:
        return []
    paths = [Path(p) for p in paths]
    keys = [os.path.abspath(p) for p in paths]
    distinct = list(dict.fromkeys(keys))
    given = {key: p for key, p in zip(reversed(keys), reversed(paths))}
    chains = [_label_chain(given[key], keep_suffix=False) for key in distinct]
    full = ["/".join(reversed(c)) for c in chains]
    for i, key in enumerate(distinct):
        if full.count(full[i]) > 1:  # only the suffix tells these apart
            chains[i] = _label_chain(given[key], keep_suffix=True)
    depth = max(len(c) for c in chains)
    for k in range(1, depth + 1):
        labels = ["/".join(reversed(c[:k])) for c in chains]
        if len(set(labels)) == len(labels):
            break
    # a label that begins at a pruning level's folder names its run too, unless every label
    # comes from the levels of one run: a level is not a run
    at_level = [len(c) > k >= 2 and snapshot_level(Path(c[k - 1], "x")) is not None
                for c in chains]
    if any(at_level) and (not all(at_level) or len({c[k] for c in chains}) > 1):
        labels = ["/".join(reversed(c[:k + 1])) if top else label
                  for c, top, label in zip(chains, at_level, labels)]
    labels = [label if labels.count(label) == 1 else key  # e.g. x/e.pt, x/snapshots/e.pt
              for label, key in zip(labels, distinct)]
    label_of = dict(zip(distinct, labels))
    seen: dict[str, int] = {}
    out = []
    for key in keys:
        seen[key] = seen.get(key, 0) + 1
        out.append(label_of[key] if seen[key] == 1 else f"{label_of[key]}#{seen[key]}")
    return out


# --------------------------------------------------------------------------- helpers
def _choose_in_run(run: Path, epoch: int | None, level: int | None,
                   best: bool) -> SnapshotChoice:
    snaps = snapshot_paths(run)
    manifest = read_manifest(run)
    names = {p: p.relative_to(run / SNAPSHOT_DIR).with_suffix("").as_posix() for p in snaps}
    if best:
        recorded = manifest.get("best_snapshot")
        if not recorded:
            raise ConfigError(
                f"{run}: the run records no best snapshot (status "
                f"{manifest.get('status', 'unknown')!r}: a finished topo run has one); "
                "choose one with --epoch")
        chosen = run / recorded
        if chosen not in names:
            raise UnreadableFileError(f"{run}: its best snapshot {recorded} is missing")
        patience = (manifest.get("config") or {}).get("early_stopping_patience")
        how = ("lowest validation loss" if patience else
               "without early stopping, a run's best is its last")
        return SnapshotChoice(chosen, f"the run's best snapshot, {names[chosen]}: {how}")
    if epoch is None and level is None:
        last = snaps[-1]
        note = ""
        recorded = manifest.get("best_snapshot")
        if manifest.get("stopped_early") and recorded and run / recorded != last:
            note = (f"the run stopped early at epoch {manifest.get('stopped_epoch')}; its best "
                    f"snapshot (lowest validation loss) is "
                    f"{names.get(run / recorded, recorded)}: --best reads it")
        return SnapshotChoice(last, f"the run's last snapshot, {names[last]}", note)
    found = [p for p in snaps
             if (epoch is None or snapshot_epoch(p) == epoch)
             and (level is None or snapshot_level(p) == level)]
    levels = sorted({lv for p in snaps if (lv := snapshot_level(p)) is not None})
    if level is not None and level not in levels:
        held = f"levels {levels[0]}-{levels[-1]}" if levels else "no pruning levels"
        raise ConfigError(f"{run}: no level {level} (the run has {held})")
    if not found:
        epochs = sorted({e for p in snaps if (e := snapshot_epoch(p)) is not None
                         and (level is None or snapshot_level(p) == level)})
        where = f" in level {level}" if level is not None else ""
        raise ConfigError(f"{run}: no snapshot of epoch {epoch}{where} (epochs "
                          f"{_ranges(epochs)})")
    if epoch is None:
        chosen = found[-1]
        return SnapshotChoice(chosen, f"the last snapshot of level {level}, {names[chosen]}")
    if len(found) > 1:
        held = sorted({snapshot_level(p) for p in found})
        raise ConfigError(f"{run}: epoch {epoch} is in levels {', '.join(map(str, held))}; "
                          "name one with --level")
    asked = f"level {level}, epoch {epoch}" if level is not None else f"epoch {epoch}"
    return SnapshotChoice(found[0], f"{asked}, as asked")


def _choose_in_folder(folder: Path, epoch: int | None, level: int | None,
                      best: bool) -> SnapshotChoice:
    files = snapshot_paths(folder)
    if best or level is not None:
        raise ConfigError(
            f"{folder}: a folder of checkpoints records no "
            f"{'best snapshot' if best else 'pruning levels'}; choose a file, or --epoch N")
    if epoch is None:
        if len(files) == 1:
            return SnapshotChoice(files[0], f"the folder's one checkpoint, {files[0].name}")
        return SnapshotChoice(files[-1], f"the last of {len(files)} checkpoints in the "
                                         f"natural order of their names, {files[-1].name}")
    found = [p for p in files if snapshot_epoch(p) == epoch]
    if len(found) != 1:
        numbered = sorted({e for p in files if (e := snapshot_epoch(p)) is not None})
        held = (f"epochs {_ranges(numbered)}" if numbered
                else "no file name says its epoch (epoch_N)")
        raise ConfigError(f"{folder}: {'several' if found else 'no'} checkpoints of epoch "
                          f"{epoch} ({held}); choose a file")
    return SnapshotChoice(found[0], f"epoch {epoch}, as asked")


def _ranges(values: list[int]) -> str:
    """``0-5, 8, 10-12``: sorted integers as runs."""
    if not values:
        return "none"
    parts, start, prev = [], values[0], values[0]
    for v in [*values[1:], None]:
        if v is not None and v == prev + 1:
            prev = v
            continue
        parts.append(str(start) if start == prev else f"{start}-{prev}")
        if v is not None:
            start = prev = v
    return ", ".join(parts)


def _expand(paths: list[str | Path]) -> tuple[list[Path], list[Path | None]]:
    """Expanded paths and the run each comes from."""
    out: list[Path] = []
    runs: list[Path | None] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UnreadableFileError(f"{path}: no such file or folder")
        if is_run_dir(path) or (path.is_dir() and not is_nnstd_folder(path)):
            found = snapshot_paths(path)
            out.extend(found)
            runs.extend([path if is_run_dir(path) else None] * len(found))
        else:
            out.append(path)
            runs.append(None)
    return out, runs


def _label_chain(path: Path, keep_suffix: bool) -> list[str]:
    """The file name, then its folders upwards (``snapshots`` and the root left out)."""
    name = path.name
    if not keep_suffix and path.suffix.lower() in _LABEL_SUFFIXES:
        name = path.stem
    parts = Path(os.path.abspath(path)).parent.parts
    return [name] + [q for q in reversed(parts) if q not in ("snapshots", os.sep)]


def _default_loader() -> Loader:
    # topo.io's front door; imported when a sequence is made (topo.io imports this module)
    from topo.io import load

    return load
