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

#: How the comparison figure labels the ``all`` row: its columns aggregate differently.
ALL_ROW_TICK = "all layers\nNNSTD: mean\nJaccard: pooled"


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
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer 0\nfc0", "layer 1\nfc1",
                                                            ALL_ROW_TICK]
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
    with pytest.raises(InvalidTableError, match="none of the columns nnstd, nnstd_chance, jac"):
        plot_comparison(pd.DataFrame({"layer": [0], "other": [1.0]}))


def test_comparison_draws_a_comparison_result_itself():
    import topo

    a = LayeredGraph([np.array([[1.0, 1.0, 0.0], [0.0, 0.0, 1.0]]), np.ones((1, 2))])
    b = LayeredGraph([np.array([[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]), np.ones((1, 2))])
    ax = plot_comparison(topo.compare(a, b, chance_samples=0))
    heights = [[bar.get_height() for bar in c] for c in ax.containers]
    # a relabelled copy (tests/test_comparison.py): NNSTD 0, raw Jaccard 0, 1, pooled 1/4,
    # aligned 1 everywhere; no NNSTD chance level asked (its series n/a)
    assert [heights[0], heights[2], heights[3]] == [[0.0, 0.0, 0.0], [0.0, 1.0, 0.25],
                                                    [1.0, 1.0, 1.0]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer 0", "layer 1", ALL_ROW_TICK]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:4] == ["NNSTD", "NNSTD (chance): n/a", "Jaccard (raw)",
                          "Jaccard (aligned by NNSTD)"]


def test_comparison_draws_nnstd_beside_its_chance_level():
    # two independent SET networks sit at NNSTD's chance level: the figure must show that
    frame = pd.DataFrame({"layer": [0, 1, "all"], "name": ["fc0", "fc1", "all"],
                          "nnstd": [0.51, 0.63, 0.38], "nnstd_chance": [0.52, 0.63, 0.38],
                          "nnstd_chance_se": [0.001, 0.001, 0.0005],
                          "jaccard": [0.35, 0.25, 0.35]})
    ax = plot_comparison(frame)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["NNSTD", "NNSTD (chance)", "Jaccard (raw)"]
    chance = ax.containers[1]
    assert [bar.get_height() for bar in chance] == [0.52, 0.63, 0.38]
    assert all(bar.get_hatch() == "//" for bar in chance)
    centres = [[bar.get_x() + bar.get_width() / 2 for bar in c] for c in ax.containers]
    assert all(n < c < j for n, c, j in zip(*centres))  # the chance bar right of NNSTD


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
    assert [t.get_text() for t in legend.get_texts()] == ["layer 0: fc0", "layer 1: fc1"]
    accuracy = axes[5]
    assert [line.get_label() for line in accuracy.lines] == ["test (after the epoch)"]


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
    assert axes[3].get_title() == "ITOP rate at the snapshots (a lower bound)"
    assert axes[5].texts[0].get_text() == "no accuracy, MSE or loss in the run's metrics"


def test_the_itop_panel_draws_the_exact_rate_or_says_it_shows_a_lower_bound():
    frame = _evolution_frame()
    axes = plot_evolution(frame)
    assert axes[3].get_title() == "ITOP rate at the snapshots (a lower bound)"
    np.testing.assert_allclose(axes[3].lines[0].get_ydata(), [0.2, 0.3, 0.4, 0.5])
    frame["itop_rate"] = frame["itop_rate_snapshots"] + 0.05
    axes = plot_evolution(frame)
    assert axes[3].get_title() == "ITOP rate (exact: every mask update)"
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


@pytest.mark.xdist_group("scikit-learn")   # the embedding is sklearn MDS: imported on one worker
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


@pytest.mark.xdist_group("scikit-learn")   # the embedding is sklearn MDS: imported on one worker
def test_embedding_of_identical_snapshots_is_the_origin_without_warnings(recwarn):
    labels = ["run/e0", "run/e1", "run/e2", "run/e3"]
    matrix = pd.DataFrame(np.zeros((4, 4)), index=labels, columns=labels)
    ax = plot_embedding(matrix)
    assert np.array_equal(ax.embedding_, np.zeros((4, 2)))
    assert [str(w.message) for w in recwarn] == []


@pytest.mark.xdist_group("scikit-learn")   # the embedding is sklearn MDS: imported on one worker
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


def _dots(ax):
    """(label, strength, colour) of every drawn interaction, top row first."""
    offsets = ax.collections[0].get_offsets()
    colours = ax.collections[0].get_facecolors()
    ticks = {round(float(t), 6): lab.get_text()
             for t, lab in zip(ax.get_yticks(), ax.get_yticklabels())}
    rows = sorted(zip(offsets[:, 1], offsets[:, 0], map(tuple, colours)), reverse=True)
    return [(ticks[round(float(y), 6)], float(x), c) for y, x, c in rows]


def test_interactions_are_sorted_strongest_first_with_planted_ones_marked():
    frame = pd.DataFrame({"interaction": [(0, 1), (2, 3), (1, 4)],
                          "strength": [0.5, 2.0, 1.0]})
    ax = plot_interactions(frame, truth=["{2, 3}"])
    dots = _dots(ax)
    assert [(label, x) for label, x, _ in dots] == [("{2, 3}", 2.0), ("{1, 4}", 1.0),
                                                    ("{0, 1}", 0.5)]
    assert dots[0][2] != dots[1][2] and dots[1][2] == dots[2][2]
    assert [t.get_text() for t in ax.texts] == ["2", "1", "0.5"]


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
    assert ax.get_title() == "distance between snapshots"
    small = pd.DataFrame([[0.0, np.nan], [np.nan, 0.0]], index=["a", "b"], columns=["a", "b"])
    ax = plot_distance_matrix(small)  # two snapshots: nothing to cluster
    assert [t.get_text() for t in ax.texts] == ["0.00", "0.00"]
    assert ax.get_title() == ("distance between snapshots\n"
                              "(ordered by average-linkage clustering)")


def test_evolution_of_pruning_levels_is_drawn_by_snapshot_with_level_marks():
    rows = []
    for snapshot, (level, epoch) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1)]):
        rows.append({"snapshot": snapshot, "epoch": epoch, "level": level, "layer": 0,
                     "name": "fc0", "churn": 0.1 * snapshot,
                     "train_accuracy": 0.5, "test_accuracy": 0.6})
    axes = plot_evolution(pd.DataFrame(rows))
    assert axes[2].get_xlabel() == "pruning level (network density); dotted: a level begins"
    marks = [line for line in axes[2].lines if line.get_linestyle() == ":"]
    assert len(marks) == 1 and marks[0].get_xdata()[0] == 1.5  # level 1 starts at snapshot 2
    np.testing.assert_allclose(axes[2].lines[-1].get_xdata(), [0, 1, np.nan, 2, 3])
    assert [line.get_label() for line in axes[5].lines if line.get_linestyle() != ":"] == [
        "train (mean over the epoch's batches; epoch 0: before training)",
        "test (after the epoch)"]
    legend = axes[0].figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["layer 0: fc0"]  # no NNSTD panel


