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
    "plot_input_connectivity",
    "plot_interactions",
    "plot_persistence_diagram",
    "plot_persistence_diagrams",
    "plot_barcode",
]

_COMPARISON_SERIES = tuple(zip(
    ("nnstd", "jaccard", "jaccard_aligned", "jaccard_chance"),  # of COMPARISON_COLUMNS
    ("NNSTD", "Jaccard (raw)", "Jaccard (aligned)", "Jaccard (chance)"),
    ("tab:red", "tab:blue", "tab:green", "0.6"),
    (None, None, None, "//"),
))


def plot_distance_matrix(matrix_df: pandas.DataFrame, ax: Axes | None = None,
                         order: str | None = "cluster", cmap: str = "viridis",
                         annotate: bool | None = None) -> Axes:
    """Heatmap of a square distance matrix, rows and columns ordered by clustering.

    Parameters
    ----------
    matrix_df
        Square DataFrame of pairwise distances (e.g. NNSTD from
        :func:`topo.distance.distance_matrix`); its index labels the rows and columns.
    ax
        Axes to draw into; a new figure when None.
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
        The Axes holding the heatmap (with a colorbar beside it).

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
    ax.figure.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="distance")
    ticks = np.arange(len(labels))
    ax.set_xticks(ticks, labels, rotation=90, fontsize=_tick_fontsize(len(labels)))
    ax.set_yticks(ticks, labels, fontsize=_tick_fontsize(len(labels)))
    if annotate is None:
        annotate = len(labels) <= 12
    if annotate:
        finite = values[np.isfinite(values)]
        middle = (finite.min() + finite.max()) / 2 if finite.size else 0.0
        for i, j in np.ndindex(values.shape):
            if np.isfinite(values[i, j]):
                ax.text(j, i, f"{values[i, j]:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if values[i, j] < middle else "black")
    ax.set_title("topology distance" + (" (clustered)" if order == "cluster" else ""))
    return ax


def plot_comparison(frame: Comparison | pandas.DataFrame, ax: Axes | None = None) -> Axes:
    """Per-layer grouped bars comparing two topologies.

    Parameters
    ----------
    frame
        A :class:`~topo.comparison.Comparison` (``topo.compare(a, b)``) or its table (the
        table of ``topo compare``), with one row per layer (a pooled row ``"all"`` is drawn
        too when present) and any of the columns ``nnstd``, ``jaccard``,
        ``jaccard_aligned`` (Jaccard after neuron matching) and ``jaccard_chance`` (what two
        random masks of the same densities share). Missing columns are skipped; a column
        with no value (all NaN, e.g. the chance level of layers whose widths differ) draws no
        bars and its legend entry says ``n/a``. Rows are labelled by ``name`` when present,
        else by ``layer``.
    ax
        Axes to draw into; a new figure when None.

    Returns
    -------
    matplotlib.axes.Axes

    Raises
    ------
    InvalidTableError
        The frame holds none of the columns above.
    """
    plt = pyplot()
    frame = _table(frame)
    series = [s for s in _COMPARISON_SERIES if s[0] in frame.columns]
    if not series:
        raise InvalidTableError("the comparison table has none of the columns "
                         + ", ".join(s[0] for s in _COMPARISON_SERIES))
    labels = _row_labels(frame)
    if ax is None:
        _, ax = plt.subplots(figsize=(max(5.0, 1.2 * len(labels) + 2.5), 3.8))
    x = np.arange(len(labels))
    width = 0.8 / len(series)
    for i, (column, label, colour, hatch) in enumerate(series):
        heights = np.asarray(frame[column], dtype=np.float64)
        if np.isnan(heights).all():
            # e.g. no chance level for layers of different widths: say so, draw no bars
            label = f"{label}: n/a"
            heights = np.zeros_like(heights)
        ax.bar(x - 0.4 + width * (i + 0.5), np.nan_to_num(heights), width, label=label,
               color=colour, hatch=hatch, edgecolor="white" if hatch is None else "0.3")
    ax.set_xticks(x, labels)
    ax.set_xlabel("layer")
    ax.set_ylabel("NNSTD / Jaccard index")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, ncols=min(4, len(series)), loc="upper center",
              bbox_to_anchor=(0.5, -0.18), frameon=False)
    ax.set_title("topology distance and mask overlap per layer")
    return ax


#: Panels of :func:`plot_evolution`: (column, title, y label); the last one draws the run's
#: train and test accuracy.
_EVOLUTION_PANELS = (
    ("nnstd_to_first", "NNSTD to the first snapshot", "NNSTD"),
    ("nnstd_to_previous", "NNSTD to the previous snapshot", "NNSTD"),
    ("churn", "churn (removed / previous connections)", "churn rate"),
    ("itop_rate", "in-time over-parameterisation (exact)", "ITOP rate"),
    ("jaccard_to_first", "Jaccard index to the first snapshot", "Jaccard index"),
    ("accuracy", "accuracy", "accuracy"),
)


def plot_evolution(frame: pandas.DataFrame, ax: Any = None) -> np.ndarray:
    """The evolution panel of a run: six small plots against epoch, one line per layer.

    Panels: NNSTD to the first and to the previous snapshot, churn rate, in-time
    over-parameterisation (ITOP) rate (fraction of possible connections ever active: the
    exact ``itop_rate`` the run recorded, else ``itop_rate_snapshots``, titled as the lower
    bound it is), raw Jaccard index to the first snapshot, and the run's train/test
    accuracy. A panel whose columns are missing says so instead of drawing.

    Parameters
    ----------
    frame
        The table of :func:`topo.evolution.topology_evolution` (columns ``epoch``, ``layer``,
        ``name`` and the panels' columns; ``train_accuracy``/``test_accuracy`` for the last
        panel). When it has a ``level`` column (iterative pruning), snapshots are plotted by
        their position instead of their epoch.
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
    level_starts = []
    if by_position:
        x_label = "snapshot (dotted: a new pruning level begins)"
        per_snapshot = frame.drop_duplicates("snapshot")
        changed = per_snapshot["level"].ne(per_snapshot["level"].shift()).to_numpy()
        level_starts = per_snapshot["snapshot"].to_numpy()[changed][1:]
    layers = frame.drop_duplicates("layer")[["layer", "name"]].itertuples(index=False)
    layers = list(layers)
    colours = plt.get_cmap("viridis")(np.linspace(0.0, 0.85, max(1, len(layers))))
    handles = []
    for a, (column, title, y_label) in zip(axes, _EVOLUTION_PANELS):
        a.set_title(title, fontsize=10)
        a.set_xlabel(x_label, fontsize=9 if by_position else None)
        a.set_ylabel(y_label)
        a.grid(alpha=0.3)
        for start in level_starts:
            a.axvline(start - 0.5, color="0.5", linestyle=":", linewidth=1)
        if column == "accuracy":
            _accuracy_panel(a, frame, x_column)
            continue
        if column == "itop_rate" and (column not in frame.columns
                                      or frame[column].isna().all()):
            column = "itop_rate_snapshots"   # what the snapshots show: a lower bound
            a.set_title("in-time over-parameterisation (lower bound: snapshots)",
                        fontsize=10)
        if column not in frame.columns or frame[column].isna().all():
            a.text(0.5, 0.5, f"{column}: not available", ha="center", va="center",
                   transform=a.transAxes, color="0.4")
            continue
        for (layer, name), colour in zip(layers, colours):
            part = frame[frame["layer"] == layer]
            (line,) = a.plot(part[x_column], part[column], marker="o", markersize=2.5,
                             linewidth=1.3, color=colour, label=f"{layer}: {name}")
            if column == "nnstd_to_first":
                handles.append(line)
        if column in ("itop_rate", "itop_rate_snapshots", "jaccard_to_first"):
            a.set_ylim(-0.02, 1.02)
        else:
            a.set_ylim(bottom=0)
    if not handles:
        handles = [plt.Line2D([], [], color=c, label=f"{layer}: {name}")
                   for (layer, name), c in zip(layers, colours)]
    axes[0].figure.legend(handles=handles, title="layer", loc="outside lower center",
                          ncols=min(6, len(handles)), fontsize=8)
    return np.asarray(axes[: len(_EVOLUTION_PANELS)], dtype=object)


