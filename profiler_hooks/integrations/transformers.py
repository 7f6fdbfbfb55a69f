"""Hugging Face ``Trainer`` callback: one gpulens run per ``trainer.train()``, one step record
per optimizer step.

Use::

    from profiler_hooks.integrations.transformers import GpulensTrainerCallback

    trainer = transformers.Trainer(..., callbacks=[GpulensTrainerCallback(run_name="gpt2")])

Needs the ``transformers`` package (``pip install gpulens[transformers]``).
"""

from __future__ import annotations

from typing import Any

import transformers
from transformers import TrainerCallback, TrainerControl, TrainerState, TrainingArguments

from profiler_hooks.integrations.callback import SessionCallback

__all__ = ["GpulensTrainerCallback"]


class GpulensTrainerCallback(SessionCallback, TrainerCallback):
    """Records every optimizer step of ``Trainer.train`` as a gpulens step.

    The keyword options are those of :func:`profiler_hooks.profile_steps`
    (:class:`~profiler_hooks.config.HookOptions`), checked here. The session starts
    in ``on_train_begin``. Each process records its own run; its rank comes from
    ``torch.distributed`` or the launcher's ``RANK``/``WORLD_SIZE``, and ``args.process_index``
    and ``args.world_size`` are kept in the run's config as well.

    What a step is:

    - A step runs from the end of the previous optimizer step to the end of this one, so
      steps tile the run. ``on_step_begin`` calls :meth:`StepSession.begin_step`: the time
      before it is recorded as the step's DataLoader wait. The Trainer fetches all the
      micro-batches of an optimizer step in that gap, but it also logs, saves and evaluates
      there (after ``on_step_end``), so read it as "time outside the training step", an upper
      bound on the DataLoader's share.
    - ``on_step_end`` calls :meth:`StepSession.step`. With gradient accumulation one step
      holds all its micro-batches' forward and backward passes and the optimizer step.
      Samples: ``batch_size`` if given, else ``per_device_train_batch_size *
      gradient_accumulation_steps`` (an epoch's last, shorter step is counted full).
      Tokens: ``tokens_per_step`` if given, else, when the Trainer counts tokens
      (``include_num_input_tokens_seen``), the growth of ``state.num_input_tokens_seen``
      over the step divided by the world size (the Trainer counts all ranks together).

    The run ends "finished" in ``on_train_end``. The Trainer calls no callback when
    ``train()`` raises, so a run still open when the interpreter exits is closed then:
    "interrupted" after an uncaught ``KeyboardInterrupt``, else "failed". To close it at once,
    call :meth:`close` in your ``except`` clause. A later ``train()`` starts a new run.
    """

    closes_at_exit = True  # the Trainer calls no callback when train() raises
    _tokens_seen_at_begin = 0  # state.num_input_tokens_seen when the current step began

    def on_train_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        model = kwargs.get("model")
        self._open_run(
            {
                "framework": "transformers",
                "transformers_version": transformers.__version__,
                "process_index": args.process_index,
                "world_size": args.world_size,
                "per_device_train_batch_size": args.per_device_train_batch_size,
                "gradient_accumulation_steps": args.gradient_accumulation_steps,
                "max_steps": state.max_steps,
                "model": type(model).__qualname__ if model is not None else None,
            }
        )

    def on_step_begin(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self._tokens_seen_at_begin = state.num_input_tokens_seen
        self._begin_step()

    def on_step_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        if self.session is None:
            return
        samples = self.batch_size
        if samples is None:
            samples = args.per_device_train_batch_size * args.gradient_accumulation_steps
        self._end_step(samples, self._step_tokens(args, state))

    def on_train_end(
        self, args: TrainingArguments, state: TrainerState, control: TrainerControl, **kwargs: Any
    ) -> None:
        self.close("finished")

    def _step_tokens(self, args: TrainingArguments, state: TrainerState) -> int | None:
        if self.tokens_per_step is not None:
            return self.tokens_per_step
        if args.include_num_input_tokens_seen in ("no", False):
            return None
        seen = int(state.num_input_tokens_seen - self._tokens_seen_at_begin)
        return seen // max(int(args.world_size), 1)
