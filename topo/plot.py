"""Figures of topo's results, drawn with matplotlib.

Every function takes a result (a result object of topo's API, or its table: the
``to_frame()`` of a :class:`~topo.comparison.Comparison`, an evolution or interaction
table, a distance matrix) and ``ax=None`` (an existing Axes, or for multi-panel figures a
sequence of Axes), and returns what it drew, so notebooks can compose figures; when ``ax`` is
None a new figure is made. Columns are read by the names the API, ``--json`` and ``--csv``
use. Nothing here calls ``plt.show`` or writes a file; :func:`topo.io.export.save_figure`
saves a figure (PNG, SVG or PDF by the file's suffix).

When the user has chosen no matplotlib backend (no ``MPLBACKEND`` and pyplot not yet
imported), the non-interactive Agg backend is selected, so figures render on machines
without a display.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from topo.errors import ConfigError, InvalidTableError
from topo.interactions import INTERACTION_COLUMNS

if TYPE_CHECKING:  # pragma: no cover
    import pandas
    from matplotlib.axes import Axes

    from topo.comparison import Comparison

__all__ = [
    "pyplot",
    "plot_distance_matrix",
    "plot_comparison",
    "plot_evolution",
    "plot_embedding",
    "embedding_stress",
    "EmbeddingWarning",
    "plot_input_connectivity",
    "plot_interactions",
    "plot_persistence_diagram",
    "plot_persistence_diagrams",
    "plot_death_histogram",
    "plot_barcode",
    "layer_label",
    "snapshot_titles",
]

#: The tick of the comparison's ``all`` row: its columns aggregate differently.
_ALL_LABEL = "all layers\nNNSTD: mean\nJaccard: pooled"
_ALIGNED_LABELS = {"nnstd": "Jaccard (aligned by NNSTD)",
                   "overlap": "Jaccard (aligned for overlap)"}

#: Bars of :func:`plot_comparison` (columns of COMPARISON_COLUMNS): each measure, and beside
#: it what two random networks of the same densities give (hatched), so that a value can be
#: read against chance.
_COMPARISON_SERIES = tuple(zip(
    ("nnstd", "nnstd_chance", "jaccard", "jaccard_aligned", "jaccard_chance"),
    ("NNSTD", "NNSTD (chance)", "Jaccard (raw)", "Jaccard (aligned)", "Jaccard (chance)"),
    ("tab:red", "#f1a9a9", "tab:blue", "tab:green", "0.6"),
    (None, "//", None, None, "//"),
))


def plot_distance_matrix(matrix_df: pandas.DataFrame, ax: Axes | None = None,
                         order: str | None = "cluster", cmap: str = "viridis",
                         annotate: bool | None = None, metric: str = "distance") -> Axes:
    """Heatmap of a square distance matrix, rows and columns ordered by clustering.

    Parameters
    ----------
    matrix_df
        Square DataFrame of pairwise distances (e.g. NNSTD from
        :func:`topo.distance.distance_matrix`); its index labels the rows and columns.
    ax
        Axes to draw into; a new figure when None.
    metric
        What the values are, for the title and the colour bar: e.g. ``"NNSTD"`` for the
        first matrix of :func:`topo.distance_matrix` (the command line says so), or
        ``"pooled Jaccard index"`` for its second.
    order
        ``"cluster"`` orders the snapshots by the leaves of an average-linkage hierarchical
        clustering of the (symmetrised) matrix with optimal leaf ordering, so that similar
        topologies sit next to each other as in Liu et al.'s topology-distance heatmaps;
        ``None`` or ``"given"`` keeps the input order.
    cmap
        Matplotlib colormap name.
    annotate
        Write each value in its cell; by default only for matrices up to 12 x 12.

    Returns
    -------
    matplotlib.axes.Axes
        The Axes holding the heatmap (with a colorbar beside it). Every label is written at
        8 pt; when the Axes cannot hold them all at that size, every ``k``-th is written.

    Raises
    ------
    InvalidTableError
        The matrix is not square.
    ConfigError
        ``order`` is unknown.

    Notes
    -----
    Clustering uses :func:`scipy.cluster.hierarchy.linkage` (``method="average"``,
    ``optimal_ordering=True``), :math:`O(n^3)` for ``n`` snapshots at most. Reference:
    S. Liu et al., "Topological insights into sparse neural networks", ECML PKDD 2020.
    """
    plt = pyplot()
    values = np.asarray(matrix_df, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise InvalidTableError(f"a distance matrix must be square, got shape {values.shape}")
    labels = [str(x) for x in getattr(matrix_df, "index", range(values.shape[0]))]
    if order == "cluster":
        index = _cluster_order(values)
    elif order in (None, "given"):
        index = np.arange(values.shape[0])
    else:
        raise ConfigError(f"unknown order {order!r}; use 'cluster' or None")
    values = values[np.ix_(index, index)]
    labels = [labels[i] for i in index]
    if ax is None:
        size = min(12.0, 3.0 + 0.35 * len(labels))
        _, ax = plt.subplots(figsize=(size + 1.2, size))
    image = ax.imshow(values, cmap=cmap, interpolation="nearest")
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label=metric)
    step = _label_step(ax, len(labels), _TICK_FONTSIZE)
    ticks = np.arange(0, len(labels), step)
    shown = [labels[i] for i in ticks]
    ax.set_xticks(ticks, shown, rotation=90, fontsize=_TICK_FONTSIZE)
    ax.set_yticks(ticks, shown, fontsize=_TICK_FONTSIZE)
    if annotate is None:
        annotate = len(labels) <= 12
    if annotate:
        finite = values[np.isfinite(values)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for i, j in np.ndindex(values.shape):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if values[i, j] < middle else "black")
    title = f"{metric} between snapshots"
    if order == "cluster":
        title += "\n(ordered by average-linkage clustering)"
    if step > 1:
        title += f"\n(every {_ordinal(step)} label of {len(labels)} shown)"
    ax.set_title(title)
    return ax


def plot_comparison(frame: Comparison | pandas.DataFrame, ax: Axes | None = None,
                    alignment: str | None = None) -> Axes:
    """Per-layer grouped bars comparing two topologies.

    Parameters
    ----------
    frame
        A :class:`~topo.comparison.Comparison` (``topo.compare(a, b)``) or its table (the
        table of ``topo compare``), with one row per layer (the ``"all"`` row is drawn too
        when present, labelled with how it aggregates: NNSTD the mean over the layers, the
        Jaccard indices pooled over their connections) and any of the columns ``nnstd``,
        ``nnstd_chance`` (NNSTD's chance level: the expected NNSTD of random networks of the
        same densities), ``jaccard``, ``jaccard_aligned`` (Jaccard after neuron matching)
        and ``jaccard_chance`` (what two random masks of the same densities share). Missing
        columns are skipped; a column with no value (all NaN, e.g. the chance level of
        layers whose widths differ) draws no bars and its legend entry says ``n/a``. Every
        bar's value is written above it (so a bar of height 0 reads ``0.00``, a missing
        value ``n/a``). Rows are labelled by :func:`layer_label` of ``layer`` and ``name``.
    ax
        Axes to draw into; a new figure when None.
    alignment
        How hidden units were matched for ``jaccard_aligned`` (``"nnstd"`` or
        ``"overlap"``), named in the legend; a Comparison says so itself.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    InvalidTableError
        The frame holds none of the columns above.
    """
    plt = pyplot()
    alignment = alignment or getattr(frame, "alignment", None)
    frame = _table(frame)
    series = [s for s in _COMPARISON_SERIES if s[0] in frame.columns]
    if alignment is not None:
        aligned = _ALIGNED_LABELS.get(alignment, f"Jaccard (aligned: {alignment})")
        series = [(c, aligned if c == "jaccard_aligned" else lab, col, h)
                  for c, lab, col, h in series]
    if not series:
        raise InvalidTableError("the comparison table has none of the columns "
                         + ", ".join(s[0] for s in _COMPARISON_SERIES))
    labels = [_ALL_LABEL if label == "all" else label for label in _row_labels(frame)]
    if ax is None:
        _, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(labels) + 2.5), 3.9))
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    for i, (column, label, colour, hatch) in enumerate(series):
        heights = np.asarray(frame[column], dtype=np.float64)
        if np.isnan(heights).all():
            # e.g. no chance level for layers of different widths: say so, draw no bars
            label = f"{label}: n/a"
        bars = ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(heights), width,
                      label=label, color=colour, hatch=hatch,
                      edgecolor="white" if hatch is None else "0.3")
        # every bar's value above it, so that a bar of height 0 is seen to be 0
        ax.bar_label(bars, labels=["n/a" if np.isnan(h) else f"{h:.2f}" for h in heights],
                     fontsize=6, padding=1.5, rotation=90 if len(labels) > 6 else 0)
    ax.set_xticks(x, labels)
    ax.set_ylabel("NNSTD / Jaccard index")
    ax.set_ylim(0, 1.12)
    ax.legend(fontsize=8, ncols=min(3, len(series)), loc="upper center",
              bbox_to_anchor=(0.5, -0.26), frameon=False)
    ax.set_title("topology distance and mask overlap per layer")
    return ax


#: Panels of :func:`plot_evolution`: (column, title, y label). The fourth and the sixth
#: are chosen from what the table holds (:func:`_itop_panel`, :func:`_metric_panel`).
_EVOLUTION_PANELS = (
    ("nnstd_to_first", "NNSTD to the first snapshot", "NNSTD"),
    ("nnstd_to_previous", "NNSTD to the previous snapshot", "NNSTD"),
    ("churn", "churn (removed / previous connections)", "churn rate"),
    ("itop", "in-time over-parameterisation", "ITOP rate"),
    ("jaccard_to_first", "Jaccard index to the first snapshot", "Jaccard index"),
    ("metrics", "accuracy", "accuracy"),
)

#: Where the in-time over-parameterisation (ITOP) rate comes from, best first: the exact
#: rate the training loop records at every mask update (joined from the run's metrics), else
#: the union of the snapshots' connections, which misses connections grown and dropped
#: between two snapshots.
_ITOP_COLUMNS = (
    ("itop_rate", "ITOP rate (exact: every mask update)"),
    ("itop_rate_snapshots", "ITOP rate at the snapshots (a lower bound)"),
)

#: The run's metrics the last panel draws, first available first: (title, y label,
#: (train column, test column), log scale when the values span more than 20x).
_METRIC_PANELS = (
    ("accuracy", "accuracy", ("train_accuracy", "test_accuracy"), False),
    ("mean squared error", "MSE", ("train_mse", "test_mse"), True),
    ("loss", "loss", ("loss", "test_loss"), True),
)


def plot_evolution(frame: pandas.DataFrame, ax: Any = None) -> np.ndarray:
    """The evolution panel of a run: six small plots against epoch, one line per layer.

    Panels: NNSTD to the first and to the previous snapshot, churn rate, in-time
    over-parameterisation (ITOP) rate, raw Jaccard index to the first snapshot, and the run's
    train/test accuracy (train: the running mean over the epoch's mini-batches that the
    training loop records; test: measured after the epoch). The ITOP panel draws the exact
    rate the training loop recorded (``itop_rate``) where the table has it, else
    ``itop_rate_snapshots``, the rate at the snapshots (a lower bound: connections
    grown and dropped between two snapshots are missed); where that rate never changes in
    any layer (a run that starts dense, as IMP and GMP do, or a static mask), the panel
    draws the layers' density instead. A regression run's last panel draws its MSE
    (``train_mse``, ``test_mse``), a run with neither its loss (``loss``, ``test_loss``);
    loss and MSE use a log scale when they span more than a factor 20. A panel whose
    columns are missing says so instead of drawing. Epochs are ticked at whole numbers;
    layers are named by :func:`layer_label`.

    Parameters
    ----------
    frame
        The table of :func:`topo.evolution.topology_evolution` (columns ``epoch``, ``layer``,
        ``name`` and the panels' columns; ``train_accuracy``/``test_accuracy`` for the last
        panel). When no file said its epoch (``epoch_source`` "order"), snapshots are
        plotted by their ``step`` when every file gave one, else by their position, and the
        axis says so. When it has a ``level`` column (iterative pruning), snapshots are plotted by
        their position instead of their epoch, with a tick at the first snapshot of every
        level naming the level and the network's density there (``connections`` over
        ``possible``, summed over the layers).
    ax
        Six Axes to draw into (any sequence or array); a new 2 x 3 figure when None.

    Returns
    -------
    numpy.ndarray
        The six Axes, in panel order.
    """
    plt = pyplot()
    frame = _table(frame)
    axes = _as_axes_list(ax, len(_EVOLUTION_PANELS))
    if axes is None:
        fig, grid = plt.subplots(2, 3, figsize=(13, 6.6), constrained_layout=True)
        axes = list(grid.ravel())
    by_position = "level" in frame.columns
    x_column, x_label = ("snapshot", "snapshot") if by_position else ("epoch", "epoch")
    if (not by_position and "epoch_source" in frame.columns
            and bool((frame["epoch_source"] == "order").all())):
        # no file said its epoch: the "epoch" column is only the snapshot's position
        if "step" in frame.columns and frame["step"].notna().all():
            x_column, x_label = "step", "step (the files say no epoch)"
        else:
            x_label = "snapshot, in time order (the files say no epoch)"
    level_ticks = None
    if by_position:
        x_label = "pruning level (network density); dotted: a level begins"
        level_ticks = _level_ticks(frame)
    layers = frame.drop_duplicates("layer")[["layer", "name"]].itertuples(index=False)
    layers = list(layers)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(1, len(layers))))
    x_values = frame[x_column].to_numpy(dtype=np.float64)
    x_range = (x_values.min() - 0.5, x_values.max() + 0.5) if x_values.size else None
    handles = []
    for a, (column, title, y_label) in zip(axes, _EVOLUTION_PANELS):
        if x_range is not None:  # one x range for every panel, also where the first is NaN
            a.set_xlim(*x_range)
        if column == "itop":
            column, title, y_label = _itop_panel(frame)
        a.set_title(title, fontsize=10)
        a.set_xlabel(x_label, fontsize=9 if by_position else None)
        a.set_ylabel(y_label)
        a.grid(alpha=0.3)
        if level_ticks is not None:
            starts, tick_labels = level_ticks
            for start in starts[1:]:
                a.axvline(start - 0.5, color="0.5", linestyle=":", linewidth=1)
            a.set_xticks(starts, tick_labels, fontsize=8)
        else:
            a.xaxis.set_major_locator(_integer_locator())
        if column == "metrics":
            _metric_panel(a, frame, x_column)
            continue
        if column not in frame.columns or frame[column].isna().all():
            a.text(0.5, 0.5, f"{column}: not available", ha="center", va="center",
                   transform=a.transAxes, color="0.4")
            continue
        for (layer, name), colour in zip(layers, colours):
            part = frame[frame["layer"] == layer]
            (line,) = a.plot(*_level_segments(part, x_column, column), marker="o",
                             markersize=2.5, linewidth=1.3, color=colour,
                             label=layer_label(layer, name))
            if column == "nnstd_to_first":
                handles.append(line)
        if column in ("density", "jaccard_to_first") or column in dict(_ITOP_COLUMNS):
            a.set_ylim(-0.02, 1.02)
        else:
            _from_zero(a)
    if not handles:
        handles = [plt.Line2D([], [], color=c, label=layer_label(layer, name))
                   for (layer, name), c in zip(layers, colours)]
    # the legends sit below the panels, where they hide no data: the layers' lines on the
    # left, the last panel's train and test lines on the right, under that panel
    figure = axes[0].figure
    figure.legend(handles=handles, loc="outside lower left", ncols=min(5, len(handles)),
                  fontsize=8)
    metric_lines = [line for line in axes[len(_EVOLUTION_PANELS) - 1].lines
                    if not line.get_label().startswith("_")]
    if metric_lines:
        figure.legend(handles=metric_lines, loc="outside lower right", ncols=1, fontsize=8)
    return np.asarray(axes[: len(_EVOLUTION_PANELS)], dtype=object)


def plot_embedding(matrix_df: pandas.DataFrame, runs: Sequence[str] | None = None,
                   ax: Axes | None = None, random_state: int = 0,
                   annotate: bool = True, metric: str = "distance") -> Axes:
    """A 2-D map of many snapshots from their NNSTD matrix, with each run's trajectory.

    Metric multidimensional scaling places the snapshots in the plane so that their
    Euclidean distances approximate the given topology distances; each run's snapshots are
    joined in order, its start drawn as an open circle and its end as a filled star, so runs
    that rewire towards one another, or drift apart, can be seen. The snapshots of a run in
    pruning levels (labels ``run/level_XX/...``) are joined within each level only: a level
    begins by rewinding the weights, which no line should show as a path.

    How well the plane holds the distances is stated in the figure: Kruskal's stress-1 of
    the embedding and his rating of it (below 0.025 excellent, 0.05 good, 0.1 fair; 0.2 or
    more poor).
    Snapshots that are all nearly equally far apart (as SET's, once every snapshot has
    rewired most of its connections) cannot be laid out in a plane; at a stress of 0.2 or
    more an :class:`EmbeddingWarning` says that distances in the picture are unreliable.

    Parameters
    ----------
    matrix_df
        Square DataFrame of pairwise distances, index = snapshot labels, rows in time order
        within each run.
    runs
        The run each row belongs to (same length as the matrix); by default the part of the
        label before its last ``/`` or ``:`` and before a pruning level's ``level_XX``
        folder (all rows one run when labels have neither).
    ax
        Axes to draw into; a new figure when None.
    random_state
        Seed of the SMACOF iterations, for a reproducible picture.
    annotate
        Write the last part of each run's first and last label beside its point.
    metric
        What the matrix holds, for the title (e.g. ``"NNSTD"``).

    Returns
    -------
    matplotlib.axes.Axes
        With the embedding's coordinates kept as ``ax.embedding_`` (``n x 2`` array) and its
        Kruskal stress-1 as ``ax.stress_`` (:func:`embedding_stress`).

    Raises
    ------
    InvalidTableError
        The matrix is not square, or ``runs`` has the wrong length.

    Notes
    -----
    A matrix of zeros (identical topologies) puts every snapshot at the origin.
    :class:`sklearn.manifold.MDS` on the precomputed (symmetrised) dissimilarities,
    initialised by classical MDS where scikit-learn offers it; SMACOF costs
    :math:`O(n^2)` per iteration for ``n`` snapshots. References: J. B. Kruskal,
    "Multidimensional scaling by optimizing goodness of fit to a nonmetric hypothesis",
    Psychometrika 29, 1964; J. de Leeuw, "Applications of convex analysis to
    multidimensional scaling", 1977 (SMACOF); S. Liu et al., ECML PKDD 2020 (NNSTD).
    """
    plt = pyplot()
    values = np.asarray(matrix_df, dtype=np.float64)
    if values.ndim != 2 or values.shape[0] != values.shape[1]:
        raise InvalidTableError(f"a distance matrix must be square, got shape {values.shape}")
    labels = [str(x) for x in getattr(matrix_df, "index", range(values.shape[0]))]
    if runs is None:
        runs = [_run_of(label) for label in labels]
    runs = [str(r) for r in runs]
    if len(runs) != len(labels):
        raise InvalidTableError(f"{len(runs)} run names for {len(labels)} snapshots")
    coords = _mds(values, random_state)
    stress = embedding_stress(values, coords)
    if ax is None:
        _, ax = plt.subplots(figsize=(7.6, 5.6), layout="constrained")
    names = list(dict.fromkeys(runs))
    colours = plt.get_cmap("tab10")(np.arange(len(names)) % 10)
    for name, colour in zip(names, colours):
        idx = np.flatnonzero(np.asarray(runs) == name)
        xy = coords[idx]
        # a pruning run's trajectory breaks where a level rewinds: no training joins them
        (path,) = _break_between_levels([_level_of(labels[i]) for i in idx], xy)
        ax.plot(path[:, 0], path[:, 1], "-", color=colour, alpha=0.6, linewidth=1.2)
        ax.scatter(xy[:, 0], xy[:, 1], s=14, color=colour, label=name, zorder=3)
        ax.scatter(*xy[0], s=70, facecolors="none", edgecolors=colour, linewidths=1.5,
                   zorder=4)
        ax.scatter(*xy[-1], s=120, marker="*", color=colour, edgecolors="black",
                   linewidths=0.5, zorder=4)
        if annotate:
            for i in {int(idx[0]), int(idx[-1])}:
                ax.annotate(_short(labels[i]), coords[i], fontsize=7, xytext=(4, 4),
                            textcoords="offset points")
    ax.scatter([], [], s=70, facecolors="none", edgecolors="0.3", label="start")
    ax.scatter([], [], s=120, marker="*", color="0.3", label="end")
    ax.set_xlabel("MDS dimension 1")
    ax.set_ylabel("MDS dimension 2")
    rating = _stress_rating(stress)
    ax.set_title(f"snapshots embedded by {metric} (metric MDS)\n"
                 f"Kruskal stress-1 {stress:.3f}: {rating}", fontsize=10)
    _legend_beside(ax, fontsize=8)
    ax.set_aspect("equal", adjustable="datalim")
    ax.embedding_ = coords
    ax.stress_ = stress
    if stress >= POOR_STRESS:
        import warnings

        warnings.warn(
            f"the MDS embedding fits poorly (Kruskal stress-1 {stress:.2f}, 0.2 or more is "
            "poor): distances in the plane do not show the distances of the matrix; read "
            "the matrix or its heatmap instead", EmbeddingWarning, stacklevel=2)
    return ax


#: Kruskal stress-1 from which an embedding is poor (Kruskal 1964: 0.2 poor, 0.1 fair, 0.05
#: good, 0.025 excellent).
POOR_STRESS = 0.2


class EmbeddingWarning(UserWarning):
    """An embedding's distances do not show the matrix's (a stress of :data:`POOR_STRESS`
    or more)."""


def embedding_stress(distances: Any, coords: np.ndarray) -> float:
    """Kruskal's stress-1 of a planar embedding of a distance matrix.

    ``sqrt(sum_{i<j} (d_ij - |x_i - x_j|)^2 / sum_{i<j} d_ij^2)``, with ``d`` the symmetrised
    matrix (metric MDS fits the distances themselves, so they are the disparities). 0 for a
    perfect fit; 0 also for a matrix of zeros embedded at one point.

    References
    ----------
    J. B. Kruskal, "Multidimensional scaling by optimizing goodness of fit to a nonmetric
    hypothesis", Psychometrika 29, 1964, pp. 1-27 (stress formula 1 and its verbal ratings).
    """
    values = np.asarray(distances, dtype=np.float64)
    sym = (values + values.T) / 2
    i, j = np.triu_indices(sym.shape[0], k=1)
    d = sym[i, j]
    fitted = np.linalg.norm(coords[i] - coords[j], axis=1)
    total = float(np.sum(d ** 2))
    return float(np.sqrt(np.sum((d - fitted) ** 2) / total)) if total > 0 else 0.0


def _stress_rating(stress: float) -> str:
    """Kruskal's words for a stress-1 value, by the band it lies in."""
    for limit, word in ((0.025, "excellent fit"), (0.05, "good fit"), (0.1, "fair fit"),
                        (POOR_STRESS, "between fair and poor")):
        if stress < limit:
            return word
    return "poor fit, distances in the plane are unreliable"


