"""clean: a healthy small training loop, what every case's clean twin looks like.

Nothing is injected; ``--variant`` only changes the run's name and both variants are the same
loop. An MLP trains on batches already in memory on the training device (bf16 autocast on a
GPU), no copies, no syncs, no per-sample work on the host.

What a user sees: ``dataloader_wait_us`` and ``pre_forward_us`` near 0, step breakdowns made of
compute (``cpu_exec`` on the CPU, ``kernel`` on a GPU), and no advisor finding that names a
bottleneck.
"""

from __future__ import annotations

from collections.abc import Sequence

from examples.bottlenecks import common

CPU = common.Sizes(batch=64, features=256, width=1024, depth=3)
CUDA = common.Sizes(batch=1024, features=1024, width=4096, depth=3)


def main(argv: Sequence[str] | None = None) -> None:
    args = common.start_case("clean", __doc__, argv)
    sizes = common.pick_sizes(args, cpu=CPU, cuda=CUDA)
    loader = common.resident_features(sizes, args.device)
    model = common.model_for(sizes, args.device)
    with common.open_session(args, batch_size=sizes.batch) as session:
        session.watch_model(model)
        result = common.train(session, model, loader, args)
    common.report(args, session, result)


if __name__ == "__main__":
    main()
