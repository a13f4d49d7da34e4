"""Recorder: topo snapshots, metrics and the exact ITOP rate from your own training loop.

:class:`Recorder` follows any ``torch.nn.Module`` whose sparsity lives in

- its zeros (weights set to 0 and kept there),
- ``torch.nn.utils.prune`` buffers (``weight_orig`` + ``weight_mask``),
- parametrizations (``torch.ao.pruning``'s ``FakeSparsity`` masks, read from the live
  module, which its ``state_dict`` leaves out), or
- a dict of masks the training code keeps (``masks={"fc1": mask, ...}``, read at every call,
  so masks changed in place are seen).

The module is read by the reading pipeline's own rules (:mod:`topo.io.state_dict`: extract ->
resolve the layer chain -> build), so a model is read the same way a checkpoint of it would be:
same layer names, order and orientation, same structure (a mask's non-zeros, else the
weight's), same refusals. :meth:`Recorder.snapshot` writes a topo snapshot and a metrics row
into a run directory (:mod:`topo.io.run`) that every topo command reads like one of its own;
:meth:`Recorder.update`, called after each optimizer or mask step (or hooked to the optimizer
with :meth:`Recorder.watch`), keeps the union of every structure seen (the in-time
over-parameterisation rate of Liu et al. 2021, exactly) and the connections each update
added and removed, without writing a snapshot. Leaving the ``with`` block (or
:meth:`Recorder.close`) marks the run ``finished``, or ``interrupted`` when an exception left
it.

Example, around a plain PyTorch loop with ``torch.nn.utils.prune``::

    with topo.Recorder(model, "runs/mine") as rec:
        rec.snapshot(epoch=0)
        for epoch in range(1, epochs + 1):
            for x, y in loader:
                ...; optimizer.step()
                rec.update()
            prune.global_unstructured(layers, prune.L1Unstructured, amount=0.2)
            rec.snapshot(epoch=epoch, metrics={"test_accuracy": evaluate(model)})

Run files (see :mod:`topo.io.run`): ``run.json`` (``format`` ``topo.run``, ``status``
``running``/``finished``/``interrupted``, ``recorder`` with the model class, ``every``, each
layer's structure source and the layers the network ITOP rate counts, the user's
``metadata``, versions, start and end times, ``final_snapshot``/``best_snapshot``),
``metrics.jsonl`` (one row per :meth:`~Recorder.snapshot` call: ``epoch``, ``level`` when
given, ``step``, the caller's metrics, then per layer ``density``, ``connections``, ``added``
and ``removed`` (summed over the updates since the previous row), ``itop_rate``, then
``itop_rate_network`` and ``mask_updates``), ``updates.jsonl`` (one row per update that changed
the structure: :func:`topo.io.run.read_updates`) and ``snapshots/epoch_XXXX.safetensors``.
"""

from __future__ import annotations

import json
import math
import platform
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from topo.errors import ConfigError, GraphStructureError, OutputError, UnreadableFileError
from topo.io.run import (
    MANIFEST_NAME,
    METRICS_NAME,
    RUN_FORMAT,
    SNAPSHOT_DIR,
    UPDATES_NAME,
    RunWriter,
    metrics_line,
    snapshot_name,
)

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from topo.graph import LayeredGraph
    from topo.io.pipeline import Extraction, Resolution

__all__ = ["Recorder", "UnionTracker", "RESERVED_METRICS"]

#: Metric names a :class:`Recorder` writes itself; ``snapshot(metrics=...)`` may not use them.
RESERVED_METRICS = ("epoch", "level", "step", "density", "connections", "added", "removed",
                    "itop_rate", "itop_rate_network", "mask_updates")
_MASK_PREFIX = "masks/"   # keys of the caller's masks among the module's tensors