def plot_input_connectivity(counts: np.ndarray, input_shape: Sequence[int] | None = None,
                            epochs: Sequence[Any] | None = None, ax: Any = None,
                            n_panels: int = 6, cmap: str = "magma",
                            levels: Sequence[Any] | None = None,
                            titles: Sequence[str] | None = None) -> np.ndarray:
    """Maps of each input feature's outgoing connections at several points of training.

    Like the MNIST input-connectivity figure of Mocanu et al. (2018): under SET the
    connections of uninformative inputs (image borders) are pruned and regrown elsewhere,
    so the map concentrates on the informative inputs as training goes on.

    Parameters
    ----------
    counts
        ``(n_snapshots, n_inputs)`` array from :func:`topo.evolution.input_connectivity`.
    input_shape
        Shape of one input (e.g. ``(8, 8)`` for digits). A picture with channels (``(3, 32,
        32)`` or ``(32, 32, 3)``: the shorter of the first and last axes) is shown summed
        over its channels. When None: a square when ``n_inputs`` is a perfect square, else one row.
    epochs
        The epoch of every snapshot: panels are titled ``"epoch 5"``.
    levels
        With ``epochs``, the pruning level of every snapshot (iterative pruning restarts the
        epochs at every level): panels are titled ``"level 2 · epoch 5"``.
    titles
        The title of every snapshot's panel, as given (e.g. :func:`snapshot_titles` of an
        evolution table); overrides ``epochs`` and ``levels``. Without any of the three,
        panels are titled by the snapshot's position, ``"snapshot 3"``.
    ax
        Axes to draw into (a sequence of at least ``n_panels`` or as many as snapshots);
        a new one-row figure when None.
    n_panels
        How many snapshots to show, evenly spaced from the first to the last.
    cmap
        Matplotlib colormap name; one colour scale (0 to the overall maximum) for all maps.

    Returns
    -------
    numpy.ndarray
        The Axes of the maps, first snapshot first.

    Raises
    ------
    InvalidTableError
        ``counts`` is not 2-D or ``input_shape`` does not hold ``n_inputs`` values.
    """
    plt = pyplot()
    counts = np.asarray(counts)
    if counts.ndim != 2:
        raise InvalidTableError(
            f"counts must be (n_snapshots, n_inputs), got shape {counts.shape}")
    n_snapshots, n_inputs = counts.shape
    pictures = _pictures(counts, input_shape)
    shape = pictures.shape[1:]
    chosen = np.unique(np.linspace(0, n_snapshots - 1, min(n_panels, n_snapshots))
                       .round().astype(int))
    if titles is None:
        if epochs is None:
            titles = [f"snapshot {t}" for t in range(n_snapshots)]
        elif levels is None:
            titles = [f"epoch {e}" for e in epochs]
        else:
            titles = [f"level {lv} · epoch {e}" for lv, e in zip(levels, epochs)]
    titles = [str(t) for t in titles]
    if len(titles) != n_snapshots:
        raise InvalidTableError(f"{len(titles)} snapshot titles for {n_snapshots} snapshots")
    axes = _as_axes_list(ax, len(chosen))
    if axes is None:
        wide = shape[0] == 1
        fig, grid = plt.subplots(1, len(chosen), squeeze=False, constrained_layout=True,
                                 figsize=(2.2 * len(chosen) + 1.0, 1.4 if wide else 2.6))
        axes = list(grid.ravel())
    vmax = max(1, int(pictures.max()))
    image = None
    for a, t in zip(axes, chosen):
        image = a.imshow(pictures[t], cmap=cmap, vmin=0, vmax=vmax,
                         interpolation="nearest", aspect="equal" if shape[0] > 1 else "auto")
        a.set_title(titles[t], fontsize=9)
        a.set_xticks([])
        a.set_yticks([])
    axes[0].figure.colorbar(image, ax=axes[: len(chosen)], shrink=0.85,
                            label="outgoing connections")
    return np.asarray(axes[: len(chosen)], dtype=object)


