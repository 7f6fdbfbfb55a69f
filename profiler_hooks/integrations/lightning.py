"""Lightning callback: one gpulens run per ``trainer.fit``, one step record per training batch.

Use::

    from profiler_hooks.integrations.lightning import GpulensCallback

    trainer = lightning.pytorch.Trainer(callbacks=[GpulensCallback(run_name="resnet")])

Needs the ``lightning`` package (``pip install gpulens[lightning]``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import lightning
import lightning.pytorch as pl
import torch
from lightning.pytorch.callbacks import Callback

from profiler_hooks.integrations.callback import SessionCallback

__all__ = ["GpulensCallback", "infer_batch_size"]


class GpulensCallback(SessionCallback, Callback):
    """Records every training batch of ``trainer.fit`` as a gpulens step.

    The keyword options are those of :func:`profiler_hooks.profile_steps`
    (:class:`~profiler_hooks.config.HookOptions`), checked here. The session starts
    in ``on_train_start`` (after the sanity check). Each rank records its own run; its rank
    comes from ``torch.distributed`` (Lightning initialises it before training starts), and
    ``trainer.global_rank``/``trainer.world_size`` are kept in the run's config as well.

    What a step is:

    - A step runs from the end of the previous batch to the end of this one, so steps tile
      the run. ``on_train_batch_start`` calls :meth:`StepSession.begin_step`: the time from
      the previous batch's end to this call is recorded as the step's DataLoader wait.
      Lightning fetches the batch in that gap, but also does its own per-batch work there
      (progress, logging, other callbacks' ``on_train_batch_end``) and runs any validation
      loop inside the epoch (``val_check_interval``), so read it as "time outside the
      training step", an upper bound on the DataLoader's share.
    - ``on_train_batch_end`` calls :meth:`StepSession.step` with the batch's sample count:
      ``batch_size`` if given, else the first dimension of the first tensor found in the batch
      (depth first through tuples, lists and dicts), else none.
    - With gradient accumulation (``accumulate_grad_batches=N``), one optimizer step spans N
      batches. gpulens still records one step per *batch*, so the run has N times as many
      steps as optimizer steps, and every N-th one includes the optimizer's work.
      ``accumulate_grad_batches`` is saved in the run's config.

    The run ends "finished" in ``on_train_end``, "failed" when the trainer reports an
    exception, "interrupted" on ``KeyboardInterrupt``. A later ``fit`` starts a new run.
    """

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._open_run(
            {
                "framework": "lightning",
                "lightning_version": lightning.__version__,
                "global_rank": trainer.global_rank,
                "world_size": trainer.world_size,
                "accumulate_grad_batches": trainer.accumulate_grad_batches,
                "max_steps": trainer.max_steps,
                "precision": str(trainer.precision),
                "module": type(pl_module).__qualname__,
            }
        )

    def on_train_batch_start(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        self._begin_step()

    def on_train_batch_end(
        self,
        trainer: pl.Trainer,
        pl_module: pl.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        if self.session is not None:
            samples = self.batch_size if self.batch_size is not None else infer_batch_size(batch)
            self._end_step(samples, self.tokens_per_step)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.close("finished")

    def on_exception(
        self, trainer: pl.Trainer, pl_module: pl.LightningModule, exception: BaseException
    ) -> None:
        self.close("interrupted" if isinstance(exception, KeyboardInterrupt) else "failed")

    def teardown(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        # The tuner stops fit without on_train_end or on_exception.
        self.close("interrupted")


def infer_batch_size(batch: Any) -> int | None:
    """First dimension of the first tensor in ``batch`` (depth first), or ``None``."""
    if isinstance(batch, torch.Tensor):
        return int(batch.shape[0]) if batch.dim() > 0 else None
    if isinstance(batch, Mapping):
        items: Any = batch.values()
    elif isinstance(batch, (list, tuple)):
        items = batch
    else:
        return None
    for item in items:
        size = infer_batch_size(item)
        if size is not None:
            return size
    return None
