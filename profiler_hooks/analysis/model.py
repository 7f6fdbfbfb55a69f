"""What the trace analyzer finds (pure data) and its JSON form, the ``gpulens analyze --json``
contract.

Times are microseconds (floats, sub-µs digits kept). The JSON shape is documented in the README
("Trace analysis JSON"); keys are only ever added, never renamed or removed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, TypeAlias

# The step breakdown's categories in priority order (the TensorBoard profiler plugin's
# definition): a moment of the step belongs to the first category active at that moment.
CATEGORIES: tuple[str, ...] = (
    "kernel",
    "memcpy",
    "memset",
    "communication",
    "runtime",
    "dataloader",
    "cpu_exec",
    "other",
)

KernelCategory: TypeAlias = Literal["computation", "communication", "memory"]


@dataclass(frozen=True, slots=True)
class StepBreakdown:
    """One ProfilerStep#N of one rank, or the whole trace (``step`` is ``None``)."""

    step: int | None
    start_us: float
    duration_us: float
    breakdown_us: Mapping[str, float]
    gpu_busy_us: float


@dataclass(frozen=True, slots=True)
class Temporal:
    """Holistic Trace Analysis's temporal breakdown: span = first to last GPU activity."""

    span_us: float
    idle_us: float
    compute_us: float
    non_compute_us: float


@dataclass(frozen=True, slots=True)
class IdleBreakdown:
    """GPU idle time split by cause (HTA's definitions; gaps summed over streams)."""

    host_wait: float
    kernel_wait: float
    other: float


@dataclass(frozen=True, slots=True)
class KernelStat:
    """One row of the kernel table (kernels, memcpy and memset, grouped by name)."""

    name: str
    category: KernelCategory
    count: int
    total_us: float
    mean_us: float
    min_us: float
    max_us: float
    tensor_core: bool


@dataclass(frozen=True, slots=True)
class MemcpyStat:
    """Copies of one direction and memory kind (``pageable``, ``pinned``, ``device``...)."""

    direction: str  # "HtoD", "DtoH", "DtoD", "HtoH", "PtoP" or "unknown"
    memory: str  # the host side's kind where the trace says it, else "unknown"
    count: int
    total_us: float
    total_bytes: int


@dataclass(frozen=True, slots=True)
class SyncStat:
    """Synchronizing calls seen on the host: device/stream/event syncs, synchronous memcpy."""

    name: str
    kind: str  # "device", "stream", "event", "memcpy", "context", "other"
    count: int
    total_us: float


@dataclass(frozen=True, slots=True)
class LaunchStats:
    """Kernel launches matched to the kernels they started (by correlation id)."""

    launches: int
    matched: int
    short_kernels: int  # kernels that ran for less time than their launch call took
    mean_launch_us: float
    mean_delay_us: float  # launch call start to kernel start
    p95_delay_us: float


@dataclass(frozen=True, slots=True)
class Overlap:
    """How much communication kernel time ran while computation kernels ran."""

    communication_us: float
    overlapped_us: float
    overlap_percent: float | None


@dataclass(frozen=True, slots=True)
class RankAnalysis:
    """Everything found for one rank (one trace file)."""

    rank: int
    device: str | None
    device_index: int | None
    compute_capability: str | None
    device_memory_bytes: int | None
    temporal: Temporal
    idle_breakdown_us: IdleBreakdown
    steps: tuple[StepBreakdown, ...]
    total: StepBreakdown
    kernels: tuple[KernelStat, ...]
    memcpy: tuple[MemcpyStat, ...] = ()
    syncs: tuple[SyncStat, ...] = ()
    launch: LaunchStats | None = None
    overlap: Overlap | None = None
    peak_memory_bytes: int | None = None
    source: str | None = None
    events: int = 0


@dataclass(frozen=True, slots=True)
class Straggler:
    """A rank whose mean step time stands out from the median of the other ranks'."""

    rank: int
    mean_step_us: float
    median_of_others_us: float
    slowdown_percent: float


@dataclass(frozen=True, slots=True)
class TraceAnalysis:
    """The analysis of one trace file or of a folder of per-rank files."""

    ranks: tuple[RankAnalysis, ...]
    stragglers: tuple[Straggler, ...] = ()
    notes: tuple[str, ...] = field(default_factory=tuple)

    def rank(self, rank: int) -> RankAnalysis:
        for item in self.ranks:
            if item.rank == rank:
                return item
        raise KeyError(rank)


def to_json(analysis: TraceAnalysis) -> dict[str, Any]:
    """The documented JSON form (plain dicts, lists, numbers and strings)."""
    return {
        "ranks": [_rank_json(item) for item in analysis.ranks],
        "stragglers": [asdict(item) for item in analysis.stragglers],
        "notes": list(analysis.notes),
    }


def _rank_json(item: RankAnalysis) -> dict[str, Any]:
    return {
        "rank": item.rank,
        "device": item.device,
        "device_index": item.device_index,
        "compute_capability": item.compute_capability,
        "device_memory_bytes": item.device_memory_bytes,
        "source": item.source,
        "events": item.events,
        "temporal": asdict(item.temporal),
        "idle_breakdown_us": asdict(item.idle_breakdown_us),
        "steps": [_step_json(step) for step in item.steps],
        "total": _step_json(item.total),
        "kernels": [asdict(kernel) for kernel in item.kernels],
        "memcpy": [asdict(copy) for copy in item.memcpy],
        "syncs": [asdict(sync) for sync in item.syncs],
        "launch": asdict(item.launch) if item.launch is not None else None,
        "overlap": asdict(item.overlap) if item.overlap is not None else None,
        "peak_memory_bytes": item.peak_memory_bytes,
    }


def _step_json(step: StepBreakdown) -> dict[str, Any]:
    return {
        "step": step.step,
        "start_us": step.start_us,
        "duration_us": step.duration_us,
        "breakdown_us": {name: step.breakdown_us.get(name, 0.0) for name in CATEGORIES},
        "gpu_busy_us": step.gpu_busy_us,
    }
