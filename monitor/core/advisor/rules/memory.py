"""Memory: the peak sits near the device's limit, or most of the device stays unused."""

from __future__ import annotations

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.rules.base import confidence_for, pct, run_scope
from monitor.core.advisor.thresholds import Thresholds

GIB = 1024**3


def check(evidence: RunEvidence, measures: Measures, thresholds: Thresholds) -> list[Finding]:
    """Peak allocated over 90 % of device memory; or under 40 % while the GPU idles."""
    peak, peak_step = _peak(evidence)
    total = _device_memory(evidence)
    if peak is None or not total:
        return []
    share = peak / total
    evidence_fields = {
        "peak_allocated_bytes": peak,
        "device_memory_bytes": total,
        "peak_percent_of_device": pct(share),
        "peak_step": peak_step,
    }
    scope = run_scope(evidence, measures, steps=(peak_step,) if peak_step is not None else ())
    if share > thresholds.value("memory.peak_warning_percent") / 100:
        return [
            Finding(
                rule="memory_pressure",
                severity="critical" if share > 0.97 else "warning",
                title=(
                    f"Peak memory is {pct(share):.1f}% of the GPU's "
                    f"{total / GIB:.0f} GiB: out-of-memory risk and allocator retries"
                ),
                evidence=evidence_fields,
                advice=(
                    "Cut activation memory: torch.utils.checkpoint on the largest blocks "
                    "(recompute in backward), or mixed precision (bf16 halves activations).",
                    "Use a smaller micro-batch with gradient accumulation to keep the "
                    "effective batch size.",
                    "Reduce fragmentation: PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True; "
                    "free references to large tensors (outputs kept for logging) early.",
                ),
                confidence=confidence_for(measures),
                scope=scope,
                thresholds=thresholds.uses("memory.peak_warning_percent"),
            )
        ]
    busy = measures.gpu_busy_fraction
    idle = busy is not None and busy < thresholds.value("gpu.busy_warning_percent") / 100
    if share < thresholds.value("memory.unused_percent") / 100 and idle:
        return [
            Finding(
                rule="memory_underused",
                severity="info",
                title=(
                    f"Only {pct(share):.0f}% of GPU memory is used while the GPU idles: "
                    "a larger batch fits"
                ),
                evidence={**evidence_fields, "gpu_busy_percent": pct(busy or 0.0)},
                advice=(
                    "Raise the batch size (scale the learning rate, or keep the optimiser's "
                    "effective batch with fewer accumulation steps) until peak memory nears "
                    "80% of the device.",
                ),
                confidence="medium",
                scope=scope,
                thresholds=thresholds.uses("memory.unused_percent", "gpu.busy_warning_percent"),
            )
        ]
    return []


def _peak(evidence: RunEvidence) -> tuple[int | None, int | None]:
    measured = [s for s in evidence.steps if s.cuda_peak_bytes is not None]
    if measured:
        top = max(measured, key=lambda s: s.cuda_peak_bytes or 0)
        return top.cuda_peak_bytes, top.step
    peaks = [t.peak_memory_bytes for t in evidence.traces if t.peak_memory_bytes]
    return (max(peaks), None) if peaks else (None, None)


def _device_memory(evidence: RunEvidence) -> int | None:
    for trace in evidence.traces:
        if trace.device_memory_bytes:
            return trace.device_memory_bytes
    wanted = set(evidence.run.gpu_uuids) if evidence.run is not None else set()
    for gpu in evidence.gpus:
        if gpu.memory_total_bytes and (not wanted or gpu.uuid in wanted):
            return gpu.memory_total_bytes
    return None