class UnionTracker:
    """The union of every structure a network has had, and what each update changed.

    One boolean array per layer holds every position that has been a connection at some
    observed moment; the rate of Liu et al. (2021), ``R_s = ||Σ_t M_t||_0 / S``, is its count
    over the layer's possible connections. Each observation compares the new structure with
    the previous one, so an update reports the connections it added and removed.

    Structures are numpy boolean arrays, or torch boolean tensors on an accelerator (kept on
    their device).

    Notes
    -----
    O(possible connections) per observation and layer, in a few vectorised passes: the
    comparison with the previous structure, and for a layer that changed the added and
    removed positions and the union, each over the bytes of the structure read eight at a
    time. The ITOP rate counts the union (one pass) when asked.

    References
    ----------
    S. Liu, L. Yin, D. C. Mocanu, M. Pechenizkiy, "Do we actually need dense
    over-parameterization? In-time over-parameterization in sparse training", ICML 2021.
    """

    def __init__(self) -> None:
        self.union: list[Any] | None = None
        self.previous: list[Any] | None = None
        self.connections: list[int] = []

    @property
    def started(self) -> bool:
        """Whether a structure has been observed."""
        return self.union is not None

    def observe(self, structures: Sequence[Any]
                ) -> tuple[list[int], list[int], list[int]] | None:
        """Add boolean structures (one per layer, fixed shapes) to the union. They are
        copied, so the caller may reuse its arrays.

        Returns
        -------
        (added, removed, connections before) per layer, or None when nothing changed (and at
        the first observation).

        Raises
        ------
        GraphStructureError
            A different number of layers, or a layer of another shape, than before.
        """
        if self.union is None:
            self.union = [_copy(s) for s in structures]
            self.previous = [_copy(s) for s in structures]
            self.connections = [_count(s) for s in structures]
            return None
        if len(structures) != len(self.union):
            raise GraphStructureError(f"{len(structures)} layers observed where the union "
                                      f"has {len(self.union)}")
        added = [0] * len(structures)
        removed = [0] * len(structures)
        before = list(self.connections)
        changed = False
        for k, (now, prev) in enumerate(zip(structures, self.previous)):
            if tuple(now.shape) != tuple(prev.shape):
                raise GraphStructureError(f"layer {k} changed shape from {tuple(prev.shape)} "
                                          f"to {tuple(now.shape)}")
            if _same(now, prev):
                continue
            added[k] = _count(_and_not(now, prev))
            removed[k] = _count(_and_not(prev, now))
            self.connections[k] = before[k] + added[k] - removed[k]
            _or_into(self.union[k], now)
            _copy_into(self.previous[k], now)
            changed = changed or added[k] > 0 or removed[k] > 0
        return (added, removed, before) if changed else None

    def resume(self, union: Sequence[Any], structures: Sequence[Any]) -> None:
        """Start again from a union kept earlier (a checkpoint's) and the structures now,
        which are added to it. Both are copied.

        Raises
        ------
        GraphStructureError
            A different number of layers, or a layer of another shape, in the two.
        """
        if len(union) != len(structures):
            raise GraphStructureError(f"a union of {len(union)} layers resumed with "
                                      f"{len(structures)} layers")
        for k, (u, s) in enumerate(zip(union, structures)):
            if tuple(u.shape) != tuple(s.shape):
                raise GraphStructureError(f"layer {k}: a union of shape {tuple(u.shape)} "
                                          f"resumed with a structure of shape "
                                          f"{tuple(s.shape)}")
        self.union = [_copy(u) for u in union]
        self.previous = [_copy(s) for s in structures]
        self.connections = [_count(s) for s in structures]
        for u, s in zip(self.union, structures):
            _or_into(u, s)

    def counts(self) -> list[int]:
        """Positions ever connected, per layer."""
        return [_count(u) for u in self.union] if self.union is not None else []

    def sizes(self) -> list[int]:
        """Possible connections per layer."""
        return [int(np.prod(u.shape)) for u in self.union] if self.union is not None else []


@dataclass
class _LayerSource:
    """Where one layer's structure is read from at every update."""

    name: str
    kind: str            # "mask" (a tensor's non-zeros are the connections), "weight"
    key: str | None      # the tensor (a module key, or masks/<name>); None: run the pipeline
    transposed: bool
    described: str


