"""Connectivity evolution: how a run's topology changed from snapshot to snapshot.

:func:`topology_evolution` turns an ordered sequence of snapshots (the ``(label, graph,
metadata)`` entries that :func:`topo.read_sequence` reads from a run directory or a folder, or
plain LayeredGraphs) into one table with a row per snapshot and layer: connections, what was
added and removed since the previous snapshot, the churn rate, NNSTD and Jaccard to the first
and to the previous snapshot, the in-time over-parameterisation (ITOP) rate (the fraction of
all possible connections that were ever active so far: exact when the run recorded it at every
structural change, else a lower bound from the snapshots), degree statistics, dead units,
neural persistence and the run's own metrics. :func:`input_connectivity` gives, per input
feature, how many connections leave it in every snapshot (SET's input-connectivity maps), and
:func:`ever_active_rate` the union of the connections over time alone.

The sequence is iterated once, one snapshot at a time, so a lazily read run with hundreds of
snapshots never needs them all in memory. Nothing here opens a file.

Convolutional layers: connections, additions, removals, Jaccard indices and the ever-active
rate count kernel elements (a layer's possible connections are ``n_out * (n_in / groups) *
positions``); degrees, units without connections and units off every path are counted on
units (channels), through the layer's unit graph. Residual streams follow the network's
wiring (:func:`topo.structure.units_on_paths`); independent matrices are taken one by one.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from topo import distance, structure
from topo.errors import (
    EmptyInputError,
    IncompatibleGraphsError,
    NonFiniteWeightsError,
    NotAGraphError,
)
from topo.graph import LayeredGraph, require_graph
from topo.persistence import neural_persistence

if TYPE_CHECKING:  # pragma: no cover
    import pandas

__all__ = ["topology_evolution", "input_connectivity", "ever_active_rate",
           "EVOLUTION_COLUMNS", "EXACT_ITOP_COLUMNS", "Entry"]

#: The columns of an evolution table, in order. ``level`` (after ``epoch``) appears only for
#: snapshots with pruning levels, the two NNSTD columns only when NNSTD is computed,
#: :data:`EXACT_ITOP_COLUMNS` only when the run recorded them, and ``neural_persistence`` and
#: the run's metrics follow when available.
EVOLUTION_COLUMNS = (
    "snapshot", "epoch", "layer", "name", "n_in", "n_out", "connections", "possible",
    "density", "added", "removed", "churn", "nnstd_to_first", "nnstd_to_previous",
    "jaccard_to_first", "jaccard_to_previous", "ever_active_snapshots", "itop_rate_snapshots",
    "in_degree_mean", "in_degree_std", "in_degree_min", "in_degree_max",
    "out_degree_mean", "out_degree_std", "out_degree_min", "out_degree_max",
    "inputs_without_outgoing", "outputs_without_incoming", "inputs_off_path",
    "outputs_off_path",
)

#: The exact ITOP rate of a run that recorded it (``topo train`` does, at every structural
#: change: :class:`topo.train.callbacks.ITOPRate`), right after ``itop_rate_snapshots``:
#: ``itop_rate`` of the layer and ``itop_rate_network``.
EXACT_ITOP_COLUMNS = ("itop_rate", "itop_rate_network")

#: One snapshot of a sequence: ``(label, graph, metadata)``. ``metadata`` may hold ``epoch``,
#: ``level`` (pruning level), ``step`` and ``metrics`` (the run's flat metrics row of that
#: snapshot, per-layer lists spread as ``name_0``, ``name_1``, ...); a plain LayeredGraph
#: counts as ``(graph.source, graph, graph.metadata)``.
Entry = tuple[str, LayeredGraph, dict[str, Any]]
Snapshots = Iterable[Entry | LayeredGraph]


def topology_evolution(snapshots: Snapshots, *, persistence: bool = True,
                       nnstd: bool = True, metrics: bool = True) -> pandas.DataFrame:
    """Per-snapshot, per-layer time series of a run's topology.

    Parameters
    ----------
    snapshots
        The snapshots in time order, iterated once: ``(label, graph, metadata)`` entries
        (``topo.read_sequence(run)`` reads a run directory or a folder this way, lazily, with
        each snapshot's epoch, pruning level and metrics row) or plain LayeredGraphs.
    persistence
        Add ``neural_persistence`` (the layer's normalised neural persistence, Rieck et al.
        2019).
    nnstd
        Compute the NNSTD columns; without it they are left out.
    metrics
        Join the run's own metrics (loss, accuracies, ...) that the entries carry in
        ``metadata["metrics"]``. Per-layer values (``name_0``, ``name_1``, ... for every
        layer) become ``run_<name>`` columns; a metric whose name is a column of the table
        becomes ``run_<name>``.

    Returns
    -------
    pandas.DataFrame
        One row per snapshot and layer, in time order then layer order, with the columns of
        :data:`EVOLUTION_COLUMNS`:

        - ``snapshot`` (position in the sequence), ``epoch`` (from the entry's metadata, else
          the graph's; 0 = initialisation; the position when unknown), ``level`` (pruning
          level, only when snapshots carry one), ``layer``, ``name``, ``n_in``, ``n_out``;
        - ``n_in``, ``n_out`` count units (channels of a conv layer);
        - ``connections``, ``possible`` (``n_in * n_out``; for a conv layer kernel elements,
          ``n_out * (n_in / groups) * positions``), ``density``;
        - ``added`` / ``removed``: connections present now but not in the previous snapshot
          and vice versa (0 at the first snapshot); ``churn`` = ``removed`` / connections of
          the previous snapshot (NaN at the first snapshot or after an empty layer);
        - ``nnstd_to_first`` / ``nnstd_to_previous``: the layer's NNSTD (Liu et al. 2020)
          from the first / previous snapshot to this one (``nnstd_to_previous`` is NaN at the
          first snapshot);
        - ``jaccard_to_first`` / ``jaccard_to_previous``: raw Jaccard index of the masks
          without neuron matching, ``|A & B| / |A | B|`` (1 for two empty masks);
        - ``ever_active_snapshots`` / ``itop_rate_snapshots``: connections active in any
          snapshot so far and their fraction of ``possible``: the in-time
          over-parameterisation (ITOP) rate of Liu et al. 2021 seen through the snapshots, a
          lower bound (connections grown and dropped between two snapshots are missed); it
          never decreases;
        - ``itop_rate`` / ``itop_rate_network``: the exact ITOP rate of the layer and of the
          network (over the layers the method changes), as the run recorded it at every
          structural change (the ``itop_rate_k`` and ``itop_rate_network`` of the
          snapshot's metrics row); present only when the run recorded them, NaN for a
          snapshot whose row lacks them;
        - in-degree statistics of the layer's output units and out-degree statistics of its
          input units (mean, std, min, max), on the unit graph (for a conv layer: input
          channels connected to an output channel, and vice versa);
        - ``inputs_without_outgoing`` / ``outputs_without_incoming``: units with no
          connection in this layer; ``inputs_off_path`` / ``outputs_off_path``: units of the
          layer's input / output side that lie on no path from a network input to a network
          output;
        - ``neural_persistence`` (NaN for a snapshot with NaN or infinite weights), then the
          run's metrics.

    Raises
    ------
    NotAGraphError
        A path instead of snapshots, or an entry whose graph is not a LayeredGraph.
    IncompatibleGraphsError
        The snapshots do not share layer widths, kinds, kernel shapes or wiring.
    EmptyInputError
        No snapshot was given.

    Notes
    -----
    Consecutive snapshots are similar, so results are reused where that is exact. NNSTD
    depends on the structures only, never on the weights, so every snapshot's structure is
    fingerprinted (:func:`topo.structure.fingerprint`) and NNSTD is solved at most once per
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

    rows: list[dict[str, Any]] = []
    metric_rows: list[tuple[int, dict[str, Any]]] = []
    first = previous = None
    first_masks: list[sp.csr_matrix] = []
    previous_masks: list[sp.csr_matrix] = []
    ever = _EverActive()
    first_key = previous_key = b""
    solved: dict[tuple[bytes, bytes], np.ndarray] = {}

    def distances(a: LayeredGraph, a_key: bytes, b: LayeredGraph, b_key: bytes) -> np.ndarray:
        """Per-layer NNSTD from ``a`` to ``b``, solved once per pair of structures."""
        if a_key == b_key:
            return np.zeros(b.n_layers)
        if (a_key, b_key) not in solved:
            solved[a_key, b_key] = np.asarray(distance.nnstd(a, b).per_layer,
                                              dtype=np.float64)
        return solved[a_key, b_key]

    any_level = False
    for position, (label, graph, meta) in enumerate(_entries(snapshots)):
        masks = graph.masks()
        key = structure.fingerprint(masks)
        if first is None:
            first, first_masks = graph, masks
            first_key = previous_key = key
            previous_masks = masks
        elif graph.widths != first.widths:
            raise IncompatibleGraphsError(
                f"{_where(label, graph)}: widths {'-'.join(map(str, graph.widths))} differ "
                f"from the first snapshot's {'-'.join(map(str, first.widths))} "
                f"({first.source})")
        else:
            _check_same_architecture(first, graph, label)
        ever.add(masks, label, graph)

        if nnstd:
            to_first = distances(first, first_key, graph, key)
            to_previous = (np.full(graph.n_layers, np.nan) if position == 0
                           else distances(previous, previous_key, graph, key))
        np_values = _neural_persistence_layers(graph) if persistence else None
        unit_masks = graph.unit_masks()
        on_path_in, on_path_out = structure.units_on_paths(
            unit_masks, graph.reads, graph.writes, graph.wiring.output_sets)
        epoch = meta.get("epoch")
        epoch = int(epoch) if epoch is not None else position
        level = meta.get("level")
        level = int(level) if level is not None else None
        any_level = any_level or level is not None
        recorded = dict(meta.get("metrics") or {})
        exact = _exact_itop(recorded, graph.n_layers)
        if metrics and recorded:
            metric_rows.append((position, {k: v for k, v in recorded.items()
                                           if not k.startswith("itop_rate_")}))
        for k, (name, mask) in enumerate(zip(graph.names, masks)):
            n_out, n_in = graph.n_out[k], graph.n_in[k]
            possible = graph.possible[k]
            connections = int(mask.nnz)
            shared_first = structure.intersection_count(mask, first_masks[k])
            if position == 0:
                added = removed = 0
                churn = jac_prev = np.nan
            else:
                prev = previous_masks[k]
                shared_prev = structure.intersection_count(mask, prev)
                added = connections - shared_prev
                removed = int(prev.nnz) - shared_prev
                churn = removed / prev.nnz if prev.nnz else np.nan
                jac_prev = structure.jaccard_index(shared_prev, connections, int(prev.nnz))
            in_deg = structure.in_degrees(unit_masks[k])
            out_deg = structure.out_degrees(unit_masks[k])
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
                "nnstd_to_first": float(to_first[k]) if nnstd else None,
                "nnstd_to_previous": float(to_previous[k]) if nnstd else None,
                "jaccard_to_first": structure.jaccard_index(shared_first, connections,
                                                            int(first_masks[k].nnz)),
                "jaccard_to_previous": jac_prev,
                "ever_active_snapshots": int(ever.union[k].nnz),
                "itop_rate_snapshots": ever.union[k].nnz / possible if possible else 0.0,
                "itop_rate": exact[k],
                "itop_rate_network": exact[-1],
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
        raise EmptyInputError("topology evolution needs at least one snapshot")
    frame = pd.DataFrame(rows)
    if not any_level:
        frame = frame.drop(columns="level")
    if not nnstd:
        frame = frame.drop(columns=["nnstd_to_first", "nnstd_to_previous"])
    if frame["itop_rate"].isna().all():   # the run did not record it: no exact value
        frame = frame.drop(columns=list(EXACT_ITOP_COLUMNS))
    if metric_rows:
        frame = _join_metrics(frame, metric_rows, first.n_layers)
    return frame


def input_connectivity(snapshots: Snapshots) -> np.ndarray:
    """Outgoing connections of every input feature in every snapshot.

    Parameters
    ----------
    snapshots
        The snapshots in time order, as for :func:`topology_evolution`.

    Returns
    -------
    numpy.ndarray
        Integer array of shape ``(n_snapshots, n_inputs)``: entry ``[t, i]`` is the number of
        connections from input ``i`` into the first layer in snapshot ``t`` (for a first
        conv layer ``i`` is an input channel and the connections are its kept kernel
        elements). Reshape a row to
        the snapshot's ``input_shape`` for a picture (:func:`topo.plot.plot_input_connectivity`
        does), as in the MNIST input-connectivity maps of Mocanu et al. (2018), where SET
        concentrates connections on the informative centre pixels.

    Raises
    ------
    NotAGraphError
        A path instead of snapshots.
    IncompatibleGraphsError
        The snapshots do not share their number of inputs.
    EmptyInputError
        No snapshot was given.

    Notes
    -----
    :math:`O(E_0)` per snapshot for ``E_0`` first-layer connections (one ``bincount``).
    """
    counts = []
    n_inputs = None
    for label, graph, _ in _entries(snapshots):
        first = graph.layers[0]
        if n_inputs is None:
            n_inputs = graph.n_in[0]
        elif graph.n_in[0] != n_inputs:
            raise IncompatibleGraphsError(
                f"{_where(label, graph)}: {graph.n_in[0]} inputs, the first snapshot has "
                f"{n_inputs}")
        per_element = structure.out_degrees(first)
        counts.append(per_element.reshape(graph.n_in[0], graph.positions[0]).sum(axis=1))
    if not counts:
        raise EmptyInputError("input connectivity needs at least one snapshot")
    return np.vstack(counts).astype(np.int64)


def ever_active_rate(snapshots: Snapshots) -> np.ndarray:
    """In-time over-parameterisation rate: connections ever active, per snapshot and layer.

    Parameters
    ----------
    snapshots
        Snapshots of one network in time order (LayeredGraphs or ``(label, graph,
        metadata)`` entries, any iterable, read once), all with the same layer shapes.

    Returns
    -------
    numpy.ndarray
        Shape ``(n_snapshots, n_layers)``: entry ``[t, k]`` is the number of positions of
        layer ``k`` that hold a connection in at least one of the snapshots ``0 .. t``,
        divided by the layer's possible connections ``n_in · n_out`` (kernel elements of a
        conv layer: ``n_out · (n_in / groups) · positions``). Non-decreasing along
        axis 0; the first row is the density of the first snapshot. The same values as the
        ``itop_rate_snapshots`` column of :func:`topology_evolution`.

    Raises
    ------
    EmptyInputError
        No snapshot given.
    IncompatibleGraphsError
        A snapshot whose layer count or shapes differ from the first one's.

    Notes
    -----
    The union over time is kept as one sparse structure per layer and grown by sparse
    structure addition (:func:`topo.structure.union`), ``O(nnz)`` per snapshot and layer.
    Connections grown and dropped between two snapshots are not seen, so this is a lower
    bound of the rate over every update.

    References
    ----------
    S. Liu, L. Yin, D. C. Mocanu, M. Pechenizkiy, "Do We Actually Need Dense
    Over-Parameterization? In-Time Over-Parameterization in Sparse Training", ICML 2021
    (the rate ``R_s`` of Section 3).
    """
    ever = _EverActive()
    out: list[np.ndarray] = []
    for label, graph, _ in _entries(snapshots):
        ever.add(graph.masks(), label, graph)
        out.append(ever.rates(graph.possible))
    if not out:
        raise EmptyInputError("ever-active rate: no snapshot given")
    return np.vstack(out)


# --------------------------------------------------------------------------- helpers
class _EverActive:
    """The union of every layer's connections over the snapshots added so far."""

    def __init__(self) -> None:
        self.union: list[sp.csr_matrix] = []
        self._first = ""

    def add(self, masks: Sequence[sp.csr_matrix], label: str, graph: LayeredGraph) -> None:
        if not self.union:
            self.union = [m.copy() for m in masks]
            self._first = _where(label, graph)
            return
        shapes = [m.shape for m in masks]
        expected = [m.shape for m in self.union]
        if shapes != expected:
            raise IncompatibleGraphsError(
                f"{_where(label, graph)}: layer shapes {shapes} differ from those of "
                f"{self._first} ({expected}); the union over time needs one architecture")
        self.union = [structure.union(u, m) for u, m in zip(self.union, masks)]

    def rates(self, possible: Sequence[int]) -> np.ndarray:
        counts = np.array([u.nnz for u in self.union], dtype=np.float64)
        sizes = np.asarray(possible, dtype=np.float64)
        return np.divide(counts, sizes, out=np.zeros_like(counts), where=sizes > 0)


def _exact_itop(metrics: dict[str, Any], n_layers: int) -> list[float]:
    """The exact ITOP rate a run recorded in a metrics row: per layer, then the network's
    (NaN where the row does not hold it)."""
    names = [*(f"itop_rate_{k}" for k in range(n_layers)), "itop_rate_network"]
    values = [metrics.get(name) for name in names]
    return [float(v) if v is not None else np.nan for v in values]


def _entries(snapshots: Snapshots) -> Iterator[Entry]:
    """``(label, graph, metadata)`` of every snapshot; a LayeredGraph is its own entry."""
    if isinstance(snapshots, LayeredGraph):
        snapshots = [snapshots]
    elif isinstance(snapshots, (str, os.PathLike)):
        raise NotAGraphError(
            f"snapshots: got the path {str(snapshots)!r}; analyses never open files: read a "
            "run or a folder of snapshots with topo.read_sequence(path)")
    for item in snapshots:
        if isinstance(item, LayeredGraph):
            yield item.source, item, dict(item.metadata)
            continue
        if not (isinstance(item, tuple) and len(item) == 3):
            require_graph(item, "snapshot")
        label, graph, meta = item
        graph = require_graph(graph, f"snapshot {label}")
        yield str(label), graph, {**graph.metadata, **(meta or {})}


def _check_same_architecture(first: LayeredGraph, graph: LayeredGraph, label: str) -> None:
    """Same layer kinds, kernel shapes, groups and wiring as the first snapshot."""
    if graph.geometry != first.geometry or graph.wiring != first.wiring:
        what = "layer kinds or kernel shapes" if graph.geometry != first.geometry else "wiring"
        raise IncompatibleGraphsError(
            f"{_where(label, graph)}: its {what} differ from the first snapshot's "
            f"({first.source}); a time series needs one architecture")


def _where(label: str, graph: LayeredGraph) -> str:
    """The snapshot's file for messages, else its label."""
    return str(graph.metadata.get("source", label))


def _degree_stats(prefix: str, degrees: np.ndarray) -> dict[str, float]:
    # every layer has at least one unit on each side (LayeredGraph refuses empty sides)
    return {
        f"{prefix}_mean": float(degrees.mean()),
        f"{prefix}_std": float(degrees.std()),
        f"{prefix}_min": int(degrees.min()),
        f"{prefix}_max": int(degrees.max()),
    }


def _neural_persistence_layers(graph: LayeredGraph) -> np.ndarray:
    """The normalised neural persistence of every layer of ``graph`` (NaN: non-finite)."""
    try:
        return neural_persistence(graph).normalized
    except NonFiniteWeightsError:
        return np.full(graph.n_layers, np.nan)


def _join_metrics(frame: pandas.DataFrame, metric_rows: list[tuple[int, dict[str, Any]]],
                  n_layers: int) -> pandas.DataFrame:
    """Left-join each snapshot's metrics row onto its rows.

    Scalar metrics become columns (``run_<name>`` when the table has that column already);
    a metric given for every layer (``name_0`` ... ``name_{L-1}``) becomes one ``run_<name>``
    column, each layer's row holding its own value. The metrics' ``epoch`` (and ``level``,
    when the table has levels) are the join keys and are not repeated.
    """
    import pandas as pd

    metrics = pd.DataFrame([m for _, m in metric_rows])
    metrics.index = [position for position, _ in metric_rows]
    keys = ["level", "epoch"] if "level" in frame.columns else ["epoch"]
    per_layer_bases = sorted({c.rsplit("_", 1)[0] for c in metrics.columns
                              if c.rsplit("_", 1)[-1].isdigit()
                              and all(f"{c.rsplit('_', 1)[0]}_{k}" in metrics.columns
                                      for k in range(n_layers))})
    scalar_columns = [c for c in metrics.columns
                      if c not in keys and not any(c.startswith(f"{b}_") and
                                                   c.rsplit("_", 1)[-1].isdigit()
                                                   for b in per_layer_bases)]
    scalars = metrics[scalar_columns].rename(
        columns={c: f"run_{c}" for c in scalar_columns if c in frame.columns})
    scalars.insert(0, "snapshot", metrics.index)
    out = frame.merge(scalars, on="snapshot", how="left")
    if per_layer_bases:
        long = []
        for k in range(n_layers):
            part = pd.DataFrame({"snapshot": metrics.index, "layer": k})
            for base in per_layer_bases:
                part[f"run_{base}"] = metrics[f"{base}_{k}"].to_numpy()
            long.append(part)
        out = out.merge(pd.concat(long, ignore_index=True), on=["snapshot", "layer"],
                        how="left")
    return out
