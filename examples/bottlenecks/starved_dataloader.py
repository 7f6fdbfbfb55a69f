"""starved_dataloader: the training loop waits for a DataLoader that reads slowly.

Injected (``--variant bottleneck``): every sample is "read and decoded" when it is asked for
(a 0.5 ms wait for storage, then Python-level decoding), one sample at a time, in the training
process itself (``num_workers=0``). The model waits for each batch.

Clean twin (``--variant clean``): the same samples are decoded once, up front, and held in
memory (on the training device); each batch is a slice of them. On a GPU the bottleneck's
batches are pinned and copied with ``non_blocking=True``, so the copy itself is not the issue.

What a user sees: ``dataloader_wait_us`` near two thirds of every step's ``duration_us``
(under 1% in the twin), the ``dataloader`` category in the profiler windows' step breakdowns,
and the advisor's ``input_pipeline`` finding.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence

import torch
from torch.utils.data import DataLoader, Dataset

from examples.bottlenecks import common

READ_S = 0.0005  # per sample: a read from a slow disk or a remote bucket
CPU = common.Sizes(batch=64, features=256, width=1024, depth=3)
CUDA = common.Sizes(batch=256, features=1024, width=4096, depth=3)


class SlowlyReadSamples(Dataset[common.Batch]):
    """Sample ``i`` is read and decoded on every access, as from files on a slow store."""

    def __init__(self, samples: int, features: int, classes: int) -> None:
        self.samples, self.features, self.classes = samples, features, classes

    def __len__(self) -> int:
        return self.samples

    def __getitem__(self, index: int) -> common.Batch:
        time.sleep(READ_S)
        return self.decode(index)

    def decode(self, index: int) -> common.Batch:
        generator = torch.Generator().manual_seed(index)
        x = torch.randn(self.features, generator=generator)
        return x, torch.tensor(index % self.classes)


def main(argv: Sequence[str] | None = None) -> None:
    args = common.start_case("starved_dataloader", __doc__, argv)
    sizes = common.pick_sizes(args, cpu=CPU, cuda=CUDA)
    dataset = SlowlyReadSamples(sizes.batch * sizes.batches, sizes.features, sizes.classes)
    loader: Iterable[common.Batch]
    if args.is_bottleneck:
        loader = DataLoader(
            dataset, batch_size=sizes.batch, shuffle=True, num_workers=0, pin_memory=args.on_cuda
        )
    else:
        decoded = [dataset.decode(index) for index in range(len(dataset))]
        x = torch.stack([sample[0] for sample in decoded]).to(args.device)
        y = torch.stack([sample[1] for sample in decoded]).to(args.device)
        loader = common.ResidentBatches(x, y, sizes.batch)
    model = common.model_for(sizes, args.device)
    with common.open_session(args, batch_size=sizes.batch) as session:
        result = common.train(session, model, loader, args, non_blocking=True)
    common.report(args, session, result)


if __name__ == "__main__":
    main()
