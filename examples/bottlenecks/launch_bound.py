"""launch_bound (GPU only): a deep stack of small layers fed 2 samples at a time.

Injected (``--variant bottleneck``): batch size 2 through 16 Linear+ReLU layers (1024 wide on a
GPU). Every kernel finishes in a few microseconds, faster than the host can launch the next
one, so the GPU idles between launches and the step time is the host's launch time.

Clean twin (``--variant clean``): the same model and data with a large batch (8192 on a GPU),
so each kernel has real work. Steps record their sample counts, so samples per second compare
the two directly.

What a user sees on a GPU: a low GPU busy share, hundreds of kernels per step most of which run
shorter than their ``cudaLaunchKernel`` call, samples/s far apart, and the
advisor's ``launch_bound`` finding. On the CPU the case runs (batch 2 against 256) but there are
no kernel launches to count.
"""

from __future__ import annotations

from collections.abc import Sequence

from examples.bottlenecks import common

DEPTH, TINY_BATCH = 16, 2
CPU = common.Sizes(batch=256, features=256, width=256, depth=DEPTH, batches=8)
CUDA = common.Sizes(batch=8192, features=1024, width=1024, depth=DEPTH, batches=8)


def main(argv: Sequence[str] | None = None) -> None:
    args = common.start_case("launch_bound", __doc__, argv)
    sizes = common.pick_sizes(args, cpu=CPU, cuda=CUDA)
    batch = TINY_BATCH if args.is_bottleneck else sizes.batch
    loader = common.resident_features(sizes, args.device, batch=batch)
    model = common.model_for(sizes, args.device)
    with common.open_session(args, batch_size=batch) as session:
        result = common.train(session, model, loader, args)
    common.report(args, session, result)


if __name__ == "__main__":
    main()