def plot_interactions(frame: pandas.DataFrame, ax: Axes | None = None, top: int = 15,
                      truth: Sequence[Any] | None = None,
                      input_shape: Sequence[int] | None = None, auc: float | None = None,
                      method: str | None = None) -> Axes:
    """The strongest detected feature interactions, one dot per interaction with its value.

    Detected strengths are often close together and far from 0 (e.g. 8.1 to 8.6), where
    bars from 0 would all look the same length; each interaction is a dot at its strength,
    with its value written beside it, and the strength axis spans the values shown (starting
    at 0 only when the weakest shown is below half the strongest; otherwise the x label says
    that the axis does not start at 0).

    Parameters
    ----------
    frame
        Table of :func:`topo.interactions.interaction_strengths`: one row per candidate
        interaction with a strength column (``strength``, ``score`` or
        ``interaction_strength``) and a label column (``interaction``, ``features``,
        ``pair`` or ``set``), or the features as columns ``i``, ``j``, ... .
    ax
        Axes to draw into; a new figure when None.
    top
        How many of the strongest interactions to draw, strongest on top.
    truth
        The interactions known to be real, e.g. the ground truth of a synthetic benchmark
        (``run.json``'s ``interactions``): feature sets (tuples of 0-based indices; a
        detected interaction counts as true when its features lie inside one of them, the
        rule of Tsang et al. 2018's pairwise AUC) or labels as drawn (strings). True ones
        are drawn in a second colour.
    input_shape
        The shape of one input (e.g. ``(8, 8)``): features are then named by their
        coordinates, ``(row, column)``, instead of their flat index.
    auc
        The pairwise ROC AUC of the whole ranking against ``truth``
        (:func:`topo.interactions.interaction_auc`), written under the title.
    method
        The scoring method (``ph``, ``nid``, ...), named in the title.

    Returns
    -------
    matplotlib.axes.Axes
        ``ax.collections[0]`` holds one dot per interaction (offsets: strength, row; the
        strongest on the top row), ``ax.texts`` their values.

    Raises
    ------
    InvalidTableError
        No strength column was found.
    """
    plt = pyplot()
    frame = _table(frame)
    strength = next((c for c in (INTERACTION_COLUMNS[1], "score", "interaction_strength")
                     if c in frame.columns), None)
    if strength is None:
        raise InvalidTableError("the interaction table has no strength/score column")
    ordered = frame.sort_values(strength, ascending=False, kind="stable").head(top)
    labels = _interaction_labels(ordered, input_shape)
    sets = _interaction_sets(ordered)
    true = [_is_true(label, features, truth) for label, features in zip(labels, sets)]
    values = np.asarray(ordered[strength], dtype=np.float64)
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 0.3 * len(labels) + 1.6), layout="constrained")
    y = np.arange(len(labels))[::-1].astype(np.float64)
    colours = np.array(["tab:orange" if t else "tab:blue" for t in true])
    ax.scatter(values, y, s=28, c=list(colours), zorder=3)
    ax.grid(axis="y", color="0.9", linewidth=0.8)
    ax.set_axisbelow(True)
    finite = values[np.isfinite(values)]
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    from_zero = lo <= 0.5 * hi or hi <= 0
    left = min(0.0, lo) if from_zero else lo - 0.08 * (hi - lo or abs(hi) or 1.0)
    right = hi + 0.22 * ((hi - left) or abs(hi) or 1.0)
    ax.set_xlim(left, right)
    for value, yy in zip(values, y):
        ax.annotate(f"{value:.4g}", (value, yy), xytext=(5, 0), textcoords="offset points",
                    va="center", fontsize=7)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_ylim(-0.7, len(labels) - 0.3)
    ax.set_xlabel(f"interaction {strength}"
                  + ("" if from_zero else " (the axis does not start at 0)"))
    ax.set_ylabel("pixels (row, column)" if _picture(input_shape) else "features")
    title = f"strongest {_count(len(labels), 'interaction')}"
    if method:
        title += f" ({method})"
    if auc is not None:
        title += f"\npairwise AUC against the true interactions: {auc:.3f}"
    ax.set_title(title, fontsize=10)
    if any(true) or (truth is not None and len(truth)):
        from matplotlib.lines import Line2D

        _legend_beside(ax, handles=[
            Line2D([], [], marker="o", linestyle="none", color="tab:orange",
                   label="inside a true interaction"),
            Line2D([], [], marker="o", linestyle="none", color="tab:blue", label="not")],
            fontsize=7)
    return ax


