"""Synthetic PyTorch profiler (Kineto) traces with exactly known answers, for tests and bench/.

:func:`write_synthetic_trace` streams a trace shaped like the ones torch.profiler writes (same
keys, categories, argument names and layout) to disk in large blocks, so it can write hundreds
of MB quickly without holding them, and returns a :class:`SyntheticTruth` with the numbers an
analyzer should find, computed while writing.

The GPU timeline is serialised: every kernel, copy and NCCL kernel starts after the previous
GPU activity ended (on any stream), so the GPU busy time (the union) is the plain sum of GPU
durations. Times are integer nanoseconds here and written as microseconds: with three decimals
(``float_timestamps``) near 1.7e15 µs, as Kineto does, or as whole microseconds.
Self-contained on purpose (standard library only): ``bench/`` imports it too.
"""

from __future__ import annotations

import gzip
import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

FIRST_STEP = 10
BASE_US = 1_700_000_000_000_000  # Nov 2023 in µs since the epoch, as Kineto timestamps are
HOST_PID = 31337
HOST_TID = 31340
DEVICE = 0
COMPUTE_STREAM = 7
NCCL_STREAM = 20
DATALOADER = "enumerate(DataLoader)#_SingleProcessDataLoaderIter.__next__"
MEMCPY_HTOD = "Memcpy HtoD (Pageable -> Device)"
NCCL_KERNEL = "ncclDevKernel_AllReduce_Sum_f32_RING_LL(ncclDevComm*, unsigned long, ncclWork*)"
_BLOCK_EVENTS = 4096  # events joined per write


@dataclass(frozen=True)
class KernelKind:
    """A kernel the synthetic model launches, with its CPU op and duration range (ns)."""

    name: str
    op: str
    min_ns: int
    max_ns: int
    tensor_core: bool
    grid: tuple[int, int, int] = (108, 1, 1)
    block: tuple[int, int, int] = (256, 1, 1)


KERNELS: tuple[KernelKind, ...] = (
    KernelKind(
        name="sm80_xmma_gemm_f16f16_f16f32_f32_nn_n_tilesize128x128x32_stage4_warpsize2x2x1_"
        "tensor16x8x16_kernel",
        op="aten::mm", min_ns=40_000, max_ns=400_000, tensor_core=True,
        grid=(16, 8, 1), block=(128, 1, 1),
    ),
    KernelKind(
        name="ampere_fp16_s16816gemm_fp16_128x128_ldg8_f2f_stages_32x5_nn",
        op="aten::addmm", min_ns=30_000, max_ns=300_000, tensor_core=True,
        grid=(32, 4, 1), block=(256, 1, 1),
    ),
    KernelKind(
        name="void at::native::vectorized_elementwise_kernel<4, "
        "at::native::CUDAFunctor_add<float>, at::detail::Array<char*, 3> >(int, "
        "at::native::CUDAFunctor_add<float>, "
        "at::detail::Array<char*, 3>)",
        op="aten::add", min_ns=600, max_ns=30_000, tensor_core=False,  # sub-µs ones too
    ),
    KernelKind(
        name="void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, "
        "at::native::func_wrapper_t<float, at::native::sum_functor<float, float, float>::"
        "operator()(at::TensorIterator&)::{lambda(float, float)#1}>, unsigned int, float, 4> >"
        "(at::native::ReduceOp<float, at::native::func_wrapper_t<float, "
        "at::native::sum_functor<float, float, float>::operator()(at::TensorIterator&)::"
        "{lambda(float, float)#1}>, unsigned int, float, 4>)",
        op="aten::sum", min_ns=2_000, max_ns=50_000, tensor_core=False,
        grid=(1, 1, 1), block=(32, 16, 1),
    ),
    KernelKind(
        name="void at::native::(anonymous namespace)::CatArrayBatchedCopy<float, unsigned int, 2, "
        "64, 64>(float*, at::native::(anonymous namespace)::CatArrInputTensorMetadata<float, "
        "unsigned int, 64, 64>, at::native::(anonymous namespace)::TensorSizeStride<unsigned "
        "int, 4u>, int, unsigned int)",
        op="aten::cat", min_ns=1_500, max_ns=20_000, tensor_core=False,
    ),
)  # fmt: skip

