"""Figures: each function draws what its data says, into a given Axes or a new figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from topo.errors import ConfigError, InvalidTableError  # noqa: E402
from topo.evolution import EVOLUTION_COLUMNS  # noqa: E402
from topo.graph import LayeredGraph  # noqa: E402
from topo.plot import (  # noqa: E402
    plot_comparison,
    plot_distance_matrix,
    plot_embedding,
    plot_evolution,
    plot_input_connectivity,
    plot_interactions,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _two_cluster_matrix():
    """Six snapshots: a0, b0, a1, b1, a2, b2 interleaved; a's and b's far apart."""
    labels = ["a0", "b0", "a1", "b1", "a2", "b2"]
    group = np.array([0, 1, 0, 1, 0, 1])
    rng = np.random.default_rng(0)
    d = np.where(group[:, None] == group[None, :], 0.1, 0.9) + rng.uniform(0, 0.05, (6, 6))
    d = (d + d.T) / 2
    np.fill_diagonal(d, 0)
    return pd.DataFrame(d, index=labels, columns=labels)


def test_distance_matrix_clusters_similar_snapshots_together():
    ax = plot_distance_matrix(_two_cluster_matrix())
    order = [t.get_text() for t in ax.get_xticklabels()]
    assert sorted(order) == ["a0", "a1", "a2", "b0", "b1", "b2"]
    groups = [label[0] for label in order]
    assert groups in (["a"] * 3 + ["b"] * 3, ["b"] * 3 + ["a"] * 3)
    assert [t.get_text() for t in ax.get_yticklabels()] == order
    shown = ax.images[0].get_array()
    m = _two_cluster_matrix()
    np.testing.assert_allclose(shown, m.loc[order, order].to_numpy())
    assert len(ax.figure.axes) == 2  # the heatmap and its colorbar


def test_distance_matrix_keeps_the_given_order_on_request():
    m = _two_cluster_matrix()
    ax = plot_distance_matrix(m, order=None)
    assert [t.get_text() for t in ax.get_xticklabels()] == list(m.index)


def test_distance_matrix_refuses_a_non_square_table_and_an_unknown_order():
    with pytest.raises(InvalidTableError, match="square"):
        plot_distance_matrix(pd.DataFrame(np.zeros((2, 3))))
    with pytest.raises(ConfigError, match="unknown order 'random'"):
        plot_distance_matrix(_two_cluster_matrix(), order="random")


def test_comparison_draws_one_bar_series_per_available_column():
    frame = pd.DataFrame({"layer": [0, 1, "all"], "name": ["fc0", "fc1", "all"],
                          "nnstd": [0.2, 0.4, 0.3], "jaccard": [0.1, 0.3, 0.2],
                          "jaccard_chance": [0.05, 0.05, 0.05]})
    fig, ax = plt.subplots()
    assert plot_comparison(frame, ax=ax) is ax
    assert len(ax.containers) == 3
    heights = [[bar.get_height() for bar in c] for c in ax.containers]
    assert heights == [[0.2, 0.4, 0.3], [0.1, 0.3, 0.2], [0.05, 0.05, 0.05]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["fc0", "fc1", "all"]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["NNSTD", "Jaccard (raw)", "Jaccard (chance)"]


def test_comparison_marks_a_series_without_values_not_available():
    # the chance level is NaN when the two networks' layers differ in width
    frame = pd.DataFrame({"layer": ["0", "1", "all"], "name": ["fc0", "fc1", "all"],
                          "nnstd": [0.2, 0.4, 0.3], "jaccard": [0.1, 0.3, 0.2],
                          "jaccard_chance": [np.nan, np.nan, np.nan]})
    ax = plot_comparison(frame)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["NNSTD", "Jaccard (raw)", "Jaccard (chance): n/a"]
    assert [bar.get_height() for bar in ax.containers[2]] == [0, 0, 0]


def test_comparison_without_any_known_column_is_an_error():
    with pytest.raises(InvalidTableError, match="none of the columns nnstd, jaccard"):
        plot_comparison(pd.DataFrame({"layer": [0], "other": [1.0]}))


def test_comparison_draws_a_comparison_result_itself():
    import topo

    a = LayeredGraph([np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), np.ones((1, 2))])
    b = LayeredGraph([np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), np.ones((1, 2))])
    ax = plot_comparison(topo.compare(a, b))
    heights = [[bar.get_height() for bar in c] for c in ax.containers]
    # a relabelled copy (tests/test_comparison.py): NNSTD 0, raw Jaccard 0, 1, pooled 1/4,
    # aligned 1 everywhere
    assert heights[:3] == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.25], [1.0, 1.0, 1.0]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer0", "layer1", "all"]


def _evolution_frame():
    rows = []
    for snapshot in range(4):
        for layer in range(2):
            rows.append({"snapshot": snapshot, "epoch": 2 * snapshot, "layer": layer,
                         "name": f"fc{layer}", "nnstd_to_first": 0.1 * snapshot * (layer + 1),
                         "nnstd_to_previous": np.nan if snapshot == 0 else 0.1,
                         "churn": np.nan if snapshot == 0 else 0.3 * layer,
                         "itop_rate_snapshots": 0.2 + 0.1 * snapshot,
                         "jaccard_to_first": 1 - 0.2 * snapshot,
                         "test_accuracy": 0.2 * snapshot})
    return pd.DataFrame(rows)


def test_evolution_panel_has_one_line_per_layer_against_epoch():
    axes = plot_evolution(_evolution_frame())
    assert len(axes) == 6
    first = axes[0]
    assert first.get_xlabel() == "epoch"
    assert len(first.lines) == 2
    x, y = first.lines[1].get_data()
    np.testing.assert_allclose(x, [0, 2, 4, 6])
    np.testing.assert_allclose(y, [0.0, 0.2, 0.4, 0.6])
    legend = first.figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["0: fc0", "1: fc1"]
    accuracy = axes[5]
    assert [line.get_label() for line in accuracy.lines] == ["test accuracy"]


def test_evolution_panel_draws_the_columns_of_topology_evolution():
    from topo.evolution import topology_evolution

    hidden = [np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]),
              np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])]
    frame = topology_evolution([LayeredGraph([h, np.ones((1, 2))]) for h in hidden],
                               persistence=False)
    axes = plot_evolution(frame)
    for ax, column in zip(axes, ["nnstd_to_first", "nnstd_to_previous", "churn",
                                 "itop_rate_snapshots", "jaccard_to_first"]):   # no exact
        assert column in EVOLUTION_COLUMNS
        first_layer = frame[frame["layer"] == 0]
        np.testing.assert_allclose(ax.lines[0].get_ydata(), first_layer[column])
    assert "accuracy: not available" in axes[5].texts[0].get_text()


def test_the_itop_panel_draws_the_exact_rate_or_says_it_shows_a_lower_bound():
    frame = _evolution_frame()
    axes = plot_evolution(frame)
    assert axes[3].get_title() == "in-time over-parameterisation (lower bound: snapshots)"
    np.testing.assert_allclose(axes[3].lines[0].get_ydata(), [0.2, 0.3, 0.4, 0.5])
    frame["itop_rate"] = frame["itop_rate_snapshots"] + 0.05
    axes = plot_evolution(frame)
    assert axes[3].get_title() == "in-time over-parameterisation (exact)"
    assert axes[3].get_ylabel() == "ITOP rate"
    np.testing.assert_allclose(axes[3].lines[0].get_ydata(), [0.25, 0.35, 0.45, 0.55])


def test_evolution_panel_needs_six_axes_when_given_some():
    fig, axes = plt.subplots(1, 3)
    with pytest.raises(ConfigError, match="needs 6 axes, got 3"):
        plot_evolution(_evolution_frame(), ax=axes)


def test_evolution_panel_says_when_a_column_is_missing():
    axes = plot_evolution(_evolution_frame().drop(columns=["nnstd_to_previous"]))
    assert len(axes[1].lines) == 0
    assert "not available" in axes[1].texts[0].get_text()


def test_embedding_reproduces_planar_distances_and_draws_each_run():
    rng = np.random.default_rng(3)
    points = np.cumsum(rng.normal(size=(8, 2)), axis=0)
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    labels = [f"run{i // 4}/e{i % 4}" for i in range(8)]
    ax = plot_embedding(pd.DataFrame(d, index=labels, columns=labels))
    coords = ax.embedding_
    recovered = np.linalg.norm(coords[:, None] - coords[None], axis=-1)
    np.testing.assert_allclose(recovered, d, atol=1e-3 * d.max())
    trajectories = [line for line in ax.lines if len(line.get_xdata()) > 1]
    assert len(trajectories) == 2
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["run0", "run1"] and "start" in legend and "end" in legend


def test_embedding_of_identical_snapshots_is_the_origin_without_warnings(recwarn):
    labels = ["run/e0", "run/e1", "run/e2", "run/e3"]
    matrix = pd.DataFrame(np.zeros((4, 4)), index=labels, columns=labels)
    ax = plot_embedding(matrix)
    assert np.array_equal(ax.embedding_, np.zeros((4, 2)))
    assert [str(w.message) for w in recwarn] == []


def test_embedding_rejects_run_names_of_the_wrong_length():
    with pytest.raises(InvalidTableError, match="run names"):
        plot_embedding(pd.DataFrame(np.zeros((3, 3))), runs=["a", "b"])


def test_input_connectivity_maps_are_the_counts_in_the_input_shape():
    counts = np.arange(5 * 6).reshape(5, 6)
    axes = plot_input_connectivity(counts, input_shape=(2, 3), epochs=[0, 1, 2, 3, 4],
                                   n_panels=3)
    assert [a.get_title() for a in axes] == ["epoch 0", "epoch 2", "epoch 4"]
    np.testing.assert_array_equal(axes[1].images[0].get_array(), counts[2].reshape(2, 3))
    assert axes[0].images[0].get_clim() == (0, counts.max())


def test_input_connectivity_refuses_a_shape_that_does_not_fit():
    with pytest.raises(InvalidTableError, match="does not hold"):
        plot_input_connectivity(np.ones((2, 6)), input_shape=(4, 4))
    with pytest.raises(InvalidTableError, match="counts must be"):
        plot_input_connectivity(np.ones(6))


def test_interactions_bars_are_sorted_strongest_first_with_planted_ones_marked():
    frame = pd.DataFrame({"interaction": [(0, 1), (2, 3), (1, 4)],
                          "strength": [0.5, 2.0, 1.0]})
    ax = plot_interactions(frame, truth=["{2, 3}"])
    bars = ax.containers[0]
    top_to_bottom = sorted(bars, key=lambda b: -b.get_y())
    assert [b.get_width() for b in top_to_bottom] == [2.0, 1.0, 0.5]
    labels = {t.get_position()[1]: t.get_text() for t in ax.get_yticklabels()}
    assert labels[top_to_bottom[0].get_y() + top_to_bottom[0].get_height() / 2] == "{2, 3}"
    assert top_to_bottom[0].get_facecolor() != top_to_bottom[1].get_facecolor()


def test_input_connectivity_sums_the_channels_of_a_colour_picture():
    counts = np.arange(2 * 3 * 5 * 4).reshape(2, 60)  # two snapshots of 3 x 5 x 4 inputs
    axes = plot_input_connectivity(counts, input_shape=(3, 5, 4), n_panels=2)
    expected = counts[1].reshape(3, 5, 4).sum(axis=0)
    np.testing.assert_array_equal(axes[1].images[0].get_array(), expected)
    channels_last = plot_input_connectivity(counts, input_shape=(5, 4, 3), n_panels=2)
    np.testing.assert_array_equal(channels_last[1].images[0].get_array(),
                                  counts[1].reshape(5, 4, 3).sum(axis=-1))


# ------------------------------------------------------------------ less common inputs
def test_distance_matrix_of_many_snapshots_is_not_annotated_and_skips_missing_values():
    n = 13
    values = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) / n
    values[0, 1] = values[1, 0] = np.nan  # a pair that could not be compared
    labels = [f"s{i}" for i in range(n)]
    fig, ax = plt.subplots()
    assert plot_distance_matrix(pd.DataFrame(values, index=labels, columns=labels), ax=ax,
                                order="given") is ax
    assert len(ax.texts) == 0
    assert ax.get_title() == "topology distance"
    small = pd.DataFrame([[0.0, np.nan], [np.nan, 0.0]], index=["a", "b"], columns=["a", "b"])
    ax = plot_distance_matrix(small)  # two snapshots: nothing to cluster
    assert [t.get_text() for t in ax.texts] == ["0.00", "0.00"]
    assert ax.get_title() == "topology distance (clustered)"


def test_evolution_of_pruning_levels_is_drawn_by_snapshot_with_level_marks():
    rows = []
    for snapshot, (level, epoch) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        rows.append({"snapshot": snapshot, "epoch": epoch, "level": level, "layer": 0,
                     "name": "fc0", "churn": 0.1 * snapshot,
                     "train_accuracy": 0.5, "test_accuracy": 0.6})
    axes = plot_evolution(pd.DataFrame(rows))
    assert axes[2].get_xlabel() == "snapshot (dotted: a new pruning level begins)"
    marks = [line for line in axes[2].lines if line.get_linestyle() == ":"]
    assert len(marks) == 1 and marks[0].get_xdata()[0] == 1.5  # level 1 starts at snapshot 2
    np.testing.assert_allclose(axes[2].lines[-1].get_xdata(), [0, 1, 2, 3])
    assert [line.get_label() for line in axes[5].lines if line.get_linestyle() != ":"] == [
        "train accuracy", "test accuracy"]
    legend = axes[0].figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["0: fc0"]  # no NNSTD panel to copy


def test_embedding_into_given_axes_with_one_run_when_labels_name_none():
    values = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    fig, ax = plt.subplots()
    frame = pd.DataFrame(values, index=["x", "y", "z"], columns=["x", "y", "z"])
    assert plot_embedding(frame, ax=ax, annotate=False) is ax
    assert ax.get_legend().get_texts()[0].get_text() == "run"
    assert len(ax.texts) == 0
    with pytest.raises(InvalidTableError, match="square"):
        plot_embedding(pd.DataFrame(np.zeros((2, 3))))


def test_input_connectivity_without_a_shape_is_a_square_or_a_row():
    square = plot_input_connectivity(np.arange(2 * 9).reshape(2, 9), n_panels=2)
    assert square[0].images[0].get_array().shape == (3, 3)
    row = plot_input_connectivity(np.arange(2 * 6).reshape(2, 6), n_panels=2)
    assert row[0].images[0].get_array().shape == (1, 6)
    deep = plot_input_connectivity(np.ones((1, 16)), input_shape=(2, 2, 2, 2))
    assert deep[0].images[0].get_array().shape == (1, 16)
    fig, given = plt.subplots(1, 2)
    drawn = plot_input_connectivity(np.ones((2, 4)), ax=list(given), n_panels=2)
    assert list(drawn) == list(given)


def test_interaction_labels_from_index_columns_plain_values_or_the_index():
    by_columns = plot_interactions(pd.DataFrame({"i": [0, 2], "j": [1, 3],
                                                 "score": [0.2, 0.1]}))
    assert [t.get_text() for t in by_columns.get_yticklabels()] == ["{0, 1}", "{2, 3}"]
    named = plot_interactions(pd.DataFrame({"pair": ["a-b"], "strength": [1.0]}))
    assert [t.get_text() for t in named.get_yticklabels()] == ["a-b"]
    fig, ax = plt.subplots()
    by_index = plot_interactions(pd.DataFrame({"strength": [1.0]}, index=["only"]), ax=ax)
    assert by_index is ax and [t.get_text() for t in ax.get_yticklabels()] == ["only"]
    with pytest.raises(InvalidTableError, match="no strength/score column"):
        plot_interactions(pd.DataFrame({"features": [(0, 1)]}))


def test_comparison_rows_are_labelled_by_layer_without_names():
    ax = plot_comparison(pd.DataFrame({"layer": ["0", "all"], "nnstd": [0.1, 0.1]}))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "all"]
    ax = plot_comparison(pd.DataFrame({"nnstd": [0.1, 0.2]}))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]


def test_persistence_diagrams_into_one_given_axes():
    from topo.plot import plot_barcode, plot_persistence_diagram, plot_persistence_diagrams

    diagram = np.array([[1.0, 0.5], [1.0, 0.0]])
    fig, ax = plt.subplots()
    (drawn,) = plot_persistence_diagrams([diagram], ax=ax)
    assert drawn is ax and ax.get_title() == "layer0"
    untitled = plot_persistence_diagram(diagram)
    assert untitled.get_title() == ""
    np.testing.assert_array_equal(untitled.collections[0].get_offsets(), diagram)
    bars = plot_barcode(diagram, max_bars=1)
    assert bars.get_title() == "1 of 2 bars"
