"""What every seeded-bottleneck case shares: the command line, synthetic data, model builders,
the training loop and the gpulens session.

Each case is ``python -m examples.bottlenecks.<case> --variant bottleneck|clean
--device cpu|cuda --steps N --db URL --run-name NAME``. The session traces a profiler window
of 5 steps every 15 steps after 5 start-up steps (steps 15-19, 30-34 and 45-49, 3 windows at
most) and analyses each one in the hooks' writer thread, so a 60-step run leaves its step rows,
3 analyzed windows and their step breakdowns in the store by the time the script exits.
"""

from __future__ import annotations

import argparse
import contextlib
import socket
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

import profiler_hooks
from profiler_hooks import ProfileSchedule, StepSession

Variant = Literal["bottleneck", "clean"]
VARIANTS: tuple[Variant, ...] = ("bottleneck", "clean")
DEFAULT_STEPS = 60
EXIT_NEEDS_CUDA = 2
SCHEDULE = ProfileSchedule(wait=8, warmup=2, active=5, repeat=3, skip_first=5)

Batch = tuple[torch.Tensor, torch.Tensor]
Prepare = Callable[[torch.Tensor, torch.Tensor], Batch]
AfterStep = Callable[[int, torch.Tensor], None]
Precision = Literal["auto", "fp32", "bf16"]


@dataclass(frozen=True)
class CaseArgs:
    """One case's command line, resolved."""

    case: str
    variant: Variant
    device: torch.device
    steps: int
    db: str | None
    run_name: str
    trace_dir: str | None

    @property
    def is_bottleneck(self) -> bool:
        return self.variant == "bottleneck"

    @property
    def on_cuda(self) -> bool:
        return self.device.type == "cuda"


@dataclass(frozen=True)
class Sizes:
    """A case's shapes; each case keeps one set for the CPU and one for a GPU."""

    batch: int
    features: int = 256
    width: int = 1024
    depth: int = 3
    classes: int = 10
    batches: int = 32  # the dataset holds this many batches


def start_case(
    case: str, doc: str | None, argv: Sequence[str] | None = None, *, needs_cuda: bool = False
) -> CaseArgs:
    """Parse the case's command line and set the process up.

    Exits with status 2 and a one-line reason where CUDA is needed and missing (``--device
    cuda`` without a GPU, or a GPU-only case on the CPU). On the CPU, torch computes with one
    thread: the cases' shares (wait over step, communication over step) then stay put on a
    small machine that runs other work too, where several processes' spinning OpenMP threads
    would otherwise slow some steps tenfold.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m examples.bottlenecks.{case}",
        description=(doc or "").strip().splitlines()[0] if doc else None,
    )
    parser.add_argument("--variant", choices=VARIANTS, default="bottleneck")
    parser.add_argument(
        "--device", choices=("cpu", "cuda"), default="cuda" if torch.cuda.is_available() else "cpu"
    )
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS, help="training steps")
    parser.add_argument("--db", help="store URL (default: $GPULENS_DB, else gpulens' SQLite)")
    parser.add_argument("--run-name", help="default: CASE-VARIANT")
    parser.add_argument("--trace-dir", help="where window traces go (default: gpulens' own)")
    parsed = parser.parse_args(argv)
    if parsed.steps < 1:
        parser.error("--steps must be at least 1")
    if parsed.device == "cuda" and not torch.cuda.is_available():
        needs_cuda_exit(f"--device cuda: no GPU is visible to torch {torch.__version__}")
    if needs_cuda and parsed.device != "cuda":
        needs_cuda_exit(f"{case}: its bottleneck exists only on a GPU (run it with --device cuda)")
    if parsed.device == "cpu":
        torch.set_num_threads(1)
    return CaseArgs(
        case=case,
        variant=parsed.variant,
        device=torch.device(parsed.device),
        steps=parsed.steps,
        db=parsed.db,
        run_name=parsed.run_name or f"{case}-{parsed.variant}",
        trace_dir=parsed.trace_dir,
    )


def needs_cuda_exit(reason: str) -> None:
    print(f"needs CUDA: {reason}", file=sys.stderr)
    raise SystemExit(EXIT_NEEDS_CUDA)


def pick_sizes(args: CaseArgs, *, cpu: Sizes, cuda: Sizes) -> Sizes:
    return cuda if args.on_cuda else cpu


# -- data and models --------------------------------------------------------------------------


def synthetic_classification(
    samples: int, shape: Sequence[int], classes: int, *, seed: int = 0
) -> Batch:
    """Gaussian inputs of ``shape`` and labels a linear map of them decides (learnable)."""
    generator = torch.Generator().manual_seed(seed)
    x = torch.randn(samples, *shape, generator=generator)
    projection = torch.randn(x[0].numel(), classes, generator=generator)
    y = (x.flatten(1) @ projection).argmax(dim=1)
    return x, y


class ResidentBatches:
    """Batches sliced from tensors already where they are needed: no copy, no collation, no
    worker; what a healthy input pipeline costs the training loop (almost nothing)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int) -> None:
        self.x, self.y, self.batch_size = x, y, batch_size

    def __len__(self) -> int:
        return len(self.x) // self.batch_size

    def __iter__(self) -> Iterator[Batch]:
        for start in range(0, len(self) * self.batch_size, self.batch_size):
            end = start + self.batch_size
            yield self.x[start:end], self.y[start:end]