#: How the last panel draws and names the run's train and test metric: the training loop's
#: train accuracy, MSE and loss are running means over the epoch's mini-batches while the
#: weights change (at epoch 0: the whole training set at initialisation); the test value is
#: measured once, after the epoch.
_METRIC_LINES = (("--", "train (mean over the epoch's batches; epoch 0: before training)"),
                 ("-", "test (after the epoch)"))


def _level_ticks(frame: Any) -> tuple[np.ndarray, list[str]]:
    """Positions of the first snapshot of every pruning level, labelled with the level and
    the network's density there (connections over possible connections, all layers)."""
    sums = frame.groupby("snapshot", sort=True)[["connections", "possible"]].sum() \
        if {"connections", "possible"} <= set(frame.columns) else None
    per_snapshot = frame.drop_duplicates("snapshot")
    changed = per_snapshot["level"].ne(per_snapshot["level"].shift()).to_numpy()
    starts = per_snapshot["snapshot"].to_numpy()[changed]
    levels = per_snapshot["level"].to_numpy()[changed]
    labels = []
    for start, level in zip(starts, levels):
        label = f"L{int(level)}"
        if sums is not None and sums.loc[start, "possible"] > 0:
            density = sums.loc[start, "connections"] / sums.loc[start, "possible"]
            label += f"\n{_percent(density)}"
        labels.append(label)
    return starts, labels


