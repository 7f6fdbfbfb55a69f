"""Precision: GEMMs and convolutions in FP32 on a GPU that has tensor cores."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from monitor.core.advisor.evidence import RunEvidence
from monitor.core.advisor.findings import Finding, Gain
from monitor.core.advisor.measures import Measures
from monitor.core.advisor.rules.base import confidence_for, pct, run_scope, us
from monitor.core.advisor.thresholds import Thresholds

# Matrix-multiply and convolution kernels of cuBLAS, cuBLASLt, CUTLASS and cuDNN.
GEMM_NAME = re.compile(
    r"gemm|cutlass|xmma|nvjet|conv|wgrad|dgrad|implicit_convolve|winograd|fprop|bprop|"
    r"splitkreduce",
    re.IGNORECASE,
)


def check(evidence: RunEvidence, measures: Measures, thresholds: Thresholds) -> list[Finding]:
    """GEMM/conv over 30 % of kernel time, under 10 % of it on tensor cores, on sm >= 7.0."""
    capability = _capability(evidence)
    if capability is None or capability < thresholds.value("precision.min_compute_capability"):
        return []
    compute = [k for k in evidence.kernels if k.category == "computation"]
    gemms = [k for k in compute if GEMM_NAME.search(k.name)]
    compute_us = math.fsum(k.total_us for k in compute)
    gemm_us = math.fsum(k.total_us for k in gemms)
    tensor_us = math.fsum(k.total_us for k in gemms if k.tensor_core)
    if compute_us <= 0 or gemm_us <= 0:
        return []
    gemm_share = gemm_us / compute_us
    tensor_share = tensor_us / gemm_us
    if gemm_share < thresholds.value("precision.gemm_share_percent") / 100:
        return []
    if tensor_share >= thresholds.value("precision.tensor_core_percent") / 100:
        return []
    fraction = gemm_us / measures.traced_us if measures.traced_us > 0 else gemm_share
    top = sorted(gemms, key=lambda k: -k.total_us)[:5]
    return [
        Finding(
            rule="precision",
            severity="warning",
            title=(
                f"Matrix multiplies take {pct(gemm_share):.0f}% of GPU compute time but only "
                f"{pct(tensor_share):.0f}% of it runs on tensor cores"
            ),
            evidence={
                "compute_capability": f"{capability:.1f}",
                "gemm_percent_of_kernel_time": pct(gemm_share),
                "tensor_core_percent_of_gemm_time": pct(tensor_share),
                "gemm_us": us(gemm_us),
                "top_gemm_kernels": [
                    {"name": k.name[:200], "total_us": us(k.total_us), "tensor_core": k.tensor_core}
                    for k in top
                ],
                **_settings(evidence),
            },
            advice=_advice(capability),
            expected_gain=Gain(
                min(fraction, 1.0),
                "FP32 GEMM/conv kernel time share of the traced steps (tensor cores run "
                "them several times faster; the bound assumes they become free)",
            ),
            confidence=confidence_for(measures),
            scope=run_scope(evidence, measures, kernels=tuple(k.name[:200] for k in top)),
            thresholds=thresholds.uses(
                "precision.min_compute_capability",
                "precision.gemm_share_percent",
                "precision.tensor_core_percent",
            ),
        )
    ]


def _advice(capability: float) -> tuple[str, ...]:
    if capability < 8.0:  # Volta and Turing: fp16 tensor cores only, no bf16 and no TF32
        return (
            "Train in mixed precision with fp16: with torch.autocast('cuda', "
            "dtype=torch.float16): and a torch.amp.GradScaler('cuda') for the loss "
            "(this GPU has no bf16 or TF32 tensor cores).",
            "Keep matrix dimensions multiples of 8 so the tensor-core kernels apply.",
        )
    return (
        "Train in mixed precision: with torch.autocast('cuda', dtype=torch.bfloat16): "
        "(bf16 needs no GradScaler).",
        "Or at least let FP32 matmuls use TF32 tensor cores: "
        "torch.set_float32_matmul_precision('high') and torch.backends.cudnn.allow_tf32 = True.",
        "Keep matrix dimensions multiples of 8 (16 for bf16 on Hopper) so the tensor-core "
        "kernels apply.",
    )


def _capability(evidence: RunEvidence) -> float | None:
    texts = [item.compute_capability for item in evidence.traces if item.compute_capability]
    texts += [gpu.compute_capability for gpu in evidence.gpus if gpu.compute_capability]
    for text in texts:
        try:
            return float(text)
        except ValueError:
            continue
    return None


def _settings(evidence: RunEvidence) -> dict[str, Any]:
    """The precision settings the hooks recorded at the start of the run, if any."""
    if evidence.run is None:
        return {}
    hooks: Mapping[str, Any] = evidence.run.config.get("gpulens") or {}
    torch_settings = hooks.get("torch") or {}
    keys = ("float32_matmul_precision", "matmul_allow_tf32", "cudnn_allow_tf32")
    return {key: torch_settings[key] for key in keys if key in torch_settings}
