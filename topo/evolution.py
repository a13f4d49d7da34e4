"""Connectivity evolution: how a run's topology changed from snapshot to snapshot.

:func:`topology_evolution` turns a run directory (or any ordered list of snapshots) into one
table with a row per snapshot and layer: connections, what was added and removed since the
previous snapshot, the churn rate, NNSTD and Jaccard to the first and to the previous
snapshot, the in-time over-parameterisation rate (the fraction of all possible connections
that were ever active so far), degree statistics, dead units, neural persistence and the
run's own metrics. :func:`input_connectivity` gives, per input feature, how many connections
leave it in every snapshot (SET's input-connectivity maps).

Snapshots are read one at a time, so a run with hundreds of snapshots never needs them all
in memory.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from topo.errors import IncompatibleGraphsError, TopoError
from topo.graph import LayeredGraph

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["topology_evolution", "input_connectivity", "EVOLUTION_COLUMNS"]

#: The columns of an evolution table, in order. ``level`` (after ``epoch``) appears only for
#: snapshots with pruning levels, the two NNSTD columns only when NNSTD is computed, and
#: ``neural_persistence`` and the run's metrics follow when available.
EVOLUTION_COLUMNS = (
    "snapshot", "epoch", "layer", "name", "n_in", "n_out", "connections", "possible",
    "density", "added", "removed", "churn", "nnstd_to_first", "nnstd_to_previous",
    "jaccard_to_first", "jaccard_to_previous", "ever_active", "ever_active_rate",
    "in_degree_mean", "in_degree_std", "in_degree_min", "in_degree_max",
    "out_degree_mean", "out_degree_std", "out_degree_min", "out_degree_max",
    "inputs_without_outgoing", "outputs_without_incoming", "inputs_off_path",
    "outputs_off_path",
)

RunOrPaths = str | Path | Sequence[str | Path | LayeredGraph]


def topology_evolution(run_or_paths: RunOrPaths, *, persistence: bool = True,
                       nnstd: bool = True, metrics: bool = True) -> pandas.DataFrame:
    """Per-snapshot, per-layer time series of a run's topology.

    Parameters
    ----------
    run_or_paths
        A run directory (its snapshots in time order and its ``metrics.jsonl``), a folder of
        snapshots, or an ordered sequence of snapshot paths or :class:`LayeredGraph` objects.
    persistence
        Add ``neural_persistence`` (the layer's normalised neural persistence, Rieck et al.
        2019) when :mod:`topo.persistence` is installed.
    nnstd
        Compute the NNSTD columns (needs :mod:`topo.distance`); without it they are left out.
    metrics
        Join the run's own metrics (loss, accuracies, ...) by epoch when a run directory is
        given. Per-layer lists in the metrics become ``run_<name>`` columns.

    Returns
    -------
    pandas.DataFrame
        One row per snapshot and layer, in time order then layer order, with the columns of
        :data:`EVOLUTION_COLUMNS`:

        - ``snapshot`` (position in the sequence), ``epoch`` (from the snapshot's metadata or
          file name; 0 = initialisation; the position when unknown), ``level`` (pruning
          level, only when snapshots carry one), ``layer``, ``name``, ``n_in``, ``n_out``;
        - ``connections``, ``possible`` (``n_in * n_out``), ``density``;
        - ``added`` / ``removed``: connections present now but not in the previous snapshot
          and vice versa (0 at the first snapshot); ``churn`` = ``removed`` / connections of
          the previous snapshot (NaN at the first snapshot or after an empty layer);
        - ``nnstd_to_first`` / ``nnstd_to_previous``: the layer's NNSTD (Liu et al. 2020)
          from the first / previous snapshot to this one (``nnstd_to_previous`` is NaN at the
          first snapshot);
        - ``jaccard_to_first`` / ``jaccard_to_previous``: raw Jaccard index of the masks
          without neuron matching, ``|A & B| / |A | B|`` (1 for two empty masks);
        - ``ever_active`` / ``ever_active_rate``: connections active in any snapshot so far
          and their fraction of ``possible`` (the in-time over-parameterisation rate of Liu
          et al. 2021; it never decreases);
        - in-degree statistics of the layer's output units and out-degree statistics of its
          input units (mean, std, min, max);
        - ``inputs_without_outgoing`` / ``outputs_without_incoming``: units with no
          connection in this layer; ``inputs_off_path`` / ``outputs_off_path``: units of the
          layer's input / output side that lie on no path from a network input to a network
          output;
        - ``neural_persistence`` when available (NaN for a snapshot with NaN or infinite
          weights), then the run's metrics.

    Raises
    ------
    UnreadableFileError
        A path is missing or not a snapshot.
    IncompatibleGraphsError
        The snapshots do not share layer widths.
    TopoError
        No snapshot was given.

    Notes
    -----
    Consecutive snapshots are similar, so results are reused where that is exact. NNSTD
    depends on the structures only, never on the weights, so every snapshot's structure is
    fingerprinted (a hash of its CSR index arrays) and NNSTD is solved at most once per
    ordered pair of distinct structures. A snapshot with the structure of the previous one
    (a static or dense run, epochs without rewiring, the epochs within a pruning level) is
    at distance 0 from it without solving and shares its distance to the first snapshot;
    when the previous snapshot still has the first one's structure, the distance to the
    previous snapshot is the distance to the first. A static run therefore solves no
    assignment problem at all. Otherwise each new structure costs at most two NNSTD
    computations (one linear assignment per hidden layer each, :math:`O(n^3)` in the layer
    width), plus :math:`O(E)` sparse operations for ``E`` connections per snapshot.

    References
    ----------
    S. Liu, T. Van der Lee, A. Yaman, Z. Atashgahi, D. Ferraro, G. Sokar, M. Pechenizkiy,
    D. C. Mocanu, "Topological insights into sparse neural networks", ECML PKDD 2020.
    S. Liu, L. Yin, D. C. Mocanu, M. Pechenizkiy, "Do we actually need dense
    over-parameterization? In-time over-parameterization in sparse training", ICML 2021.
    D. C. Mocanu et al., "Scalable training of artificial neural networks with adaptive
    sparse connectivity inspired by network science", Nature Communications 9, 2018.
    """
    import pandas as pd

    run_dir, items = _resolve(run_or_paths)
    nnstd_fn = _optional("topo.distance", "nnstd") if nnstd else None
    persistence_fn = (_optional("topo.persistence", "neural_persistence")
                      if persistence else None)

    rows: list[dict[str, Any]] = []
    first = previous = None
    first_masks: list[sp.csr_matrix] = []
    previous_masks: list[sp.csr_matrix] = []
    union: list[sp.csr_matrix] = []
    first_key = previous_key = b""
    solved: dict[tuple[bytes, bytes], np.ndarray] = {}

    def distances(a: LayeredGraph, a_key: bytes, b: LayeredGraph, b_key: bytes) -> np.ndarray:
        """Per-layer NNSTD from ``a`` to ``b``, solved once per pair of structures."""
        if a_key == b_key:
            return np.zeros(b.n_layers)
        if (a_key, b_key) not in solved:
            solved[a_key, b_key] = np.asarray(nnstd_fn(a, b).per_layer, dtype=np.float64)
        return solved[a_key, b_key]

    any_level = False
    for position, (label, graph) in enumerate(_graphs(items)):
        masks = graph.masks()
        key = _fingerprint(masks)
        if first is None:
            first, first_masks, union = graph, masks, [m.copy() for m in masks]
            first_key = previous_key = key
            previous_masks = masks
        elif graph.widths != first.widths:
            raise IncompatibleGraphsError(
                f"{label}: widths {'-'.join(map(str, graph.widths))} differ from the first "
                f"snapshot's {'-'.join(map(str, first.widths))} ({first.source})")
        else:
            union = [_binary(u + m) for u, m in zip(union, masks)]

        if nnstd_fn is None:
            to_first = to_previous = None
        else:
            to_first = distances(first, first_key, graph, key)
            to_previous = (np.full(graph.n_layers, np.nan) if position == 0
                           else distances(previous, previous_key, graph, key))

        np_values = (_neural_persistence_layers(persistence_fn, graph)
                     if persistence_fn is not None else None)
        on_path_in, on_path_out = _on_path(masks)
        epoch = _epoch(graph, label, position)
        level = _level(graph, label)
        any_level = any_level or level is not None
        for k, (name, mask) in enumerate(zip(graph.names, masks)):
            n_out, n_in = mask.shape
            possible = n_out * n_in
            connections = int(mask.nnz)
            shared_first = _shared(mask, first_masks[k])
            if position == 0:
                added = removed = 0
                churn = jac_prev = np.nan
            else:
                prev = previous_masks[k]
                shared_prev = _shared(mask, prev)
                added = connections - shared_prev
                removed = int(prev.nnz) - shared_prev
                churn = removed / prev.nnz if prev.nnz else np.nan
                jac_prev = _jaccard(shared_prev, connections, int(prev.nnz))
            in_deg = np.diff(mask.indptr)
            out_deg = np.bincount(mask.indices, minlength=n_in)
            row = {
                "snapshot": position,
                "epoch": epoch,
                "level": level,
                "layer": k,
                "name": name,
                "n_in": n_in,
                "n_out": n_out,
                "connections": connections,
                "possible": possible,
                "density": connections / possible if possible else 0.0,
                "added": added,
                "removed": removed,
                "churn": churn,
                "nnstd_to_first": None if to_first is None else float(to_first[k]),
                "nnstd_to_previous": None if to_previous is None else float(to_previous[k]),
                "jaccard_to_first": _jaccard(shared_first, connections,
                                             int(first_masks[k].nnz)),
                "jaccard_to_previous": jac_prev,
                "ever_active": int(union[k].nnz),
                "ever_active_rate": union[k].nnz / possible if possible else 0.0,
                **_degree_stats("in_degree", in_deg),
                **_degree_stats("out_degree", out_deg),
                "inputs_without_outgoing": int(np.count_nonzero(out_deg == 0)),
                "outputs_without_incoming": int(np.count_nonzero(in_deg == 0)),
                "inputs_off_path": int(np.count_nonzero(~on_path_in[k])),
                "outputs_off_path": int(np.count_nonzero(~on_path_out[k])),
            }
            if np_values is not None:
                row["neural_persistence"] = float(np_values[k])
            rows.append(row)
        previous, previous_masks, previous_key = graph, masks, key

    if first is None:
        raise TopoError("topology evolution needs at least one snapshot")
    frame = pd.DataFrame(rows)
    if not any_level:
        frame = frame.drop(columns="level")
    if nnstd_fn is None:
        frame = frame.drop(columns=["nnstd_to_first", "nnstd_to_previous"])
    if metrics and run_dir is not None:
        frame = _join_metrics(frame, run_dir, first.n_layers)
    return frame


def input_connectivity(run_or_paths: RunOrPaths) -> np.ndarray:
    """Outgoing connections of every input feature in every snapshot.

    Parameters
    ----------
    run_or_paths
        A run directory, a folder of snapshots, or an ordered sequence of snapshot paths or
        :class:`LayeredGraph` objects (as for :func:`topology_evolution`).

    Returns
    -------
    numpy.ndarray
        Integer array of shape ``(n_snapshots, n_inputs)``: entry ``[t, i]`` is the number of
        connections from input ``i`` into the first layer in snapshot ``t``. Reshape a row to
        the snapshot's ``input_shape`` for a picture (:func:`topo.plot.plot_input_connectivity`
        does), as in the MNIST input-connectivity maps of Mocanu et al. (2018), where SET
        concentrates connections on the informative centre pixels.

    Raises
    ------
    UnreadableFileError
        A path is missing or not a snapshot.
    IncompatibleGraphsError
        The snapshots do not share their number of inputs.

    Notes
    -----
    :math:`O(E_0)` per snapshot for ``E_0`` first-layer connections (one ``bincount``).
    """
    _, items = _resolve(run_or_paths)
    counts = []
    n_inputs = None
    for label, graph in _graphs(items):
        first = graph.layers[0]
        if n_inputs is None:
            n_inputs = first.shape[1]
        elif first.shape[1] != n_inputs:
            raise IncompatibleGraphsError(
                f"{label}: {first.shape[1]} inputs, the first snapshot has {n_inputs}")
        counts.append(np.bincount(_binary(first).indices, minlength=n_inputs))
    return np.vstack(counts).astype(np.int64)


# --------------------------------------------------------------------------- helpers
def _resolve(run_or_paths: RunOrPaths) -> tuple[Path | None, list[Any]]:
    """The run directory (if any) and the ordered snapshot paths or graphs."""
    from topo.io.run import is_run_dir, snapshot_paths

    if isinstance(run_or_paths, (str, Path)):
        path = Path(run_or_paths)
        items: list[Any] = list(snapshot_paths(path))
        return (path if is_run_dir(path) else None), items
    if isinstance(run_or_paths, LayeredGraph):
        return None, [run_or_paths]
    items = list(run_or_paths)
    if not items:
        raise TopoError("topology evolution needs at least one snapshot")
    return None, items


def _graphs(items: Sequence[Any]) -> Iterator[tuple[str, LayeredGraph]]:
    from topo.io import load

    for item in items:
        if isinstance(item, LayeredGraph):
            yield item.source, item
        else:
            yield str(item), load(item)


def _optional(module: str, name: str) -> Any:
    import importlib

    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


def _binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    out = sp.csr_matrix(matrix, copy=True)
    out.sum_duplicates()
    out.data = np.ones_like(out.data, dtype=np.int8)
    out.sort_indices()
    return out


def _fingerprint(masks: Sequence[sp.csr_matrix]) -> bytes:
    """A hash of the connections of every layer (equal structures give equal hashes)."""
    h = hashlib.blake2b(digest_size=20)
    for m in masks:
        m = _binary(m)
        h.update(np.asarray(m.shape, dtype=np.int64).tobytes())
        h.update(np.asarray(m.indptr, dtype=np.int64).tobytes())
        h.update(np.asarray(m.indices, dtype=np.int64).tobytes())
    return h.digest()


def _shared(a: sp.csr_matrix, b: sp.csr_matrix) -> int:
    """Number of connections present in both masks."""
    return int(_binary(a).multiply(_binary(b)).nnz)


def _jaccard(shared: int, n_a: int, n_b: int) -> float:
    union = n_a + n_b - shared
    return shared / union if union else 1.0


def _degree_stats(prefix: str, degrees: np.ndarray) -> dict[str, float]:
    if degrees.size == 0:
        return {f"{prefix}_{s}": math.nan for s in ("mean", "std", "min", "max")}
    return {
        f"{prefix}_mean": float(degrees.mean()),
        f"{prefix}_std": float(degrees.std()),
        f"{prefix}_min": int(degrees.min()),
        f"{prefix}_max": int(degrees.max()),
    }


def _on_path(masks: Sequence[sp.csr_matrix]) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per layer, which input-side and output-side units lie on an input-to-output path.

    A unit is on such a path when it is reachable from some network input (forward pass of
    boolean reachability) and reaches some network output (backward pass). Returns two
    lists indexed by weight layer: the flags of its input units and of its output units.
    """
    widths = [masks[0].shape[1], *(m.shape[0] for m in masks)]
    forward = [np.ones(widths[0], dtype=bool)]
    for m in masks:
        forward.append(np.asarray(m @ forward[-1].astype(np.int64)).ravel() > 0)
    backward = [np.ones(widths[-1], dtype=bool)]
    for m in reversed(masks):
        backward.append(np.asarray(m.T @ backward[-1].astype(np.int64)).ravel() > 0)
    backward.reverse()
    on = [f & b for f, b in zip(forward, backward)]
    return on[:-1], on[1:]