class Recorder:
    """Snapshots, metrics and the exact ITOP rate of a training run you run yourself.

    Parameters
    ----------
    model
        The ``torch.nn.Module`` being trained (any device). Its fully-connected layers are
        found by the reading pipeline's rules, as in a checkpoint of it.
    out_dir
        The run directory to write; new, empty, or (with ``overwrite``) a run written before.
    masks
        Optional dict of masks kept by the training code, keyed by layer or weight name
        (``"fc1"``, ``"fc1.weight"``); their non-zeros are the layers' connections. Read
        again at every call, so it may be changed in place or have entries replaced.
    every
        Write a snapshot file at the first :meth:`snapshot` call and at epochs divisible by
        ``every`` (metrics rows are written at every call).
    metadata
        JSON-serialisable facts about the run (method, seed, data set, ...): kept in
        ``run.json`` and in every snapshot's metadata. ``run_id`` names the run.
    tensorboard
        A log folder: every evolution column of each written snapshot is also written there as
        TensorBoard scalars, per layer (:mod:`topo.io.tensorboard`), as the run goes. Costs an
        NNSTD computation to the first and to the previous snapshot per snapshot.
    tensorboard_step
        The scalars' global step: ``"epoch"`` (default), ``"step"`` or ``"snapshot"``.
    input_shape
        Shape of one input sample (e.g. ``(28, 28)``) for input-connectivity pictures.
    overwrite
        Replace a run that ``out_dir`` holds (its run files only).

    Raises
    ------
    ConfigError
        ``model`` is not a module, ``every`` < 1, metadata that is not JSON, an ``out_dir``
        that holds another run or other files.
    UnreadableFileError, GraphStructureError
        The module has no fully-connected chain that the pipeline can read (as for a
        checkpoint of it), or it holds a convolution (the recorder follows MLPs only).

    Notes
    -----
    The union starts at the first :meth:`update` or :meth:`snapshot`, so masks applied right
    after making the recorder (pruning at initialisation) are the first structure. Call
    :meth:`update` after every change of the structure (or every optimizer step): changes
    made and undone between two calls are not seen. A structure that lives in the zeros of
    the weights is read after the call that zeroes them.

    References
    ----------
    S. Liu, L. Yin, D. C. Mocanu, M. Pechenizkiy, "Do we actually need dense
    over-parameterization? In-time over-parameterization in sparse training", ICML 2021
    (the ITOP rate ``R_s``).
    """

    def __init__(self, model: Any, out_dir: str | Path, *,
                 masks: Mapping[str, Any] | None = None, every: int = 1,
                 metadata: Mapping[str, Any] | None = None,
                 tensorboard: str | Path | None = None, tensorboard_step: str = "epoch",
                 input_shape: Sequence[int] | None = None, overwrite: bool = False) -> None:
        import torch

        if not isinstance(model, torch.nn.Module):
            raise ConfigError(f"Recorder needs a torch.nn.Module, got {type(model).__name__}")
        if not isinstance(every, int) or isinstance(every, bool) or every < 1:
            raise ConfigError(f"every={every!r}: snapshots every N epochs needs an integer "
                              "N >= 1")
        if masks is not None and not isinstance(masks, Mapping):
            raise ConfigError(f"masks must be a dict of name -> mask, got "
                              f"{type(masks).__name__}")
        self.model = model
        self.masks = masks
        self.every = every
        self.metadata = dict(metadata or {})
        _check_json(self.metadata, "metadata")
        taken = sorted(set(self.metadata) & {"epoch", "step", "level"})
        if taken:
            raise ConfigError(f"metadata {taken[0]!r}: each snapshot says its own epoch, step "
                              "and level (pass them to snapshot())")
        self.input_shape = tuple(input_shape) if input_shape is not None else None
        self.path = Path(out_dir)
        self.run_id = str(self.metadata.get("run_id")
                          or f"{type(model).__name__}-{uuid.uuid4().hex[:8]}")
        self._where = Path(f"<{type(model).__name__} module>")
        self._plan_resolution: tuple[list[str], list[tuple[int, int]], Resolution] | None = None
        self._sources, self._keys, extraction = self._plan()
        graph = self._build(extraction)
        self.layer_names: list[str] = list(graph.names)
        self.widths: list[int] = graph.widths
        self._skipped = graph.metadata.get("skipped", [])
        self._tracker = UnionTracker()
        self._buffers: dict[int, Any] = {}
        self._counted = self._itop_layers()
        self.step = 0
        self.n_updates = 0
        self._pending = self._zero_counts()
        self._rows: list[str] = []
        self._update_rows: list[str] = []
        self._last: tuple[int, int] | None = None    # (level, epoch) of the last row
        self._snapshots = 0
        self.last_snapshot: str | None = None
        self.status = "running"
        self._tensorboard = None
        if tensorboard is not None:
            from topo.io.tensorboard import STEP_CHOICES, require_tensorboard

            require_tensorboard()
            if tensorboard_step not in STEP_CHOICES:
                raise ConfigError(f"tensorboard_step {tensorboard_step!r}: choose one of "
                                  f"{', '.join(STEP_CHOICES)}")
        self._tb_dir = tensorboard
        self._tb_step = tensorboard_step
        self._tb_first: LayeredGraph | None = None
        self._tb_previous: LayeredGraph | None = None
        self._tb_union: list[Any] | None = None
        self._tb_count = 0
        self._writer = RunWriter(self.path)
        self._prepare(overwrite)
        self._started = _now()
        self._writer.write_manifest(self._manifest())

    # ------------------------------------------------------------------ public
    def update(self, step: int | None = None) -> None:
        """Observe the structure now: grow the union and count what changed since the
        previous observation. Call after every optimizer step or mask update.

        Parameters
        ----------
        step
            The optimizer step (default: the number of :meth:`update` calls so far).
        """
        self._require_open()
        self.n_updates += 1
        self.step = self.n_updates if step is None else int(step)
        self._observe()

    def watch(self, optimizer: Any) -> Any:
        """Call :meth:`update` after every ``optimizer.step()``; returns the hook's handle
        (``handle.remove()`` stops it). Masks changed outside optimizer steps still need
        :meth:`update`."""
        return optimizer.register_step_post_hook(lambda *args, **kwargs: self.update())

    def snapshot(self, *, epoch: int | None = None, step: int | None = None,
                 metrics: Mapping[str, Any] | None = None, level: int | None = None,
                 force: bool = False) -> Path | None:
        """Observe the structure, write a metrics row and (when due) a snapshot.

        Parameters
        ----------
        epoch
            The epoch (0 = initialisation); by default the number of earlier calls. Must
            increase from call to call (within a ``level``).
        step
            The optimizer step; by default the last one :meth:`update` saw.
        metrics
            Numbers to store in the row and the snapshot's metadata (``loss``,
            ``test_accuracy``, ...); 0-d tensors and numpy scalars are taken as numbers, a
            list is a per-layer value. Names in :data:`RESERVED_METRICS` are topo's own.
        level
            A pruning level (iterative pruning): snapshots go to ``snapshots/level_XX/``.
        force
            Write the snapshot file even when ``every`` would skip this epoch.

        Returns
        -------
        Path or None
            The snapshot file, or None when ``every`` skipped it.
        """
        self._require_open()
        epoch = self._snapshots if epoch is None else _nonnegative(epoch, "epoch")
        level = None if level is None else _nonnegative(level, "level")
        where = (level or 0, epoch)
        if self._last is not None and where <= self._last:
            raise ConfigError(
                f"snapshot(epoch={epoch}{'' if level is None else f', level={level}'}): "
                f"epoch {self._last[1]} was recorded already; epochs must increase")
        if step is not None:
            self.step = int(step)
        clean = _metrics(metrics, len(self.layer_names))
        graph = self._observe(build=True)
        written = None
        if self._snapshots == 0 or epoch % self.every == 0 or force:
            graph.metadata = {**graph.metadata, **self.metadata,
                              **{k: v for k, v in clean.items() if not isinstance(v, list)},
                              "run_id": self.run_id, "epoch": epoch, "step": self.step}
            if level is not None:
                graph.metadata["level"] = level
            name = snapshot_name(epoch, level)
            written = self._writer.save_snapshot(graph, name)
            self.last_snapshot = name
        row = self._row(epoch, level, clean)
        self._rows.append(metrics_line(row))
        self._writer.write_metrics(self._rows)
        self._writer.write_updates(self._update_rows)
        self._pending = self._zero_counts()
        self._last = where
        self._snapshots += 1
        if written is not None and self._tb_dir is not None:
            self._write_tensorboard(graph, epoch, level, row)
        return written

    def close(self, status: str = "finished") -> None:
        """Finish the run: the updates seen since the last snapshot, then ``run.json`` with
        ``status`` (``finished`` or ``interrupted``). Calling it again does nothing."""
        if self.status != "running":
            return
        if status not in ("finished", "interrupted"):
            raise ConfigError(f"close(status={status!r}): 'finished' or 'interrupted'")
        self.status = status
        try:
            self._writer.write_updates(self._update_rows)
            self._writer.write_manifest(self._manifest())
        finally:
            if self._tensorboard is not None:
                self._tensorboard.close()

    def __enter__(self) -> Recorder:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        self.close("finished" if exc_type is None else "interrupted")

    @property
    def itop_rate(self) -> np.ndarray:
        """Per layer: positions ever connected so far over possible connections (NaN before
        the first observation)."""
        if not self._tracker.started:
            return np.full(len(self.layer_names), np.nan)
        return np.array(self._tracker.counts(), float) / np.array(self._tracker.sizes(), float)

    @property
    def itop_rate_network(self) -> float:
        """The ITOP rate over the layers it counts (those whose structure is a mask, as Liu
        et al.'s code counts the masked layers; every layer when none is)."""
        if not self._tracker.started:
            return math.nan
        counts, sizes = self._tracker.counts(), self._tracker.sizes()
        return (sum(counts[k] for k in self._counted)
                / sum(sizes[k] for k in self._counted))

    def graph(self) -> LayeredGraph:
        """The model now, as the LayeredGraph a snapshot would hold (no metadata added)."""
        return self._build(self._extract(self._arrays()))

    def __repr__(self) -> str:
        return (f"Recorder({type(self.model).__name__}, {str(self.path)!r}, "
                f"{len(self.layer_names)} layers, status={self.status!r})")

    # ---------------------------------------------------------------- reading
    def _arrays(self) -> dict[str, torch.Tensor]:
        """The module's tensors by state_dict key, the parametrization masks its state_dict
        leaves out, and the caller's masks (``masks/<name>``); detached, not copied."""
        import torch

        live = {k: v.detach() for k, v in self.model.state_dict(keep_vars=True).items()
                if torch.is_tensor(v)}
        for prefix, module in self.model.named_modules():
            params = getattr(module, "parametrizations", None)
            if not isinstance(params, torch.nn.ModuleDict):
                continue
            for tensor_name, chain in params.items():
                for i, p in enumerate(chain):
                    mask = getattr(p, "mask", None)
                    key = ".".join(filter(None, (prefix, "parametrizations", tensor_name,
                                                 str(i), "mask")))
                    if torch.is_tensor(mask) and key not in live:
                        live[key] = mask.detach()
        for name, mask in (self.masks or {}).items():
            live[_MASK_PREFIX + str(name)] = (mask.detach() if torch.is_tensor(mask)
                                             else torch.as_tensor(np.asarray(mask)))
        return live

    def _classes(self) -> dict[str, str]:
        from torch.nn.utils import parametrize

        out = {}
        for prefix, module in self.model.named_modules():
            cls = type(module)
            if parametrize.is_parametrized(module):
                cls = cls.__bases__[0]   # torch's generated Parametrized<Class>
            out[prefix] = f"{cls.__module__}.{cls.__qualname__}"
        return out

    def _extract(self, live: Mapping[str, torch.Tensor]) -> Extraction:
        from topo.io.pipeline import OUT_IN
        from topo.io.state_dict import extract_state_dict

        arrays = {k: _numpy(v) for k, v in live.items() if not k.startswith(_MASK_PREFIX)}
        masks = {k[len(_MASK_PREFIX):]: _numpy(v) for k, v in live.items()
                 if k.startswith(_MASK_PREFIX)}
        ex = extract_state_dict(arrays, self._where, "pytorch-module", order="module",
                                orientation=OUT_IN, module_classes=self._classes(),
                                masks=masks or None)
        ex.notes.insert(0, f"a live {type(self.model).__name__} module, read by topo.Recorder")
        ex.input_shape = self.input_shape
        ex.metadata["_arrays"] = {id(a): k for k, a in arrays.items()}
        ex.metadata["_arrays"].update({id(a): _MASK_PREFIX + k for k, a in masks.items()})
        return ex

    def _plan(self) -> tuple[list[_LayerSource], frozenset[str], Extraction]:
        """Read the module with the pipeline and note, per layer, which tensor holds its
        structure (so that an update reads just those)."""
        from topo.io.pipeline import IN_OUT, resolve_chain

        live = self._arrays()
        ex = self._extract(live)
        convs = [c.name for c in ex.layers if getattr(c, "kind", "linear") == "conv"]
        if convs:
            raise UnreadableFileError(
                f"{self._where}: topo.Recorder follows fully-connected networks only and "
                f"{convs[0]!r} is a convolution; save checkpoints of the model and follow "
                "their folder with topo evolution instead")
        resolution = resolve_chain(ex)
        ex.metadata["_resolution"] = resolution
        self._plan_resolution = ([c.name for c in ex.layers], [c.shape for c in ex.layers],
                                 resolution)
        known = ex.metadata["_arrays"]
        sources = []
        for i in resolution.order:
            cand = ex.layers[i]
            transposed = (cand.orientation or resolution.orientation) == IN_OUT
            if cand.mask is not None and id(cand.mask) in known:
                key = known[id(cand.mask)]
                described = (f"the masks argument {key[len(_MASK_PREFIX):]!r}"
                             if key.startswith(_MASK_PREFIX) else f"the mask {key}")
                sources.append(_LayerSource(cand.name, "mask", key, transposed, described))
            elif cand.mask is None and id(cand.weight) in known:
                key = known[id(cand.weight)]
                sources.append(_LayerSource(cand.name, "weight", key, transposed,
                                            f"the non-zero entries of {key}"))
            else:
                sources.append(_LayerSource(cand.name, "pipeline", None, transposed,
                                            "the reading pipeline at every update"))
        return sources, frozenset(live), ex

    def _build(self, ex: Extraction) -> LayeredGraph:
        from topo.io.pipeline import build_graph

        ex.metadata.pop("_arrays", None)
        resolution = ex.metadata.pop("_resolution", None) or self._resolution(ex)
        return build_graph(ex, resolution)

    def _resolution(self, ex: Extraction) -> Resolution:
        """The chain of ``ex``: the one found when the plan was made, while the module's
        tensors are the same (the pipeline resolves it again otherwise)."""
        from topo.io.pipeline import resolve_chain

        plan = self._plan_resolution
        if plan is not None and [c.name for c in ex.layers] == plan[0] \
                and [c.shape for c in ex.layers] == plan[1]:
            return plan[2]
        return resolve_chain(ex)

    def _structures(self, live: Mapping[str, torch.Tensor]) -> list[Any]:
        """Each layer's connections now, as a boolean ``(n_out, n_in)`` array (numpy for
        tensors in main memory, a torch tensor on an accelerator), written into buffers
        reused from call to call (no allocation, no fresh pages, on the common path)."""
        out: list[Any] = []
        pipeline = None
        for k, src in enumerate(self._sources):
            if src.key is None:
                if pipeline is None:
                    pipeline = self._build(self._extract(live))
                s = _csr_structure(pipeline.layers[k])
            else:
                s = _nonzero(live[src.key], src.transposed, self._buffers.get(k))
            self._buffers[k] = s
            out.append(s)
        return out

    def _replan(self) -> None:
        sources, keys, ex = self._plan()
        graph = self._build(ex)
        if list(graph.names) != self.layer_names or graph.widths != self.widths:
            raise GraphStructureError(
                f"{self._where}: its layers changed while recording (now "
                f"{', '.join(graph.names)} = {'-'.join(map(str, graph.widths))}, were "
                f"{', '.join(self.layer_names)} = {'-'.join(map(str, self.widths))})")
        self._sources, self._keys = sources, keys
        self._counted = self._itop_layers()
        self._writer.write_manifest(self._manifest())   # the layers' new structure sources

    def _observe(self, build: bool = False) -> LayeredGraph | None:
        """Observe the structure (and build the graph when asked, from the same tensors)."""
        live = self._arrays()
        if frozenset(live) != self._keys:   # pruning added or removed, masks replaced
            self._replan()
            live = self._arrays()
        structures = self._structures(live)
        change = self._tracker.observe(structures)
        if change is not None:
            added, removed, before = change
            for k in range(len(added)):
                self._pending["added"][k] += added[k]
                self._pending["removed"][k] += removed[k]
            self._pending["mask_updates"] += 1
            churn = [removed[k] / before[k] if before[k] else None for k in range(len(added))]
            self._update_rows.append(json.dumps({
                "update": self.n_updates, "step": self.step,
                "after_epoch": None if self._last is None else self._last[1],
                "connections": list(self._tracker.connections), "added": added,
                "removed": removed, "churn": churn}))
        if not build:
            return None
        ex = self._extract(live)
        resolution = self._resolution(ex)
        for i, src, structure in zip(resolution.order, self._sources, structures):
            if src.key is not None:
                # the structure just observed, its weights gathered at its positions: what
                # the pipeline builds from the same weight and mask, without the dense passes
                cand = ex.layers[i]
                cand.weight = _connections(structure, cand.weight, src.transposed)
                cand.mask = None
        ex.metadata["_resolution"] = resolution
        return self._build(ex)

    # ---------------------------------------------------------------- writing
    def _row(self, epoch: int, level: int | None, metrics: dict[str, Any]) -> dict[str, Any]:
        sizes = self._tracker.sizes()
        connections = self._tracker.connections
        row: dict[str, Any] = {"epoch": epoch}
        if level is not None:
            row["level"] = level
        row["step"] = self.step
        row.update(metrics)
        row.update({
            "density": [c / s for c, s in zip(connections, sizes)],
            "connections": list(connections),
            "added": list(self._pending["added"]),
            "removed": list(self._pending["removed"]),
            "itop_rate": self.itop_rate.tolist(),
            "itop_rate_network": self.itop_rate_network,
            "mask_updates": self._pending["mask_updates"],
        })
        return row

    def _zero_counts(self) -> dict[str, Any]:
        n = len(self._sources)
        return {"added": [0] * n, "removed": [0] * n, "mask_updates": 0}

    def _itop_layers(self) -> list[int]:
        masked = [k for k, s in enumerate(self._sources) if s.kind == "mask"]
        return masked or list(range(len(self._sources)))

    def _prepare(self, overwrite: bool) -> None:
        path = self.path
        if path.exists() and not path.is_dir():
            raise ConfigError(f"{path}: exists and is not a folder")
        if not path.is_dir() or not any(p for p in path.iterdir()
                                        if not p.name.startswith(".")):
            self._writer.clean_temporary()
            return
        if not (path / MANIFEST_NAME).is_file():
            raise ConfigError(f"{path}: folder is not empty and holds no topo run; choose an "
                              "empty or new folder")
        if not overwrite:
            raise ConfigError(f"{path}: already holds a run; choose another folder or pass "
                              "overwrite=True to replace it")
        try:
            for name in (METRICS_NAME, UPDATES_NAME):
                (path / name).unlink(missing_ok=True)
            for snap in (path / SNAPSHOT_DIR).rglob("*.safetensors"):
                snap.unlink()
        except OSError as exc:
            raise OutputError(f"{path}: cannot replace the run ({exc.strerror or exc})"
                              ) from None
        self._writer.clean_temporary()

    def _manifest(self) -> dict[str, Any]:
        import scipy
        import torch

        import topo

        manifest: dict[str, Any] = {
            "format": RUN_FORMAT,
            "version": 1,
            "run_id": self.run_id,
            "status": self.status,
            "recorder": {
                "model": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
                "every": self.every,
                "layers": self.layer_names,
                "structure": [s.described for s in self._sources],
                "itop_layers": [self.layer_names[k] for k in self._counted],
                "skipped": self._skipped,
            },
            "metadata": self.metadata,
            "widths": self.widths,
            "input_shape": list(self.input_shape) if self.input_shape else None,
            "versions": {
                "topo": topo.__version__, "torch": torch.__version__,
                "numpy": np.__version__, "scipy": scipy.__version__,
                "python": platform.python_version(), "platform": platform.platform(),
            },
            "started": self._started,
        }
        if self.status != "running":
            manifest["finished"] = _now()
            manifest["final_snapshot"] = self.last_snapshot
            manifest["best_snapshot"] = self.last_snapshot
        return manifest

    def _write_tensorboard(self, graph: LayeredGraph, epoch: int, level: int | None,
                           row: dict[str, Any]) -> None:
        """The evolution rows of this snapshot, as :func:`topo.topology_evolution` computes
        them over the whole run, written as TensorBoard scalars."""
        from topo import structure
        from topo.evolution import topology_evolution
        from topo.io.run import flat_metrics
        from topo.io.tensorboard import EventWriter, evolution_scalars, network_columns

        flat = flat_metrics(row)
        meta = {"epoch": epoch, "metrics": flat, **({} if level is None else {"level": level})}
        entries = []
        if self._tb_first is not None:
            entries.append(("first", self._tb_first, self._tb_first.metadata["_tb"]))
            if self._tb_previous is not self._tb_first:
                entries.append(("previous", self._tb_previous,
                                self._tb_previous.metadata["_tb"]))
        entries.append(("current", graph, meta))
        frame = topology_evolution(entries)
        frame = frame[frame["snapshot"] == len(entries) - 1].copy()
        masks = graph.masks()
        self._tb_union = (masks if self._tb_union is None
                          else [structure.union(u, m) for u, m in zip(self._tb_union, masks)])
        ever = [int(u.nnz) for u in self._tb_union]
        frame["ever_active_snapshots"] = ever
        frame["itop_rate_snapshots"] = [e / (a * b) for e, (a, b) in
                                     zip(ever, (m.shape for m in masks))]
        frame["snapshot"] = self._tb_count
        self._tb_count += 1
        if self._tensorboard is None:
            self._tensorboard = EventWriter(self._tb_dir)
        self._tensorboard.add_scalars(evolution_scalars(
            frame, network_columns=network_columns(frame, flat), step=self._tb_step))
        self._tensorboard.flush()
        graph.metadata["_tb"] = meta
        if self._tb_first is None:
            self._tb_first = graph
        self._tb_previous = graph

    def _require_open(self) -> None:
        if self.status != "running":
            raise ConfigError(f"{self.path}: the recorder is closed ({self.status})")


