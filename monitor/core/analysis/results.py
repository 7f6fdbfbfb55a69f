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
    distributed_backend: str | None = None  # "nccl", "gloo"... from the trace's distributedInfo
    world_size: int | None = None


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
        "distributed_backend": item.distributed_backend,
        "world_size": item.world_size,
    }


def from_json(document: Mapping[str, Any]) -> TraceAnalysis:
    """The inverse of :func:`to_json`. Also reads the store's window summaries, which leave out
    ``steps`` and ``kernels`` (those have their own tables): they come back empty."""
    return TraceAnalysis(
        ranks=tuple(_rank_from_json(item) for item in document.get("ranks") or ()),
        stragglers=tuple(Straggler(**item) for item in document.get("stragglers") or ()),
        notes=tuple(document.get("notes") or ()),
    )


def _rank_from_json(item: Mapping[str, Any]) -> RankAnalysis:
    def optional(cls: Any, key: str) -> Any:
        value = item.get(key)
        return cls(**value) if isinstance(value, Mapping) else None

    return RankAnalysis(
        rank=item["rank"],
        device=item.get("device"),
        device_index=item.get("device_index"),
        compute_capability=item.get("compute_capability"),
        device_memory_bytes=item.get("device_memory_bytes"),
        temporal=Temporal(**_numbers(item["temporal"])),
        idle_breakdown_us=IdleBreakdown(**_numbers(item["idle_breakdown_us"])),
        steps=tuple(_step_from_json(step) for step in item.get("steps") or ()),
        total=_step_from_json(item["total"]),
        kernels=tuple(KernelStat(**kernel) for kernel in item.get("kernels") or ()),
        memcpy=tuple(MemcpyStat(**copy) for copy in item.get("memcpy") or ()),
        syncs=tuple(SyncStat(**sync) for sync in item.get("syncs") or ()),
        launch=optional(LaunchStats, "launch"),
        overlap=optional(Overlap, "overlap"),
        peak_memory_bytes=item.get("peak_memory_bytes"),
        source=item.get("source"),
        events=item.get("events") or 0,
        distributed_backend=item.get("distributed_backend"),
        world_size=item.get("world_size"),
    )


def _step_from_json(step: Mapping[str, Any]) -> StepBreakdown:
    return StepBreakdown(
        step=step.get("step"),
        start_us=step["start_us"],
        duration_us=step["duration_us"],
        breakdown_us=_numbers(step["breakdown_us"]),
        gpu_busy_us=step["gpu_busy_us"],
    )


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    # The store turns NaN into null (JSON has no NaN); it comes back as NaN.
    return {key: float("nan") if value is None else value for key, value in values.items()}


def _step_json(step: StepBreakdown) -> dict[str, Any]:
    return {
        "step": step.step,
        "start_us": step.start_us,
        "duration_us": step.duration_us,
        "breakdown_us": {name: step.breakdown_us.get(name, 0.0) for name in CATEGORIES},
        "gpu_busy_us": step.gpu_busy_us,
    }