def plot_embedding(matrix_df: pandas.DataFrame, runs: Sequence[str] | None = None,
                   ax: Axes | None = None, random_state: int = 0,
                   annotate: bool = True) -> Axes:
    """A 2-D map of many snapshots from their NNSTD matrix, with each run's trajectory.

    Metric multidimensional scaling places the snapshots in the plane so that their
    Euclidean distances approximate the given topology distances; each run's snapshots are
    joined in order, its start drawn as an open circle and its end as a filled star, so runs
    that rewire towards one another, or drift apart, can be seen.

    Parameters
    ----------
    matrix_df
        Square DataFrame of pairwise distances, index = snapshot labels, rows in time order
        within each run.
    runs
        The run each row belongs to (same length as the matrix); by default the part of the
        label before its last ``/`` or ``:`` (all rows one run when labels have neither).
    ax
        Axes to draw into; a new figure when None.
    random_state
        Seed of the SMACOF iterations, for a reproducible picture.
    annotate
        Write the last part of each run's first and last label beside its point.

    Returns
    -------
    matplotlib.axes.Axes
        With the embedding's coordinates kept as ``ax.embedding_`` (``n x 2`` array).

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
    if ax is None:
        _, ax = plt.subplots(figsize=(6.4, 5.4))
    names = list(dict.fromkeys(runs))
    colours = plt.get_cmap("tab10")(np.arange(len(names)) % 10)
    for name, colour in zip(names, colours):
        idx = np.flatnonzero(np.asarray(runs) == name)
        xy = coords[idx]
        ax.plot(xy[:, 0], xy[:, 1], "-", color=colour, alpha=0.6, linewidth=1.2)
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
    ax.set_title("snapshots embedded by topology distance (MDS)")
    ax.legend(fontsize=8, loc="best")
    ax.set_aspect("equal", adjustable="datalim")
    ax.embedding_ = coords
    return ax


def plot_input_connectivity(counts: np.ndarray, input_shape: Sequence[int] | None = None,
                            epochs: Sequence[Any] | None = None, ax: Any = None,
                            n_panels: int = 6, cmap: str = "magma") -> np.ndarray:
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
        Label of every snapshot (default: its position).
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
    labels = list(range(n_snapshots)) if epochs is None else list(epochs)
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
        a.set_title(f"epoch {labels[t]}", fontsize=9)
        a.set_xticks([])
        a.set_yticks([])
    axes[0].figure.colorbar(image, ax=axes[: len(chosen)], shrink=0.85,
                            label="outgoing connections")
    return np.asarray(axes[: len(chosen)], dtype=object)


def plot_interactions(frame: pandas.DataFrame, ax: Axes | None = None, top: int = 15,
                      truth: Sequence[Any] | None = None) -> Axes:
    """Horizontal bars of the strongest detected feature interactions.

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
        Labels (as drawn) of interactions known to be real, e.g. those planted in a
        synthetic benchmark; their bars are drawn in a second colour.

    Returns
    -------
    matplotlib.axes.Axes

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
    ordered = frame.sort_values(strength, ascending=False).head(top)
    labels = _interaction_labels(ordered)
    truth_set = {str(t) for t in truth} if truth is not None else set()
    if ax is None:
        _, ax = plt.subplots(figsize=(6.0, 0.3 * len(labels) + 1.4))
    y = np.arange(len(labels))[::-1]
    colours = ["tab:orange" if label in truth_set else "tab:blue" for label in labels]
    ax.barh(y, np.asarray(ordered[strength], dtype=np.float64), color=colours)
    ax.set_yticks(y, labels, fontsize=8)
    ax.set_xlabel(f"interaction {strength}")
    ax.set_ylabel("features")
    ax.set_title(f"strongest {len(labels)} interactions")
    if truth_set:
        from matplotlib.patches import Patch

        ax.legend(handles=[Patch(color="tab:orange", label="planted"),
                           Patch(color="tab:blue", label="other")], fontsize=8)
    return ax