# ------------------------------------------------------------------------------ helpers
def _numpy(t: torch.Tensor) -> np.ndarray:
    import torch

    t = t.detach()
    if t.layout != torch.strided:
        t = t.to_dense()
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    return t.cpu().numpy()


def _csr_structure(matrix: Any) -> np.ndarray:
    """The stored entries of a CSR matrix as a dense boolean array."""
    out = np.zeros(matrix.shape, dtype=bool)
    rows = np.repeat(np.arange(matrix.shape[0]), np.diff(matrix.indptr))
    out[rows, matrix.indices] = True
    return out


def _connections(structure: Any, weight: np.ndarray, transposed: bool) -> Any:
    """A CSR matrix whose stored entries are the positions of a boolean ``(n_out, n_in)``
    structure, holding the weights there (zero weights included), in the orientation the
    weight is stored in (the pipeline turns it back)."""
    import scipy.sparse as sp

    if not isinstance(structure, np.ndarray):
        structure = structure.cpu().numpy()
    n_out, n_in = structure.shape
    flat = np.flatnonzero(structure)   # sorted: row by row
    indptr = np.searchsorted(flat, np.arange(n_out + 1, dtype=np.int64) * n_in)
    wide = np.int64 if n_out * n_in > np.iinfo(np.int32).max else np.int32
    indices = flat.astype(wide)
    indices -= np.repeat(np.arange(n_out, dtype=wide) * n_in, np.diff(indptr))
    oriented = np.asarray(weight).T if transposed else np.asarray(weight)
    values = oriented.reshape(-1)[flat]
    m = sp.csr_matrix((values, indices, indptr), shape=(n_out, n_in))
    m.has_canonical_format = True
    return m.T if transposed else m