@pytest.mark.xdist_group("scikit-learn")   # the embedding is sklearn MDS: imported on one worker
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
    assert [t.get_text() for t in ax.get_xticklabels()] == ["layer 0", ALL_ROW_TICK]
    ax = plot_comparison(pd.DataFrame({"nnstd": [0.1, 0.2]}))
    assert [t.get_text() for t in ax.get_xticklabels()] == ["0", "1"]


def test_persistence_diagrams_into_one_given_axes():
    from topo.plot import plot_barcode, plot_persistence_diagram, plot_persistence_diagrams

    diagram = np.array([[1.0, 0.5], [1.0, 0.0]])
    fig, ax = plt.subplots()
    (drawn,) = plot_persistence_diagrams([diagram], ax=ax, kind="diagram")
    assert drawn is ax and ax.get_title() == "layer 0"
    untitled = plot_persistence_diagram(diagram)
    assert untitled.get_title() == ""
    np.testing.assert_array_equal(untitled.collections[0].get_offsets(), diagram)
    bars = plot_barcode(diagram, max_bars=1)
    assert bars.get_title() == "1 of 2 bars"


# ------------------------------------------------------------- labels say what is drawn
def test_layers_are_named_as_layers_also_for_bare_module_numbers():
    from topo.plot import layer_label

    # a PyTorch Sequential names its Linear layers by module index: "0", "2", "4"
    assert [layer_label(k, n) for k, n in enumerate(["0", "2", "4"])] == [
        "layer 0 (module 0)", "layer 1 (module 2)", "layer 2 (module 4)"]
    assert layer_label(1, "fc2") == "layer 1: fc2"
    assert layer_label(1, "layer1") == "layer 1"
    frame = _evolution_frame().replace({"name": {"fc0": "0", "fc1": "2"}})
    legend = plot_evolution(frame)[0].figure.legends[0]
    assert [t.get_text() for t in legend.get_texts()] == ["layer 0 (module 0)",
                                                          "layer 1 (module 2)"]


