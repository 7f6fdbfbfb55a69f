"""Kineto trace events → compact columns (pure: no I/O, no clock).

:class:`EventTable` consumes event dicts in batches, as the streaming reader produces them, and
keeps only what the analysis needs, as integer nanoseconds in :mod:`array` columns (8 bytes a
value instead of a dict per event). Kernel, memcpy and sync tables are aggregated on the fly.

What the traces teach (see the README of the shared traces):
- timestamps are integers or floats with sub-µs digits; the reader hands floats over as their
  exact text so ``1712195495505583.264`` keeps its nanoseconds (float64 would not);
- older PyTorch writes ``Kernel``/``Runtime``/``Operator``/``Memcpy``/``Memset`` categories and
  ``tid`` values like ``"stream 7"``;
- ``cuda_sync`` rows sit on GPU streams but are host waits, not GPU work;
- GPU events need not have a CPU launch (no correlation partner): they are still GPU time.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any

# GPU activity kinds (the ``gpu_kind`` column).
COMPUTE, COMMUNICATION, MEMCPY, MEMSET, OTHER_KERNEL = 0, 1, 2, 3, 4

# Event categories → what they are. Legacy (PyTorch < 1.10) spellings included.
_GPU_CATS = {"kernel": 0, "Kernel": 0, "gpu_memcpy": MEMCPY, "Memcpy": MEMCPY}
_GPU_CATS |= {"gpu_memset": MEMSET, "Memset": MEMSET}
_RUNTIME_CATS = frozenset({"cuda_runtime", "cuda_driver", "Runtime", "runtime", "Driver"})
_CPU_OP_CATS = frozenset({"cpu_op", "Operator", "operator"})
_ANNOTATION_CATS = frozenset({"user_annotation", "User Annotation"})

# Holistic Trace Analysis's kernel classes (hta.utils.utils), kept identical so the temporal
# breakdown agrees with it: NCCL kernels communicate, Memcpy/Memset/dma move memory, and
# kernels whose names say Memcpy, Memset or Sync are neither computation nor communication.
_NCCL_KERNEL = re.compile(r"^nccl.*Kernel")
_MEMORY_KERNEL = re.compile(r"(^Memcpy)|(^Memset)|(^dma)")
_NOT_COMPUTE = re.compile(r"(^nccl.*Kernel)|(.*(Memcpy)|(Memset))|(.*Sync)")

# Tensor-core kernels by name: cuBLAS/cuDNN/CUTLASS naming (HMMA/IMMA shapes, xmma, wgmma on
# Hopper, nvjet on recent cuBLAS) and the usual fused attention kernels.
TENSOR_CORE_NAME = re.compile(
    r"(?:^|[^0-9])(?:884|1688|16816|16832|8816)(?:[^0-9]|$)|hmma|imma|xmma|wgmma|gmma|"
    r"tensorop|tensor\d+x\d+x\d+|nvjet|_tc_|flash_(?:fwd|bwd)|fmha|cutlass.*(?:sm8|sm9)",
    re.IGNORECASE,
)

# cuBLAS's FP32 GEMMs share the xmma/cutlass families' names but run on the CUDA cores
# ("sm90_xmma_gemm_f32f32_f32f32_f32_tn_n...", "ampere_sgemm_128x64_nn"); TF32 ones say "tf32".
FP32_SIMT_NAME = re.compile(r"sgemm|f32f32_f32f32_f32|_s1688gemm_fp32|gemm_fp32", re.IGNORECASE)


def is_tensor_core_kernel(name: str) -> bool:
    """Whether a kernel's name says it runs on tensor cores (the TensorBoard plugin's and
    NVIDIA's naming patterns), FP32 CUDA-core GEMMs excluded."""
    if not TENSOR_CORE_NAME.search(name):
        return False
    return "tf32" in name.lower() or not FP32_SIMT_NAME.search(name)


