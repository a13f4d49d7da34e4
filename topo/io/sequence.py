"""Runs, folders of snapshots and lists of files as ordered, lazily read sequences of graphs.

:func:`read_sequence` turns what a user names on the command line or in a notebook (a run
directory, a folder of checkpoints, a list of files, folders and runs) into a
:class:`GraphSequence`: the snapshot files in time order, each read only when its entry is
used, as ``(label, graph, metadata)`` entries that the analyses of sequences
(:func:`topo.topology_evolution`, :func:`topo.input_connectivity`,
:func:`topo.distance_matrix`) take. This is the one place where a run is expanded into its
snapshots and where a snapshot's epoch, pruning level, step and metrics row are found.

A folder of another program's checkpoints (``checkpoint_N.pth.tar``, Lightning's
``epoch=3-step=100.ckpt``, ``model_e10.pt``, ...) is a run too: each file's epoch and step
come from the file's own metadata (a checkpoint dict's ``epoch`` and ``global_step``/``step``,
a topo snapshot's metadata), else from the numbers in its name (:func:`topo.io.run.name_times`),
and each entry says which in ``epoch_source``; the files are put in time order. Files that
carry no epoch anywhere are taken in the natural order of their names.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple, overload

from topo.errors import ConfigError, EmptyInputError, TopoError, UnreadableFileError
from topo.graph import LayeredGraph
from topo.io.nnstd_folder import is_nnstd_folder
from topo.io.run import (
    SNAPSHOT_DIR,
    checkpoint_stem,
    is_run_dir,
    name_times,
    natural_key,
    read_manifest,
    read_metrics,
    snapshot_epoch,
    snapshot_level,
    snapshot_paths,
)

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["SequenceEntry", "GraphSequence", "read_sequence", "expand_paths", "short_labels",
           "FileTime", "EPOCH_SOURCES", "file_times", "SnapshotChoice", "choose_snapshot",
           "is_checkpoint_folder", "snapshots_in_order"]

Loader = Callable[[str | Path], LayeredGraph]

#: Where the epoch of a snapshot outside a topo run comes from (``epoch_source``):
#: ``metadata`` the file's own (a checkpoint's ``epoch``, a topo snapshot's metadata),
#: ``name`` a number in its file name, ``order`` neither (the entry's place in name order,
#: or in the list given).
EPOCH_SOURCES = ("metadata", "name", "order")
# metadata keys that give a checkpoint's step, in order of preference
_STEP_KEYS = ("step", "global_step", "iteration")


class FileTime(NamedTuple):
    """A checkpoint's place in time: epoch and step (None when unknown) and where the epoch
    came from (one of :data:`EPOCH_SOURCES`)."""

    epoch: int | None
    step: int | None
    source: str


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
        snapshot, per-layer lists spread as ``name_0``, ``name_1``, ...). A snapshot that is
        not part of a topo run also has ``epoch_source`` (see :data:`EPOCH_SOURCES`); its
        ``epoch`` and ``step`` come from the file's metadata, else from its name.
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
    times
        For sources outside a run, their :class:`FileTime` when already known (a folder
        read in time order); found from each file when it is read otherwise.
    """

    def __init__(self, sources: Sequence[str | Path], *, labels: Sequence[str] | None = None,
                 runs: Sequence[Path | None] | None = None, loader: Loader | None = None,
                 times: Sequence[FileTime | None] | None = None) -> None:
        self.sources: list[Path] = [Path(s) for s in sources]
        self.labels: list[str] = (list(labels) if labels is not None
                                  else short_labels(self.sources))
        self.runs: list[Path | None] = (list(runs) if runs is not None
                                        else [None] * len(self.sources))
        self.times: list[FileTime | None] = (list(times) if times is not None
                                             else [None] * len(self.sources))
        if len({len(self.labels), len(self.runs), len(self.times), len(self.sources)}) != 1:
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
                                 runs=self.runs[index], loader=self.loader,
                                 times=self.times[index])
        source = self.sources[index]
        graph = self.loader(source)
        if self.runs[index] is None:
            return SequenceEntry(self.labels[index], graph,
                                 self._file_metadata(source, self.times[index], graph))
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

    def _file_metadata(self, source: Path, time: FileTime | None, graph: LayeredGraph
                       ) -> dict[str, Any]:
        """Metadata of a snapshot outside a run: its epoch and step from the file, else its
        name, and where the epoch came from."""
        if time is None:
            time = _time_of(graph.metadata, name_times([source])[0])
        meta: dict[str, Any] = {"path": str(source)}
        if time.epoch is not None:
            meta["epoch"] = time.epoch
        meta["epoch_source"] = time.source
        level = graph.metadata.get("level")
        if level is None:
            level = snapshot_level(source)
        if level is not None:
            meta["level"] = int(level)
        if time.step is not None:
            meta["step"] = time.step
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
                  labels: Sequence[str] | None = None, loader: Loader | None = None,
                  glob: str | None = None) -> GraphSequence:
    """The snapshots named by ``source``, in time order, as a lazily read sequence.

    Parameters
    ----------
    source
        A run directory (its snapshots, levels in order, with its metrics), a folder of
        checkpoint files (any format :func:`topo.load` reads: ``.pt``, ``.pth.tar``,
        ``.ckpt``, ``.safetensors``, ``.h5``, ...; see :func:`file_times` for their order)
        or of NNSTD folders, or a list of any of these and of single files (see
        :func:`expand_paths`; single files keep the list's order).
    labels
        One label per snapshot; :func:`short_labels` by default.
    loader
        Reads one file; :func:`topo.load` by default.
    glob
        A pattern selecting the files of every folder or run (e.g. ``"checkpoint_*.pth.tar"``;
        see :func:`topo.io.run.snapshot_paths`).

    Returns
    -------
    GraphSequence
        Nothing is read yet, apart from the folder listings and, for a folder of checkpoints
        that is not a topo run, each file's epoch and step (:func:`file_times`).

    Raises
    ------
    UnreadableFileError
        A missing path, a single path that is a file rather than a run or a folder, a
        folder without snapshots (or none matching ``glob``), an unreadable checkpoint in a
        folder, or a folder where some files say their epoch and others do not.
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
        paths, runs, times = _expand_one(Path(source), glob)
    else:
        paths, runs, times = _expand(list(source), glob)
        if not paths:
            raise EmptyInputError("no snapshots given (an empty list)")
    return GraphSequence(paths, labels=labels, runs=runs, loader=loader, times=times)


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


def expand_paths(paths: Iterable[str | Path], glob: str | None = None) -> list[Path]:
    """Networks named by a list of paths: files and NNSTD folders as given, run directories
    and folders of snapshots expanded to their snapshots (time order).

    Raises
    ------
    UnreadableFileError
        A path that does not exist, or a folder without snapshots.
    """
    return _expand(list(paths), glob)[0]


def file_times(paths: Sequence[str | Path]) -> list[FileTime]:
    """Each checkpoint's epoch and step, from its own metadata, else from its name.

    The metadata is what :func:`topo.load` puts in ``graph.metadata``: a checkpoint dict's
    ``epoch`` and ``step``/``global_step``/``iteration`` (Lightning's ``.ckpt`` has
    ``epoch`` and ``global_step``), a topo snapshot's ``epoch`` and ``step``. Only what holds
    it is read: a snapshot's header; a PyTorch file's entries, with its tensors mapped from
    disk rather than read where the file allows it. Formats that store no epoch (Keras,
    ONNX, numpy) are not opened. Where the file gives no epoch, the name's numbers do
    (:func:`topo.io.run.name_times`).

    Raises
    ------
    UnreadableFileError, UnsafeFileError
        A checkpoint that :func:`topo.load` would refuse too.
    """
    from_names = name_times(paths)
    return [_time_of(_stored_time(Path(p)), named) for p, named in zip(paths, from_names)]


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
    if best or level is not None:
        snapshot_paths(folder)  # a folder without snapshots is said first
        raise ConfigError(
            f"{folder}: a folder of checkpoints records no "
            f"{'best snapshot' if best else 'pruning levels'}; choose a file, or --epoch N")
    files, times = snapshots_in_order(folder)
    if epoch is None:
        if len(files) == 1:
            return SnapshotChoice(files[0], f"the folder's one checkpoint, {files[0].name}")
        return SnapshotChoice(files[-1], f"the last of {len(files)} checkpoints "
                                         f"{_order_words(times)}, {files[-1].name}")
    found = [p for p, t in zip(files, times) if t is not None and t.epoch == epoch]
    if len(found) != 1:
        known = sorted({t.epoch for t in times if t is not None and t.epoch is not None})
        held = (f"epochs {_ranges(known)}" if known
                else "no file says its epoch, neither in the file nor in its name")
        raise ConfigError(f"{folder}: {'several' if found else 'no'} checkpoints of epoch "
                          f"{epoch} ({held}); choose a file")
    return SnapshotChoice(found[0], f"epoch {epoch}, as asked")


def snapshots_in_order(path: str | Path, glob: str | None = None
                       ) -> tuple[list[Path], list[FileTime | None]]:
    """The snapshots of a run or a folder of checkpoints in time order, with their times.

    The one order every command uses: :func:`read_sequence` (``topo evolution``, ``topo
    distances``) lists a folder in it, and :func:`choose_snapshot` (``topo info``, ``topo
    compare``, ... on a folder) takes its last entry as the folder's last checkpoint.

    - a run directory: its snapshots in the order of their names (levels in order,
      ``epoch_0002`` before ``epoch_0010``); times None (the run's files say them);
    - a folder of checkpoints: by epoch, then step, then the natural order of the names
      (``ckpt_2`` before ``ckpt_10``) when every file says its epoch, in its metadata or
      its name (:func:`file_times`); by step when none says an epoch and every one a step;
      in the natural order of the names when none says either.

    Raises
    ------
    UnreadableFileError
        A missing path or one without snapshots; a folder where some files say their epoch
        and others do not (their place in time is unknown).
    """
    paths, _, times = _expand_one(Path(path), glob)
    return paths, times


def _order_words(times: Sequence[FileTime | None]) -> str:
    """How :func:`snapshots_in_order` ordered a folder's checkpoints, for the user."""
    known = [t for t in times if t is not None]
    if known and all(t.epoch is not None for t in known):
        sources = {t.source for t in known}
        where = ("their metadata" if sources == {"metadata"} else "their names"
                 if sources == {"name"} else "their metadata or names")
        return f"by the epochs {where} say"
    if known and all(t.step is not None for t in known):
        return "by step"
    return "in the natural order of their names"


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


def _expand(paths: list[str | Path], glob: str | None = None
            ) -> tuple[list[Path], list[Path | None], list[FileTime | None]]:
    """Expanded paths, the run each comes from, and the times found while ordering."""
    out: list[Path] = []
    runs: list[Path | None] = []
    times: list[FileTime | None] = []
    for raw in paths:
        path = Path(raw)
        if not path.exists():
            raise UnreadableFileError(f"{path}: no such file or folder")
        if is_run_dir(path) or (path.is_dir() and not is_nnstd_folder(path)):
            found, found_runs, found_times = _expand_one(path, glob)
            out.extend(found)
            runs.extend(found_runs)
            times.extend(found_times)
        else:
            out.append(path)
            runs.append(None)
            times.append(None)
    return out, runs, times


def _expand_one(path: Path, glob: str | None
                ) -> tuple[list[Path], list[Path | None], list[FileTime | None]]:
    """The snapshots of one run or folder, in time order."""
    found = snapshot_paths(path, glob)
    if is_run_dir(path):
        return found, [path] * len(found), [None] * len(found)
    ordered, times = _in_time_order(path, found)
    return ordered, [None] * len(ordered), list(times)


def _in_time_order(folder: Path, paths: list[Path]) -> tuple[list[Path], list[FileTime]]:
    """A folder's files ordered by (epoch, step, name) when each has an epoch, in name order
    when none has; a folder where some have one and others not is refused."""
    times = file_times(paths)
    known = [t.epoch is not None for t in times]
    if all(known):
        order = sorted(range(len(paths)), key=lambda i: (
            times[i].epoch, -1 if times[i].step is None else times[i].step,
            natural_key(paths[i])))
        return [paths[i] for i in order], [times[i] for i in order]
    if not any(known):
        if all(t.step is not None for t in times):
            order = sorted(range(len(paths)), key=lambda i: (times[i].step,
                                                             natural_key(paths[i])))
            paths, times = [paths[i] for i in order], [times[i] for i in order]
        return paths, times
    missing = [p.name for p, k in zip(paths, known) if not k]
    shown = ", ".join(missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3
                                      else "")
    raise UnreadableFileError(
        f"{folder}: {len(missing)} of {len(paths)} files say no epoch, neither in the file nor "
        f"in the name ({shown}), so their place in time is unknown; name the file to read, or "
        "select the files that say one with a glob pattern (topo evolution and topo distances: "
        "--glob)")


def _stored_time(path: Path) -> dict[str, Any]:
    """The epoch and step a file stores about itself, reading as little as possible."""
    from topo.io import detect_format

    fmt = detect_format(path) if path.is_file() else "folder"
    if fmt == "topo.snapshot":
        from topo.io.safetensors_file import read_header

        header = read_header(path).get("__metadata__") or {}
        try:
            meta = json.loads(header.get("metadata", "{}"))
        except json.JSONDecodeError:
            raise UnreadableFileError(f"{path}: damaged topo snapshot header") from None
        return meta if isinstance(meta, dict) else {}
    if fmt == "pytorch":
        return _torch_metadata(path)
    return {}


def _torch_metadata(path: Path) -> dict[str, Any]:
    """What the PyTorch reader puts in ``graph.metadata``, without reading the tensors where
    the file allows mapping them (``torch.load(mmap=True)``, still ``weights_only``)."""
    import warnings

    from topo.io.torch_file import extract_checkpoint, read_torch_file

    try:
        import torch

        from topo.io.torch_file import _from_torch

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            obj = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        return extract_checkpoint(_from_torch(obj), path, "pytorch").metadata
    except TopoError:
        raise
    except Exception:  # noqa: BLE001 - a legacy file or a pickle: the full, safe reader
        return read_torch_file(path).metadata


def _time_of(stored: dict[str, Any], named: tuple[int | None, int | None]) -> FileTime:
    """A file's time from what it stores, else from its name."""
    epoch = _integer(stored.get("epoch"))
    step = next((s for s in (_integer(stored.get(k)) for k in _STEP_KEYS) if s is not None),
                None)
    source = "metadata"
    if epoch is None:
        epoch = named[0]
        source = "name" if epoch is not None else "order"
    if step is None:
        step = named[1]
    return FileTime(epoch, step, source)


def _integer(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def _label_chain(path: Path, keep_suffix: bool) -> list[str]:
    """The file name, then its folders upwards (``snapshots`` and the root left out)."""
    name = checkpoint_stem(path) if not keep_suffix else path.name
    parts = Path(os.path.abspath(path)).parent.parts
    return [name] + [q for q in reversed(parts) if q not in ("snapshots", os.sep)]


def _default_loader() -> Loader:
    # topo.io's front door; imported when a sequence is made (topo.io imports this module)
    from topo.io import load

    return load