def test_pruning_levels_are_ticked_with_their_network_density():
    rows = []
    connections = {0: (20, 10), 1: (16, 8), 2: (12, 6)}  # per level: two layers of 20 and 10
    for snapshot, (level, epoch) in enumerate([(0, 0), (0, 1), (1, 0), (1, 1), (2, 0)]):
        for layer in range(2):
            rows.append({"snapshot": snapshot, "epoch": epoch, "level": level, "layer": layer,
                         "name": f"fc{layer}", "connections": connections[level][layer],
                         "possible": (20, 10)[layer], "churn": 0.0})
    axes = plot_evolution(pd.DataFrame(rows))
    for ax in axes:
        assert list(ax.get_xticks()) == [0, 2, 4]
        # densities 30/30, 24/30, 18/30 of the whole network
        assert [t.get_text() for t in ax.get_xticklabels()] == ["L0\n100%", "L1\n80%",
                                                                "L2\n60%"]


def test_distance_matrix_names_its_metric_and_keeps_labels_readable():
    n = 42
    labels = [f"set-s{i // 21}/epoch_{i % 21:04d}" for i in range(n)]
    values = np.abs(np.subtract.outer(np.arange(n), np.arange(n))) / n
    ax = plot_distance_matrix(pd.DataFrame(values, index=labels, columns=labels),
                              metric="NNSTD", order=None)
    assert ax.get_title() == "NNSTD between snapshots"
    assert ax.figure.axes[1].get_ylabel() == "NNSTD"  # the colour bar
    shown = ax.get_xticklabels()
    assert [t.get_text() for t in shown] == labels
    assert {t.get_fontsize() for t in shown} == {8.0}
    assert {t.get_fontsize() for t in ax.get_yticklabels()} == {8.0}


def test_distance_matrix_of_hundreds_of_snapshots_thins_its_labels_not_their_size():
    n = 300
    labels = [f"s{i}" for i in range(n)]
    ax = plot_distance_matrix(pd.DataFrame(np.zeros((n, n)), index=labels, columns=labels),
                              order=None, metric="NNSTD")
    shown = [t.get_text() for t in ax.get_yticklabels()]
    step = int(ax.get_yticks()[1])
    assert step > 1 and shown == labels[::step]
    assert {t.get_fontsize() for t in ax.get_yticklabels()} == {8.0}
    ordinal = {2: "2nd", 3: "3rd"}.get(step, f"{step}th")
    assert ax.get_title().endswith(f"(every {ordinal} label of 300 shown)")


def test_input_connectivity_titles_say_level_and_epoch_or_the_position():
    counts = np.arange(4 * 4).reshape(4, 4)
    axes = plot_input_connectivity(counts, epochs=[0, 3, 0, 3], levels=[0, 0, 1, 1],
                                   n_panels=4)
    assert [a.get_title() for a in axes] == ["level 0 · epoch 0", "level 0 · epoch 3",
                                             "level 1 · epoch 0", "level 1 · epoch 3"]
    plain = plot_input_connectivity(counts, n_panels=2)
    assert [a.get_title() for a in plain] == ["snapshot 0", "snapshot 3"]