def _nonzero(t: torch.Tensor, transposed: bool, out: Any = None) -> Any:
    """A tensor's non-zero positions as a boolean ``(n_out, n_in)`` array, written into
    ``out`` when it fits (same kind, shape and device)."""
    import torch

    if t.layout != torch.strided:
        t = t.to_dense()
    if transposed:
        t = t.t()
    if t.device.type != "cpu":
        if not (torch.is_tensor(out) and out.device == t.device and out.shape == t.shape):
            out = torch.empty(t.shape, dtype=torch.bool, device=t.device)
        return torch.ne(t, 0, out=out)
    if t.dtype in (torch.bfloat16, torch.float16):
        t = t.float()
    a = t.numpy()
    if not (isinstance(out, np.ndarray) and out.shape == a.shape):
        out = np.empty(a.shape, dtype=bool)
    if a.dtype == bool:
        np.copyto(out, a)
    else:
        np.not_equal(a, 0, out=out)
    return out


def _words(a: np.ndarray) -> np.ndarray:
    """A contiguous boolean array's bytes as 8-byte words where they fit (eight positions per
    operation), else the array itself."""
    return a.reshape(-1).view(np.uint64) if a.nbytes % 8 == 0 else a.reshape(-1)


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return bool(np.array_equal(_words(a), _words(b)))
    import torch

    return a.device == b.device and bool(torch.equal(a, b))


