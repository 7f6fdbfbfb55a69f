"""The text form of an analysis (``gpulens analyze``): a pure function of the result."""

from __future__ import annotations

from monitor.core.analysis.results import CATEGORIES, RankAnalysis, TraceAnalysis

KERNEL_ROWS = 15


def format_analysis(analysis: TraceAnalysis) -> str:
    """A short report per rank: steps, breakdown, GPU time, top kernels, copies and syncs."""
    parts = [_rank_text(item) for item in analysis.ranks]
    if analysis.stragglers:
        parts.append(
            "Stragglers: "
            + ", ".join(
                f"rank {item.rank} (+{item.slowdown_percent:.1f}% mean step time)"
                for item in analysis.stragglers
            )
        )
    parts.extend(f"note: {note}" for note in analysis.notes)
    return "\n\n".join(parts)


def _rank_text(item: RankAnalysis) -> str:
    device = item.device or "no GPU activity"
    if item.compute_capability:
        device += f" (sm {item.compute_capability})"
    lines = [f"Rank {item.rank} · {device} · {item.source or ''} · {item.events:,} events"]
    total = item.total
    scope = f"{len(item.steps)} steps" if item.steps else "whole trace (no ProfilerStep)"
    lines.append(f"  {scope}: {_ms(total.duration_us)}, GPU busy {_pct(total.gpu_busy_us, total)}")
    for step in item.steps:
        lines.append(
            f"    step {step.step}: {_ms(step.duration_us)}, GPU busy "
            f"{_pct(step.gpu_busy_us, step)}"
        )
    lines.append("  Step breakdown (wall time, by priority):")
    for name in CATEGORIES:
        value = total.breakdown_us.get(name, 0.0)
        lines.append(f"    {name:<14}{_ms(value):>12}  {_pct(value, total):>6}")
    temporal = item.temporal
    if temporal.span_us > 0:
        span = temporal.span_us
        lines.append(
            f"  GPU timeline (HTA): span {_ms(span)}, idle {100 * temporal.idle_us / span:.1f}%, "
            f"compute {100 * temporal.compute_us / span:.1f}%, "
            f"non-compute {100 * temporal.non_compute_us / span:.1f}%"
        )
        idle = item.idle_breakdown_us
        lines.append(
            f"  GPU idle by cause: host wait {_ms(idle.host_wait)}, kernel wait "
            f"{_ms(idle.kernel_wait)}, other {_ms(idle.other)}"
        )
    lines.extend(_kernel_lines(item))
    lines.extend(_copy_sync_lines(item))
    return "\n".join(lines)


def _kernel_lines(item: RankAnalysis) -> list[str]:
    if not item.kernels:
        return []
    lines = [f"  Top kernels (of {len(item.kernels)}):"]
    for kernel in item.kernels[:KERNEL_ROWS]:
        flag = "TC" if kernel.tensor_core else "  "
        lines.append(
            f"    {_ms(kernel.total_us):>11} {kernel.count:>7}x {flag} {kernel.category:<13} "
            f"{_short(kernel.name)}"
        )
    launch = item.launch
    if launch is not None and launch.matched:
        lines.append(
            f"  Launches: {launch.launches:,}, mean launch call {launch.mean_launch_us:.1f} µs, "
            f"{launch.short_kernels:,} kernels shorter than their launch, launch→start delay "
            f"mean {launch.mean_delay_us:.1f} µs (p95 {launch.p95_delay_us:.1f} µs)"
        )
    if item.overlap is not None and item.overlap.overlap_percent is not None:
        lines.append(
            f"  Communication {_ms(item.overlap.communication_us)}, "
            f"{item.overlap.overlap_percent:.1f}% overlapped with computation"
        )
    return lines


def _copy_sync_lines(item: RankAnalysis) -> list[str]:
    lines = []
    for copy in item.memcpy:
        lines.append(
            f"  memcpy {copy.direction} ({copy.memory}): {copy.count:,} x, {_ms(copy.total_us)}, "
            f"{copy.total_bytes / 1e6:.1f} MB"
        )
    for sync in item.syncs:
        lines.append(f"  sync {sync.name} ({sync.kind}): {sync.count:,} x, {_ms(sync.total_us)}")
    return lines


def _ms(us: float) -> str:
    return f"{us / 1000:.3f} ms"


def _pct(part: float, whole: object) -> str:
    duration = getattr(whole, "duration_us", 0.0)
    return f"{100 * part / duration:.1f}%" if duration else "n/a"


def _short(name: str, width: int = 90) -> str:
    text = " ".join(name.split())
    return text if len(text) <= width else text[: width - 1] + "…"