def test_snapshot_titles_of_an_evolution_table():
    from topo.plot import snapshot_titles

    frame = pd.DataFrame({"snapshot": [0, 0, 1, 1], "epoch": [0, 0, 3, 3],
                          "level": [2, 2, 2, 2], "layer": [0, 1, 0, 1]})
    assert snapshot_titles(frame) == ["level 2 · epoch 0", "level 2 · epoch 3"]
    assert snapshot_titles(frame.drop(columns="level")) == ["epoch 0", "epoch 3"]


@pytest.mark.xdist_group("scikit-learn")   # the embedding is sklearn MDS: imported on one worker
def test_embedding_keeps_the_levels_of_a_pruning_run_in_one_trajectory():
    labels = [f"imp/level_0{lv}/epoch_000{e}" for lv in (0, 1) for e in (0, 1)]
    labels += ["set/epoch_0000", "set/epoch_0001"]
    rng = np.random.default_rng(0)
    points = rng.normal(size=(6, 2))
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    ax = plot_embedding(pd.DataFrame(d, index=labels, columns=labels))
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend[:2] == ["imp", "set"]
    assert sorted(t.get_text() for t in ax.texts) == [
        "epoch_0000", "epoch_0001", "level_00/epoch_0000", "level_01/epoch_0001"]
    # the imp trajectory is one line broken where level 1 rewinds; set's is whole
    imp, set_run = ax.lines[0].get_xydata(), ax.lines[1].get_xydata()
    np.testing.assert_allclose(imp[[0, 1, 3, 4]], ax.embedding_[:4])
    assert np.isnan(imp[2]).all() and len(imp) == 5
    np.testing.assert_allclose(set_run, ax.embedding_[4:])


# ------------------------------------------------------- panels that show their information
def _run_frame(densities, metrics):
    """Two layers over len(densities) snapshots; ``metrics`` columns added per snapshot."""
    rows = []
    for snapshot, density in enumerate(densities):
        for layer in range(2):
            rows.append({"snapshot": snapshot, "epoch": snapshot, "layer": layer,
                         "name": f"fc{layer}", "density": density,
                         "itop_rate_snapshots": 1.0 if densities[0] == 1 else
                         min(1.0, densities[0] + 0.1 * snapshot),
                         **{k: v[snapshot] for k, v in metrics.items()}})
    return pd.DataFrame(rows)


def test_a_regression_run_draws_its_mse_not_an_empty_accuracy_panel():
    mse = {"train_mse": [0.9, 0.2, 0.05, 0.01], "test_mse": [0.8, 0.3, 0.06, 0.02]}
    panel = plot_evolution(_run_frame([0.5] * 4, mse))[5]
    assert panel.get_title() == "mean squared error"
    assert panel.get_yscale() == "log" and panel.get_ylabel() == "MSE (log scale)"
    assert [line.get_label() for line in panel.lines] == [
        "train (mean over the epoch's batches; epoch 0: before training)",
        "test (after the epoch)"]
    np.testing.assert_allclose(panel.lines[1].get_ydata(), mse["test_mse"])
    loss = plot_evolution(_run_frame([0.5] * 3, {"loss": [2.0, 1.5, 1.2]}))[5]
    assert loss.get_title() == "loss" and loss.get_yscale() == "linear"
    np.testing.assert_allclose(loss.lines[0].get_ydata(), [2.0, 1.5, 1.2])


def test_a_run_that_starts_dense_draws_its_density_instead_of_a_flat_itop_rate():
    pruned = plot_evolution(_run_frame([1.0, 0.8, 0.64], {}))[3]
    assert pruned.get_title() == "density (connections / possible)"
    np.testing.assert_allclose(pruned.lines[0].get_ydata(), [1.0, 0.8, 0.64])
    rewired = plot_evolution(_run_frame([0.2, 0.2, 0.2], {}))[3]
    assert rewired.get_title() == "ITOP rate at the snapshots (a lower bound)"
    np.testing.assert_allclose(rewired.lines[0].get_ydata(), [0.2, 0.3, 0.4])