def _level_segments(part: Any, x_column: str, column: str) -> tuple[np.ndarray, np.ndarray]:
    """A series' x and y, with a NaN between two pruning levels so that its line breaks there.

    Iterative pruning rewinds the weights at every level: the step from a level's last
    snapshot to the next level's first is no change that happened during training, and a
    line drawn across it would show one. Without a ``level`` column the series is whole.
    """
    x = part[x_column].to_numpy(dtype=np.float64)
    y = part[column].to_numpy(dtype=np.float64)
    if "level" not in part.columns:
        return x, y
    x, y = _break_between_levels(part["level"].to_list(), x, y)
    return x, y


def _break_between_levels(levels: Sequence[Any], *series: np.ndarray) -> list[np.ndarray]:
    """Each series (rows along its first axis, one per snapshot) with a row of NaN inserted
    wherever the snapshot's pruning level changes, so that a line drawn through it breaks."""
    breaks = [k for k in range(1, len(levels)) if levels[k] != levels[k - 1]]
    return [np.insert(np.asarray(s, dtype=np.float64), breaks, np.nan, axis=0) for s in series]


def _percent(fraction: float) -> str:
    """A density as a percentage with two significant digits (``80%``, ``4.1%``, ``0.52%``)."""
    value = 100.0 * float(fraction)
    if value >= 10 or value == 0:
        return f"{value:.0f}%"
    return f"{value:.2g}%"