# Kineto's layout, field for field (see ../shared/traces): one template per event shape.
_X = (
    '  {\n    "ph": "X", "cat": "%s", "name": "%s", "pid": %d, "tid": %d,\n'
    '    "ts": %s, "dur": %s,\n'
)
_CPU = (
    _X + '    "args": {\n      "External id": %d,"Record function id": 0, "Ev Idx": %d\n    }\n  }'
)
_RUNTIME = (
    _X + '    "args": {\n      "External id": %d,      "cbid": %d, "correlation": %d\n    }\n  }'
)
_KERNEL = _X + (
    '    "args": {\n      "External id": %d,      "queued": 0, "device": %d, "context": 1,      '
    '"stream": %d, "correlation": %d,      "registers per thread": 32,      "shared memory": 0,'
    '      "blocks per SM": %s,      "warps per SM": %s,      "grid": [%d, %d, %d],      '
    '"block": [%d, %d, %d],      "est. achieved occupancy %%": %d\n    }\n  }'
)
_MEMCPY = _X + (
    '    "args": {\n      "External id": %d,      "device": %d, "context": 1,      "stream": %d, '
    '"correlation": %d,      "bytes": %d, "memory bandwidth (GB/s)": %s\n    }\n  }'
)
_FLOW_START = (
    '  {\n    "ph": "s", "id": %d, "pid": %d, "tid": %d, "ts": %s,\n'
    '    "cat": "ac2g", "name": "ac2g"\n  }'
)
_FLOW_END = (
    '  {\n    "ph": "f", "id": %d, "pid": %d, "tid": %d, "ts": %s,\n'
    '    "cat": "ac2g", "name": "ac2g", "bp": "e"\n  }'
)
_META = (
    '  {\n    "name": "%s", "ph": "M", "ts": %s, "pid": %d, "tid": %d,\n'
    '    "args": {\n      "%s": %s\n    }\n  }'
)


@dataclass(frozen=True)
class SyntheticTruth:
    """What an analyzer must find in the trace; times are exact integer nanoseconds (``_ns``)."""

    path: Path
    compressed: bool
    rank: int
    world_size: int
    event_count: int  # entries of traceEvents, metadata and flow events included
    steps: tuple[int, ...]
    step_start_ns: dict[int, int]
    step_duration_ns: dict[int, int]
    step_gpu_busy_ns: dict[int, int]
    step_dataloader_ns: dict[int, int]
    kernel_count: dict[str, int]  # by kernel name (NCCL kernels included, copies not)
    kernel_time_ns: dict[str, int]
    tensor_core_names: frozenset[str]
    memcpy_count: int
    memcpy_time_ns: int
    memcpy_bytes: int
    nccl_count: int
    nccl_time_ns: int
    gpu_busy_ns: int  # union of all GPU activity = the sum, the GPU timeline being serial
    first_gpu_ts_ns: int
    last_gpu_end_ns: int
    float_timestamps: bool

    @property
    def kernel_total_ns(self) -> int:
        return sum(self.kernel_time_ns.values())

    @property
    def kernel_total_count(self) -> int:
        return sum(self.kernel_count.values())

    @staticmethod
    def us(ns: int) -> float:
        """``ns`` in microseconds as a float (exact for durations; not for 1.7e15 timestamps)."""
        return ns / 1000

    def as_read(self, ns: int) -> str | int:
        """``ns`` as ``read_trace`` gives it back (``parse_float=str``): the exact text or int."""
        return _us_text(ns) if self.float_timestamps else ns // 1000


def _us_text(ns: int) -> str:
    whole, frac = divmod(ns, 1000)
    return f"{whole}.{frac:03d}"


@dataclass
class _Totals:
    events: int = 0
    steps: list[int] = field(default_factory=list)
    step_start: dict[int, int] = field(default_factory=dict)
    step_duration: dict[int, int] = field(default_factory=dict)
    step_gpu: dict[int, int] = field(default_factory=dict)
    step_dataloader: dict[int, int] = field(default_factory=dict)
    kernel_count: dict[str, int] = field(default_factory=dict)
    kernel_time: dict[str, int] = field(default_factory=dict)
    memcpy_count: int = 0
    memcpy_time: int = 0
    memcpy_bytes: int = 0
    nccl_count: int = 0
    nccl_time: int = 0
    first_gpu: int | None = None
    last_gpu_end: int = 0


