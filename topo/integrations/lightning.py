"""A Lightning callback that records a run's topology: ``TopologyCallback``.

Needs Lightning (``pip install 'topo[lightning]'``); importing this module without it raises
an ImportError that says so. Built on ``lightning.pytorch`` when it is installed, else on the
standalone ``pytorch_lightning``::

    from topo.integrations.lightning import TopologyCallback

    trainer = lightning.Trainer(max_epochs=30, callbacks=[
        ModelPruning("l1_unstructured", amount=0.1),   # before it: the pruning it records
        TopologyCallback("runs/mine", tensorboard="lightning_logs/topology"),
    ])
    trainer.fit(model, data)

What it does, on the process of global rank 0:

- at the start of training, makes a :class:`topo.Recorder` of the LightningModule (its
  fully-connected layers, read by the same rules as a checkpoint of it) and writes the
  snapshot of epoch 0 (the initialisation, or the state training resumes from);
- after every training batch, :meth:`topo.Recorder.update` at the trainer's ``global_step``
  (the exact ITOP rate and the connections each update changed);
- at the end of each training epoch, :meth:`topo.Recorder.snapshot` with epoch
  ``current_epoch + 1`` (topo counts epoch 0 as the initialisation; Lightning's checkpoint of
  that epoch says ``epoch = current_epoch``), the ``global_step``, and the trainer's scalar
  ``callback_metrics`` (``train_loss``, ``val_acc``, ...);
- at the end of training the run is ``finished``; when training stops on an exception
  (including an interrupt) it is ``interrupted``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

try:
    from lightning.pytorch import Callback
except ImportError:  # pragma: no cover - the standalone package instead
    try:
        from pytorch_lightning import Callback
    except ImportError:
        raise ImportError(
            "topo.integrations.lightning needs Lightning: pip install 'topo[lightning]' "
            "(or pip install lightning)") from None

from topo.record import Recorder

__all__ = ["TopologyCallback"]


class TopologyCallback(Callback):
    """Records the topology of the LightningModule being trained (module docstring).

    Parameters
    ----------
    out_dir
        The run directory (see :class:`topo.Recorder`).
    masks, every, metadata, tensorboard, tensorboard_step, input_shape, overwrite
        As for :class:`topo.Recorder`.
    update_every_batch
        Call :meth:`topo.Recorder.update` after every training batch (the exact ITOP rate).
        Without it only the epochs' structures are observed.
    """

    def __init__(self, out_dir: str | Path, *, masks: Mapping[str, Any] | None = None,
                 every: int = 1, metadata: Mapping[str, Any] | None = None,
                 tensorboard: str | Path | None = None, tensorboard_step: str = "epoch",
                 input_shape: Any = None, overwrite: bool = False,
                 update_every_batch: bool = True) -> None:
        super().__init__()
        self.out_dir = Path(out_dir)
        self.options = {"masks": masks, "every": every, "metadata": metadata,
                        "tensorboard": tensorboard, "tensorboard_step": tensorboard_step,
                        "input_shape": input_shape, "overwrite": overwrite}
        self.update_every_batch = update_every_batch
        self.recorder: Recorder | None = None

    def on_train_start(self, trainer: Any, pl_module: Any) -> None:
        if not trainer.is_global_zero:
            return
        self.recorder = Recorder(pl_module, self.out_dir, **self.options)
        self.recorder.snapshot(epoch=trainer.current_epoch, step=trainer.global_step)

    def on_train_batch_end(self, trainer: Any, pl_module: Any, outputs: Any, batch: Any,
                           batch_idx: int) -> None:
        if self.recorder is not None and self.update_every_batch:
            self.recorder.update(step=trainer.global_step)

    def on_train_epoch_end(self, trainer: Any, pl_module: Any) -> None:
        if self.recorder is not None:
            self.recorder.snapshot(epoch=trainer.current_epoch + 1, step=trainer.global_step,
                                   metrics=scalar_metrics(trainer.callback_metrics))

    def on_train_end(self, trainer: Any, pl_module: Any) -> None:
        if self.recorder is not None:
            self.recorder.close("finished")

    def on_exception(self, trainer: Any, pl_module: Any, exception: BaseException) -> None:
        if self.recorder is not None:
            self.recorder.close("interrupted")


def scalar_metrics(metrics: Mapping[str, Any]) -> dict[str, float]:
    """The single numbers among a trainer's metrics (tensors of one element, numbers), under
    names topo does not write itself."""
    from topo.record import RESERVED_METRICS

    out = {}
    for name, value in metrics.items():
        if hasattr(value, "numel") and value.numel() == 1:
            value = value.item()
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            out[name if name not in RESERVED_METRICS else f"lightning_{name}"] = float(value)
    return out