def _accuracy_panel(ax: Axes, frame: Any, x_column: str) -> None:
    columns = [c for c in ("train_accuracy", "test_accuracy") if c in frame.columns
               and frame[c].notna().any()]
    if not columns:
        ax.text(0.5, 0.5, "accuracy: not available", ha="center", va="center",
                transform=ax.transAxes, color="0.4")
        return
    per_snapshot = frame.drop_duplicates("snapshot")
    for column, style in zip(columns, ("--", "-")):
        ax.plot(per_snapshot[x_column], per_snapshot[column], style, color="black",
                marker="o", markersize=2.5, linewidth=1.3, label=column.replace("_", " "))
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=8, loc="lower right")


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
    for sep in ("/", ":"):
        if sep in label:
            return label.rsplit(sep, 1)[0]
    return "run"


def _short(label: str) -> str:
    for sep in ("/", ":"):
        if sep in label:
            label = label.rsplit(sep, 1)[1]
    return label.removesuffix(".safetensors")


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


def _interaction_labels(frame: Any) -> list[str]:
    for column in ("interaction", INTERACTION_COLUMNS[0], "pair", "set"):
        if column in frame.columns:
            return [_format_features(v) for v in frame[column]]
    index_columns = [c for c in ("i", "j", "k", "l") if c in frame.columns]
    if index_columns:
        return ["{" + ", ".join(str(v) for v in row) + "}"
                for row in frame[index_columns].itertuples(index=False)]
    return [str(v) for v in frame.index]