def write_synthetic_trace(
    path: Path,
    *,
    steps: int,
    kernels_per_step: int,
    compress: bool = False,
    rank: int = 0,
    seed: int = 0,
    float_timestamps: bool = True,
    with_memcpy: bool = True,
    with_nccl: bool = False,
) -> SyntheticTruth:
    """Write a Kineto-shaped trace of ``steps`` ProfilerSteps to ``path``; return its truth.

    Per step: a DataLoader annotation, one pageable host-to-device copy (``with_memcpy``),
    ``kernels_per_step`` kernels cycling through :data:`KERNELS` (each an ``aten::`` op holding a
    ``cudaLaunchKernel``, with ac2g flow events), one NCCL all-reduce on stream
    :data:`NCCL_STREAM` (``with_nccl``) and a closing ``cudaStreamSynchronize``. ``compress``
    writes gzip. Deterministic for a given seed.
    """
    world_size = max(rank + 1, 2 if with_nccl else 1)
    out: IO[bytes] = (
        gzip.GzipFile(path, "wb", compresslevel=1, mtime=0) if compress else path.open("wb")
    )
    with out:
        writer = _Writer(out, random.Random(seed), float_timestamps, with_memcpy, with_nccl)
        writer.header(rank, world_size)
        start_ns = (BASE_US + 1_000_000 * (seed % 1000)) * 1000 + (123 if float_timestamps else 0)
        for step in range(FIRST_STEP, FIRST_STEP + steps):
            start_ns = writer.step(step, start_ns, kernels_per_step)
        writer.footer(path.name)
    return writer.truth(path, compress, rank, world_size)