def _and_not(a: Any, b: Any) -> Any:
    if isinstance(a, np.ndarray):
        return np.bitwise_and(_words(a), np.invert(_words(b))).view(bool)
    return a & ~b.to(a.device)


def _or_into(union: Any, a: Any) -> None:
    if isinstance(union, np.ndarray):
        np.bitwise_or(_words(union), _words(a), out=_words(union))
    else:
        union |= a.to(union.device)


def _count(a: Any) -> int:
    if isinstance(a, np.ndarray):
        return int(np.count_nonzero(a))
    return int(a.sum())


def _copy(a: Any) -> Any:
    return a.copy() if isinstance(a, np.ndarray) else a.clone()


def _copy_into(target: Any, a: Any) -> None:
    if isinstance(target, np.ndarray):
        np.copyto(target, a)
    else:
        target.copy_(a)


def _nonnegative(value: Any, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ConfigError(f"{what}={value!r}: a non-negative integer is needed")
    return int(value)


def _metrics(metrics: Mapping[str, Any] | None, n_layers: int) -> dict[str, Any]:
    """The caller's metrics as JSON values (numbers, strings, per-layer lists)."""
    out: dict[str, Any] = {}
    for key, value in (metrics or {}).items():
        key = str(key)
        if key in RESERVED_METRICS:
            raise ConfigError(f"metric {key!r} is written by topo itself; name yours "
                              "differently")
        out[key] = _metric_value(key, value, n_layers)
    return out


def _metric_value(key: str, value: Any, n_layers: int) -> Any:
    if hasattr(value, "detach") and hasattr(value, "tolist"):   # a tensor
        value = value.detach().cpu().tolist()
    elif isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, (list, tuple)):
        if len(value) != n_layers:
            raise ConfigError(f"metric {key!r}: a list must hold one value per layer "
                              f"({n_layers}), got {len(value)}")
        return [_metric_value(key, v, n_layers) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise ConfigError(f"metric {key!r}: {type(value).__name__} is not a number")


def _check_json(value: Any, what: str) -> None:
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{what} cannot be stored as JSON: {exc}") from None


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())