_COMM_CPU_PREFIXES = ("nccl:", "gloo:", "c10d::", "record_param_comms", "mpi:")
_DATALOADER_PREFIX = "enumerate(DataLoader)"
_STEP_PREFIX = "ProfilerStep#"
_LAUNCH_NAMES = ("LaunchKernel", "LaunchCooperativeKernel")
# Host event roles (GPU events use negative codes: -1 - their kind).
_CPU_OP, _STEP, _DATALOADER, _COMM_CPU, _IGNORED = 1, 2, 3, 4, 5
_NAME_CACHE_LIMIT = 100_000
_SYNC_NAMES = {
    "cudaDeviceSynchronize": "device",
    "cuCtxSynchronize": "context",
    "cudaStreamSynchronize": "stream",
    "cuStreamSynchronize": "stream",
    "cudaEventSynchronize": "event",
    "cuEventSynchronize": "event",
    "cudaStreamQuery": "query",
}


def gpu_kind(name: str, cat_kind: int) -> int:
    """The activity kind of a GPU event with this name (HTA's classes)."""
    if cat_kind in (MEMCPY, MEMSET):
        return cat_kind
    if _NCCL_KERNEL.match(name):
        return COMMUNICATION
    if _MEMORY_KERNEL.match(name):
        return MEMCPY if name.startswith(("Memcpy", "dma")) else MEMSET
    return OTHER_KERNEL if _NOT_COMPUTE.match(name) else COMPUTE


def sync_kind(name: str) -> str | None:
    """``device``/``stream``/``event``/``memcpy``... for host calls that block on the GPU."""
    kind = _SYNC_NAMES.get(name)
    if kind is not None:
        return kind
    if name.startswith(("cudaMemcpy", "cuMemcpy")) and "Async" not in name:
        return "memcpy"
    return None


def to_ns(value: Any) -> int:
    """A trace time in µs (int, float, or a float's exact text) as integer nanoseconds."""
    if value.__class__ is int:
        return int(value) * 1000
    if isinstance(value, str):
        whole, _, frac = value.partition(".")
        if len(frac) <= 3:
            try:  # "1712195495505583.264" → 1712195495505583264 (also "-1.5", "7.0")
                return int(whole + frac.ljust(3, "0"))
            except ValueError:
                pass
        try:
            return int((Decimal(value) * 1000).to_integral_value())
        except InvalidOperation:
            raise ValueError(f"not a time: {value!r}") from None
    if isinstance(value, float):
        return round(value * 1000)
    raise ValueError(f"not a time: {value!r}")


@dataclass(slots=True)
class KernelAggregate:
    """Running totals for one kernel name (ns)."""

    kind: int
    count: int
    total_ns: int
    min_ns: int
    max_ns: int


@dataclass(slots=True)
class CopyAggregate:
    count: int = 0
    total_ns: int = 0
    total_bytes: int = 0