def test_the_itop_panel_prefers_the_rate_the_training_loop_recorded():
    frame = _run_frame([0.2, 0.2, 0.2], {})
    frame["itop_rate"] = [0.2, 0.2, 0.45, 0.45, 0.6, 0.6]
    panel = plot_evolution(frame)[3]
    assert panel.get_title() == "ITOP rate (exact: every mask update)"
    np.testing.assert_allclose(panel.lines[0].get_ydata(), [0.2, 0.45, 0.6])


def test_epoch_axes_are_ticked_at_whole_numbers():
    # 16 snapshots (epochs 0-15, as the example run): matplotlib's default would tick 2.5, 7.5
    for ax in plot_evolution(_run_frame([0.5] * 16, {"test_accuracy": [0.1] * 16})):
        ticks = [t for t in ax.get_xticks() if 0 <= t <= 15]
        assert ticks and all(float(t).is_integer() for t in ticks)


@pytest.mark.parametrize("n", [1, 2, 3])
def test_epoch_axes_of_a_few_snapshots_are_ticked_at_whole_numbers(n):
    # one snapshot: matplotlib's integer locator needs two integers in view and otherwise
    # ticks 0.95, 1.0, 1.05
    axes = plot_evolution(_run_frame([0.5] * n, {"test_accuracy": [0.1] * n}))
    axes[0].figure.canvas.draw()  # the panels share one figure: one draw lays out them all
    for ax in axes:
        low, high = ax.get_xlim()
        ticks = [t for t in ax.get_xticks() if low <= t <= high]
        assert ticks and all(float(t).is_integer() for t in ticks)


@pytest.mark.parametrize("steps, x, label", [
    ([0, 2], [0, 2], "step (the files say no epoch)"),
    ([0, None], [0, 1], "snapshot, in time order (the files say no epoch)"),
])
def test_snapshots_that_say_no_epoch_are_not_drawn_at_epochs(steps, x, label):
    # a folder of checkpoints named model_0_step_0, model_0_step_2: epochs 0, 1 are only
    # the files' positions
    frame = _run_frame([0.5, 0.5], {"test_accuracy": [0.1, 0.2]})
    frame["epoch_source"] = "order"
    frame["step"] = [s for s in steps for _ in range(2)]
    for ax in plot_evolution(frame):
        assert ax.get_xlabel() == label
    density = plot_evolution(frame)[3]
    np.testing.assert_array_equal(density.lines[0].get_xdata(), x)


def test_persistence_of_a_layered_filtration_is_drawn_as_death_histograms():
    from topo.plot import plot_persistence_diagrams

    # births all 1: deaths 0.91, 0.56, 0.51 and a surviving component at 0; one of 0.05
    diagrams = [np.array([[1.0, 0.91], [1.0, 0.56], [1.0, 0.51], [1.0, 0.0]]),
                np.array([[1.0, 0.05], [1.0, 0.0], [1.0, 0.0]])]
    axes = plot_persistence_diagrams(diagrams, names=["fc1", "2"])
    assert [a.get_title() for a in axes] == [
        "layer 0: fc1\n3 merges above 0, 1 pair dying at 0",
        "layer 1 (module 2)\n1 merge above 0, 2 pairs dying at 0"]
    assert all(a.get_legend() is None for a in axes)  # the counts hide no bar
    counts = [p.get_height() for p in axes[0].patches]
    assert len(counts) == 40 and sum(counts) == 3
    edges = [p.get_x() for p in axes[0].patches]
    for death in (0.91, 0.56, 0.51):  # bins of width 1/40
        assert counts[int(np.searchsorted(edges, death, side="right")) - 1] == 1
    assert axes[0].get_xlabel() == "death (normalised |w| of the merging edge)"
    assert "every unit is born at 1" in axes[0].figure.get_suptitle()
    # a diagram with births of its own keeps the birth-death picture
    (other,) = plot_persistence_diagrams([np.array([[0.8, 0.2], [1.0, 0.5]])])
    np.testing.assert_array_equal(other.collections[0].get_offsets(), [[0.8, 0.2], [1.0, 0.5]])


