"""host_sync (GPU only): the host waits for the GPU at every step to read the loss.

Injected (``--variant bottleneck``): ``loss.item()`` after every step, for a progress line, and
a ``torch.cuda.synchronize()`` "to time the step". Each one drains the GPU's queue: the host
cannot launch step N+1 while the GPU finishes step N, so the two take turns instead of
overlapping.

Clean twin (``--variant clean``): the loss is summed on the GPU (``detach()``, no copy) and read
once every 100 steps, so the host runs ahead and the GPU never waits for it.

What a user sees on a GPU: ``cudaStreamSynchronize``/``cudaDeviceSynchronize`` (and the
device-to-host ``Memcpy`` of ``.item()``) taking a large share of the traced steps, a lower GPU
busy share, and the advisor's ``host_sync`` finding. On the CPU the case runs, but there is no
queue to drain: both variants look alike.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from examples.bottlenecks import common

CPU = common.Sizes(batch=64, features=256, width=1024, depth=3)
CUDA = common.Sizes(batch=2048, features=1024, width=2048, depth=6)
LOG_EVERY = 100


class ReadLossEveryStep:
    """The injected habit: read the loss now, and make sure the GPU is done."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.last = float("nan")

    def __call__(self, step: int, loss: torch.Tensor) -> None:
        self.last = loss.item()  # a device-to-host copy the host waits for
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)


class ReadLossEveryHundredSteps:
    """The fix: keep a running sum on the device, read it rarely."""

    def __init__(self, device: torch.device) -> None:
        self.total = torch.zeros((), device=device)
        self.last = float("nan")

    def __call__(self, step: int, loss: torch.Tensor) -> None:
        self.total += loss.detach()
        if (step + 1) % LOG_EVERY == 0:
            self.last = self.total.item() / LOG_EVERY
            self.total.zero_()


def main(argv: Sequence[str] | None = None) -> None:
    args = common.start_case("host_sync", __doc__, argv)
    sizes = common.pick_sizes(args, cpu=CPU, cuda=CUDA)
    loader = common.resident_features(sizes, args.device)
    model = common.model_for(sizes, args.device)
    read_loss = (
        ReadLossEveryStep(args.device)
        if args.is_bottleneck
        else ReadLossEveryHundredSteps(args.device)
    )
    with common.open_session(args, batch_size=sizes.batch) as session:
        result = common.train(session, model, loader, args, after_step=read_loss)
    common.report(args, session, result)


if __name__ == "__main__":
    main()
