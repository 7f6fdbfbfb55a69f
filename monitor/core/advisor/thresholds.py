"""Every threshold the advisor's rules compare against, with its unit and where it comes from.

Each one can be changed (``gpulens advise --threshold NAME=VALUE``, or
:meth:`Thresholds.with_overrides`); a finding lists the thresholds it used, with the value and
the source, so a reader can judge the verdict. ``gpulens advise --thresholds`` prints this table.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from monitor.core.advisor.findings import ThresholdUse
from monitor.core.errors import ConfigError

_TB = "TensorBoard PyTorch profiler plugin (torch_tb_profiler) recommendation"
_TUNING = "PyTorch Performance Tuning Guide"
_GPULENS = "gpulens default"


@dataclass(frozen=True, slots=True)
class Threshold:
    name: str
    default: float
    unit: str
    meaning: str
    source: str


THRESHOLDS: tuple[Threshold, ...] = (
    Threshold("advisor.min_gain_percent", 1, "%",
              "a finding worth less of the step than this is info, not a warning", _GPULENS),
    Threshold("input.dataloader_warning_percent", 5, "%", "DataLoader wait per step, warning",
              f"{_TB}: DataLoader over 5% of step time"),
    Threshold("input.dataloader_critical_percent", 20, "%", "DataLoader wait per step, critical",
              f"{_GPULENS}: at 20% a fix is worth up to 1.25x (Amdahl)"),
    Threshold("input.preprocess_warning_percent", 10, "%",
              "host time between a batch's arrival and the model's forward, share of step",
              f"{_GPULENS}; {_TUNING}: move augmentation into DataLoader workers"),
    Threshold("gpu.busy_warning_percent", 50, "%", "GPU busy (any kernel or copy) per step",
              f"{_TB}: GPUs under 50% utilization"),
    Threshold("gpu.busy_critical_percent", 20, "%", "GPU busy per step, critical",
              f"{_GPULENS}: the GPU idles four fifths of the step"),
    Threshold("launch.short_kernel_fraction", 0.5, "fraction",
              "kernels that ran shorter than their launch call",
              f"{_TB}: more than half of the kernels are short"),
    Threshold("launch.min_kernels", 100, "count", "kernels needed before judging launches",
              f"{_TB}: at least 100 kernels"),
    Threshold("copy.pageable_h2d_percent", 1, "%",
              "pageable host-to-device copy time, share of GPU busy time",
              f"{_GPULENS}; CUDA C++ Best Practices Guide: pinned memory for transfers"),
    Threshold("copy.memcpy_warning_percent", 10, "%", "memcpy category, share of step time",
              f"{_GPULENS}: copies, not compute, fill a tenth of the step"),
    Threshold("sync.warning_percent", 5, "%", "synchronizing calls, share of step time",
              f"{_TUNING}: avoid unnecessary CPU-GPU synchronization"),
    Threshold("precision.min_compute_capability", 7.0, "sm",
              "compute capability with tensor cores", "NVIDIA: tensor cores since Volta (7.0)"),
    Threshold("precision.gemm_share_percent", 30, "%", "GEMM/conv share of kernel time",
              f"{_GPULENS}; {_TB}: tensor-core eligible kernels"),
    Threshold("precision.tensor_core_percent", 10, "%",
              "tensor-core share of GEMM/conv time below which precision is flagged",
              _GPULENS),
    Threshold("memory.peak_warning_percent", 90, "%", "peak allocated memory, share of device",
              f"{_GPULENS}: the caching allocator starts retrying and fragmenting near the limit"),
    Threshold("memory.unused_percent", 40, "%",
              "peak allocated memory below which a larger batch fits", _GPULENS),
    Threshold("dist.comm_warning_percent", 10, "%", "communication, share of step time",
              f"{_GPULENS} (issue spec); HTA communication-computation overlap analysis"),
    Threshold("dist.overlap_min_percent", 50, "%",
              "communication time overlapped by computation", f"{_GPULENS}; HTA comm overlap"),
    Threshold("dist.straggler_percent", 20, "%",
              "a rank's own work (step minus communication wait) over the other ranks' median",
              f"{_GPULENS}: smaller imbalances are run-to-run noise on shared hosts (11.5% "
              "measured between two identical CPU ranks of the bottleneck suite)"),
    Threshold("steps.min_steps", 100, "count",
              "steps (outside profiler windows) needed for the step-time shape rules",
              f"{_GPULENS}: a p99 needs about 100 samples"),
    Threshold("steps.warmup_factor", 3, "x", "a leading step over this many medians is warm-up",
              _GPULENS),
    Threshold("steps.warmup_max_steps", 50, "count", "at most this many leading warm-up steps",
              _GPULENS),
    Threshold("steps.tail_ratio", 1.5, "x", "p99 over p50 of step time", _GPULENS),
    Threshold("steps.drift_percent", 15, "%",
              "median step time of the last quarter over the first quarter", _GPULENS),
    Threshold("telemetry.slow_step_factor", 1.5, "x", "a step over this many medians is slow",
              _GPULENS),
    Threshold("telemetry.clock_drop_percent", 10, "%", "SM clock below the run's median",
              f"{_GPULENS}; NVML clock event reasons"),
    Threshold("telemetry.utilization_gap_points", 30, "points",
              "NVML utilization minus the trace's GPU busy share", _GPULENS),
    Threshold("fleet.idle_utilization_percent", 5, "%", "a GPU below this is idle", _GPULENS),
    Threshold("fleet.idle_minutes", 30, "min", "idle this long while holding memory",
              _GPULENS),
    Threshold("fleet.held_memory_percent", 10, "%", "memory held by an idle GPU's processes",
              _GPULENS),
)  # fmt: skip

_BY_NAME = {item.name: item for item in THRESHOLDS}


@dataclass(frozen=True, slots=True)
class Thresholds:
    """The values in force: the defaults of :data:`THRESHOLDS` with overrides applied."""

    overrides: Mapping[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.overrides) - set(_BY_NAME))
        if unknown:
            raise ConfigError(
                f"unknown advisor threshold {', '.join(unknown)}; "
                "`gpulens advise --thresholds` lists them"
            )

    def value(self, name: str) -> float:
        return float(self.overrides.get(name, _BY_NAME[name].default))

    def use(self, name: str) -> ThresholdUse:
        source = _BY_NAME[name].source
        if name in self.overrides:
            source = f"set by the user (default {_BY_NAME[name].default:g}: {source})"
        return ThresholdUse(name=name, value=self.value(name), source=source)

    def uses(self, *names: str) -> tuple[ThresholdUse, ...]:
        return tuple(self.use(name) for name in names)

    def with_overrides(self, overrides: Mapping[str, float]) -> Thresholds:
        return Thresholds({**self.overrides, **overrides})


def parse_overrides(items: Iterable[str]) -> dict[str, float]:
    """``["gpu.busy_warning_percent=40", ...]`` as a mapping; raises ConfigError."""
    parsed: dict[str, float] = {}
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep:
            raise ConfigError(f"--threshold {item!r}: expected NAME=VALUE")
        try:
            parsed[name.strip()] = float(raw)
        except ValueError:
            raise ConfigError(f"--threshold {item!r}: {raw!r} is not a number") from None
    Thresholds(parsed)
    return parsed


__all__ = ["THRESHOLDS", "Threshold", "Thresholds", "parse_overrides"]