def _neural_persistence_layers(persistence_fn: Any, graph: LayeredGraph) -> np.ndarray:
    """The normalised neural persistence of every layer of ``graph`` (NaN: non-finite)."""
    from topo.errors import NonFiniteWeightsError

    try:
        result = persistence_fn(graph)
    except NonFiniteWeightsError:
        return np.full(graph.n_layers, np.nan)
    for attribute in ("normalized", "per_layer_normalized", "layer_normalized"):
        values = getattr(result, attribute, None)
        if values is not None and np.ndim(values) == 1:
            return np.asarray(values, dtype=np.float64)
    frame = result.to_frame()
    for column in ("normalized", "neural_persistence_normalized", "np_normalized",
                   "normalized_persistence"):
        if column in frame.columns:
            return np.asarray(frame[column], dtype=np.float64)[: graph.n_layers]
    raise TopoError("topo.persistence.neural_persistence gave no per-layer normalised values")


def _epoch(graph: LayeredGraph, label: str, position: int) -> int:
    from topo.io.run import snapshot_epoch

    value = graph.metadata.get("epoch")
    if value is None:
        value = snapshot_epoch(label)
    return int(value) if value is not None else position


def _level(graph: LayeredGraph, label: str) -> int | None:
    from topo.io.run import snapshot_level

    value = graph.metadata.get("level")
    if value is None:
        value = snapshot_level(label)
    return int(value) if value is not None else None


