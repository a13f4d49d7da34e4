"""Folders of other programs' checkpoints read as runs: which files, their time order, and
where each epoch and step came from (file metadata, a number in the name, or neither)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import topo
from topo.errors import UnreadableFileError
from topo.graph import LayeredGraph
from topo.io.run import checkpoint_stem, name_times, snapshot_paths
from topo.io.sequence import FileTime, file_times, read_sequence


def state_dict(seed: int) -> dict[str, torch.Tensor]:
    """A 6-8-3 MLP whose first layer keeps about half of its connections."""
    g = torch.Generator().manual_seed(seed)
    keep = torch.rand(8, 6, generator=g) < 0.5
    return {"fc1.weight": torch.randn(8, 6, generator=g) * keep,
            "fc1.bias": torch.zeros(8),
            "fc2.weight": torch.randn(3, 8, generator=g)}


def test_names_give_epochs_and_steps_by_their_words_or_their_only_number():
    assert name_times(["epoch=3-step=100.ckpt", "checkpoint_12.pth.tar", "model_e10.pt",
                       "epoch_0007.safetensors", "ep5.h5", "step_500.pt", "final.pt",
                       "iter-40_epoch-2.pth"]) == [
        (3, 100), (12, None), (10, None), (7, None), (5, None), (None, 500), (None, None),
        (2, 40)]


def test_several_unnamed_numbers_give_the_one_that_varies_among_files_of_one_pattern():
    assert name_times(["run2_ckpt_1.pt", "run2_ckpt_10.pt", "run2_ckpt_3.pt"]) == [
        (1, None), (10, None), (3, None)]
    # alone, or with two numbers varying, a name with several numbers says no epoch
    assert name_times(["run2_ckpt_1.pt"]) == [(None, None)]
    assert name_times(["a1_b1.pt", "a2_b2.pt"]) == [(None, None), (None, None)]


def test_checkpoint_stems_drop_double_and_single_suffixes():
    assert checkpoint_stem("checkpoint_3.pth.tar") == "checkpoint_3"
    assert checkpoint_stem("model.h5") == "model"
    assert checkpoint_stem("notes.txt") == "notes.txt"


def test_a_folder_lists_every_checkpoint_suffix_and_leaves_other_files(tmp_path):
    names = ["a.pth.tar", "b.ckpt", "c.pt", "d.h5", "e.onnx", "f.npz", "g.safetensors"]
    for name in names + ["README.md", "args.json", "events.out.tfevents.1.host"]:
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in snapshot_paths(tmp_path)] == names


def test_a_glob_selects_files_whatever_their_suffix(tmp_path):
    for name in ("ckpt_1", "ckpt_2", "ckpt_10", "other_1"):
        (tmp_path / name).write_bytes(b"x")
    assert [p.name for p in snapshot_paths(tmp_path, "ckpt_*")] == ["ckpt_1", "ckpt_2",
                                                                    "ckpt_10"]
    with pytest.raises(UnreadableFileError, match=r"no file matches 'nothing_\*'"):
        snapshot_paths(tmp_path, "nothing_*")


def test_checkpoint_dicts_give_their_own_epochs_not_their_positions(tmp_path):
    for n, epoch in zip(range(1, 5), (10, 20, 35, 50)):
        torch.save({"epoch": epoch, "state_dict": state_dict(n), "best_acc1": 0.5},
                   tmp_path / f"checkpoint_{n}.pth.tar")
    seq = read_sequence(tmp_path)
    assert seq.labels == ["checkpoint_1", "checkpoint_2", "checkpoint_3", "checkpoint_4"]
    metas = [entry.metadata for entry in seq]
    assert [m["epoch"] for m in metas] == [10, 20, 35, 50]
    assert {m["epoch_source"] for m in metas} == {"metadata"}


def test_lightning_checkpoints_give_epoch_and_global_step(tmp_path):
    for epoch in range(3):
        sd = {f"model.{k}": v for k, v in state_dict(epoch).items()}
        torch.save({"epoch": epoch, "global_step": 25 * (epoch + 1), "state_dict": sd,
                    "optimizer_states": [], "lr_schedulers": [],
                    "pytorch-lightning_version": "2.6.0"},
                   tmp_path / f"epoch={epoch}-step={25 * (epoch + 1)}.ckpt")
    assert [(m.metadata["epoch"], m.metadata["step"]) for m in read_sequence(tmp_path)] == [
        (0, 25), (1, 50), (2, 75)]


def test_files_are_put_in_the_order_of_their_own_epochs(tmp_path):
    for name, epoch in (("best.pth.tar", 2), ("last.pth.tar", 3), ("checkpoint_1.pth.tar", 1),
                        ("checkpoint_0.pth.tar", 0)):
        torch.save({"epoch": epoch, "state_dict": state_dict(epoch)}, tmp_path / name)
    seq = read_sequence(tmp_path)
    assert seq.labels == ["checkpoint_0", "checkpoint_1", "best", "last"]
    assert [t.epoch for t in seq.times] == [0, 1, 2, 3]


def test_the_file_says_its_epoch_before_its_name(tmp_path):
    torch.save({"epoch": 7, "state_dict": state_dict(0)}, tmp_path / "model_e3.pt")
    torch.save(state_dict(1), tmp_path / "model_e9.pt")   # a bare state_dict: the name
    assert file_times([tmp_path / "model_e3.pt", tmp_path / "model_e9.pt"]) == [
        FileTime(7, None, "metadata"), FileTime(9, None, "name")]


def test_files_without_any_epoch_are_read_in_name_order_and_say_so(tmp_path):
    for name in ("final.pt", "warm.pt", "base.pt"):
        torch.save(state_dict(len(name)), tmp_path / name)
    seq = read_sequence(tmp_path)
    assert seq.labels == ["base", "final", "warm"]
    metas = [entry.metadata for entry in seq]
    assert [m["epoch_source"] for m in metas] == ["order"] * 3
    assert all("epoch" not in m for m in metas)


def test_a_folder_where_only_some_files_say_their_epoch_is_refused(tmp_path):
    torch.save({"epoch": 1, "state_dict": state_dict(0)}, tmp_path / "ckpt_a.pt")
    torch.save(state_dict(1), tmp_path / "final.pt")
    with pytest.raises(UnreadableFileError, match=r"1 of 2 files say no epoch.*final\.pt.*--glob"):
        read_sequence(tmp_path)
    assert read_sequence(tmp_path, glob="ckpt_*").labels == ["ckpt_a"]


def test_legacy_torch_files_and_topo_snapshots_say_their_epochs_too(tmp_path):
    torch.save({"epoch": 4, "global_step": 40, "model": state_dict(0)}, tmp_path / "old.pt",
               _use_new_zipfile_serialization=False)
    graph = LayeredGraph([np.eye(2)], metadata={"epoch": 6, "step": 60})
    topo.save_snapshot(graph, tmp_path / "snap.safetensors")
    assert file_times([tmp_path / "old.pt", tmp_path / "snap.safetensors"]) == [
        FileTime(4, 40, "metadata"), FileTime(6, 60, "metadata")]


def test_an_unreadable_checkpoint_in_a_folder_is_named(tmp_path):
    torch.save({"epoch": 1, "state_dict": state_dict(0)}, tmp_path / "ckpt_1.pt")
    (tmp_path / "ckpt_2.pt").write_bytes(b"\x80\x04 not a pickle")
    with pytest.raises(UnreadableFileError, match="ckpt_2.pt"):
        read_sequence(tmp_path)


def test_a_list_of_files_keeps_its_order_and_labels_where_epochs_came_from(tmp_path):
    torch.save({"epoch": 9, "state_dict": state_dict(0)}, tmp_path / "late.pt")
    torch.save(state_dict(1), tmp_path / "model_e2.pt")
    torch.save(state_dict(2), tmp_path / "mystery.pt")
    seq = read_sequence([tmp_path / "late.pt", tmp_path / "model_e2.pt", tmp_path / "mystery.pt"])
    metas = [entry.metadata for entry in seq]
    assert [(m.get("epoch"), m["epoch_source"]) for m in metas] == [
        (9, "metadata"), (2, "name"), (None, "order")]


def test_a_slice_keeps_the_times_found_while_ordering(tmp_path):
    for n in (1, 2, 3):
        torch.save({"epoch": 10 * n, "state_dict": state_dict(n)}, tmp_path / f"c_{n}.pt")
    tail = read_sequence(tmp_path)[1:]
    assert [t.epoch for t in tail.times] == [20, 30]
    assert [e.metadata["epoch"] for e in tail] == [20, 30]


def test_runs_keep_their_own_epochs_without_a_source_column(tmp_path, write_run):
    run = write_run(tmp_path / "run", [[np.ones((2, 3), bool)]] * 2)
    assert all("epoch_source" not in e.metadata for e in read_sequence(run))
    assert [p.name for p in snapshot_paths(run, glob="epoch_0001*")] == [
        "epoch_0001.safetensors"]


def test_labels_leave_out_checkpoint_suffixes():
    assert topo.io.sequence.short_labels([Path("x/checkpoint_1.pth.tar"),
                                          Path("x/epoch=0-step=5.ckpt")]) == [
        "checkpoint_1", "epoch=0-step=5"]


@given(st.sampled_from(["model", "trained_model", "net", "run", "ckpt", "lenet", "seed"]),
       st.integers(0, 10**6),
       st.lists(st.integers(0, 10**9), min_size=1, max_size=5, unique=True),
       st.sampled_from(["step", "global_step", "iter", "iteration"]),
       st.sampled_from([".keras", ".pt", ".ckpt", ".pth.tar"]))
def test_a_name_that_says_its_step_gives_no_epoch_from_its_other_numbers(prefix, index, steps,
                                                                         word, suffix):
    """``trained_model_0_step_2.keras``: the model's index is not an epoch."""
    names = [f"{prefix}_{index}_{word}_{s}{suffix}" for s in steps]
    assert name_times(names) == [(None, s) for s in steps]
