"""topo.Recorder: a user's own PyTorch loop recorded as a topo run, with the exact ITOP rate.

Expected values come from the tests' own bookkeeping (masks kept and united here with numpy)
or from reading a checkpoint of the same model with topo.load, never from the recorder.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils import prune

import topo
from topo.cli import main
from topo.errors import ConfigError, GraphStructureError, UnreadableFileError
from topo.io.run import read_manifest, read_metrics, read_updates
from topo.record import UnionTracker


def mlp(widths=(12, 16, 4), seed=0) -> nn.Sequential:
    torch.manual_seed(seed)
    layers: list[nn.Module] = []
    for a, b in zip(widths[:-1], widths[1:]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    return nn.Sequential(*layers[:-1])


def linears(model: nn.Module) -> list[nn.Linear]:
    return [m for m in model.modules() if isinstance(m, nn.Linear)]


def structure(graph) -> list[np.ndarray]:
    return [m.toarray() != 0 for m in graph.masks()]


def checkpoint_graph(model: nn.Module, path: Path):
    torch.save(model.state_dict(), path)
    return topo.load(path)


# ------------------------------------------------------------------ reading the module
def test_prune_buffers_are_read_as_a_checkpoint_of_the_model_would_be(tmp_path):
    model = mlp()
    for layer in linears(model):
        prune.random_unstructured(layer, "weight", amount=0.6)
    with torch.no_grad():   # a kept connection of weight exactly 0 is still a connection
        linears(model)[0].weight_orig[linears(model)[0].weight_mask.bool()][:1].zero_()
        first = linears(model)[0]
        row, col = first.weight_mask.nonzero()[0]
        first.weight_orig[row, col] = 0.0
    rec = topo.Recorder(model, tmp_path / "run")
    got = rec.graph()
    want = checkpoint_graph(model, tmp_path / "model.pt")
    assert got.names == want.names == ["0", "2"]
    assert got.widths == want.widths == [12, 16, 4]
    for a, b in zip(structure(got), structure(want)):
        np.testing.assert_array_equal(a, b)
    for a, b in zip(got.layers, want.layers):
        np.testing.assert_array_equal(a.toarray(), b.toarray())
    assert structure(got)[0][row, col]   # the zero-weight connection kept
    assert read_manifest(tmp_path / "run")["recorder"]["structure"] == [
        "the mask 0.weight_mask", "the mask 2.weight_mask"]


def test_parametrization_masks_are_read_from_the_live_module(tmp_path):
    from torch.ao.pruning import WeightNormSparsifier

    model = mlp()
    sparsifier = WeightNormSparsifier(sparsity_level=0.5, sparse_block_shape=(1, 1),
                                      zeros_per_block=1)
    sparsifier.prepare(model, config=[{"tensor_fqn": "0.weight"}, {"tensor_fqn": "2.weight"}])
    sparsifier.step()
    masks = [linears(model)[k].parametrizations.weight[0].mask.bool().numpy()
             for k in (0, 1)]
    assert "0.parametrizations.weight.0.mask" not in model.state_dict()   # torch leaves it out
    rec = topo.Recorder(model, tmp_path / "run")
    got = rec.graph()
    for a, mask in zip(structure(got), masks):
        np.testing.assert_array_equal(a, mask)
    sparsifier.squash_mask()   # the pruned weights, as a checkpoint would then hold them
    want = checkpoint_graph(model, tmp_path / "model.pt")
    for a, b in zip(got.layers, want.layers):
        np.testing.assert_array_equal(a.toarray(), b.toarray())


def test_zeros_are_the_structure_of_a_plain_model(tmp_path):
    model = mlp()
    with torch.no_grad():
        linears(model)[0].weight[:, ::2] = 0.0
    rec = topo.Recorder(model, tmp_path / "run")
    rec.snapshot(epoch=0)
    want = np.ones((16, 12), bool)
    want[:, ::2] = False
    np.testing.assert_array_equal(structure(rec.graph())[0], want)
    row = read_metrics(tmp_path / "run").iloc[0]
    assert row["connections_0"] == 16 * 6 and row["itop_rate_0"] == 0.5
    # no layer has a mask, so the network rate counts every layer
    assert row["itop_rate_network"] == (96 + 64) / (192 + 64)


def test_a_dict_of_masks_kept_by_the_training_code_is_read_at_every_call(tmp_path):
    model = mlp()
    masks = {"0": torch.zeros(16, 12, dtype=torch.bool), "2.weight": torch.ones(4, 16)}
    masks["0"][:, :3] = True
    rec = topo.Recorder(model, tmp_path / "run", masks=masks)
    rec.update()
    masks["0"][:, 3] = True          # in place: 16 connections more
    masks["0"][0, 0] = False         # and one less
    rec.update()
    masks["2.weight"] = torch.zeros(4, 16)   # replaced: every connection gone
    masks["2.weight"][0, 0] = 1.0
    rec.update()
    rec.snapshot(epoch=1)
    row = read_metrics(tmp_path / "run").iloc[0]
    assert (row["added_0"], row["removed_0"]) == (16, 1)
    assert (row["added_1"], row["removed_1"]) == (0, 63)
    assert row["connections_0"] == 16 * 4 - 1
    assert row["itop_rate_0"] == 16 * 4 / 192   # (0, 0) was a connection once
    assert row["itop_rate_1"] == 1.0


# ------------------------------------------------------------------ the union
@pytest.mark.parametrize("kind", ["numpy", "torch"])   # torch: the path of accelerators
def test_the_union_tracker_counts_what_each_update_added_and_removed(kind):
    as_kind = (lambda x: x.copy()) if kind == "numpy" else (lambda x: torch.from_numpy(x.copy()))
    a = np.array([[1, 1, 0], [0, 0, 1]], bool)          # 6 positions (not whole words)
    b = np.array([[1, 0, 0], [0, 1, 1]], bool)
    c = np.zeros((8, 8), bool)                           # 64 positions (eight words)
    c[0, :5] = True
    d = c.copy()
    d[0, 0], d[7, 7] = False, True
    tracker = UnionTracker()
    reused = [as_kind(a), as_kind(c)]
    assert tracker.observe(reused) is None
    assert tracker.observe([as_kind(a), as_kind(c)]) is None   # nothing changed
    reused[0][0, 2] = True   # the caller's arrays were copied, not kept
    assert tracker.counts() == [3, 5]
    added, removed, before = tracker.observe([as_kind(b), as_kind(d)])
    assert (added, removed, before) == ([1, 1], [1, 1], [3, 5])
    assert tracker.counts() == [4, 6] and tracker.sizes() == [6, 64]
    assert tracker.connections == [3, 5]
    tracker.observe([as_kind(a), as_kind(c)])   # back: the union does not shrink
    assert tracker.counts() == [4, 6]
    with pytest.raises(GraphStructureError, match="changed shape"):
        tracker.observe([as_kind(a.T), as_kind(c)])


def test_a_resumed_union_tracker_keeps_the_checkpoint_union_and_adds_the_structure_now():
    kept = [np.array([1, 1, 0, 0, 0, 0, 0, 0, 0], bool)]   # ever connected before the stop
    now = [np.array([0, 1, 1, 0, 0, 0, 0, 0, 0], bool)]    # the model as resumed
    tracker = UnionTracker()
    tracker.resume(kept, now)
    kept[0][:] = True   # copied, not kept
    assert tracker.counts() == [3] and tracker.connections == [2]
    later = [np.array([0, 0, 1, 1, 0, 0, 0, 0, 0], bool)]
    assert tracker.observe(later) == ([1], [1], [2])   # compared with the model as resumed
    assert tracker.counts() == [4]
    with pytest.raises(GraphStructureError, match="shape"):
        UnionTracker().resume([np.zeros(9, bool)], [np.zeros(8, bool)])
    with pytest.raises(GraphStructureError, match="layers"):
        UnionTracker().resume([np.zeros(9, bool)], [])


def magnitude_prune_and_rigl_run(out: Path, *, epochs=3, steps=6, every_update=2, seed=0):
    """Trains 12-16-4 on random data with prune buffers: magnitude pruning every epoch, and
    every ``every_update`` steps RigL's drop (smallest |w|) and grow (largest dense |grad|)
    of three connections of the first layer. Returns what the test itself saw."""
    model = mlp(seed=seed)
    layers = linears(model)
    for layer in layers:
        prune.l1_unstructured(layer, "weight", amount=0.5)
    opt = torch.optim.SGD(model.parameters(), lr=0.05)
    g = torch.Generator().manual_seed(seed)
    x, y = torch.randn(64, 12, generator=g), torch.randn(64, 4, generator=g)

    def masks_now():
        return [layer.weight_mask.detach().numpy() != 0 for layer in layers]

    union = masks_now()
    previous = masks_now()
    seen = {"rates": [], "network": [], "snapshots": [], "update_changes": []}

    def observed():
        nonlocal previous
        now = masks_now()
        changes = [(int((n & ~p).sum()), int((p & ~n).sum())) for n, p in zip(now, previous)]
        if any(a or r for a, r in changes):
            seen["update_changes"].append(changes)
        for k in range(len(union)):
            union[k] |= now[k]
        previous = now
        seen["network"].append(sum(u.sum() for u in union) / sum(u.size for u in union))
        return [u.sum() / u.size for u in union]

    with topo.Recorder(model, out, metadata={"method": "prune+rigl", "seed": seed}) as rec:
        rec.snapshot(epoch=0)
        seen["snapshots"].append(masks_now())
        step = 0
        for epoch in range(1, epochs + 1):
            for _ in range(steps):
                loss = nn.functional.mse_loss(model(x), y)
                (dense_grad,) = torch.autograd.grad(loss, layers[0].weight, retain_graph=True)
                opt.zero_grad()
                loss.backward()
                opt.step()
                step += 1
                if step % every_update == 0:
                    with torch.no_grad():
                        mask = layers[0].weight_mask
                        active = mask.bool()
                        size = layers[0].weight_orig.abs().masked_fill(~active, np.inf)
                        drop = torch.topk(size.flatten(), 3, largest=False).indices
                        grow = torch.topk(dense_grad.abs().masked_fill(active, -1).flatten(),
                                          3).indices
                        mask.view(-1)[drop] = 0.0
                        mask.view(-1)[grow] = 1.0
                        layers[0].weight_orig.view(-1)[grow] = 0.0
                rec.update()
                rates = observed()
                np.testing.assert_allclose(rec.itop_rate, rates)   # at every update
                assert rec.itop_rate_network == pytest.approx(seen["network"][-1])
                seen["rates"].append(rates)
            for layer in layers:
                prune.l1_unstructured(layer, "weight", amount=10)
            rec.update()
            seen["rates"].append(observed())
            rec.snapshot(epoch=epoch, metrics={"loss": loss.item()})
            seen["snapshots"].append(masks_now())
    seen["union_at_snapshots"] = [None] + [seen["rates"][(steps + 1) * e - 1]
                                           for e in range(1, epochs + 1)]
    seen["union_at_snapshots"][0] = [m.sum() / m.size for m in seen["snapshots"][0]]
    first = seen["snapshots"][0]
    seen["network_at_snapshots"] = [sum(m.sum() for m in first) / sum(m.size for m in first)
                                    ] + [seen["network"][(steps + 1) * e - 1]
                                         for e in range(1, epochs + 1)]
    return seen


@pytest.mark.xdist_group("torch-dynamo")   # torch.optim imports torch._dynamo
def test_a_recorded_pruning_and_regrowth_run_shows_epochs_churn_and_the_exact_itop_rate(
        tmp_path, capsys):
    run = tmp_path / "run"
    seen = magnitude_prune_and_rigl_run(run)
    assert main(["evolution", str(run), "--json", "--no-persistence"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert sorted({r["epoch"] for r in rows}) == [0, 1, 2, 3]
    snaps = seen["snapshots"]
    for r in rows:
        e, k = r["epoch"], r["layer"]
        assert r["connections"] == snaps[e][k].sum()
        if e > 0:   # churn between snapshots: removed / connections before
            removed = (snaps[e - 1][k] & ~snaps[e][k]).sum()
            assert r["churn"] == pytest.approx(removed / snaps[e - 1][k].sum())
        # the exact rate of every update, not the union of the snapshots
        assert r["itop_rate"] == pytest.approx(seen["union_at_snapshots"][e][k])
        assert r["itop_rate_network"] == pytest.approx(seen["network_at_snapshots"][e])
    last = [r for r in rows if r["epoch"] == 3]
    snapshot_union = [np.logical_or.reduce([s[k] for s in snaps]).mean() for k in (0, 1)]
    assert last[0]["itop_rate"] > snapshot_union[0]   # regrowth between snapshots
    assert [r["itop_rate_snapshots"] for r in last] == pytest.approx(snapshot_union)
    # every update that changed the structure, and the sums per epoch
    updates = read_updates(run)
    assert len(updates) == len(seen["update_changes"])
    assert updates["added_0"].tolist() == [c[0][0] for c in seen["update_changes"]]
    assert updates["removed_1"].tolist() == [c[1][1] for c in seen["update_changes"]]
    metrics = read_metrics(run)
    assert metrics["added_0"].sum() == sum(c[0][0] for c in seen["update_changes"])
    assert metrics["epoch"].tolist() == [0, 1, 2, 3]
    manifest = read_manifest(run)
    assert manifest["status"] == "finished"
    assert manifest["final_snapshot"] == "snapshots/epoch_0003.safetensors"
    assert manifest["metadata"] == {"method": "prune+rigl", "seed": 0}
    graph = topo.load(run)
    assert graph.metadata["epoch"] == 3 and graph.metadata["method"] == "prune+rigl"


# ------------------------------------------------------------------ the run's files
def test_every_n_epochs_a_snapshot_file_and_a_metrics_row_at_every_call(tmp_path):
    rec = topo.Recorder(mlp(), tmp_path / "run", every=2)
    written = [rec.snapshot(epoch=e) for e in range(1, 6)]
    rec.close()
    assert [p.name if p else None for p in written] == [
        "epoch_0001.safetensors", "epoch_0002.safetensors", None,
        "epoch_0004.safetensors", None]
    assert read_metrics(tmp_path / "run")["epoch"].tolist() == [1, 2, 3, 4, 5]
    assert rec.snapshot.__self__.last_snapshot == "snapshots/epoch_0004.safetensors"


def test_levels_go_to_their_own_folders_and_epochs_count_from_calls(tmp_path):
    rec = topo.Recorder(mlp(), tmp_path / "run")
    rec.snapshot()
    rec.snapshot()
    rec.snapshot(epoch=0, level=1)
    rec.close()
    seq = topo.read_sequence(tmp_path / "run")
    assert [p.relative_to(tmp_path / "run").as_posix() for p in seq.sources] == [
        "snapshots/epoch_0000.safetensors", "snapshots/epoch_0001.safetensors",
        "snapshots/level_01/epoch_0000.safetensors"]
    assert [(e.metadata.get("level"), e.metadata["epoch"]) for e in seq] == [
        (None, 0), (None, 1), (1, 0)]


def test_metrics_and_epochs_are_checked(tmp_path):
    rec = topo.Recorder(mlp(), tmp_path / "run")
    rec.snapshot(epoch=2, metrics={"loss": torch.tensor(0.5), "acc": np.float32(0.25),
                                   "per_layer": [1, 2]})
    row = read_metrics(tmp_path / "run").iloc[0]
    assert (row["loss"], row["acc"], row["per_layer_1"]) == (0.5, 0.25, 2)
    with pytest.raises(ConfigError, match="epoch 2 was recorded already"):
        rec.snapshot(epoch=2)
    with pytest.raises(ConfigError, match="'itop_rate' is written by topo itself"):
        rec.snapshot(epoch=3, metrics={"itop_rate": 1})
    with pytest.raises(ConfigError, match="one value per layer"):
        rec.snapshot(epoch=3, metrics={"x": [1, 2, 3]})
    with pytest.raises(ConfigError, match="'x': dict is not a number"):
        rec.snapshot(epoch=3, metrics={"x": {}})
    with pytest.raises(ConfigError, match="epoch=-1"):
        rec.snapshot(epoch=-1)


def test_an_exception_leaving_the_with_block_marks_the_run_interrupted(tmp_path):
    with pytest.raises(RuntimeError, match="diverged"), \
            topo.Recorder(mlp(), tmp_path / "run") as rec:
        rec.snapshot(epoch=0)
        raise RuntimeError("diverged")
    manifest = read_manifest(tmp_path / "run")
    assert manifest["status"] == "interrupted"
    assert manifest["final_snapshot"] == "snapshots/epoch_0000.safetensors"
    with pytest.raises(ConfigError, match="the recorder is closed"):
        rec.update()


def test_a_folder_holding_a_run_or_other_files_is_refused(tmp_path):
    topo.Recorder(mlp(), tmp_path / "run").close()
    with pytest.raises(ConfigError, match="already holds a run"):
        topo.Recorder(mlp(), tmp_path / "run")
    rec = topo.Recorder(mlp(), tmp_path / "run", overwrite=True)
    assert read_manifest(tmp_path / "run")["status"] == "running"
    rec.close()
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not empty and holds no topo run"):
        topo.Recorder(mlp(), tmp_path / "other", overwrite=True)


def test_what_is_not_a_recordable_model_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="needs a torch.nn.Module"):
        topo.Recorder({"w": torch.ones(2, 2)}, tmp_path / "a")
    with pytest.raises(UnreadableFileError, match="'0' is a convolution"):
        topo.Recorder(nn.Sequential(nn.Conv2d(1, 2, 3), nn.BatchNorm2d(2)), tmp_path / "b")
    with pytest.raises(UnreadableFileError, match="'0' is a convolution"):
        topo.Recorder(nn.Sequential(nn.Conv2d(1, 2, 3), nn.Flatten(), nn.Linear(2 * 4 * 4, 3)),
                      tmp_path / "b")
    with pytest.raises(ConfigError, match="every=0"):
        topo.Recorder(mlp(), tmp_path / "c", every=0)
    with pytest.raises(ConfigError, match="metadata cannot be stored as JSON"):
        topo.Recorder(mlp(), tmp_path / "d", metadata={"x": object()})
    with pytest.raises(ConfigError, match="metadata 'epoch': each snapshot says its own"):
        topo.Recorder(mlp(), tmp_path / "e", metadata={"epoch": 3})
    assert not (tmp_path / "b").exists()


def test_pruning_applied_while_recording_is_followed_and_a_changed_layer_refused(tmp_path):
    model = mlp()
    rec = topo.Recorder(model, tmp_path / "run")
    rec.update()
    prune.l1_unstructured(linears(model)[1], "weight", amount=20)   # zeros -> a mask buffer
    rec.update()
    rec.snapshot(epoch=1)
    row = read_metrics(tmp_path / "run").iloc[0]
    assert (row["removed_1"], row["connections_1"]) == (20, 64 - 20)
    assert read_manifest(tmp_path / "run")["recorder"]["itop_layers"] == ["2"]
    model[2] = nn.Linear(16, 5)
    with pytest.raises(GraphStructureError, match="layers changed while recording"):
        rec.update()


@pytest.mark.xdist_group("torch-dynamo")   # torch.optim imports torch._dynamo
def test_watch_updates_after_every_optimizer_step(tmp_path):
    model = mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    rec = topo.Recorder(model, tmp_path / "run")
    handle = rec.watch(opt)
    for _ in range(3):
        opt.zero_grad()
        model(torch.randn(2, 12)).sum().backward()
        opt.step()
    handle.remove()
    opt.step()
    assert rec.n_updates == 3 and rec.step == 3


@pytest.mark.xdist_group("torch-dynamo")   # torch.optim imports torch._dynamo
def test_a_recorded_run_is_read_by_every_command(tmp_path, capsys):
    run = tmp_path / "run"
    magnitude_prune_and_rigl_run(run, epochs=2, steps=2)
    for args in (["info", str(run)], ["distances", str(run)], ["persistence", str(run)],
                 ["compare", str(run / "snapshots" / "epoch_0000.safetensors"), str(run)]):
        assert main(args) == 0, args
    assert "Traceback" not in capsys.readouterr().err


def test_topo_train_writes_every_run_file_through_the_recorders_writer(tmp_path, monkeypatch,
                                                                     capsys):
    """One writer in topo: the trainer's snapshots, metrics rows and manifest go through
    RunWriter, as the Recorder's do, and its ITOP rate is kept by the Recorder's union."""
    from topo.io.run import RunWriter
    from topo.record import UnionTracker

    calls: list[str] = []
    for method in ("save_snapshot", "write_metrics", "write_manifest"):
        original = getattr(RunWriter, method)

        def spy(self, *args, _original=original, _name=method, **kwargs):
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(RunWriter, method, spy)
    observed: list[int] = []
    observe = UnionTracker.observe

    def counting(self, structures):
        observed.append(len(structures))
        return observe(self, structures)

    monkeypatch.setattr(UnionTracker, "observe", counting)
    run = tmp_path / "run"
    assert main(["train", "--method", "set", "--arch", "64-8-10", "--density", "0.3",
                 "--epochs", "2", "--no-progress", "--out", str(run)]) == 0
    snapshots = sorted((run / "snapshots").glob("*.safetensors"))
    assert calls.count("save_snapshot") == len(snapshots) == 3   # epochs 0, 1, 2
    assert calls.count("write_metrics") == len(read_metrics(run)) == 3
    assert calls.count("write_manifest") == 2   # started, finished
    # the start, and SET's rewiring at the start of epoch 2 (none before epoch 1), each
    # over both layers
    assert observed == [2, 2]
    itop = read_metrics(run)["itop_rate_network"]
    assert itop.is_monotonic_increasing and itop.iloc[-1] > itop.iloc[0]


# ------------------------------------------------------------------ TensorBoard
def test_live_tensorboard_scalars_equal_those_of_the_finished_run(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    model = mlp()
    for layer in linears(model):
        prune.random_unstructured(layer, "weight", amount=0.5)
    first = linears(model)[0]
    union = first.weight_mask.numpy() != 0
    expected_itop = []
    with topo.Recorder(model, tmp_path / "run", tensorboard=tmp_path / "live") as rec:
        for epoch in range(4):
            if epoch:
                prune.l1_unstructured(first, "weight", amount=15)
                with torch.no_grad():   # a regrown connection
                    first.weight_mask.view(-1)[epoch] = 1.0
            rec.update()
            union |= first.weight_mask.numpy() != 0
            expected_itop.append((epoch, union.mean()))
            rec.snapshot(epoch=epoch, metrics={"loss": 1.0 / (epoch + 1)})
    assert main(["evolution", str(tmp_path / "run"), "--tensorboard",
                 str(tmp_path / "after")]) == 0

    def scalars(folder):
        (path,) = folder.glob("events.out.tfevents.*")
        acc = EventAccumulator(str(path))
        acc.Reload()
        return {t: [(e.step, e.value) for e in acc.Scalars(t)] for t in acc.Tags()["scalars"]}

    live, after = scalars(tmp_path / "live"), scalars(tmp_path / "after")
    assert set(live) == set(after)
    for tag in after:
        assert [s for s, _ in live[tag]] == [s for s, _ in after[tag]], tag
        np.testing.assert_allclose([v for _, v in live[tag]], [v for _, v in after[tag]],
                                   rtol=1e-6, err_msg=tag)
    assert live["topo/loss"] == [(0, 1.0), (1, 0.5), (2, pytest.approx(1 / 3)), (3, 0.25)]
    assert [s for s, _ in live["topo/itop_rate/0"]] == [e for e, _ in expected_itop]
    np.testing.assert_allclose([v for _, v in live["topo/itop_rate/0"]],
                               [r for _, r in expected_itop], rtol=1e-6)
    assert "topo/itop_rate_network" in live and "topo/itop_rate_snapshots/0" in live


@pytest.mark.xdist_group("torch-dynamo")   # torch.optim imports torch._dynamo
def test_the_readme_example_records_a_run(tmp_path, monkeypatch, repo_root):
    # the README's example now lives in the user guide's page on following a run
    text = (repo_root / "docs" / "guide" / "recording.md").read_text()
    blocks = [b.split("```", 1)[0] for b in text.split("```python\n")[1:]]
    (example,) = [b for b in blocks if "topo.Recorder(model, \"runs/mine\", metadata" in b]
    g = torch.Generator().manual_seed(0)
    data = [(torch.randn(8, 64, generator=g), torch.randint(0, 10, (8,), generator=g))
            for _ in range(3)]
    monkeypatch.chdir(tmp_path)
    exec(example, {"train_loader": data, "loss_fn": nn.functional.cross_entropy,  # noqa: S102
                   "evaluate": lambda model: 0.5})
    metrics = read_metrics(tmp_path / "runs" / "mine")
    assert metrics["epoch"].tolist() == list(range(11))
    # global magnitude pruning: half of the 7400 weights at first, then 10 % of the rest
    kept = [3700]
    for _ in range(10):
        kept.append(kept[-1] - round(0.1 * kept[-1]))
    assert (metrics["connections_0"] + metrics["connections_1"]).tolist() == kept
    assert read_manifest(tmp_path / "runs" / "mine")["status"] == "finished"


def test_a_weight_norm_layer_is_read_by_the_pipeline_at_every_update(tmp_path):
    from torch.nn.utils.parametrizations import weight_norm

    model = mlp()
    with torch.no_grad():
        model[0].weight[:4] = 0.0   # four output units without inputs
    model[0] = weight_norm(model[0])
    rec = topo.Recorder(model, tmp_path / "run")
    assert read_manifest(tmp_path / "run")["recorder"]["structure"][0] == (
        "the reading pipeline at every update")
    want = checkpoint_graph(model, tmp_path / "model.pt")   # w = g v / ||v||, as topo.load
    for a, b in zip(rec.graph().layers, want.layers):
        np.testing.assert_allclose(a.toarray(), b.toarray())
    rec.update()
    with torch.no_grad():
        model[0].parametrizations.weight.original1[4:6] = 0.0   # v: two more units emptied
    rec.update()
    rec.snapshot(epoch=1)
    row = read_metrics(tmp_path / "run").iloc[0]
    assert (row["connections_0"], row["removed_0"]) == (12 * 10, 24)


def test_the_recorder_before_any_observation_and_its_argument_checks(tmp_path):
    rec = topo.Recorder(mlp(), tmp_path / "run")
    assert np.isnan(rec.itop_rate).all() and np.isnan(rec.itop_rate_network)
    assert repr(rec) == (f"Recorder(Sequential, {str(tmp_path / 'run')!r}, 2 layers, "
                         "status='running')")
    rec.snapshot(epoch=0, metrics={"scores": np.array([0.5, 0.25])})
    assert read_metrics(tmp_path / "run")["scores_1"].tolist() == [0.25]
    with pytest.raises(ConfigError, match="masks must be a dict"):
        topo.Recorder(mlp(), tmp_path / "a", masks=[torch.ones(16, 12)])
    with pytest.raises(ConfigError, match="tensorboard_step 'hours'"):
        topo.Recorder(mlp(), tmp_path / "b", tensorboard=tmp_path / "tb",
                      tensorboard_step="hours")
    (tmp_path / "file").write_text("x")
    with pytest.raises(ConfigError, match="exists and is not a folder"):
        topo.Recorder(mlp(), tmp_path / "file")


def test_overwriting_a_run_removes_its_old_snapshots(tmp_path):
    with topo.Recorder(mlp(), tmp_path / "run") as rec:
        for epoch in range(3):
            rec.snapshot(epoch=epoch)
    with topo.Recorder(mlp(), tmp_path / "run", overwrite=True) as rec:
        rec.snapshot(epoch=0)
    assert [p.name for p in topo.snapshot_paths(tmp_path / "run")] == [
        "epoch_0000.safetensors"]
    assert read_metrics(tmp_path / "run")["epoch"].tolist() == [0]
