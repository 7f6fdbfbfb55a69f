"""Records of training runs: what the hooks write and the store keeps (pure data).

A *run* is one training process (one rank) seen by gpulens: every step is a :class:`StepRecord`,
and every profiler window (a few steps traced with torch.profiler) is a :class:`WindowRecord`
whose analysis (:class:`monitor.core.analysis.results.TraceAnalysis`) is stored beside it.
Time is an aware UTC :class:`~datetime.datetime`; durations are microseconds (``_us``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, TypeAlias

from monitor.core.analysis.results import TraceAnalysis

RunStatus: TypeAlias = Literal["running", "finished", "failed", "interrupted", "imported"]
RUN_STATUSES: tuple[RunStatus, ...] = ("running", "finished", "failed", "interrupted", "imported")

WindowStatus: TypeAlias = Literal["recording", "analyzing", "analyzed", "failed"]
WINDOW_STATUSES: tuple[WindowStatus, ...] = ("recording", "analyzing", "analyzed", "failed")


@dataclass(frozen=True, slots=True)
class RunInfo:
    """One training process (row of ``runs``); ``run_id`` is chosen by the writer (uuid hex)."""

    run_id: str
    name: str
    host: str
    started_at: datetime
    gpu_uuids: tuple[str, ...] = ()
    rank: int = 0
    world_size: int = 1
    status: RunStatus = "running"
    ended_at: datetime | None = None
    config: Mapping[str, Any] = field(default_factory=dict)
    versions: Mapping[str, str] = field(default_factory=dict)
    source: Literal["hooks", "import"] = "hooks"


@dataclass(frozen=True, slots=True)
class StepRecord:
    """One training step of one rank (row of ``run_steps``); ``None`` means not measured."""

    run_id: str
    step: int
    started_at: datetime
    duration_us: float
    dataloader_wait_us: float | None = None
    cuda_allocated_bytes: int | None = None
    cuda_reserved_bytes: int | None = None
    cuda_peak_bytes: int | None = None
    samples: int | None = None
    tokens: int | None = None
    is_profiled: bool = False
    pre_forward_us: float | None = None  # batch handed over -> model forward (attach(model=))

    @property
    def samples_per_second(self) -> float | None:
        return _rate(self.samples, self.duration_us)

    @property
    def tokens_per_second(self) -> float | None:
        return _rate(self.tokens, self.duration_us)


@dataclass(frozen=True, slots=True)
class WindowRecord:
    """One profiler window (row of ``profiler_windows``): the steps it traced and its file."""

    window_id: str
    run_id: str
    first_step: int
    last_step: int
    started_at: datetime
    trace_path: str | None = None
    status: WindowStatus = "recording"
    error: str | None = None
    trigger: Literal["schedule", "slow_step", "import", "manual"] = "schedule"


@dataclass(frozen=True, slots=True)
class AnalyzedRun:
    """A run with its steps and one analyzed window, stored whole or not at all
    (:meth:`monitor.store.Store.save_analyzed_runs`; ``gpulens import`` writes these)."""

    info: RunInfo
    steps: tuple[StepRecord, ...]
    window: WindowRecord
    analysis: TraceAnalysis


def _rate(count: int | None, duration_us: float) -> float | None:
    if count is None or duration_us <= 0:
        return None
    return count / (duration_us / 1e6)