def _itop_panel(frame: Any) -> tuple[str, str, str]:
    """The fourth panel: the ITOP rate, or the density when the ITOP rate says nothing.

    The ITOP rate of a run that starts dense (IMP, GMP) or never adds a connection (a
    static mask) stays at its first value in every layer; such a run's story is its
    density, which is drawn instead."""
    column, title = next(((c, t) for c, t in _ITOP_COLUMNS
                          if c in frame.columns and frame[c].notna().any()), (None, ""))
    if column is None:
        if "density" in frame.columns:
            return "density", "density (connections / possible)", "density"
        return "itop_rate_snapshots", "in-time over-parameterisation", "ITOP rate"
    spread = frame.groupby("layer")[column].agg(lambda v: np.nanmax(v) - np.nanmin(v))
    if "density" in frame.columns and bool((spread <= 1e-12).all()):
        return "density", "density (connections / possible)", "density"
    return column, title, "ITOP rate"


def _metric_panel(ax: Axes, frame: Any, x_column: str) -> None:
    """The last panel: the run's train and test accuracy, else MSE (regression), else loss."""
    chosen = next(((panel, [c for c in panel[2] if c in frame.columns
                            and frame[c].notna().any()]) for panel in _METRIC_PANELS
                   if any(c in frame.columns and frame[c].notna().any() for c in panel[2])),
                  None)
    if chosen is None:
        ax.set_title("accuracy", fontsize=10)
        ax.text(0.5, 0.5, "no accuracy, MSE or loss in the run's metrics", ha="center",
                va="center", transform=ax.transAxes, color="0.4", fontsize=8)
        return
    (title, y_label, pair, log), columns = chosen
    ax.set_title(title, fontsize=10)
    ax.set_ylabel(y_label)
    per_snapshot = frame.drop_duplicates("snapshot")
    for column, (style, label) in zip(pair, _METRIC_LINES):
        if column in columns:
            ax.plot(*_level_segments(per_snapshot, x_column, column), style, color="black",
                    marker="o", markersize=2.5, linewidth=1.3, label=label)
    values = np.concatenate([per_snapshot[c].to_numpy(dtype=np.float64) for c in columns])
    positive = values[np.isfinite(values) & (values > 0)]
    if log and positive.size and positive.max() > 20 * positive.min():
        ax.set_yscale("log")
        ax.set_ylabel(f"{y_label} (log scale)")
    elif not log:
        ax.set_ylim(-0.02, 1.02)
    else:
        _from_zero(ax)


def _from_zero(ax: Axes) -> None:
    """A y axis from 0 with a margin below it, so that a series at 0 (a layer that never
    changes) is drawn whole above the axis rather than half hidden under it."""
    top = ax.get_ylim()[1]
    ax.set_ylim(-0.02 * top if top > 0 else -0.02, top if top > 0 else 1.0)


def _legend_beside(ax: Axes, **kwargs: Any) -> Any:
    """The Axes' legend to its right, outside the data area, so that it hides no data
    (inside, ``loc="best"`` still covers points when every corner holds some)."""
    return ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), borderaxespad=0.0,
                     **kwargs)


def _integer_locator() -> Any:
    """Ticks on whole numbers only: epochs and snapshot positions have no fractions."""
    from matplotlib.ticker import MaxNLocator

    return MaxNLocator(integer=True, min_n_ticks=1)


def _mds(values: np.ndarray, random_state: int) -> np.ndarray:
    import inspect

    from sklearn.manifold import MDS

    n = values.shape[0]
    sym = (values + values.T) / 2
    np.fill_diagonal(sym, 0.0)
    if n == 1 or not np.any(sym):
        # every snapshot at distance 0 from every other: one point, at the origin (SMACOF
        # would divide by the zero sum of squared distances at every iteration)
        return np.zeros((n, 2))
    params = inspect.signature(MDS).parameters
    if "metric_mds" in params:
        model = MDS(n_components=2, metric="precomputed", metric_mds=True,
                    init="classical_mds", random_state=random_state)
    else:
        model = MDS(n_components=2, dissimilarity="precomputed", n_init=4,
                    random_state=random_state)
    return np.asarray(model.fit_transform(sym), dtype=np.float64)


def _run_of(label: str) -> str:
    """The run part of a snapshot label: before its last ``/`` or ``:``, and before a pruning
    level's folder (``imp/level_02/epoch_0003`` is a snapshot of ``imp``)."""
    for sep in ("/", ":"):
        if sep in label:
            run, _ = _split_snapshot(label, sep)
            return run or "run"
    return "run"


def _level_of(label: str) -> int | None:
    """The pruning level a snapshot label names (``imp/level_02/epoch_0003`` gives 2)."""
    m = re.search(r"(?:^|[/:])level_(\d+)[/:]", label)
    return int(m.group(1)) if m else None


def _short(label: str) -> str:
    """The snapshot part of a label (``level_02/epoch_0003`` keeps its level)."""
    for sep in ("/", ":"):
        if sep in label:
            label = _split_snapshot(label, sep)[1]
            break
    return label.removesuffix(".safetensors")


def _split_snapshot(label: str, sep: str) -> tuple[str, str]:
    parts = label.split(sep)
    cut = len(parts) - 1
    if cut >= 1 and re.fullmatch(r"level_\d+", parts[cut - 1]):
        cut -= 1
    return sep.join(parts[:cut]), sep.join(parts[cut:])


def _pictures(counts: np.ndarray, input_shape: Sequence[int] | None) -> np.ndarray:
    """``(n_snapshots, height, width)`` pictures of per-input values."""
    n_snapshots, n_inputs = counts.shape
    if input_shape is None:
        side = int(round(np.sqrt(n_inputs)))
        shape = (side, side) if side * side == n_inputs else (1, n_inputs)
        return counts.reshape(n_snapshots, *shape)
    shape = tuple(int(s) for s in input_shape)
    if int(np.prod(shape)) != n_inputs:
        raise InvalidTableError(f"input shape {shape} does not hold {n_inputs} inputs")
    stacked = counts.reshape(n_snapshots, *shape)
    if len(shape) == 2:
        return stacked
    if len(shape) == 3:
        channel_axis = 1 if shape[0] <= shape[-1] else 3  # the shorter end is the channels
        return stacked.sum(axis=channel_axis)
    return counts.reshape(n_snapshots, 1, n_inputs)