class _Writer:
    """Formats events with the templates above and writes them in big blocks."""

    def __init__(
        self, out: IO[bytes], rng: random.Random, floats: bool, memcpy: bool, nccl: bool
    ) -> None:
        self._out, self._rng, self._floats = out, rng, floats
        self._memcpy, self._nccl = memcpy, nccl
        self._unit = 1 if floats else 1000  # int timestamps: whole microseconds
        self._parts: list[str] = []
        self._first_block = True
        self._correlation, self._external = 1000, 1
        self._gpu_free = 0  # when the GPU finishes its last queued work (ns)
        self._step = FIRST_STEP
        self.totals = _Totals()

    def t(self, ns: int) -> str:
        return _us_text(ns) if self._floats else str(ns // 1000)

    def dur(self, low_ns: int, high_ns: int) -> int:
        """A random duration, on the timestamp grid, never zero."""
        ns = low_ns + int(self._rng.random() * (high_ns - low_ns))
        return max(self._unit, ns - ns % self._unit)

    def emit(self, text: str) -> None:
        self._parts.append(text)
        if len(self._parts) >= _BLOCK_EVENTS:
            self.flush()

    def flush(self) -> None:
        if self._parts:
            sep = "" if self._first_block else ",\n"
            self._out.write((sep + ",\n".join(self._parts)).encode())
            self.totals.events += len(self._parts)
            self._parts, self._first_block = [], False

    def header(self, rank: int, world_size: int) -> None:
        device = {
            "id": DEVICE, "name": "NVIDIA A100-SXM4-80GB", "totalGlobalMem": 85_198_045_184,
            "computeMajor": 8, "computeMinor": 0, "maxThreadsPerBlock": 1024,
            "maxThreadsPerMultiprocessor": 2048, "regsPerBlock": 65536, "warpSize": 32,
            "sharedMemPerBlock": 49152, "numSms": 108,
        }  # fmt: skip
        dist = {"backend": "nccl", "rank": rank, "world_size": world_size}
        self._out.write(
            (
                '{\n  "schemaVersion": 1,\n  "deviceProperties": [\n    '
                f"{json.dumps(device)}\n  ],\n"
                f'  "distributedInfo": {json.dumps(dist)},\n  "traceEvents": [\n'
            ).encode()
        )

    def footer(self, trace_name: str) -> None:
        first = self.totals.step_start.get(FIRST_STEP, 0)
        for name, pid, tid, key, value in (
            ("process_name", HOST_PID, 0, "name", '"python3"'),
            ("process_labels", HOST_PID, 0, "labels", '"CPU"'),
            ("process_name", DEVICE, 0, "name", '"python3"'),
            ("process_labels", DEVICE, 0, "labels", f'"GPU {DEVICE}"'),
            ("thread_name", HOST_PID, HOST_TID, "name", f'"thread {HOST_TID} (python3)"'),
            ("thread_name", DEVICE, COMPUTE_STREAM, "name", f'"stream {COMPUTE_STREAM} "'),
            ("thread_name", DEVICE, NCCL_STREAM, "name", f'"stream {NCCL_STREAM} "'),
        )[: 7 if self._nccl else 6]:
            self.emit(_META % (name, self.t(first), pid, tid, key, value))
        self.flush()
        tail = {"traceName": trace_name, "displayTimeUnit": "ms"}
        self._out.write(("\n  ],\n  " + json.dumps(tail)[1:-1] + "\n}\n").encode())

    def step(self, step: int, start: int, kernels: int) -> int:
        """Write ProfilerStep#``step`` from ``start`` (ns) on; return when it ends."""
        totals, t = self.totals, self.t
        totals.steps.append(step)
        totals.step_gpu[step] = 0
        self._step = step
        step_external = self._next_external()
        cursor = start + self.dur(2_000, 6_000)
        loading = self.dur(20_000, 400_000)
        totals.step_dataloader[step] = loading
        self.emit(_CPU % ("user_annotation", DATALOADER, HOST_PID, HOST_TID, t(cursor),
                          t(loading), self._next_external(), 0))  # fmt: skip
        cursor += loading + self.dur(1_000, 5_000)
        if self._memcpy:
            cursor = self.memcpy(cursor)
        for index in range(kernels):
            kind = KERNELS[index % len(KERNELS)]
            cursor = self.launch(_ESCAPED[kind.name], kind, cursor, COMPUTE_STREAM)
        if self._nccl:
            cursor = self.launch(_ESCAPED[NCCL_KERNEL], _NCCL_KIND, cursor, NCCL_STREAM)
        sync_end = max(cursor + self.dur(2_000, 4_000), self._gpu_free + self.dur(1_000, 3_000))
        self.emit(_RUNTIME % ("cuda_runtime", "cudaStreamSynchronize", HOST_PID, HOST_TID,
                              t(cursor), t(sync_end - cursor), step_external, 131,
                              self._next_correlation()))  # fmt: skip
        end = sync_end + self.dur(1_000, 5_000)
        self.emit(_CPU % ("user_annotation", f"ProfilerStep#{step}", HOST_PID, HOST_TID, t(start),
                          t(end - start), step_external, 0))  # fmt: skip
        totals.step_start[step], totals.step_duration[step] = start, end - start
        return end

    def launch(self, name: str, kind: KernelKind, cursor: int, stream: int) -> int:
        """An op at ``cursor`` launching one kernel; return where the CPU goes on."""
        t, external, correlation = self.t, self._next_external(), self._next_correlation()
        launch_at = cursor + self.dur(1_000, 3_000)
        launch_ns = self.dur(3_000, 9_000)
        op_ns = launch_at - cursor + launch_ns + self.dur(1_000, 2_000)
        gpu_ns = self.dur(kind.min_ns, kind.max_ns)
        gpu_at = max(self._gpu_free, launch_at + self.dur(2_000, 5_000))
        blocks = kind.grid[0] * kind.grid[1] * kind.grid[2] / 108
        warps = blocks * kind.block[0] * kind.block[1] * kind.block[2] / 32
        self.emit(_CPU % ("cpu_op", kind.op, HOST_PID, HOST_TID, t(cursor), t(op_ns), external,
                          external))  # fmt: skip
        self.emit(_RUNTIME % ("cuda_runtime", "cudaLaunchKernel", HOST_PID, HOST_TID, t(launch_at),
                              t(launch_ns), external, 211, correlation))  # fmt: skip
        self.emit(_FLOW_START % (correlation, HOST_PID, HOST_TID, t(launch_at)))
        self.emit(_KERNEL % ("kernel", name, DEVICE, stream, t(gpu_at), t(gpu_ns), external, DEVICE,
                             stream, correlation, f"{blocks:.6f}", f"{warps:.6f}", *kind.grid,
                             *kind.block, min(100, int(warps * 100 / 64))))  # fmt: skip
        self.emit(_FLOW_END % (correlation, DEVICE, stream, t(gpu_at)))
        self.gpu_work(gpu_at, gpu_ns)
        totals = self.totals
        totals.kernel_count[kind.name] = totals.kernel_count.get(kind.name, 0) + 1
        totals.kernel_time[kind.name] = totals.kernel_time.get(kind.name, 0) + gpu_ns
        if kind is _NCCL_KIND:
            totals.nccl_count += 1
            totals.nccl_time += gpu_ns
        return cursor + op_ns + self.dur(500, 3_000)

    def memcpy(self, cursor: int) -> int:
        """A pageable host-to-device copy (``aten::copy_`` + ``cudaMemcpyAsync``)."""
        t, external, correlation = self.t, self._next_external(), self._next_correlation()
        n_bytes = 4096 * (256 + int(self._rng.random() * 768))
        call_at = cursor + self.dur(1_000, 2_000)
        call_ns = self.dur(5_000, 20_000)
        op_ns = call_at - cursor + call_ns + self.dur(1_000, 2_000)
        copy_ns = max(self._unit, n_bytes // 12 - (n_bytes // 12) % self._unit)  # ~12 GB/s
        gpu_at = max(self._gpu_free, call_at + self.dur(2_000, 5_000))
        self.emit(_CPU % ("cpu_op", "aten::copy_", HOST_PID, HOST_TID, t(cursor), t(op_ns),
                          external, external))  # fmt: skip
        self.emit(_RUNTIME % ("cuda_runtime", "cudaMemcpyAsync", HOST_PID, HOST_TID, t(call_at),
                              t(call_ns), external, 41, correlation))  # fmt: skip
        self.emit(_FLOW_START % (correlation, HOST_PID, HOST_TID, t(call_at)))
        self.emit(_MEMCPY % ("gpu_memcpy", MEMCPY_HTOD, DEVICE, COMPUTE_STREAM, t(gpu_at),
                             t(copy_ns), external, DEVICE, COMPUTE_STREAM, correlation, n_bytes,
                             f"{n_bytes / copy_ns:.3f}"))  # fmt: skip
        self.emit(_FLOW_END % (correlation, DEVICE, COMPUTE_STREAM, t(gpu_at)))
        self.gpu_work(gpu_at, copy_ns)
        totals = self.totals
        totals.memcpy_count += 1
        totals.memcpy_time += copy_ns
        totals.memcpy_bytes += n_bytes
        return cursor + op_ns + self.dur(500, 3_000)

    def gpu_work(self, at: int, ns: int) -> None:
        totals = self.totals
        self._gpu_free = at + ns
        totals.step_gpu[self._step] += ns
        if totals.first_gpu is None:
            totals.first_gpu = at
        totals.last_gpu_end = at + ns

    def _next_external(self) -> int:
        self._external += 1
        return self._external

    def _next_correlation(self) -> int:
        self._correlation += 1
        return self._correlation

    def truth(self, path: Path, compressed: bool, rank: int, world_size: int) -> SyntheticTruth:
        totals = self.totals
        return SyntheticTruth(
            path=path,
            compressed=compressed,
            rank=rank,
            world_size=world_size,
            event_count=totals.events,
            steps=tuple(totals.steps),
            step_start_ns=totals.step_start,
            step_duration_ns=totals.step_duration,
            step_gpu_busy_ns=totals.step_gpu,
            step_dataloader_ns=totals.step_dataloader,
            kernel_count=totals.kernel_count,
            kernel_time_ns=totals.kernel_time,
            tensor_core_names=frozenset(k.name for k in KERNELS if k.tensor_core),
            memcpy_count=totals.memcpy_count,
            memcpy_time_ns=totals.memcpy_time,
            memcpy_bytes=totals.memcpy_bytes,
            nccl_count=totals.nccl_count,
            nccl_time_ns=totals.nccl_time,
            gpu_busy_ns=sum(totals.step_gpu.values()),
            first_gpu_ts_ns=totals.first_gpu or 0,
            last_gpu_end_ns=totals.last_gpu_end,
            float_timestamps=self._floats,
        )


_NCCL_KIND = KernelKind(
    NCCL_KERNEL, "nccl:all_reduce", 50_000, 900_000, False, (8, 1, 1), (544, 1, 1)
)
_ESCAPED = {k.name: json.dumps(k.name)[1:-1] for k in (*KERNELS, _NCCL_KIND)}