def resident_features(
    sizes: Sizes, device: torch.device, *, batch: int | None = None, seed: int = 0
) -> ResidentBatches:
    """:func:`synthetic_classification` of ``sizes`` (vectors of ``sizes.features``, enough for
    ``sizes.batches`` batches) moved to ``device`` once, in batches of ``batch`` (default
    ``sizes.batch``): the data of the cases whose input pipeline is not the point."""
    x, y = synthetic_classification(
        sizes.batch * sizes.batches, (sizes.features,), sizes.classes, seed=seed
    )
    return ResidentBatches(x.to(device), y.to(device), sizes.batch if batch is None else batch)


def mlp(features: int, width: int, depth: int, classes: int) -> nn.Sequential:
    """``depth`` hidden Linear+ReLU layers of ``width``, then a classifier."""
    layers: list[nn.Module] = [nn.Flatten()]
    for index in range(depth):
        layers += [nn.Linear(features if index == 0 else width, width), nn.ReLU()]
    layers.append(nn.Linear(width, classes))
    return nn.Sequential(*layers)


def model_for(sizes: Sizes, device: torch.device, *, seed: int = 0) -> nn.Module:
    torch.manual_seed(seed)
    return mlp(sizes.features, sizes.width, sizes.depth, sizes.classes).to(device)


def free_port() -> int:
    """A TCP port nobody listens on right now (for torch.distributed's rendezvous)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- the session and the loop -----------------------------------------------------------------


def open_session(args: CaseArgs, *, batch_size: int | None = None) -> StepSession:
    """The case's gpulens session (start it with ``with``); the case and variant are kept in
    the run's config so a reader can tell the runs apart."""
    return profiler_hooks.profile_steps(
        args.run_name,
        db=args.db,
        batch_size=batch_size,
        schedule=SCHEDULE,
        trace_dir=args.trace_dir,
        slow_step_trigger=False,  # the windows fall on the same steps in every run
        analysis="inline",
        config={"bottleneck_case": args.case, "variant": args.variant},
    )


@dataclass(frozen=True)
class TrainResult:
    steps: int
    samples: int
    seconds: float


def train(
    session: StepSession,
    model: nn.Module,
    loader: Iterable[Batch],
    args: CaseArgs,
    *,
    prepare: Prepare | None = None,
    after_step: AfterStep | None = None,
    precision: Precision = "auto",
    non_blocking: bool = False,
    lr: float = 0.01,
) -> TrainResult:
    """``args.steps`` SGD steps over ``loader`` (as many passes as that takes), one
    ``session.step(samples=len(batch))`` each. ``precision="auto"`` is bf16 autocast on a GPU
    (what a healthy loop uses there; FP32 GEMMs are the ``fp32_gemm`` case) and FP32 on the CPU.

    Per batch: ``prepare(x, y)`` (the case's own work between the batch's arrival and the
    forward), the copy to ``args.device``, forward and loss, backward, optimizer step,
    ``after_step(step, loss)``.
    """
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9)
    loss_fn = nn.CrossEntropyLoss()
    device, step, samples = args.device, 0, 0
    dtype = autocast_dtype(device, precision)
    started = time.perf_counter()
    while step < args.steps:
        for x, y in session.wrap_dataloader(loader):
            if prepare is not None:
                x, y = prepare(x, y)
            x = x.to(device, non_blocking=non_blocking)
            y = y.to(device, non_blocking=non_blocking)
            with autocast_to(device, dtype):
                loss = loss_fn(model(x), y)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if after_step is not None:
                after_step(step, loss)
            session.step(samples=len(x))
            step, samples = step + 1, samples + len(x)
            if step == args.steps:
                break
    if args.on_cuda:
        torch.cuda.synchronize(device)
    return TrainResult(step, samples, time.perf_counter() - started)


def autocast_dtype(device: torch.device, precision: Precision) -> torch.dtype | None:
    if precision == "auto":
        precision = "bf16" if device.type == "cuda" else "fp32"
    return torch.bfloat16 if precision == "bf16" else None


def autocast_to(device: torch.device, dtype: torch.dtype | None) -> Any:
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device.type, dtype=dtype)


def report(
    args: CaseArgs, session: StepSession, result: TrainResult, *, rank: int | None = None
) -> None:
    """One line a user reads at the end: speed, and where the run went."""
    rate = result.samples / result.seconds if result.seconds else 0.0
    where = args.device.type if rank is None else f"{args.device.type}, rank {rank}"
    print(
        f"{args.case} ({args.variant}, {where}): {result.steps} steps in "
        f"{result.seconds:.2f} s, {1e3 * result.seconds / max(result.steps, 1):.1f} ms/step, "
        f"{rate:,.0f} samples/s; gpulens run {session.run_id} "
        f"({session.stats.written} steps stored) as {args.run_name!r}"
    )
