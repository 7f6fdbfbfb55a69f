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

Bad values (the rule is in :mod:`monitor.traces.skips`): :meth:`EventTable.add`
keeps nothing of an event with an unusable ``ts``/``dur``/``args``/name or a negative ``dur``, and
returns it as a :data:`Rejection` to skip and count; a bad ``ProfilerStep#N`` is returned as fatal.
"""

from __future__ import annotations

import re
from array import array
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple

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
# Times (ns) kept must fit the int64 columns with room for ts + dur: ±2**62 ns is ±146 years.
_MAX_NS = 2**62
_MIN_NS = -_MAX_NS
_SHOWN_CHARS = 40  # of a bad value, in messages
# What a bad value raises on the way to a column (ArithmeticError: decimal.Overflow, OverflowError).
_BAD_VALUE = (LookupError, TypeError, ValueError, ArithmeticError, AttributeError, UnicodeError)
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


class Rejection(NamedTuple):
    """An event :meth:`EventTable.add` kept nothing of: its position in the batch, what is wrong
    (``"a bad ts (NaN)"``), and whether the trace cannot be analyzed without it."""

    position: int
    problem: str
    fatal: bool


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
            exact = Decimal(value)
            if exact.is_finite() and exact.adjusted() < 30:  # else a huge int (1e999999)
                return int((exact * 1000).to_integral_value())
        except ArithmeticError:  # InvalidOperation, Overflow (1e999999999)
            pass
        raise ValueError(f"not a time: {value!r}")
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

    def add(self, batch: Iterable[Mapping[str, Any]]) -> list[Rejection]:
        """Take a batch of trace events (dicts as in the JSON); return those it kept nothing of
        (bad values). The hot loop of the analyzer: everything per event is inlined; per-name
        work is cached; an event is checked before anything of it is kept."""
        gpu_cats, rt_cats, op_cats, notes = _GPU_CATS, _RUNTIME_CATS, _CPU_OP_CATS, _ANNOTATION_CATS
        rejected: list[Rejection] = []
        count = 0
        for event in batch:
            count += 1
            try:
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
                if not (_MIN_NS < ts < _MAX_NS and 0 <= dur < _MAX_NS):
                    raise ValueError("out of range")
                end = ts + dur
                if role == _CPU_OP:
                    self.cpu_ts.append(ts)
                    self.cpu_end.append(end)
                elif role == 0:
                    self._runtime(event, ts, end)
                elif role < 0:
                    self._gpu(event, -1 - role, ts, end)
                else:
                    self._host_range(event, role, ts, end)
            except _BAD_VALUE:
                rejected.append(reject(count - 1, event))
        self.events += count
        return rejected

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
        stream = args.get("stream")  # AttributeError for args that are not an object
        stream = stream if stream.__class__ is int else _stream(args, event)
        corr = args.get("correlation", -1)
        corr = corr if corr.__class__ is int else _int(corr, -1)
        if not (_MIN_NS < stream < _MAX_NS and _MIN_NS < corr < _MAX_NS):
            raise ValueError("out of range")
        agg = self.kernels.get(name)
        if agg is None:
            name.encode()  # UnicodeEncodeError for a lone surrogate: it could not be printed
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
        self.gpu_stream.append(stream)
        self.gpu_corr.append(corr)
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
        args = event.get("args") or {}
        corr = args.get("correlation", -1)  # AttributeError for args that are not an object
        corr = corr if corr.__class__ is int else _int(corr, -1)
        if not _MIN_NS < corr < _MAX_NS:
            raise ValueError("out of range")
        known = self._runtime_names.get(name)
        if known is None:
            text = str(name)
            text.encode()  # UnicodeEncodeError for a lone surrogate: it could not be printed
            known = (1 if any(n in text for n in _LAUNCH_NAMES) else 0, sync_kind(text))
            self._runtime_names[name] = known
        self.runtime_ts.append(ts)
        self.runtime_end.append(end)
        self.runtime_corr.append(corr)
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


def reject(index: int, event: Mapping[str, Any]) -> Rejection:
    """What is wrong with an event :meth:`EventTable.add` could not keep (the slow path)."""
    name = event.get("name")
    fatal = isinstance(name, str) and name.startswith(_STEP_PREFIX)
    return Rejection(index, _problem(event), fatal)


def _problem(event: Mapping[str, Any]) -> str:
    if "ts" not in event:
        return "no ts"
    for key in ("ts", "dur"):
        value = event.get(key, 0)
        shown = _show(value)
        try:
            ns = value * 1000 if value.__class__ is int else to_ns(value)
        except (ValueError, ArithmeticError):  # OverflowError: float("inf")
            return f"a bad {key} ({shown} µs, {_what_is_wrong(value)})"
        if key == "dur" and ns < 0:
            return f"a negative dur ({shown} µs)"
        if not _MIN_NS < ns < _MAX_NS:
            return f"a bad {key} ({shown} µs, out of range)"
    args = event.get("args")
    if args and not isinstance(args, dict):
        return f"args that are {type(args).__name__}, not an object ({_show(args)})"
    name = event.get("name")
    try:
        str(name).encode()
    except UnicodeEncodeError:
        return f"a name that is not valid Unicode (a lone surrogate): {_show(name)}"
    return f"a bad value in its args ({_show(args)})"


def _what_is_wrong(value: Any) -> str:
    """Why a time that :func:`to_ns` refused is bad: too big to be one, or not a number."""
    try:
        return "out of range" if Decimal(str(value)).is_finite() else "not a finite number"
    except ArithmeticError:
        return "not a number"


def _show(value: Any) -> str:
    """A bad value for a message: its JSON spelling where it has one, shortened."""
    if value is None or value is True or value is False:
        text = {None: "null", True: "true", False: "false"}[value]
    elif isinstance(value, float):
        text = "NaN" if value != value else repr(value).replace("inf", "Infinity")
    else:
        text = repr(value) if isinstance(value, dict | list) else str(value)
        text = repr(text)[1:-1] if not isinstance(value, dict | list) else text
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


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
        number = int(value)
    except (TypeError, ValueError):
        try:
            number = int(float(value))
        except (TypeError, ValueError, OverflowError):  # OverflowError: inf
            return default
    return number if _MIN_NS < number < _MAX_NS else default
