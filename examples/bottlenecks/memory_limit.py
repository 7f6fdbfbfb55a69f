"""memory_limit (GPU only): training with the GPU's memory all but full.

Injected (``--variant bottleneck``): before training, a buffer is allocated and held (say, a
cache of the validation set kept on the device) so that the step's peak allocated memory
reaches about 94% of the GPU's total (``torch.cuda.mem_get_info``). Training itself is the
healthy MLP loop; it works, one large allocation away from out-of-memory.

Clean twin (``--variant clean``): the same loop without the held buffer.

What a user sees: ``cuda_peak_bytes`` of every step over 92% of the device's memory (the twin:
a few percent), and the advisor's ``memory_pressure`` finding. On the CPU the case exits with
status 2 ("needs CUDA"): there is no device memory to fill.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from examples.bottlenecks import common

SIZES = common.Sizes(batch=1024, features=1024, width=4096, depth=3)
TARGET_SHARE = 0.94  # of the device's total memory, at the step's peak
MARGIN_BYTES = 256 * 1024**2  # left free for the allocator's rounding and cuBLAS


def step_peak_bytes(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> int:
    """The peak allocated memory of one training step (run once, before the session)."""
    torch.cuda.reset_peak_memory_stats()
    with torch.autocast("cuda", dtype=torch.bfloat16):
        loss = nn.functional.cross_entropy(model(x), y)
    loss.backward()
    model.zero_grad(set_to_none=True)
    torch.cuda.synchronize()
    return int(torch.cuda.max_memory_allocated())


def hold_memory(step_peak: int) -> torch.Tensor:
    """A buffer that lifts the step's peak to ``TARGET_SHARE`` of the device."""
    torch.cuda.empty_cache()
    free, total = torch.cuda.mem_get_info()
    wanted = int(TARGET_SHARE * total) - step_peak
    transient = step_peak - torch.cuda.memory_allocated()  # what a step adds for a while
    size = max(0, min(wanted, free - transient - MARGIN_BYTES))
    if size < wanted:
        print(f"memory_limit: only {size / 1024**3:.1f} GiB of {wanted / 1024**3:.1f} GiB free")
    return torch.empty(size, dtype=torch.uint8, device="cuda")


def main(argv: Sequence[str] | None = None) -> None:
    args = common.start_case("memory_limit", __doc__, argv, needs_cuda=True)
    loader = common.resident_features(SIZES, args.device)
    x, y = loader.x, loader.y
    model = common.model_for(SIZES, args.device)
    held = None
    if args.is_bottleneck:
        held = hold_memory(step_peak_bytes(model, x[: SIZES.batch], y[: SIZES.batch]))
    with common.open_session(args, batch_size=SIZES.batch) as session:
        result = common.train(session, model, loader, args)
    common.report(args, session, result)
    del held  # referenced until here: held through every step


if __name__ == "__main__":
    main()