def test_interaction_strengths_far_from_zero_are_readable():
    strengths = [8.56, 8.52, 8.3, 8.1]
    frame = pd.DataFrame({"features": [(27, 43), (25, 27), (5, 43), (28, 36)],
                          "strength": strengths})
    ax = plot_interactions(frame, input_shape=(8, 8), method="ph")
    left, right = ax.get_xlim()
    assert 7.9 < left < 8.1 and right > 8.56  # the spread fills the axis
    assert ax.get_xlabel() == "interaction strength (the axis does not start at 0)"
    assert [label for label, _, _ in _dots(ax)] == [
        "{(3, 3), (5, 3)}", "{(3, 1), (3, 3)}", "{(0, 5), (5, 3)}", "{(3, 4), (4, 4)}"]
    assert [t.get_text() for t in ax.texts] == ["8.56", "8.52", "8.3", "8.1"]
    assert ax.get_ylabel() == "pixels (row, column)"
    assert ax.get_title() == "strongest 4 interactions (ph)"
    spread = plot_interactions(pd.DataFrame({"features": [(0, 1), (1, 2)],
                                             "strength": [1.0, 0.2]}))
    assert spread.get_xlim()[0] == 0 and spread.get_xlabel() == "interaction strength"


def test_true_interactions_are_highlighted_and_the_auc_captioned():
    frame = pd.DataFrame({"features": [(0, 1), (1, 6), (3, 4), (2, 4)],
                          "strength": [4.0, 3.0, 2.0, 1.0]})
    truth = [(0, 1, 2), (2, 4), (1, 6)]  # {3, 4} is no subset of any
    ax = plot_interactions(frame, truth=truth, auc=0.8125)
    colours = [c for _, _, c in _dots(ax)]
    assert colours[0] == colours[1] == colours[3] != colours[2]
    assert ax.get_title().endswith("pairwise AUC against the true interactions: 0.812")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "inside a true interaction", "not"]


def test_comparison_bars_carry_their_values_so_a_zero_is_seen():
    frame = pd.DataFrame({"layer": ["0", "1", "all"], "name": ["fc0", "fc1", "all"],
                          "nnstd": [0.25, 0.0, 0.125],
                          "jaccard_chance": [np.nan, np.nan, np.nan]})
    ax = plot_comparison(frame)
    assert [t.get_text() for t in ax.texts] == ["0.25", "0.00", "0.12", "n/a", "n/a", "n/a"]
    assert ax.get_ylim()[1] > 1.0  # room for the labels above bars of height 1


# ------------------------------------------------------------------- the embedding's fit
def test_embedding_stress_by_hand():
    from topo.plot import embedding_stress

    d = np.array([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 1.0, 0.0]])
    # points 2 and 3 put together: fitted 1, 1, 0 against 1, 2, 1 -> sqrt((0 + 1 + 1) / 6)
    coords = np.array([[0.0, 0.0], [1.0, 0.0], [1.0, 0.0]])
    assert embedding_stress(d, coords) == pytest.approx(np.sqrt(1 / 3))
    assert embedding_stress(d, np.array([[0.0, 0.0], [1.0, 0.0], [2.0, 0.0]])) == 0.0
    assert embedding_stress(np.zeros((3, 3)), np.zeros((3, 2))) == 0.0


@pytest.mark.xdist_group("scikit-learn")   # the embedding is sklearn MDS: imported on one worker
def test_embedding_of_equidistant_snapshots_states_and_warns_its_poor_fit():
    from topo.plot import EmbeddingWarning, embedding_stress

    n = 10
    labels = [f"run/e{i}" for i in range(n)]
    d = pd.DataFrame(np.ones((n, n)) - np.eye(n), index=labels, columns=labels)
    with pytest.warns(EmbeddingWarning, match=r"fits poorly \(Kruskal stress-1 0\.\d\d"):
        ax = plot_embedding(d, metric="NNSTD")
    assert ax.stress_ == pytest.approx(embedding_stress(d.to_numpy(), ax.embedding_))
    assert ax.stress_ >= 0.2
    assert ax.get_title() == ("snapshots embedded by NNSTD (metric MDS)\n"
                              f"Kruskal stress-1 {ax.stress_:.3f}: poor fit, distances in "
                              "the plane are unreliable")