@dataclass(slots=True)
class EventTable:
    """The columns one rank's analysis is computed from (append-only while reading)."""

    # GPU activity: kernels, memcpy, memset (cuda_sync excluded).
    gpu_ts: array[int] = field(default_factory=lambda: array("q"))
    gpu_end: array[int] = field(default_factory=lambda: array("q"))
    gpu_stream: array[int] = field(default_factory=lambda: array("q"))
    gpu_kind: array[int] = field(default_factory=lambda: array("b"))
    gpu_corr: array[int] = field(default_factory=lambda: array("q"))
    gpu_device: dict[int, int] = field(default_factory=dict)  # device id → event count
    # Host intervals by breakdown role.
    runtime_ts: array[int] = field(default_factory=lambda: array("q"))
    runtime_end: array[int] = field(default_factory=lambda: array("q"))
    runtime_corr: array[int] = field(default_factory=lambda: array("q"))
    runtime_is_launch: array[int] = field(default_factory=lambda: array("b"))
    cpu_ts: array[int] = field(default_factory=lambda: array("q"))
    cpu_end: array[int] = field(default_factory=lambda: array("q"))
    dataloader: list[tuple[int, int]] = field(default_factory=list)
    comm_cpu: list[tuple[int, int]] = field(default_factory=list)
    steps: list[tuple[int, int, int]] = field(default_factory=list)  # (step, ts, end)
    # Aggregates.
    kernels: dict[str, KernelAggregate] = field(default_factory=dict)
    copies: dict[tuple[str, str], CopyAggregate] = field(default_factory=dict)
    syncs: dict[tuple[str, str], CopyAggregate] = field(default_factory=dict)
    peak_allocated_bytes: int | None = None
    events: int = 0
    # Per-name classification caches (names repeat: a few thousand distinct in a large trace).
    _runtime_names: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    _host_names: dict[str, int] = field(default_factory=dict)

    def add(self, batch: Iterable[Mapping[str, Any]]) -> None:
        """Take a batch of trace events (dicts as in the JSON). The hot loop of the analyzer:
        everything per event is inlined; per-name work is cached."""
        gpu_cats, rt_cats, op_cats, notes = _GPU_CATS, _RUNTIME_CATS, _CPU_OP_CATS, _ANNOTATION_CATS
        count = 0
        for event in batch:
            count += 1
            if event.get("ph") != "X":
                if event.get("name") == "[memory]":
                    self._memory(event)
                continue
            cat = event.get("cat")
            if cat in gpu_cats:
                role = -1 - gpu_cats[cat]
            elif cat in rt_cats:
                role = 0
            elif cat in op_cats or cat in notes:
                role = self._host_role(str(event.get("name", "")), cat in op_cats)
                if role == _IGNORED:
                    continue
            else:
                continue
            ts = event["ts"]
            ts = ts * 1000 if ts.__class__ is int else to_ns(ts)
            dur = event.get("dur", 0)
            dur = dur * 1000 if dur.__class__ is int else to_ns(dur)
            end = ts + dur if dur > 0 else ts
            if role == _CPU_OP:
                self.cpu_ts.append(ts)
                self.cpu_end.append(end)
            elif role == 0:
                self._runtime(event, ts, end)
            elif role < 0:
                self._gpu(event, -1 - role, ts, end)
            else:
                self._host_range(event, role, ts, end)
        self.events += count

    def bounds(self) -> tuple[int, int] | None:
        """First and last moment (ns) of the events kept."""
        starts = [min(c) for c in (self.gpu_ts, self.runtime_ts, self.cpu_ts) if len(c)]
        ends = [max(c) for c in (self.gpu_end, self.runtime_end, self.cpu_end) if len(c)]
        for ranges in (self.dataloader, self.comm_cpu):
            starts += [item[0] for item in ranges]
            ends += [item[1] for item in ranges]
        starts += [item[1] for item in self.steps]
        ends += [item[2] for item in self.steps]
        return (min(starts), max(ends)) if starts else None

    def _host_role(self, name: str, is_op: bool) -> int:
        role = self._host_names.get(name)
        if role is None:
            if name.startswith(_STEP_PREFIX):
                role = _STEP
            elif name.startswith(_DATALOADER_PREFIX):
                role = _DATALOADER
            elif name.startswith(_COMM_CPU_PREFIXES):
                role = _COMM_CPU
            else:
                role = _CPU_OP if is_op else _IGNORED
            if len(self._host_names) < _NAME_CACHE_LIMIT:
                self._host_names[name] = role
        return role

    def _gpu(self, event: Mapping[str, Any], cat_kind: int, ts: int, end: int) -> None:
        args = event.get("args") or {}
        name = str(event.get("name", ""))
        dur = end - ts
        agg = self.kernels.get(name)
        if agg is None:
            agg = self.kernels[name] = KernelAggregate(gpu_kind(name, cat_kind), 0, 0, dur, dur)
        agg.count += 1
        agg.total_ns += dur
        if dur < agg.min_ns:
            agg.min_ns = dur
        elif dur > agg.max_ns:
            agg.max_ns = dur
        self.gpu_ts.append(ts)
        self.gpu_end.append(end)
        self.gpu_kind.append(agg.kind)
        stream = args.get("stream")
        self.gpu_stream.append(stream if stream.__class__ is int else _stream(args, event))
        corr = args.get("correlation", -1)
        self.gpu_corr.append(corr if corr.__class__ is int else _int(corr, -1))
        device = args.get("device")
        if device.__class__ is not int:
            device = _int(device, _int(event.get("pid"), -1))
        self.gpu_device[device] = self.gpu_device.get(device, 0) + 1
        if agg.kind == MEMCPY:
            self._copy(name, dur, _int(args.get("bytes"), 0))

    def _copy(self, name: str, dur: int, nbytes: int) -> None:
        key = copy_key(name)
        agg = self.copies.get(key)
        if agg is None:
            agg = self.copies[key] = CopyAggregate()
        agg.count += 1
        agg.total_ns += dur
        agg.total_bytes += nbytes

    def _runtime(self, event: Mapping[str, Any], ts: int, end: int) -> None:
        name = event.get("name", "")
        known = self._runtime_names.get(name)
        if known is None:
            text = str(name)
            known = (1 if any(n in text for n in _LAUNCH_NAMES) else 0, sync_kind(text))
            self._runtime_names[name] = known
        args = event.get("args") or {}
        corr = args.get("correlation", -1)
        self.runtime_ts.append(ts)
        self.runtime_end.append(end)
        self.runtime_corr.append(corr if corr.__class__ is int else _int(corr, -1))
        self.runtime_is_launch.append(known[0])
        if known[1] is not None:
            agg = self.syncs.get((name, known[1]))
            if agg is None:
                agg = self.syncs[(name, known[1])] = CopyAggregate()
            agg.count += 1
            agg.total_ns += end - ts

    def _host_range(self, event: Mapping[str, Any], role: int, ts: int, end: int) -> None:
        if role == _STEP:
            number = _int(str(event.get("name", ""))[len(_STEP_PREFIX) :], -1)
            if number >= 0:
                self.steps.append((number, ts, end))
        elif role == _DATALOADER:
            self.dataloader.append((ts, end))
        else:
            self.comm_cpu.append((ts, end))

    def _memory(self, event: Mapping[str, Any]) -> None:
        args = event.get("args") or {}
        if _int(args.get("Device Type"), 0) != 1:  # 1 = CUDA in c10::DeviceType
            return
        allocated = _int(args.get("Total Allocated"), -1)
        if allocated >= 0 and (self.peak_allocated_bytes or 0) < allocated:
            self.peak_allocated_bytes = allocated


def copy_key(name: str) -> tuple[str, str]:
    """``("HtoD", "pageable")`` from ``"Memcpy HtoD (Pageable -> Device)"``."""
    direction = name[7:11] if name.startswith("Memcpy ") and len(name) >= 11 else "unknown"
    memory = "unknown"
    if "(" in name and "->" in name:
        source, _, target = name[name.index("(") + 1 : name.rindex(")")].partition("->")
        host_side = source if direction in ("HtoD", "HtoH") else target
        if direction == "DtoD":
            host_side = "Device"
        memory = host_side.strip().lower() or "unknown"
    return direction, memory


def _stream(args: Mapping[str, Any], event: Mapping[str, Any]) -> int:
    stream = args.get("stream")
    if stream is not None:
        return _int(stream, -1)
    tid = event.get("tid")
    if isinstance(tid, str):  # legacy "stream 7"
        return _int(tid.rpartition(" ")[2], -1)
    return _int(tid, -1)


def _int(value: Any, default: int) -> int:
    if value.__class__ is int:
        return int(value)
    try:
        return int(value)
    except (TypeError, ValueError):
        try:
            return int(float(value))
        except (TypeError, ValueError):
            return default
