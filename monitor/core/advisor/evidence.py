"""What the advisor's rules read: one run's measurements, gathered from the store or a trace.

:class:`RunEvidence` is plain data. :mod:`monitor.services.gather` fills it from a
:class:`~monitor.store.Store` (every-step records, stored step breakdowns and kernel tables,
window summaries, the collector's telemetry for the run's GPUs and time) or from a trace file
alone (then there are no every-step records and no telemetry, and the rules that need them stay
quiet). Durations are microseconds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from monitor.core.analysis.results import KernelStat, RankAnalysis
from monitor.core.gpu_records import Event, GpuInfo, GpuSample, ProcessSample
from monitor.core.run_records import RunInfo, StepRecord
from monitor.core.run_views import StepBreakdownRow


@dataclass(frozen=True, slots=True)
class PeerRank:
    """One rank of the same distributed job, as the straggler rule compares them.

    ``wait_us`` is the mean per-step time the rank spent in communication (collective kernels
    and host-side collectives such as ``gloo:all_reduce``, which include waiting for the slowest
    rank). ``busy_us = step_us - wait_us`` is the rank's own work; under synchronous data
    parallelism every rank's step takes as long as the slowest rank's, so the busy time, not the
    step time, tells the straggler apart.
    """

    rank: int
    step_us: float
    wait_us: float
    run_id: str | None = None
    dataloader_wait_us: float | None = None
    host: str | None = None
    wait_by_step_us: Mapping[int, float] = field(default_factory=dict)  # traced steps

    @property
    def busy_us(self) -> float:
        return max(self.step_us - self.wait_us, 0.0)


@dataclass(frozen=True, slots=True)
class RunEvidence:
    """Everything known about one run (one rank), for the rules.

    ``traces``: one :class:`RankAnalysis` per analyzed profiler window of this rank (without
    per-step rows and kernels, which are in ``breakdowns`` and ``kernels``). ``samples``: the
    collector's samples of each of the run's GPUs during the run, by GPU UUID. ``processes``: one
    row per process seen on the run's GPUs during the run (largest memory, last seen).
    ``peers``: every rank of the job (this one included) when the job has several.
    """

    run: RunInfo | None = None
    steps: tuple[StepRecord, ...] = ()
    breakdowns: tuple[StepBreakdownRow, ...] = ()
    kernels: tuple[KernelStat, ...] = ()
    traces: tuple[RankAnalysis, ...] = ()
    gpus: tuple[GpuInfo, ...] = ()
    samples: Mapping[str, tuple[GpuSample, ...]] = field(default_factory=dict)
    events: tuple[Event, ...] = ()
    processes: tuple[ProcessSample, ...] = ()
    peers: tuple[PeerRank, ...] = ()
    source: str = "store"  # "store" or "trace"

    @property
    def run_id(self) -> str | None:
        return self.run.run_id if self.run is not None else None

    @property
    def rank(self) -> int:
        if self.run is not None:
            return self.run.rank
        return self.traces[0].rank if self.traces else 0

    @property
    def gpu_count(self) -> int:
        if self.run is not None and self.run.gpu_uuids:
            return len(self.run.gpu_uuids)
        return 1 if self.has_gpu_trace else 0

    @property
    def has_gpu_trace(self) -> bool:
        """Whether any analyzed window saw GPU work (kernels, copies)."""
        return any(item.temporal.span_us > 0 for item in self.traces) or bool(self.kernels)


__all__ = ["PeerRank", "RunEvidence"]
