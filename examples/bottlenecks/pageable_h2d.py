"""pageable_h2d (GPU only): large batches copied to the GPU from pageable host memory.

Injected (``--variant bottleneck``): the DataLoader (4 worker processes) hands over float32 image
batches in ordinary, pageable host memory and the loop copies them with a plain
``.to(device)``. The driver stages a pageable copy through a bounce buffer, slower than a
pinned one, and the host blocks until it is done; the GPU does nothing else meanwhile.

Clean twin (``--variant clean``): the same DataLoader with ``pin_memory=True`` and
``.to(device, non_blocking=True)``: a pinned copy at full PCIe speed that does not block the
host.

What a user sees on a GPU: ``Memcpy HtoD (Pageable -> Device)`` in the traces taking a few
milliseconds per step, the ``memcpy`` category of the step breakdowns, and the advisor's
``h2d_copies`` finding. On the CPU the case runs (without workers), but ``.to("cpu")`` copies
nothing.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from examples.bottlenecks import common

CPU = common.Sizes(batch=16, features=3 * 32 * 32, width=16, classes=10, batches=16)
CUDA = common.Sizes(batch=128, features=3 * 96 * 96, width=64, classes=10, batches=16)


def conv_net(width: int, classes: int) -> nn.Sequential:
    """Enough convolution per byte of input that, pinned, the copy is a small part of a step."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(width, 2 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(2 * width, 4 * width, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4 * width, 4 * width, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4 * width, classes),
    )


def main(argv: Sequence[str] | None = None) -> None:
    args = common.start_case("pageable_h2d", __doc__, argv)
    sizes = common.pick_sizes(args, cpu=CPU, cuda=CUDA)
    side = int((sizes.features // 3) ** 0.5)
    x, y = common.synthetic_classification(sizes.batch * sizes.batches, (3, side, side), 10)
    pinned = args.on_cuda and not args.is_bottleneck  # pinning needs a GPU
    workers = 4 if args.on_cuda else 0  # on the CPU there is no copy for workers to overlap
    loader = DataLoader(
        TensorDataset(x, y),
        batch_size=sizes.batch,
        shuffle=True,
        num_workers=workers,
        persistent_workers=workers > 0,
        pin_memory=pinned,
    )
    torch.manual_seed(0)
    model = conv_net(sizes.width, sizes.classes).to(args.device)
    with common.open_session(args, batch_size=sizes.batch) as session:
        result = common.train(session, model, loader, args, non_blocking=not args.is_bottleneck)
    common.report(args, session, result)


if __name__ == "__main__":
    main()