def _join_metrics(frame: pandas.DataFrame, run_dir: Path, n_layers: int) -> pandas.DataFrame:
    """Left-join the run's metrics on epoch (and level when both have one)."""
    import pandas as pd

    from topo.io.run import read_metrics

    metrics = read_metrics(run_dir)
    if metrics.empty or "epoch" not in metrics.columns:
        return frame
    keys = ["level", "epoch"] if "level" in frame.columns and "level" in metrics else ["epoch"]
    metrics = metrics.drop_duplicates(subset=keys, keep="last")
    per_layer_bases = sorted({c.rsplit("_", 1)[0] for c in metrics.columns
                              if c.rsplit("_", 1)[-1].isdigit()
                              and all(f"{c.rsplit('_', 1)[0]}_{k}" in metrics.columns
                                      for k in range(n_layers))})
    scalar_columns = [c for c in metrics.columns
                      if c not in keys and not any(c.startswith(f"{b}_") and
                                                   c.rsplit("_", 1)[-1].isdigit()
                                                   for b in per_layer_bases)]
    scalars = metrics[keys + scalar_columns].rename(
        columns={c: f"run_{c}" for c in scalar_columns if c in frame.columns})
    out = frame.merge(scalars, on=keys, how="left")
    if per_layer_bases:
        long = []
        for k in range(n_layers):
            part = metrics[keys].copy()
            part["layer"] = k
            for base in per_layer_bases:
                part[f"run_{base}"] = metrics[f"{base}_{k}"]
            long.append(part)
        out = out.merge(pd.concat(long, ignore_index=True), on=[*keys, "layer"], how="left")
    return out