def _table(result: Any) -> Any:
    """The table of a result object (its ``to_frame()``), or the table itself."""
    to_frame = getattr(result, "to_frame", None)
    return to_frame() if callable(to_frame) and not hasattr(result, "columns") else result


def _interaction_sets(frame: Any) -> list[tuple[int, ...] | None]:
    """The feature indices of every row, where the table gives them as indices."""
    for column in ("interaction", INTERACTION_COLUMNS[0], "pair", "set"):
        if column in frame.columns:
            return [tuple(sorted(int(x) for x in v))
                    if isinstance(v, (list, tuple, set, frozenset, np.ndarray)) else None
                    for v in frame[column]]
    index_columns = [c for c in ("i", "j", "k", "l") if c in frame.columns]
    if index_columns:
        return [tuple(sorted(int(x) for x in row))
                for row in frame[index_columns].itertuples(index=False)]
    return [None] * len(frame)


def _interaction_labels(frame: Any, input_shape: Sequence[int] | None = None) -> list[str]:
    for column in ("interaction", INTERACTION_COLUMNS[0], "pair", "set"):
        if column in frame.columns:
            return [_format_features(v, input_shape) for v in frame[column]]
    index_columns = [c for c in ("i", "j", "k", "l") if c in frame.columns]
    if index_columns:
        return [_format_features(tuple(row), input_shape)
                for row in frame[index_columns].itertuples(index=False)]
    return [str(v) for v in frame.index]


def _format_features(value: Any, input_shape: Sequence[int] | None = None) -> str:
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        features = sorted(int(v) for v in value)
        if _picture(input_shape):
            shape = tuple(int(s) for s in input_shape)
            coords = np.unravel_index(features, shape)
            return "{" + ", ".join("(" + ", ".join(str(int(c[i])) for c in coords) + ")"
                                   for i in range(len(features))) + "}"
        return "{" + ", ".join(str(v) for v in features) + "}"
    return str(value)


def _picture(input_shape: Sequence[int] | None) -> bool:
    """Whether inputs of this shape have coordinates worth naming (two axes or more)."""
    return input_shape is not None and len(tuple(input_shape)) >= 2


def _is_true(label: str, features: tuple[int, ...] | None,
             truth: Sequence[Any] | None) -> bool:
    """Whether a detected interaction is real: its label is one of the true labels, or its
    features lie inside one of the true feature sets."""
    if not truth:
        return False
    for t in truth:
        if isinstance(t, str):
            if t == label:
                return True
        elif features is not None and set(features) <= {int(x) for x in t}:
            return True
    return False


def pyplot() -> Any:
    """``matplotlib.pyplot``, with the non-interactive Agg backend when the user chose none
    (no ``MPLBACKEND`` and pyplot not imported yet), for figures of one's own in topo's
    style of use (scripts, servers without a display)."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _cluster_order(values: np.ndarray) -> np.ndarray:
    """Leaf order of an average-linkage clustering of a distance matrix."""
    from scipy.cluster.hierarchy import leaves_list, linkage
    from scipy.spatial.distance import squareform

    n = values.shape[0]
    if n < 3:
        return np.arange(n)
    sym = (values + values.T) / 2
    finite = np.isfinite(sym)
    fill = sym[finite].max() if finite.any() else 0.0
    sym = np.where(finite, sym, fill)
    np.fill_diagonal(sym, 0.0)
    condensed = squareform(np.clip(sym, 0.0, None), checks=False)
    return leaves_list(linkage(condensed, method="average", optimal_ordering=True))


def _row_labels(frame: Any) -> list[str]:
    """Per row of a per-layer table: its :func:`layer_label` on two lines (``"all"`` for a
    pooled row)."""
    if "layer" in frame.columns:
        names = frame["name"] if "name" in frame.columns else [""] * len(frame)
        return [str(layer) if str(layer) == "all" else
                layer_label(layer, name).replace(": ", "\n", 1).replace(" (", "\n(", 1)
                for layer, name in zip(frame["layer"], names)]
    if "name" in frame.columns:
        return [str(x) for x in frame["name"]]
    return [str(x) for x in frame.index]


#: Size of tick labels that name snapshots, in points.
_TICK_FONTSIZE = 8.0


def _label_step(ax: Axes, n: int, fontsize: float) -> int:
    """Write every k-th of ``n`` labels along the Axes' height, so each gets 1.15 lines."""
    height = ax.get_position().height * ax.figure.get_figheight() * 72.0  # points
    return max(1, int(np.ceil(n * fontsize * 1.15 / max(height, 1.0))))