@pytest.mark.xdist_group("scikit-learn")   # the embedding is sklearn MDS: imported on one worker
def test_embedding_of_planar_distances_is_an_excellent_fit_without_warning(recwarn):
    rng = np.random.default_rng(3)
    points = rng.normal(size=(8, 2))
    d = np.linalg.norm(points[:, None] - points[None], axis=-1)
    ax = plot_embedding(pd.DataFrame(d))
    assert ax.stress_ < 0.01
    assert ax.get_title().endswith(": excellent fit")
    assert [str(w.message) for w in recwarn] == []


# ------------------------------------------- runs in pruning levels; legends that hide nothing
def _levels_frame(n_levels=3, epochs=3):
    """Two layers of an IMP-like run: every level restarts at epoch 0 (accuracy 0.1 there,
    as after a rewind) and prunes 20% of the connections."""
    rows, snapshot = [], 0
    for level in range(n_levels):
        for epoch in range(epochs):
            for layer in range(2):
                rows.append({"snapshot": snapshot, "epoch": epoch, "level": level,
                             "layer": layer, "name": f"fc{layer}",
                             "connections": 80 * 0.8 ** level, "possible": 100,
                             "density": 0.8 * 0.8 ** level,
                             "nnstd_to_first": 0.05 * snapshot,
                             "nnstd_to_previous": np.nan if snapshot == 0 else 0.1 + level,
                             "churn": np.nan if snapshot == 0 else 0.0,
                             "itop_rate_snapshots": 0.8, "jaccard_to_first": 1 - 0.02 * snapshot,
                             "train_accuracy": 0.1 + 0.4 * epoch,
                             "test_accuracy": 0.1 + 0.42 * epoch})
            snapshot += 1
    return pd.DataFrame(rows)


def test_lines_of_a_run_in_levels_break_at_every_rewind():
    frame = _levels_frame()
    per_snapshot = frame.drop_duplicates("snapshot")
    level_of = dict(zip(per_snapshot["snapshot"], per_snapshot["level"]))
    axes = plot_evolution(frame)
    drawn = [line for ax in axes for line in ax.lines if line.get_linestyle() != ":"]
    # six panels: four of two layers, density (two layers) and train + test accuracy
    assert len(drawn) == 12
    for line in drawn:
        x, y = (np.asarray(v, dtype=np.float64) for v in line.get_data())
        joined = np.isfinite(x[:-1]) & np.isfinite(x[1:]) & np.isfinite(y[:-1]) \
            & np.isfinite(y[1:])
        # no segment of any line joins two snapshots of different levels
        assert all(level_of[int(a)] == level_of[int(b)]
                   for a, b in zip(x[:-1][joined], x[1:][joined]))
        # and every snapshot's value is still drawn, at its place
        assert sorted(int(v) for v in x[np.isfinite(x)]) == list(range(9))
    test = axes[5].lines[-1]
    np.testing.assert_allclose(test.get_xdata(), [0, 1, 2, np.nan, 3, 4, 5, np.nan, 6, 7, 8])
    np.testing.assert_allclose(test.get_ydata(), [0.1, 0.52, 0.94, np.nan] * 2
                               + [0.1, 0.52, 0.94])
    # the level ticks are unchanged: one per level, at its first snapshot
    assert list(axes[0].get_xticks()) == [0, 3, 6]
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["L0\n80%", "L1\n64%",
                                                                 "L2\n51%"]


def test_a_run_without_levels_draws_each_line_whole():
    axes = plot_evolution(_evolution_frame())
    assert not np.isnan(axes[0].lines[0].get_xdata()).any()