def _format_features(value: Any) -> str:
    if isinstance(value, (list, tuple, set, frozenset, np.ndarray)):
        return "{" + ", ".join(str(v) for v in sorted(value)) + "}"
    return str(value)


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
    if "name" in frame.columns:
        return [str(x) for x in frame["name"]]
    if "layer" in frame.columns:
        return [str(x) for x in frame["layer"]]
    return [str(x) for x in frame.index]


def _tick_fontsize(n: int) -> float:
    return 8.0 if n <= 20 else max(4.0, 8.0 - (n - 20) / 10)


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
               label=f"{len(diagram)} pairs")
    ax.set_xlim(-0.02, 1.07)
    ax.set_ylim(-0.02, 1.07)
    ax.set_xlabel("birth (normalised |w|)")
    ax.set_ylabel("death (normalised |w|)")
    ax.legend(fontsize=7, loc="upper left")
    if title:
        ax.set_title(title, fontsize=9)
    return ax


def plot_persistence_diagrams(diagrams: Sequence[np.ndarray], ax: Any = None,
                              names: Sequence[str] | None = None) -> np.ndarray:
    """The persistence diagram of every layer, one panel each.

    Parameters
    ----------
    diagrams
        The list returned by :func:`topo.persistence.persistence_diagrams`.
    ax
        A sequence of at least ``len(diagrams)`` Axes; a new figure when None.
    names
        Panel titles (layer names); ``layer0``, ``layer1``, ... by default.

    Returns
    -------
    numpy.ndarray
        The Axes drawn into, one per layer.
    """
    plt = pyplot()
    n = len(diagrams)
    names = list(names) if names is not None else [f"layer{k}" for k in range(n)]
    axes = _as_axes_list(ax, n)
    if axes is None:
        fig, grid = plt.subplots(1, max(n, 1), figsize=(3.4 * max(n, 1), 3.3), squeeze=False)
        axes = list(grid.ravel())
    for k, diagram in enumerate(diagrams):
        plot_persistence_diagram(diagram, ax=axes[k], title=names[k])
    if ax is None:
        fig.tight_layout()
    return np.asarray(axes[:n], dtype=object)


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
        f"{len(diagram)} bars"
    ax.set_title(f"{title}: {shown}" if title else shown, fontsize=9)
    return ax