def _count(n: int, noun: str) -> str:
    """``"1 pair"``, ``"2 pairs"``: a count with its noun in the right number."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _ordinal(k: int) -> str:
    suffix = "th" if 10 <= k % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(k % 10, "th")
    return f"{k}{suffix}"


def layer_label(layer: Any, name: Any) -> str:
    """How figures name a layer: ``"layer 1: fc2"``, or ``"layer 1 (module 2)"`` for the
    bare module numbers of a PyTorch ``Sequential`` (``"2.weight"``), and ``"layer 1"``
    when the name says nothing more."""
    name = str(name)
    if name.isdigit():
        return f"layer {layer} (module {name})"
    if name in ("", f"layer{layer}"):
        return f"layer {layer}"
    return f"layer {layer}: {name}"


def snapshot_titles(frame: Any) -> list[str]:
    """One title per snapshot of an evolution table: ``"epoch 5"``, or ``"level 2 · epoch 5"``
    for a run with pruning levels (where epochs restart at every level)."""
    per_snapshot = frame.drop_duplicates("snapshot")
    if "level" in per_snapshot.columns:
        return [f"level {int(lv)} · epoch {int(e)}"
                for lv, e in zip(per_snapshot["level"], per_snapshot["epoch"])]
    return [f"epoch {int(e)}" for e in per_snapshot["epoch"]]


def _as_axes_list(ax: Any, n: int) -> list[Any] | None:
    if ax is None:
        return None
    if isinstance(ax, (Sequence, np.ndarray)):
        axes = list(np.ravel(np.asarray(ax, dtype=object)))
    else:
        axes = [ax]
    if len(axes) < n:
        raise ConfigError(f"this figure needs {n} axes, got {len(axes)}")
    return axes


# --------------------------------------------------------- persistence (topo.persistence)
def plot_persistence_diagram(diagram: np.ndarray, ax: Axes | None = None,
                             title: str | None = None) -> Axes:
    """One 0-dimensional persistence diagram: ``(birth, death)`` points and the diagonal.

    Parameters
    ----------
    diagram
        Array of shape ``(n, 2)`` from :func:`topo.persistence.persistence_diagrams`
        (super-level filtration: birth >= death, both in [0, 1]).
    ax
        Axes to draw into; a new figure when None.
    title
        Panel title (e.g. the layer name).

    Returns
    -------
    matplotlib.axes.Axes
    """
    plt = pyplot()
    diagram = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    if ax is None:
        _, ax = plt.subplots(figsize=(3.6, 3.4))
    ax.plot([0, 1.05], [0, 1.05], color="0.6", lw=0.8, zorder=1)
    ax.scatter(diagram[:, 0], diagram[:, 1], s=10, alpha=0.35, color="tab:blue", zorder=2,
               label=_count(len(diagram), "pair"))
    ax.set_xlim(-0.02, 1.07)
    ax.set_ylim(-0.02, 1.07)
    ax.set_xlabel("birth (normalised |w|)")
    ax.set_ylabel("death (normalised |w|)")
    ax.legend(fontsize=7, loc="upper left")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_persistence_diagrams(diagrams: Sequence[np.ndarray], ax: Any = None,
                              names: Sequence[str] | None = None,
                              kind: str = "auto") -> np.ndarray:
    """Every layer's 0-dimensional persistence, one panel each.

    Parameters
    ----------
    diagrams
        The list returned by :func:`topo.persistence.persistence_diagrams`.
    ax
        A sequence of at least ``len(diagrams)`` Axes; a new figure when None.
    names
        Layer names, shown as :func:`layer_label` in the panel titles; ``layer 0``,
        ``layer 1``, ... by default.
    kind
        ``"deaths"``: :func:`plot_death_histogram` of every layer; ``"diagram"``:
        :func:`plot_persistence_diagram`; ``"auto"`` (default): the death histograms when
        every birth of every diagram is the same (topo's filtrations: all births at 1, where
        a diagram would be one vertical line of overplotted points), else the diagrams.

    Returns
    -------
    numpy.ndarray
        The Axes drawn into, one per layer.

    Raises
    ------
    ConfigError
        An unknown ``kind``.
    """
    if kind not in ("auto", "deaths", "diagram"):
        raise ConfigError(f"unknown kind {kind!r}; use 'auto', 'deaths' or 'diagram'")
    plt = pyplot()
    n = len(diagrams)
    names = list(names) if names is not None else [""] * n
    arrays = [np.asarray(d, dtype=np.float64).reshape(-1, 2) for d in diagrams]
    if kind == "auto":
        births = np.concatenate([d[:, 0] for d in arrays]) if arrays else np.ones(0)
        kind = "deaths" if births.size == 0 or np.all(births == births[0]) else "diagram"
    axes = _as_axes_list(ax, n)
    if axes is None:
        fig, grid = plt.subplots(1, max(n, 1), figsize=(3.6 * max(n, 1), 3.5), squeeze=False,
                                 constrained_layout=True)
        axes = list(grid.ravel())
    draw = plot_death_histogram if kind == "deaths" else plot_persistence_diagram
    for k, diagram in enumerate(arrays):
        draw(diagram, ax=axes[k], title=layer_label(k, names[k]))
    if ax is None and kind == "deaths" and n:
        fig.suptitle("0-dimensional persistence of each layer: every unit is born at 1, a "
                     "component dies at the normalised |w| of the edge that merges it",
                     fontsize=9)
    return np.asarray(axes[:n], dtype=object)


def plot_death_histogram(diagram: np.ndarray, ax: Axes | None = None,
                         title: str | None = None, bins: int = 40) -> Axes:
    """Histogram of the deaths of a 0-dimensional diagram whose births are all 1.

    In topo's super-level filtration every unit is born at normalised weight 1 and a
    component dies at the normalised ``|w|`` of the edge that merges it into another, so the
    deaths (persistence = 1 - death) are all the diagram says. Pairs that die at exactly 0
    (the component that survives, one per connected part of the layer) are counted in the
    title rather than drawn as a bar. The figure has no legend: the title's second line
    says how many merges the bars hold and how many pairs die at 0, hiding no bar.

    Parameters
    ----------
    diagram
        Array of shape ``(n, 2)`` of ``(birth, death)`` pairs (from
        :func:`topo.persistence.persistence_diagrams`).
    ax
        Axes to draw into; a new figure when None.
    title
        Panel title (e.g. the layer's :func:`layer_label`), above the counts.
    bins
        Number of equal bins over ``(0, 1]``.

    Returns
    -------
    matplotlib.axes.Axes
        The bars hold the counts of the deaths above 0 per bin.
    """
    plt = pyplot()
    diagram = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    deaths = diagram[:, 1]
    at_zero = int(np.count_nonzero(deaths <= 0))
    merges = deaths[deaths > 0]
    if ax is None:
        _, ax = plt.subplots(figsize=(3.8, 3.2))
    ax.hist(merges, bins=np.linspace(0.0, 1.0, bins + 1), color="tab:blue",
            edgecolor="white", linewidth=0.4)
    ax.set_xlim(0, 1)
    ax.set_xlabel("death (normalised |w| of the merging edge)")
    ax.set_ylabel("pairs")
    counts = (f"{_count(merges.size, 'merge')} above 0, "
              f"{_count(at_zero, 'pair')} dying at 0")
    ax.set_title(f"{title}\n{counts}" if title else counts, fontsize=9)
    return ax


def plot_barcode(diagram: np.ndarray, ax: Axes | None = None, max_bars: int = 200,
                 title: str | None = None) -> Axes:
    """Barcode of a 0-dimensional diagram: one bar per pair, from its death to its birth.

    The filtration runs from weight 1 down to 0, so each bar spans ``[death, birth]``; bars are
    sorted by persistence, longest on top. Only the ``max_bars`` longest are drawn.

    Returns
    -------
    matplotlib.axes.Axes
    """
    plt = pyplot()
    diagram = np.asarray(diagram, dtype=np.float64).reshape(-1, 2)
    pers = diagram[:, 0] - diagram[:, 1]
    order = np.argsort(-pers, kind="stable")[:max_bars]
    if ax is None:
        _, ax = plt.subplots(figsize=(5.0, 3.4))
    y = np.arange(order.size)[::-1]
    ax.hlines(y, diagram[order, 1], diagram[order, 0], color="tab:blue", lw=1.2)
    ax.set_xlim(-0.02, 1.05)
    ax.set_xlabel("normalised |w| (filtration runs from 1 to 0)")
    ax.set_ylabel("pair (longest on top)")
    ax.set_yticks([])
    shown = f"{order.size} of {len(diagram)} bars" if order.size < len(diagram) else \
        _count(len(diagram), "bar")
    ax.set_title(f"{title}: {shown}" if title else shown, fontsize=9)
    return ax