def _points_in_display(ax):
    """Every drawn data point of an Axes in display coordinates: line vertices, scatter
    offsets, and the corners of bars of non-zero height."""
    points = []
    for line in ax.lines:
        xy = np.column_stack(line.get_data()).astype(np.float64)
        xy = xy[np.isfinite(xy).all(axis=1)]
        if len(xy):
            points.append(line.get_transform().transform(xy))
    for collection in ax.collections:
        offsets = np.asarray(collection.get_offsets(), dtype=np.float64)
        if len(offsets):
            points.append(collection.get_offset_transform().transform(offsets))
    for patch in ax.patches:
        box = patch.get_window_extent()
        if box.height > 0.5 and box.width > 0:
            points.append(np.array([[box.x0, box.y0], [box.x1, box.y1],
                                    [box.x0, box.y1], [box.x1, box.y0]]))
    return np.concatenate(points) if points else np.zeros((0, 2))


def _hidden_points(fig):
    """How many data points of the figure lie inside one of its legends, after drawing."""
    fig.canvas.draw()
    legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
    assert legends  # every figure tested here has one
    hidden = 0
    for legend in legends:
        box = legend.get_window_extent()
        for ax in fig.axes:
            p = _points_in_display(ax)
            hidden += int(np.count_nonzero((p[:, 0] > box.x0) & (p[:, 0] < box.x1)
                                           & (p[:, 1] > box.y0) & (p[:, 1] < box.y1)))
    return hidden


@pytest.mark.xdist_group("scikit-learn")   # the embedding is sklearn MDS: imported on one worker
def test_legends_hide_no_data_point():
    import warnings

    from topo.plot import plot_persistence_diagram

    # the accuracy of every level starts low, at the panel's left and right alike
    figures = [plot_evolution(_levels_frame(n_levels=4))[0].figure]
    # points in every corner of the plane
    corners = np.array([[0, 0], [0, 1], [1, 0], [1, 1], [0.5, 0.5], [0.05, 0.95],
                        [0.95, 0.05], [0.95, 0.95], [0.05, 0.05], [0.5, 0.95]])
    d = np.linalg.norm(corners[:, None] - corners[None], axis=-1)
    labels = [f"a/e{i}" for i in range(5)] + [f"b/e{i}" for i in range(5)]
    with warnings.catch_warnings():  # a poor fit's warning is not this test's subject
        warnings.simplefilter("ignore")
        figures.append(plot_embedding(pd.DataFrame(d, index=labels, columns=labels)).figure)
    strengths = np.linspace(1.0, 0.5, 12)
    frame = pd.DataFrame({"features": [(i, i + 1) for i in range(12)], "strength": strengths})
    figures.append(plot_interactions(frame, truth=[(0, 1), (10, 11)]).figure)
    figures.append(plot_comparison(pd.DataFrame({
        "layer": [0, 1], "name": ["fc1", "fc2"], "nnstd": [1.0, 0.0],
        "jaccard": [1.0, 1.0], "jaccard_chance": [1.0, 0.5]})).figure)
    figures.append(plot_persistence_diagram(np.array(
        [[1.0, 1.0], [1.0, 0.0], [0.3, 0.0], [0.3, 0.3], [1.0, 0.5]])).figure)
    assert [_hidden_points(fig) for fig in figures] == [0] * len(figures)



def test_every_value_of_the_evolution_panels_is_drawn_inside_the_axes():
    # the dense output layer's NNSTD and churn are 0 throughout, the test accuracy reaches 1:
    # a line on the edge of the axes is half hidden by it
    frame = _evolution_frame()
    frame.loc[frame["layer"] == 1, ["nnstd_to_first", "nnstd_to_previous", "churn"]] = 0.0
    frame["test_accuracy"] = [0.0, 0.0, 0.5, 0.5, 1.0, 1.0, 1.0, 1.0]
    for ax in plot_evolution(frame):
        low, high = ax.get_ylim()
        drawn = [line for line in ax.lines if line.get_linestyle() != ":"]
        assert drawn
        for line in drawn:
            y = np.asarray(line.get_ydata(), dtype=np.float64)
            y = y[np.isfinite(y)]
            assert np.all((y > low) & (y < high)), (ax.get_title(), low, high)
