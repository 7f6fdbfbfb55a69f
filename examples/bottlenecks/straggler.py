"""straggler: two data-parallel ranks, one of which does extra work every step.

Two processes (``torch.multiprocessing.spawn``) train one small MLP with
DistributedDataParallel, one thread each: gloo on the CPU, and on a GPU also gloo unless
there are 2 GPUs (then NCCL, one GPU per rank). Each rank opens its own gpulens session under
the same run name; the hooks read rank and world size from torch.distributed.

Injected (``--variant bottleneck``): rank 1 does 80 extra 300x300 matrix multiplies (4096x4096
in bf16 on a GPU) after each optimizer step, say a metric only it computes. The next step's
gradient all-reduce makes rank 0 wait for it.

Clean twin (``--variant clean``): both ranks do the same work. The model is small (26k
parameters on the CPU) and the batch large, so computing dominates communicating. On a single
GPU the ranks share it through gloo, which stages every all-reduce through host memory, so
communication takes a larger share there (and the advisor notes the gloo backend).

What a user sees: both ranks' steps equally slow; in the profiler windows rank 0's step
breakdown is half ``communication`` (``gloo:all_reduce``, waiting for rank 1) and rank 1's
almost none, and the advisor's ``straggler`` finding naming rank 1. In the twin
``communication`` is a small share on both ranks: a few percent, though on a small virtual
machine whose two CPUs do not keep the same speed it can reach 10-15% on one rank.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn.parallel import DistributedDataParallel

from examples.bottlenecks import common

WORLD_SIZE = 2
SLOW_RANK = 1
EXTRA_MATMULS = 80  # about as much as a step's own work on the CPU: well over the noise
EXTRA_SIDE = {"cpu": 300, "cuda": 4096}  # on a GPU, in bf16
CPU = common.Sizes(batch=16384, features=64, width=128, depth=2, batches=4)
CUDA = common.Sizes(batch=16384, features=512, width=1024, depth=2, batches=8)


class ExtraWork:
    """The injected work on the slow rank, after each optimizer step (a metric only it
    computes): the next all-reduce waits for it."""

    def __init__(self, device: torch.device) -> None:
        side = EXTRA_SIDE[device.type]
        dtype = torch.bfloat16 if device.type == "cuda" else torch.float32
        generator = torch.Generator().manual_seed(1)
        self.matrix = torch.randn(side, side, generator=generator).to(device, dtype)

    def __call__(self, step: int, loss: torch.Tensor) -> None:
        product = self.matrix
        for _ in range(EXTRA_MATMULS):
            product = torch.tanh(product @ self.matrix)


def share_one_core() -> None:
    """Run both ranks' training threads on the same CPU core. Cores of one host differ in
    speed (the one taking interrupts runs 10-25 % slower here), which on its own makes a rank
    a straggler; sharing one core makes the clean twin's ranks equal, so only the injected work
    tells them apart. (Other threads, gloo's among them, stay free to use the other cores.)"""
    if hasattr(os, "sched_setaffinity"):
        cores = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cores[0]})


def backend_and_device(args: common.CaseArgs, rank: int) -> tuple[str, torch.device]:
    if args.on_cuda and torch.cuda.device_count() >= WORLD_SIZE:
        return "nccl", torch.device("cuda", rank)
    # One GPU (or none): the ranks share it, through gloo.
    return "gloo", torch.device("cuda", 0) if args.on_cuda else args.device


def run_rank(rank: int, args: common.CaseArgs, port: int) -> None:
    torch.set_num_threads(1)
    if not args.on_cuda:
        share_one_core()
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    backend, device = backend_and_device(args, rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    dist.init_process_group(backend, rank=rank, world_size=WORLD_SIZE)
    try:
        sizes = common.pick_sizes(args, cpu=CPU, cuda=CUDA)
        loader = common.resident_features(sizes, device, seed=rank)
        device_ids = [device.index] if device.type == "cuda" else None
        model = DistributedDataParallel(common.model_for(sizes, device), device_ids=device_ids)
        extra = ExtraWork(device) if args.is_bottleneck and rank == SLOW_RANK else None
        rank_args = dataclasses.replace(args, device=device)
        with common.open_session(rank_args, batch_size=sizes.batch) as session:
            session.watch_model(model)  # also notes the DistributedDataParallel wrapper
            result = common.train(session, model, loader, rank_args, after_step=extra)
        dist.barrier()
        common.report(rank_args, session, result, rank=rank)
    finally:
        dist.destroy_process_group()


def main(argv: Sequence[str] | None = None) -> None:
    args = common.start_case("straggler", __doc__, argv)
    mp.spawn(run_rank, args=(args, common.free_port()), nprocs=WORLD_SIZE, join=True)


if __name__ == "__main__":
    main()
