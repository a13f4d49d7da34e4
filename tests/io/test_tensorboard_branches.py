"""TensorBoard scalars of an evolution table: the choice of the step axis, values that are
not finite, and folders that cannot be written. The expected scalars are read off the small
tables written here; event files are read back with TensorBoard's own reader."""

from __future__ import annotations

import math

import pytest

pd = pytest.importorskip("pandas")
pytest.importorskip("tensorboard")

from topo.errors import ConfigError, OutputError  # noqa: E402
from topo.io.tensorboard import EventWriter, evolution_scalars, write_evolution_events  # noqa: E402,I001


def _table(**extra) -> pd.DataFrame:
    """Two snapshots of a two-layer network."""
    frame = pd.DataFrame({"snapshot": [0, 0, 1, 1], "epoch": [1, 1, 1, 1],
                          "layer": [0, 1, 0, 1], "name": ["fc0", "fc1", "fc0", "fc1"],
                          "density": [0.5, 0.25, 0.4, math.nan],
                          "run_loss": [2.0, 2.0, math.nan, math.nan]})
    for key, values in extra.items():
        frame[key] = values
    return frame


def test_an_unknown_step_axis_is_refused():
    with pytest.raises(ConfigError, match=r"^TensorBoard step 'time': choose one of epoch, "
                                          r"step, snapshot$"):
        list(evolution_scalars(_table(), step="time"))


def test_with_pruning_levels_the_epoch_axis_becomes_the_snapshot_position():
    # epoch 1 of level 0 and epoch 1 of level 1 would fall on one step
    scalars = list(evolution_scalars(_table(level=[0, 0, 1, 1]), step="epoch"))
    assert {x for _, x, _ in scalars} == {0, 1}


def test_values_that_are_not_finite_are_left_out():
    scalars = list(evolution_scalars(_table(), network_columns=["run_loss"]))
    assert scalars == [("topo/density/fc0", 1, 0.5), ("topo/density/fc1", 1, 0.25),
                       ("topo/run_loss", 1, 2.0), ("topo/density/fc0", 1, 0.4)]


def test_a_table_without_steps_refuses_the_step_axis():
    with pytest.raises(ConfigError, match=r"^TensorBoard step 'step': not every snapshot has "
                                          r"a step"):
        list(evolution_scalars(_table(step=[10, 10, None, None]), step="step"))


def test_a_logdir_that_is_a_file_is_refused_and_nothing_is_left(tmp_path):
    logdir = tmp_path / "events"
    logdir.write_text("not a folder")
    with pytest.raises(OutputError, match=rf"^{logdir}: cannot write \("):
        write_evolution_events(_table(), logdir)
    assert logdir.read_text() == "not a folder"


def test_events_are_written_and_read_back(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    path = write_evolution_events(_table(), tmp_path / "events", step="snapshot",
                                  network_columns=["run_loss"])
    assert path.parent == tmp_path / "events"
    assert [p.name for p in (tmp_path / "events").iterdir()] == [path.name]
    acc = EventAccumulator(str(path))
    acc.Reload()
    assert sorted(acc.Tags()["scalars"]) == ["topo/density/fc0", "topo/density/fc1",
                                             "topo/run_loss"]
    fc0 = [(e.step, e.value) for e in acc.Scalars("topo/density/fc0")]
    assert fc0 == [(0, 0.5), (1, pytest.approx(0.4))]
    assert [(e.step, e.value) for e in acc.Scalars("topo/density/fc1")] == [(0, 0.25)]


def test_an_event_writer_may_be_flushed_and_closed_more_than_once(tmp_path):
    writer = EventWriter(tmp_path / "logs")
    writer.add_scalars([("a", 0, 1.0)])
    writer.flush()
    first = writer.close()
    writer.flush()                      # after closing: nothing to do
    assert writer.close() == first == writer.path
    assert first.is_file() and first.parent == tmp_path / "logs"


def test_an_event_writer_in_a_folder_that_cannot_be_made_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputError, match=r"cannot write \("):
        EventWriter(tmp_path / "file" / "logs")
